/*
 * Queues: receiving, as a subscriber (own cursor, every message) or as a
 * worker (competing for a shared position), copying or in place.
 *
 * A subscriber at position p expecting sequence s reads only the record's
 * tag there (layout.h). In overwrite mode a writer may lap it: after copying
 * it issues an acquire fence and reloads `oldest`; if oldest moved past p the
 * copy is discarded and the cursor jumps to the oldest record, counting
 * exactly the sequences it missed. Every word read from shared memory is
 * bounded before use; loops over shared state are bounded too.
 */
#include <string.h>

#include "queue_int.h"

#define SKIP_MAX 4096     /* pads and dropped records skipped per look */
#define RETRY_MAX 100000  /* races lost (or lies met) per call before giving up */
#define CLAIMED_POLLS 16  /* looks at a record being filled before EAGAIN */
#define CATCH_UP_SPINS 1000

typedef struct found_t {
    uint64_t pos;
    uint64_t seq;
    uint64_t len;
    shmchan__qrec *h;
} found_t;

/* After reading a record: did a writer start to overwrite it? (see above) */
static bool
overtaken(const shmchan__qview *v, uint64_t pos)
{
    shmchan__fence(SHMCHAN__ACQUIRE);
    return shmchan__load(&v->ctl->oldest, SHMCHAN__RELAXED) > pos;
}

static void
add_lost(shmchan_queue *q, uint64_t n)
{
    if (n == 0) {
        return;
    }
    q->lost += n;
    q->lost_pending += n;
    shmchan__store(&q->v.readers[q->rslot].lost, q->lost, SHMCHAN__RELAXED);
    shmchan__fetch_add(&q->v.ctl->drops, n, SHMCHAN__RELAXED);
}

/* A subscriber lapped by writers continues with the oldest record held. */
static int
resync(shmchan_queue *q)
{
    uint64_t pos, seq;
    int rc = shmchan__qoldest(&q->v, &pos, &seq);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    add_lost(q, seq > q->seq ? seq - q->seq : 0);
    q->pos = pos;
    q->seq = seq;
    return SHMCHAN_OK;
}

/*
 * A subscriber's next message: OK, EAGAIN (nothing yet; *claimed receives the
 * tag when a writer is still filling it), ECORRUPT. Skips pads and dropped
 * records; resyncs when lapped, unless may_resync is false (in the middle of
 * a batch, which the caller then ends).
 */
static int
sub_locate(shmchan_queue *q, found_t *f, uint64_t *claimed, bool may_resync)
{
    const shmchan__qview *v = &q->v;
    for (int i = 0; i < SKIP_MAX; i++) {
        uint64_t p = q->pos, s = q->seq;
        shmchan__qrec *h = shmchan__qrec_at(v, p);
        uint64_t tag = shmchan__load(&h->tag, SHMCHAN__ACQUIRE);
        uint32_t kind = (uint32_t)(tag & SHMCHAN__QTAG_KINDS);
        if (SHMCHAN__LIKELY((tag >> 2) == s)) {
            uint64_t len = shmchan__load(&h->len, SHMCHAN__RELAXED);
            if (kind == SHMCHAN__QTAG_CLAIMED) {
                *claimed = tag;
                f->pos = p;
                return SHMCHAN_EAGAIN;
            }
            if (SHMCHAN__LIKELY(shmchan__qfits(v, p, kind, len))) {
                if (SHMCHAN__LIKELY(kind == SHMCHAN__QTAG_MSG)) {
                    f->pos = p;
                    f->seq = s;
                    f->len = len;
                    f->h = h;
                    return SHMCHAN_OK;
                }
                if (!v->overwrite || !overtaken(v, p)) { /* a lapped one may lie */
                    q->pos = p + shmchan__qspan(len);
                    q->seq = s + (kind == SHMCHAN__QTAG_DROPPED);
                    continue;
                }
            }
        } else if ((tag >> 2) < s && (!v->overwrite || !overtaken(v, p))) {
            return SHMCHAN_EAGAIN; /* an older lap's bytes: nothing yet */
        }
        /* Lapped, or a tag or length no writer of ours would write. */
        if (!overtaken(v, p)) {
            return SHMCHAN_ECORRUPT;
        }
        if (!may_resync) {
            return SHMCHAN_EAGAIN;
        }
        int rc = resync(q);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
    }
    return SHMCHAN_EAGAIN;
}

/* Overwrite mode: work_pos fell behind oldest. The claimant moves it on in a
 * moment; if it does not (it died), move it ourselves. */
static void
work_catch_up(const shmchan__qview *v, uint64_t work)
{
    shmchan__queue_ctl *c = v->ctl;
    for (int i = 0; i < CATCH_UP_SPINS; i++) {
        if (shmchan__load(&c->work_pos, SHMCHAN__ACQUIRE) != work) {
            return;
        }
        shmchan__cpu_relax();
    }
    uint64_t o = shmchan__load(&c->oldest, SHMCHAN__ACQUIRE);
    if (o > work && o % SHMCHAN__QREC_ALIGN == 0) {
        (void)shmchan__cas(&c->work_pos, &work, o);
    }
}

/*
 * A worker's next message, not yet taken: work_pos never passes the tail,
 * whose header is zero, so the header at work_pos is the current lap's
 * record, a claim in progress, or zero. Pads and dropped records are moved
 * past by whoever sees them.
 */
static int
work_locate(shmchan_queue *q, found_t *f, uint64_t *claimed)
{
    const shmchan__qview *v = &q->v;
    shmchan__queue_ctl *c = v->ctl;
    for (int i = 0; i < SKIP_MAX; i++) {
        uint64_t w = shmchan__load(&c->work_pos, SHMCHAN__ACQUIRE);
        if (w % SHMCHAN__QREC_ALIGN != 0) {
            return SHMCHAN_ECORRUPT;
        }
        shmchan__qrec *h = shmchan__qrec_at(v, w);
        uint64_t tag = shmchan__load(&h->tag, SHMCHAN__ACQUIRE);
        uint32_t kind = (uint32_t)(tag & SHMCHAN__QTAG_KINDS);
        uint64_t len = shmchan__load(&h->len, SHMCHAN__RELAXED);
        if (v->overwrite && overtaken(v, w)) {
            work_catch_up(v, w);
            continue;
        }
        /* Another worker moved on meanwhile: what we read may already be
         * overwritten (only positions from work_pos on are protected). */
        shmchan__fence(SHMCHAN__ACQUIRE);
        if (shmchan__load(&c->work_pos, SHMCHAN__RELAXED) != w) {
            continue;
        }
        if (tag == 0) {
            return SHMCHAN_EAGAIN;
        }
        if (kind == SHMCHAN__QTAG_CLAIMED) { /* its length may still be the pad's */
            *claimed = tag;
            f->pos = w;
            return SHMCHAN_EAGAIN;
        }
        if (!shmchan__qfits(v, w, kind, len)) {
            return SHMCHAN_ECORRUPT;
        }
        if (kind != SHMCHAN__QTAG_MSG) {
            (void)shmchan__cas(&c->work_pos, &w, w + shmchan__qspan(len));
            continue;
        }
        f->pos = w;
        f->seq = tag >> 2;
        f->len = len;
        f->h = h;
        return SHMCHAN_OK;
    }
    return SHMCHAN_EAGAIN;
}

/*
 * Writers waiting for space are woken when this reader has moved on by a
 * sixteenth of the ring since it last looked, not after every message: they
 * then find room for many messages at once. A look costs a plain load here;
 * running dry, sleeping and closing look with a fence (see queue_int.h), and
 * a waiting writer also looks again at the end of each sleep slice.
 */
static void
wake_writers_now_and_then(shmchan_queue *q, uint64_t pos)
{
    if (q->v.overwrite || (pos >= q->wake_mark && pos - q->wake_mark < q->v.cap / 16)) {
        return;
    }
    q->wake_mark = pos;
    shmchan__qwake_writers(&q->v, false);
}

/* Take [w, end) for this worker: announce w first (see layout.h). A stale
 * announcement would hold writers back, so a lost race withdraws it. */
static bool
work_take(shmchan_queue *q, uint64_t w, uint64_t end)
{
    shmchan__atomic_u64 *ann = &q->v.readers[q->rslot].pos;
    shmchan__store(ann, w, SHMCHAN__SEQ_CST);
    if (shmchan__cas(&q->v.ctl->work_pos, &w, end)) {
        return true;
    }
    shmchan__store(ann, SHMCHAN__QPOS_NONE, SHMCHAN__RELEASE);
    return false;
}

static void
work_done(shmchan_queue *q, uint64_t end)
{
    shmchan__store(&q->v.readers[q->rslot].pos, SHMCHAN__QPOS_NONE, SHMCHAN__RELEASE);
    wake_writers_now_and_then(q, end);
}

/* Worker, overwrite mode: messages lost by workers since the last report. */
static void
work_collect_lost(shmchan_queue *q)
{
    shmchan__atomic_u64 *wl = &q->v.ctl->work_lost;
    if (q->v.overwrite && shmchan__load(wl, SHMCHAN__RELAXED) != 0) {
        add_lost(q, shmchan__exchange(wl, 0, SHMCHAN__ACQ_REL));
    }
}

/* A reader stuck at a claimed record: after a while, look at its writer. */
static void
stuck(shmchan_queue *q, uint64_t pos, uint64_t tag)
{
    uint64_t now = shmchan__now_ns();
    if (q->stuck_pos != pos) {
        q->stuck_pos = pos;
        q->stuck_since = now;
    } else if (now - q->stuck_since >= SHMCHAN__QSTUCK_NS) {
        q->stuck_since = now;
        (void)shmchan__qrecover_record(&q->v, q->rowner, pos, tag);
    }
}

/* Whether the claimed record we are stuck at is still the one we expect:
 * lapped (overwrite mode) or taken by another worker, it is not. */
static bool
still_current(shmchan_queue *q, uint64_t pos)
{
    const shmchan__qview *v = &q->v;
    if (v->overwrite && overtaken(v, pos)) {
        return false;
    }
    return q->role == SHMCHAN_PEER_SUBSCRIBER ||
           shmchan__load(&v->ctl->work_pos, SHMCHAN__ACQUIRE) == pos;
}

static int
locate(shmchan_queue *q, found_t *f, uint64_t *claimed)
{
    *claimed = 0;
    int rc = q->role == SHMCHAN_PEER_SUBSCRIBER ? sub_locate(q, f, claimed, true)
                                                : work_locate(q, f, claimed);
    if (SHMCHAN__UNLIKELY(rc == SHMCHAN_EAGAIN && *claimed != 0)) {
        if (still_current(q, f->pos)) {
            stuck(q, f->pos, *claimed);
        }
    }
    return rc;
}

bool
shmchan__qhas_news(shmchan_queue *q)
{
    found_t f;
    uint64_t claimed;
    int rc = locate(q, &f, &claimed);
    return rc != SHMCHAN_EAGAIN || claimed != 0 || shmchan__region_broken(&q->r);
}

/* Find the next message, waiting up to timeout_ms: spin, then sleep with the
 * Dekker protocol on `wake` (bounded sleeps, to look at stuck writers). */
static int
await_msg(shmchan_queue *q, int64_t timeout_ms, found_t *f)
{
    const shmchan__qview *v = &q->v;
    shmchan__queue_ctl *c = v->ctl;
    uint64_t claimed;
    int rc = locate(q, f, &claimed);
    if (SHMCHAN__LIKELY(rc == SHMCHAN_OK)) {
        return rc;
    }
    if (shmchan__region_broken(&q->r)) {
        return SHMCHAN_ETRUNCATED;
    }
    if (rc != SHMCHAN_EAGAIN) {
        return rc;
    }
    if (!v->overwrite) {
        shmchan__qwake_writers(v, true); /* we ran dry: our position is final for now */
    }
    for (int i = 0; claimed != 0 && i < CLAIMED_POLLS; i++) {
        /* A writer is filling it: wait a moment rather than pull its cache
         * line away again and again (also without a timeout). */
        for (int k = 0; k < 4; k++) {
            shmchan__cpu_relax();
        }
        rc = locate(q, f, &claimed);
        if (rc != SHMCHAN_EAGAIN) {
            return rc;
        }
    }
    if (timeout_ms == 0) {
        return SHMCHAN_EAGAIN;
    }
    uint64_t deadline = shmchan__deadline(timeout_ms);
    uint64_t began = 0; /* when the spin began, if we spun */
    if (q->r.spin_ns != 0 && shmchan__qspin_pays(q)) {
        began = shmchan__now_ns();
        uint64_t end = began + shmchan__spin_now(&q->r);
        do {
            for (int i = 0; i < 64; i++) {
                rc = locate(q, f, &claimed);
                if (rc != SHMCHAN_EAGAIN) {
                    return rc;
                }
                shmchan__cpu_relax();
            }
        } while (shmchan__now_ns() < end);
    }
    for (;;) {
        shmchan__fetch_add(&c->rd_waiters, 1, SHMCHAN__SEQ_CST);
        uint64_t slice = shmchan__fence_sleeper(v->asym, &c->fenced, &q->fenced_in,
                                                !shmchan__qspin_pays(q), SHMCHAN__QSLICE_NS);
        uint32_t w = shmchan__load(&c->wake, SHMCHAN__SEQ_CST);
        rc = locate(q, f, &claimed);
        if (rc == SHMCHAN_EAGAIN) {
            shmchan__fetch_add(&c->waits, 1, SHMCHAN__RELAXED);
            uint64_t until = shmchan__now_ns() +
                             (claimed != 0 && SHMCHAN__QSTUCK_NS < slice ? SHMCHAN__QSTUCK_NS
                                                                        : slice);
            rc = shmchan__sleep_on(&q->r, &c->wake, w,
                                   deadline != 0 && deadline < until ? deadline : until);
            if (rc == SHMCHAN_OK ||
                (rc == SHMCHAN_ETIMEDOUT && (deadline == 0 || shmchan__now_ns() < deadline))) {
                rc = SHMCHAN_EAGAIN; /* look again */
            }
        }
        shmchan__fetch_sub(&c->rd_waiters, 1, SHMCHAN__RELAXED);
        if (rc == SHMCHAN_EAGAIN) {
            rc = locate(q, f, &claimed); /* woken: look before paying the waiter's barrier */
        }
        if (rc == SHMCHAN_OK && began != 0) {
            shmchan__spin_learn(&q->r, shmchan__now_ns() - began);
        }
        if (rc != SHMCHAN_EAGAIN) {
            return rc;
        }
        if (shmchan__region_broken(&q->r)) {
            return SHMCHAN_ETRUNCATED;
        }
    }
}

/* A subscriber moved on: publish the cursor (once per call), free writers. */
static void
sub_publish(shmchan_queue *q)
{
    shmchan__qreader *rd = &q->v.readers[q->rslot];
    shmchan__store(&rd->seq, q->seq, SHMCHAN__RELAXED);
    shmchan__store(&rd->received, q->received, SHMCHAN__RELAXED);
    shmchan__store(&rd->pos, q->pos, SHMCHAN__RELEASE);
    wake_writers_now_and_then(q, q->pos);
}

static void
work_publish(shmchan_queue *q, uint64_t next_seq, uint64_t end)
{
    shmchan__qreader *rd = &q->v.readers[q->rslot];
    shmchan__store(&rd->seq, next_seq, SHMCHAN__RELAXED);
    shmchan__store(&rd->received, q->received, SHMCHAN__RELAXED);
    work_done(q, end);
}

static int
reader_check(shmchan_queue *q)
{
    if (shmchan__region_forked(&q->r)) {
        return SHMCHAN_EFORKED;
    }
    if (q->role == 0) {
        return SHMCHAN_EKIND;
    }
    return q->viewing ? SHMCHAN_ESTATE : SHMCHAN_OK; /* truncation shows when we look */
}

static void
fill_msg(shmchan_msg *m, const void *data, const found_t *f, uint64_t lost, uint64_t token)
{
    m->data = data;
    m->len = f->len;
    m->seq = f->seq;
    m->lost = lost;
    m->token = token;
}

/* The located message does not fit: unless it was overwritten meanwhile
 * (then look again), report its size and leave it. */
static bool
too_big(shmchan_queue *q, const found_t *f)
{
    if (q->v.overwrite && overtaken(&q->v, f->pos)) {
        if (q->role == SHMCHAN_PEER_SUBSCRIBER) {
            (void)resync(q);
        }
        return false;
    }
    return true;
}

int
shmchan_queue_recv(shmchan_queue *q, void *buf, size_t cap, int64_t timeout_ms,
                   size_t *len_out, shmchan_msg *info)
{
    if (q == NULL || (buf == NULL && cap != 0)) {
        return SHMCHAN_EINVAL;
    }
    int rc = reader_check(q);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    const shmchan__qview *v = &q->v;
    for (int tries = 0; tries < RETRY_MAX; tries++) {
        found_t f;
        rc = await_msg(q, timeout_ms, &f);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        if (SHMCHAN__UNLIKELY(f.len > cap)) {
            if (!too_big(q, &f)) {
                continue;
            }
            if (len_out != NULL) {
                *len_out = (size_t)f.len;
            }
            return SHMCHAN_EMSGSIZE;
        }
        bool worker = q->role == SHMCHAN_PEER_WORKER;
        if (worker && !work_take(q, f.pos, f.pos + shmchan__qspan(f.len))) {
            continue;
        }
        if (f.len != 0) {
            memcpy(buf, shmchan__qpayload(f.h), (size_t)f.len);
        }
        if (SHMCHAN__UNLIKELY(shmchan__region_broken(&q->r))) {
            return SHMCHAN_ETRUNCATED; /* the bytes may be the guard's zeros */
        }
        if (v->overwrite && overtaken(v, f.pos)) {
            if (worker) {
                add_lost(q, 1);
                work_done(q, f.pos);
            } else {
                rc = resync(q);
                if (rc == SHMCHAN_ECORRUPT) {
                    return rc;
                }
            }
            continue;
        }
        q->received++;
        if (worker) {
            work_collect_lost(q);
            work_publish(q, f.seq + 1, f.pos + shmchan__qspan(f.len));
        } else {
            q->pos = f.pos + shmchan__qspan(f.len);
            q->seq = f.seq + 1;
            sub_publish(q);
        }
        if (len_out != NULL) {
            *len_out = (size_t)f.len;
        }
        if (info != NULL) {
            fill_msg(info, buf, &f, q->lost_pending, 0);
        }
        q->lost_pending = 0;
        return SHMCHAN_OK;
    }
    return SHMCHAN_EAGAIN;
}

/* ------------------------------------------------------------ batches */

static size_t
align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

typedef struct batch_t {
    uint8_t *buf;
    size_t cap;
    size_t max;
    shmchan_msg *msgs;
    size_t n;
    size_t off;
} batch_t;

static bool
batch_add(batch_t *b, const found_t *f)
{
    if (b->n >= b->max || f->len > b->cap - b->off) {
        return false;
    }
    uint8_t *dst = b->buf + b->off;
    if (f->len != 0) {
        memcpy(dst, shmchan__qpayload(f->h), (size_t)f->len);
    }
    fill_msg(&b->msgs[b->n++], dst, f, 0, 0);
    b->off = align8(b->off + (size_t)f->len);
    if (b->off > b->cap) {
        b->off = b->cap;
    }
    return true;
}

/* A subscriber's batch from the located message on; false: discard it. */
static bool
sub_batch(shmchan_queue *q, batch_t *b, found_t f)
{
    uint64_t pos0 = q->pos, seq0 = q->seq;
    uint64_t first = f.pos;
    do {
        if (!batch_add(b, &f)) {
            break;
        }
        q->pos = f.pos + shmchan__qspan(f.len);
        q->seq = f.seq + 1;
        uint64_t claimed = 0;
        if (sub_locate(q, &f, &claimed, false) != SHMCHAN_OK) {
            break;
        }
    } while (b->n < b->max);
    if (q->v.overwrite && overtaken(&q->v, first)) {
        q->pos = pos0;
        q->seq = seq0;
        return false;
    }
    return true;
}

/* A worker's batch: take consecutive committed records with one CAS. */
static int
work_batch(shmchan_queue *q, batch_t *b, found_t f)
{
    const shmchan__qview *v = &q->v;
    found_t taken[64];
    size_t n = 1, off = align8((size_t)f.len), limit = b->max < 64 ? b->max : 64;
    taken[0] = f; /* checked by work_locate */
    off = off < b->cap ? off : b->cap;
    uint64_t end = f.pos + shmchan__qspan(f.len);
    uint64_t tail = shmchan__load(&v->ctl->tail, SHMCHAN__ACQUIRE);
    while (n < limit && end < tail) {
        shmchan__qrec *h = shmchan__qrec_at(v, end);
        uint64_t tag = shmchan__load(&h->tag, SHMCHAN__ACQUIRE);
        uint32_t kind = (uint32_t)(tag & SHMCHAN__QTAG_KINDS);
        uint64_t len = shmchan__load(&h->len, SHMCHAN__RELAXED);
        if (tag == 0 || kind == SHMCHAN__QTAG_CLAIMED || !shmchan__qfits(v, end, kind, len)) {
            break;
        }
        if (kind == SHMCHAN__QTAG_MSG) {
            if (len > b->cap - off) {
                break; /* the same test batch_add makes */
            }
            taken[n++] = (found_t){end, tag >> 2, len, h};
            off = align8(off + (size_t)len);
            off = off < b->cap ? off : b->cap;
        }
        end += shmchan__qspan(len);
    }
    if (v->overwrite && overtaken(v, f.pos)) {
        return SHMCHAN_EAGAIN; /* the headers read may be stale */
    }
    if (!work_take(q, f.pos, end)) {
        return SHMCHAN_EAGAIN;
    }
    for (size_t i = 0; i < n; i++) {
        (void)batch_add(b, &taken[i]);
    }
    if (v->overwrite && overtaken(v, f.pos)) {
        add_lost(q, n);
        b->n = 0;
        b->off = 0;
        work_done(q, end);
        return SHMCHAN_EAGAIN;
    }
    q->received += n;
    work_collect_lost(q);
    work_publish(q, taken[n - 1].seq + 1, end);
    return SHMCHAN_OK;
}

int
shmchan_queue_recv_batch(shmchan_queue *q, void *buf, size_t cap, size_t max,
                         int64_t timeout_ms, shmchan_msg *msgs, size_t *count_out)
{
    if (count_out != NULL) {
        *count_out = 0;
    }
    if (q == NULL || count_out == NULL || msgs == NULL || max == 0 ||
        (buf == NULL && cap != 0)) {
        return SHMCHAN_EINVAL;
    }
    int rc = reader_check(q);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    batch_t b = {buf, cap, max, msgs, 0, 0};
    for (int tries = 0; tries < RETRY_MAX; tries++) {
        found_t f;
        rc = await_msg(q, timeout_ms, &f);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        if (SHMCHAN__UNLIKELY(f.len > cap)) {
            if (!too_big(q, &f)) {
                continue;
            }
            msgs[0].len = f.len; /* the size it needs */
            return SHMCHAN_EMSGSIZE;
        }
        if (q->role == SHMCHAN_PEER_WORKER) {
            if (work_batch(q, &b, f) != SHMCHAN_OK) {
                continue;
            }
        } else {
            if (!sub_batch(q, &b, f)) {
                b.n = 0;
                b.off = 0;
                rc = resync(q);
                if (rc == SHMCHAN_ECORRUPT) {
                    return rc;
                }
                continue;
            }
            q->received += b.n;
            sub_publish(q);
        }
        if (SHMCHAN__UNLIKELY(shmchan__region_broken(&q->r))) {
            return SHMCHAN_ETRUNCATED;
        }
        msgs[0].lost = q->lost_pending;
        q->lost_pending = 0;
        *count_out = b.n;
        return SHMCHAN_OK;
    }
    return SHMCHAN_EAGAIN;
}

/* ------------------------------------------------------------ zero-copy */

int
shmchan_queue_peek(shmchan_queue *q, int64_t timeout_ms, shmchan_msg *msg)
{
    if (q == NULL || msg == NULL) {
        return SHMCHAN_EINVAL;
    }
    int rc = reader_check(q);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    const shmchan__qview *v = &q->v;
    for (int tries = 0; tries < RETRY_MAX; tries++) {
        found_t f;
        rc = await_msg(q, timeout_ms, &f);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        if (v->overwrite && overtaken(v, f.pos)) { /* the length read may be stale */
            if (q->role == SHMCHAN_PEER_SUBSCRIBER && resync(q) == SHMCHAN_ECORRUPT) {
                return SHMCHAN_ECORRUPT;
            }
            continue;
        }
        if (q->role == SHMCHAN_PEER_WORKER) {
            if (!work_take(q, f.pos, f.pos + shmchan__qspan(f.len))) {
                continue;
            }
            work_collect_lost(q);
        }
        q->viewing = true;
        q->view_pos = f.pos;
        q->view_seq = f.seq;
        q->view_len = f.len;
        fill_msg(msg, shmchan__qpayload(f.h), &f, q->lost_pending, f.pos);
        q->lost_pending = 0;
        return SHMCHAN_OK;
    }
    return SHMCHAN_EAGAIN;
}

void
shmchan__qrelease_view(shmchan_queue *q)
{
    q->viewing = false;
    q->received++;
    if (q->role == SHMCHAN_PEER_WORKER) {
        work_publish(q, q->view_seq + 1, q->view_pos + shmchan__qspan(q->view_len));
    } else {
        q->pos = q->view_pos + shmchan__qspan(q->view_len);
        q->seq = q->view_seq + 1;
        sub_publish(q);
    }
}

int
shmchan_queue_release(shmchan_queue *q)
{
    if (q == NULL) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&q->r)) {
        return SHMCHAN_EFORKED;
    }
    if (!q->viewing) {
        return SHMCHAN_ESTATE;
    }
    bool stale = q->v.overwrite && overtaken(&q->v, q->view_pos);
    shmchan__qrelease_view(q);
    return stale ? SHMCHAN_ESTALE : SHMCHAN_OK;
}
