/*
 * Windows services of the CLI: binary stdio, Ctrl-C and the monotonic clock,
 * threads, and serve's commands (sys_run: CreateProcessW with three pipes,
 * the program looked up in PATH as execvp does, stdin fed and stderr read on
 * threads of their own while the caller reads stdout). See sys.h. A console
 * control handler runs on its own thread, so it only records the event;
 * waits are sliced (cli_wait) and notice it there.
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

/* ------------------------------------------------------ commands (serve) */

/* A growing UTF-8 string (the command line before its conversion). */
typedef struct str {
    char *p;
    size_t len, cap;
    int bad; /* out of memory */
} str;

static void
str_put(str *s, const char *p, size_t n)
{
    if (s->bad) {
        return;
    }
    if (s->len + n + 1 > s->cap) {
        size_t cap = (s->len + n + 1) * 2;
        char *q = realloc(s->p, cap);
        if (q == NULL) {
            s->bad = 1;
            return;
        }
        s->p = q;
        s->cap = cap;
    }
    memcpy(s->p + s->len, p, n);
    s->len += n;
    s->p[s->len] = '\0';
}

static void
str_rep(str *s, char c, size_t n)
{
    while (n-- > 0) {
        str_put(s, &c, 1);
    }
}

/* One argument as the Microsoft C runtime and CommandLineToArgvW parse it
 * back: plain when it has no blank and no quote, else quoted, a quote inside
 * written \" and the backslashes before a quote (or before the closing one)
 * doubled; other backslashes stay as they are. */
static void
quote_arg(str *s, const char *a)
{
    if (a[0] != '\0' && strpbrk(a, " \t\n\v\"") == NULL) {
        str_put(s, a, strlen(a));
        return;
    }
    str_put(s, "\"", 1);
    for (const char *p = a;; p++) {
        size_t bs = 0;
        while (*p == '\\') {
            bs++;
            p++;
        }
        if (*p == '\0') {
            str_rep(s, '\\', bs * 2);
            break;
        }
        if (*p == '"') {
            str_rep(s, '\\', bs * 2 + 1);
        } else {
            str_rep(s, '\\', bs);
        }
        str_put(s, p, 1);
    }
    str_put(s, "\"", 1);
}

static wchar_t *
to_wide(const char *u8)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, u8, -1, NULL, 0);
    wchar_t *w = n > 0 ? malloc((size_t)n * sizeof(wchar_t)) : NULL;
    if (w != NULL && MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, u8, -1, w, n) != n) {
        free(w);
        w = NULL;
    }
    return w;
}

static int
is_file(const wchar_t *path)
{
    DWORD a = GetFileAttributesW(path);
    return a != INVALID_FILE_ATTRIBUTES && (a & FILE_ATTRIBUTE_DIRECTORY) == 0;
}

/* dir (may be NULL) + name + ext (may be ""), if that is a file: malloc'ed. */
static wchar_t *
try_path(const wchar_t *dir, size_t dir_len, const wchar_t *name, const wchar_t *ext)
{
    size_t n = dir_len + 1 + wcslen(name) + wcslen(ext) + 1;
    wchar_t *p = malloc(n * sizeof(wchar_t));
    if (p == NULL) {
        return NULL;
    }
    p[0] = L'\0';
    if (dir != NULL && dir_len != 0) {
        memcpy(p, dir, dir_len * sizeof(wchar_t));
        p[dir_len] = L'\0';
        if (dir[dir_len - 1] != L'\\' && dir[dir_len - 1] != L'/') {
            wcscat(p, L"\\");
        }
    }
    wcscat(p, name);
    wcscat(p, ext);
    if (!is_file(p)) {
        free(p);
        return NULL;
    }
    return p;
}

/* The program to start, found as execvp finds it: a name with a slash,
 * backslash or drive is taken as it is, any other is looked up in the
 * directories of PATH only, in order (not in the current directory nor the
 * system folders first, as CreateProcess's own search would). A name with no
 * extension gets ".exe", as CreateProcess gives it. NULL: not found. */
static wchar_t *
find_program(const wchar_t *name)
{
    const wchar_t *base = name;
    for (const wchar_t *p = name; *p != L'\0'; p++) {
        if (*p == L'\\' || *p == L'/' || *p == L':') {
            base = p + 1;
        }
    }
    const wchar_t *ext = wcschr(base, L'.') != NULL ? L"" : L".exe";
    if (base != name) {
        return try_path(NULL, 0, name, ext);
    }
    DWORD n = GetEnvironmentVariableW(L"PATH", NULL, 0);
    wchar_t *path = n != 0 ? malloc((size_t)n * sizeof(wchar_t)) : NULL;
    if (path == NULL || GetEnvironmentVariableW(L"PATH", path, n) >= n) {
        free(path);
        return NULL;
    }
    wchar_t *found = NULL;
    for (wchar_t *d = path; found == NULL && *d != L'\0';) {
        wchar_t *end = wcschr(d, L';');
        size_t len = end != NULL ? (size_t)(end - d) : wcslen(d);
        wchar_t *dir = d;
        if (len >= 2 && dir[0] == L'"' && dir[len - 1] == L'"') {
            dir++;
            len -= 2;
        }
        if (len != 0) {
            found = try_path(dir, len, name, ext);
        }
        d = end != NULL ? end + 1 : d + len;
    }
    free(path);
    return found;
}

static int
win_errno(DWORD e)
{
    switch (e) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_NAME:
        return ENOENT;
    case ERROR_ACCESS_DENIED:
        return EACCES;
    case ERROR_BAD_EXE_FORMAT:
    case ERROR_EXE_MACHINE_TYPE_MISMATCH:
        return ENOEXEC;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return ENOMEM;
    default:
        return EIO;
    }
}

/* An exit code as sys.h promises it: 0-255 as they are; the exceptions that
 * end a process as the POSIX signal of the same fault (256 + signal); any
 * other code above 255, which POSIX could not have reported, as 255 so that
 * it still reads as a failure. */
static int
exit_status(DWORD code)
{
    if (code <= 255) {
        return (int)code;
    }
    switch (code) {
    case 0xC000013AUL: /* STATUS_CONTROL_C_EXIT */
        return 256 + SIGINT;
    case 0xC0000005UL: /* access violation */
    case 0xC00000FDUL: /* stack overflow */
        return 256 + SIGSEGV;
    case 0xC000001DUL: /* illegal instruction */
        return 256 + SIGILL;
    case 0xC0000094UL: /* integer division by zero */
    case 0xC000008EUL: /* float division by zero */
        return 256 + SIGFPE;
    default:
        return code >= 0xC0000000UL ? 256 + SIGABRT : 255;
    }
}

typedef struct feed {
    HANDLE h;
    const unsigned char *p;
    size_t len;
} feed;

/* The command's stdin, on its own thread: it may write much before it reads
 * all of it, while the caller reads its output. Ends (closing the pipe) when
 * all is given or the command stopped reading. */
static DWORD WINAPI
feed_main(LPVOID arg)
{
    feed *f = arg;
    size_t sent = 0;
    while (sent < f->len) {
        size_t left = f->len - sent;
        DWORD n = 0;
        if (!WriteFile(f->h, f->p + sent, left > 65536 ? 65536 : (DWORD)left, &n, NULL)) {
            break; /* ERROR_NO_DATA / ERROR_BROKEN_PIPE: it closed its stdin */
        }
        sent += n;
    }
    CloseHandle(f->h);
    return 0;
}

typedef struct drain {
    HANDLE h;
    sys_output *o;
    size_t cap;
} drain;

/* Read one stream to its end: the first cap bytes kept, the rest counted and
 * dropped (still read, so the command never blocks on a full pipe). */
static DWORD WINAPI
drain_main(LPVOID arg)
{
    drain *d = arg;
    unsigned char chunk[65536];
    DWORD n;
    while (ReadFile(d->h, chunk, sizeof(chunk), &n, NULL) || GetLastError() == ERROR_MORE_DATA) {
        size_t keep = d->o->len < d->cap ? d->cap - d->o->len : 0;
        keep = keep < n ? keep : n;
        if (keep != 0) {
            unsigned char *p = realloc(d->o->p, d->o->len + keep);
            if (p != NULL) { /* out of memory: this part is counted only */
                memcpy(p + d->o->len, chunk, keep);
                d->o->p = p;
                d->o->len += keep;
            }
        }
        d->o->total += n;
    }
    /* ERROR_BROKEN_PIPE: every write end (the command's, its children's) closed */
    return 0;
}

/* Our ends of the three pipes stay uninheritable; the command's three are
 * created inheritable, which means that any process started while they exist
 * would inherit them too. Two guards against a sibling started at the same
 * moment by another -j thread (whose copy would keep this command's stdout
 * open until the sibling ends, so the read here would wait for it):
 * PROC_THREAD_ATTRIBUTE_HANDLE_LIST names exactly the three handles the
 * command inherits (nothing else of ours either), and this lock is held from
 * the pipes' creation to the closing of the command's ends, so no sys_run
 * starts a process in between (the CLI starts processes nowhere else). The
 * lock alone suffices where the attribute is not honoured (Wine may ignore
 * it), and costs only the time of CreateProcess. */
static SRWLOCK spawn_lock = SRWLOCK_INIT;

static int
spawn(wchar_t *app, wchar_t *cmdline, HANDLE child[3], PROCESS_INFORMATION *pi)
{
    STARTUPINFOEXW si;
    memset(&si, 0, sizeof(si));
    si.StartupInfo.cb = sizeof(si);
    si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
    si.StartupInfo.hStdInput = child[0];
    si.StartupInfo.hStdOutput = child[1];
    si.StartupInfo.hStdError = child[2];
    SIZE_T size = 0;
    (void)InitializeProcThreadAttributeList(NULL, 1, 0, &size);
    void *list = size != 0 ? malloc(size) : NULL;
    DWORD flags = 0;
    if (list != NULL && InitializeProcThreadAttributeList(list, 1, 0, &size)) {
        if (UpdateProcThreadAttribute(list, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, child,
                                      3 * sizeof(HANDLE), NULL, NULL)) {
            si.lpAttributeList = list;
            flags = EXTENDED_STARTUPINFO_PRESENT;
        } else {
            DeleteProcThreadAttributeList(list);
            free(list);
            list = NULL;
        }
    } else {
        free(list);
        list = NULL;
    }
    if (flags == 0) {
        si.StartupInfo.cb = sizeof(si.StartupInfo);
    }
    int e = CreateProcessW(app, cmdline, NULL, NULL, TRUE, flags, NULL, NULL, &si.StartupInfo, pi)
                ? 0
                : win_errno(GetLastError());
    if (list != NULL) {
        DeleteProcThreadAttributeList(list);
        free(list);
    }
    return e;
}

static void
close_all(HANDLE *h, int n)
{
    for (int i = 0; i < n; i++) {
        if (h[i] != NULL) {
            CloseHandle(h[i]);
            h[i] = NULL;
        }
    }
}

/* The command line: argv[0] quoted without escapes (CommandLineToArgvW reads
 * the program name up to the next quote, so a quote in it cannot be given;
 * Windows file names have none), the rest by quote_arg. */
static int
command_line(char *const argv[], wchar_t **out)
{
    if (strchr(argv[0], '"') != NULL) {
        return EINVAL;
    }
    str s = {0};
    str_put(&s, "\"", 1);
    str_put(&s, argv[0], strlen(argv[0]));
    str_put(&s, "\"", 1);
    for (size_t i = 1; argv[i] != NULL; i++) {
        str_put(&s, " ", 1);
        quote_arg(&s, argv[i]);
    }
    if (s.bad) {
        free(s.p);
        return ENOMEM;
    }
    *out = to_wide(s.p);
    free(s.p);
    return *out != NULL ? 0 : EINVAL; /* not UTF-8 (or out of memory) */
}

int
sys_run(char *const argv[], const void *in, size_t in_len, size_t cap, sys_output *out,
        sys_output *err, int *status)
{
    *status = 0;
    if (argv[0] == NULL) {
        return EINVAL;
    }
    wchar_t *cmdline = NULL;
    int e = command_line(argv, &cmdline);
    if (e != 0) {
        return e;
    }
    wchar_t *name = to_wide(argv[0]); /* valid UTF-8: command_line checked */
    wchar_t *app = name != NULL ? find_program(name) : NULL;
    free(name);
    if (app == NULL) {
        free(cmdline);
        return ENOENT;
    }
    HANDLE ours[3] = {NULL, NULL, NULL};  /* stdin write, stdout read, stderr read */
    HANDLE child[3] = {NULL, NULL, NULL}; /* stdin read, stdout write, stderr write */
    SECURITY_ATTRIBUTES sa = {sizeof(sa), NULL, TRUE};
    PROCESS_INFORMATION pi;
    memset(&pi, 0, sizeof(pi));
    AcquireSRWLockExclusive(&spawn_lock);
    for (int i = 0; i < 3 && e == 0; i++) {
        HANDLE r, w;
        if (!CreatePipe(&r, &w, &sa, 0)) {
            e = win_errno(GetLastError());
            break;
        }
        ours[i] = i == 0 ? w : r;
        child[i] = i == 0 ? r : w;
        if (!SetHandleInformation(ours[i], HANDLE_FLAG_INHERIT, 0)) {
            e = win_errno(GetLastError());
        }
    }
    if (e == 0) {
        e = spawn(app, cmdline, child, &pi);
    }
    close_all(child, 3);
    ReleaseSRWLockExclusive(&spawn_lock);
    free(app);
    free(cmdline);
    if (e != 0) {
        close_all(ours, 3);
        return e;
    }
    CloseHandle(pi.hThread);

    feed f = {ours[0], in, in_len};
    drain o = {ours[1], out, cap};
    drain d = {ours[2], err, cap};
    HANDLE threads[2] = {NULL, NULL};
    ours[0] = NULL; /* the feeder closes it */
    if (in_len != 0) {
        threads[0] = CreateThread(NULL, 0, feed_main, &f, 0, NULL);
    }
    if (in_len == 0 || threads[0] != NULL) {
        threads[1] = CreateThread(NULL, 0, drain_main, &d, 0, NULL);
    }
    if ((in_len != 0 && threads[0] == NULL) || threads[1] == NULL) {
        /* Without its threads the command cannot be served without risking
         * a deadlock: end it, and report that it could not be run. */
        e = EAGAIN;
        (void)TerminateProcess(pi.hProcess, 1);
    }
    if (threads[0] == NULL) {
        CloseHandle(f.h); /* nothing to give, or no feeder: EOF at once */
    }
    (void)drain_main(&o); /* stdout on this thread, to its end */
    if (threads[1] == NULL) {
        (void)drain_main(&d);
    }
    for (int i = 0; i < 2; i++) {
        if (threads[i] != NULL) {
            WaitForSingleObject(threads[i], INFINITE);
            CloseHandle(threads[i]);
        }
    }
    close_all(ours, 3);
    WaitForSingleObject(pi.hProcess, INFINITE);
    DWORD code = 0;
    (void)GetExitCodeProcess(pi.hProcess, &code);
    CloseHandle(pi.hProcess);
    if (e != 0) {
        return e;
    }
    *status = exit_status(code);
    return 0;
}
