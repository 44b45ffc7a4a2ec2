/*
 * SIGBUS guard. A process that shrinks a channel's backing object (ftruncate
 * on the shm or file) would make every other process's next access to the
 * lost pages raise SIGBUS. The guard catches SIGBUS for addresses inside our
 * mappings, maps anonymous zero pages over the whole mapping (MAP_FIXED, so
 * the faulting access is retried and reads zeros) and flags the mapping;
 * every operation then checks the flag and returns SHMCHAN_ETRUNCATED. A
 * SIGBUS anywhere else goes to the previous handler or the default action.
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
#include <string.h>
#include <sys/mman.h>

#include <stdlib.h>

#define GUARD_CHUNK 4096
#define GUARD_CHUNKS 4096

typedef struct guard_slot {
    _Atomic(uintptr_t) base; /* 0 = free; set last when adding */
    _Atomic(uint64_t) len;
    _Atomic(atomic_int *) faulted;
} guard_slot;

static guard_slot first[GUARD_CHUNK];
static _Atomic(guard_slot *) chunks[GUARD_CHUNKS] = {first};
static pthread_mutex_t grow_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sigaction previous;
static pthread_once_t installed = PTHREAD_ONCE_INIT;

static void
chain(int sig, siginfo_t *si, void *uc)
{
    if (previous.sa_flags & SA_SIGINFO) {
        previous.sa_sigaction(sig, si, uc);
        return;
    }
    if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL); /* returning re-executes the access: now fatal */
}

static void
on_sigbus(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    for (int c = 0; c < GUARD_CHUNKS; c++) {
        guard_slot *slots = atomic_load(&chunks[c]);
        if (slots == NULL) {
            break;
        }
        for (int i = 0; i < GUARD_CHUNK; i++) {
            uintptr_t b = atomic_load(&slots[i].base);
            uint64_t n = atomic_load(&slots[i].len);
            if (b != 0 && a >= b && a - b < n) {
                int e = errno;
                void *p = mmap((void *)b, (size_t)n, PROT_READ | PROT_WRITE,
                               MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                errno = e;
                if (p != MAP_FAILED) {
                    atomic_store(atomic_load(&slots[i].faulted), 1);
                    return;
                }
            }
        }
    }
    chain(sig, si, uc);
}

static void
install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &previous);
}

/* Claim a free slot of one chunk for base; false if the chunk is full. */
static bool
claim_in(guard_slot *slots, void *base, uint64_t len, atomic_int *faulted)
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
            atomic_store(&slots[i].len, len);
            atomic_store(&slots[i].base, (uintptr_t)base);
            return true;
        }
    }
    return false;
}

int
shmchan__posix_guard_add(void *base, uint64_t len, atomic_int *faulted)
{
    pthread_once(&installed, install);
    for (int c = 0; c < GUARD_CHUNKS; c++) {
        guard_slot *slots = atomic_load(&chunks[c]);
        if (slots == NULL) {
            /* Grow: one thread allocates, the handler sees the chunk only
             * once it is zeroed (calloc) and published. */
            pthread_mutex_lock(&grow_lock);
            slots = atomic_load(&chunks[c]);
            if (slots == NULL) {
                slots = calloc(GUARD_CHUNK, sizeof(guard_slot));
                if (slots != NULL) {
                    atomic_store(&chunks[c], slots);
                }
            }
            pthread_mutex_unlock(&grow_lock);
            if (slots == NULL) {
                return SHMCHAN_ENOMEM;
            }
        }
        if (claim_in(slots, base, len, faulted)) {
            return SHMCHAN_OK;
        }
    }
    return SHMCHAN_ENOMEM; /* 16 M guarded mappings in one process */
}

void
shmchan__posix_guard_remove(void *base)
{
    for (int c = 0; c < GUARD_CHUNKS; c++) {
        guard_slot *slots = atomic_load(&chunks[c]);
        if (slots == NULL) {
            return;
        }
        for (int i = 0; i < GUARD_CHUNK; i++) {
            if (atomic_load(&slots[i].base) == (uintptr_t)base) {
                atomic_store(&slots[i].len, 0);
                atomic_store(&slots[i].base, 0);
                return;
            }
        }
    }
}
