/*
 * t_unix.c - an AF_UNIX SOCK_STREAM socketpair(2) per channel, used in one
 * direction.  Blocking send/recv of whole messages; SO_RCVTIMEO/SO_SNDTIMEO
 * bound every wait.  This is the "vs unix socket" reference of the report.
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct unix_shared {
    int sv[2]; /* sv[0] writer end, sv[1] reader end */
};

static int unix_create(struct chan *ch)
{
    if (ch->cfg.writers > 1 || ch->cfg.readers > 1)
        return -ENOTSUP;
    struct unix_shared *us = malloc(sizeof *us);
    if (!us)
        return -ENOMEM;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, us->sv) < 0) {
        free(us);
        return -errno;
    }
    ch->shared = us;
    return 0;
}

static int my_fd(struct chan *ch)
{
    struct unix_shared *us = ch->shared;
    return ch->role == ROLE_WRITER ? us->sv[0] : us->sv[1];
}

static int unix_open(struct chan *ch)
{
    struct unix_shared *us = ch->shared;
    close(ch->role == ROLE_WRITER ? us->sv[1] : us->sv[0]);
    return bench_set_socket_timeouts(my_fd(ch), ch->cfg.op_timeout_ns);
}

static int unix_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    (void)timeout_ns; /* SO_SNDTIMEO, set at open */
    return bench_write_full(my_fd(ch), msg, ch->cfg.msg_size);
}

static int unix_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    (void)timeout_ns; /* SO_RCVTIMEO, set at open */
    return bench_read_full(my_fd(ch), msg, ch->cfg.msg_size);
}

static void unix_destroy(struct chan *ch)
{
    struct unix_shared *us = ch->shared;
    close(us->sv[0]);
    close(us->sv[1]);
    free(us);
}

static const struct transport transport_unix = {
    .name = "unix",
    .summary = "AF_UNIX SOCK_STREAM socketpair, blocking",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_BLOCKING,
    .group = GROUP_KERNEL,
    .max_msg = 1u << 30,
    .create = unix_create,
    .open = unix_open,
    .send = unix_send,
    .recv = unix_recv,
    .destroy = unix_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_unix)
