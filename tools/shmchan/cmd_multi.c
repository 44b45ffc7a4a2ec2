/*
 * watch and follow over several channels at once (docs/event-loops.md): one
 * wait-set over every channel's readiness handle, waking on whichever has
 * news; each message is printed with its channel's name ("NAME: " before
 * it, or the "name" field with --json). With one name the commands keep
 * their own loops (cmd_latest.c, cmd_queue.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sys.h"

typedef struct multi {
    const cli_args *a;
    int n;
    shmchan_latest *latest[CLI_MAX_POS];
    shmchan_queue *queue[CLI_MAX_POS];
    uint64_t seen[CLI_MAX_POS];
    shmchan_waitset *ws;
    uintptr_t keys[CLI_MAX_POS];
    size_t nready;
    cli_buf b;
} multi;

static int
multi_wait_fn(void *ctx, int64_t timeout_ms)
{
    multi *m = ctx;
    return shmchan_waitset_wait(m->ws, timeout_ms, m->keys, CLI_MAX_POS, &m->nready);
}

/* One message with its channel's name, in the format chosen. */
static int
print_named(const cli_args *a, const char *name, const void *data, size_t len, uint64_t seq,
            uint64_t lost, bool with_lost)
{
    bool ok = true;
    if (a->fmt == FMT_JSON) {
        cli_json *o = json_obj();
        json_set_str(o, "name", name);
        json_set_u64(o, "seq", seq);
        if (with_lost) {
            json_set_u64(o, "lost", lost);
        }
        json_set_bytes(o, data, len);
        ok = json_print(o, false) == 0;
    } else {
        ok = printf("%s: ", name) > 0;
        if (cli_has(a, OPT_SEQ)) {
            ok = ok && printf("%" PRIu64 " ", seq) > 0;
        }
        ok = ok && fwrite(data, 1, len, stdout) == len;
        ok = ok && fputc(a->fmt == FMT_NULL ? '\0' : '\n', stdout) != EOF;
    }
    return fflush(stdout) != 0 || !ok ? SHMCHAN_ESYS : SHMCHAN_OK;
}

static int
open_all(multi *m, bool queues, uint32_t reader_flags)
{
    const cli_args *a = m->a;
    int rc = shmchan_waitset_open(&m->ws);
    for (int i = 0; rc == SHMCHAN_OK && i < m->n; i++) {
        const char *name = a->pos[i];
        uint32_t flags = cli_flags(a, name);
        if (queues) {
            rc = cli_open_queue(a->cmd->name, name, flags | reader_flags, &m->queue[i]);
            if (rc != CLI_OK) {
                return rc;
            }
            rc = shmchan_waitset_add_queue(m->ws, m->queue[i], (uintptr_t)i);
        } else {
            rc = cli_open_latest(a->cmd->name, name, flags, &m->latest[i]);
            if (rc != CLI_OK) {
                return rc;
            }
            m->seen[i] = cli_has(a, OPT_FROM_NOW) ? shmchan_latest_seq(m->latest[i]) : 0;
            rc = shmchan_waitset_add_latest(m->ws, m->latest[i], m->seen[i], (uintptr_t)i);
        }
        if (rc != SHMCHAN_OK) {
            return cli_error(a->cmd->name, name, rc);
        }
    }
    return rc == SHMCHAN_OK ? CLI_OK : cli_error(a->cmd->name, NULL, rc);
}

static void
close_all(multi *m)
{
    shmchan_waitset_close(m->ws);
    for (int i = 0; i < m->n; i++) {
        shmchan_latest_close(m->latest[i]);
        shmchan_queue_close(m->queue[i]);
    }
    free(m->b.p);
}

/* Print what channel i has: every message of a queue, the newest of a
 * latest-value channel. */
static int
print_news(multi *m, int i, uint64_t want, uint64_t *printed)
{
    const char *name = m->a->pos[i];
    for (;;) {
        if (want != 0 && *printed >= want) {
            return SHMCHAN_OK;
        }
        size_t len = 0;
        int rc;
        if (m->queue[i] != NULL) {
            shmchan_msg info;
            rc = shmchan_queue_recv(m->queue[i], m->b.p, m->b.cap, 0, &len, &info);
            if (rc == SHMCHAN_OK) {
                rc = print_named(m->a, name, m->b.p, len, info.seq, info.lost, true);
            }
        } else {
            uint64_t seq = 0;
            rc = shmchan_latest_read(m->latest[i], m->b.p, m->b.cap, &len, &seq);
            if (rc == SHMCHAN_OK && seq > m->seen[i]) {
                m->seen[i] = seq;
                rc = print_named(m->a, name, m->b.p, len, seq, 0, false);
                *printed += rc == SHMCHAN_OK;
                return rc;
            }
            return rc == SHMCHAN_OK ? SHMCHAN_OK : rc;
        }
        if (rc == SHMCHAN_EMSGSIZE && buf_reserve(&m->b, len)) {
            continue;
        }
        if (rc != SHMCHAN_OK) {
            return rc == SHMCHAN_EAGAIN ? SHMCHAN_OK : rc;
        }
        (*printed)++;
    }
}

static int
finish(const cli_args *a, int rc, uint64_t want, uint64_t printed)
{
    if (rc == SHMCHAN_OK) {
        return CLI_OK;
    }
    if (rc == SHMCHAN_EINTR) {
        return cli_exit_interrupted();
    }
    if (rc == SHMCHAN_ETIMEDOUT) {
        if (want == 0) {
            return CLI_OK;
        }
        return cli_errorf(a->cmd->name, NULL, "timed out after %" PRIu64 " of %" PRIu64
                          " messages (SHMCHAN_ETIMEDOUT)", printed, want);
    }
    if (rc == SHMCHAN_ESYS && sys_interrupted()) {
        return cli_exit_interrupted();
    }
    return cli_error(a->cmd->name, NULL, rc);
}

int
cli_multi_run(const cli_args *a, bool queues, uint32_t reader_flags)
{
    if (a->fmt == FMT_FRAMES) {
        return cli_usage(a->cmd->name, "--frames takes one channel (it has no place for names)");
    }
    sys_catch_interrupts();
    sys_watch_stdout();
    multi *m = calloc(1, sizeof(*m));
    if (m == NULL || !buf_reserve(&m->b, 4096)) {
        free(m);
        return cli_error(a->cmd->name, NULL, SHMCHAN_ENOMEM);
    }
    m->a = a;
    m->n = a->npos;
    int rc = open_all(m, queues, reader_flags);
    if (rc != CLI_OK) {
        close_all(m);
        free(m);
        return rc;
    }
    uint64_t want = cli_has(a, OPT_COUNT) ? a->count : 0, printed = 0;
    uint64_t deadline = cli_deadline(a->timeout_ms);
    while (rc == SHMCHAN_OK && (want == 0 || printed < want)) {
        rc = cli_wait(multi_wait_fn, m, deadline);
        for (size_t k = 0; rc == SHMCHAN_OK && k < m->nready; k++) {
            rc = print_news(m, (int)m->keys[k], want, &printed);
        }
    }
    close_all(m);
    free(m);
    return finish(a, rc, want, printed);
}
