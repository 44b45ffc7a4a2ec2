/*
 * t_zmq.c - ZeroMQ over ipc:// (a Unix socket file in /tmp, removed by
 * destroy()).  One writer: a PAIR socket pair; several writers: PUSH sockets
 * into one PULL socket.  The reader binds, writers connect.  zmq_send and
 * zmq_recv copy the message; ZeroMQ's own I/O thread runs on the same core
 * as the process that owns it.  Waits are bounded by ZMQ_SNDTIMEO and
 * ZMQ_RCVTIMEO; the high-water marks are the channel depth.
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <zmq.h>

struct zt_shared {
    char path[96];      /* socket file */
    char endpoint[112]; /* "ipc://" + path */
};

struct zt_local {
    void *sock;
};

/* One context (one I/O thread) per process, shared by its channels. */
static void *process_ctx;
static unsigned ctx_users;

static int zt_create(struct chan *ch)
{
    if (ch->cfg.readers > 1)
        return -ENOTSUP;
    struct zt_shared *zs = malloc(sizeof *zs);
    if (!zs)
        return -ENOMEM;
    snprintf(zs->path, sizeof zs->path, "/tmp/%s-%u.zmq", ch->cfg.tag, ch->cfg.index);
    snprintf(zs->endpoint, sizeof zs->endpoint, "ipc://%s", zs->path);
    unlink(zs->path);
    ch->shared = zs;
    return 0;
}

static int socket_type(const struct chan *ch)
{
    if (ch->cfg.writers == 1)
        return ZMQ_PAIR;
    return ch->role == ROLE_WRITER ? ZMQ_PUSH : ZMQ_PULL;
}

static int set_int(void *sock, int option, int value)
{
    return zmq_setsockopt(sock, option, &value, sizeof value);
}

static int configure(struct chan *ch, void *sock)
{
    int timeout_ms = (int)(ch->cfg.op_timeout_ns / 1000000);
    if (set_int(sock, ZMQ_SNDHWM, (int)ch->cfg.depth) || set_int(sock, ZMQ_RCVHWM, (int)ch->cfg.depth) ||
        set_int(sock, ZMQ_SNDTIMEO, timeout_ms) || set_int(sock, ZMQ_RCVTIMEO, timeout_ms) ||
        set_int(sock, ZMQ_LINGER, 1000) || set_int(sock, ZMQ_RECONNECT_IVL, 1))
        return -zmq_errno();
    return 0;
}

static int zt_open(struct chan *ch)
{
    struct zt_shared *zs = ch->shared;
    struct zt_local *zl = calloc(1, sizeof *zl);
    if (!zl)
        return -ENOMEM;
    ch->local = zl;
    if (!process_ctx && !(process_ctx = zmq_ctx_new()))
        return -zmq_errno();
    ctx_users++;
    zl->sock = zmq_socket(process_ctx, socket_type(ch));
    if (!zl->sock)
        return -zmq_errno();
    int err = configure(ch, zl->sock);
    if (err)
        return err;
    if (ch->role == ROLE_READER)
        err = zmq_bind(zl->sock, zs->endpoint);
    else
        err = zmq_connect(zl->sock, zs->endpoint);
    return err ? -zmq_errno() : 0;
}

static int zt_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    (void)timeout_ns; /* ZMQ_SNDTIMEO, set at open */
    struct zt_local *zl = ch->local;
    while (zmq_send(zl->sock, msg, ch->cfg.msg_size, 0) < 0) {
        int err = zmq_errno();
        if (err != EINTR)
            return err == EAGAIN ? -ETIMEDOUT : -err;
    }
    return 0;
}

static int zt_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    (void)timeout_ns; /* ZMQ_RCVTIMEO, set at open */
    struct zt_local *zl = ch->local;
    int n;
    while ((n = zmq_recv(zl->sock, msg, ch->cfg.msg_size, 0)) < 0) {
        int err = zmq_errno();
        if (err != EINTR)
            return err == EAGAIN ? -ETIMEDOUT : -err;
    }
    return (size_t)n == ch->cfg.msg_size ? 0 : -EBADMSG;
}

static void zt_close(struct chan *ch)
{
    struct zt_local *zl = ch->local;
    if (!zl)
        return;
    if (zl->sock)
        zmq_close(zl->sock);
    if (process_ctx && --ctx_users == 0) {
        zmq_ctx_term(process_ctx);
        process_ctx = NULL;
    }
    free(zl);
    ch->local = NULL;
}

static void zt_destroy(struct chan *ch)
{
    struct zt_shared *zs = ch->shared;
    unlink(zs->path);
    free(zs);
}

static const struct transport transport_zmq = {
    .name = "zmq",
    .summary = "ZeroMQ ipc://, PAIR (1 writer) or PUSH/PULL (fan-in)",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_MULTI_WRITER | CAP_BLOCKING,
    .group = GROUP_LIBRARY,
    .max_msg = 1u << 30,
    .create = zt_create,
    .open = zt_open,
    .send = zt_send,
    .recv = zt_recv,
    .close = zt_close,
    .destroy = zt_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_zmq)
