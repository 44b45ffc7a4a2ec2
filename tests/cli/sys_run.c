/*
 * sys_run (tools/shmchan/sys.h), the runner of `shmchan serve`'s commands,
 * on the platform's own sys_*.c: real child processes (this program run
 * again in a child mode), their bytes checked.
 *
 *   sys_run_test [SHMCHAN]        run the checks; with the CLI's path, also
 *                                 `serve` + `call` end to end (Windows: the
 *                                 POSIX CLI tests, tests/cli/service.sh,
 *                                 do that there)
 *   sys_run_test child MODE ...   a child: echo, fail, big N, args ARGS...,
 *                                 spill
 *
 * Exits 0 when all passed, 1 at the first failure (said on stderr).
 */
#ifndef _WIN32
#define _POSIX_C_SOURCE 200809L /* setenv */
#endif
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sys.h"

#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#include <windows.h>
#include <shellapi.h>
#else
#include <signal.h>
#include <unistd.h>
#endif

#define CHECK(x)                                                                  \
    do {                                                                          \
        if (!(x)) {                                                               \
            fprintf(stderr, "sys_run_test: %s:%d: failed: %s\n", __FILE__, __LINE__, \
                    #x);                                                          \
            exit(1);                                                              \
        }                                                                         \
    } while (0)

/* The arguments whose bytes must arrive exactly: blanks, quotes and the
 * backslashes before them, empty ones, UTF-8. */
static const char *const tricky[] = {
    "plain", "two words", "", "q\"uote", "\"", "back\\slash", "trail\\", "trail two\\\\",
    "b\\\"q", "x\\\\\"y z", "\\\\server\\share", "tab\there", "new\nline",
    "caf\xc3\xa9 \xe2\x82\xac", "  ", "a\"\"b", "end\"", NULL};

/* ------------------------------------------------------------ children */

static int
child_echo(void)
{
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
        if (fwrite(buf, 1, n, stdout) != n) {
            return 2;
        }
        fflush(stdout); /* a stream: output before all input is read */
    }
    return 0;
}

/* Each argument after "args", ended by a NUL, as the program received it
 * (on Windows parsed from the UTF-16 command line by CommandLineToArgvW, the
 * parser the quoting must satisfy, then UTF-8 again). */
static int
child_args(int argc, char **argv, int first)
{
#ifdef _WIN32
    (void)argc;
    (void)argv;
    int n = 0;
    wchar_t **w = CommandLineToArgvW(GetCommandLineW(), &n);
    if (w == NULL) {
        return 2;
    }
    for (int i = first; i < n; i++) {
        char u8[1024];
        int len = WideCharToMultiByte(CP_UTF8, 0, w[i], -1, u8, sizeof(u8), NULL, NULL);
        if (len <= 0) {
            return 2;
        }
        fwrite(u8, 1, (size_t)len, stdout); /* len counts the NUL */
    }
    LocalFree(w);
#else
    for (int i = first; i < argc; i++) {
        fwrite(argv[i], 1, strlen(argv[i]) + 1, stdout);
    }
#endif
    return 0;
}

static unsigned char
pattern(size_t i)
{
    return (unsigned char)(i * 7 % 251);
}

static int
child(int argc, char **argv)
{
#ifdef _WIN32
    (void)_setmode(_fileno(stdin), _O_BINARY);
    (void)_setmode(_fileno(stdout), _O_BINARY);
#endif
    const char *mode = argv[2];
    if (strcmp(mode, "echo") == 0) {
        return child_echo();
    }
    if (strcmp(mode, "fail") == 0) {
        fputs("it went wrong", stderr);
        return 3;
    }
    if (strcmp(mode, "big") == 0 || strcmp(mode, "spill") == 0) {
        /* spill: much output without reading any input */
        size_t n = strcmp(mode, "spill") == 0 ? 300000 : (size_t)strtoul(argv[3], NULL, 10);
        for (size_t i = 0; i < n; i++) {
            putchar(pattern(i));
            if (i % 3 == 0 && strcmp(mode, "big") == 0) {
                fputc('e', stderr);
            }
        }
        return 0;
    }
    if (strcmp(mode, "args") == 0) {
        return child_args(argc, argv, 3);
    }
    return 2;
}

/* ------------------------------------------------------------- checks */

static char self[4096];

static void
find_self(const char *argv0)
{
#ifdef _WIN32
    (void)argv0;
    wchar_t w[2048];
    DWORD n = GetModuleFileNameW(NULL, w, 2048);
    CHECK(n > 0 && n < 2048);
    CHECK(WideCharToMultiByte(CP_UTF8, 0, w, -1, self, sizeof(self), NULL, NULL) > 0);
#else
    CHECK(strlen(argv0) < sizeof(self));
    strcpy(self, argv0);
#endif
}

static void
run(char **argv, const void *in, size_t in_len, size_t cap, sys_output *out, sys_output *err,
    int *status)
{
    memset(out, 0, sizeof(*out));
    memset(err, 0, sizeof(*err));
    int e = sys_run(argv, in, in_len, cap, out, err, status);
    if (e != 0) {
        fprintf(stderr, "sys_run_test: sys_run(%s %s): %s\n", argv[0], argv[2], strerror(e));
    }
    CHECK(e == 0);
}

static void
done(sys_output *out, sys_output *err)
{
    free(out->p);
    free(err->p);
}

static void
check_echo(void)
{
    size_t n = 200 * 1024;
    unsigned char *in = malloc(n);
    CHECK(in != NULL);
    for (size_t i = 0; i < n; i++) {
        in[i] = pattern(i + 13);
    }
    char *argv[] = {self, "child", "echo", NULL};
    sys_output out, err;
    int status = -1;
    run(argv, in, n, n, &out, &err, &status);
    CHECK(status == 0);
    CHECK(out.total == n && out.len == n);
    CHECK(memcmp(out.p, in, n) == 0);
    CHECK(err.total == 0 && err.len == 0);
    done(&out, &err);
    /* nothing on stdin: EOF at once */
    run(argv, NULL, 0, 100, &out, &err, &status);
    CHECK(status == 0 && out.total == 0 && err.total == 0);
    done(&out, &err);
    free(in);
    puts("ok: echo of 200 KiB (input and output at once), and of nothing");
}

static void
check_fail(void)
{
    char *argv[] = {self, "child", "fail", NULL};
    sys_output out, err;
    int status = -1;
    run(argv, "ignored", 7, 1000, &out, &err, &status);
    CHECK(status == 3);
    CHECK(out.total == 0);
    CHECK(err.len == 13 && err.total == 13 && memcmp(err.p, "it went wrong", 13) == 0);
    done(&out, &err);
    puts("ok: exit status 3 and stderr");
}

static void
check_cap(void)
{
    char *argv[] = {self, "child", "big", "100000", NULL};
    sys_output out, err;
    int status = -1;
    run(argv, NULL, 0, 1000, &out, &err, &status);
    CHECK(status == 0);
    CHECK(out.total == 100000 && out.len == 1000);
    for (size_t i = 0; i < out.len; i++) {
        CHECK(out.p[i] == pattern(i));
    }
    CHECK(err.total == 33334 && err.len == 1000 && err.p[999] == 'e');
    done(&out, &err);
    run(argv, NULL, 0, 0, &out, &err, &status); /* cap 0: counted only */
    CHECK(status == 0 && out.total == 100000 && out.len == 0 && err.total == 33334);
    done(&out, &err);
    /* 300 KB out and 200 KiB offered that it never reads */
    char *spill[] = {self, "child", "spill", NULL};
    size_t n = 200 * 1024;
    unsigned char *in = calloc(1, n);
    CHECK(in != NULL);
    run(spill, in, n, 300000, &out, &err, &status);
    CHECK(status == 0 && out.total == 300000 && out.len == 300000);
    CHECK(out.p[299999] == pattern(299999));
    done(&out, &err);
    free(in);
    puts("ok: output beyond the cap counted, not kept; unread input");
}

static void
check_missing(void)
{
    char *argv[] = {"shmchan-no-such-program-here", "child", "x", NULL};
    sys_output out = {0}, err = {0};
    int status = -1;
    CHECK(sys_run(argv, "x", 1, 100, &out, &err, &status) == ENOENT);
    CHECK(out.p == NULL && err.p == NULL && out.total == 0);
    char *dir[] = {"no-such-dir/shmchan-no-such-program", "child", "x", NULL};
    CHECK(sys_run(dir, NULL, 0, 100, &out, &err, &status) == ENOENT);
    puts("ok: a missing program is ENOENT, not an exit status");
}

static void
check_args(void)
{
    char *argv[64] = {self, "child", "args"};
    size_t n = 3, want_len = 0;
    for (size_t i = 0; tricky[i] != NULL; i++) {
        argv[n++] = (char *)tricky[i];
        want_len += strlen(tricky[i]) + 1;
    }
    argv[n] = NULL;
    sys_output out, err;
    int status = -1;
    run(argv, NULL, 0, 65536, &out, &err, &status);
    CHECK(status == 0);
    size_t at = 0;
    for (size_t i = 0; tricky[i] != NULL; i++) {
        size_t len = strlen(tricky[i]) + 1;
        if (at + len > out.len || memcmp(out.p + at, tricky[i], len) != 0) {
            fprintf(stderr, "sys_run_test: argument %zu [%s] did not arrive intact\n", i,
                    tricky[i]);
            exit(1);
        }
        at += len;
    }
    CHECK(out.len == want_len);
    done(&out, &err);
    puts("ok: arguments with blanks, quotes, backslashes, empty and UTF-8 arrive intact");
}

/* The program found in PATH by its bare name (Windows: without ".exe"). */
static void
check_path(void)
{
    char dir[4096];
    strcpy(dir, self);
    char *slash = strrchr(dir, '/');
#ifdef _WIN32
    char *bs = strrchr(dir, '\\');
    slash = bs > slash ? bs : slash;
#endif
    CHECK(slash != NULL);
    *slash = '\0';
    char name[512];
    CHECK(strlen(slash + 1) < sizeof(name));
    strcpy(name, slash + 1);
#ifdef _WIN32
    char *dot = strrchr(name, '.');
    if (dot != NULL && _stricmp(dot, ".exe") == 0) {
        *dot = '\0';
    }
    char path[8192];
    snprintf(path, sizeof(path), "C:\\no-such-dir;%s;%s", dir, getenv("PATH") ? getenv("PATH") : "");
    CHECK(SetEnvironmentVariableA("PATH", path));
#else
    char path[8192];
    snprintf(path, sizeof(path), "/no-such-dir:%s", dir);
    CHECK(setenv("PATH", path, 1) == 0);
#endif
    char *argv[] = {name, "child", "fail", NULL};
    sys_output out, err;
    int status = -1;
    run(argv, NULL, 0, 100, &out, &err, &status);
    CHECK(status == 3 && err.len == 13);
    done(&out, &err);
    puts("ok: a bare name is looked up in PATH");
}

#ifdef _WIN32
typedef struct caller {
    char **argv;
    unsigned char in[3000];
    int ok;
} caller;

/* One `shmchan call` of its own bytes, checked. */
static void
caller_main(void *arg)
{
    caller *c = arg;
    sys_output out = {0}, err = {0};
    int status = -1;
    c->ok = sys_run(c->argv, c->in, sizeof(c->in), 65536, &out, &err, &status) == 0 &&
            status == 0 && out.len == sizeof(c->in) && memcmp(out.p, c->in, out.len) == 0;
    done(&out, &err);
}

/* serve + call end to end under the real CLI: a serve process whose command
 * is this program, calls through `shmchan call` run by sys_run. */
static void
check_serve(const char *cli)
{
    /* a file-backed channel: a named one would vanish with create's handle */
    char name[MAX_PATH + 64];
    DWORD tl = GetTempPathA(MAX_PATH, name);
    CHECK(tl > 0 && tl < MAX_PATH);
    snprintf(name + tl, sizeof(name) - tl, "sysrun%lu.chan", (unsigned long)GetCurrentProcessId());
    (void)DeleteFileA(name);
    char *create[] = {(char *)cli, "create", name, "--service", "--max-msg", "65536", NULL};
    sys_output out, err;
    int status = -1;
    run(create, NULL, 0, 4096, &out, &err, &status);
    if (status != 0) {
        fprintf(stderr, "sys_run_test: create: %.*s\n", (int)err.len, (char *)err.p);
    }
    CHECK(status == 0);
    done(&out, &err);
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "\"%s\" serve \"%s\" -j 2 -- \"%s\" child echo", cli, name, self);
    wchar_t wcmd[8192];
    CHECK(MultiByteToWideChar(CP_UTF8, 0, cmd, -1, wcmd, 8192) > 0);
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    CHECK(CreateProcessW(NULL, wcmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi));
    char *call[] = {(char *)cli, "call", name, "-", "--timeout", "60", NULL};
    run(call, "hello", 5, 4096, &out, &err, &status);
    if (status != 0) {
        fprintf(stderr, "sys_run_test: call: status %d: %.*s\n", status, (int)err.len,
                (char *)err.p);
    }
    CHECK(status == 0 && out.len == 5 && memcmp(out.p, "hello", 5) == 0);
    done(&out, &err);
    size_t n = 60000;
    unsigned char *in = malloc(n);
    CHECK(in != NULL);
    for (size_t i = 0; i < n; i++) {
        in[i] = pattern(i);
    }
    run(call, in, n, n, &out, &err, &status);
    CHECK(status == 0 && out.len == n && memcmp(out.p, in, n) == 0);
    done(&out, &err);
    free(in);
    /* calls at once, answered by -j 2 commands started at once */
    caller c[6];
    sys_thread *t[6];
    for (int k = 0; k < 6; k++) {
        c[k].argv = call;
        c[k].ok = 0;
        for (size_t i = 0; i < sizeof(c[k].in); i++) {
            c[k].in[i] = pattern(i * (size_t)(k + 1) + (size_t)k);
        }
        CHECK(sys_thread_start(&t[k], caller_main, &c[k]) == 0);
    }
    for (int k = 0; k < 6; k++) {
        sys_thread_join(t[k]);
        CHECK(c[k].ok);
    }
    TerminateProcess(pi.hProcess, 1);
    WaitForSingleObject(pi.hProcess, 30000);
    CloseHandle(pi.hProcess);
    CloseHandle(pi.hThread);
    /* a command that fails: its stderr is the error answer */
    snprintf(cmd, sizeof(cmd), "\"%s\" serve \"%s\" -- \"%s\" child fail", cli, name, self);
    CHECK(MultiByteToWideChar(CP_UTF8, 0, cmd, -1, wcmd, 8192) > 0);
    CHECK(CreateProcessW(NULL, wcmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi));
    run(call, "x", 1, 4096, &out, &err, &status);
    CHECK(status == 1 && out.len == 0);
    CHECK(err.len > 0 && strstr((char *)memcpy(calloc(1, err.len + 1), err.p, err.len),
                                "it went wrong") != NULL);
    done(&out, &err);
    TerminateProcess(pi.hProcess, 1);
    WaitForSingleObject(pi.hProcess, 30000);
    CloseHandle(pi.hProcess);
    CloseHandle(pi.hThread);
    (void)DeleteFileA(name);
    puts("ok: shmchan serve -j 2 answers shmchan call (6 at once) with the command's output, "
         "and with its stderr when it fails");
}
#endif

int
main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "child") == 0) {
        return child(argc, argv);
    }
#ifndef _WIN32
    signal(SIGPIPE, SIG_IGN);
#endif
    find_self(argv[0]);
    check_echo();
    check_fail();
    check_cap();
    check_missing();
    check_args();
#ifdef _WIN32
    if (argc >= 2) {
        check_serve(argv[1]);
    }
#endif
    check_path(); /* last: it changes PATH */
    return 0;
}
