/*
 * t_pipe.c - an anonymous pipe(2) per channel.  Messages are written and read
 * whole with blocking write/read (a reader sleeps in the kernel).  Several
 * writers may share the pipe when a message fits PIPE_BUF, because such
 * writes are atomic.  A blocked call is bounded by the harness's watchdog
 * alarm rather than a per-call timeout, since pipes have none.
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

struct pipe_shared {
    int fd[2];
};

static struct pipe_shared *state(struct chan *ch)
{
    return ch->shared;
}

static int pipe_create(struct chan *ch)
{
    if (ch->cfg.writers > 1 && ch->cfg.msg_size > PIPE_BUF)
        return -ENOTSUP; /* larger writes from several writers could interleave */
    if (ch->cfg.readers > 1)
        return -ENOTSUP;
    struct pipe_shared *ps = malloc(sizeof *ps); /* copied into the children by fork */
    if (!ps)
        return -ENOMEM;
    if (pipe(ps->fd) < 0) {
        free(ps);
        return -errno;
    }
    ch->shared = ps;
    return 0;
}

static int pipe_open(struct chan *ch)
{
    /* Drop the end this process does not use, so a dead peer shows as EOF/EPIPE. */
    struct pipe_shared *ps = state(ch);
    close(ch->role == ROLE_WRITER ? ps->fd[0] : ps->fd[1]);
    return 0;
}

static int pipe_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    (void)timeout_ns;
    return bench_write_full(state(ch)->fd[1], msg, ch->cfg.msg_size);
}

static int pipe_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    (void)timeout_ns;
    return bench_read_full(state(ch)->fd[0], msg, ch->cfg.msg_size);
}

static void pipe_destroy(struct chan *ch)
{
    struct pipe_shared *ps = state(ch);
    close(ps->fd[0]);
    close(ps->fd[1]);
    free(ps);
}

static const struct transport transport_pipe = {
    .name = "pipe",
    .summary = "pipe(2), blocking read/write",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_MULTI_WRITER | CAP_BLOCKING,
    .group = GROUP_KERNEL,
    .max_msg = 1u << 30,
    .create = pipe_create,
    .open = pipe_open,
    .send = pipe_send,
    .recv = pipe_recv,
    .destroy = pipe_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_pipe)
