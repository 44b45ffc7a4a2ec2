/*
 * Threads on one channel in one process: each with its own handle, or all on
 * one shared handle. These are the concurrency tests ThreadSanitizer can see
 * (scripts/test-tsan.sh), and they check the bytes like the process tests.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "t.h"

#define TH_MAX_MSG 128
#define TH_WRITERS 3
#define TH_READERS 3

static double
th_seconds(void)
{
    const char *s = getenv("SHMCHAN_STRESS_SECONDS");
    double v = s != NULL ? atof(s) : 3.0;
    return v < 0.5 ? 0.5 : v / 2;
}

/* Message: writer id, counter, then bytes derived from both. */
static size_t
th_make(uint8_t *buf, uint32_t id, uint64_t counter)
{
    size_t len = 12 + (size_t)((counter * 7 + id) % (TH_MAX_MSG - 12));
    memcpy(buf, &id, 4);
    memcpy(buf + 4, &counter, 8);
    for (size_t i = 12; i < len; i++) {
        buf[i] = (uint8_t)(id * 29u + counter * 13u + i);
    }
    return len;
}

static bool
th_intact(const uint8_t *buf, size_t len, uint32_t *id, uint64_t *counter)
{
    uint8_t want[TH_MAX_MSG];
    if (len < 12) {
        return false;
    }
    memcpy(id, buf, 4);
    memcpy(counter, buf + 4, 8);
    return *id < 64 && th_make(want, *id, *counter) == len && memcmp(want, buf, len) == 0;
}

typedef struct {
    const char *name;
    shmchan_latest *shared; /* NULL: each thread opens its own handle */
    uint32_t id;
    uint64_t end_ns;
    _Atomic int *writers_left;
    uint64_t sent, checked, bad, disorder, errors;
} th_arg;

static shmchan_latest *
th_handle(th_arg *a, uint32_t flags)
{
    if (a->shared != NULL) {
        return a->shared;
    }
    shmchan_opts o = t_opts(flags);
    shmchan_latest *ch = NULL;
    return shmchan_latest_open(a->name, &o, &ch) == SHMCHAN_OK ? ch : NULL;
}

static void
th_release(th_arg *a, shmchan_latest *ch)
{
    if (a->shared == NULL) {
        shmchan_latest_close(ch);
    }
}

static void *
th_writer(void *p)
{
    th_arg *a = p;
    shmchan_latest *ch = th_handle(a, 0);
    uint8_t buf[TH_MAX_MSG];
    for (uint64_t c = 0; ch != NULL && t_now_ns() < a->end_ns; c++) {
        int rc;
        if (c & 1) {
            rc = shmchan_latest_publish(ch, buf, th_make(buf, a->id, c), NULL);
        } else {
            void *dst = NULL;
            rc = shmchan_latest_begin(ch, &dst);
            if (rc == SHMCHAN_OK) {
                rc = shmchan_latest_commit(ch, th_make(dst, a->id, c), NULL);
            }
        }
        a->sent += rc == SHMCHAN_OK;
        a->errors += rc != SHMCHAN_OK;
    }
    a->errors += ch == NULL;
    th_release(a, ch);
    atomic_fetch_sub(a->writers_left, 1);
    return NULL;
}

/* Accept one message: intact, and each writer's counters never going back. */
static void
th_accept(th_arg *a, const uint8_t *buf, size_t len, uint64_t *last)
{
    uint32_t id = 0;
    uint64_t counter = 0;
    if (!th_intact(buf, len, &id, &counter)) {
        a->bad++;
        return;
    }
    if (last[id] != 0 && counter + 1 < last[id]) {
        a->disorder++;
    }
    last[id] = counter + 1;
    a->checked++;
}

/* Copying a viewed message races with a writer that laps the reader, by the
 * API's design: view_check() then says the copy is void. Its own function so
 * that tests/tsan.supp names exactly this copy. */
static void
th_view_copy(void *dst, const void *src, size_t len)
{
    memcpy(dst, src, len);
}

static void *
th_reader(void *p)
{
    th_arg *a = p;
    shmchan_latest *ch = th_handle(a, a->id % 2 ? SHMCHAN_RDONLY : 0);
    uint64_t last[64] = {0};
    uint64_t seq = 0;
    uint8_t buf[TH_MAX_MSG];
    while (ch != NULL && atomic_load(a->writers_left) > 0) {
        size_t len = 0;
        shmchan_msg m;
        int rc = SHMCHAN_OK;
        switch ((a->checked + a->id) % 3) {
        case 0:
            rc = shmchan_latest_read_next(ch, seq, buf, sizeof(buf), 10, &len, &seq);
            break;
        case 1:
            rc = shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq);
            break;
        default:
            /* Zero-copy: only what the check confirms may be used. */
            rc = shmchan_latest_view(ch, &m);
            if (rc == SHMCHAN_OK) {
                len = (size_t)m.len;
                th_view_copy(buf, m.data, len);
                rc = shmchan_latest_view_check(ch, &m) == SHMCHAN_OK ? SHMCHAN_OK : SHMCHAN_EAGAIN;
            }
            break;
        }
        if (rc == SHMCHAN_OK) {
            th_accept(a, buf, len, last);
        } else if (rc != SHMCHAN_EAGAIN && rc != SHMCHAN_ETIMEDOUT) {
            a->errors++;
        }
    }
    a->errors += ch == NULL;
    th_release(a, ch);
    return NULL;
}

static void
th_run(const char *name, shmchan_latest *shared)
{
    pthread_t tids[TH_WRITERS + TH_READERS];
    th_arg args[TH_WRITERS + TH_READERS];
    _Atomic int writers_left = TH_WRITERS;
    uint64_t end = t_now_ns() + (uint64_t)(th_seconds() * 1e9);
    for (int i = 0; i < TH_WRITERS + TH_READERS; i++) {
        args[i] = (th_arg){name, shared, (uint32_t)i, end, &writers_left, 0, 0, 0, 0, 0};
        T_TRUE(pthread_create(&tids[i], NULL, i < TH_WRITERS ? th_writer : th_reader,
                              &args[i]) == 0);
    }
    uint64_t sent = 0, checked = 0;
    for (int i = 0; i < TH_WRITERS + TH_READERS; i++) {
        T_TRUE(pthread_join(tids[i], NULL) == 0);
        T_EQ_U64(args[i].errors, 0);
        T_EQ_U64(args[i].bad, 0);
        T_EQ_U64(args[i].disorder, 0);
        sent += args[i].sent;
        checked += args[i].checked;
    }
    printf("%s: %llu published, %llu read and checked\n", shared ? "shared handle" : "own handles",
           (unsigned long long)sent, (unsigned long long)checked);
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_info_get(name, 0, &info));
    T_EQ_U64(info.seq, sent); /* every publish got its own sequence */
    T_TRUE(checked > 0);
}

TEST(threads_latest_own_handles)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.max_msg = TH_MAX_MSG;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    th_run(n, NULL);
    shmchan_latest_close(ch);
}

TEST(threads_latest_shared_handle)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.max_msg = TH_MAX_MSG;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    th_run(n, ch); /* the header says a handle may be shared by threads */
    shmchan_latest_close(ch);
}

/* Two threads hand a token back and forth through two channels: every wait
 * must be woken by the other thread's publish. */
typedef struct {
    const char *in, *out;
    int rounds;
    int errors;
} pingpong_arg;

static void *
th_pingpong(void *p)
{
    pingpong_arg *a = p;
    shmchan_opts o = t_opts(0);
    o.spin_ns = SHMCHAN_SPIN_NONE; /* sleep in the kernel every time */
    shmchan_latest *in = NULL, *out = NULL;
    if (shmchan_latest_open(a->in, &o, &in) != SHMCHAN_OK ||
        shmchan_latest_open(a->out, &o, &out) != SHMCHAN_OK) {
        a->errors++;
        return NULL;
    }
    /* Round i: publish i, then wait for the other's round-i message. */
    for (int i = 0; i < a->rounds; i++) {
        int v = -1;
        size_t len = 0;
        uint64_t seq = 0;
        if (shmchan_latest_publish(out, &i, sizeof(i), NULL) != SHMCHAN_OK ||
            shmchan_latest_read_next(in, (uint64_t)i, &v, sizeof(v), 10000, &len, &seq) !=
                SHMCHAN_OK) {
            a->errors++;
            break;
        }
        /* The other may already be one round ahead, never more. */
        if (seq < (uint64_t)i + 1 || seq > (uint64_t)i + 2 || v < i || v > i + 1) {
            a->errors++;
        }
    }
    shmchan_latest_close(in);
    shmchan_latest_close(out);
    return NULL;
}

TEST(threads_latest_wait_wake)
{
    const char *a = t_name(), *b = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    shmchan_latest *ca = NULL, *cb = NULL;
    T_OK(shmchan_latest_open(a, &o, &ca));
    T_OK(shmchan_latest_open(b, &o, &cb));
    pingpong_arg x = {a, b, 2000, 0}, y = {b, a, 2000, 0};
    pthread_t tx, ty;
    T_TRUE(pthread_create(&tx, NULL, th_pingpong, &x) == 0);
    T_TRUE(pthread_create(&ty, NULL, th_pingpong, &y) == 0);
    T_TRUE(pthread_join(tx, NULL) == 0 && pthread_join(ty, NULL) == 0);
    T_EQ_U64(x.errors + y.errors, 0);
    T_EQ_U64(shmchan_latest_seq(ca), 2000);
    T_EQ_U64(shmchan_latest_seq(cb), 2000);
    shmchan_latest_close(ca);
    shmchan_latest_close(cb);
}

/* Handles opened and closed all the time while others publish and read:
 * the per-process tables (SIGBUS guard) and the first-opener reset. */
typedef struct {
    const char *name;
    uint64_t end_ns;
    int errors;
    uint64_t opens;
} churn_arg;

static void *
th_churn(void *p)
{
    churn_arg *a = p;
    uint8_t buf[TH_MAX_MSG];
    while (t_now_ns() < a->end_ns) {
        shmchan_latest *ch = NULL;
        if (shmchan_latest_open(a->name, NULL, &ch) != SHMCHAN_OK) {
            a->errors++;
            break;
        }
        size_t len = 0;
        uint32_t id;
        uint64_t counter;
        int rc = shmchan_latest_read(ch, buf, sizeof(buf), &len, NULL);
        if (rc == SHMCHAN_OK && !th_intact(buf, len, &id, &counter)) {
            a->errors++;
        }
        rc = shmchan_latest_publish(ch, buf, th_make(buf, 7, a->opens), NULL);
        a->errors += rc != SHMCHAN_OK;
        shmchan_latest_close(ch);
        a->opens++;
    }
    return NULL;
}

TEST(threads_latest_open_close_churn)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.max_msg = TH_MAX_MSG;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    shmchan_latest_close(ch); /* nobody holds it: openers race to be first */
    enum { N = 4 };
    churn_arg args[N];
    pthread_t tids[N];
    uint64_t end = t_now_ns() + (uint64_t)(th_seconds() * 1e9 / 2);
    for (int i = 0; i < N; i++) {
        args[i] = (churn_arg){n, end, 0, 0};
        T_TRUE(pthread_create(&tids[i], NULL, th_churn, &args[i]) == 0);
    }
    uint64_t opens = 0;
    for (int i = 0; i < N; i++) {
        T_TRUE(pthread_join(tids[i], NULL) == 0);
        T_EQ_U64(args[i].errors, 0);
        opens += args[i].opens;
    }
    T_OK(shmchan_latest_open(n, NULL, &ch));
    T_EQ_U64(shmchan_latest_seq(ch), opens);
    shmchan_latest_close(ch);
}

/* ------------------------------------------------------------- queues */

#define TQ_WRITERS 3
#define TQ_READERS 3
#define TQ_PER_WRITER 20000

typedef struct {
    const char *name;
    uint32_t id;
    uint32_t role;                /* 0 writer, else SHMCHAN_SUBSCRIBE... or SHMCHAN_WORKER */
    _Atomic uint64_t *sent_total; /* writers add what they sent */
    _Atomic int *writers_left;
    _Atomic uint64_t *taken;      /* workers: one bit per (writer, counter) */
    shmchan_queue *q;             /* readers open theirs before the writers start */
    uint64_t got, bad, disorder, dup, errors;
} tq_arg;

static void *
tq_writer(void *p)
{
    tq_arg *a = p;
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(a->name, NULL, &q) != SHMCHAN_OK) {
        a->errors++;
    }
    uint8_t buf[TH_MAX_MSG];
    for (uint64_t c = 0; q != NULL && c < TQ_PER_WRITER; c++) {
        int rc;
        if (c & 1) {
            rc = shmchan_queue_send(q, buf, th_make(buf, a->id, c), 10000);
        } else {
            void *dst = NULL;
            size_t len = th_make(buf, a->id, c);
            rc = shmchan_queue_reserve(q, len, 10000, &dst);
            if (rc == SHMCHAN_OK) {
                memcpy(dst, buf, len);
                rc = shmchan_queue_commit(q, len);
            }
        }
        if (rc != SHMCHAN_OK) {
            a->errors++;
            break;
        }
        atomic_fetch_add(a->sent_total, 1);
    }
    shmchan_queue_close(q);
    atomic_fetch_sub(a->writers_left, 1);
    return NULL;
}

/* Subscribers: every message of every writer, in order. Workers: each
 * message once, across all workers. */
static void
tq_accept(tq_arg *a, const uint8_t *buf, size_t len, uint64_t *next)
{
    uint32_t id = 0;
    uint64_t counter = 0;
    if (!th_intact(buf, len, &id, &counter) || id >= TQ_WRITERS || counter >= TQ_PER_WRITER) {
        a->bad++;
        return;
    }
    if (a->role == SHMCHAN_WORKER) {
        uint64_t k = id * (uint64_t)TQ_PER_WRITER + counter;
        uint64_t bit = UINT64_C(1) << (k % 64);
        a->dup += (atomic_fetch_or(&a->taken[k / 64], bit) & bit) != 0;
    } else {
        a->disorder += counter != next[id];
        next[id] = counter + 1;
    }
    a->got++;
}

static void *
tq_reader(void *p)
{
    tq_arg *a = p;
    uint64_t next[TQ_WRITERS] = {0};
    static _Thread_local uint8_t packed[8 * (TH_MAX_MSG + 8)];
    for (;;) {
        bool done = atomic_load(a->writers_left) == 0;
        uint8_t buf[TH_MAX_MSG];
        size_t len = 0, count = 0;
        shmchan_msg m, msgs[8];
        int rc;
        switch ((a->got + a->id) % 3) {
        case 0:
            rc = shmchan_queue_recv(a->q, buf, sizeof(buf), 20, &len, &m);
            if (rc == SHMCHAN_OK) {
                tq_accept(a, buf, len, next);
            }
            break;
        case 1:
            rc = shmchan_queue_peek(a->q, 20, &m);
            if (rc == SHMCHAN_OK) {
                tq_accept(a, m.data, (size_t)m.len, next);
                rc = shmchan_queue_release(a->q);
            }
            break;
        default:
            rc = shmchan_queue_recv_batch(a->q, packed, sizeof(packed), 8, 20, msgs, &count);
            for (size_t i = 0; rc == SHMCHAN_OK && i < count; i++) {
                tq_accept(a, msgs[i].data, (size_t)msgs[i].len, next);
            }
            break;
        }
        if (rc == SHMCHAN_EAGAIN || rc == SHMCHAN_ETIMEDOUT) {
            if (done) {
                break; /* writers finished and nothing came for 20 ms */
            }
        } else if (rc != SHMCHAN_OK) {
            a->errors++;
            break;
        }
    }
    return NULL;
}

static void
tq_create(const char *name)
{
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.policy = SHMCHAN_POLICY_BLOCK;
    o.max_msg = TH_MAX_MSG;
    o.capacity = 16384;
    shmchan_queue *q = NULL;
    T_OK(shmchan_queue_open(name, &o, &q));
    shmchan_queue_close(q);
}

static void
tq_run(uint32_t role)
{
    const char *n = t_name();
    tq_create(n);
    static _Atomic uint64_t taken[(TQ_WRITERS * TQ_PER_WRITER + 63) / 64];
    memset((void *)taken, 0, sizeof(taken));
    _Atomic uint64_t sent = 0;
    _Atomic int writers_left = TQ_WRITERS;
    tq_arg args[TQ_WRITERS + TQ_READERS];
    pthread_t tids[TQ_WRITERS + TQ_READERS];
    for (int i = 0; i < TQ_WRITERS + TQ_READERS; i++) {
        bool reader = i >= TQ_WRITERS;
        args[i] = (tq_arg){n, (uint32_t)(reader ? i - TQ_WRITERS : i), reader ? role : 0, &sent,
                           &writers_left, taken, NULL, 0, 0, 0, 0, 0};
        if (reader) { /* in before the first message */
            shmchan_opts o = t_opts(role);
            T_OK(shmchan_queue_open(n, &o, &args[i].q));
        }
    }
    for (int i = 0; i < TQ_WRITERS + TQ_READERS; i++) {
        T_TRUE(pthread_create(&tids[i], NULL, i < TQ_WRITERS ? tq_writer : tq_reader,
                              &args[i]) == 0);
    }
    uint64_t got = 0;
    for (int i = 0; i < TQ_WRITERS + TQ_READERS; i++) {
        T_TRUE(pthread_join(tids[i], NULL) == 0);
        shmchan_queue_close(args[i].q);
        T_EQ_U64(args[i].errors, 0);
        T_EQ_U64(args[i].bad, 0);
        T_EQ_U64(args[i].disorder, 0);
        T_EQ_U64(args[i].dup, 0);
        got += args[i].got;
    }
    T_EQ_U64(atomic_load(&sent), TQ_WRITERS * TQ_PER_WRITER);
    /* Block mode: every subscriber got everything; workers shared it out. */
    T_EQ_U64(got, (role == SHMCHAN_WORKER ? 1 : TQ_READERS) * TQ_WRITERS * TQ_PER_WRITER);
}

TEST(threads_queue_subscribers)
{
    tq_run(SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST);
}

TEST(threads_queue_workers)
{
    tq_run(SHMCHAN_WORKER);
}

/* ------------------------------------------- duplex: one handle, two threads */

#define TD_COUNT 20000

/* One subscriber handle; one thread sends on it (send, reserve + commit,
 * reserve + abort, send_batch), another receives (recv, peek + release,
 * recv_batch), a third calls info, with no lock between them. The ring holds a few messages
 * only, so the sender keeps waiting for space that only the receiver on the
 * same handle frees, and the receiver keeps sleeping in a blocking receive
 * while the sender sends: serialising the two would deadlock. */
typedef struct {
    shmchan_queue *q;
    _Atomic int recv_started; /* the receiver is about to block */
    _Atomic int done;         /* sender and receiver joined */
    uint64_t infos, info_errors; /* the info thread's */
    uint64_t sent, tx_errors;         /* the sender's */
    uint64_t got, bad, disorder, rx_errors; /* the receiver's */
} td_arg;

static int
td_send_one(shmchan_queue *q, uint64_t c)
{
    uint8_t buf[TH_MAX_MSG];
    size_t len = th_make(buf, 1, c);
    void *dst = NULL;
    int rc;
    switch (c % 4) {
    case 0:
        return shmchan_queue_send(q, buf, len, 10000);
    case 1:
        rc = shmchan_queue_reserve(q, len, 10000, &dst);
        if (rc == SHMCHAN_OK) {
            memcpy(dst, buf, len);
            rc = shmchan_queue_commit(q, len);
        }
        return rc;
    default:
        /* an aborted reservation first: the receiver must never see it */
        rc = shmchan_queue_reserve(q, len, 10000, &dst);
        if (rc == SHMCHAN_OK) {
            memset(dst, 0xee, len);
            rc = shmchan_queue_abort(q);
        }
        return rc == SHMCHAN_OK ? shmchan_queue_send(q, buf, len, 10000) : rc;
    }
}

static void *
td_sender(void *p)
{
    td_arg *a = p;
    while (atomic_load(&a->recv_started) == 0) {
        t_sleep_ms(1);
    }
    t_sleep_ms(20); /* the first message finds the receiver asleep (not required) */
    uint8_t bufs[4][TH_MAX_MSG];
    for (uint64_t c = 0; c < TD_COUNT;) {
        int rc;
        if (c % 16 == 15 && c + 4 <= TD_COUNT) {
            shmchan_msg m[4] = {{0}};
            for (int i = 0; i < 4; i++) {
                m[i].len = th_make(bufs[i], 1, c + (uint64_t)i);
                m[i].data = bufs[i];
            }
            size_t n = 0;
            rc = shmchan_queue_send_batch(a->q, m, 4, 10000, &n);
            c += n;
        } else {
            rc = td_send_one(a->q, c);
            c += rc == SHMCHAN_OK;
        }
        if (rc != SHMCHAN_OK) {
            a->tx_errors++;
            break;
        }
        a->sent = c;
    }
    return NULL;
}

static void
td_accept(td_arg *a, const uint8_t *buf, size_t len)
{
    uint32_t id = 0;
    uint64_t counter = 0;
    if (!th_intact(buf, len, &id, &counter) || id != 1) {
        a->bad++;
        return;
    }
    a->disorder += counter != a->got;
    a->got++;
}

static void *
td_receiver(void *p)
{
    td_arg *a = p;
    static _Thread_local uint8_t packed[8 * (TH_MAX_MSG + 8)];
    atomic_store(&a->recv_started, 1);
    while (a->got < TD_COUNT && a->rx_errors == 0) {
        uint8_t buf[TH_MAX_MSG];
        size_t len = 0, count = 0;
        shmchan_msg m, msgs[8];
        int rc;
        switch (a->got % 3) {
        case 0: /* blocking, as the first receive is */
            rc = shmchan_queue_recv(a->q, buf, sizeof(buf), 10000, &len, &m);
            if (rc == SHMCHAN_OK) {
                td_accept(a, buf, len);
            }
            break;
        case 1:
            rc = shmchan_queue_peek(a->q, 10000, &m);
            if (rc == SHMCHAN_OK) {
                td_accept(a, m.data, (size_t)m.len);
                rc = shmchan_queue_release(a->q);
            }
            break;
        default:
            rc = shmchan_queue_recv_batch(a->q, packed, sizeof(packed), 8, 10000, msgs, &count);
            for (size_t i = 0; rc == SHMCHAN_OK && i < count; i++) {
                td_accept(a, msgs[i].data, (size_t)msgs[i].len);
            }
            break;
        }
        a->rx_errors += rc != SHMCHAN_OK;
    }
    return NULL;
}

/* info beside both: it reads only what open set and shared memory. */
static void *
td_info(void *p)
{
    td_arg *a = p;
    while (atomic_load(&a->done) == 0) {
        shmchan_info info = {.struct_size = sizeof(info)};
        int rc = shmchan_queue_info(a->q, &info);
        a->info_errors += rc != SHMCHAN_OK || info.readers != 1 || info.writers > 1 ||
                          info.seq > 2 * (uint64_t)TD_COUNT; /* aborts take one too */
        a->infos++;
        t_sleep_ms(1);
    }
    return NULL;
}

TEST(threads_queue_duplex_one_handle)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_SUBSCRIBE);
    o.policy = SHMCHAN_POLICY_BLOCK;
    o.max_msg = TH_MAX_MSG;
    o.capacity = 1024; /* a handful of messages: both sides wait on each other */
    td_arg a = {0};
    T_OK(shmchan_queue_open(n, &o, &a.q));
    pthread_t rx, tx, in;
    T_TRUE(pthread_create(&rx, NULL, td_receiver, &a) == 0);
    T_TRUE(pthread_create(&tx, NULL, td_sender, &a) == 0);
    T_TRUE(pthread_create(&in, NULL, td_info, &a) == 0);
    T_TRUE(pthread_join(tx, NULL) == 0);
    T_TRUE(pthread_join(rx, NULL) == 0);
    atomic_store(&a.done, 1);
    T_TRUE(pthread_join(in, NULL) == 0);
    T_EQ_U64(a.info_errors, 0);
    T_TRUE(a.infos > 0);
    T_EQ_U64(a.tx_errors, 0);
    T_EQ_U64(a.rx_errors, 0);
    T_EQ_U64(a.sent, TD_COUNT);
    T_EQ_U64(a.got, TD_COUNT);
    T_EQ_U64(a.bad, 0);
    T_EQ_U64(a.disorder, 0);
    size_t len = 0;
    uint8_t buf[TH_MAX_MSG];
    T_ERR(shmchan_queue_recv(a.q, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EAGAIN);
    shmchan_queue_close(a.q);
}
