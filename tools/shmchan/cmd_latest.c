/*
 * Latest-value channels: put, get, watch.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sys.h"

/* Copy out the newest message, growing b to fit it. */
static int
read_grow(shmchan_latest *ch, cli_buf *b, size_t *len, uint64_t *seq)
{
    for (;;) {
        int rc = shmchan_latest_read(ch, b->p, b->cap, len, seq);
        if (rc != SHMCHAN_EMSGSIZE) {
            return rc;
        }
        if (!buf_reserve(b, *len)) {
            return SHMCHAN_ENOMEM;
        }
    }
}

static int
too_big(const char *verb, const char *name, size_t len, size_t max)
{
    return cli_errorf(verb, name,
                      "message of %zu bytes is larger than the channel's maximum of %zu "
                      "(SHMCHAN_EMSGSIZE)",
                      len, max);
}

/* ---------------------------------------------------------------- put */

static int
put_stdin(shmchan_latest *ch, const char *name)
{
    cli_buf b = {0};
    size_t len = 0, max = shmchan_latest_max_msg(ch);
    int rc = in_read_all(stdin, &b, max, &len);
    if (rc == SHMCHAN_OK) {
        rc = shmchan_latest_publish(ch, b.p, len, NULL);
    }
    buf_free(&b);
    if (rc == SHMCHAN_EMSGSIZE) {
        return cli_errorf("put", name, "standard input holds more than the channel's maximum "
                          "of %zu bytes (SHMCHAN_EMSGSIZE)", max);
    }
    if (rc == SHMCHAN_ESYS) {
        return cli_errorf("put", name, "reading standard input: %s", strerror(errno));
    }
    return rc == SHMCHAN_OK ? CLI_OK : cli_error("put", name, rc);
}

static int
run_put(const cli_args *a)
{
    const char *name = a->pos[0];
    shmchan_latest *ch;
    int rc = cli_open_latest("put", name, cli_flags(a, name), &ch);
    if (rc != CLI_OK) {
        return rc;
    }
    if (a->npos == 2 && strcmp(a->pos[1], "-") != 0) {
        size_t len = strlen(a->pos[1]);
        rc = shmchan_latest_publish(ch, a->pos[1], len, NULL);
        if (rc == SHMCHAN_EMSGSIZE) {
            rc = too_big("put", name, len, shmchan_latest_max_msg(ch));
        } else if (rc != SHMCHAN_OK) {
            rc = cli_error("put", name, rc);
        }
    } else {
        rc = put_stdin(ch, name);
    }
    shmchan_latest_close(ch);
    return rc;
}

const cli_cmd cli_cmd_put = {
    .name = "put",
    .summary = "publish a message on a latest-value channel",
    .run = run_put,
    .opts = O(OPT_GLOBAL),
    .min_pos = 1,
    .max_pos = 2,
    .names = 1,
    .usage = "NAME [MSG | -]",
    .help =
        "Publish one message on a latest-value channel: MSG as given, or all of standard\n"
        "input (binary-safe, exact length) when MSG is '-' or missing. Readers see it at\n"
        "once; watchers are woken.\n\n"
        "  --global   Windows: the Global\\ namespace\n",
};

/* ---------------------------------------------------------------- get */

static int
run_get(const cli_args *a)
{
    const char *name = a->pos[0];
    shmchan_latest *ch;
    int rc = cli_open_latest("get", name, cli_flags(a, name) | SHMCHAN_RDONLY, &ch);
    if (rc != CLI_OK) {
        return rc;
    }
    cli_buf b = {0};
    size_t len = 0;
    uint64_t seq = 0;
    rc = buf_reserve(&b, 4096) ? read_grow(ch, &b, &len, &seq) : SHMCHAN_ENOMEM;
    shmchan_latest_close(ch);
    if (rc == SHMCHAN_EAGAIN) {
        rc = cli_errorf("get", name, "nothing published yet (SHMCHAN_EAGAIN)");
    } else if (rc != SHMCHAN_OK) {
        rc = cli_error("get", name, rc);
    } else if (a->fmt == FMT_JSON) {
        cli_json *o = json_obj();
        json_set_str(o, "name", name);
        json_set_u64(o, "seq", seq);
        json_set_bytes(o, b.p, len);
        rc = json_print(o, false) == 0 ? CLI_OK : CLI_ERR;
    } else {
        if (cli_has(a, OPT_SEQ)) {
            printf("%" PRIu64 " ", seq);
        }
        rc = fwrite(b.p, 1, len, stdout) == len ? CLI_OK : CLI_ERR;
    }
    buf_free(&b);
    return rc;
}

const cli_cmd cli_cmd_get = {
    .name = "get",
    .summary = "print the newest message",
    .run = run_get,
    .opts = O(OPT_GLOBAL) | O(OPT_SEQ) | O(OPT_JSON),
    .min_pos = 1,
    .max_pos = 1,
    .names = 1,
    .usage = "NAME [--seq] [--json]",
    .help =
        "Write the newest message of a latest-value channel to standard output: its\n"
        "exact bytes, nothing added. Fails (status 1) if nothing was published yet.\n"
        "Opens the channel read-only: read permission is enough.\n\n"
        "  --seq      precede the message with its sequence number and a space\n"
        "  --json     one JSON object: name, seq, len, encoding (utf-8 or base64), data\n"
        "  --global   Windows: the Global\\ namespace\n",
};

/* -------------------------------------------------------------- watch */

struct watch_wait {
    shmchan_latest *ch;
    uint64_t after;
};

static int
watch_wait_fn(void *ctx, int64_t timeout_ms)
{
    struct watch_wait *w = ctx;
    return shmchan_latest_wait(w->ch, w->after, timeout_ms, NULL);
}

/* Read-write, so the wait sleeps on the futex; read-only (a gentle poll
 * inside the library) only where we may not write. */
static int
watch_open(const cli_args *a, const char *name, shmchan_latest **ch)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = cli_flags(a, name);
    int rc = shmchan_latest_open(name, &o, ch);
    if (rc == SHMCHAN_EACCES) {
        return cli_open_latest("watch", name, o.flags | SHMCHAN_RDONLY, ch);
    }
    return rc == SHMCHAN_OK ? CLI_OK : cli_open_failed("watch", name, o.flags, rc);
}

static int
watch_loop(const cli_args *a, shmchan_latest *ch, uint64_t *printed)
{
    struct watch_wait w = {ch, cli_has(a, OPT_FROM_NOW) ? shmchan_latest_seq(ch) : 0};
    uint64_t want = cli_has(a, OPT_COUNT) ? a->count : 0;
    uint64_t deadline = cli_deadline(a->timeout_ms);
    cli_buf b = {0};
    int rc = buf_reserve(&b, 4096) ? SHMCHAN_OK : SHMCHAN_ENOMEM;
    while (rc == SHMCHAN_OK && (want == 0 || *printed < want)) {
        rc = cli_wait(watch_wait_fn, &w, deadline);
        size_t len = 0;
        if (rc == SHMCHAN_OK) {
            rc = read_grow(ch, &b, &len, &w.after);
        }
        if (rc == SHMCHAN_OK) {
            rc = out_message(a, b.p, len, w.after, 0, false);
            *printed += rc == SHMCHAN_OK;
        }
    }
    buf_free(&b);
    return rc;
}

static int
run_watch(const cli_args *a)
{
    const char *name = a->pos[0];
    if (a->npos > 1) {
        return cli_multi_run(a, false, 0);
    }
    shmchan_latest *ch;
    sys_catch_interrupts();
    sys_watch_stdout();
    int rc = watch_open(a, name, &ch);
    if (rc != CLI_OK) {
        return rc;
    }
    uint64_t printed = 0;
    rc = watch_loop(a, ch, &printed);
    shmchan_latest_close(ch);
    if (rc == SHMCHAN_OK) {
        return CLI_OK;
    }
    if (rc == SHMCHAN_EINTR) {
        return cli_exit_interrupted();
    }
    if (rc == SHMCHAN_ETIMEDOUT) {
        if (!cli_has(a, OPT_COUNT) || a->count == 0) {
            return CLI_OK; /* the timeout was how long to watch */
        }
        return cli_errorf("watch", name, "timed out after %" PRIu64 " of %" PRIu64
                          " messages (SHMCHAN_ETIMEDOUT)", printed, a->count);
    }
    if (rc == SHMCHAN_ESYS) {
        if (sys_interrupted()) {
            return cli_exit_interrupted(); /* the reader of our pipe left */
        }
        return cli_errorf("watch", name, "writing output: %s", strerror(errno));
    }
    return cli_error("watch", name, rc);
}

const cli_cmd cli_cmd_watch = {
    .name = "watch",
    .summary = "print each new message as it is published",
    .run = run_watch,
    .opts = O(OPT_GLOBAL) | O(OPT_COUNT) | O(OPT_TIMEOUT) | O(OPT_FROM_NOW) | O(OPT_SEQ) |
            O(OPT_JSON) | O(OPT_NULL) | O(OPT_FRAMES) | O(OPT_LINES),
    .min_pos = 1,
    .max_pos = CLI_MAX_POS,
    .names = -1,
    .usage = "NAME... [--count N] [--timeout SEC] [--from-now] [--seq] [--json | --null | --frames]",
    .help =
        "Print the newest message of a latest-value channel, then each newer one as it is\n"
        "published. The process sleeps in the kernel until a publish wakes it (no\n"
        "polling). A latest-value channel keeps only the newest message: when several\n"
        "are published faster than they are printed, the ones in between are skipped\n"
        "(the sequence numbers from --seq show the gaps). With several NAMEs it waits on\n"
        "all at once and prefixes each message with \"NAME: \" (--json: a \"name\" field).\n\n"
        "  -n, --count N      exit 0 after N messages (0: no limit, the default)\n"
        "  -t, --timeout SEC  stop after SEC seconds (fractions allowed): exit 0 without\n"
        "                     --count; with --count, exit 1 if fewer than N arrived\n"
        "  --from-now         skip the message already there; print only newer ones\n"
        "  --seq              precede each message with its sequence number and a space\n"
        "  --lines            each message as raw bytes and a newline (the default; a\n"
        "                     message that contains newlines is ambiguous)\n"
        "  --null             each message as raw bytes and a NUL byte\n"
        "  --frames           each message as a 4-byte little-endian length and the bytes\n"
        "  --json             one JSON object per line: seq, len, encoding, data\n"
        "  --global           Windows: the Global\\ namespace\n\n"
        "Ctrl-C (SIGINT), SIGTERM and SIGHUP end it cleanly with status 128+signal.\n",
};
