/*
 * The OS services the CLI needs beyond the library, behind one small
 * interface: sys_posix.c now, a sys_win.c for Windows later. Nothing else in
 * tools/shmchan includes an OS header.
 */
#ifndef SHMCHAN_CLI_SYS_H
#define SHMCHAN_CLI_SYS_H

#include <stddef.h>
#include <stdint.h>

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
