/*
 * Payload copies between a caller's memory and a channel's shared memory:
 * a writer copying a message in, a reader copying one out. Small copies are
 * plain memcpy, inline. Large ones (copy.c) pick a way per size class and
 * direction, measured on the copies themselves, and above a size derived
 * from the last-level cache a writer's copy bypasses the caches:
 *
 * - From the L1 data cache's size up, the C library's memcpy and the CPU's
 *   string move (x86-64 `rep movsb`, where the CPU says it is fast) are both
 *   candidates: libraries switch strategy at cache-size thresholds of their
 *   own that may not suit a copy whose other end another core is reading or
 *   writing. The first copies of each power-of-two size class alternate
 *   between the two, timed; the faster (best of 8 each) serves that class
 *   from then on. The choice is per process and only a speed matter: both
 *   copy the same bytes.
 * - A message in larger than half the last-level cache cannot stay cached
 *   until its reader comes (its start is evicted before its end is written):
 *   the writer's copy then uses non-temporal stores, which save reading every
 *   destination line before overwriting it, and ends with a store fence, so
 *   the commit's release store cannot pass them.
 *
 * Sanitizer builds and other CPUs use memcpy throughout (the sanitizers see
 * the accesses of memcpy, not of an assembler loop).
 */
#ifndef SHMCHAN_COPY_H
#define SHMCHAN_COPY_H

#include <stddef.h>
#include <string.h>

#include "platform/platform.h"

/* Below this a copy is too short for timing it to be free (two clock reads
 * against a few hundred nanoseconds of copying): never measured. */
#define SHMCHAN__COPY_FLOOR 16384u
/* Smallest size that takes the measured path: 0 until the first large copy
 * looks up the L1 data cache's size (copy.c). */
extern shmchan__atomic_u64 shmchan__copy_big_min;

void shmchan__copy_big(void *dst, const void *src, size_t n, int dir);
/* The non-temporal copy on its own (ends with a store fence; memcpy where
 * there is none), for tests. */
void shmchan__copy_stream(void *dst, const void *src, size_t n);

#define SHMCHAN__COPY_IN 0  /* into shared memory (writer) */
#define SHMCHAN__COPY_OUT 1 /* out of shared memory (reader) */

static inline void
shmchan__copy_in(void *dst, const void *src, size_t n)
{
    if (n >= SHMCHAN__COPY_FLOOR && n >= shmchan__load(&shmchan__copy_big_min, SHMCHAN__RELAXED)) {
        shmchan__copy_big(dst, src, n, SHMCHAN__COPY_IN);
    } else if (n != 0) {
        memcpy(dst, src, n);
    }
}

static inline void
shmchan__copy_out(void *dst, const void *src, size_t n)
{
    if (n >= SHMCHAN__COPY_FLOOR && n >= shmchan__load(&shmchan__copy_big_min, SHMCHAN__RELAXED)) {
        shmchan__copy_big(dst, src, n, SHMCHAN__COPY_OUT);
    } else if (n != 0) {
        memcpy(dst, src, n);
    }
}

#endif /* SHMCHAN_COPY_H */
