/*
 * Waiting and waking: the one sleep/wake handshake every kind uses, the one
 * rule for whether a wait spins first, the sleepers' barriers, and deadlines.
 *
 * The handshake (a Dekker pattern on two shared words, a waiter word and a
 * wake word that is the futex). The waiter word counts the waiters (in steps
 * of SHMCHAN__WAITER_ONE) and has one bit, SHMCHAN__WAKE_DUE, that a waiter
 * sets when it goes to sleep and the first waker after it clears:
 *
 *   waiter                                  waker
 *   w = shmchan__wait_in(waiters, word)     (its stores: message, cursor...)
 *     (reads word, then counts itself in    a publisher's barrier
 *      and sets WAKE_DUE)                   shmchan__wake(waiters, word)
 *   slice = a waiter's barrier                (loads waiters; only if WAKE_DUE
 *   look at the condition; if not yet:         is set and it is the one to clear
 *     shmchan__wait_sleep(.., w, slice)        it, bumps word and wakes: one
 *   shmchan__wait_out(waiters)                 system call per sleep, not one
 *                                              per message until the sleeper runs)
 *
 * By the barriers either the waker sees WAKE_DUE, or the waiter sees the
 * condition and does not sleep. The waiter reads the word before it sets the
 * bit, and the waker that clears the bit (an RMW reading the waiter's RMW or
 * a later one) bumps the word only after, so the bump differs from the w of
 * every waiter whose bit it cleared: their sleep returns at once or is woken.
 * A waker that finds the bit clear has nobody to wake: every waiter counted
 * in was woken by the clearer, or set the bit after that and will be woken by
 * the next one. (Latest-value publishers store a new word value themselves,
 * before their barrier; a waiter that read that value sees their message.)
 * Sleeps are bounded by a slice, so a waiter also looks again now and then (a
 * forged word or a waker that died in between costs at most one slice).
 * shmchan__wake is the one place a writer wakes anybody, of any kind.
 */
#ifndef SHMCHAN_WAIT_H
#define SHMCHAN_WAIT_H

#include "internal.h"
#include "notify.h"

/* --------------------------------------------------------------- spinning */

/*
 * Whether a wait should spin before it sleeps: spinning pays when the peer
 * we wait for runs on another CPU meanwhile. With more readers than CPUs
 * left beside one for the writers, spinners take the CPUs their peers need,
 * and a wait that sleeps at once is faster (fan-out to four readers on two
 * cores: the spin made every message wait for time slices). `readers` counts
 * the readers that may spin, the caller included.
 */
static inline bool
shmchan__spin_pays(uint32_t readers)
{
    return readers + 1 <= shmchan__cpu_count();
}

/* A cached verdict of shmchan__spin_pays, for kinds whose count is costly. */
typedef struct shmchan__spin_rule {
    bool pays;
    uint64_t checked; /* when, 0: never */
} shmchan__spin_rule;

#define SHMCHAN__SPIN_RECHECK_NS (10ull * 1000 * 1000)

/*
 * The sleepers handshake (platform.h, asymmetric fences). A publisher, after
 * its stores and before it looks at the sleepers count, calls fence_fast: a
 * compiler barrier when its process is registered (a waiter's fence_slow then
 * forces the barrier on it), a full fence otherwise. A waiter, after counting
 * itself in and before it looks again, calls fence_waiter(slice), which
 * returns how long it may sleep: slice, or less when it could not force the
 * publishers' barriers.
 *
 * fence_slow interrupts every CPU that runs a peer, which is cheap next to a
 * sleep only while sleeps are rare. Where waiters sleep at once, message
 * after message (more readers than CPUs), each of them counts itself once in
 * the channel's `fenced` word and pays fence_slow once (fence_sleeper); while
 * that word is non-zero, publishers issue a full fence (fence_publisher), and
 * the registered waiters' later sleeps need only their own fence; a handle
 * stays counted until it closes. A publisher
 * whose look at `fenced` came before that fence_slow had made its stores
 * visible by the time fence_slow returned; one whose look came after sees the
 * count and fences. docs/design.md, "Asymmetric barriers", has the argument.
 */
#define SHMCHAN__UNFORCED_SLEEP_NS (1000ull * 1000)

static inline void
shmchan__fence_fast(bool asym)
{
    if (SHMCHAN__LIKELY(asym)) {
        atomic_signal_fence(memory_order_seq_cst);
    } else {
        shmchan__fence(SHMCHAN__SEQ_CST);
    }
}

static inline void
shmchan__fence_publisher(bool asym, const shmchan__atomic_u32 *fenced)
{
    atomic_signal_fence(memory_order_seq_cst); /* our stores come first */
    shmchan__fence_fast(asym && shmchan__load(fenced, SHMCHAN__RELAXED) == 0);
}

static inline uint64_t
shmchan__fence_waiter(uint64_t slice_ns)
{
    bool forced = shmchan__fence_slow();
    return forced || slice_ns < SHMCHAN__UNFORCED_SLEEP_NS ? slice_ns : SHMCHAN__UNFORCED_SLEEP_NS;
}

/* A handle's place in `fenced`: 0 out, then joining, then in until close.
 * Threads sharing a handle rely on it only once it is in. */
#define SHMCHAN__FENCED_JOINING 1u
#define SHMCHAN__FENCED_IN 2u

/* The waiter's barrier for a handle whose waiters may sleep often: joins
 * `fenced` (once, when often and asym: this process's publishers' barriers
 * can be forced), then fences; returns as fence_waiter. */
uint64_t shmchan__fence_sleeper(bool asym, shmchan__atomic_u32 *fenced, shmchan__atomic_u32 *in,
                                bool often, uint64_t slice_ns);
/* Leave `fenced` at close, if in it. */
void shmchan__fence_sleeper_leave(shmchan__atomic_u32 *fenced, shmchan__atomic_u32 *in);

/*
 * How long a reader spins before it sleeps: spin_ns, stretched while
 * messages keep arriving just after the spin gave up (a writer whose
 * messages take a little longer than the spin to produce, a 1 MiB copy
 * say, would otherwise cost a sleep and a wake-up per message). After a
 * wait that slept and found its message within twice the spin, the spin
 * doubles, up to 8 x spin_ns; after a longer one it halves, down to
 * spin_ns. Threads sharing a handle may race on it: any value is fine.
 */
#define SHMCHAN__SPIN_STRETCH 8u

static inline uint32_t
shmchan__spin_now(const shmchan__region *r)
{
    uint32_t now = shmchan__load(&r->spin_now, SHMCHAN__RELAXED);
    return now > r->spin_ns ? now : r->spin_ns;
}

/* After a wait that slept and then found its message, waited_ns after it began. */
void shmchan__spin_learn(shmchan__region *r, uint64_t waited_ns);

/* Absolute monotonic deadline for a timeout in ms (0 for WAIT_FOREVER). */
uint64_t shmchan__deadline(int64_t timeout_ms);


/* ---------------------------------------------------------- the handshake */

#define SHMCHAN__WAKE_DUE 1u
#define SHMCHAN__WAITER_ONE 2u

/* How many waiters a waiter word counts. */
static inline uint32_t
shmchan__waiters_of(uint32_t v)
{
    return v / SHMCHAN__WAITER_ONE;
}

/* The waiter reads the wake word, counts itself in and sets WAKE_DUE; returns
 * the word to sleep on, and in *others (may be NULL) how many were in before
 * it. The waiter's barrier comes next. */
static inline uint32_t
shmchan__wait_in(shmchan__atomic_u32 *waiters, shmchan__atomic_u32 *word, uint32_t *others)
{
    uint32_t w = shmchan__load(word, SHMCHAN__SEQ_CST);
    uint32_t before = shmchan__fetch_add(waiters, SHMCHAN__WAITER_ONE, SHMCHAN__SEQ_CST);
    shmchan__fetch_or(waiters, SHMCHAN__WAKE_DUE, SHMCHAN__SEQ_CST);
    if (others != NULL) {
        *others = shmchan__waiters_of(before);
    }
    return w;
}

static inline void
shmchan__wait_out(shmchan__atomic_u32 *waiters)
{
    shmchan__fetch_sub(waiters, SHMCHAN__WAITER_ONE, SHMCHAN__RELAXED);
}

/* Sleep while *word == w, for at most slice_ns and not past deadline_ns (0:
 * none). OK: look again (woken, or the slice ended before the deadline);
 * ETIMEDOUT: the deadline passed; EINTR. */
int shmchan__wait_sleep(shmchan__shm *shm, shmchan__atomic_u32 *word, uint32_t w,
                        uint64_t slice_ns, uint64_t deadline_ns);

/*
 * The waker's side, after its stores and a publisher's barrier: if a waiter
 * set WAKE_DUE and we are the one to clear it, bump word (bump false: the
 * caller stored a new word value already) and wake its sleepers. This is the
 * one place where writers of every kind wake sleepers (and where a readiness
 * notification for event loops belongs).
 */
static inline void
shmchan__wake(shmchan__shm *shm, shmchan__atomic_u32 *waiters, shmchan__atomic_u32 *word,
              bool bump)
{
    if (SHMCHAN__UNLIKELY(shmchan__load(waiters, SHMCHAN__RELAXED) & SHMCHAN__WAKE_DUE) &&
        (shmchan__fetch_and(waiters, ~SHMCHAN__WAKE_DUE, SHMCHAN__SEQ_CST) & SHMCHAN__WAKE_DUE)) {
        if (bump) {
            shmchan__fetch_add(word, 1, SHMCHAN__RELEASE);
        }
        shmchan__wake_all(shm, word);
    }
}

/*
 * Waking readers after a publish: the sleepers as above, then the armed
 * readiness notifiers of event loops (notify.h), which need the same
 * publisher's barrier before it: one relaxed load more, and a system call
 * only for an armed notifier.
 */
static inline void
shmchan__wake_readers(shmchan__shm *shm, shmchan__atomic_u32 *waiters,
                      shmchan__atomic_u32 *word, bool bump, const shmchan__nfview *nf)
{
    shmchan__wake(shm, waiters, word, bump);
    shmchan__notify_publish(nf);
}

#endif /* SHMCHAN_WAIT_H */
