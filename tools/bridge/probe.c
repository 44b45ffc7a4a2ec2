/* shmchan-bridge-probe: writes and checks numbered messages, for the bridge's
 * tests (scripts/test-bridge.sh) and benchmarks. Every message is
 * "<id>\n" followed by filler derived from the id, so a receiver checks every
 * byte. Not installed.
 *
 *   qsend NAME FROM COUNT [SIZE]   send ids FROM.., print each id once sent
 *   qrecv NAME IDLE_MS [AFTER_SEQ] subscribe (oldest held, skipping local seqs
 *                                  <= AFTER_SEQ), print "seq id" per message,
 *                                  exit after IDLE_MS without one
 *   lpub NAME COUNT [SLEEP_US]     publish ids after the channel's newest
 *   lwatch NAME IDLE_MS            print each new id; exit 3 if one goes back
 *   qcreate NAME [CAPACITY]        create a block-policy queue (max_msg 128 KiB)
 */
#define _GNU_SOURCE
#include <shmchan/shmchan.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXMSG (1u << 20)

static size_t fill(unsigned char *buf, unsigned long long id, size_t size)
{
    int n = snprintf((char *)buf, 32, "%llu\n", id);
    size_t len = size > (size_t)n ? size : (size_t)n;
    for (size_t i = (size_t)n; i < len; i++)
        buf[i] = (unsigned char)(id * 31 + i);
    return len;
}

/* The id, or -1 when the bytes are not what fill() wrote. */
static long long check(const unsigned char *buf, size_t len)
{
    char head[32];
    size_t n = 0;
    while (n < len && n < 31 && buf[n] != '\n')
        n++;
    if (n == len || n == 31 || n == 0)
        return -1;
    memcpy(head, buf, n);
    head[n] = 0;
    char *end;
    unsigned long long id = strtoull(head, &end, 10);
    if (*end)
        return -1;
    for (size_t i = n + 1; i < len; i++)
        if (buf[i] != (unsigned char)(id * 31 + i))
            return -1;
    return (long long)id;
}

static int die(const char *what, int rc)
{
    fprintf(stderr, "probe: %s: %s (%s)\n", what, shmchan_strerror(rc), shmchan_errname(rc));
    return 1;
}

/* Open the queue as it is, or create it large enough for the tests. */
static int qopen(const char *name, uint32_t role, shmchan_queue **q)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = role;
    int rc = shmchan_queue_open(name, &o, q);
    if (rc != SHMCHAN_ENOENT)
        return rc;
    o.flags = role | SHMCHAN_CREATE;
    o.capacity = 4u << 20;
    o.max_msg = 128 * 1024;
    return shmchan_queue_open(name, &o, q);
}

static int qsend(const char *name, unsigned long long from, unsigned long long count, size_t size)
{
    shmchan_queue *q;
    int rc = qopen(name, 0, &q);
    if (rc)
        return die(name, rc);
    unsigned char *buf = malloc(MAXMSG);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (unsigned long long id = from; id < from + count; id++) {
        size_t len = fill(buf, id, size);
        rc = shmchan_queue_send(q, buf, len, SHMCHAN_WAIT_FOREVER);
        if (rc)
            return die("send", rc);
        printf("%llu\n", id);
    }
    shmchan_queue_close(q);
    return 0;
}

static int qrecv(const char *name, int idle_ms, unsigned long long after)
{
    shmchan_queue *q;
    int rc = qopen(name, SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST, &q);
    if (rc)
        return die(name, rc);
    fprintf(stderr, "subscribed\n"); /* from here on, block-policy writers wait for us */
    unsigned char *buf = malloc(MAXMSG);
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        size_t len;
        shmchan_msg info;
        rc = shmchan_queue_recv(q, buf, MAXMSG, idle_ms, &len, &info);
        if (rc == SHMCHAN_ETIMEDOUT)
            break;
        if (rc)
            return die("recv", rc);
        if (info.seq <= after)
            continue;
        long long id = check(buf, len);
        if (id < 0) {
            printf("CORRUPT seq %llu len %zu\n", (unsigned long long)info.seq, len);
            return 3;
        }
        printf("%llu %lld\n", (unsigned long long)info.seq, id);
    }
    free(buf); /* the sanitizer build's leak check runs at exit */
    shmchan_queue_close(q);
    return 0;
}

static int lpub(const char *name, unsigned long long count, long sleep_us)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_CREATE;
    shmchan_latest *ch;
    int rc = shmchan_latest_open(name, &o, &ch);
    if (rc)
        return die(name, rc);
    unsigned char buf[4096];
    size_t len;
    unsigned long long id = 0;
    if (shmchan_latest_read(ch, buf, sizeof buf, &len, NULL) == SHMCHAN_OK && check(buf, len) > 0)
        id = (unsigned long long)check(buf, len);
    for (unsigned long long i = 0; i < count; i++) {
        len = fill(buf, ++id, 64);
        rc = shmchan_latest_publish(ch, buf, len, NULL);
        if (rc)
            return die("publish", rc);
        struct timespec ts = {0, sleep_us * 1000L};
        if (sleep_us)
            nanosleep(&ts, NULL);
    }
    printf("%llu\n", id);
    shmchan_latest_close(ch);
    return 0;
}

static int lwatch(const char *name, int idle_ms)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_CREATE;
    shmchan_latest *ch;
    int rc = shmchan_latest_open(name, &o, &ch);
    if (rc)
        return die(name, rc);
    unsigned char buf[4096];
    setvbuf(stdout, NULL, _IOLBF, 0);
    uint64_t seq = 0;
    long long last = -1;
    for (;;) {
        size_t len;
        rc = shmchan_latest_read_next(ch, seq, buf, sizeof buf, idle_ms, &len, &seq);
        if (rc == SHMCHAN_ETIMEDOUT)
            break;
        if (rc)
            return die("read", rc);
        long long id = check(buf, len);
        if (id < 0 || id <= last) {
            printf("%s %lld after %lld\n", id < 0 ? "CORRUPT" : "BACKWARDS", id, last);
            return 3;
        }
        last = id;
        printf("%lld\n", id);
    }
    shmchan_latest_close(ch);
    return 0;
}

static int qcreate(const char *name, unsigned long cap)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_CREATE;
    o.capacity = cap;
    o.max_msg = 128 * 1024;
    o.policy = SHMCHAN_POLICY_BLOCK;
    shmchan_queue *q;
    int rc = shmchan_queue_open(name, &o, &q);
    if (rc)
        return die(name, rc);
    shmchan_queue_close(q);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "qcreate") == 0)
        return qcreate(argv[2], argc > 3 ? strtoul(argv[3], NULL, 10) : 4u << 20);
    if (argc >= 5 && strcmp(argv[1], "qsend") == 0)
        return qsend(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
                     argc > 5 ? strtoul(argv[5], NULL, 10) : 16);
    if (argc >= 4 && strcmp(argv[1], "qrecv") == 0)
        return qrecv(argv[2], atoi(argv[3]), argc > 4 ? strtoull(argv[4], NULL, 10) : 0);
    if (argc >= 4 && strcmp(argv[1], "lpub") == 0)
        return lpub(argv[2], strtoull(argv[3], NULL, 10), argc > 4 ? atol(argv[4]) : 0);
    if (argc >= 4 && strcmp(argv[1], "lwatch") == 0)
        return lwatch(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: see the comment at the top of tools/bridge/probe.c\n");
    return 2;
}
