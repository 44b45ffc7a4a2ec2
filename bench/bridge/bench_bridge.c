/* Benchmark of shmchan-bridge (bench/bridge/run.sh drives it): throughput and
 * round-trip latency of channel -> bridge -> NATS -> bridge -> channel, and of
 * the same traffic between two plain libnats connections.
 *
 *   direct-tput URL SIZE N        publisher -> subscriber, one subject
 *   direct-lat  URL SIZE N        ping -> echo -> pong, two subjects
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
