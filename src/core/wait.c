/*
 * Spin-then-sleep on a shared 32-bit word.
 *
 * The spin matters on virtual machines that halt idle vCPUs: a kernel wake-up
 * there costs tens of microseconds, so a peer that answers within the spin
 * window is seen without any system call on either side.
 */
#include "internal.h"

uint64_t
shmchan__deadline(int64_t timeout_ms)
{
    if (timeout_ms < 0) {
        return 0;
    }
    return shmchan__now_ns() + (uint64_t)timeout_ms * (uint64_t)SHMCHAN__NS_PER_MS;
}

bool
shmchan__spin_on(const shmchan__region *r, shmchan__atomic_u32 *word, uint32_t expected)
{
    uint32_t spin_ns = r->spin_ns;
    if (spin_ns == 0) {
        return false;
    }
    uint64_t end = shmchan__now_ns() + spin_ns;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (shmchan__load(word, SHMCHAN__ACQUIRE) != expected) {
                return true;
            }
            shmchan__cpu_relax();
        }
        if (shmchan__now_ns() >= end) {
            return false;
        }
    }
}

int
shmchan__sleep_on(const shmchan__region *r, shmchan__atomic_u32 *word, uint32_t expected,
                  uint64_t deadline_ns)
{
    int64_t left = -1;
    if (deadline_ns != 0) {
        uint64_t now = shmchan__now_ns();
        if (now >= deadline_ns) {
            return SHMCHAN_ETIMEDOUT;
        }
        left = (int64_t)(deadline_ns - now);
    }
    return shmchan__wait(r->shm, word, expected, left);
}
