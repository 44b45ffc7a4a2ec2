/*
 * Readiness notifiers on Windows (platform.h, core/notify.h): a manual-reset
 * event "Local\shmchan.n<id>.<slot>" per notifier slot. Its owner creates it
 * (an existing one is somebody else's: EBUSY, the caller tries the next
 * slot) and waits on it; a writer opens it for EVENT_MODIFY_STATE, sets it
 * and closes it again, so that a dead owner's name is freed as soon as no
 * writer is signalling it. Nothing touches the filesystem.
 *
 * Events live in the session's Local namespace: a waiter in another session
 * (a service with SHMCHAN_GLOBAL channels) is not reachable this way.
 */
#include "platform/win/win.h"

#include <stdio.h>
#include <stdlib.h>

struct shmchan__nf_os {
    HANDLE ev;
};

static void
nf_name(uint64_t chan_id, uint32_t slot, wchar_t *out, size_t cap)
{
    (void)_snwprintf(out, cap, L"Local\\shmchan.n%016llx.%u", (unsigned long long)chan_id,
                     slot);
    out[cap - 1] = L'\0';
}

int
shmchan__nf_bind(uint64_t chan_id, uint32_t slot, shmchan__nf_os **out)
{
    wchar_t name[SHMCHAN__WIN_OBJ_NAME];
    nf_name(chan_id, slot, name, SHMCHAN__WIN_OBJ_NAME);
    HANDLE ev = CreateEventW(NULL, TRUE, FALSE, name);
    if (ev == NULL) {
        DWORD e = GetLastError();
        return e == ERROR_ACCESS_DENIED ? SHMCHAN_EBUSY : shmchan__win_err(e);
    }
    if (GetLastError() == ERROR_ALREADY_EXISTS) {
        CloseHandle(ev);
        return SHMCHAN_EBUSY;
    }
    shmchan__nf_os *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        CloseHandle(ev);
        return SHMCHAN_ENOMEM;
    }
    o->ev = ev;
    *out = o;
    return SHMCHAN_OK;
}

void
shmchan__nf_unbind(shmchan__nf_os *o)
{
    if (o != NULL) {
        CloseHandle(o->ev);
        free(o);
    }
}

intptr_t
shmchan__nf_handle(const shmchan__nf_os *o)
{
    return (intptr_t)o->ev;
}

void
shmchan__nf_drain(shmchan__nf_os *o)
{
    (void)ResetEvent(o->ev);
}

void
shmchan__nf_signal(uint64_t chan_id, uint32_t slot)
{
    wchar_t name[SHMCHAN__WIN_OBJ_NAME];
    nf_name(chan_id, slot, name, SHMCHAN__WIN_OBJ_NAME);
    HANDLE ev = OpenEventW(EVENT_MODIFY_STATE, FALSE, name);
    if (ev != NULL) { /* gone, or another kind of object: ignored */
        (void)SetEvent(ev);
        CloseHandle(ev);
    }
}

/*
 * WaitForMultipleObjects takes at most MAXIMUM_WAIT_OBJECTS (64) handles:
 * more is EINVAL (a wait-set of more channels waits on them from the thread
 * pool instead, or in groups). After the wait, every handle is looked at
 * with a zero timeout, which consumes auto-reset objects (as the wait
 * itself consumes the first one): those are reported once.
 */
int
shmchan__nf_poll(const intptr_t *handles, size_t n, int64_t timeout_ms, bool *ready)
{
    if (n == 0 || n > MAXIMUM_WAIT_OBJECTS) {
        return SHMCHAN_EINVAL;
    }
    HANDLE hs[MAXIMUM_WAIT_OBJECTS];
    for (size_t i = 0; i < n; i++) {
        hs[i] = (HANDLE)handles[i];
        ready[i] = false;
    }
    DWORD t = timeout_ms < 0 ? INFINITE
              : timeout_ms >= (int64_t)INFINITE ? INFINITE - 1
                                                 : (DWORD)timeout_ms;
    DWORD r = WaitForMultipleObjects((DWORD)n, hs, FALSE, t);
    if (r == WAIT_TIMEOUT) {
        return SHMCHAN_ETIMEDOUT;
    }
    if (r >= WAIT_OBJECT_0 + n) {
        return r == WAIT_FAILED ? shmchan__win_err(GetLastError()) : SHMCHAN_ESYS;
    }
    size_t first = r - WAIT_OBJECT_0;
    ready[first] = true;
    for (size_t i = first + 1; i < n; i++) {
        ready[i] = WaitForSingleObject(hs[i], 0) == WAIT_OBJECT_0;
    }
    return SHMCHAN_OK;
}

uint64_t
shmchan__random_u64(void)
{
    /* Unique rather than secret: mix the clock, the process and an address. */
    LARGE_INTEGER c;
    QueryPerformanceCounter(&c);
    uint64_t v = (uint64_t)c.QuadPart ^ ((uint64_t)GetCurrentProcessId() << 32) ^
                 (uint64_t)(uintptr_t)&c ^ GetTickCount64();
    v ^= v >> 31;
    v *= UINT64_C(0x9e3779b97f4a7c15);
    v ^= v >> 29;
    v *= UINT64_C(0xbf58476d1ce4e5b9);
    return v ^ (v >> 32);
}
