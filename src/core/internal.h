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
    uint32_t kind;
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


/* Sleep in the kernel while *word equals expected. Returns OK (re-check),
 * ETIMEDOUT or EINTR; deadline_ns is absolute monotonic, 0 = for ever. */
int shmchan__sleep_on(const shmchan__region *r, shmchan__atomic_u32 *word,
                      uint32_t expected, uint64_t deadline_ns);

/*
 * The sleepers handshake (platform.h, asymmetric fences). A publisher, after
 * its stores and before it looks at the sleepers count, calls fence_fast: a
 * compiler barrier when its process is registered (a waiter's fence_slow then
 * forces the barrier on it), a full fence otherwise. A waiter, after counting
 * itself in and before it looks again, calls fence_waiter(slice), which
 * returns how long it may sleep: slice, or less when it could not force the
 * publishers' barriers.
 *
 * fence_slow interrupts every CPU that runs a peer, which is cheap next to a
 * sleep only while sleeps are rare. Where waiters sleep at once, message
 * after message (more readers than CPUs), each of them counts itself once in
 * the channel's `fenced` word and pays fence_slow once (fence_sleeper); while
 * that word is non-zero, publishers issue a full fence (fence_publisher), and
 * the registered waiters' later sleeps need only their own fence; a handle
 * stays counted until it closes. A publisher
 * whose look at `fenced` came before that fence_slow had made its stores
 * visible by the time fence_slow returned; one whose look came after sees the
 * count and fences. docs/design.md, "Asymmetric barriers", has the argument.
 */
#define SHMCHAN__UNFORCED_SLEEP_NS (1000ull * 1000)

static inline void
shmchan__fence_fast(bool asym)
{
    if (SHMCHAN__LIKELY(asym)) {
        atomic_signal_fence(memory_order_seq_cst);
    } else {
        shmchan__fence(SHMCHAN__SEQ_CST);
    }
}

static inline void
shmchan__fence_publisher(bool asym, const shmchan__atomic_u32 *fenced)
{
    atomic_signal_fence(memory_order_seq_cst); /* our stores come first */
    shmchan__fence_fast(asym && shmchan__load(fenced, SHMCHAN__RELAXED) == 0);
}

static inline uint64_t
shmchan__fence_waiter(uint64_t slice_ns)
{
    bool forced = shmchan__fence_slow();
    return forced || slice_ns < SHMCHAN__UNFORCED_SLEEP_NS ? slice_ns : SHMCHAN__UNFORCED_SLEEP_NS;
}

/* A handle's place in `fenced`: 0 out, then joining, then in until close.
 * Threads sharing a handle rely on it only once it is in. */
#define SHMCHAN__FENCED_JOINING 1u
#define SHMCHAN__FENCED_IN 2u

/* The waiter's barrier for a handle whose waiters may sleep often: joins
 * `fenced` (once, when often and asym: this process's publishers' barriers
 * can be forced), then fences; returns as fence_waiter. */
uint64_t shmchan__fence_sleeper(bool asym, shmchan__atomic_u32 *fenced, shmchan__atomic_u32 *in,
                                bool often, uint64_t slice_ns);
/* Leave `fenced` at close, if in it. */
void shmchan__fence_sleeper_leave(shmchan__atomic_u32 *fenced, shmchan__atomic_u32 *in);

/*
 * How long a reader spins before it sleeps: spin_ns, stretched while
 * messages keep arriving just after the spin gave up (a writer whose
 * messages take a little longer than the spin to produce, a 1 MiB copy
 * say, would otherwise cost a sleep and a wake-up per message). After a
 * wait that slept and found its message within twice the spin, the spin
 * doubles, up to 8 x spin_ns; after a longer one it halves, down to
 * spin_ns. Threads sharing a handle may race on it: any value is fine.
 */
#define SHMCHAN__SPIN_STRETCH 8u

static inline uint32_t
shmchan__spin_now(const shmchan__region *r)
{
    uint32_t now = shmchan__load(&r->spin_now, SHMCHAN__RELAXED);
    return now > r->spin_ns ? now : r->spin_ns;
}

/* After a wait that slept and then found its message, waited_ns after it began. */
void shmchan__spin_learn(shmchan__region *r, uint64_t waited_ns);

/* Absolute monotonic deadline for a timeout in ms (0 for WAIT_FOREVER). */
uint64_t shmchan__deadline(int64_t timeout_ms);

uint32_t shmchan__fnv1a(const void *p, size_t n);

/* Geometry and counters of an open region into info (struct_size kept). */
void shmchan__info_fill(const shmchan__region *r, shmchan_info *info);

extern const shmchan__kind_ops shmchan__latest_ops;
extern const shmchan__kind_ops shmchan__queue_ops;

#endif /* SHMCHAN_INTERNAL_H */
