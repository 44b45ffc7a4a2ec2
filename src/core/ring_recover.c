/*
 * Rings: the claim lock, the claim itself (shared with its roll-forward),
 * the consumed watermark, and recovery from peers that died: a claim-lock
 * holder, a writer between claim and commit, a reader whose cursor holds
 * writers back, and every process at once (reset).
 *
 * Liveness is never judged from a pid: a slot's owner holds the slot's
 * kernel lock (shmchan__ring_lock(), see ring.h) for the life of its cursor, and a
 * lock that can be taken means the owner is gone. Slot generations make sure
 * that a decision taken about one owner never applies to the next one.
 *
 * This is the ring's lowest layer: it uses nothing of ring.c, ring_write.c
 * or ring_read.c.
 */
#include <string.h>

#include "ring.h"

#define OLDEST_TRIES 1000

/* Whether the owner named by a claim-lock word is gone. */
static bool
owner_gone(const void *ctx, uint64_t word, uint64_t *mark)
{
    const shmchan__ring *v = ctx;
    (void)mark;
    uint32_t lo = (uint32_t)word;
    if (lo == 0 || lo > v->nreaders + v->nwriters) {
        return true; /* no such slot: a scribbled word, take it */
    }
    uint32_t idx = lo - 1;
    uint64_t st = idx < v->nreaders
                      ? shmchan__load(&v->readers[idx].state, SHMCHAN__ACQUIRE)
                      : shmchan__load(&v->writers[idx - v->nreaders].state, SHMCHAN__ACQUIRE);
    return shmchan__owner_slot_gone(v->shm, word, st, shmchan__ring_lock(v, idx));
}

int
shmchan__qlock_slow(const shmchan__ring *v, uint64_t me, int64_t wait_ns)
{
    /* Claims are short and never sleep under the lock: contenders nap. */
    shmchan__slock l = {v->shm, &v->ctl->lock, NULL, NULL, owner_gone, NULL, v};
    int rc = shmchan__slock_slow(&l, me, wait_ns);
    if (rc == SHMCHAN__SLOCK_STOLEN) {
        shmchan__qrepair(v);
        shmchan__fetch_add(&v->hdr->recovered, 1, SHMCHAN__RELAXED);
        return SHMCHAN_OK;
    }
    return rc;
}

static void
put_header(shmchan__qrec *h, uint64_t tag, uint64_t len, uint32_t writer)
{
    shmchan__store(&h->len, (uint32_t)len, SHMCHAN__RELAXED);
    shmchan__store(&h->writer, writer, SHMCHAN__RELAXED);
    shmchan__store(&h->tag, tag, SHMCHAN__RELEASE);
}

static void
put_zero(shmchan__qrec *z)
{
    shmchan__store(&z->len, 0, SHMCHAN__RELAXED);
    shmchan__store(&z->writer, 0, SHMCHAN__RELAXED);
    shmchan__store(&z->tag, 0, SHMCHAN__RELAXED);
}

/*
 * The ring part of a claim of len bytes for sequence seq starting at p0 (the
 * tail). Order matters, see layout.h: the header at p0 is the zero header
 * nobody owns, so it is written first, before `oldest` may name it; then
 * `oldest` moves and a release fence orders it before every store into the
 * records it gave up; then the zero header behind the new record; then, when
 * the record had to go to the ring's start, its header, and only then is the
 * header at p0 turned into the PAD readers skip; finally tail and next_seq.
 * Re-running it with the same arguments writes the same words.
 *
 * With data (a small send), the payload is copied in and the record committed
 * as MSG before the tail moves: the reader polling the record's line sees it
 * change once, finished, instead of CLAIMED first and MSG after the copy.
 */
void
shmchan__qapply(const shmchan__ring *v, uint64_t p0, uint64_t p, uint64_t len, uint64_t seq,
                uint64_t oldest, uint32_t writer, const void *data)
{
    shmchan__queue_ctl *c = v->ctl;
    uint64_t span = shmchan__qspan(len);
    uint64_t pad = p - p0;
    shmchan__qrec *h0 = shmchan__qrec_at(v, p0);
    put_header(h0, shmchan__qtag(seq, SHMCHAN__QTAG_CLAIMED),
               pad != 0 ? pad - sizeof(shmchan__qrec) : len, writer);
    shmchan__store(&c->oldest, oldest, SHMCHAN__RELEASE);
    shmchan__fence(SHMCHAN__RELEASE);
    put_zero(shmchan__qrec_at(v, p + span));
    if (pad != 0) {
        put_header(shmchan__qrec_at(v, p), shmchan__qtag(seq, SHMCHAN__QTAG_CLAIMED), len,
                   writer);
        shmchan__store(&h0->tag, shmchan__qtag(seq, SHMCHAN__QTAG_PAD), SHMCHAN__RELEASE);
    }
    if (data != NULL) {
        shmchan__qrec *h = shmchan__qrec_at(v, p);
        memcpy(shmchan__qpayload(h), data, (size_t)len);
        shmchan__store(&h->tag, shmchan__qtag(seq, SHMCHAN__QTAG_MSG), SHMCHAN__RELEASE);
    }
    shmchan__store(&c->tail, p + span, SHMCHAN__RELEASE);
    shmchan__store(&c->next_seq, seq + 1, SHMCHAN__RELEASE);
}

/*
 * A run (docs/queue.md, "Runs"): k records back to back from p, published
 * together. The order is qapply's for the first record (its header CLAIMED
 * at p0, then `oldest` and the fence, then the zero header, now behind the
 * whole run, then a pad), so that readers wait at the first record; the
 * records behind it are written complete (payload, then header as MSG) in
 * address order, and the first record's payload and MSG tag come last: its
 * release store publishes them all, and a reader polling its line sees it
 * change twice per run, not per message. No reader can pass the first record
 * before that store: a reader stuck at it leaves it to the lock while the
 * tail has not moved (shmchan__qrecover_record), and the lock's roll-forward
 * (repair_run) turns an unpublished run into padding.
 */
void
shmchan__qapply_run(const shmchan__ring *v, uint64_t p0, uint64_t p, const shmchan_msg *msgs,
                    size_t k, uint64_t span, uint64_t seq, uint64_t oldest, uint32_t writer)
{
    shmchan__queue_ctl *c = v->ctl;
    uint64_t pad = p - p0;
    shmchan__qrec *h0 = shmchan__qrec_at(v, p0), *r0 = shmchan__qrec_at(v, p);
    put_header(h0, shmchan__qtag(seq, SHMCHAN__QTAG_CLAIMED),
               pad != 0 ? pad - sizeof(shmchan__qrec) : msgs[0].len, writer);
    shmchan__store(&c->oldest, oldest, SHMCHAN__RELEASE);
    shmchan__fence(SHMCHAN__RELEASE);
    put_zero(shmchan__qrec_at(v, p + span));
    if (pad != 0) {
        put_header(r0, shmchan__qtag(seq, SHMCHAN__QTAG_CLAIMED), msgs[0].len, writer);
        shmchan__store(&h0->tag, shmchan__qtag(seq, SHMCHAN__QTAG_PAD), SHMCHAN__RELEASE);
    }
    uint64_t at = p + shmchan__qspan(msgs[0].len);
    for (size_t i = 1; i < k; i++) {
        shmchan__qrec *h = shmchan__qrec_at(v, at);
        uint64_t len = msgs[i].len;
        shmchan__store(&h->len, (uint32_t)len, SHMCHAN__RELAXED);
        shmchan__store(&h->writer, writer, SHMCHAN__RELAXED);
        shmchan__store(&h->tag, shmchan__qtag(seq + i, SHMCHAN__QTAG_MSG), SHMCHAN__RELAXED);
        memcpy(shmchan__qpayload(h), msgs[i].data != NULL ? msgs[i].data : "", (size_t)len);
        at += shmchan__qspan(len);
    }
    memcpy(shmchan__qpayload(r0), msgs[0].data != NULL ? msgs[0].data : "", (size_t)msgs[0].len);
    shmchan__store(&r0->tag, shmchan__qtag(seq, SHMCHAN__QTAG_MSG), SHMCHAN__RELEASE);
    shmchan__store(&c->tail, p + span, SHMCHAN__RELEASE);
    shmchan__store(&c->next_seq, seq + k, SHMCHAN__RELEASE);
}

/*
 * Roll forward a run whose claimant died (journal: p0, span, count k, seq).
 * Published (the first record is MSG(seq)): every record behind it was
 * written before, so only tail and next_seq are missing. Not published: no
 * reader passed the first record (see qapply_run), so the whole run becomes
 * padding that takes no sequence number, as if the batch was never sent.
 */
static void
repair_run(const shmchan__ring *v, uint64_t p0, uint64_t jlen, uint64_t oldest, uint64_t seq,
           uint64_t tail)
{
    shmchan__queue_ctl *c = v->ctl;
    uint64_t span = jlen & UINT32_MAX;
    uint64_t k = (jlen >> SHMCHAN__QJ_COUNT_SHIFT) & 0xffffu;
    uint64_t p = shmchan__qplace(v, p0, span, (jlen & SHMCHAN__QJ_REWOUND) != 0);
    bool sane = k >= 1 && k <= SHMCHAN__QRUN_MAX && span >= k * sizeof(shmchan__qrec) &&
                span % SHMCHAN__QREC_ALIGN == 0 && span <= v->cap - (p & v->mask) &&
                oldest <= p0 && p0 - oldest <= v->cap && p0 % SHMCHAN__QREC_ALIGN == 0;
    shmchan__qrec *r0 = shmchan__qrec_at(v, p);
    if (sane && (tail == p + span || (tail == p0 && shmchan__load(&r0->tag, SHMCHAN__ACQUIRE) ==
                                                       shmchan__qtag(seq, SHMCHAN__QTAG_MSG)))) {
        shmchan__store(&c->tail, p + span, SHMCHAN__RELEASE);
        shmchan__store(&c->next_seq, seq + k, SHMCHAN__RELEASE);
        return;
    }
    if (!sane || tail != p0) {
        if (tail % SHMCHAN__QREC_ALIGN == 0) {
            shmchan__store(&shmchan__qrec_at(v, tail)->tag, 0, SHMCHAN__RELEASE);
        }
        return;
    }
    shmchan__store(&c->oldest, oldest, SHMCHAN__RELEASE);
    shmchan__fence(SHMCHAN__RELEASE);
    put_zero(shmchan__qrec_at(v, p + span));
    put_header(r0, shmchan__qtag(seq, SHMCHAN__QTAG_PAD), span - sizeof(shmchan__qrec), 0);
    if (p != p0) {
        put_header(shmchan__qrec_at(v, p0), shmchan__qtag(seq, SHMCHAN__QTAG_PAD),
                   p - p0 - sizeof(shmchan__qrec), 0);
    }
    shmchan__store(&c->tail, p + span, SHMCHAN__RELEASE);
    shmchan__store(&c->next_seq, seq, SHMCHAN__RELEASE);
}

/*
 * Roll forward a claim whose owner died inside the critical section. The
 * journal's sequence equals next_seq exactly while a claim is between its
 * journal and its final store of next_seq; the tail then still equals the
 * journal's position (re-apply the claim) or already its end (only next_seq
 * is missing). Either way the record is dropped: its writer is dead. A
 * journal that does not make sense (a scribbled one) only restores the zero
 * header at the tail.
 */
void
shmchan__qrepair(const shmchan__ring *v)
{
    shmchan__queue_ctl *c = v->ctl;
    uint64_t seq = shmchan__load(&c->next_seq, SHMCHAN__ACQUIRE);
    uint64_t tail = shmchan__load(&c->tail, SHMCHAN__ACQUIRE);
    if (shmchan__load(&c->j_seq, SHMCHAN__ACQUIRE) != seq) {
        return;
    }
    uint64_t p0 = shmchan__load(&c->j_pos, SHMCHAN__RELAXED);
    uint64_t jlen = shmchan__load(&c->j_len, SHMCHAN__RELAXED);
    if (jlen & SHMCHAN__QJ_RUN) {
        repair_run(v, p0, jlen, shmchan__load(&c->j_oldest, SHMCHAN__RELAXED), seq, tail);
        return;
    }
    uint64_t len = jlen & ~SHMCHAN__QJ_REWOUND;
    uint64_t oldest = shmchan__load(&c->j_oldest, SHMCHAN__RELAXED);
    uint64_t span = shmchan__qspan(len);
    uint64_t p = shmchan__qplace(v, p0, span, (jlen & SHMCHAN__QJ_REWOUND) != 0);
    bool sane = len <= v->max_msg && oldest <= p0 && p0 - oldest <= v->cap &&
                p0 % SHMCHAN__QREC_ALIGN == 0;
    uint64_t committed = shmchan__qtag(seq, SHMCHAN__QTAG_MSG);
    if (sane && shmchan__load(&shmchan__qrec_at(v, p)->tag, SHMCHAN__ACQUIRE) == committed) {
        /* A small send died after its commit (readers may have the message):
         * everything before the tail is written. */
        shmchan__store(&c->tail, p + span, SHMCHAN__RELEASE);
        shmchan__store(&c->next_seq, seq + 1, SHMCHAN__RELEASE);
        return;
    }
    if (sane && tail == p0) {
        shmchan__qapply(v, p0, p, len, seq, oldest, 0, NULL);
    } else if (sane && tail == p + span) {
        shmchan__store(&c->next_seq, seq + 1, SHMCHAN__RELEASE);
    } else {
        if (tail % SHMCHAN__QREC_ALIGN == 0) {
            shmchan__store(&shmchan__qrec_at(v, tail)->tag, 0, SHMCHAN__RELEASE);
        }
        return;
    }
    uint64_t claimed = shmchan__qtag(seq, SHMCHAN__QTAG_CLAIMED);
    (void)shmchan__cas(&shmchan__qrec_at(v, p)->tag, &claimed,
                       shmchan__qtag(seq, SHMCHAN__QTAG_DROPPED));
}

bool
shmchan__qwriter_gone(const shmchan__ring *v, uint32_t writer, uint64_t pos)
{
    if (writer >= v->nwriters) {
        return true;
    }
    /* The writer clears resv (release) after committing: if it no longer
     * names this record, the tag has moved on or the slot changed owner. */
    if (shmchan__load(&v->writers[writer].resv, SHMCHAN__ACQUIRE) != pos) {
        return true;
    }
    return shmchan__lock_probe(v->shm, shmchan__ring_lock(v, v->nreaders + writer)) ==
           SHMCHAN_OK;
}

bool
shmchan__qrecover_record(const shmchan__ring *v, uint64_t me, uint64_t pos, uint64_t tag)
{
    shmchan__qrec *h = shmchan__qrec_at(v, pos);
    if (shmchan__load(&v->ctl->tail, SHMCHAN__ACQUIRE) <= pos) {
        /* Its claim is still inside the critical section: taking the lock
         * waits for it, or steals it from a dead claimant and completes it. */
        if (shmchan__qlock(v, me, (int64_t)SHMCHAN__QSLICE_NS) == SHMCHAN_OK) {
            shmchan__qunlock(v);
        }
        return true;
    }
    uint32_t writer = shmchan__load(&h->writer, SHMCHAN__RELAXED);
    if (!shmchan__qwriter_gone(v, writer, pos)) {
        return false;
    }
    uint64_t expect = tag;
    if (shmchan__cas(&h->tag, &expect, (tag & ~(uint64_t)SHMCHAN__QTAG_KINDS) |
                                           SHMCHAN__QTAG_DROPPED)) {
        shmchan__fetch_add(&v->hdr->recovered, 1, SHMCHAN__RELAXED);
        shmchan__qwake_readers(v);
    }
    return true;
}

bool
shmchan__qdrop_reader(const shmchan__ring *v, uint32_t i)
{
    shmchan__qreader *rd = &v->readers[i];
    uint64_t st = shmchan__load(&rd->state, SHMCHAN__ACQUIRE);
    uint32_t role = (uint32_t)st;
    if (role == 0 || shmchan__lock_probe(v->shm, v->lock_base + i) != SHMCHAN_OK) {
        return false;
    }
    /* What it read stays read (true whether or not the CAS below wins). */
    shmchan__qretire(v, role, shmchan__load(&rd->from, SHMCHAN__RELAXED),
                     shmchan__load(&rd->pos, SHMCHAN__ACQUIRE));
    /* The generation in the CAS makes sure a new owner is never dropped. */
    if (!shmchan__cas(&rd->state, &st, st & ~(uint64_t)UINT32_MAX)) {
        return false;
    }
    if (role == SHMCHAN_PEER_WORKER) {
        shmchan__fetch_sub(&v->ctl->nworkers, 1, SHMCHAN__RELAXED);
    } else if (role == SHMCHAN_PEER_SUBSCRIBER) {
        shmchan__ring_count_sub(v, -1);
    }
    shmchan__fetch_add(&v->hdr->recovered, 1, SHMCHAN__RELAXED);
    return true;
}

/*
 * The oldest record and its sequence, without the lock: the header at
 * `oldest` is intact while oldest names it, so a tag read between two equal
 * loads of oldest (the second after an acquire fence) is that record's.
 */
int
shmchan__qoldest(const shmchan__ring *v, uint64_t *pos_out, uint64_t *seq_out)
{
    shmchan__queue_ctl *c = v->ctl;
    for (int i = 0; i < OLDEST_TRIES; i++) {
        uint64_t o = shmchan__load(&c->oldest, SHMCHAN__ACQUIRE);
        if (o % SHMCHAN__QREC_ALIGN != 0) {
            return SHMCHAN_ECORRUPT;
        }
        uint64_t tag = shmchan__load(&shmchan__qrec_at(v, o)->tag, SHMCHAN__ACQUIRE);
        shmchan__fence(SHMCHAN__ACQUIRE);
        if (shmchan__load(&c->oldest, SHMCHAN__RELAXED) != o) {
            continue;
        }
        uint64_t seq = tag >> 2;
        if (seq == 0) {
            seq = shmchan__load(&c->next_seq, SHMCHAN__ACQUIRE); /* nothing claimed yet */
        }
        *pos_out = o;
        *seq_out = seq;
        return SHMCHAN_OK;
    }
    return SHMCHAN_EAGAIN;
}

/* The consumed watermark as writers may use it: never below oldest (what is
 * gone is gone), never past the tail (a forged or racing value), and never
 * misaligned (forged: then only oldest counts). */
uint64_t
shmchan__ring_consumed(const shmchan__ring *v)
{
    shmchan__queue_ctl *c = v->ctl;
    uint64_t oldest = shmchan__load(&c->oldest, SHMCHAN__ACQUIRE);
    uint64_t tail = shmchan__load(&c->tail, SHMCHAN__ACQUIRE);
    uint64_t k = shmchan__load(&c->consumed, SHMCHAN__ACQUIRE);
    if (k % SHMCHAN__QREC_ALIGN != 0 || k < oldest) {
        k = oldest;
    }
    return k > tail ? tail : k;
}

void
shmchan__ring_raise_consumed(const shmchan__ring *v, uint64_t pos)
{
    uint64_t k = shmchan__load(&v->ctl->consumed, SHMCHAN__RELAXED);
    while (k < pos && !shmchan__cas(&v->ctl->consumed, &k, pos)) {
    }
}

/*
 * A reader that read [from, pos) continuously leaves (closes, is dropped as
 * dead, is reset): if that covers the watermark, what it read is consumed.
 * A worker's reading is the workers' shared cursor.
 */
void
shmchan__qretire(const shmchan__ring *v, uint32_t role, uint64_t from, uint64_t pos)
{
    if (role == SHMCHAN_PEER_WORKER) {
        pos = shmchan__load(&v->ctl->work_pos, SHMCHAN__ACQUIRE);
    }
    if ((role != SHMCHAN_PEER_SUBSCRIBER && role != SHMCHAN_PEER_WORKER) ||
        pos == SHMCHAN__QPOS_NONE || pos % SHMCHAN__QREC_ALIGN != 0 ||
        pos > shmchan__load(&v->ctl->tail, SHMCHAN__ACQUIRE)) {
        return;
    }
    if (from <= shmchan__ring_consumed(v)) {
        shmchan__ring_raise_consumed(v, pos);
    }
}

/*
 * Nobody else is attached: complete a claim a dead process left half-done,
 * free every slot and lock, forget sleepers. The messages in the ring stay:
 * a file-backed queue replays them to a SHMCHAN_OLDEST subscriber.
 */
void
shmchan__ring_reset(const shmchan__ring *v)
{
    shmchan__queue_ctl *c = v->ctl;
    uint64_t tail = shmchan__load(&c->tail, SHMCHAN__RELAXED);
    uint64_t oldest = shmchan__load(&c->oldest, SHMCHAN__RELAXED);
    if (tail % SHMCHAN__QREC_ALIGN != 0 || oldest % SHMCHAN__QREC_ALIGN != 0 || oldest > tail ||
        tail - oldest > v->cap || shmchan__load(&c->next_seq, SHMCHAN__RELAXED) == 0) {
        /* Scribbled: keep the sequence going, give up the history. */
        tail -= tail % SHMCHAN__QREC_ALIGN;
        shmchan__store(&c->tail, tail, SHMCHAN__RELAXED);
        shmchan__store(&c->oldest, tail, SHMCHAN__RELAXED);
        shmchan__store(&shmchan__qrec_at(v, tail)->tag, 0, SHMCHAN__RELAXED);
        if (shmchan__load(&c->next_seq, SHMCHAN__RELAXED) == 0) {
            shmchan__store(&c->next_seq, 1, SHMCHAN__RELAXED);
        }
    }
    shmchan__qrepair(v);
    uint64_t k = shmchan__load(&c->consumed, SHMCHAN__RELAXED);
    if (k % SHMCHAN__QREC_ALIGN != 0 || k > shmchan__load(&c->tail, SHMCHAN__RELAXED)) {
        /* Scribbled: keep what is held unread (from the oldest on). */
        shmchan__store(&c->consumed, shmchan__load(&c->oldest, SHMCHAN__RELAXED),
                       SHMCHAN__RELAXED);
    }
    for (uint32_t i = 0; i < v->nreaders; i++) {
        /* Readers that died: what they read stays read. */
        shmchan__qreader *rd = &v->readers[i];
        shmchan__qretire(v, (uint32_t)shmchan__load(&rd->state, SHMCHAN__RELAXED),
                         shmchan__load(&rd->from, SHMCHAN__RELAXED),
                         shmchan__load(&rd->pos, SHMCHAN__RELAXED));
    }
    shmchan__store(&c->lock, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->gate, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->nworkers, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->nsubs, 0, SHMCHAN__RELAXED);
    shmchan__fetch_add(&c->subs_epoch, 1, SHMCHAN__RELAXED);
    shmchan__store(&c->rd_waiters, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->sp_waiters, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->fenced, 0, SHMCHAN__RELAXED);
    shmchan__nfview_reset(&v->nf);
    for (uint32_t i = 0; i < v->nreaders; i++) {
        uint64_t st = shmchan__load(&v->readers[i].state, SHMCHAN__RELAXED);
        shmchan__store(&v->readers[i].state, st & ~(uint64_t)UINT32_MAX, SHMCHAN__RELAXED);
        shmchan__store(&v->readers[i].pos, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
        shmchan__store(&v->readers[i].from, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
    }
    for (uint32_t j = 0; j < v->nwriters; j++) {
        uint64_t st = shmchan__load(&v->writers[j].state, SHMCHAN__RELAXED);
        shmchan__store(&v->writers[j].state, st & ~(uint64_t)UINT32_MAX, SHMCHAN__RELAXED);
        shmchan__store(&v->writers[j].resv, SHMCHAN__QPOS_NONE, SHMCHAN__RELAXED);
    }
    tail = shmchan__load(&c->tail, SHMCHAN__RELAXED);
    oldest = shmchan__load(&c->oldest, SHMCHAN__RELAXED);
    uint64_t work = shmchan__load(&c->work_pos, SHMCHAN__RELAXED);
    if (work < oldest || work > tail || work % SHMCHAN__QREC_ALIGN != 0) {
        shmchan__store(&c->work_pos, oldest, SHMCHAN__RELAXED);
    }
}
