/*
 * Access control with real processes of other users: the permission bits of
 * the backing object are the whole of shmchan's access control, so a process
 * of another user must get exactly what the bits allow. Needs root (to run
 * helpers under other uids); without it these tests fail and say why.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"

/* Ids no user or group of this machine has, picked at run time. */
#define OTHER_UID ((uid_t)t_unused_id(0))
#define OTHER_GID ((gid_t)t_unused_id(0))
#define SHARE_GID t_unused_id(1) /* a group only the tests use */
#define STRANGER_GID t_unused_id(2)

static void
need_root(void)
{
    if (geteuid() != 0) {
        t_fail(__FILE__, __LINE__, "access tests need root to run helpers as other users "
               "(euid %d); run the suite as root, as CI does", (int)geteuid());
    }
}

static void
shm_path(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "/dev/shm/shmchan.%s", name);
}

/*
 * Become uid OTHER_UID with primary group OTHER_GID and the supplementary
 * groups listed in spec ("-" for none, or a gid). Returns 0 or exits 90.
 */
static void
become(const char *groups)
{
    gid_t g[1];
    int n = 0;
    if (strcmp(groups, "-") != 0) {
        g[n++] = (gid_t)atoi(groups);
    }
    if (setgroups((size_t)n, g) != 0 || setgid(OTHER_GID) != 0 || setuid(OTHER_UID) != 0) {
        fprintf(stderr, "become: %s\n", strerror(errno));
        exit(90);
    }
    if (geteuid() != OTHER_UID) {
        exit(91);
    }
}

/* Exit status 10 + index of the first step that did not do what was asked. */
static int
expect(int step, int got, int want)
{
    if (got != want) {
        fprintf(stderr, "access step %d: got %s, want %s\n", step, shmchan_errname(got),
                shmchan_errname(want));
        return 10 + step;
    }
    return 0;
}

/* As another user without rights: every way in is refused, nothing changes. */
static int
probe_denied(const char *name, uint32_t file)
{
    shmchan_latest *ch = NULL;
    shmchan_opts rw = t_opts(file), ro = t_opts(file | SHMCHAN_RDONLY);
    shmchan_opts cr = t_opts(file | SHMCHAN_CREATE);
    shmchan_info info = {.struct_size = sizeof(info)};
    int removed = 0, rc;
    if ((rc = expect(0, shmchan_latest_open(name, &rw, &ch), SHMCHAN_EACCES)) ||
        (rc = expect(1, shmchan_latest_open(name, &ro, &ch), SHMCHAN_EACCES)) ||
        (rc = expect(2, shmchan_latest_open(name, &cr, &ch), SHMCHAN_EACCES)) ||
        (rc = expect(3, shmchan_info_get(name, file, &info), SHMCHAN_EACCES)) ||
        (rc = expect(4, shmchan_reap(name, file, false, &removed), SHMCHAN_EACCES)) ||
        (rc = expect(5, shmchan_unlink(name, file), SHMCHAN_EACCES))) {
        return rc;
    }
    return ch == NULL && removed == 0 ? 0 : 20;
}

HELPER(access_denied)
{
    char groups[16], name[512];
    unsigned file = 0;
    if (sscanf(arg, "%15s %u %511s", groups, &file, name) != 3) {
        return 2;
    }
    become(groups);
    return probe_denied(name, file ? SHMCHAN_FILE : 0);
}

/* The same probe, started by setpriv(1) as an administrator would. */
HELPER(access_denied_setpriv)
{
    if (geteuid() != OTHER_UID || getegid() != OTHER_GID) {
        return 92;
    }
    return probe_denied(arg, 0);
}

/* A group member: opens read-write and publishes. */
HELPER(access_member_publish)
{
    char groups[16], name[64];
    if (sscanf(arg, "%15s %63s", groups, name) != 2) {
        return 2;
    }
    become(groups);
    shmchan_latest *ch = NULL;
    int rc = shmchan_latest_open(name, NULL, &ch);
    if (rc != SHMCHAN_OK) {
        return expect(0, rc, SHMCHAN_OK);
    }
    rc = shmchan_latest_publish(ch, "from a member", 13, NULL);
    shmchan_latest_close(ch);
    return expect(1, rc, SHMCHAN_OK);
}

static void
check_message(shmchan_latest *ch, const char *want, uint64_t want_seq)
{
    char buf[64];
    size_t len = 0;
    uint64_t seq = 0;
    T_OK(shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq));
    T_EQ_U64(seq, want_seq);
    T_EQ_U64(len, strlen(want));
    T_MEMEQ(buf, want, len);
}

TEST(access_default_0600_other_user)
{
    need_root();
    const char *n = t_name();
    shmchan_latest *ch = NULL;
    mode_t old = umask(0); /* the default is exact, whatever the umask */
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    T_OK(shmchan_latest_open(n, &o, &ch));
    umask(old);
    T_OK(shmchan_latest_publish(ch, "owner only", 10, NULL));
    char path[128];
    shm_path(n, path, sizeof(path));
    struct stat st;
    T_TRUE(stat(path, &st) == 0);
    T_EQ_U64(st.st_mode & 07777, 0600);
    char arg[600];
    snprintf(arg, sizeof(arg), "- 0 %s", n);
    T_EQ_U64(t_wait_bounded(t_spawn("access_denied", arg), 10000), 0);
    snprintf(arg, sizeof(arg), "%d 0 %s", SHARE_GID, n); /* groups do not matter at 0600 */
    T_EQ_U64(t_wait_bounded(t_spawn("access_denied", arg), 10000), 0);

    /* A file-backed channel in a world-writable directory: the same. */
    const char *p = t_path();
    o.flags = SHMCHAN_CREATE | SHMCHAN_FILE;
    shmchan_latest *fch = NULL;
    T_OK(shmchan_latest_open(p, &o, &fch));
    T_OK(shmchan_latest_publish(fch, "file", 4, NULL));
    snprintf(arg, sizeof(arg), "- 1 %s", p);
    T_EQ_U64(t_wait_bounded(t_spawn("access_denied", arg), 10000), 0);
    check_message(fch, "file", 1);
    shmchan_latest_close(fch);

    check_message(ch, "owner only", 1); /* untouched */
    shmchan_latest_close(ch);
}

TEST(access_other_user_via_setpriv)
{
    need_root();
    const char *setpriv = access("/usr/bin/setpriv", X_OK) == 0 ? "/usr/bin/setpriv"
                          : access("/bin/setpriv", X_OK) == 0 ? "/bin/setpriv"
                                                               : NULL;
    if (setpriv == NULL) {
        t_fail(__FILE__, __LINE__, "setpriv not found: install util-linux");
    }
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    T_OK(shmchan_latest_publish(ch, "mine", 4, NULL));
    char reuid[32], regid[32];
    snprintf(reuid, sizeof(reuid), "--reuid=%d", (int)OTHER_UID);
    snprintf(regid, sizeof(regid), "--regid=%d", (int)OTHER_GID);
    const char *argv[] = {setpriv, reuid, regid, "--clear-groups",
                          t_self(), "--helper", "access_denied_setpriv", n, NULL};
    T_EQ_U64(t_wait_bounded(t_exec(argv), 10000), 0);
    check_message(ch, "mine", 1);
    shmchan_latest_close(ch);
}

TEST(access_group_shared)
{
    need_root();
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.mode = 0660;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    char path[128];
    shm_path(n, path, sizeof(path));
    T_TRUE(chown(path, 0, SHARE_GID) == 0); /* what `chgrp` does */
    char arg[128];
    /* A member of the group opens it read-write and publishes... */
    snprintf(arg, sizeof(arg), "%d %s", SHARE_GID, n);
    T_EQ_U64(t_wait_bounded(t_spawn("access_member_publish", arg), 10000), 0);
    check_message(ch, "from a member", 1);
    /* ...a user in no group or in another group gets nothing. */
    snprintf(arg, sizeof(arg), "- 0 %s", n);
    T_EQ_U64(t_wait_bounded(t_spawn("access_denied", arg), 10000), 0);
    snprintf(arg, sizeof(arg), "%d 0 %s", STRANGER_GID, n);
    T_EQ_U64(t_wait_bounded(t_spawn("access_denied", arg), 10000), 0);
    check_message(ch, "from a member", 1);
    T_OK(shmchan_latest_publish(ch, "owner again", 11, NULL));
    check_message(ch, "owner again", 2);
    shmchan_latest_close(ch);
}

/*
 * A reader with read permission only: it can read and wait, and nothing it
 * tries writes to the channel. Steps: read-write open refused; read-only
 * open, read, wait; publish refused; mprotect to writable refused; the
 * object cannot be opened for writing, truncated or removed.
 */
HELPER(access_reader_only)
{
    become("-");
    shmchan_latest *ch = NULL;
    int rc;
    if ((rc = expect(0, shmchan_latest_open(arg, NULL, &ch), SHMCHAN_EACCES))) {
        return rc;
    }
    shmchan_opts ro = t_opts(SHMCHAN_RDONLY);
    if ((rc = expect(1, shmchan_latest_open(arg, &ro, &ch), SHMCHAN_OK))) {
        return rc;
    }
    char buf[64];
    size_t len = 0;
    uint64_t seq = 0;
    if ((rc = expect(2, shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq), SHMCHAN_OK)) ||
        len != 6 || memcmp(buf, "public", 6) != 0) {
        return rc ? rc : 30;
    }
    if ((rc = expect(3, shmchan_latest_wait(ch, seq, 20, NULL), SHMCHAN_ETIMEDOUT)) ||
        (rc = expect(4, shmchan_latest_publish(ch, "evil", 4, NULL), SHMCHAN_ERDONLY))) {
        return rc;
    }
    shmchan_msg m;
    if ((rc = expect(5, shmchan_latest_view(ch, &m), SHMCHAN_OK))) {
        return rc;
    }
    long page = sysconf(_SC_PAGESIZE);
    void *pg = (void *)((uintptr_t)m.data & ~(uintptr_t)(page - 1));
    if (mprotect(pg, (size_t)page, PROT_READ | PROT_WRITE) == 0) {
        return 31; /* a read-only descriptor must not yield a writable mapping */
    }
    char path[128];
    snprintf(path, sizeof(path), "/dev/shm/shmchan.%s", arg);
    if (open(path, O_RDWR) >= 0 || errno != EACCES || truncate(path, 0) == 0 ||
        unlink(path) == 0) {
        return 32;
    }
    shmchan_latest_close(ch);
    return 0;
}

/* Writing through a read-only view faults: the kernel stops it. */
HELPER(access_reader_scribbles)
{
    become("-");
    shmchan_opts ro = t_opts(SHMCHAN_RDONLY);
    shmchan_latest *ch = NULL;
    shmchan_msg m;
    if (shmchan_latest_open(arg, &ro, &ch) != SHMCHAN_OK ||
        shmchan_latest_view(ch, &m) != SHMCHAN_OK) {
        return 1;
    }
    signal(SIGSEGV, SIG_DFL); /* the kernel's verdict, not a sanitizer's report */
    memset((void *)m.data, 'Z', 6);
    return 2;
}

TEST(access_read_only_other_user)
{
    need_root();
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.mode = 0644;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    T_OK(shmchan_latest_publish(ch, "public", 6, NULL));
    T_EQ_U64(t_wait_bounded(t_spawn("access_reader_only", n), 10000), 0);
    T_EQ_U64(t_wait_bounded(t_spawn("access_reader_scribbles", n), 10000), 128 + SIGSEGV);
    check_message(ch, "public", 1);
    T_OK(shmchan_latest_publish(ch, "still mine", 10, NULL));
    check_message(ch, "still mine", 2);
    shmchan_latest_close(ch);
}

/* The shmchan CLI next to the tests (build/tools/shmchan/shmchan), or NULL. */
static const char *
find_cli(void)
{
    static char path[4096];
    const char *env = getenv("SHMCHAN_CLI");
    if (env != NULL) {
        return access(env, X_OK) == 0 ? env : NULL;
    }
    snprintf(path, sizeof(path), "%s", t_self());
    char *slash = strrchr(path, '/');
    if (slash == NULL) {
        return NULL;
    }
    snprintf(slash, sizeof(path) - (size_t)(slash - path), "/../tools/shmchan/shmchan");
    return access(path, X_OK) == 0 ? path : NULL;
}

/* Run the CLI as OTHER_UID through setpriv; its status, output in out. */
static int
cli_as_other(const char *cli, const char *args, char *out, size_t cap)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd),
             "setpriv --reuid=%d --regid=%d --clear-groups %s %s 2>&1 </dev/null", (int)OTHER_UID,
             (int)OTHER_GID, cli, args);
    return t_sh(cmd, out, cap);
}

/* An administrator's view: the CLI run as another user gets what the bits say. */
TEST(access_cli_other_user)
{
    need_root();
    const char *cli = find_cli();
    if (cli == NULL) {
        T_SKIP("the shmchan CLI is not built here (SHMCHAN_BUILD_TOOLS=OFF); the other "
               "access tests cover the library");
    }
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    T_OK(shmchan_latest_publish(ch, "secret", 6, NULL));
    char out[1024], args[256];
    snprintf(args, sizeof(args), "get %s", n);
    T_EQ_U64(cli_as_other(cli, args, out, sizeof(out)), 1);
    T_TRUE(strstr(out, "SHMCHAN_EACCES") != NULL && strstr(out, "secret") == NULL);
    snprintf(args, sizeof(args), "put %s evil", n);
    T_EQ_U64(cli_as_other(cli, args, out, sizeof(out)), 1);
    T_TRUE(strstr(out, "SHMCHAN_EACCES") != NULL);
    snprintf(args, sizeof(args), "rm %s", n);
    T_EQ_U64(cli_as_other(cli, args, out, sizeof(out)), 1);
    check_message(ch, "secret", 1);

    /* Readable by others: they read it and still cannot write it. */
    char path[128];
    shm_path(n, path, sizeof(path));
    T_TRUE(chmod(path, 0644) == 0);
    snprintf(args, sizeof(args), "get %s", n);
    T_EQ_U64(cli_as_other(cli, args, out, sizeof(out)), 0);
    T_TRUE(strstr(out, "secret") != NULL);
    snprintf(args, sizeof(args), "put %s evil", n);
    T_EQ_U64(cli_as_other(cli, args, out, sizeof(out)), 1);
    T_TRUE(strstr(out, "SHMCHAN_EACCES") != NULL);
    check_message(ch, "secret", 1);
    shmchan_latest_close(ch);
}
