/*
 * Large payload copies (copy.h): per size class and direction, memcpy or the
 * CPU's string move, whichever measured faster on this process's first copies
 * of that class; non-temporal stores for a writer's copy larger than half the
 * last-level cache. Thresholds come from the platform's cache sizes at run
 * time; nothing here is tuned to one CPU.
 */
#include "copy.h"

#include "internal.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SHMCHAN__COPY_PLAIN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer) || \
    __has_feature(memory_sanitizer)
#define SHMCHAN__COPY_PLAIN 1
#endif
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(SHMCHAN__COPY_PLAIN)
#define SHMCHAN__COPY_X86 1
#include <cpuid.h>
#include <emmintrin.h>
#endif

#define CLASSES 48        /* size classes: floor(log2(n)) */
#define SAMPLES 16        /* timed copies per class before it decides, alternating */
#define WAY_MEMCPY 1u
#define WAY_MOVSB 2u

shmchan__atomic_u64 shmchan__copy_big_min;

/* Per direction and size class: the way chosen (0: still measuring), the
 * number of copies timed, and the best time per byte of each way (in 1/1024
 * ns, + 1 so that 0 means none yet). Racing threads may time a few copies
 * more than SAMPLES; they agree on the choice made from what they saw. */
static struct {
    shmchan__atomic_u32 way;
    shmchan__atomic_u32 timed;
    shmchan__atomic_u64 best[2];
} classes[2][CLASSES];

/* Half the last-level cache: larger messages in are copied past the caches
 * (0: never, the cache sizes being unknown). Looked up with big_min. */
static shmchan__atomic_u64 nt_min;
static shmchan__atomic_u32 movsb_ok; /* 1 + whether the CPU has fast string moves */

static void
look_up(void)
{
    uint64_t l1 = shmchan__plat_cache_size(1);
    uint64_t llc = shmchan__plat_cache_size(3);
    if (llc == 0) {
        llc = shmchan__plat_cache_size(2);
    }
    shmchan__store(&nt_min, llc / 2, SHMCHAN__RELAXED);
    bool fast = false;
#if defined(SHMCHAN__COPY_X86)
    unsigned a, b, c, d;
    /* ERMS: "enhanced rep movsb", the CPU's promise that the string move is
     * not slower than a loop of its widest stores for large copies. */
    fast = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 9)) != 0;
#endif
    shmchan__store(&shmchan__copy_big_min, l1 > SHMCHAN__COPY_FLOOR ? l1 : SHMCHAN__COPY_FLOOR,
                   SHMCHAN__RELAXED);
    /* Last, release: a thread that sees it set sees the thresholds too. */
    shmchan__store(&movsb_ok, 1u + fast, SHMCHAN__RELEASE);
}

static void
copy_movsb(void *dst, const void *src, size_t n)
{
#if defined(SHMCHAN__COPY_X86)
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
#else
    memcpy(dst, src, n);
#endif
}

/* Non-temporal copy: the head up to a 16-byte boundary of dst and the tail
 * by memcpy, the rest by streaming stores; then a store fence (the stores
 * are weakly ordered, and the caller's commit must not pass them). */
void
shmchan__copy_stream(void *dst, const void *src, size_t n)
{
#if defined(SHMCHAN__COPY_X86)
    uint8_t *d = dst;
    const uint8_t *s = src;
    size_t head = (16 - ((uintptr_t)d & 15)) & 15;
    head = head < n ? head : n;
    memcpy(d, s, head);
    d += head;
    s += head;
    n -= head;
    size_t body = n & ~(size_t)63;
    for (size_t i = 0; i < body; i += 64) {
        __m128i x0 = _mm_loadu_si128((const __m128i *)(s + i));
        __m128i x1 = _mm_loadu_si128((const __m128i *)(s + i + 16));
        __m128i x2 = _mm_loadu_si128((const __m128i *)(s + i + 32));
        __m128i x3 = _mm_loadu_si128((const __m128i *)(s + i + 48));
        _mm_stream_si128((__m128i *)(d + i), x0);
        _mm_stream_si128((__m128i *)(d + i + 16), x1);
        _mm_stream_si128((__m128i *)(d + i + 32), x2);
        _mm_stream_si128((__m128i *)(d + i + 48), x3);
    }
    memcpy(d + body, s + body, n - body);
    _mm_sfence();
#else
    memcpy(dst, src, n);
#endif
}

static unsigned
size_class(size_t n)
{
    unsigned c = 0;
    while (n > 1 && c < CLASSES - 1) {
        n >>= 1;
        c++;
    }
    return c;
}

/* Copy with the way under test and keep its time if it is the best yet. */
static void
timed_copy(void *dst, const void *src, size_t n, int dir, unsigned cls, uint32_t turn)
{
    unsigned w = turn & 1u; /* 0: memcpy, 1: string move */
    uint64_t t0 = shmchan__now_ns();
    if (w == 0) {
        memcpy(dst, src, n);
    } else {
        copy_movsb(dst, src, n);
    }
    uint64_t per = ((shmchan__now_ns() - t0) << 10) / n + 1;
    shmchan__atomic_u64 *best = &classes[dir][cls].best[w];
    uint64_t seen = shmchan__load(best, SHMCHAN__RELAXED);
    while ((seen == 0 || per < seen) && !shmchan__cas(best, &seen, per)) {
    }
    if (turn + 1 >= SAMPLES) {
        uint64_t m = shmchan__load(&classes[dir][cls].best[0], SHMCHAN__RELAXED);
        uint64_t s = shmchan__load(&classes[dir][cls].best[1], SHMCHAN__RELAXED);
        uint32_t way = s != 0 && (m == 0 || s < m) ? WAY_MOVSB : WAY_MEMCPY;
        shmchan__store(&classes[dir][cls].way, way, SHMCHAN__RELAXED);
    }
}

void
shmchan__copy_big(void *dst, const void *src, size_t n, int dir)
{
    if (shmchan__load(&movsb_ok, SHMCHAN__ACQUIRE) == 0) {
        look_up();
        if (n < shmchan__load(&shmchan__copy_big_min, SHMCHAN__RELAXED)) {
            memcpy(dst, src, n);
            return;
        }
    }
    uint64_t nt = shmchan__load(&nt_min, SHMCHAN__RELAXED);
    if (dir == SHMCHAN__COPY_IN && nt != 0 && n > nt) {
        shmchan__copy_stream(dst, src, n);
        return;
    }
    if (shmchan__load(&movsb_ok, SHMCHAN__RELAXED) != 2u) {
        memcpy(dst, src, n);
        return;
    }
    unsigned cls = size_class(n);
    uint32_t way = shmchan__load(&classes[dir][cls].way, SHMCHAN__RELAXED);
    if (SHMCHAN__LIKELY(way == WAY_MOVSB)) {
        copy_movsb(dst, src, n);
    } else if (way == WAY_MEMCPY) {
        memcpy(dst, src, n);
    } else {
        timed_copy(dst, src, n, dir, cls,
                   shmchan__fetch_add(&classes[dir][cls].timed, 1, SHMCHAN__RELAXED));
    }
}
