/*
 * Wait-sets: wait on several channels' readers and foreign descriptors or
 * HANDLEs at once, without an event loop (shmchan.h). Built on the readiness
 * handles alone: each wait arms every channel (which reports one that has
 * news at once), then waits on all handles with the platform's poll.
 */
#include <stdlib.h>

#include "wait.h"

typedef struct ws_entry {
    uintptr_t key;
    shmchan_latest *latest;
    shmchan_queue *queue;
    uint64_t after;        /* latest: report sequences newer than this */
    intptr_t handle;       /* what we poll */
} ws_entry;

struct shmchan_waitset {
    ws_entry *e;
    size_t n;
    size_t cap;
    intptr_t *handles; /* scratch for the poll, cap entries */
    bool *ready;
};

int
shmchan_waitset_open(shmchan_waitset **out)
{
    if (out == NULL) {
        return SHMCHAN_EINVAL;
    }
    *out = calloc(1, sizeof(**out));
    return *out == NULL ? SHMCHAN_ENOMEM : SHMCHAN_OK;
}

void
shmchan_waitset_close(shmchan_waitset *ws)
{
    if (ws != NULL) {
        free(ws->e);
        free(ws->handles);
        free(ws->ready);
        free(ws);
    }
}

static int
grow(shmchan_waitset *ws)
{
    if (ws->n < ws->cap) {
        return SHMCHAN_OK;
    }
    size_t cap = ws->cap == 0 ? 8 : ws->cap * 2;
    ws_entry *e = realloc(ws->e, cap * sizeof(*e));
    if (e != NULL) {
        ws->e = e;
    }
    intptr_t *h = realloc(ws->handles, cap * sizeof(*h));
    if (h != NULL) {
        ws->handles = h;
    }
    bool *r = realloc(ws->ready, cap * sizeof(*r));
    if (r != NULL) {
        ws->ready = r;
    }
    if (e == NULL || h == NULL || r == NULL) {
        return SHMCHAN_ENOMEM;
    }
    ws->cap = cap;
    return SHMCHAN_OK;
}

static bool
key_used(const shmchan_waitset *ws, uintptr_t key)
{
    for (size_t i = 0; i < ws->n; i++) {
        if (ws->e[i].key == key) {
            return true;
        }
    }
    return false;
}

static int
add(shmchan_waitset *ws, const ws_entry *e)
{
    if (key_used(ws, e->key)) {
        return SHMCHAN_EEXIST;
    }
    int rc = grow(ws);
    if (rc == SHMCHAN_OK) {
        ws->e[ws->n++] = *e;
    }
    return rc;
}

int
shmchan_waitset_add_latest(shmchan_waitset *ws, shmchan_latest *ch, uint64_t after_seq,
                           uintptr_t key)
{
    if (ws == NULL || ch == NULL) {
        return SHMCHAN_EINVAL;
    }
    shmchan_os_handle h;
    int rc = shmchan_latest_notify(ch, &h);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    ws_entry e = {key, ch, NULL, after_seq, (intptr_t)h};
    return add(ws, &e);
}

int
shmchan_waitset_add_queue(shmchan_waitset *ws, shmchan_queue *q, uintptr_t key)
{
    if (ws == NULL || q == NULL) {
        return SHMCHAN_EINVAL;
    }
    shmchan_os_handle h;
    int rc = shmchan_queue_notify(q, &h);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    ws_entry e = {key, NULL, q, 0, (intptr_t)h};
    return add(ws, &e);
}

int
shmchan_waitset_add_os(shmchan_waitset *ws, shmchan_os_handle h, uintptr_t key)
{
    if (ws == NULL) {
        return SHMCHAN_EINVAL;
    }
    ws_entry e = {key, NULL, NULL, 0, (intptr_t)h};
    return add(ws, &e);
}

int
shmchan_waitset_remove(shmchan_waitset *ws, uintptr_t key)
{
    if (ws == NULL) {
        return SHMCHAN_EINVAL;
    }
    for (size_t i = 0; i < ws->n; i++) {
        if (ws->e[i].key == key) {
            ws->e[i] = ws->e[--ws->n];
            return SHMCHAN_OK;
        }
    }
    return SHMCHAN_ENOENT;
}

/* Arm every channel: one with news makes its handle ready at once. */
static int
arm_all(shmchan_waitset *ws)
{
    for (size_t i = 0; i < ws->n; i++) {
        ws_entry *e = &ws->e[i];
        int rc = e->latest != NULL ? shmchan_latest_arm(e->latest, e->after)
                 : e->queue != NULL ? shmchan_queue_arm(e->queue)
                                    : SHMCHAN_OK;
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        ws->handles[i] = e->handle;
    }
    return SHMCHAN_OK;
}

/* Whether a ready entry really has news (a latest channel's handle may be
 * ready for a sequence we reported already); moves a latest entry on. */
static bool
confirm(ws_entry *e)
{
    if (e->latest == NULL) {
        return true;
    }
    uint64_t s = shmchan_latest_seq(e->latest);
    if (s <= e->after) {
        return false;
    }
    e->after = s;
    return true;
}

int
shmchan_waitset_wait(shmchan_waitset *ws, int64_t timeout_ms, uintptr_t *keys_out, size_t cap,
                     size_t *count_out)
{
    if (ws == NULL || count_out == NULL || (keys_out == NULL && cap != 0)) {
        return SHMCHAN_EINVAL;
    }
    *count_out = 0;
    if (ws->n == 0) {
        return SHMCHAN_EINVAL;
    }
    uint64_t deadline = shmchan__deadline(timeout_ms);
    for (;;) {
        int rc = arm_all(ws);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        int64_t left = -1;
        if (deadline != 0) {
            uint64_t now = shmchan__now_ns();
            left = now >= deadline ? 0 : (int64_t)((deadline - now) / SHMCHAN__NS_PER_MS);
        }
        rc = shmchan__nf_poll(ws->handles, ws->n, left, ws->ready);
        if (rc != SHMCHAN_OK) {
            return rc == SHMCHAN_ETIMEDOUT && timeout_ms == 0 ? SHMCHAN_EAGAIN : rc;
        }
        size_t k = 0;
        for (size_t i = 0; i < ws->n; i++) {
            if (ws->ready[i] && confirm(&ws->e[i])) {
                if (k < cap) {
                    keys_out[k] = ws->e[i].key;
                }
                k++;
            }
        }
        if (k != 0) {
            *count_out = k < cap ? k : cap;
            return SHMCHAN_OK;
        }
        /* Only spurious readiness: wait again for what is left of the time. */
    }
}
