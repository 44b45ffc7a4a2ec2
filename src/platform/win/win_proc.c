/* Processes, clocks, strings and OS error mapping on Windows. */
#if defined(SHMCHAN_PLATFORM_WIN)

#include "platform/win/win.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static SHMCHAN__WIN_TLS int last_oserror;

shmchan__atomic_u32 shmchan__forks; /* Windows has no fork: stays 0 */

void
shmchan__fork_watch(void)
{
}

void
shmchan__oserror_set(int err)
{
    last_oserror = err;
}

int
shmchan__oserror_get(void)
{
    return last_oserror;
}

int
shmchan__win_err(DWORD e)
{
    shmchan__oserror_set((int)e);
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE:
    case ERROR_BAD_NETPATH:
        return SHMCHAN_ENOENT;
    case ERROR_FILE_EXISTS:
    case ERROR_ALREADY_EXISTS:
        return SHMCHAN_EEXIST;
    case ERROR_ACCESS_DENIED:
    case ERROR_PRIVILEGE_NOT_HELD:
    case ERROR_SHARING_VIOLATION:
    case ERROR_WRITE_PROTECT:
        return SHMCHAN_EACCES;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
    case ERROR_COMMITMENT_LIMIT:
    case ERROR_FILE_TOO_LARGE:
        return SHMCHAN_ENOSPC;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return SHMCHAN_ENOMEM;
    case ERROR_FILENAME_EXCED_RANGE:
    case ERROR_INVALID_NAME:
        return SHMCHAN_ENAME;
    case ERROR_INVALID_PARAMETER:
        return SHMCHAN_EINVAL;
    case ERROR_TOO_MANY_OPEN_FILES:
    case ERROR_NO_SYSTEM_RESOURCES:
        return SHMCHAN_ELIMIT;
    case ERROR_USER_MAPPED_FILE:
    case ERROR_LOCK_VIOLATION:
        return SHMCHAN_EBUSY;
    default:
        return SHMCHAN_ESYS;
    }
}

wchar_t *
shmchan__win_widen(const char *s, int *rc)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
    if (n <= 0) {
        shmchan__oserror_set((int)GetLastError());
        *rc = SHMCHAN_ENAME; /* not valid UTF-8 */
        return NULL;
    }
    wchar_t *w = malloc((size_t)n * sizeof(wchar_t));
    if (w == NULL) {
        *rc = SHMCHAN_ENOMEM;
        return NULL;
    }
    (void)MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n);
    *rc = SHMCHAN_OK;
    return w;
}

void
shmchan__win_obj_name(const shmchan__shm *s, const char *suffix, wchar_t *out)
{
    size_t n = wcslen(s->prefix);
    memcpy(out, s->prefix, n * sizeof(wchar_t));
    for (; *suffix != '\0' && n + 1 < SHMCHAN__WIN_OBJ_NAME; suffix++) {
        out[n++] = (wchar_t)(unsigned char)*suffix;
    }
    out[n] = L'\0';
}

uint32_t
shmchan__pid(void)
{
    return (uint32_t)GetCurrentProcessId();
}

/* A handle on a running process pid, or NULL (gone, or not ours to query). */
static HANDLE
open_running(uint32_t pid, bool *denied)
{
    *denied = false;
    if (pid == 0) {
        return NULL;
    }
    HANDLE h = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
    if (h == NULL) {
        *denied = GetLastError() == ERROR_ACCESS_DENIED;
        return NULL;
    }
    /* OpenProcess succeeds on a process that has exited while a handle to it
     * remains anywhere: only the exit code tells. */
    DWORD code = 0;
    if (!GetExitCodeProcess(h, &code) || code != STILL_ACTIVE) {
        CloseHandle(h);
        return NULL;
    }
    return h;
}

bool
shmchan__proc_exists(uint32_t pid)
{
    bool denied;
    HANDLE h = open_running(pid, &denied);
    if (h != NULL) {
        CloseHandle(h);
        return true;
    }
    return denied; /* it exists, it just belongs to somebody else */
}

uint64_t
shmchan__proc_start(uint32_t pid)
{
    bool denied;
    HANDLE h = open_running(pid, &denied);
    if (h == NULL) {
        return 0;
    }
    FILETIME created, exited, kernel, user;
    uint64_t t = 0;
    if (GetProcessTimes(h, &created, &exited, &kernel, &user)) {
        t = (uint64_t)created.dwHighDateTime << 32 | created.dwLowDateTime;
    }
    CloseHandle(h);
    return t; /* 100 ns units since 1601 */
}

uint64_t
shmchan__now_ns(void)
{
    static shmchan__atomic_u64 freq; /* constant since boot: racing first callers agree */
    uint64_t f = shmchan__load(&freq, SHMCHAN__RELAXED);
    if (f == 0) {
        LARGE_INTEGER q;
        QueryPerformanceFrequency(&q);
        f = (uint64_t)q.QuadPart;
        shmchan__store(&freq, f, SHMCHAN__RELAXED);
    }
    LARGE_INTEGER c;
    QueryPerformanceCounter(&c);
    uint64_t v = (uint64_t)c.QuadPart;
    return v / f * 1000000000u + v % f * 1000000000u / f; /* no overflow for centuries */
}

int64_t
shmchan__realtime_ns(void)
{
    FILETIME ft;
    GetSystemTimePreciseAsFileTime(&ft);
    int64_t t = (int64_t)((uint64_t)ft.dwHighDateTime << 32 | ft.dwLowDateTime);
    return (t - INT64_C(116444736000000000)) * 100; /* 1601 -> 1970, 100 ns -> ns */
}

uint32_t
shmchan__cpu_count(void)
{
    static shmchan__atomic_u32 cached; /* racing first calls store the same */
    uint32_t n = shmchan__load(&cached, SHMCHAN__RELAXED);
    if (n == 0) {
        SYSTEM_INFO si;
        GetSystemInfo(&si);
        n = si.dwNumberOfProcessors > 0 ? (uint32_t)si.dwNumberOfProcessors : 1u;
        shmchan__store(&cached, n, SHMCHAN__RELAXED);
    }
    return n;
}

void
shmchan__sleep_ns(uint64_t ns)
{
    /* Sleep() has millisecond granularity: round up, never sleep less. */
    uint64_t ms = (ns + 999999u) / 1000000u;
    Sleep(ms >= INFINITE ? INFINITE - 1 : (DWORD)ms);
}

uint64_t
shmchan__plat_cache_size(int level)
{
    static shmchan__atomic_u64 cached[4]; /* + 1: looked up; racing first calls agree */
    if (level < 1 || level > 3) {
        return 0;
    }
    uint64_t v = shmchan__load(&cached[level], SHMCHAN__RELAXED);
    if (v != 0) {
        return v - 1;
    }
    uint64_t size = 0;
    DWORD len = 0;
    (void)GetLogicalProcessorInformation(NULL, &len);
    SYSTEM_LOGICAL_PROCESSOR_INFORMATION *info = len != 0 ? malloc(len) : NULL;
    if (info != NULL && GetLogicalProcessorInformation(info, &len)) {
        for (DWORD i = 0; i < len / sizeof *info; i++) {
            const CACHE_DESCRIPTOR *c = &info[i].Cache;
            if (info[i].Relationship == RelationCache && c->Level == level &&
                c->Type != CacheInstruction && c->Size > size) {
                size = c->Size;
            }
        }
    }
    free(info);
    shmchan__store(&cached[level], size + 1, SHMCHAN__RELAXED);
    return size;
}

#endif /* SHMCHAN_PLATFORM_WIN */
