/*
 * A C peer for the Python binding's interop tests: a real C program on the
 * public API, started by the tests as a separate process.
 *
 * Messages travel as hexadecimal on the command line and on stdout, so any
 * byte survives. A channel argument "file:PATH" is a file-backed channel.
 *
 *   c_peer abi                          struct sizes and field offsets
 *   c_peer errors                       the header's error table
 *   c_peer publish CH MAXMSG HEX...     create or open, publish each, print seqs
 *   c_peer read CH                      print "SEQ HEX" of the newest message
 *   c_peer follow CH COUNT TIMEOUT_MS   print COUNT successive newest messages
 *   c_peer echo IN OUT COUNT            read each new message on IN, publish it on OUT
 *   c_peer qsend CH HEX...              send each message to a queue
 *   c_peer qrecv CH ROLE COUNT TIMEOUT_MS  ROLE sub|oldest|worker; print "SEQ LOST HEX"
 *   c_peer qecho IN OUT COUNT           receive on IN as subscriber, send on OUT
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmchan/shmchan.h"

#define MAX_MSG_BUF (1u << 20)

static unsigned char buf[MAX_MSG_BUF];

static int
die(const char *what, int rc)
{
    fprintf(stderr, "c_peer: %s: %s (%s)\n", what, shmchan_strerror(rc), shmchan_errname(rc));
    return 2;
}

/* Channel argument to name and flags. */
static const char *
channel(const char *arg, uint32_t *flags)
{
    if (strncmp(arg, "file:", 5) == 0) {
        *flags |= SHMCHAN_FILE;
        return arg + 5;
    }
    return arg;
}

static size_t
unhex(const char *hex, unsigned char *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    if (n > cap) {
        n = cap;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        (void)sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (unsigned char)v;
    }
    return n;
}

static void
print_hex(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
    if (n == 0) {
        printf("-"); /* an empty message still has a field */
    }
}

#define FIELD(type, field) \
    printf("%s.%s %zu %zu\n", #type, #field, offsetof(type, field), sizeof(((type *)0)->field))

static int
cmd_abi(void)
{
    printf("shmchan_opts %zu\n", sizeof(shmchan_opts));
    FIELD(shmchan_opts, flags);
    FIELD(shmchan_opts, max_msg);
    FIELD(shmchan_opts, capacity);
    FIELD(shmchan_opts, spin_ns);
    FIELD(shmchan_opts, reserved);
    printf("shmchan_info %zu\n", sizeof(shmchan_info));
    FIELD(shmchan_info, max_msg);
    FIELD(shmchan_info, oldest_seq);
    FIELD(shmchan_info, readers);
    FIELD(shmchan_info, layout_version);
    FIELD(shmchan_info, created_unix_ns);
    FIELD(shmchan_info, in_use);
    FIELD(shmchan_info, reserved);
    printf("shmchan_peer %zu\n", sizeof(shmchan_peer));
    FIELD(shmchan_peer, alive);
    FIELD(shmchan_peer, position);
    FIELD(shmchan_peer, lost);
    printf("shmchan_msg %zu\n", sizeof(shmchan_msg));
    FIELD(shmchan_msg, len);
    FIELD(shmchan_msg, token);
    return 0;
}

static int
cmd_errors(void)
{
#define X(name, code, msg) printf("%d SHMCHAN_%s %s\n", (code), #name, (msg));
    SHMCHAN_ERRNO_MAP(X)
#undef X
    return 0;
}

static int
open_latest(const char *arg, uint64_t max_msg, uint32_t extra, shmchan_latest **ch)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    const char *name = channel(arg, &o.flags);
    o.flags |= extra;
    o.max_msg = max_msg;
    return shmchan_latest_open(name, &o, ch);
}

static int
cmd_publish(int argc, char **argv)
{
    shmchan_latest *ch = NULL;
    int rc = open_latest(argv[0], strtoull(argv[1], NULL, 10), SHMCHAN_CREATE, &ch);
    if (rc != SHMCHAN_OK) {
        return die("open", rc);
    }
    for (int i = 2; i < argc; i++) {
        size_t n = unhex(argv[i], buf, sizeof(buf));
        uint64_t seq = 0;
        rc = shmchan_latest_publish(ch, buf, n, &seq);
        if (rc != SHMCHAN_OK) {
            return die("publish", rc);
        }
        printf("%llu\n", (unsigned long long)seq);
    }
    shmchan_latest_close(ch);
    return 0;
}

static int
cmd_read(char **argv)
{
    shmchan_latest *ch = NULL;
    int rc = open_latest(argv[0], 0, 0, &ch);
    if (rc != SHMCHAN_OK) {
        return die("open", rc);
    }
    size_t len = 0;
    uint64_t seq = 0;
    rc = shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq);
    if (rc != SHMCHAN_OK) {
        return die("read", rc);
    }
    printf("%llu ", (unsigned long long)seq);
    print_hex(buf, len);
    printf("\n");
    shmchan_latest_close(ch);
    return 0;
}

static int
cmd_follow(char **argv)
{
    shmchan_latest *ch = NULL;
    int rc = open_latest(argv[0], 0, 0, &ch);
    if (rc != SHMCHAN_OK) {
        return die("open", rc);
    }
    long count = strtol(argv[1], NULL, 10);
    int64_t timeout = strtoll(argv[2], NULL, 10);
    printf("ready\n");
    fflush(stdout);
    uint64_t seq = 0;
    for (long i = 0; i < count; i++) {
        size_t len = 0;
        rc = shmchan_latest_read_next(ch, seq, buf, sizeof(buf), timeout, &len, &seq);
        if (rc != SHMCHAN_OK) {
            return die("read_next", rc);
        }
        printf("%llu ", (unsigned long long)seq);
        print_hex(buf, len);
        printf("\n");
        fflush(stdout);
    }
    shmchan_latest_close(ch);
    return 0;
}

static int
cmd_echo(char **argv)
{
    shmchan_latest *in = NULL, *out = NULL;
    int rc = open_latest(argv[0], 0, 0, &in);
    if (rc == SHMCHAN_OK) {
        rc = open_latest(argv[1], 0, 0, &out);
    }
    if (rc != SHMCHAN_OK) {
        return die("open", rc);
    }
    long count = strtol(argv[2], NULL, 10);
    uint64_t seq = 0;
    for (long i = 0; i < count; i++) {
        size_t len = 0;
        rc = shmchan_latest_read_next(in, seq, buf, sizeof(buf), 10000, &len, &seq);
        if (rc == SHMCHAN_OK) {
            rc = shmchan_latest_publish(out, buf, len, NULL);
        }
        if (rc != SHMCHAN_OK) {
            return die("echo", rc);
        }
    }
    shmchan_latest_close(in);
    shmchan_latest_close(out);
    return 0;
}

#ifdef C_PEER_QUEUES
static int
open_queue(const char *arg, uint32_t extra, shmchan_queue **q)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    const char *name = channel(arg, &o.flags);
    o.flags |= extra;
    return shmchan_queue_open(name, &o, q);
}

static int
cmd_qsend(int argc, char **argv)
{
    shmchan_queue *q = NULL;
    int rc = open_queue(argv[0], 0, &q);
    if (rc != SHMCHAN_OK) {
        return die("open", rc);
    }
    for (int i = 1; i < argc; i++) {
        size_t n = unhex(argv[i], buf, sizeof(buf));
        rc = shmchan_queue_send(q, buf, n, 10000);
        if (rc != SHMCHAN_OK) {
            return die("send", rc);
        }
    }
    shmchan_queue_close(q);
    return 0;
}

static int
cmd_qrecv(char **argv)
{
    uint32_t role = strcmp(argv[1], "worker") == 0   ? SHMCHAN_WORKER
                    : strcmp(argv[1], "oldest") == 0 ? SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST
                                                     : SHMCHAN_SUBSCRIBE;
    shmchan_queue *q = NULL;
    int rc = open_queue(argv[0], role, &q);
    if (rc != SHMCHAN_OK) {
        return die("open", rc);
    }
    long count = strtol(argv[2], NULL, 10);
    int64_t timeout = strtoll(argv[3], NULL, 10);
    printf("ready\n");
    fflush(stdout);
    for (long i = 0; i < count; i++) {
        size_t len = 0;
        shmchan_msg m;
        rc = shmchan_queue_recv(q, buf, sizeof(buf), timeout, &len, &m);
        if (rc != SHMCHAN_OK) {
            return die("recv", rc);
        }
        printf("%llu %llu ", (unsigned long long)m.seq, (unsigned long long)m.lost);
        print_hex(buf, len);
        printf("\n");
        fflush(stdout);
    }
    shmchan_queue_close(q);
    return 0;
}

static int
cmd_qecho(char **argv)
{
    shmchan_queue *in = NULL, *out = NULL;
    int rc = open_queue(argv[0], SHMCHAN_SUBSCRIBE, &in);
    if (rc == SHMCHAN_OK) {
        rc = open_queue(argv[1], 0, &out);
    }
    if (rc != SHMCHAN_OK) {
        return die("open", rc);
    }
    printf("ready\n");
    fflush(stdout);
    long count = strtol(argv[2], NULL, 10);
    for (long i = 0; i < count; i++) {
        size_t len = 0;
        rc = shmchan_queue_recv(in, buf, sizeof(buf), 10000, &len, NULL);
        if (rc == SHMCHAN_OK) {
            rc = shmchan_queue_send(out, buf, len, 10000);
        }
        if (rc != SHMCHAN_OK) {
            return die("qecho", rc);
        }
    }
    shmchan_queue_close(in);
    shmchan_queue_close(out);
    return 0;
}
#endif

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: c_peer COMMAND ARGS (see the source)\n");
        return 2;
    }
    const char *cmd = argv[1];
    int n = argc - 2;
    char **a = argv + 2;
    if (strcmp(cmd, "abi") == 0) {
        return cmd_abi();
    }
    if (strcmp(cmd, "errors") == 0) {
        return cmd_errors();
    }
    if (strcmp(cmd, "publish") == 0 && n >= 2) {
        return cmd_publish(n, a);
    }
    if (strcmp(cmd, "read") == 0 && n == 1) {
        return cmd_read(a);
    }
    if (strcmp(cmd, "follow") == 0 && n == 3) {
        return cmd_follow(a);
    }
    if (strcmp(cmd, "echo") == 0 && n == 3) {
        return cmd_echo(a);
    }
#ifdef C_PEER_QUEUES
    if (strcmp(cmd, "qsend") == 0 && n >= 1) {
        return cmd_qsend(n, a);
    }
    if (strcmp(cmd, "qrecv") == 0 && n == 4) {
        return cmd_qrecv(a);
    }
    if (strcmp(cmd, "qecho") == 0 && n == 3) {
        return cmd_qecho(a);
    }
#else
    if (cmd[0] == 'q') {
        fprintf(stderr, "c_peer: built without queues\n");
        return 3;
    }
#endif
    fprintf(stderr, "c_peer: bad command or arguments: %s\n", cmd);
    return 2;
}
