/*
 * t_ring.c - the reference queue: a minimal single-producer single-consumer
 * ring in shared memory written for this benchmark.  Fixed 64-byte slots; a
 * message takes ceil(size / 64) consecutive slots.  The producer owns 'head'
 * and the consumer owns 'tail', each on its own cache line, both counting
 * slots since the start; each side keeps a private copy of the other's index
 * and re-reads it only when the ring looks full/empty.  Both sides busy-poll.
 * No features: no wake-ups, no variable sizes, no multiple readers/writers.
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SLOT 64

struct ring {
    alignas(64) _Atomic uint64_t head; /* slots written */
    alignas(64) _Atomic uint64_t tail; /* slots consumed */
    alignas(64) unsigned char slots[];
};

struct ring_local {
    uint64_t mine;     /* head for the producer, tail for the consumer */
    uint64_t theirs;   /* last seen value of the other index */
    uint64_t nslots;   /* power of two */
    uint64_t need;     /* slots per message */
};

static uint64_t slots_per_msg(const struct chan *ch)
{
    return (ch->cfg.msg_size + SLOT - 1) / SLOT;
}

static uint64_t ring_slots(const struct chan *ch)
{
    uint64_t want = slots_per_msg(ch) * (ch->cfg.depth < 2 ? 2 : ch->cfg.depth), n = 1;
    while (n < want)
        n <<= 1;
    return n;
}

static size_t ring_bytes(const struct chan *ch)
{
    return sizeof(struct ring) + ring_slots(ch) * SLOT;
}

static int ring_create(struct chan *ch)
{
    if (ch->cfg.writers > 1 || ch->cfg.readers > 1)
        return -ENOTSUP;
    ch->shared = bench_shm_alloc(ring_bytes(ch));
    return ch->shared ? 0 : -ENOMEM;
}

static int ring_open(struct chan *ch)
{
    struct ring_local *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    l->nslots = ring_slots(ch);
    l->need = slots_per_msg(ch);
    ch->local = l;
    return 0;
}

/* Copy between the message and the ring at slot position pos, wrapping. */
static void copy_in(struct ring *r, const struct ring_local *l, uint64_t pos, const void *msg, size_t len)
{
    size_t off = (size_t)(pos & (l->nslots - 1)) * SLOT, room = (size_t)l->nslots * SLOT - off;
    size_t first = len < room ? len : room;
    memcpy(r->slots + off, msg, first);
    memcpy(r->slots, (const char *)msg + first, len - first);
}

static void copy_out(const struct ring *r, const struct ring_local *l, uint64_t pos, void *msg, size_t len)
{
    size_t off = (size_t)(pos & (l->nslots - 1)) * SLOT, room = (size_t)l->nslots * SLOT - off;
    size_t first = len < room ? len : room;
    memcpy(msg, r->slots + off, first);
    memcpy((char *)msg + first, r->slots, len - first);
}

static int ring_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    struct ring *r = ch->shared;
    struct ring_local *l = ch->local;
    struct spin_wait w = {0, 0};
    while (l->mine + l->need - l->theirs > l->nslots) {
        l->theirs = atomic_load_explicit(&r->tail, memory_order_acquire);
        if (l->mine + l->need - l->theirs <= l->nslots)
            break;
        if (spin_step(&w, timeout_ns))
            return -ETIMEDOUT;
    }
    copy_in(r, l, l->mine, msg, ch->cfg.msg_size);
    l->mine += l->need;
    atomic_store_explicit(&r->head, l->mine, memory_order_release);
    return 0;
}

static int ring_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    struct ring *r = ch->shared;
    struct ring_local *l = ch->local;
    struct spin_wait w = {0, 0};
    while (l->theirs - l->mine < l->need) {
        l->theirs = atomic_load_explicit(&r->head, memory_order_acquire);
        if (l->theirs - l->mine >= l->need)
            break;
        if (spin_step(&w, timeout_ns))
            return -ETIMEDOUT;
    }
    copy_out(r, l, l->mine, msg, ch->cfg.msg_size);
    l->mine += l->need;
    atomic_store_explicit(&r->tail, l->mine, memory_order_release);
    return 0;
}

static void ring_close(struct chan *ch)
{
    free(ch->local);
    ch->local = NULL;
}

static void ring_destroy(struct chan *ch)
{
    bench_shm_free(ch->shared, ring_bytes(ch));
}

static const struct transport transport_ring = {
    .name = "ring",
    .summary = "reference SPSC shared-memory ring, 64 B slots, busy-poll",
    .caps = CAP_LATENCY | CAP_STREAM,
    .group = GROUP_REFERENCE,
    .max_msg = 1u << 30,
    .create = ring_create,
    .open = ring_open,
    .send = ring_send,
    .recv = ring_recv,
    .close = ring_close,
    .destroy = ring_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_ring)
