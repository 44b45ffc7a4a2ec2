/* The bridge's message headers. Everything read from the network is checked:
 * a message with a missing or malformed header is refused, never guessed at. */
#define _GNU_SOURCE
#include "bridge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* Fill h->host from h->src ("host/channel"); -1 when either part is invalid. */
static int split_src(br_hdr *h)
{
    const char *slash = strchr(h->src, '/');
    size_t hl = slash ? (size_t)(slash - h->src) : 0;
    if (!slash || hl == 0 || hl > BR_HOST_MAX || shmchan_name_check(slash + 1) != SHMCHAN_OK)
        return -1;
    memcpy(h->host, h->src, hl);
    h->host[hl] = 0;
    return 0;
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* The source part of either envelope: "host/channel" and the epoch. */
static size_t parse_source(const unsigned char *buf, size_t len, size_t fixed, br_hdr *h)
{
    size_t n = len > 4 ? buf[4] : 0;
    if (n == 0 || n >= sizeof h->src || len < 5 + n + fixed || memchr(buf + 5, 0, n))
        return 0;
    memcpy(h->src, buf + 5, n);
    h->src[n] = 0;
    h->epoch = get_u64(buf + 5 + n);
    return split_src(h) == 0 ? 5 + n + 8 : 0;
}

size_t br_env_prefix(unsigned char *buf, const char *host, const char *chan, uint64_t epoch)
{
    char src[BR_HOST_MAX + SHMCHAN_NAME_MAX + 2];
    int n = snprintf(src, sizeof src, "%s/%s", host, chan);
    memcpy(buf, BR_ENV_MAGIC, 4);
    buf[4] = (unsigned char)n;
    memcpy(buf + 5, src, (size_t)n);
    put_u64(buf + 5 + n, epoch);
    return 5 + (size_t)n + 16;
}

void br_env_seq(unsigned char *buf, size_t prefix_len, uint64_t seq)
{
    put_u64(buf + prefix_len - 8, seq);
}

size_t br_env_parse(const unsigned char *buf, size_t len, br_hdr *h)
{
    if (len < 5 || memcmp(buf, BR_ENV_MAGIC, 4) != 0)
        return 0;
    size_t pos = parse_source(buf, len, 16, h);
    if (pos == 0)
        return 0;
    h->seq = get_u64(buf + pos);
    return h->seq == 0 ? 0 : pos + 8;
}

size_t br_batch_prefix(unsigned char *buf, const char *host, const char *chan, uint64_t epoch)
{
    size_t n = br_env_prefix(buf, host, chan, epoch); /* magic, source, epoch, seq slot */
    memcpy(buf, BR_BATCH_MAGIC, 4);
    return n - 8 + 4; /* the seq slot becomes the u32 count */
}

void br_batch_count(unsigned char *buf, size_t prefix_len, uint32_t count)
{
    put_u32(buf + prefix_len - 4, count);
}

void br_batch_record(unsigned char *rec, uint64_t seq, uint32_t len)
{
    put_u64(rec, seq);
    put_u32(rec + 8, len);
}

size_t br_batch_parse(const unsigned char *buf, size_t len, br_hdr *h, uint32_t *count)
{
    if (len < 5 || memcmp(buf, BR_BATCH_MAGIC, 4) != 0)
        return 0;
    size_t pos = parse_source(buf, len, 12, h);
    if (pos == 0)
        return 0;
    uint32_t n = get_u32(buf + pos);
    size_t first = pos + 4;
    uint64_t prev = 0;
    pos = first;
    for (uint32_t i = 0; i < n; i++) { /* every record inside, sequences rising */
        if (len - pos < BR_BATCH_REC)
            return 0;
        uint64_t seq = get_u64(buf + pos);
        size_t rlen = get_u32(buf + pos + 8);
        if (seq <= prev || rlen > len - pos - BR_BATCH_REC)
            return 0;
        prev = seq;
        pos += BR_BATCH_REC + rlen;
    }
    if (n == 0 || pos != len)
        return 0;
    h->seq = prev; /* the newest in the batch */
    *count = n;
    return first;
}

const unsigned char *br_batch_next(const unsigned char *buf, size_t *pos, uint64_t *seq,
                                   size_t *len)
{
    const unsigned char *rec = buf + *pos;
    *seq = get_u64(rec);
    *len = get_u32(rec + 8);
    *pos += BR_BATCH_REC + *len;
    return rec + BR_BATCH_REC;
}

/* 0, or -1 when a header is missing or malformed. */
int br_hdr_parse(natsMsg *m, br_hdr *h)
{
    const char *src = NULL, *epoch = NULL, *seq = NULL;
    if (natsMsgHeader_Get(m, BR_H_SRC, &src) != NATS_OK ||
        natsMsgHeader_Get(m, BR_H_EPOCH, &epoch) != NATS_OK ||
        natsMsgHeader_Get(m, BR_H_SEQ, &seq) != NATS_OK)
        return -1;
    if (parse_u64(epoch, &h->epoch) || parse_u64(seq, &h->seq) || h->seq == 0)
        return -1;
    if (strlen(src) >= sizeof h->src)
        return -1;
    memcpy(h->src, src, strlen(src) + 1);
    return split_src(h);
}

natsStatus br_hdr_set(natsMsg *m, const char *host, const char *chan, uint64_t epoch,
                      uint64_t seq, bool msgid)
{
    char src[BR_HOST_MAX + SHMCHAN_NAME_MAX + 2], num[24], id[128];
    snprintf(src, sizeof src, "%s/%s", host, chan);
    natsStatus s = natsMsgHeader_Set(m, BR_H_SRC, src);
    snprintf(num, sizeof num, "%llu", (unsigned long long)epoch);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, BR_H_EPOCH, num);
    snprintf(num, sizeof num, "%llu", (unsigned long long)seq);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, BR_H_SEQ, num);
    if (s == NATS_OK && msgid) {
        snprintf(id, sizeof id, "%s.%llu.%llu", src, (unsigned long long)epoch,
                 (unsigned long long)seq);
        s = natsMsgHeader_Set(m, BR_H_MSGID, id);
    }
    return s;
}
