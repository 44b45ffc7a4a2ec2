/*
 * t_eventfd.c - an eventfd(2) doorbell with the payload in a shared-memory
 * slot: the writer copies the message into the slot and adds 1 to the
 * eventfd; the reader sleeps in a blocking read(2) on the eventfd, then copies
 * the message out.  One message in flight at a time (latency only), one
 * reader.  A blocked read is bounded by the harness's watchdog alarm.
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct efd_shared {
    int fd;
    unsigned char *slot; /* shared mapping of msg_size bytes */
};

static int efd_create(struct chan *ch)
{
    if (ch->cfg.writers > 1 || ch->cfg.readers > 1)
        return -ENOTSUP;
    struct efd_shared *es = malloc(sizeof *es);
    if (!es)
        return -ENOMEM;
    es->slot = bench_shm_alloc(ch->cfg.msg_size);
    es->fd = eventfd(0, 0);
    if (!es->slot || es->fd < 0) {
        int err = es->fd < 0 ? -errno : -ENOMEM;
        if (es->fd >= 0)
            close(es->fd);
        bench_shm_free(es->slot, ch->cfg.msg_size);
        free(es);
        return err;
    }
    ch->shared = es;
    return 0;
}

static int efd_open(struct chan *ch)
{
    (void)ch;
    return 0;
}

static int efd_send(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    (void)timeout_ns;
    struct efd_shared *es = ch->shared;
    uint64_t one = 1;
    memcpy(es->slot, msg, ch->cfg.msg_size);
    return bench_write_full(es->fd, &one, sizeof one);
}

static int efd_recv(struct chan *ch, void *msg, int64_t timeout_ns)
{
    (void)timeout_ns;
    struct efd_shared *es = ch->shared;
    uint64_t count;
    int err = bench_read_full(es->fd, &count, sizeof count);
    if (err)
        return err;
    if (count != 1)
        return -EPROTO; /* more than one message in flight */
    memcpy(msg, es->slot, ch->cfg.msg_size);
    return 0;
}

static void efd_destroy(struct chan *ch)
{
    struct efd_shared *es = ch->shared;
    close(es->fd);
    bench_shm_free(es->slot, ch->cfg.msg_size);
    free(es);
}

static const struct transport transport_eventfd = {
    .name = "eventfd",
    .summary = "eventfd doorbell + shared-memory slot, blocking read",
    .caps = CAP_LATENCY | CAP_BLOCKING,
    .group = GROUP_KERNEL,
    .max_msg = 1u << 20,
    .create = efd_create,
    .open = efd_open,
    .send = efd_send,
    .recv = efd_recv,
    .destroy = efd_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_eventfd)
