/*
 * Named regions: creation, validation and attachment, shared by every kind.
 *
 * Creation protocol (docs/design.md, "Race-free creation", has the argument):
 *   1. Open the backing object, creating it exclusively when asked.
 *   2. Whoever holds SHMCHAN__LOCK_INIT exclusively and finds the header not
 *      READY initialises it: reserve storage, map, fill header and control,
 *      then state = READY (release). Only a caller that asked to create may
 *      initialise, and only an empty object or one a dead creator left with
 *      our magic: a foreign file is never overwritten.
 *   3. Others wait (bounded) for READY, then validate the header completely
 *      before mapping the size it claims.
 *   4. Every handle holds SHMCHAN__LOCK_OPEN shared; one that can take it
 *      exclusively is alone and resets process-bound state first.
 *   5. A builder keeps LOCK_INIT from before READY until it holds LOCK_OPEN,
 *      and a reaper decides under LOCK_INIT (inspect.c), so it never sees a
 *      channel between READY and its creator's join. Every opener then waits
 *      until no reaper holds LOCK_INIT and checks that the name still refers
 *      to its object; if a reaper removed it just before the join, the open
 *      starts again (and a create creates it anew).
 *   6. Only the process that created the name removes it after a failure,
 *      and only while it holds LOCK_INIT and the name is still its object.
 *   7. Nobody builds into an object that is not its own (created by this
 *      open, or owned by its effective user): a squatter's empty object or
 *      a symlinked file is refused with SHMCHAN_EUNSAFE (docs/security.md).
 */
#include <string.h>

#include "internal.h"
#include "side.h"

#define INIT_WAIT_NS (2000 * 1000 * 1000ull) /* how long a creator may take */
#define EMPTY_GRACE_NS (50 * 1000 * 1000ull) /* an empty object may be brand new */
#define POLL_NS (200 * 1000ull)
#define UNLINK_TRIES 16 /* an unlink that keeps finding the name replaced */
/* No size in a header may exceed this: offsets computed from validated sizes
 * then stay far from 64-bit overflow, whatever a forged header says. */
#define SIZE_LIMIT (UINT64_C(1) << 48)

void
shmchan_opts_init(shmchan_opts *opts)
{
    if (opts != NULL) {
        memset(opts, 0, sizeof(*opts));
        opts->struct_size = (uint32_t)sizeof(*opts);
    }
}

int
shmchan__opts_copy(const shmchan_opts *in, shmchan_opts *out)
{
    shmchan__detail_clear();
    shmchan_opts_init(out);
    if (in != NULL) {
        size_t n = in->struct_size;
        if (n == 0 || n > sizeof(*out)) {
            n = sizeof(*out);
        }
        memcpy(out, in, n);
        out->struct_size = (uint32_t)sizeof(*out);
    }
    if ((out->flags & ~(uint32_t)SHMCHAN_FLAGS_KNOWN) != 0) {
        return SHMCHAN_EINVAL;
    }
    for (size_t i = 0; i < sizeof(out->reserved) / sizeof(out->reserved[0]); i++) {
        if (out->reserved[i] != 0) {
            return SHMCHAN_EINVAL;
        }
    }
    return SHMCHAN_OK;
}

int
shmchan_name_check(const char *name)
{
    if (name == NULL || name[0] == '\0' || name[0] == '.') {
        return SHMCHAN_ENAME;
    }
    size_t n = 0;
    for (const char *p = name; *p != '\0'; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok || n >= SHMCHAN_NAME_MAX || (c == '.' && p[1] == '.')) {
            return SHMCHAN_ENAME;
        }
    }
    return SHMCHAN_OK;
}

uint32_t
shmchan__fnv1a(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 16777619u;
    }
    return h;
}

/* The layout version folded with the ABI facts two peers must share. */
static uint32_t
layout_signature(void)
{
    uint32_t facts[] = {SHMCHAN__LAYOUT_VERSION,      (uint32_t)sizeof(void *),
                        (uint32_t)sizeof(shmchan__hdr), (uint32_t)sizeof(shmchan__atomic_u64),
                        (uint32_t)_Alignof(shmchan__atomic_u64), SHMCHAN__CACHE_LINE};
    return shmchan__fnv1a(facts, sizeof(facts));
}

/* FNV-1a of every byte above the checksum. The channel id lies below it (the
 * offsets above are pinned) and is not covered: an opener takes whatever id it
 * finds once, and a forged one only makes its writers signal notifiers of
 * another shmchan id with empty datagrams (notify.h), which a peer with write
 * access could cause anyway by arming slots. */
static uint32_t
header_checksum(const shmchan__hdr *h)
{
    return shmchan__fnv1a(h, offsetof(shmchan__hdr, checksum));
}

static uint64_t
round_up(uint64_t v, uint64_t to)
{
    return (v + to - 1) / to * to;
}

static void
place(const shmchan__geom *g, uint64_t *ctl_off, uint64_t *data_off, uint64_t *size)
{
    *ctl_off = SHMCHAN__HDR_SIZE;
    *data_off = round_up(*ctl_off + g->ctl_size, SHMCHAN__PAGE);
    *size = *data_off + round_up(g->data_size, SHMCHAN__PAGE);
}

static void
header_fill(shmchan__hdr *h, const shmchan__geom *g)
{
    memset(h, 0, sizeof(*h));
    h->magic = SHMCHAN__MAGIC;
    h->layout_version = SHMCHAN__LAYOUT_VERSION;
    h->signature = layout_signature();
    h->kind = g->kind;
    h->policy = g->policy;
    h->hdr_size = SHMCHAN__HDR_SIZE;
    h->nbuf = g->nbuf;
    h->max_readers = g->max_readers;
    h->max_writers = g->max_writers;
    h->max_msg = g->max_msg;
    h->capacity = g->capacity;
    place(g, &h->ctl_off, &h->data_off, &h->region_size);
    h->ctl_size = g->ctl_size;
    h->data_size = g->data_size;
    h->created_unix_ns = shmchan__realtime_ns();
    h->creator_pid = shmchan__pid();
    h->chan_id = shmchan__random_u64();
    h->checksum = header_checksum(h);
}

/* Map size bytes and point the region's parts at them. */
static int
map_parts(shmchan__region *r, uint64_t size)
{
    void *base = NULL;
    int rc = shmchan__shm_map(r->shm, size, &base);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    r->base = base;
    r->size = size;
    r->hdr = base;
    return SHMCHAN_OK;
}

static void
point_parts(shmchan__region *r)
{
    uint64_t ctl_off, data_off, size;
    place(&r->geom, &ctl_off, &data_off, &size);
    r->ctl = r->base + ctl_off;
    r->data = r->base + data_off;
}

/* Build a new region in an object we hold SHMCHAN__LOCK_INIT on. */
static int
initialise(shmchan__region *r, const shmchan_opts *opts, const shmchan__kind_ops *ops)
{
    shmchan__geom g;
    memset(&g, 0, sizeof(g));
    g.kind = ops->kind;
    int rc = ops->plan(opts, &g);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    shmchan__hdr proto;
    header_fill(&proto, &g);
    rc = shmchan__shm_reserve(r->shm, proto.region_size);
    if (rc == SHMCHAN_OK) {
        rc = map_parts(r, proto.region_size);
    }
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    memcpy(r->hdr, &proto, offsetof(shmchan__hdr, state));
    r->hdr->chan_id = proto.chan_id;
    r->chan_id = proto.chan_id;
    r->geom = g;
    point_parts(r);
    ops->init(r->shm, r->ctl, r->data, &g);
    /* Before READY: whoever sees the channel ready finds its side object.
     * Only latest-value channels have read-only readers that wait. */
    if (g.kind == SHMCHAN_KIND_LATEST) {
        shmchan__side_create(r->name, r->flags, opts->mode, r->chan_id, r->shm);
    }
    shmchan__store(&r->hdr->state, SHMCHAN__STATE_READY, SHMCHAN__RELEASE);
    return SHMCHAN_OK;
}

/*
 * Validate the header and derive the geometry. It works on a private copy of
 * the immutable part, so that a writer changing the shared header meanwhile
 * cannot get one value past the checks and another into the geometry.
 */
static int
check_header(const shmchan__hdr *shared, uint64_t actual_size, shmchan__geom *g,
             uint64_t *size_out, uint64_t *chan_id_out)
{
    shmchan__hdr copy;
    memcpy(&copy, shared, offsetof(shmchan__hdr, state));
    copy.chan_id = shared->chan_id;
    const shmchan__hdr *h = &copy;
    if (h->magic != SHMCHAN__MAGIC) {
        return SHMCHAN_EBADMAGIC;
    }
    if (h->layout_version != SHMCHAN__LAYOUT_VERSION || h->signature != layout_signature()) {
        return SHMCHAN_ELAYOUT;
    }
    if (h->checksum != header_checksum(h)) {
        return SHMCHAN_ECORRUPT;
    }
    if (h->max_msg > SIZE_LIMIT || h->capacity > SIZE_LIMIT || h->ctl_size > SIZE_LIMIT ||
        h->data_size > SIZE_LIMIT) {
        return SHMCHAN_ECORRUPT;
    }
    shmchan__geom got = {h->kind,     h->policy,   h->nbuf,     h->max_readers, h->max_writers,
                         h->max_msg,  h->capacity, h->ctl_size, h->data_size};
    uint64_t ctl_off, data_off, size;
    place(&got, &ctl_off, &data_off, &size);
    if (h->hdr_size != SHMCHAN__HDR_SIZE || h->ctl_off != ctl_off || h->data_off != data_off ||
        h->region_size != size || size < data_off) {
        return SHMCHAN_ECORRUPT;
    }
    if (actual_size < size) {
        return SHMCHAN_ETRUNCATED;
    }
    *g = got;
    *size_out = size;
    *chan_id_out = h->chan_id;
    return SHMCHAN_OK;
}

/*
 * Whether a named shm object that is not READY was left by a creator that
 * died after sizing it and before writing the header: it is all zeros there.
 * Every shm object under our prefix is ours, so this is safe to rebuild; a
 * file is not (it might be somebody's data), so files keep the magic rule.
 */
static bool
dead_creator_zeros(const shmchan__region *r, uint64_t size)
{
    return (r->flags & SHMCHAN_FILE) == 0 && size >= SHMCHAN__HDR_SIZE && r->hdr != NULL &&
           r->hdr->magic == 0;
}

/*
 * What an object that is not READY means once nobody is building it: EAGAIN
 * to look again (it turned READY meanwhile, or it is empty and may be brand
 * new: its creator takes lock INIT only after creating it), else the error.
 */
static int
classify_unready(shmchan__region *r, uint64_t waited)
{
    uint64_t size = 0;
    int rc = shmchan__shm_size(r->shm, &size);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (size == 0) {
        return waited > EMPTY_GRACE_NS ? SHMCHAN_EBADMAGIC : SHMCHAN_EAGAIN;
    }
    rc = map_parts(r, size < SHMCHAN__HDR_SIZE ? size : SHMCHAN__HDR_SIZE);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (size >= SHMCHAN__HDR_SIZE &&
        shmchan__load(&r->hdr->state, SHMCHAN__ACQUIRE) == SHMCHAN__STATE_READY) {
        return SHMCHAN_EAGAIN;
    }
    if (dead_creator_zeros(r, size)) {
        return SHMCHAN_EINIT;
    }
    if (size < sizeof(uint64_t) || r->hdr->magic != SHMCHAN__MAGIC) {
        return SHMCHAN_EBADMAGIC;
    }
    return size < SHMCHAN__HDR_SIZE ? SHMCHAN_ETRUNCATED : SHMCHAN_EINIT;
}

/*
 * Build into the object we hold LOCK_INIT on, if it is ours to build: never a
 * foreign file, and never an object of another user (a squatter's). One this
 * open did not create gets the requested mode: it was made by an earlier
 * creator of ours that died, perhaps with another mode.
 */
static int
build_locked(shmchan__region *r, const shmchan_opts *opts, const shmchan__kind_ops *ops,
             uint64_t waited)
{
    uint64_t size = 0;
    int rc = shmchan__shm_size(r->shm, &size);
    if (rc == SHMCHAN_OK && size > 0) {
        rc = map_parts(r, size < SHMCHAN__HDR_SIZE ? size : SHMCHAN__HDR_SIZE);
    }
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (size >= SHMCHAN__HDR_SIZE &&
        shmchan__load(&r->hdr->state, SHMCHAN__ACQUIRE) == SHMCHAN__STATE_READY) {
        return SHMCHAN_OK; /* built while we took the lock */
    }
    bool buildable = size == 0 || dead_creator_zeros(r, size) ||
                     (size >= sizeof(uint64_t) && r->hdr->magic == SHMCHAN__MAGIC);
    if (!buildable) {
        return classify_unready(r, 0); /* foreign: never overwritten */
    }
    if (!r->created && shmchan__shm_foreign(r->shm)) {
        /* Another user's: its creator may not have taken INIT yet. */
        return size == 0 && waited <= EMPTY_GRACE_NS ? SHMCHAN_EAGAIN : SHMCHAN_EUNSAFE;
    }
    if (!r->created) {
        rc = shmchan__shm_set_mode(r->shm, opts->mode == 0 ? 0600u : opts->mode);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
    }
    r->init_held = true; /* kept until joined (step 5) or cleaned up (step 6) */
    return initialise(r, opts, ops);
}

/*
 * One look at the object: OK when READY (or built now), EAGAIN when somebody
 * else holds lock INIT (or we cannot take it: a read-only handle), or when we
 * may not build and it is not READY; else the error.
 */
static int
try_attach_or_build(shmchan__region *r, const shmchan_opts *opts, const shmchan__kind_ops *ops,
                    bool may_build, uint64_t waited)
{
    uint64_t size = 0;
    int rc = shmchan__shm_size(r->shm, &size);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    if (size >= SHMCHAN__HDR_SIZE) {
        rc = map_parts(r, SHMCHAN__HDR_SIZE);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        if (shmchan__load(&r->hdr->state, SHMCHAN__ACQUIRE) == SHMCHAN__STATE_READY) {
            return SHMCHAN_OK;
        }
    }
    if (!may_build || shmchan__lock_try(r->shm, SHMCHAN__LOCK_INIT, true) != SHMCHAN_OK) {
        return SHMCHAN_EAGAIN;
    }
    /* Nobody else can build now: what we see stays as it is until we drop INIT. */
    rc = build_locked(r, opts, ops, waited);
    if (!r->init_held) {
        shmchan__lock_drop(r->shm, SHMCHAN__LOCK_INIT);
    }
    return rc;
}

/*
 * Wait (bounded) until the object is READY, building it if allowed. A caller
 * that may build just looks again while somebody else holds lock INIT (if
 * that builder dies, the next look builds); one that may not decides what a
 * not-READY object means once nobody holds INIT.
 */
static int
await_ready(shmchan__region *r, const shmchan_opts *opts, const shmchan__kind_ops *ops,
            bool may_build)
{
    uint64_t start = shmchan__now_ns();
    for (;;) {
        uint64_t waited = shmchan__now_ns() - start;
        int rc = try_attach_or_build(r, opts, ops, may_build, waited);
        if (rc != SHMCHAN_EAGAIN) {
            return rc;
        }
        if (!may_build && shmchan__lock_probe(r->shm, SHMCHAN__LOCK_INIT) == SHMCHAN_OK) {
            rc = classify_unready(r, waited);
            if (rc != SHMCHAN_EAGAIN) {
                return rc;
            }
        }
        if (waited > INIT_WAIT_NS) {
            return SHMCHAN_EINIT;
        }
        shmchan__sleep_ns(POLL_NS);
    }
}

static int
validate_and_map(shmchan__region *r, const shmchan_opts *opts, const shmchan__kind_ops *ops)
{
    uint64_t size = 0;
    int rc = shmchan__shm_size(r->shm, &size);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    shmchan__geom g;
    uint64_t want = 0, chan_id = 0;
    rc = check_header(r->hdr, size, &g, &want, &chan_id);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    /* A kind we do not know is a newer library's (or a forged one): say
     * so, whatever was asked for (docs/design.md, "Kinds and the layout
     * version"). Inspection (no ops) checks the kind's geometry too: info and
     * peers must not walk tables a forged header makes larger than the region. */
    const shmchan__kind_ops *kind_ops = shmchan__kind_find(g.kind);
    if (kind_ops == NULL) {
        return SHMCHAN_EUNKNOWNKIND;
    }
    if (ops != NULL && g.kind != ops->kind) {
        return shmchan__geometry_error("kind", g.kind, ops->kind);
    }
    shmchan_opts any;
    shmchan_opts_init(&any);
    rc = kind_ops->match(opts != NULL ? opts : &any, &g);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    rc = map_parts(r, want);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    r->geom = g;
    r->chan_id = chan_id;
    point_parts(r);
    return SHMCHAN_OK;
}

/* Hold LOCK_OPEN shared for the handle's life; reset state if we are alone. */
static int
join(shmchan__region *r, const shmchan__kind_ops *ops)
{
    uint64_t start = shmchan__now_ns();
    bool rdonly = (r->flags & SHMCHAN_RDONLY) != 0;
    for (;;) {
        if (!rdonly && shmchan__lock_try(r->shm, SHMCHAN__LOCK_OPEN, true) == SHMCHAN_OK) {
            ops->reset(r->shm, r->ctl, r->data, &r->geom);
        }
        if (shmchan__lock_try(r->shm, SHMCHAN__LOCK_OPEN, false) == SHMCHAN_OK) {
            return SHMCHAN_OK;
        }
        if (shmchan__now_ns() - start > INIT_WAIT_NS) {
            return SHMCHAN_EINIT;
        }
        shmchan__sleep_ns(POLL_NS); /* a first opener is resetting */
    }
}

static int
open_backing(const char *name, uint32_t flags, uint32_t mode, shmchan__region *r,
             bool *created)
{
    if (name == NULL) {
        return SHMCHAN_EINVAL;
    }
    if ((flags & SHMCHAN_FILE) == 0) {
        int rc = shmchan_name_check(name);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
    } else if (name[0] == '\0') {
        return SHMCHAN_EINVAL;
    }
    if ((flags & SHMCHAN_RDONLY) && (flags & SHMCHAN_CREATE)) {
        return SHMCHAN_EINVAL;
    }
    if ((mode & ~0777u) != 0) {
        return SHMCHAN_EINVAL; /* permission bits only: no set-id or sticky channels */
    }
    return shmchan__shm_open(name, flags, mode == 0 ? 0600u : mode, &r->shm, created);
}

/*
 * Step 5, after joining: once no reaper holds LOCK_INIT, a reaper either saw
 * our LOCK_OPEN or has finished removing the name; so the name must still be
 * our object. ENOENT when it is not (the caller starts again).
 */
static int
settle(shmchan__region *r, const char *name)
{
    uint64_t start = shmchan__now_ns();
    while (shmchan__lock_probe(r->shm, SHMCHAN__LOCK_INIT) == SHMCHAN_EBUSY) {
        if (shmchan__now_ns() - start > INIT_WAIT_NS) {
            return SHMCHAN_EINIT;
        }
        shmchan__sleep_ns(POLL_NS);
    }
    return shmchan__shm_same(r->shm, name, r->flags);
}

/*
 * Step 6: a creator that fails before READY removes the name, but only while
 * it holds LOCK_INIT (no reaper or builder is at work on it) and only if the
 * name is still the object it created: never another process's channel.
 */
static void
remove_half_made(shmchan__region *r, const char *name)
{
    bool ready = r->hdr != NULL &&
                 shmchan__load(&r->hdr->state, SHMCHAN__ACQUIRE) == SHMCHAN__STATE_READY;
    if (!r->created || ready) {
        return;
    }
    if (!r->init_held && shmchan__lock_try(r->shm, SHMCHAN__LOCK_INIT, true) != SHMCHAN_OK) {
        return; /* somebody else is building it now: theirs to finish */
    }
    r->init_held = true;
    if (shmchan__shm_same(r->shm, name, r->flags) == SHMCHAN_OK) {
        (void)shmchan__shm_unlink(name, r->flags);
        shmchan__side_unlink(name, r->flags);
    }
}

static int
open_once(const char *name, const shmchan_opts *opts, const shmchan__kind_ops *ops,
          shmchan__region *r, bool *vanished)
{
    memset(r, 0, sizeof(*r));
    shmchan__fork_watch();
    r->pid = shmchan__pid();
    r->forks = shmchan__load(&shmchan__forks, SHMCHAN__RELAXED);
    r->flags = opts->flags;
    r->name = name;
    r->asym = shmchan__asym_register(); /* before any publish through r */
    /* The default spin is a policy (a CPU budget per wait, stretched by the
     * adaptive spin of wait.h), not a figure measured on one machine: see
     * docs/design.md, "Waiting without polling". */
    r->spin_ns = opts->spin_ns == SHMCHAN_SPIN_DEFAULT  ? SHMCHAN__DEFAULT_SPIN_NS
                 : opts->spin_ns == SHMCHAN_SPIN_NONE ? 0
                                                        : opts->spin_ns;
    *vanished = false;
    int rc = open_backing(name, opts->flags, opts->mode, r, &r->created);
    if (rc == SHMCHAN_OK) {
        rc = await_ready(r, opts, ops, (opts->flags & SHMCHAN_CREATE) != 0);
    }
    if (rc == SHMCHAN_OK) {
        rc = validate_and_map(r, opts, ops);
    }
    if (rc == SHMCHAN_OK) {
        rc = join(r, ops);
    }
    if (rc == SHMCHAN_OK && r->init_held) {
        shmchan__lock_drop(r->shm, SHMCHAN__LOCK_INIT);
        r->init_held = false;
    }
    if (rc == SHMCHAN_OK) {
        rc = settle(r, name);
        *vanished = rc == SHMCHAN_ENOENT;
    }
    if (rc != SHMCHAN_OK && r->shm != NULL) {
        remove_half_made(r, name);
        shmchan__region_close(r);
    }
    r->name = NULL;
    return rc;
}

/* An open whose channel was removed under it starts again; one that keeps
 * losing that race for as long as a creator may take gives up (EINIT). */
int
shmchan__region_open(const char *name, const shmchan_opts *opts, const shmchan__kind_ops *ops,
                     shmchan__region *r)
{
    uint64_t start = shmchan__now_ns();
    for (;;) {
        bool vanished = false;
        int rc = open_once(name, opts, ops, r, &vanished);
        if (!vanished) {
            return rc;
        }
        if (shmchan__now_ns() - start > INIT_WAIT_NS) {
            return (opts->flags & SHMCHAN_CREATE) ? SHMCHAN_EINIT : SHMCHAN_ENOENT;
        }
    }
}

int
shmchan__region_inspect(const char *name, uint32_t flags, bool writable, shmchan__region *r)
{
    memset(r, 0, sizeof(*r));
    flags &= SHMCHAN_FILE | SHMCHAN_GLOBAL;
    bool created = false;
    int rc = SHMCHAN_EACCES;
    if (writable) {
        r->flags = flags;
        rc = open_backing(name, flags, 0, r, &created);
    }
    if (rc == SHMCHAN_EACCES) {
        r->flags = flags | SHMCHAN_RDONLY;
        rc = open_backing(name, r->flags, 0, r, &created);
    }
    if (rc == SHMCHAN_OK) {
        rc = await_ready(r, NULL, NULL, false);
    }
    if (rc == SHMCHAN_OK) {
        rc = validate_and_map(r, NULL, NULL);
    }
    if (rc != SHMCHAN_OK) {
        shmchan__region_close(r);
    }
    return rc;
}

void
shmchan__region_close(shmchan__region *r)
{
    shmchan__shm_close(r->shm);
    memset(r, 0, sizeof(*r));
}

/*
 * Open what is at the name now, for shmchan_unlink: read-write where allowed,
 * so that LOCK_INIT can be taken exclusively (*excl).
 */
static int
unlink_open(const char *name, uint32_t flags, shmchan__shm **s, bool *excl)
{
    bool created = false;
    *excl = true;
    int rc = shmchan__shm_open(name, flags, 0600u, s, &created);
    if (rc == SHMCHAN_EACCES) {
        *excl = false;
        rc = shmchan__shm_open(name, flags | SHMCHAN_RDONLY, 0600u, s, &created);
    }
    return rc;
}

/* Take LOCK_INIT, waiting (bounded) while a builder or reaper holds it. */
static void
init_lock_wait(shmchan__shm *s, bool excl)
{
    uint64_t start = shmchan__now_ns();
    while (shmchan__lock_try(s, SHMCHAN__LOCK_INIT, excl) != SHMCHAN_OK &&
           shmchan__now_ns() - start <= INIT_WAIT_NS) {
        shmchan__sleep_ns(POLL_NS);
    }
}

/*
 * Remove the name under LOCK_INIT of the object it names, as a reaper does
 * (inspect.c): so an unlink never lands between a reaper's check that the
 * name is still its object and its own unlink, and never on a channel whose
 * builder has not joined yet (it waits for the build, bounded). What cannot
 * be opened (a FIFO, a socket, an object we cannot read) is removed by name.
 */
int
shmchan_unlink(const char *name, uint32_t flags)
{
    if (name == NULL) {
        return SHMCHAN_EINVAL;
    }
    if ((flags & SHMCHAN_FILE) == 0) {
        int rc = shmchan_name_check(name);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
    } else if (name[0] == '\0') {
        return SHMCHAN_EINVAL;
    }
    flags &= SHMCHAN_FILE | SHMCHAN_GLOBAL;
    for (int i = 0; i < UNLINK_TRIES; i++) {
        shmchan__shm *s = NULL;
        bool excl = true;
        int rc = unlink_open(name, flags, &s, &excl);
        if (rc != SHMCHAN_OK) {
            shmchan__side_unlink(name, flags);
            return rc == SHMCHAN_ENOENT ? rc : shmchan__shm_unlink(name, flags);
        }
        init_lock_wait(s, excl);
        rc = shmchan__shm_same(s, name, flags);
        if (rc == SHMCHAN_OK) {
            rc = shmchan__shm_unlink(name, flags);
        }
        if (rc == SHMCHAN_OK) {
            shmchan__side_unlink(name, flags);
        }
        shmchan__shm_close(s);
        if (rc != SHMCHAN_ENOENT) {
            return rc;
        }
        /* Replaced meanwhile: remove what is there now. */
    }
    return shmchan__shm_unlink(name, flags);
}
