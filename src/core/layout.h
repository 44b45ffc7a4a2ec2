/*
 * The shared-memory layout: every struct that lives in a region.
 *
 * Internal. Any change to a struct here, or to the meaning of a field, must
 * bump SHMCHAN__LAYOUT_VERSION: the header's signature then rejects peers of
 * another layout with SHMCHAN_ELAYOUT instead of letting them corrupt each
 * other. docs/design.md (regions, latest-value) and docs/queue.md (queues)
 * describe the same in prose, with the protocols.
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
#define SHMCHAN__LAYOUT_VERSION 5u
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
    uint32_t kind;            /* SHMCHAN_KIND_LATEST, _QUEUE or _SERVICE */
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
    uint64_t chan_id;         /* random, from the creator: names its notifiers (notify.h) */
    uint8_t pad1[SHMCHAN__HDR_SIZE - 136];
} shmchan__hdr;

_Static_assert(offsetof(shmchan__hdr, checksum) == 108, "header layout pinned");
_Static_assert(offsetof(shmchan__hdr, state) == 112, "header layout pinned");
_Static_assert(offsetof(shmchan__hdr, chan_id) == 128, "header layout pinned");
_Static_assert(sizeof(shmchan__hdr) == SHMCHAN__HDR_SIZE, "header is 256 bytes");

/*
 * Readiness notifiers (core/notify.h, docs/event-loops.md): a table of
 * SHMCHAN__NOTIFY_SLOTS 32-bit "armed" words at the end of each kind's
 * control block, plus two counters on the line the sleepers already use:
 * nf_armed (slots armed now) and nf_used (slots ever taken: the scan bound,
 * clamped to the table by every reader of it). A slot belongs to whoever
 * holds the OS object named after (chan_id, slot): an abstract AF_UNIX
 * socket on Linux, a named event on Windows; the kernel frees the name when
 * its owner dies. No address, descriptor or name is ever stored here: a
 * writer derives the name from the chan_id it validated at open and the slot
 * index, so a forged word can at worst make writers send empty datagrams to
 * other notifiers of this channel.
 *
 * The owner arms its slot: a seq_cst increment of nf_armed, then an exchange
 * of its word to 1 (if it was 1 already, it takes its increment back), the
 * waiter's barrier, and a look for a message (the Dekker pattern of the
 * sleepers, on the slot's word). A writer, after the publisher's barrier,
 * loads nf_armed; only when it is non-zero it scans the table and, for each
 * word it CASes from 1 to 0, decrements nf_armed (never below 0) and signals
 * that slot once, without blocking. Incrementing before arming and
 * decrementing after disarming keep nf_armed at or above the number of armed
 * words, so a writer that reads 0 skips nobody. One signal per arming, never
 * one per message.
 */
#define SHMCHAN__NOTIFY_SLOTS 64u

/* ------------------------------------------------ latest-value channel */

#define SHMCHAN__LATEST_NBUF 4u

#define SHMCHAN__LATEST_WRITERS 128u /* writer slots: writer handles at once */

/*
 * Latest-value control block, at hdr.ctl_off. A multi-buffer seqlock:
 *
 * Writers serialise on `lock`, a slot lock (core/slotlock.h): 0 when free,
 * else gen << 32 | (slot + 1) naming the holder's writer slot. No process
 * address is ever stored here: every word a peer can forge is a number that
 * is validated. A handle takes a writer slot at its first publish and keeps
 * it until close, holding the slot's kernel lock (SHMCHAN__LOCK_SLOTS + slot)
 * meanwhile. To take the writers' lock its owner stores its slot's `state`
 * and an odd `hold` (it is taking or holding the lock), then CASes lock from
 * 0 to its word; to release, it stores lock = 0 and then an even `hold`, both
 * with release order. A contender that finds the word naming no slot, a free
 * slot, another generation, an even `hold` or a free kernel lock steals the
 * word with a CAS; if `hold` changed meanwhile (the owner released and took
 * the lock again, the same word) it gives the word back. Contenders spin,
 * then sleep on `lk_wake` counted in `lk_waiters` (the Dekker pattern of
 * readers below, through the publisher's barrier of the commit), and look at
 * the owner again at least every 10 ms. docs/design.md has the argument.
 *
 * Publishing sequence s (s = seq + 1) goes to buffer s % nbuf, which is never
 * the published one (the published one is (s-1) % nbuf). The writer issues a
 * release fence, stores the payload (the bytes on the tag's line last) and
 * len, then tag = 2s (release), and finally seq = s (release) and wake =
 * (uint32_t)s. Since layout 4 there is no "being written" mark: it cost the
 * reader that polls the tag's line an extra transfer of that line per message
 * (docs/design.md, "Cache lines per message"). A writer that dies mid-copy
 * has only touched an unpublished buffer: readers keep the last complete
 * message, and the next writer (who steals the lock) rewrites the same
 * buffer; one that dies between the tag and seq stores left message s
 * complete, and the next writer publishes it (roll_forward in latest.c).
 *
 * A reader loads seq (acquire) = s, counts s + 1 too if that buffer's tag
 * already says complete, then loads the buffer's tag (acquire); if it is not
 * 2s, the writer has lapped it: retry. It copies len and the payload with
 * plain loads, issues an acquire fence, reloads the tag and loads the tag of
 * buffer (s + nbuf - 1) % nbuf: the tag unchanged and message s + nbuf - 1
 * not complete means no writer touched the buffer during the copy (the writer
 * of s + nbuf begins only after s + nbuf - 1 is complete, and its release
 * fence before its first byte pairs with our acquire fence), so the copy is
 * one whole message. A reader has nbuf-1 publishes' time before its buffer
 * comes round again, and retries otherwise. len is bounded by max_msg before
 * use. read_next follows the stream from the tags alone: it polls the tag of
 * buffer after+1 and confirms "newest" from the tag of the buffer after it.
 *
 * Waiting: a reader increments `waiters` (seq_cst), issues the waiter's
 * barrier, re-checks seq, then futex-waits on `wake`. A writer stores wake,
 * issues the publisher's barrier and loads waiters: by the Dekker argument
 * either the writer sees the waiter and wakes it, or the waiter sees the new
 * seq and does not sleep. Where membarrier exists the waiter's barrier forces
 * one on the publisher, whose own is then a compiler barrier (wait.h,
 * docs/design.md), except while `fenced` counts readers that sleep message
 * after message and forced it once instead. With no waiter, publishing makes
 * no system call.
 */
/* A writer slot. Four share a cache line: writers that contend for it
 * contend for the lock anyway, and the control block stays in the first
 * page with the header. */
typedef struct shmchan__latest_wslot {
    shmchan__atomic_u64 state; /* gen << 32 | 1 while in use, gen << 32 when free */
    shmchan__atomic_u64 hold;  /* odd while its owner takes or holds the lock */
} shmchan__latest_wslot;

_Static_assert(sizeof(shmchan__latest_wslot) == 16, "latest slot pinned");

typedef struct shmchan__latest_ctl {
    /* Line 0: written by the writer holding the lock, once per publish. */
    shmchan__atomic_u64 seq;      /* newest complete sequence, 0 = none */
    shmchan__atomic_u32 wake;     /* (uint32_t)seq: the futex word */
    uint32_t pad0;
    shmchan__atomic_u64 messages; /* publishes */
    shmchan__atomic_u64 bytes;    /* payload bytes published */
    uint8_t pad1[SHMCHAN__CACHE_LINE - 32];
    /* Line 1: written by readers going to sleep. */
    shmchan__atomic_u32 waiters;  /* readers inside a futex wait */
    shmchan__atomic_u32 fenced;   /* readers for whom publishers fence (wait.h) */
    shmchan__atomic_u64 sleeps;   /* times a reader slept */
    shmchan__atomic_u32 nf_armed; /* armed notifier slots (see above) */
    shmchan__atomic_u32 nf_used;  /* notifier slots ever taken: scan bound */
    uint8_t pad3[SHMCHAN__CACHE_LINE - 24];
    /* Line 2: the writers' lock. */
    shmchan__atomic_u64 lock;       /* 0 free, else gen << 32 | (writer slot + 1) */
    shmchan__atomic_u32 lk_waiters; /* writers asleep waiting for the lock */
    shmchan__atomic_u32 lk_wake;    /* their futex word, bumped on release */
    shmchan__atomic_u32 writers_used; /* writer slots ever used: scan bound */
    uint8_t pad4[SHMCHAN__CACHE_LINE - 20];
    /* Lines 3..: writer slots, written by their owners. */
    shmchan__latest_wslot writers[SHMCHAN__LATEST_WRITERS];
    /* Then the notifier slots' armed words, written by their owners and by
     * the writers that fire them. */
    shmchan__atomic_u32 notify[SHMCHAN__NOTIFY_SLOTS];
} shmchan__latest_ctl;

_Static_assert(sizeof(shmchan__latest_ctl) == 3 * SHMCHAN__CACHE_LINE + 16 * SHMCHAN__LATEST_WRITERS +
                                                  4 * SHMCHAN__NOTIFY_SLOTS,
               "latest ctl pinned");
_Static_assert(SHMCHAN__HDR_SIZE + sizeof(shmchan__latest_ctl) <= SHMCHAN__PAGE,
               "latest ctl fits the first page");

/*
 * One buffer: tag and length, then the payload right behind them, the whole
 * padded to a cache line multiple. Keeping the payload on the tag's line means
 * a small message costs a reader one cache-line transfer, not two.
 */
typedef struct shmchan__latest_buf {
    shmchan__atomic_u64 tag; /* 2s once sequence s is complete in it */
    shmchan__atomic_u64 len; /* payload length of the message in this buffer */
    /* payload follows */
} shmchan__latest_buf;

_Static_assert(sizeof(shmchan__latest_buf) == 16, "latest buf pinned");

/* ------------------------------------------------------------------ queue */

/*
 * A queue is a ring of `capacity` bytes (a power of two) of variable-length
 * records, addressed by 64-bit positions that only grow: position p lives at
 * ring offset p & (capacity - 1). A record is a 16-byte header and its
 * payload, padded to 16 bytes, and never crosses the ring's end: a PAD record
 * fills the tail end instead. Every message gets the next 64-bit sequence
 * number (from 1); the record's tag carries it with the record's kind, so a
 * reader at position p expecting sequence s learns from the tag alone whether
 * message s is there, without reading any writer-owned index:
 *
 *   tag == s<<2 | MSG      committed message s: copy len bytes, then expect s+1
 *   tag == s<<2 | DROPPED  sequence s was claimed but never committed (its
 *                          writer aborted or died): skip len bytes, expect s+1
 *   tag == s<<2 | PAD      filler (the ring's tail end, or the unused rest of a
 *                          reservation committed shorter): skip len bytes and
 *                          keep expecting s
 *   tag == s<<2 | CLAIMED  claimed by writer `writer`, payload being copied
 *   seq(tag) < s, or 0     nothing there yet (stale bytes of an older lap)
 *
 * The header at the tail (the position the next claim starts at) is always 0:
 * every claim writes a zero header right behind its record before it moves the
 * tail, so old payload bytes there can never pass for a message.
 */
#define SHMCHAN__QREC_ALIGN 16u
#define SHMCHAN__QTAG_CLAIMED 0u
#define SHMCHAN__QTAG_MSG 1u
#define SHMCHAN__QTAG_PAD 2u
#define SHMCHAN__QTAG_DROPPED 3u
#define SHMCHAN__QTAG_KINDS 3u
#define SHMCHAN__QPOS_NONE UINT64_MAX

/*
 * A record header. The claimant writes len and writer, then tag = CLAIMED
 * with release order, inside the claim critical section; the payload follows
 * outside it and the commit is one release store of tag = MSG. A send of at
 * most 1 KiB copies its payload and commits inside the critical section, after
 * the zero header behind it and before the tail moves. Readers load
 * tag with acquire order, then len, and bound len by max_msg and by the ring's
 * end before any use, except under a CLAIMED tag, which only means "wait": a
 * claim that goes to the next lap's start (it does not fit, or it rewinds)
 * first marks its old tail CLAIMED with the length of the PAD it becomes.
 */
typedef struct shmchan__qrec {
    shmchan__atomic_u64 tag;    /* seq << 2 | SHMCHAN__QTAG_* */
    shmchan__atomic_u32 len;    /* payload bytes (PAD: bytes skipped after the header) */
    shmchan__atomic_u32 writer; /* writer slot that claimed it */
} shmchan__qrec;

_Static_assert(sizeof(shmchan__qrec) == 16, "queue record header pinned");
_Static_assert(SHMCHAN__QREC_ALIGN % 16 == 0, "records hold whole headers");

/*
 * Queue control block, at hdr.ctl_off, one cache line per group of words
 * with one writer pattern, so that the hot paths own their lines:
 *
 * Line 0, claim state, written only by the holder of `lock` (0 free, else
 * gen << 32 | (slot + 1), slot numbering readers 0..R-1 then writers R..):
 * a writer takes the lock with a CAS, claims [tail, tail + span) for the next
 * sequence, and releases it with a release store. Inside it first writes the
 * journal {j_pos, j_len, j_oldest} and then j_seq (release), and only then
 * touches the ring; a contender that finds the owner dead (its slot's
 * generation changed, or its liveness lock is free) steals the lock with a
 * CAS and, if j_seq == next_seq and j_pos == tail, rolls the claim forward as
 * a DROPPED record: every step is idempotent. A run (several small records
 * claimed at once by send_batch, published by its first record's MSG store;
 * layout 5) rolls forward as published if that store happened, else as
 * padding that takes no sequence number (docs/queue.md, "Runs"). `gate` caches min(reader
 * position) + capacity: a claim that ends at or below it needs no look at
 * the reader table (the Disruptor's cached gating sequence).
 *
 * Line 1, `consumed`: the watermark of what readers have read (docs/queue.md,
 * "Unread messages"). Every message before it was received by some reader;
 * block-mode writers never overwrite a record at or after min(consumed, every
 * live reader's position), so with no reader registered they wait for the
 * first one instead of overwriting. It only grows (CAS to a larger value):
 * a writer scanning the reader table raises it to the end of what a reader
 * has read continuously from it (a reader whose `from` is at or below it),
 * and a reader leaving (closing, dropped dead, reset) does the same with its
 * final position. Writers count in `drops` the messages they overwrite at or
 * after it that no live subscriber was placed to read (below every live
 * subscriber's `from`), when no worker is registered. `subs_epoch` changes
 * with the subscriber set, so that a writer may cache that smallest `from`;
 * a forged epoch or watermark only skews the count.
 *
 * Line 2, `oldest`: position of the oldest record still intact. A claim moves
 * it past every record it is about to overwrite, then issues a release fence,
 * before its first store into them; the header at `oldest` is always intact
 * and carries the oldest sequence. A reader that may be overtaken copies,
 * issues an acquire fence and reloads `oldest`: at or below its record's
 * position means no writer had started to overwrite it.
 *
 * Line 3, workers: `work_pos` is the next record to hand to a worker,
 * advanced by CAS; a worker first announces the position in its slot
 * (seq_cst), and block-mode writers read work_pos before the slots, so a
 * record a worker still copies is never overwritten.
 *
 * Line 4, sleepers (the Dekker pattern of the latest-value channel): readers
 * going to sleep increment rd_waiters (seq_cst), issue the waiter's barrier,
 * re-check their record and futex-wait on `wake`; a writer after committing
 * issues the publisher's barrier (wait.h) and bumps `wake` and wakes only
 * if rd_waiters is non-zero; `fenced` counts the readers that sleep message
 * after message, for whom the publisher's barrier is a full fence (wait.h).
 * Writers waiting for space do the same with sp_waiters and `space`, which
 * readers bump after publishing their position.
 */
typedef struct shmchan__queue_ctl {
    /* Line 0: claim state. */
    shmchan__atomic_u64 lock;
    shmchan__atomic_u64 tail;     /* where the next claim starts; its header is 0 */
    shmchan__atomic_u64 next_seq; /* sequence of the next claim (from 1) */
    shmchan__atomic_u64 gate;     /* claims ending at or below this fit (block mode) */
    shmchan__atomic_u64 j_seq;    /* journal: sequence of the claim in progress */
    shmchan__atomic_u64 j_pos;    /* journal: tail when it started */
    shmchan__atomic_u64 j_len;    /* journal: payload length claimed, | QJ_REWOUND;
                                   * a run: span | count << 32 | QJ_RUN (ring.h) */
    shmchan__atomic_u64 j_oldest; /* journal: oldest after it */
    /* Line 1: table extents, reader counts, the consumed watermark (atomic
     * updates, never on a hot path). */
    shmchan__atomic_u32 readers_used; /* reader slots ever used: scan bound */
    shmchan__atomic_u32 writers_used; /* writer slots ever used: scan bound */
    shmchan__atomic_u32 nworkers;     /* live worker slots */
    shmchan__atomic_u32 nsubs;        /* live subscriber slots */
    shmchan__atomic_u64 consumed;     /* watermark: every message before it was read */
    shmchan__atomic_u32 subs_epoch;   /* bumped by every subscriber join and leave */
    uint8_t pad1[SHMCHAN__CACHE_LINE - 28];
    /* Line 2: oldest intact record. */
    shmchan__atomic_u64 oldest;
    uint8_t pad2[SHMCHAN__CACHE_LINE - 8];
    /* Line 3: workers. */
    shmchan__atomic_u64 work_pos;  /* next record for a worker */
    shmchan__atomic_u64 work_lost; /* overwrite mode: lost by workers, not yet reported */
    uint8_t pad3[SHMCHAN__CACHE_LINE - 16];
    /* Line 4: sleepers. */
    shmchan__atomic_u32 rd_waiters; /* readers inside a futex wait */
    shmchan__atomic_u32 wake;       /* readers' futex word */
    shmchan__atomic_u32 sp_waiters; /* writers waiting for space */
    shmchan__atomic_u32 space;      /* writers' futex word */
    shmchan__atomic_u32 fenced;     /* readers for whom publishers fence */
    shmchan__atomic_u32 nf_armed;   /* armed notifier slots (see the header's note) */
    shmchan__atomic_u32 nf_used;    /* notifier slots ever taken: scan bound */
    uint8_t pad4[SHMCHAN__CACHE_LINE - 28];
    /* Line 5: slow-path counters (atomic read-modify-write). Messages and
     * bytes are counted per writer slot, on lines their writers own. */
    shmchan__atomic_u64 drops; /* messages readers lost to overwriting */
    shmchan__atomic_u64 waits; /* writer waits for space, reader sleeps */
    uint8_t pad5[SHMCHAN__CACHE_LINE - 16];
    /* Lines 6..9: notifier slots' armed words (see the header's note). */
    shmchan__atomic_u32 notify[SHMCHAN__NOTIFY_SLOTS];
} shmchan__queue_ctl;

_Static_assert(sizeof(shmchan__queue_ctl) == 6 * SHMCHAN__CACHE_LINE + 4 * SHMCHAN__NOTIFY_SLOTS,
               "queue ctl pinned");

/*
 * The data area: max_readers reader slots, max_writers writer slots, padding
 * to a page, then the ring. A slot belongs to the handle that holds its
 * liveness lock (SHMCHAN__LOCK_SLOTS + slot) exclusively; `state` is
 * gen << 32 | role, and the generation grows each time the slot is taken, so
 * that a stale claim-lock owner or a stale CAS from a peer that dropped a
 * dead slot never matches a new owner.
 *
 * A subscriber publishes {pos, seq, received} with release stores once per
 * receive call (not per message of a batch), then issues the publisher's
 * barrier and reads sp_waiters (see ring.h for when). A worker stores pos = the position it is about to claim
 * (seq_cst) and QPOS_NONE when it is done with the record. In block mode a
 * writer whose claim a subscriber at committed PADs holds back moves that
 * subscriber's pos past them with a CAS (the one word of the slot another
 * process writes); the subscriber, after loading the tag at its cursor,
 * continues from pos when pos is ahead (docs/queue.md, "Rewinding").
 */
typedef struct shmchan__qreader {
    shmchan__atomic_u64 state;    /* gen << 32 | SHMCHAN_PEER_SUBSCRIBER / _WORKER, 0 free */
    shmchan__atomic_u64 pos;      /* subscriber: next record; worker: record being taken */
    shmchan__atomic_u64 seq;      /* next sequence it expects */
    shmchan__atomic_u64 received; /* messages received */
    shmchan__atomic_u64 lost;     /* messages lost to overwriting */
    shmchan__atomic_u64 start;    /* process start time (display) */
    shmchan__atomic_u64 from;     /* where it joined: subscriber's first position,
                                     worker: work_pos then; QPOS_NONE before */
    shmchan__atomic_u32 pid;
    uint8_t pad[SHMCHAN__CACHE_LINE - 60];
} shmchan__qreader;

/*
 * A writer slot. `resv` is the position of the record its owner has claimed
 * and not yet committed (QPOS_NONE otherwise): set before the record's
 * CLAIMED tag is stored, cleared after the commit. A reader stuck at a CLAIMED
 * record names its writer dead when resv no longer points at the record (the
 * slot was taken over or freed) or the slot's liveness lock is free.
 */
typedef struct shmchan__qwriter {
    shmchan__atomic_u64 state;       /* gen << 32 | 1 while in use */
    shmchan__atomic_u64 resv;        /* claimed, uncommitted record, or QPOS_NONE */
    shmchan__atomic_u64 sent;        /* messages committed by this owner */
    shmchan__atomic_u64 total;       /* messages committed through this slot, ever */
    shmchan__atomic_u64 total_bytes; /* their payload bytes */
    shmchan__atomic_u64 start;       /* process start time (display) */
    shmchan__atomic_u32 pid;
    uint8_t pad[SHMCHAN__CACHE_LINE - 52];
} shmchan__qwriter;

_Static_assert(sizeof(shmchan__qreader) == SHMCHAN__CACHE_LINE, "queue reader slot pinned");
_Static_assert(sizeof(shmchan__qwriter) == SHMCHAN__CACHE_LINE, "queue writer slot pinned");

/* --------------------------------------------------------------- service */

/*
 * A service region (docs/services.md) is made of ordinary rings (the queue
 * structs above), laid out as
 *
 *   ctl:  shmchan__service_ctl: the request ring's control block, then one
 *         line of service counters;
 *   data: the request ring's tables (S server = worker slots, C client =
 *         writer slots) and ring bytes; the server table (S lines, padded to
 *         a page); then C reply blocks, one per client slot: a control block
 *         padded to a page, the tables (1 reader: the client; S writers: the
 *         servers) and the reply ring bytes (size derived from max_msg).
 *
 * Liveness is one kernel lock per peer: server s holds SHMCHAN__LOCK_SLOTS +
 * s (its worker slot in the request ring, writer slot s of every reply ring
 * and its server line), client c holds SHMCHAN__LOCK_SLOTS + S + c (its
 * writer slot in the request ring and the reader slot of reply ring c); the
 * rings map their slots onto these locks (ring.h, wlock_base).
 *
 * Every record body starts with a 16-byte service header:
 *   request: {u64 id, u32 client slot, u32 client generation}
 *   reply:   {u64 id, u32 client generation, u32 flags (SHMCHAN_REPLY_*)}
 * The generation is the one in the client's request-ring writer slot state.
 */
#define SHMCHAN__SVC_HDR 16u

typedef struct shmchan__svc_reqhdr {
    uint64_t id;
    uint32_t client;
    uint32_t gen;
} shmchan__svc_reqhdr;

typedef struct shmchan__svc_rephdr {
    uint64_t id;
    uint32_t gen;
    uint32_t flags;
} shmchan__svc_rephdr;

_Static_assert(sizeof(shmchan__svc_reqhdr) == SHMCHAN__SVC_HDR, "service header pinned");
_Static_assert(sizeof(shmchan__svc_rephdr) == SHMCHAN__SVC_HDR, "service header pinned");

/*
 * A server line: what server slot s holds now. Written only by the slot's
 * owner (the holder of its lock); read by clients waiting for a response.
 *
 * Taking a request: the server reads the request's header in place (the
 * record is committed and, in block mode, cannot be overwritten before the
 * workers' position passes it), stores hold_id (relaxed) and then hold =
 * gen << 32 | (client + 1) (seq_cst) BEFORE its CAS on the request ring's
 * work_pos; a lost CAS withdraws the hold. After its last response is
 * committed (a release store of the record's tag) it stores hold = 0
 * (seq_cst). A client whose request at position p is taken (work_pos > p,
 * loaded seq_cst) and that finds no line naming it {its slot, its
 * generation, the id} whose owner's lock is held, looks at its reply ring
 * once more (the last response is visible by then if the hold was cleared
 * because it was sent) and otherwise reports SHMCHAN_EPEERDIED. A new owner
 * of the slot clears hold at open. Forged lines can only delay a client
 * (to its timeout) or make it give up early; they redirect nothing.
 *
 * Cache lines per call: the line is written twice per request (hold on take
 * and at the end; hold_id, counters on the same line) by its owner only, and
 * read by clients only after a sleep slice without a response, never on the
 * fast path.
 */
typedef struct shmchan__svc_server {
    shmchan__atomic_u64 state;   /* gen << 32 | 1 while a server owns it, gen << 32 free */
    shmchan__atomic_u64 hold;    /* 0, or client gen << 32 | (client slot + 1) */
    shmchan__atomic_u64 hold_id; /* the held request's id */
    shmchan__atomic_u64 taken;   /* requests taken by this owner (display) */
    shmchan__atomic_u64 replied; /* responses sent by this owner */
    shmchan__atomic_u64 start;   /* process start time (display) */
    shmchan__atomic_u32 pid;
    uint8_t pad[SHMCHAN__CACHE_LINE - 52];
} shmchan__svc_server;

_Static_assert(sizeof(shmchan__svc_server) == SHMCHAN__CACHE_LINE, "server line pinned");

/*
 * Service control block: the request ring's control block, then a line of
 * slow-path counters (atomic increments, display only: never trusted).
 */
typedef struct shmchan__service_ctl {
    shmchan__queue_ctl req;
    shmchan__atomic_u64 dropped_replies;  /* replies to clients that were gone */
    shmchan__atomic_u64 dropped_requests; /* requests of gone clients, or malformed */
    shmchan__atomic_u64 foreign_replies;  /* replies a client dropped (not its own) */
    shmchan__atomic_u64 peer_died;        /* requests failed with SHMCHAN_EPEERDIED */
    uint8_t pad[SHMCHAN__CACHE_LINE - 32];
} shmchan__service_ctl;

_Static_assert(sizeof(shmchan__service_ctl) == sizeof(shmchan__queue_ctl) + SHMCHAN__CACHE_LINE,
               "service ctl pinned");

#endif /* SHMCHAN_LAYOUT_H */
