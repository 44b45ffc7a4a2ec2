/* Latest-value channels over core NATS: at most once, the newest wins.
 *
 * Export: one thread per channel blocks in shmchan_latest_read_next() (with a
 * short timeout to notice shutdown; the library has no readiness handle yet)
 * and publishes each new value with its source, epoch and sequence headers.
 * Import: a libnats subscription callback publishes a value locally only if it
 * is newer, per source, than the last one it published (a restarted source
 * channel has a newer epoch, its creation time). Core NATS queues (mode=core)
 * share the export thread shape and the import callback in this file. */
#define _GNU_SOURCE
#include "bridge.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SOURCES_MAX 64

typedef struct src_state {
    char src[BR_HOST_MAX + SHMCHAN_NAME_MAX + 2];
    uint64_t epoch, seq;
} src_state;

typedef struct latest_state {
    pthread_t thread;
    bool started;
    shmchan_latest *ch;
    shmchan_queue *q;
    natsSubscription *sub;
    uint64_t epoch;
    void *buf;          /* import: unused; export: the envelope prefix, then the payload */
    size_t cap;         /* the local channel's max_msg */
    size_t env;         /* export: length of the envelope prefix in buf */
    int nsrc;
    src_state src[SOURCES_MAX];
    bool warned;
} latest_state;

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Whether a message of len bytes fits the server's max_payload; logs and counts if not. */
bool br_check_payload(br_link *l, size_t len, uint64_t seq)
{
    int64_t maxp = natsConnection_GetMaxPayload(l->ctx->nc);
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
    st->buf = malloc(st->cap + BR_ENV_MAX);
    if (!st->buf)
        return SHMCHAN_ENOMEM;
    st->env = br_env_prefix(st->buf, l->ctx->cfg->host, l->channel, st->epoch);
    return SHMCHAN_OK;
}

/* Open the local channel, waiting for it to be created (export side). */
static bool open_wait(br_link *l, latest_state *st, bool create)
{
    bool said = false;
    while (!*l->ctx->stop) {
        int rc = open_local(l, st, create);
        if (rc == SHMCHAN_OK) {
            if (said)
                br_log("%s: channel %s is open", l->dir == BR_EXPORT ? "export" : "import",
                       l->channel);
            return true;
        }
        if (!said)
            br_log("%s: cannot open channel %s: %s (%s); retrying every second",
                   l->dir == BR_EXPORT ? "export" : "import", l->channel, shmchan_strerror(rc),
                   shmchan_errname(rc));
        said = true;
        nap_ms(1000);
    }
    return false;
}

/* Publish the message of len bytes that sits after the envelope prefix in st->buf. */
static void publish(br_link *l, latest_state *st, size_t len, uint64_t seq)
{
    if (!br_check_payload(l, len, seq))
        return;
    br_env_seq(st->buf, st->env, seq);
    natsStatus s = natsConnection_Publish(l->ctx->nc, l->subject, st->buf, (int)(st->env + len));
    if (s == NATS_OK) {
        atomic_fetch_add(&l->c.msgs, 1);
        atomic_fetch_add(&l->c.bytes, len);
    } else {
        atomic_fetch_add(&l->c.errors, 1);
    }
}

static void export_latest(br_link *l, latest_state *st)
{
    uint64_t last = shmchan_latest_seq(st->ch); /* start with what comes next */
    while (!*l->ctx->stop) {
        size_t len;
        uint64_t seq;
        int rc = shmchan_latest_read_next(st->ch, last, (char *)st->buf + st->env, st->cap,
                                          BR_POLL_MS, &len, &seq);
        if (rc == SHMCHAN_OK) {
            last = seq;
            publish(l, st, len, seq);
        } else if (rc != SHMCHAN_ETIMEDOUT && rc != SHMCHAN_EINTR && rc != SHMCHAN_EAGAIN) {
            atomic_fetch_add(&l->c.errors, 1);
            nap_ms(BR_POLL_MS);
        }
    }
}

/* Queue over core NATS: at most once, in order per source. */
static void export_queue_core(br_link *l, latest_state *st)
{
    while (!*l->ctx->stop) {
        size_t len;
        shmchan_msg info;
        int rc = shmchan_queue_recv(st->q, (char *)st->buf + st->env, st->cap, BR_POLL_MS, &len,
                                    &info);
        if (rc == SHMCHAN_OK) {
            if (info.lost)
                atomic_fetch_add(&l->c.lost, info.lost);
            publish(l, st, len, info.seq);
        } else if (rc != SHMCHAN_ETIMEDOUT && rc != SHMCHAN_EINTR && rc != SHMCHAN_EAGAIN) {
            atomic_fetch_add(&l->c.errors, 1);
            nap_ms(BR_POLL_MS);
        }
    }
}

static void *export_main(void *arg)
{
    br_link *l = arg;
    latest_state *st = l->state;
    if (!open_wait(l, st, false))
        return NULL;
    if (l->kind == BR_LATEST)
        export_latest(l, st);
    else
        export_queue_core(l, st);
    return NULL;
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

static void deliver_queue(br_link *l, latest_state *st, const void *data, size_t len)
{
    for (;;) {
        int rc = shmchan_queue_send(st->q, data, len, BR_POLL_MS);
        if (rc == SHMCHAN_OK)
            break;
        if ((rc != SHMCHAN_ETIMEDOUT && rc != SHMCHAN_EINTR) || *l->ctx->stop) {
            atomic_fetch_add(&l->c.errors, 1);
            return;
        }
    }
    atomic_fetch_add(&l->c.msgs, 1);
    atomic_fetch_add(&l->c.bytes, len);
}

/* libnats calls this on its own thread, one message at a time per subscription. */
static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    (void)nc;
    (void)sub;
    br_link *l = arg;
    latest_state *st = l->state;
    br_hdr h;
    const unsigned char *raw = (const unsigned char *)natsMsg_GetData(m);
    size_t off = br_env_parse(raw, (size_t)natsMsg_GetDataLength(m), &h);
    size_t len = (size_t)natsMsg_GetDataLength(m) - off;
    const void *data = raw + off;
    if (off == 0) {
        if (atomic_fetch_add(&l->c.malformed, 1) == 0)
            br_log("import %s: message on %s without a valid shmchan envelope dropped (logged "
                   "once; see the malformed counter)", l->channel, natsMsg_GetSubject(m));
    } else if (!l->keep_own && strcmp(h.host, l->ctx->cfg->host) == 0) {
        atomic_fetch_add(&l->c.loops, 1);
    } else if (len > st->cap) {
        if (atomic_fetch_add(&l->c.oversize, 1) == 0)
            br_log("import %s: message of %zu bytes from %s is larger than the channel's "
                   "max_msg of %zu: dropped (logged once)", l->channel, len, h.src, st->cap);
    } else if (l->kind == BR_LATEST) {
        if (!newer(st, &h)) {
            atomic_fetch_add(&l->c.stale, 1);
        } else if (shmchan_latest_publish(st->ch, data, len, NULL) == SHMCHAN_OK) {
            atomic_fetch_add(&l->c.msgs, 1);
            atomic_fetch_add(&l->c.bytes, len);
        } else {
            atomic_fetch_add(&l->c.errors, 1);
        }
    } else {
        deliver_queue(l, st, data, len);
    }
    natsMsg_Destroy(m);
}

int br_latest_start(br_link *l)
{
    latest_state *st = calloc(1, sizeof *st);
    if (!st)
        return -1;
    l->state = st;
    if (l->dir == BR_EXPORT) {
        if (pthread_create(&st->thread, NULL, export_main, l) != 0)
            return -1;
        st->started = true;
        return 0;
    }
    int rc = open_local(l, st, true);
    if (rc != SHMCHAN_OK) {
        br_log("import %s: cannot open or create the channel: %s (%s)", l->channel,
               shmchan_strerror(rc), shmchan_errname(rc));
        return -1;
    }
    natsStatus s = natsConnection_Subscribe(&st->sub, l->ctx->nc, l->subject, on_msg, l);
    if (s == NATS_OK) /* a slow local queue holds messages here, then drops (at most once) */
        s = natsSubscription_SetPendingLimits(st->sub, 65536, 256 * 1024 * 1024);
    if (s != NATS_OK) {
        br_log("import %s: cannot subscribe to %s: %s", l->channel, l->subject,
               natsStatus_GetText(s));
        return -1;
    }
    return 0;
}

void br_latest_stop(br_link *l)
{
    latest_state *st = l->state;
    if (!st)
        return;
    if (st->started)
        pthread_join(st->thread, NULL);
    if (st->sub) {
        /* Drain: no new messages, the ones already received are handled. */
        if (natsSubscription_Drain(st->sub) == NATS_OK)
            natsSubscription_WaitForDrainCompletion(st->sub, 5000);
        natsSubscription_Destroy(st->sub);
    }
    shmchan_latest_close(st->ch);
    shmchan_queue_close(st->q);
    free(st->buf);
    free(st);
    l->state = NULL;
}
