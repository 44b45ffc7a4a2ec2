/*
 * shmchan_common.h - small helpers shared by the t_shmchan*.c transports:
 * channel names, timeouts in milliseconds and error codes.
 */
#ifndef SHMBENCH_SHMCHAN_COMMON_H
#define SHMBENCH_SHMCHAN_COMMON_H

#include "../src/bench.h"

#include <shmchan/shmchan.h>
#include <stdio.h>

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

#endif
