/*
 * Services: readiness handles (notify.h, docs/event-loops.md). A client's
 * notifier sits in its reply ring's table (servers fire it after a reply),
 * a server's in the request ring's (clients fire it after a request).
 */
#include "service_int.h"

static bool
svc_has_news(void *arg)
{
    shmchan_service *s = arg;
    return s->server ? shmchan__ring_has_news(&s->req, &s->wk)
                     : shmchan__ring_has_news(&s->reply, &s->rd);
}

static void
svc_arm_now(shmchan_service *s)
{
    const shmchan__ring *v = s->server ? &s->req : &s->reply;
    shmchan__ring_rd *rd = s->server ? &s->wk : &s->rd;
    shmchan__nfsleep sl = {v->asym, &v->ctl->fenced, &rd->fenced_in};
    shmchan__notifier_arm(&v->nf, s->nf, &sl, svc_has_news, s);
}

static int
notify_check(const shmchan_service *s)
{
    if (s == NULL) {
        return SHMCHAN_EINVAL;
    }
    return shmchan__region_forked(&s->r) ? SHMCHAN_EFORKED : SHMCHAN_OK;
}

int
shmchan_service_notify(shmchan_service *s, shmchan_os_handle *h_out)
{
    if (h_out == NULL) {
        return SHMCHAN_EINVAL;
    }
    int rc = notify_check(s);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (s->nf == NULL) {
        rc = shmchan__notifier_open(s->server ? &s->req.nf : &s->reply.nf, &s->nf);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        svc_arm_now(s);
    }
    *h_out = (shmchan_os_handle)shmchan__nf_handle(s->nf->os);
    return SHMCHAN_OK;
}

int
shmchan_service_arm(shmchan_service *s)
{
    int rc = notify_check(s);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (s->nf == NULL) {
        return SHMCHAN_ESTATE;
    }
    svc_arm_now(s);
    return SHMCHAN_OK;
}
