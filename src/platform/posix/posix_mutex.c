/*
 * Robust process-shared pthread mutexes in the mapping. When a holder dies,
 * the kernel (robust futex list) marks the mutex and the next locker gets
 * EOWNERDEAD, which we report as SHMCHAN__OWNER_DIED after making it
 * consistent. Error checking turns a relock by the holder into EDEADLK.
 */
#include "platform/posix/posix.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

_Static_assert(sizeof(pthread_mutex_t) <= SHMCHAN__MUTEX_SIZE, "mutex fits its slot");

int
shmchan__mutex_init(shmchan__shm *s, void *m)
{
    (void)s;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    memset(m, 0, SHMCHAN__MUTEX_SIZE);
    int e = pthread_mutex_init((pthread_mutex_t *)m, &a);
    pthread_mutexattr_destroy(&a);
    return e == 0 ? SHMCHAN_OK : shmchan__posix_err(e);
}

int
shmchan__mutex_lock(shmchan__shm *s, void *m, int64_t timeout_ns)
{
    (void)s;
    pthread_mutex_t *mx = m;
    int e;
    if (timeout_ns < 0) {
        e = pthread_mutex_lock(mx);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + timeout_ns;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        e = pthread_mutex_timedlock(mx, &ts);
    }
    switch (e) {
    case 0:
        return SHMCHAN_OK;
    case EOWNERDEAD:
        pthread_mutex_consistent(mx);
        return SHMCHAN__OWNER_DIED;
    case ETIMEDOUT:
        return SHMCHAN_ETIMEDOUT;
    case EDEADLK:
        return SHMCHAN_ESTATE;
    default:
        return SHMCHAN_ECORRUPT; /* EINVAL, ENOTRECOVERABLE: not a usable mutex */
    }
}

void
shmchan__mutex_unlock(shmchan__shm *s, void *m)
{
    (void)s;
    (void)pthread_mutex_unlock((pthread_mutex_t *)m);
}
