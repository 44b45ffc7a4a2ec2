/*
 * t_shmchan_queue_batch.c - shmchan queue (block mode) used in batches, as a
 * producer with many small messages would: the writer gathers up to BATCH
 * messages (at most BATCH_BYTES) and passes them with one
 * shmchan_queue_send_batch call (one claim-lock hold and one wake-up per
 * batch); the reader takes up to BATCH at once with shmchan_queue_recv_batch
 * (one cursor update per batch) and hands them to the harness one by one.
 * Messages too large to gather (a batch of one) go straight through.
 * The reader waits with the library's spin-then-sleep.  Set-up and tear-down
 * are shmchan_common.h's.
 */
#define _GNU_SOURCE
#include "shmchan_common.h"

#include <stdlib.h>
#include <string.h>

#define BATCH 32
#define BATCH_BYTES (256u * 1024)

struct batch_local {
    struct sc_queue_local base; /* first: sc_queue_close frees it */
    size_t per;                 /* messages per batch */
    size_t stride;              /* bytes between two messages in buf */
    size_t have, next;          /* writer: gathered; reader: received, handed out */
    shmchan_msg msgs[BATCH];
    unsigned char buf[];
};

static size_t per_batch(const struct chan *ch)
{
    size_t n = BATCH_BYTES / ch->cfg.msg_size;
    return n < 1 ? 1 : n > BATCH ? BATCH : n;
}

static int b_open(struct chan *ch)
{
    size_t per = per_batch(ch), stride = (ch->cfg.msg_size + 7) & ~(size_t)7;
    struct batch_local *l = calloc(1, sizeof *l + per * stride);
    if (!l)
        return -ENOMEM;
    l->per = per;
    l->stride = stride;
    ch->local = &l->base;
    return sc_queue_open_handle(ch, &l->base.q);
}

static int b_flush(struct chan *ch, int64_t timeout_ns)
{
    struct batch_local *l = (struct batch_local *)ch->local;
    size_t done = 0;
    while (done < l->have) {
        size_t sent = 0;
        int rc = shmchan_queue_send_batch(l->base.q, l->msgs + done, l->have - done,
                                          sc_timeout_ms(timeout_ns), &sent);
        done += sent;
        if (rc != SHMCHAN_OK && rc != SHMCHAN_EINTR)
            return sc_errno(rc);
    }
    l->have = 0;
    return 0;
}

static int b_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    struct batch_local *l = (struct batch_local *)ch->local;
    if (l->per == 1) { /* large messages: nothing to gather, no extra copy */
        shmchan_msg one = {.data = msg, .len = ch->cfg.msg_size};
        l->msgs[0] = one;
        l->have = 1;
        return b_flush(ch, timeout_ns);
    }
    unsigned char *p = l->buf + l->have * l->stride;
    memcpy(p, msg, ch->cfg.msg_size);
    l->msgs[l->have].data = p;
    l->msgs[l->have].len = ch->cfg.msg_size;
    return ++l->have == l->per ? b_flush(ch, timeout_ns) : 0;
}

static int b_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    struct batch_local *l = (struct batch_local *)ch->local;
    if (l->per == 1) { /* large messages: straight into the harness's buffer */
        size_t len = 0;
        int rc;
        do
            rc = shmchan_queue_recv(l->base.q, msg, ch->cfg.msg_size, sc_timeout_ms(timeout_ns),
                                    &len, NULL);
        while (rc == SHMCHAN_EINTR);
        return rc != SHMCHAN_OK ? sc_errno(rc) : len == ch->cfg.msg_size ? 0 : -EBADMSG;
    }
    while (l->next == l->have) {
        size_t got = 0;
        int rc = shmchan_queue_recv_batch(l->base.q, l->buf, l->per * l->stride, l->per,
                                          sc_timeout_ms(timeout_ns), l->msgs, &got);
        if (rc != SHMCHAN_OK && rc != SHMCHAN_EINTR)
            return sc_errno(rc);
        l->have = got;
        l->next = 0;
    }
    const shmchan_msg *m = &l->msgs[l->next++];
    if (m->len != ch->cfg.msg_size)
        return -EBADMSG;
    memcpy(msg, m->data, ch->cfg.msg_size);
    return 0;
}

static const struct transport transport_shmchan_queue_batch = {
    .name = "shmchan-queue-batch",
    .summary = "shmchan queue (block mode), send_batch and recv_batch of up to 32 messages",
    .caps = CAP_STREAM | CAP_BROADCAST | CAP_MULTI_WRITER | CAP_BLOCKING,
    .group = GROUP_SHMCHAN,
    .max_msg = 1u << 20,
    .create = sc_queue_create,
    .open = b_open,
    .send = b_send,
    .recv = b_recv,
    .flush = b_flush,
    .close = sc_queue_close,
    .destroy = sc_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_shmchan_queue_batch)
