/* Queues: placeholder until the queue module lands. */
#include "internal.h"

static int
queue_plan(const shmchan_opts *o, shmchan__geom *g)
{
    (void)o;
    (void)g;
    return SHMCHAN_ENOTSUP;
}

static int
queue_match(const shmchan_opts *o, const shmchan__geom *g)
{
    (void)o;
    (void)g;
    return SHMCHAN_ENOTSUP;
}

static void
queue_nop(shmchan__shm *shm, uint8_t *ctl, uint8_t *data, const shmchan__geom *g)
{
    (void)shm;
    (void)ctl;
    (void)data;
    (void)g;
}

const shmchan__kind_ops shmchan__queue_ops = {
    SHMCHAN_KIND_QUEUE, queue_plan, queue_match, queue_nop, queue_nop, NULL, NULL,
};

int
shmchan_queue_open(const char *name, const shmchan_opts *opts, shmchan_queue **out)
{
    shmchan_opts o;
    shmchan__opts_copy(opts, &o);
    *out = NULL;
    shmchan__region r;
    int rc = shmchan__region_open(name, &o, &shmchan__queue_ops, &r);
    if (rc == SHMCHAN_OK) {
        shmchan__region_close(&r);
        rc = SHMCHAN_ENOTSUP;
    }
    return rc;
}
