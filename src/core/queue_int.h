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
 */
struct shmchan_queue {
    shmchan__region r;
    shmchan__ring v;
    _Alignas(SHMCHAN__CACHE_LINE) shmchan__ring_rd rd; /* reader role, if any (rd.role != 0) */
    _Alignas(SHMCHAN__CACHE_LINE) shmchan__ring_wr wr; /* writer slot: at open or first send */
    /* The open reservation. */
    bool reserved;
    shmchan__rclaim resv;
    /* The open view (peek). */
    bool viewing;
    shmchan__rfound view;
    void *alloc; /* what calloc returned (the handle is aligned within it) */
    shmchan__notifier *nf; /* readiness notifier, made on demand (queue_notify.c) */
};

/* The ring geometry of a queue region. */
static inline shmchan__ring_geom
shmchan__queue_ring_geom(const shmchan__geom *g)
{
    shmchan__ring_geom rg = {g->capacity, g->max_msg, g->max_readers, g->max_writers,
                             SHMCHAN__LOCK_SLOTS, g->policy == SHMCHAN_POLICY_OVERWRITE};
    return rg;
}

/* Publish the open view as received (queue_recv.c). */
void shmchan__qrelease_view(shmchan_queue *q);

#endif /* SHMCHAN_QUEUE_INT_H */
