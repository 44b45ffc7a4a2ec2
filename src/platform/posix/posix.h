/* Private declarations of the POSIX platform files. */
#ifndef SHMCHAN_POSIX_H
#define SHMCHAN_POSIX_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "platform/platform.h"

#include <pthread.h>
#include <stdatomic.h>

/* Locks this object holds (posix_lock.c): F_OFD_GETLK does not report an open
 * file description's own locks, so the probe looks here first. A handle holds
 * a few at most (OPEN, INIT, a reader slot, a writer slot). */
#define SHMCHAN__POSIX_HELD_MAX 8

struct shmchan__shm {
    int fd;
    bool rdonly;
    pthread_mutex_t held_mu;
    uint32_t nheld;
    uint32_t held[SHMCHAN__POSIX_HELD_MAX];
    void *base;       /* the one mapping, or NULL */
    uint64_t len;
    atomic_int faulted; /* set by the SIGBUS guard */
};

/* Map an errno value to a shmchan code, recording it for shmchan_last_oserror(). */
int shmchan__posix_err(int e);

/* SIGBUS guard: accesses to [base, base+len) that hit truncated storage get
 * zero pages instead of a signal, and *faulted is set. fd is the mapped
 * object, open until guard_remove. Also (re)installs the handler. */
int shmchan__posix_guard_add(void *base, uint64_t len, atomic_int *faulted, int fd);
void shmchan__posix_guard_remove(void *base);

#endif /* SHMCHAN_POSIX_H */
