/* Latest-value channels over core NATS: at most once, the newest wins.
 *
 * Export: one thread (the export loop, below) waits on the readiness handles
 * of every exported channel and publishes each new value with its source,
 * epoch and sequence in a small envelope.
 * Import: a synchronous subscription on the core connection, whose socket the
 * same loop reads (libnats's event-loop mode): right after a read the loop
 * takes the subscription's messages and publishes a value locally only if it
 * is newer, per source, than the last one it published (a restarted source
 * channel has a newer epoch, its creation time). Core NATS queues (mode=core)
 * share the export loop and the import path in this file; they travel in
 * batches (docs/bridge.md, "Names"). */
#define _GNU_SOURCE
#include "bridge.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define SOURCES_MAX 64

typedef struct src_state {
    char src[BR_HOST_MAX + SHMCHAN_NAME_MAX + 2];
    uint64_t epoch, seq;
} src_state;

typedef struct latest_state {
    shmchan_latest *ch;
    shmchan_queue *q;
    natsSubscription *sub;
    uint64_t epoch;
    void *buf;          /* import: unused; export: the envelope prefix, then the payload */
    size_t cap;         /* the local channel's max_msg */
    size_t bufcap;      /* bytes allocated at buf */
    size_t env;         /* export: length of the envelope prefix in buf */
    int nsrc;
    src_state src[SOURCES_MAX];
    /* import into a full block-policy queue: the message being delivered,
     * kept (with the rest of the subscription's messages) until there is room */
    natsMsg *held;
    br_hdr held_h;
    size_t held_pos;   /* the next record's offset (or the payload's) in held */
    uint32_t held_left; /* records of held still to deliver */
    /* export, run by the export loop */
    bool opened, active, said, said_notify;
    int fd;           /* the channel's readiness handle (owned by the channel handle) */
    double retry_at;  /* not active: when to try again */
    size_t limit;     /* queue export: the batch limit last derived from max_payload */
    uint64_t last;    /* latest-value export: the newest sequence seen */
} latest_state;

/* Whether a message of len bytes fits the server's max_payload; logs and counts if not. */
bool br_check_payload(br_link *l, size_t len, uint64_t seq)
{
    int64_t maxp = natsConnection_GetMaxPayload(l->nc);
    if (maxp <= 0 || (int64_t)len + 512 <= maxp) /* 512: room for our headers */
        return true;
    atomic_fetch_add(&l->c.oversize, 1);
    br_log("export %s seq %llu: message of %zu bytes is larger than the server's max_payload of "
           "%lld bytes (less 512 for headers): refused, not sent",
           l->channel, (unsigned long long)seq, len, (long long)maxp);
    return false;
}

static int open_local(br_link *l, latest_state *st, bool create)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    int rc;
    if (l->kind == BR_LATEST) {
        o.flags = create ? SHMCHAN_CREATE : 0;
        rc = shmchan_latest_open(l->channel, &o, &st->ch);
    } else {
        o.flags = l->dir == BR_EXPORT ? SHMCHAN_SUBSCRIBE : SHMCHAN_CREATE;
        rc = shmchan_queue_open(l->channel, &o, &st->q);
    }
    if (rc != SHMCHAN_OK)
        return rc;
    shmchan_info info = {.struct_size = sizeof info};
    rc = shmchan_info_get(l->channel, 0, &info);
    st->epoch = rc == SHMCHAN_OK ? (uint64_t)info.created_unix_ns : 0;
    st->cap = l->kind == BR_LATEST ? shmchan_latest_max_msg(st->ch) : shmchan_queue_max_msg(st->q);
    st->bufcap = st->cap + BR_ENV_MAX + BR_BATCH_REC;
    st->buf = malloc(st->bufcap);
    if (!st->buf)
        return SHMCHAN_ENOMEM;
    st->env = br_env_prefix(st->buf, l->ctx->cfg->host, l->channel, st->epoch);
    return SHMCHAN_OK;
}

static void el_flush(void);

/* Publish the message of len bytes that sits after the envelope prefix in st->buf. */
static void publish(br_link *l, latest_state *st, size_t len, uint64_t seq)
{
    if (!br_check_payload(l, len, seq))
        return;
    br_env_seq(st->buf, st->env, seq);
    natsStatus s = natsConnection_Publish(l->nc, l->subject, st->buf, (int)(st->env + len));
    el_flush(); /* write it now, in this thread */
    if (s == NATS_OK) {
        atomic_fetch_add(&l->c.msgs, 1);
        atomic_fetch_add(&l->c.nats_msgs, 1);
        atomic_fetch_add(&l->c.bytes, len);
    } else {
        atomic_fetch_add(&l->c.errors, 1);
    }
}

/* Room for one batch: the server's max_payload (known once connected; it may
 * differ after a reconnect to another server), at least one local message. */
static bool batch_room(br_link *l, latest_state *st, size_t *limit)
{
    int64_t maxp = natsConnection_GetMaxPayload(l->nc);
    size_t one = st->cap + BR_ENV_MAX + BR_BATCH_REC;
    *limit = maxp > 512 ? (size_t)maxp - 512 : one; /* 512: as br_check_payload() */
    size_t want = *limit > one ? *limit : one;
    if (want <= st->bufcap)
        return true;
    void *p = realloc(st->buf, want);
    if (!p)
        return false;
    st->buf = p; /* the prefix moved with it */
    st->bufcap = want;
    return true;
}

/* Take what the local queue holds, up to one NATS message, without waiting.
 * Returns the batch's length (0: none) and sets *rc to the first receive's
 * result when nothing was taken (SHMCHAN_OK: a first message larger than
 * max_payload was taken, refused and counted alone). */
static size_t take_batch(br_link *l, latest_state *st, size_t limit, uint32_t *count, int *rc)
{
    unsigned char *buf = st->buf;
    size_t pos = st->env;
    *count = 0;
    *rc = SHMCHAN_OK;
    for (;;) {
        size_t end = *count == 0 ? st->bufcap : limit;
        if (pos + BR_BATCH_REC >= end)
            break;
        size_t len;
        shmchan_msg info;
        int r = shmchan_queue_recv(st->q, buf + pos + BR_BATCH_REC, end - pos - BR_BATCH_REC,
                                   SHMCHAN_NO_WAIT, &len, &info);
        if (r != SHMCHAN_OK) {
            if (*count == 0)
                *rc = r == SHMCHAN_EMSGSIZE ? SHMCHAN_EAGAIN : r; /* never the first */
            break; /* EMSGSIZE: it stays for the next batch */
        }
        if (info.lost)
            atomic_fetch_add(&l->c.lost, info.lost);
        if (*count == 0 && !br_check_payload(l, len, info.seq))
            return 0;
        br_batch_record(buf + pos, info.seq, (uint32_t)len);
        pos += BR_BATCH_REC + len;
        ++*count;
    }
    return *count ? pos : 0;
}

/* Rounds of one export served per readiness report before the loop turns to
 * the others (the handle is then left ready, so epoll reports it again). */
#define SERVE_ROUNDS 64

/* A latest-value export: publish each value newer than the last one seen
 * (values published faster than this are skipped, as for any reader), then
 * re-arm (arm: false while the loop spins). 1: published something, 0:
 * nothing (or more to do), <0: a receive error (the loop rests it). */
static int serve_latest(br_link *l, latest_state *st, bool arm)
{
    if (!arm && shmchan_latest_seq(st->ch) <= st->last)
        return 0; /* the spin's look: one load */
    for (int i = 0; i < SERVE_ROUNDS; i++) {
        size_t len;
        uint64_t seq;
        int rc = shmchan_latest_read_next(st->ch, st->last, (char *)st->buf + st->env, st->cap,
                                          SHMCHAN_NO_WAIT, &len, &seq);
        if (rc == SHMCHAN_EAGAIN)
            return !arm ? i > 0 : shmchan_latest_arm(st->ch, st->last) == SHMCHAN_OK ? i > 0 : -1;
        if (rc != SHMCHAN_OK)
            return -1;
        st->last = seq;
        publish(l, st, len, seq);
    }
    return 1; /* not armed: its handle stays ready */
}

/* A queue over core NATS: at most once, in order per source. What the local
 * queue holds goes out as one batch per NATS message (one write, one server
 * delivery, one wake of the importer's readers), so small messages do not each
 * pay the network's per-message cost; a lone message goes out at once. */
static int serve_queue(br_link *l, latest_state *st, bool arm)
{
    for (int i = 0; i < SERVE_ROUNDS; i++) {
        size_t limit = st->limit; /* the spin's looks take no libnats lock */
        uint32_t count;
        int rc;
        if ((arm || limit == 0) && !batch_room(l, st, &limit))
            return -1;
        st->limit = limit;
        size_t len = take_batch(l, st, limit, &count, &rc);
        if (len == 0) {
            if (rc == SHMCHAN_OK) /* one refused as too large: look again */
                continue;
            if (rc == SHMCHAN_EAGAIN)
                return !arm ? i > 0 : shmchan_queue_arm(st->q) == SHMCHAN_OK ? i > 0 : -1;
            return -1;
        }
        br_batch_count(st->buf, st->env, count);
        natsStatus s = natsConnection_Publish(l->nc, l->subject, st->buf, (int)len);
        el_flush(); /* write it now, in this thread */
        if (s == NATS_OK) {
            atomic_fetch_add(&l->c.msgs, count);
            atomic_fetch_add(&l->c.nats_msgs, 1);
            atomic_fetch_add(&l->c.bytes, len - st->env - (size_t)count * BR_BATCH_REC);
        } else {
            atomic_fetch_add(&l->c.errors, 1); /* at most once: the batch is gone */
        }
    }
    return 1;
}

/* ------------------------------------------------------------ export loop
 *
 * One thread waits, with epoll, on the readiness handle of every exported
 * latest-value channel and core-NATS queue, on the stop handle and on the
 * core connection's socket: an idle bridge sleeps in one epoll_wait with no
 * timeout. A ready export is served without waiting (SHMCHAN_NO_WAIT) and
 * re-armed once it has nothing more (level semantics at arming: nothing
 * published meanwhile is missed). Links whose channel does not exist yet, or
 * whose receive failed, rest: the loop retries them after a delay. Publishing
 * never blocks: libnats appends to its buffer (or its reconnect buffer) and
 * the loop writes it to the socket at once, in this thread.
 *
 * The core connection runs in libnats's event-loop mode: libnats has no
 * reader thread for it; this loop reads the socket
 * (natsConnection_ProcessReadEvent) and then takes the messages of the core
 * imports' synchronous subscriptions (natsSubscription_NextMsg with no wait),
 * so a message goes from the socket to the local channel in this one thread,
 * with no hand-off between libnats's reader and delivery threads. */

#define OPEN_RETRY_S 1.0
#define REST_S (BR_POLL_MS / 1000.0)
/* An import held by a full local queue looks again after HELD_RETRY_MS;
 * while its looks find no room the wait doubles up to HELD_RETRY_MAX_MS (a
 * queue whose reader is gone costs 16 wake-ups a second, not 1000), and any
 * look that delivers something brings it back to HELD_RETRY_MS. */
#define HELD_RETRY_MS 1
#define HELD_RETRY_MAX_MS 64

static struct {
    pthread_t thread;
    bool started;
    int ep;
    int quit_fd; /* readable: the loop returns (after the stop's drain and flush) */
    br_ctx *ctx;
    int n;
    br_link *links[BR_LINKS_MAX];
    int nimports;
    br_link *imports[BR_LINKS_MAX];
    int nheld;   /* imports holding a message for a full local queue */
    int held_ms; /* the loop's timeout while nheld > 0 */
} g_loop = {.ep = -1, .quit_fd = -1, .held_ms = HELD_RETRY_MS};

/* The core connection's socket in the loop's epoll set. libnats calls the
 * four callbacks below with its connection lock held, from the loop thread
 * (a read or write that failed, a publish, a reply to the server's PING),
 * from its reconnect thread (attach after a reconnect, the resent
 * subscriptions), from its timer thread (our PINGs) and from the main thread
 * (start, subscribe, close). They touch only this state, under a lock that is
 * never held while calling libnats (so no lock order with libnats's), and
 * epoll_ctl, which any thread may call on a set another thread waits on. */
static char g_quit_tag; /* epoll tag of quit_fd; the stop handle's is NULL */
static struct {
    pthread_mutex_t mu;
    int fd;            /* the socket; -1 while none is attached */
    bool out;          /* EPOLLOUT is in the set */
    atomic_bool write; /* libnats has bytes buffered for the socket */
} g_el = {PTHREAD_MUTEX_INITIALIZER, -1, false, false};
static _Thread_local bool t_loop; /* this thread is the loop */

/* Set the socket's events (g_el.mu held). */
static natsStatus el_set(bool out)
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = &g_el};
    if (g_el.fd < 0 || out == g_el.out)
        return NATS_OK;
    if (epoll_ctl(g_loop.ep, EPOLL_CTL_MOD, g_el.fd, &ev) != 0)
        return NATS_SYS_ERROR;
    g_el.out = out;
    return NATS_OK;
}

static natsStatus el_attach(void **user, void *loop, natsConnection *nc, natsSock fd)
{
    (void)loop;
    (void)nc;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &g_el};
    natsStatus s = NATS_OK;
    pthread_mutex_lock(&g_el.mu);
    if (g_el.fd >= 0 && g_el.fd != fd) /* libnats removed it before; in case it did not */
        epoll_ctl(g_loop.ep, EPOLL_CTL_DEL, g_el.fd, NULL);
    if (epoll_ctl(g_loop.ep, EPOLL_CTL_ADD, fd, &ev) != 0 &&
        (errno != EEXIST || epoll_ctl(g_loop.ep, EPOLL_CTL_MOD, fd, &ev) != 0))
        s = NATS_SYS_ERROR;
    g_el.fd = s == NATS_OK ? fd : -1;
    g_el.out = false;
    atomic_store(&g_el.write, false);
    pthread_mutex_unlock(&g_el.mu);
    *user = &g_el;
    return s;
}

/* libnats asks to start reading only through attach; this stops it (before a
 * reconnect or the close, which then close the socket). */
static natsStatus el_read(void *user, bool add)
{
    (void)user;
    if (add)
        return NATS_OK;
    pthread_mutex_lock(&g_el.mu);
    if (g_el.fd >= 0)
        epoll_ctl(g_loop.ep, EPOLL_CTL_DEL, g_el.fd, NULL);
    g_el.fd = -1;
    g_el.out = false;
    atomic_store(&g_el.write, false);
    pthread_mutex_unlock(&g_el.mu);
    return NATS_OK;
}

/* libnats has bytes to write (add) or wrote them all. From the loop thread
 * an add costs no system call: the loop writes at once after its publish or
 * its read (el_flush); from another thread it asks epoll for EPOLLOUT, which
 * wakes the loop. */
static natsStatus el_write(void *user, bool add)
{
    (void)user;
    pthread_mutex_lock(&g_el.mu);
    atomic_store(&g_el.write, add);
    natsStatus s = el_set(add && !t_loop ? true : add ? g_el.out : false);
    pthread_mutex_unlock(&g_el.mu);
    return s;
}

static natsStatus el_detach(void *user)
{
    return el_read(user, false);
}

natsStatus br_loop_options(natsOptions *o)
{
    return natsOptions_SetEventLoop(o, &g_loop, el_attach, el_read, el_write, el_detach);
}

/* Write what libnats buffered, now, in the loop thread; a socket that takes
 * only part of it gets EPOLLOUT for the rest. */
static void el_flush(void)
{
    natsConnection *nc = g_loop.ctx ? g_loop.ctx->core_nc : NULL;
    if (!nc || !atomic_load(&g_el.write))
        return;
    natsConnection_ProcessWriteEvent(nc);
    if (atomic_load(&g_el.write)) {
        pthread_mutex_lock(&g_el.mu);
        if (atomic_load(&g_el.write))
            el_set(true);
        pthread_mutex_unlock(&g_el.mu);
    }
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int serve(br_link *l, latest_state *st, bool arm)
{
    return l->kind == BR_LATEST ? serve_latest(l, st, arm) : serve_queue(l, st, arm);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spinning before sleeping: a wake-up through epoll costs the writer a
 * datagram and this thread a scheduling round trip (tens of microseconds on
 * a VM that halts idle vCPUs); when messages come closer together than that,
 * looking again for a while is cheaper. The spin adapts to the gaps the loop
 * sees: after work that came within SPIN_MAX_NS of the previous work (the
 * gap counts the spin and the sleep) it is twice that gap (at most
 * SPIN_MAX_NS); after a longer gap it stops at once, so a message every few
 * hundred microseconds (a round trip) makes no thread spin. It starts at
 * nothing, so an idle bridge never spins, and a loaded machine, whose gaps
 * are long, does not either. */
#define SPIN_MAX_NS 160000 /* the library's largest adaptive spin (8 x 20 us) */

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void rest(br_link *l, latest_state *st, double now);
static void drain_imports(bool retry);

#define SPIN_WORK (-2)

/* Look at every active export without arming, for up to spin_ns; with core
 * imports, also at the epoll set (no wait), so a spin does not hold an
 * arriving message back. SPIN_WORK: an export had work (served); > 0: that
 * many events in evs; 0: nothing. */
static int spin(int64_t spin_ns, struct epoll_event *evs, int nevs)
{
    int64_t end = mono_ns() + spin_ns;
    do {
        bool any = false;
        for (int i = 0; i < g_loop.n; i++) {
            br_link *l = g_loop.links[i];
            latest_state *st = l->state;
            if (!st->active)
                continue;
            int r = serve(l, st, false);
            if (r < 0)
                rest(l, st, mono_s());
            any |= r > 0;
        }
        if (any)
            return SPIN_WORK;
        if (g_loop.nimports > 0) {
            int k = epoll_wait(g_loop.ep, evs, nevs, 0);
            if (k > 0)
                return k;
        }
        cpu_relax();
    } while (mono_ns() < end && !*g_loop.ctx->stop);
    return 0;
}

/* Open the channel if needed, get its readiness handle and watch it. */
static void activate(br_link *l, latest_state *st, double now)
{
    if (!st->opened) {
        int rc = open_local(l, st, false);
        if (rc != SHMCHAN_OK) {
            if (!st->said)
                br_log("export: cannot open channel %s: %s (%s); retrying every second",
                       l->channel, shmchan_strerror(rc), shmchan_errname(rc));
            st->said = true;
            st->retry_at = now + OPEN_RETRY_S;
            return;
        }
        st->opened = true;
        br_log("export: channel %s is open", l->channel); /* from here on it is read */
        if (l->kind == BR_LATEST)
            st->last = shmchan_latest_seq(st->ch); /* start with what comes next */
        else
            st->env = br_batch_prefix(st->buf, l->ctx->cfg->host, l->channel, st->epoch);
    }
    int rc = l->kind == BR_LATEST ? shmchan_latest_notify(st->ch, &st->fd)
                                  : shmchan_queue_notify(st->q, &st->fd);
    if (rc == SHMCHAN_OK && l->kind == BR_LATEST)
        rc = shmchan_latest_arm(st->ch, st->last);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l};
    if (rc != SHMCHAN_OK || epoll_ctl(g_loop.ep, EPOLL_CTL_ADD, st->fd, &ev) != 0) {
        if (!st->said_notify)
            br_log("export %s: cannot wait on the channel's readiness handle: %s; retrying",
                   l->channel, rc != SHMCHAN_OK ? shmchan_strerror(rc) : strerror(errno));
        st->said_notify = true;
        atomic_fetch_add(&l->c.errors, 1);
        st->retry_at = now + OPEN_RETRY_S;
        return;
    }
    st->active = true; /* armed: ready at once if anything is waiting */
}

/* A failed receive: stop watching for a while (no busy loop on a handle that
 * an error keeps ready), then look again. */
static void rest(br_link *l, latest_state *st, double now)
{
    atomic_fetch_add(&l->c.errors, 1);
    epoll_ctl(g_loop.ep, EPOLL_CTL_DEL, st->fd, NULL);
    st->active = false;
    st->retry_at = now + REST_S;
}

/* The epoll timeout: until the first resting link's retry (-1: none). */
static int wake_up_links(double now)
{
    double next = -1;
    for (int i = 0; i < g_loop.n; i++) {
        br_link *l = g_loop.links[i];
        latest_state *st = l->state;
        if (st->active)
            continue;
        if (now >= st->retry_at)
            activate(l, st, now);
        if (!st->active && (next < 0 || st->retry_at < next))
            next = st->retry_at;
    }
    return next < 0 ? -1 : (int)((next - now) * 1000) + 1;
}

/* Stopping: no new export messages (their handles and the stop handle, which
 * stays readable, leave the set); the socket and the imports go on until the
 * main thread has drained the subscriptions and flushed, then quit_fd. */
static void quiesce(void)
{
    epoll_ctl(g_loop.ep, EPOLL_CTL_DEL, g_loop.ctx->stop_fd, NULL);
    for (int i = 0; i < g_loop.n; i++) {
        latest_state *st = g_loop.links[i]->state;
        if (st->active)
            epoll_ctl(g_loop.ep, EPOLL_CTL_DEL, st->fd, NULL);
        st->active = false;
    }
}

static void *loop_main(void *arg)
{
    br_ctx *ctx = arg;
    struct epoll_event evs[BR_LINKS_MAX + 3];
    int nevs = (int)(sizeof evs / sizeof evs[0]);
    int64_t spin_ns = 0;
    bool may_spin = sysconf(_SC_NPROCESSORS_ONLN) > 1;
    bool stopping = false, after_work = false;
    /* The gap is measured from the end of the last export work, the spin
     * after it included: measured from the start of the sleep, a spin of S
     * made any gap below S + SPIN_MAX_NS look short, and it never died out
     * (one message per round trip kept both bridges of a round trip
     * benchmark spinning most of the time on 2 vCPUs). Turns that only
     * carried the socket (imports, writes) neither end the gap nor start a
     * spin: counted, an import woke the loop between two exports of a round
     * trip, the echo's reply to it came some 20 us later, that short gap
     * started a spin, and both bridges spun on every round trip. */
    int64_t last_work = mono_ns();
    t_loop = true;
    for (;;) {
        int timeout = stopping ? -1 : wake_up_links(mono_s());
        if (g_loop.nheld > 0 && (timeout < 0 || timeout > g_loop.held_ms))
            timeout = g_loop.held_ms;
        int k = 0;
        if (after_work && spin_ns > 0 && !stopping) {
            k = spin(spin_ns, evs, nevs);
            if (k == SPIN_WORK) {
                el_flush();
                last_work = mono_ns();
                continue; /* the gap was below the spin: keep it */
            }
        }
        after_work = false;
        if (k <= 0)
            k = epoll_wait(g_loop.ep, evs, nevs, timeout);
        int64_t gap = mono_ns() - last_work;
        bool work = false, read = false;
        for (int i = 0; i < k; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &g_quit_tag)
                return NULL;
            if (!tag) { /* the stop handle */
                stopping = true;
                quiesce();
                continue;
            }
            if (tag == &g_el) {
                if (evs[i].events & EPOLLOUT)
                    natsConnection_ProcessWriteEvent(ctx->core_nc);
                if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                    natsConnection_ProcessReadEvent(ctx->core_nc);
                    read = true;
                }
                continue;
            }
            br_link *l = tag;
            latest_state *st = l->state;
            if (stopping || !st->active)
                continue;
            int r = serve(l, st, true);
            if (r < 0)
                rest(l, st, mono_s());
            work |= r > 0;
        }
        if (read || g_loop.nheld > 0)
            drain_imports(!read);
        el_flush(); /* a reply to the server's PING, a read's error */
        if (!work)
            continue;
        spin_ns = may_spin && gap < SPIN_MAX_NS ? 2 * gap : 0;
        if (spin_ns > SPIN_MAX_NS)
            spin_ns = SPIN_MAX_NS;
        if (spin_ns < 1000) /* below a microsecond: not worth a look */
            spin_ns = 0;
        last_work = mono_ns();
        after_work = true;
    }
}

int br_loop_init(void)
{
    g_loop.ep = epoll_create1(EPOLL_CLOEXEC);
    g_loop.quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &g_quit_tag};
    if (g_loop.ep < 0 || g_loop.quit_fd < 0 ||
        epoll_ctl(g_loop.ep, EPOLL_CTL_ADD, g_loop.quit_fd, &ev) != 0)
        return -1;
    return 0;
}

int br_export_loop_start(br_ctx *ctx)
{
    g_loop.ctx = ctx;
    if (g_loop.n == 0 && !ctx->core_nc)
        return 0; /* nothing to watch: no thread */
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (g_loop.ep < 0 || epoll_ctl(g_loop.ep, EPOLL_CTL_ADD, ctx->stop_fd, &ev) != 0)
        return -1;
    if (pthread_create(&g_loop.thread, NULL, loop_main, ctx) != 0)
        return -1;
    g_loop.started = true;
    return 0;
}

/* The core imports' subscriptions stop: what the server sent before it saw
 * the unsubscribe still reaches the local channels (the loop delivers it). */
void br_core_drain(void)
{
    if (!g_loop.started)
        return; /* nothing would take their messages */
    for (int i = 0; i < g_loop.nimports; i++) {
        latest_state *st = g_loop.imports[i]->state;
        if (st->sub && natsSubscription_Drain(st->sub) == NATS_OK)
            natsSubscription_WaitForDrainCompletion(st->sub, 5000);
    }
}

void br_export_loop_stop(br_ctx *ctx)
{
    (void)ctx;
    uint64_t one = 1;
    if (g_loop.started && write(g_loop.quit_fd, &one, sizeof one) == sizeof one)
        pthread_join(g_loop.thread, NULL);
    g_loop.started = false;
}

/* After the core connection is destroyed (its detach uses the set). */
void br_loop_close(void)
{
    if (g_loop.ep >= 0)
        close(g_loop.ep);
    if (g_loop.quit_fd >= 0)
        close(g_loop.quit_fd);
    g_loop.ep = g_loop.quit_fd = -1;
}

/* Whether (epoch, seq) from this source is newer than the last one published. */
static bool newer(latest_state *st, const br_hdr *h)
{
    src_state *s = NULL;
    for (int i = 0; i < st->nsrc; i++)
        if (strcmp(st->src[i].src, h->src) == 0)
            s = &st->src[i];
    if (!s) {
        s = &st->src[st->nsrc < SOURCES_MAX ? st->nsrc++ : SOURCES_MAX - 1];
        snprintf(s->src, sizeof s->src, "%s", h->src);
        s->epoch = h->epoch;
        s->seq = h->seq;
        return true;
    }
    if (h->epoch < s->epoch || (h->epoch == s->epoch && h->seq <= s->seq))
        return false;
    s->epoch = h->epoch;
    s->seq = h->seq;
    return true;
}

#define SEND_CHUNK 64 /* messages handed to one shmchan_queue_send_batch() */

#define BUSY_TRIES 8 /* sends that find the queue busy before the import waits */

/* Send msgs[0..n) in order without waiting, waking the local readers once per
 * call. Returns how many went; fewer than n when the queue is full (a
 * block-policy queue) or busy (SHMCHAN_EBUSY: looked at again at once, a few
 * times; SHMCHAN_ETIMEDOUT: a send that may not wait still waits up to 10 ms
 * for the queue's lock, and a holder kept it longer): the caller keeps the
 * rest for a retry. Another error, or a full or busy queue while stopping,
 * drops the rest (at most once), counted. */
static size_t send_now(br_link *l, latest_state *st, const shmchan_msg *msgs, size_t n)
{
    size_t done = 0;
    int busy = 0;
    while (done < n) {
        size_t sent = 0;
        int rc = shmchan_queue_send_batch(st->q, msgs + done, n - done, SHMCHAN_NO_WAIT, &sent);
        for (size_t i = done; i < done + sent; i++)
            atomic_fetch_add(&l->c.bytes, msgs[i].len);
        atomic_fetch_add(&l->c.msgs, sent);
        done += sent;
        if (rc == SHMCHAN_OK && sent > 0)
            continue; /* the rest did not fit: the next call says whether it is full */
        if (rc == SHMCHAN_EBUSY && ++busy < BUSY_TRIES) {
            cpu_relax();
            continue;
        }
        if ((rc == SHMCHAN_OK || rc == SHMCHAN_EAGAIN || rc == SHMCHAN_EINTR ||
             rc == SHMCHAN_EBUSY || rc == SHMCHAN_ETIMEDOUT) &&
            !*l->ctx->stop)
            return done;
        atomic_fetch_add(&l->c.errors, n - done);
        return n;
    }
    return done;
}

/* One message larger than the local channel's max_msg: dropped, counted. */
static void too_large(br_link *l, latest_state *st, const br_hdr *h, size_t len)
{
    if (atomic_fetch_add(&l->c.oversize, 1) == 0)
        br_log("import %s: message of %zu bytes from %s is larger than the channel's "
               "max_msg of %zu: dropped (logged once)", l->channel, len, h->src, st->cap);
}

/* The records of a batch from *pos on (*left of them) into a local queue, in
 * chunks that each wake its readers once. False: the queue is full; *pos and
 * *left say where to go on. */
static bool deliver_batch(br_link *l, latest_state *st, const br_hdr *h,
                          const unsigned char *raw, size_t *pos, uint32_t *left)
{
    shmchan_msg msgs[SEND_CHUNK];
    size_t at[SEND_CHUNK];   /* each message's record offset */
    uint32_t idx[SEND_CHUNK]; /* and its index among the *left records */
    while (*left > 0) {
        size_t n = 0, p = *pos;
        uint32_t taken = 0;
        while (taken < *left && n < SEND_CHUNK) {
            uint64_t seq;
            size_t len, start = p;
            const unsigned char *data = br_batch_next(raw, &p, &seq, &len);
            if (len > st->cap) {
                too_large(l, st, h, len);
                taken++;
                continue;
            }
            at[n] = start;
            idx[n] = taken++;
            msgs[n].data = data;
            msgs[n].len = len;
            n++;
        }
        size_t sent = send_now(l, st, msgs, n);
        if (sent < n) {
            *pos = at[sent];
            *left -= idx[sent];
            return false;
        }
        *pos = p;
        *left -= taken;
    }
    return true;
}

/* The newest value of a message (the last record of a batch) into a latest channel. */
static void deliver_latest(br_link *l, latest_state *st, const br_hdr *h, const void *data,
                           size_t len)
{
    if (len > st->cap) {
        too_large(l, st, h, len);
    } else if (!newer(st, h)) {
        atomic_fetch_add(&l->c.stale, 1);
    } else if (shmchan_latest_publish(st->ch, data, len, NULL) == SHMCHAN_OK) {
        atomic_fetch_add(&l->c.msgs, 1);
        atomic_fetch_add(&l->c.bytes, len);
    } else {
        atomic_fetch_add(&l->c.errors, 1);
    }
}

/* What is left of the held message into the local queue. True: all of it. */
static bool deliver_held(br_link *l, latest_state *st)
{
    const unsigned char *raw = (const unsigned char *)natsMsg_GetData(st->held);
    size_t total = (size_t)natsMsg_GetDataLength(st->held);
    if (memcmp(raw, BR_BATCH_MAGIC, 4) == 0)
        return deliver_batch(l, st, &st->held_h, raw, &st->held_pos, &st->held_left);
    shmchan_msg one = {.data = raw + st->held_pos, .len = total - st->held_pos};
    return send_now(l, st, &one, 1) == 1;
}

/* One NATS message, taken by the loop: one value (SCB1) or a batch of queue
 * messages (SCB2), either checked whole before anything of it is delivered.
 * False: a full local queue holds it back (st->held; the loop retries). */
static bool import_msg(br_link *l, latest_state *st, natsMsg *m)
{
    br_hdr h;
    const unsigned char *raw = (const unsigned char *)natsMsg_GetData(m);
    size_t total = (size_t)natsMsg_GetDataLength(m);
    uint32_t count = 1;
    atomic_fetch_add(&l->c.nats_msgs, 1);
    bool batch = total >= 4 && memcmp(raw, BR_BATCH_MAGIC, 4) == 0;
    size_t off = batch ? br_batch_parse(raw, total, &h, &count) : br_env_parse(raw, total, &h);
    if (off == 0) {
        if (atomic_fetch_add(&l->c.malformed, 1) == 0)
            br_log("import %s: message on %s without a valid shmchan envelope dropped (logged "
                   "once; see the malformed counter)", l->channel, natsMsg_GetSubject(m));
    } else if (!l->keep_own && strcmp(h.host, l->ctx->cfg->host) == 0) {
        atomic_fetch_add(&l->c.loops, count);
    } else if (l->kind == BR_QUEUE && (batch || total - off <= st->cap)) {
        st->held = m;
        st->held_h = h;
        st->held_pos = off;
        st->held_left = count;
        if (!deliver_held(l, st))
            return false;
        st->held = NULL;
    } else {
        size_t len = total - off;
        const void *data = raw + off;
        for (uint32_t i = 0; batch && i < count; i++) { /* the last record: the newest */
            uint64_t seq;
            data = br_batch_next(raw, &off, &seq, &len);
        }
        if (l->kind == BR_LATEST)
            deliver_latest(l, st, &h, data, len);
        else
            too_large(l, st, &h, len);
    }
    natsMsg_Destroy(m);
    return true;
}

/* Right after the loop read the socket (and while an import is held): each
 * core import's subscription gives what libnats parsed, in order, until it
 * has no more or a full local queue holds a message back. retry: a look that
 * no read caused (the held imports' timer): only such looks back off, so
 * reads that come faster than the local reader frees room do not stretch
 * the wait after the last of them. */
static void drain_imports(bool retry)
{
    bool was_held = g_loop.nheld > 0, moved = false;
    for (int i = 0; i < g_loop.nimports; i++) {
        br_link *l = g_loop.imports[i];
        latest_state *st = l->state;
        if (st->held) {
            uint64_t before = atomic_load(&l->c.msgs);
            bool done = deliver_held(l, st);
            moved |= atomic_load(&l->c.msgs) != before;
            if (!done)
                continue;
            natsMsg_Destroy(st->held);
            st->held = NULL;
            g_loop.nheld--;
        }
        for (;;) {
            int pending = 0;
            natsMsg *m = NULL;
            if (natsSubscription_GetPending(st->sub, &pending, NULL) != NATS_OK || pending <= 0)
                break;
            natsStatus s = natsSubscription_NextMsg(&m, st->sub, 0);
            if (s == NATS_SLOW_CONSUMER) /* reported once by on_error; go on */
                continue;
            if (s != NATS_OK)
                break;
            if (!import_msg(l, st, m)) {
                g_loop.nheld++;
                break;
            }
        }
    }
    if (!was_held || moved)
        g_loop.held_ms = HELD_RETRY_MS;
    else if (retry && g_loop.held_ms < HELD_RETRY_MAX_MS)
        g_loop.held_ms *= 2;
}

int br_latest_start(br_link *l)
{
    latest_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    l->state = st;
    if (l->dir == BR_EXPORT) { /* served by the export loop, which opens it */
        if (g_loop.n >= BR_LINKS_MAX)
            return -1;
        g_loop.links[g_loop.n++] = l;
        return 0;
    }
    int rc = open_local(l, st, true);
    if (rc != SHMCHAN_OK) {
        br_log("import %s: cannot open or create the channel: %s (%s)", l->channel,
               shmchan_strerror(rc), shmchan_errname(rc));
        return -1;
    }
    natsStatus s = natsConnection_SubscribeSync(&st->sub, l->nc, l->subject);
    if (s == NATS_OK) /* a slow local queue holds messages here, then drops (at most once) */
        s = natsSubscription_SetPendingLimits(st->sub, 65536, 256 * 1024 * 1024);
    if (s != NATS_OK) {
        br_log("import %s: cannot subscribe to %s: %s", l->channel, l->subject,
               natsStatus_GetText(s));
        return -1;
    }
    g_loop.imports[g_loop.nimports++] = l; /* taken by the loop after each read */
    return 0;
}

/* After br_export_loop_stop(): nothing else uses the link any more. */
void br_latest_stop(br_link *l)
{
    latest_state *st = l->state;
    if (!st)
        return;
    if (st->held) { /* a full local queue at the stop: dropped (at most once) */
        atomic_fetch_add(&l->c.errors, st->held_left);
        natsMsg_Destroy(st->held);
    }
    natsSubscription_Destroy(st->sub);
    shmchan_latest_close(st->ch);
    shmchan_queue_close(st->q);
    free(st->buf);
    free(st);
    l->state = NULL;
}
