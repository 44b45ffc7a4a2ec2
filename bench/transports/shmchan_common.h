/*
 * shmchan_common.h - small helpers shared by the t_shmchan*.c transports:
 * channel names, timeouts in milliseconds and error codes.
 */
#ifndef SHMBENCH_SHMCHAN_COMMON_H
#define SHMBENCH_SHMCHAN_COMMON_H

#include "../src/bench.h"

#include <shmchan/shmchan.h>
#include <stdio.h>
#include <stdlib.h>

/* "sb<pid>-<channel>": short enough for SHMCHAN_NAME_MAX. */
static inline void sc_name(const struct chan *ch, char *buf, size_t len)
{
    int pid = 0;
    sscanf(ch->cfg.tag, "shmbench-%d", &pid);
    snprintf(buf, len, "sb%d-%u", pid, ch->cfg.index);
}

/* Harness timeouts are in nanoseconds, shmchan's in whole milliseconds. */
static inline int64_t sc_timeout_ms(int64_t timeout_ns)
{
    return timeout_ns <= 0 ? 0 : (timeout_ns + 999999) / 1000000;
}

static inline int sc_errno(int rc)
{
    switch (rc) {
    case SHMCHAN_OK: return 0;
    case SHMCHAN_ETIMEDOUT: return -ETIMEDOUT;
    case SHMCHAN_ENOTSUP: return -ENOTSUP;
    case SHMCHAN_ENOMEM: return -ENOMEM;
    case SHMCHAN_EMSGSIZE: return -EMSGSIZE;
    case SHMCHAN_EINTR: return -EINTR;
    default: return -EIO;
    }
}

/* A power of two that holds 'depth' messages plus their headers. */
static inline uint64_t sc_queue_capacity(const struct chan *ch)
{
    uint64_t want = (uint64_t)(ch->cfg.depth < 2 ? 2 : ch->cfg.depth) * (ch->cfg.msg_size + 64), cap = 4096;
    while (cap < want)
        cap <<= 1;
    return cap;
}

/* Remove the channel's name: every transport's destroy. */
static inline void sc_destroy(struct chan *ch)
{
    char name[32];
    sc_name(ch, name, sizeof name);
    shmchan_unlink(name, 0);
}

/* The queue transports' per-child state and set-up, shared by the copying
 * and the zero-copy variants. */
struct sc_queue_local {
    shmchan_queue *q;
};

/* Parent: create a block-mode queue sized for the run; children open it. */
static inline int sc_queue_create(struct chan *ch)
{
    char name[32];
    sc_name(ch, name, sizeof name);
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_CREATE | SHMCHAN_EXCL;
    o.policy = SHMCHAN_POLICY_BLOCK;
    o.max_msg = ch->cfg.msg_size;
    o.capacity = sc_queue_capacity(ch);
    shmchan_unlink(name, 0);
    shmchan_queue *h;
    int rc = shmchan_queue_open(name, &o, &h);
    if (rc != SHMCHAN_OK) {
        shmchan_unlink(name, 0);
        return sc_errno(rc);
    }
    shmchan_queue_close(h); /* children open their own handles */
    return 0;
}

/* Child: writers open plain handles, readers subscribe. */
static inline int sc_queue_open_handle(const struct chan *ch, shmchan_queue **out)
{
    char name[32];
    sc_name(ch, name, sizeof name);
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = ch->role == ROLE_READER ? SHMCHAN_SUBSCRIBE : 0;
    return sc_errno(shmchan_queue_open(name, &o, out));
}

static inline int sc_queue_open(struct chan *ch)
{
    struct sc_queue_local *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    ch->local = l;
    return sc_queue_open_handle(ch, &l->q);
}

static inline void sc_queue_close(struct chan *ch)
{
    struct sc_queue_local *l = ch->local;
    if (l)
        shmchan_queue_close(l->q);
    free(l);
    ch->local = NULL;
}

#endif
