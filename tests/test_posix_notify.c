/*
 * Readiness handles (issue 13): level semantics at arming, one signal per
 * arming, races between a writer publishing and a reader draining and
 * re-arming, dead and stopped waiters, a hostile peer writing the table,
 * nothing left behind, no CPU while idle.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/layout.h"
#include "t.h"
#include "test_queue_util.h"

shmchan_latest *t_latest_create(const char *name, uint64_t max_msg);
shmchan_latest *t_latest_join(const char *name);
void t_forbid_syscalls(void);

/* Offsets the attacker needs, from layout.h. */
#define OFF_CHAN_ID offsetof(shmchan__hdr, chan_id)
#define NOTIFY_SLOTS SHMCHAN__NOTIFY_SLOTS
#define LATEST_NF_ARMED (SHMCHAN__HDR_SIZE + offsetof(shmchan__latest_ctl, nf_armed))
#define LATEST_NF_USED (SHMCHAN__HDR_SIZE + offsetof(shmchan__latest_ctl, nf_used))
#define LATEST_NOTIFY (SHMCHAN__HDR_SIZE + offsetof(shmchan__latest_ctl, notify))

static bool
ready_within(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* Datagrams waiting on the readiness socket (taken away). */
static int
pending_signals(int fd)
{
    char b[8];
    int n = 0;
    while (recv(fd, b, sizeof(b), MSG_DONTWAIT) >= 0) {
        n++;
    }
    return n;
}

TEST(notify_latest_level_and_once_per_arming)
{
    const char *n = t_name();
    shmchan_latest *w = t_latest_create(n, 64), *r = t_latest_join(n);
    int fd = -1;
    T_OK(shmchan_latest_notify(r, &fd));
    T_TRUE(fd >= 0);
    T_TRUE(!ready_within(fd, 0)); /* nothing published yet */
    uint64_t s = 0;
    T_OK(shmchan_latest_publish(w, "one", 3, &s));
    T_TRUE(ready_within(fd, 1000));
    /* Re-arming while a newer message is there: ready at once. */
    T_OK(shmchan_latest_arm(r, 0));
    T_TRUE(ready_within(fd, 0));
    T_OK(shmchan_latest_arm(r, s));
    T_TRUE(!ready_within(fd, 0));
    /* Many publishes, one signal. */
    for (int i = 0; i < 1000; i++) {
        T_OK(shmchan_latest_publish(w, "more", 4, NULL));
    }
    T_TRUE(ready_within(fd, 1000));
    T_EQ_U64(pending_signals(fd), 1);
    shmchan_latest_close(r);
    shmchan_latest_close(w);
}

TEST(notify_queue_subscriber_and_worker)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 1 << 16, 256, SHMCHAN_POLICY_OVERWRITE);
    shmchan_queue *sub = tq_open(n, SHMCHAN_SUBSCRIBE), *wk = tq_open(n, SHMCHAN_WORKER);
    int fs = -1, fw = -1, fx = -1;
    T_ERR(shmchan_queue_notify(w, &fx), SHMCHAN_EKIND);
    T_OK(shmchan_queue_notify(sub, &fs));
    T_OK(shmchan_queue_notify(wk, &fw));
    T_TRUE(fs != fw && !ready_within(fs, 0) && !ready_within(fw, 0));
    for (int i = 0; i < 100; i++) {
        T_OK(shmchan_queue_send(w, "hello", 5, 0));
    }
    T_TRUE(ready_within(fs, 1000) && ready_within(fw, 1000));
    T_EQ_U64(pending_signals(fs), 1);
    char buf[256];
    size_t len = 0;
    T_OK(shmchan_queue_recv(sub, buf, sizeof(buf), 0, &len, NULL));
    T_OK(shmchan_queue_arm(sub)); /* 99 left: ready at once */
    T_TRUE(ready_within(fs, 0));
    int got = 1;
    while (shmchan_queue_recv(sub, buf, sizeof(buf), 0, &len, NULL) == SHMCHAN_OK) {
        got++;
    }
    T_EQ_U64(got, 100);
    T_OK(shmchan_queue_arm(sub));
    T_TRUE(!ready_within(fs, 0));
    T_OK(shmchan_queue_send(w, "again", 5, 0));
    T_TRUE(ready_within(fs, 1000));
    shmchan_queue_close(wk);
    shmchan_queue_close(sub);
    shmchan_queue_close(w);
}

/* ------------------------------------------------------------ races */

/* Writer: publish 1..count as fast as it can (latest, its text is the seq). */
HELPER(notify_latest_writer)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    uint64_t count = t_arg_u32(arg, 1);
    shmchan_latest *w = NULL;
    if (shmchan_latest_open(name, NULL, &w) != SHMCHAN_OK) {
        return 3;
    }
    for (uint64_t i = 1; i <= count; i++) {
        if (shmchan_latest_publish(w, &i, sizeof(i), NULL) != SHMCHAN_OK) {
            return 1;
        }
    }
    shmchan_latest_close(w);
    return 0;
}

/* Reader in an epoll loop until it has seen seq `last`; 0 when it did, 1 if
 * the handle stayed silent for 10 s with news pending (a missed wake-up). */
static int
latest_epoll_reader(shmchan_latest *r, uint64_t last, uint64_t *rounds_out)
{
    int fd = -1;
    if (shmchan_latest_notify(r, &fd) != SHMCHAN_OK) {
        return 3;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    uint64_t seen = 0, rounds = 0;
    while (seen < last) {
        if (epoll_wait(ep, &ev, 1, 10000) != 1) {
            close(ep);
            return 1;
        }
        uint64_t v = 0, s = 0;
        size_t len = 0;
        if (shmchan_latest_read(r, &v, sizeof(v), &len, &s) == SHMCHAN_OK) {
            if (s < seen || v != s) {
                close(ep);
                return 2; /* went backwards, or a torn message */
            }
            seen = s;
        }
        (void)shmchan_latest_arm(r, seen);
        rounds++;
    }
    close(ep);
    *rounds_out = rounds;
    return 0;
}

TEST(notify_latest_race_with_writer_process)
{
    const char *n = t_name();
    shmchan_latest *r = t_latest_create(n, 64);
    uint64_t total = (uint64_t)(tq_seconds() * 300000);
    char arg[96];
    snprintf(arg, sizeof(arg), "%s %llu", n, (unsigned long long)total);
    t_proc p = t_spawn("notify_latest_writer", arg);
    uint64_t rounds = 0;
    int rc = latest_epoll_reader(r, total, &rounds);
    T_EQ_U64(t_wait(p), 0);
    T_EQ_U64(rc, 0);
    printf("  %llu messages, %llu drain/arm rounds\n", (unsigned long long)total,
           (unsigned long long)rounds);
    shmchan_latest_close(r);
}

/* Queue writer: count messages whose payload is their number. */
HELPER(notify_queue_writer)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    uint64_t count = t_arg_u32(arg, 1);
    shmchan_queue *w = NULL;
    shmchan_opts o = t_opts(0);
    if (shmchan_queue_open(name, &o, &w) != SHMCHAN_OK) {
        return 3;
    }
    for (uint64_t i = 1; i <= count; i++) {
        if (shmchan_queue_send(w, &i, sizeof(i), 10000) != SHMCHAN_OK) {
            return 1;
        }
    }
    shmchan_queue_close(w);
    return 0;
}

/* Subscriber in an epoll loop: every message once, in order. */
static int
queue_epoll_reader(shmchan_queue *q, uint64_t count, uint64_t *rounds_out)
{
    int fd = -1;
    if (shmchan_queue_notify(q, &fd) != SHMCHAN_OK) {
        return 3;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    uint64_t next = 1, rounds = 0;
    int rc = 0;
    while (next <= count && rc == 0) {
        if (epoll_wait(ep, &ev, 1, 10000) != 1) {
            rc = 1;
            break;
        }
        uint64_t v = 0;
        size_t len = 0;
        int r;
        while ((r = shmchan_queue_recv(q, &v, sizeof(v), 0, &len, NULL)) == SHMCHAN_OK) {
            if (v != next) {
                rc = 2;
                break;
            }
            next++;
        }
        if (rc == 0 && r != SHMCHAN_EAGAIN) {
            rc = 4;
        }
        (void)shmchan_queue_arm(q);
        rounds++;
    }
    close(ep);
    *rounds_out = rounds;
    return rc;
}

TEST(notify_queue_race_with_writer_process)
{
    const char *n = t_name();
    shmchan_queue *own = tq_create(n, 1 << 12, 64, SHMCHAN_POLICY_BLOCK);
    shmchan_queue *q = tq_open(n, SHMCHAN_SUBSCRIBE);
    uint64_t total = (uint64_t)(tq_seconds() * 300000);
    char arg[96];
    snprintf(arg, sizeof(arg), "%s %llu", n, (unsigned long long)total);
    t_proc p = t_spawn("notify_queue_writer", arg);
    uint64_t rounds = 0;
    int rc = queue_epoll_reader(q, total, &rounds);
    T_EQ_U64(t_wait(p), 0);
    T_EQ_U64(rc, 0);
    printf("  %llu messages, %llu drain/arm rounds\n", (unsigned long long)total,
           (unsigned long long)rounds);
    shmchan_queue_close(q);
    shmchan_queue_close(own);
}

/*
 * Ping-pong: the writer sends message i and waits for the reader's
 * acknowledgement on a second channel before sending i+1, so every message
 * races the reader's re-arming (the reader acknowledges, then arms, while
 * the writer already publishes) and a single missed wake-up hangs the round:
 * the reader's 10 s epoll timeout then fails the test.
 */
HELPER(notify_pingpong_writer)
{
    char name[64], ack[64];
    t_arg_word(arg, 0, name, sizeof(name));
    t_arg_word(arg, 1, ack, sizeof(ack));
    uint64_t count = t_arg_u32(arg, 2);
    bool queue = t_arg_u32(arg, 3) != 0;
    shmchan_latest *lw = NULL, *a = NULL;
    shmchan_queue *qw = NULL;
    shmchan_opts o = t_opts(0);
    int rc = queue ? shmchan_queue_open(name, &o, &qw) : shmchan_latest_open(name, NULL, &lw);
    if (rc != SHMCHAN_OK || shmchan_latest_open(ack, NULL, &a) != SHMCHAN_OK) {
        return 3;
    }
    for (uint64_t i = 1; i <= count; i++) {
        rc = queue ? shmchan_queue_send(qw, &i, sizeof(i), 10000)
                   : shmchan_latest_publish(lw, &i, sizeof(i), NULL);
        uint64_t got = 0;
        while (rc == SHMCHAN_OK && got < i) {
            rc = shmchan_latest_wait(a, got, 10000, &got);
        }
        if (rc != SHMCHAN_OK) {
            return 1;
        }
    }
    shmchan_latest_close(a);
    shmchan_latest_close(lw);
    shmchan_queue_close(qw);
    return 0;
}

static int
pingpong_reader(shmchan_latest *lr, shmchan_queue *qr, shmchan_latest *ack, uint64_t count)
{
    int fd = -1;
    int rc = lr != NULL ? shmchan_latest_notify(lr, &fd) : shmchan_queue_notify(qr, &fd);
    if (rc != SHMCHAN_OK) {
        return 3;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    uint64_t seen = 0, spurious = 0;
    while (seen < count) {
        if (epoll_wait(ep, &ev, 1, 10000) != 1) {
            fprintf(stderr, "no wake-up for message %llu\n", (unsigned long long)seen + 1);
            close(ep);
            return 1; /* missed */
        }
        uint64_t v = 0, s = 0;
        size_t len = 0;
        if (lr != NULL) {
            rc = shmchan_latest_read(lr, &v, sizeof(v), &len, &s);
        } else {
            rc = shmchan_queue_recv(qr, &v, sizeof(v), 0, &len, NULL);
        }
        if (rc == SHMCHAN_OK && v == seen && lr != NULL) {
            spurious++; /* ready for a message it had read already */
        } else if (rc == SHMCHAN_OK) {
            if (v != seen + 1) {
                fprintf(stderr, "got %llu after %llu\n", (unsigned long long)v,
                        (unsigned long long)seen);
                close(ep);
                return 2;
            }
            seen = v;
            (void)shmchan_latest_publish(ack, &v, sizeof(v), NULL);
        } else if (rc == SHMCHAN_EAGAIN) {
            spurious++;
        } else {
            close(ep);
            return 4;
        }
        rc = lr != NULL ? shmchan_latest_arm(lr, seen) : shmchan_queue_arm(qr);
        if (rc != SHMCHAN_OK) {
            close(ep);
            return 5;
        }
    }
    close(ep);
    printf("  %llu spurious wake-ups\n", (unsigned long long)spurious);
    return 0;
}

static void
pingpong(bool queue)
{
    const char *n = t_name(), *an = t_name();
    shmchan_latest *lr = NULL, *ack = t_latest_create(an, 64);
    shmchan_queue *own = NULL, *qr = NULL;
    if (queue) {
        own = tq_create(n, 1 << 12, 64, SHMCHAN_POLICY_BLOCK);
        qr = tq_open(n, SHMCHAN_SUBSCRIBE);
    } else {
        lr = t_latest_create(n, 64);
    }
    uint64_t count = (uint64_t)(tq_seconds() * 30000);
    char arg[160];
    snprintf(arg, sizeof(arg), "%s %s %llu %d", n, an, (unsigned long long)count, queue);
    uint64_t t0 = t_now_ns();
    t_proc p = t_spawn("notify_pingpong_writer", arg);
    int rc = pingpong_reader(lr, qr, ack, count);
    if (rc != 0) {
        t_kill(p);
    }
    T_EQ_U64(rc, 0);
    T_EQ_U64(t_wait(p), 0);
    printf("  %llu ping-pong rounds, each racing a re-arm: %.1f us per round\n",
           (unsigned long long)count, (double)(t_now_ns() - t0) / 1e3 / (double)count);
    shmchan_latest_close(lr);
    shmchan_queue_close(qr);
    shmchan_queue_close(own);
    shmchan_latest_close(ack);
}

TEST(notify_latest_pingpong_races_rearm)
{
    pingpong(false);
}

TEST(notify_queue_pingpong_races_rearm)
{
    pingpong(true);
}

/* The same with a writer thread, for ThreadSanitizer to watch. */
typedef struct race_arg {
    const char *name;
    uint64_t count;
    int rc;
} race_arg;

static void *
latest_writer_thread(void *p)
{
    race_arg *a = p;
    shmchan_latest *w = t_latest_join(a->name);
    for (uint64_t i = 1; i <= a->count && a->rc == 0; i++) {
        a->rc = shmchan_latest_publish(w, &i, sizeof(i), NULL);
    }
    shmchan_latest_close(w);
    return NULL;
}

static void *
queue_writer_thread(void *p)
{
    race_arg *a = p;
    shmchan_queue *w = tq_open(a->name, 0);
    for (uint64_t i = 1; i <= a->count && a->rc == 0; i++) {
        a->rc = shmchan_queue_send(w, &i, sizeof(i), 10000);
    }
    shmchan_queue_close(w);
    return NULL;
}

TEST(threads_notify_race)
{
    const char *n = t_name();
    shmchan_latest *r = t_latest_create(n, 64);
    race_arg a = {n, (uint64_t)(tq_seconds() * 100000), 0};
    pthread_t t;
    T_TRUE(pthread_create(&t, NULL, latest_writer_thread, &a) == 0);
    uint64_t rounds = 0;
    int rc = latest_epoll_reader(r, a.count, &rounds);
    pthread_join(t, NULL);
    T_EQ_U64(a.rc, 0);
    T_EQ_U64(rc, 0);
    shmchan_latest_close(r);

    const char *qn = t_name();
    shmchan_queue *own = tq_create(qn, 1 << 12, 64, SHMCHAN_POLICY_BLOCK);
    shmchan_queue *q = tq_open(qn, SHMCHAN_SUBSCRIBE);
    race_arg b = {qn, a.count, 0};
    T_TRUE(pthread_create(&t, NULL, queue_writer_thread, &b) == 0);
    rc = queue_epoll_reader(q, b.count, &rounds);
    pthread_join(t, NULL);
    T_EQ_U64(b.rc, 0);
    T_EQ_U64(rc, 0);
    shmchan_queue_close(q);
    shmchan_queue_close(own);
}

/* ------------------------------------------- dead and stopped waiters */

/* A waiter that arms its handle, says so on stdout... by a file, then waits. */
HELPER(notify_armed_waiter)
{
    char name[64], ready[256];
    t_arg_word(arg, 0, name, sizeof(name));
    t_arg_word(arg, 1, ready, sizeof(ready));
    shmchan_latest *r = NULL;
    int fd = -1;
    if (shmchan_latest_open(name, NULL, &r) != SHMCHAN_OK ||
        shmchan_latest_notify(r, &fd) != SHMCHAN_OK ||
        shmchan_latest_arm(r, shmchan_latest_seq(r)) != SHMCHAN_OK) {
        return 3;
    }
    int f = open(ready, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    close(f);
    for (;;) {
        pause(); /* never drains: its socket's buffer fills */
    }
}

static t_proc
start_armed_waiter(const char *n, int k)
{
    char ready[256], arg[400];
    snprintf(ready, sizeof(ready), "%s.ready%d", t_path(), k);
    snprintf(arg, sizeof(arg), "%s %s", n, ready);
    t_proc p = t_spawn("notify_armed_waiter", arg);
    for (int i = 0; i < 5000 && access(ready, F_OK) != 0; i++) {
        t_sleep_ms(1);
    }
    T_TRUE(access(ready, F_OK) == 0);
    unlink(ready);
    return p;
}

/* Every slot taken by this process's handles, plus one: ELIMIT. */
static int
take_all_slots(const char *n, shmchan_latest **hs, int cap)
{
    int k = 0;
    for (; k < cap; k++) {
        hs[k] = t_latest_join(n);
        int fd = -1;
        int rc = shmchan_latest_notify(hs[k], &fd);
        if (rc != SHMCHAN_OK) {
            T_EQ_U64(rc, SHMCHAN_ELIMIT);
            shmchan_latest_close(hs[k]);
            break;
        }
    }
    return k;
}

TEST(notify_dead_and_stopped_waiters_never_block_writers)
{
    const char *n = t_name();
    shmchan_latest *w = t_latest_create(n, 64);
    t_proc stopped = start_armed_waiter(n, 0);
    t_proc dead = start_armed_waiter(n, 1);
    kill(t_proc_id(stopped), SIGSTOP);
    t_kill(dead);
    (void)t_wait(dead);
    /* Forge re-arming on every slot between publishes: each publish then
     * signals the stopped waiter again, until its buffer is full. */
    shmchan_latest *hs[NOTIFY_SLOTS + 1];
    uint64_t t0 = t_now_ns();
    for (int i = 0; i < 200000; i++) {
        T_OK(shmchan_latest_publish(w, &i, sizeof(i), NULL));
    }
    printf("  200000 publishes with a stopped and a dead waiter: %.1f ms\n",
           (double)(t_now_ns() - t0) / 1e6);
    /* The dead waiter's slot is free again: 63 here (the stopped one holds one). */
    int got = take_all_slots(n, hs, NOTIFY_SLOTS + 1);
    T_EQ_U64(got, NOTIFY_SLOTS - 1);
    for (int i = 0; i < got; i++) {
        shmchan_latest_close(hs[i]);
    }
    kill(t_proc_id(stopped), SIGKILL);
    (void)t_wait(stopped);
    shmchan_latest_close(w);
}

/* --------------------------------------------------------- hostile peer */

static void
poke_u32(const char *path, long off, uint32_t v)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    T_TRUE(fd >= 0);
    T_TRUE(pwrite(fd, &v, sizeof(v), off) == (ssize_t)sizeof(v));
    close(fd);
}

static uint64_t
peek_u64(const char *path, long off)
{
    uint64_t v = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    T_TRUE(fd >= 0);
    T_TRUE(pread(fd, &v, sizeof(v), off) == (ssize_t)sizeof(v));
    close(fd);
    return v;
}

/* A squatter: a socket bound to the name of slot `slot` of channel id. */
static int
squat(uint64_t id, unsigned slot, int type)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    int k = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "shmchan.%016llx.%u",
                     (unsigned long long)id, slot);
    int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
    T_TRUE(fd >= 0);
    T_TRUE(bind(fd, (struct sockaddr *)&a,
                (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)k)) == 0);
    if (type == SOCK_STREAM) {
        T_TRUE(listen(fd, 1) == 0);
    }
    return fd;
}

TEST(notify_hostile_peer_writes_the_table)
{
    const char *p = t_path();
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_EXCL | SHMCHAN_FILE);
    o.max_msg = 64;
    shmchan_latest *w = NULL, *r = NULL;
    T_OK(shmchan_latest_open(p, &o, &w));
    o.flags = SHMCHAN_FILE;
    T_OK(shmchan_latest_open(p, &o, &r));
    uint64_t id = peek_u64(p, (long)OFF_CHAN_ID);
    /* Squatters on slots 0..SQUATTERS-1: datagram sockets that never read,
     * whose queued datagrams would clog a sender's buffer. The reader's
     * notifier takes the next slot; a stream listener on that name does not
     * stand in its way (the kernel keeps the two kinds apart). */
    enum { SQUATTERS = 60 };
    int sq[SQUATTERS];
    for (int i = 0; i < SQUATTERS; i++) {
        sq[i] = squat(id, (unsigned)i, SOCK_DGRAM);
    }
    int stream = squat(id, SQUATTERS, SOCK_STREAM);
    int s1 = sq[1];
    int fd = -1;
    T_OK(shmchan_latest_notify(r, &fd));
    uint64_t s = 0;
    T_OK(shmchan_latest_publish(w, "x", 1, &s));
    T_TRUE(ready_within(fd, 1000));
    T_OK(shmchan_latest_arm(r, s));
    /* The attacker: every slot armed, counts at their maximum, again and
     * again between publishes. Writers must neither fail, block nor crash.
     * The squatters' full queues hold more datagrams than a socket's send
     * buffer allows: a writer must still reach live notifiers. */
    for (int round = 0; round < 2000; round++) {
        if (round == 1000) {
            pending_signals(fd); /* ours was fired once: what it holds goes */
        }
        for (int i = 0; i < SQUATTERS; i++) {
            poke_u32(p, (long)(LATEST_NOTIFY + 4 * (size_t)i), round % 3 == 2 ? 0xFFFFFFFFu : 1u);
        }
        poke_u32(p, (long)LATEST_NF_ARMED, round % 2 ? 0xFFFFFFFFu : 0);
        poke_u32(p, (long)LATEST_NF_USED, 0xFFFFFFFFu);
        T_OK(shmchan_latest_publish(w, "y", 1, NULL));
    }
    /* The squatters got empty datagrams (peeked: reading one would make
     * room in the sender's buffer); ours still works. */
    char b[8];
    T_EQ_U64(recv(s1, b, sizeof(b), MSG_DONTWAIT | MSG_PEEK), 0);
    poke_u32(p, (long)LATEST_NF_ARMED, 0);
    T_OK(shmchan_latest_arm(r, shmchan_latest_seq(r)));
    T_TRUE(!ready_within(fd, 0));
    T_OK(shmchan_latest_publish(w, "z", 1, NULL));
    T_TRUE(ready_within(fd, 1000));
    for (int i = 0; i < SQUATTERS; i++) {
        close(sq[i]);
    }
    close(stream);
    shmchan_latest_close(r);
    shmchan_latest_close(w);
}

/* ------------------------------------------------- nothing left behind */

/* Entries of /dev/shm and /tmp (other tests run in parallel: only those
 * that name this channel's id count). */
static int
files_named(uint64_t id)
{
    char cmd[256], out[64];
    snprintf(cmd, sizeof(cmd), "find /dev/shm /tmp -maxdepth 2 -name '*%016llx*' | wc -l",
             (unsigned long long)id);
    T_TRUE(t_sh(cmd, out, sizeof(out)) == 0);
    return atoi(out);
}

static int
abstract_names(uint64_t id)
{
    char cmd[256], out[64];
    snprintf(cmd, sizeof(cmd), "grep -c '@shmchan\\.%016llx\\.' /proc/net/unix || true",
             (unsigned long long)id);
    T_TRUE(t_sh(cmd, out, sizeof(out)) == 0);
    return atoi(out);
}

TEST(notify_nothing_left_after_sigkill)
{
    const char *n = t_name();
    shmchan_latest *w = t_latest_create(n, 64);
    char path[128];
    snprintf(path, sizeof(path), "/dev/shm/shmchan.%s", n);
    uint64_t id = peek_u64(path, (long)OFF_CHAN_ID);
    t_proc p = start_armed_waiter(n, 2);
    T_EQ_U64(abstract_names(id), 1);
    T_EQ_U64(files_named(id), 0); /* the notifier is no file, before... */
    t_kill(p);
    (void)t_wait(p);
    T_EQ_U64(abstract_names(id), 0); /* ...nor after: the kernel freed the name */
    T_EQ_U64(files_named(id), 0);
    T_OK(shmchan_latest_publish(w, "after", 5, NULL)); /* to the dead: ignored */
    shmchan_latest_close(w);
}

/* ------------------------------------------------------ idle and quiet */

HELPER(notify_idle_waiter)
{
    shmchan_latest *r = NULL;
    int fd = -1;
    if (shmchan_latest_open(arg, NULL, &r) != SHMCHAN_OK ||
        shmchan_latest_notify(r, &fd) != SHMCHAN_OK ||
        shmchan_latest_arm(r, shmchan_latest_seq(r)) != SHMCHAN_OK) {
        return 3;
    }
    struct rusage a, b;
    getrusage(RUSAGE_SELF, &a);
    struct pollfd pf = {fd, POLLIN, 0};
    int k = poll(&pf, 1, 2000);
    getrusage(RUSAGE_SELF, &b);
    long us = (b.ru_utime.tv_sec - a.ru_utime.tv_sec) * 1000000L +
              (b.ru_utime.tv_usec - a.ru_utime.tv_usec) +
              (b.ru_stime.tv_sec - a.ru_stime.tv_sec) * 1000000L +
              (b.ru_stime.tv_usec - a.ru_stime.tv_usec);
    printf("  idle 2 s on the handle: %ld us of CPU\n", us);
    shmchan_latest_close(r);
    return k == 0 && us < 20000 ? 0 : 1; /* 20 ms: a 1 ms poll would be far above */
}

TEST(notify_idle_reader_uses_no_cpu)
{
    const char *n = t_name();
    shmchan_latest *w = t_latest_create(n, 64);
    T_OK(shmchan_latest_publish(w, "before", 6, NULL));
    T_EQ_U64(t_wait(t_spawn("notify_idle_waiter", n)), 0);
    shmchan_latest_close(w);
}

/* A fired handle costs writers nothing more: no system call per publish. */
HELPER(notify_fired_then_quiet)
{
    shmchan_latest *w = NULL, *r = NULL;
    int fd = -1;
    if (shmchan_latest_open(arg, NULL, &w) != SHMCHAN_OK ||
        shmchan_latest_open(arg, NULL, &r) != SHMCHAN_OK ||
        shmchan_latest_notify(r, &fd) != SHMCHAN_OK ||
        shmchan_latest_arm(r, shmchan_latest_seq(r)) != SHMCHAN_OK ||
        shmchan_latest_publish(w, "fire", 4, NULL) != SHMCHAN_OK) {
        return 3;
    }
    t_forbid_syscalls();
    for (int i = 0; i < 100000; i++) {
        if (shmchan_latest_publish(w, "quiet", 5, NULL) != SHMCHAN_OK) {
            return 1;
        }
    }
    _exit(0);
}

TEST(notify_one_signal_then_no_syscalls)
{
    const char *n = t_name();
    shmchan_latest *ch = t_latest_create(n, 64);
    T_EQ_U64(t_wait(t_spawn("notify_fired_then_quiet", n)), 0);
    T_EQ_U64(shmchan_latest_seq(ch), 100001);
    shmchan_latest_close(ch);
}

/* ----------------------------------------------------------- wait-sets */

HELPER(waitset_late_publisher)
{
    t_sleep_ms(100);
    shmchan_latest *w = t_latest_join(arg);
    int rc = shmchan_latest_publish(w, "late", 4, NULL);
    shmchan_latest_close(w);
    return rc == SHMCHAN_OK ? 0 : 1;
}

TEST(waitset_foreign_fd_and_other_process)
{
    const char *n = t_name();
    shmchan_latest *r = t_latest_create(n, 64);
    int p[2];
    T_TRUE(pipe(p) == 0);
    shmchan_waitset *ws = NULL;
    T_OK(shmchan_waitset_open(&ws));
    T_OK(shmchan_waitset_add_latest(ws, r, 0, 10));
    T_OK(shmchan_waitset_add_os(ws, p[0], 20));
    uintptr_t keys[4];
    size_t k = 0;
    T_TRUE(write(p[1], "x", 1) == 1);
    T_OK(shmchan_waitset_wait(ws, 5000, keys, 4, &k));
    T_TRUE(k == 1 && keys[0] == 20);
    char c;
    T_TRUE(read(p[0], &c, 1) == 1);
    t_proc pr = t_spawn("waitset_late_publisher", n); /* sleeps, then publishes */
    T_OK(shmchan_waitset_wait(ws, 10000, keys, 4, &k));
    T_TRUE(k == 1 && keys[0] == 10);
    T_EQ_U64(t_wait(pr), 0);
    shmchan_waitset_close(ws);
    close(p[0]);
    close(p[1]);
    shmchan_latest_close(r);
}
