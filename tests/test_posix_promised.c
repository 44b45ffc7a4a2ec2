/*
 * POSIX promises of the README and docs that no other test checked (issue
 * 19): a SIGSTOPped latest-value writer blocks the other writers and never
 * the readers; blocking calls return SHMCHAN_EINTR when a signal interrupts
 * them. Public API only (the writers' lock may change underneath).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#include "t.h"

static bool
exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static void
touch(const char *path)
{
    FILE *f = fopen(path, "wb");
    T_TRUE(f != NULL);
    fclose(f);
}

/* Wait (bounded, 60 s) until path exists. */
static int
await_file(const char *path)
{
    for (uint64_t end = t_now_ns() + UINT64_C(60000000000); !exists(path);) {
        if (t_now_ns() > end) {
            return 1;
        }
        t_sleep_ms(1);
    }
    return 0;
}

/* arg: "name ready go": begin a publish, say so, and finish it once the go
 * file exists (the test stops us in between). */
HELPER(promised_stopped_writer)
{
    char name[64], ready[512], go[512];
    t_arg_word(arg, 0, name, sizeof(name));
    t_arg_word(arg, 1, ready, sizeof(ready));
    t_arg_word(arg, 2, go, sizeof(go));
    shmchan_latest *ch = NULL;
    void *buf = NULL;
    if (shmchan_latest_open(name, NULL, &ch) != SHMCHAN_OK ||
        shmchan_latest_begin(ch, &buf) != SHMCHAN_OK) {
        return 1;
    }
    memcpy(buf, "stopped", 7);
    FILE *f = fopen(ready, "wb");
    if (f == NULL || fclose(f) != 0 || await_file(go) != 0) {
        return 2;
    }
    uint64_t seq = 0;
    int rc = shmchan_latest_commit(ch, 7, &seq);
    shmchan_latest_close(ch);
    return rc == SHMCHAN_OK && seq == 2 ? 0 : 3;
}

/* arg: "name trying": say so, then publish "other"; its seq is the exit
 * status (10 + seq). */
HELPER(promised_other_writer)
{
    char name[64], trying[512];
    t_arg_word(arg, 0, name, sizeof(name));
    t_arg_word(arg, 1, trying, sizeof(trying));
    shmchan_latest *ch = NULL;
    if (shmchan_latest_open(name, NULL, &ch) != SHMCHAN_OK) {
        return 1;
    }
    FILE *f = fopen(trying, "wb");
    if (f == NULL || fclose(f) != 0) {
        return 2;
    }
    uint64_t seq = 0;
    int rc = shmchan_latest_publish(ch, "other", 5, &seq);
    shmchan_latest_close(ch);
    return rc == SHMCHAN_OK && seq < 100 ? 10 + (int)seq : 3;
}

static void
read_first(shmchan_latest *ch)
{
    char buf[16];
    size_t len = 0;
    uint64_t seq = 0;
    T_OK(shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq));
    T_EQ_U64(seq, 1);
    T_EQ_U64(len, 5);
    T_MEMEQ(buf, "first", 5);
}

TEST(latest_stopped_writer_blocks_writers_not_readers)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.max_msg = 16;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    T_OK(shmchan_latest_publish(ch, "first", 5, NULL));
    const char *ready = t_path(), *go = t_path(), *trying = t_path();
    char arg[1600];
    snprintf(arg, sizeof(arg), "%s %s %s", n, ready, go);
    t_proc stopped = t_spawn("promised_stopped_writer", arg);
    T_EQ_U64(await_file(ready), 0);
    T_TRUE(kill((pid_t)t_proc_id(stopped), SIGSTOP) == 0);
    snprintf(arg, sizeof(arg), "%s %s", n, trying);
    t_proc other = t_spawn("promised_other_writer", arg);
    T_EQ_U64(await_file(trying), 0);
    /* Readers go on, by every path, while both writers are held. */
    shmchan_opts ro = t_opts(SHMCHAN_RDONLY);
    shmchan_latest *r = NULL;
    T_OK(shmchan_latest_open(n, &ro, &r));
    for (int i = 0; i < 200; i++) {
        read_first(ch);
        read_first(r);
        shmchan_msg m;
        T_OK(shmchan_latest_view(r, &m));
        T_EQ_U64(m.seq, 1);
        T_OK(shmchan_latest_view_check(r, &m));
        uint64_t seq = 0;
        T_ERR(shmchan_latest_wait(r, 1, 1, &seq), SHMCHAN_ETIMEDOUT);
        /* The other writer cannot publish before the stopped one commits. */
        T_TRUE(t_wait_timeout(other, 0) < 0);
        t_sleep_ms(1);
    }
    T_TRUE(kill((pid_t)t_proc_id(stopped), SIGCONT) == 0);
    touch(go);
    T_EQ_U64(t_wait_bounded(stopped, 60000), 0); /* committed as seq 2 */
    T_EQ_U64(t_wait_bounded(other, 60000), 10 + 3); /* then the other, as 3 */
    char buf[16];
    size_t len = 0;
    uint64_t seq = 0;
    T_OK(shmchan_latest_read(r, buf, sizeof(buf), &len, &seq));
    T_EQ_U64(seq, 3);
    T_MEMEQ(buf, "other", 5);
    shmchan_latest_close(r);
    shmchan_latest_close(ch);
}

static void
on_usr1(int sig)
{
    (void)sig;
}

typedef struct {
    const char *name;
    pthread_t target;
    atomic_int done;
} kicker;

/* Once the target sleeps on the channel, signal it until it returned (a
 * signal that lands just before its sleep starts interrupts nothing). */
static void *
kick(void *arg)
{
    kicker *k = arg;
    shmchan_info info = {.struct_size = sizeof(info)};
    uint64_t end = t_now_ns() + UINT64_C(60000000000);
    do {
        if (shmchan_info_get(k->name, 0, &info) != SHMCHAN_OK || t_now_ns() > end) {
            return NULL;
        }
        t_sleep_ms(1);
    } while (info.waits == 0);
    while (!atomic_load(&k->done) && t_now_ns() < end) {
        pthread_kill(k->target, SIGUSR1);
        t_sleep_ms(5);
    }
    return NULL;
}

static void
start_kicker(kicker *k, pthread_t *t, const char *name)
{
    k->name = name;
    k->target = pthread_self();
    atomic_store(&k->done, 0);
    T_TRUE(pthread_create(t, NULL, kick, k) == 0);
}

static void
stop_kicker(kicker *k, pthread_t t)
{
    atomic_store(&k->done, 1);
    T_TRUE(pthread_join(t, NULL) == 0);
}

/* A handler without SA_RESTART: every blocking call returns SHMCHAN_EINTR
 * (even with SHMCHAN_WAIT_FOREVER), so that the caller can act on it. */
TEST(blocking_calls_return_eintr)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    T_TRUE(sigaction(SIGUSR1, &sa, NULL) == 0);
    kicker k;
    pthread_t t;
    char buf[64];
    size_t len = 0;
    uint64_t seq = 0;

    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.spin_ns = SHMCHAN_SPIN_NONE;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    start_kicker(&k, &t, n);
    int rc = shmchan_latest_wait(ch, 0, SHMCHAN_WAIT_FOREVER, &seq);
    stop_kicker(&k, t);
    T_ERR(rc, SHMCHAN_EINTR);
    start_kicker(&k, &t, n);
    rc = shmchan_latest_read_next(ch, 0, buf, sizeof(buf), 60000, &len, &seq);
    stop_kicker(&k, t);
    T_ERR(rc, SHMCHAN_EINTR);
    shmchan_latest_close(ch);

    /* A subscriber waiting for a message; a writer waiting for space. */
    const char *qn = t_name();
    o = t_opts(SHMCHAN_CREATE);
    o.capacity = 4096;
    o.max_msg = 64;
    o.spin_ns = SHMCHAN_SPIN_NONE;
    shmchan_queue *w = NULL, *r = NULL;
    T_OK(shmchan_queue_open(qn, &o, &w));
    shmchan_opts so = t_opts(SHMCHAN_SUBSCRIBE);
    so.spin_ns = SHMCHAN_SPIN_NONE;
    T_OK(shmchan_queue_open(qn, &so, &r));
    start_kicker(&k, &t, qn);
    shmchan_msg m;
    rc = shmchan_queue_recv(r, buf, sizeof(buf), SHMCHAN_WAIT_FOREVER, &len, &m);
    stop_kicker(&k, t);
    T_ERR(rc, SHMCHAN_EINTR);
    memset(buf, 'x', sizeof(buf));
    while ((rc = shmchan_queue_send(w, buf, 64, 0)) == SHMCHAN_OK) {
    }
    T_ERR(rc, SHMCHAN_EAGAIN); /* full: the subscriber holds it */
    start_kicker(&k, &t, qn); /* waits is > 0 already: it kicks at once, repeatedly */
    rc = shmchan_queue_send(w, buf, 64, SHMCHAN_WAIT_FOREVER);
    stop_kicker(&k, t);
    T_ERR(rc, SHMCHAN_EINTR);
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}
