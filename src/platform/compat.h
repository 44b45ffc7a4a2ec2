/*
 * Compiler compatibility: atomics, cache-line alignment and the spin hint.
 *
 * The core uses C11 <stdatomic.h> through these names only, so that a
 * compiler without C11 atomics can map them to its intrinsics in one place.
 * Shared-memory atomics must be lock-free (checked at build time), since a
 * lock-based fallback would live in one process only.
 */
#ifndef SHMCHAN_COMPAT_H
#define SHMCHAN_COMPAT_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint32_t shmchan__atomic_u32;
typedef _Atomic uint64_t shmchan__atomic_u64;

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics must be lock-free");
_Static_assert(sizeof(shmchan__atomic_u64) == 8, "atomic u64 must be 8 bytes");

#define SHMCHAN__RELAXED memory_order_relaxed
#define SHMCHAN__ACQUIRE memory_order_acquire
#define SHMCHAN__RELEASE memory_order_release
#define SHMCHAN__ACQ_REL memory_order_acq_rel
#define SHMCHAN__SEQ_CST memory_order_seq_cst

#define shmchan__load(p, mo) atomic_load_explicit((p), (mo))
#define shmchan__store(p, v, mo) atomic_store_explicit((p), (v), (mo))
#define shmchan__fetch_add(p, v, mo) atomic_fetch_add_explicit((p), (v), (mo))
#define shmchan__fetch_sub(p, v, mo) atomic_fetch_sub_explicit((p), (v), (mo))
#define shmchan__fetch_or(p, v, mo) atomic_fetch_or_explicit((p), (v), (mo))
#define shmchan__fetch_and(p, v, mo) atomic_fetch_and_explicit((p), (v), (mo))
#define shmchan__exchange(p, v, mo) atomic_exchange_explicit((p), (v), (mo))
#define shmchan__cas(p, expp, v) \
    atomic_compare_exchange_strong_explicit((p), (expp), (v), SHMCHAN__ACQ_REL, SHMCHAN__ACQUIRE)
#define shmchan__fence(mo) atomic_thread_fence(mo)

#define SHMCHAN__CACHE_LINE 64

#if defined(_MSC_VER)
#define SHMCHAN__THREAD_LOCAL __declspec(thread)
#else
#define SHMCHAN__THREAD_LOCAL _Thread_local
#endif

#if defined(_MSC_VER)
#include <intrin.h>
#define shmchan__cpu_relax() _mm_pause()
#define SHMCHAN__LIKELY(x) (x)
#define SHMCHAN__UNLIKELY(x) (x)
#elif defined(__x86_64__) || defined(__i386__)
#define shmchan__cpu_relax() __builtin_ia32_pause()
#define SHMCHAN__LIKELY(x) __builtin_expect(!!(x), 1)
#define SHMCHAN__UNLIKELY(x) __builtin_expect(!!(x), 0)
#elif defined(__aarch64__)
#define shmchan__cpu_relax() __asm__ __volatile__("yield" ::: "memory")
#define SHMCHAN__LIKELY(x) __builtin_expect(!!(x), 1)
#define SHMCHAN__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define shmchan__cpu_relax() ((void)0)
#define SHMCHAN__LIKELY(x) (x)
#define SHMCHAN__UNLIKELY(x) (x)
#endif

/* A hint to fetch the cache line of p for reading; never faults. */
#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
#define shmchan__prefetch(p) _mm_prefetch((const char *)(p), _MM_HINT_T0)
#elif defined(__GNUC__) || defined(__clang__)
#define shmchan__prefetch(p) __builtin_prefetch((p), 0, 3)
#else
#define shmchan__prefetch(p) ((void)(p))
#endif

#endif /* SHMCHAN_COMPAT_H */
