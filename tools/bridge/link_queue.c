/* Queues over JetStream: at least once on the wire, exactly once into the
 * local queue.
 *
 * Export: each message is published with Nats-Msg-Id = host/channel.epoch.seq,
 * with a window of publishes in flight (below, "export"); a second subscriber
 * handle holds the oldest message the stream has not acknowledged, so a
 * block-policy queue keeps it, and holds writers back, until JetStream has it.
 * A restart replays the queue from its oldest held message, skipping up to the
 * restart point (state_dir) or else the last sequence the stream holds from
 * this source; the stream's duplicate window drops any other repeat. A full
 * stream (max_msgs, discard new) is retried with the message held
 * (on_full=block: local writers slow down) or counted and dropped
 * (on_full=report).
 *
 * Import: a durable pull consumer (shared by name between hosts for competing
 * workers) fetches batches; each message is sent into the local queue (waiting
 * while a block-policy queue is full: the consumer slows down), recorded in the
 * journal (dedupe.c), and only then acked. */
#define _GNU_SOURCE
#include "bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FETCH_BATCH 64
#define BACKOFF_MAX_MS 5000

/* One message of the export window (below). */
typedef struct pub_slot {
    uint64_t seq;
    size_t len, bytes_in; /* bytes_in: counted in flight_bytes */
    int state;            /* SLOT_* */
    bool dup, refused, seen;
    natsStatus err;
    jsErrCode ec;
    natsMsg *msg; /* failed or not yet published: ours to send (again) */
} pub_slot;

typedef struct queue_state {
    pthread_t thread;
    bool started;
    shmchan_queue *q; /* import: the target; export: the "ahead" reader */
    uint32_t policy;
    uint64_t epoch;
    void *buf;
    size_t cap;
    natsSubscription *sub;
    br_journal *journal;
    /* export */
    shmchan_queue *hold; /* its position is the restart point */
    shmchan_msg view;    /* hold's view, while held */
    bool held, said_fail;
    int fd;              /* ahead's readiness handle */
    int ack_fd;          /* eventfd: the ack handler has marked a slot */
    int state_fd;        /* state_dir file with the restart point */
    jsCtx *js;           /* this link's, with its ack handler */
    uint64_t skip, last_read, saved;
    size_t flight_bytes;
    unsigned head, count;
    pub_slot win[];      /* WINDOW_MSGS, exporters only */
} queue_state;

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int backoff(int *ms)
{
    int now = *ms;
    *ms = *ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *ms * 2;
    return now;
}

static int open_queue(br_link *l, queue_state *st)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    /* "ahead" reads what is in flight to JetStream; only "hold" consumes, so
     * that if the bridge dies, writers keep what JetStream has not acked. */
    o.flags = l->dir == BR_EXPORT ? (SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST | SHMCHAN_NOCONSUME)
                                  : SHMCHAN_CREATE;
    int rc = shmchan_queue_open(l->channel, &o, &st->q);
    if (rc == SHMCHAN_OK && l->dir == BR_EXPORT) { /* after "ahead": never before it */
        o.flags &= ~(uint32_t)SHMCHAN_NOCONSUME;
        rc = shmchan_queue_open(l->channel, &o, &st->hold);
        if (rc != SHMCHAN_OK) {
            shmchan_queue_close(st->q);
            st->q = NULL;
        }
    }
    if (rc != SHMCHAN_OK)
        return rc;
    shmchan_info info = {.struct_size = sizeof info};
    rc = shmchan_queue_info(st->q, &info);
    if (rc != SHMCHAN_OK)
        return rc;
    st->epoch = (uint64_t)info.created_unix_ns;
    st->policy = info.policy;
    st->cap = shmchan_queue_max_msg(st->q);
    st->buf = malloc(st->cap ? st->cap : 1);
    return st->buf ? SHMCHAN_OK : SHMCHAN_ENOMEM;
}

static bool open_wait(br_link *l, queue_state *st)
{
    bool said = false;
    while (!*l->ctx->stop) {
        int rc = open_queue(l, st);
        if (rc == SHMCHAN_OK)
            return true;
        if (!said)
            br_log("%s: cannot open queue %s: %s (%s); retrying every second",
                   l->dir == BR_EXPORT ? "export" : "import", l->channel, shmchan_strerror(rc),
                   shmchan_errname(rc));
        said = true;
        nap_ms(1000);
    }
    return false;
}

/* Create the stream if it does not exist. False: the server is not reachable (yet). */
static bool ensure_stream(br_link *l)
{
    jsStreamInfo *si = NULL;
    jsErrCode ec = 0;
    natsStatus s = js_GetStreamInfo(&si, l->ctx->js, l->stream, NULL, &ec);
    if (s == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return true;
    }
    if (s != NATS_NOT_FOUND && ec != JSStreamNotFoundErr)
        return false;
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[1] = {l->stream_subj};
    sc.Name = l->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Retention = l->workqueue ? js_WorkQueuePolicy : js_LimitsPolicy;
    sc.MaxMsgs = l->max_msgs ? l->max_msgs : -1;
    sc.Discard = js_DiscardNew;
    sc.Storage = js_FileStorage;
    sc.Duplicates = l->dup_window_ms * 1000000LL;
    if (l->replicas)
        sc.Replicas = l->replicas;
    s = js_AddStream(&si, l->ctx->js, &sc, NULL, &ec);
    if (s != NATS_OK) {
        br_log("export %s: cannot create stream %s: %s (JetStream error %d)", l->channel,
               l->stream, natsStatus_GetText(s), (int)ec);
        return false;
    }
    jsStreamInfo_Destroy(si);
    br_log("export %s: created stream %s for %s", l->channel, l->stream, l->stream_subj);
    return true;
}

/* The highest sequence the stream already holds from this channel (0: none). */
static uint64_t resume_point(br_link *l, queue_state *st)
{
    natsMsg *m = NULL;
    jsErrCode ec = 0;
    uint64_t seq = 0;
    if (js_GetLastMsg(&m, l->ctx->js, l->stream, l->subject, NULL, &ec) != NATS_OK)
        return 0;
    br_hdr h;
    char src[sizeof h.src];
    snprintf(src, sizeof src, "%s/%s", l->ctx->cfg->host, l->channel);
    if (br_hdr_parse(m, &h) == 0 && strcmp(h.src, src) == 0 && h.epoch == st->epoch)
        seq = h.seq;
    natsMsg_Destroy(m);
    return seq;
}

/* ---------------------------------------------------------------- export
 *
 * A window of publishes in flight. Two subscriber handles on the local queue:
 *
 * - "ahead" (st->q) receives messages (copies) and publishes each
 *   asynchronously, up to WINDOW_MSGS / WINDOW_BYTES unacknowledged at once;
 *   its readiness handle, the acks' eventfd and the stop handle are what the
 *   thread sleeps on.
 * - "hold" (st->hold) peeks the oldest message not yet settled (stored,
 *   reported as a duplicate, or dropped by on_full=report or as oversize) and
 *   releases only what is settled. Its position is the restart point: in a
 *   block-policy queue writers cannot overwrite it, so a crash loses nothing
 *   the stream does not have. It is opened after "ahead", so it never starts
 *   before it.
 *
 * The restart point never passes a failed publish: a failure stops the read
 * ahead, the window drains, and the failed messages are sent again (with
 * backoff) before anything new. Later messages of the window may be stored
 * before the failed one is (JetStream order then differs from the local order;
 * the importer still delivers each once). Because of such gaps, the restart
 * point is also written to state_dir (HOST_CHANNEL.export, epoch and sequence):
 * a restarted exporter skips up to it, not up to the last message the stream
 * holds, and sends the rest again (the stream's duplicate window drops what it
 * already has). Without that file (first start, no state_dir) it skips up to
 * the last message the stream holds from this source, as before. */

#define WINDOW_MSGS 256
/* Half of libnats's default 8 MiB reconnect buffer: a window published while
 * the connection is down still fits in it. */
#define WINDOW_BYTES (4u << 20)
#define PUB_WAIT_MS 5000 /* an ack not back by then is a failure (sent again) */

enum { SLOT_FLIGHT = 1, SLOT_DONE, SLOT_FAILED };

/* The windows, between their exporting threads and the ack handler; also
 * guards l->state of exporters against a late ack (br_queue_stop). */
static pthread_mutex_t g_win_mu = PTHREAD_MUTEX_INITIALIZER;

/* The ack handler runs on a libnats thread: it marks the message's slot. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    br_link *l = closure;
    br_hdr h;
    uint64_t seq = br_hdr_parse(msg, &h) == 0 ? h.seq : 0;
    bool keep = false;
    pthread_mutex_lock(&g_win_mu);
    queue_state *st = l->state; /* NULL once stopped */
    for (unsigned i = 0; st && i < st->count; i++) {
        pub_slot *s = &st->win[(st->head + i) % WINDOW_MSGS];
        if (s->seq != seq || s->state != SLOT_FLIGHT)
            continue;
        if (pae) {
            s->state = SLOT_FAILED;
            s->err = pae->Err;
            s->ec = pae->ErrCode;
            s->msg = msg; /* kept to be sent again */
            keep = true;
        } else {
            s->state = SLOT_DONE;
            s->dup = pa && pa->Duplicate;
        }
        break;
    }
    uint64_t one = 1;
    if (st && write(st->ack_fd, &one, sizeof one) < 0) { /* full counter: readable anyway */
    }
    pthread_mutex_unlock(&g_win_mu);
    if (!keep)
        natsMsg_Destroy(msg);
}

/* The restart point kept in state_dir: "EPOCH SEQ\n". */
static void state_open(br_link *l, queue_state *st)
{
    char path[1024];
    mkdir(l->ctx->cfg->state_dir, 0700);
    snprintf(path, sizeof path, "%s/%s_%s.export", l->ctx->cfg->state_dir, l->ctx->cfg->host,
             l->channel);
    st->state_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (st->state_fd < 0)
        br_log("export %s: cannot keep the restart point in %s: %s (a restart then skips "
               "only what the stream holds)", l->channel, path, strerror(errno));
}

static bool state_read(queue_state *st, uint64_t *seq)
{
    char buf[64] = {0};
    unsigned long long e, q;
    if (st->state_fd < 0 || pread(st->state_fd, buf, sizeof buf - 1, 0) <= 0)
        return false;
    if (sscanf(buf, "%llu %llu", &e, &q) != 2 || e != st->epoch)
        return false;
    *seq = q;
    return true;
}

static void state_write(queue_state *st, uint64_t seq)
{
    char buf[48];
    if (st->state_fd < 0 || seq == st->saved)
        return;
    int n = snprintf(buf, sizeof buf, "%020llu %020llu\n", (unsigned long long)st->epoch,
                     (unsigned long long)seq);
    if (pwrite(st->state_fd, buf, (size_t)n, 0) == n)
        st->saved = seq;
}

/* Every message up to this sequence is settled. */
static uint64_t restart_point(queue_state *st)
{
    return st->count ? st->win[st->head].seq - 1 : st->last_read;
}

/* Release, on the hold handle, what is settled. */
static void release_settled(br_link *l, queue_state *st)
{
    uint64_t upto = restart_point(st);
    for (;;) {
        if (!st->held) {
            int rc = shmchan_queue_peek(st->hold, SHMCHAN_NO_WAIT, &st->view);
            if (rc != SHMCHAN_OK)
                return;
            st->held = true;
        }
        if (st->view.seq > upto)
            return; /* the oldest unsettled message: held */
        int rc = shmchan_queue_release(st->hold);
        st->held = false;
        if (rc != SHMCHAN_OK && rc != SHMCHAN_ESTALE)
            atomic_fetch_add(&l->c.errors, 1);
    }
}

static natsStatus build_msg(br_link *l, queue_state *st, size_t len, uint64_t seq, natsMsg **out)
{
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, l->subject, NULL, st->buf, (int)len);
    if (s == NATS_OK)
        s = br_hdr_set(m, l->ctx->cfg->host, l->channel, st->epoch, seq, true);
    if (s != NATS_OK)
        natsMsg_Destroy(m);
    *out = s == NATS_OK ? m : NULL;
    return s;
}

static void publish_slot(br_link *l, queue_state *st, pub_slot *s)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = PUB_WAIT_MS;
    po.ExpectStream = l->stream;
    pthread_mutex_lock(&g_win_mu);
    natsMsg *m = s->msg;
    s->msg = NULL;
    s->state = SLOT_FLIGHT;
    pthread_mutex_unlock(&g_win_mu);
    natsStatus rc = js_PublishMsgAsync(st->js, &m, &po);
    if (rc != NATS_OK) { /* not taken: ours again, failed */
        pthread_mutex_lock(&g_win_mu);
        s->state = SLOT_FAILED;
        s->err = rc;
        s->ec = 0;
        s->msg = m;
        pthread_mutex_unlock(&g_win_mu);
    }
}

/* Read ahead and publish while the window has room. 1: the queue is drained
 * (arm and wait on it), 0: the window is full, -1: a receive failed (counted;
 * look again after a pause, not at once: its error would keep it ready). */
static int read_ahead(br_link *l, queue_state *st)
{
    while (st->count < WINDOW_MSGS && st->flight_bytes < WINDOW_BYTES) {
        size_t len;
        shmchan_msg info;
        int rc = shmchan_queue_recv(st->q, st->buf, st->cap, SHMCHAN_NO_WAIT, &len, &info);
        if (rc == SHMCHAN_EAGAIN)
            return 1;
        if (rc != SHMCHAN_OK) {
            atomic_fetch_add(&l->c.errors, 1);
            return -1;
        }
        if (info.lost)
            atomic_fetch_add(&l->c.lost, info.lost);
        if (info.seq <= st->last_read) /* settled before (skipped on restart) */
            continue;
        natsMsg *m = NULL;
        pthread_mutex_lock(&g_win_mu);
        pub_slot *s = &st->win[(st->head + st->count) % WINDOW_MSGS];
        memset(s, 0, sizeof *s);
        s->seq = info.seq;
        s->len = len;
        st->count++;
        st->last_read = info.seq;
        if (!br_check_payload(l, len, info.seq)) {
            s->state = SLOT_DONE; /* refused and counted: settled */
            s->refused = true;
            pthread_mutex_unlock(&g_win_mu);
            continue;
        }
        s->state = SLOT_FAILED; /* until published */
        s->seen = true;
        s->bytes_in = len;
        st->flight_bytes += len;
        pthread_mutex_unlock(&g_win_mu);
        /* Built from the copy while it is at hand (no memory: try again; when
         * stopping, it stays unsent and held for the next start). */
        while (build_msg(l, st, len, info.seq, &m) != NATS_OK) {
            atomic_fetch_add(&l->c.errors, 1);
            if (*l->ctx->stop)
                return 0;
            nap_ms(BR_POLL_MS);
        }
        s->msg = m;
        publish_slot(l, st, s);
    }
    return 0;
}

/* Take the acks: count, pop the settled prefix of the window, and note the
 * failures (on_full=report: a full stream drops the message, counted).
 * Returns how many were popped. */
static int settle(br_link *l, queue_state *st, int *nflight, int *nfailed)
{
    int popped = 0;
    *nflight = *nfailed = 0;
    pthread_mutex_lock(&g_win_mu);
    for (unsigned i = 0; i < st->count; i++) {
        pub_slot *s = &st->win[(st->head + i) % WINDOW_MSGS];
        if (s->state == SLOT_FAILED && !s->seen) {
            s->seen = true;
            bool full = s->ec == JSStreamStoreFailedErr;
            if (full)
                atomic_fetch_add(&l->c.full, 1);
            else
                atomic_fetch_add(&l->c.errors, 1);
            if (full && l->on_full == BR_FULL_REPORT) {
                br_log("export %s seq %llu: stream %s is full: message dropped (on_full=report)",
                       l->channel, (unsigned long long)s->seq, l->stream);
                natsMsg_Destroy(s->msg);
                s->msg = NULL;
                s->state = SLOT_DONE;
                s->refused = true;
            } else if (!st->said_fail) {
                if (full)
                    br_log("export %s: stream %s is full; holding the local queue until it has "
                           "room", l->channel, l->stream);
                else
                    br_log("export %s: publish to %s failed: %s (JetStream error %d); retrying",
                           l->channel, l->subject, natsStatus_GetText(s->err), (int)s->ec);
                st->said_fail = true;
            }
        }
        *nflight += s->state == SLOT_FLIGHT;
        *nfailed += s->state == SLOT_FAILED;
    }
    while (st->count && st->win[st->head].state == SLOT_DONE) {
        pub_slot *s = &st->win[st->head];
        if (!s->refused) {
            atomic_fetch_add(&l->c.nats_msgs, 1);
            atomic_fetch_add(&l->c.msgs, 1);
            atomic_fetch_add(&l->c.bytes, s->len);
            if (s->dup)
                atomic_fetch_add(&l->c.dups, 1);
        }
        st->flight_bytes -= s->bytes_in;
        st->head = (st->head + 1) % WINDOW_MSGS;
        st->count--;
        popped++;
    }
    pthread_mutex_unlock(&g_win_mu);
    return popped;
}

/* Send the failed messages of the window again, in order. */
static void resend_failed(br_link *l, queue_state *st)
{
    for (unsigned i = 0; i < st->count; i++) {
        pub_slot *s = &st->win[(st->head + i) % WINDOW_MSGS];
        if (s->state != SLOT_FAILED)
            continue;
        if (!s->msg) /* never built: only when stopping */
            continue;
        s->seen = false;
        publish_slot(l, st, s);
    }
}

static bool make_js(br_link *l, queue_state *st)
{
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 2 * WINDOW_MSGS; /* never reached: no stall in publish */
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = l;
    st->ack_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return st->ack_fd >= 0 && natsConnection_JetStream(&st->js, l->ctx->nc, &jo) == NATS_OK;
}

static void export_loop(br_link *l, queue_state *st)
{
    int wait = 100;
    while (!*l->ctx->stop && !ensure_stream(l))
        nap_ms(backoff(&wait));
    if (!make_js(l, st)) {
        br_log("export %s: cannot set up asynchronous publishing; stopping this link",
               l->channel);
        return;
    }
    state_open(l, st);
    uint64_t saved = 0;
    bool have = state_read(st, &saved);
    st->skip = have ? saved : resume_point(l, st);
    st->last_read = st->skip;
    if (st->skip)
        br_log("export %s: resuming after seq %llu (%s)", l->channel,
               (unsigned long long)st->skip, have ? "restart point" : "already in stream");
    if (shmchan_queue_notify(st->q, &st->fd) != SHMCHAN_OK) {
        br_log("export %s: cannot wait on the queue's readiness handle; stopping this link",
               l->channel);
        return;
    }
    int retry_wait = 50;
    bool retrying = false;
    double retry_at = 0, stop_by = 0;
    for (;;) {
        int nflight, nfailed;
        if (settle(l, st, &nflight, &nfailed) > 0)
            retry_wait = 50; /* back off only while nothing gets through */
        release_settled(l, st);
        state_write(st, restart_point(st));
        double now = mono_s();
        bool stopping = *l->ctx->stop;
        if (stopping) { /* take the acks in flight, send nothing new */
            if (stop_by == 0)
                stop_by = now + PUB_WAIT_MS / 1000.0 + 1;
            if (nflight == 0 || now >= stop_by)
                return;
        }
        if (nfailed && !retrying) {
            retrying = true;
            retry_at = now + backoff(&retry_wait) / 1000.0;
        }
        if (retrying && nfailed == 0 && nflight == 0) {
            retrying = false;
            retry_wait = 50;
            if (st->said_fail)
                br_log("export %s: stream %s accepts messages again", l->channel, l->stream);
            st->said_fail = false;
        }
        if (retrying && !stopping && nflight == 0 && now >= retry_at) {
            resend_failed(l, st);
            retry_at = now + backoff(&retry_wait) / 1000.0;
            continue;
        }
        bool watch_q = false;
        int ahead = retrying || stopping ? 0 : read_ahead(l, st);
        if (ahead > 0)
            watch_q = shmchan_queue_arm(st->q) == SHMCHAN_OK;
        /* Sleep until an ack, news in the queue (when there is room to read
         * ahead), a stop, or the next retry. */
        struct pollfd pf[3] = {{st->ack_fd, POLLIN, 0}, {l->ctx->stop_fd, POLLIN, 0},
                               {st->fd, POLLIN, 0}};
        int timeout = -1;
        if (retrying && nflight == 0)
            timeout = now >= retry_at ? 0 : (int)((retry_at - now) * 1000) + 1;
        if (ahead < 0 || (ahead > 0 && !watch_q))
            timeout = BR_POLL_MS;
        if (stopping) /* only acks now: the stop handle stays readable */
            timeout = (int)((stop_by - now) * 1000) + 1;
        if (poll(pf, stopping ? 1 : watch_q ? 3 : 2, timeout) > 0 && pf[0].revents) {
            uint64_t v;
            if (read(st->ack_fd, &v, sizeof v) < 0) { /* EAGAIN: taken already */
            }
        }
    }
}

/* ---------------------------------------------------------------- import */

/* The durable consumer is created explicitly, then bound: a consumer that the
 * subscribe call created would be deleted again by unsubscribe or drain. */
static bool subscribe(br_link *l, queue_state *st)
{
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = l->durable;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = l->ack_wait_ms * 1000000LL;
    cc.MaxAckPending = 1024;
    cc.FilterSubject = l->subject;
    cc.DeliverPolicy = js_DeliverAll;
    jsConsumerInfo *ci = NULL;
    jsErrCode ec = 0;
    natsStatus s = js_AddConsumer(&ci, l->ctx->js, l->stream, &cc, NULL, &ec);
    if (s == NATS_OK)
        jsConsumerInfo_Destroy(ci);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = l->stream;
    so.Consumer = l->durable;
    s = js_PullSubscribe(&st->sub, l->ctx->js, l->subject, l->durable, NULL, &so, &ec);
    if (s != NATS_OK) {
        st->sub = NULL;
        return false;
    }
    br_log("import %s: pulling %s from stream %s as durable %s", l->channel, l->subject,
           l->stream, l->durable);
    return true;
}

/* Send into the local queue, waiting while it is full. False: stopping. */
static bool send_local(br_link *l, queue_state *st, natsMsg *m, const void *data, size_t len)
{
    int waited = 0, every = (int)(l->ack_wait_ms / 3 / BR_POLL_MS);
    for (;;) {
        int rc = shmchan_queue_send(st->q, data, len, BR_POLL_MS);
        if (rc == SHMCHAN_OK)
            return true;
        if (*l->ctx->stop)
            return false;
        if (rc != SHMCHAN_ETIMEDOUT && rc != SHMCHAN_EINTR && rc != SHMCHAN_EAGAIN) {
            atomic_fetch_add(&l->c.errors, 1);
            nap_ms(BR_POLL_MS);
        }
        if (++waited % (every > 0 ? every : 1) == 0) /* keep the server from redelivering */
            natsMsg_InProgress(m, NULL);
    }
}

static void import_one(br_link *l, queue_state *st, natsMsg *m)
{
    br_hdr h;
    atomic_fetch_add(&l->c.nats_msgs, 1);
    size_t len = (size_t)natsMsg_GetDataLength(m);
    const void *data = natsMsg_GetData(m);
    if (br_hdr_parse(m, &h) != 0) {
        atomic_fetch_add(&l->c.malformed, 1);
        br_log("import %s: message on %s without valid shmchan headers: terminated, not "
               "delivered", l->channel, natsMsg_GetSubject(m));
        natsMsg_Term(m, NULL);
        return;
    }
    if (!l->keep_own && strcmp(h.host, l->ctx->cfg->host) == 0) {
        atomic_fetch_add(&l->c.loops, 1);
        natsMsg_Ack(m, NULL);
        return;
    }
    if (len > st->cap) {
        atomic_fetch_add(&l->c.oversize, 1);
        br_log("import %s: message %s seq %llu of %zu bytes exceeds the queue's max_msg %zu: "
               "terminated, not delivered", l->channel, h.src, (unsigned long long)h.seq, len,
               st->cap);
        natsMsg_Term(m, NULL);
        return;
    }
    char id[128];
    snprintf(id, sizeof id, "%s.%llu.%llu", h.src, (unsigned long long)h.epoch,
             (unsigned long long)h.seq);
    if (br_journal_seen(st->journal, id)) {
        atomic_fetch_add(&l->c.dups, 1);
        natsMsg_Ack(m, NULL);
        return;
    }
    shmchan_info info = {.struct_size = sizeof info};
    shmchan_queue_info(st->q, &info);
    br_journal_begin(st->journal, id, info.seq, data, len);
    if (!send_local(l, st, m, data, len)) {
        natsMsg_Nak(m, NULL); /* stopping: the server redelivers it later */
        return;
    }
    br_journal_done(st->journal);
    atomic_fetch_add(&l->c.msgs, 1);
    atomic_fetch_add(&l->c.bytes, len);
    /* Not waited for: the journal, not the ack's reply, is what keeps a redelivery
     * (of an ack lost with the connection) out of the local queue. */
    if (natsMsg_Ack(m, NULL) != NATS_OK)
        atomic_fetch_add(&l->c.errors, 1);
}

static void import_loop(br_link *l, queue_state *st)
{
    char err[600], name[300];
    snprintf(name, sizeof name, "%s_%s", l->ctx->cfg->host, l->durable);
    if (br_journal_open(l->ctx->cfg->state_dir, name, &st->journal, err, sizeof err) != 0) {
        br_log("import %s: %s; stopping this link", l->channel, err);
        return;
    }
    int r = br_journal_resolve(st->journal, l->channel);
    if (r < 0)
        br_log("import %s: could not tell whether the message in flight at the last crash was "
               "delivered (its place in the queue is gone): it may arrive twice", l->channel);
    int wait = 100;
    while (!*l->ctx->stop && !subscribe(l, st))
        nap_ms(backoff(&wait));
    while (!*l->ctx->stop) {
        natsMsgList list = {0};
        natsStatus s = natsSubscription_Fetch(&list, st->sub, FETCH_BATCH, BR_POLL_MS * 5, NULL);
        if (s == NATS_TIMEOUT)
            continue;
        if (s != NATS_OK) {
            nap_ms(BR_POLL_MS);
            continue;
        }
        for (int i = 0; i < list.Count; i++) {
            if (*l->ctx->stop) /* not delivered: the server redelivers after AckWait */
                natsMsg_Nak(list.Msgs[i], NULL);
            else
                import_one(l, st, list.Msgs[i]);
        }
        natsMsgList_Destroy(&list);
    }
}

static void *queue_main(void *arg)
{
    br_link *l = arg;
    queue_state *st = l->state;
    if (!open_wait(l, st))
        return NULL;
    if (l->dir == BR_EXPORT)
        export_loop(l, st);
    else
        import_loop(l, st);
    return NULL;
}

int br_queue_start(br_link *l)
{
    size_t win = l->dir == BR_EXPORT ? WINDOW_MSGS * sizeof(pub_slot) : 0;
    queue_state *st = calloc(1, sizeof *st + win);
    if (!st)
        return -1;
    st->ack_fd = st->state_fd = -1;
    l->state = st;
    if (pthread_create(&st->thread, NULL, queue_main, l) != 0)
        return -1;
    st->started = true;
    return 0;
}

void br_queue_stop(br_link *l)
{
    queue_state *st = l->state;
    if (!st)
        return;
    if (st->started)
        pthread_join(st->thread, NULL);
    pthread_mutex_lock(&g_win_mu); /* the exporter waited for its acks; a late one finds no state */
    l->state = NULL;
    for (unsigned i = 0; i < st->count; i++)
        natsMsg_Destroy(st->win[(st->head + i) % WINDOW_MSGS].msg);
    pthread_mutex_unlock(&g_win_mu);
    jsCtx_Destroy(st->js);
    if (st->state_fd >= 0)
        close(st->state_fd);
    if (st->ack_fd >= 0)
        close(st->ack_fd);
    shmchan_queue_close(st->hold);
    natsSubscription_Destroy(st->sub); /* not unsubscribe: the durable consumer stays */
    br_journal_close(st->journal);
    shmchan_queue_close(st->q);
    free(st->buf);
    free(st);
    l->state = NULL;
}
