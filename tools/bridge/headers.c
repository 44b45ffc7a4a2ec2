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
    size_t n = buf[4];
    if (n == 0 || n >= sizeof h->src || len < 5 + n + 16 || memchr(buf + 5, 0, n))
        return 0;
    memcpy(h->src, buf + 5, n);
    h->src[n] = 0;
    h->epoch = get_u64(buf + 5 + n);
    h->seq = get_u64(buf + 5 + n + 8);
    if (h->seq == 0 || split_src(h) != 0)
        return 0;
    return 5 + n + 16;
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
