/*
 * Services: the client side. A request is one record in the request ring
 * (service header, then the body); its responses come back through the
 * client's own reply ring, where the client is the only reader. Responses
 * that are not for one of this handle's pending requests (another
 * generation's, a forged one) are read and dropped. While it waits, a
 * client looks every SHMCHAN__SVC_SLICE_MS whether a taken request of its
 * is still held by a live server (layout.h, shmchan__svc_server).
 */
#include <stdlib.h>
#include <string.h>

#include "service_int.h"

#define INLINE_MAX 1024u /* requests up to this size are copied inside the claim */
#define RETRY_MAX 100000u /* foreign responses dropped per call before giving up */

/* ------------------------------------------------------------ pending */

static int
pend_add(shmchan_service *s, uint64_t id, uint64_t pos)
{
    if (s->npend == s->pend_cap) {
        size_t cap = s->pend_cap != 0 ? s->pend_cap * 2 : 8;
        shmchan__svc_pending *p = realloc(s->pend, cap * sizeof(*p));
        if (p == NULL) {
            return SHMCHAN_ENOMEM;
        }
        s->pend = p;
        s->pend_cap = cap;
    }
    s->pend[s->npend].id = id;
    s->pend[s->npend].pos = pos;
    s->npend++;
    return SHMCHAN_OK;
}

static size_t
pend_find(const shmchan_service *s, uint64_t id)
{
    size_t i = 0;
    while (i < s->npend && s->pend[i].id != id) {
        i++;
    }
    return i;
}

static void
pend_remove(shmchan_service *s, size_t i)
{
    s->pend[i] = s->pend[--s->npend];
}

/* ------------------------------------------------------------ requests */

static int
may_request(shmchan_service *s, size_t len)
{
    int rc = shmchan__svc_check(s, false);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (s->reserved) {
        return SHMCHAN_ESTATE;
    }
    if (len > s->max_msg) {
        return SHMCHAN_EMSGSIZE;
    }
    if (s->npend == s->pend_cap) {
        /* Room for its pending entry before anything is sent. */
        rc = pend_add(s, 0, 0);
        s->npend -= rc == SHMCHAN_OK;
    }
    return rc;
}

static int
claim(shmchan_service *s, uint64_t len, const void *data, int64_t timeout_ms,
      shmchan__rclaim *cl)
{
    int rc = shmchan__ring_claim(&s->req, &s->wr, len, data, timeout_ms, cl);
    if (SHMCHAN__UNLIKELY(shmchan__region_broken(&s->r))) {
        return SHMCHAN_ETRUNCATED;
    }
    return rc;
}

static shmchan__svc_reqhdr
request_header(shmchan_service *s, uint64_t id)
{
    shmchan__svc_reqhdr h = {id, s->slot, s->gen};
    return h;
}

int
shmchan_service_request(shmchan_service *s, const void *data, size_t len, int64_t timeout_ms,
                        uint64_t *id_out)
{
    if (data == NULL && len != 0) {
        return SHMCHAN_EINVAL;
    }
    int rc = may_request(s, len);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    uint64_t id = s->next_id + 1;
    shmchan__svc_reqhdr h = request_header(s, id);
    uint64_t total = SHMCHAN__SVC_HDR + len;
    shmchan__rclaim cl;
    if (total <= INLINE_MAX) {
        uint8_t rec[INLINE_MAX];
        memcpy(rec, &h, sizeof(h));
        if (len != 0) {
            memcpy(rec + sizeof(h), data, len);
        }
        rc = claim(s, total, rec, timeout_ms, &cl);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        shmchan__ring_committed(&s->req, &s->wr, total, true);
    } else {
        rc = claim(s, total, NULL, timeout_ms, &cl);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        uint8_t *p = shmchan__qpayload(shmchan__qrec_at(&s->req, cl.pos));
        memcpy(p, &h, sizeof(h));
        memcpy(p + sizeof(h), data, len);
        shmchan__ring_publish(&s->req, &s->wr, &cl, total, true);
    }
    s->next_id = id;
    (void)pend_add(s, id, cl.pos); /* room was made by may_request */
    if (id_out != NULL) {
        *id_out = id;
    }
    return SHMCHAN_OK;
}

int
shmchan_service_request_reserve(shmchan_service *s, size_t len, int64_t timeout_ms,
                                void **buf_out)
{
    if (buf_out == NULL) {
        return SHMCHAN_EINVAL;
    }
    *buf_out = NULL;
    int rc = may_request(s, len);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    shmchan__rclaim cl;
    rc = claim(s, SHMCHAN__SVC_HDR + len, NULL, timeout_ms, &cl);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    s->reserved = true;
    s->resv = cl;
    s->resv_id = s->next_id + 1;
    uint8_t *p = shmchan__qpayload(shmchan__qrec_at(&s->req, cl.pos));
    shmchan__svc_reqhdr h = request_header(s, s->resv_id);
    memcpy(p, &h, sizeof(h));
    *buf_out = p + sizeof(h);
    return SHMCHAN_OK;
}

int
shmchan_service_request_commit(shmchan_service *s, size_t len, uint64_t *id_out)
{
    int rc = shmchan__svc_check(s, false);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (!s->reserved) {
        return SHMCHAN_ESTATE;
    }
    if (SHMCHAN__SVC_HDR + (uint64_t)len > s->resv.len) {
        return SHMCHAN_EMSGSIZE;
    }
    /* Our header again: the bytes were the caller's to scribble on. */
    uint8_t *p = shmchan__qpayload(shmchan__qrec_at(&s->req, s->resv.pos));
    shmchan__svc_reqhdr h = request_header(s, s->resv_id);
    memcpy(p, &h, sizeof(h));
    s->reserved = false;
    shmchan__ring_publish(&s->req, &s->wr, &s->resv, SHMCHAN__SVC_HDR + len, true);
    s->next_id = s->resv_id;
    (void)pend_add(s, s->resv_id, s->resv.pos); /* room was made by may_request */
    if (id_out != NULL) {
        *id_out = s->resv_id;
    }
    return SHMCHAN_OK;
}

/* ----------------------------------------------------------- responses */

/* Whether server slot i's owner lives: its lock probed, or trusted for
 * SHMCHAN__SVC_RECHECK_NS after a probe found it alive. */
static bool
server_alive(shmchan_service *s, uint32_t i)
{
    uint64_t now = shmchan__now_ns();
    if (s->held_at != 0 && s->held_by == i && now - s->held_at < SHMCHAN__SVC_RECHECK_NS) {
        return true;
    }
    if (shmchan__lock_probe(s->r.shm, shmchan__ring_lock(&s->req, i)) == SHMCHAN_OK) {
        return false; /* nobody holds the slot's lock */
    }
    s->held_by = i;
    s->held_at = now;
    return true;
}

/* Whether a live server line holds our request id. */
static bool
held_by_live_server(shmchan_service *s, uint64_t id)
{
    uint64_t word = shmchan__svc_hold_word(s->slot, s->gen);
    for (uint32_t i = 0; i < s->nservers; i++) {
        const shmchan__svc_server *sv = &s->servers[i];
        if (shmchan__load(&sv->hold, SHMCHAN__SEQ_CST) != word ||
            shmchan__load(&sv->hold_id, SHMCHAN__RELAXED) != id) {
            continue;
        }
        if (server_alive(s, i)) {
            return true;
        }
    }
    return false;
}

/* A pending request that a server took and no live server holds any more:
 * its index, or npend. The caller then looks at its reply ring once more. */
static size_t
orphaned(shmchan_service *s)
{
    uint64_t work = shmchan__load(&s->req.ctl->work_pos, SHMCHAN__SEQ_CST);
    for (size_t i = 0; i < s->npend; i++) {
        if (s->pend[i].pos < work && !held_by_live_server(s, s->pend[i].id)) {
            return i;
        }
    }
    return s->npend;
}

/* The located reply record is read: move the cursor past it. */
static void
consume(shmchan_service *s, const shmchan__rfound *f)
{
    s->rd.pos = f->pos + shmchan__qspan(f->len);
    s->rd.seq = f->seq + 1;
    s->rd.received++;
    shmchan__ring_sub_publish(&s->reply, &s->rd);
}

/*
 * The located reply: ours (OK: copied out, or EMSGSIZE: left in place) or
 * dropped (EAGAIN: look for the next one).
 */
static int
deliver(shmchan_service *s, const shmchan__rfound *f, void *buf, size_t cap, size_t *len_out,
        shmchan_response *info)
{
    shmchan__svc_rephdr h;
    size_t at = s->npend;
    if (f->len >= SHMCHAN__SVC_HDR) {
        memcpy(&h, shmchan__qpayload(f->h), sizeof(h));
        if (h.gen == s->gen && (h.flags & ~(SHMCHAN_REPLY_MORE | SHMCHAN_REPLY_ERROR)) == 0) {
            at = pend_find(s, h.id);
        }
    }
    if (at == s->npend) {
        consume(s, f);
        shmchan__fetch_add(&s->sctl->foreign_replies, 1, SHMCHAN__RELAXED);
        return SHMCHAN_EAGAIN;
    }
    uint64_t len = f->len - SHMCHAN__SVC_HDR;
    if (len_out != NULL) {
        *len_out = (size_t)len;
    }
    if (info != NULL) {
        info->id = h.id;
        info->len = len;
        info->flags = h.flags;
        info->reserved = 0;
    }
    if (len > cap) {
        return SHMCHAN_EMSGSIZE;
    }
    if (len != 0) {
        memcpy(buf, shmchan__qpayload(f->h) + SHMCHAN__SVC_HDR, (size_t)len);
    }
    if (SHMCHAN__UNLIKELY(shmchan__region_broken(&s->r))) {
        return SHMCHAN_ETRUNCATED;
    }
    consume(s, f);
    if ((h.flags & SHMCHAN_REPLY_MORE) == 0) {
        pend_remove(s, at);
    }
    return SHMCHAN_OK;
}

/* A request of ours died with its server: report it (once). */
static int
report_dead(shmchan_service *s, size_t i, size_t *len_out, shmchan_response *info)
{
    if (info != NULL) {
        memset(info, 0, sizeof(*info));
        info->id = s->pend[i].id;
    }
    if (len_out != NULL) {
        *len_out = 0;
    }
    pend_remove(s, i);
    shmchan__fetch_add(&s->sctl->peer_died, 1, SHMCHAN__RELAXED);
    return SHMCHAN_EPEERDIED;
}

int
shmchan_service_response(shmchan_service *s, void *buf, size_t cap, int64_t timeout_ms,
                         size_t *len_out, shmchan_response *info)
{
    if (buf == NULL && cap != 0) {
        return SHMCHAN_EINVAL;
    }
    int rc = shmchan__svc_check(s, false);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (s->npend == 0) {
        return SHMCHAN_ESTATE;
    }
    uint64_t deadline = timeout_ms > 0 ? shmchan__deadline(timeout_ms) : 0;
    for (uint32_t drops = 0;;) {
        int64_t left = timeout_ms == 0 ? 0 : shmchan__svc_left_ms(deadline);
        shmchan__rfound f;
        rc = shmchan__ring_await(&s->reply, &s->rd, shmchan__svc_slice_ms(left), &f);
        if (rc == SHMCHAN_ETIMEDOUT || rc == SHMCHAN_EAGAIN) {
            size_t dead = orphaned(s);
            if (dead < s->npend) {
                /* Its last response, if sent before the hold was cleared,
                 * is visible now. */
                rc = shmchan__ring_await(&s->reply, &s->rd, 0, &f);
                if (rc == SHMCHAN_EAGAIN) {
                    return report_dead(s, dead, len_out, info);
                }
            } else if (left == 0) {
                return timeout_ms == 0 ? SHMCHAN_EAGAIN : SHMCHAN_ETIMEDOUT;
            } else {
                continue;
            }
        }
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        rc = deliver(s, &f, buf, cap, len_out, info);
        if (rc != SHMCHAN_EAGAIN) {
            return rc;
        }
        /* Dropped: a flood of foreign records ends the call at its deadline. */
        if (++drops >= RETRY_MAX || (timeout_ms > 0 && shmchan__svc_left_ms(deadline) == 0)) {
            return timeout_ms == 0 ? SHMCHAN_EAGAIN : SHMCHAN_ETIMEDOUT;
        }
    }
}

int
shmchan_service_call(shmchan_service *s, const void *req, size_t req_len, void *buf, size_t cap,
                     int64_t timeout_ms, size_t *len_out)
{
    if (buf == NULL && cap != 0) {
        return SHMCHAN_EINVAL;
    }
    int rc = shmchan__svc_check(s, false);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (s->npend != 0) {
        return SHMCHAN_ESTATE;
    }
    uint64_t deadline = timeout_ms > 0 ? shmchan__deadline(timeout_ms) : 0;
    uint64_t id = 0;
    int resends = 0;
    rc = shmchan_service_request(s, req, req_len, timeout_ms, &id);
    while (rc == SHMCHAN_OK) {
        int64_t left = timeout_ms == 0 ? 0 : shmchan__svc_left_ms(deadline);
        shmchan_response info;
        size_t len = 0;
        rc = shmchan_service_response(s, buf, cap, left, &len, &info);
        if (len_out != NULL && (rc == SHMCHAN_OK || rc == SHMCHAN_EMSGSIZE)) {
            *len_out = len;
        }
        if (rc == SHMCHAN_OK && (info.flags & SHMCHAN_REPLY_MORE) == 0) {
            return (info.flags & SHMCHAN_REPLY_ERROR) ? SHMCHAN_EREMOTE : SHMCHAN_OK;
        }
        if (rc == SHMCHAN_EPEERDIED && s->resend && resends < SHMCHAN_RESEND_MAX) {
            resends++; /* its server died holding it: the only request pending */
            left = timeout_ms == 0 ? 0 : shmchan__svc_left_ms(deadline);
            rc = shmchan_service_request(s, req, req_len, left, &id);
        }
    }
    return rc;
}
