/*
 * Payload copies (src/core/copy.h): whichever way a size class ends up with
 * (memcpy or the string move, chosen by timing the first copies) and the
 * non-temporal copy of large messages in must copy every byte and nothing
 * else, at any alignment of either end.
 */
#include "t.h"

#include "core/copy.h"

#define GUARD 64u

static void
fill(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* Copy n bytes from src + so to dst + d0 with copy(), then check the copy
 * and that the guard bytes on both sides of it are untouched. */
static void
check_copy(void (*copy)(void *, const void *, size_t), uint8_t *src, uint8_t *dst, size_t n,
           size_t so, size_t d0, uint32_t seed)
{
    fill(src + so, n, seed);
    memset(dst, 0xA5, d0 + n + 2 * GUARD);
    copy(dst + GUARD + d0, src + so, n);
    T_TRUE(memcmp(dst + GUARD + d0, src + so, n) == 0);
    for (size_t i = 0; i < GUARD + d0; i++) {
        T_EQ_U64(dst[i], 0xA5);
    }
    for (size_t i = 0; i < GUARD; i++) {
        T_EQ_U64(dst[GUARD + d0 + n + i], 0xA5);
    }
}

static void
copy_in(void *d, const void *s, size_t n)
{
    shmchan__copy_in(d, s, n);
}

static void
copy_out(void *d, const void *s, size_t n)
{
    shmchan__copy_out(d, s, n);
}

TEST(copy_every_byte)
{
    static const size_t sizes[] = {0, 1, 63, 4096, 16383, 16384, 49155, 65536 + 17,
                                   (1u << 20) + 5, (3u << 20) + 1};
    size_t max = (3u << 20) + 1;
    uint8_t *src = malloc(max + 64), *dst = malloc(max + 64 + 2 * GUARD);
    T_TRUE(src != NULL && dst != NULL);
    /* 20 rounds: past the timed copies of every class, so both ways and then
     * the chosen one run. */
    for (uint32_t round = 0; round < 20; round++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t so = (round * 7 + i) % 64, d0 = (round * 13 + 3 * i) % 64;
            check_copy(copy_in, src, dst, sizes[i], so, d0, round * 31 + (uint32_t)i);
            check_copy(copy_out, src, dst, sizes[i], d0, so, round * 37 + (uint32_t)i);
        }
    }
    static const size_t nt_sizes[] = {0, 1, 15, 16, 17, 63, 64, 65, 1000, 100003};
    for (size_t i = 0; i < sizeof nt_sizes / sizeof nt_sizes[0]; i++) {
        for (size_t d0 = 0; d0 < 20; d0 += 3) {
            check_copy(shmchan__copy_stream, src, dst, nt_sizes[i], 5, d0, (uint32_t)(i + d0));
        }
    }
    free(src);
    free(dst);
}
