/*
 * Read-only readers that sleep and have a readiness handle (issue 13): the
 * side wait object "<name>..wait" (src/core/side.h). A reader of another
 * user, granted only the group's read bit, must sleep without polling, be
 * woken by a publish, get an fd that epoll reports, and still be unable to
 * write the channel. The access tests need root (as test_posix_access.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "t.h"

#define OTHER_UID ((uid_t)t_unused_id(0))
#define OTHER_GID ((gid_t)t_unused_id(0))
#define SHARE_GID t_unused_id(1)

/* The side object's words (side.h: line 1 holds the armed count and the
 * scan bound, the armed words follow on line 2). */
#define SIDE_ARMED 64
#define SIDE_USED 68
#define SIDE_SLOTS 128
#define SIDE_SIZE (128 + 4 * 64)
#define WAIT_SLICE_MS 1000 /* latest.c's WAITER_RECHECK_NS: a wake beats it */

static void
side_path(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "/dev/shm/shmchan.%s..wait", name);
}

static bool
exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* The side object mapped read-write, as a peer that may write it sees it. */
static volatile uint32_t *
side_map(const char *name)
{
    char p[128];
    side_path(name, p, sizeof(p));
    int fd = open(p, O_RDWR);
    T_TRUE(fd >= 0);
    void *m = mmap(NULL, SIDE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    T_TRUE(m != MAP_FAILED);
    return m;
}

static uint64_t
now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static long
switches(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_nvcsw + u.ru_nivcsw;
}

static int
say(int fd, char c)
{
    return write(fd, &c, 1) == 1 ? 0 : 40;
}

/*
 * As another user in the channel's group: read-only open; (1) a 1.5 s wait
 * with nothing coming sleeps (a 1 ms poller would switch ~1500 times); (2) a
 * publish wakes it before its slice would have; (3) the readiness fd works in
 * epoll. It tells the test where it is through a pipe (fd in arg).
 */
HELPER(rdonly_group_reader)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    int out = (int)t_arg_u32(arg, 1);
    gid_t g[1] = {(gid_t)SHARE_GID};
    if (setgroups(1, g) != 0 || setgid(OTHER_GID) != 0 || setuid(OTHER_UID) != 0) {
        return 90;
    }
    shmchan_latest *ch = NULL;
    shmchan_opts ro = t_opts(SHMCHAN_RDONLY);
    char buf[64];
    size_t len = 0;
    uint64_t seq = 0;
    if (shmchan_latest_open(name, NULL, &ch) != SHMCHAN_EACCES ||
        shmchan_latest_open(name, &ro, &ch) != SHMCHAN_OK ||
        shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq) != SHMCHAN_OK || seq != 1) {
        return 10;
    }
    long before = switches();
    if (shmchan_latest_wait(ch, seq, 1500, NULL) != SHMCHAN_ETIMEDOUT) {
        return 11;
    }
    long slept = switches() - before;
    if (slept > 100) {
        fprintf(stderr, "rdonly: %ld context switches while idle: polling\n", slept);
        return 12;
    }
    if (say(out, 'a')) {
        return 40;
    }
    uint64_t t0 = now_ms();
    if (shmchan_latest_wait(ch, seq, 10000, &seq) != SHMCHAN_OK || seq != 2) {
        return 13;
    }
    uint64_t took = now_ms() - t0;
    if (took >= WAIT_SLICE_MS) {
        fprintf(stderr, "rdonly: woken after %llu ms, not by the publish\n",
                (unsigned long long)took);
        return 14;
    }
    int fd = -1;
    if (shmchan_latest_notify(ch, &fd) != SHMCHAN_OK || shmchan_latest_arm(ch, seq) != SHMCHAN_OK) {
        return 15;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN}, got;
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        return 16;
    }
    if (epoll_wait(ep, &got, 1, 0) != 0) {
        return 17; /* nothing new: not ready */
    }
    if (say(out, 'b') || epoll_wait(ep, &got, 1, 10000) != 1 ||
        shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq) != SHMCHAN_OK || seq != 3 ||
        len != 5 || memcmp(buf, "epoll", 5) != 0) {
        return 18;
    }
    if (shmchan_latest_publish(ch, "evil", 4, NULL) != SHMCHAN_ERDONLY) {
        return 19;
    }
    close(ep);
    shmchan_latest_close(ch);
    return 0;
}

static void
await_byte(int fd, char want)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    T_TRUE(poll(&p, 1, 10000) == 1);
    char c = 0;
    T_TRUE(read(fd, &c, 1) == 1);
    T_TRUE(c == want);
}

/* Until the reader has armed a slot in the side object (it sleeps). */
static void
await_armed(volatile uint32_t *side)
{
    for (int i = 0; i < 10000 && side[SIDE_ARMED / 4] == 0; i++) {
        usleep(1000);
    }
    T_TRUE(side[SIDE_ARMED / 4] != 0);
}

TEST(rdonly_group_reader_sleeps_wakes_and_polls_ready)
{
    if (geteuid() != 0) {
        t_fail(__FILE__, __LINE__, "needs root to run the reader as another user");
    }
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.mode = 0640;
    shmchan_latest *made = NULL, *w = NULL;
    T_OK(shmchan_latest_open(n, &o, &made));
    char path[128], sp[128];
    snprintf(path, sizeof(path), "/dev/shm/shmchan.%s", n);
    side_path(n, sp, sizeof(sp));
    struct stat st;
    T_TRUE(stat(sp, &st) == 0 && (st.st_mode & 0777) == 0660);
    T_TRUE(chown(path, 0, SHARE_GID) == 0); /* what `chgrp` does */
    T_OK(shmchan_latest_open(n, NULL, &w)); /* the owner's open: the side follows */
    T_TRUE(stat(sp, &st) == 0 && st.st_gid == (gid_t)SHARE_GID);
    T_OK(shmchan_latest_publish(w, "first", 5, NULL));
    int pp[2];
    T_TRUE(pipe(pp) == 0);
    char arg[96];
    snprintf(arg, sizeof(arg), "%s %d", n, pp[1]);
    t_proc r = t_spawn("rdonly_group_reader", arg);
    close(pp[1]);
    volatile uint32_t *side = side_map(n);
    await_byte(pp[0], 'a');
    await_armed(side);
    T_OK(shmchan_latest_publish(w, "wake", 4, NULL));
    await_byte(pp[0], 'b');
    await_armed(side);
    T_OK(shmchan_latest_publish(w, "epoll", 5, NULL));
    T_EQ_U64(t_wait_bounded(r, 20000), 0);
    close(pp[0]);
    munmap((void *)side, SIDE_SIZE);
    shmchan_latest_close(w);
    shmchan_latest_close(made);
    T_OK(shmchan_unlink(n, 0));
    T_TRUE(!exists(path) && !exists(sp));
}

/*
 * A peer that may write the side object (any reader) puts anything in it:
 * writers neither fail nor block, read-only waiters still get their
 * messages (a forged count costs at most a slice), and one whose open finds
 * a forged header polls instead.
 */
TEST(rdonly_hostile_side_object)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.mode = 0644;
    shmchan_latest *w = NULL, *r = NULL, *late = NULL;
    T_OK(shmchan_latest_open(n, &o, &w));
    shmchan_opts ro = t_opts(SHMCHAN_RDONLY);
    T_OK(shmchan_latest_open(n, &ro, &r));
    int fd = -1;
    T_OK(shmchan_latest_notify(r, &fd));
    volatile uint32_t *side = side_map(n);
    uint64_t seq = 0;
    for (int round = 0; round < 2000; round++) {
        side[SIDE_ARMED / 4] = round % 2 ? 0xFFFFFFFFu : 0;
        side[SIDE_USED / 4] = 0xFFFFFFFFu;
        for (int i = 0; i < 64; i++) {
            side[SIDE_SLOTS / 4 + i] = round % 3 == 2 ? 0xFFFFFFFFu : 1u;
        }
        T_OK(shmchan_latest_publish(w, "y", 1, &seq));
    }
    T_OK(shmchan_latest_arm(r, 0));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    T_TRUE(poll(&p, 1, 5000) == 1); /* news at arming: ready at once */
    uint64_t got = 0;
    T_OK(shmchan_latest_wait(r, seq - 1, 5000, &got));
    T_EQ_U64(got, seq);
    memset((void *)side, 0xA5, 64); /* magic and channel id forged */
    T_OK(shmchan_latest_open(n, &ro, &late));
    T_EQ_U64(shmchan_latest_notify(late, &fd), SHMCHAN_ERDONLY); /* no side: it polls */
    T_OK(shmchan_latest_publish(w, "z", 1, &seq));
    T_OK(shmchan_latest_wait(late, seq - 1, 5000, &got));
    T_EQ_U64(got, seq);
    shmchan_latest_close(late);
    shmchan_latest_close(r);
    munmap((void *)side, SIDE_SIZE);
    shmchan_latest_close(w);
    T_OK(shmchan_unlink(n, 0));
}

/* The side object goes with its channel: unlink, reap, the failed open of a
 * gone channel's leftover; file-backed channels have theirs next to them. */
TEST(rdonly_side_object_removed_with_channel)
{
    const char *n = t_name();
    char path[128], sp[128];
    snprintf(path, sizeof(path), "/dev/shm/shmchan.%s", n);
    side_path(n, sp, sizeof(sp));
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    T_TRUE(exists(sp));
    shmchan_latest_close(ch);
    int removed = 0;
    T_OK(shmchan_reap(n, 0, false, &removed));
    T_EQ_U64(removed, 1);
    T_TRUE(!exists(path) && !exists(sp));
    T_OK(shmchan_latest_open(n, &o, &ch));
    shmchan_latest_close(ch);
    T_OK(shmchan_unlink(n, 0));
    T_TRUE(!exists(path) && !exists(sp));
    const char *fp = t_path();
    char fsp[600];
    snprintf(fsp, sizeof(fsp), "%s..wait", fp);
    o.flags = SHMCHAN_CREATE | SHMCHAN_FILE;
    T_OK(shmchan_latest_open(fp, &o, &ch));
    T_TRUE(exists(fsp));
    shmchan_latest_close(ch);
    T_OK(shmchan_unlink(fp, SHMCHAN_FILE));
    T_TRUE(!exists(fp) && !exists(fsp));
}
