/*
 * t_limit_line.c - the latency hardware limit: two (or more) processes
 * spinning on ONE shared 64-byte cache line.  All channels of a run share the
 * same line: a counter in its first 8 bytes says whose turn it is (message j
 * of channel k has turn j * channels + k + 1) and the message, at most 56
 * bytes, travels in the rest of the same line.  So a ping-pong moves exactly
 * one cache line per direction and nothing else; no real transport can beat
 * it.  One message in flight at a time (latency workloads only).
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct line {
    alignas(64) _Atomic uint64_t turn;
    unsigned char msg[56];
};

static struct line *the_line; /* shared by every channel of the run */
static unsigned line_users;

struct line_local {
    uint64_t count; /* messages this endpoint has sent or received */
};

static int line_create(struct chan *ch)
{
    if (ch->cfg.writers > 1 || ch->cfg.msg_size > sizeof the_line->msg)
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

static uint64_t next_turn(struct chan *ch)
{
    struct line_local *ll = ch->local;
    return ll->count++ * ch->cfg.channels + ch->cfg.index + 1;
}

static int line_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    (void)timeout_ns;
    struct line *l = ch->shared;
    memcpy(l->msg, msg, ch->cfg.msg_size);
    atomic_store_explicit(&l->turn, next_turn(ch), memory_order_release);
    return 0;
}

static int line_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    struct line *l = ch->shared;
    uint64_t want = next_turn(ch);
    struct spin_wait w = {0, 0};
    while (atomic_load_explicit(&l->turn, memory_order_acquire) != want)
        if (spin_step(&w, timeout_ns))
            return -ETIMEDOUT;
    memcpy(msg, l->msg, ch->cfg.msg_size);
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
    .summary = "hardware limit: spin on one shared cache line (turn counter + 56 B)",
    .caps = CAP_LATENCY | CAP_BROADCAST,
    .group = GROUP_LIMIT,
    .max_msg = 56,
    .create = line_create,
    .open = line_open,
    .send = line_send,
    .recv = line_recv,
    .close = line_close,
    .destroy = line_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_limit_line)
