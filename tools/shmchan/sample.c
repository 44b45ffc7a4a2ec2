/*
 * Counter samples of channels for top and stat. See sample.h.
 */
#include <stdlib.h>
#include <string.h>

#include "sample.h"
#include "sys.h"

static int
peers_all(const char *name, uint32_t flags, sample *s)
{
    size_t cap = 16;
    for (;;) {
        shmchan_peer *p = realloc(s->peers, cap * sizeof(*p));
        if (p == NULL) {
            return SHMCHAN_ENOMEM;
        }
        s->peers = p;
        int rc = shmchan_peers_get(name, flags, p, cap, &s->npeers);
        if (rc != SHMCHAN_OK || s->npeers <= cap) {
            return rc;
        }
        cap = s->npeers + 16; /* more joined meanwhile */
    }
}

int
sample_take(const char *name, uint32_t flags, sample *s)
{
    memset(s, 0, sizeof(*s));
    s->t_ms = sys_now_ms();
    s->in.struct_size = sizeof(s->in);
    s->rc = shmchan_info_get(name, flags, &s->in);
    if (s->rc != SHMCHAN_OK || s->in.kind != SHMCHAN_KIND_QUEUE) {
        return s->rc;
    }
    if (peers_all(name, flags, s) != SHMCHAN_OK) {
        s->npeers = 0; /* the counters still stand */
    }
    for (size_t i = 0; i < s->npeers; i++) {
        const shmchan_peer *p = &s->peers[i];
        if (!peer_is_writer(p->role) && p->alive && p->lag > s->max_lag) {
            s->max_lag = p->lag;
        }
        s->lost += !peer_is_writer(p->role) ? p->lost : 0;
    }
    return s->rc;
}

void
sample_free(sample *s)
{
    free(s->peers);
    s->peers = NULL;
    s->npeers = 0;
}

/* Per second, from two samples of one channel; a counter that went back
 * (the channel was removed and made again) counts from zero. */
static double
per_s(uint64_t now, uint64_t before, uint64_t dt_ms)
{
    uint64_t d = now >= before ? now - before : now;
    return dt_ms != 0 ? (double)d * 1000.0 / (double)dt_ms : 0.0;
}

void
row_update(chan_row *r, uint32_t flags)
{
    sample_free(&r->prev);
    r->prev = r->cur;
    r->has_prev = r->prev.t_ms != 0 && r->prev.rc == SHMCHAN_OK;
    sample_take(r->name, flags, &r->cur);
    r->msg_rate = r->byte_rate = r->drop_rate = 0.0;
    if (r->has_prev && r->cur.rc == SHMCHAN_OK) {
        uint64_t dt = r->cur.t_ms - r->prev.t_ms;
        r->msg_rate = per_s(r->cur.in.messages, r->prev.in.messages, dt);
        r->byte_rate = per_s(r->cur.in.bytes, r->prev.in.bytes, dt);
        r->drop_rate = per_s(r->cur.in.drops, r->prev.in.drops, dt);
    }
}

void
row_free(chan_row *r)
{
    sample_free(&r->cur);
    sample_free(&r->prev);
    free(r->name);
}

const char *
fmt_rate(double v, char *buf, size_t cap)
{
    static const char units[] = " KMGT";
    int u = 0;
    while (v >= 999.95 && u < 4) {
        v /= 1000.0;
        u++;
    }
    if (u == 0) {
        snprintf(buf, cap, "%.1f", v);
    } else {
        snprintf(buf, cap, "%.1f%c", v, units[u]);
    }
    return buf;
}

bool
peer_is_writer(uint32_t role)
{
    return role == SHMCHAN_PEER_WRITER || role == SHMCHAN_PEER_CLIENT;
}

const char *
peer_role_name(uint32_t role)
{
    switch (role) {
    case SHMCHAN_PEER_WRITER:
        return "writer";
    case SHMCHAN_PEER_SUBSCRIBER:
        return "subscriber";
    case SHMCHAN_PEER_WORKER:
        return "worker";
    case SHMCHAN_PEER_SERVER:
        return "server";
    case SHMCHAN_PEER_CLIENT:
        return "client";
    default:
        return "unknown";
    }
}
