/*
 * Shared parts of the libFuzzer targets: scratch files in /dev/shm, the
 * reader paths every target runs, and the oracle (a broken invariant traps,
 * which libFuzzer reports as a crash with the input that caused it).
 */
#ifndef SHMCHAN_FUZZ_COMMON_H
#define SHMCHAN_FUZZ_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmchan/shmchan.h"

/* Stop the run with this input when a library promise is broken. */
#define FZ_CHECK(x)                                                         \
    do {                                                                    \
        if (!(x)) {                                                         \
            fz_broken(__FILE__, __LINE__, #x);                              \
        }                                                                   \
    } while (0)

void fz_broken(const char *file, int line, const char *what) __attribute__((noreturn));

/* A path in /dev/shm unique to this process and tag, removed at exit. */
const char *fz_scratch(const char *tag);

/* Replace the file at path with n bytes of d. */
void fz_write_file(const char *path, const uint8_t *d, size_t n);

/* Touch every byte of p[0..n) so ASan or the MMU sees any out-of-bounds access. */
void fz_touch(const void *p, uint64_t n);

/*
 * Apply the input to the n bytes at dst: copied over them, or with patch as
 * records of {u16 offset, u64 value} that each set one aligned 64-bit word
 * (a lie about one field, the rest left consistent).
 */
void fz_scribble(uint8_t *dst, size_t room, const uint8_t *d, size_t n, bool patch);


/* Every read path of a latest-value handle, with the promises they make. */
void fz_latest_reads(shmchan_latest *ch, int sleep_ms);

/* Every receive path of a queue handle that has a reader role. */
void fz_queue_reads(shmchan_queue *q);

/* The inspection calls that reopen a channel by name (flags: SHMCHAN_FILE). */
void fz_inspect(const char *name, uint32_t flags);

#endif
