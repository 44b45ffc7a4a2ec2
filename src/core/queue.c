/*
 * Queues: geometry, opening and closing handles, reader and writer slots,
 * and what other processes see (info, peers). Sending is in queue_send.c,
 * receiving in queue_recv.c, recovery in queue_recover.c; the protocol is in
 * layout.h and docs/queue.md.
 */
#include <stdlib.h>
#include <string.h>

#include "queue_int.h"

#define JOIN_LOCK_NS (2000ll * 1000 * 1000)

static uint64_t
round_up(uint64_t v, uint64_t to)
{
    return (v + to - 1) / to * to;
}

/* Smallest power of two >= v (v <= 2^63). */
static uint64_t
pow2_up(uint64_t v)
{
    uint64_t p = 1;
    while (p < v) {
        p <<= 1;
    }
    return p;
}

uint64_t
shmchan__qtables_size(uint32_t nreaders, uint32_t nwriters)
{
    return round_up(((uint64_t)nreaders + nwriters) * SHMCHAN__CACHE_LINE, SHMCHAN__PAGE);
}

/* A ring must hold a pad, a record of max_msg bytes and the zero header. */
static uint64_t
min_capacity(uint64_t max_msg)
{
    return 2 * shmchan__qspan(max_msg) + sizeof(shmchan__qrec);
}

void
shmchan__qview_init(shmchan__qview *v, shmchan__shm *shm, shmchan__hdr *hdr, uint8_t *ctl,
                    uint8_t *data, const shmchan__geom *g)
{
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
    v->overwrite = g->policy == SHMCHAN_POLICY_OVERWRITE;
    v->rewind_at = !v->overwrite && v->cap >= 2 * SHMCHAN__QWINDOW ? SHMCHAN__QWINDOW : 0;
    v->asym = shmchan__asym_register();
    shmchan__nfview_queue(&v->nf, v->ctl, 0); /* the opener sets the channel id */
}

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
    uint64_t need = pow2_up(min_capacity(g->max_msg));
    if (o->capacity != 0) {
        g->capacity = pow2_up(o->capacity);
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
                g->capacity == pow2_up(g->capacity) &&
                g->capacity >= min_capacity(g->max_msg) &&
                g->ctl_size == sizeof(shmchan__queue_ctl) &&
                g->data_size ==
                    shmchan__qtables_size(g->max_readers, g->max_writers) + g->capacity;
    if (!sane) {
        return SHMCHAN_ECORRUPT;
    }
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
                             pow2_up(o->capacity) != g->capacity)) {
        return shmchan__geometry_error("capacity", g->capacity, o->capacity);
    }
    return SHMCHAN_OK;
}

static shmchan__hdr *
hdr_of(uint8_t *ctl)
{
    return (shmchan__hdr *)(ctl - SHMCHAN__HDR_SIZE); /* ctl_off is always HDR_SIZE */
}

/*
 * Nobody else is attached: complete a claim a dead process left half-done,
 * free every slot and lock, forget sleepers. The messages in the ring stay:
 * a file-backed queue replays them to a SHMCHAN_OLDEST subscriber.
 */
static void
queue_reset(shmchan__shm *shm, uint8_t *ctl, uint8_t *data, const shmchan__geom *g)
{
    shmchan__qview v;
    shmchan__qview_init(&v, shm, hdr_of(ctl), ctl, data, g);
    shmchan__queue_ctl *c = v.ctl;
    uint64_t tail = shmchan__load(&c->tail, SHMCHAN__RELAXED);
    uint64_t oldest = shmchan__load(&c->oldest, SHMCHAN__RELAXED);
    if (tail % SHMCHAN__QREC_ALIGN != 0 || oldest % SHMCHAN__QREC_ALIGN != 0 || oldest > tail ||
        tail - oldest > v.cap || shmchan__load(&c->next_seq, SHMCHAN__RELAXED) == 0) {
        /* Scribbled: keep the sequence going, give up the history. */
        tail -= tail % SHMCHAN__QREC_ALIGN;
        shmchan__store(&c->tail, tail, SHMCHAN__RELAXED);
        shmchan__store(&c->oldest, tail, SHMCHAN__RELAXED);
        shmchan__store(&shmchan__qrec_at(&v, tail)->tag, 0, SHMCHAN__RELAXED);
        if (shmchan__load(&c->next_seq, SHMCHAN__RELAXED) == 0) {
            shmchan__store(&c->next_seq, 1, SHMCHAN__RELAXED);
        }
    }
    shmchan__qrepair(&v);
    uint64_t k = shmchan__load(&c->consumed, SHMCHAN__RELAXED);
    if (k % SHMCHAN__QREC_ALIGN != 0 || k > shmchan__load(&c->tail, SHMCHAN__RELAXED)) {
        /* Scribbled: keep what is held unread (from the oldest on). */
        shmchan__store(&c->consumed, shmchan__load(&c->oldest, SHMCHAN__RELAXED),
                       SHMCHAN__RELAXED);
    }
    for (uint32_t i = 0; i < v.nreaders; i++) {
        /* Readers that died: what they read stays read. */
        shmchan__qreader *rd = &v.readers[i];
        shmchan__qretire(&v, (uint32_t)shmchan__load(&rd->state, SHMCHAN__RELAXED),
                         shmchan__load(&rd->from, SHMCHAN__RELAXED),
                         shmchan__load(&rd->pos, SHMCHAN__RELAXED));
    }
    shmchan__store(&c->lock, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->gate, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->nworkers, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->nsubs, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->rd_waiters, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->sp_waiters, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->fenced, 0, SHMCHAN__RELAXED);
    shmchan__nfview_reset(&v.nf);
    for (uint32_t i = 0; i < v.nreaders; i++) {
        uint64_t st = shmchan__load(&v.readers[i].state, SHMCHAN__RELAXED);
        shmchan__store(&v.readers[i].state, st & ~(uint64_t)UINT32_MAX, SHMCHAN__RELAXED);
        shmchan__store(&v.readers[i].pos, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
        shmchan__store(&v.readers[i].from, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
    }
    for (uint32_t j = 0; j < v.nwriters; j++) {
        uint64_t st = shmchan__load(&v.writers[j].state, SHMCHAN__RELAXED);
        shmchan__store(&v.writers[j].state, st & ~(uint64_t)UINT32_MAX, SHMCHAN__RELAXED);
        shmchan__store(&v.writers[j].resv, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
    }
    tail = shmchan__load(&c->tail, SHMCHAN__RELAXED);
    oldest = shmchan__load(&c->oldest, SHMCHAN__RELAXED);
    uint64_t work = shmchan__load(&c->work_pos, SHMCHAN__RELAXED);
    if (work < oldest || work > tail || work % SHMCHAN__QREC_ALIGN != 0) {
        shmchan__store(&c->work_pos, oldest, SHMCHAN__RELAXED);
    }
}

static void
queue_init(shmchan__shm *shm, uint8_t *ctl, uint8_t *data, const shmchan__geom *g)
{
    shmchan__qview v;
    shmchan__qview_init(&v, shm, hdr_of(ctl), ctl, data, g);
    memset(ctl, 0, g->ctl_size);
    /* The ring itself needs no clearing: nothing is read beyond the tail,
     * whose header is the one zeroed here. */
    memset(data, 0, shmchan__qtables_size(g->max_readers, g->max_writers));
    memset(v.ring, 0, sizeof(shmchan__qrec));
    shmchan__store(&v.ctl->next_seq, 1, SHMCHAN__RELAXED);
    for (uint32_t i = 0; i < v.nreaders; i++) {
        shmchan__store(&v.readers[i].pos, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
        shmchan__store(&v.readers[i].from, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
    }
    for (uint32_t j = 0; j < v.nwriters; j++) {
        shmchan__store(&v.writers[j].resv, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
    }
    queue_reset(shm, ctl, data, g);
}

static uint32_t
used_bound(shmchan__atomic_u32 *used, uint32_t n)
{
    uint32_t u = shmchan__load(used, SHMCHAN__ACQUIRE);
    return u < n ? u : n;
}

#define SPIN_RECHECK_NS (10ull * 1000 * 1000)

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
 * Spinning before a sleep pays when the peer we wait for runs on another CPU
 * meanwhile. Readers are the ones that spin; with more readers than CPUs left
 * beside one for the writers, spinners take the CPUs their peers need, and a
 * wait that sleeps at once is faster (fan-out to four readers on two cores:
 * the spin made every message wait for time slices). The count looks at
 * every reader slot in use, so it is redone every 10 ms.
 */
bool
shmchan__qspin_pays(shmchan_queue *q)
{
    uint64_t now = shmchan__now_ns();
    if (q->spin_checked != 0 && now - q->spin_checked < SPIN_RECHECK_NS) {
        return q->spin_pays;
    }
    shmchan__qview *v = &q->v;
    uint32_t readers = slots_in_use(&v->readers[0].state, sizeof(shmchan__qreader),
                                    used_bound(&v->ctl->readers_used, v->nreaders));
    q->spin_pays = readers + 1 <= shmchan__cpu_count();
    q->spin_checked = now;
    return q->spin_pays;
}

static bool
slot_alive(const shmchan__qview *v, uint32_t idx)
{
    return shmchan__lock_probe(v->shm, SHMCHAN__LOCK_SLOTS + idx) != SHMCHAN_OK;
}

static void
queue_info(const shmchan__region *r, shmchan_info *info)
{
    shmchan__qview v;
    shmchan__qview_init(&v, r->shm, r->hdr, r->ctl, r->data, &r->geom);
    shmchan__queue_ctl *c = v.ctl;
    info->seq = shmchan__load(&c->next_seq, SHMCHAN__ACQUIRE);
    info->drops = shmchan__load(&c->drops, SHMCHAN__RELAXED);
    info->waits = shmchan__load(&c->waits, SHMCHAN__RELAXED);
    uint32_t nw = used_bound(&c->writers_used, v.nwriters);
    for (uint32_t j = 0; j < nw; j++) {
        shmchan__qwriter *w = &v.writers[j];
        info->messages += shmchan__load(&w->total, SHMCHAN__RELAXED);
        info->bytes += shmchan__load(&w->total_bytes, SHMCHAN__RELAXED);
        if ((uint32_t)shmchan__load(&w->state, SHMCHAN__ACQUIRE) == 0) {
            continue;
        }
        if (slot_alive(&v, v.nreaders + j)) {
            info->writers++;
        } else {
            info->dead_writers++;
        }
    }
    uint32_t nr = used_bound(&c->readers_used, v.nreaders);
    for (uint32_t i = 0; i < nr; i++) {
        if ((uint32_t)shmchan__load(&v.readers[i].state, SHMCHAN__ACQUIRE) == 0) {
            continue;
        }
        if (slot_alive(&v, i)) {
            info->readers++;
        } else {
            info->dead_readers++;
        }
    }
    uint64_t pos, seq;
    if (shmchan__qoldest(&v, &pos, &seq) == SHMCHAN_OK) {
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

static int
queue_peers(const shmchan__region *r, shmchan_peer *peers, size_t cap, size_t *count_out)
{
    shmchan__qview v;
    shmchan__qview_init(&v, r->shm, r->hdr, r->ctl, r->data, &r->geom);
    shmchan__queue_ctl *c = v.ctl;
    uint64_t next = shmchan__load(&c->next_seq, SHMCHAN__ACQUIRE);
    size_t n = 0;
    uint32_t nr = used_bound(&c->readers_used, v.nreaders);
    for (uint32_t i = 0; i < nr; i++) {
        shmchan__qreader *rd = &v.readers[i];
        uint32_t role = (uint32_t)shmchan__load(&rd->state, SHMCHAN__ACQUIRE);
        if (role != SHMCHAN_PEER_SUBSCRIBER && role != SHMCHAN_PEER_WORKER) {
            continue;
        }
        shmchan_peer p = {role, i, shmchan__load(&rd->pid, SHMCHAN__RELAXED), slot_alive(&v, i),
                          shmchan__load(&rd->seq, SHMCHAN__RELAXED), 0,
                          shmchan__load(&rd->received, SHMCHAN__RELAXED),
                          shmchan__load(&rd->lost, SHMCHAN__RELAXED)};
        p.lag = next > p.position ? next - p.position : 0;
        add_peer(peers, cap, &n, &p);
    }
    uint32_t nw = used_bound(&c->writers_used, v.nwriters);
    for (uint32_t j = 0; j < nw; j++) {
        shmchan__qwriter *w = &v.writers[j];
        if ((uint32_t)shmchan__load(&w->state, SHMCHAN__ACQUIRE) == 0) {
            continue;
        }
        shmchan_peer p = {SHMCHAN_PEER_WRITER, j, shmchan__load(&w->pid, SHMCHAN__RELAXED),
                          slot_alive(&v, v.nreaders + j), 0, 0,
                          shmchan__load(&w->sent, SHMCHAN__RELAXED), 0};
        add_peer(peers, cap, &n, &p);
    }
    *count_out = n;
    return SHMCHAN_OK;
}

const shmchan__kind_ops shmchan__queue_ops = {
    SHMCHAN_KIND_QUEUE, queue_plan, queue_match, queue_init, queue_reset, queue_info,
    queue_peers,
};

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
take_lock(shmchan_queue *q, uint32_t base, uint32_t n, uint32_t *idx_out)
{
    for (uint32_t k = 0; k < n; k++) {
        int rc = shmchan__lock_try(q->r.shm, SHMCHAN__LOCK_SLOTS + base + k, true);
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
shmchan__qtake_writer(shmchan_queue *q)
{
    shmchan__qview *v = &q->v;
    uint32_t j = 0;
    int rc = take_lock(q, v->nreaders, v->nwriters, &j);
    if (rc != SHMCHAN_OK) {
        return rc;
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
    q->total = shmchan__load(&w->total, SHMCHAN__RELAXED);
    q->total_bytes = shmchan__load(&w->total_bytes, SHMCHAN__RELAXED);
    q->sent = 0;
    shmchan__store(&w->state, gen << 32 | 1u, SHMCHAN__RELEASE);
    raise_used(&v->ctl->writers_used, j + 1);
    q->wslot = j;
    q->wowner = shmchan__qowner(gen << 32, v->nreaders + j);
    q->has_wslot = true;
    return SHMCHAN_OK;
}

/* Sequence of the record at pos, under the claim lock (pos is oldest or tail). */
static uint64_t
seq_at(const shmchan__qview *v, uint64_t pos)
{
    uint64_t seq = shmchan__load(&shmchan__qrec_at(v, pos)->tag, SHMCHAN__ACQUIRE) >> 2;
    return seq != 0 ? seq : shmchan__load(&v->ctl->next_seq, SHMCHAN__RELAXED);
}

static void
lower_gate(const shmchan__qview *v, uint64_t pos)
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
static int
join_reader(shmchan_queue *q, uint32_t role, bool from_oldest)
{
    shmchan__qview *v = &q->v;
    shmchan__queue_ctl *c = v->ctl;
    uint32_t i = 0;
    int rc = take_lock(q, 0, v->nreaders, &i);
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
            shmchan__fetch_sub(&c->nsubs, 1, SHMCHAN__RELAXED);
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
    q->rslot = i;
    q->rowner = shmchan__qowner(gen << 32, i);
    q->role = role;
    rc = shmchan__qlock(v, q->rowner, JOIN_LOCK_NS);
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
        shmchan__store(&rd->from, q->pos, SHMCHAN__RELAXED);
        shmchan__store(&rd->pos, q->pos, SHMCHAN__RELEASE);
        shmchan__fetch_add(&c->nsubs, 1, SHMCHAN__RELAXED);
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

/* ------------------------------------------------------------ lifecycle */

static int
check_flags(uint32_t flags)
{
    bool sub = (flags & SHMCHAN_SUBSCRIBE) != 0, work = (flags & SHMCHAN_WORKER) != 0;
    if ((sub && work) || ((flags & SHMCHAN_OLDEST) && !sub) ||
        ((flags & SHMCHAN_RDONLY) && (sub || work))) {
        return SHMCHAN_EINVAL;
    }
    return SHMCHAN_OK;
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
    shmchan_queue *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        return SHMCHAN_ENOMEM;
    }
    rc = shmchan__region_open(name, &o, &shmchan__queue_ops, &q->r);
    if (rc != SHMCHAN_OK) {
        free(q);
        return rc;
    }
    shmchan__qview_init(&q->v, q->r.shm, q->r.hdr, q->r.ctl, q->r.data, &q->r.geom);
    shmchan__nfview_queue(&q->v.nf, q->v.ctl, q->r.chan_id);
    q->stuck_pos = SHMCHAN__QPOS_NONE;
    if (o.flags & SHMCHAN_SUBSCRIBE) {
        rc = join_reader(q, SHMCHAN_PEER_SUBSCRIBER, (o.flags & SHMCHAN_OLDEST) != 0);
    } else if (o.flags & SHMCHAN_WORKER) {
        rc = join_reader(q, SHMCHAN_PEER_WORKER, false);
    } else if (!(o.flags & SHMCHAN_RDONLY)) {
        rc = shmchan__qtake_writer(q); /* readers take theirs at their first send */
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
        free(q);
        return;
    }
    shmchan__qview *v = &q->v;
    if (q->reserved) {
        (void)shmchan_queue_abort(q);
    }
    if (q->viewing) {
        shmchan__qrelease_view(q);
    }
    if (q->role != 0) {
        shmchan__qreader *rd = &v->readers[q->rslot];
        uint64_t st = (q->rowner >> 32) << 32 | q->role;
        /* What we read stays read, before our cursor stops holding writers. */
        shmchan__qretire(v, q->role, shmchan__load(&rd->from, SHMCHAN__RELAXED),
                         q->role == SHMCHAN_PEER_SUBSCRIBER ? q->pos : SHMCHAN__QPOS_NONE);
        if (shmchan__cas(&rd->state, &st, st & ~(uint64_t)UINT32_MAX)) {
            if (q->role == SHMCHAN_PEER_WORKER) {
                shmchan__fetch_sub(&v->ctl->nworkers, 1, SHMCHAN__RELAXED);
            } else {
                shmchan__fetch_sub(&v->ctl->nsubs, 1, SHMCHAN__RELAXED);
            }
        }
        shmchan__qwake_writers(v, true); /* our cursor no longer holds them back */
        shmchan__notifier_close(&v->nf, q->nf);
        shmchan__fence_sleeper_leave(&v->ctl->fenced, &q->fenced_in);
    }
    if (q->has_wslot) {
        shmchan__qwriter *w = &v->writers[q->wslot];
        shmchan__store(&w->resv, SHMCHAN__QPOS_NONE, SHMCHAN__RELEASE);
        shmchan__store(&w->state, (q->wowner >> 32) << 32, SHMCHAN__RELEASE);
    }
    shmchan__region_close(&q->r); /* drops the slot locks last */
    free(q);
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
