/*
 * Latest-value roles of the chaos driver.
 *
 * Writers publish numbered messages (plain copies and begin/commit, some
 * aborted) and record each commit. Readers read, wait, and view in place,
 * and check every message they accept: intact, sequence never going back,
 * the same sequence always the same message, and each writer's messages in
 * its own order with no more of them between two looks than sequences.
 */
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include "chaos.h"

#define CREATE_RACE_MAX_MSG (1u << 20) /* a bigger region: a longer window to die in */

/* In a create race a read-only opener cannot create: until a creator lives
 * long enough, it finds no channel, an empty or a half-built one. */
static bool
transient(const chaos_chan *c, uint32_t flags, int rc)
{
    return c->create_race && (flags & SHMCHAN_RDONLY) &&
           (rc == SHMCHAN_ENOENT || rc == SHMCHAN_EINIT || rc == SHMCHAN_EBADMAGIC);
}

static int
open_latest(chaos_slot *s, const chaos_chan *c, uint32_t flags, shmchan_latest **out)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = flags | (c->create_race && !(flags & SHMCHAN_RDONLY) ? SHMCHAN_CREATE : 0);
    o.max_msg = c->create_race ? CREATE_RACE_MAX_MSG : CHAOS_MAX_MSG;
    uint64_t end = chaos_now_ns() + 5000000000u;
    /* The stable reader waits out the round: a writer created it by then. */
    bool stable = atomic_load(&s->role) == ROLE_LATEST_STABLE;
    _Atomic uint32_t *until = stable ? &chaos_b->writers_done : &chaos_b->stop;
    int rc = shmchan_latest_open(c->name, &o, out);
    while (transient(c, flags, rc) && (stable || chaos_now_ns() < end) && !atomic_load(until)) {
        usleep(1000);
        rc = shmchan_latest_open(c->name, &o, out);
    }
    if (rc != SHMCHAN_OK && transient(c, flags, rc) && stable) {
        rc = shmchan_latest_open(c->name, &o, out); /* the writers are done: it exists */
    }
    if (rc != SHMCHAN_OK && transient(c, flags, rc)) {
        return rc; /* the round ended before anybody created it (the driver checks) */
    }
    if (rc != SHMCHAN_OK) {
        chaos_fail(s, "latest open: %s", shmchan_errname(rc));
        return rc;
    }
    atomic_store(&s->ready, 1);
    return SHMCHAN_OK;
}

/* One message by begin/fill/commit; sometimes begun and aborted first. */
static int
publish_in_place(shmchan_latest *ch, uint64_t *rng, uint32_t inc, uint64_t counter, size_t len)
{
    void *buf = NULL;
    int rc = shmchan_latest_begin(ch, &buf);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (chaos_rand(rng) % 16 == 0) {
        memset(buf, 0xAB, len); /* garbage that must never be seen */
        rc = shmchan_latest_abort(ch);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        return publish_in_place(ch, rng, inc, counter, len);
    }
    chaos_msg_make(buf, inc, counter, len);
    return shmchan_latest_commit(ch, len, NULL);
}

int
chaos_latest_writer(chaos_slot *s, const chaos_chan *c, uint64_t seed)
{
    shmchan_latest *ch = NULL;
    if (open_latest(s, c, 0, &ch) != SHMCHAN_OK) {
        return 1;
    }
    uint64_t rng = seed;
    uint32_t inc = (uint32_t)atomic_load(&s->inc);
    uint8_t msg[CHAOS_MAX_MSG];
    /* At least one message: a creator that was slow to create (a loaded
     * machine, a 1 MiB region) still leaves the round something to check. */
    for (uint64_t counter = 0; counter == 0 || !atomic_load(&chaos_b->stop); counter++) {
        size_t len = chaos_msg_len(&rng);
        int rc;
        if (chaos_rand(&rng) & 1) {
            rc = shmchan_latest_publish(ch, msg, chaos_msg_make(msg, inc, counter, len), NULL);
        } else {
            rc = publish_in_place(ch, &rng, inc, counter, len);
        }
        if (rc != SHMCHAN_OK) {
            chaos_fail(s, "latest publish: %s", shmchan_errname(rc));
            break;
        }
        atomic_store(&chaos_b->committed[inc], counter + 1);
        atomic_fetch_add(&s->sent, 1);
        if (chaos_rand(&rng) % 256 == 0) {
            sched_yield();
        }
    }
    shmchan_latest_close(ch);
    return atomic_load(&s->failures) == 0 ? 0 : 1;
}

/* What a reader remembers between messages. */
typedef struct {
    uint64_t seq;                       /* last sequence accepted, 0: none */
    uint32_t inc;                       /* its message */
    uint64_t counter;
    uint64_t last_seq[CHAOS_INCS];      /* per writer: sequence and counter last seen */
    uint64_t last_counter[CHAOS_INCS];
} reader_state;

static void
accept(chaos_slot *s, reader_state *st, const uint8_t *buf, size_t len, uint64_t seq)
{
    uint32_t inc = 0;
    uint64_t counter = 0;
    const char *bad = chaos_msg_check(buf, len, &inc, &counter);
    if (bad != NULL) {
        chaos_fail(s, "latest seq %llu: %s", (unsigned long long)seq, bad);
        return;
    }
    if (seq < st->seq) {
        chaos_fail(s, "sequence went back: %llu after %llu", (unsigned long long)seq,
                   (unsigned long long)st->seq);
    } else if (seq == st->seq && (inc != st->inc || counter != st->counter)) {
        chaos_fail(s, "sequence %llu held two messages", (unsigned long long)seq);
    } else if (st->last_seq[inc] != 0 && seq > st->last_seq[inc]) {
        /* The writer's publishes each took a sequence, in its own order. */
        uint64_t dc = counter - st->last_counter[inc];
        if (counter <= st->last_counter[inc] || dc > seq - st->last_seq[inc]) {
            chaos_fail(s, "writer %u: counter %llu at seq %llu after %llu at seq %llu", inc,
                       (unsigned long long)counter, (unsigned long long)seq,
                       (unsigned long long)st->last_counter[inc],
                       (unsigned long long)st->last_seq[inc]);
        }
    }
    st->seq = seq;
    st->inc = inc;
    st->counter = counter;
    st->last_seq[inc] = seq;
    st->last_counter[inc] = counter;
    atomic_fetch_add(&s->checked, 1);
}

/* One look by one of the read paths; returns a failing code or OK. */
static int
look(chaos_slot *s, shmchan_latest *ch, reader_state *st, uint64_t *rng)
{
    uint8_t buf[CHAOS_MAX_MSG];
    size_t len = 0;
    uint64_t seq = 0;
    shmchan_msg m;
    int rc;
    switch (chaos_rand(rng) % 4) {
    case 0:
        rc = shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq);
        break;
    case 1:
        rc = shmchan_latest_read_next(ch, st->seq, buf, sizeof(buf), 20, &len, &seq);
        break;
    case 2:
        rc = shmchan_latest_view(ch, &m);
        if (rc == SHMCHAN_OK) {
            len = m.len <= sizeof(buf) ? (size_t)m.len : sizeof(buf);
            memcpy(buf, m.data, len);
            if (shmchan_latest_view_check(ch, &m) != SHMCHAN_OK) {
                return SHMCHAN_OK; /* overwritten meanwhile: the copy is void */
            }
            if (m.len > sizeof(buf)) {
                chaos_fail(s, "view: length %llu", (unsigned long long)m.len);
                return SHMCHAN_OK;
            }
            seq = m.seq;
        }
        break;
    default:
        rc = shmchan_latest_wait(ch, st->seq, 20, &seq);
        if (rc == SHMCHAN_OK) {
            rc = shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq);
        }
        break;
    }
    if (rc == SHMCHAN_OK) {
        accept(s, st, buf, len, seq);
    }
    return rc == SHMCHAN_EAGAIN || rc == SHMCHAN_ETIMEDOUT ? SHMCHAN_OK : rc;
}

/* The stable reader, once every writer is gone: what it reads now must be
 * the newest message (the driver checks it against the commit counts). */
static void
stable_final_read(chaos_slot *s, shmchan_latest *ch, reader_state *st)
{
    while (!atomic_load(&chaos_b->writers_done)) {
        usleep(1000);
    }
    uint8_t buf[CHAOS_MAX_MSG];
    size_t len = 0;
    uint64_t seq = 0;
    int rc = shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq);
    if (rc == SHMCHAN_OK) {
        uint64_t before = atomic_load(&s->failures);
        accept(s, st, buf, len, seq);
        if (atomic_load(&s->failures) == before) {
            atomic_store(&chaos_b->latest_final_inc, st->inc);
            atomic_store(&chaos_b->latest_final_count, st->counter + 1);
        }
    } else if (rc != SHMCHAN_EAGAIN) {
        chaos_fail(s, "final latest read: %s", shmchan_errname(rc));
    }
    atomic_store(&chaos_b->latest_checked, atomic_load(&s->checked));
}

int
chaos_latest_reader(chaos_slot *s, const chaos_chan *c, uint64_t seed)
{
    uint64_t rng = seed;
    shmchan_latest *ch = NULL;
    /* Read-only for the stable one: in a create race it must not create. */
    uint32_t flags = chaos_rand(&rng) % 3 == 0 || atomic_load(&s->role) == ROLE_LATEST_STABLE
                         ? SHMCHAN_RDONLY
                         : 0;
    int rc = open_latest(s, c, flags, &ch);
    if (rc != SHMCHAN_OK) {
        return transient(c, flags, rc) ? 0 : 1;
    }
    static reader_state st;
    memset(&st, 0, sizeof(st));
    while (!atomic_load(&chaos_b->stop) && atomic_load(&s->failures) == 0) {
        rc = look(s, ch, &st, &rng);
        if (rc != SHMCHAN_OK) {
            chaos_fail(s, "latest read: %s", shmchan_errname(rc));
        }
    }
    if (atomic_load(&s->role) == ROLE_LATEST_STABLE) {
        stable_final_read(s, ch, &st);
    }
    shmchan_latest_close(ch);
    return atomic_load(&s->failures) == 0 ? 0 : 1;
}
