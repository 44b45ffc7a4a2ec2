/*
 * Rings, internal: the multi-writer record ring that queues are made of,
 * without any handle. A ring is a control block (shmchan__queue_ctl), a
 * reader slot table, a writer slot table and the ring bytes (layout.h); a
 * process looks at one through a view (shmchan__ring) and takes part in it
 * through cursors: a reader cursor (shmchan__ring_rd: a subscriber or a
 * worker) and a writer cursor (shmchan__ring_wr). A region may hold several
 * rings; nothing here knows which kind of channel owns them.
 *
 * Layers, lowest first, with no cycles: ring_recover.c (claim lock, claim
 * and roll-forward, watermark, dead peers, reset), ring.c (geometry, view,
 * slots, info, peers), ring_write.c (claims, commits, waiting for space),
 * ring_read.c (finding, waiting for, and taking messages). The protocol is
 * described in layout.h above struct shmchan__queue_ctl and in docs/queue.md.
 */
#ifndef SHMCHAN_RING_H
#define SHMCHAN_RING_H

#include "internal.h"
#include "slotlock.h"
#include "wait.h"

#define SHMCHAN__QUEUE_DEFAULT_CAPACITY (UINT64_C(1) << 20)
#define SHMCHAN__QUEUE_DEFAULT_SLOTS 64u
#define SHMCHAN__QUEUE_MAX_MSG (UINT64_C(1) << 30)  /* record len is 32 bits */
#define SHMCHAN__QUEUE_MAX_CAPACITY (UINT64_C(1) << 40)
#define SHMCHAN__QUEUE_MAX_SLOTS (1u << 20)         /* per table, a run-time bound */

/* How long a claimed record may stay uncommitted before readers look at its
 * writer, and how long a waiter sleeps at most before looking again. */
#define SHMCHAN__QSTUCK_NS (1000ull * 1000)
#define SHMCHAN__QSLICE_NS (20ull * 1000 * 1000)
#define SHMCHAN__QFIRST_SLICE_NS (1000ull * 1000) /* a writer's first sleep for space */

/* In the journal's j_len: the claim in progress started the next lap early. */
#define SHMCHAN__QJ_REWOUND (UINT64_C(1) << 63)
/* In the journal's j_len: the claim is a run (shmchan__ring_claim_run): bits
 * 0-31 hold its span in bytes, bits 32-47 its number of records. */
#define SHMCHAN__QJ_RUN (UINT64_C(1) << 62)
#define SHMCHAN__QJ_COUNT_SHIFT 32
#define SHMCHAN__QRUN_MAX 4096u /* records in one run */

/*
 * Everything about a ring's memory that does not depend on a cursor: the
 * validated geometry and the pointers derived from it. `reg` is the region
 * the ring lives in, for waiting and for the truncation check; views built
 * by the kind hooks (reset, init, info, peers) may have it NULL and then
 * never wait.
 */
typedef struct shmchan__ring {
    shmchan__region *reg;
    shmchan__shm *shm;
    shmchan__hdr *hdr;
    shmchan__queue_ctl *ctl;
    shmchan__qreader *readers;
    shmchan__qwriter *writers;
    uint8_t *ring;
    uint64_t cap;
    uint64_t mask;
    uint64_t max_msg;
    uint32_t nreaders;
    uint32_t nwriters;
    uint64_t rewind_at; /* ring offset from which claims may rewind; 0: never */
    uint32_t lock_base; /* liveness lock of reader slot 0 (shmchan__ring_geom) */
    uint32_t wlock_base; /* liveness lock of writer slot 0 */
    bool overwrite;
    bool asym; /* as shmchan__region.asym */
    shmchan__nfview nf; /* readiness notifiers (notify.h) */
} shmchan__ring;

/* The ring's geometry: what a view is built from. */
typedef struct shmchan__ring_geom {
    uint64_t capacity; /* ring bytes, a power of two */
    uint64_t max_msg;
    uint32_t max_readers;
    uint32_t max_writers;
    /* The kernel lock (platform.h) that slot i's owner holds is lock_base + i
     * (readers first, then writers): SHMCHAN__LOCK_SLOTS for a region's only
     * ring; several rings in one region take disjoint ranges. */
    uint32_t lock_base;
    bool overwrite;
    /* The lock of writer slot j is wlock_base + j; 0: lock_base + max_readers
     * (the tables' locks in one range). A service's reply rings map their
     * writers onto the servers' locks and their reader onto the client's
     * (docs/services.md), so one lock per peer covers every ring it uses. */
    uint32_t wlock_base;
} shmchan__ring_geom;

/* A reader's process-local state: its slot and cursor. */
typedef struct shmchan__ring_rd {
    uint32_t role;       /* 0, SHMCHAN_PEER_SUBSCRIBER or SHMCHAN_PEER_WORKER */
    uint32_t slot;
    uint64_t owner;      /* claim-lock owner word of the reader slot */
    uint64_t pos;        /* subscriber: next record position */
    uint64_t seq;        /* subscriber: next sequence expected */
    uint64_t received;
    uint64_t lost;       /* total lost, as published in the slot */
    uint64_t lost_pending; /* lost before the next message delivered */
    uint64_t wake_mark;  /* position at which we last looked for waiting writers */
    uint64_t len_hint;   /* subscriber: length of the last message located (look_ahead) */
    /* A reader stuck at a claimed record since when. */
    uint64_t stuck_pos;
    uint64_t stuck_since;
    shmchan__spin_rule spin; /* whether waits spin first */
    shmchan__atomic_u32 fenced_in; /* in ctl->fenced (wait.h, fence_sleeper) */
} shmchan__ring_rd;

/* A writer's process-local state: its slot (taken at the first claim or
 * before) and counters. */
typedef struct shmchan__ring_wr {
    bool has_slot;
    uint32_t slot;
    uint64_t owner;      /* claim-lock owner word of the writer slot */
    uint64_t sent;
    uint64_t total;
    uint64_t total_bytes;
    uint64_t rewind_next; /* after a rewind that did not fit, try again from here */
    uint32_t placed_epoch; /* subs_epoch when `placed` was found */
    bool placed_known;
    uint64_t placed;       /* smallest `from` of the live subscribers then */
    shmchan__spin_rule spin; /* whether waits for space spin first */
} shmchan__ring_wr;

/* A claimed record: position, sequence, payload length claimed; need: block
 * mode without space, the claim's end position. */
typedef struct shmchan__rclaim {
    uint64_t pos;
    uint64_t seq;
    uint64_t len;
    uint64_t need;
} shmchan__rclaim;

/* A located message. */
typedef struct shmchan__rfound {
    uint64_t pos;
    uint64_t seq;
    uint64_t len;
    shmchan__qrec *h;
} shmchan__rfound;

/* ------------------------------------------------------- record helpers */

static inline uint64_t
shmchan__qspan(uint64_t len)
{
    return (sizeof(shmchan__qrec) + len + SHMCHAN__QREC_ALIGN - 1) &
           ~(uint64_t)(SHMCHAN__QREC_ALIGN - 1);
}

static inline uint64_t
shmchan__qtag(uint64_t seq, uint32_t kind)
{
    return seq << 2 | kind;
}

static inline shmchan__qrec *
shmchan__qrec_at(const shmchan__ring *v, uint64_t pos)
{
    return (shmchan__qrec *)(v->ring + (pos & v->mask));
}

static inline uint8_t *
shmchan__qpayload(shmchan__qrec *h)
{
    return (uint8_t *)(h + 1);
}

/* Where a record of span bytes claimed at the tail p0 starts: at p0, or at
 * the next lap's start when it does not fit before the ring's end or the
 * claim rewinds. */
static inline uint64_t
shmchan__qplace(const shmchan__ring *v, uint64_t p0, uint64_t span, bool rewind)
{
    uint64_t off = p0 & v->mask;
    return (rewind && off != 0) || off + span > v->cap ? p0 + (v->cap - off) : p0;
}

/*
 * The tag (acquire) and length of the header at h, where a writer may be
 * overwriting it: a block-mode reader at a PAD a writer moved it past
 * (ring_read.c, skipped_to), or a writer's look at a cursor's PADs
 * (ring_write.c, past_pads). Both validate what they read afterwards, behind
 * an acquire fence; tests/tsan.supp names this function for that race and
 * nothing else, so it does nothing else.
 */
static inline void
shmchan__qheader(shmchan__qrec *h, uint64_t *tag, uint64_t *len)
{
    *tag = shmchan__load(&h->tag, SHMCHAN__ACQUIRE);
    *len = shmchan__load(&h->len, SHMCHAN__RELAXED);
}

/* Whether a record of this kind and length at pos stays inside the ring. */
static inline bool
shmchan__qfits(const shmchan__ring *v, uint64_t pos, uint32_t kind, uint64_t len)
{
    uint64_t off = pos & v->mask;
    if (kind == SHMCHAN__QTAG_PAD) {
        return (len + sizeof(shmchan__qrec)) % SHMCHAN__QREC_ALIGN == 0 &&
               len <= v->cap - off - sizeof(shmchan__qrec);
    }
    return len <= v->max_msg && shmchan__qspan(len) <= v->cap - off;
}

/* The liveness lock of table slot idx (readers first, then writers). */
static inline uint32_t
shmchan__ring_lock(const shmchan__ring *v, uint32_t idx)
{
    return idx < v->nreaders ? v->lock_base + idx : v->wlock_base + (idx - v->nreaders);
}

/* Claim-lock owner word of table slot idx (readers first, then writers). */
static inline uint64_t
shmchan__qowner(uint64_t state, uint32_t idx)
{
    return shmchan__owner_word(state >> 32, idx);
}

/* After reading a record: did a writer start to overwrite it? (ring_read.c) */
static inline bool
shmchan__ring_overtaken(const shmchan__ring *v, uint64_t pos)
{
    shmchan__fence(SHMCHAN__ACQUIRE);
    return shmchan__load(&v->ctl->oldest, SHMCHAN__RELAXED) > pos;
}

/* -------------------------------------------------- ring.c: memory, slots */

/* Bytes of the two slot tables (page aligned); the ring bytes follow. */
uint64_t shmchan__qtables_size(uint32_t nreaders, uint32_t nwriters);
/* Block mode, rings of at least twice this: a claim at or past this ring
 * offset may start the next lap early (docs/queue.md, "Rewinding"). A power
 * of two derived from this machine's caches once per process (ring.c):
 * process-local policy, never read from or written to shared memory. */
uint64_t shmchan__ring_window(void);
/* Smallest ring for messages of max_msg bytes: a pad, a record, the zero header. */
uint64_t shmchan__ring_min_capacity(uint64_t max_msg);
/* Smallest power of two >= v (v <= 2^63): ring capacities. */
uint64_t shmchan__pow2_up(uint64_t v);
/* Whether what an opener asked for (its non-zero ring fields: max_msg,
 * policy, reader and writer slots, capacity) matches an existing ring-based
 * region's validated geometry: OK, or EGEOMETRY naming the first field that
 * differs (kinds' match hooks, after their own sanity checks). */
int shmchan__ring_opts_match(const shmchan__geom *g, const shmchan_opts *o);
/* A view of the ring whose control block is at ctl and tables at data. */
/* Whether a reader has something to receive now (ring_read.c): a message,
 * a record being filled (then the stuck-writer recovery of a receive must
 * run), or an error its next receive reports. For readiness handles. */
bool shmchan__ring_has_news(const shmchan__ring *v, shmchan__ring_rd *q);

void shmchan__ring_view(shmchan__ring *v, shmchan__region *reg, shmchan__shm *shm,
                        shmchan__hdr *hdr, uint8_t *ctl, uint8_t *data,
                        const shmchan__ring_geom *g);
/* Format a new ring (nobody attached): control block, tables, first header. */
void shmchan__ring_format(const shmchan__ring *v);
/* Take a writer slot for the cursor. */
int shmchan__ring_take_writer(const shmchan__ring *v, shmchan__ring_wr *w);
/* Take writer slot j for the cursor (its lock may already be this
 * handle's: then it is kept): ELIMIT when another handle holds it. */
int shmchan__ring_take_writer_at(const shmchan__ring *v, shmchan__ring_wr *w, uint32_t j);
/* Give the writer slot back (nothing claimed). */
void shmchan__ring_leave_writer(const shmchan__ring *v, shmchan__ring_wr *w);
/* Take a reader slot as role and place the cursor (the tail, or the oldest
 * record with from_oldest; a worker at the workers' position). A subscriber
 * that does not consume records `from` as QPOS_NONE, which no watermark rule
 * takes as "read from the watermark on" (docs/queue.md, section 6). */
int shmchan__ring_join(const shmchan__ring *v, shmchan__ring_rd *rd, uint32_t role,
                       bool from_oldest, bool consumes);
/* Give the reader slot back: what it read stays read; writers are woken. */
void shmchan__ring_leave(const shmchan__ring *v, shmchan__ring_rd *rd);
/* Whether a wait should spin before it sleeps (wait.h's rule, with this
 * ring's registered readers, counted at most every 10 ms). */
bool shmchan__ring_spin_pays(const shmchan__ring *v, shmchan__spin_rule *s);
/* The ring's counters and peers into info (added), and its peer list. */
void shmchan__ring_info(const shmchan__ring *v, shmchan_info *info);
void shmchan__ring_peers(const shmchan__ring *v, shmchan_peer *peers, size_t cap, size_t *n);

/* ------------------------------------------------ ring_recover.c: recovery */

/* The claim lock: wait up to wait_ns (< 0: for ever), then ETIMEDOUT. A
 * dead holder's lock is stolen and its claim rolled forward. */
int shmchan__qlock_slow(const shmchan__ring *v, uint64_t me, int64_t wait_ns);

static inline int
shmchan__qlock(const shmchan__ring *v, uint64_t me, int64_t wait_ns)
{
    uint64_t free_word = 0;
    if (SHMCHAN__LIKELY(shmchan__cas(&v->ctl->lock, &free_word, me))) {
        return SHMCHAN_OK;
    }
    return shmchan__qlock_slow(v, me, wait_ns);
}

static inline void
shmchan__qunlock(const shmchan__ring *v)
{
    shmchan__store(&v->ctl->lock, 0, SHMCHAN__RELEASE);
}
/* Roll an interrupted claim forward (the lock is held, or nobody is attached). */
void shmchan__qrepair(const shmchan__ring *v);
/* Write a claim at the tail p0 for a record at p (shmchan__qplace): pad,
 * record header, oldest, zero header, tail, next_seq; with data (not NULL),
 * also the payload and the commit before the tail. */
void shmchan__qapply(const shmchan__ring *v, uint64_t p0, uint64_t p, uint64_t len,
                     uint64_t seq, uint64_t oldest, uint32_t writer, const void *data);
/* Write a run at the tail p0: k messages (each at most max_msg bytes) as
 * records from p (shmchan__qplace of their total span), all published by
 * the first record's commit, then tail and next_seq (docs/queue.md, "Runs"). */
void shmchan__qapply_run(const shmchan__ring *v, uint64_t p0, uint64_t p, const shmchan_msg *msgs,
                         size_t k, uint64_t span, uint64_t seq, uint64_t oldest, uint32_t writer);
/* Whether the writer of the claimed record at pos is gone. */
bool shmchan__qwriter_gone(const shmchan__ring *v, uint32_t writer, uint64_t pos);
/* A reader or writer (owner word me) stuck at the claimed record at pos (tag
 * as read): turn it into DROPPED if its writer is gone, after completing its
 * claim if the claimant died inside the critical section. True if the record
 * may have changed (look again). */
bool shmchan__qrecover_record(const shmchan__ring *v, uint64_t me, uint64_t pos, uint64_t tag);
/* Drop a reader slot whose owner is gone; true if dropped. */
bool shmchan__qdrop_reader(const shmchan__ring *v, uint32_t i);
/* Oldest intact record and its sequence, read without the lock. */
int shmchan__qoldest(const shmchan__ring *v, uint64_t *pos_out, uint64_t *seq_out);
/* The consumed watermark as writers may use it (bounded by oldest and tail). */
uint64_t shmchan__ring_consumed(const shmchan__ring *v);
/* Raise the watermark to pos (a CAS to a larger value; no lock needed). */
void shmchan__ring_raise_consumed(const shmchan__ring *v, uint64_t pos);
/* A subscriber joined (+1) or left (-1): count it, and tell writers that
 * the smallest `from` they cached is stale. */
static inline void
shmchan__ring_count_sub(const shmchan__ring *v, int delta)
{
    if (delta > 0) {
        shmchan__fetch_add(&v->ctl->nsubs, 1, SHMCHAN__RELAXED);
    } else {
        shmchan__fetch_sub(&v->ctl->nsubs, 1, SHMCHAN__RELAXED);
    }
    shmchan__fetch_add(&v->ctl->subs_epoch, 1, SHMCHAN__RELEASE);
}
/* A reader of this role that read [from, pos) leaves: raise the consumed
 * watermark if that covers it. */
void shmchan__qretire(const shmchan__ring *v, uint32_t role, uint64_t from, uint64_t pos);
/* Nobody else is attached: complete a half-done claim, free every slot and
 * lock, forget sleepers; the records stay. */
void shmchan__ring_reset(const shmchan__ring *v);

/*
 * Waking readers after a commit, and writers that wait for space after a
 * reader moved (wait.h has the handshake). Writers' look per message is a
 * plain load where fences are symmetric (fenced == false): a full fence
 * there would stall the reader whenever a writer polls its slot, and a
 * writer that registered in the instant before our position became visible
 * is then woken by our next call, by our fenced look when we run out of
 * messages or leave, or by the end of its first (short) sleep slice; see
 * docs/queue.md.
 */
static inline void
shmchan__qwake_readers(const shmchan__ring *v)
{
    shmchan__fence_publisher(v->asym, &v->ctl->fenced);
    shmchan__wake_readers(v->shm, &v->ctl->rd_waiters, &v->ctl->wake, true, &v->nf);
}

static inline void
shmchan__qwake_writers(const shmchan__ring *v, bool fenced)
{
    if (fenced || v->asym) {
        shmchan__fence_fast(v->asym);
    }
    shmchan__wake(v->shm, &v->ctl->sp_waiters, &v->ctl->space, true);
}

/* ------------------------------------------------ ring_write.c: claims */

/* Smallest position a writer must not overwrite (the consumed watermark or
 * a live reader); drop_dead: drop dead readers that hold back a claim ending
 * at need; *live_out (may be NULL): whether a reader is registered. */
uint64_t shmchan__qgate_scan(const shmchan__ring *v, uint64_t need, bool drop_dead,
                             bool *live_out);
/* Claim len bytes for the writer (its slot taken), waiting up to timeout_ms
 * for space; with data (small sends), also copy and commit it. OK, EAGAIN,
 * ETIMEDOUT, ECORRUPT, ETRUNCATED, EINTR. */
int shmchan__ring_claim(const shmchan__ring *v, shmchan__ring_wr *w, uint64_t len,
                        const void *data, int64_t timeout_ms, shmchan__rclaim *cl);
/* The claim's critical section, with the claim lock held: OK, EAGAIN (no
 * space, block mode: cl->need says up to where), EBUSY, ECORRUPT. */
int shmchan__ring_claim_held(const shmchan__ring *v, shmchan__ring_wr *w, uint64_t len,
                             const void *data, shmchan__rclaim *cl);
/* The claim of a run, with the claim lock held: as many of msgs[0..count)
 * (each at most max_msg bytes) as fit in about budget bytes of records,
 * written and committed (*k_out of them, *bytes_out payload bytes); the
 * caller then calls shmchan__ring_committed_n(). Errors as claim_held. */
int shmchan__ring_claim_run(const shmchan__ring *v, shmchan__ring_wr *w, const shmchan_msg *msgs,
                            size_t count, uint64_t budget, size_t *k_out, uint64_t *bytes_out);
/* After a commit of len bytes: the writer slot's resv and counters, and the
 * readers' wake-up unless the caller does it once for a batch. */
void shmchan__ring_committed(const shmchan__ring *v, shmchan__ring_wr *w, uint64_t len,
                             bool wake);
/* The same for n messages of bytes in all (a run), without the wake-up. */
void shmchan__ring_committed_n(const shmchan__ring *v, shmchan__ring_wr *w, uint64_t n,
                               uint64_t bytes);
/* Publish the claimed record cl as a message of len bytes (<= cl->len). */
void shmchan__ring_publish(const shmchan__ring *v, shmchan__ring_wr *w, const shmchan__rclaim *cl,
                           uint64_t len, bool wake);
/* Give the claimed record up (DROPPED). */
void shmchan__ring_drop(const shmchan__ring *v, shmchan__ring_wr *w, const shmchan__rclaim *cl);

/* ------------------------------------------------- ring_read.c: reading */

/* Find the next message for the reader, waiting up to timeout_ms: OK,
 * EAGAIN, ETIMEDOUT, EINTR, ECORRUPT, ETRUNCATED. Nothing is taken yet. */
int shmchan__ring_await(const shmchan__ring *v, shmchan__ring_rd *rd, int64_t timeout_ms,
                        shmchan__rfound *f);
/* A subscriber's next message without waiting (see ring_read.c). */
int shmchan__ring_sub_locate(const shmchan__ring *v, shmchan__ring_rd *rd, shmchan__rfound *f,
                             uint64_t *claimed, bool may_resync);
/* A subscriber lapped by writers continues with the oldest record held. */
int shmchan__ring_resync(const shmchan__ring *v, shmchan__ring_rd *rd);
/* Count n messages lost. */
void shmchan__ring_add_lost(const shmchan__ring *v, shmchan__ring_rd *rd, uint64_t n);
/* A worker takes [w, end); false when another worker was first. */
bool shmchan__ring_work_take(const shmchan__ring *v, shmchan__ring_rd *rd, uint64_t w,
                             uint64_t end);
/* A worker is done with what it took (up to end). */
void shmchan__ring_work_done(const shmchan__ring *v, shmchan__ring_rd *rd, uint64_t end);
/* Worker, overwrite mode: collect messages lost by workers. */
void shmchan__ring_work_collect_lost(const shmchan__ring *v, shmchan__ring_rd *rd);
/* Publish the cursor after taking messages: a subscriber's position, a
 * worker's sequence and the end of what it took. */
void shmchan__ring_sub_publish(const shmchan__ring *v, shmchan__ring_rd *rd);
void shmchan__ring_work_publish(const shmchan__ring *v, shmchan__ring_rd *rd, uint64_t next_seq,
                                uint64_t end);

#endif /* SHMCHAN_RING_H */
