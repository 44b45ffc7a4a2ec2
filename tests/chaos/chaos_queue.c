/*
 * Queue roles of the chaos driver.
 *
 * Writers send numbered messages (copies, reserve/commit with some aborted,
 * and batches, which go in runs) and store their commit count after each
 * send. Before stopping, each writer makes one more send with a long
 * timeout: if dead readers or dead writers kept the ring blocked, it fails.
 *
 * Subscribers check each message and the order: sequences rising, each
 * writer's counters rising, and in block mode consecutive once seen (a
 * subscriber that joined before the writers must see each from 0). Stable
 * subscribers (never killed) report what they got from each writer, for the
 * driver to compare with the commits. Workers mark each message in a shared
 * bitmap: a message handed to two workers is a failure.
 */
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "chaos.h"

#define QUEUE_MAX_MSG CHAOS_MAX_MSG
#define QUEUE_CAPACITY (64u * 1024u)
#define FINAL_SEND_MS 10000 /* the last send may wait this long for space */
#define IDLE_LOOKS 5        /* empty 20 ms receives, once writers are done */

static int
open_queue(chaos_slot *s, const chaos_chan *c, uint32_t flags, shmchan_queue **out)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = flags;
    if (c->create_race) {
        o.flags |= SHMCHAN_CREATE;
        o.policy = c->policy;
        o.max_msg = QUEUE_MAX_MSG;
        o.capacity = QUEUE_CAPACITY;
        o.max_readers = CHAOS_SLOTS;
        o.max_writers = CHAOS_SLOTS;
    }
    int rc = shmchan_queue_open(c->name, &o, out);
    if (rc != SHMCHAN_OK) {
        chaos_fail(s, "queue open: %s", shmchan_errname(rc));
        return rc;
    }
    atomic_store(&s->ready, 1);
    return SHMCHAN_OK;
}

int
chaos_queue_create(const chaos_chan *c)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_CREATE | SHMCHAN_EXCL;
    o.policy = c->policy;
    o.max_msg = QUEUE_MAX_MSG;
    o.capacity = QUEUE_CAPACITY;
    o.max_readers = CHAOS_SLOTS;
    o.max_writers = CHAOS_SLOTS;
    shmchan_queue *q = NULL;
    int rc = shmchan_queue_open(c->name, &o, &q);
    shmchan_queue_close(q);
    return rc;
}

static int
send_one(shmchan_queue *q, uint64_t *rng, uint32_t inc, uint64_t counter, int64_t timeout)
{
    size_t len = chaos_msg_len(rng);
    if (chaos_rand(rng) & 1) {
        uint8_t msg[CHAOS_MAX_MSG];
        return shmchan_queue_send(q, msg, chaos_msg_make(msg, inc, counter, len), timeout);
    }
    void *buf = NULL;
    int rc = shmchan_queue_reserve(q, len, timeout, &buf);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (chaos_rand(rng) % 16 == 0) {
        memset(buf, 0xAB, len); /* never to be seen */
        rc = shmchan_queue_abort(q);
        return rc == SHMCHAN_OK ? SHMCHAN_EAGAIN : rc;
    }
    chaos_msg_make(buf, inc, counter, len);
    return shmchan_queue_commit(q, len);
}

/* Messages counter, counter + 1, ... (at most 8, never past CHAOS_BITS) in
 * one send_batch, which sends them in runs; *sent_out says how many went. */
static int
send_some(shmchan_queue *q, uint64_t *rng, uint32_t inc, uint64_t counter, int64_t timeout,
          size_t *sent_out)
{
    static uint8_t bufs[8][CHAOS_MAX_MSG];
    shmchan_msg msgs[8];
    size_t n = 2 + (size_t)(chaos_rand(rng) % 7);
    if (counter + n > CHAOS_BITS) {
        n = CHAOS_BITS - counter;
    }
    for (size_t i = 0; i < n; i++) {
        msgs[i].data = bufs[i];
        msgs[i].len = chaos_msg_make(bufs[i], inc, counter + i, chaos_msg_len(rng));
    }
    atomic_store(&chaos_b->batch[inc], (uint32_t)n);
    return shmchan_queue_send_batch(q, msgs, n, timeout, sent_out);
}

int
chaos_queue_writer(chaos_slot *s, const chaos_chan *c, uint64_t seed)
{
    shmchan_queue *q = NULL;
    if (open_queue(s, c, 0, &q) != SHMCHAN_OK) {
        return 1;
    }
    uint64_t rng = seed;
    uint32_t inc = (uint32_t)atomic_load(&s->inc);
    uint64_t counter = 0;
    bool final = false;
    while (counter < CHAOS_BITS && atomic_load(&s->failures) == 0) {
        final = atomic_load(&chaos_b->stop) != 0;
        int64_t timeout = final ? FINAL_SEND_MS : 50;
        size_t sent = 1;
        int rc;
        if (chaos_rand(&rng) % 4 == 0 && counter + 1 < CHAOS_BITS) {
            rc = send_some(q, &rng, inc, counter, timeout, &sent);
        } else {
            atomic_store(&chaos_b->batch[inc], 1);
            rc = send_one(q, &rng, inc, counter, timeout);
        }
        if (rc == SHMCHAN_OK) {
            counter += sent;
            atomic_store(&chaos_b->committed[inc], counter);
            atomic_fetch_add(&s->sent, sent);
            if (final) {
                break;
            }
        } else if ((rc == SHMCHAN_ETIMEDOUT && final) ||
                   (rc != SHMCHAN_EAGAIN && rc != SHMCHAN_ETIMEDOUT)) {
            chaos_fail(s, "queue send (final %d): %s", final, shmchan_errname(rc));
        }
        if (chaos_rand(&rng) % 256 == 0) {
            sched_yield();
        }
    }
    shmchan_queue_close(q);
    return atomic_load(&s->failures) == 0 ? 0 : 1;
}

/* What a receiver remembers: the next counter it expects from each writer. */
typedef struct {
    int role;
    bool block;
    uint64_t seq;                /* last sequence received */
    uint64_t next[CHAOS_INCS];   /* expected counter + 1; 0: none seen yet */
} recv_state;

static void
check_order(chaos_slot *s, recv_state *st, uint32_t inc, uint64_t counter)
{
    uint64_t want = st->next[inc];
    bool stable = st->role == ROLE_QUEUE_STABLE;
    if (st->block && (want != 0 || stable)) {
        uint64_t expect = want == 0 ? 0 : want - 1;
        if (counter != expect) {
            chaos_fail(s, "writer %u: got counter %llu, expected %llu (%s)", inc,
                       (unsigned long long)counter, (unsigned long long)expect,
                       counter < expect ? "duplicate" : "lost");
        }
    } else if (want != 0 && counter + 1 < want) {
        chaos_fail(s, "writer %u: counter %llu after %llu", inc, (unsigned long long)counter,
                   (unsigned long long)(want - 2));
    }
    st->next[inc] = counter + 2;
    if (stable) {
        atomic_store(&chaos_b->received[atomic_load(&s->inc)][inc], counter + 1);
    }
}

static void
accept(chaos_slot *s, recv_state *st, const void *data, size_t len, uint64_t seq)
{
    uint32_t inc = 0;
    uint64_t counter = 0;
    const char *bad = chaos_msg_check(data, len, &inc, &counter);
    if (bad != NULL) {
        chaos_fail(s, "queue seq %llu: %s", (unsigned long long)seq, bad);
        return;
    }
    if (st->seq != 0 && seq <= st->seq) {
        chaos_fail(s, "queue sequence %llu after %llu", (unsigned long long)seq,
                   (unsigned long long)st->seq);
    }
    st->seq = seq;
    if (st->role == ROLE_QUEUE_WORKER) {
        if (counter >= CHAOS_BITS) {
            chaos_fail(s, "counter %llu out of range", (unsigned long long)counter);
            return;
        }
        uint64_t bit = UINT64_C(1) << (counter % 64);
        if (atomic_fetch_or(&chaos_b->taken[inc][counter / 64], bit) & bit) {
            chaos_fail(s, "writer %u counter %llu handed out twice", inc,
                       (unsigned long long)counter);
        }
    } else {
        check_order(s, st, inc, counter);
    }
    atomic_fetch_add(&s->checked, 1);
}

/* One receive by one of the paths; returns how many messages it got. */
static int
receive(chaos_slot *s, shmchan_queue *q, recv_state *st, uint64_t *rng)
{
    static uint8_t buf[8 * (CHAOS_MAX_MSG + 8)];
    shmchan_msg m, msgs[8];
    size_t len = 0, count = 0;
    int rc;
    /* Workers receive one at a time, so a killed worker loses at most one. */
    switch (chaos_rand(rng) % (st->role == ROLE_QUEUE_WORKER ? 2 : 3)) {
    case 0:
        rc = shmchan_queue_recv(q, buf, sizeof(buf), 20, &len, &m);
        if (rc == SHMCHAN_OK) {
            accept(s, st, buf, len, m.seq);
        }
        count = rc == SHMCHAN_OK;
        break;
    case 1:
        rc = shmchan_queue_peek(q, 20, &m);
        if (rc == SHMCHAN_OK) {
            len = m.len <= CHAOS_MAX_MSG ? (size_t)m.len : CHAOS_MAX_MSG;
            memcpy(buf, m.data, len);
            rc = shmchan_queue_release(q);
            if (rc == SHMCHAN_OK) {
                accept(s, st, buf, len, m.seq);
                count = 1;
            } else if (rc == SHMCHAN_ESTALE && !st->block) {
                rc = SHMCHAN_OK; /* overwritten while looked at: discarded */
            }
        }
        break;
    default:
        rc = shmchan_queue_recv_batch(q, buf, sizeof(buf), 8, 20, msgs, &count);
        for (size_t i = 0; rc == SHMCHAN_OK && i < count; i++) {
            accept(s, st, msgs[i].data, (size_t)msgs[i].len, msgs[i].seq);
        }
        break;
    }
    if (rc != SHMCHAN_OK && rc != SHMCHAN_EAGAIN && rc != SHMCHAN_ETIMEDOUT) {
        chaos_fail(s, "queue receive: %s", shmchan_errname(rc));
    }
    return rc == SHMCHAN_OK ? (int)count : 0;
}

int
chaos_queue_reader(chaos_slot *s, const chaos_chan *c, uint64_t seed)
{
    static recv_state st;
    memset(&st, 0, sizeof(st));
    st.role = atomic_load(&s->role);
    st.block = c->policy == SHMCHAN_POLICY_BLOCK;
    uint32_t flags = st.role == ROLE_QUEUE_WORKER   ? SHMCHAN_WORKER
                     : st.role == ROLE_QUEUE_STABLE ? SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST
                                                    : SHMCHAN_SUBSCRIBE;
    shmchan_queue *q = NULL;
    if (open_queue(s, c, flags, &q) != SHMCHAN_OK) {
        return 1;
    }
    uint64_t rng = seed;
    int idle = 0;
    while (idle < IDLE_LOOKS && atomic_load(&s->failures) == 0) {
        int got = receive(s, q, &st, &rng);
        idle = got == 0 && atomic_load(&chaos_b->writers_done) ? idle + 1 : 0;
    }
    shmchan_queue_close(q);
    return atomic_load(&s->failures) == 0 ? 0 : 1;
}
