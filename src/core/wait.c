/*
 * Waiting and waking (the handshake is described in wait.h): sleeping on a
 * shared 32-bit word, the sleepers' barriers, the adaptive spin, deadlines.
 * The spins themselves live with their callers, which know what to look at
 * (latest.c, ring_read.c, ring_write.c): they matter on virtual machines that
 * halt idle vCPUs, where a kernel wake-up costs tens of microseconds.
 */
#include "wait.h"

uint64_t
shmchan__deadline(int64_t timeout_ms)
{
    if (timeout_ms < 0) {
        return 0;
    }
    return shmchan__now_ns() + (uint64_t)timeout_ms * (uint64_t)SHMCHAN__NS_PER_MS;
}

void
shmchan__spin_learn(shmchan__region *r, uint64_t waited_ns)
{
    uint64_t cur = shmchan__spin_now(r);
    uint64_t max = (uint64_t)r->spin_ns * SHMCHAN__SPIN_STRETCH;
    max = max > UINT32_MAX ? UINT32_MAX : max;
    uint64_t next = waited_ns <= 2 * cur ? 2 * cur : cur / 2;
    next = next > max ? max : next < r->spin_ns ? r->spin_ns : next;
    shmchan__store(&r->spin_now, (uint32_t)next, SHMCHAN__RELAXED);
}

int
shmchan__wait_sleep(shmchan__shm *shm, shmchan__atomic_u32 *word, uint32_t w, uint64_t slice_ns,
                    uint64_t deadline_ns)
{
    uint64_t now = shmchan__now_ns();
    uint64_t until = now + slice_ns;
    if (deadline_ns != 0 && deadline_ns < until) {
        if (now >= deadline_ns) {
            return SHMCHAN_ETIMEDOUT;
        }
        until = deadline_ns;
    }
    int rc = shmchan__wait(shm, word, w, (int64_t)(until - now));
    if (rc == SHMCHAN_ETIMEDOUT && (deadline_ns == 0 || shmchan__now_ns() < deadline_ns)) {
        rc = SHMCHAN_OK; /* the slice ended, not the caller's time */
    }
    return rc;
}

uint64_t
shmchan__fence_sleeper(bool asym, shmchan__atomic_u32 *fenced, shmchan__atomic_u32 *in,
                       bool often, uint64_t slice_ns)
{
    uint32_t st = shmchan__load(in, SHMCHAN__ACQUIRE);
    if (st == SHMCHAN__FENCED_IN) {
        shmchan__fence(SHMCHAN__SEQ_CST);
        return slice_ns;
    }
    if (often && asym && st == 0 && shmchan__cas(in, &st, SHMCHAN__FENCED_JOINING)) {
        shmchan__fetch_add(fenced, 1, SHMCHAN__SEQ_CST);
        if (shmchan__fence_slow()) {
            shmchan__store(in, SHMCHAN__FENCED_IN, SHMCHAN__RELEASE);
            return slice_ns;
        }
        shmchan__fetch_sub(fenced, 1, SHMCHAN__RELAXED); /* could not force: as before */
        shmchan__store(in, 0, SHMCHAN__RELEASE);
    }
    return shmchan__fence_waiter(slice_ns);
}

void
shmchan__fence_sleeper_leave(shmchan__atomic_u32 *fenced, shmchan__atomic_u32 *in)
{
    if (shmchan__exchange(in, 0, SHMCHAN__ACQ_REL) == SHMCHAN__FENCED_IN) {
        shmchan__fetch_sub(fenced, 1, SHMCHAN__RELAXED);
    }
}
