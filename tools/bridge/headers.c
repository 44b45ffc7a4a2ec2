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
    const char *slash = strchr(src, '/');
    size_t hl = slash ? (size_t)(slash - src) : 0;
    if (!slash || hl == 0 || hl > BR_HOST_MAX || strlen(src) >= sizeof h->src ||
        shmchan_name_check(slash + 1) != SHMCHAN_OK)
        return -1;
    memcpy(h->host, src, hl);
    h->host[hl] = 0;
    snprintf(h->src, sizeof h->src, "%s", src);
    return 0;
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
