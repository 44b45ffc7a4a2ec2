/*
 * t_shmchan_service.c - shmchan services for the rpc workloads.  The parent
 * creates the service (max_msg = message size, request ring about 'depth'
 * messages, one server slot per server and one client slot per client) and
 * unlinks it at the end; each child opens its own handle, servers with
 * SHMCHAN_SERVER.  A client sends with shmchan_service_request and waits with
 * shmchan_service_response (checking that the response answers its request);
 * a server takes with shmchan_service_take and answers the request it holds
 * with shmchan_service_reply.  Bodies are copied both ways.
 *
 *  shmchan-service-poll  client and server busy-poll with a zero timeout
 *                        (next to shmchan-queue-poll's ping-pong).
 *  shmchan-service-wait  both block (spin, then sleep), next to
 *                        shmchan-queue-wait.
 */
#define _GNU_SOURCE
#include "shmchan_common.h"

#include <stdlib.h>

struct svc_local {
    shmchan_service *s;
    shmchan_request req; /* server: the request it holds */
    uint64_t id;         /* client: the request it waits for */
};

static int svc_create(struct chan *ch)
{
    char name[32];
    sc_name(ch, name, sizeof name);
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_CREATE | SHMCHAN_EXCL;
    o.max_msg = ch->cfg.msg_size;
    o.capacity = sc_queue_capacity(ch);
    o.max_readers = ch->cfg.readers;
    o.max_writers = ch->cfg.writers + 1; /* and this handle, while it creates */
    shmchan_unlink(name, 0);
    shmchan_service *s;
    int rc = shmchan_service_open(name, &o, &s);
    if (rc != SHMCHAN_OK) {
        shmchan_unlink(name, 0);
        return sc_errno(rc);
    }
    shmchan_service_close(s); /* children open their own handles */
    return 0;
}

static int svc_open(struct chan *ch)
{
    struct svc_local *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    ch->local = l;
    char name[32];
    sc_name(ch, name, sizeof name);
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = ch->role == ROLE_READER ? SHMCHAN_SERVER : 0;
    return sc_errno(shmchan_service_open(name, &o, &l->s));
}

/* Retry a call with a zero timeout until it stops saying EAGAIN. */
#define POLL(call, timeout_ns)                                                                   \
    ({                                                                                           \
        struct spin_wait w_ = {0, 0};                                                            \
        int rc_;                                                                                 \
        while ((rc_ = (call)) == SHMCHAN_EAGAIN)                                                 \
            if (spin_step(&w_, timeout_ns)) {                                                    \
                rc_ = SHMCHAN_ETIMEDOUT;                                                         \
                break;                                                                           \
            }                                                                                    \
        rc_;                                                                                     \
    })

static int svc_io(struct chan *ch, void *msg, int64_t timeout_ns, bool poll)
{
    struct svc_local *l = ch->local;
    size_t size = ch->cfg.msg_size, len = 0;
    int64_t ms = poll ? SHMCHAN_NO_WAIT : sc_timeout_ms(timeout_ns);
    int rc;
    if (ch->role == ROLE_WRITER) { /* client: the response to its request */
        shmchan_response info;
        do
            rc = poll ? POLL(shmchan_service_response(l->s, msg, size, ms, &len, &info), timeout_ns)
                      : shmchan_service_response(l->s, msg, size, ms, &len, &info);
        while (rc == SHMCHAN_EINTR);
        if (rc == SHMCHAN_OK && (info.id != l->id || info.flags != 0))
            return -EBADMSG;
    } else { /* server: take the next request */
        do
            rc = poll ? POLL(shmchan_service_take(l->s, msg, size, ms, &l->req), timeout_ns)
                      : shmchan_service_take(l->s, msg, size, ms, &l->req);
        while (rc == SHMCHAN_EINTR);
        len = (size_t)l->req.len;
    }
    if (rc != SHMCHAN_OK)
        return sc_errno(rc);
    return len == size ? 0 : -EBADMSG;
}

static int svc_out(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    struct svc_local *l = ch->local;
    size_t size = ch->cfg.msg_size;
    int64_t ms = sc_timeout_ms(timeout_ns);
    int rc;
    do
        rc = ch->role == ROLE_WRITER ? shmchan_service_request(l->s, msg, size, ms, &l->id)
                                     : shmchan_service_reply(l->s, &l->req, msg, size, 0, ms);
    while (rc == SHMCHAN_EINTR);
    return sc_errno(rc);
}

static int svc_in_poll(struct chan *ch, void *msg, int64_t timeout_ns)
{
    return svc_io(ch, msg, timeout_ns, true);
}

static int svc_in_wait(struct chan *ch, void *msg, int64_t timeout_ns)
{
    return svc_io(ch, msg, timeout_ns, false);
}

static void svc_close(struct chan *ch)
{
    struct svc_local *l = ch->local;
    if (l)
        shmchan_service_close(l->s);
    free(l);
    ch->local = NULL;
}

static const struct transport transport_shmchan_service_poll = {
    .name = "shmchan-service-poll",
    .summary = "shmchan service, client and server busy-poll (zero timeouts)",
    .caps = CAP_RPC,
    .group = GROUP_SHMCHAN,
    .max_msg = 1u << 20,
    .create = svc_create,
    .open = svc_open,
    .send = svc_out,
    .recv = svc_in_poll,
    .close = svc_close,
    .destroy = sc_destroy,
};

static const struct transport transport_shmchan_service_wait = {
    .name = "shmchan-service-wait",
    .summary = "shmchan service, client and server block (spin, then sleep)",
    .caps = CAP_RPC | CAP_BLOCKING,
    .group = GROUP_SHMCHAN,
    .max_msg = 1u << 20,
    .create = svc_create,
    .open = svc_open,
    .send = svc_out,
    .recv = svc_in_wait,
    .close = svc_close,
    .destroy = sc_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_shmchan_service_poll)
BENCH_REGISTER_TRANSPORT(transport_shmchan_service_wait)
