/*
 * t_futex.c - two blocking ping-pong mailboxes on shared memory built on raw
 * futex(2) calls (non-private, since the word is shared between processes).
 *
 *  futex        The writer copies the payload, bumps the sequence word and
 *               always calls FUTEX_WAKE; the reader checks the word once and
 *               otherwise sleeps in FUTEX_WAIT.  Every message costs a wake-up.
 *  spin-futex   The reader first spins ~5 us on the word, then announces
 *               itself in a waiter count and sleeps in FUTEX_WAIT; the writer
 *               calls FUTEX_WAKE only if someone sleeps.  Seq-cst ordering of
 *               (store seq, load waiters) against (add waiter, load seq)
 *               guarantees no lost wake-up.
 *
 * One message in flight at a time (latency workloads only); any number of
 * readers, all woken.
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <limits.h>
#include <linux/futex.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SPIN_NS 5000

struct fx_shared {
    alignas(64) _Atomic uint32_t seq;  /* the futex word */
    _Atomic uint32_t waiters;
    alignas(64) unsigned char payload[];
};

struct fx_local {
    uint32_t count;
};

static long futex(_Atomic uint32_t *word, int op, uint32_t val, const struct timespec *timeout)
{
    return syscall(SYS_futex, (uint32_t *)word, op, val, timeout, NULL, 0);
}

static size_t shared_size(const struct chan *ch)
{
    return sizeof(struct fx_shared) + ch->cfg.msg_size;
}

static int fx_create(struct chan *ch)
{
    if (ch->cfg.writers > 1)
        return -ENOTSUP;
    ch->shared = bench_shm_alloc(shared_size(ch));
    return ch->shared ? 0 : -ENOMEM;
}

static int fx_open(struct chan *ch)
{
    ch->local = calloc(1, sizeof(struct fx_local));
    return ch->local ? 0 : -ENOMEM;
}

/* Sleeps while the word still holds 'seen'; 0, or -ETIMEDOUT. */
static int fx_sleep(struct fx_shared *s, uint32_t seen, int64_t timeout_ns)
{
    struct timespec ts = {(time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000)};
    if (futex(&s->seq, FUTEX_WAIT, seen, &ts) < 0 && errno == ETIMEDOUT)
        return -ETIMEDOUT;
    return 0; /* woken, value already changed (EAGAIN) or a signal: re-check */
}

static int fx_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    (void)timeout_ns;
    struct fx_shared *s = ch->shared;
    struct fx_local *l = ch->local;
    memcpy(s->payload, msg, ch->cfg.msg_size);
    atomic_store_explicit(&s->seq, ++l->count, memory_order_release);
    futex(&s->seq, FUTEX_WAKE, INT_MAX, NULL);
    return 0;
}

static int fx_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    struct fx_shared *s = ch->shared;
    struct fx_local *l = ch->local;
    uint32_t want = l->count + 1, seen;
    while ((seen = atomic_load_explicit(&s->seq, memory_order_acquire)) != want)
        if (fx_sleep(s, seen, timeout_ns))
            return -ETIMEDOUT;
    memcpy(msg, s->payload, ch->cfg.msg_size);
    l->count = want;
    return 0;
}

static int spfx_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    (void)timeout_ns;
    struct fx_shared *s = ch->shared;
    struct fx_local *l = ch->local;
    memcpy(s->payload, msg, ch->cfg.msg_size);
    atomic_store(&s->seq, ++l->count); /* seq_cst: ordered before the load below */
    if (atomic_load(&s->waiters) > 0)
        futex(&s->seq, FUTEX_WAKE, INT_MAX, NULL);
    return 0;
}

static bool spin_for(struct fx_shared *s, uint32_t want)
{
    uint64_t end = now_ns() + SPIN_NS;
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(&s->seq, memory_order_acquire) == want)
            return true;
        cpu_relax();
        if (i % 64 == 0 && now_ns() > end)
            return false;
    }
}

static int spfx_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    struct fx_shared *s = ch->shared;
    struct fx_local *l = ch->local;
    uint32_t want = l->count + 1, seen;
    int err = 0;
    if (!spin_for(s, want)) {
        atomic_fetch_add(&s->waiters, 1); /* seq_cst: ordered before the load below */
        while (!err && (seen = atomic_load(&s->seq)) != want)
            err = fx_sleep(s, seen, timeout_ns);
        atomic_fetch_sub(&s->waiters, 1);
        if (err)
            return err;
    }
    memcpy(msg, s->payload, ch->cfg.msg_size);
    l->count = want;
    return 0;
}

static void fx_close(struct chan *ch)
{
    free(ch->local);
    ch->local = NULL;
}

static void fx_destroy(struct chan *ch)
{
    bench_shm_free(ch->shared, shared_size(ch));
}

static const struct transport transport_futex = {
    .name = "futex",
    .summary = "raw FUTEX_WAIT/FUTEX_WAKE mailbox, always wakes",
    .caps = CAP_LATENCY | CAP_BROADCAST | CAP_BLOCKING,
    .group = GROUP_REFERENCE,
    .max_msg = 1u << 20,
    .create = fx_create,
    .open = fx_open,
    .send = fx_send,
    .recv = fx_recv,
    .close = fx_close,
    .destroy = fx_destroy,
};

static const struct transport transport_spin_futex = {
    .name = "spin-futex",
    .summary = "spin 5 us, then FUTEX_WAIT; wake only sleepers",
    .caps = CAP_LATENCY | CAP_BROADCAST | CAP_BLOCKING,
    .group = GROUP_REFERENCE,
    .max_msg = 1u << 20,
    .create = fx_create,
    .open = fx_open,
    .send = spfx_send,
    .recv = spfx_recv,
    .close = fx_close,
    .destroy = fx_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_futex)
BENCH_REGISTER_TRANSPORT(transport_spin_futex)
