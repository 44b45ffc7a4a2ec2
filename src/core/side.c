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

/* Taken over from a channel of the same name that is gone: reset, then name
 * the channel (before it turns ready: its READY store releases this). */
static void
side_reset(side_layout *l, uint64_t chan_id)
{
    shmchan__store(&l->armed_n, 0, SHMCHAN__RELAXED);
    shmchan__store(&l->used, 0, SHMCHAN__RELAXED);
    for (uint32_t i = 0; i < SHMCHAN__NOTIFY_SLOTS; i++) {
        shmchan__store(&l->slots[i], 0, SHMCHAN__RELAXED);
    }
    shmchan__store(&l->version, SIDE_VERSION, SHMCHAN__RELAXED);
    shmchan__store(&l->chan_id, chan_id, SHMCHAN__RELAXED);
    shmchan__store(&l->magic, SIDE_MAGIC, SHMCHAN__RELEASE);
}

/*
 * Where side objects live only while attached (platform.h: Windows), every
 * opener attaches; a new object is zero-filled and the first opener names
 * it with a CAS of the channel id from 0, so concurrent first openers agree
 * without a lock, and nobody waits for another to finish initialising it.
 * One with another channel's id (forged, or the creator's reset of a stale
 * one racing with us) leaves this handle without (it polls). Returns false
 * where side objects are opened by name instead.
 */
static bool
side_attach(uint64_t chan_id, shmchan__shm *chan, shmchan__side *out)
{
    shmchan__shm *s = NULL;
    void *p = NULL;
    int rc = shmchan__side_attach(chan, sizeof(side_layout), &s, &p);
    if (rc == SHMCHAN_ENOTSUP) {
        return false;
    }
    if (rc != SHMCHAN_OK) {
        return true; /* none: read-only readers poll */
    }
    side_layout *l = p;
    uint64_t id = 0;
    if (chan_id != 0 && shmchan__cas(&l->chan_id, &id, chan_id)) {
        shmchan__store(&l->version, SIDE_VERSION, SHMCHAN__RELAXED);
        shmchan__store(&l->magic, SIDE_MAGIC, SHMCHAN__RELEASE);
        id = chan_id;
    }
    if (chan_id == 0 || id != chan_id) {
        shmchan__shm_close(s);
        return true;
    }
    out->shm = s;
    view(out, l, chan_id);
    return true;
}

void
shmchan__side_create(const char *name, uint32_t flags, uint32_t chan_mode, uint64_t chan_id,
                     shmchan__shm *chan)
{
    char sn[4096];
    if (!shmchan__side_supported() || name == NULL || !side_name(name, sn, sizeof(sn))) {
        return;
    }
    shmchan__shm *s = NULL;
    void *p = NULL;
    int rc = shmchan__side_attach(chan, sizeof(side_layout), &s, &p);
    if (rc != SHMCHAN_ENOTSUP) {
        /* Attached platforms: one still held by a former channel's users is
         * reset for this one; a new one goes with our close, and openers
         * make it again (side_attach). */
        if (rc == SHMCHAN_OK) {
            side_reset(p, chan_id);
            shmchan__shm_close(s);
        }
        return;
    }
    uint32_t mode = (chan_mode == 0 ? 0600u : chan_mode) & 0777u;
    mode |= (mode & 0444u) >> 1; /* whoever may read may arm */
    bool created = false;
    uint32_t f = (flags & (SHMCHAN_FILE | SHMCHAN_GLOBAL)) | SHMCHAN_CREATE;
    if (shmchan__shm_open(sn, f, mode, &s, &created) != SHMCHAN_OK) {
        return;
    }
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
    side_reset(p, chan_id);
    shmchan__shm_close(s);
}

void
shmchan__side_open(const char *name, uint32_t flags, uint64_t chan_id, shmchan__shm *chan,
                   shmchan__side *out)
{
    side_empty(out, chan_id);
    char sn[4096];
    if (!shmchan__side_supported() || name == NULL || !side_name(name, sn, sizeof(sn)) ||
        side_attach(chan_id, chan, out)) {
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

/* ------------------------------------------------ collecting orphans */

/* The channel id a side object names (0: not a side object's header). */
static int
side_read_id(const char *sn, uint32_t flags, uint64_t *id_out)
{
    shmchan__shm *s = NULL;
    bool created = false;
    uint64_t size = 0;
    void *p = NULL;
    *id_out = 0;
    int rc = shmchan__shm_open(sn, flags | SHMCHAN_RDONLY, 0, &s, &created);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    rc = shmchan__shm_size(s, &size);
    if (rc == SHMCHAN_OK && size >= sizeof(side_layout)) {
        rc = shmchan__shm_map(s, sizeof(side_layout), &p);
    }
    if (rc == SHMCHAN_OK && p != NULL) {
        const side_layout *l = p;
        if (shmchan__load(&l->magic, SHMCHAN__ACQUIRE) == SIDE_MAGIC) {
            *id_out = shmchan__load(&l->chan_id, SHMCHAN__RELAXED);
        }
    }
    shmchan__shm_close(s);
    return rc;
}

/* Whether side objects are attached by each opener here (platform.h). */
static bool
sides_attached(void)
{
    shmchan__shm *s = NULL;
    void *p = NULL;
    return shmchan__side_attach(NULL, 0, &s, &p) != SHMCHAN_ENOTSUP;
}

/*
 * An orphan is a side object whose channel is gone or is another channel
 * now. A creator racing with us takes an existing side object over (it
 * resets its channel id) under the channel's init lock, which we cannot
 * hold for a channel that does not exist: so the id is read again just
 * before the unlink, and a change means "taken over" (EBUSY). What remains
 * is a window of one unlink; losing it costs that channel's read-only
 * readers their side object (they poll, as for a channel of an older
 * version), never a channel.
 */
int
shmchan_reap_side(const char *name, uint32_t flags, bool dry_run, int *removed_out)
{
    if (removed_out != NULL) {
        *removed_out = 0;
    }
    flags &= SHMCHAN_FILE | SHMCHAN_GLOBAL;
    if (name == NULL) {
        return SHMCHAN_EINVAL;
    }
    if (!(flags & SHMCHAN_FILE) && shmchan_name_check(name) != SHMCHAN_OK) {
        return shmchan_name_check(name);
    }
    if (!shmchan__side_supported() || sides_attached()) {
        return SHMCHAN_ENOTSUP;
    }
    char sn[4096];
    if (!side_name(name, sn, sizeof(sn))) {
        return SHMCHAN_ENAME;
    }
    uint64_t id = 0;
    int rc = side_read_id(sn, flags, &id);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (id == 0) {
        return SHMCHAN_EBADMAGIC; /* somebody's bytes, not a side object: left alone */
    }
    shmchan__region r;
    rc = shmchan__region_inspect(name, flags, false, &r);
    if (rc == SHMCHAN_OK) {
        bool current = r.chan_id == id && r.geom.kind == SHMCHAN_KIND_LATEST;
        shmchan__region_close(&r);
        if (current) {
            return SHMCHAN_OK; /* its channel's own */
        }
    } else if (rc != SHMCHAN_ENOENT) {
        return rc == SHMCHAN_EINIT ? SHMCHAN_EBUSY : rc; /* cannot tell: leave it */
    }
    if (!dry_run) {
        uint64_t again = 0;
        rc = side_read_id(sn, flags, &again);
        if (rc != SHMCHAN_OK || again != id) {
            return rc == SHMCHAN_ENOENT ? SHMCHAN_ENOENT : SHMCHAN_EBUSY;
        }
        rc = shmchan__shm_unlink(sn, flags);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
    }
    if (removed_out != NULL) {
        *removed_out = 1;
    }
    return SHMCHAN_OK;
}
