/*
 * t_tcp.c - one TCP connection over loopback (127.0.0.1 only) per channel.
 * The parent listens on an ephemeral port before forking; the reader accepts
 * and the writer connects.  TCP_NODELAY is set so small messages are not
 * delayed; blocking send/recv with SO_RCVTIMEO/SO_SNDTIMEO.
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct tcp_shared {
    int listener;
    struct sockaddr_in addr;
};

struct tcp_local {
    int fd;
};

static int tcp_create(struct chan *ch)
{
    if (ch->cfg.writers > 1 || ch->cfg.readers > 1)
        return -ENOTSUP;
    struct tcp_shared *ts = calloc(1, sizeof *ts);
    if (!ts)
        return -ENOMEM;
    socklen_t len = sizeof ts->addr;
    ts->addr.sin_family = AF_INET;
    ts->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ts->listener = socket(AF_INET, SOCK_STREAM, 0);
    if (ts->listener < 0 || bind(ts->listener, (struct sockaddr *)&ts->addr, sizeof ts->addr) < 0 ||
        listen(ts->listener, 1) < 0 || getsockname(ts->listener, (struct sockaddr *)&ts->addr, &len) < 0) {
        int err = -errno;
        if (ts->listener >= 0)
            close(ts->listener);
        free(ts);
        return err;
    }
    ch->shared = ts;
    return 0;
}

static int accept_with_timeout(int listener, int64_t timeout_ns)
{
    struct pollfd pfd = {listener, POLLIN, 0};
    int n = poll(&pfd, 1, (int)(timeout_ns / 1000000));
    if (n == 0)
        return -ETIMEDOUT;
    if (n < 0)
        return -errno;
    int fd = accept(listener, NULL, NULL);
    return fd < 0 ? -errno : fd;
}

static int tcp_open(struct chan *ch)
{
    struct tcp_shared *ts = ch->shared;
    struct tcp_local *tl = malloc(sizeof *tl);
    if (!tl)
        return -ENOMEM;
    ch->local = tl;
    if (ch->role == ROLE_READER) {
        tl->fd = accept_with_timeout(ts->listener, ch->cfg.op_timeout_ns);
    } else {
        tl->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (tl->fd >= 0 && connect(tl->fd, (struct sockaddr *)&ts->addr, sizeof ts->addr) < 0) {
            int err = -errno;
            close(tl->fd);
            tl->fd = err;
        }
    }
    if (tl->fd < 0)
        return tl->fd;
    int one = 1;
    if (setsockopt(tl->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        return -errno;
    return bench_set_socket_timeouts(tl->fd, ch->cfg.op_timeout_ns);
}

static int tcp_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    (void)timeout_ns; /* SO_SNDTIMEO, set at open */
    return bench_write_full(((struct tcp_local *)ch->local)->fd, msg, ch->cfg.msg_size);
}

static int tcp_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    (void)timeout_ns; /* SO_RCVTIMEO, set at open */
    return bench_read_full(((struct tcp_local *)ch->local)->fd, msg, ch->cfg.msg_size);
}

static void tcp_close(struct chan *ch)
{
    struct tcp_local *tl = ch->local;
    if (tl && tl->fd >= 0)
        close(tl->fd);
    free(tl);
    ch->local = NULL;
}

static void tcp_destroy(struct chan *ch)
{
    struct tcp_shared *ts = ch->shared;
    close(ts->listener);
    free(ts);
}

static const struct transport transport_tcp = {
    .name = "tcp",
    .summary = "TCP over 127.0.0.1, TCP_NODELAY, blocking",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_BLOCKING,
    .group = GROUP_KERNEL,
    .max_msg = 1u << 30,
    .create = tcp_create,
    .open = tcp_open,
    .send = tcp_send,
    .recv = tcp_recv,
    .close = tcp_close,
    .destroy = tcp_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_tcp)
