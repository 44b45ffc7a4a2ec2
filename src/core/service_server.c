/*
 * Services: the server side. A server is a worker of the request ring: it
 * competes for the next request like a queue worker, but announces what it
 * takes in its server line before its take (layout.h, shmchan__svc_server),
 * so that the client learns at once if it dies holding it. Responses go
 * into the client's reply ring as writer slot `slot`; a client that is gone
 * (its slot free, dead or owned by another generation) gets nothing and
 * never makes a server wait.
 */
#include <string.h>

#include "service_int.h"

#define RETRY_MAX 100000 /* races lost (or lies met) per call before giving up */
#define INLINE_MAX 1024u

/* The request found at f: its header if it is a well-formed request of a
 * client that still owns its slot (the slot named in the header must be the
 * one that claimed the record; the generation is checked against the slot
 * as shmchan__svc_client_alive() does, at most once per RECHECK). */
static bool
valid_request(shmchan_service *s, const shmchan__rfound *f, shmchan__svc_reqhdr *h)
{
    if (f->len < SHMCHAN__SVC_HDR) {
        return false;
    }
    memcpy(h, shmchan__qpayload(f->h), sizeof(*h));
    uint32_t writer = shmchan__load(&f->h->writer, SHMCHAN__RELAXED);
    if (h->client >= s->nclients || h->client != writer || h->id == 0) {
        return false;
    }
    return shmchan__svc_client_alive(s, h->client, h->gen, false);
}

static void
release_hold(shmchan_service *s)
{
    shmchan__store(&s->servers[s->slot].hold, 0, SHMCHAN__SEQ_CST);
    s->holding = false;
}

/* Take [f.pos, end) as the worker it is; announce it first when it is a
 * request to answer. False: another server was first. */
static bool
take_record(shmchan_service *s, const shmchan__rfound *f, const shmchan__svc_reqhdr *h)
{
    shmchan__svc_server *me = &s->servers[s->slot];
    uint64_t end = f->pos + shmchan__qspan(f->len);
    if (h != NULL) {
        shmchan__store(&me->hold_id, h->id, SHMCHAN__RELAXED);
        shmchan__store(&me->hold, shmchan__svc_hold_word(h->client, h->gen), SHMCHAN__SEQ_CST);
    }
    if (!shmchan__ring_work_take(&s->req, &s->wk, f->pos, end)) {
        if (h != NULL) {
            shmchan__store(&me->hold, 0, SHMCHAN__RELEASE);
        }
        return false;
    }
    return true;
}

int
shmchan_service_take(shmchan_service *s, void *buf, size_t cap, int64_t timeout_ms,
                     shmchan_request *req)
{
    if (req == NULL || (buf == NULL && cap != 0)) {
        return SHMCHAN_EINVAL;
    }
    int rc = shmchan__svc_check(s, true);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (s->holding || s->rreserved) {
        return SHMCHAN_ESTATE;
    }
    uint64_t deadline = timeout_ms > 0 ? shmchan__deadline(timeout_ms) : 0;
    for (int tries = 0; tries < RETRY_MAX; tries++) {
        int64_t left = timeout_ms <= 0 ? timeout_ms : shmchan__svc_left_ms(deadline);
        if (timeout_ms > 0 && left == 0) {
            return SHMCHAN_ETIMEDOUT;
        }
        shmchan__rfound f;
        rc = shmchan__ring_await(&s->req, &s->wk, left, &f);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        shmchan__svc_reqhdr h;
        uint64_t end = f.pos + shmchan__qspan(f.len);
        if (!valid_request(s, &f, &h)) {
            /* A gone client's or a malformed request: take it out of the way. */
            if (take_record(s, &f, NULL)) {
                shmchan__ring_work_publish(&s->req, &s->wk, f.seq + 1, end);
                shmchan__fetch_add(&s->sctl->dropped_requests, 1, SHMCHAN__RELAXED);
            }
            continue;
        }
        uint64_t len = f.len - SHMCHAN__SVC_HDR;
        if (len > cap) {
            req->len = len;
            return SHMCHAN_EMSGSIZE;
        }
        if (!take_record(s, &f, &h)) {
            continue;
        }
        if (len != 0) {
            memcpy(buf, shmchan__qpayload(f.h) + SHMCHAN__SVC_HDR, (size_t)len);
        }
        s->wk.received++;
        shmchan__ring_work_publish(&s->req, &s->wk, f.seq + 1, end);
        if (SHMCHAN__UNLIKELY(shmchan__region_broken(&s->r))) {
            release_hold(s);
            return SHMCHAN_ETRUNCATED;
        }
        shmchan__fetch_add(&s->servers[s->slot].taken, 1, SHMCHAN__RELAXED);
        s->holding = true;
        s->h_client = h.client;
        s->h_gen = h.gen;
        s->h_id = h.id;
        req->data = buf;
        req->len = len;
        req->id = h.id;
        req->token[0] = h.client;
        req->token[1] = h.gen;
        return SHMCHAN_OK;
    }
    return SHMCHAN_EAGAIN;
}

/* ------------------------------------------------------------- replies */

static int
may_reply(shmchan_service *s, const shmchan_request *req, size_t len)
{
    if (req == NULL) {
        return SHMCHAN_EINVAL;
    }
    int rc = shmchan__svc_check(s, true);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (!s->holding || s->rreserved) {
        return SHMCHAN_ESTATE;
    }
    if (req->id != s->h_id || req->token[0] != s->h_client || req->token[1] != s->h_gen) {
        return SHMCHAN_EINVAL;
    }
    return len > s->max_msg ? SHMCHAN_EMSGSIZE : SHMCHAN_OK;
}

/* The client is gone: the request is done, the reply dropped. */
static int
client_gone(shmchan_service *s)
{
    release_hold(s);
    shmchan__fetch_add(&s->sctl->dropped_replies, 1, SHMCHAN__RELAXED);
    return SHMCHAN_EPEERDIED;
}

/*
 * Claim total bytes in the held request's client's reply ring (with data:
 * copied and committed), waiting up to timeout_ms for space, a slice at a
 * time, and only while the client lives: the first try never waits, and
 * every later one looks at the client first.
 */
static int
reply_claim(shmchan_service *s, uint64_t total, const void *data, int64_t timeout_ms,
            shmchan__rclaim *cl)
{
    uint32_t c = s->h_client;
    uint64_t deadline = timeout_ms > 0 ? shmchan__deadline(timeout_ms) : 0;
    for (bool first = true;; first = false) {
        if (!shmchan__svc_client_alive(s, c, s->h_gen, !first)) {
            return client_gone(s);
        }
        int64_t left = timeout_ms == 0 ? 0 : shmchan__svc_left_ms(deadline);
        int rc = shmchan__ring_claim(&s->rviews[c], &s->rwr[c], total, data,
                                     first ? 0 : shmchan__svc_slice_ms(left), cl);
        if (SHMCHAN__UNLIKELY(shmchan__region_broken(&s->r))) {
            return SHMCHAN_ETRUNCATED;
        }
        if (rc != SHMCHAN_ETIMEDOUT && rc != SHMCHAN_EAGAIN) {
            return rc;
        }
        if (!first && left == 0) {
            return timeout_ms == 0 ? SHMCHAN_EAGAIN : SHMCHAN_ETIMEDOUT;
        }
    }
}

static shmchan__svc_rephdr
reply_header(const shmchan_service *s, uint32_t flags)
{
    shmchan__svc_rephdr h = {s->h_id, s->h_gen, flags};
    return h;
}

/* After a reply of this flags went out. */
static void
replied(shmchan_service *s, uint32_t flags)
{
    shmchan__fetch_add(&s->servers[s->slot].replied, 1, SHMCHAN__RELAXED);
    if ((flags & SHMCHAN_REPLY_MORE) == 0) {
        release_hold(s); /* after the commit: see layout.h */
    }
}

int
shmchan_service_reply(shmchan_service *s, const shmchan_request *req, const void *data,
                      size_t len, uint32_t flags, int64_t timeout_ms)
{
    if ((data == NULL && len != 0) || (flags & ~(SHMCHAN_REPLY_MORE | SHMCHAN_REPLY_ERROR))) {
        return SHMCHAN_EINVAL;
    }
    int rc = may_reply(s, req, len);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    shmchan__svc_rephdr h = reply_header(s, flags);
    uint64_t total = SHMCHAN__SVC_HDR + len;
    uint32_t c = s->h_client;
    shmchan__rclaim cl;
    if (total <= INLINE_MAX) {
        uint8_t rec[INLINE_MAX];
        memcpy(rec, &h, sizeof(h));
        if (len != 0) {
            memcpy(rec + sizeof(h), data, len);
        }
        rc = reply_claim(s, total, rec, timeout_ms, &cl);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        shmchan__ring_committed(&s->rviews[c], &s->rwr[c], total, true);
    } else {
        rc = reply_claim(s, total, NULL, timeout_ms, &cl);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        uint8_t *p = shmchan__qpayload(shmchan__qrec_at(&s->rviews[c], cl.pos));
        memcpy(p, &h, sizeof(h));
        memcpy(p + sizeof(h), data, len);
        shmchan__ring_publish(&s->rviews[c], &s->rwr[c], &cl, total, true);
    }
    replied(s, flags);
    return SHMCHAN_OK;
}

int
shmchan_service_reply_reserve(shmchan_service *s, const shmchan_request *req, size_t len,
                              int64_t timeout_ms, void **buf_out)
{
    if (buf_out == NULL) {
        return SHMCHAN_EINVAL;
    }
    *buf_out = NULL;
    int rc = may_reply(s, req, len);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    shmchan__rclaim cl;
    rc = reply_claim(s, SHMCHAN__SVC_HDR + len, NULL, timeout_ms, &cl);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    s->rreserved = true;
    s->rresv = cl;
    *buf_out = shmchan__qpayload(shmchan__qrec_at(&s->rviews[s->h_client], cl.pos)) +
               SHMCHAN__SVC_HDR;
    return SHMCHAN_OK;
}

int
shmchan_service_reply_commit(shmchan_service *s, size_t len, uint32_t flags)
{
    if (flags & ~(SHMCHAN_REPLY_MORE | SHMCHAN_REPLY_ERROR)) {
        return SHMCHAN_EINVAL;
    }
    int rc = shmchan__svc_check(s, true);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (!s->rreserved) {
        return SHMCHAN_ESTATE;
    }
    if (SHMCHAN__SVC_HDR + (uint64_t)len > s->rresv.len) {
        return SHMCHAN_EMSGSIZE;
    }
    uint32_t c = s->h_client;
    shmchan__svc_rephdr h = reply_header(s, flags);
    memcpy(shmchan__qpayload(shmchan__qrec_at(&s->rviews[c], s->rresv.pos)), &h, sizeof(h));
    s->rreserved = false;
    shmchan__ring_publish(&s->rviews[c], &s->rwr[c], &s->rresv, SHMCHAN__SVC_HDR + len, true);
    replied(s, flags);
    return SHMCHAN_OK;
}
