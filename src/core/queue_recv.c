/*
 * Queues: receiving, as a subscriber (own cursor, every message) or as a
 * worker (competing for a shared position), copying or in place, on the
 * ring's reading (ring_read.c).
 *
 * In overwrite mode a writer may lap a reader: after copying it issues an
 * acquire fence and reloads `oldest` (shmchan__ring_overtaken); if oldest
 * moved past the record the copy is discarded and a subscriber's cursor
 * jumps to the oldest record, counting exactly the sequences it missed.
 */
#include <string.h>

#include "copy.h"
#include "queue_int.h"

#define RETRY_MAX 100000  /* races lost (or lies met) per call before giving up */

static int
reader_check(shmchan_queue *q)
{
    if (shmchan__region_forked(&q->r)) {
        return SHMCHAN_EFORKED;
    }
    if (q->rd.role == 0) {
        return SHMCHAN_EKIND;
    }
    return q->viewing ? SHMCHAN_ESTATE : SHMCHAN_OK; /* truncation shows when we look */
}

static void
fill_msg(shmchan_msg *m, const void *data, const shmchan__rfound *f, uint64_t lost, uint64_t token)
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
too_big(shmchan_queue *q, const shmchan__rfound *f)
{
    if (q->v.overwrite && shmchan__ring_overtaken(&q->v, f->pos)) {
        if (q->rd.role == SHMCHAN_PEER_SUBSCRIBER) {
            (void)shmchan__ring_resync(&q->v, &q->rd);
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
    const shmchan__ring *v = &q->v;
    for (int tries = 0; tries < RETRY_MAX; tries++) {
        shmchan__rfound f;
        rc = shmchan__ring_await(&q->v, &q->rd, timeout_ms, &f);
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
        bool worker = q->rd.role == SHMCHAN_PEER_WORKER;
        if (worker &&
            !shmchan__ring_work_take(&q->v, &q->rd, f.pos, f.pos + shmchan__qspan(f.len))) {
            continue;
        }
        shmchan__copy_out(buf, shmchan__qpayload(f.h), (size_t)f.len);
        if (SHMCHAN__UNLIKELY(shmchan__region_broken(&q->r))) {
            return SHMCHAN_ETRUNCATED; /* the bytes may be the guard's zeros */
        }
        if (v->overwrite && shmchan__ring_overtaken(v, f.pos)) {
            if (worker) {
                shmchan__ring_add_lost(&q->v, &q->rd, 1);
                shmchan__ring_work_done(&q->v, &q->rd, f.pos);
            } else {
                rc = shmchan__ring_resync(&q->v, &q->rd);
                if (rc == SHMCHAN_ECORRUPT) {
                    return rc;
                }
            }
            continue;
        }
        q->rd.received++;
        if (worker) {
            shmchan__ring_work_collect_lost(&q->v, &q->rd);
            shmchan__ring_work_publish(&q->v, &q->rd, f.seq + 1, f.pos + shmchan__qspan(f.len));
        } else {
            q->rd.pos = f.pos + shmchan__qspan(f.len);
            q->rd.seq = f.seq + 1;
            shmchan__ring_sub_publish(&q->v, &q->rd);
        }
        if (len_out != NULL) {
            *len_out = (size_t)f.len;
        }
        if (info != NULL) {
            fill_msg(info, buf, &f, q->rd.lost_pending, 0);
        }
        q->rd.lost_pending = 0;
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
batch_add(batch_t *b, const shmchan__rfound *f)
{
    if (b->n >= b->max || f->len > b->cap - b->off) {
        return false;
    }
    uint8_t *dst = b->buf + b->off;
    shmchan__copy_out(dst, shmchan__qpayload(f->h), (size_t)f->len);
    fill_msg(&b->msgs[b->n++], dst, f, 0, 0);
    b->off = align8(b->off + (size_t)f->len);
    if (b->off > b->cap) {
        b->off = b->cap;
    }
    return true;
}

/* A subscriber's batch from the located message on; false: discard it. */
static bool
sub_batch(shmchan_queue *q, batch_t *b, shmchan__rfound f)
{
    uint64_t pos0 = q->rd.pos, seq0 = q->rd.seq;
    uint64_t first = f.pos;
    do {
        if (!batch_add(b, &f)) {
            break;
        }
        q->rd.pos = f.pos + shmchan__qspan(f.len);
        q->rd.seq = f.seq + 1;
        uint64_t claimed = 0;
        if (shmchan__ring_sub_locate(&q->v, &q->rd, &f, &claimed, false) != SHMCHAN_OK) {
            break;
        }
    } while (b->n < b->max);
    if (q->v.overwrite && shmchan__ring_overtaken(&q->v, first)) {
        q->rd.pos = pos0;
        q->rd.seq = seq0;
        return false;
    }
    return true;
}

/* A worker's batch: take consecutive committed records with one CAS. */
static int
work_batch(shmchan_queue *q, batch_t *b, shmchan__rfound f)
{
    const shmchan__ring *v = &q->v;
    shmchan__rfound taken[64];
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
            taken[n++] = (shmchan__rfound){end, tag >> 2, len, h};
            off = align8(off + (size_t)len);
            off = off < b->cap ? off : b->cap;
        }
        end += shmchan__qspan(len);
    }
    if (v->overwrite && shmchan__ring_overtaken(v, f.pos)) {
        return SHMCHAN_EAGAIN; /* the headers read may be stale */
    }
    if (!shmchan__ring_work_take(&q->v, &q->rd, f.pos, end)) {
        return SHMCHAN_EAGAIN;
    }
    for (size_t i = 0; i < n; i++) {
        (void)batch_add(b, &taken[i]);
    }
    if (v->overwrite && shmchan__ring_overtaken(v, f.pos)) {
        shmchan__ring_add_lost(&q->v, &q->rd, n);
        b->n = 0;
        b->off = 0;
        shmchan__ring_work_done(&q->v, &q->rd, end);
        return SHMCHAN_EAGAIN;
    }
    q->rd.received += n;
    shmchan__ring_work_collect_lost(&q->v, &q->rd);
    shmchan__ring_work_publish(&q->v, &q->rd, taken[n - 1].seq + 1, end);
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
        shmchan__rfound f;
        rc = shmchan__ring_await(&q->v, &q->rd, timeout_ms, &f);
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
        if (q->rd.role == SHMCHAN_PEER_WORKER) {
            if (work_batch(q, &b, f) != SHMCHAN_OK) {
                continue;
            }
        } else {
            if (!sub_batch(q, &b, f)) {
                b.n = 0;
                b.off = 0;
                rc = shmchan__ring_resync(&q->v, &q->rd);
                if (rc == SHMCHAN_ECORRUPT) {
                    return rc;
                }
                continue;
            }
            q->rd.received += b.n;
            shmchan__ring_sub_publish(&q->v, &q->rd);
        }
        if (SHMCHAN__UNLIKELY(shmchan__region_broken(&q->r))) {
            return SHMCHAN_ETRUNCATED;
        }
        msgs[0].lost = q->rd.lost_pending;
        q->rd.lost_pending = 0;
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
    const shmchan__ring *v = &q->v;
    for (int tries = 0; tries < RETRY_MAX; tries++) {
        shmchan__rfound f;
        rc = shmchan__ring_await(&q->v, &q->rd, timeout_ms, &f);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        if (v->overwrite && shmchan__ring_overtaken(v, f.pos)) { /* the length read may be stale */
            if (q->rd.role == SHMCHAN_PEER_SUBSCRIBER &&
                shmchan__ring_resync(&q->v, &q->rd) == SHMCHAN_ECORRUPT) {
                return SHMCHAN_ECORRUPT;
            }
            continue;
        }
        if (q->rd.role == SHMCHAN_PEER_WORKER) {
            if (!shmchan__ring_work_take(&q->v, &q->rd, f.pos, f.pos + shmchan__qspan(f.len))) {
                continue;
            }
            shmchan__ring_work_collect_lost(&q->v, &q->rd);
        }
        q->viewing = true;
        q->view.pos = f.pos;
        q->view.seq = f.seq;
        q->view.len = f.len;
        fill_msg(msg, shmchan__qpayload(f.h), &f, q->rd.lost_pending, f.pos);
        q->rd.lost_pending = 0;
        return SHMCHAN_OK;
    }
    return SHMCHAN_EAGAIN;
}

void
shmchan__qrelease_view(shmchan_queue *q)
{
    q->viewing = false;
    q->rd.received++;
    if (q->rd.role == SHMCHAN_PEER_WORKER) {
        shmchan__ring_work_publish(&q->v, &q->rd, q->view.seq + 1,
                                   q->view.pos + shmchan__qspan(q->view.len));
    } else {
        q->rd.pos = q->view.pos + shmchan__qspan(q->view.len);
        q->rd.seq = q->view.seq + 1;
        shmchan__ring_sub_publish(&q->v, &q->rd);
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
    bool stale = q->v.overwrite && shmchan__ring_overtaken(&q->v, q->view.pos);
    shmchan__qrelease_view(q);
    return stale ? SHMCHAN_ESTALE : SHMCHAN_OK;
}
