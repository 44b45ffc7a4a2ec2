/*
 * Numbered locks as open-file-description (OFD) byte-range locks on the
 * backing object: one byte at offset LOCK_BASE + idx, far beyond any region.
 * OFD locks belong to the open object, not the process, so two handles in
 * one process are distinct peers, and the kernel drops them on close or
 * death: a lock that can be taken means its holder is gone, whatever pid
 * now runs. tmpfs (POSIX shm) and local filesystems support them.
 */
#include "platform/posix/posix.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define LOCK_BASE (INT64_C(1) << 40)

static void
lock_range(struct flock *fl, short type, uint32_t idx)
{
    memset(fl, 0, sizeof(*fl));
    fl->l_type = type;
    fl->l_whence = SEEK_SET;
    fl->l_start = (off_t)(LOCK_BASE + idx);
    fl->l_len = 1;
}

int
shmchan__lock_try(shmchan__shm *s, uint32_t idx, bool exclusive)
{
    struct flock fl;
    lock_range(&fl, exclusive ? F_WRLCK : F_RDLCK, idx);
    if (fcntl(s->fd, F_OFD_SETLK, &fl) == 0) {
        return SHMCHAN_OK;
    }
    if (errno == EAGAIN || errno == EACCES) {
        return SHMCHAN_EBUSY;
    }
    if (errno == EBADF && exclusive) {
        return SHMCHAN_EBUSY; /* a read-only fd cannot hold a write lock */
    }
    return shmchan__posix_err(errno);
}

void
shmchan__lock_drop(shmchan__shm *s, uint32_t idx)
{
    struct flock fl;
    lock_range(&fl, F_UNLCK, idx);
    (void)fcntl(s->fd, F_OFD_SETLK, &fl);
}

int
shmchan__lock_probe(shmchan__shm *s, uint32_t idx)
{
    struct flock fl;
    lock_range(&fl, F_WRLCK, idx);
    if (fcntl(s->fd, F_OFD_GETLK, &fl) != 0) {
        return shmchan__posix_err(errno);
    }
    return fl.l_type == F_UNLCK ? SHMCHAN_OK : SHMCHAN_EBUSY;
}
