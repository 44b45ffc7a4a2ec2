/*
 * Cross-process waiting: Linux futexes on a word of the shared mapping, with
 * the shared (not PRIVATE) operations, since waiter and waker are different
 * processes. Elsewhere a bounded sleep-poll stands in.
 */
#include "platform/posix/posix.h"

#include <errno.h>
#include <limits.h>
#include <time.h>

#ifdef __linux__
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

int
shmchan__wait(shmchan__shm *s, const shmchan__atomic_u32 *word, uint32_t expected,
              int64_t timeout_ns)
{
    (void)s;
    struct timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        tsp = &ts;
    }
    long r = syscall(SYS_futex, (const void *)word, FUTEX_WAIT, expected, tsp, NULL, 0);
    if (r == 0 || errno == EAGAIN) {
        return SHMCHAN_OK;
    }
    if (errno == ETIMEDOUT) {
        return SHMCHAN_ETIMEDOUT;
    }
    if (errno == EINTR) {
        return SHMCHAN_EINTR;
    }
    return shmchan__posix_err(errno);
}

void
shmchan__wake_all(shmchan__shm *s, const shmchan__atomic_u32 *word)
{
    (void)s;
    (void)syscall(SYS_futex, (const void *)word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/*
 * membarrier(2) (Linux 4.16+): registered processes have their running
 * threads interrupted into a full barrier by GLOBAL_EXPEDITED. Where it is
 * missing or filtered, nobody here registers and everyone fences.
 */
static long
membarrier(int cmd)
{
#ifdef SYS_membarrier
    return syscall(SYS_membarrier, cmd, 0, 0);
#else
    (void)cmd;
    errno = ENOSYS;
    return -1;
#endif
}

/* 0 not yet asked, 1 registered, 2 unavailable. */
static shmchan__atomic_u32 asym_state;

bool
shmchan__asym_register(void)
{
    uint32_t st = atomic_load_explicit(&asym_state, memory_order_acquire);
    if (st == 0) {
        long q = membarrier(MEMBARRIER_CMD_QUERY);
        bool ok = q > 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED) &&
                  membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0;
        st = ok ? 1 : 2;
        atomic_store_explicit(&asym_state, st, memory_order_release);
    }
    return st == 1;
}

bool
shmchan__fence_slow(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    return membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
}

#else /* no futex: poll every 50 µs */

int
shmchan__wait(shmchan__shm *s, const shmchan__atomic_u32 *word, uint32_t expected,
              int64_t timeout_ns)
{
    (void)s;
    uint64_t step = 50 * 1000;
    if (atomic_load(word) != expected) {
        return SHMCHAN_OK;
    }
    if (timeout_ns >= 0 && (uint64_t)timeout_ns < step) {
        shmchan__sleep_ns((uint64_t)timeout_ns);
        return atomic_load(word) != expected ? SHMCHAN_OK : SHMCHAN_ETIMEDOUT;
    }
    shmchan__sleep_ns(step);
    return SHMCHAN_OK;
}

void
shmchan__wake_all(shmchan__shm *s, const shmchan__atomic_u32 *word)
{
    (void)s;
    (void)word;
}

bool
shmchan__asym_register(void)
{
    return false;
}

bool
shmchan__fence_slow(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    return true; /* nobody registers here: every publisher fences */
}
#endif
