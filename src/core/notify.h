/*
 * Readiness notifiers: the wake-up path for readers that wait in an event
 * loop (epoll, libuv, asyncio, WaitForMultipleObjects) instead of in our own
 * calls. The shared part is described in layout.h (SHMCHAN__NOTIFY_SLOTS);
 * docs/event-loops.md has the contract and the argument.
 *
 * Writers reach shmchan__notify_publish() through shmchan__wake_readers()
 * (wait.h), after the publisher's barrier of the sleepers handshake: one
 * relaxed load of a counter on the sleepers' line, no system call while no
 * notifier is armed.
 */
#ifndef SHMCHAN_NOTIFY_H
#define SHMCHAN_NOTIFY_H

#include "internal.h"

/* A channel's notifier table, as a process sees it. */
typedef struct shmchan__nfview {
    shmchan__atomic_u32 *armed_n; /* ctl: armed slots */
    shmchan__atomic_u32 *used;    /* ctl: slots ever taken (scan bound, clamped) */
    shmchan__atomic_u32 *slots;   /* ctl: SHMCHAN__NOTIFY_SLOTS armed words */
    uint64_t chan_id;             /* validated at open (shmchan__region.chan_id) */
    uint32_t name_base;           /* slot i is named name_base + i (side.h: its own range) */
} shmchan__nfview;

/* A handle's notifier: the slot it owns and the OS object that owns it. */
typedef struct shmchan__notifier {
    shmchan__nf_os *os;
    uint32_t slot;
} shmchan__notifier;

void shmchan__notify_fire(const shmchan__nfview *v);

/* After a publish and the publisher's barrier: signal armed notifiers. */
static inline void
shmchan__notify_publish(const shmchan__nfview *v)
{
    if (SHMCHAN__UNLIKELY(shmchan__load(v->armed_n, SHMCHAN__RELAXED) != 0)) {
        shmchan__notify_fire(v);
    }
}

/* Take a free slot (the first whose name we can bind): OK, ELIMIT when all
 * are taken, ENOTSUP, ENOMEM, ESYS. */
int shmchan__notifier_open(const shmchan__nfview *v, shmchan__notifier **out);
/* Disarm and free the slot (NULL is a no-op). */
void shmchan__notifier_close(const shmchan__nfview *v, shmchan__notifier *n);

/* What the sleepers handshake of the handle's channel needs (fenced NULL: a
 * read-only handle, which forces the publishers' barrier at each arming). */
typedef struct shmchan__nfsleep {
    bool asym;
    shmchan__atomic_u32 *fenced;    /* ctl's fenced count */
    shmchan__atomic_u32 *fenced_in; /* the handle's place in it */
} shmchan__nfsleep;

/*
 * Drain the notifier, arm it and look again: has_news(arg) says whether the
 * reader has something to receive. If it has, the notifier is made ready at
 * once (level semantics), so that nothing published between the caller's
 * last receive and the arming is missed. Returns false when the publishers'
 * barrier could not be forced (then a wake-up may be missed: poll too).
 */
bool shmchan__notifier_arm(const shmchan__nfview *v, shmchan__notifier *n,
                           const shmchan__nfsleep *sl, bool (*has_news)(void *), void *arg);

/* The table of a control block c (latest-value or queue: both end with
 * nf_armed, nf_used and notify), for a channel of identity id. */
#define SHMCHAN__NFVIEW_OF(c, id)                                                               \
    ((shmchan__nfview){.armed_n = &(c)->nf_armed, .used = &(c)->nf_used, .slots = (c)->notify,  \
                       .chan_id = (id), .name_base = 0})
/* When the first handle attaches after every other one is gone. */
void shmchan__nfview_reset(const shmchan__nfview *v);

#endif /* SHMCHAN_NOTIFY_H */
