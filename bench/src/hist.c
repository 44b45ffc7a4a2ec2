/*
 * hist.c - log-linear histogram (see hist.h).  Bucket index: values below
 * 2^HIST_SUB_BITS map to themselves; larger values keep their top
 * HIST_SUB_BITS bits, and the position of the highest set bit selects the
 * group of HIST_HALF buckets.
 */
#include "hist.h"

#include <string.h>

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

static unsigned bucket_of(uint64_t v)
{
    if (v < (1u << HIST_SUB_BITS))
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS + 1;
    unsigned mantissa = (unsigned)(v >> shift); /* in [HALF, 2*HALF) */
    return (shift + 1) * HIST_HALF + (mantissa - HIST_HALF);
}

/* Middle of the bucket's value range. */
static uint64_t value_of(unsigned idx)
{
    if (idx < (1u << HIST_SUB_BITS))
        return idx;
    unsigned shift = idx / HIST_HALF - 1;
    uint64_t low = (uint64_t)(HIST_HALF + idx % HIST_HALF) << shift;
    return low + ((uint64_t)1 << shift) / 2;
}

void hist_record(struct hist *h, uint64_t value)
{
    h->bucket[bucket_of(value)]++;
    h->count++;
    h->sum += (double)value;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
}

void hist_merge(struct hist *into, const struct hist *from)
{
    if (from->count == 0)
        return;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->bucket[i] += from->bucket[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q >= 1.0)
        return h->max;
    double exact = q * (double)h->count;
    uint64_t rank = (uint64_t)exact;
    if ((double)rank < exact)
        rank++; /* ceil: the smallest value with at least q of the samples at or below it */
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen >= rank) {
            uint64_t v = value_of(i);
            if (v < h->min)
                v = h->min;
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
