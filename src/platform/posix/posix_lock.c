/*
 * Numbered locks as open-file-description (OFD) byte-range locks on the
 * backing object: one byte at offset LOCK_BASE + idx, far beyond any region.
 * OFD locks belong to the open object, not the process, so two handles in
 * one process are distinct peers, and the kernel drops them on close or
 * death: a lock that can be taken means its holder is gone, whatever pid
 * now runs. tmpfs (POSIX shm) and local filesystems support them.
 *
 * F_OFD_GETLK ignores the asking description's own locks, so each object
 * remembers which it holds (s->held) and the probe answers for those itself:
 * otherwise a handle that is both a reader and a writer would find its own
 * slot "free" and drop itself as dead.
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

/* Where idx is in s->held, or nheld if not there. Caller holds held_mu. */
static uint32_t
held_at(const shmchan__shm *s, uint32_t idx)
{
    uint32_t i = 0;
    while (i < s->nheld && s->held[i] != idx) {
        i++;
    }
    return i;
}

static bool
held_add(shmchan__shm *s, uint32_t idx)
{
    pthread_mutex_lock(&s->held_mu);
    uint32_t i = held_at(s, idx);
    bool ok = i < s->nheld || s->nheld < SHMCHAN__POSIX_HELD_MAX;
    if (ok && i == s->nheld) {
        s->held[s->nheld++] = idx;
    }
    pthread_mutex_unlock(&s->held_mu);
    return ok;
}

static void
held_remove(shmchan__shm *s, uint32_t idx)
{
    pthread_mutex_lock(&s->held_mu);
    uint32_t i = held_at(s, idx);
    if (i < s->nheld) {
        s->held[i] = s->held[--s->nheld];
    }
    pthread_mutex_unlock(&s->held_mu);
}

static bool
held_by_us(shmchan__shm *s, uint32_t idx)
{
    pthread_mutex_lock(&s->held_mu);
    bool held = held_at(s, idx) < s->nheld;
    pthread_mutex_unlock(&s->held_mu);
    return held;
}

int
shmchan__lock_try(shmchan__shm *s, uint32_t idx, bool exclusive)
{
    struct flock fl;
    lock_range(&fl, exclusive ? F_WRLCK : F_RDLCK, idx);
    if (fcntl(s->fd, F_OFD_SETLK, &fl) == 0) {
        if (held_add(s, idx)) {
            return SHMCHAN_OK;
        }
        shmchan__lock_drop(s, idx);
        return SHMCHAN_ELIMIT;
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
    held_remove(s, idx);
}

int
shmchan__lock_probe(shmchan__shm *s, uint32_t idx)
{
    if (held_by_us(s, idx)) {
        return SHMCHAN_EBUSY;
    }
    struct flock fl;
    lock_range(&fl, F_WRLCK, idx);
    if (fcntl(s->fd, F_OFD_GETLK, &fl) != 0) {
        return shmchan__posix_err(errno);
    }
    return fl.l_type == F_UNLCK ? SHMCHAN_OK : SHMCHAN_EBUSY;
}
