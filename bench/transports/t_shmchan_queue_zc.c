/*
 * t_shmchan_queue_zc.c - shmchan queue (block mode) used zero-copy: the
 * writer reserves the message in the ring (shmchan_queue_reserve), the
 * harness writes it in place and the writer commits it; the reader looks at
 * it in place (shmchan_queue_peek) and releases it.  Set-up and tear-down are
 * shmchan_common.h's.
 *
 *  shmchan-queue-zc       both wait with the library's spin-then-sleep.
 *  shmchan-queue-zc-poll  the reader busy-polls peek with a zero timeout
 *                         (the counterpart of iceoryx-poll).
 */
#define _GNU_SOURCE
#include "shmchan_common.h"

#include <stdlib.h>

static void *zc_reserve(struct chan *ch, int64_t timeout_ns, int *err)
{
    struct sc_queue_local *l = ch->local;
    void *buf = NULL;
    int rc;
    do
        rc = shmchan_queue_reserve(l->q, ch->cfg.msg_size, sc_timeout_ms(timeout_ns), &buf);
    while (rc == SHMCHAN_EINTR);
    *err = sc_errno(rc);
    return rc == SHMCHAN_OK ? buf : NULL;
}

static int zc_commit(struct chan *ch, void *msg)
{
    (void)msg;
    struct sc_queue_local *l = ch->local;
    return sc_errno(shmchan_queue_commit(l->q, ch->cfg.msg_size));
}

/* The outcome of a peek: the message if it has the run's size (else it is
 * released and the error is EBADMSG). */
static const void *zc_taken(struct chan *ch, int rc, const shmchan_msg *m, int *err)
{
    struct sc_queue_local *l = ch->local;
    *err = sc_errno(rc);
    if (rc == SHMCHAN_OK && m->len != ch->cfg.msg_size) {
        shmchan_queue_release(l->q);
        *err = -EBADMSG;
        return NULL;
    }
    return rc == SHMCHAN_OK ? m->data : NULL;
}

static const void *zc_acquire(struct chan *ch, int64_t timeout_ns, int *err)
{
    struct sc_queue_local *l = ch->local;
    shmchan_msg m;
    int rc;
    do
        rc = shmchan_queue_peek(l->q, sc_timeout_ms(timeout_ns), &m);
    while (rc == SHMCHAN_EINTR);
    return zc_taken(ch, rc, &m, err);
}

static const void *zc_acquire_poll(struct chan *ch, int64_t timeout_ns, int *err)
{
    struct sc_queue_local *l = ch->local;
    struct spin_wait w = {0, 0};
    shmchan_msg m;
    int rc;
    while ((rc = shmchan_queue_peek(l->q, SHMCHAN_NO_WAIT, &m)) == SHMCHAN_EAGAIN)
        if (spin_step(&w, timeout_ns)) {
            *err = -ETIMEDOUT;
            return NULL;
        }
    return zc_taken(ch, rc, &m, err);
}

static void zc_release(struct chan *ch, const void *msg)
{
    (void)msg;
    struct sc_queue_local *l = ch->local;
    shmchan_queue_release(l->q); /* block mode: never overwritten, so never ESTALE */
}

static const struct transport transport_shmchan_queue_zc = {
    .name = "shmchan-queue-zc",
    .summary = "shmchan queue (block mode), zero-copy reserve/commit and peek/release",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_BROADCAST | CAP_MULTI_WRITER | CAP_BLOCKING | CAP_ZERO_COPY,
    .group = GROUP_SHMCHAN,
    .max_msg = 1u << 20,
    .create = sc_queue_create,
    .open = sc_queue_open,
    .reserve = zc_reserve,
    .commit = zc_commit,
    .acquire = zc_acquire,
    .release = zc_release,
    .close = sc_queue_close,
    .destroy = sc_destroy,
};

static const struct transport transport_shmchan_queue_zc_poll = {
    .name = "shmchan-queue-zc-poll",
    .summary = "shmchan queue (block mode), zero-copy, reader busy-polls peek",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_BROADCAST | CAP_MULTI_WRITER | CAP_ZERO_COPY,
    .group = GROUP_SHMCHAN,
    .max_msg = 1u << 20,
    .create = sc_queue_create,
    .open = sc_queue_open,
    .reserve = zc_reserve,
    .commit = zc_commit,
    .acquire = zc_acquire_poll,
    .release = zc_release,
    .close = sc_queue_close,
    .destroy = sc_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_shmchan_queue_zc)
BENCH_REGISTER_TRANSPORT(transport_shmchan_queue_zc_poll)
/* The same, with the message produced in place: the writer writes only its
 * header and trailer into the reservation, the reader checks them where they
 * lie, so the cost per message should not grow with its size. */
BENCH_REGISTER_VARIANT(transport_shmchan_queue_zc_inplace, transport_shmchan_queue_zc,
                       "shmchan-queue-zc-inplace",
                       "shmchan-queue-zc with the message produced in place (writer fills header "
                       "and trailer)",
                       CAP_STREAM | CAP_BLOCKING | CAP_ZERO_COPY | CAP_IN_PLACE)
