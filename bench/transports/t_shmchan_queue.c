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

struct q_local {
    shmchan_queue *q;
};

static int q_create(struct chan *ch)
{
    char name[32];
    sc_name(ch, name, sizeof name);
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_CREATE | SHMCHAN_EXCL;
    o.policy = SHMCHAN_POLICY_BLOCK;
    o.max_msg = ch->cfg.msg_size;
    o.capacity = sc_queue_capacity(ch);
    shmchan_unlink(name, 0);
    shmchan_queue *h;
    int rc = shmchan_queue_open(name, &o, &h);
    if (rc != SHMCHAN_OK) {
        shmchan_unlink(name, 0);
        return sc_errno(rc);
    }
    shmchan_queue_close(h); /* children open their own handles */
    return 0;
}

static int q_open(struct chan *ch)
{
    struct q_local *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    ch->local = l;
    char name[32];
    sc_name(ch, name, sizeof name);
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = ch->role == ROLE_READER ? SHMCHAN_SUBSCRIBE : 0;
    return sc_errno(shmchan_queue_open(name, &o, &l->q));
}

static int q_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    struct q_local *l = ch->local;
    int rc;
    do
        rc = shmchan_queue_send(l->q, msg, ch->cfg.msg_size, sc_timeout_ms(timeout_ns));
    while (rc == SHMCHAN_EINTR);
    return sc_errno(rc);
}

static int q_recv_poll(struct chan *ch, void *msg, int64_t timeout_ns)
{
    struct q_local *l = ch->local;
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
    struct q_local *l = ch->local;
    size_t len = 0;
    int rc;
    do
        rc = shmchan_queue_recv(l->q, msg, ch->cfg.msg_size, sc_timeout_ms(timeout_ns), &len, NULL);
    while (rc == SHMCHAN_EINTR);
    if (rc != SHMCHAN_OK)
        return sc_errno(rc);
    return len == ch->cfg.msg_size ? 0 : -EBADMSG;
}

static void q_close(struct chan *ch)
{
    struct q_local *l = ch->local;
    if (l)
        shmchan_queue_close(l->q);
    free(l);
    ch->local = NULL;
}

static void q_destroy(struct chan *ch)
{
    char name[32];
    sc_name(ch, name, sizeof name);
    shmchan_unlink(name, 0);
}

static const struct transport transport_shmchan_queue_poll = {
    .name = "shmchan-queue-poll",
    .summary = "shmchan queue (block mode), reader busy-polls recv",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_BROADCAST | CAP_MULTI_WRITER,
    .group = GROUP_SHMCHAN,
    .max_msg = 1u << 20,
    .create = q_create,
    .open = q_open,
    .send = q_send,
    .recv = q_recv_poll,
    .close = q_close,
    .destroy = q_destroy,
};

static const struct transport transport_shmchan_queue_wait = {
    .name = "shmchan-queue-wait",
    .summary = "shmchan queue (block mode), reader blocks in recv (spins, then sleeps)",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_BROADCAST | CAP_MULTI_WRITER | CAP_BLOCKING,
    .group = GROUP_SHMCHAN,
    .max_msg = 1u << 20,
    .create = q_create,
    .open = q_open,
    .send = q_send,
    .recv = q_recv_wait,
    .close = q_close,
    .destroy = q_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_shmchan_queue_poll)
BENCH_REGISTER_TRANSPORT(transport_shmchan_queue_wait)
