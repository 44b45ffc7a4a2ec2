/*
 * t_spin_seq.c - busy-polling on a sequence word that sits on its own cache
 * line, with the payload in separate cache lines: the writer copies the
 * payload, then stores the sequence with release order; readers spin on the
 * sequence with acquire order and copy the payload out.  This is the
 * smallest real "message" protocol (payload + separate sequence word); the
 * extra line transfer shows against limit-line.  One message in flight at a
 * time (latency workloads only); any number of readers.
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct seq_shared {
    alignas(64) _Atomic uint64_t seq;
    alignas(64) unsigned char payload[];
};

struct seq_local {
    uint64_t count;
};

static size_t shared_size(const struct chan *ch)
{
    return sizeof(struct seq_shared) + ch->cfg.msg_size;
}

static int seq_create(struct chan *ch)
{
    if (ch->cfg.writers > 1)
        return -ENOTSUP;
    ch->shared = bench_shm_alloc(shared_size(ch));
    return ch->shared ? 0 : -ENOMEM;
}

static int seq_open(struct chan *ch)
{
    ch->local = calloc(1, sizeof(struct seq_local));
    return ch->local ? 0 : -ENOMEM;
}

static int seq_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    (void)timeout_ns;
    struct seq_shared *s = ch->shared;
    struct seq_local *l = ch->local;
    memcpy(s->payload, msg, ch->cfg.msg_size);
    atomic_store_explicit(&s->seq, ++l->count, memory_order_release);
    return 0;
}

static int seq_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    struct seq_shared *s = ch->shared;
    struct seq_local *l = ch->local;
    struct spin_wait w = {0, 0};
    while (atomic_load_explicit(&s->seq, memory_order_acquire) != l->count + 1)
        if (spin_step(&w, timeout_ns))
            return -ETIMEDOUT;
    memcpy(msg, s->payload, ch->cfg.msg_size);
    l->count++;
    return 0;
}

static void seq_close(struct chan *ch)
{
    free(ch->local);
    ch->local = NULL;
}

static void seq_destroy(struct chan *ch)
{
    bench_shm_free(ch->shared, shared_size(ch));
}

static const struct transport transport_spin_seq = {
    .name = "spin-seq",
    .summary = "busy-poll: payload lines + separate sequence-word line",
    .caps = CAP_LATENCY | CAP_BROADCAST,
    .group = GROUP_LIMIT,
    .max_msg = 1u << 20,
    .create = seq_create,
    .open = seq_open,
    .send = seq_send,
    .recv = seq_recv,
    .close = seq_close,
    .destroy = seq_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_spin_seq)
