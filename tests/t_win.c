/*
 * Windows layer of the test harness: processes, clocks, shell commands.
 *
 * Every process started with t_exec() gets its own job object when the
 * system allows it (nested jobs: Windows 8 and later). The runner starts
 * each test that way; the helpers a test starts belong to the test's job
 * too, so t_kill_group() ends a test and whatever it left behind at once.
 */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <stdio.h>

#include "t.h"

/* What t_wait() reports for a process ended by t_kill() or t_die(): the same
 * number a POSIX shell shows for SIGKILL. */
#define KILLED_STATUS 137

typedef struct win_proc {
    HANDLE process;
    HANDLE job; /* NULL when the process could not get a job of its own */
} win_proc;

static char self_path[MAX_PATH * 4];

void
t_set_self(const char *argv0)
{
    DWORD n = GetModuleFileNameA(NULL, self_path, (DWORD)sizeof(self_path));
    if (n == 0 || n >= sizeof(self_path)) {
        snprintf(self_path, sizeof(self_path), "%s", argv0);
    }
}

const char *
t_self(void)
{
    return self_path;
}

typedef struct cmdline {
    char buf[32768];
    size_t n;
} cmdline;

static void
emit(cmdline *c, char ch, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (c->n + 2 >= sizeof(c->buf)) {
            t_fail(__FILE__, __LINE__, "command line too long");
        }
        c->buf[c->n++] = ch;
    }
    c->buf[c->n] = '\0';
}

/* Append arg quoted so that the C runtime's parser (CommandLineToArgvW rules)
 * gives it back unchanged: backslashes are literal unless they precede a
 * quote, where they double and the quote is escaped. */
static void
append_arg(cmdline *c, const char *arg)
{
    if (c->n > 0) {
        emit(c, ' ', 1);
    }
    emit(c, '"', 1);
    for (const char *a = arg;; a++) {
        size_t slashes = 0;
        while (*a == '\\') {
            slashes++;
            a++;
        }
        if (*a == '\0') {
            emit(c, '\\', slashes * 2);
            break;
        }
        if (*a == '"') {
            emit(c, '\\', slashes * 2 + 1);
        } else {
            emit(c, '\\', slashes);
        }
        emit(c, *a, 1);
    }
    emit(c, '"', 1);
}

t_proc
t_exec(const char *const argv[])
{
    static cmdline cmd;
    cmd.n = 0;
    cmd.buf[0] = '\0';
    for (int i = 0; argv[i] != NULL; i++) {
        append_arg(&cmd, argv[i]);
    }
    fflush(NULL);
    STARTUPINFOA si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    si.dwFlags = STARTF_USESTDHANDLES;
    si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
    si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
    si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
    /* Wine now and then fails a process start under load with
     * ERROR_INTERNAL_ERROR (the new process died while starting): retry. */
    DWORD err = ERROR_SUCCESS;
    for (int tries = 0;; tries++) {
        if (CreateProcessA(argv[0], cmd.buf, NULL, NULL, TRUE, CREATE_SUSPENDED, NULL, NULL, &si,
                           &pi)) {
            break;
        }
        err = GetLastError();
        if (err != ERROR_INTERNAL_ERROR || tries == 5) {
            t_fail(__FILE__, __LINE__, "CreateProcess %s: error %lu", argv[0],
                   (unsigned long)err);
        }
        Sleep(50);
    }
    win_proc *wp = calloc(1, sizeof(*wp));
    if (wp == NULL) {
        t_fail(__FILE__, __LINE__, "out of memory");
    }
    wp->process = pi.hProcess;
    wp->job = CreateJobObjectA(NULL, NULL);
    if (wp->job != NULL && !AssignProcessToJobObject(wp->job, pi.hProcess)) {
        CloseHandle(wp->job); /* no nested jobs here: the parent's job still holds it */
        wp->job = NULL;
    }
    ResumeThread(pi.hThread);
    CloseHandle(pi.hThread);
    return (t_proc)wp;
}

static int
exit_status(win_proc *wp)
{
    DWORD code = 0;
    if (!GetExitCodeProcess(wp->process, &code)) {
        t_fail(__FILE__, __LINE__, "GetExitCodeProcess: error %lu",
               (unsigned long)GetLastError());
    }
    return (int)code;
}

int
t_wait(t_proc p)
{
    win_proc *wp = (win_proc *)p;
    if (WaitForSingleObject(wp->process, INFINITE) != WAIT_OBJECT_0) {
        t_fail(__FILE__, __LINE__, "WaitForSingleObject: error %lu",
               (unsigned long)GetLastError());
    }
    return exit_status(wp);
}

int
t_wait_timeout(t_proc p, int ms)
{
    win_proc *wp = (win_proc *)p;
    DWORD r = WaitForSingleObject(wp->process, ms < 0 ? INFINITE : (DWORD)ms);
    if (r == WAIT_TIMEOUT) {
        return -1;
    }
    if (r != WAIT_OBJECT_0) {
        t_fail(__FILE__, __LINE__, "WaitForSingleObject: error %lu",
               (unsigned long)GetLastError());
    }
    return exit_status(wp);
}

void
t_kill(t_proc p)
{
    (void)TerminateProcess(((win_proc *)p)->process, KILLED_STATUS);
}

int
t_killed_status(void)
{
    return KILLED_STATUS;
}

void
t_isolate(void)
{
    /* Nothing to do: t_exec() gave this process its own job already. */
}

void
t_kill_group(t_proc p)
{
    win_proc *wp = (win_proc *)p;
    if (wp->job != NULL) {
        (void)TerminateJobObject(wp->job, KILLED_STATUS);
    } else {
        (void)TerminateProcess(wp->process, KILLED_STATUS);
    }
}

int
t_pid(void)
{
    return (int)GetCurrentProcessId();
}

uint64_t
t_now_ns(void)
{
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    uint64_t q = (uint64_t)f.QuadPart, v = (uint64_t)c.QuadPart;
    return v / q * 1000000000u + v % q * 1000000000u / q;
}

void
t_sleep_ms(int ms)
{
    Sleep((DWORD)ms);
}

int
t_sh(const char *cmd, char *out, size_t cap)
{
    fflush(NULL);
    FILE *p = _popen(cmd, "rb");
    if (p == NULL) {
        t_fail(__FILE__, __LINE__, "_popen failed: %s", cmd);
    }
    size_t n = 0;
    char sink[4096];
    for (;;) {
        bool keep = out != NULL && n + 1 < cap;
        size_t got = fread(keep ? out + n : sink, 1, keep ? cap - n - 1 : sizeof(sink), p);
        if (got == 0) {
            break;
        }
        n += keep ? got : 0;
    }
    if (out != NULL && cap > 0) {
        out[n] = '\0';
    }
    return _pclose(p);
}

int
t_truncate(const char *path, uint64_t size)
{
    HANDLE h = CreateFileA(path, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE |
                           FILE_SHARE_DELETE, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        return -1;
    }
    LARGE_INTEGER at;
    at.QuadPart = (LONGLONG)size;
    BOOL ok = SetFilePointerEx(h, at, NULL, FILE_BEGIN) && SetEndOfFile(h);
    CloseHandle(h);
    return ok ? 0 : -1;
}

void
t_die(void)
{
    fflush(NULL);
    TerminateProcess(GetCurrentProcess(), KILLED_STATUS);
    for (;;) {
        Sleep(INFINITE); /* TerminateProcess on oneself does not return */
    }
}

int
t_proc_id(t_proc p)
{
    return (int)GetProcessId(((win_proc *)p)->process);
}
