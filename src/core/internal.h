/*
 * Declarations shared by the core modules in src/core. Not installed.
 */
#ifndef SHMCHAN_INTERNAL_H
#define SHMCHAN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "platform/platform.h"
#include "shmchan/shmchan.h"

#define SHMCHAN__NS_PER_MS INT64_C(1000000)
#define SHMCHAN__DEFAULT_SPIN_NS 20000u
#define SHMCHAN__DEFAULT_MAX_MSG 4096u

/* Geometry of a region: what its creator chose, what an opener checks. */
typedef struct shmchan__geom {
    uint32_t kind;
    uint32_t policy;
    uint32_t nbuf;
    uint32_t max_readers;
    uint32_t max_writers;
    uint64_t max_msg;
    uint64_t capacity;
    uint64_t ctl_size;
    uint64_t data_size;
} shmchan__geom;

struct shmchan__region;

/* What each channel kind tells the region module. */
typedef struct shmchan__kind_ops {
    uint32_t kind;    /* SHMCHAN_KIND_* */
    const char *name; /* "latest", "queue": shmchan_kind_name() */
    /* Complete g from opts for creation (defaults, limits): OK or EINVAL. */
    int (*plan)(const shmchan_opts *opts, shmchan__geom *g);
    /* Compare the request in opts with an existing channel's geometry. */
    int (*match)(const shmchan_opts *opts, const shmchan__geom *g);
    /* Initialise the control block and data of a new region. */
    void (*init)(shmchan__shm *shm, uint8_t *ctl, uint8_t *data, const shmchan__geom *g);
    /* Reset process-bound state when the first handle attaches after every
     * other one is gone (waiter counts, locks left by a reboot). */
    void (*reset)(shmchan__shm *shm, uint8_t *ctl, uint8_t *data, const shmchan__geom *g);
    /* Fill the kind's counters into info (geometry is filled already). */
    void (*info)(const struct shmchan__region *r, shmchan_info *info);
    /* List peers (NULL: the kind has none): see shmchan_peers_get(). */
    int (*peers)(const struct shmchan__region *r, shmchan_peer *peers, size_t cap,
                 size_t *count_out);
} shmchan__kind_ops;

/*
 * A process's view of an open region. The geometry here is the validated
 * private copy taken at open; the core never trusts the shared header again.
 */
typedef struct shmchan__region {
    shmchan__shm *shm;
    uint8_t *base;
    uint64_t size;
    shmchan__hdr *hdr;
    uint8_t *ctl;
    uint8_t *data;
    shmchan__geom geom;
    uint64_t chan_id; /* the header's, validated at open: names notifiers */
    uint32_t flags;   /* the open flags */
    uint32_t spin_ns; /* 0: no spinning */
    shmchan__atomic_u32 spin_now; /* the readers' spin, adapted (shmchan__spin_learn) */
    bool asym;        /* this process registered for asymmetric fences */
    bool created;     /* this open created the backing object */
    bool init_held;   /* holds SHMCHAN__LOCK_INIT: built it, not yet settled */
    uint32_t pid;     /* the opener's process */
    uint32_t forks;   /* shmchan__forks when opened */
    const char *name; /* during the open only: the creator names its side object */
} shmchan__region;

/*
 * Whether the handle was opened by another process (inherited across fork):
 * then it must not touch shared state (docs/security.md). One plain load of
 * a process-wide counter that only fork() changes, so hot paths can afford it.
 */
static inline bool
shmchan__region_forked(const shmchan__region *r)
{
    return SHMCHAN__UNLIKELY(r->forks != shmchan__load(&shmchan__forks, SHMCHAN__RELAXED));
}

/* At close: forked (also without a fork handler, e.g. a raw clone) or not. */
static inline bool
shmchan__region_foreign(const shmchan__region *r)
{
    return shmchan__region_forked(r) || r->pid != shmchan__pid();
}

int shmchan__region_open(const char *name, const shmchan_opts *opts,
                         const shmchan__kind_ops *ops, shmchan__region *r);
void shmchan__region_close(shmchan__region *r);

/* Open any kind for inspection (info, peers, reap) without joining it:
 * read-only, or read-write where allowed when writable (a reaper, so that it
 * can take SHMCHAN__LOCK_INIT exclusively). */
int shmchan__region_inspect(const char *name, uint32_t flags, bool writable,
                            shmchan__region *r);

/* Truncated under us (SIGBUS guarded): every operation then fails. */
static inline bool
shmchan__region_broken(const shmchan__region *r)
{
    return shmchan__shm_faulted(r->shm);
}

/* Copy opts with the caller's struct_size honoured (older, shorter structs). */
/* Copy the caller's options (any struct_size) into out; SHMCHAN_EINVAL for
 * unknown flag bits or non-zero reserved words. Clears the error detail. */
int shmchan__opts_copy(const shmchan_opts *in, shmchan_opts *out);
/* Record this thread's geometry error detail (error.c): the field, the
 * existing and the requested value; returns SHMCHAN_EGEOMETRY. */
int shmchan__geometry_error(const char *field, uint64_t existing, uint64_t requested);
void shmchan__detail_clear(void);


uint32_t shmchan__fnv1a(const void *p, size_t n);

/* Geometry and counters of an open region into info (struct_size kept). */
void shmchan__info_fill(const shmchan__region *r, shmchan_info *info);

extern const shmchan__kind_ops shmchan__latest_ops;
extern const shmchan__kind_ops shmchan__queue_ops;
extern const shmchan__kind_ops shmchan__service_ops;

/* The kind's operations from the table of kinds (kinds.c); NULL for a kind
 * this library does not know (SHMCHAN_EUNKNOWNKIND). */
const shmchan__kind_ops *shmchan__kind_find(uint32_t kind);

#endif /* SHMCHAN_INTERNAL_H */
