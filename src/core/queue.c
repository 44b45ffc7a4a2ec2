/*
 * Queues: the queue kind (a region holding one ring, ring.h): geometry, the
 * kind's hooks, opening and closing handles. Sending is in queue_send.c,
 * receiving in queue_recv.c; the ring itself in ring*.c; the protocol is in
 * layout.h and docs/queue.md.
 */
#include <stdlib.h>

#include "queue_int.h"

/* ------------------------------------------------------- kind operations */

static bool
slots_ok(uint64_t n)
{
    return n >= 1 && n <= SHMCHAN__QUEUE_MAX_SLOTS;
}

static int
queue_plan(const shmchan_opts *o, shmchan__geom *g)
{
    g->max_msg = o->max_msg != 0 ? o->max_msg : SHMCHAN__DEFAULT_MAX_MSG;
    g->policy = o->policy != SHMCHAN_POLICY_ANY ? o->policy : SHMCHAN_POLICY_BLOCK;
    g->max_readers = o->max_readers != 0 ? o->max_readers : SHMCHAN__QUEUE_DEFAULT_SLOTS;
    g->max_writers = o->max_writers != 0 ? o->max_writers : SHMCHAN__QUEUE_DEFAULT_SLOTS;
    if (g->max_msg > SHMCHAN__QUEUE_MAX_MSG || !slots_ok(g->max_readers) ||
        !slots_ok(g->max_writers) ||
        (g->policy != SHMCHAN_POLICY_BLOCK && g->policy != SHMCHAN_POLICY_OVERWRITE) ||
        o->capacity > SHMCHAN__QUEUE_MAX_CAPACITY) {
        return SHMCHAN_EINVAL;
    }
    uint64_t need = shmchan__pow2_up(shmchan__ring_min_capacity(g->max_msg));
    if (o->capacity != 0) {
        g->capacity = shmchan__pow2_up(o->capacity);
        if (g->capacity < need) {
            return SHMCHAN_EINVAL; /* cannot hold two messages of max_msg bytes */
        }
    } else {
        g->capacity = need > SHMCHAN__QUEUE_DEFAULT_CAPACITY ? need
                                                             : SHMCHAN__QUEUE_DEFAULT_CAPACITY;
    }
    g->nbuf = 0;
    g->ctl_size = sizeof(shmchan__queue_ctl);
    g->data_size = shmchan__qtables_size(g->max_readers, g->max_writers) + g->capacity;
    return SHMCHAN_OK;
}

static int
queue_match(const shmchan_opts *o, const shmchan__geom *g)
{
    bool sane = g->max_msg <= SHMCHAN__QUEUE_MAX_MSG && slots_ok(g->max_readers) &&
                slots_ok(g->max_writers) && g->nbuf == 0 &&
                (g->policy == SHMCHAN_POLICY_BLOCK || g->policy == SHMCHAN_POLICY_OVERWRITE) &&
                g->capacity <= SHMCHAN__QUEUE_MAX_CAPACITY &&
                g->capacity == shmchan__pow2_up(g->capacity) &&
                g->capacity >= shmchan__ring_min_capacity(g->max_msg) &&
                g->ctl_size == sizeof(shmchan__queue_ctl) &&
                g->data_size ==
                    shmchan__qtables_size(g->max_readers, g->max_writers) + g->capacity;
    if (!sane) {
        return SHMCHAN_ECORRUPT;
    }
    return shmchan__ring_opts_match(g, o);
}

static shmchan__hdr *
hdr_of(uint8_t *ctl)
{
    return (shmchan__hdr *)(ctl - SHMCHAN__HDR_SIZE); /* ctl_off is always HDR_SIZE */
}

/* A view of the region's ring for the kind hooks (no handle: never waits). */
static void
hook_view(shmchan__ring *v, shmchan__shm *shm, uint8_t *ctl, uint8_t *data,
          const shmchan__geom *g)
{
    shmchan__ring_geom rg = shmchan__queue_ring_geom(g);
    shmchan__ring_view(v, NULL, shm, hdr_of(ctl), ctl, data, &rg);
}

/*
 * Nobody else is attached: complete a claim a dead process left half-done,
 * free every slot and lock, forget sleepers. The messages in the ring stay:
 * a file-backed queue replays them to a SHMCHAN_OLDEST subscriber.
 */
static void
queue_reset(shmchan__shm *shm, uint8_t *ctl, uint8_t *data, const shmchan__geom *g)
{
    shmchan__ring v;
    hook_view(&v, shm, ctl, data, g);
    shmchan__ring_reset(&v);
}

static void
queue_init(shmchan__shm *shm, uint8_t *ctl, uint8_t *data, const shmchan__geom *g)
{
    shmchan__ring v;
    hook_view(&v, shm, ctl, data, g);
    shmchan__ring_format(&v);
}

static void
queue_info(const shmchan__region *r, shmchan_info *info)
{
    shmchan__ring v;
    hook_view(&v, r->shm, r->ctl, r->data, &r->geom);
    shmchan__ring_info(&v, info);
}

static int
queue_peers(const shmchan__region *r, shmchan_peer *peers, size_t cap, size_t *count_out)
{
    shmchan__ring v;
    hook_view(&v, r->shm, r->ctl, r->data, &r->geom);
    *count_out = 0;
    shmchan__ring_peers(&v, peers, cap, count_out);
    return SHMCHAN_OK;
}

const shmchan__kind_ops shmchan__queue_ops = {
    .kind = SHMCHAN_KIND_QUEUE,
    .name = "queue",
    .plan = queue_plan,
    .match = queue_match,
    .init = queue_init,
    .reset = queue_reset,
    .info = queue_info,
    .peers = queue_peers,
};

/* ------------------------------------------------------------ lifecycle */

static int
check_flags(uint32_t flags)
{
    bool sub = (flags & SHMCHAN_SUBSCRIBE) != 0, work = (flags & SHMCHAN_WORKER) != 0;
    if ((sub && work) || ((flags & (SHMCHAN_OLDEST | SHMCHAN_NOCONSUME)) && !sub) ||
        (flags & (SHMCHAN_SERVER | SHMCHAN_RESEND)) ||
        ((flags & SHMCHAN_RDONLY) && (sub || work))) {
        return SHMCHAN_EINVAL;
    }
    return SHMCHAN_OK;
}

/* A zeroed handle, cache-line aligned (see queue_int.h). */
static shmchan_queue *
handle_alloc(void)
{
    void *p = calloc(1, sizeof(shmchan_queue) + SHMCHAN__CACHE_LINE - 1);
    if (p == NULL) {
        return NULL;
    }
    uintptr_t at = ((uintptr_t)p + SHMCHAN__CACHE_LINE - 1) & ~(uintptr_t)(SHMCHAN__CACHE_LINE - 1);
    shmchan_queue *q = (shmchan_queue *)at;
    q->alloc = p;
    return q;
}

int
shmchan_queue_open(const char *name, const shmchan_opts *opts, shmchan_queue **out)
{
    if (out == NULL) {
        return SHMCHAN_EINVAL;
    }
    *out = NULL;
    shmchan_opts o;
    int rc = shmchan__opts_copy(opts, &o);
    if (rc == SHMCHAN_OK) {
        rc = check_flags(o.flags);
    }
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    shmchan_queue *q = handle_alloc();
    if (q == NULL) {
        return SHMCHAN_ENOMEM;
    }
    rc = shmchan__region_open(name, &o, &shmchan__queue_ops, &q->r);
    if (rc != SHMCHAN_OK) {
        free(q->alloc);
        return rc;
    }
    shmchan__ring_geom rg = shmchan__queue_ring_geom(&q->r.geom);
    shmchan__ring_view(&q->v, &q->r, q->r.shm, q->r.hdr, q->r.ctl, q->r.data, &rg);
    q->rd.stuck_pos = SHMCHAN__QPOS_NONE;
    if (o.flags & SHMCHAN_SUBSCRIBE) {
        rc = shmchan__ring_join(&q->v, &q->rd, SHMCHAN_PEER_SUBSCRIBER,
                                (o.flags & SHMCHAN_OLDEST) != 0,
                                (o.flags & SHMCHAN_NOCONSUME) == 0);
    } else if (o.flags & SHMCHAN_WORKER) {
        rc = shmchan__ring_join(&q->v, &q->rd, SHMCHAN_PEER_WORKER, false, true);
    } else if (!(o.flags & SHMCHAN_RDONLY)) {
        /* Readers take theirs at their first send. */
        rc = shmchan__ring_take_writer(&q->v, &q->wr);
    }
    if (rc != SHMCHAN_OK) {
        shmchan_queue_close(q);
        return rc;
    }
    *out = q;
    return SHMCHAN_OK;
}

void
shmchan_queue_close(shmchan_queue *q)
{
    if (q == NULL) {
        return;
    }
    if (shmchan__region_foreign(&q->r)) {
        /* Inherited across fork: the slots and counts are the opener's. */
        shmchan__notifier_close(NULL, q->nf);
        shmchan__region_close(&q->r);
        free(q->alloc);
        return;
    }
    if (q->reserved) {
        (void)shmchan_queue_abort(q);
    }
    if (q->viewing) {
        shmchan__qrelease_view(q);
    }
    shmchan__notifier_close(&q->v.nf, q->nf); /* disarmed while the slot is ours */
    shmchan__ring_leave(&q->v, &q->rd);
    shmchan__ring_leave_writer(&q->v, &q->wr);
    shmchan__region_close(&q->r); /* drops the slot locks last */
    free(q->alloc);
}

size_t
shmchan_queue_max_msg(const shmchan_queue *q)
{
    return q == NULL ? 0 : (size_t)q->v.max_msg;
}

int
shmchan_queue_info(shmchan_queue *q, shmchan_info *info)
{
    if (q == NULL || info == NULL || info->struct_size < sizeof(shmchan_info)) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&q->r)) {
        return SHMCHAN_EFORKED;
    }
    if (shmchan__region_broken(&q->r)) {
        return SHMCHAN_ETRUNCATED;
    }
    shmchan__info_fill(&q->r, info);
    return SHMCHAN_OK;
}
