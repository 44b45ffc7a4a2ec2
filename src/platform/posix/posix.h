/* Private declarations of the POSIX platform files. */
#ifndef SHMCHAN_POSIX_H
#define SHMCHAN_POSIX_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include "platform/platform.h"

#include <stdatomic.h>

struct shmchan__shm {
    int fd;
    bool rdonly;
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
