/*
 * The OS services the CLI needs beyond the library, behind one small
 * interface: sys_posix.c and sys_win.c. Nothing else in tools/shmchan
 * includes an OS header.
 */
#ifndef SHMCHAN_CLI_SYS_H
#define SHMCHAN_CLI_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Put stdin and stdout in binary mode where the platform distinguishes. */
void sys_init(void);

/* From now on SIGINT, SIGTERM and SIGHUP (Ctrl-C, Ctrl-Break) only record
 * the signal and interrupt a blocking wait (no SA_RESTART), so the command
 * can close its handles and exit; a second one kills as usual. */
void sys_catch_interrupts(void);

/* The signal caught since sys_catch_interrupts(), or 0. */
int sys_interrupted(void);

/* Monotonic milliseconds. */
uint64_t sys_now_ms(void);

/* Wall-clock nanoseconds since 1970 (receive times of recordings). */
int64_t sys_unix_ns(void);

uint32_t sys_getpid(void);

/* Sleep for ms milliseconds (returns early on a caught signal). */
void sys_sleep_ms(uint64_t ms);

/* If stdout is a pipe or socket, notice when its reader goes away while we
 * wait for messages (`follow q | head -1`): the wait is interrupted at once
 * and sys_interrupted() then says SIGPIPE (13). Call after
 * sys_catch_interrupts(). */
void sys_watch_stdout(void);

/* Cut an open file to size bytes (appending after a torn tail). */
int sys_file_truncate(FILE *f, uint64_t size);

/* Threads and a lock for the recorder (one thread per channel). */
typedef struct sys_thread sys_thread;
typedef struct sys_lock sys_lock;
int sys_thread_start(sys_thread **out, void (*fn)(void *), void *arg);
void sys_thread_join(sys_thread *t);
sys_lock *sys_lock_new(void);
void sys_lock_free(sys_lock *l);
void sys_lock_take(sys_lock *l);
void sys_lock_give(sys_lock *l);

/* The interactive terminal of `top`: raw keys without echo, its size. */
int sys_term_raw(void);     /* 0 if stdin and stdout are a terminal, now raw */
void sys_term_restore(void);
void sys_term_size(int *rows, int *cols);
/* The next key within timeout_ms: a byte, SYS_KEY_UP/DOWN, or -1 for none. */
enum { SYS_KEY_UP = 0x100, SYS_KEY_DOWN, SYS_KEY_ESC };
int sys_term_key(int64_t timeout_ms);

/* What a command run by sys_run() wrote to one stream: the first cap bytes
 * (p, malloc'ed or NULL, len of them) and how many it wrote in all. */
typedef struct sys_output {
    unsigned char *p;
    size_t len;
    size_t total;
} sys_output;

/* Run argv[0] (looked up in PATH, argv NULL-terminated) with in_len bytes on
 * its stdin, collecting its stdout and stderr up to cap bytes each, and wait
 * for it: *status is its exit status, or 256 + the signal that killed it.
 * Signals caught by the tool are default again in the command. Returns 0, or
 * an errno value when it could not be started: ENOENT when argv[0] is not
 * found (out and err are then left untouched).
 * Windows: argv is UTF-8 (EINVAL if not, or if argv[0] holds a quote), the
 * command line is quoted for CommandLineToArgvW; PATH is searched as execvp
 * does, ".exe" added to a name without an extension; an exit code above 255
 * is 256 + the signal of its exception (0xC0000005: SIGSEGV, Ctrl-C's
 * 0xC000013A: SIGINT, other exceptions SIGABRT) or else 255. */
int sys_run(char *const argv[], const void *in, size_t in_len, size_t cap, sys_output *out,
            sys_output *err, int *status);

/* Results of the environment checks of `shmchan doctor`. */
typedef enum sys_status { SYS_OK, SYS_INFO, SYS_WARN, SYS_FAIL } sys_status;

typedef struct sys_check {
    const char *name; /* short identifier, e.g. "shm-space" */
    sys_status status;
    char detail[512]; /* what was found */
    char fix[384];    /* what to do about it, empty if nothing */
} sys_check;

/* Run the platform's environment checks; returns how many were written. */
size_t sys_env_checks(sys_check *out, size_t cap);

#endif /* SHMCHAN_CLI_SYS_H */
