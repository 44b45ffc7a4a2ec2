/*
 * Queues: the readiness handle of a subscriber or worker (notify.h,
 * docs/event-loops.md). Writers fire it from shmchan__qwake_readers().
 */
#include "queue_int.h"

static bool
queue_has_news(void *arg)
{
    shmchan_queue *q = arg;
    return shmchan__ring_has_news(&q->v, &q->rd);
}

static void
queue_arm_now(shmchan_queue *q)
{
    shmchan__nfsleep sl = {q->v.asym, &q->v.ctl->fenced, &q->rd.fenced_in};
    shmchan__notifier_arm(&q->v.nf, q->nf, &sl, queue_has_news, q);
}

static int
notify_check(shmchan_queue *q)
{
    if (shmchan__region_forked(&q->r)) {
        return SHMCHAN_EFORKED;
    }
    return q->rd.role == 0 ? SHMCHAN_EKIND : q->viewing ? SHMCHAN_ESTATE : SHMCHAN_OK;
}

int
shmchan_queue_notify(shmchan_queue *q, shmchan_os_handle *h_out)
{
    if (q == NULL || h_out == NULL) {
        return SHMCHAN_EINVAL;
    }
    int rc = notify_check(q);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (q->nf == NULL) {
        rc = shmchan__notifier_open(&q->v.nf, &q->nf);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        queue_arm_now(q);
    }
    *h_out = (shmchan_os_handle)shmchan__nf_handle(q->nf->os);
    return SHMCHAN_OK;
}

int
shmchan_queue_arm(shmchan_queue *q)
{
    if (q == NULL) {
        return SHMCHAN_EINVAL;
    }
    int rc = notify_check(q);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (q->nf == NULL) {
        return SHMCHAN_ESTATE;
    }
    queue_arm_now(q);
    return SHMCHAN_OK;
}
