/*
 * Windows services of the CLI: binary stdio, Ctrl-C and the monotonic clock.
 * See sys.h. A console control handler runs on its own thread, so it only
 * records the event; waits are sliced (cli_wait) and notice it there.
 */
#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <windows.h>

#include "sys.h"

static volatile LONG caught;

void
sys_init(void)
{
    (void)_setmode(_fileno(stdin), _O_BINARY);
    (void)_setmode(_fileno(stdout), _O_BINARY);
}

static BOOL WINAPI
on_ctrl(DWORD type)
{
    if (InterlockedCompareExchange(&caught, 0, 0) != 0) {
        return FALSE; /* a second one: the default handler ends the process */
    }
    LONG sig = type == CTRL_C_EVENT ? SIGINT : type == CTRL_BREAK_EVENT ? SIGBREAK : SIGTERM;
    InterlockedExchange(&caught, sig);
    return TRUE;
}

void
sys_catch_interrupts(void)
{
    (void)SetConsoleCtrlHandler(on_ctrl, TRUE);
}

int
sys_interrupted(void)
{
    return (int)InterlockedCompareExchange(&caught, 0, 0);
}

uint64_t
sys_now_ms(void)
{
    return (uint64_t)GetTickCount64();
}

int64_t
sys_unix_ns(void)
{
    FILETIME ft;
    GetSystemTimePreciseAsFileTime(&ft);
    int64_t t = (int64_t)(((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime);
    return (t - INT64_C(116444736000000000)) * 100; /* 100 ns ticks since 1601 */
}

uint32_t
sys_getpid(void)
{
    return (uint32_t)GetCurrentProcessId();
}

void
sys_sleep_ms(uint64_t ms)
{
    Sleep((DWORD)ms);
}

int
sys_file_truncate(FILE *f, uint64_t size)
{
    return fflush(f) == 0 && _chsize_s(_fileno(f), (__int64)size) == 0 ? 0 : -1;
}

void
sys_watch_stdout(void)
{
    /* Windows: a closed pipe is noticed at the next write. */
}

struct sys_thread {
    HANDLE h;
    void (*fn)(void *);
    void *arg;
};

struct sys_lock {
    CRITICAL_SECTION cs;
};

static DWORD WINAPI
thread_main(LPVOID p)
{
    sys_thread *t = p;
    t->fn(t->arg);
    return 0;
}

int
sys_thread_start(sys_thread **out, void (*fn)(void *), void *arg)
{
    sys_thread *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return -1;
    }
    t->fn = fn;
    t->arg = arg;
    t->h = CreateThread(NULL, 0, thread_main, t, 0, NULL);
    if (t->h == NULL) {
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void
sys_thread_join(sys_thread *t)
{
    if (t != NULL) {
        WaitForSingleObject(t->h, INFINITE);
        CloseHandle(t->h);
        free(t);
    }
}

sys_lock *
sys_lock_new(void)
{
    sys_lock *l = calloc(1, sizeof(*l));
    if (l != NULL) {
        InitializeCriticalSection(&l->cs);
    }
    return l;
}

void
sys_lock_free(sys_lock *l)
{
    if (l != NULL) {
        DeleteCriticalSection(&l->cs);
        free(l);
    }
}

void
sys_lock_take(sys_lock *l)
{
    EnterCriticalSection(&l->cs);
}

void
sys_lock_give(sys_lock *l)
{
    LeaveCriticalSection(&l->cs);
}

/* The interactive view of `top` is POSIX-only for now: --once and --json
 * work everywhere. */
int
sys_term_raw(void)
{
    return -1;
}

void
sys_term_restore(void)
{
}

void
sys_term_size(int *rows, int *cols)
{
    *rows = 24;
    *cols = 80;
}

int
sys_term_key(int64_t timeout_ms)
{
    Sleep((DWORD)timeout_ms);
    return -1;
}

size_t
sys_env_checks(sys_check *out, size_t cap)
{
    if (cap == 0) {
        return 0;
    }
    memset(out, 0, sizeof(*out));
    out->name = "platform";
    out->status = SYS_INFO;
    snprintf(out->detail, sizeof(out->detail),
             "Windows: named mappings live in the session's Local\\ namespace (Global\\ with "
             "--global, which needs SeCreateGlobalPrivilege to create); /dev/shm, RemoveIPC "
             "and OFD-lock checks do not apply");
    return 1;
}

/* serve's commands: not on Windows yet (CreateProcess with three pipes and
 * a thread per stream would do it). */
int
sys_run(char *const argv[], const void *in, size_t in_len, size_t cap, sys_output *out,
        sys_output *err, int *status)
{
    (void)argv;
    (void)in;
    (void)in_len;
    (void)cap;
    (void)out;
    (void)err;
    *status = 0;
    return ENOSYS;
}
