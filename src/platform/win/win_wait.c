/*
 * Cross-process waiting on a word of the mapping, futex-style, on Windows.
 *
 * WaitOnAddress only wakes threads of the calling process, so sleepers block
 * on named semaphores instead. Each wait word (keyed by its offset in the
 * mapping) has a slot in the platform page (win.h) whose `state` packs a
 * generation g (high 32 bits) and the number of sleepers registered in it
 * (low 32 bits); the sleepers of generation g block on the semaphore
 * "<prefix>.w<offset>.<g>".
 *
 * Sleeper: load state (g, n); create or open semaphore g; CAS state to
 * (g, n+1), starting again if it moved; then load the word and leave at once
 * if it differs from the expected value; otherwise block on semaphore g.
 * Waker (after the core stored the new word): load state (g, n); if n == 0
 * nobody sleeps; else CAS state to (g+1, 0) and release semaphore g n times.
 *
 * No lost wake-up: the sleeper's CAS, fence and load of the word, and the
 * waker's store of the word, fence and load of state, are ordered by
 * sequentially consistent fences, so (Dekker) either the sleeper sees the
 * new word and does not block, or the waker sees its registration and
 * releases a count for it. The slot's key is covered by the same argument:
 * a waker that finds no slot ran before the sleeper's claim, hence before
 * its look at the word.
 * Counts persist in the semaphore, so one released before the sleeper
 * reaches WaitForSingleObject is not lost; and a count can only be taken by
 * a sleeper of the same generation, all of which the waker counted, so a
 * later sleeper (which registers in g+1) can never steal it. This is what a
 * single event or semaphore per word cannot give: with one object, a sleeper
 * that registered after the wake could consume the wake-up meant for one
 * that registered before.
 *
 * A sleeper that times out unregisters with a CAS from (g, n) to (g, n-1)
 * while the generation is still g; if it moved on, it was counted by a
 * waker, and simply reports a wake-up. Its count stays in semaphore g, which
 * nobody waits on any more and which disappears with its last handle. Sleeps
 * are cut into slices so that a waker that died between its CAS and its
 * release costs a delay, not a sleeper blocked for ever.
 *
 * A full slot table (thousands of distinct wait words in one channel) falls
 * back to sleeping a millisecond at a time.
 */
#if defined(SHMCHAN_PLATFORM_WIN)

#include "platform/win/win.h"

#include <limits.h>
#include <stdio.h>

#define SLICE_MS 1000u

static uint64_t
hash(uint64_t off)
{
    off ^= off >> 29;
    off *= UINT64_C(0xbf58476d1ce4e5b9);
    return off ^ (off >> 32);
}

/* The slot of the word at off: found, claimed (claim) or NULL. */
static shmchan__win_wait_slot *
slot_of(shmchan__shm *s, uint64_t off, bool claim)
{
    uint64_t key = off + 1;
    uint64_t start = hash(off) % SHMCHAN__WIN_WAIT_SLOTS;
    for (uint64_t i = 0; i < SHMCHAN__WIN_WAIT_SLOTS; i++) {
        shmchan__win_wait_slot *slot = &s->meta->slots[(start + i) % SHMCHAN__WIN_WAIT_SLOTS];
        uint64_t k = shmchan__load(&slot->key, SHMCHAN__SEQ_CST);
        if (k == key) {
            return slot;
        }
        if (k == 0) {
            if (!claim) {
                return NULL; /* slots are never freed: it is not further on */
            }
            uint64_t expected = 0;
            if (shmchan__cas(&slot->key, &expected, key) || expected == key) {
                return slot;
            }
        }
    }
    return NULL;
}

static HANDLE
semaphore(shmchan__shm *s, uint64_t off, uint32_t gen, bool create)
{
    char suffix[48];
    wchar_t name[SHMCHAN__WIN_OBJ_NAME];
    (void)snprintf(suffix, sizeof(suffix), ".w%llx.%lx", (unsigned long long)off,
                   (unsigned long)gen);
    shmchan__win_obj_name(s, suffix, name);
    if (create) {
        return CreateSemaphoreW(NULL, 0, LONG_MAX, name);
    }
    return OpenSemaphoreW(SEMAPHORE_MODIFY_STATE, FALSE, name);
}

static DWORD
ms_until(uint64_t deadline)
{
    uint64_t now = shmchan__now_ns();
    if (deadline == 0) {
        return SLICE_MS;
    }
    if (now >= deadline) {
        return 0;
    }
    uint64_t ms = (deadline - now + 999999u) / 1000000u; /* never wake early */
    return ms < SLICE_MS ? (DWORD)ms : SLICE_MS;
}

/* Leave generation gen unwoken: true if we did, false if a waker counted us. */
static bool
unregister(shmchan__win_wait_slot *slot, uint32_t gen)
{
    uint64_t v = shmchan__load(&slot->state, SHMCHAN__SEQ_CST);
    while ((uint32_t)(v >> 32) == gen) {
        if (shmchan__cas(&slot->state, &v, v - 1)) {
            return true;
        }
    }
    return false;
}

static int
poll_word(const shmchan__atomic_u32 *word, uint32_t expected, int64_t timeout_ns)
{
    if (timeout_ns >= 0 && timeout_ns < 1000000) {
        shmchan__sleep_ns((uint64_t)timeout_ns);
        return shmchan__load(word, SHMCHAN__ACQUIRE) != expected ? SHMCHAN_OK
                                                                  : SHMCHAN_ETIMEDOUT;
    }
    Sleep(1);
    return SHMCHAN_OK;
}

int
shmchan__wait(shmchan__shm *s, const shmchan__atomic_u32 *word, uint32_t expected,
              int64_t timeout_ns)
{
    if (shmchan__load(word, SHMCHAN__SEQ_CST) != expected) {
        return SHMCHAN_OK;
    }
    uint64_t off = shmchan__win_offset(s, word);
    shmchan__win_wait_slot *slot = slot_of(s, off, true);
    if (slot == NULL) {
        return poll_word(word, expected, timeout_ns);
    }
    uint64_t deadline = timeout_ns < 0 ? 0 : shmchan__now_ns() + (uint64_t)timeout_ns;
    uint32_t gen;
    HANDLE sem;
    for (;;) {
        uint64_t v = shmchan__load(&slot->state, SHMCHAN__SEQ_CST);
        gen = (uint32_t)(v >> 32);
        sem = semaphore(s, off, gen, true);
        if (sem == NULL) {
            return shmchan__win_err(GetLastError());
        }
        if (shmchan__cas(&slot->state, &v, v + 1)) {
            break;
        }
        CloseHandle(sem);
    }
    shmchan__fence(SHMCHAN__SEQ_CST); /* registered before our look at the word */
    int rc = SHMCHAN_OK;
    if (shmchan__load(word, SHMCHAN__SEQ_CST) != expected) {
        (void)unregister(slot, gen); /* or counted already: the count dies with g */
    } else {
        for (;;) {
            DWORD r = WaitForSingleObject(sem, ms_until(deadline));
            if (r == WAIT_OBJECT_0) {
                break;
            }
            if (r != WAIT_TIMEOUT) {
                rc = shmchan__win_err(GetLastError());
                (void)unregister(slot, gen);
                break;
            }
            uint64_t now_state = shmchan__load(&slot->state, SHMCHAN__SEQ_CST);
            if ((uint32_t)(now_state >> 32) != gen) {
                break; /* woken; the count is late or its waker died */
            }
            if (deadline != 0 && shmchan__now_ns() >= deadline) {
                rc = unregister(slot, gen) ? SHMCHAN_ETIMEDOUT : SHMCHAN_OK;
                break;
            }
        }
    }
    CloseHandle(sem);
    return rc;
}

void
shmchan__wake_all(shmchan__shm *s, const shmchan__atomic_u32 *word)
{
    shmchan__fence(SHMCHAN__SEQ_CST); /* the new word before our look at the sleepers */
    shmchan__win_wait_slot *slot = slot_of(s, shmchan__win_offset(s, word), false);
    if (slot == NULL) {
        return; /* nobody ever slept on it */
    }
    uint64_t v = shmchan__load(&slot->state, SHMCHAN__SEQ_CST);
    uint64_t next;
    do {
        if ((uint32_t)v == 0) {
            return;
        }
        next = ((v >> 32) + 1) << 32;
    } while (!shmchan__cas(&slot->state, &v, next));
    HANDLE sem = semaphore(s, shmchan__win_offset(s, word), (uint32_t)(v >> 32), false);
    if (sem != NULL) {
        LONG n = (uint32_t)v > (uint32_t)LONG_MAX ? LONG_MAX : (LONG)(uint32_t)v;
        (void)ReleaseSemaphore(sem, n, NULL);
        CloseHandle(sem);
    }
    /* No semaphore: every sleeper of that generation left already. */
}

/* FlushProcessWriteBuffers reaches this process's threads only: no process
 * registers, every publisher fences. */
bool
shmchan__asym_register(void)
{
    return false;
}

bool
shmchan__fence_slow(void)
{
    shmchan__fence(SHMCHAN__SEQ_CST);
    return true;
}

#endif /* SHMCHAN_PLATFORM_WIN */
