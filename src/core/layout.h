/*
 * The shared-memory layout: every struct that lives in a region.
 *
 * Internal. Any change to a struct here, or to the meaning of a field, must
 * bump SHMCHAN__LAYOUT_VERSION: the header's signature then rejects peers of
 * another layout with SHMCHAN_ELAYOUT instead of letting them corrupt each
 * other. docs/layout.md describes the same in prose, with the protocols.
 *
 * A region is [header | kind-specific control | data], each part starting on
 * a cache line, data on a page. All offsets and sizes are fixed at creation,
 * written before the header's state turns READY, and never change: readers
 * take them from their own validated copy (struct shmchan__region), never
 * re-read them from shared memory, so a scribbled header cannot move a reader
 * out of bounds after open.
 */
#ifndef SHMCHAN_LAYOUT_H
#define SHMCHAN_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "platform/compat.h"
#include "platform/platform.h"

/* "SHMCHAN\0" read as a little-endian u64; a big-endian peer sees it reversed. */
#define SHMCHAN__MAGIC UINT64_C(0x004e4148434d4853)
#define SHMCHAN__LAYOUT_VERSION 1u
#define SHMCHAN__STATE_READY UINT32_C(0x52454459) /* "READY" */
#define SHMCHAN__PAGE 4096u
#define SHMCHAN__HDR_SIZE 256u

/* Numbered locks on the backing object (see platform.h). */
#define SHMCHAN__LOCK_INIT 0u  /* exclusive while a creator initialises */
#define SHMCHAN__LOCK_OPEN 1u  /* shared by every open handle */
#define SHMCHAN__LOCK_SLOTS 64u /* + slot index: liveness of readers, then writers */

/*
 * The region header, at offset 0.
 *
 * The creator fills every field while holding SHMCHAN__LOCK_INIT exclusively,
 * then stores state = READY with release order; an opener loads state with
 * acquire order and only then reads the rest, so it never sees a half-built
 * header. Everything above `state` is immutable afterwards and covered by
 * `checksum` (FNV-1a), so a header scribbled over later is rejected at open
 * (SHMCHAN_ECORRUPT). Counters below `state` are shared atomics.
 */
typedef struct shmchan__hdr {
    uint64_t magic;           /* SHMCHAN__MAGIC */
    uint32_t layout_version;  /* SHMCHAN__LAYOUT_VERSION */
    uint32_t signature;       /* version folded with ABI sizes, see region.c */
    uint32_t kind;            /* SHMCHAN_KIND_LATEST or SHMCHAN_KIND_QUEUE */
    uint32_t policy;          /* queue: SHMCHAN_POLICY_*; latest: 0 */
    uint32_t hdr_size;        /* SHMCHAN__HDR_SIZE */
    uint32_t nbuf;            /* latest: buffers; queue: 0 */
    uint32_t max_readers;     /* queue: reader slots */
    uint32_t max_writers;     /* queue: writer slots */
    uint64_t region_size;     /* bytes, all parts */
    uint64_t max_msg;         /* largest payload */
    uint64_t capacity;        /* queue: ring bytes (power of two) */
    uint64_t ctl_off;         /* kind-specific control block */
    uint64_t ctl_size;
    uint64_t data_off;        /* data area (page aligned) */
    uint64_t data_size;
    int64_t created_unix_ns;
    uint32_t creator_pid;
    uint32_t checksum;        /* FNV-1a of every byte above */
    shmchan__atomic_u32 state;  /* 0 while initialising, then SHMCHAN__STATE_READY */
    uint32_t pad0;
    shmchan__atomic_u64 recovered; /* dead peers cleaned up, any kind */
    uint8_t pad1[SHMCHAN__HDR_SIZE - 128];
} shmchan__hdr;

_Static_assert(offsetof(shmchan__hdr, checksum) == 108, "header layout pinned");
_Static_assert(offsetof(shmchan__hdr, state) == 112, "header layout pinned");
_Static_assert(sizeof(shmchan__hdr) == SHMCHAN__HDR_SIZE, "header is 256 bytes");

/* ------------------------------------------------ latest-value channel */

#define SHMCHAN__LATEST_NBUF 4u

/*
 * Latest-value control block, at hdr.ctl_off. A multi-buffer seqlock:
 *
 * Writers serialise on `mutex` (robust: a dead holder is detected by the next
 * locker, see platform.h). Publishing sequence s (s = seq + 1) goes to buffer
 * s % nbuf, which is never the published one (the published one is (s-1) %
 * nbuf). The writer stores the buffer's tag = 2s+1 ("being written"), a
 * release fence, the payload and len, then tag = 2s (release), and finally
 * seq = s (release) and wake = (uint32_t)s. A writer that dies mid-copy has
 * only touched an unpublished buffer: readers keep the last complete message,
 * and the next writer (told OWNER_DIED) rewrites the same buffer.
 *
 * A reader loads seq (acquire) = s, then the buffer's tag (acquire); if it is
 * not 2s, the writer has lapped it: retry. It copies len and the payload
 * with plain loads, issues an acquire fence and reloads the tag: equal means
 * no writer touched the buffer during the copy (a writer stores 2s'+1 before
 * its first payload byte, ordered by its release fence), so the copy is one
 * whole message. A reader has nbuf-1 publishes' time before its buffer comes
 * round again, and retries otherwise. len is bounded by max_msg before use.
 *
 * Waiting: a reader increments `waiters` (seq_cst), re-checks seq, then
 * futex-waits on `wake`. A writer stores wake, issues a seq_cst fence and
 * loads waiters: by the Dekker argument either the writer sees the waiter and
 * wakes it, or the waiter sees the new seq and does not sleep. With no
 * waiter, publishing makes no system call.
 */
typedef struct shmchan__latest_ctl {
    /* Line 0: written by the writer holding mutex, once per publish. */
    shmchan__atomic_u64 seq;      /* newest complete sequence, 0 = none */
    shmchan__atomic_u32 wake;     /* (uint32_t)seq: the futex word */
    uint32_t pad0;
    shmchan__atomic_u64 messages; /* publishes */
    shmchan__atomic_u64 bytes;    /* payload bytes published */
    uint8_t pad1[SHMCHAN__CACHE_LINE - 32];
    /* Line 1: written by readers going to sleep. */
    shmchan__atomic_u32 waiters;  /* readers inside a futex wait */
    uint32_t pad2;
    shmchan__atomic_u64 sleeps;   /* times a reader slept */
    uint8_t pad3[SHMCHAN__CACHE_LINE - 16];
    /* Lines 2..: the writers' robust mutex. */
    uint8_t mutex[SHMCHAN__MUTEX_SIZE];
} shmchan__latest_ctl;

_Static_assert(sizeof(shmchan__latest_ctl) == 3 * SHMCHAN__CACHE_LINE, "latest ctl pinned");

/*
 * One buffer: tag and length, then the payload right behind them, the whole
 * padded to a cache line multiple. Keeping the payload on the tag's line means
 * a small message costs a reader one cache-line transfer, not two.
 */
typedef struct shmchan__latest_buf {
    shmchan__atomic_u64 tag; /* 2s+1 while sequence s is written, 2s when complete */
    shmchan__atomic_u64 len; /* payload length of the message in this buffer */
    /* payload follows */
} shmchan__latest_buf;

_Static_assert(sizeof(shmchan__latest_buf) == 16, "latest buf pinned");

#endif /* SHMCHAN_LAYOUT_H */
