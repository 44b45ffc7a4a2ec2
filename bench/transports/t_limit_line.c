/*
 * t_limit_line.c - the latency hardware limit: processes spinning on ONE
 * shared 64-byte cache line that holds a single 8-byte word, the smallest
 * thing two cores can exchange.  All channels of a run share the word: a
 * message is one store of (send stamp << 8 | flags << 6 | channel + 1); a
 * reader spins until the word names its channel and differs from the last
 * value it took.  So a ping-pong moves exactly one cache line per direction
 * with one store each, and the peer's spinning cannot split a multi-store
 * write.  The word carries the stamp and flags; the reader rebuilds the rest
 * of the harness header (its sequence is counted locally, so this transport
 * cannot be checked like the others: it is a reference, not a transport).
 * One message in flight at a time (latency workloads only).
 */
#define _GNU_SOURCE
#include "../src/bench.h"
#include "../src/msg.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>

struct line {
    alignas(64) _Atomic uint64_t word;
    char pad[56];
};

static struct line *the_line; /* shared by every channel of the run */
static unsigned line_users;

struct line_local {
    uint64_t last;  /* last word taken (reader) */
    uint64_t count; /* messages taken: the rebuilt sequence number */
};

static int line_create(struct chan *ch)
{
    if (ch->cfg.writers > 1 || ch->cfg.index >= 63 || ch->cfg.msg_size < MSG_MIN_SIZE)
        return -ENOTSUP;
    if (!the_line && !(the_line = bench_shm_alloc(4096)))
        return -ENOMEM;
    line_users++;
    ch->shared = the_line;
    return 0;
}

static int line_open(struct chan *ch)
{
    ch->local = calloc(1, sizeof(struct line_local));
    return ch->local ? 0 : -ENOMEM;
}

static uint64_t channel_bits(const struct chan *ch)
{
    return ch->cfg.index + 1;
}

static int line_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    (void)timeout_ns;
    struct line *l = ch->shared;
    struct msg_hdr h;
    memcpy(&h, msg, sizeof h);
    uint64_t word = h.stamp_ns << 8 | (uint64_t)(h.flags & 3) << 6 | channel_bits(ch);
    atomic_store_explicit(&l->word, word, memory_order_release);
    return 0;
}

static int line_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    struct line *l = ch->shared;
    struct line_local *ll = ch->local;
    struct spin_wait w = {0, 0};
    uint64_t word;
    for (;;) {
        word = atomic_load_explicit(&l->word, memory_order_acquire);
        if ((word & 63) == channel_bits(ch) && word != ll->last)
            break;
        if (spin_step(&w, timeout_ns))
            return -ETIMEDOUT;
    }
    ll->last = word;
    msg_write(msg, ch->cfg.msg_size, ++ll->count, word >> 8, 0, (uint32_t)(word >> 6) & 3);
    return 0;
}

static void line_close(struct chan *ch)
{
    free(ch->local);
    ch->local = NULL;
}

static void line_destroy(struct chan *ch)
{
    (void)ch;
    if (--line_users == 0) {
        bench_shm_free(the_line, 4096);
        the_line = NULL;
    }
}

static const struct transport transport_limit_line = {
    .name = "limit-line",
    .summary = "hardware limit: one 8-byte word on one shared cache line, spinning",
    .caps = CAP_LATENCY | CAP_BROADCAST,
    .group = GROUP_LIMIT,
    .max_msg = 1u << 20,
    .create = line_create,
    .open = line_open,
    .send = line_send,
    .recv = line_recv,
    .close = line_close,
    .destroy = line_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_limit_line)
