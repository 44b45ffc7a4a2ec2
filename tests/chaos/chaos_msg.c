/*
 * Chaos messages and small utilities.
 *
 * A message is a 24-byte header {magic, incarnation, counter, len, sum}
 * followed by len - 24 bytes that derive from the incarnation, counter and
 * position. The checksum (FNV-1a over everything with sum = 0) catches any
 * corruption; the derived bytes also catch a whole message stitched from two.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "chaos.h"

#define MSG_MAGIC 0x4f414843u /* "CHAO" */
#define HDR 24u

typedef struct {
    uint32_t magic;
    uint32_t inc;
    uint64_t counter;
    uint32_t len;
    uint32_t sum;
} msg_hdr;

_Static_assert(sizeof(msg_hdr) == HDR, "message header is 24 bytes");

static uint32_t
fnv1a(uint32_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

static uint8_t
body_byte(uint32_t inc, uint64_t counter, size_t i)
{
    return (uint8_t)(inc * 131u + counter * 31u + i * 7u + (counter >> 8));
}

static uint32_t
msg_sum(const uint8_t *buf, size_t len)
{
    msg_hdr h;
    memcpy(&h, buf, HDR);
    h.sum = 0;
    return fnv1a(fnv1a(2166136261u, (const uint8_t *)&h, HDR), buf + HDR, len - HDR);
}

size_t
chaos_msg_make(uint8_t *buf, uint32_t inc, uint64_t counter, size_t len)
{
    msg_hdr h = {MSG_MAGIC, inc, counter, (uint32_t)len, 0};
    memcpy(buf, &h, HDR);
    for (size_t i = HDR; i < len; i++) {
        buf[i] = body_byte(inc, counter, i);
    }
    h.sum = msg_sum(buf, len);
    memcpy(buf, &h, HDR);
    return len;
}

const char *
chaos_msg_check(const uint8_t *buf, size_t len, uint32_t *inc, uint64_t *counter)
{
    if (len < HDR || len > CHAOS_MAX_MSG) {
        return "length out of range";
    }
    msg_hdr h;
    memcpy(&h, buf, HDR);
    if (h.magic != MSG_MAGIC) {
        return "bad magic";
    }
    if (h.len != len) {
        return "length differs from the one written";
    }
    if (h.sum != msg_sum(buf, len)) {
        return "checksum mismatch (torn or corrupted)";
    }
    if (h.inc >= CHAOS_INCS) {
        return "writer id out of range";
    }
    for (size_t i = HDR; i < len; i++) {
        if (buf[i] != body_byte(h.inc, h.counter, i)) {
            return "payload differs from the writer's";
        }
    }
    *inc = h.inc;
    *counter = h.counter;
    return NULL;
}

uint64_t
chaos_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

size_t
chaos_msg_len(uint64_t *rng)
{
    return HDR + (size_t)(chaos_rand(rng) % (CHAOS_MAX_MSG - HDR + 1));
}

void
chaos_fail(chaos_slot *s, const char *fmt, ...)
{
    if (atomic_fetch_add(&s->failures, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->failure, sizeof(s->failure), fmt, ap);
        va_end(ap);
    }
}

uint64_t
chaos_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
