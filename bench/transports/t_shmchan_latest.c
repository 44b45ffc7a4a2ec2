/*
 * t_shmchan_latest.c - shmchan latest-value channels.  The parent creates the
 * channel (max_msg = message size) and unlinks it at the end; each child opens
 * its own handle.  The writer publishes with
 * shmchan_latest_publish (one copy in); readers copy the newest message out.
 * Latest-value semantics: a writer never waits, so a slow reader may miss
 * messages (counted as lost by the harness).
 *
 *  shmchan-latest-poll  the reader busy-polls shmchan_latest_read_next with a
 *                       zero timeout.
 *  shmchan-latest-wait  the reader calls shmchan_latest_read_next, which spins
 *                       for the library's default time and then sleeps.
 */
#define _GNU_SOURCE
#include "shmchan_common.h"

#include <stdlib.h>

struct lv_local {
    shmchan_latest *ch;
    uint64_t last_seq;
};

static int lv_create(struct chan *ch)
{
    if (ch->cfg.writers > 1)
        return -ENOTSUP;
    char name[32];
    sc_name(ch, name, sizeof name);
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_CREATE | SHMCHAN_EXCL;
    o.max_msg = ch->cfg.msg_size;
    shmchan_unlink(name, 0);
    shmchan_latest *h;
    int rc = shmchan_latest_open(name, &o, &h);
    if (rc != SHMCHAN_OK)
        return sc_errno(rc);
    shmchan_latest_close(h); /* children open their own handles */
    return 0;
}

static int lv_open(struct chan *ch)
{
    struct lv_local *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    ch->local = l;
    char name[32];
    sc_name(ch, name, sizeof name);
    shmchan_opts o;
    shmchan_opts_init(&o);
    /* Readers map read-write too: a read-only handle cannot register as a
     * sleeping waiter and polls every millisecond instead. */
    return sc_errno(shmchan_latest_open(name, &o, &l->ch));
}

static int lv_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    (void)timeout_ns; /* never waits */
    struct lv_local *l = ch->local;
    return sc_errno(shmchan_latest_publish(l->ch, msg, ch->cfg.msg_size, NULL));
}

static int check_len(const struct chan *ch, size_t len)
{
    return len == ch->cfg.msg_size ? 0 : -EBADMSG;
}

static int lv_recv_poll(struct chan *ch, void *msg, int64_t timeout_ns)
{
    struct lv_local *l = ch->local;
    struct spin_wait w = {0, 0};
    size_t len = 0;
    int rc;
    while ((rc = shmchan_latest_read_next(l->ch, l->last_seq, msg, ch->cfg.msg_size,
                                          SHMCHAN_NO_WAIT, &len, &l->last_seq)) == SHMCHAN_EAGAIN)
        if (spin_step(&w, timeout_ns))
            return -ETIMEDOUT;
    return rc != SHMCHAN_OK ? sc_errno(rc) : check_len(ch, len);
}

static int lv_recv_wait(struct chan *ch, void *msg, int64_t timeout_ns)
{
    struct lv_local *l = ch->local;
    size_t len = 0;
    int rc;
    do
        rc = shmchan_latest_read_next(l->ch, l->last_seq, msg, ch->cfg.msg_size,
                                      sc_timeout_ms(timeout_ns), &len, &l->last_seq);
    while (rc == SHMCHAN_EINTR);
    return rc != SHMCHAN_OK ? sc_errno(rc) : check_len(ch, len);
}

static void lv_close(struct chan *ch)
{
    struct lv_local *l = ch->local;
    if (l)
        shmchan_latest_close(l->ch);
    free(l);
    ch->local = NULL;
}

static const struct transport transport_shmchan_latest_poll = {
    .name = "shmchan-latest-poll",
    .summary = "shmchan latest-value channel, reader busy-polls the sequence",
    .caps = CAP_LATENCY | CAP_BROADCAST | CAP_LOSSY,
    .group = GROUP_SHMCHAN,
    .max_msg = 1u << 20,
    .create = lv_create,
    .open = lv_open,
    .send = lv_send,
    .recv = lv_recv_poll,
    .close = lv_close,
    .destroy = sc_destroy,
};

static const struct transport transport_shmchan_latest_wait = {
    .name = "shmchan-latest-wait",
    .summary = "shmchan latest-value channel, reader blocks in read_next (spins, then sleeps)",
    .caps = CAP_LATENCY | CAP_BROADCAST | CAP_LOSSY | CAP_BLOCKING,
    .group = GROUP_SHMCHAN,
    .max_msg = 1u << 20,
    .create = lv_create,
    .open = lv_open,
    .send = lv_send,
    .recv = lv_recv_wait,
    .close = lv_close,
    .destroy = sc_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_shmchan_latest_poll)
BENCH_REGISTER_TRANSPORT(transport_shmchan_latest_wait)
