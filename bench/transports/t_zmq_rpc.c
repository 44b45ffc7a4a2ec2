/*
 * t_zmq_rpc.c - ZeroMQ REQ/REP over ipc:// for the rpc workloads.  Server k
 * binds its own REP socket at /tmp/<tag>-<channel>-s<k>.zmq (removed by
 * destroy()); every client's REQ socket connects to all of them, and ZeroMQ
 * spreads a client's requests over the servers in turn (its own load
 * balancing: no broker, no extra hop).  zmq_send and zmq_recv copy; waits
 * are bounded by ZMQ_SNDTIMEO and ZMQ_RCVTIMEO.
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zmq.h>

struct zrpc_local {
    void *ctx;
    void *sock;
};

static void server_path(const struct chan *ch, unsigned k, char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/%s-%u-s%u.zmq", ch->cfg.tag, ch->cfg.index, k);
}

static void unlink_paths(struct chan *ch)
{
    char path[128];
    for (unsigned k = 0; k < ch->cfg.readers; k++) {
        server_path(ch, k, path, sizeof path);
        unlink(path);
    }
}

static int zrpc_create(struct chan *ch)
{
    unlink_paths(ch);
    return 0;
}

static int set_int(void *sock, int option, int value)
{
    return zmq_setsockopt(sock, option, &value, sizeof value);
}

static int endpoint_op(struct chan *ch, struct zrpc_local *l, unsigned k)
{
    char path[128], endpoint[140];
    server_path(ch, k, path, sizeof path);
    snprintf(endpoint, sizeof endpoint, "ipc://%s", path);
    int rc = ch->role == ROLE_READER ? zmq_bind(l->sock, endpoint) : zmq_connect(l->sock, endpoint);
    return rc ? -zmq_errno() : 0;
}

static int zrpc_open(struct chan *ch)
{
    struct zrpc_local *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    ch->local = l;
    if (!(l->ctx = zmq_ctx_new()) ||
        !(l->sock = zmq_socket(l->ctx, ch->role == ROLE_READER ? ZMQ_REP : ZMQ_REQ)))
        return -zmq_errno();
    int timeout_ms = (int)(ch->cfg.op_timeout_ns / 1000000);
    if (set_int(l->sock, ZMQ_SNDTIMEO, timeout_ms) || set_int(l->sock, ZMQ_RCVTIMEO, timeout_ms) ||
        set_int(l->sock, ZMQ_LINGER, 1000) || set_int(l->sock, ZMQ_RECONNECT_IVL, 1))
        return -zmq_errno();
    if (ch->role == ROLE_READER)
        return endpoint_op(ch, l, ch->rank);
    for (unsigned k = 0; k < ch->cfg.readers; k++) {
        int err = endpoint_op(ch, l, k);
        if (err)
            return err;
    }
    return 0;
}

static int zrpc_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    (void)timeout_ns; /* ZMQ_SNDTIMEO, set at open */
    struct zrpc_local *l = ch->local;
    while (zmq_send(l->sock, msg, ch->cfg.msg_size, 0) < 0) {
        int err = zmq_errno();
        if (err != EINTR)
            return err == EAGAIN ? -ETIMEDOUT : -err;
    }
    return 0;
}

static int zrpc_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    (void)timeout_ns; /* ZMQ_RCVTIMEO, set at open */
    struct zrpc_local *l = ch->local;
    int n;
    while ((n = zmq_recv(l->sock, msg, ch->cfg.msg_size, 0)) < 0) {
        int err = zmq_errno();
        if (err != EINTR)
            return err == EAGAIN ? -ETIMEDOUT : -err;
    }
    return (size_t)n == ch->cfg.msg_size ? 0 : -EBADMSG;
}

static void zrpc_close(struct chan *ch)
{
    struct zrpc_local *l = ch->local;
    if (!l)
        return;
    if (l->sock)
        zmq_close(l->sock);
    if (l->ctx)
        zmq_ctx_term(l->ctx);
    free(l);
    ch->local = NULL;
}

static const struct transport transport_zmq_rpc = {
    .name = "zmq-rpc",
    .summary = "ZeroMQ ipc:// REQ/REP, each client's REQ connected to every server's REP",
    .caps = CAP_RPC | CAP_BLOCKING,
    .group = GROUP_LIBRARY,
    .max_msg = 1u << 30,
    .create = zrpc_create,
    .open = zrpc_open,
    .send = zrpc_send,
    .recv = zrpc_recv,
    .close = zrpc_close,
    .destroy = unlink_paths,
};

BENCH_REGISTER_TRANSPORT(transport_zmq_rpc)
