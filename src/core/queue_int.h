/*
 * Queues, internal: the handle and what queue.c, queue_send.c, queue_recv.c
 * and queue_recover.c share. The protocol is described in layout.h above
 * struct shmchan__queue_ctl and in docs/queue.md.
 */
#ifndef SHMCHAN_QUEUE_INT_H
#define SHMCHAN_QUEUE_INT_H

#include "internal.h"
#include "notify.h"
#include "slotlock.h"

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

/* Block mode, rings of at least twice this: a claim at or past this ring
 * offset may start the next lap early (docs/queue.md, "Rewinding"). */
#define SHMCHAN__QWINDOW (UINT64_C(2) << 20)
/* In the journal's j_len: the claim in progress started the next lap early. */
#define SHMCHAN__QJ_REWOUND (UINT64_C(1) << 63)

/*
 * Everything about a queue's memory that does not depend on the handle: the
 * validated geometry and the pointers derived from it. The reset hook builds
 * one without a handle.
 */
typedef struct shmchan__qview {
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
    bool overwrite;
    bool asym; /* as shmchan__region.asym */
    shmchan__nfview nf; /* readiness notifiers (notify.h) */
} shmchan__qview;

struct shmchan_queue {
    shmchan__region r;
    shmchan__qview v;
    /* Reader role: the slot and the process-local cursor. */
    uint32_t role;       /* 0, SHMCHAN_PEER_SUBSCRIBER or SHMCHAN_PEER_WORKER */
    uint32_t rslot;
    uint64_t rowner;     /* claim-lock owner word of the reader slot */
    uint64_t pos;        /* subscriber: next record position */
    uint64_t seq;        /* subscriber: next sequence expected */
    uint64_t received;
    uint64_t lost;       /* total lost, as published in the slot */
    uint64_t lost_pending; /* lost before the next message delivered */
    uint64_t wake_mark;  /* position at which we last looked for waiting writers */
    /* Writer role: the slot, taken at open or at the first send. */
    bool has_wslot;
    uint32_t wslot;
    uint64_t wowner;
    uint64_t sent;
    uint64_t total;
    uint64_t total_bytes;
    uint64_t rewind_next; /* after a rewind that did not fit, try again from here */
    /* The open reservation. */
    bool reserved;
    uint64_t resv_pos;   /* record position */
    uint64_t resv_seq;
    uint64_t resv_len;
    /* The open view (peek). */
    bool viewing;
    uint64_t view_pos;
    uint64_t view_seq;
    uint64_t view_len;
    /* A reader stuck at a claimed record since when. */
    uint64_t stuck_pos;
    uint64_t stuck_since;
    /* Whether waits spin first (shmchan__qspin_pays), and when we last looked. */
    bool spin_pays;
    uint64_t spin_checked;
    shmchan__atomic_u32 fenced_in; /* in ctl->fenced (internal.h, fence_sleeper) */
    shmchan__notifier *nf; /* readiness notifier, made on demand (queue_notify.c) */
};

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
shmchan__qrec_at(const shmchan__qview *v, uint64_t pos)
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
shmchan__qplace(const shmchan__qview *v, uint64_t p0, uint64_t span, bool rewind)
{
    uint64_t off = p0 & v->mask;
    return (rewind && off != 0) || off + span > v->cap ? p0 + (v->cap - off) : p0;
}

/* Whether a record of this kind and length at pos stays inside the ring. */
static inline bool
shmchan__qfits(const shmchan__qview *v, uint64_t pos, uint32_t kind, uint64_t len)
{
    uint64_t off = pos & v->mask;
    if (kind == SHMCHAN__QTAG_PAD) {
        return (len + sizeof(shmchan__qrec)) % SHMCHAN__QREC_ALIGN == 0 &&
               len <= v->cap - off - sizeof(shmchan__qrec);
    }
    return len <= v->max_msg && shmchan__qspan(len) <= v->cap - off;
}

/* Claim-lock owner word of table slot idx (readers first, then writers). */
static inline uint64_t
shmchan__qowner(uint64_t state, uint32_t idx)
{
    return shmchan__owner_word(state >> 32, idx);
}

/* ------------------------------------------------------------ functions */

void shmchan__qview_init(shmchan__qview *v, shmchan__shm *shm, shmchan__hdr *hdr, uint8_t *ctl,
                         uint8_t *data, const shmchan__geom *g);
uint64_t shmchan__qtables_size(uint32_t nreaders, uint32_t nwriters);

/* The claim lock (queue_recover.c): wait up to wait_ns (< 0: for ever),
 * then ETIMEDOUT. A dead holder's lock is stolen and its claim rolled
 * forward. */
int shmchan__qlock_slow(const shmchan__qview *v, uint64_t me, int64_t wait_ns);

static inline int
shmchan__qlock(const shmchan__qview *v, uint64_t me, int64_t wait_ns)
{
    uint64_t free_word = 0;
    if (SHMCHAN__LIKELY(shmchan__cas(&v->ctl->lock, &free_word, me))) {
        return SHMCHAN_OK;
    }
    return shmchan__qlock_slow(v, me, wait_ns);
}

static inline void
shmchan__qunlock(const shmchan__qview *v)
{
    shmchan__store(&v->ctl->lock, 0, SHMCHAN__RELEASE);
}
/* Roll an interrupted claim forward (the lock is held, or nobody is attached). */
void shmchan__qrepair(const shmchan__qview *v);
/* Write a claim at the tail p0 for a record at p (shmchan__qplace): pad,
 * record header, oldest, zero header, tail, next_seq; with data (not NULL),
 * also the payload and the commit before the tail. */
void shmchan__qapply(const shmchan__qview *v, uint64_t p0, uint64_t p, uint64_t len,
                     uint64_t seq, uint64_t oldest, uint32_t writer, const void *data);
/* Whether the writer of the claimed record at pos is gone. */
bool shmchan__qwriter_gone(const shmchan__qview *v, uint32_t writer, uint64_t pos);
/* A reader or writer (owner word me) stuck at the claimed record at pos (tag
 * as read): turn it into DROPPED if its writer is gone, after completing its
 * claim if the claimant died inside the critical section. True if the record
 * may have changed (look again). */
bool shmchan__qrecover_record(const shmchan__qview *v, uint64_t me, uint64_t pos, uint64_t tag);
/* Drop a reader slot whose owner is gone; true if dropped. */
bool shmchan__qdrop_reader(const shmchan__qview *v, uint32_t i);
/* Oldest intact record and its sequence, read without the lock. */
int shmchan__qoldest(const shmchan__qview *v, uint64_t *pos_out, uint64_t *seq_out);

/*
 * Waking readers after a commit: the publisher's fence of the sleepers
 * handshake (internal.h) and a look at the sleepers count; a system call only
 * when somebody sleeps.
 */
static inline void
shmchan__qwake_readers(const shmchan__qview *v)
{
    shmchan__fence_publisher(v->asym, &v->ctl->fenced);
    if (SHMCHAN__UNLIKELY(shmchan__load(&v->ctl->rd_waiters, SHMCHAN__RELAXED) != 0)) {
        shmchan__fetch_add(&v->ctl->wake, 1, SHMCHAN__RELEASE);
        shmchan__wake_all(v->shm, &v->ctl->wake);
    }
    shmchan__notify_publish(&v->nf);
}

/*
 * Waking writers that wait for space after a reader moved. Where fences are
 * asymmetric every look is fenced (for free). Elsewhere the look per message
 * is a plain load (fenced == false): a full fence there would stall the
 * reader whenever a writer polls its slot, and a writer that registered in
 * the instant before our position became visible is then woken by our next
 * call, by our fenced look when we run out of messages or leave, or by the
 * end of its first (short) sleep slice; see docs/queue.md.
 */
static inline void
shmchan__qwake_writers(const shmchan__qview *v, bool fenced)
{
    if (fenced || v->asym) {
        shmchan__fence_fast(v->asym);
    }
    if (SHMCHAN__UNLIKELY(shmchan__load(&v->ctl->sp_waiters, SHMCHAN__RELAXED) != 0)) {
        shmchan__fetch_add(&v->ctl->space, 1, SHMCHAN__RELEASE);
        shmchan__wake_all(v->shm, &v->ctl->space);
    }
}

/* Whether a wait should spin before it sleeps: only while the queue's
 * registered peers are no more than the CPUs (queue.c). */
bool shmchan__qspin_pays(shmchan_queue *q);

/* Take a writer slot for the handle (queue.c). */
int shmchan__qtake_writer(shmchan_queue *q);
/* Smallest position a writer must not overwrite (the consumed watermark or
 * a live reader); drop_dead: drop dead readers that hold back a claim ending
 * at need; *live_out (may be NULL): whether a reader is registered. */
uint64_t shmchan__qgate_scan(const shmchan__qview *v, uint64_t need, bool drop_dead,
                             bool *live_out);
/* A reader of this role that read [from, pos) leaves: raise the consumed
 * watermark if that covers it (queue_send.c). */
void shmchan__qretire(const shmchan__qview *v, uint32_t role, uint64_t from, uint64_t pos);

/* Whether a reader has something to receive now (queue_recv.c): a message,
 * a record being filled (then recv's stuck-writer recovery must run), or an
 * error its next receive reports. */
bool shmchan__qhas_news(shmchan_queue *q);

/* Abort/release what a handle holds (queue_send.c, queue_recv.c). */
void shmchan__qrelease_view(shmchan_queue *q);

#endif /* SHMCHAN_QUEUE_INT_H */
