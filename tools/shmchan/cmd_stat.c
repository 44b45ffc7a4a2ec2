/*
 * stat: one line per interval per channel with its rates (the `hz` of other
 * tools). Counters only, as top (sample.c).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sample.h"
#include "sys.h"

static void
stat_text(const chan_row *r)
{
    char when[16], mr[16], br[16], avg[16];
    time_t now = time(NULL);
    struct tm *tm = localtime(&now);
    if (tm == NULL || strftime(when, sizeof(when), "%H:%M:%S", tm) == 0) {
        snprintf(when, sizeof(when), "-");
    }
    if (r->cur.rc != SHMCHAN_OK) {
        printf("%s %s error: %s (%s)\n", when, r->name, shmchan_strerror(r->cur.rc),
               shmchan_errname(r->cur.rc));
        return;
    }
    const shmchan_info *in = &r->cur.in;
    snprintf(avg, sizeof(avg), "%.0f", r->msg_rate > 0 ? r->byte_rate / r->msg_rate : 0.0);
    printf("%s %s %s msg/s %s B/s avg %s B seq %" PRIu64, when, r->name,
           fmt_rate(r->msg_rate, mr, sizeof(mr)), fmt_rate(r->byte_rate, br, sizeof(br)), avg,
           in->seq);
    if (in->kind == SHMCHAN_KIND_QUEUE) {
        printf(" readers %" PRIu32 " max-lag %" PRIu64 " drops/s %.1f lost %" PRIu64,
               in->readers, r->cur.max_lag, r->drop_rate, r->cur.lost);
    }
    putchar('\n');
}

static int
stat_json(const chan_row *r, uint64_t interval_ms)
{
    cli_json *o = json_obj();
    json_set_str(o, "name", r->name);
    json_set_i64(o, "time_ns", sys_unix_ns());
    if (r->cur.rc != SHMCHAN_OK) {
        json_set_str(o, "error", shmchan_errname(r->cur.rc));
        json_set_str(o, "message", shmchan_strerror(r->cur.rc));
        return json_print(o, false);
    }
    const shmchan_info *in = &r->cur.in;
    json_set_str(o, "kind", out_kind(in->kind));
    json_set_u64(o, "interval_ms", interval_ms);
    json_set_f64(o, "msg_rate", r->msg_rate);
    json_set_f64(o, "byte_rate", r->byte_rate);
    json_set_u64(o, "seq", in->seq);
    json_set_u64(o, "messages", in->messages);
    json_set_u64(o, "bytes", in->bytes);
    if (in->kind == SHMCHAN_KIND_QUEUE) {
        json_set_f64(o, "drop_rate", r->drop_rate);
        json_set_u64(o, "drops", in->drops);
        json_set_u64(o, "readers", in->readers);
        json_set_u64(o, "writers", in->writers);
        json_set_u64(o, "max_lag", r->cur.max_lag);
        json_set_u64(o, "lost", r->cur.lost);
    }
    return json_print(o, false);
}

/* Sleep until ms, waking for signals; false if one came. */
static bool
sleep_until(uint64_t ms)
{
    for (;;) {
        if (sys_interrupted()) {
            return false;
        }
        uint64_t now = sys_now_ms();
        if (now >= ms) {
            return true;
        }
        sys_sleep_ms(ms - now < 100 ? ms - now : 100);
    }
}

static int
stat_loop(const cli_args *a, chan_row *rows)
{
    uint64_t want = cli_has(a, OPT_COUNT) ? a->count : 0, done = 0;
    uint64_t next = sys_now_ms();
    for (int i = 0; i < a->npos; i++) {
        row_update(&rows[i], cli_flags(a, rows[i].name));
        if (rows[i].cur.rc != SHMCHAN_OK) {
            return cli_error("stat", rows[i].name, rows[i].cur.rc);
        }
    }
    while (want == 0 || done < want) {
        next += (uint64_t)a->interval_ms;
        if (!sleep_until(next)) {
            return cli_exit_interrupted();
        }
        for (int i = 0; i < a->npos; i++) {
            row_update(&rows[i], cli_flags(a, rows[i].name));
            if (a->fmt == FMT_JSON) {
                if (stat_json(&rows[i], (uint64_t)a->interval_ms) != 0) {
                    return CLI_ERR;
                }
            } else {
                stat_text(&rows[i]);
            }
        }
        if (fflush(stdout) != 0) {
            return sys_interrupted() ? cli_exit_interrupted() : CLI_ERR;
        }
        done++;
    }
    return CLI_OK;
}

static int
run_stat(const cli_args *a)
{
    chan_row *rows = calloc((size_t)a->npos, sizeof(*rows));
    if (rows == NULL) {
        return cli_errorf("stat", NULL, "out of memory");
    }
    for (int i = 0; i < a->npos; i++) {
        rows[i].name = (char *)a->pos[i]; /* borrowed: not freed below */
    }
    sys_catch_interrupts();
    sys_watch_stdout();
    int rc = stat_loop(a, rows);
    for (int i = 0; i < a->npos; i++) {
        rows[i].name = NULL;
        row_free(&rows[i]);
    }
    free(rows);
    return rc;
}

const cli_cmd cli_cmd_stat = {
    .name = "stat",
    .summary = "print channels' message rates every interval",
    .run = run_stat,
    .opts = O(OPT_GLOBAL) | O(OPT_INTERVAL) | O(OPT_COUNT) | O(OPT_JSON),
    .min_pos = 1,
    .max_pos = -1,
    .names = -1,
    .usage = "NAME... [--interval SEC] [--count N] [--json]",
    .help =
        "Every interval, one line per channel: the time, messages and bytes per second\n"
        "over the interval, their average size, the sequence number; queues add live\n"
        "readers, the slowest reader's lag, drops per second and messages lost. Reads\n"
        "counters only (no reader slot, nothing consumed). Runs until Ctrl-C.\n\n"
        "  -i, --interval SEC  seconds between lines (default 1; fractions allowed)\n"
        "  -n, --count N       stop after N intervals\n"
        "  --json              one JSON object per line: name, time_ns, kind,\n"
        "                      interval_ms, msg_rate, byte_rate, seq, messages, bytes;\n"
        "                      queues add drop_rate, drops, readers, writers, max_lag,\n"
        "                      lost\n"
        "  --global            Windows: the Global\\ namespace\n",
};
