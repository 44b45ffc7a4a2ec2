/*
 * hist.h - a log-linear latency histogram in the style of HdrHistogram.
 *
 * Values (nanoseconds) below 256 are counted exactly; above that every power
 * of two is split into 128 equal buckets, so a reported value is within 0.4%
 * of the recorded one.  The histogram is a flat array with no pointers, so it
 * can live in shared memory and be merged by the parent process.
 */
#ifndef SHMBENCH_HIST_H
#define SHMBENCH_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 8
#define HIST_HALF (1u << (HIST_SUB_BITS - 1))
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 2) * HIST_HALF)

struct hist {
    uint64_t count;
    uint64_t min;
    uint64_t max;
    double sum;
    uint64_t bucket[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t value);
void hist_merge(struct hist *into, const struct hist *from);
/* Value at quantile q in [0,1]; the exact max for q >= 1. */
uint64_t hist_quantile(const struct hist *h, double q);
double hist_mean(const struct hist *h);

#endif
