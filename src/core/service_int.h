/*
 * Services, internal: the service handle and the geometry of a service
 * region (layout.h, "service"; docs/services.md). service.c has the kind's
 * hooks and the handle's life, service_client.c requests and responses,
 * service_server.c taking and replying, service_notify.c readiness.
 */
#ifndef SHMCHAN_SERVICE_INT_H
#define SHMCHAN_SERVICE_INT_H

#include "notify.h"
#include "ring.h"

#define SHMCHAN__SVC_DEFAULT_SERVERS 16u
#define SHMCHAN__SVC_DEFAULT_CLIENTS 64u
#define SHMCHAN__SVC_MAX_SERVERS 1024u
#define SHMCHAN__SVC_MAX_CLIENTS 4096u
#define SHMCHAN__SVC_MAX_MSG (UINT64_C(1) << 26)
#define SHMCHAN__SVC_MIN_REPLY_CAP (UINT64_C(64) << 10)
/* How often a client waiting for a response looks whether the server that
 * holds its request still lives, and a server waiting for space in a
 * client's reply ring whether that client does. */
#define SHMCHAN__SVC_SLICE_MS 10
/* How long a server trusts that a client it found alive still is, before
 * it looks again (its slot's state and its lock: a system call). Within it
 * a reply to a client that died goes into the dead client's ring, where the
 * next owner of the slot drops it; a reply that would have to wait for
 * space always looks first. */
#define SHMCHAN__SVC_RECHECK_NS (1000ull * 1000)

/* A server's last look at a client slot: the generation found alive, when. */
typedef struct shmchan__svc_seen {
    uint64_t at;
    uint32_t gen;
    bool alive;
} shmchan__svc_seen;

/* A client's request that has no last response yet. */
typedef struct shmchan__svc_pending {
    uint64_t id;
    uint64_t pos; /* its record in the request ring: taken once work_pos passes it */
} shmchan__svc_pending;

struct shmchan_service {
    shmchan__region r;
    shmchan__ring req;              /* the request ring */
    shmchan__svc_server *servers;   /* the server table */
    shmchan__service_ctl *sctl;
    uint64_t max_msg;               /* body bytes */
    uint32_t nservers;
    uint32_t nclients;
    bool server;
    bool resend;                    /* client: SHMCHAN_RESEND */
    shmchan__notifier *nf;
    /* Client: writer slot `slot` of the request ring, reader of reply ring slot. */
    shmchan__ring_wr wr;
    shmchan__ring reply;
    shmchan__ring_rd rd;
    uint32_t slot;
    uint32_t gen;
    uint64_t next_id;
    shmchan__svc_pending *pend;
    size_t npend;
    size_t pend_cap;
    bool reserved;
    shmchan__rclaim resv;
    uint64_t resv_id;
    /* The server slot last found alive holding one of our requests, and when
     * (its lock probe is a system call: a polling client makes one per
     * SHMCHAN__SVC_RECHECK_NS, not one per poll). held_at 0: none. */
    uint32_t held_by;
    uint64_t held_at;
    /* Server: worker slot `slot` of the request ring, writer slot `slot` of
     * every reply ring (views and cursors: nclients of each). */
    shmchan__ring_rd wk;
    shmchan__ring *rviews;
    shmchan__ring_wr *rwr;
    shmchan__svc_seen *seen; /* per client slot */
    bool holding;
    uint32_t h_client;
    uint32_t h_gen;
    uint64_t h_id;
    bool rreserved;
    shmchan__rclaim rresv;
};

/* Geometry of a service region's parts (from the validated region geometry). */
uint64_t shmchan__svc_reply_cap(uint64_t max_msg);
/* The request ring's and reply ring c's views. */
void shmchan__svc_req_view(shmchan__ring *v, shmchan__region *reg, shmchan__shm *shm,
                           uint8_t *ctl, uint8_t *data, const shmchan__geom *g);
void shmchan__svc_reply_view(shmchan__ring *v, shmchan__region *reg, shmchan__shm *shm,
                             uint8_t *ctl, uint8_t *data, const shmchan__geom *g, uint32_t c);
shmchan__svc_server *shmchan__svc_servers(uint8_t *data, const shmchan__geom *g);

/* Absolute deadline (0: none) and what is left of it in ms (-1: forever). */
int64_t shmchan__svc_left_ms(uint64_t deadline);
/* The next wait of a sliced wait: min(left, slice). */
static inline int64_t
shmchan__svc_slice_ms(int64_t left)
{
    return left < 0 || left > SHMCHAN__SVC_SLICE_MS ? SHMCHAN__SVC_SLICE_MS : left;
}

/* Common checks of every call: OK, EINVAL (NULL), EFORKED, EKIND (wrong role). */
int shmchan__svc_check(const shmchan_service *s, bool server);
/* The client's hold word as servers announce it. */
static inline uint64_t
shmchan__svc_hold_word(uint32_t client, uint32_t gen)
{
    return (uint64_t)gen << 32 | (uint64_t)(client + 1);
}
/* Whether client slot c still belongs to generation gen and lives: looked
 * at when force, or when the last look is older than SHMCHAN__SVC_RECHECK_NS
 * or was about another generation (server handles only). */
bool shmchan__svc_client_alive(shmchan_service *s, uint32_t c, uint32_t gen, bool force);

#endif /* SHMCHAN_SERVICE_INT_H */
