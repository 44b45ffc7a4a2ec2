/*
 * Latest-value channels: a multi-buffer seqlock (protocol in layout.h above
 * struct shmchan__latest_ctl, argument in docs/design.md).
 */
#include <stdlib.h>
#include <string.h>

#include "copy.h"
#include "side.h"
#include "wait.h"
#include "slotlock.h"

/* A reader gives up a read after this many looks in all (laps by a hostile or
 * impossibly fast writer): never spin for ever on shared words nobody is bound
 * to fix. Fuzz builds keep the logic with a shorter bound, so that an input
 * that fails every look costs microseconds. */
#ifdef SHMCHAN_FUZZING
#define READ_RETRIES 64
#else
#define READ_RETRIES 1000000
#endif
#define MAX_MSG_LIMIT (UINT64_C(1) << 40)
/* Sequences from here on are forged (2^62 publishes take centuries): tags
 * 2s of their successors would wrap. */
#define SEQ_LIMIT (UINT64_C(1) << 62)
#define WAITER_RECHECK_NS (1000ull * 1000 * 1000)
#define RDONLY_POLL_NS (1000ull * 1000) /* a read-only waiter polls this often */
#define HANDLE_NAP_NS (20ull * 1000)

struct shmchan_latest {
    shmchan__region r;
    shmchan__latest_ctl *ctl;
    uint64_t stride;     /* bytes from one buffer to the next */
    bool begun;          /* between begin and commit/abort */
    uint64_t begun_seq;  /* sequence the open reservation will get */
    /* The thread that holds the writers' lock through this handle (its
     * thread token), 0 if none: threads sharing the handle take turns here,
     * and the fields below are only touched by that thread. */
    _Atomic(uintptr_t) holder;
    bool has_slot;       /* took a writer slot (at the first begin) */
    uint32_t wslot;      /* its index */
    uint64_t wstate;     /* its state while ours: gen << 32 | 1 */
    uint64_t me;         /* our lock word */
    uint64_t holds;      /* times we took the lock: hold is 2 * holds + 1 meanwhile */
    shmchan__atomic_u32 fenced_in; /* in ctl->fenced (wait.h): threads share it */
    shmchan__atomic_u64 last_len;  /* length read_next took last: a hint (look_ahead) */
    shmchan__nfview nfv;           /* the channel's notifier table (notify.h) */
    _Atomic(shmchan__notifier *) nf; /* this handle's readiness notifier, made on demand */
    shmchan__side side;            /* read-only readers' notifiers (side.h) */
    _Atomic(shmchan__notifier *) wnf; /* a read-only handle's own, for blocking waits */
};

static void drop_slot(shmchan_latest *ch);

/* Where this handle's notifiers live: a read-only handle cannot write the
 * channel, so its are in the side object (side.h). */
static const shmchan__nfview *
notify_view(const shmchan_latest *ch)
{
    return (ch->r.flags & SHMCHAN_RDONLY) ? &ch->side.nfv : &ch->nfv;
}

static uint64_t
buf_stride(uint64_t max_msg)
{
    uint64_t n = sizeof(shmchan__latest_buf) + max_msg;
    return (n + SHMCHAN__CACHE_LINE - 1) / SHMCHAN__CACHE_LINE * SHMCHAN__CACHE_LINE;
}

static shmchan__latest_buf *
buf_of(const shmchan_latest *ch, uint64_t seq)
{
    uint64_t i = seq & (ch->r.geom.nbuf - 1);
    return (shmchan__latest_buf *)(ch->r.data + i * ch->stride);
}

static uint8_t *
payload_of(shmchan__latest_buf *b)
{
    return (uint8_t *)(b + 1);
}

/*
 * The newest complete sequence. A commit stores the buffer's tag 2s before
 * seq = s, and read_next takes message s from its tag alone (it never reads
 * seq's line while messages come), so for a moment s is complete and seq
 * still says s - 1: counting that message here keeps every reader call's
 * answer from going back behind what read_next already returned. The look
 * at the next buffer is on the line the next message arrives on.
 */
static uint64_t
newest_seq(shmchan_latest *ch)
{
    uint64_t s = shmchan__load(&ch->ctl->seq, SHMCHAN__ACQUIRE);
    if (SHMCHAN__UNLIKELY(s >= SEQ_LIMIT)) {
        return s; /* forged: no tag can name its successor */
    }
    uint64_t t = shmchan__load(&buf_of(ch, s + 1)->tag, SHMCHAN__ACQUIRE);
    return t == 2 * (s + 1) ? s + 1 : s;
}

/* ------------------------------------------------------- kind operations */

static int
latest_plan(const shmchan_opts *o, shmchan__geom *g)
{
    if (o->capacity != 0 || o->policy != 0 || o->max_readers != 0 || o->max_writers != 0) {
        return SHMCHAN_EINVAL; /* queue geometry on a latest-value channel */
    }
    g->max_msg = o->max_msg != 0 ? o->max_msg : SHMCHAN__DEFAULT_MAX_MSG;
    if (g->max_msg > MAX_MSG_LIMIT) {
        return SHMCHAN_EINVAL;
    }
    g->nbuf = SHMCHAN__LATEST_NBUF;
    g->ctl_size = sizeof(shmchan__latest_ctl);
    g->data_size = g->nbuf * buf_stride(g->max_msg);
    return SHMCHAN_OK;
}

static int
latest_match(const shmchan_opts *o, const shmchan__geom *g)
{
    if (o->max_msg != 0 && o->max_msg != g->max_msg) {
        return shmchan__geometry_error("max_msg", g->max_msg, o->max_msg);
    }
    /* Queue geometry asked of a latest-value channel, which has none. */
    if (o->capacity != 0) {
        return shmchan__geometry_error("capacity", 0, o->capacity);
    }
    if (o->policy != 0) {
        return shmchan__geometry_error("policy", 0, o->policy);
    }
    if (o->max_readers != 0) {
        return shmchan__geometry_error("max_readers", 0, o->max_readers);
    }
    if (o->max_writers != 0) {
        return shmchan__geometry_error("max_writers", 0, o->max_writers);
    }
    /* max_msg first: a forged one near 2^64 would wrap the size products. */
    bool sane = g->max_msg <= MAX_MSG_LIMIT && g->nbuf == SHMCHAN__LATEST_NBUF &&
                g->ctl_size == sizeof(shmchan__latest_ctl) &&
                g->data_size == (uint64_t)g->nbuf * buf_stride(g->max_msg);
    return sane ? SHMCHAN_OK : SHMCHAN_ECORRUPT;
}

static void
latest_reset(shmchan__shm *shm, uint8_t *ctl, uint8_t *data, const shmchan__geom *g)
{
    (void)data;
    (void)g;
    (void)shm;
    shmchan__latest_ctl *c = (shmchan__latest_ctl *)ctl;
    shmchan__store(&c->waiters, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->fenced, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->lock, 0, SHMCHAN__RELAXED);
    shmchan__store(&c->lk_waiters, 0, SHMCHAN__RELAXED);
    shmchan__nfview nfv = SHMCHAN__NFVIEW_OF(c, 0);
    shmchan__nfview_reset(&nfv);
    for (uint32_t i = 0; i < SHMCHAN__LATEST_WRITERS; i++) {
        shmchan__latest_wslot *w = &c->writers[i];
        uint64_t st = shmchan__load(&w->state, SHMCHAN__RELAXED);
        shmchan__store(&w->state, st & ~(uint64_t)UINT32_MAX, SHMCHAN__RELAXED);
        shmchan__store(&w->hold, 0, SHMCHAN__RELAXED);
    }
}

static void
latest_init(shmchan__shm *shm, uint8_t *ctl, uint8_t *data, const shmchan__geom *g)
{
    memset(ctl, 0, g->ctl_size);
    memset(data, 0, g->data_size);
    latest_reset(shm, ctl, data, g);
}

static void
latest_info(const shmchan__region *r, shmchan_info *info)
{
    shmchan__latest_ctl *c = (shmchan__latest_ctl *)r->ctl;
    info->seq = shmchan__load(&c->seq, SHMCHAN__ACQUIRE);
    info->messages = shmchan__load(&c->messages, SHMCHAN__RELAXED);
    info->bytes = shmchan__load(&c->bytes, SHMCHAN__RELAXED);
    info->waits = shmchan__load(&c->sleeps, SHMCHAN__RELAXED);
}

const shmchan__kind_ops shmchan__latest_ops = {
    .kind = SHMCHAN_KIND_LATEST,
    .name = "latest",
    .plan = latest_plan,
    .match = latest_match,
    .init = latest_init,
    .reset = latest_reset,
    .info = latest_info,
    .peers = NULL,
};

/* ------------------------------------------------------------ lifecycle */

int
shmchan_latest_open(const char *name, const shmchan_opts *opts, shmchan_latest **out)
{
    if (out == NULL) {
        return SHMCHAN_EINVAL;
    }
    *out = NULL;
    shmchan_opts o;
    int orc = shmchan__opts_copy(opts, &o);
    if (orc != SHMCHAN_OK) {
        return orc;
    }
    if (o.flags & (SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST | SHMCHAN_WORKER | SHMCHAN_SERVER |
                   SHMCHAN_RESEND | SHMCHAN_NOCONSUME)) {
        return SHMCHAN_EINVAL;
    }
    shmchan_latest *ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        return SHMCHAN_ENOMEM;
    }
    int rc = shmchan__region_open(name, &o, &shmchan__latest_ops, &ch->r);
    if (rc != SHMCHAN_OK) {
        free(ch);
        return rc;
    }
    ch->ctl = (shmchan__latest_ctl *)ch->r.ctl;
    ch->stride = buf_stride(ch->r.geom.max_msg);
    ch->nfv = SHMCHAN__NFVIEW_OF(ch->ctl, ch->r.chan_id);
    shmchan__side_open(name, o.flags, ch->r.chan_id, ch->r.shm, &ch->side);
    *out = ch;
    return SHMCHAN_OK;
}

void
shmchan_latest_close(shmchan_latest *ch)
{
    if (ch == NULL) {
        return;
    }
    if (shmchan__region_foreign(&ch->r)) {
        /* Inherited across fork: the writer lock and counts are the opener's. */
        shmchan__notifier_close(NULL, atomic_load(&ch->nf));
        shmchan__notifier_close(NULL, atomic_load(&ch->wnf));
        shmchan__side_close(&ch->side);
        shmchan__region_close(&ch->r);
        free(ch);
        return;
    }
    if (ch->begun) {
        (void)shmchan_latest_abort(ch);
    }
    shmchan__notifier_close(notify_view(ch), atomic_load(&ch->nf));
    shmchan__notifier_close(&ch->side.nfv, atomic_load(&ch->wnf));
    shmchan__side_close(&ch->side);
    shmchan__fence_sleeper_leave(&ch->ctl->fenced, &ch->fenced_in);
    drop_slot(ch);
    shmchan__region_close(&ch->r); /* drops the slot's kernel lock last */
    free(ch);
}

size_t
shmchan_latest_max_msg(const shmchan_latest *ch)
{
    return ch == NULL ? 0 : (size_t)ch->r.geom.max_msg;
}

uint64_t
shmchan_latest_seq(shmchan_latest *ch)
{
    return ch == NULL || shmchan__region_forked(&ch->r) ? 0 : newest_seq(ch);
}

/* --------------------------------------------------------------- writing */

/*
 * The writers' lock is a slot lock (slotlock.h; protocol in layout.h above
 * shmchan__latest_ctl). Its owner judgement: a word naming no writer slot, a
 * free slot, another generation, a slot whose owner does not hold the lock
 * (even `hold`), a dead owner, or our own word while we are the ones taking
 * it, is forged or stale. *mark is the `hold` the verdict saw.
 */
static bool
writer_gone(const void *ctx, uint64_t word, uint64_t *mark)
{
    const shmchan_latest *ch = ctx;
    uint32_t lo = (uint32_t)word;
    *mark = 0;
    if (lo == 0 || lo > SHMCHAN__LATEST_WRITERS || word == ch->me) {
        return true;
    }
    shmchan__latest_wslot *w = &ch->ctl->writers[lo - 1];
    uint64_t hold = shmchan__load(&w->hold, SHMCHAN__ACQUIRE);
    *mark = hold;
    if ((hold & 1) == 0) {
        return true; /* its owner is not taking or holding the lock */
    }
    uint64_t st = shmchan__load(&w->state, SHMCHAN__ACQUIRE);
    return shmchan__owner_slot_gone(ch->r.shm, word, st, SHMCHAN__LOCK_SLOTS + lo - 1);
}

/* After a steal: the slot's owner did not take the lock again meanwhile. A
 * re-take stores a new odd hold before its CAS, which our CAS read from. */
static bool
writer_kept(const void *ctx, uint64_t word, uint64_t mark)
{
    const shmchan_latest *ch = ctx;
    uint32_t lo = (uint32_t)word;
    if (lo == 0 || lo > SHMCHAN__LATEST_WRITERS || word == ch->me) {
        return true;
    }
    return shmchan__load(&ch->ctl->writers[lo - 1].hold, SHMCHAN__ACQUIRE) == mark;
}

static shmchan__slock
writers_lock(const shmchan_latest *ch)
{
    shmchan__latest_ctl *c = ch->ctl;
    shmchan__slock l = {ch->r.shm, &c->lock, &c->lk_waiters, &c->lk_wake,
                        writer_gone, writer_kept, ch};
    return l;
}

/* This thread's token: the address of a thread-local, private memory only. */
static uintptr_t
thread_token(void)
{
    static SHMCHAN__THREAD_LOCAL char token;
    return (uintptr_t)&token;
}

/* Become the handle's holder thread: threads sharing the handle nap here
 * while one of them is between begin and commit. */
static void
hold_handle(shmchan_latest *ch, uintptr_t self)
{
    for (uint32_t i = 1;; i++) {
        uintptr_t none = 0;
        if (shmchan__cas(&ch->holder, &none, self)) {
            return;
        }
        if (i % 64 != 0) {
            shmchan__cpu_relax();
        } else {
            shmchan__sleep_ns(HANDLE_NAP_NS);
        }
    }
}

static void
raise_used(shmchan__atomic_u32 *used, uint32_t n)
{
    uint32_t u = shmchan__load(used, SHMCHAN__RELAXED);
    while (u < n && !shmchan__cas(used, &u, n)) {
    }
}

/* Take the first writer slot whose kernel lock is free, with a new
 * generation. OK, ELIMIT (all in use), or the lock's error. */
static int
take_slot(shmchan_latest *ch)
{
    for (uint32_t k = 0; k < SHMCHAN__LATEST_WRITERS; k++) {
        int rc = shmchan__lock_try(ch->r.shm, SHMCHAN__LOCK_SLOTS + k, true);
        if (rc == SHMCHAN_EBUSY) {
            continue;
        }
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        shmchan__latest_wslot *w = &ch->ctl->writers[k];
        uint64_t st = shmchan__load(&w->state, SHMCHAN__ACQUIRE);
        while (!shmchan__cas(&w->state, &st, ((st >> 32) + 1) << 32)) {
        }
        uint64_t gen = (st >> 32) + 1;
        shmchan__store(&w->hold, 0, SHMCHAN__RELAXED);
        ch->wslot = k;
        ch->wstate = gen << 32 | 1u;
        ch->me = shmchan__owner_word(gen, k);
        ch->holds = 0;
        ch->has_slot = true;
        shmchan__store(&w->state, ch->wstate, SHMCHAN__RELEASE);
        raise_used(&ch->ctl->writers_used, k + 1);
        return SHMCHAN_OK;
    }
    return SHMCHAN_ELIMIT;
}

/* Take the writers' lock (the handle is held). OK or ETRUNCATED. */
static int
lock_writers(shmchan_latest *ch)
{
    shmchan__latest_wslot *w = &ch->ctl->writers[ch->wslot];
    /* Our slot says who we are and that we are taking the lock before the
     * CAS can name us (its release orders these stores first): a peer that
     * scribbled them is corrected here. */
    shmchan__store(&w->state, ch->wstate, SHMCHAN__RELAXED);
    shmchan__store(&w->hold, 2 * ++ch->holds + 1, SHMCHAN__RELAXED);
    shmchan__slock l = writers_lock(ch);
    int rc = shmchan__slock_take(&l, ch->me, -1);
    if (rc == SHMCHAN__SLOCK_STOLEN) {
        /* A dead or forged owner: the buffer it may have touched is the
         * unpublished one we rewrite now. */
        shmchan__fetch_add(&ch->r.hdr->recovered, 1, SHMCHAN__RELAXED);
        return SHMCHAN_OK;
    }
    if (rc != SHMCHAN_OK) {
        shmchan__store(&w->hold, 2 * ch->holds + 2, SHMCHAN__RELEASE);
    }
    return rc;
}

/* Release the writers' lock and the handle: the lock word first, then our
 * even hold (a contender that sees it sees the word free), then the handle. */
static void
unlock_writers(shmchan_latest *ch)
{
    shmchan__store(&ch->ctl->lock, 0, SHMCHAN__RELEASE);
    shmchan__store(&ch->ctl->writers[ch->wslot].hold, 2 * ch->holds + 2, SHMCHAN__RELEASE);
    shmchan__store(&ch->holder, 0, SHMCHAN__RELEASE);
}

/* Our writer slot back at close (its kernel lock goes with the region). */
static void
drop_slot(shmchan_latest *ch)
{
    if (ch->has_slot) {
        shmchan__store(&ch->ctl->writers[ch->wslot].state, ch->wstate & ~(uint64_t)UINT32_MAX,
                       SHMCHAN__RELEASE);
        ch->has_slot = false;
    }
}

/*
 * With the lock held, seq = the newest published sequence: if the buffer of
 * seq + 1 already holds that message complete (tag 2(seq+1)), its writer died
 * between the tag and seq stores of its commit. Readers of read_next may have
 * taken it from the tag alone, so it stays: publish it and go on after it,
 * rather than write another message under the same sequence. Returns the
 * sequence the next message follows. A forged tag gets published as a forged
 * seq would be: readers bound its length as always.
 */
static uint64_t
roll_forward(shmchan_latest *ch, uint64_t seq)
{
    uint64_t s = seq + 1;
    if (SHMCHAN__UNLIKELY(seq < SEQ_LIMIT &&
                          shmchan__load(&buf_of(ch, s)->tag, SHMCHAN__ACQUIRE) == 2 * s)) {
        shmchan__store(&ch->ctl->seq, s, SHMCHAN__RELEASE);
        return s;
    }
    return seq;
}

int
shmchan_latest_begin(shmchan_latest *ch, void **buf_out)
{
    if (ch == NULL || buf_out == NULL) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&ch->r)) {
        return SHMCHAN_EFORKED;
    }
    if (ch->r.flags & SHMCHAN_RDONLY) {
        return SHMCHAN_ERDONLY;
    }
    if (shmchan__region_broken(&ch->r)) {
        return SHMCHAN_ETRUNCATED;
    }
    /* Only this thread can have stored its own token: a second begin by the
     * holder fails, other threads sharing the handle wait their turn. */
    uintptr_t self = thread_token();
    if (shmchan__load(&ch->holder, SHMCHAN__RELAXED) == self) {
        return SHMCHAN_ESTATE;
    }
    hold_handle(ch, self);
    int rc = ch->has_slot ? SHMCHAN_OK : take_slot(ch);
    if (rc == SHMCHAN_OK) {
        rc = lock_writers(ch);
    }
    if (rc != SHMCHAN_OK) {
        shmchan__store(&ch->holder, 0, SHMCHAN__RELEASE);
        return rc;
    }
    uint64_t s = roll_forward(ch, shmchan__load(&ch->ctl->seq, SHMCHAN__RELAXED)) + 1;
    shmchan__latest_buf *b = buf_of(ch, s);
    /* No "being written" mark on the buffer: a reader of its older message
     * learns from the tag of message s - 1 that we may have begun (see
     * overwritten()). The fence orders what we saw complete before any byte
     * we store, for a reader's acquire fence that sees one of them. */
    shmchan__fence(SHMCHAN__RELEASE);
    ch->begun = true;
    ch->begun_seq = s;
    *buf_out = payload_of(b);
    return SHMCHAN_OK;
}

/* After the lock's release (and the readers' wake word when a message was
 * published): one publisher's barrier serves both handshakes, readers asleep
 * and writers asleep. */
static void
wake_sleepers(shmchan_latest *ch, bool published)
{
    shmchan__fence_publisher(ch->r.asym, &ch->ctl->fenced);
    if (published) { /* wake = seq already */
        shmchan__wake_readers(ch->r.shm, &ch->ctl->waiters, &ch->ctl->wake, false, &ch->nfv);
        shmchan__notify_publish(&ch->side.nfv); /* read-only readers' (side.h) */
    }
    shmchan__slock l = writers_lock(ch);
    shmchan__slock_wake(&l);
}

int
shmchan_latest_commit(shmchan_latest *ch, size_t len, uint64_t *seq_out)
{
    if (ch == NULL) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&ch->r)) {
        return SHMCHAN_EFORKED;
    }
    if (!ch->begun) {
        return SHMCHAN_ESTATE;
    }
    if (len > ch->r.geom.max_msg) {
        return SHMCHAN_EMSGSIZE;
    }
    uint64_t s = ch->begun_seq;
    shmchan__latest_ctl *c = ch->ctl;
    shmchan__latest_buf *b = buf_of(ch, s);
    shmchan__store(&b->len, len, SHMCHAN__RELAXED);
    shmchan__store(&b->tag, 2 * s, SHMCHAN__RELEASE);
    shmchan__store(&c->seq, s, SHMCHAN__RELEASE);
    /* Counters are only written under the lock: no read-modify-write needed. */
    shmchan__store(&c->messages, shmchan__load(&c->messages, SHMCHAN__RELAXED) + 1,
                   SHMCHAN__RELAXED);
    shmchan__store(&c->bytes, shmchan__load(&c->bytes, SHMCHAN__RELAXED) + len,
                   SHMCHAN__RELAXED);
    ch->begun = false;
    unlock_writers(ch);
    shmchan__store(&c->wake, (uint32_t)s, SHMCHAN__RELEASE);
    wake_sleepers(ch, true);
    if (seq_out != NULL) {
        *seq_out = s;
    }
    return SHMCHAN_OK;
}

int
shmchan_latest_abort(shmchan_latest *ch)
{
    if (ch == NULL) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&ch->r)) {
        return SHMCHAN_EFORKED;
    }
    if (!ch->begun) {
        return SHMCHAN_ESTATE;
    }
    /* The buffer keeps its old tag: readers of its old message discard their
     * copies anyway (overwritten()), the next writer reuses it. */
    ch->begun = false;
    unlock_writers(ch);
    wake_sleepers(ch, false);
    return SHMCHAN_OK;
}

/*
 * Copy a message into its buffer, the bytes on the tag's cache line last: the
 * reader that waits for the message polls that line, and the writer's
 * stores to it (payload head, len, tag) then go in one burst after the other
 * lines are written, so that the line changes owner once per message rather
 * than once more whenever a look of the reader falls between them.
 */
static void
copy_tag_line_last(uint8_t *buf, const void *data, size_t len)
{
    size_t head = SHMCHAN__CACHE_LINE - sizeof(shmchan__latest_buf);
    if (len > head) {
        shmchan__copy_in(buf + head, (const uint8_t *)data + head, len - head);
    }
    if (len != 0) {
        memcpy(buf, data, len < head ? len : head);
    }
}

int
shmchan_latest_publish(shmchan_latest *ch, const void *data, size_t len, uint64_t *seq_out)
{
    if (ch == NULL || (data == NULL && len != 0)) {
        return SHMCHAN_EINVAL;
    }
    if (len > ch->r.geom.max_msg) {
        return SHMCHAN_EMSGSIZE;
    }
    void *buf = NULL;
    int rc = shmchan_latest_begin(ch, &buf);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    copy_tag_line_last(buf, data, len);
    return shmchan_latest_commit(ch, len, seq_out);
}

/* --------------------------------------------------------------- reading */

/*
 * Locate the newest complete message without copying: the buffer, its tag
 * and length as seen before the copy. Each look spends one of *budget, which
 * the caller shares with its own retries, so that one call makes at most
 * READ_RETRIES looks in all. OK, EAGAIN (none yet or no stable look within
 * the budget), ETRUNCATED.
 */
static int
locate(shmchan_latest *ch, int *budget, shmchan__latest_buf **b_out, uint64_t *tag_out,
       uint64_t *len_out, uint64_t *seq_out)
{
    while (*budget > 0) {
        --*budget;
        if (SHMCHAN__UNLIKELY(shmchan__region_broken(&ch->r))) {
            return SHMCHAN_ETRUNCATED;
        }
        uint64_t s = newest_seq(ch);
        if (s == 0) {
            /* Zeros may be the guard's replacement of truncated storage. */
            return shmchan__region_broken(&ch->r) ? SHMCHAN_ETRUNCATED : SHMCHAN_EAGAIN;
        }
        shmchan__latest_buf *b = buf_of(ch, s);
        uint64_t tag = shmchan__load(&b->tag, SHMCHAN__ACQUIRE);
        uint64_t len = shmchan__load(&b->len, SHMCHAN__RELAXED);
        if (SHMCHAN__LIKELY(tag == 2 * s && len <= ch->r.geom.max_msg)) {
            *b_out = b;
            *tag_out = tag;
            *len_out = len;
            *seq_out = s;
            return SHMCHAN_OK;
        }
        shmchan__cpu_relax(); /* lapped by a writer, or a lying one */
    }
    return shmchan__region_broken(&ch->r) ? SHMCHAN_ETRUNCATED : SHMCHAN_EAGAIN;
}

/*
 * The seqlock's payload copy: plain loads that a writer lapping us may race
 * with. That race is the protocol's, and benign: unchanged() detects it and
 * the copy is discarded. Its own function so that the ThreadSanitizer
 * suppression (tests/tsan.supp) can name exactly this copy and nothing else.
 */
static void
seqlock_copy(void *dst, const uint8_t *src, size_t len)
{
    shmchan__copy_out(dst, src, len);
}

/*
 * Whether a writer may have begun to overwrite the buffer of message s: the
 * first writer to touch it again writes s + nbuf, which it begins only after
 * s + nbuf - 1 is complete. Called after the caller's acquire fence: if the
 * copy saw any byte of that writer's, the fence pairing (its release fence in
 * begin) makes the tag 2(s + nbuf - 1), or a later one, visible here.
 */
static bool
overwritten(const shmchan_latest *ch, uint64_t s)
{
    uint64_t last = s + ch->r.geom.nbuf - 1;
    return shmchan__load(&buf_of(ch, last)->tag, SHMCHAN__RELAXED) >= 2 * last;
}

/* Whether message s, whose buffer b had tag tag, was intact for the copy. */
static bool
unchanged(const shmchan_latest *ch, shmchan__latest_buf *b, uint64_t s, uint64_t tag)
{
    shmchan__fence(SHMCHAN__ACQUIRE); /* order the copy before the re-check */
    return shmchan__load(&b->tag, SHMCHAN__RELAXED) == tag && !overwritten(ch, s);
}

int
shmchan_latest_read(shmchan_latest *ch, void *buf, size_t cap, size_t *len_out,
                    uint64_t *seq_out)
{
    if (ch == NULL || (buf == NULL && cap != 0)) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&ch->r)) {
        return SHMCHAN_EFORKED;
    }
    int budget = READ_RETRIES;
    while (budget > 0) {
        shmchan__latest_buf *b;
        uint64_t tag, len, s;
        int rc = locate(ch, &budget, &b, &tag, &len, &s);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        if (len > cap) {
            if (!unchanged(ch, b, s, tag)) {
                continue;
            }
            if (len_out != NULL) {
                *len_out = (size_t)len;
            }
            return SHMCHAN_EMSGSIZE;
        }
        seqlock_copy(buf, payload_of(b), (size_t)len);
        if (unchanged(ch, b, s, tag) && !shmchan__region_broken(&ch->r)) {
            if (len_out != NULL) {
                *len_out = (size_t)len;
            }
            if (seq_out != NULL) {
                *seq_out = s;
            }
            return SHMCHAN_OK;
        }
    }
    return SHMCHAN_EAGAIN;
}

int
shmchan_latest_view(shmchan_latest *ch, shmchan_msg *msg)
{
    if (ch == NULL || msg == NULL) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&ch->r)) {
        return SHMCHAN_EFORKED;
    }
    shmchan__latest_buf *b;
    uint64_t tag, len, s;
    int budget = READ_RETRIES;
    int rc = locate(ch, &budget, &b, &tag, &len, &s);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    msg->data = payload_of(b);
    msg->len = len;
    msg->seq = s;
    msg->lost = 0;
    msg->token = tag;
    return SHMCHAN_OK;
}

int
shmchan_latest_view_check(shmchan_latest *ch, const shmchan_msg *msg)
{
    if (ch == NULL || msg == NULL || msg->seq == 0) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&ch->r)) {
        return SHMCHAN_EFORKED;
    }
    if (shmchan__region_broken(&ch->r)) {
        return SHMCHAN_ETRUNCATED;
    }
    return unchanged(ch, buf_of(ch, msg->seq), msg->seq, msg->token) ? SHMCHAN_OK
                                                                       : SHMCHAN_ESTALE;
}

/* ---------------------------------------------------------------- waiting */

static bool
newer(shmchan_latest *ch, uint64_t after_seq, uint64_t *seq_out)
{
    uint64_t s = newest_seq(ch);
    *seq_out = s;
    return s > after_seq;
}

/*
 * Whether readers crowd the CPUs: with `others` sleeping readers and us, the
 * spin rule (wait.h) says no. A reader then sleeps at once rather than spin
 * on a CPU a peer needs, and, sleeping message after message, registers for
 * fenced publishers (wait.h) rather than force barriers at every sleep.
 */
static bool
sleepers_crowd(uint32_t others)
{
    return !shmchan__spin_pays(others + 1);
}

typedef struct latest_news {
    shmchan_latest *ch;
    uint64_t after_seq;
} latest_news;

static bool
latest_has_news(void *arg)
{
    latest_news *n = arg;
    uint64_t s;
    return newer(n->ch, n->after_seq, &s);
}

/* A read-only handle's notifier for blocking waits, made on first use; NULL
 * without a side object (or with all its slots taken): then it polls. */
static shmchan__notifier *
rdonly_waiter(shmchan_latest *ch)
{
    shmchan__notifier *nf = atomic_load(&ch->wnf);
    if (nf != NULL || !shmchan__side_present(&ch->side)) {
        return nf;
    }
    if (shmchan__notifier_open(&ch->side.nfv, &nf) != SHMCHAN_OK) {
        return NULL;
    }
    shmchan__notifier *none = NULL;
    if (!atomic_compare_exchange_strong(&ch->wnf, &none, nf)) {
        shmchan__notifier_close(&ch->side.nfv, nf); /* another thread was first */
        nf = none;
    }
    return nf;
}

/* Wait for the notifier for at most slice_ns and not past deadline_ns (0:
 * none), as shmchan__wait_sleep: OK, ETIMEDOUT or EINTR. */
static int
notifier_sleep(shmchan__notifier *nf, uint64_t slice_ns, uint64_t deadline_ns)
{
    uint64_t now = shmchan__now_ns();
    if (deadline_ns != 0 && now >= deadline_ns) {
        return SHMCHAN_ETIMEDOUT;
    }
    uint64_t ns = deadline_ns != 0 && deadline_ns - now < slice_ns ? deadline_ns - now : slice_ns;
    intptr_t h = shmchan__nf_handle(nf->os);
    bool ready = false;
    int rc = shmchan__nf_poll(&h, 1, (int64_t)((ns + 999999) / 1000000), &ready);
    if (rc == SHMCHAN_ETIMEDOUT || rc == SHMCHAN_OK) {
        return deadline_ns != 0 && shmchan__now_ns() >= deadline_ns ? SHMCHAN_ETIMEDOUT
                                                                    : SHMCHAN_OK;
    }
    return rc;
}

/*
 * A read-only handle cannot register as a waiter in the channel: it arms a
 * notifier in the side object and sleeps on it, slices bounded as always
 * (a forged side object costs a slice). Without a side object, or where the
 * publishers' barrier cannot be forced, it polls gently instead.
 */
static int
rdonly_sleep(shmchan_latest *ch, uint64_t after_seq, uint64_t deadline)
{
    shmchan__latest_ctl *c = ch->ctl;
    uint64_t s;
    shmchan__notifier *nf = rdonly_waiter(ch);
    if (nf == NULL) {
        uint32_t w = shmchan__load(&c->wake, SHMCHAN__ACQUIRE);
        if (newer(ch, after_seq, &s)) {
            return SHMCHAN_OK;
        }
        return shmchan__wait_sleep(ch->r.shm, &c->wake, w, RDONLY_POLL_NS, deadline);
    }
    shmchan__nfsleep sl = {ch->r.asym, NULL, NULL};
    latest_news n = {ch, after_seq};
    bool forced = shmchan__notifier_arm(&ch->side.nfv, nf, &sl, latest_has_news, &n);
    if (newer(ch, after_seq, &s)) {
        return SHMCHAN_OK;
    }
    return notifier_sleep(nf, forced ? WAITER_RECHECK_NS : RDONLY_POLL_NS, deadline);
}

/* Sleep once, registered as a waiter: OK (re-check), ETIMEDOUT or EINTR. */
static int
sleep_once(shmchan_latest *ch, uint64_t after_seq, uint64_t deadline)
{
    shmchan__latest_ctl *c = ch->ctl;
    uint64_t s;
    if (ch->r.flags & SHMCHAN_RDONLY) {
        return rdonly_sleep(ch, after_seq, deadline);
    }
    uint32_t others;
    uint32_t w = shmchan__wait_in(&c->waiters, &c->wake, &others);
    uint64_t slice = shmchan__fence_sleeper(ch->r.asym, &c->fenced, &ch->fenced_in,
                                            sleepers_crowd(others), WAITER_RECHECK_NS);
    int rc = SHMCHAN_OK;
    if (!newer(ch, after_seq, &s)) {
        shmchan__fetch_add(&c->sleeps, 1, SHMCHAN__RELAXED);
        /* Bounded sleeps let a waiter notice a truncated region. */
        rc = shmchan__wait_sleep(ch->r.shm, &c->wake, w, slice, deadline);
    }
    shmchan__wait_out(&c->waiters);
    return rc;
}

/*
 * Whether message after_seq + 1 is complete, from its buffer's tag rather
 * than seq: when the tag turns, the payload arrives on the same cache line,
 * which saves a reader one dependent cache miss per message. Tags of a buffer
 * only grow (an aborted write leaves 2s+1, and the retry stores 2s), so
 * "complete for after_seq + 1 or written for a later sequence" is
 * tag >= 2(after_seq+1) and tag != 2(after_seq+1)+1. It is a hint: callers
 * confirm with seq.
 */
static bool
successor_turned(const shmchan_latest *ch, uint64_t after_seq)
{
    uint64_t want = 2 * (after_seq + 1);
    return shmchan__load(&buf_of(ch, after_seq + 1)->tag, SHMCHAN__ACQUIRE) >= want;
}

/*
 * While waiting for message after_seq + 1: touch the last line the message
 * will have if it is as long as the one before. The writer writes the lines
 * past the tag's first, the tag's line last (copy_tag_line_last), so the
 * fetch of that line overlaps with the writer's stores to the tag's line
 * instead of starting only once the tag has turned. A line we hold already
 * costs nothing; one the writer has not finished is fetched again.
 */
static void
look_ahead(shmchan_latest *ch, uint64_t after_seq)
{
    uint64_t len = shmchan__load(&ch->last_len, SHMCHAN__RELAXED);
    if (len > SHMCHAN__CACHE_LINE - sizeof(shmchan__latest_buf) && len <= ch->r.geom.max_msg) {
        shmchan__prefetch(payload_of(buf_of(ch, after_seq + 1)) + len - 1);
    }
}

/* Spin until successor_turned, for at most the adapted spin; returns when
 * the spin began, 0 if it did not spin. */
static uint64_t
spin_for_next(shmchan_latest *ch, uint64_t after_seq)
{
    if (ch->r.spin_ns == 0 ||
        sleepers_crowd(shmchan__waiters_of(shmchan__load(&ch->ctl->waiters, SHMCHAN__RELAXED)))) {
        return 0;
    }
    uint64_t began = shmchan__now_ns();
    uint64_t end = began + shmchan__spin_now(&ch->r);
    do {
        for (int i = 0; i < 64; i++) {
            if (successor_turned(ch, after_seq)) {
                return began;
            }
            look_ahead(ch, after_seq);
            shmchan__cpu_relax();
        }
    } while (shmchan__now_ns() < end);
    return began;
}

/* Wait until seq > after_seq (*s): spin first unless spun (began: when
 * that spin began, 0 if there was none), then sleep. */
static int
wait_newer(shmchan_latest *ch, uint64_t after_seq, int64_t timeout_ms, bool spun,
           uint64_t began, uint64_t *s)
{
    if (newer(ch, after_seq, s)) {
        return SHMCHAN_OK;
    }
    if (timeout_ms == 0) {
        return SHMCHAN_EAGAIN;
    }
    uint64_t deadline = shmchan__deadline(timeout_ms);
    if (!spun) {
        began = spin_for_next(ch, after_seq);
    }
    bool slept = false;
    while (!newer(ch, after_seq, s)) {
        if (shmchan__region_broken(&ch->r)) {
            return SHMCHAN_ETRUNCATED;
        }
        int rc = sleep_once(ch, after_seq, deadline);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        slept = true;
    }
    if (slept && began != 0) {
        shmchan__spin_learn(&ch->r, shmchan__now_ns() - began);
    }
    return SHMCHAN_OK;
}

int
shmchan_latest_wait(shmchan_latest *ch, uint64_t after_seq, int64_t timeout_ms,
                    uint64_t *seq_out)
{
    if (ch == NULL) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&ch->r)) {
        return SHMCHAN_EFORKED;
    }
    uint64_t s;
    int rc = wait_newer(ch, after_seq, timeout_ms, false, 0, &s);
    if (rc == SHMCHAN_OK && seq_out != NULL) {
        *seq_out = s;
    }
    return rc;
}

/*
 * The common case of read_next: message after_seq + 1 is the newest. Copy it
 * straight from its buffer (usually already in cache from the spin), and
 * confirm from the next buffer's tag, never from seq: a reader that keeps up
 * then moves one buffer's lines per message and nothing else (docs/design.md,
 * "Cache lines per message"). OK or EAGAIN (take the general path).
 */
static int
read_successor(shmchan_latest *ch, uint64_t after_seq, void *buf, size_t cap, size_t *len_out)
{
    uint64_t s = after_seq + 1;
    shmchan__latest_buf *b = buf_of(ch, s);
    uint64_t tag = shmchan__load(&b->tag, SHMCHAN__ACQUIRE);
    uint64_t len = shmchan__load(&b->len, SHMCHAN__RELAXED);
    /* len comes from shared memory: bound it by the buffer's size too, not
     * only by the caller's (a lying writer must not move us past the buffer). */
    if (tag != 2 * s || len > cap || len > ch->r.geom.max_msg) {
        return SHMCHAN_EAGAIN;
    }
    seqlock_copy(buf, payload_of(b), (size_t)len);
    shmchan__fence(SHMCHAN__ACQUIRE);
    bool intact = shmchan__load(&b->tag, SHMCHAN__RELAXED) == tag;
    /* Newest: the next buffer's tag says s + 1 is not complete. That is the
     * line the next read_next spins on anyway, where seq's line would change
     * owner with every publish. And with s + 1 not complete, no writer can
     * have begun s + nbuf over our buffer (overwritten()). */
    bool newest = !successor_turned(ch, s);
    if (!intact || !newest || shmchan__region_broken(&ch->r)) {
        return SHMCHAN_EAGAIN;
    }
    *len_out = (size_t)len;
    shmchan__store(&ch->last_len, len, SHMCHAN__RELAXED);
    return SHMCHAN_OK;
}

int
shmchan_latest_read_next(shmchan_latest *ch, uint64_t after_seq, void *buf, size_t cap,
                         int64_t timeout_ms, size_t *len_out, uint64_t *seq_out)
{
    if (ch == NULL || (buf == NULL && cap != 0)) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&ch->r)) {
        return SHMCHAN_EFORKED;
    }
    /* Look at the successor's tag, never at seq, while messages come: the
     * tag is on the line the message arrives on. It has not turned: nothing
     * newer is complete (a later message would have turned it, see
     * successor_turned), so a poll is answered without seq's line, which
     * every publish writes. seq is read only on the way to sleep. */
    uint64_t s, began = 0;
    size_t len = 0;
    bool spun = false, got = false;
    if (successor_turned(ch, after_seq)) {
        got = read_successor(ch, after_seq, buf, cap, &len) == SHMCHAN_OK;
    } else if (timeout_ms == 0) {
        look_ahead(ch, after_seq);
        return shmchan__region_broken(&ch->r) ? SHMCHAN_ETRUNCATED : SHMCHAN_EAGAIN;
    } else {
        began = spin_for_next(ch, after_seq);
        spun = true;
        got = read_successor(ch, after_seq, buf, cap, &len) == SHMCHAN_OK;
    }
    if (!got) {
        int rc = wait_newer(ch, after_seq, timeout_ms, spun, began, &s);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        got = read_successor(ch, after_seq, buf, cap, &len) == SHMCHAN_OK;
    }
    if (got) {
        if (len_out != NULL) {
            *len_out = len;
        }
        if (seq_out != NULL) {
            *seq_out = after_seq + 1;
        }
        return SHMCHAN_OK;
    }
    return shmchan_latest_read(ch, buf, cap, len_out, seq_out);
}

/* ------------------------------------------------------ readiness handle */

static int
latest_arm_now(shmchan_latest *ch, shmchan__notifier *nf, uint64_t after_seq)
{
    bool rdonly = (ch->r.flags & SHMCHAN_RDONLY) != 0;
    shmchan__nfsleep sl = {ch->r.asym, rdonly ? NULL : &ch->ctl->fenced,
                           rdonly ? NULL : &ch->fenced_in};
    latest_news n = {ch, after_seq};
    (void)shmchan__notifier_arm(notify_view(ch), nf, &sl, latest_has_news, &n);
    return SHMCHAN_OK;
}

int
shmchan_latest_notify(shmchan_latest *ch, shmchan_os_handle *h_out)
{
    if (ch == NULL || h_out == NULL) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&ch->r)) {
        return SHMCHAN_EFORKED;
    }
    if ((ch->r.flags & SHMCHAN_RDONLY) && !shmchan__side_present(&ch->side)) {
        return SHMCHAN_ERDONLY; /* no side object: such a reader can only poll */
    }
    shmchan__notifier *nf = atomic_load(&ch->nf);
    if (nf == NULL) {
        int rc = shmchan__notifier_open(notify_view(ch), &nf);
        if (rc != SHMCHAN_OK) {
            return rc;
        }
        shmchan__notifier *none = NULL;
        if (!atomic_compare_exchange_strong(&ch->nf, &none, nf)) {
            shmchan__notifier_close(notify_view(ch), nf); /* another thread was first */
            nf = none;
        } else {
            (void)latest_arm_now(ch, nf, 0);
        }
    }
    *h_out = (shmchan_os_handle)shmchan__nf_handle(nf->os);
    return SHMCHAN_OK;
}

int
shmchan_latest_arm(shmchan_latest *ch, uint64_t after_seq)
{
    if (ch == NULL) {
        return SHMCHAN_EINVAL;
    }
    if (shmchan__region_forked(&ch->r)) {
        return SHMCHAN_EFORKED;
    }
    shmchan__notifier *nf = atomic_load(&ch->nf);
    if (nf == NULL) {
        return SHMCHAN_ESTATE;
    }
    return latest_arm_now(ch, nf, after_seq);
}
