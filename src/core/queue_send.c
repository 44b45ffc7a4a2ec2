/*
 * Queues: sending, reserving, committing and aborting, on the ring's claims
 * (ring_write.c). The fast path (space known, nobody asleep) makes no system
 * call and allocates nothing.
 */
#include <string.h>

#include "copy.h"
#include "queue_int.h"

#define NOWAIT_LOCK_NS (10ll * 1000 * 1000) /* a NO_WAIT call still waits out a claim */
#define HOLD_BYTES (64u * 1024) /* send_batch: payload copied under one hold of the lock */
#define INLINE_MAX 1024u /* sends up to this size copy and commit inside the claim */

/* What a send or reserve of len bytes needs first: the checks, a writer slot. */
static int
may_send(shmchan_queue *q, size_t len)
{
    if (shmchan__region_forked(&q->r)) {
        return SHMCHAN_EFORKED;
    }
    if (q->r.flags & SHMCHAN_RDONLY) {
        return SHMCHAN_ERDONLY;
    }
    if (q->reserved) {
        return SHMCHAN_ESTATE;
    }
    if (len > q->v.max_msg) {
        return SHMCHAN_EMSGSIZE;
    }
    return SHMCHAN__UNLIKELY(!q->wr.has_slot) ? shmchan__ring_take_writer(&q->v, &q->wr)
                                               : SHMCHAN_OK;
}

/* claim(), then the check that the region is still there. */
static int
claim_checked(shmchan_queue *q, uint64_t len, const void *data, int64_t timeout_ms,
              shmchan__rclaim *cl)
{
    int rc = shmchan__ring_claim(&q->v, &q->wr, len, data, timeout_ms, cl);
    if (SHMCHAN__UNLIKELY(shmchan__region_broken(&q->r))) {
        return SHMCHAN_ETRUNCATED; /* what we saw were zeros standing in for it */
    }
    return rc;
}

int
shmchan_queue_reserve(shmchan_queue *q, size_t len, int64_t timeout_ms, void **buf_out)
{
    if (q == NULL || buf_out == NULL) {
        return SHMCHAN_EINVAL;
    }
    *buf_out = NULL;
    int rc = may_send(q, len);
    shmchan__rclaim cl;
    if (rc == SHMCHAN_OK) {
        rc = claim_checked(q, len, NULL, timeout_ms, &cl);
    }
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    q->reserved = true;
    q->resv = cl;
    *buf_out = shmchan__qpayload(shmchan__qrec_at(&q->v, cl.pos));
    return SHMCHAN_OK;
}

int
shmchan_queue_commit(shmchan_queue *q, size_t len)
{
    if (q == NULL) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&q->r)) {
        return SHMCHAN_EFORKED;
    }
    if (!q->reserved) {
        return SHMCHAN_ESTATE;
    }
    if (len > q->resv.len) {
        return SHMCHAN_EMSGSIZE;
    }
    q->reserved = false;
    shmchan__ring_publish(&q->v, &q->wr, &q->resv, len, true);
    return SHMCHAN_OK;
}

int
shmchan_queue_abort(shmchan_queue *q)
{
    if (q == NULL) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&q->r)) {
        return SHMCHAN_EFORKED;
    }
    if (!q->reserved) {
        return SHMCHAN_ESTATE;
    }
    q->reserved = false;
    shmchan__ring_drop(&q->v, &q->wr, &q->resv);
    return SHMCHAN_OK;
}

/* The payload pointer for an inline claim: never NULL, which means none. */
static const void *
inline_data(const void *data)
{
    return data != NULL ? data : "";
}

/* After a claim: publish the message (copying it in first unless the claim
 * committed it already: inline), waking readers unless the caller batches. */
static void
complete(shmchan_queue *q, const shmchan__rclaim *cl, const void *data, uint64_t len,
         bool inline_done, bool wake)
{
    if (inline_done) {
        shmchan__ring_committed(&q->v, &q->wr, len, wake);
        return;
    }
    shmchan__copy_in(shmchan__qpayload(shmchan__qrec_at(&q->v, cl->pos)), data, (size_t)len);
    shmchan__ring_publish(&q->v, &q->wr, cl, len, wake);
}

/* How many of msgs, from the first, are small (copied inside the claim). */
static size_t
small_prefix(const shmchan_msg *msgs, size_t count)
{
    size_t k = 0;
    while (k < count && msgs[k].len <= INLINE_MAX) {
        k++;
    }
    return k;
}

/*
 * With the claim lock held: claim, copy and publish msgs in order while they
 * fit, up to about HOLD_BYTES (other writers wait meanwhile). Small messages
 * go in runs (one claim, one journal entry and one publishing store for many
 * records, docs/queue.md "Runs"), larger ones one claim each, copied here.
 * *n_out says how many went; returns the result of the claim that stopped
 * (OK when the count or the byte budget did).
 */
static int
send_held(shmchan_queue *q, const shmchan_msg *msgs, size_t count, size_t *n_out)
{
    size_t n = 0;
    uint64_t bytes = 0;
    int rc = SHMCHAN_OK;
    while (n < count && bytes < HOLD_BYTES) {
        size_t small = small_prefix(msgs + n, count - n), k = 0;
        uint64_t b = 0;
        if (small != 0) {
            rc = shmchan__ring_claim_run(&q->v, &q->wr, msgs + n, small, HOLD_BYTES - bytes, &k,
                                         &b);
            if (rc != SHMCHAN_OK) {
                break;
            }
            shmchan__ring_committed_n(&q->v, &q->wr, k, b);
            n += k;
            bytes += b;
            continue;
        }
        shmchan__rclaim cl;
        uint64_t len = msgs[n].len;
        rc = shmchan__ring_claim_held(&q->v, &q->wr, len, NULL, &cl);
        if (rc != SHMCHAN_OK) {
            break;
        }
        complete(q, &cl, msgs[n].data, len, false, false);
        bytes += len;
        n++;
    }
    *n_out = n;
    return rc;
}

/* Claim, copy and publish one message (wake: as publish()); a small one is
 * copied and committed inside the claim. */
static int
send_one(shmchan_queue *q, const void *data, size_t len, int64_t timeout_ms, bool wake)
{
    const void *in = len <= INLINE_MAX ? inline_data(data) : NULL;
    int rc = may_send(q, len);
    shmchan__rclaim cl;
    if (rc == SHMCHAN_OK) {
        rc = claim_checked(q, len, in, timeout_ms, &cl);
    }
    if (rc == SHMCHAN_OK) {
        complete(q, &cl, data, len, in != NULL, wake);
    }
    return rc;
}

int
shmchan_queue_send(shmchan_queue *q, const void *data, size_t len, int64_t timeout_ms)
{
    if (q == NULL || (data == NULL && len != 0)) {
        return SHMCHAN_EINVAL;
    }
    return send_one(q, data, len, timeout_ms, true);
}

/*
 * Runs of messages under one hold of the claim lock each (one CAS per run,
 * not per message) while they fit. When not even the first fits, it goes as
 * send() sends it, waiting up to timeout_ms, and the rest follow in runs.
 * Readers are woken once, at the end: before this call can wait again, so a
 * reader asleep never holds up a writer waiting for space.
 */
int
shmchan_queue_send_batch(shmchan_queue *q, const shmchan_msg *msgs, size_t count,
                         int64_t timeout_ms, size_t *sent_out)
{
    if (sent_out != NULL) {
        *sent_out = 0;
    }
    if (q == NULL || sent_out == NULL || (msgs == NULL && count != 0)) {
        return SHMCHAN_EINVAL;
    }
    for (size_t i = 0; i < count; i++) {
        if (msgs[i].data == NULL && msgs[i].len != 0) {
            return SHMCHAN_EINVAL;
        }
        if (msgs[i].len > q->v.max_msg) {
            return SHMCHAN_EMSGSIZE; /* before anything goes: all or a prefix */
        }
    }
    int rc = count == 0 ? SHMCHAN_OK : may_send(q, 0);
    size_t n = 0;
    while (rc == SHMCHAN_OK && n < count) {
        rc = shmchan__qlock(&q->v, q->wr.owner, NOWAIT_LOCK_NS);
        size_t k = 0;
        if (rc == SHMCHAN_OK) {
            rc = send_held(q, msgs + n, count - n, &k);
            shmchan__qunlock(&q->v);
        }
        n += k;
        if (shmchan__region_broken(&q->r)) {
            rc = SHMCHAN_ETRUNCATED;
        } else if (n == 0 && (rc == SHMCHAN_EAGAIN || rc == SHMCHAN_EBUSY ||
                              rc == SHMCHAN_ETIMEDOUT)) {
            rc = send_one(q, msgs[0].data, (size_t)msgs[0].len, timeout_ms, false);
            n = rc == SHMCHAN_OK;
        }
    }
    if (n != 0) {
        shmchan__qwake_readers(&q->v);
    }
    *sent_out = n;
    bool stopped = rc == SHMCHAN_EAGAIN || rc == SHMCHAN_EBUSY || rc == SHMCHAN_ETIMEDOUT;
    return n != 0 && stopped ? SHMCHAN_OK : rc;
}
