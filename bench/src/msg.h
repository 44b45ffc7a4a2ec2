/*
 * msg.h - the message layout the harness writes into every message, so that
 * a reader can check that it got the bytes of the message it expected: a
 * header (sequence number, send time, writer rank, flags, check word) at the
 * start and a second check word in the last 8 bytes.  A short, torn, stale or
 * reordered message fails msg_read() or the caller's sequence check.
 */
#ifndef SHMBENCH_MSG_H
#define SHMBENCH_MSG_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct msg_hdr {
    uint64_t seq;      /* 1, 2, 3, ... per writer */
    uint64_t stamp_ns; /* CLOCK_MONOTONIC when sent (0 in throughput runs) */
    uint32_t writer;   /* writer rank */
    uint32_t flags;    /* MSG_STOP */
    uint64_t check;    /* msg_tag(seq, writer, flags) */
};

enum { MSG_STOP = 1u };

#define MSG_MIN_SIZE (sizeof(struct msg_hdr) + sizeof(uint64_t))

static inline uint64_t msg_tag(uint64_t seq, uint32_t writer, uint32_t flags)
{
    return (seq * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)writer << 40) ^ ((uint64_t)flags << 56) ^
           0x53484D4348414E31ull;
}

static inline uint64_t msg_trailer(uint64_t seq, uint32_t writer)
{
    return ~msg_tag(seq, writer, 0);
}

/* Write header and trailer; the bytes in between are left as they are. */
static inline void msg_write(void *msg, size_t size, uint64_t seq, uint64_t stamp, uint32_t writer,
                             uint32_t flags)
{
    struct msg_hdr h = {seq, stamp, writer, flags, msg_tag(seq, writer, flags)};
    uint64_t trailer = msg_trailer(seq, writer);
    memcpy(msg, &h, sizeof h);
    memcpy((char *)msg + size - sizeof trailer, &trailer, sizeof trailer);
}

/* Copy out the header; -EBADMSG if header and trailer do not match. */
static inline int msg_read(const void *msg, size_t size, struct msg_hdr *h)
{
    uint64_t trailer;
    memcpy(h, msg, sizeof *h);
    memcpy(&trailer, (const char *)msg + size - sizeof trailer, sizeof trailer);
    if (h->check != msg_tag(h->seq, h->writer, h->flags) || trailer != msg_trailer(h->seq, h->writer))
        return -EBADMSG;
    return 0;
}

#endif
