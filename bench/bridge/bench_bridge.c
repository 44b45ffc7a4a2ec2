/* Benchmark of shmchan-bridge (bench/bridge/run.sh drives it): throughput and
 * round-trip latency of channel -> bridge -> NATS -> bridge -> channel, and of
 * the same traffic between two plain libnats connections.
 *
 *   direct-tput URL SIZE N        publisher -> subscriber, one subject
 *   direct-lat  URL SIZE N        ping -> echo -> pong, two subjects
 *   direct-el-lat URL SIZE N      the same with both connections in libnats's
 *                                 event-loop mode, each read and written by
 *                                 its one thread (as the bridge's core
 *                                 connection is by its export loop)
 *   chan-tput   OUT IN SIZE N     send N into queue OUT, receive from queue IN
 *   chan-lat    OUT IN EIN EOUT SIZE N
 *                                 send on OUT, an echo thread moves EIN -> EOUT,
 *                                 receive on IN (the bridges carry OUT -> EIN
 *                                 and EOUT -> IN)
 *   local-lat   A B SIZE N        send on A, an echo thread moves A -> B, receive
 *                                 on B: the hand-offs between local processes
 *                                 alone (the bridge path has four more than the
 *                                 direct one: twice this round trip's two)
 * Prints one line: mode size n msgs_per_s MB_per_s p50_us p99_us received. */
#define _GNU_SOURCE
#include <nats/nats.h>
#include <shmchan/shmchan.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *mode, size_t size, long n, long got, double secs, double *rtt,
                   long nrtt)
{
    double p50 = 0, p99 = 0;
    if (nrtt > 0) {
        qsort(rtt, (size_t)nrtt, sizeof *rtt, cmp_d);
        p50 = rtt[nrtt / 2] * 1e6;
        p99 = rtt[(long)((double)nrtt * 0.99)] * 1e6;
    }
    printf("%s %zu %ld %.0f %.1f %.1f %.1f %ld\n", mode, size, n, (double)got / secs,
           (double)got * (double)size / secs / 1e6, p50, p99, got);
}

/* asap: write each publish at once (what a round trip needs; the default
 * buffers up to 1 ms in libnats's flusher thread, which suits throughput). */
static natsConnection *conn(const char *url, bool asap)
{
    natsConnection *nc = NULL;
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, url);
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, asap);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        fprintf(stderr, "bench: connect %s: %s\n", url, natsStatus_GetText(s));
        exit(1);
    }
    return nc;
}

static atomic_long g_count;
static _Atomic double g_last; /* when the last message arrived */

static void on_count(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    (void)nc, (void)sub, (void)arg;
    atomic_store(&g_last, now_s());
    atomic_fetch_add(&g_count, 1);
    natsMsg_Destroy(m);
}

static int direct_tput(const char *url, size_t size, long n)
{
    natsConnection *pub = conn(url, false), *subc = conn(url, false);
    natsSubscription *sub;
    natsConnection_Subscribe(&sub, subc, "bench.t", on_count, NULL);
    natsSubscription_SetPendingLimits(sub, -1, -1);
    natsConnection_Flush(subc);
    char *buf = calloc(1, size);
    double t0 = now_s();
    atomic_store(&g_last, t0);
    for (long i = 0; i < n; i++)
        natsConnection_Publish(pub, "bench.t", buf, (int)size);
    natsConnection_Flush(pub);
    while (atomic_load(&g_count) < n && now_s() - atomic_load(&g_last) < 2.0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    long got = atomic_load(&g_count); /* fewer than n: the server dropped a slow consumer's */
    report("direct-tput", size, n, got, atomic_load(&g_last) - t0, NULL, 0);
    return 0;
}

static void on_echo(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
    (void)sub, (void)arg;
    natsConnection_Publish(nc, "bench.pong", natsMsg_GetData(m), natsMsg_GetDataLength(m));
    natsMsg_Destroy(m);
}

static int direct_lat(const char *url, size_t size, long n)
{
    natsConnection *a = conn(url, true), *b = conn(url, true);
    natsSubscription *echo, *pong;
    natsConnection_Subscribe(&echo, b, "bench.ping", on_echo, NULL);
    natsConnection_SubscribeSync(&pong, a, "bench.pong");
    natsConnection_Flush(a);
    natsConnection_Flush(b);
    char *buf = calloc(1, size);
    double *rtt = calloc((size_t)n, sizeof *rtt);
    long got = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        double t = now_s();
        natsConnection_Publish(a, "bench.ping", buf, (int)size); /* written at once (asap) */
        natsMsg *m = NULL;
        if (natsSubscription_NextMsg(&m, pong, 2000) != NATS_OK)
            break;
        rtt[got++] = now_s() - t;
        natsMsg_Destroy(m);
    }
    report("direct-lat", size, n, got, now_s() - t0, rtt, got);
    return 0;
}

/* ---- one connection in libnats's event-loop mode, driven by one thread:
 * epoll on its socket; a write asked for from that thread is done by the
 * thread itself right after (el_flush), from another thread through EPOLLOUT
 * (the bridge's export loop does the same, tools/bridge/link_latest.c). */
typedef struct el {
    pthread_mutex_t mu;
    int ep, fd;
    bool out;
    atomic_bool write;
    natsConnection *nc;
} el;
static _Thread_local el *t_el; /* the connection this thread drives */

static void el_events(el *e, bool out) /* mu held */
{
    struct epoll_event ev = {.events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = e};
    if (e->fd >= 0 && out != e->out && epoll_ctl(e->ep, EPOLL_CTL_MOD, e->fd, &ev) == 0)
        e->out = out;
}
static natsStatus el_attach(void **user, void *loop, natsConnection *nc, natsSock fd)
{
    (void)nc;
    el *e = loop;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = e};
    pthread_mutex_lock(&e->mu);
    e->fd = epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev) == 0 ? fd : -1;
    e->out = false;
    pthread_mutex_unlock(&e->mu);
    *user = e;
    return e->fd >= 0 ? NATS_OK : NATS_SYS_ERROR;
}
static natsStatus el_read(void *user, bool add)
{
    el *e = user;
    if (!add) {
        pthread_mutex_lock(&e->mu);
        if (e->fd >= 0)
            epoll_ctl(e->ep, EPOLL_CTL_DEL, e->fd, NULL);
        e->fd = -1;
        pthread_mutex_unlock(&e->mu);
    }
    return NATS_OK;
}
static natsStatus el_write(void *user, bool add)
{
    el *e = user;
    pthread_mutex_lock(&e->mu);
    atomic_store(&e->write, add);
    el_events(e, add && t_el != e ? true : add ? e->out : false);
    pthread_mutex_unlock(&e->mu);
    return NATS_OK;
}
static natsStatus el_detach(void *user) { return el_read(user, false); }

static void el_flush(el *e)
{
    if (!atomic_load(&e->write))
        return;
    natsConnection_ProcessWriteEvent(e->nc);
    pthread_mutex_lock(&e->mu);
    if (atomic_load(&e->write))
        el_events(e, true);
    pthread_mutex_unlock(&e->mu);
}

static void el_conn(el *e, const char *url)
{
    natsOptions *o = NULL;
    pthread_mutex_init(&e->mu, NULL);
    e->ep = epoll_create1(0);
    e->fd = -1;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetURL(o, url);
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(o, e, el_attach, el_read, el_write, el_detach);
    if (s == NATS_OK)
        s = natsConnection_Connect(&e->nc, o);
    natsOptions_Destroy(o);
    if (s != NATS_OK) {
        fprintf(stderr, "bench: connect %s: %s\n", url, natsStatus_GetText(s));
        exit(1);
    }
}

/* Wait up to ms for the socket, read or write it, then the next message of
 * sub if there is one (NULL: none). */
static natsMsg *el_next(el *e, natsSubscription *sub, int ms)
{
    int pending = 0;
    natsMsg *m = NULL;
    if (natsSubscription_GetPending(sub, &pending, NULL) == NATS_OK && pending > 0 &&
        natsSubscription_NextMsg(&m, sub, 0) == NATS_OK)
        return m;
    struct epoll_event ev;
    if (epoll_wait(e->ep, &ev, 1, ms) == 1) {
        if (ev.events & EPOLLOUT)
            natsConnection_ProcessWriteEvent(e->nc);
        if (ev.events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            natsConnection_ProcessReadEvent(e->nc);
    }
    el_flush(e); /* a reply to the server's PING */
    if (natsSubscription_GetPending(sub, &pending, NULL) == NATS_OK && pending > 0 &&
        natsSubscription_NextMsg(&m, sub, 0) == NATS_OK)
        return m;
    return NULL;
}

typedef struct el_echo {
    el *e;
    natsSubscription *sub;
    atomic_int stop;
} el_echo;

static void *el_echo_main(void *p)
{
    el_echo *a = p;
    t_el = a->e;
    while (!atomic_load(&a->stop)) {
        natsMsg *m = el_next(a->e, a->sub, 100);
        if (!m)
            continue;
        natsConnection_Publish(a->e->nc, "bench.elpong", natsMsg_GetData(m),
                               natsMsg_GetDataLength(m));
        el_flush(a->e); /* written now, by this thread */
        natsMsg_Destroy(m);
    }
    return NULL;
}

static int direct_el_lat(const char *url, size_t size, long n)
{
    static el a, b;
    el_conn(&a, url);
    el_conn(&b, url);
    t_el = &a;
    el_echo echo = {&b, NULL, 0};
    natsSubscription *pong;
    natsConnection_SubscribeSync(&echo.sub, b.nc, "bench.elping");
    natsConnection_SubscribeSync(&pong, a.nc, "bench.elpong");
    el_flush(&a);
    pthread_t t;
    pthread_create(&t, NULL, el_echo_main, &echo);
    char *buf = calloc(1, size);
    double *rtt = calloc((size_t)n, sizeof *rtt);
    natsMsg *m = NULL;
    /* Until both subscriptions are in place (no natsConnection_Flush: it
     * needs another thread to read the reply): pings until a pong comes. */
    for (int i = 0; i < 100 && !m; i++) {
        natsConnection_Publish(a.nc, "bench.elping", buf, (int)size);
        el_flush(&a);
        double end = now_s() + 0.05;
        while (!m && now_s() < end)
            m = el_next(&a, pong, 10);
    }
    for (double end = now_s() + 0.1; now_s() < end;) { /* late pongs of the warm-up */
        natsMsg_Destroy(m);
        m = el_next(&a, pong, 10);
    }
    natsMsg_Destroy(m);
    long got = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        double t1 = now_s(), end = t1 + 2.0;
        natsConnection_Publish(a.nc, "bench.elping", buf, (int)size);
        el_flush(&a);
        for (m = NULL; !m && now_s() < end;)
            m = el_next(&a, pong, 100);
        if (!m)
            break;
        rtt[got++] = now_s() - t1;
        natsMsg_Destroy(m);
    }
    report("direct-el-lat", size, n, got, now_s() - t0, rtt, got);
    atomic_store(&echo.stop, 1);
    pthread_join(t, NULL);
    return 0;
}

static shmchan_queue *q_open(const char *name, uint32_t flags)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = flags;
    shmchan_queue *q;
    int rc = shmchan_queue_open(name, &o, &q);
    if (rc) {
        fprintf(stderr, "bench: open %s: %s\n", name, shmchan_strerror(rc));
        exit(1);
    }
    return q;
}

typedef struct tput_arg {
    const char *name;
    size_t size;
    long n;
} tput_arg;

static void *tput_writer(void *p)
{
    tput_arg *a = p;
    shmchan_queue *q = q_open(a->name, 0);
    char *buf = calloc(1, a->size);
    for (long i = 0; i < a->n; i++)
        shmchan_queue_send(q, buf, a->size, SHMCHAN_WAIT_FOREVER);
    shmchan_queue_close(q);
    return NULL;
}

static int chan_tput(const char *out, const char *in, size_t size, long n)
{
    shmchan_queue *q = q_open(in, SHMCHAN_SUBSCRIBE);
    char *buf = malloc(size + 64);
    tput_arg a = {out, size, n};
    pthread_t t;
    double t0 = now_s(), last = t0;
    pthread_create(&t, NULL, tput_writer, &a);
    long got = 0;
    while (got < n) {
        size_t len;
        if (shmchan_queue_recv(q, buf, size + 64, 2000, &len, NULL) != SHMCHAN_OK)
            break;
        got++;
        last = now_s();
    }
    pthread_join(t, NULL);
    report("chan-tput", size, n, got, last - t0, NULL, 0);
    return 0;
}

typedef struct echo_arg {
    const char *in, *out;
    size_t size;
    atomic_int stop;
} echo_arg;

static void *echo_main(void *p)
{
    echo_arg *a = p;
    shmchan_queue *in = q_open(a->in, SHMCHAN_SUBSCRIBE), *out = q_open(a->out, 0);
    char *buf = malloc(a->size + 64);
    while (!atomic_load(&a->stop)) {
        size_t len;
        if (shmchan_queue_recv(in, buf, a->size + 64, 100, &len, NULL) == SHMCHAN_OK)
            shmchan_queue_send(out, buf, len, SHMCHAN_WAIT_FOREVER);
    }
    shmchan_queue_close(in);
    shmchan_queue_close(out);
    return NULL;
}

static int chan_lat(char **v, size_t size, long n, const char *mode)
{
    echo_arg e = {v[2], v[3], size, 0};
    pthread_t t;
    pthread_create(&t, NULL, echo_main, &e);
    shmchan_queue *out = q_open(v[0], 0), *in = q_open(v[1], SHMCHAN_SUBSCRIBE);
    struct timespec ts = {0, 200000000}; /* the echo thread's subscription is in place */
    nanosleep(&ts, NULL);
    char *buf = calloc(1, size + 64);
    double *rtt = calloc((size_t)n, sizeof *rtt);
    long got = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        double t1 = now_s();
        size_t len;
        shmchan_queue_send(out, buf, size, SHMCHAN_WAIT_FOREVER);
        if (shmchan_queue_recv(in, buf, size + 64, 2000, &len, NULL) != SHMCHAN_OK)
            break;
        rtt[got++] = now_s() - t1;
    }
    report(mode, size, n, got, now_s() - t0, rtt, got);
    atomic_store(&e.stop, 1);
    pthread_join(t, NULL);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "direct-tput") == 0)
        return direct_tput(argv[2], strtoul(argv[3], NULL, 10), atol(argv[4]));
    if (argc == 5 && strcmp(argv[1], "direct-lat") == 0)
        return direct_lat(argv[2], strtoul(argv[3], NULL, 10), atol(argv[4]));
    if (argc == 5 && strcmp(argv[1], "direct-el-lat") == 0)
        return direct_el_lat(argv[2], strtoul(argv[3], NULL, 10), atol(argv[4]));
    if (argc == 6 && strcmp(argv[1], "chan-tput") == 0)
        return chan_tput(argv[2], argv[3], strtoul(argv[4], NULL, 10), atol(argv[5]));
    if (argc == 8 && strcmp(argv[1], "chan-lat") == 0)
        return chan_lat(argv + 2, strtoul(argv[6], NULL, 10), atol(argv[7]), "chan-lat");
    if (argc == 6 && strcmp(argv[1], "local-lat") == 0) {
        char *v[4] = {argv[2], argv[3], argv[2], argv[3]}; /* the echo thread: A -> B */
        return chan_lat(v, strtoul(argv[4], NULL, 10), atol(argv[5]), "local-lat");
    }
    fprintf(stderr, "usage: see the comment at the top of bench/bridge/bench_bridge.c\n");
    return 2;
}
