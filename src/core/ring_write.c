/*
 * Rings: claiming space, committing, aborting, and waiting for space.
 *
 * A claim is a short critical section under the claim lock (protocol in
 * layout.h): look at the cached gate (block mode), move `oldest` past what
 * the claim will overwrite, write the journal, then the headers, `oldest`,
 * tail and next_seq. The payload is copied outside the lock and committed
 * with one release store of the tag. The fast path (space known, nobody
 * asleep) makes no system call and allocates nothing.
 */
#include <string.h>

#include "ring.h"

#define NOWAIT_LOCK_NS (10ll * 1000 * 1000) /* a NO_WAIT call still waits out a claim */
#define BUSY_NAP_NS (50ull * 1000)
#define SPACE_BATCH 4096u /* room a spinning writer waits for beyond its need */
#define SPACE_PAUSES 8    /* pauses between two looks at the readers' slots */
#define SPACE_MORE_NS (5ull * 1000) /* how long a spinning writer asks for the batch */

/* Whether a reader at pos keeps a claim ending at need from going ahead. */
static bool
blocks(const shmchan__ring *v, uint64_t pos, uint64_t need)
{
    return need > v->cap && pos < need - v->cap;
}

/*
 * Where a cursor at pos stands in effect: past the committed PADs that
 * start there (a claim that went to the next lap's start, the rest of a
 * reservation committed shorter), up to the tail. A reader at a PAD has
 * read everything before it and skips it with its next look, so the bytes
 * under it are free: without this, a reader that stopped right before a
 * rewound claim's PAD would leave writers only the ring's start up to its
 * own offset instead of the whole capacity (docs/queue.md, "Rewinding").
 * Headers are read without the claim lock: a position below `oldest`
 * (overtaken, looked at after the fence) or a header that is not an intact
 * PAD ends the walk. Bounded: PAD_CHAIN headers at most.
 */
#define PAD_CHAIN 4

static uint64_t
past_pads(const shmchan__ring *v, uint64_t pos)
{
    uint64_t tail = shmchan__load(&v->ctl->tail, SHMCHAN__ACQUIRE);
    uint64_t at = pos;
    for (int i = 0; i < PAD_CHAIN && at < tail && at % SHMCHAN__QREC_ALIGN == 0; i++) {
        uint64_t tag, len;
        shmchan__qheader(shmchan__qrec_at(v, at), &tag, &len);
        if ((tag & SHMCHAN__QTAG_KINDS) != SHMCHAN__QTAG_PAD || (tag >> 2) == 0 ||
            !shmchan__qfits(v, at, SHMCHAN__QTAG_PAD, len) || shmchan__ring_overtaken(v, at)) {
            break;
        }
        at += shmchan__qspan(len);
    }
    return at <= tail ? at : pos;
}

/*
 * A cursor at *pos that holds back a claim ending at need may stand at PADs:
 * move it past them with a CAS on the word that publishes it (a
 * subscriber's `pos`, `work_pos`, the watermark), so that its owner, which
 * may be overtaken there now, sees it (ring_read.c, skipped_to). The CAS
 * orders before the stores of any claim that uses it: that claim's `oldest`
 * store and release fence come after it. *pos receives the cursor's value.
 */
static void
skip_pads(const shmchan__ring *v, shmchan__atomic_u64 *word, uint64_t *pos, uint64_t need)
{
    if (SHMCHAN__LIKELY(!blocks(v, *pos, need)) || *pos == SHMCHAN__QPOS_NONE) {
        return;
    }
    uint64_t to = past_pads(v, *pos);
    if (to != *pos && !shmchan__cas(word, pos, to)) {
        return; /* *pos: what its owner (or another writer) published since */
    }
    *pos = to;
}

/*
 * The smallest position writers must not overwrite (docs/queue.md, "Unread
 * messages"): every live subscriber's cursor and, when workers exist,
 * work_pos and the positions workers announced; with no reader registered,
 * or only readers that do not consume, the consumed watermark. work_pos
 * is read before the slots (seq_cst): a worker announces (seq_cst) before its
 * CAS on work_pos, so if we saw the CAS we see the announcement. Stale values
 * are smaller, hence safe. The watermark is raised on the way (a CAS to a
 * larger value: it may run without the claim lock). A cursor that holds the
 * claim back while it stands at committed PADs counts at their end, and is
 * moved there (skip_pads). *live_out (may be NULL) receives whether any
 * reader is registered.
 */
uint64_t
shmchan__qgate_scan(const shmchan__ring *v, uint64_t need, bool drop_dead, bool *live_out)
{
    shmchan__queue_ctl *c = v->ctl;
    uint64_t work = shmchan__load(&c->work_pos, SHMCHAN__SEQ_CST);
    if (shmchan__load(&c->nworkers, SHMCHAN__RELAXED) != 0) {
        skip_pads(v, &c->work_pos, &work, need);
    }
    uint64_t k0 = shmchan__ring_consumed(v), k = k0;
    uint32_t n = shmchan__load(&c->readers_used, SHMCHAN__ACQUIRE);
    n = n < v->nreaders ? n : v->nreaders;
    uint64_t min = UINT64_MAX, wmin = work;
    bool workers = false, wcover = false, live = false, consumer = false;
    for (uint32_t i = 0; i < n; i++) {
        shmchan__qreader *rd = &v->readers[i];
        uint32_t role = (uint32_t)shmchan__load(&rd->state, SHMCHAN__ACQUIRE);
        if (role != SHMCHAN_PEER_SUBSCRIBER && role != SHMCHAN_PEER_WORKER) {
            continue;
        }
        uint64_t pos = shmchan__load(&rd->pos, SHMCHAN__SEQ_CST);
        if (role == SHMCHAN_PEER_SUBSCRIBER) {
            skip_pads(v, &rd->pos, &pos, need);
        }
        uint64_t from = shmchan__load(&rd->from, SHMCHAN__RELAXED);
        uint64_t eff = role == SHMCHAN_PEER_WORKER && work < pos ? work : pos;
        if (drop_dead && blocks(v, eff, need) && shmchan__qdrop_reader(v, i)) {
            continue;
        }
        live = true;
        consumer |= from != SHMCHAN__QPOS_NONE; /* not SHMCHAN_NOCONSUME */
        min = pos < min ? pos : min;
        if (role == SHMCHAN_PEER_WORKER) {
            workers = true;
            wcover |= from <= k;
            wmin = pos < wmin ? pos : wmin;
        } else if (from <= k && pos > k && pos != SHMCHAN__QPOS_NONE) {
            k = pos; /* it read [from, pos) without a gap from the watermark on */
        }
    }
    if (wcover && wmin > k) {
        k = wmin; /* workers that joined at or below it took everything below wmin */
    }
    if (!live && blocks(v, k, need)) {
        k = past_pads(v, k); /* nobody reads: the watermark holds writers */
    }
    if (k > k0) {
        /* One pass: readers that chain (one joined where another stands, in
         * the other slot order) are followed by the next scans. */
        shmchan__ring_raise_consumed(v, k);
    }
    if (live_out != NULL) {
        *live_out = live;
    }
    /* With readers registered they alone hold writers back (the watermark
     * only waits for the next reader): a subscriber that joined at the
     * newest, with no worker, must not leave writers waiting for ever on a
     * backlog nobody registered will read. */
    min = workers && work < min ? work : min;
    /* Readers that do not consume (SHMCHAN_NOCONSUME) hold writers back
     * where they stand, but alone they do not give up what only they read:
     * then the watermark holds too. */
    if (live && !consumer) {
        return min < k ? min : k;
    }
    return live ? min : k;
}

static uint64_t
gate_of(const shmchan__ring *v, uint64_t min)
{
    return min > UINT64_MAX - v->cap ? UINT64_MAX : min + v->cap;
}

/* Messages in [from, to), walking record headers (all intact: under the lock,
 * before this claim wrote anything). */
static uint64_t
count_msgs(const shmchan__ring *v, uint64_t from, uint64_t to)
{
    uint64_t n = 0;
    while (from < to) {
        shmchan__qrec *h = shmchan__qrec_at(v, from);
        uint64_t tag = shmchan__load(&h->tag, SHMCHAN__ACQUIRE);
        uint32_t kind = (uint32_t)(tag & SHMCHAN__QTAG_KINDS);
        uint64_t len = shmchan__load(&h->len, SHMCHAN__RELAXED);
        if (tag == 0 || !shmchan__qfits(v, from, kind, len)) {
            break;
        }
        n += kind == SHMCHAN__QTAG_MSG;
        from += shmchan__qspan(len);
    }
    return n;
}

/*
 * Overwrite mode with workers: move work_pos up to the new oldest, counting
 * the messages no worker took. A worker that took one of them meanwhile
 * notices the overwrite after its copy and counts it itself.
 */
static void
skip_workers(const shmchan__ring *v, uint64_t work, uint64_t oldest0, uint64_t oldest,
             uint64_t msgs)
{
    shmchan__queue_ctl *c = v->ctl;
    for (int i = 0; i < 64 && work < oldest; i++) {
        if (shmchan__cas(&c->work_pos, &work, oldest)) {
            shmchan__fetch_add(&c->work_lost, msgs, SHMCHAN__RELAXED);
            return;
        }
        msgs = count_msgs(v, work > oldest0 ? work : oldest0, oldest);
    }
}

/*
 * Move *oldest past every record that a claim of [p0, end) overwrites, and
 * count the messages given up in [cnt[0], cnt[1]). EBUSY when one of them is
 * still being written by a live writer (a full lap behind).
 */
static int
walk(const shmchan__ring *v, uint64_t me, uint64_t p0, uint64_t end, uint64_t *oldest,
     const uint64_t cnt[2], uint64_t *msgs)
{
    uint64_t o = *oldest;
    uint64_t limit = end > v->cap ? end - v->cap : 0;
    if (o > p0 || p0 - o > v->cap || o % SHMCHAN__QREC_ALIGN != 0) {
        o = p0; /* scribbled: give the history up */
    }
    for (uint64_t steps = 0; o < p0 && o < limit; steps++) {
        shmchan__qrec *h = shmchan__qrec_at(v, o);
        uint64_t tag = shmchan__load(&h->tag, SHMCHAN__ACQUIRE);
        uint32_t kind = (uint32_t)(tag & SHMCHAN__QTAG_KINDS);
        uint64_t len = shmchan__load(&h->len, SHMCHAN__RELAXED);
        if ((tag >> 2) == 0 || !shmchan__qfits(v, o, kind, len) || steps > v->cap) {
            o = p0; /* not a record: scribbled, give the history up */
            break;
        }
        if (kind == SHMCHAN__QTAG_CLAIMED) {
            if (!shmchan__qrecover_record(v, me, o, tag)) {
                return SHMCHAN_EBUSY;
            }
            continue; /* look again: committed, or dropped */
        }
        *msgs += kind == SHMCHAN__QTAG_MSG && o >= cnt[0] && o < cnt[1];
        o += shmchan__qspan(len);
    }
    *oldest = o;
    return SHMCHAN_OK;
}

/*
 * Block mode, a big ring: whether a claim of span bytes at the tail p0 should
 * start the next lap now, so that a queue whose readers keep up goes round
 * the first rewind_at bytes of its ring, which stay in the caches, rather
 * than through all of it. Only when every reader is within half the offset of the tail
 * (a lagging one keeps the whole ring for its burst) and the early record
 * overwrites nothing unread (the gate includes the consumed watermark), and
 * only while a reader is registered (a ring nobody reads keeps even its read
 * history for late SHMCHAN_OLDEST subscribers). After a miss, not
 * again for a quarter of the window.
 */
static bool
wants_rewind(const shmchan__ring *v, shmchan__ring_wr *q, uint64_t p0, uint64_t span)
{
    uint64_t off = p0 & v->mask;
    if (v->rewind_at == 0 || off < v->rewind_at || off + span > v->cap || p0 < q->rewind_next) {
        return false;
    }
    uint64_t near = p0 - off / 2;                              /* readers at least here */
    uint64_t clear = p0 - off + span + sizeof(shmchan__qrec); /* and past this */
    uint64_t need = (near > clear ? near : clear) + v->cap;   /* so the gate at least this */
    uint64_t gate = shmchan__load(&v->ctl->gate, SHMCHAN__RELAXED);
    /* A cached gate may come from a scan that found no reader: look at the
     * counts too (line 1, written only by joins and leaves). */
    bool live = shmchan__load(&v->ctl->nsubs, SHMCHAN__RELAXED) != 0 ||
                shmchan__load(&v->ctl->nworkers, SHMCHAN__RELAXED) != 0;
    if (gate < need) {
        gate = gate_of(v, shmchan__qgate_scan(v, need, false, &live));
        shmchan__store(&v->ctl->gate, gate, SHMCHAN__RELAXED);
    }
    if (live && gate >= need) {
        return true;
    }
    q->rewind_next = p0 + v->rewind_at / 4;
    return false;
}

/* The smallest `from` of the live subscribers (UINT64_MAX: none), cached
 * until the subscriber set changes. Joins happen under the claim lock, which
 * we hold; a leave only raises it, so a stale value undercounts at worst. */
static uint64_t
placed_floor(const shmchan__ring *v, shmchan__ring_wr *q)
{
    uint32_t epoch = shmchan__load(&v->ctl->subs_epoch, SHMCHAN__ACQUIRE);
    if (q->placed_known && q->placed_epoch == epoch) {
        return q->placed;
    }
    uint32_t n = shmchan__load(&v->ctl->readers_used, SHMCHAN__ACQUIRE);
    n = n < v->nreaders ? n : v->nreaders;
    uint64_t min = UINT64_MAX;
    for (uint32_t i = 0; i < n; i++) {
        shmchan__qreader *rd = &v->readers[i];
        uint64_t from = shmchan__load(&rd->from, SHMCHAN__RELAXED);
        if ((uint32_t)shmchan__load(&rd->state, SHMCHAN__ACQUIRE) == SHMCHAN_PEER_SUBSCRIBER &&
            from % SHMCHAN__QREC_ALIGN == 0 && from < min) {
            min = from;
        }
    }
    q->placed = min;
    q->placed_epoch = epoch;
    q->placed_known = true;
    return min;
}

/*
 * With no worker registered, the messages a claim ending at end overwrites
 * that nobody received and no live subscriber was placed to read have no
 * reader to count them: [consumed watermark, smallest `from`) (docs/queue.md,
 * sections 5 and 6). Only a claim reaching past the watermark looks further.
 */
static void
unread_nobody_placed(const shmchan__ring *v, shmchan__ring_wr *q, uint64_t end, uint64_t cnt[2])
{
    uint64_t k = shmchan__ring_consumed(v);
    if (end <= v->cap || end - v->cap <= k) {
        return;
    }
    cnt[0] = k;
    cnt[1] = shmchan__load(&v->ctl->nsubs, SHMCHAN__RELAXED) == 0 ? UINT64_MAX
                                                                  : placed_floor(v, q);
}

/* The claim state at the start of a critical section: tail and next_seq,
 * ECORRUPT when no writer of ours would have left them so. */
static int
claim_start(const shmchan__queue_ctl *c, uint64_t *p0, uint64_t *seq)
{
    *p0 = shmchan__load(&c->tail, SHMCHAN__RELAXED);
    *seq = shmchan__load(&c->next_seq, SHMCHAN__RELAXED);
    return SHMCHAN__UNLIKELY(*p0 % SHMCHAN__QREC_ALIGN != 0 || *seq == 0) ? SHMCHAN_ECORRUPT
                                                                          : SHMCHAN_OK;
}

/* Block mode: the gate for a claim ending at end, scanning the reader table
 * only when the cached one is too low. */
static uint64_t
gate_for(const shmchan__ring *v, uint64_t end)
{
    uint64_t g = shmchan__load(&v->ctl->gate, SHMCHAN__RELAXED);
    if (end > g) {
        g = gate_of(v, shmchan__qgate_scan(v, end, false, NULL));
        shmchan__store(&v->ctl->gate, g, SHMCHAN__RELAXED);
    }
    return g;
}

/*
 * The space [p0, end) for a claim: EAGAIN when block mode has none (*need
 * says up to where), EBUSY when a live writer a lap behind still fills a
 * record there; else *oldest_out past everything it overwrites, with what is
 * lost unread counted.
 */
static int
claim_space(const shmchan__ring *v, shmchan__ring_wr *q, uint64_t p0, uint64_t end,
            uint64_t *oldest_out, uint64_t *need)
{
    shmchan__queue_ctl *c = v->ctl;
    if (!v->overwrite && end > gate_for(v, end)) {
        *need = end;
        return SHMCHAN_EAGAIN;
    }
    uint64_t oldest0 = shmchan__load(&c->oldest, SHMCHAN__RELAXED), oldest = oldest0;
    /* Who counts what is overwritten unread: subscribers their own losses,
     * skip_workers the workers' (overwrite mode), and, with no worker, we
     * what nobody received and no subscriber was placed to read. */
    uint64_t cnt[2] = {UINT64_MAX, UINT64_MAX}, msgs = 0;
    bool workers = shmchan__load(&c->nworkers, SHMCHAN__RELAXED) != 0;
    if (workers && v->overwrite) {
        cnt[0] = shmchan__load(&c->work_pos, SHMCHAN__ACQUIRE);
    } else if (!workers) {
        unread_nobody_placed(v, q, end, cnt);
    }
    if (walk(v, q->owner, p0, end, &oldest, cnt, &msgs) != SHMCHAN_OK) {
        return SHMCHAN_EBUSY;
    }
    if (workers && v->overwrite && cnt[0] < oldest) {
        skip_workers(v, cnt[0], oldest0, oldest, msgs);
    } else if (!workers && msgs != 0) {
        shmchan__fetch_add(&c->drops, msgs, SHMCHAN__RELAXED);
    }
    *oldest_out = oldest;
    return SHMCHAN_OK;
}

/* The journal first: a contender that finds us dead can finish the claim. */
static void
journal(shmchan__queue_ctl *c, uint64_t p0, uint64_t jlen, uint64_t oldest, uint64_t seq)
{
    shmchan__store(&c->j_pos, p0, SHMCHAN__RELAXED);
    shmchan__store(&c->j_len, jlen, SHMCHAN__RELAXED);
    shmchan__store(&c->j_oldest, oldest, SHMCHAN__RELAXED);
    shmchan__store(&c->j_seq, seq, SHMCHAN__RELEASE);
    shmchan__fence(SHMCHAN__RELEASE);
}

/* The critical section. OK, EAGAIN (no space: block mode), EBUSY, ECORRUPT.
 * With data, the record is also filled and committed (shmchan__qapply). */
int
shmchan__ring_claim_held(const shmchan__ring *v, shmchan__ring_wr *q, uint64_t len,
                         const void *data, shmchan__rclaim *cl)
{
    uint64_t p0, seq, oldest;
    int rc = claim_start(v->ctl, &p0, &seq);
    if (SHMCHAN__UNLIKELY(rc != SHMCHAN_OK)) {
        return rc;
    }
    uint64_t span = shmchan__qspan(len);
    bool rewind = wants_rewind(v, q, p0, span);
    uint64_t p = shmchan__qplace(v, p0, span, rewind);
    rc = claim_space(v, q, p0, p + span + sizeof(shmchan__qrec), &oldest, &cl->need);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    journal(v->ctl, p0, len | (rewind ? SHMCHAN__QJ_REWOUND : 0), oldest, seq);
    /* resv before the CLAIMED tag (released by it): readers check it. */
    shmchan__store(&v->writers[q->slot].resv, p, SHMCHAN__RELAXED);
    shmchan__qapply(v, p0, p, len, seq, oldest, q->slot, data);
    cl->pos = p;
    cl->seq = seq;
    cl->len = len;
    return SHMCHAN_OK;
}

/*
 * How many of msgs go in a run at the tail p0 and their span: at most
 * QRUN_MAX records and about budget bytes (at least one record), and, unless
 * the run rewinds or not even the first record fits, only what fits before
 * the ring's end (no pad in the middle of a stream).
 */
static size_t
run_size(const shmchan__ring *v, const shmchan_msg *msgs, size_t count, uint64_t budget,
         uint64_t room, uint64_t *span_out)
{
    uint64_t span = shmchan__qspan(msgs[0].len);
    size_t k = 1;
    budget = budget < v->cap / 4 ? budget : v->cap / 4;
    while (k < count && k < SHMCHAN__QRUN_MAX) {
        uint64_t next = span + shmchan__qspan(msgs[k].len);
        if (next > budget || (next > room && span <= room)) {
            break;
        }
        span = next;
        k++;
    }
    *span_out = span;
    return k;
}

int
shmchan__ring_claim_run(const shmchan__ring *v, shmchan__ring_wr *q, const shmchan_msg *msgs,
                        size_t count, uint64_t budget, size_t *k_out, uint64_t *bytes_out)
{
    uint64_t p0, seq, oldest, span, need;
    *k_out = 0;
    *bytes_out = 0;
    int rc = claim_start(v->ctl, &p0, &seq);
    if (SHMCHAN__UNLIKELY(rc != SHMCHAN_OK)) {
        return rc;
    }
    size_t k = run_size(v, msgs, count, budget, v->cap - (p0 & v->mask), &span);
    bool rewind = wants_rewind(v, q, p0, span);
    uint64_t p = shmchan__qplace(v, p0, span, rewind);
    if (!v->overwrite) { /* block mode: shorten the run to the space there is */
        uint64_t g = gate_for(v, p + span + sizeof(shmchan__qrec));
        while (k > 1 && p + span + sizeof(shmchan__qrec) > g) {
            span -= shmchan__qspan(msgs[--k].len);
        }
    }
    rc = claim_space(v, q, p0, p + span + sizeof(shmchan__qrec), &oldest, &need);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    journal(v->ctl, p0,
            span | (uint64_t)k << SHMCHAN__QJ_COUNT_SHIFT | SHMCHAN__QJ_RUN |
                (rewind ? SHMCHAN__QJ_REWOUND : 0),
            oldest, seq);
    shmchan__store(&v->writers[q->slot].resv, p, SHMCHAN__RELAXED);
    shmchan__qapply_run(v, p0, p, msgs, k, span, seq, oldest, q->slot);
    for (size_t i = 0; i < k; i++) {
        *bytes_out += msgs[i].len;
    }
    *k_out = k;
    return SHMCHAN_OK;
}

/*
 * Wait until the slowest live reader has moved far enough for a claim ending
 * at need (it may still not fit when we retry: other writers). Spin first,
 * then sleep on `space` (the handshake of wait.h); dead readers that hold us
 * back are dropped before each sleep that follows no progress.
 */
static int
wait_space(const shmchan__ring *v, shmchan__ring_wr *q, uint64_t need, uint64_t deadline,
           bool *spun, uint64_t *slice)
{
    const shmchan__region *r = v->reg;
    shmchan__queue_ctl *c = v->ctl;
    if (!*spun && r->spin_ns != 0 && shmchan__ring_spin_pays(v, &q->spin)) {
        /* Spin, looking at the readers' slots only now and then (each look
         * pulls a line a reader writes), and for the first part of the spin
         * wait for a little more room than this claim needs: the next claims
         * then fit without a look, and readers and writer stop taking turns
         * message by message. */
        *spun = true;
        uint64_t now = shmchan__now_ns();
        uint64_t half = now + (r->spin_ns / 2 < SPACE_MORE_NS ? r->spin_ns / 2 : SPACE_MORE_NS);
        uint64_t end = now + r->spin_ns;
        uint64_t more = need + (v->cap / 16 < SPACE_BATCH ? v->cap / 16 : SPACE_BATCH);
        do {
            for (int i = 0; i < 4; i++) {
                uint64_t min = shmchan__qgate_scan(v, need, false, NULL);
                if (!blocks(v, min, now < half ? more : need)) {
                    return SHMCHAN_OK;
                }
                for (int k = 0; k < SPACE_PAUSES; k++) {
                    shmchan__cpu_relax();
                }
            }
            now = shmchan__now_ns();
        } while (now < end);
    }
    uint32_t w = shmchan__wait_in(&c->sp_waiters, &c->space, NULL);
    uint64_t nap = shmchan__fence_waiter(*slice);
    int rc = SHMCHAN_OK;
    if (blocks(v, shmchan__qgate_scan(v, need, true, NULL), need)) {
        *slice = SHMCHAN__QSLICE_NS;
        rc = shmchan__wait_sleep(v->shm, &c->space, w, nap, deadline);
    }
    shmchan__wait_out(&c->sp_waiters);
    return rc;
}

static int
wait_busy(uint64_t deadline)
{
    uint64_t now = shmchan__now_ns();
    if (deadline != 0 && now >= deadline) {
        return SHMCHAN_ETIMEDOUT;
    }
    shmchan__sleep_ns(deadline != 0 && deadline - now < BUSY_NAP_NS ? deadline - now
                                                                     : BUSY_NAP_NS);
    return SHMCHAN_OK;
}

int
shmchan__ring_claim(const shmchan__ring *v, shmchan__ring_wr *q, uint64_t len, const void *data,
                    int64_t timeout_ms, shmchan__rclaim *cl)
{
    int64_t lock_ns = timeout_ms < 0    ? -1
                      : timeout_ms == 0 ? NOWAIT_LOCK_NS
                                        : timeout_ms * SHMCHAN__NS_PER_MS;
    uint64_t deadline = 0, slice = SHMCHAN__QFIRST_SLICE_NS;
    bool spun = false, counted = false;
    for (;;) {
        int rc = shmchan__qlock(v, q->owner, lock_ns);
        if (SHMCHAN__UNLIKELY(rc != SHMCHAN_OK)) {
            return rc == SHMCHAN_ETIMEDOUT && timeout_ms == 0 ? SHMCHAN_EAGAIN : rc;
        }
        rc = shmchan__ring_claim_held(v, q, len, data, cl);
        shmchan__qunlock(v);
        if (SHMCHAN__LIKELY(rc == SHMCHAN_OK) || rc == SHMCHAN_ECORRUPT) {
            return rc;
        }
        if (timeout_ms == 0) {
            return SHMCHAN_EAGAIN;
        }
        if (deadline == 0 && timeout_ms > 0) {
            deadline = shmchan__deadline(timeout_ms);
        }
        if (!counted) {
            counted = true;
            shmchan__fetch_add(&v->ctl->waits, 1, SHMCHAN__RELAXED);
        }
        rc = rc == SHMCHAN_EAGAIN ? wait_space(v, q, cl->need, deadline, &spun, &slice)
                                  : wait_busy(deadline);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        if (shmchan__region_broken(v->reg)) {
            return SHMCHAN_ETRUNCATED;
        }
    }
}

void
shmchan__ring_committed(const shmchan__ring *v, shmchan__ring_wr *q, uint64_t len, bool wake)
{
    shmchan__qwriter *w = &v->writers[q->slot];
    shmchan__store(&w->resv, SHMCHAN__QPOS_NONE, SHMCHAN__RELEASE); /* after the tag */
    shmchan__store(&w->sent, ++q->sent, SHMCHAN__RELAXED);
    shmchan__store(&w->total, ++q->total, SHMCHAN__RELAXED);
    q->total_bytes += len;
    shmchan__store(&w->total_bytes, q->total_bytes, SHMCHAN__RELAXED);
    if (wake) {
        shmchan__qwake_readers(v);
    }
}

void
shmchan__ring_committed_n(const shmchan__ring *v, shmchan__ring_wr *q, uint64_t n, uint64_t bytes)
{
    shmchan__qwriter *w = &v->writers[q->slot];
    shmchan__store(&w->resv, SHMCHAN__QPOS_NONE, SHMCHAN__RELEASE);
    q->sent += n;
    q->total += n;
    q->total_bytes += bytes;
    shmchan__store(&w->sent, q->sent, SHMCHAN__RELAXED);
    shmchan__store(&w->total, q->total, SHMCHAN__RELAXED);
    shmchan__store(&w->total_bytes, q->total_bytes, SHMCHAN__RELAXED);
}

/* Publish the claim as a message of len bytes (<= claimed); wake the readers
 * that sleep unless the caller does it once for a batch. */
void
shmchan__ring_publish(const shmchan__ring *v, shmchan__ring_wr *q, const shmchan__rclaim *cl,
                      uint64_t len, bool wake)
{
    shmchan__qrec *h = shmchan__qrec_at(v, cl->pos);
    uint64_t have = shmchan__qspan(cl->len), used = shmchan__qspan(len);
    if (used < have) {
        /* The unused rest becomes a filler, before the length that leads
         * readers to it; the commit's release store orders both. */
        shmchan__qrec *f = shmchan__qrec_at(v, cl->pos + used);
        shmchan__store(&f->len, (uint32_t)(have - used - sizeof(shmchan__qrec)),
                       SHMCHAN__RELAXED);
        shmchan__store(&f->writer, q->slot, SHMCHAN__RELAXED);
        shmchan__store(&f->tag, shmchan__qtag(cl->seq + 1, SHMCHAN__QTAG_PAD),
                       SHMCHAN__RELAXED);
    }
    if (len != cl->len) {
        shmchan__store(&h->len, (uint32_t)len, SHMCHAN__RELAXED);
    }
    shmchan__store(&h->tag, shmchan__qtag(cl->seq, SHMCHAN__QTAG_MSG), SHMCHAN__RELEASE);
    shmchan__ring_committed(v, q, len, wake);
}

void
shmchan__ring_drop(const shmchan__ring *v, shmchan__ring_wr *q, const shmchan__rclaim *cl)
{
    shmchan__qrec *h = shmchan__qrec_at(v, cl->pos);
    shmchan__store(&h->tag, shmchan__qtag(cl->seq, SHMCHAN__QTAG_DROPPED), SHMCHAN__RELEASE);
    shmchan__store(&v->writers[q->slot].resv, SHMCHAN__QPOS_NONE, SHMCHAN__RELEASE);
    shmchan__qwake_readers(v);
}
