/*
 * The side wait object "<name>..wait" of a channel: the readiness notifiers
 * of read-only readers (docs/event-loops.md, "Read-only readers"). A reader
 * granted only read permission cannot arm a slot in the channel, so the
 * channel's creator makes, next to it, a small object that holds nothing but
 * a notifier table, writable by every user who may read the channel (its
 * mode is the channel's with each read bit also granting write). Writers
 * look at its armed count after the channel's own, and signal its armed
 * slots under names of their own range (SHMCHAN__NOTIFY_SLOTS and up).
 *
 * Layout (one object, shared; every field may be forged by anybody who may
 * write it, i.e. any reader of the channel):
 *   line 0: magic, chan_id of the channel it belongs to, version: read once
 *           at open to tell a current side object from a stale one; never
 *           trusted afterwards (names derive from the opener's own chan_id).
 *   line 1: armed count, slots ever used (the scan bound, clamped).
 *   then:   SHMCHAN__NOTIFY_SLOTS armed words.
 * Ordering: as for the channel's table (notify.c), except that a read-only
 * waiter cannot join the channel's `fenced` count: it forces the
 * publishers' barrier (fence_slow) at each arming instead.
 *
 * The name fails shmchan_name_check (".."), so no channel can be called that
 * and listings skip it; it is removed with its channel, and
 * shmchan_reap_side() collects one whose channel is gone or is another one.
 *
 * Where named objects live only while a handle is open (Windows), the
 * creator's object would be gone before anybody used it: there every opener
 * attaches to it (platform.h, shmchan__side_attach) and the first names it
 * for its channel by a CAS of the channel id from 0 (side.c, side_attach).
 */
#ifndef SHMCHAN_SIDE_H
#define SHMCHAN_SIDE_H

#include "notify.h"

typedef struct shmchan__side {
    shmchan__shm *shm; /* NULL: none (then nfv's count is a constant 0) */
    shmchan__nfview nfv;
} shmchan__side;

/* The creator, before it marks the channel ready: make (or take over and
 * reset) the side object. Failures leave the channel without one. */
void shmchan__side_create(const char *name, uint32_t flags, uint32_t chan_mode,
                          uint64_t chan_id, shmchan__shm *chan);
/* Any opener: map it read-write if it exists, belongs to the channel's
 * owner, is large enough and names this chan_id; else an empty side (its
 * count reads 0). Never fails. */
void shmchan__side_open(const char *name, uint32_t flags, uint64_t chan_id, shmchan__shm *chan,
                        shmchan__side *out);
void shmchan__side_close(shmchan__side *s);
/* Remove "<name>..wait" (with its channel; ENOENT is fine). */
void shmchan__side_unlink(const char *name, uint32_t flags);

static inline bool
shmchan__side_present(const shmchan__side *s)
{
    return s->shm != NULL;
}

#endif /* SHMCHAN_SIDE_H */
