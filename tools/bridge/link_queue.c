/* Queues over JetStream: at least once on the wire, exactly once into the
 * local queue.
 *
 * Export: a subscriber handle on the local queue peeks the next message,
 * publishes it with Nats-Msg-Id = host/channel.epoch.seq, waits for the
 * stream's ack and only then releases it (block policy: the message stays in
 * the ring, holding writers back, until JetStream has it; overwrite policy:
 * it is copied and checked first). A restart replays the queue from its oldest
 * held message, skipping up to the last sequence the stream holds from this
 * source; the stream's duplicate window drops any other repeat. A full stream
 * (max_msgs, discard new) is retried with the message held (on_full=block:
 * local writers slow down) or counted and dropped (on_full=report).
 *
 * Import: a durable pull consumer (shared by name between hosts for competing
 * workers) fetches batches; each message is sent into the local queue (waiting
 * while a block-policy queue is full: the consumer slows down), recorded in the
 * journal (dedupe.c), and only then acked. */
#define _GNU_SOURCE
#include "bridge.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FETCH_BATCH 64
#define BACKOFF_MAX_MS 5000

typedef struct queue_state {
    pthread_t thread;
    bool started;
    shmchan_queue *q;
    uint32_t policy;
    uint64_t epoch;
    void *buf;
    size_t cap;
    natsSubscription *sub;
    br_journal *journal;
} queue_state;

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
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
    o.flags = l->dir == BR_EXPORT ? (SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST) : SHMCHAN_CREATE;
    int rc = shmchan_queue_open(l->channel, &o, &st->q);
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

/* Publish one message until the stream has it. 1: stored (or a duplicate),
 * 0: dropped (full, report mode), -1: stopping. */
static int publish_acked(br_link *l, queue_state *st, const void *data, size_t len, uint64_t seq)
{
    int wait = 50;
    bool said_full = false, said_err = false;
    while (!*l->ctx->stop) {
        natsMsg *m = NULL;
        jsPubAck *pa = NULL;
        jsErrCode ec = 0;
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 5000;
        po.ExpectStream = l->stream;
        natsStatus s = natsMsg_Create(&m, l->subject, NULL, data, (int)len);
        if (s == NATS_OK)
            s = br_hdr_set(m, l->ctx->cfg->host, l->channel, st->epoch, seq, true);
        if (s == NATS_OK)
            s = js_PublishMsg(&pa, l->ctx->js, m, &po, &ec);
        natsMsg_Destroy(m);
        if (s == NATS_OK) {
            atomic_fetch_add(&l->c.nats_msgs, 1);
            if (pa->Duplicate)
                atomic_fetch_add(&l->c.dups, 1);
            jsPubAck_Destroy(pa);
            if (said_full || said_err)
                br_log("export %s: stream %s accepts messages again", l->channel, l->stream);
            return 1;
        }
        if (ec == JSStreamStoreFailedErr) { /* maximum messages (or bytes) exceeded */
            atomic_fetch_add(&l->c.full, 1);
            if (l->on_full == BR_FULL_REPORT) {
                br_log("export %s seq %llu: stream %s is full: message dropped (on_full=report)",
                       l->channel, (unsigned long long)seq, l->stream);
                return 0;
            }
            if (!said_full)
                br_log("export %s: stream %s is full; holding the local queue until it has room",
                       l->channel, l->stream);
            said_full = true;
        } else {
            atomic_fetch_add(&l->c.errors, 1);
            if (!said_err)
                br_log("export %s: publish to %s failed: %s (JetStream error %d); retrying",
                       l->channel, l->subject, natsStatus_GetText(s), (int)ec);
            said_err = true;
        }
        nap_ms(backoff(&wait));
    }
    return -1;
}

static void export_loop(br_link *l, queue_state *st)
{
    int wait = 100;
    while (!*l->ctx->stop && !ensure_stream(l))
        nap_ms(backoff(&wait));
    uint64_t skip = resume_point(l, st);
    if (skip)
        br_log("export %s: resuming after seq %llu (already in stream %s)", l->channel,
               (unsigned long long)skip, l->stream);
    while (!*l->ctx->stop) {
        shmchan_msg m;
        int rc = shmchan_queue_peek(st->q, BR_POLL_MS, &m);
        if (rc != SHMCHAN_OK) {
            if (rc != SHMCHAN_ETIMEDOUT && rc != SHMCHAN_EINTR && rc != SHMCHAN_EAGAIN) {
                atomic_fetch_add(&l->c.errors, 1);
                nap_ms(BR_POLL_MS);
            }
            continue;
        }
        if (m.lost)
            atomic_fetch_add(&l->c.lost, m.lost);
        size_t len = (size_t)m.len;
        uint64_t seq = m.seq;
        const void *data = m.data;
        if (st->policy != SHMCHAN_POLICY_BLOCK) { /* may be overwritten: copy, then check */
            memcpy(st->buf, m.data, len);
            data = st->buf;
            if (shmchan_queue_release(st->q) != SHMCHAN_OK) {
                atomic_fetch_add(&l->c.lost, 1);
                continue;
            }
        }
        int sent = seq <= skip ? 1 : !br_check_payload(l, len, seq) ? 0
                                                                    : publish_acked(l, st, data, len, seq);
        if (sent == 1 && seq > skip) {
            atomic_fetch_add(&l->c.msgs, 1);
            atomic_fetch_add(&l->c.bytes, len);
        }
        if (sent < 0) /* stopping: a held view is left to close() (not consumed) */
            return;
        if (st->policy == SHMCHAN_POLICY_BLOCK)
            shmchan_queue_release(st->q);
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
    queue_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
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
    natsSubscription_Destroy(st->sub); /* not unsubscribe: the durable consumer stays */
    br_journal_close(st->journal);
    shmchan_queue_close(st->q);
    free(st->buf);
    free(st);
    l->state = NULL;
}
