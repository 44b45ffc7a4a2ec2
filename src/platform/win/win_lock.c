/*
 * Numbered locks as LockFileEx byte-range locks: one byte at LOCK_BASE + idx,
 * far beyond any region, on the backing file (file channels) or on a lock
 * file (named channels, which have no file). Windows byte-range locks belong
 * to the file handle, not the process or thread, so two handles in one
 * process are distinct peers, and the kernel drops them when the handle is
 * closed or its process dies: the same semantics as POSIX OFD locks.
 * Named mutexes were the alternative, but a mutex belongs to a thread and
 * has no shared mode, and SHMCHAN__LOCK_OPEN is held shared by every handle.
 *
 * Differences from OFD locks, all handled here:
 *   - Windows locks stack (a handle may lock a byte twice): held[] tracks
 *     what this object holds so that a repeated request is a no-op.
 *   - There is no conversion. A downgrade is atomic (a shared lock may
 *     overlap the same handle's exclusive lock, and the next unlock removes
 *     the exclusive one, which came first); an upgrade is unlock + lock, and
 *     on failure the shared lock is taken back, which can itself fail if
 *     another handle took the lock exclusively in between.
 *   - There is no F_GETLK: a probe takes the lock exclusively and releases
 *     it at once, so it can make a concurrent lock_try fail spuriously (the
 *     core retries those). A lock held shared by this very object probes
 *     busy, since other shared holders cannot be told apart from ours.
 *   - Locks are mandatory for ReadFile/WriteFile on the locked bytes; nobody
 *     reads bytes that far beyond a region.
 *
 * Lock files of named channels are "<dir>\s<session>.<name>.lock" (Local\
 * channels: the session is part of the namespace) or "<dir>\g.<name>.lock"
 * (Global\), where <dir> is %ProgramData%\shmchan (shared by every user, as
 * Global\ channels are), or %TEMP%\shmchan without ProgramData. They are
 * empty. The last user of a channel removes its lock file: every user holds
 * the ATTACH byte shared; a closer that then gets it exclusively is alone
 * and marks the file for deletion before closing it. An opener takes ATTACH
 * shared before trusting its handle and retries when it cannot, or when the
 * file is already marked (Windows reports DeletePending; Wine keeps the name
 * until the last handle closes, so late openers still meet on one file).
 */
#if defined(SHMCHAN_PLATFORM_WIN)

#include "platform/win/win.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define LOCK_BASE (UINT64_C(1) << 40)
#define ATTACH_OFF (LOCK_BASE - 1)
#define OPEN_RETRY_MS 2000
#define MAX_LOCKS (1u << 20)

enum { HELD_NONE, HELD_SHARED, HELD_EXCL };

static bool
range_lock(HANDLE h, uint64_t off, bool exclusive)
{
    OVERLAPPED ov;
    memset(&ov, 0, sizeof(ov));
    ov.Offset = (DWORD)off;
    ov.OffsetHigh = (DWORD)(off >> 32);
    DWORD fl = LOCKFILE_FAIL_IMMEDIATELY | (exclusive ? LOCKFILE_EXCLUSIVE_LOCK : 0);
    return LockFileEx(h, fl, 0, 1, 0, &ov) != 0;
}

static void
range_unlock(HANDLE h, uint64_t off)
{
    OVERLAPPED ov;
    memset(&ov, 0, sizeof(ov));
    ov.Offset = (DWORD)off;
    ov.OffsetHigh = (DWORD)(off >> 32);
    (void)UnlockFileEx(h, 0, 1, 0, &ov);
}

static int
lock_failure(void)
{
    DWORD e = GetLastError();
    return e == ERROR_LOCK_VIOLATION || e == ERROR_IO_PENDING ? SHMCHAN_EBUSY
                                                                : shmchan__win_err(e);
}

/* Make held[idx] addressable; false when out of memory. Caller holds cs. */
static bool
held_slot(shmchan__shm *s, uint32_t idx)
{
    if (idx < s->nheld) {
        return true;
    }
    if (idx >= MAX_LOCKS) {
        return false;
    }
    uint32_t n = s->nheld == 0 ? 256 : s->nheld;
    while (n <= idx) {
        n *= 2;
    }
    uint8_t *p = realloc(s->held, n);
    if (p == NULL) {
        return false;
    }
    memset(p + s->nheld, HELD_NONE, n - s->nheld);
    s->held = p;
    s->nheld = n;
    return true;
}

int
shmchan__lock_try(shmchan__shm *s, uint32_t idx, bool exclusive)
{
    HANDLE h = s->lockfile;
    uint64_t off = LOCK_BASE + idx;
    uint8_t want = exclusive ? HELD_EXCL : HELD_SHARED;
    int rc = SHMCHAN_OK;
    EnterCriticalSection(&s->cs);
    if (!held_slot(s, idx)) {
        rc = SHMCHAN_ENOMEM;
    } else if (s->held[idx] == want) {
        /* already so */
    } else if (s->held[idx] == HELD_NONE) {
        if (range_lock(h, off, exclusive)) {
            s->held[idx] = want;
        } else {
            rc = lock_failure();
        }
    } else if (s->held[idx] == HELD_EXCL) {
        if (range_lock(h, off, false)) { /* overlaps our own exclusive lock */
            range_unlock(h, off);        /* removes the exclusive one */
            s->held[idx] = HELD_SHARED;
        } else {
            rc = lock_failure();
        }
    } else {
        range_unlock(h, off);
        if (range_lock(h, off, true)) {
            s->held[idx] = HELD_EXCL;
        } else {
            rc = lock_failure();
            s->held[idx] = range_lock(h, off, false) ? HELD_SHARED : HELD_NONE;
        }
    }
    LeaveCriticalSection(&s->cs);
    return rc;
}

void
shmchan__lock_drop(shmchan__shm *s, uint32_t idx)
{
    EnterCriticalSection(&s->cs);
    if (idx < s->nheld && s->held[idx] != HELD_NONE) {
        range_unlock(s->lockfile, LOCK_BASE + idx);
        s->held[idx] = HELD_NONE;
    }
    LeaveCriticalSection(&s->cs);
}

int
shmchan__lock_probe(shmchan__shm *s, uint32_t idx)
{
    int rc;
    EnterCriticalSection(&s->cs);
    uint8_t have = idx < s->nheld ? s->held[idx] : HELD_NONE;
    if (have != HELD_NONE) {
        rc = SHMCHAN_EBUSY; /* held by us */
    } else if (range_lock(s->lockfile, LOCK_BASE + idx, true)) {
        range_unlock(s->lockfile, LOCK_BASE + idx);
        rc = SHMCHAN_OK;
    } else {
        rc = lock_failure();
    }
    LeaveCriticalSection(&s->cs);
    return rc;
}

/* ------------------------------------------------------------ lock files */

/* "<dir>\<file>" for a named channel's lock file, creating <dir>. */
static wchar_t *
lock_path(const char *name, bool global, int *rc)
{
    wchar_t dir[MAX_PATH + 1];
    DWORD n = GetEnvironmentVariableW(L"ProgramData", dir, MAX_PATH - 16);
    if (n == 0 || n >= MAX_PATH - 16) {
        n = GetTempPathW(MAX_PATH - 16, dir);
        if (n == 0 || n >= MAX_PATH - 16) {
            *rc = shmchan__win_err(GetLastError());
            return NULL;
        }
    }
    while (n > 0 && (dir[n - 1] == L'\\' || dir[n - 1] == L'/')) {
        n--;
    }
    memcpy(dir + n, L"\\shmchan", 9 * sizeof(wchar_t));
    if (!CreateDirectoryW(dir, NULL) && GetLastError() != ERROR_ALREADY_EXISTS) {
        *rc = shmchan__win_err(GetLastError());
        return NULL;
    }
    char file[64];
    DWORD session = 0;
    if (global) {
        (void)snprintf(file, sizeof(file), "\\g.%s.lock", name);
    } else {
        if (!ProcessIdToSessionId(GetCurrentProcessId(), &session)) {
            session = 0;
        }
        (void)snprintf(file, sizeof(file), "\\s%lu.%s.lock", (unsigned long)session, name);
    }
    size_t d = wcslen(dir), f = strlen(file);
    wchar_t *path = malloc((d + f + 1) * sizeof(wchar_t));
    if (path == NULL) {
        *rc = SHMCHAN_ENOMEM;
        return NULL;
    }
    memcpy(path, dir, d * sizeof(wchar_t));
    for (size_t i = 0; i <= f; i++) {
        path[d + i] = (wchar_t)(unsigned char)file[i];
    }
    *rc = SHMCHAN_OK;
    return path;
}

/* Open the lock file and attach to it; INVALID_HANDLE_VALUE to retry. */
static HANDLE
attach_once(const wchar_t *path, DWORD *err)
{
    DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
    /* DELETE lets the last user remove it; a user of another account may lack it. */
    HANDLE h = CreateFileW(path, GENERIC_READ | DELETE, share, NULL, OPEN_ALWAYS,
                           FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE && GetLastError() == ERROR_ACCESS_DENIED) {
        h = CreateFileW(path, GENERIC_READ, share, NULL, OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL,
                        NULL);
    }
    *err = GetLastError();
    if (h == INVALID_HANDLE_VALUE) {
        return h; /* ACCESS_DENIED also while a deletion is pending: retried */
    }
    *err = ERROR_SUCCESS;
    FILE_STANDARD_INFO si;
    if (!range_lock(h, ATTACH_OFF, false) ||
        (GetFileInformationByHandleEx(h, FileStandardInfo, &si, sizeof(si)) &&
         si.DeletePending)) {
        CloseHandle(h); /* its last user is removing it */
        return INVALID_HANDLE_VALUE;
    }
    return h;
}

int
shmchan__win_lockfile_open(shmchan__shm *s, const char *name, bool global)
{
    int rc;
    wchar_t *path = lock_path(name, global, &rc);
    if (path == NULL) {
        return rc;
    }
    ULONGLONG start = GetTickCount64();
    for (;;) {
        DWORD e;
        HANDLE h = attach_once(path, &e);
        if (h != INVALID_HANDLE_VALUE) {
            s->lockfile = h;
            s->lock_path = path;
            return SHMCHAN_OK;
        }
        bool retry = e == ERROR_SUCCESS || e == ERROR_ACCESS_DENIED;
        if (!retry || GetTickCount64() - start > OPEN_RETRY_MS) {
            free(path);
            return shmchan__win_err(e == ERROR_SUCCESS ? ERROR_LOCK_VIOLATION : e);
        }
        Sleep(1);
    }
}

void
shmchan__win_lockfile_close(shmchan__shm *s)
{
    HANDLE h = s->lockfile;
    if (h == INVALID_HANDLE_VALUE) {
        return;
    }
    range_unlock(h, ATTACH_OFF);
    if (range_lock(h, ATTACH_OFF, true)) {
        /* Nobody else is attached: remove the file (needs DELETE access; without
         * it the empty file stays, which is harmless). */
        FILE_DISPOSITION_INFO di;
        di.DeleteFile = TRUE;
        (void)SetFileInformationByHandle(h, FileDispositionInfo, &di, sizeof(di));
    }
    CloseHandle(h);
    s->lockfile = INVALID_HANDLE_VALUE;
}

#endif /* SHMCHAN_PLATFORM_WIN */
