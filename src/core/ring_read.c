/*
 * Rings: reading, as a subscriber (own cursor, every message) or as a
 * worker (competing for a shared position): finding the next message,
 * waiting for it, and publishing the cursor.
 *
 * A subscriber at position p expecting sequence s reads only the record's
 * tag there (layout.h). In overwrite mode a writer may lap it: after copying
 * it issues an acquire fence and reloads `oldest`; if oldest moved past p the
 * copy is discarded and the cursor jumps to the oldest record, counting
 * exactly the sequences it missed. Every word read from shared memory is
 * bounded before use; loops over shared state are bounded too.
 */
#include "ring.h"

#define SKIP_MAX 4096     /* pads and dropped records skipped per look */
#define CLAIMED_POLLS 16  /* looks at a record being filled before EAGAIN */
#define CATCH_UP_SPINS 1000

void
shmchan__ring_add_lost(const shmchan__ring *v, shmchan__ring_rd *q, uint64_t n)
{
    if (n == 0) {
        return;
    }
    q->lost += n;
    q->lost_pending += n;
    shmchan__store(&v->readers[q->slot].lost, q->lost, SHMCHAN__RELAXED);
    shmchan__fetch_add(&v->ctl->drops, n, SHMCHAN__RELAXED);
}

/* A subscriber lapped by writers continues with the oldest record held. */
int
shmchan__ring_resync(const shmchan__ring *v, shmchan__ring_rd *q)
{
    uint64_t pos, seq;
    int rc = shmchan__qoldest(v, &pos, &seq);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    shmchan__ring_add_lost(v, q, seq > q->seq ? seq - q->seq : 0);
    q->pos = pos;
    q->seq = seq;
    return SHMCHAN_OK;
}

/*
 * While a subscriber waits at p: touch the line that will hold the last byte
 * of its next record if it is as long as the one before. The writer fills
 * that line before it turns the tag on p's line, so its transfer overlaps
 * with the one of the tag's line instead of starting only once the reader
 * has seen the tag turn (two line transfers in a row for a 64 B message,
 * whose 80-byte record spans two lines). A line we hold already costs
 * nothing; the hint is process-local, so a forged length cannot steer it.
 */
static void
look_ahead(const shmchan__ring *v, const shmchan__ring_rd *q, uint64_t p)
{
    uint64_t off = p & v->mask, end = off + sizeof(shmchan__qrec) + q->len_hint;
    if (q->len_hint != 0 && end <= v->cap &&
        (end - 1) / SHMCHAN__CACHE_LINE != off / SHMCHAN__CACHE_LINE) {
        shmchan__prefetch(v->ring + end - 1);
    }
}

/*
 * Block mode: whether a writer moved our published cursor past the PADs we
 * stood at (ring_write.c, skip_pads), which it may then have overwritten:
 * what we just read at p is not to be trusted, continue where it put us.
 * The loads of the tag and length at p come first, then an acquire fence:
 * if either read bytes of a claim that relied on the move, the claim's
 * release fence came after the move, so the load of pos behind ours sees it.
 * Our own line, so a look costs no transfer. A value
 * no writer would store (misaligned, past the tail, more than a lap ahead)
 * is ignored; it can only come from a peer that forges our slot.
 */
static bool
skipped_to(const shmchan__ring *v, shmchan__ring_rd *q, uint64_t p)
{
    shmchan__fence(SHMCHAN__ACQUIRE);
    uint64_t to = shmchan__load(&v->readers[q->slot].pos, SHMCHAN__RELAXED);
    if (SHMCHAN__LIKELY(to <= p) || to % SHMCHAN__QREC_ALIGN != 0 || to - p > v->cap ||
        to > shmchan__load(&v->ctl->tail, SHMCHAN__ACQUIRE)) {
        return false;
    }
    q->pos = to;
    return true;
}

/*
 * A subscriber's next message: OK, EAGAIN (nothing yet; *claimed receives the
 * tag when a writer is still filling it), ECORRUPT. Skips pads and dropped
 * records; resyncs when lapped, unless may_resync is false (in the middle of
 * a batch, which the caller then ends).
 */
int
shmchan__ring_sub_locate(const shmchan__ring *v, shmchan__ring_rd *q, shmchan__rfound *f,
                         uint64_t *claimed, bool may_resync)
{
    for (int i = 0; i < SKIP_MAX; i++) {
        uint64_t p = q->pos, s = q->seq;
        shmchan__qrec *h = shmchan__qrec_at(v, p);
        uint64_t tag, len;
        shmchan__qheader(h, &tag, &len);
        uint32_t kind = (uint32_t)(tag & SHMCHAN__QTAG_KINDS);
        if (SHMCHAN__UNLIKELY(!v->overwrite && skipped_to(v, q, p))) {
            continue;
        }
        if (SHMCHAN__LIKELY((tag >> 2) == s)) {
            if (kind == SHMCHAN__QTAG_CLAIMED) {
                *claimed = tag;
                f->pos = p;
                look_ahead(v, q, p);
                return SHMCHAN_EAGAIN;
            }
            if (SHMCHAN__LIKELY(shmchan__qfits(v, p, kind, len))) {
                if (SHMCHAN__LIKELY(kind == SHMCHAN__QTAG_MSG)) {
                    f->pos = p;
                    f->seq = s;
                    f->len = len;
                    f->h = h;
                    q->len_hint = len;
                    return SHMCHAN_OK;
                }
                if (!v->overwrite || !shmchan__ring_overtaken(v, p)) { /* a lapped one may lie */
                    q->pos = p + shmchan__qspan(len);
                    q->seq = s + (kind == SHMCHAN__QTAG_DROPPED);
                    continue;
                }
            }
        } else if ((tag >> 2) < s && (!v->overwrite || !shmchan__ring_overtaken(v, p))) {
            look_ahead(v, q, p);
            return SHMCHAN_EAGAIN; /* an older lap's bytes: nothing yet */
        }
        /* Lapped, or a tag or length no writer of ours would write. */
        if (!shmchan__ring_overtaken(v, p)) {
            return SHMCHAN_ECORRUPT;
        }
        if (!may_resync) {
            return SHMCHAN_EAGAIN;
        }
        int rc = shmchan__ring_resync(v, q);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
    }
    return SHMCHAN_EAGAIN;
}

/* Overwrite mode: work_pos fell behind oldest. The claimant moves it on in a
 * moment; if it does not (it died), move it ourselves. */
static void
work_catch_up(const shmchan__ring *v, uint64_t work)
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
work_locate(const shmchan__ring *v, shmchan__rfound *f, uint64_t *claimed)
{
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
        if (v->overwrite && shmchan__ring_overtaken(v, w)) {
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
 * running dry, sleeping and closing look with a fence (see ring.h), and
 * a waiting writer also looks again at the end of each sleep slice.
 */
static void
wake_writers_now_and_then(const shmchan__ring *v, shmchan__ring_rd *q, uint64_t pos)
{
    if (v->overwrite || (pos >= q->wake_mark && pos - q->wake_mark < v->cap / 16)) {
        return;
    }
    q->wake_mark = pos;
    shmchan__qwake_writers(v, false);
}

/* Take [w, end) for this worker: announce w first (see layout.h). A stale
 * announcement would hold writers back, so a lost race withdraws it. */
bool
shmchan__ring_work_take(const shmchan__ring *v, shmchan__ring_rd *q, uint64_t w, uint64_t end)
{
    shmchan__atomic_u64 *ann = &v->readers[q->slot].pos;
    shmchan__store(ann, w, SHMCHAN__SEQ_CST);
    if (shmchan__cas(&v->ctl->work_pos, &w, end)) {
        return true;
    }
    shmchan__store(ann, SHMCHAN__QPOS_NONE, SHMCHAN__RELEASE);
    return false;
}

void
shmchan__ring_work_done(const shmchan__ring *v, shmchan__ring_rd *q, uint64_t end)
{
    shmchan__store(&v->readers[q->slot].pos, SHMCHAN__QPOS_NONE, SHMCHAN__RELEASE);
    wake_writers_now_and_then(v, q, end);
}

/* Worker, overwrite mode: messages lost by workers since the last report. */
void
shmchan__ring_work_collect_lost(const shmchan__ring *v, shmchan__ring_rd *q)
{
    shmchan__atomic_u64 *wl = &v->ctl->work_lost;
    if (v->overwrite && shmchan__load(wl, SHMCHAN__RELAXED) != 0) {
        shmchan__ring_add_lost(v, q, shmchan__exchange(wl, 0, SHMCHAN__ACQ_REL));
    }
}

/* A reader stuck at a claimed record: after a while, look at its writer. */
static void
stuck(const shmchan__ring *v, shmchan__ring_rd *q, uint64_t pos, uint64_t tag)
{
    uint64_t now = shmchan__now_ns();
    if (q->stuck_pos != pos) {
        q->stuck_pos = pos;
        q->stuck_since = now;
    } else if (now - q->stuck_since >= SHMCHAN__QSTUCK_NS) {
        q->stuck_since = now;
        (void)shmchan__qrecover_record(v, q->owner, pos, tag);
    }
}

/* Whether the claimed record we are stuck at is still the one we expect:
 * lapped (overwrite mode) or taken by another worker, it is not. */
static bool
still_current(const shmchan__ring *v, shmchan__ring_rd *q, uint64_t pos)
{
    if (v->overwrite && shmchan__ring_overtaken(v, pos)) {
        return false;
    }
    return q->role == SHMCHAN_PEER_SUBSCRIBER ||
           shmchan__load(&v->ctl->work_pos, SHMCHAN__ACQUIRE) == pos;
}

static int
locate(const shmchan__ring *v, shmchan__ring_rd *q, shmchan__rfound *f, uint64_t *claimed)
{
    *claimed = 0;
    int rc = q->role == SHMCHAN_PEER_SUBSCRIBER ? shmchan__ring_sub_locate(v, q, f, claimed, true)
                                                : work_locate(v, f, claimed);
    if (SHMCHAN__UNLIKELY(rc == SHMCHAN_EAGAIN && *claimed != 0)) {
        if (still_current(v, q, f->pos)) {
            stuck(v, q, f->pos, *claimed);
        }
    }
    return rc;
}

bool
shmchan__ring_has_news(const shmchan__ring *v, shmchan__ring_rd *q)
{
    shmchan__rfound f;
    uint64_t claimed;
    int rc = locate(v, q, &f, &claimed);
    return rc != SHMCHAN_EAGAIN || claimed != 0 || shmchan__shm_faulted(v->shm);
}

/* Find the next message, waiting up to timeout_ms: spin, then sleep with the
 * handshake of wait.h on `wake` (bounded sleeps, to look at stuck writers). */
int
shmchan__ring_await(const shmchan__ring *v, shmchan__ring_rd *q, int64_t timeout_ms,
                    shmchan__rfound *f)
{
    shmchan__queue_ctl *c = v->ctl;
    uint64_t claimed;
    int rc = locate(v, q, f, &claimed);
    if (SHMCHAN__LIKELY(rc == SHMCHAN_OK)) {
        return rc;
    }
    if (shmchan__region_broken(v->reg)) {
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
        rc = locate(v, q, f, &claimed);
        if (rc != SHMCHAN_EAGAIN) {
            return rc;
        }
    }
    if (timeout_ms == 0) {
        return SHMCHAN_EAGAIN;
    }
    uint64_t deadline = shmchan__deadline(timeout_ms);
    uint64_t began = 0; /* when the spin began, if we spun */
    if (v->reg->spin_ns != 0 && shmchan__ring_spin_pays(v, &q->spin)) {
        began = shmchan__now_ns();
        uint64_t end = began + shmchan__spin_now(v->reg);
        do {
            for (int i = 0; i < 64; i++) {
                rc = locate(v, q, f, &claimed);
                if (rc != SHMCHAN_EAGAIN) {
                    return rc;
                }
                shmchan__cpu_relax();
            }
        } while (shmchan__now_ns() < end);
    }
    for (;;) {
        uint32_t w = shmchan__wait_in(&c->rd_waiters, &c->wake, NULL);
        uint64_t slice = shmchan__fence_sleeper(v->asym, &c->fenced, &q->fenced_in,
                                                !shmchan__ring_spin_pays(v, &q->spin),
                                                SHMCHAN__QSLICE_NS);
        rc = locate(v, q, f, &claimed);
        if (rc == SHMCHAN_EAGAIN) {
            shmchan__fetch_add(&c->waits, 1, SHMCHAN__RELAXED);
            slice = claimed != 0 && SHMCHAN__QSTUCK_NS < slice ? SHMCHAN__QSTUCK_NS : slice;
            rc = shmchan__wait_sleep(v->shm, &c->wake, w, slice, deadline);
            rc = rc == SHMCHAN_OK ? SHMCHAN_EAGAIN : rc; /* look again */
        }
        shmchan__wait_out(&c->rd_waiters);
        if (rc == SHMCHAN_EAGAIN) {
            rc = locate(v, q, f, &claimed); /* woken: look before paying the waiter's barrier */
        }
        if (rc == SHMCHAN_OK && began != 0) {
            shmchan__spin_learn(v->reg, shmchan__now_ns() - began);
        }
        if (rc != SHMCHAN_EAGAIN) {
            return rc;
        }
        if (shmchan__region_broken(v->reg)) {
            return SHMCHAN_ETRUNCATED;
        }
    }
}

/* A subscriber moved on: publish the cursor (once per call), free writers. */
void
shmchan__ring_sub_publish(const shmchan__ring *v, shmchan__ring_rd *q)
{
    shmchan__qreader *rd = &v->readers[q->slot];
    shmchan__store(&rd->seq, q->seq, SHMCHAN__RELAXED);
    shmchan__store(&rd->received, q->received, SHMCHAN__RELAXED);
    shmchan__store(&rd->pos, q->pos, SHMCHAN__RELEASE);
    wake_writers_now_and_then(v, q, q->pos);
}

void
shmchan__ring_work_publish(const shmchan__ring *v, shmchan__ring_rd *q, uint64_t next_seq,
                           uint64_t end)
{
    shmchan__qreader *rd = &v->readers[q->slot];
    shmchan__store(&rd->seq, next_seq, SHMCHAN__RELAXED);
    shmchan__store(&rd->received, q->received, SHMCHAN__RELAXED);
    shmchan__ring_work_done(v, q, end);
}
