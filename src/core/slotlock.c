/*
 * Slot locks (protocol in slotlock.h, argument in docs/design.md).
 */
#include "slotlock.h"

#define LOCK_SPINS 256u
#define LOCK_NAP_NS (20ull * 1000)

bool
shmchan__owner_slot_gone(shmchan__shm *shm, uint64_t word, uint64_t state, uint32_t lock_idx)
{
    if ((state >> 32) != (word >> 32) || (uint32_t)state == 0) {
        return true; /* the slot was freed or taken over since, or never held it */
    }
    return shmchan__lock_probe(shm, lock_idx) == SHMCHAN_OK;
}

/*
 * Sleep once while the word still holds cur: count in, barrier (the
 * releaser's store of 0 or our count is seen, see wait.h), look again,
 * sleep for at most the recheck period.
 */
static void
sleep_once(const shmchan__slock *l, uint64_t cur)
{
    uint32_t w = shmchan__wait_in(l->waiters, l->wake, NULL);
    uint64_t slice = shmchan__fence_waiter(SHMCHAN__SLOCK_RECHECK_NS);
    if (shmchan__load(l->word, SHMCHAN__SEQ_CST) == cur) {
        (void)shmchan__wait_sleep(l->shm, l->wake, w, slice, 0);
    }
    shmchan__wait_out(l->waiters);
}

/* Steal the word cur from a gone owner: OK when ours and the verdict stands. */
static bool
steal(const shmchan__slock *l, uint64_t cur, uint64_t me, uint64_t mark)
{
    uint64_t seen = cur;
    if (!shmchan__cas(l->word, &seen, me)) {
        return false;
    }
    if (l->kept == NULL || l->kept(l->ctx, cur, mark)) {
        return true;
    }
    /* The owner took the lock again in between (the same word): give it back.
     * Nothing was written under it. */
    uint64_t mine = me;
    (void)shmchan__cas(l->word, &mine, cur);
    return false;
}

int
shmchan__slock_slow(const shmchan__slock *l, uint64_t me, int64_t wait_ns)
{
    uint64_t until = 0;
    for (uint32_t i = 1;; i++) {
        uint64_t cur = shmchan__load(l->word, SHMCHAN__ACQUIRE);
        if (cur == 0) {
            if (shmchan__cas(l->word, &cur, me)) {
                return SHMCHAN_OK;
            }
            continue;
        }
        if (i % LOCK_SPINS != 0) {
            shmchan__cpu_relax();
            continue;
        }
        uint64_t mark = 0;
        if (l->gone(l->ctx, cur, &mark)) {
            if (steal(l, cur, me, mark)) {
                return SHMCHAN__SLOCK_STOLEN;
            }
            continue;
        }
        if (shmchan__shm_faulted(l->shm)) {
            return SHMCHAN_ETRUNCATED;
        }
        if (wait_ns >= 0) {
            uint64_t now = shmchan__now_ns();
            if (until == 0) {
                until = now + (uint64_t)wait_ns;
            } else if (now >= until) {
                return SHMCHAN_ETIMEDOUT;
            }
        }
        if (l->waiters != NULL) {
            sleep_once(l, cur);
        } else {
            shmchan__sleep_ns(LOCK_NAP_NS); /* the holder may be descheduled */
        }
    }
}
