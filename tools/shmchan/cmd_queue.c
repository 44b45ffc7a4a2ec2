/*
 * Queues: send, recv, follow.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "sys.h"

/* --------------------------------------------------------------- send */

typedef struct sender {
    shmchan_queue *q;
    const char *name;
    int64_t timeout_ms; /* per message */
    uint64_t sent;
} sender;

struct send_wait {
    shmchan_queue *q;
    const void *data;
    size_t len;
};

static int
send_wait_fn(void *ctx, int64_t timeout_ms)
{
    struct send_wait *w = ctx;
    return shmchan_queue_send(w->q, w->data, w->len, timeout_ms);
}

static int
send_one(sender *s, const void *data, size_t len)
{
    struct send_wait w = {s->q, data, len};
    int rc = cli_wait(send_wait_fn, &w, cli_deadline(s->timeout_ms));
    if (rc == SHMCHAN_OK) {
        s->sent++;
        return CLI_OK;
    }
    if (rc == SHMCHAN_EINTR) {
        return cli_exit_interrupted();
    }
    if (rc == SHMCHAN_EMSGSIZE) {
        return cli_errorf("send", s->name, "message %" PRIu64 " of %zu bytes is larger than the "
                          "channel's maximum of %zu (SHMCHAN_EMSGSIZE)",
                          s->sent + 1, len, shmchan_queue_max_msg(s->q));
    }
    if (rc == SHMCHAN_ETIMEDOUT && s->timeout_ms == 0) {
        return cli_errorf("send", s->name, "queue full after %" PRIu64 " messages (SHMCHAN_EAGAIN)",
                          s->sent);
    }
    return cli_errorf("send", s->name, "%s after %" PRIu64 " messages (%s)", shmchan_strerror(rc),
                      s->sent, shmchan_errname(rc));
}

static int
send_args(sender *s, const cli_args *a)
{
    for (int i = 1; i < a->npos; i++) {
        int rc = send_one(s, a->pos[i], strlen(a->pos[i]));
        if (rc != CLI_OK) {
            return rc;
        }
    }
    return CLI_OK;
}

static int
input_error(sender *s, int rc, size_t max)
{
    if (rc == SHMCHAN_EMSGSIZE) {
        return cli_errorf("send", s->name, "input message %" PRIu64 " is larger than the "
                          "channel's maximum of %zu bytes (SHMCHAN_EMSGSIZE)",
                          s->sent + 1, max);
    }
    if (rc == SHMCHAN_ETRUNCATED) {
        return cli_errorf("send", s->name, "input ends inside frame %" PRIu64
                          " (SHMCHAN_ETRUNCATED)", s->sent + 1);
    }
    if (rc == SHMCHAN_ESYS) {
        if (sys_interrupted()) {
            return cli_exit_interrupted();
        }
        return cli_errorf("send", s->name, "reading standard input: %s", strerror(errno));
    }
    return cli_error("send", s->name, rc);
}

static int
send_stdin(sender *s, bool frames)
{
    cli_buf b = {0};
    size_t max = shmchan_queue_max_msg(s->q);
    int rc = CLI_OK;
    for (;;) {
        size_t len = 0;
        int r = frames ? in_read_frame(stdin, &b, max, &len) : in_read_line(stdin, &b, max, &len);
        if (r == SHMCHAN_EAGAIN) {
            break;
        }
        rc = r != SHMCHAN_OK ? input_error(s, r, max) : send_one(s, b.p, len);
        if (rc != CLI_OK) {
            break;
        }
    }
    buf_free(&b);
    return rc;
}

static int
run_send(const cli_args *a)
{
    const char *name = a->pos[0];
    sender s = {NULL, name, a->timeout_ms, 0};
    sys_catch_interrupts();
    int rc = cli_open_queue("send", name, cli_flags(a, name), &s.q);
    if (rc != CLI_OK) {
        return rc;
    }
    bool from_stdin = a->npos == 1 || (a->npos == 2 && strcmp(a->pos[1], "-") == 0);
    rc = from_stdin ? send_stdin(&s, a->fmt == FMT_FRAMES) : send_args(&s, a);
    shmchan_queue_close(s.q);
    return rc;
}

const cli_cmd cli_cmd_send = {
    .name = "send",
    .summary = "send messages to a queue",
    .run = run_send,
    .opts = O(OPT_GLOBAL) | O(OPT_LINES) | O(OPT_FRAMES) | O(OPT_TIMEOUT),
    .min_pos = 1,
    .max_pos = -1,
    .names = 1,
    .usage = "NAME [MSG... | -] [--lines | --frames] [--timeout SEC]",
    .help =
        "Send messages to a queue: each MSG argument is one message; without MSG (or\n"
        "with '-') standard input is read until its end.\n\n"
        "  --lines            each input line is one message, without its newline (the\n"
        "                     default; a last line without a newline counts too)\n"
        "  --frames           input is frames: a 4-byte little-endian length, then that\n"
        "                     many bytes (binary-safe; `recv --frames` writes the same)\n"
        "  -t, --timeout SEC  in block mode, how long each message may wait for space\n"
        "                     (default: for ever; 0: fail at once when the queue is full)\n"
        "  --global           Windows: the Global\\ namespace\n\n"
        "Stops at the first message that cannot be sent (status 1, saying how many were\n"
        "sent). Ctrl-C ends it with status 128+signal.\n",
};

/* ----------------------------------------------------------- recv/follow */

struct recv_wait {
    shmchan_queue *q;
    cli_buf *b;
    size_t len;
    shmchan_msg info;
};

static int
recv_wait_fn(void *ctx, int64_t timeout_ms)
{
    struct recv_wait *w = ctx;
    for (;;) {
        int rc = shmchan_queue_recv(w->q, w->b->p, w->b->cap, timeout_ms, &w->len, &w->info);
        if (rc != SHMCHAN_EMSGSIZE) {
            return rc;
        }
        if (!buf_reserve(w->b, w->len)) { /* the message waits in place meanwhile */
            return SHMCHAN_ENOMEM;
        }
    }
}

static void
report_lost(const cli_args *a, const char *name, const shmchan_msg *m)
{
    if (m->lost != 0 && a->fmt != FMT_JSON) {
        cli_errorf(a->cmd->name, name, "%" PRIu64 " messages lost before sequence %" PRIu64
                   " (overwritten unread)", m->lost, m->seq);
    }
}

static int
recv_loop(const cli_args *a, const char *name, shmchan_queue *q, uint64_t want,
          uint64_t *got)
{
    cli_buf b = {0};
    struct recv_wait w = {q, &b, 0, {0}};
    uint64_t deadline = cli_deadline(a->timeout_ms);
    int rc = buf_reserve(&b, 4096) ? SHMCHAN_OK : SHMCHAN_ENOMEM;
    while (rc == SHMCHAN_OK && (want == 0 || *got < want)) {
        rc = cli_wait(recv_wait_fn, &w, deadline);
        if (rc == SHMCHAN_OK) {
            report_lost(a, name, &w.info);
            rc = out_message(a, b.p, w.len, w.info.seq, w.info.lost, true);
            *got += rc == SHMCHAN_OK;
        }
    }
    buf_free(&b);
    return rc;
}

static uint32_t
reader_flags(const cli_args *a)
{
    if (cli_has(a, OPT_WORKER)) {
        return SHMCHAN_WORKER;
    }
    return SHMCHAN_SUBSCRIBE | (cli_has(a, OPT_OLDEST) ? SHMCHAN_OLDEST : 0u);
}

static int
recv_result(const cli_args *a, const char *name, int rc, uint64_t want, uint64_t got)
{
    switch (rc) {
    case SHMCHAN_OK:
        return CLI_OK;
    case SHMCHAN_EINTR:
        return cli_exit_interrupted();
    case SHMCHAN_ETIMEDOUT:
        if (want == 0) {
            return CLI_OK; /* the timeout was how long to listen */
        }
        return cli_errorf(a->cmd->name, name, "timed out after %" PRIu64 " of %" PRIu64
                          " messages (SHMCHAN_ETIMEDOUT)", got, want);
    case SHMCHAN_ESYS:
        if (sys_interrupted()) {
            return cli_exit_interrupted(); /* the reader of our pipe left */
        }
        return cli_errorf(a->cmd->name, name, "writing output: %s", strerror(errno));
    default:
        return cli_error(a->cmd->name, name, rc);
    }
}

/* recv and follow differ only in their default count: 1 and unlimited. */
static int
receive(const cli_args *a, uint64_t default_count)
{
    const char *name = a->pos[0];
    const char *verb = a->cmd->name;
    if (cli_has(a, OPT_WORKER) && cli_has(a, OPT_OLDEST)) {
        return cli_usage(verb, "--oldest applies to subscribers, not to --worker");
    }
    if (a->npos > 1) {
        return cli_multi_run(a, true, reader_flags(a));
    }
    sys_catch_interrupts();
    sys_watch_stdout(); /* `follow q | head -1` ends when head does */
    shmchan_queue *q;
    int rc = cli_open_queue(verb, name, cli_flags(a, name) | reader_flags(a), &q);
    if (rc != CLI_OK) {
        return rc;
    }
    uint64_t want = cli_has(a, OPT_COUNT) ? a->count : default_count, got = 0;
    rc = recv_loop(a, name, q, want, &got);
    shmchan_queue_close(q);
    return recv_result(a, name, rc, want, got);
}

static int
run_recv(const cli_args *a)
{
    return receive(a, 1);
}

static int
run_follow(const cli_args *a)
{
    return receive(a, 0);
}

#define RECV_OPTS                                                                          \
    (O(OPT_GLOBAL) | O(OPT_COUNT) | O(OPT_TIMEOUT) | O(OPT_OLDEST) | O(OPT_WORKER) |        \
     O(OPT_SEQ) | O(OPT_JSON) | O(OPT_NULL) | O(OPT_FRAMES) | O(OPT_LINES))

#define RECV_OPTIONS_HELP                                                                  \
    "  --oldest           join at the oldest message the queue still holds, not at\n"      \
    "                     the newest (subscribers; replays history)\n"                     \
    "  --worker           compete with other workers: each message goes to one worker\n"   \
    "                     (default: subscribe, i.e. get every message sent from now)\n"    \
    "  --seq              precede each message with its sequence number and a space\n"     \
    "  --lines            each message as raw bytes and a newline (the default)\n"         \
    "  --null             each message as raw bytes and a NUL byte\n"                      \
    "  --frames           each message as a 4-byte little-endian length and the bytes\n"   \
    "  --json             one JSON object per line: seq, lost, len, encoding, data\n"      \
    "  --global           Windows: the Global\\ namespace\n\n"                             \
    "In overwrite mode a subscriber that fell behind is told on stderr how many\n"          \
    "messages it lost (with --json: the \"lost\" field). Ctrl-C, SIGTERM and SIGHUP\n"      \
    "end it cleanly with status 128+signal, releasing its reader slot.\n"

const cli_cmd cli_cmd_recv = {
    .name = "recv",
    .summary = "receive messages from a queue",
    .run = run_recv,
    .opts = RECV_OPTS,
    .min_pos = 1,
    .max_pos = 1,
    .names = 1,
    .usage = "NAME [--count N] [--timeout SEC] [--oldest | --worker] [--seq]\n"
             "              [--json | --null | --frames]",
    .help =
        "Receive messages from a queue and write them to standard output, then exit.\n\n"
        "  -n, --count N      how many messages to receive (default 1; 0: until the\n"
        "                     timeout or Ctrl-C)\n"
        "  -t, --timeout SEC  give up SEC seconds after starting: status 1 if fewer than\n"
        "                     --count messages arrived (0 with --count 0); default: wait\n"
        "                     for ever; 0: take only what is there now\n" RECV_OPTIONS_HELP,
};

const cli_cmd cli_cmd_follow = {
    .name = "follow",
    .summary = "print a queue's messages as they arrive (tail -f)",
    .run = run_follow,
    .opts = RECV_OPTS,
    .min_pos = 1,
    .max_pos = CLI_MAX_POS,
    .names = -1,
    .usage = "NAME... [--oldest | --worker] [--count N] [--timeout SEC] [--seq]\n"
             "              [--json | --null | --frames]",
    .help =
        "Like tail -f: print each message of a queue as it arrives, until Ctrl-C. The\n"
        "same as `recv --count 0`. With several NAMEs it waits on all at once and\n"
        "prefixes each message with \"NAME: \" (--json: a \"name\" field).\n\n"
        "  -n, --count N      exit 0 after N messages (default 0: no limit)\n"
        "  -t, --timeout SEC  stop after SEC seconds (status 0 without --count)\n"
        RECV_OPTIONS_HELP,
};
