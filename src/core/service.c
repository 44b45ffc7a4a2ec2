/*
 * Services: the service kind (SHMCHAN_KIND_SERVICE): the region's geometry
 * (a request ring, a server table, one reply ring per client slot), the
 * kind's hooks, and opening and closing client and server handles. The
 * layout and the protocol are described in layout.h ("service") and
 * docs/services.md; requests and responses are in service_client.c, taking
 * and replying in service_server.c.
 */
#include <stdlib.h>
#include <string.h>

#include "service_int.h"

static uint64_t
round_up(uint64_t v, uint64_t to)
{
    return (v + to - 1) / to * to;
}

/* ------------------------------------------------------------ geometry */

/* A reply ring holds at least four responses of max_msg bytes. */
uint64_t
shmchan__svc_reply_cap(uint64_t max_msg)
{
    uint64_t need = shmchan__pow2_up(2 * shmchan__ring_min_capacity(max_msg + SHMCHAN__SVC_HDR));
    return need > SHMCHAN__SVC_MIN_REPLY_CAP ? need : SHMCHAN__SVC_MIN_REPLY_CAP;
}

static uint64_t
reply_ctl_size(void)
{
    return round_up(sizeof(shmchan__queue_ctl), SHMCHAN__PAGE);
}

static uint64_t
reply_block(const shmchan__geom *g)
{
    return reply_ctl_size() + shmchan__qtables_size(1, g->max_readers) +
           shmchan__svc_reply_cap(g->max_msg);
}

static uint64_t
servers_off(const shmchan__geom *g)
{
    return shmchan__qtables_size(g->max_readers, g->max_writers) + g->capacity;
}

static uint64_t
replies_off(const shmchan__geom *g)
{
    /* A page boundary, also when a small request ring leaves servers_off
     * off one: each reply block then starts on a page. */
    return round_up(servers_off(g) + (uint64_t)g->max_readers * SHMCHAN__CACHE_LINE,
                    SHMCHAN__PAGE);
}

static uint64_t
data_size(const shmchan__geom *g)
{
    return replies_off(g) + (uint64_t)g->max_writers * reply_block(g);
}

shmchan__svc_server *
shmchan__svc_servers(uint8_t *data, const shmchan__geom *g)
{
    return (shmchan__svc_server *)(data + servers_off(g));
}

void
shmchan__svc_req_view(shmchan__ring *v, shmchan__region *reg, shmchan__shm *shm, uint8_t *ctl,
                      uint8_t *data, const shmchan__geom *g)
{
    shmchan__ring_geom rg = {g->capacity, g->max_msg + SHMCHAN__SVC_HDR, g->max_readers,
                             g->max_writers, SHMCHAN__LOCK_SLOTS, false,
                             SHMCHAN__LOCK_SLOTS + g->max_readers};
    shmchan__ring_view(v, reg, shm, (shmchan__hdr *)(ctl - SHMCHAN__HDR_SIZE), ctl, data, &rg);
}

/* Reply ring c: its reader is client c (the client's lock), its writers
 * the servers (their locks). Its notifiers are named after the request
 * ring's and the side object's ranges. */
void
shmchan__svc_reply_view(shmchan__ring *v, shmchan__region *reg, shmchan__shm *shm, uint8_t *ctl,
                        uint8_t *data, const shmchan__geom *g, uint32_t c)
{
    uint8_t *block = data + replies_off(g) + (uint64_t)c * reply_block(g);
    shmchan__ring_geom rg = {shmchan__svc_reply_cap(g->max_msg),
                             g->max_msg + SHMCHAN__SVC_HDR,
                             1,
                             g->max_readers,
                             SHMCHAN__LOCK_SLOTS + g->max_readers + c,
                             false,
                             SHMCHAN__LOCK_SLOTS};
    shmchan__ring_view(v, reg, shm, (shmchan__hdr *)(ctl - SHMCHAN__HDR_SIZE), block,
                       block + reply_ctl_size(), &rg);
    v->nf.name_base = (2 + c) * SHMCHAN__NOTIFY_SLOTS;
}

/* ------------------------------------------------------- kind operations */

static int
svc_plan(const shmchan_opts *o, shmchan__geom *g)
{
    g->max_msg = o->max_msg != 0 ? o->max_msg : SHMCHAN__DEFAULT_MAX_MSG;
    g->policy = SHMCHAN_POLICY_BLOCK;
    g->max_readers = o->max_readers != 0 ? o->max_readers : SHMCHAN__SVC_DEFAULT_SERVERS;
    g->max_writers = o->max_writers != 0 ? o->max_writers : SHMCHAN__SVC_DEFAULT_CLIENTS;
    if (g->max_msg > SHMCHAN__SVC_MAX_MSG || g->max_readers > SHMCHAN__SVC_MAX_SERVERS ||
        g->max_writers > SHMCHAN__SVC_MAX_CLIENTS ||
        (o->policy != SHMCHAN_POLICY_ANY && o->policy != SHMCHAN_POLICY_BLOCK) ||
        o->capacity > SHMCHAN__QUEUE_MAX_CAPACITY) {
        return SHMCHAN_EINVAL;
    }
    uint64_t need = shmchan__pow2_up(shmchan__ring_min_capacity(g->max_msg + SHMCHAN__SVC_HDR));
    if (o->capacity != 0) {
        g->capacity = shmchan__pow2_up(o->capacity);
        if (g->capacity < need) {
            return SHMCHAN_EINVAL; /* cannot hold two requests of max_msg bytes */
        }
    } else {
        g->capacity = need > SHMCHAN__QUEUE_DEFAULT_CAPACITY ? need
                                                             : SHMCHAN__QUEUE_DEFAULT_CAPACITY;
    }
    g->nbuf = 0;
    g->ctl_size = sizeof(shmchan__service_ctl);
    g->data_size = data_size(g);
    return SHMCHAN_OK;
}

static int
svc_match(const shmchan_opts *o, const shmchan__geom *g)
{
    bool sane = g->max_msg <= SHMCHAN__SVC_MAX_MSG && g->max_readers >= 1 &&
                g->max_readers <= SHMCHAN__SVC_MAX_SERVERS && g->max_writers >= 1 &&
                g->max_writers <= SHMCHAN__SVC_MAX_CLIENTS && g->nbuf == 0 &&
                g->policy == SHMCHAN_POLICY_BLOCK &&
                g->capacity <= SHMCHAN__QUEUE_MAX_CAPACITY &&
                g->capacity == shmchan__pow2_up(g->capacity) &&
                g->capacity >= shmchan__ring_min_capacity(g->max_msg + SHMCHAN__SVC_HDR) &&
                g->ctl_size == sizeof(shmchan__service_ctl) && g->data_size == data_size(g);
    if (!sane) {
        return SHMCHAN_ECORRUPT;
    }
    return shmchan__ring_opts_match(g, o);
}

static void
svc_init(shmchan__shm *shm, uint8_t *ctl, uint8_t *data, const shmchan__geom *g)
{
    shmchan__ring v;
    shmchan__svc_req_view(&v, NULL, shm, ctl, data, g);
    shmchan__ring_format(&v);
    memset(ctl + sizeof(shmchan__queue_ctl), 0,
           sizeof(shmchan__service_ctl) - sizeof(shmchan__queue_ctl));
    memset(shmchan__svc_servers(data, g), 0, (size_t)g->max_readers * SHMCHAN__CACHE_LINE);
    for (uint32_t c = 0; c < g->max_writers; c++) {
        shmchan__svc_reply_view(&v, NULL, shm, ctl, data, g, c);
        shmchan__ring_format(&v);
    }
}

/* Nobody else is attached: every ring as a queue's reset, and no server
 * holds anything. */
static void
svc_reset(shmchan__shm *shm, uint8_t *ctl, uint8_t *data, const shmchan__geom *g)
{
    shmchan__ring v;
    shmchan__svc_req_view(&v, NULL, shm, ctl, data, g);
    shmchan__ring_reset(&v);
    shmchan__svc_server *sv = shmchan__svc_servers(data, g);
    for (uint32_t i = 0; i < g->max_readers; i++) {
        uint64_t st = shmchan__load(&sv[i].state, SHMCHAN__RELAXED);
        shmchan__store(&sv[i].state, st & ~(uint64_t)UINT32_MAX, SHMCHAN__RELAXED);
        shmchan__store(&sv[i].hold, 0, SHMCHAN__RELAXED);
    }
    for (uint32_t c = 0; c < g->max_writers; c++) {
        shmchan__svc_reply_view(&v, NULL, shm, ctl, data, g, c);
        shmchan__ring_reset(&v);
    }
}

/* Info: the request ring (readers are servers, writers clients). */
static void
svc_info(const shmchan__region *r, shmchan_info *info)
{
    shmchan__ring v;
    shmchan__svc_req_view(&v, NULL, r->shm, r->ctl, r->data, &r->geom);
    uint64_t before = info->messages, bytes = info->bytes;
    shmchan__ring_info(&v, info);
    /* Bodies only: without the service header of each request. */
    uint64_t hdrs = (info->messages - before) * SHMCHAN__SVC_HDR;
    info->bytes = info->bytes - bytes >= hdrs ? info->bytes - hdrs : bytes;
}

static int
svc_peers(const shmchan__region *r, shmchan_peer *peers, size_t cap, size_t *count_out)
{
    shmchan__ring v;
    shmchan__svc_req_view(&v, NULL, r->shm, r->ctl, r->data, &r->geom);
    *count_out = 0;
    shmchan__ring_peers(&v, peers, cap, count_out);
    /* The request ring's workers are the servers, its writers the clients
     * (a subscriber, which only a forged slot state can show, stays one). */
    for (size_t i = 0; i < cap && i < *count_out; i++) {
        if (peers[i].role == SHMCHAN_PEER_WORKER) {
            peers[i].role = SHMCHAN_PEER_SERVER;
        } else if (peers[i].role == SHMCHAN_PEER_WRITER) {
            peers[i].role = SHMCHAN_PEER_CLIENT;
        }
    }
    return SHMCHAN_OK;
}

const shmchan__kind_ops shmchan__service_ops = {
    .kind = SHMCHAN_KIND_SERVICE,
    .name = "service",
    .plan = svc_plan,
    .match = svc_match,
    .init = svc_init,
    .reset = svc_reset,
    .info = svc_info,
    .peers = svc_peers,
};

/* ------------------------------------------------------------ helpers */

int64_t
shmchan__svc_left_ms(uint64_t deadline)
{
    if (deadline == 0) {
        return -1;
    }
    uint64_t now = shmchan__now_ns();
    if (now >= deadline) {
        return 0;
    }
    return (int64_t)((deadline - now + SHMCHAN__NS_PER_MS - 1) / SHMCHAN__NS_PER_MS);
}

int
shmchan__svc_check(const shmchan_service *s, bool server)
{
    if (s == NULL) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&s->r)) {
        return SHMCHAN_EFORKED;
    }
    return s->server == server ? SHMCHAN_OK : SHMCHAN_EKIND;
}

/* The slot's state (a line its owner writes per request: read only now and
 * then) and its lock (a system call). */
static bool
client_looks_alive(const shmchan_service *s, uint32_t c, uint32_t gen)
{
    uint64_t st = shmchan__load(&s->req.writers[c].state, SHMCHAN__ACQUIRE);
    if (st != ((uint64_t)gen << 32 | 1u)) {
        return false;
    }
    return shmchan__lock_probe(s->r.shm, shmchan__ring_lock(&s->req, s->nservers + c)) !=
           SHMCHAN_OK;
}

bool
shmchan__svc_client_alive(shmchan_service *s, uint32_t c, uint32_t gen, bool force)
{
    if (c >= s->nclients) {
        return false;
    }
    shmchan__svc_seen *seen = &s->seen[c];
    uint64_t now = shmchan__now_ns();
    if (!force && seen->alive && seen->gen == gen && now - seen->at < SHMCHAN__SVC_RECHECK_NS) {
        return true;
    }
    seen->alive = client_looks_alive(s, c, gen);
    seen->gen = gen;
    seen->at = now;
    return seen->alive;
}

/* ------------------------------------------------------------ lifecycle */

static int
check_flags(uint32_t flags)
{
    uint32_t bad = SHMCHAN_RDONLY | SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST | SHMCHAN_WORKER |
                   SHMCHAN_NOCONSUME;
    if ((flags & SHMCHAN_SERVER) && (flags & SHMCHAN_RESEND)) {
        return SHMCHAN_EINVAL; /* a client's option */
    }
    return (flags & bad) != 0 ? SHMCHAN_EINVAL : SHMCHAN_OK;
}

static int
open_client(shmchan_service *s)
{
    int rc = shmchan__ring_take_writer(&s->req, &s->wr);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    s->slot = s->wr.slot;
    s->gen = (uint32_t)(s->wr.owner >> 32);
    shmchan__svc_reply_view(&s->reply, &s->r, s->r.shm, s->r.ctl, s->r.data, &s->r.geom, s->slot);
    /* From the oldest record: what a previous owner of the slot left unread
     * is read and dropped (another generation), so that it never holds the
     * servers' writes back. */
    return shmchan__ring_join(&s->reply, &s->rd, SHMCHAN_PEER_SUBSCRIBER, true, true);
}

static int
open_server(shmchan_service *s)
{
    int rc = shmchan__ring_join(&s->req, &s->wk, SHMCHAN_PEER_WORKER, false, true);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    s->slot = s->wk.slot;
    s->gen = (uint32_t)(s->wk.owner >> 32);
    shmchan__svc_server *me = &s->servers[s->slot];
    uint32_t pid = shmchan__pid();
    shmchan__store(&me->hold, 0, SHMCHAN__SEQ_CST);
    shmchan__store(&me->pid, pid, SHMCHAN__RELAXED);
    shmchan__store(&me->start, shmchan__proc_start(pid), SHMCHAN__RELAXED);
    shmchan__store(&me->taken, 0, SHMCHAN__RELAXED);
    shmchan__store(&me->replied, 0, SHMCHAN__RELAXED);
    shmchan__store(&me->state, (uint64_t)s->gen << 32 | 1u, SHMCHAN__RELEASE);
    s->rviews = calloc(s->nclients, sizeof(*s->rviews));
    s->rwr = calloc(s->nclients, sizeof(*s->rwr));
    s->seen = calloc(s->nclients, sizeof(*s->seen));
    if (s->rviews == NULL || s->rwr == NULL || s->seen == NULL) {
        return SHMCHAN_ENOMEM;
    }
    /* Writer slot `slot` of every reply ring at once: a record a dead
     * predecessor left claimed in any of them is then orphaned (its resv
     * cleared) and its client stops waiting for it. */
    for (uint32_t c = 0; c < s->nclients; c++) {
        shmchan__svc_reply_view(&s->rviews[c], &s->r, s->r.shm, s->r.ctl, s->r.data, &s->r.geom,
                                c);
        rc = shmchan__ring_take_writer_at(&s->rviews[c], &s->rwr[c], s->slot);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
    }
    return SHMCHAN_OK;
}

int
shmchan_service_open(const char *name, const shmchan_opts *opts, shmchan_service **out)
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
    shmchan_service *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SHMCHAN_ENOMEM;
    }
    rc = shmchan__region_open(name, &o, &shmchan__service_ops, &s->r);
    if (rc != SHMCHAN_OK) {
        free(s);
        return rc;
    }
    const shmchan__geom *g = &s->r.geom;
    shmchan__svc_req_view(&s->req, &s->r, s->r.shm, s->r.ctl, s->r.data, g);
    s->servers = shmchan__svc_servers(s->r.data, g);
    s->sctl = (shmchan__service_ctl *)s->r.ctl;
    s->max_msg = g->max_msg;
    s->nservers = g->max_readers;
    s->nclients = g->max_writers;
    s->server = (o.flags & SHMCHAN_SERVER) != 0;
    s->resend = (o.flags & SHMCHAN_RESEND) != 0;
    s->rd.stuck_pos = SHMCHAN__QPOS_NONE;
    s->wk.stuck_pos = SHMCHAN__QPOS_NONE;
    rc = s->server ? open_server(s) : open_client(s);
    if (rc != SHMCHAN_OK) {
        shmchan_service_close(s);
        return rc;
    }
    *out = s;
    return SHMCHAN_OK;
}

static void
close_server(shmchan_service *s)
{
    if (s->rreserved) {
        shmchan__ring_drop(&s->rviews[s->h_client], &s->rwr[s->h_client], &s->rresv);
    }
    if (s->wk.role != 0) {
        /* An unanswered request fails for its client (EPEERDIED). */
        shmchan__svc_server *me = &s->servers[s->slot];
        shmchan__store(&me->hold, 0, SHMCHAN__SEQ_CST);
        shmchan__store(&me->state, (uint64_t)s->gen << 32, SHMCHAN__RELEASE);
    }
    for (uint32_t c = 0; s->rwr != NULL && c < s->nclients; c++) {
        shmchan__ring_leave_writer(&s->rviews[c], &s->rwr[c]);
    }
    shmchan__ring_leave(&s->req, &s->wk);
}

static void
close_client(shmchan_service *s)
{
    if (s->reserved) {
        shmchan__ring_drop(&s->req, &s->wr, &s->resv);
    }
    shmchan__ring_leave(&s->reply, &s->rd);
    shmchan__ring_leave_writer(&s->req, &s->wr);
}

void
shmchan_service_close(shmchan_service *s)
{
    if (s == NULL) {
        return;
    }
    if (shmchan__region_foreign(&s->r)) {
        /* Inherited across fork: the slots are the opener's. */
        shmchan__notifier_close(NULL, s->nf);
    } else {
        shmchan__notifier_close(s->server ? &s->req.nf : &s->reply.nf, s->nf);
        if (s->server) {
            close_server(s);
        } else {
            close_client(s);
        }
    }
    shmchan__region_close(&s->r); /* drops the slot locks last */
    free(s->rviews);
    free(s->rwr);
    free(s->seen);
    free(s->pend);
    free(s);
}

size_t
shmchan_service_max_msg(const shmchan_service *s)
{
    return s == NULL ? 0 : (size_t)s->max_msg;
}
