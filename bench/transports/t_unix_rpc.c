/*
 * t_unix_rpc.c - request/response over AF_UNIX datagram sockets, the kernel
 * reference of the rpc workloads.  The parent binds one server socket (a
 * file in /tmp, removed by destroy()); every server process inherits it and
 * the servers compete for requests in recvfrom(), the kernel handing each
 * datagram to one of them.  Each client has its own autobound (abstract)
 * socket connected to the server's, and the server answers with sendto() to
 * the address the request came from.  Unix datagrams are reliable and keep
 * their order on Linux; SO_RCVTIMEO/SO_SNDTIMEO bound every wait.
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct urpc_shared {
    int server_fd;
    struct sockaddr_un addr;
};

struct urpc_local {
    int fd;
    struct sockaddr_un peer;  /* server: where the last request came from */
    socklen_t peer_len;
};

static int urpc_create(struct chan *ch)
{
    struct urpc_shared *us = calloc(1, sizeof *us);
    if (!us)
        return -ENOMEM;
    us->addr.sun_family = AF_UNIX;
    snprintf(us->addr.sun_path, sizeof us->addr.sun_path, "/tmp/%s-%u.sock", ch->cfg.tag,
             ch->cfg.index);
    unlink(us->addr.sun_path);
    us->server_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (us->server_fd < 0 || bind(us->server_fd, (struct sockaddr *)&us->addr, sizeof us->addr) < 0) {
        int err = -errno;
        if (us->server_fd >= 0)
            close(us->server_fd);
        free(us);
        return err;
    }
    ch->shared = us;
    return 0;
}

static int client_socket(struct urpc_shared *us)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un me = {.sun_family = AF_UNIX}; /* autobind: an abstract name */
    if (bind(fd, (struct sockaddr *)&me, sizeof(sa_family_t)) < 0 ||
        connect(fd, (struct sockaddr *)&us->addr, sizeof us->addr) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

static int urpc_open(struct chan *ch)
{
    struct urpc_shared *us = ch->shared;
    struct urpc_local *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    ch->local = l;
    l->fd = -1;
    if (ch->role == ROLE_READER) {
        l->fd = us->server_fd;
    } else {
        close(us->server_fd); /* a client only sends to it */
        if ((l->fd = client_socket(us)) < 0)
            return l->fd;
    }
    return bench_set_socket_timeouts(l->fd, ch->cfg.op_timeout_ns);
}

static int io_result(ssize_t n, size_t want)
{
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
    return (size_t)n == want ? 0 : -EBADMSG;
}

static int urpc_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    (void)timeout_ns; /* SO_SNDTIMEO, set at open */
    struct urpc_local *l = ch->local;
    size_t size = ch->cfg.msg_size;
    ssize_t n;
    do
        n = ch->role == ROLE_WRITER
                ? send(l->fd, msg, size, 0)
                : sendto(l->fd, msg, size, 0, (struct sockaddr *)&l->peer, l->peer_len);
    while (n < 0 && errno == EINTR);
    return io_result(n, size);
}

static int urpc_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    (void)timeout_ns; /* SO_RCVTIMEO, set at open */
    struct urpc_local *l = ch->local;
    size_t size = ch->cfg.msg_size;
    ssize_t n;
    do {
        l->peer_len = sizeof l->peer;
        n = ch->role == ROLE_WRITER ? recv(l->fd, msg, size, MSG_TRUNC)
                                    : recvfrom(l->fd, msg, size, MSG_TRUNC,
                                               (struct sockaddr *)&l->peer, &l->peer_len);
    } while (n < 0 && errno == EINTR);
    return io_result(n, size);
}

static void urpc_close(struct chan *ch)
{
    struct urpc_local *l = ch->local;
    if (l && ch->role == ROLE_WRITER && l->fd >= 0)
        close(l->fd);
    free(l);
    ch->local = NULL;
}

static void urpc_destroy(struct chan *ch)
{
    struct urpc_shared *us = ch->shared;
    close(us->server_fd);
    unlink(us->addr.sun_path);
    free(us);
}

static const struct transport transport_unix_rpc = {
    .name = "unix-rpc",
    .summary = "AF_UNIX datagrams: servers share one bound socket, each client its own",
    .caps = CAP_RPC | CAP_BLOCKING,
    .group = GROUP_KERNEL,
    .max_msg = 64u << 10,
    .create = urpc_create,
    .open = urpc_open,
    .send = urpc_send,
    .recv = urpc_recv,
    .close = urpc_close,
    .destroy = urpc_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_unix_rpc)
