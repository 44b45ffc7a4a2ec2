/*
 * top: a live view of every channel's traffic, and of one channel's peers.
 *
 * Plain ANSI escapes rather than ncurses: the screen is one table redrawn
 * whole once a second, which needs cursor-home, clear, reverse video and the
 * alternate screen, all of which every terminal emulator (and tmux, and the
 * Windows console) understands; the binary stays statically self-contained
 * and builds unchanged with mingw. Keys come from the terminal in raw mode
 * (sys_term_*). Looking costs the channels nothing: counters only (sample.c).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sample.h"
#include "sys.h"

enum sort_key { SORT_NAME, SORT_MSGS, SORT_BYTES, SORT_LAG, SORT_DROPS, SORT_WAITS, SORT_N_ };

static const struct {
    const char *name;
    char key;
    const char *title;
} sorts[SORT_N_] = {
    [SORT_NAME] = {"name", 'n', "name"},     [SORT_MSGS] = {"msgs", 'm', "msg/s"},
    [SORT_BYTES] = {"bytes", 'b', "bytes/s"}, [SORT_LAG] = {"lag", 'l', "lag"},
    [SORT_DROPS] = {"drops", 'd', "drops"},   [SORT_WAITS] = {"waits", 'w', "waits"},
};

typedef struct top {
    const cli_args *a;
    chan_row *rows;
    size_t n;
    size_t unreadable;
    enum sort_key sort;
    char *selected; /* name of the highlighted row */
    bool detail;    /* showing the selected channel's peers */
    int rows_on_screen, cols;
} top;

/* ----------------------------------------------------------- sampling */

static chan_row *
find_row(top *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++) {
        if (t->rows[i].name != NULL && strcmp(t->rows[i].name, name) == 0) {
            return &t->rows[i];
        }
    }
    return NULL;
}

/* Sample every channel; rows keep their previous sample for the rates. */
static int
top_sample(top *t)
{
    name_list nm;
    const cli_args *a = t->a;
    int rc = a->npos > 0 ? names_from_args(&nm, a->pos, a->npos) : names_from_shm(&nm);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    chan_row *rows = calloc(nm.n + 1, sizeof(*rows));
    if (rows == NULL) {
        names_free(&nm);
        return SHMCHAN_ENOMEM;
    }
    size_t n = 0;
    t->unreadable = 0;
    for (size_t i = 0; i < nm.n; i++) {
        chan_row *old = find_row(t, nm.v[i]);
        if (old != NULL) {
            rows[n] = *old;
            old->name = NULL; /* moved */
            memset(&old->cur, 0, sizeof(old->cur));
            memset(&old->prev, 0, sizeof(old->prev));
        } else {
            rows[n].name = nm.v[i];
            nm.v[i] = NULL;
        }
        row_update(&rows[n], cli_flags(a, rows[n].name));
        if (rows[n].cur.rc == SHMCHAN_OK) {
            n++;
        } else {
            t->unreadable += rows[n].cur.rc != SHMCHAN_ENOENT;
            row_free(&rows[n]);
            memset(&rows[n], 0, sizeof(rows[n]));
        }
    }
    for (size_t i = 0; i < t->n; i++) {
        row_free(&t->rows[i]);
    }
    free(t->rows);
    t->rows = rows;
    t->n = n;
    names_free(&nm);
    return SHMCHAN_OK;
}

static enum sort_key sort_now; /* qsort has no context argument in C11 */

static int
cmp_num(double x, double y)
{
    return x > y ? -1 : x < y ? 1 : 0; /* the busiest first */
}

static int
cmp_rows(const void *pa, const void *pb)
{
    const chan_row *a = pa, *b = pb;
    int c = 0;
    switch (sort_now) {
    case SORT_MSGS: c = cmp_num(a->msg_rate, b->msg_rate); break;
    case SORT_BYTES: c = cmp_num(a->byte_rate, b->byte_rate); break;
    case SORT_LAG: c = cmp_num((double)a->cur.max_lag, (double)b->cur.max_lag); break;
    case SORT_DROPS:
        c = cmp_num((double)(a->cur.in.drops + a->cur.lost), (double)(b->cur.in.drops + b->cur.lost));
        break;
    case SORT_WAITS: c = cmp_num((double)a->cur.in.waits, (double)b->cur.in.waits); break;
    default: break;
    }
    return c != 0 ? c : strcmp(a->name, b->name);
}

static void
top_sort(top *t)
{
    sort_now = t->sort;
    if (t->n > 1) {
        qsort(t->rows, t->n, sizeof(*t->rows), cmp_rows);
    }
}

static size_t
selected_index(const top *t)
{
    for (size_t i = 0; t->selected != NULL && i < t->n; i++) {
        if (strcmp(t->rows[i].name, t->selected) == 0) {
            return i;
        }
    }
    return 0;
}

static void
select_index(top *t, size_t i)
{
    free(t->selected);
    t->selected = NULL;
    if (i < t->n) {
        t->selected = malloc(strlen(t->rows[i].name) + 1);
        if (t->selected != NULL) {
            strcpy(t->selected, t->rows[i].name);
        }
    }
}

/* -------------------------------------------------------------- text */

#define TABLE_HEAD                                                                          \
    "%-22s %-6s %9s %9s %7s %8s %8s %8s %8s %5s %7s"

static void
table_header(void)
{
    printf(TABLE_HEAD, "NAME", "KIND", "MSG/s", "BYTES/s", "READERS", "MAXLAG", "DROPS", "LOST",
           "WAITS", "RECOV", "WRITERS");
}

static void
table_row(const chan_row *r)
{
    char mr[16], br[16], rd[16] = "-", wr[16] = "-", lag[24] = "-", lost[24] = "-";
    const shmchan_info *in = &r->cur.in;
    bool q = in->kind == SHMCHAN_KIND_QUEUE;
    if (q) {
        snprintf(rd, sizeof(rd), "%" PRIu32, in->readers);
        snprintf(wr, sizeof(wr), "%" PRIu32, in->writers);
        snprintf(lag, sizeof(lag), "%" PRIu64, r->cur.max_lag);
        snprintf(lost, sizeof(lost), "%" PRIu64, r->cur.lost);
    }
    printf("%-22s %-6s %9s %9s %7s %8s %8" PRIu64 " %8s %8" PRIu64 " %5" PRIu64 " %7s", r->name,
           out_kind(in->kind), r->has_prev ? fmt_rate(r->msg_rate, mr, sizeof(mr)) : "-",
           r->has_prev ? fmt_rate(r->byte_rate, br, sizeof(br)) : "-", rd, lag, in->drops, lost,
           in->waits, in->recovered, wr);
}

static void
peers_header(void)
{
    printf("%-10s %5s %8s %-5s %12s %10s %12s %10s", "ROLE", "SLOT", "PID", "STATE", "POSITION",
           "LAG", "COUNT", "LOST");
}

static void
peer_row(const shmchan_peer *p)
{
    bool reader = !peer_is_writer(p->role);
    char pos[24] = "-", lag[24] = "-";
    if (reader) {
        snprintf(pos, sizeof(pos), "%" PRIu64, p->position);
        snprintf(lag, sizeof(lag), "%" PRIu64, p->lag);
    }
    printf("%-10s %5" PRIu32 " %8" PRIu32 " %-5s %12s %10s %12" PRIu64 " %10" PRIu64,
           peer_role_name(p->role), p->slot, p->pid, p->alive ? "alive" : "dead", pos, lag,
           p->count, p->lost);
}

/* ------------------------------------------------------------ screen */

/* End a screen line: clear the rest of it (no stale characters). */
static void
eol(void)
{
    fputs("\x1b[K\r\n", stdout);
}

static void
draw_list(top *t)
{
    size_t sel = selected_index(t);
    char when[16];
    time_t now = time(NULL);
    struct tm *tm = localtime(&now);
    if (tm == NULL || strftime(when, sizeof(when), "%H:%M:%S", tm) == 0) {
        snprintf(when, sizeof(when), "-");
    }
    printf("shmchan top - %zu channel%s%s - sorted by %s - %s", t->n, t->n == 1 ? "" : "s",
           t->unreadable != 0 ? " (some unreadable)" : "", sorts[t->sort].title, when);
    eol();
    fputs("keys: q quit, Up/Down/j/k select, Enter peers, sort: n name m msg/s b bytes/s l lag "
          "d drops w waits", stdout);
    eol();
    eol();
    fputs("\x1b[1m", stdout);
    table_header();
    fputs("\x1b[0m", stdout);
    eol();
    size_t room = t->rows_on_screen > 6 ? (size_t)t->rows_on_screen - 5 : 1;
    size_t first = sel >= room ? sel - room + 1 : 0;
    for (size_t i = first; i < t->n && i < first + room; i++) {
        if (i == sel) {
            fputs("\x1b[7m", stdout);
        }
        table_row(&t->rows[i]);
        fputs("\x1b[0m", stdout);
        eol();
    }
}

static void
draw_detail(top *t)
{
    chan_row *r = t->selected != NULL ? find_row(t, t->selected) : NULL;
    if (r == NULL) {
        printf("shmchan top - %s: gone", t->selected != NULL ? t->selected : "?");
        eol();
        return;
    }
    const shmchan_info *in = &r->cur.in;
    printf("shmchan top - %s (%s%s%s)", r->name, out_kind(in->kind),
           in->kind == SHMCHAN_KIND_QUEUE ? ", " : "",
           in->kind == SHMCHAN_KIND_QUEUE ? out_policy(in->policy) : "");
    eol();
    fputs("keys: Esc/Backspace/h back to the list, q quit", stdout);
    eol();
    eol();
    fputs("\x1b[1m", stdout);
    table_header();
    fputs("\x1b[0m", stdout);
    eol();
    table_row(r);
    eol();
    eol();
    printf("seq %" PRIu64 "  messages %" PRIu64 "  bytes %" PRIu64 "  max-msg %" PRIu64
           "  creator pid %" PRIu32, in->seq, in->messages, in->bytes, in->max_msg,
           in->creator_pid);
    eol();
    eol();
    if (in->kind != SHMCHAN_KIND_QUEUE) {
        fputs("a latest-value channel does not track its readers and writers", stdout);
        eol();
        return;
    }
    fputs("\x1b[1m", stdout);
    peers_header();
    fputs("\x1b[0m", stdout);
    eol();
    for (size_t i = 0; i < r->cur.npeers; i++) {
        peer_row(&r->cur.peers[i]);
        eol();
    }
    if (r->cur.npeers == 0) {
        fputs("no readers or writers registered", stdout);
        eol();
    }
}

static void
draw(top *t)
{
    sys_term_size(&t->rows_on_screen, &t->cols);
    fputs("\x1b[H", stdout);
    t->detail ? draw_detail(t) : draw_list(t);
    fputs("\x1b[J", stdout); /* clear below */
    fflush(stdout);
}

/* A key: returns false to quit. */
static bool
on_key(top *t, int k)
{
    size_t sel = selected_index(t);
    if (k == 'q' || k == 'Q' || k == 3) {
        return false;
    }
    if (t->detail) {
        t->detail = !(k == SYS_KEY_ESC || k == 127 || k == 8 || k == 'h');
        return true;
    }
    if ((k == SYS_KEY_DOWN || k == 'j') && sel + 1 < t->n) {
        select_index(t, sel + 1);
    } else if ((k == SYS_KEY_UP || k == 'k') && sel > 0) {
        select_index(t, sel - 1);
    } else if ((k == '\r' || k == '\n') && t->n > 0) {
        select_index(t, sel);
        t->detail = true;
    }
    for (int s = 0; s < SORT_N_; s++) {
        if (k == sorts[s].key) {
            select_index(t, sel); /* the highlight follows its channel */
            t->sort = (enum sort_key)s;
            top_sort(t);
        }
    }
    return true;
}

static int
top_interactive(top *t)
{
    if (sys_term_raw() != 0) {
        return cli_errorf("top", NULL, "needs a terminal (use --once or --json in scripts)");
    }
    static char obuf[1 << 16];
    setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
    fputs("\x1b[?1049h\x1b[?25l\x1b[2J", stdout);
    int rc = top_sample(t);
    uint64_t next = sys_now_ms() + (uint64_t)t->a->interval_ms;
    top_sort(t);
    while (rc == SHMCHAN_OK && !sys_interrupted()) {
        draw(t);
        uint64_t now = sys_now_ms();
        int k = sys_term_key(next > now ? (int64_t)(next - now) : 0);
        if (k >= 0 && !on_key(t, k)) {
            break;
        }
        if (sys_now_ms() >= next) {
            rc = top_sample(t);
            top_sort(t);
            next += (uint64_t)t->a->interval_ms;
            now = sys_now_ms();
            next = next < now ? now + (uint64_t)t->a->interval_ms : next;
        }
    }
    fputs("\x1b[?25h\x1b[?1049l", stdout);
    fflush(stdout);
    sys_term_restore();
    if (rc != SHMCHAN_OK) {
        return cli_errorf("top", NULL, "listing channels: %s (%s)", shmchan_strerror(rc),
                          shmchan_errname(rc));
    }
    return sys_interrupted() ? cli_exit_interrupted() : CLI_OK;
}

/* ------------------------------------------------------- one sample */

static cli_json *
row_json(const chan_row *r)
{
    const shmchan_info *in = &r->cur.in;
    cli_json *o = json_obj();
    json_set_str(o, "name", r->name);
    json_set_str(o, "kind", out_kind(in->kind));
    json_set_f64(o, "msg_rate", r->msg_rate);
    json_set_f64(o, "byte_rate", r->byte_rate);
    json_set_u64(o, "messages", in->messages);
    json_set_u64(o, "bytes", in->bytes);
    json_set_u64(o, "drops", in->drops);
    json_set_u64(o, "waits", in->waits);
    json_set_u64(o, "recovered", in->recovered);
    if (in->kind == SHMCHAN_KIND_QUEUE) {
        json_set_u64(o, "readers", in->readers);
        json_set_u64(o, "writers", in->writers);
        json_set_u64(o, "max_lag", r->cur.max_lag);
        json_set_u64(o, "lost", r->cur.lost);
        cli_json *arr = json_arr();
        for (size_t i = 0; i < r->cur.npeers; i++) {
            const shmchan_peer *p = &r->cur.peers[i];
            cli_json *po = json_obj();
            json_set_str(po, "role", peer_role_name(p->role));
            json_set_u64(po, "pid", p->pid);
            json_set_bool(po, "alive", p->alive != 0);
            json_set_u64(po, "position", p->position);
            json_set_u64(po, "lag", p->lag);
            json_set_u64(po, "count", p->count);
            json_set_u64(po, "lost", p->lost);
            json_push(arr, po);
        }
        json_set(o, "peers", arr);
    }
    return o;
}

/* Two samples --interval apart (the rates need both), printed once. */
static int
top_once(top *t)
{
    int rc = top_sample(t);
    if (rc == SHMCHAN_OK) {
        sys_sleep_ms((uint64_t)t->a->interval_ms);
        rc = sys_interrupted() ? SHMCHAN_EINTR : top_sample(t);
    }
    if (rc == SHMCHAN_EINTR) {
        return cli_exit_interrupted();
    }
    if (rc != SHMCHAN_OK) {
        return cli_errorf("top", NULL, "listing channels: %s (%s)", shmchan_strerror(rc),
                          shmchan_errname(rc));
    }
    top_sort(t);
    if (t->a->fmt == FMT_JSON) {
        cli_json *o = json_obj(), *arr = json_arr();
        json_set_u64(o, "interval_ms", (uint64_t)t->a->interval_ms);
        for (size_t i = 0; i < t->n; i++) {
            json_push(arr, row_json(&t->rows[i]));
        }
        json_set(o, "channels", arr);
        return json_print(o, true) == 0 ? CLI_OK : CLI_ERR;
    }
    table_header();
    putchar('\n');
    for (size_t i = 0; i < t->n; i++) {
        table_row(&t->rows[i]);
        putchar('\n');
    }
    return CLI_OK;
}

static int
run_top(const cli_args *a)
{
    top t = {.a = a, .sort = SORT_NAME};
    if (a->sort != NULL) {
        int s = 0;
        while (s < SORT_N_ && strcmp(sorts[s].name, a->sort) != 0) {
            s++;
        }
        if (s == SORT_N_) {
            return cli_usage("top", "bad value '%s' for --sort (name, msgs, bytes, lag, drops, "
                             "waits)", a->sort);
        }
        t.sort = (enum sort_key)s;
    }
    sys_catch_interrupts();
    int rc = cli_has(a, OPT_ONCE) || a->fmt == FMT_JSON ? top_once(&t) : top_interactive(&t);
    for (size_t i = 0; i < t.n; i++) {
        row_free(&t.rows[i]);
    }
    free(t.rows);
    free(t.selected);
    return rc;
}

const cli_cmd cli_cmd_top = {
    .name = "top",
    .summary = "live view of every channel's traffic",
    .run = run_top,
    .opts = O(OPT_GLOBAL) | O(OPT_INTERVAL) | O(OPT_SORT) | O(OPT_ONCE) | O(OPT_JSON),
    .min_pos = 0,
    .max_pos = -1,
    .names = -1,
    .usage = "[NAME...] [--interval SEC] [--sort KEY] [--once | --json]",
    .help =
        "A full-screen view of the channels in shared memory (or the NAMEs given),\n"
        "refreshed every second: kind, messages and bytes per second, live readers, the\n"
        "slowest reader's lag, drops (overwritten unread), messages subscribers lost,\n"
        "waits, dead peers recovered, live writers. Enter shows the selected channel's\n"
        "peers (pid, role, alive, position, lag, count, lost). It reads counters only:\n"
        "no reader slot is taken, nothing is consumed.\n\n"
        "Keys: q quit; Up/Down (j/k) select; Enter peers; Esc back; sort by n name,\n"
        "m msg/s, b bytes/s, l lag, d drops and lost, w waits (the largest first).\n\n"
        "  -i, --interval SEC  time between samples (default 1)\n"
        "  -s, --sort KEY      name, msgs, bytes, lag, drops or waits (default name)\n"
        "  --once              print one sample as a table and exit (two samples\n"
        "                      --interval apart: the rates need both)\n"
        "  --json              the same sample as JSON: {interval_ms, channels: [{name,\n"
        "                      kind, msg_rate, byte_rate, messages, bytes, drops, waits,\n"
        "                      recovered; queues: readers, writers, max_lag, lost,\n"
        "                      peers: [{role, pid, alive, position, lag, count, lost}]}]}\n"
        "  --global            Windows: the Global\\ namespace\n",
};
