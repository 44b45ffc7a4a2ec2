/*
 * Issue 12, the filesystem: nothing an unprivileged user can put at a
 * channel's name (a FIFO, a socket, a symlink, a directory, an empty object
 * of their own) hangs, fools or is built into by the library; a reaper never
 * removes a channel whose creator is returning OK; a failed creator removes
 * only what it created, and a create racing it never reports ENOENT.
 *
 * Each test that needs its own /dev/shm mounts a tmpfs there in a private
 * mount namespace (root: CAP_SYS_ADMIN); without it they fail and say so.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "t.h"

#define OTHER_UID 65534

static void
private_shm(const char *size)
{
    char opts[64];
    if (unshare(CLONE_NEWNS) != 0) {
        t_fail(__FILE__, __LINE__, "unshare(CLONE_NEWNS): %s: these tests need root "
               "(CAP_SYS_ADMIN) for a private /dev/shm", strerror(errno));
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        t_fail(__FILE__, __LINE__, "making mounts private: %s", strerror(errno));
    }
    snprintf(opts, sizeof(opts), "size=%s,mode=1777", size);
    if (mount("shmchan-test", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) {
        t_fail(__FILE__, __LINE__, "mount tmpfs on /dev/shm: %s", strerror(errno));
    }
}

static void
shm_file(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "/dev/shm/shmchan.%s", name);
}

/* Every way in on a name that is not a regular file returns EUNSAFE at once
 * (the runner's timeout fails a call that hangs). */
static void
all_refused(const char *name, uint32_t file)
{
    shmchan_latest *ch = NULL;
    shmchan_queue *q = NULL;
    shmchan_opts ro = t_opts(file | SHMCHAN_RDONLY), rw = t_opts(file);
    shmchan_opts cr = t_opts(file | SHMCHAN_CREATE);
    shmchan_info info = {.struct_size = sizeof(info)};
    shmchan_peer peers[4];
    size_t n = 0;
    int removed = 1;
    T_ERR(shmchan_info_get(name, file, &info), SHMCHAN_EUNSAFE);
    T_ERR(shmchan_peers_get(name, file, peers, 4, &n), SHMCHAN_EUNSAFE);
    T_ERR(shmchan_reap(name, file, true, &removed), SHMCHAN_EUNSAFE);
    T_ERR(shmchan_reap(name, file, false, &removed), SHMCHAN_EUNSAFE);
    T_EQ_U64(removed, 0);
    T_ERR(shmchan_latest_open(name, &ro, &ch), SHMCHAN_EUNSAFE);
    T_ERR(shmchan_latest_open(name, &rw, &ch), SHMCHAN_EUNSAFE);
    T_ERR(shmchan_latest_open(name, &cr, &ch), SHMCHAN_EUNSAFE);
    T_ERR(shmchan_queue_open(name, &ro, &q), SHMCHAN_EUNSAFE);
    T_TRUE(ch == NULL && q == NULL);
}

static void
make_socket(const char *path)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    T_TRUE(strlen(path) < sizeof(a.sun_path));
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    T_TRUE(fd >= 0);
    T_TRUE(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    close(fd);
}

TEST(fs_fifo_socket_symlink_dir_refused)
{
    private_shm("1m");
    char p[128];
    shm_file("fifo", p, sizeof(p));
    T_TRUE(mkfifo(p, 0666) == 0);
    shm_file("sock", p, sizeof(p));
    make_socket(p);
    shm_file("link", p, sizeof(p));
    T_TRUE(symlink("/nonexistent/target", p) == 0);
    shm_file("dir", p, sizeof(p));
    T_TRUE(mkdir(p, 0755) == 0);
    shmchan_opts cr = t_opts(SHMCHAN_CREATE);
    shmchan_latest *good = NULL;
    T_OK(shmchan_latest_open("good", &cr, &good));
    const char *bad[] = {"fifo", "sock", "link", "dir"};
    for (size_t i = 0; i < 4; i++) {
        all_refused(bad[i], 0);
    }
    /* Listing names them all and goes on; the good one still opens. */
    shmchan_list *it = NULL;
    const char *name;
    int seen = 0;
    T_OK(shmchan_list_open(&it));
    while (shmchan_list_next(it, &name) == SHMCHAN_OK) {
        seen++;
    }
    shmchan_list_close(it);
    T_EQ_U64(seen, 5);
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_info_get("good", 0, &info));
    /* The same for file paths: a FIFO, and a symlink to a FIFO. */
    const char *f = t_path();
    T_TRUE(mkfifo(f, 0600) == 0);
    all_refused(f, SHMCHAN_FILE);
    char l[600];
    snprintf(l, sizeof(l), "%s.link", f);
    T_TRUE(symlink(f, l) == 0);
    all_refused(l, SHMCHAN_FILE);
    unlink(l);
    shmchan_latest_close(good);
}

/* File-backed create never follows a symlink into its target, even an empty
 * file, and leaves the target untouched. */
TEST(fs_file_create_refuses_symlink)
{
    const char *target = t_path();
    int fd = open(target, O_CREAT | O_EXCL | O_WRONLY, 0644);
    T_TRUE(fd >= 0);
    close(fd);
    char l[600];
    snprintf(l, sizeof(l), "%s.link", target);
    T_TRUE(symlink(target, l) == 0);
    shmchan_opts cr = t_opts(SHMCHAN_FILE | SHMCHAN_CREATE);
    shmchan_latest *ch = NULL;
    T_ERR(shmchan_latest_open(l, &cr, &ch), SHMCHAN_EUNSAFE);
    struct stat st;
    T_TRUE(stat(target, &st) == 0);
    T_EQ_U64(st.st_size, 0); /* nothing built into the target */
    T_EQ_U64(st.st_mode & 07777, 0644);
    unlink(l);
}

/* An empty object another uid made at the name (mode 0666, so that it could
 * read our messages) is never built into; our own leftover is, with the
 * requested mode. */
TEST(fs_squatter_object_refused)
{
    private_shm("1m");
    char p[128];
    shm_file("squat", p, sizeof(p));
    int fd = open(p, O_CREAT | O_EXCL | O_RDWR, 0666);
    T_TRUE(fd >= 0);
    T_TRUE(fchown(fd, OTHER_UID, OTHER_UID) == 0 && fchmod(fd, 0666) == 0);
    close(fd);
    shmchan_opts cr = t_opts(SHMCHAN_CREATE);
    shmchan_latest *ch = NULL;
    T_ERR(shmchan_latest_open("squat", &cr, &ch), SHMCHAN_EUNSAFE);
    T_TRUE(ch == NULL);
    struct stat st;
    T_TRUE(stat(p, &st) == 0);
    T_EQ_U64(st.st_size, 0);
    T_EQ_U64(st.st_uid, OTHER_UID);
    /* The same object zero-filled to look like a creator that died. */
    T_TRUE(truncate(p, 1 << 16) == 0);
    T_ERR(shmchan_latest_open("squat", &cr, &ch), SHMCHAN_EUNSAFE);
    /* Our own leftover (an empty object of ours, mode 0644) is rebuilt with
     * the mode asked for. */
    shm_file("mine", p, sizeof(p));
    fd = open(p, O_CREAT | O_EXCL | O_RDWR, 0644);
    T_TRUE(fd >= 0 && fchmod(fd, 0644) == 0);
    close(fd);
    cr.mode = 0600;
    T_OK(shmchan_latest_open("mine", &cr, &ch));
    T_TRUE(stat(p, &st) == 0);
    T_EQ_U64(st.st_mode & 07777, 0600);
    shmchan_latest_close(ch);
}

TEST(fs_mode_permission_bits_only)
{
    const char *name = t_name();
    shmchan_opts cr = t_opts(SHMCHAN_CREATE);
    shmchan_latest *ch = NULL;
    const uint32_t bad[] = {07777, 04600, 02600, 01600, 010600};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr.mode = bad[i];
        T_ERR(shmchan_latest_open(name, &cr, &ch), SHMCHAN_EINVAL);
        T_TRUE(ch == NULL);
    }
    shmchan_info info = {.struct_size = sizeof(info)};
    T_ERR(shmchan_info_get(name, 0, &info), SHMCHAN_ENOENT); /* nothing made */
    cr.mode = 0777;
    T_OK(shmchan_latest_open(name, &cr, &ch));
    T_OK(shmchan_info_get(name, 0, &info));
    T_EQ_U64(info.mode, 0777);
    shmchan_latest_close(ch);
}

/* ------------------------------------------------- creators and reapers */

/*
 * A creator's channel is its own (its name is), so once open() returns OK
 * the name must lead to it: publish i through the handle, open the name
 * again and read i. Exit status: 0, or 10 + what went wrong.
 */
static int
check_reachable(shmchan_latest *ch, const char *name, uint64_t i)
{
    uint64_t got = 0;
    size_t n = 0;
    shmchan_latest *again = NULL;
    if (shmchan_latest_publish(ch, &i, sizeof(i), NULL) != SHMCHAN_OK) {
        return 11;
    }
    int rc = shmchan_latest_open(name, NULL, &again);
    if (rc != SHMCHAN_OK) {
        fprintf(stderr, "iteration %llu: reopen: %s\n", (unsigned long long)i,
                shmchan_errname(rc));
        return 12;
    }
    rc = shmchan_latest_read(again, &got, sizeof(got), &n, NULL);
    shmchan_latest_close(again);
    if (rc != SHMCHAN_OK || n != sizeof(got) || got != i) {
        fprintf(stderr, "iteration %llu: reopened another channel\n", (unsigned long long)i);
        return 13;
    }
    return 0;
}

/* arg: "NAME COUNT": create, check, close, unlink, COUNT times. */
HELPER(fs_creator)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    uint32_t count = t_arg_u32(arg, 1);
    shmchan_opts cr = t_opts(SHMCHAN_CREATE);
    cr.max_msg = 64;
    for (uint64_t i = 1; i <= count; i++) {
        shmchan_latest *ch = NULL;
        int rc = shmchan_latest_open(name, &cr, &ch);
        if (rc != SHMCHAN_OK) {
            fprintf(stderr, "iteration %llu: create: %s\n", (unsigned long long)i,
                    shmchan_errname(rc));
            return 10;
        }
        rc = check_reachable(ch, name, i);
        shmchan_latest_close(ch);
        if (rc != 0) {
            return rc;
        }
        rc = shmchan_unlink(name, 0);
        if (rc != SHMCHAN_OK && rc != SHMCHAN_ENOENT) {
            return 14;
        }
    }
    return 0;
}

/* arg: "N": reap the names c0..c(N-1) until killed. */
HELPER(fs_reaper)
{
    uint32_t n = t_arg_u32(arg, 0);
    for (;;) {
        for (uint32_t i = 0; i < n; i++) {
            char name[32];
            int removed = 0;
            snprintf(name, sizeof(name), "c%u", (unsigned)i);
            (void)shmchan_reap(name, 0, false, &removed);
        }
    }
}

#define CREATORS 3
#define REAPERS 2
#define ROUNDS 1500

TEST(fs_reap_never_removes_a_channel_being_created)
{
    private_shm("64m");
    char arg[64];
    t_proc reapers[REAPERS], creators[CREATORS];
    snprintf(arg, sizeof(arg), "%d", CREATORS);
    for (int i = 0; i < REAPERS; i++) {
        reapers[i] = t_spawn("fs_reaper", arg);
    }
    for (int i = 0; i < CREATORS; i++) {
        snprintf(arg, sizeof(arg), "c%d %d", i, ROUNDS);
        creators[i] = t_spawn("fs_creator", arg);
    }
    int bad = 0;
    for (int i = 0; i < CREATORS; i++) {
        int st = t_wait_bounded(creators[i], 120000);
        if (st != 0) {
            fprintf(stderr, "creator %d: exit %d\n", i, st);
            bad++;
        }
    }
    for (int i = 0; i < REAPERS; i++) {
        t_kill(reapers[i]);
        (void)t_wait(reapers[i]);
    }
    T_EQ_U64(bad, 0);
}

/* arg: "NAME COUNT": create under a file size limit (RLIMIT_FSIZE) the
 * channel cannot fit in, so that every attempt fails after creating the name
 * (ENOSPC, from EFBIG), or meets the good creator's channel (EGEOMETRY). The
 * limit is this process's own: the good creator never runs short of space. */
HELPER(fs_failing_creator)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    uint32_t count = t_arg_u32(arg, 1);
    struct rlimit rl = {1 << 16, 1 << 16};
    signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) {
        return 12;
    }
    shmchan_opts cr = t_opts(SHMCHAN_CREATE);
    cr.max_msg = 1u << 20;
    for (uint32_t i = 0; i < count; i++) {
        shmchan_latest *ch = NULL;
        int rc = shmchan_latest_open(name, &cr, &ch);
        if (rc == SHMCHAN_OK) {
            shmchan_latest_close(ch);
            return 10; /* 4 MiB cannot fit */
        }
        if (rc != SHMCHAN_ENOSPC && rc != SHMCHAN_EGEOMETRY && rc != SHMCHAN_EINIT) {
            fprintf(stderr, "failing creator: %s\n", shmchan_errname(rc));
            return 11;
        }
    }
    return 0;
}

#define FAILERS 3

TEST(fs_failed_creator_removes_only_its_own)
{
    private_shm("64m");
    char arg[64];
    t_proc failers[FAILERS];
    snprintf(arg, sizeof(arg), "same 100000");
    for (int i = 0; i < FAILERS; i++) {
        failers[i] = t_spawn("fs_failing_creator", arg);
    }
    /* The good creator: every create returns OK (never ENOENT) and reaches
     * its own channel by name. */
    snprintf(arg, sizeof(arg), "same %d", ROUNDS);
    t_proc good = t_spawn("fs_creator", arg);
    int st = t_wait_bounded(good, 120000);
    for (int i = 0; i < FAILERS; i++) {
        t_kill(failers[i]);
        int fst = t_wait(failers[i]);
        T_TRUE(fst == t_killed_status() || fst == 0);
    }
    T_EQ_U64(st, 0);
}
