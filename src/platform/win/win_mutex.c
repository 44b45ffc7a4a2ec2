/*
 * Robust mutexes as named mutexes, "<prefix>.m<offset>" for the mutex bytes
 * at that offset of the mapping. Windows marks a mutex abandoned when its
 * owning thread ends, by exit or by TerminateProcess, and hands it to the
 * next waiter with WAIT_ABANDONED: reported as SHMCHAN__OWNER_DIED. A named
 * mutex exists while some handle to it does; every object opens it on first
 * use and keeps it until closed, so a holder's death is seen by any peer
 * that has used the lock before.
 *
 * Ownership is per thread, like an error-checking pthread mutex: relocking
 * from the holding thread returns SHMCHAN_ESTATE, and unlock must come from
 * the thread that locked. The 64 bytes in the mapping hold only a magic
 * written by init, so that bytes that were never initialised as a mutex (or
 * were scribbled over) give SHMCHAN_ECORRUPT as on POSIX.
 */
#if defined(SHMCHAN_PLATFORM_WIN)

#include "platform/win/win.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MUTEX_MAGIC UINT64_C(0x58544d4e49574353) /* "SCWINMTX" */

int
shmchan__mutex_init(shmchan__shm *s, void *m)
{
    (void)s;
    uint64_t magic = MUTEX_MAGIC;
    memset(m, 0, SHMCHAN__MUTEX_SIZE);
    memcpy(m, &magic, sizeof(magic));
    return SHMCHAN_OK;
}

/* This object's handle on the mutex at off, opened (create) on first use. */
static shmchan__win_mutex *
find(shmchan__shm *s, uint64_t off, bool create, int *rc)
{
    shmchan__win_mutex *found = NULL;
    *rc = SHMCHAN_OK;
    EnterCriticalSection(&s->cs);
    for (uint32_t i = 0; i < s->nmutexes && found == NULL; i++) {
        if (s->mutexes[i]->off == off) {
            found = s->mutexes[i];
        }
    }
    if (found == NULL && create) {
        shmchan__win_mutex **grown = realloc(s->mutexes, (s->nmutexes + 1) * sizeof(*grown));
        shmchan__win_mutex *e = calloc(1, sizeof(*e));
        if (grown != NULL) {
            s->mutexes = grown;
        }
        if (grown == NULL || e == NULL) {
            free(e);
            *rc = SHMCHAN_ENOMEM;
        } else {
            char suffix[32];
            wchar_t name[SHMCHAN__WIN_OBJ_NAME];
            (void)snprintf(suffix, sizeof(suffix), ".m%llx", (unsigned long long)off);
            shmchan__win_obj_name(s, suffix, name);
            e->off = off;
            e->h = CreateMutexW(NULL, FALSE, name);
            if (e->h == NULL) {
                *rc = shmchan__win_err(GetLastError());
                free(e);
            } else {
                s->mutexes[s->nmutexes++] = e;
                found = e;
            }
        }
    }
    LeaveCriticalSection(&s->cs);
    return found;
}

int
shmchan__mutex_lock(shmchan__shm *s, void *m, int64_t timeout_ns)
{
    uint64_t magic;
    memcpy(&magic, m, sizeof(magic));
    if (magic != MUTEX_MAGIC) {
        return SHMCHAN_ECORRUPT;
    }
    int rc;
    shmchan__win_mutex *e = find(s, shmchan__win_offset(s, m), true, &rc);
    if (e == NULL) {
        return rc;
    }
    uint32_t self = (uint32_t)GetCurrentThreadId();
    if (shmchan__load(&e->owner, SHMCHAN__RELAXED) == self) {
        return SHMCHAN_ESTATE; /* Windows mutexes are recursive; ours are not */
    }
    DWORD ms = INFINITE;
    if (timeout_ns >= 0) {
        uint64_t t = ((uint64_t)timeout_ns + 999999u) / 1000000u;
        ms = t >= INFINITE ? INFINITE - 1 : (DWORD)t;
    }
    switch (WaitForSingleObject(e->h, ms)) {
    case WAIT_OBJECT_0:
        shmchan__store(&e->owner, self, SHMCHAN__RELAXED);
        return SHMCHAN_OK;
    case WAIT_ABANDONED:
        shmchan__store(&e->owner, self, SHMCHAN__RELAXED);
        return SHMCHAN__OWNER_DIED;
    case WAIT_TIMEOUT:
        return SHMCHAN_ETIMEDOUT;
    default:
        return shmchan__win_err(GetLastError());
    }
}

void
shmchan__mutex_unlock(shmchan__shm *s, void *m)
{
    int rc;
    shmchan__win_mutex *e = find(s, shmchan__win_offset(s, m), false, &rc);
    uint32_t self = (uint32_t)GetCurrentThreadId();
    if (e != NULL && shmchan__load(&e->owner, SHMCHAN__RELAXED) == self) {
        shmchan__store(&e->owner, 0, SHMCHAN__RELAXED);
        (void)ReleaseMutex(e->h);
    }
}

#endif /* SHMCHAN_PLATFORM_WIN */
