/*
 * Resource faults with real limits: a full or small /dev/shm (a tmpfs of a
 * few hundred KiB mounted over it in a private mount namespace, as in a
 * container), a full disk under a file-backed channel, no file descriptors
 * left, a creator that died between sizing the object and writing its
 * header, too many readers and truncation underneath (queues). Each gets its
 * documented error, leaves nothing half-made behind, and the channels that
 * were there stay usable.
 *
 * The namespace and mounts need root (CAP_SYS_ADMIN): without it the tests
 * fail and say so; they never pass without having run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "t.h"

#define SMALL_FS "size=256k,mode=1777"

/* This test process (and the helpers it starts) get their own mounts. */
static void
private_mounts(void)
{
    if (unshare(CLONE_NEWNS) != 0) {
        t_fail(__FILE__, __LINE__, "unshare(CLONE_NEWNS): %s: these tests need root "
               "(CAP_SYS_ADMIN) to mount a small tmpfs", strerror(errno));
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        t_fail(__FILE__, __LINE__, "making mounts private: %s", strerror(errno));
    }
}

static void
mount_small_tmpfs(const char *where)
{
    if (mount("shmchan-test", where, "tmpfs", MS_NOSUID | MS_NODEV, SMALL_FS) != 0) {
        t_fail(__FILE__, __LINE__, "mount tmpfs on %s: %s", where, strerror(errno));
    }
}

/* How many entries of dir begin with prefix. */
static int
count_entries(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    T_TRUE(d != NULL);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    }
    closedir(d);
    return n;
}

static bool
exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static shmchan_latest *
create_latest(const char *name, uint32_t flags, uint64_t max_msg, int *rc_out)
{
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_EXCL | flags);
    o.max_msg = max_msg;
    shmchan_latest *ch = NULL;
    *rc_out = shmchan_latest_open(name, &o, &ch);
    return ch;
}

static void
roundtrip(shmchan_latest *ch, size_t len, char fill)
{
    static char msg[1 << 17], got[1 << 17];
    T_TRUE(len <= sizeof(msg));
    memset(msg, fill, len);
    size_t n = 0;
    T_OK(shmchan_latest_publish(ch, msg, len, NULL));
    T_OK(shmchan_latest_read(ch, got, sizeof(got), &n, NULL));
    T_EQ_U64(n, len);
    T_MEMEQ(got, msg, len);
}

/* Fill the file system holding path with a file until it is full. */
static void
fill_up(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    T_TRUE(fd >= 0);
    static char block[4096];
    memset(block, 'f', sizeof(block));
    while (write(fd, block, sizeof(block)) > 0) {
    }
    T_TRUE(errno == ENOSPC);
    close(fd);
}

TEST(faults_shm_full_at_creation)
{
    private_mounts();
    mount_small_tmpfs("/dev/shm");
    int rc;
    shmchan_latest *a = create_latest("fault-a", 0, 1024, &rc);
    T_OK(rc);
    roundtrip(a, 1000, 'a');
    /* 4 buffers of 1 MiB cannot fit in 256 KiB. */
    shmchan_latest *b = create_latest("fault-b", 0, 1u << 20, &rc);
    T_ERR(rc, SHMCHAN_ENOSPC);
    T_TRUE(b == NULL);
    T_EQ_U64(shmchan_last_oserror(), ENOSPC);
    T_TRUE(!exists("/dev/shm/shmchan.fault-b")); /* nothing half-made left */
    T_TRUE(!exists("/dev/shm/shmchan.fault-b..wait"));
    T_EQ_U64(count_entries("/dev/shm", "shmchan."), 2); /* fault-a and its side object */
    roundtrip(a, 1024, 'b'); /* the channel that was there still works */
    shmchan_latest *c = create_latest("fault-c", 0, 1024, &rc);
    T_OK(rc); /* the space the failed one took was given back */
    roundtrip(c, 10, 'c');
    shmchan_latest_close(c);
    shmchan_latest_close(a);
}

HELPER(faults_read_after_fill)
{
    shmchan_latest *ch = NULL;
    char got[1 << 15];
    size_t n = 0;
    if (shmchan_latest_open(arg, NULL, &ch) != SHMCHAN_OK ||
        shmchan_latest_read(ch, got, sizeof(got), &n, NULL) != SHMCHAN_OK) {
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (got[i] != 'z') {
            return 2;
        }
    }
    shmchan_latest_close(ch);
    return n == sizeof(got) ? 0 : 3;
}

TEST(faults_small_shm_checked_before_mapping)
{
    private_mounts();
    mount_small_tmpfs("/dev/shm");
    /* Room for the object's size, not for its pages: sparse sizing would
     * succeed and the first write to a page would raise SIGBUS later. */
    int fd = open("/dev/shm/filler", O_WRONLY | O_CREAT, 0600);
    static char block[200 * 1024];
    memset(block, 'f', sizeof(block));
    T_TRUE(fd >= 0 && write(fd, block, sizeof(block)) == (ssize_t)sizeof(block));
    close(fd);
    int rc;
    shmchan_latest *ch = create_latest("fault-d", 0, 32 * 1024, &rc);
    T_ERR(rc, SHMCHAN_ENOSPC);
    T_TRUE(ch == NULL && !exists("/dev/shm/shmchan.fault-d"));
    T_TRUE(unlink("/dev/shm/filler") == 0);

    /* Created while there is room, its pages are its own: filling the file
     * system afterwards cannot make a later write fault. */
    ch = create_latest("fault-d", 0, 32 * 1024, &rc);
    T_OK(rc);
    fill_up("/dev/shm/filler");
    for (int i = 0; i < 8; i++) { /* every buffer, at full size */
        roundtrip(ch, 32 * 1024, (char)('k' + i));
    }
    roundtrip(ch, 32 * 1024, 'z');
    T_EQ_U64(t_wait_bounded(t_spawn("faults_read_after_fill", "fault-d"), 10000), 0);
    shmchan_latest_close(ch);
}

TEST(faults_disk_full_file_channel)
{
    private_mounts();
    char dir[] = "/tmp/shmchan-full-XXXXXX";
    T_TRUE(mkdtemp(dir) != NULL);
    mount_small_tmpfs(dir);
    char big[128], small[128], other[128];
    snprintf(big, sizeof(big), "%s/big.chan", dir);
    snprintf(small, sizeof(small), "%s/small.chan", dir);
    snprintf(other, sizeof(other), "%s/other", dir);
    int fd = open(other, O_WRONLY | O_CREAT, 0600);
    T_TRUE(fd >= 0 && write(fd, "keep", 4) == 4);
    close(fd);
    int rc;
    shmchan_latest *s = create_latest(small, SHMCHAN_FILE, 1024, &rc);
    T_OK(rc);
    shmchan_latest *b = create_latest(big, SHMCHAN_FILE, 1u << 20, &rc);
    T_ERR(rc, SHMCHAN_ENOSPC);
    T_TRUE(b == NULL && !exists(big)); /* the half-made file is removed */
    T_TRUE(exists(other));
    roundtrip(s, 1024, 's');
    shmchan_latest_close(s);
    T_TRUE(unlink(small) == 0 && unlink(other) == 0);
    T_TRUE(umount(dir) == 0 && rmdir(dir) == 0);
}

TEST(faults_no_file_descriptors)
{
    const char *n = t_name(), *m = t_name();
    int rc;
    shmchan_latest *ch = create_latest(n, 0, 64, &rc);
    T_OK(rc);
    struct rlimit old, tiny;
    T_TRUE(getrlimit(RLIMIT_NOFILE, &old) == 0);
    int lowest = dup(0); /* the lowest free descriptor: make it the limit */
    T_TRUE(lowest >= 0);
    close(lowest);
    tiny.rlim_cur = (rlim_t)lowest;
    tiny.rlim_max = old.rlim_max;
    T_TRUE(setrlimit(RLIMIT_NOFILE, &tiny) == 0);
    shmchan_latest *other = NULL, *fresh = NULL;
    int rc_open = shmchan_latest_open(n, NULL, &other);
    int err = shmchan_last_oserror();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    int rc_create = shmchan_latest_open(m, &o, &fresh);
    roundtrip(ch, 64, 'x'); /* open handles keep working */
    T_TRUE(setrlimit(RLIMIT_NOFILE, &old) == 0);
    T_ERR(rc_open, SHMCHAN_ELIMIT);
    T_EQ_U64(err, EMFILE);
    T_ERR(rc_create, SHMCHAN_ELIMIT);
    T_TRUE(other == NULL && fresh == NULL);
    char path[128];
    snprintf(path, sizeof(path), "/dev/shm/shmchan.%s", m);
    T_TRUE(!exists(path)); /* nothing created */
    T_OK(shmchan_latest_open(n, NULL, &other)); /* with descriptors again: fine */
    roundtrip(other, 64, 'y');
    shmchan_latest_close(other);
    shmchan_latest_close(ch);
}

/* What a creator killed between sizing the object and writing its header
 * leaves: a zero-filled object. Found by the crash-chaos driver. */
TEST(faults_creator_died_before_header)
{
    const char *n = t_name();
    char shm[64];
    snprintf(shm, sizeof(shm), "/shmchan.%s", n);
    int fd = shm_open(shm, O_RDWR | O_CREAT | O_EXCL, 0600);
    T_TRUE(fd >= 0 && ftruncate(fd, 64 * 1024) == 0);
    close(fd);
    shmchan_latest *ch = NULL;
    T_ERR(shmchan_latest_open(n, NULL, &ch), SHMCHAN_EINIT); /* half-made, not foreign */
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.max_msg = 100;
    T_OK(shmchan_latest_open(n, &o, &ch)); /* a creating opener rebuilds it */
    roundtrip(ch, 100, 'r');
    shmchan_latest_close(ch);

    /* A file is never overwritten unless it carries our magic: zeros might be
     * somebody's data. */
    const char *p = t_path();
    fd = open(p, O_RDWR | O_CREAT | O_EXCL, 0600);
    T_TRUE(fd >= 0 && ftruncate(fd, 64 * 1024) == 0);
    close(fd);
    o.flags = SHMCHAN_CREATE | SHMCHAN_FILE;
    T_ERR(shmchan_latest_open(p, &o, &ch), SHMCHAN_EBADMAGIC);
    struct stat st;
    T_TRUE(stat(p, &st) == 0 && st.st_size == 64 * 1024);
}
