/*
 * SIGBUS guard. A process that shrinks a channel's backing object (ftruncate
 * on the shm or file) would make every other process's next access to the
 * lost pages raise SIGBUS. The guard catches SIGBUS for addresses inside our
 * mappings, maps anonymous zero pages over the whole mapping (MAP_FIXED, so
 * the faulting access is retried and reads zeros) and flags the mapping;
 * every operation then checks the flag and returns SHMCHAN_ETRUNCATED. A
 * SIGBUS anywhere else goes to the previous handler or the default action.
 *
 * The application may install its own SIGBUS handler after ours (Python's
 * faulthandler, crash reporters). Three things keep the promise then:
 *   - every new mapping checks that our handler is still the installed one
 *     and installs it again on top if not, chaining to the application's;
 *   - a handler that chains to ours by re-raising the signal (faulthandler
 *     restores the previous handler and calls raise()) gives us a signal
 *     without the fault's address (si_code <= 0): we then look at the size of
 *     every guarded object (fstat, async-signal-safe) and replace the
 *     mappings of those that shrank; the faulting access, retried when the
 *     handlers return, reads zeros;
 *   - chaining is guarded against loops (the application's handler calling
 *     ours, which chains to it): a nested non-ours signal goes to the default
 *     action.
 * A handler that never returns and never chains (it exits on SIGBUS) cannot
 * be helped: docs/security.md says so.
 *
 * The table is read lock-free by the handler. It grows in chunks that are
 * never freed (a chunk pointer, once published, stays valid), so the number
 * of mappings a process may guard is bounded only by memory: GUARD_CHUNKS x
 * GUARD_CHUNK (16 M), far beyond the descriptors a process can hold.
 */
#include "platform/posix/posix.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define GUARD_CHUNK 4096
#define GUARD_CHUNKS 4096

typedef struct guard_slot {
    _Atomic(uintptr_t) base; /* 0 = free; set last when adding */
    _Atomic(uint64_t) len;
    _Atomic(atomic_int *) faulted;
    _Atomic(int) fd; /* the backing object, to see whether it shrank */
} guard_slot;

static guard_slot first[GUARD_CHUNK];
static _Atomic(guard_slot *) chunks[GUARD_CHUNKS] = {first};
static pthread_mutex_t grow_mu = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction previous;
static pthread_mutex_t install_mu = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local int chaining; /* inside the previous handler, on this thread */

/* Nobody's SIGBUS: the default action. A fault is retried when we return
 * and is now fatal; a signal that was sent (si_code <= 0) is sent again. */
static void
fatal(int sig, const siginfo_t *si)
{
    signal(sig, SIG_DFL);
    if (si == NULL || si->si_code <= 0) {
        raise(sig);
    }
}

static void
chain(int sig, siginfo_t *si, void *uc)
{
    if (chaining) {
        /* The previous handler came back to us (it chains to ours): not our
         * fault, and nobody else's either. */
        fatal(sig, si);
        return;
    }
    if (previous.sa_flags & SA_SIGINFO) {
        chaining = 1;
        previous.sa_sigaction(sig, si, uc);
        chaining = 0;
        return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        chaining = 1;
        previous.sa_handler(sig);
        chaining = 0;
        return;
    }
    fatal(sig, si);
}

/* The slot at index k of the whole table, or NULL past the chunks made. */
static guard_slot *
slot_at(int k)
{
    guard_slot *chunk = atomic_load(&chunks[k / GUARD_CHUNK]);
    return chunk == NULL ? NULL : &chunk[k % GUARD_CHUNK];
}

/* Replace slot g's mapping by zero pages and flag it. */
static bool
zero_fill(guard_slot *g)
{
    uintptr_t b = atomic_load(&g->base);
    uint64_t n = atomic_load(&g->len);
    if (b <= 1) {
        return false;
    }
    void *p = mmap((void *)b, (size_t)n, PROT_READ | PROT_WRITE,
                   MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return false;
    }
    atomic_store(atomic_load(&g->faulted), 1);
    return true;
}

/* A SIGBUS without the fault's address (re-raised by another handler): zero
 * every guarded mapping whose object is now shorter than the mapping. */
static bool
zero_shrunk(void)
{
    bool any = false;
    guard_slot *g;
    for (int k = 0; k < GUARD_CHUNK * GUARD_CHUNKS && (g = slot_at(k)) != NULL; k++) {
        uintptr_t b = atomic_load(&g->base);
        uint64_t n = atomic_load(&g->len);
        struct stat st;
        if (b > 1 && fstat(atomic_load(&g->fd), &st) == 0 && (uint64_t)st.st_size < n) {
            any |= zero_fill(g);
        }
    }
    return any;
}

static void
on_sigbus(int sig, siginfo_t *si, void *uc)
{
    int e = errno;
    bool ours = false;
    if (si != NULL && si->si_code > 0) { /* a fault, with its address */
        uintptr_t a = (uintptr_t)si->si_addr;
        guard_slot *g;
        for (int k = 0; k < GUARD_CHUNK * GUARD_CHUNKS && !ours && (g = slot_at(k)) != NULL;
             k++) {
            uintptr_t b = atomic_load(&g->base);
            uint64_t n = atomic_load(&g->len);
            ours = b > 1 && a >= b && a - b < n && zero_fill(g);
        }
    } else {
        ours = zero_shrunk();
    }
    errno = e;
    if (!ours) {
        chain(sig, si, uc);
    }
}

/* Install our handler unless it is the one installed; the one it replaces
 * becomes the one we chain to. */
static void
ensure_installed(void)
{
    struct sigaction cur;
    if (sigaction(SIGBUS, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) &&
        cur.sa_sigaction == on_sigbus) {
        return;
    }
    pthread_mutex_lock(&install_mu);
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, &old) == 0 &&
        !((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == on_sigbus)) {
        previous = old;
    }
    pthread_mutex_unlock(&install_mu);
}

/* Claim a free slot of one chunk; false if the chunk is full. */
static bool
claim_in(guard_slot *slots, void *base, uint64_t len, atomic_int *faulted, int fd)
{
    for (int i = 0; i < GUARD_CHUNK; i++) {
        uintptr_t expected = 0;
        if (atomic_load(&slots[i].base) != 0) {
            continue;
        }
        /* Claim with a sentinel first so the handler never sees a half slot. */
        if (atomic_compare_exchange_strong(&slots[i].base, &expected, (uintptr_t)1)) {
            atomic_store(&slots[i].len, 0);
            atomic_store(&slots[i].faulted, faulted);
            atomic_store(&slots[i].fd, fd);
            atomic_store(&slots[i].len, len);
            atomic_store(&slots[i].base, (uintptr_t)base);
            return true;
        }
    }
    return false;
}

/* Chunk c, made (zeroed, then published) if missing; NULL without memory. */
static guard_slot *
chunk_made(int c)
{
    guard_slot *slots = atomic_load(&chunks[c]);
    if (slots != NULL) {
        return slots;
    }
    pthread_mutex_lock(&grow_mu);
    slots = atomic_load(&chunks[c]);
    if (slots == NULL) {
        slots = calloc(GUARD_CHUNK, sizeof(guard_slot));
        if (slots != NULL) {
            atomic_store(&chunks[c], slots);
        }
    }
    pthread_mutex_unlock(&grow_mu);
    return slots;
}

int
shmchan__posix_guard_add(void *base, uint64_t len, atomic_int *faulted, int fd)
{
    ensure_installed();
    for (int c = 0; c < GUARD_CHUNKS; c++) {
        guard_slot *slots = chunk_made(c);
        if (slots == NULL) {
            return SHMCHAN_ENOMEM;
        }
        if (claim_in(slots, base, len, faulted, fd)) {
            return SHMCHAN_OK;
        }
    }
    return SHMCHAN_ENOMEM; /* 16 M guarded mappings in one process */
}

void
shmchan__posix_guard_remove(void *base)
{
    guard_slot *g;
    for (int k = 0; k < GUARD_CHUNK * GUARD_CHUNKS && (g = slot_at(k)) != NULL; k++) {
        if (atomic_load(&g->base) == (uintptr_t)base) {
            atomic_store(&g->len, 0);
            atomic_store(&g->base, 0);
            return;
        }
    }
}
