/*
 * Side wait objects for read-only readers (side.h has the layout and the
 * argument; docs/security.md the threat model).
 */
#include "side.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define SIDE_MAGIC UINT64_C(0x5449415743484d53) /* "SMHCWAIT" */
#define SIDE_VERSION 1u
#define SIDE_SUFFIX "..wait"

typedef struct side_layout {
    shmchan__atomic_u64 magic;
    shmchan__atomic_u64 chan_id;
    shmchan__atomic_u32 version;
    uint8_t pad0[SHMCHAN__CACHE_LINE - 20];
    shmchan__atomic_u32 armed_n;
    shmchan__atomic_u32 used;
    uint8_t pad1[SHMCHAN__CACHE_LINE - 8];
    shmchan__atomic_u32 slots[SHMCHAN__NOTIFY_SLOTS];
} side_layout;

_Static_assert(offsetof(side_layout, armed_n) == SHMCHAN__CACHE_LINE, "count on line 1");
_Static_assert(offsetof(side_layout, slots) == 2 * SHMCHAN__CACHE_LINE, "slots from line 2");

/* What writers look at when there is no side object: never armed. */
static shmchan__atomic_u32 none_armed;

static bool
side_name(const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s%s", name, SIDE_SUFFIX);
    return n > 0 && (size_t)n < cap;
}

static void
side_empty(shmchan__side *out, uint64_t chan_id)
{
    memset(out, 0, sizeof(*out));
    out->nfv.armed_n = &none_armed;
    out->nfv.chan_id = chan_id;
}

static void
view(shmchan__side *s, side_layout *l, uint64_t chan_id)
{
    s->nfv.armed_n = &l->armed_n;
    s->nfv.used = &l->used;
    s->nfv.slots = l->slots;
    s->nfv.chan_id = chan_id;
    s->nfv.name_base = SHMCHAN__NOTIFY_SLOTS;
}

void
shmchan__side_create(const char *name, uint32_t flags, uint32_t chan_mode, uint64_t chan_id,
                     shmchan__shm *chan)
{
    char sn[4096];
    if (!shmchan__side_supported() || name == NULL || !side_name(name, sn, sizeof(sn))) {
        return;
    }
    uint32_t mode = (chan_mode == 0 ? 0600u : chan_mode) & 0777u;
    mode |= (mode & 0444u) >> 1; /* whoever may read may arm */
    shmchan__shm *s = NULL;
    bool created = false;
    uint32_t f = (flags & (SHMCHAN_FILE | SHMCHAN_GLOBAL)) | SHMCHAN_CREATE;
    if (shmchan__shm_open(sn, f, mode, &s, &created) != SHMCHAN_OK) {
        return;
    }
    void *p = NULL;
    /* Not ours (another user planted it): leave it, readers then poll. */
    if (!shmchan__shm_same_owner(s, chan) || shmchan__shm_set_mode(s, mode) != SHMCHAN_OK ||
        shmchan__shm_reserve(s, sizeof(side_layout)) != SHMCHAN_OK ||
        shmchan__shm_map(s, sizeof(side_layout), &p) != SHMCHAN_OK) {
        int err = shmchan__oserror_get();
        if (created) {
            (void)shmchan__shm_unlink(sn, f); /* no space: leave no empty one */
        }
        shmchan__shm_close(s);
        shmchan__oserror_set(err);
        return;
    }
    side_layout *l = p;
    /* Taken over from a channel of the same name that is gone: reset. */
    shmchan__store(&l->armed_n, 0, SHMCHAN__RELAXED);
    shmchan__store(&l->used, 0, SHMCHAN__RELAXED);
    for (uint32_t i = 0; i < SHMCHAN__NOTIFY_SLOTS; i++) {
        shmchan__store(&l->slots[i], 0, SHMCHAN__RELAXED);
    }
    shmchan__store(&l->version, SIDE_VERSION, SHMCHAN__RELAXED);
    shmchan__store(&l->chan_id, chan_id, SHMCHAN__RELAXED);
    /* Before the channel turns ready (its READY store releases it). */
    shmchan__store(&l->magic, SIDE_MAGIC, SHMCHAN__RELEASE);
    shmchan__shm_close(s);
}

void
shmchan__side_open(const char *name, uint32_t flags, uint64_t chan_id, shmchan__shm *chan,
                   shmchan__side *out)
{
    side_empty(out, chan_id);
    char sn[4096];
    if (!shmchan__side_supported() || name == NULL || !side_name(name, sn, sizeof(sn))) {
        return;
    }
    shmchan__shm *s = NULL;
    bool created = false;
    uint64_t size = 0;
    void *p = NULL;
    if (shmchan__shm_open(sn, flags & (SHMCHAN_FILE | SHMCHAN_GLOBAL), 0600u, &s, &created) !=
        SHMCHAN_OK) {
        return; /* none (an older creator), or not ours to write: poll */
    }
    if (!shmchan__shm_same_owner(s, chan) || shmchan__shm_size(s, &size) != SHMCHAN_OK ||
        size < sizeof(side_layout) ||
        shmchan__shm_map(s, sizeof(side_layout), &p) != SHMCHAN_OK) {
        shmchan__shm_close(s);
        return;
    }
    side_layout *l = p;
    /* Read once: a forger can only make us ignore it (readers then poll). */
    uint64_t magic = shmchan__load(&l->magic, SHMCHAN__ACQUIRE);
    uint64_t id = shmchan__load(&l->chan_id, SHMCHAN__RELAXED);
    if (magic != SIDE_MAGIC || id != chan_id) {
        shmchan__shm_close(s);
        return;
    }
    if (!(flags & SHMCHAN_RDONLY)) {
        shmchan__shm_follow(s, chan);
    }
    out->shm = s;
    view(out, l, chan_id);
}

void
shmchan__side_close(shmchan__side *s)
{
    if (s->shm != NULL) {
        shmchan__shm_close(s->shm);
    }
    side_empty(s, s->nfv.chan_id);
}

void
shmchan__side_unlink(const char *name, uint32_t flags)
{
    char sn[4096];
    if (shmchan__side_supported() && name != NULL && side_name(name, sn, sizeof(sn))) {
        int err = shmchan__oserror_get(); /* the caller's error is the one to report */
        (void)shmchan__shm_unlink(sn, flags & (SHMCHAN_FILE | SHMCHAN_GLOBAL));
        shmchan__oserror_set(err);
    }
}
