/*
 * t_shmchan_queue.c - shmchan queues in block mode (writers wait for the
 * slowest reader, so nothing is lost).  The parent creates the queue (max_msg
 * = message size, ring = about 'depth' messages) and unlinks it at the end;
 * each child opens its own handle: writers plain, readers as subscribers, so
 * that with N readers every reader gets every message.  Messages are copied
 * in with shmchan_queue_send and out with shmchan_queue_recv.
 *
 *  shmchan-queue-poll  the reader busy-polls recv with a zero timeout.
 *  shmchan-queue-wait  the reader blocks in recv (spins, then sleeps).
 */
#define _GNU_SOURCE
#include "shmchan_common.h"

#include <stdlib.h>

static int q_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    struct sc_queue_local *l = ch->local;
    int rc;
    do
        rc = shmchan_queue_send(l->q, msg, ch->cfg.msg_size, sc_timeout_ms(timeout_ns));
    while (rc == SHMCHAN_EINTR);
    return sc_errno(rc);
}

static int q_recv_poll(struct chan *ch, void *msg, int64_t timeout_ns)
{
    struct sc_queue_local *l = ch->local;
    struct spin_wait w = {0, 0};
    size_t len = 0;
    int rc;
    while ((rc = shmchan_queue_recv(l->q, msg, ch->cfg.msg_size, SHMCHAN_NO_WAIT, &len, NULL)) ==
           SHMCHAN_EAGAIN)
        if (spin_step(&w, timeout_ns))
            return -ETIMEDOUT;
    if (rc != SHMCHAN_OK)
        return sc_errno(rc);
    return len == ch->cfg.msg_size ? 0 : -EBADMSG;
}

static int q_recv_wait(struct chan *ch, void *msg, int64_t timeout_ns)
{
    struct sc_queue_local *l = ch->local;
    size_t len = 0;
    int rc;
    do
        rc = shmchan_queue_recv(l->q, msg, ch->cfg.msg_size, sc_timeout_ms(timeout_ns), &len, NULL);
    while (rc == SHMCHAN_EINTR);
    if (rc != SHMCHAN_OK)
        return sc_errno(rc);
    return len == ch->cfg.msg_size ? 0 : -EBADMSG;
}

static const struct transport transport_shmchan_queue_poll = {
    .name = "shmchan-queue-poll",
    .summary = "shmchan queue (block mode), reader busy-polls recv",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_BROADCAST | CAP_MULTI_WRITER,
    .group = GROUP_SHMCHAN,
    .max_msg = 1u << 20,
    .create = sc_queue_create,
    .open = sc_queue_open,
    .send = q_send,
    .recv = q_recv_poll,
    .close = sc_queue_close,
    .destroy = sc_destroy,
};

static const struct transport transport_shmchan_queue_wait = {
    .name = "shmchan-queue-wait",
    .summary = "shmchan queue (block mode), reader blocks in recv (spins, then sleeps)",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_BROADCAST | CAP_MULTI_WRITER | CAP_BLOCKING,
    .group = GROUP_SHMCHAN,
    .max_msg = 1u << 20,
    .create = sc_queue_create,
    .open = sc_queue_open,
    .send = q_send,
    .recv = q_recv_wait,
    .close = sc_queue_close,
    .destroy = sc_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_shmchan_queue_poll)
BENCH_REGISTER_TRANSPORT(transport_shmchan_queue_wait)
