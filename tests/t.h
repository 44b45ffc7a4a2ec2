/*
 * The test harness: assertions that print their operands and error names,
 * and helpers for unique channel names and child processes. Assertions are
 * never compiled out. A failing assertion exits the test's process with 1.
 */
#ifndef SHMCHAN_T_H
#define SHMCHAN_T_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmchan/shmchan.h"

#define TEST(name)           \
    void test_##name(void);   \
    void test_##name(void)

#if defined(__GNUC__)
#define T_NORETURN __attribute__((noreturn))
#define T_PRINTF(f, a) __attribute__((format(printf, f, a)))
#elif defined(_MSC_VER)
#define T_NORETURN __declspec(noreturn)
#define T_PRINTF(f, a)
#else
#define T_NORETURN
#define T_PRINTF(f, a)
#endif

T_NORETURN T_PRINTF(3, 4) void t_fail(const char *file, int line, const char *fmt, ...);
T_NORETURN T_PRINTF(1, 2) void t_skip(const char *fmt, ...);

/* Exit status of a skipped test: the runner reports it as SKIP, and ctest
 * (SKIP_RETURN_CODE) as "Not Run (Skipped)". */
#define T_SKIP_STATUS 77

/*
 * End the test as skipped, with the reason: only for a check that cannot
 * run in this environment (never to pass quietly). scripts/test.sh fails a
 * stage whose skips are not in scripts/expected-skips.txt.
 */
#define T_SKIP(...) t_skip(__VA_ARGS__)

/* The name of the test this process runs (set by the runner), or "". */
extern const char *t_test_name;

#define T_TRUE(x)                                              \
    do {                                                       \
        if (!(x)) {                                            \
            t_fail(__FILE__, __LINE__, "expected true: %s", #x); \
        }                                                      \
    } while (0)

#define T_ERR(expr, want)                                                              \
    do {                                                                               \
        int t_rc_ = (expr);                                                            \
        int t_want_ = (want);                                                          \
        if (t_rc_ != t_want_) {                                                        \
            t_fail(__FILE__, __LINE__, "%s: got %s (%s), want %s", #expr,              \
                   shmchan_errname(t_rc_), shmchan_strerror(t_rc_), shmchan_errname(t_want_)); \
        }                                                                              \
    } while (0)

#define T_OK(expr) T_ERR(expr, SHMCHAN_OK)

#define T_EQ_U64(a, b)                                                                  \
    do {                                                                               \
        uint64_t t_a_ = (uint64_t)(a), t_b_ = (uint64_t)(b);                           \
        if (t_a_ != t_b_) {                                                            \
            t_fail(__FILE__, __LINE__, "%s == %s: %" PRIu64 " != %" PRIu64, #a, #b, t_a_, t_b_); \
        }                                                                              \
    } while (0)

#define T_EQ_STR(a, b)                                                                 \
    do {                                                                               \
        const char *t_a_ = (a), *t_b_ = (b);                                           \
        if (strcmp(t_a_, t_b_) != 0) {                                                 \
            t_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, t_a_, t_b_); \
        }                                                                              \
    } while (0)

#define T_MEMEQ(a, b, n) T_TRUE(memcmp((a), (b), (n)) == 0)

/* A channel name unique to this process and call, unlinked at exit. */
const char *t_name(void);
/* A file path unique to this process and call, removed at exit. */
const char *t_path(void);

/* Options with flags set (and everything else default). */
shmchan_opts t_opts(uint32_t flags);

/* Word index (from 0) of a helper's space-separated arg, into out (cap
 * bytes, truncated, "" when missing), and the same read as a number. */
void t_arg_word(const char *arg, int index, char *out, size_t cap);
uint32_t t_arg_u32(const char *arg, int index);

/*
 * Helper processes: the test binary re-executed as `shmchan_tests --helper
 * NAME ARG`, so that peers are real, separate processes on every platform.
 * Declare one with HELPER(name) { ... return exit_status; } and list it as
 * H(name) in test_list.h. arg is one string (pack several with spaces).
 */
#define HELPER(name)                         \
    int helper_##name(const char *arg);      \
    int helper_##name(const char *arg)

typedef intptr_t t_proc;
/* Start helper NAME with arg; fails the test if it cannot start. */
t_proc t_spawn(const char *helper, const char *arg);
/* Wait for a helper; returns its exit status (128+signal if killed). */
int t_wait(t_proc p);
/* Wait with a bound in ms; kills it and fails the test on expiry. */
int t_wait_bounded(t_proc p, int ms);
/* Kill a helper at once (SIGKILL / TerminateProcess). */
void t_kill(t_proc p);
/* Exit status that t_wait() reports for a helper killed by t_kill(). */
int t_killed_status(void);

/* Wait with a bound; returns -1 on expiry (the process is left running). */
int t_wait_timeout(t_proc p, int ms);

/* Platform layer of the harness (t_posix.c, t_win.c). */
t_proc t_exec(const char *const argv[]); /* start argv[0] with argv */
void t_set_self(const char *argv0);      /* remember the test binary's path */
const char *t_self(void);
void t_isolate(void);          /* in a test process: own process group */
void t_kill_group(t_proc p);   /* kill a test process and its helpers */
int t_pid(void);
int t_proc_id(t_proc p); /* the process id of a started process */
/* Remove the channels and files a test process (by id) left behind. */
void t_cleanup_of(int pid);
uint64_t t_now_ns(void);
void t_sleep_ms(int ms);
int t_truncate(const char *path, uint64_t size); /* 0 on success */
void t_die(void); /* end this process as abruptly as SIGKILL would */
/* Path of the built shmchan CLI (from SHMCHAN_CLI or next to the tests). */
const char *t_cli(void);
/* POSIX: the nth (from 0) id at or above 61000 that no user or group has
 * (/etc/passwd, /etc/group), the same in every process; for tests that run
 * helpers as another uid or put them in other groups. */
int t_unused_id(int nth);
/* POSIX: our own read-write shared mapping of a whole channel file, as an
 * attacker has; *size_out receives its size. */
uint8_t *t_map_file(const char *path, size_t *size_out);
/* Run a shell command line; returns its exit status. Output into out if given. */
int t_sh(const char *cmd, char *out, size_t cap);

#endif
