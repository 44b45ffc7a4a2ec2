/*
 * Slot locks: a lock word in shared memory that names its holder by slot,
 * never by address, shared by the queue's claim lock and the latest-value
 * writers' lock (docs/design.md, "Slot locks").
 *
 * The word is 0 when free, else gen << 32 | (slot + 1): the holder's slot in
 * its table and the generation of that slot's current owner. Taking it is one
 * CAS from 0, releasing it one release store of 0. A slot's owner holds the
 * slot's kernel lock (SHMCHAN__LOCK_SLOTS + index) for the life of its
 * handle, so a contender can tell a dead owner from a live one without
 * trusting any pid or address; a word that names no slot, a free slot, another
 * generation or (where the kind records it) an owner not holding the lock is
 * forged or stale and is stolen like a dead owner's. Every field involved is
 * data a peer can forge, and each is validated before use.
 */
#ifndef SHMCHAN_SLOTLOCK_H
#define SHMCHAN_SLOTLOCK_H

#include "wait.h"

/* Lock word naming the owner of slot idx in generation gen. */
static inline uint64_t
shmchan__owner_word(uint64_t gen, uint32_t idx)
{
    return gen << 32 | (uint64_t)(idx + 1);
}

/*
 * Whether the owner that word names is gone, given its slot's state (gen << 32
 * | role, as read) and kernel lock index: another generation, a free slot, or
 * a free kernel lock (the owner's process closed or died).
 */
bool shmchan__owner_slot_gone(shmchan__shm *shm, uint64_t word, uint64_t state, uint32_t lock_idx);

typedef struct shmchan__slock {
    shmchan__shm *shm;
    shmchan__atomic_u64 *word;
    /* Sleepers: contenders count themselves in `waiters` and sleep on `wake`,
     * which a releaser bumps when it sees waiters. NULL: nap instead. */
    shmchan__atomic_u32 *waiters;
    shmchan__atomic_u32 *wake;
    /* Whether the owner named by word is gone; *mark receives what the
     * verdict rests on, for kept(). */
    bool (*gone)(const void *ctx, uint64_t word, uint64_t *mark);
    /* After a successful steal: whether the verdict still stands (NULL:
     * always). If not, the word is given back and the contender waits on. */
    bool (*kept)(const void *ctx, uint64_t word, uint64_t mark);
    const void *ctx;
} shmchan__slock;

/* How often a sleeping contender looks at the owner again. */
#define SHMCHAN__SLOCK_RECHECK_NS (10ull * 1000 * 1000)

/* The lock was taken from a dead or forged owner: the caller repairs. */
#define SHMCHAN__SLOCK_STOLEN 1

/*
 * Take the lock after the fast CAS failed: spin, then look at the owner, then
 * sleep or nap, and look again at least every SHMCHAN__SLOCK_RECHECK_NS, so
 * that no forged or stale owner blocks for ever. wait_ns < 0: no limit.
 * Returns OK, SHMCHAN__SLOCK_STOLEN, ETIMEDOUT or ETRUNCATED.
 */
int shmchan__slock_slow(const shmchan__slock *l, uint64_t me, int64_t wait_ns);

static inline int
shmchan__slock_take(const shmchan__slock *l, uint64_t me, int64_t wait_ns)
{
    uint64_t free_word = 0;
    if (SHMCHAN__LIKELY(shmchan__cas(l->word, &free_word, me))) {
        return SHMCHAN_OK;
    }
    return shmchan__slock_slow(l, me, wait_ns);
}

/*
 * After a release store of 0 and the publisher's barrier (wait.h): wake
 * the sleeping contenders, if any. A system call only when somebody sleeps.
 */
static inline void
shmchan__slock_wake(const shmchan__slock *l)
{
    shmchan__wake(l->shm, l->waiters, l->wake, true);
}

#endif /* SHMCHAN_SLOTLOCK_H */
