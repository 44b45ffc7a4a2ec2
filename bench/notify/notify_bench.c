#define _GNU_SOURCE
/*
 * Event-loop benchmarks of the readiness handles (issue 13, docs/event-loops.md),
 * side by side in one run:
 *
 *   rtt     64 B round trips between two processes, each waiting in epoll:
 *           pipe, eventfd, shmchan's readiness handle; and shmchan's own
 *           blocking read (futex, no spin; and with its default spin).
 *           With and without a PM-QoS request (/dev/cpu_dma_latency = 0).
 *   fanin   one epoll loop over 1000 queues, a writer process sending
 *           messages on random queues: every message seen once, cost per
 *           message; the same over 1000 Unix datagram socket pairs.
 *
 *   notify_bench [rtt|fanin|all] [--rounds N] [--messages N] [--csv FILE]
 *
 * --csv appends one line per figure, "bench,transport,pmqos,metric,value"
 * (bench/run.sh collects them; bench/report/report.py turns them into the
 * targets of issue 13).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shmchan/shmchan.h>

static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void
die(const char *what, int rc)
{
    fprintf(stderr, "notify_bench: %s: %s\n", what, rc < 0 ? shmchan_strerror(rc) : strerror(errno));
    exit(1);
}

static FILE *csv_out; /* --csv */
static const char *const KIND_IDS[] = {"pipe", "eventfd", "handle", "futex", "futex-spin"};

static void
csv_row(const char *bench, const char *transport, const char *pmqos, const char *metric,
        double value)
{
    if (csv_out != NULL) {
        fprintf(csv_out, "%s,%s,%s,%s,%.1f\n", bench, transport, pmqos, metric, value);
        fflush(csv_out);
    }
}

/* ------------------------------------------------------------ round trip */

typedef struct side {
    int kind;          /* 0 pipe, 1 eventfd, 2 shmchan handle, 3 futex, 4 futex+spin */
    int in_fd, out_fd; /* pipe / eventfd */
    shmchan_latest *in, *out;
    int ep;
    uint64_t seen;
} side;

static const char *const KIND_NAMES[] = {"pipe + epoll", "eventfd + epoll",
                                         "shmchan handle + epoll", "shmchan read_next (futex)",
                                         "shmchan read_next (spin 20us)"};
#define KINDS 5

static void
epoll_on(side *s, int fd)
{
    s->ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        die("epoll_ctl", 0);
    }
}

static void
await_one(side *s)
{
    struct epoll_event ev;
    char buf[64];
    uint64_t v;
    switch (s->kind) {
    case 0:
        while (epoll_wait(s->ep, &ev, 1, -1) != 1) {
        }
        if (read(s->in_fd, buf, 64) != 64) {
            die("pipe read", 0);
        }
        return;
    case 1:
        while (epoll_wait(s->ep, &ev, 1, -1) != 1) {
        }
        if (read(s->in_fd, &v, 8) != 8) {
            die("eventfd read", 0);
        }
        return;
    case 2:
        for (;;) {
            size_t len = 0;
            uint64_t seq = 0;
            if (shmchan_latest_seq(s->in) > s->seen &&
                shmchan_latest_read(s->in, buf, sizeof(buf), &len, &seq) == SHMCHAN_OK &&
                seq > s->seen) {
                s->seen = seq;
                shmchan_latest_arm(s->in, seq);
                return;
            }
            while (epoll_wait(s->ep, &ev, 1, -1) != 1) {
            }
        }
    default: {
        size_t len = 0;
        int rc = shmchan_latest_read_next(s->in, s->seen, buf, sizeof(buf), -1, &len, &s->seen);
        if (rc != SHMCHAN_OK) {
            die("read_next", rc);
        }
    }
    }
}

static void
send_one(side *s)
{
    char buf[64] = {0};
    uint64_t one = 1;
    switch (s->kind) {
    case 0:
        if (write(s->out_fd, buf, 64) != 64) {
            die("pipe write", 0);
        }
        return;
    case 1:
        if (write(s->out_fd, &one, 8) != 8) {
            die("eventfd write", 0);
        }
        return;
    default:
        if (shmchan_latest_publish(s->out, buf, 64, NULL) != SHMCHAN_OK) {
            die("publish", 0);
        }
    }
}

static shmchan_latest *
latest(const char *name, uint32_t spin)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_CREATE;
    o.max_msg = 64;
    o.spin_ns = spin;
    shmchan_latest *ch = NULL;
    int rc = shmchan_latest_open(name, &o, &ch);
    if (rc != SHMCHAN_OK) {
        die(name, rc);
    }
    return ch;
}

/* One side of kind k: reads from channel/fd a, writes to b. */
static void
side_init(side *s, int k, int fds[4], bool first, const char *ping, const char *pong)
{
    memset(s, 0, sizeof(*s));
    s->kind = k;
    if (k <= 1) {
        s->in_fd = first ? fds[2] : fds[0];
        s->out_fd = first ? fds[1] : fds[3];
        epoll_on(s, s->in_fd);
        return;
    }
    uint32_t spin = k == 4 ? SHMCHAN_SPIN_DEFAULT : SHMCHAN_SPIN_NONE;
    s->in = latest(first ? pong : ping, spin);
    s->out = latest(first ? ping : pong, spin);
    s->seen = shmchan_latest_seq(s->in);
    if (k == 2) {
        int fd = -1;
        int rc = shmchan_latest_notify(s->in, &fd);
        if (rc != SHMCHAN_OK) {
            die("notify", rc);
        }
        shmchan_latest_arm(s->in, s->seen);
        epoll_on(s, fd);
    }
}

/* Median and p99 of `rounds` round trips of kind k, in ns. */
static void
rtt_run(int k, int rounds, uint64_t *p50, uint64_t *p99)
{
    char ping[32], pong[32];
    snprintf(ping, sizeof(ping), "nb-ping%d", (int)getpid());
    snprintf(pong, sizeof(pong), "nb-pong%d", (int)getpid());
    int fds[4];
    if (k == 0 && (pipe2(fds, O_CLOEXEC) != 0 || pipe2(fds + 2, O_CLOEXEC) != 0)) {
        die("pipe", 0);
    }
    if (k == 1) {
        fds[0] = fds[1] = eventfd(0, EFD_CLOEXEC);
        fds[2] = fds[3] = eventfd(0, EFD_CLOEXEC);
    }
    if (k >= 2) { /* both channels exist before the fork */
        shmchan_latest_close(latest(ping, 0));
        shmchan_latest_close(latest(pong, 0));
    }
    int ready[2];
    if (pipe(ready) != 0) {
        die("pipe", 0);
    }
    pid_t child = fork();
    if (child == 0) {
        side s;
        side_init(&s, k, fds, false, ping, pong);
        char c = 1;
        if (write(ready[1], &c, 1) != 1) {
            _exit(1);
        }
        for (int i = 0; i < rounds + 100; i++) {
            await_one(&s);
            send_one(&s);
        }
        _exit(0);
    }
    side s;
    side_init(&s, k, fds, true, ping, pong);
    char c;
    if (read(ready[0], &c, 1) != 1) {
        die("child", 0);
    }
    uint64_t *t = malloc(sizeof(uint64_t) * (size_t)rounds);
    for (int i = 0; i < rounds + 100; i++) {
        uint64_t t0 = now_ns();
        send_one(&s);
        await_one(&s);
        if (i >= 100) { /* the first 100 warm up */
            t[i - 100] = now_ns() - t0;
        }
    }
    waitpid(child, NULL, 0);
    qsort(t, (size_t)rounds, sizeof(*t), cmp_u64);
    *p50 = t[rounds / 2];
    *p99 = t[rounds * 99 / 100];
    free(t);
    if (k >= 2) {
        shmchan_latest_close(s.in);
        shmchan_latest_close(s.out);
        shmchan_unlink(ping, 0);
        shmchan_unlink(pong, 0);
    }
    close(ready[0]);
    close(ready[1]);
    if (k <= 1) {
        close(fds[0]);
        close(fds[2]);
        if (k == 0) {
            close(fds[1]);
            close(fds[3]);
        }
    }
    close(s.ep);
}

static void
rtt(int rounds)
{
    for (int qos = 0; qos < 2; qos++) {
        int qfd = -1;
        if (qos) {
            int32_t zero = 0;
            qfd = open("/dev/cpu_dma_latency", O_WRONLY | O_CLOEXEC);
            if (qfd < 0 || write(qfd, &zero, sizeof(zero)) != sizeof(zero)) {
                printf("\n(PM-QoS: /dev/cpu_dma_latency not writable, skipped)\n");
                break;
            }
        }
        printf("\n64 B round trip, each side waiting, %d rounds, PM-QoS %s\n\n", rounds,
               qos ? "on (cpu_dma_latency 0)" : "off");
        printf("| transport | p50 us | p99 us | p50 / pipe |\n|---|---:|---:|---:|\n");
        uint64_t p50[KINDS], p99[KINDS];
        for (int k = 0; k < KINDS; k++) {
            rtt_run(k, rounds, &p50[k], &p99[k]);
        }
        for (int k = 0; k < KINDS; k++) {
            printf("| %s | %.2f | %.2f | %.2f |\n", KIND_NAMES[k], (double)p50[k] / 1e3,
                   (double)p99[k] / 1e3, (double)p50[k] / (double)p50[0]);
            csv_row("rtt", KIND_IDS[k], qos ? "held" : "off", "p50_ns", (double)p50[k]);
        }
        if (qfd >= 0) {
            close(qfd);
        }
    }
}

/* ---------------------------------------------------------------- fan-in */

#define NCHAN 1000

static uint64_t
rnd(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

static void
raise_nofile(void)
{
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
}

/* 1000 queues: returns ns per message in the reader, or 0 on a miss. */
static double
fanin_shmchan(uint64_t messages)
{
    static char names[NCHAN][32];
    static shmchan_queue *subs[NCHAN];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < NCHAN; i++) {
        snprintf(names[i], sizeof(names[i]), "nbf%d.%d", (int)getpid(), i);
        shmchan_opts o;
        shmchan_opts_init(&o);
        o.flags = SHMCHAN_CREATE | SHMCHAN_SUBSCRIBE;
        o.capacity = 4096;
        o.max_msg = 64;
        o.max_readers = 1;
        o.max_writers = 1;
        int rc = shmchan_queue_open(names[i], &o, &subs[i]);
        int fd = -1;
        if (rc != SHMCHAN_OK || (rc = shmchan_queue_notify(subs[i], &fd)) != SHMCHAN_OK) {
            die("fan-in queue", rc);
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    pid_t child = fork();
    if (child == 0) {
        static shmchan_queue *w[NCHAN];
        for (int i = 0; i < NCHAN; i++) {
            shmchan_opts o;
            shmchan_opts_init(&o);
            if (shmchan_queue_open(names[i], &o, &w[i]) != SHMCHAN_OK) {
                _exit(1);
            }
        }
        uint64_t x = 88172645463325252ull;
        for (uint64_t m = 0; m < messages; m++) {
            if (shmchan_queue_send(w[rnd(&x) % NCHAN], &m, sizeof(m), 10000) != SHMCHAN_OK) {
                _exit(2);
            }
        }
        _exit(0);
    }
    uint8_t *seen = calloc(messages, 1);
    uint64_t got = 0, dup = 0;
    uint64_t t0 = now_ns();
    while (got < messages) {
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, 10000);
        if (k <= 0) {
            break;
        }
        for (int j = 0; j < k; j++) {
            shmchan_queue *q = subs[evs[j].data.u32];
            uint64_t m = 0;
            size_t len = 0;
            while (shmchan_queue_recv(q, &m, sizeof(m), 0, &len, NULL) == SHMCHAN_OK) {
                if (m < messages && !seen[m]) {
                    seen[m] = 1;
                    got++;
                } else {
                    dup++;
                }
            }
            shmchan_queue_arm(q);
        }
    }
    double ns = (double)(now_ns() - t0) / (double)messages;
    int st = 0;
    waitpid(child, &st, 0);
    printf("  shmchan: %" PRIu64 " of %" PRIu64 " messages seen once, %" PRIu64
           " duplicates, writer status %d\n",
           got, messages, dup, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    for (int i = 0; i < NCHAN; i++) {
        shmchan_queue_close(subs[i]);
        shmchan_unlink(names[i], 0);
    }
    free(seen);
    close(ep);
    return got == messages && dup == 0 ? ns : 0;
}

static double
fanin_unix(uint64_t messages)
{
    static int rd[NCHAN], wr[NCHAN];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < NCHAN; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0) {
            die("socketpair", 0);
        }
        rd[i] = sv[0];
        wr[i] = sv[1];
        fcntl(rd[i], F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, rd[i], &ev);
    }
    pid_t child = fork();
    if (child == 0) {
        uint64_t x = 88172645463325252ull;
        for (uint64_t m = 0; m < messages; m++) {
            if (send(wr[rnd(&x) % NCHAN], &m, sizeof(m), 0) != (ssize_t)sizeof(m)) {
                _exit(2);
            }
        }
        _exit(0);
    }
    uint8_t *seen = calloc(messages, 1);
    uint64_t got = 0;
    uint64_t t0 = now_ns();
    while (got < messages) {
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, 10000);
        if (k <= 0) {
            break;
        }
        for (int j = 0; j < k; j++) {
            uint64_t m;
            while (recv(rd[evs[j].data.u32], &m, sizeof(m), 0) == (ssize_t)sizeof(m)) {
                if (m < messages && !seen[m]) {
                    seen[m] = 1;
                    got++;
                }
            }
        }
    }
    double ns = (double)(now_ns() - t0) / (double)messages;
    waitpid(child, NULL, 0);
    printf("  unix:    %" PRIu64 " of %" PRIu64 " messages seen\n", got, messages);
    for (int i = 0; i < NCHAN; i++) {
        close(rd[i]);
        close(wr[i]);
    }
    free(seen);
    close(ep);
    return got == messages ? ns : 0;
}

static void
fanin(uint64_t messages)
{
    raise_nofile();
    printf("\nOne epoll loop over %d channels, %" PRIu64 " messages of 8 B on random channels\n\n",
           NCHAN, messages);
    double s = fanin_shmchan(messages), u = fanin_unix(messages);
    printf("\n| transport | ns per message (reader, wall) | ratio to Unix sockets |\n"
           "|---|---:|---:|\n| shmchan queues + handles | %.0f | %.2f |\n"
           "| Unix datagram sockets | %.0f | 1.00 |\n",
           s, u > 0 ? s / u : 0, u);
    /* 0: not every message was seen exactly once (no figure, a failure) */
    csv_row("fanin", "shmchan", "off", "ns_per_msg", s);
    csv_row("fanin", "unix", "off", "ns_per_msg", u);
}

int
main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "all";
    int rounds = 20000;
    uint64_t messages = 1000000;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--rounds") == 0) {
            rounds = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--messages") == 0) {
            messages = strtoull(argv[i + 1], NULL, 10);
        } else if (strcmp(argv[i], "--csv") == 0) {
            csv_out = fopen(argv[i + 1], "a");
            if (csv_out == NULL) {
                die(argv[i + 1], 0);
            }
        } else {
            fprintf(stderr, "notify_bench: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (strcmp(what, "rtt") == 0 || strcmp(what, "all") == 0) {
        rtt(rounds);
    }
    if (strcmp(what, "fanin") == 0 || strcmp(what, "all") == 0) {
        fanin(messages);
    }
    if (csv_out != NULL) {
        fclose(csv_out);
    }
    return 0;
}
