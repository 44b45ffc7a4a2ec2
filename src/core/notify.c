/*
 * Readiness notifiers (notify.h; the shared table in layout.h; the contract
 * in docs/event-loops.md).
 *
 * Every word of the table may be forged. The scan bound is clamped to the
 * table, a writer acts only on a word it CASes from exactly 1 to 0, the
 * armed count never goes below zero (a forged large one only costs writers a
 * scan of 64 words per publish), and what a writer signals is derived from
 * the channel id it validated at open and the slot index, never read from
 * shared memory: the worst a forger achieves is empty datagrams to other
 * notifiers of this channel, which wake their owners spuriously.
 */
#include <stdlib.h>

#include "wait.h"

void
shmchan__nfview_reset(const shmchan__nfview *v)
{
    for (uint32_t i = 0; i < SHMCHAN__NOTIFY_SLOTS; i++) {
        shmchan__store(&v->slots[i], 0, SHMCHAN__RELAXED);
    }
    shmchan__store(v->armed_n, 0, SHMCHAN__RELAXED);
}

/* Count one armed slot less, never below zero (a forged count may be 0). */
static void
armed_dec(const shmchan__nfview *v)
{
    uint32_t n = shmchan__load(v->armed_n, SHMCHAN__RELAXED);
    for (int i = 0; i < 64 && n != 0; i++) {
        if (shmchan__cas(v->armed_n, &n, n - 1)) {
            return;
        }
    }
}

/* Take slot i from armed to idle; true if this call did. */
static bool
disarm(const shmchan__nfview *v, uint32_t i)
{
    uint32_t one = 1;
    if (shmchan__cas(&v->slots[i], &one, 0)) {
        armed_dec(v);
        return true;
    }
    return false;
}

static uint32_t
scan_bound(const shmchan__nfview *v)
{
    uint32_t used = shmchan__load(v->used, SHMCHAN__RELAXED);
    return used < SHMCHAN__NOTIFY_SLOTS ? used : SHMCHAN__NOTIFY_SLOTS;
}

void
shmchan__notify_fire(const shmchan__nfview *v)
{
    /* The handshake is on each slot's word (the count only filters): an
     * armer stores it, fences and looks at the message; we stored the
     * message, fenced (the publisher's barrier) and look at the word. */
    uint32_t used = scan_bound(v);
    for (uint32_t i = 0; i < used; i++) {
        if (shmchan__load(&v->slots[i], SHMCHAN__RELAXED) == 1 && disarm(v, i)) {
            shmchan__nf_signal(v->chan_id, v->name_base + i);
        }
    }
}

static void
raise_used(const shmchan__nfview *v, uint32_t upto)
{
    uint32_t cur = shmchan__load(v->used, SHMCHAN__RELAXED);
    for (int i = 0; i < 64 && cur < upto; i++) {
        if (shmchan__cas(v->used, &cur, upto)) {
            return;
        }
    }
    if (shmchan__load(v->used, SHMCHAN__RELAXED) < upto) {
        shmchan__store(v->used, upto, SHMCHAN__RELAXED); /* a forger fights us: win */
    }
}

int
shmchan__notifier_open(const shmchan__nfview *v, shmchan__notifier **out)
{
    shmchan__notifier *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        return SHMCHAN_ENOMEM;
    }
    for (uint32_t i = 0; i < SHMCHAN__NOTIFY_SLOTS; i++) {
        int rc = shmchan__nf_bind(v->chan_id, v->name_base + i, &n->os);
        if (rc == SHMCHAN_EBUSY) {
            continue; /* a live owner, or a squatter: the next one */
        }
        if (rc != SHMCHAN_OK) {
            free(n);
            return rc;
        }
        n->slot = i;
        (void)disarm(v, i); /* a dead owner may have left it armed */
        raise_used(v, i + 1);
        *out = n;
        return SHMCHAN_OK;
    }
    free(n);
    return SHMCHAN_ELIMIT;
}

void
shmchan__notifier_close(const shmchan__nfview *v, shmchan__notifier *n)
{
    if (n == NULL) {
        return;
    }
    if (v != NULL) {
        (void)disarm(v, n->slot);
    }
    shmchan__nf_unbind(n->os);
    free(n);
}

/*
 * The waiter's barrier for an armed notifier. The caller's event loop sleeps
 * for as long as it likes, so the handshake must hold without a bounded
 * sleep: the handle joins the channel's `fenced` count (internal.h) and stays
 * in it until it closes, which makes publishers fence in full meanwhile. If
 * the barrier could not be forced on publishers (membarrier unavailable to
 * this process while peers use it), the handle joins anyway: from then on
 * publishers see it and fence; docs/event-loops.md states the first
 * arming's window that remains there.
 */
static bool
arm_fence(const shmchan__nfsleep *sl)
{
    if (sl->fenced == NULL) {
        bool forced = shmchan__fence_slow(); /* read-only: cannot join `fenced` */
        shmchan__fence(SHMCHAN__SEQ_CST);
        return forced;
    }
    if (shmchan__fence_sleeper(sl->asym, sl->fenced, sl->fenced_in, true, UINT64_MAX) ==
        UINT64_MAX) {
        return true;
    }
    uint32_t out = 0;
    if (shmchan__cas(sl->fenced_in, &out, SHMCHAN__FENCED_IN)) {
        shmchan__fetch_add(sl->fenced, 1, SHMCHAN__SEQ_CST);
    }
    shmchan__fence(SHMCHAN__SEQ_CST);
    return true;
}

bool
shmchan__notifier_arm(const shmchan__nfview *v, shmchan__notifier *n,
                      const shmchan__nfsleep *sl, bool (*has_news)(void *), void *arg)
{
    shmchan__nf_drain(n->os);
    /* Count first, then arm: the count is never below the armed slots, so
     * a writer that reads 0 skips nobody armed before its look. */
    shmchan__fetch_add(v->armed_n, 1, SHMCHAN__SEQ_CST);
    if (shmchan__exchange(&v->slots[n->slot], 1, SHMCHAN__SEQ_CST) == 1) {
        armed_dec(v); /* armed already, and counted then */
    }
    bool forced = arm_fence(sl);
    if (has_news(arg)) {
        /* Ready now. A writer may have fired us meanwhile: then it signalled. */
        if (disarm(v, n->slot)) {
            shmchan__nf_signal(v->chan_id, v->name_base + n->slot);
        }
    }
    return forced;
}
