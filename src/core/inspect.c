/*
 * Looking at channels from outside: info, peers, listing and reaping. These
 * open the region read-only without joining it, so they never count as a
 * user of the channel and never disturb one.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "side.h"

void
shmchan__info_fill(const shmchan__region *r, shmchan_info *info)
{
    uint32_t size = info->struct_size;
    memset(info, 0, sizeof(*info));
    info->struct_size = size;
    const shmchan__hdr *h = r->hdr;
    info->kind = r->geom.kind;
    info->policy = r->geom.policy;
    info->mode = shmchan__shm_mode(r->shm);
    info->max_msg = r->geom.max_msg;
    info->capacity = r->geom.capacity;
    info->region_size = r->size;
    info->max_readers = r->geom.max_readers;
    info->max_writers = r->geom.max_writers;
    info->creator_pid = h->creator_pid;
    info->created_unix_ns = h->created_unix_ns;
    info->layout_version = h->layout_version;
    info->recovered = shmchan__load(&h->recovered, SHMCHAN__RELAXED);
    info->in_use = shmchan__lock_probe(r->shm, SHMCHAN__LOCK_OPEN) == SHMCHAN_EBUSY;
    const shmchan__kind_ops *ops = shmchan__kind_find(r->geom.kind);
    if (ops != NULL && ops->info != NULL) {
        ops->info(r, info);
    }
}

int
shmchan_info_get(const char *name, uint32_t flags, shmchan_info *info)
{
    if (info == NULL || info->struct_size < sizeof(shmchan_info)) {
        return SHMCHAN_EINVAL;
    }
    shmchan__region r;
    int rc = shmchan__region_inspect(name, flags, false, &r);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (shmchan__kind_find(r.geom.kind) == NULL) {
        rc = SHMCHAN_EUNKNOWNKIND; /* not reached: inspection refuses it */
    } else {
        shmchan__info_fill(&r, info);
    }
    shmchan__region_close(&r);
    return rc;
}

int
shmchan_peers_get(const char *name, uint32_t flags, shmchan_peer *peers, size_t cap,
                  size_t *count_out)
{
    if (count_out == NULL || (peers == NULL && cap != 0)) {
        return SHMCHAN_EINVAL;
    }
    *count_out = 0;
    shmchan__region r;
    int rc = shmchan__region_inspect(name, flags, false, &r);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    const shmchan__kind_ops *ops = shmchan__kind_find(r.geom.kind);
    if (ops == NULL || ops->peers == NULL) {
        rc = ops == NULL ? SHMCHAN_EUNKNOWNKIND : SHMCHAN_EKIND;
    } else {
        rc = ops->peers(&r, peers, cap, count_out);
    }
    shmchan__region_close(&r);
    return rc;
}

struct shmchan_list {
    shmchan__dir *dir;
    bool sides; /* shmchan_list_sides_open: names of side objects */
};

static int list_open(shmchan_list **out, bool sides);

int
shmchan_list_open(shmchan_list **out)
{
    return list_open(out, false);
}

int
shmchan_list_sides_open(shmchan_list **out)
{
    return list_open(out, true);
}

static int
list_open(shmchan_list **out, bool sides)
{
    if (out == NULL) {
        return SHMCHAN_EINVAL;
    }
    *out = NULL;
    shmchan_list *it = calloc(1, sizeof(*it));
    if (it == NULL) {
        return SHMCHAN_ENOMEM;
    }
    it->sides = sides;
    int rc = shmchan__dir_open(&it->dir);
    if (rc != SHMCHAN_OK) {
        free(it);
        return rc;
    }
    *out = it;
    return SHMCHAN_OK;
}

int
shmchan_list_next(shmchan_list *it, const char **name_out)
{
    if (it == NULL || name_out == NULL) {
        return SHMCHAN_EINVAL;
    }
    return it->sides ? shmchan__dir_next_side(it->dir, name_out)
                     : shmchan__dir_next(it->dir, name_out);
}

void
shmchan_list_close(shmchan_list *it)
{
    if (it != NULL) {
        shmchan__dir_close(it->dir);
        free(it);
    }
}

/*
 * The reaper decides under lock INIT (region.c, step 5): a creator holds it
 * from before READY until it holds OPEN, and an opener that joined while we
 * held it checks afterwards that the name is still its object. Exclusive
 * where the object can be opened for writing, so that two reapers take turns
 * and the second finds the name gone; shared otherwise.
 */
static int
reap_locked(shmchan__region *r, const char *name, uint32_t flags, bool dry_run)
{
    bool excl = (r->flags & SHMCHAN_RDONLY) == 0;
    if (shmchan__lock_try(r->shm, SHMCHAN__LOCK_INIT, excl) != SHMCHAN_OK) {
        return SHMCHAN_EBUSY; /* being created, or a reaper is at it */
    }
    int rc = shmchan__lock_probe(r->shm, SHMCHAN__LOCK_OPEN);
    if (rc == SHMCHAN_OK) {
        rc = shmchan__shm_same(r->shm, name, flags); /* ENOENT: replaced meanwhile */
    }
    if (rc == SHMCHAN_OK && !dry_run) {
        rc = shmchan__shm_unlink(name, flags);
        if (rc == SHMCHAN_OK) {
            shmchan__side_unlink(name, flags);
        }
    }
    shmchan__lock_drop(r->shm, SHMCHAN__LOCK_INIT);
    return rc;
}

int
shmchan_reap(const char *name, uint32_t flags, bool dry_run, int *removed_out)
{
    if (removed_out != NULL) {
        *removed_out = 0;
    }
    shmchan__region r;
    int rc = shmchan__region_inspect(name, flags, !dry_run, &r);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    rc = reap_locked(&r, name, r.flags & (SHMCHAN_FILE | SHMCHAN_GLOBAL), dry_run);
    shmchan__region_close(&r);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (removed_out != NULL) {
        *removed_out = 1;
    }
    return SHMCHAN_OK;
}
