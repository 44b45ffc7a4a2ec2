/*
 * Queues, internal: the queue kind's handle, one ring (ring.h) in a region
 * of its own, and what queue.c, queue_send.c and queue_recv.c share. The
 * protocol is described in layout.h above struct shmchan__queue_ctl and in
 * docs/queue.md.
 */
#ifndef SHMCHAN_QUEUE_INT_H
#define SHMCHAN_QUEUE_INT_H

#include "ring.h"

/*
 * The handle. The reader and the writer cursor, which every receive or send
 * writes, each start a cache line of their own (the handle is allocated
 * cache-line aligned, see queue.c): what a send or receive touches in the
 * handle is then the same few lines wherever the allocator puts it.
 *
 * One thread may send while another receives (shmchan.h): the sending side
 * (send, reserve, commit, abort, send_batch) writes only wr, reserved and
 * resv; the receiving side (recv, recv_batch, peek, release, notify, arm)
 * only rd, viewing, view and nf; r and v are written at open and close only
 * (r.spin_now, which receives adapt, is atomic), so info, which reads only
 * them and shared memory, may run beside both. Each side's fields follow
 * its cursor, so the two threads do not share a line. What both sides touch
 * beyond that is shared memory, made for concurrent peers, and the platform
 * layer's per-mapping state (lock tables), which it guards itself.
 */
struct shmchan_queue {
    shmchan__region r;
    shmchan__ring v;
    void *alloc; /* what calloc returned (the handle is aligned within it) */
    /* The receiving side. */
    _Alignas(SHMCHAN__CACHE_LINE) shmchan__ring_rd rd; /* reader role, if any (rd.role != 0) */
    bool viewing; /* a view (peek) is open */
    shmchan__rfound view;
    shmchan__notifier *nf; /* readiness notifier, made on demand (queue_notify.c) */
    /* The sending side. */
    _Alignas(SHMCHAN__CACHE_LINE) shmchan__ring_wr wr; /* writer slot: at open or first send */
    bool reserved; /* a reservation is open */
    shmchan__rclaim resv;
};

/* The ring geometry of a queue region. */
static inline shmchan__ring_geom
shmchan__queue_ring_geom(const shmchan__geom *g)
{
    shmchan__ring_geom rg = {g->capacity, g->max_msg, g->max_readers, g->max_writers,
                             SHMCHAN__LOCK_SLOTS, g->policy == SHMCHAN_POLICY_OVERWRITE,
                             SHMCHAN__LOCK_SLOTS + g->max_readers};
    return rg;
}

/* Publish the open view as received (queue_recv.c). */
void shmchan__qrelease_view(shmchan_queue *q);

#endif /* SHMCHAN_QUEUE_INT_H */
