/*
 * Samples of a channel's counters for top and stat: shmchan_info_get and
 * shmchan_peers_get only, so looking costs the channel nothing (no reader
 * slot is taken, nothing is consumed).
 */
#ifndef SHMCHAN_CLI_SAMPLE_H
#define SHMCHAN_CLI_SAMPLE_H

#include "cli.h"

typedef struct sample {
    int rc;            /* of shmchan_info_get; the rest is valid if SHMCHAN_OK */
    uint64_t t_ms;     /* monotonic time of the sample */
    shmchan_info in;
    shmchan_peer *peers; /* queues: readers and writers (malloc'ed) */
    size_t npeers;
    uint64_t max_lag;  /* the slowest live reader's lag */
    uint64_t lost;     /* messages subscribers lost, all together */
} sample;

/* A channel's row: the newest sample, the one before, the rates between. */
typedef struct chan_row {
    char *name;
    sample cur, prev;
    bool has_prev;
    double msg_rate, byte_rate, drop_rate;
} chan_row;

int sample_take(const char *name, uint32_t flags, sample *s);
void sample_free(sample *s);
/* Take a new sample of the row, keeping the old one for the rates. */
void row_update(chan_row *r, uint32_t flags);
void row_free(chan_row *r);
/* "12.5K": rates and sizes in a few characters, 1000-based. */
const char *fmt_rate(double v, char *buf, size_t cap);
const char *peer_role_name(uint32_t role);
/* A writer of messages (a queue's writer, a service's client): no position,
 * lag or lost of its own. */
bool peer_is_writer(uint32_t role);

#endif /* SHMCHAN_CLI_SAMPLE_H */
