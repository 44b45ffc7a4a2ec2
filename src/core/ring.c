/*
 * Rings: geometry, the view of a ring's memory, formatting it, reader and
 * writer slots (joining, leaving), whether waits spin, and what other
 * processes see of a ring (info, peers). Claiming is in ring_write.c,
 * reading in ring_read.c, recovery in ring_recover.c; the protocol is in
 * layout.h and docs/queue.md.
 */
#include <string.h>

#include "ring.h"

#define JOIN_LOCK_NS (2000ll * 1000 * 1000)

static uint64_t
round_up(uint64_t v, uint64_t to)
{
    return (v + to - 1) / to * to;
}

uint64_t
shmchan__qtables_size(uint32_t nreaders, uint32_t nwriters)
{
    return round_up(((uint64_t)nreaders + nwriters) * SHMCHAN__CACHE_LINE, SHMCHAN__PAGE);
}

/*
 * The rewinding window (docs/queue.md, "Rewinding"). A ring that rewinds
 * goes round its first one to two windows; each line there was written by
 * the writer's core and read by the reader's, so it is still cached when
 * the writer comes round again if a window is about what the two cores'
 * private L2 caches hold together: twice this CPU's L2. The L3 bounds it
 * from above (half of it) where it is smaller than that; it is not used to
 * make the window bigger, because the size a virtual machine reports is
 * often the whole socket's, shared with other tenants. Unknown L2: 1 MiB
 * assumed (the L2 of current x86 server cores lies between 512 KiB and
 * 2 MiB). Rounded down to a power of two, between 256 KiB and 32 MiB.
 */
#define WINDOW_MIN (UINT64_C(256) << 10)
#define WINDOW_MAX (UINT64_C(32) << 20)
#define L2_UNKNOWN (UINT64_C(1) << 20)

uint64_t
shmchan__ring_window(void)
{
    static shmchan__atomic_u64 cached; /* racing first calls store the same */
    uint64_t w = shmchan__load(&cached, SHMCHAN__RELAXED);
    if (SHMCHAN__LIKELY(w != 0)) {
        return w;
    }
    uint64_t l2 = shmchan__plat_cache_size(2), l3 = shmchan__plat_cache_size(3);
    uint64_t want = 2 * (l2 != 0 && l2 <= WINDOW_MAX ? l2 : L2_UNKNOWN);
    if (l3 != 0 && l3 / 2 < want) {
        want = l3 / 2;
    }
    for (w = WINDOW_MIN; w < WINDOW_MAX && 2 * w <= want;) {
        w *= 2;
    }
    shmchan__store(&cached, w, SHMCHAN__RELAXED);
    return w;
}

uint64_t
shmchan__pow2_up(uint64_t v)
{
    uint64_t p = 1;
    while (p < v) {
        p <<= 1;
    }
    return p;
}

int
shmchan__ring_opts_match(const shmchan__geom *g, const shmchan_opts *o)
{
    if (o->max_msg != 0 && o->max_msg != g->max_msg) {
        return shmchan__geometry_error("max_msg", g->max_msg, o->max_msg);
    }
    if (o->policy != SHMCHAN_POLICY_ANY && o->policy != g->policy) {
        return shmchan__geometry_error("policy", g->policy, o->policy);
    }
    if (o->max_readers != 0 && o->max_readers != g->max_readers) {
        return shmchan__geometry_error("max_readers", g->max_readers, o->max_readers);
    }
    if (o->max_writers != 0 && o->max_writers != g->max_writers) {
        return shmchan__geometry_error("max_writers", g->max_writers, o->max_writers);
    }
    if (o->capacity != 0 && (o->capacity > SHMCHAN__QUEUE_MAX_CAPACITY ||
                             shmchan__pow2_up(o->capacity) != g->capacity)) {
        return shmchan__geometry_error("capacity", g->capacity, o->capacity);
    }
    return SHMCHAN_OK;
}

/* A ring must hold a pad, a record of max_msg bytes and the zero header. */
uint64_t
shmchan__ring_min_capacity(uint64_t max_msg)
{
    return 2 * shmchan__qspan(max_msg) + sizeof(shmchan__qrec);
}

void
shmchan__ring_view(shmchan__ring *v, shmchan__region *reg, shmchan__shm *shm, shmchan__hdr *hdr,
                   uint8_t *ctl, uint8_t *data, const shmchan__ring_geom *g)
{
    v->reg = reg;
    v->shm = shm;
    v->hdr = hdr;
    v->ctl = (shmchan__queue_ctl *)ctl;
    v->readers = (shmchan__qreader *)data;
    v->writers = (shmchan__qwriter *)(data + (uint64_t)g->max_readers * SHMCHAN__CACHE_LINE);
    v->ring = data + shmchan__qtables_size(g->max_readers, g->max_writers);
    v->cap = g->capacity;
    v->mask = g->capacity - 1;
    v->max_msg = g->max_msg;
    v->nreaders = g->max_readers;
    v->nwriters = g->max_writers;
    v->overwrite = g->overwrite;
    v->lock_base = g->lock_base;
    v->wlock_base = g->wlock_base != 0 ? g->wlock_base : g->lock_base + g->max_readers;
    /* Rings that can never rewind skip the cache look-up (cpuid, which traps
     * to the hypervisor in a guest: tens of microseconds once per process). */
    uint64_t window = v->overwrite || v->cap < 2 * WINDOW_MIN ? 0 : shmchan__ring_window();
    v->rewind_at = window != 0 && v->cap >= 2 * window ? window : 0;
    v->asym = shmchan__asym_register();
    v->nf = SHMCHAN__NFVIEW_OF(v->ctl, reg != NULL ? reg->chan_id : 0);
}

void
shmchan__ring_format(const shmchan__ring *v)
{
    memset(v->ctl, 0, sizeof(*v->ctl));
    /* The ring itself needs no clearing: nothing is read beyond the tail,
     * whose header is the one zeroed here. */
    memset(v->readers, 0, shmchan__qtables_size(v->nreaders, v->nwriters));
    memset(v->ring, 0, sizeof(shmchan__qrec));
    shmchan__store(&v->ctl->next_seq, 1, SHMCHAN__RELAXED);
    for (uint32_t i = 0; i < v->nreaders; i++) {
        shmchan__store(&v->readers[i].pos, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
        shmchan__store(&v->readers[i].from, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
    }
    for (uint32_t j = 0; j < v->nwriters; j++) {
        shmchan__store(&v->writers[j].resv, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
    }
    shmchan__ring_reset(v);
}

static uint32_t
used_bound(shmchan__atomic_u32 *used, uint32_t n)
{
    uint32_t u = shmchan__load(used, SHMCHAN__ACQUIRE);
    return u < n ? u : n;
}

/* Slots of a table in use (live or not), among the first n. */
static uint32_t
slots_in_use(const shmchan__atomic_u64 *state, size_t stride, uint32_t n)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        const shmchan__atomic_u64 *s =
            (const shmchan__atomic_u64 *)((const uint8_t *)state + (size_t)i * stride);
        k += (uint32_t)shmchan__load(s, SHMCHAN__RELAXED) != 0;
    }
    return k;
}

/*
 * The spin rule (wait.h) with the ring's registered readers: the count looks
 * at every reader slot in use, so it is redone every 10 ms only.
 */
bool
shmchan__ring_spin_pays(const shmchan__ring *v, shmchan__spin_rule *s)
{
    uint64_t now = shmchan__now_ns();
    if (s->checked != 0 && now - s->checked < SHMCHAN__SPIN_RECHECK_NS) {
        return s->pays;
    }
    uint32_t readers = slots_in_use(&v->readers[0].state, sizeof(shmchan__qreader),
                                    used_bound(&v->ctl->readers_used, v->nreaders));
    s->pays = shmchan__spin_pays(readers);
    s->checked = now;
    return s->pays;
}

static bool
slot_alive(const shmchan__ring *v, uint32_t idx)
{
    return shmchan__lock_probe(v->shm, shmchan__ring_lock(v, idx)) != SHMCHAN_OK;
}

void
shmchan__ring_info(const shmchan__ring *v, shmchan_info *info)
{
    shmchan__queue_ctl *c = v->ctl;
    info->seq = shmchan__load(&c->next_seq, SHMCHAN__ACQUIRE);
    info->drops += shmchan__load(&c->drops, SHMCHAN__RELAXED);
    info->waits += shmchan__load(&c->waits, SHMCHAN__RELAXED);
    uint32_t nw = used_bound(&c->writers_used, v->nwriters);
    for (uint32_t j = 0; j < nw; j++) {
        shmchan__qwriter *w = &v->writers[j];
        info->messages += shmchan__load(&w->total, SHMCHAN__RELAXED);
        info->bytes += shmchan__load(&w->total_bytes, SHMCHAN__RELAXED);
        if ((uint32_t)shmchan__load(&w->state, SHMCHAN__ACQUIRE) == 0) {
            continue;
        }
        if (slot_alive(v, v->nreaders + j)) {
            info->writers++;
        } else {
            info->dead_writers++;
        }
    }
    uint32_t nr = used_bound(&c->readers_used, v->nreaders);
    for (uint32_t i = 0; i < nr; i++) {
        if ((uint32_t)shmchan__load(&v->readers[i].state, SHMCHAN__ACQUIRE) == 0) {
            continue;
        }
        if (slot_alive(v, i)) {
            info->readers++;
        } else {
            info->dead_readers++;
        }
    }
    uint64_t pos, seq;
    if (shmchan__qoldest(v, &pos, &seq) == SHMCHAN_OK) {
        info->oldest_seq = seq;
    }
}

static void
add_peer(shmchan_peer *peers, size_t cap, size_t *n, const shmchan_peer *p)
{
    if (*n < cap) {
        peers[*n] = *p;
    }
    (*n)++;
}

void
shmchan__ring_peers(const shmchan__ring *v, shmchan_peer *peers, size_t cap, size_t *count)
{
    shmchan__queue_ctl *c = v->ctl;
    uint64_t next = shmchan__load(&c->next_seq, SHMCHAN__ACQUIRE);
    size_t n = *count;
    uint32_t nr = used_bound(&c->readers_used, v->nreaders);
    for (uint32_t i = 0; i < nr; i++) {
        shmchan__qreader *rd = &v->readers[i];
        uint32_t role = (uint32_t)shmchan__load(&rd->state, SHMCHAN__ACQUIRE);
        if (role != SHMCHAN_PEER_SUBSCRIBER && role != SHMCHAN_PEER_WORKER) {
            continue;
        }
        shmchan_peer p = {role, i, shmchan__load(&rd->pid, SHMCHAN__RELAXED), slot_alive(v, i),
                          shmchan__load(&rd->seq, SHMCHAN__RELAXED), 0,
                          shmchan__load(&rd->received, SHMCHAN__RELAXED),
                          shmchan__load(&rd->lost, SHMCHAN__RELAXED)};
        p.lag = next > p.position ? next - p.position : 0;
        add_peer(peers, cap, &n, &p);
    }
    uint32_t nw = used_bound(&c->writers_used, v->nwriters);
    for (uint32_t j = 0; j < nw; j++) {
        shmchan__qwriter *w = &v->writers[j];
        if ((uint32_t)shmchan__load(&w->state, SHMCHAN__ACQUIRE) == 0) {
            continue;
        }
        shmchan_peer p = {SHMCHAN_PEER_WRITER, j, shmchan__load(&w->pid, SHMCHAN__RELAXED),
                          slot_alive(v, v->nreaders + j), 0, 0,
                          shmchan__load(&w->sent, SHMCHAN__RELAXED), 0};
        add_peer(peers, cap, &n, &p);
    }
    *count = n;
}

/* ------------------------------------------------------------ slots */

static void
raise_used(shmchan__atomic_u32 *used, uint32_t n)
{
    uint32_t u = shmchan__load(used, SHMCHAN__RELAXED);
    while (u < n && !shmchan__cas(used, &u, n)) {
    }
}

/* Take the first slot of [base, base + n) whose liveness lock is free. */
static int
take_lock(const shmchan__ring *v, uint32_t base, uint32_t n, uint32_t *idx_out)
{
    for (uint32_t k = 0; k < n; k++) {
        int rc = shmchan__lock_try(v->shm, shmchan__ring_lock(v, base + k), true);
        if (rc == SHMCHAN_OK) {
            *idx_out = k;
            return SHMCHAN_OK;
        }
        if (rc != SHMCHAN_EBUSY) {
            return rc;
        }
    }
    return SHMCHAN_ELIMIT;
}

/* Make a slot ours: a new generation, role 0. Returns the previous role. */
static uint32_t
new_generation(shmchan__atomic_u64 *state, uint64_t *gen_out)
{
    uint64_t st = shmchan__load(state, SHMCHAN__ACQUIRE);
    while (!shmchan__cas(state, &st, ((st >> 32) + 1) << 32)) {
    }
    *gen_out = (st >> 32) + 1;
    return (uint32_t)st;
}

int
shmchan__ring_take_writer(const shmchan__ring *v, shmchan__ring_wr *wr)
{
    uint32_t j = 0;
    int rc = take_lock(v, v->nreaders, v->nwriters, &j);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    return shmchan__ring_take_writer_at(v, wr, j);
}

int
shmchan__ring_take_writer_at(const shmchan__ring *v, shmchan__ring_wr *wr, uint32_t j)
{
    if (j >= v->nwriters) {
        return SHMCHAN_EINVAL;
    }
    int rc = shmchan__lock_try(v->shm, shmchan__ring_lock(v, v->nreaders + j), true);
    if (rc != SHMCHAN_OK) {
        return rc == SHMCHAN_EBUSY ? SHMCHAN_ELIMIT : rc;
    }
    shmchan__qwriter *w = &v->writers[j];
    uint64_t gen = 0;
    if (new_generation(&w->state, &gen) != 0) {
        shmchan__fetch_add(&v->hdr->recovered, 1, SHMCHAN__RELAXED); /* its owner died */
    }
    /* A record the dead owner left claimed is now recognisably orphaned. */
    shmchan__store(&w->resv, SHMCHAN__QPOS_NONE, SHMCHAN__RELEASE);
    uint32_t pid = shmchan__pid();
    shmchan__store(&w->pid, pid, SHMCHAN__RELAXED);
    shmchan__store(&w->start, shmchan__proc_start(pid), SHMCHAN__RELAXED);
    shmchan__store(&w->sent, 0, SHMCHAN__RELAXED);
    wr->total = shmchan__load(&w->total, SHMCHAN__RELAXED);
    wr->total_bytes = shmchan__load(&w->total_bytes, SHMCHAN__RELAXED);
    wr->sent = 0;
    shmchan__store(&w->state, gen << 32 | 1u, SHMCHAN__RELEASE);
    raise_used(&v->ctl->writers_used, j + 1);
    wr->slot = j;
    wr->owner = shmchan__qowner(gen << 32, v->nreaders + j);
    wr->has_slot = true;
    return SHMCHAN_OK;
}

void
shmchan__ring_leave_writer(const shmchan__ring *v, shmchan__ring_wr *wr)
{
    if (!wr->has_slot) {
        return;
    }
    shmchan__qwriter *w = &v->writers[wr->slot];
    shmchan__store(&w->resv, SHMCHAN__QPOS_NONE, SHMCHAN__RELEASE);
    shmchan__store(&w->state, (wr->owner >> 32) << 32, SHMCHAN__RELEASE);
    wr->has_slot = false;
}

/* Sequence of the record at pos, under the claim lock (pos is oldest or tail). */
static uint64_t
seq_at(const shmchan__ring *v, uint64_t pos)
{
    uint64_t seq = shmchan__load(&shmchan__qrec_at(v, pos)->tag, SHMCHAN__ACQUIRE) >> 2;
    return seq != 0 ? seq : shmchan__load(&v->ctl->next_seq, SHMCHAN__RELAXED);
}

static void
lower_gate(const shmchan__ring *v, uint64_t pos)
{
    uint64_t g = pos > UINT64_MAX - v->cap ? UINT64_MAX : pos + v->cap;
    if (g < shmchan__load(&v->ctl->gate, SHMCHAN__RELAXED)) {
        shmchan__store(&v->ctl->gate, g, SHMCHAN__RELAXED);
    }
}

/*
 * Take a reader slot and place the cursor. The slot shows its role (with
 * no position yet, which holds nobody back) before we take the claim lock,
 * so that a contender never mistakes us for a dead holder; the position is
 * set under the lock, where no claim can run, and `gate` is lowered so the
 * next claim sees it.
 */
int
shmchan__ring_join(const shmchan__ring *v, shmchan__ring_rd *q, uint32_t role, bool from_oldest,
                   bool consumes)
{
    shmchan__queue_ctl *c = v->ctl;
    q->stuck_pos = SHMCHAN__QPOS_NONE;
    uint32_t i = 0;
    int rc = take_lock(v, 0, v->nreaders, &i);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    shmchan__qreader *rd = &v->readers[i];
    uint64_t gen = 0;
    uint32_t old = new_generation(&rd->state, &gen);
    if (old != 0) {
        /* Its owner died: what it read stays read. */
        shmchan__qretire(v, old, shmchan__load(&rd->from, SHMCHAN__RELAXED),
                         shmchan__load(&rd->pos, SHMCHAN__ACQUIRE));
        if (old == SHMCHAN_PEER_WORKER) {
            shmchan__fetch_sub(&c->nworkers, 1, SHMCHAN__RELAXED);
        } else if (old == SHMCHAN_PEER_SUBSCRIBER) {
            shmchan__ring_count_sub(v, -1);
        }
        shmchan__fetch_add(&v->hdr->recovered, 1, SHMCHAN__RELAXED);
    }
    uint32_t pid = shmchan__pid();
    shmchan__store(&rd->pid, pid, SHMCHAN__RELAXED);
    shmchan__store(&rd->start, shmchan__proc_start(pid), SHMCHAN__RELAXED);
    shmchan__store(&rd->received, 0, SHMCHAN__RELAXED);
    shmchan__store(&rd->lost, 0, SHMCHAN__RELAXED);
    shmchan__store(&rd->pos, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
    shmchan__store(&rd->from, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
    shmchan__store(&rd->state, gen << 32 | role, SHMCHAN__RELEASE);
    raise_used(&c->readers_used, i + 1);
    q->slot = i;
    q->owner = shmchan__qowner(gen << 32, i);
    q->role = role;
    rc = shmchan__qlock(v, q->owner, JOIN_LOCK_NS);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    uint64_t tail = shmchan__load(&c->tail, SHMCHAN__RELAXED);
    uint64_t oldest = shmchan__load(&c->oldest, SHMCHAN__RELAXED);
    if (tail % SHMCHAN__QREC_ALIGN != 0 || oldest % SHMCHAN__QREC_ALIGN != 0 || oldest > tail) {
        shmchan__qunlock(v);
        return SHMCHAN_ECORRUPT;
    }
    if (role == SHMCHAN_PEER_SUBSCRIBER) {
        q->pos = from_oldest ? oldest : tail;
        q->seq = seq_at(v, q->pos);
        shmchan__store(&rd->seq, q->seq, SHMCHAN__RELAXED);
        shmchan__store(&rd->from, consumes ? q->pos : SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
        shmchan__store(&rd->pos, q->pos, SHMCHAN__RELEASE);
        shmchan__ring_count_sub(v, 1);
        lower_gate(v, q->pos);
    } else {
        shmchan__fetch_add(&c->nworkers, 1, SHMCHAN__RELAXED);
        uint64_t work = shmchan__load(&c->work_pos, SHMCHAN__ACQUIRE);
        if (work < oldest || work > tail || work % SHMCHAN__QREC_ALIGN != 0) {
            /* Nobody kept it (no worker alive while those were overwritten). */
            (void)shmchan__cas(&c->work_pos, &work, oldest);
            work = shmchan__load(&c->work_pos, SHMCHAN__ACQUIRE);
        }
        shmchan__store(&rd->seq, seq_at(v, work), SHMCHAN__RELAXED);
        shmchan__store(&rd->from, work, SHMCHAN__RELEASE);
        lower_gate(v, work);
    }
    shmchan__qunlock(v);
    return SHMCHAN_OK;
}

void
shmchan__ring_leave(const shmchan__ring *v, shmchan__ring_rd *q)
{
    if (q->role == 0) {
        return;
    }
    shmchan__qreader *rd = &v->readers[q->slot];
    uint64_t st = (q->owner >> 32) << 32 | q->role;
    /* What we read stays read, before our cursor stops holding writers. */
    shmchan__qretire(v, q->role, shmchan__load(&rd->from, SHMCHAN__RELAXED),
                     q->role == SHMCHAN_PEER_SUBSCRIBER ? q->pos : SHMCHAN__QPOS_NONE);
    if (shmchan__cas(&rd->state, &st, st & ~(uint64_t)UINT32_MAX)) {
        if (q->role == SHMCHAN_PEER_WORKER) {
            shmchan__fetch_sub(&v->ctl->nworkers, 1, SHMCHAN__RELAXED);
        } else {
            shmchan__ring_count_sub(v, -1);
        }
    }
    shmchan__qwake_writers(v, true); /* our cursor no longer holds them back */
    shmchan__fence_sleeper_leave(&v->ctl->fenced, &q->fenced_in);
    q->role = 0;
}
