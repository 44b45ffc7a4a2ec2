/* Queues across processes: many writers, subscribers and workers, crashes, replay. */
#include "core/ring.h" /* shmchan__ring_window */
#include "t.h"
#include "test_queue_util.h"

/*
 * Messages of the multi-process tests: a header naming the writer and its
 * counter, the length and a checksum, then bytes derived from both.
 */
typedef struct tq_head {
    uint32_t writer;
    uint32_t counter;
    uint32_t len;
    uint32_t sum;
} tq_head;

#define TQ_STOP UINT32_MAX
#define TQ_MAXMSG 512
#define TQ_TIMEOUT_MS 20000

static uint64_t
key_of(uint32_t writer, uint32_t counter)
{
    return (uint64_t)writer << 32 | counter;
}

static size_t
tq_len(uint32_t writer, uint32_t counter)
{
    return sizeof(tq_head) + (counter * 37u + writer * 11u) % (TQ_MAXMSG - sizeof(tq_head));
}

size_t tq_make(uint8_t *buf, uint32_t writer, uint32_t counter);
int tq_verify(const uint8_t *buf, size_t len, tq_head *out);
int tq_send_run(shmchan_queue *q, uint32_t id, uint32_t first, uint32_t n, int64_t timeout_ms);

size_t
tq_make(uint8_t *buf, uint32_t writer, uint32_t counter)
{
    size_t len = tq_len(writer, counter);
    tq_fill(buf + sizeof(tq_head), len - sizeof(tq_head), key_of(writer, counter));
    tq_head h = {writer, counter, (uint32_t)len, 0};
    h.sum = (uint32_t)(key_of(writer, counter) * 2654435761u) ^ (uint32_t)len;
    memcpy(buf, &h, sizeof(h));
    return len;
}

/* 0: intact; 1: not a message of ours. */
int
tq_verify(const uint8_t *buf, size_t len, tq_head *out)
{
    if (len < sizeof(tq_head)) {
        return 1;
    }
    memcpy(out, buf, sizeof(*out));
    if (out->writer == TQ_STOP) {
        return 0;
    }
    uint64_t key = key_of(out->writer, out->counter);
    if (out->len != len || len != tq_len(out->writer, out->counter) ||
        out->sum != ((uint32_t)(key * 2654435761u) ^ (uint32_t)len) ||
        !tq_check(buf + sizeof(tq_head), len - sizeof(tq_head), key)) {
        return 1;
    }
    return 0;
}

static void
send_stop(shmchan_queue *q)
{
    tq_head h = {TQ_STOP, 0, sizeof(tq_head), 0};
    T_OK(shmchan_queue_send(q, &h, sizeof(h), TQ_TIMEOUT_MS));
}

/* Poll the channel until `want` readers are attached (bounded). */
static void
await_readers(const char *name, uint32_t want)
{
    for (int i = 0; i < 20000; i++) {
        shmchan_info info;
        tq_info(name, &info);
        if (info.readers == want) {
            return;
        }
        t_sleep_ms(1);
    }
    t_fail(__FILE__, __LINE__, "readers did not attach");
}

/* ------------------------------------------------ N writers x M readers */

/* Messages first..first+n-1 (n <= 4) of writer id through send_batch,
 * resending the rest of a partial batch; keeps trying while blocked. */
int
tq_send_run(shmchan_queue *q, uint32_t id, uint32_t first, uint32_t n, int64_t timeout_ms)
{
    uint8_t bufs[4][TQ_MAXMSG];
    shmchan_msg msgs[4];
    for (uint32_t i = 0; i < n && i < 4; i++) {
        msgs[i].data = bufs[i];
        msgs[i].len = tq_make(bufs[i], id, first + i);
    }
    for (size_t done = 0; done < n;) {
        size_t sent = 0;
        int rc = shmchan_queue_send_batch(q, msgs + done, n - done, timeout_ms, &sent);
        if (rc != SHMCHAN_OK && rc != SHMCHAN_ETIMEDOUT) {
            return rc;
        }
        done += sent;
    }
    return SHMCHAN_OK;
}

/* arg: "name writer count" */
HELPER(queue_mp_writer)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    uint32_t id = t_arg_u32(arg, 1), count = t_arg_u32(arg, 2);
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(name, NULL, &q) != SHMCHAN_OK) {
        return 3;
    }
    uint8_t buf[TQ_MAXMSG];
    for (uint32_t c = 0; c < count; c++) {
        if (c % 8 == 1 && c + 3 <= count) { /* some in batches of 3 */
            int rc = tq_send_run(q, id, c, 3, TQ_TIMEOUT_MS);
            if (rc != SHMCHAN_OK) {
                fprintf(stderr, "writer %u: batch %s at %u\n", id, shmchan_errname(rc), c);
                return 1;
            }
            c += 2;
            continue;
        }
        size_t len = tq_make(buf, id, c);
        int rc;
        if (c % 4 == 3) { /* some zero-copy, reserving more than needed */
            void *p = NULL;
            rc = shmchan_queue_reserve(q, TQ_MAXMSG, TQ_TIMEOUT_MS, &p);
            if (rc == SHMCHAN_OK) {
                memcpy(p, buf, len);
                rc = shmchan_queue_commit(q, len);
            }
        } else {
            rc = shmchan_queue_send(q, buf, len, TQ_TIMEOUT_MS);
        }
        if (rc != SHMCHAN_OK) {
            fprintf(stderr, "writer %u: %s at %u\n", id, shmchan_errname(rc), c);
            return 1;
        }
    }
    shmchan_queue_close(q);
    return 0;
}

/*
 * arg: "name writers count out": receive count messages from each writer,
 * each writer's in its order, each once, intact; then a stop message. Uses
 * the three receive calls in turn. Writes "received" to out.
 */
HELPER(queue_mp_subscriber)
{
    char name[64], out[512];
    t_arg_word(arg, 0, name, sizeof(name));
    uint32_t writers = t_arg_u32(arg, 1), count = t_arg_u32(arg, 2);
    t_arg_word(arg, 3, out, sizeof(out));
    shmchan_opts o = t_opts(SHMCHAN_SUBSCRIBE);
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(name, &o, &q) != SHMCHAN_OK) {
        return 3;
    }
    uint32_t next[16] = {0};
    uint64_t received = 0, last_seq = 0;
    uint8_t buf[8 * TQ_MAXMSG];
    bool stop = false;
    for (uint64_t call = 0; !stop; call++) {
        shmchan_msg msgs[8];
        size_t count_got = 0, len = 0;
        int rc;
        if (call % 3 == 0) {
            rc = shmchan_queue_recv(q, buf, sizeof(buf), TQ_TIMEOUT_MS, &len, &msgs[0]);
            msgs[0].data = buf;
            count_got = 1;
        } else if (call % 3 == 1) {
            rc = shmchan_queue_recv_batch(q, buf, sizeof(buf), 8, TQ_TIMEOUT_MS, msgs,
                                          &count_got);
        } else {
            rc = shmchan_queue_peek(q, TQ_TIMEOUT_MS, &msgs[0]);
            count_got = 1;
        }
        if (rc != SHMCHAN_OK) {
            fprintf(stderr, "subscriber: %s\n", shmchan_errname(rc));
            return 1;
        }
        for (size_t i = 0; i < count_got; i++) {
            tq_head h;
            if (tq_verify(msgs[i].data, (size_t)msgs[i].len, &h) != 0 ||
                msgs[i].seq <= last_seq || msgs[i].lost != 0) {
                fprintf(stderr, "subscriber: bad message seq %llu\n",
                        (unsigned long long)msgs[i].seq);
                return 2;
            }
            last_seq = msgs[i].seq;
            if (h.writer == TQ_STOP) {
                stop = true;
                continue;
            }
            if (h.writer >= writers || h.counter != next[h.writer]) {
                fprintf(stderr, "subscriber: writer %u counter %u, want %u\n", h.writer,
                        h.counter, h.writer < 16 ? next[h.writer] : 0);
                return 2;
            }
            next[h.writer]++;
            received++;
        }
        if (call % 3 == 2 && shmchan_queue_release(q) != SHMCHAN_OK) {
            return 4;
        }
    }
    for (uint32_t w = 0; w < writers; w++) {
        if (next[w] != count) {
            return 5;
        }
    }
    shmchan_queue_close(q);
    FILE *f = fopen(out, "w");
    if (f == NULL) {
        return 6;
    }
    fprintf(f, "%llu\n", (unsigned long long)received);
    fclose(f);
    return 0;
}

static uint64_t
read_u64_file(const char *path)
{
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    T_TRUE(f != NULL && fscanf(f, "%llu", &v) == 1);
    fclose(f);
    return v;
}

static void
four_writers_four_subscribers(uint64_t capacity)
{
    enum { NW = 4, NS = 4, COUNT = 5000 };
    const char *n = t_name();
    shmchan_queue *q = tq_create(n, capacity, TQ_MAXMSG, 0);
    const char *out[NS];
    t_proc subs[NS], writers[NW];
    char arg[700];
    for (int i = 0; i < NS; i++) {
        out[i] = t_path();
        snprintf(arg, sizeof(arg), "%s %d %d %s", n, NW, COUNT, out[i]);
        subs[i] = t_spawn("queue_mp_subscriber", arg);
    }
    await_readers(n, NS);
    for (int i = 0; i < NW; i++) {
        snprintf(arg, sizeof(arg), "%s %d %d", n, i, COUNT);
        writers[i] = t_spawn("queue_mp_writer", arg);
    }
    for (int i = 0; i < NW; i++) {
        T_EQ_U64(t_wait_bounded(writers[i], 120000), 0);
    }
    send_stop(q);
    for (int i = 0; i < NS; i++) {
        T_EQ_U64(t_wait_bounded(subs[i], 120000), 0);
        T_EQ_U64(read_u64_file(out[i]), NW * COUNT);
    }
    shmchan_info info;
    tq_info(n, &info);
    T_EQ_U64(info.messages, NW * COUNT + 1);
    T_EQ_U64(info.drops, 0);
    shmchan_queue_close(q);
}

TEST(queue_4_writers_4_subscribers)
{
    four_writers_four_subscribers(32768); /* small: writers wait a lot */
}

/* A big ring: writers rarely wait, and claims rewind (the readers keep up). */
TEST(queue_4_writers_4_subscribers_big_ring)
{
    four_writers_four_subscribers(2 * shmchan__ring_window());
}

/* arg: "name out": take messages until a stop; write "writer counter" lines. */
/* Check in at the gate (create gate.<index>), then wait until all n workers
 * did: the others must get messages meanwhile. One file each, as appends
 * of several processes to one file are not atomic everywhere (Wine).
 * 0, or 1 after 60 s. */
static int
gate_wait(const char *gate, unsigned index, unsigned n)
{
    char path[600];
    snprintf(path, sizeof(path), "%s.%u", gate, index);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fclose(f) != 0) {
        return 1;
    }
    for (uint64_t end = t_now_ns() + UINT64_C(60000000000); t_now_ns() < end;) {
        unsigned in = 0;
        for (unsigned i = 0; i < n; i++) {
            snprintf(path, sizeof(path), "%s.%u", gate, i);
            f = fopen(path, "rb");
            in += f != NULL;
            if (f != NULL) {
                fclose(f);
            }
        }
        if (in == n) {
            return 0;
        }
        t_sleep_ms(1);
    }
    fprintf(stderr, "worker: the other workers got no message in 60 s\n");
    return 1;
}

/* arg: "name out gate workers index": after its first message a worker
 * waits at the gate until every worker got one (work is shared, not hoarded). */
HELPER(queue_mp_worker)
{
    char name[64], out[512], gate[512];
    t_arg_word(arg, 0, name, sizeof(name));
    t_arg_word(arg, 1, out, sizeof(out));
    t_arg_word(arg, 2, gate, sizeof(gate));
    unsigned workers = t_arg_u32(arg, 3), index = t_arg_u32(arg, 4);
    bool first = true;
    shmchan_opts o = t_opts(SHMCHAN_WORKER);
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(name, &o, &q) != SHMCHAN_OK) {
        return 3;
    }
    FILE *f = fopen(out, "w");
    if (f == NULL) {
        return 6;
    }
    uint8_t buf[4 * TQ_MAXMSG];
    for (uint64_t call = 0;; call++) {
        shmchan_msg msgs[4];
        size_t got = 0, len = 0;
        int rc;
        if (call % 3 == 0) {
            rc = shmchan_queue_recv(q, buf, sizeof(buf), TQ_TIMEOUT_MS, &len, &msgs[0]);
            msgs[0].data = buf;
            got = 1;
        } else if (call % 3 == 1) {
            rc = shmchan_queue_recv_batch(q, buf, sizeof(buf), 4, TQ_TIMEOUT_MS, msgs, &got);
        } else {
            rc = shmchan_queue_peek(q, TQ_TIMEOUT_MS, &msgs[0]);
            got = 1;
        }
        if (rc != SHMCHAN_OK) {
            fprintf(stderr, "worker: %s\n", shmchan_errname(rc));
            return 1;
        }
        bool stop = false;
        for (size_t i = 0; i < got; i++) {
            tq_head h;
            if (tq_verify(msgs[i].data, (size_t)msgs[i].len, &h) != 0) {
                return 2;
            }
            if (h.writer == TQ_STOP) {
                stop = true;
            } else {
                fprintf(f, "%u %u\n", h.writer, h.counter);
            }
        }
        if (call % 3 == 2 && shmchan_queue_release(q) != SHMCHAN_OK) {
            return 4;
        }
        if (first && !stop && gate[0] != '\0') {
            first = false;
            if (gate_wait(gate, index, workers) != 0) {
                return 5;
            }
        }
        if (stop) {
            break;
        }
    }
    fclose(f);
    shmchan_queue_close(q);
    return 0;
}

static void
three_writers_four_workers(uint64_t capacity, int count)
{
    enum { NW = 3, NK = 4 };
    const char *n = t_name();
    shmchan_queue *q = tq_create(n, capacity, TQ_MAXMSG, 0);
    const char *out[NK], *gate = t_path();
    t_proc workers[NK], writers[NW];
    char arg[1200];
    for (int i = 0; i < NK; i++) {
        out[i] = t_path();
        snprintf(arg, sizeof(arg), "%s %s %s %d %d", n, out[i], gate, NK, i);
        workers[i] = t_spawn("queue_mp_worker", arg);
    }
    await_readers(n, NK);
    for (int i = 0; i < NW; i++) {
        snprintf(arg, sizeof(arg), "%s %d %d", n, i, count);
        writers[i] = t_spawn("queue_mp_writer", arg);
    }
    for (int i = 0; i < NW; i++) {
        T_EQ_U64(t_wait_bounded(writers[i], 120000), 0);
    }
    /* One stop at a time (a batch could take two): each worker leaves at its
     * first, and the next stop goes out once somebody left. */
    bool done[NK] = {false};
    for (int left = 0; left < NK; left++) {
        send_stop(q);
        for (int tries = 0;; tries++) {
            T_TRUE(tries < 100000);
            int i = tries % NK;
            int st = done[i] ? -1 : t_wait_timeout(workers[i], 1);
            if (st >= 0) {
                T_EQ_U64(st, 0);
                done[i] = true;
                break;
            }
        }
    }
    uint8_t *seen = calloc((size_t)NW * (size_t)count, 1);
    T_TRUE(seen != NULL);
    int busy = 0;
    for (int i = 0; i < NK; i++) {
        FILE *f = fopen(out[i], "r");
        T_TRUE(f != NULL);
        unsigned w, c;
        int mine = 0;
        while (fscanf(f, "%u %u", &w, &c) == 2) {
            T_TRUE(w < NW && c < (unsigned)count);
            T_EQ_U64(seen[w * (unsigned)count + c], 0); /* never twice */
            seen[w * (unsigned)count + c] = 1;
            mine++;
        }
        fclose(f);
        busy += mine > 0;
    }
    for (int i = 0; i < NW * count; i++) {
        T_EQ_U64(seen[i], 1); /* never lost */
    }
    free(seen);
    for (int i = 0; i < NK; i++) {
        snprintf(arg, sizeof(arg), "%s.%d", gate, i);
        (void)remove(arg);
    }
    printf("%d of %d workers got messages\n", busy, NK);
    T_EQ_U64(busy, NK); /* each waited at the gate until all had work */
    shmchan_queue_close(q);
}

TEST(queue_4_workers_share)
{
    three_writers_four_workers(32768, 4000);
}

/* A big ring, where claims rewind (the gate then counts work_pos and the
 * workers' announcements). */
TEST(queue_4_workers_share_big_ring)
{
    three_writers_four_workers(2 * shmchan__ring_window(), 12000);
}

/* ------------------------------------------------ rewinding, two processes */

static bool
file_touch(const char *path)
{
    FILE *f = fopen(path, "wb");
    return f != NULL && fclose(f) == 0;
}

/* Wait up to 60 s for a file to exist. */
static bool
file_await(const char *path)
{
    for (uint64_t end = t_now_ns() + UINT64_C(60000000000); t_now_ns() < end;) {
        FILE *f = fopen(path, "rb");
        if (f != NULL) {
            fclose(f);
            return true;
        }
        t_sleep_ms(1);
    }
    return false;
}

/* Take the next message in place: key's bytes (or the 8-byte stop, whose
 * count goes to *stop); *at: where it lay. 0, or why not. */
static int
rewind_peek(shmchan_queue *q, uint64_t key, uintptr_t *at, uint64_t *stop)
{
    shmchan_msg m;
    int rc = shmchan_queue_peek(q, TQ_TIMEOUT_MS, &m);
    if (rc != SHMCHAN_OK) {
        fprintf(stderr, "rewind reader: %s at key %" PRIu64 "\n", shmchan_errname(rc), key);
        return 2;
    }
    *at = (uintptr_t)m.data;
    if (m.len == sizeof(*stop)) {
        memcpy(stop, m.data, sizeof(*stop));
    } else if (m.len != tq_rewind_len() || m.lost != 0 || m.seq != key + 1 ||
               !tq_check(m.data, (size_t)m.len, key)) {
        fprintf(stderr, "rewind reader: key %" PRIu64 " is not intact\n", key);
        return 4;
    }
    return shmchan_queue_release(q) == SHMCHAN_OK ? 0 : 5;
}

/* arg: "name gate k": a subscriber takes messages 0..k-1 as they come,
 * creates gate.read, waits for gate.go and takes the rest up to the stop,
 * which carries their count. Message k must lie where message 0 lay: the
 * writer's first claim after gate.read rewound. */
HELPER(queue_rewind_reader)
{
    char name[64], gate[512], path[600];
    t_arg_word(arg, 0, name, sizeof(name));
    t_arg_word(arg, 1, gate, sizeof(gate));
    uint64_t k = t_arg_u32(arg, 2), stop = UINT64_MAX, key = 0;
    shmchan_opts o = t_opts(SHMCHAN_SUBSCRIBE);
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(name, &o, &q) != SHMCHAN_OK) {
        return 3;
    }
    uintptr_t first = 0, at = 0;
    int rc = 0;
    for (; rc == 0 && key < k; key++) {
        rc = rewind_peek(q, key, &at, &stop);
        first = key == 0 ? at : first;
    }
    snprintf(path, sizeof(path), "%s.read", gate);
    if (rc != 0 || !file_touch(path)) {
        return rc != 0 ? rc : 6;
    }
    snprintf(path, sizeof(path), "%s.go", gate);
    if (!file_await(path)) {
        return 7;
    }
    for (; rc == 0 && stop == UINT64_MAX; key++) {
        rc = rewind_peek(q, key, &at, &stop);
        if (rc == 0 && key == k && at != first) {
            fprintf(stderr, "rewind reader: the burst did not start at the ring's start\n");
            rc = 8;
        }
    }
    shmchan_queue_close(q);
    return rc != 0 ? rc : stop == key - 1 ? 0 : 9;
}

/*
 * Block mode, two processes (issue 14): a subscriber keeps up with a writer
 * past the window, then stops right at the tail; the writer's next claim
 * rewinds, and a burst sent without waiting still gets the whole capacity
 * (before: only the window offset). The subscriber then reads every message
 * intact, from the ring's start.
 */
TEST(queue_rewind_burst_two_processes)
{
    const char *n = t_name(), *gate = t_path();
    uint64_t window = shmchan__ring_window(), ring = 2 * window;
    size_t len = tq_rewind_len();
    uint64_t span = 16 + len, k = (window + span - 1) / span;
    shmchan_queue *w = tq_create(n, ring, len, 0);
    char arg[700], path[600];
    snprintf(arg, sizeof(arg), "%s %s %u", n, gate, (unsigned)k);
    t_proc p = t_spawn("queue_rewind_reader", arg);
    await_readers(n, 1);
    uint8_t *msg = malloc(len);
    T_TRUE(msg != NULL);
    uint64_t key = 0;
    for (; key < k; key++) {
        tq_fill(msg, len, key);
        T_OK(shmchan_queue_send(w, msg, len, TQ_TIMEOUT_MS));
    }
    snprintf(path, sizeof(path), "%s.read", gate);
    T_TRUE(file_await(path));
    uint64_t room = (ring - 16) / span - 1; /* one a lap's end may pad */
    for (uint64_t i = 0; i < room; i++, key++) {
        tq_fill(msg, len, key);
        T_OK(shmchan_queue_send(w, msg, len, 0));
    }
    snprintf(path, sizeof(path), "%s.go", gate);
    T_TRUE(file_touch(path));
    T_OK(shmchan_queue_send(w, &key, sizeof(key), TQ_TIMEOUT_MS));
    T_EQ_U64(t_wait_bounded(p, 60000), 0);
    free(msg);
    snprintf(path, sizeof(path), "%s.read", gate);
    remove(path);
    snprintf(path, sizeof(path), "%s.go", gate);
    remove(path);
    shmchan_queue_close(w);
}

/* ------------------------------------------------------- overwrite mode */

/* arg: "name count": one writer, message i carries key i (its sequence - 1). */
HELPER(queue_ow_writer)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    uint32_t count = t_arg_u32(arg, 1);
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(name, NULL, &q) != SHMCHAN_OK) {
        return 3;
    }
    uint8_t buf[TQ_MAXMSG];
    for (uint32_t i = 0; i < count; i++) {
        size_t len = 1 + (i * 13u) % (TQ_MAXMSG - 1);
        tq_fill(buf, len, i);
        if (shmchan_queue_send(q, buf, len, 0) != SHMCHAN_OK) {
            return 1;
        }
        if (i % 1024 == 0) {
            t_sleep_ms(1); /* let the reader run now and then */
        }
    }
    shmchan_queue_close(q);
    return 0;
}

/* arg: "name count out": read until the last message; every message intact,
 * every gap announced as lost. Writes "received lost". */
HELPER(queue_ow_subscriber)
{
    char name[64], out[512];
    t_arg_word(arg, 0, name, sizeof(name));
    uint32_t count = t_arg_u32(arg, 1);
    t_arg_word(arg, 2, out, sizeof(out));
    shmchan_opts o = t_opts(SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST);
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(name, &o, &q) != SHMCHAN_OK) {
        return 3;
    }
    uint64_t expect = 1, received = 0, lost = 0;
    uint8_t buf[4 * TQ_MAXMSG];
    for (uint64_t call = 0; expect <= count; call++) {
        shmchan_msg msgs[4];
        size_t got = 0, len = 0;
        int rc;
        if (call % 2 == 0) {
            rc = shmchan_queue_recv(q, buf, sizeof(buf), TQ_TIMEOUT_MS, &len, &msgs[0]);
            msgs[0].data = buf;
            got = 1;
        } else {
            rc = shmchan_queue_recv_batch(q, buf, sizeof(buf), 4, TQ_TIMEOUT_MS, msgs, &got);
        }
        if (rc != SHMCHAN_OK) {
            return 1;
        }
        for (size_t i = 0; i < got; i++) {
            shmchan_msg *m = &msgs[i];
            uint64_t key = m->seq - 1;
            if (m->seq != expect + m->lost || m->len != 1 + (key * 13u) % (TQ_MAXMSG - 1) ||
                !tq_check(m->data, (size_t)m->len, key)) {
                fprintf(stderr, "seq %llu expect %llu lost %llu\n",
                        (unsigned long long)m->seq, (unsigned long long)expect,
                        (unsigned long long)m->lost);
                return 2;
            }
            lost += m->lost;
            received++;
            expect = m->seq + 1;
        }
        if (call == 0) {
            /* Fall a thousand messages behind (far more than the ring holds),
             * so that losses are certain, whatever the machine's speed. */
            shmchan_info info = {.struct_size = sizeof(info)};
            for (int i = 0; i < 100000 && info.seq < expect + 1000 && info.seq <= count; i++) {
                if (shmchan_queue_info(q, &info) != SHMCHAN_OK) {
                    return 5;
                }
                t_sleep_ms(1);
            }
        } else if (call % 64 == 0) {
            t_sleep_ms(2); /* fall behind now and then */
        }
    }
    shmchan_queue_close(q);
    FILE *f = fopen(out, "w");
    if (f == NULL) {
        return 6;
    }
    fprintf(f, "%llu %llu\n", (unsigned long long)received, (unsigned long long)lost);
    fclose(f);
    return 0;
}

TEST(queue_overwrite_slow_subscriber)
{
    enum { COUNT = 200000 };
    const char *n = t_name();
    shmchan_queue *q = tq_create(n, 16384, TQ_MAXMSG, SHMCHAN_POLICY_OVERWRITE);
    const char *out = t_path();
    char arg[700];
    snprintf(arg, sizeof(arg), "%s %d %s", n, COUNT, out);
    t_proc sub = t_spawn("queue_ow_subscriber", arg);
    await_readers(n, 1);
    snprintf(arg, sizeof(arg), "%s %d", n, COUNT);
    T_EQ_U64(t_wait_bounded(t_spawn("queue_ow_writer", arg), 120000), 0);
    T_EQ_U64(t_wait_bounded(sub, 120000), 0);
    FILE *f = fopen(out, "r");
    unsigned long long received = 0, lost = 0;
    T_TRUE(f != NULL && fscanf(f, "%llu %llu", &received, &lost) == 2);
    fclose(f);
    printf("received %llu, lost %llu of %d\n", received, lost, COUNT);
    T_EQ_U64(received + lost, COUNT); /* every message received or counted lost */
    T_TRUE(lost > 0);
    shmchan_info info;
    tq_info(n, &info);
    T_EQ_U64(info.drops, lost);
    shmchan_queue_close(q);
}

/* ------------------------------------------------------------- crashes */

/* arg: "name": commit one message, then reserve and die before committing. */
HELPER(queue_die_reserved)
{
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(arg, NULL, &q) != SHMCHAN_OK) {
        return 3;
    }
    if (shmchan_queue_send(q, "before", 6, 0) != SHMCHAN_OK) {
        return 1;
    }
    void *p = NULL;
    if (shmchan_queue_reserve(q, 100, 0, &p) != SHMCHAN_OK) {
        return 2;
    }
    memset(p, 'X', 50);
    t_die();
    return 4;
}

TEST(queue_writer_dies_reserved)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 4096, 128, 0);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    shmchan_queue *k = tq_open(n, SHMCHAN_WORKER);
    T_EQ_U64(t_wait(t_spawn("queue_die_reserved", n)), t_killed_status());
    T_OK(shmchan_queue_send(w, "after", 5, 0));
    char buf[128];
    size_t len = 0;
    shmchan_msg m;
    for (int who = 0; who < 2; who++) {
        shmchan_queue *q = who == 0 ? r : k;
        T_OK(shmchan_queue_recv(q, buf, sizeof(buf), 5000, &len, &m));
        T_MEMEQ(buf, "before", 6);
        T_EQ_U64(m.seq, 1);
        /* Stuck at the dead writer's record until its death is known. */
        T_OK(shmchan_queue_recv(q, buf, sizeof(buf), 5000, &len, &m));
        T_EQ_U64(len, 5);
        T_MEMEQ(buf, "after", 5);
        T_EQ_U64(m.seq, 3);
        T_EQ_U64(m.lost, 0);
    }
    shmchan_info info;
    tq_info(n, &info);
    T_TRUE(info.recovered >= 1);
    T_EQ_U64(info.messages, 2);
    T_EQ_U64(info.dead_writers, 1); /* its slot until somebody takes it */
    /* A new writer takes the dead one's slot. */
    shmchan_queue *w2 = tq_open(n, 0);
    shmchan_queue *w3 = tq_open(n, 0);
    tq_info(n, &info);
    T_EQ_U64(info.dead_writers, 0);
    T_EQ_U64(info.writers, 3);
    shmchan_queue_close(w3);
    shmchan_queue_close(w2);
    shmchan_queue_close(k);
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

/* arg: "name flags": join as a reader, say so on stdout, then wait to be killed. */
HELPER(queue_reader_sleeps)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    shmchan_opts o = t_opts(t_arg_u32(arg, 1));
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(name, &o, &q) != SHMCHAN_OK) {
        return 3;
    }
    for (int i = 0; i < 120; i++) { /* the test kills us long before */
        t_sleep_ms(1000);
    }
    return 7;
}

TEST(queue_dead_reader_frees_writers)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 4096, 64, 0);
    char arg[128];
    for (int role = 0; role < 2; role++) {
        snprintf(arg, sizeof(arg), "%s %u", n, role == 0 ? SHMCHAN_SUBSCRIBE : SHMCHAN_WORKER);
        t_proc p = t_spawn("queue_reader_sleeps", arg);
        await_readers(n, 1);
        /* A live reader of the other role reads everything (issue 12: with
         * no live reader, what nobody read would hold writers back). */
        shmchan_queue *k = tq_open(n, role == 0 ? SHMCHAN_WORKER : SHMCHAN_SUBSCRIBE);
        uint8_t msg[64] = {0}, buf[64];
        size_t len = 0;
        while (shmchan_queue_send(w, msg, 64, 0) == SHMCHAN_OK) {
        }
        while (shmchan_queue_recv(k, buf, sizeof(buf), 0, &len, NULL) == SHMCHAN_OK) {
        }
        T_ERR(shmchan_queue_send(w, msg, 64, 20), SHMCHAN_ETIMEDOUT); /* alive: it waits */
        t_kill(p);
        T_EQ_U64(t_wait(p), t_killed_status());
        for (int i = 0; i < 200; i++) {
            T_OK(shmchan_queue_send(w, msg, 64, 10000)); /* its death frees us */
            T_OK(shmchan_queue_recv(k, buf, sizeof(buf), 0, &len, NULL));
        }
        shmchan_queue_close(k);
        shmchan_info info;
        tq_info(n, &info);
        T_EQ_U64(info.readers, 0);
        T_EQ_U64(info.dead_readers, 0); /* dropped */
        T_TRUE(info.recovered >= (uint64_t)role + 1);
    }
    shmchan_queue_close(w);
}

/* --------------------------------------------------------------- replay */

/* arg: "path count die": a file-backed queue written by a process that ends
 * (closing, or killed with a reservation open). */
HELPER(queue_file_writer)
{
    char path[512];
    t_arg_word(arg, 0, path, sizeof(path));
    uint32_t count = t_arg_u32(arg, 1), die = t_arg_u32(arg, 2);
    shmchan_opts o = t_opts(SHMCHAN_FILE);
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(path, &o, &q) != SHMCHAN_OK) {
        return 3;
    }
    uint8_t buf[TQ_MAXMSG];
    for (uint32_t i = 0; i < count; i++) {
        size_t len = 1 + (i * 29u) % (TQ_MAXMSG - 1);
        tq_fill(buf, len, i);
        if (shmchan_queue_send(q, buf, len, 0) != SHMCHAN_OK) {
            return 1;
        }
    }
    if (die) {
        void *p = NULL;
        if (shmchan_queue_reserve(q, 10, 0, &p) != SHMCHAN_OK) {
            return 2;
        }
        t_die();
    }
    shmchan_queue_close(q);
    return 0;
}

TEST(queue_file_replay)
{
    const char *path = t_path();
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_EXCL | SHMCHAN_FILE);
    o.max_msg = TQ_MAXMSG;
    o.capacity = 65536;
    shmchan_queue *q = NULL;
    T_OK(shmchan_queue_open(path, &o, &q));
    shmchan_queue_close(q); /* nobody has it open now */
    char arg[700];
    snprintf(arg, sizeof(arg), "%s 100 0", path);
    T_EQ_U64(t_wait(t_spawn("queue_file_writer", arg)), 0);
    snprintf(arg, sizeof(arg), "%s 50 1", path);
    T_EQ_U64(t_wait(t_spawn("queue_file_writer", arg)), t_killed_status());
    /* Every process is gone: a late subscriber replays what the file holds. */
    o = t_opts(SHMCHAN_FILE | SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST);
    T_OK(shmchan_queue_open(path, &o, &q));
    uint8_t buf[TQ_MAXMSG];
    for (uint32_t i = 0; i < 150; i++) {
        size_t len = 0;
        shmchan_msg m;
        T_OK(shmchan_queue_recv(q, buf, sizeof(buf), 1000, &len, &m));
        uint32_t key = i < 100 ? i : i - 100;
        T_EQ_U64(m.seq, i + 1);
        T_EQ_U64(len, 1 + (key * 29u) % (TQ_MAXMSG - 1));
        T_TRUE(tq_check(buf, len, key));
    }
    size_t len = 0;
    T_ERR(shmchan_queue_recv(q, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EAGAIN);
    /* The dead writer's reservation was dropped: the next message follows it. */
    T_OK(shmchan_queue_send(q, "new", 3, 0));
    shmchan_msg m;
    T_OK(shmchan_queue_recv(q, buf, sizeof(buf), 1000, &len, &m));
    T_EQ_U64(m.seq, 152);
    T_MEMEQ(buf, "new", 3);
    shmchan_queue_close(q);
}
