/*
 * record, replay and cat: sessions of several channels in a recording file
 * (rec.c; docs/recording.md).
 *
 * The recorder runs one thread per channel, each blocking in the library's
 * own wait (a queue subscriber's receive, a latest-value watcher's
 * read_next), so it sleeps in the kernel while nothing flows: there is no
 * wait-set API to wait on several channels from one thread. The threads
 * append framed records to one file under a lock, and hand what is buffered
 * to the kernel whenever their channel runs dry, so that a recorder killed
 * at any moment leaves every message it had time to take in the file.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "rec.h"
#include "sys.h"

#define REC_SLICE_MS 100 /* how soon a channel thread notices the end */
#define REC_BATCH 256    /* queue messages taken per receive */

/* ---------------------------------------------------------- recorder */

typedef struct recorder recorder;

typedef struct rec_chan {
    recorder *r;
    const char *name;
    uint16_t id;
    shmchan_info info;
    shmchan_queue *q;
    shmchan_latest *l;
    uint64_t after; /* latest: the newest version seen */
    sys_thread *t;
    int err;
} rec_chan;

struct recorder {
    rec_writer *w;
    sys_lock *lock;
    atomic_int stop;
    uint64_t total; /* messages written; under lock */
    uint64_t want;  /* --count, 0: no limit */
    int werr;       /* first write error; under lock */
    rec_chan *c;
    int n;
};

static bool
stopped(recorder *r)
{
    return atomic_load(&r->stop) != 0 || sys_interrupted() != 0;
}

static void
flush_locked(recorder *r)
{
    sys_lock_take(r->lock);
    int rc = rec_flush(r->w);
    if (rc != SHMCHAN_OK && r->werr == 0) {
        r->werr = rc;
        atomic_store(&r->stop, 1);
    }
    sys_lock_give(r->lock);
}

/* Append messages of one channel; stop everything at --count or an error. */
static void
store(rec_chan *c, const shmchan_msg *m, size_t n, int64_t now)
{
    recorder *r = c->r;
    sys_lock_take(r->lock);
    for (size_t i = 0; i < n && r->werr == 0 && (r->want == 0 || r->total < r->want); i++) {
        int rc = rec_write_message(r->w, c->id, m[i].seq, now, m[i].lost, m[i].data,
                                   (size_t)m[i].len);
        r->werr = rc != SHMCHAN_OK ? rc : 0;
        r->total += rc == SHMCHAN_OK;
    }
    if (r->werr != 0 || (r->want != 0 && r->total >= r->want)) {
        (void)rec_flush(r->w);
        atomic_store(&r->stop, 1);
    }
    sys_lock_give(r->lock);
}

/* A receive that found nothing: flush, then sleep until something comes. */
static int
queue_take(rec_chan *c, cli_buf *b, shmchan_msg *m, size_t *n)
{
    int rc = shmchan_queue_recv_batch(c->q, b->p, b->cap, REC_BATCH, 0, m, n);
    if (rc == SHMCHAN_EAGAIN) {
        flush_locked(c->r);
        rc = shmchan_queue_recv_batch(c->q, b->p, b->cap, REC_BATCH, REC_SLICE_MS, m, n);
    }
    if (rc == SHMCHAN_EMSGSIZE) {
        rc = buf_reserve(b, (size_t)m[0].len + 8) ? SHMCHAN_EAGAIN : SHMCHAN_ENOMEM;
    }
    return rc;
}

static void
queue_thread(void *arg)
{
    rec_chan *c = arg;
    cli_buf b = {0};
    shmchan_msg m[REC_BATCH];
    size_t want = c->info.max_msg + 8 > (1u << 16) ? (size_t)c->info.max_msg + 8 : (1u << 16);
    int rc = buf_reserve(&b, want) ? SHMCHAN_OK : SHMCHAN_ENOMEM;
    while (rc == SHMCHAN_OK && !stopped(c->r)) {
        size_t n = 0;
        rc = queue_take(c, &b, m, &n);
        if (rc == SHMCHAN_OK) {
            store(c, m, n, sys_unix_ns());
        } else if (rc == SHMCHAN_EAGAIN || rc == SHMCHAN_ETIMEDOUT || rc == SHMCHAN_EINTR) {
            rc = SHMCHAN_OK;
        }
    }
    c->err = rc;
    buf_free(&b);
}

static int
latest_take(rec_chan *c, cli_buf *b, size_t *len, uint64_t *seq)
{
    int rc = shmchan_latest_read_next(c->l, c->after, b->p, b->cap, 0, len, seq);
    if (rc == SHMCHAN_EAGAIN || rc == SHMCHAN_ETIMEDOUT) {
        flush_locked(c->r);
        rc = shmchan_latest_read_next(c->l, c->after, b->p, b->cap, REC_SLICE_MS, len, seq);
    }
    if (rc == SHMCHAN_EMSGSIZE) {
        rc = buf_reserve(b, *len) ? SHMCHAN_EAGAIN : SHMCHAN_ENOMEM;
    }
    return rc;
}

static void
latest_thread(void *arg)
{
    rec_chan *c = arg;
    cli_buf b = {0};
    int rc = buf_reserve(&b, (size_t)c->info.max_msg + 1) ? SHMCHAN_OK : SHMCHAN_ENOMEM;
    while (rc == SHMCHAN_OK && !stopped(c->r)) {
        size_t len = 0;
        uint64_t seq = 0;
        rc = latest_take(c, &b, &len, &seq);
        if (rc == SHMCHAN_OK && seq > c->after) {
            /* Versions published between two reads were never seen. */
            shmchan_msg m = {b.p, len, seq, c->after != 0 ? seq - c->after - 1 : 0, 0};
            store(c, &m, 1, sys_unix_ns());
            c->after = seq;
        } else if (rc == SHMCHAN_EAGAIN || rc == SHMCHAN_ETIMEDOUT || rc == SHMCHAN_EINTR) {
            rc = SHMCHAN_OK;
        }
    }
    c->err = rc;
    buf_free(&b);
}

/* Open one channel as a subscriber (queue) or watcher (latest value). */
static int
rec_open_chan(const cli_args *a, rec_chan *c)
{
    uint32_t flags = cli_flags(a, c->name);
    memset(&c->info, 0, sizeof(c->info));
    c->info.struct_size = sizeof(c->info);
    int rc = shmchan_info_get(c->name, flags, &c->info);
    if (rc != SHMCHAN_OK) {
        return cli_error("record", c->name, rc);
    }
    bool oldest = cli_has(a, OPT_OLDEST);
    if (c->info.kind == SHMCHAN_KIND_QUEUE) {
        return cli_open_queue("record", c->name,
                              flags | SHMCHAN_SUBSCRIBE | (oldest ? SHMCHAN_OLDEST : 0u), &c->q);
    }
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = flags; /* read-write: the wait sleeps on the futex */
    rc = shmchan_latest_open(c->name, &o, &c->l);
    if (rc == SHMCHAN_EACCES) {
        rc = shmchan_latest_open(c->name, &(shmchan_opts){.struct_size = o.struct_size,
                                                          .flags = flags | SHMCHAN_RDONLY},
                                 &c->l);
    }
    if (rc != SHMCHAN_OK) {
        return cli_open_failed("record", c->name, flags, rc);
    }
    c->after = oldest ? 0 : shmchan_latest_seq(c->l);
    return CLI_OK;
}

static void
rec_close_chans(recorder *r)
{
    for (int i = 0; i < r->n; i++) {
        shmchan_queue_close(r->c[i].q);
        shmchan_latest_close(r->c[i].l);
    }
    free(r->c);
}

static int
rec_file_error(const char *verb, const char *path, int rc)
{
    switch (rc) {
    case SHMCHAN_EBADMAGIC:
        return cli_errorf(verb, path, "not a shmchan recording");
    case SHMCHAN_ELAYOUT:
        return cli_errorf(verb, path, "recording format version not supported (this shmchan "
                          "reads version %u)", REC_VERSION);
    case SHMCHAN_ETRUNCATED:
        return cli_errorf(verb, path, "shorter than a recording's header");
    case SHMCHAN_ENOENT:
        return cli_errorf(verb, path, "no such file");
    case SHMCHAN_ESYS:
        return cli_errorf(verb, path, "%s", strerror(errno));
    default:
        return cli_error(verb, path, rc);
    }
}

/* The session and channel records, flushed before any message. */
static int
rec_begin(recorder *r, const char *path)
{
    int rc = rec_write_session(r->w, sys_getpid(), sys_unix_ns());
    for (int i = 0; i < r->n && rc == SHMCHAN_OK; i++) {
        const shmchan_info *in = &r->c[i].info;
        rc = rec_write_channel(r->w, r->c[i].id, in->kind, in->policy, in->max_msg,
                               in->capacity, r->c[i].name);
    }
    rc = rc == SHMCHAN_OK ? rec_flush(r->w) : rc;
    if (rc != SHMCHAN_OK) {
        return rec_file_error("record", path, rc);
    }
    fprintf(stderr, "shmchan: record: recording %d channel%s to %s\n", r->n,
            r->n == 1 ? "" : "s", path);
    return CLI_OK;
}

/* Run the channel threads until a signal, --count, --timeout or an error. */
static int
rec_run(recorder *r, const cli_args *a)
{
    uint64_t deadline = cli_deadline(a->timeout_ms);
    int started = 0;
    for (; started < r->n; started++) {
        rec_chan *c = &r->c[started];
        if (sys_thread_start(&c->t, c->q != NULL ? queue_thread : latest_thread, c) != 0) {
            atomic_store(&r->stop, 1);
            break;
        }
    }
    while (!stopped(r) && (deadline == 0 || sys_now_ms() < deadline)) {
        sys_sleep_ms(20);
    }
    atomic_store(&r->stop, 1);
    int rc = started < r->n ? SHMCHAN_ENOMEM : SHMCHAN_OK;
    for (int i = 0; i < started; i++) {
        sys_thread_join(r->c[i].t);
        if (r->c[i].err != SHMCHAN_OK && rc == SHMCHAN_OK) {
            rc = cli_error("record", r->c[i].name, r->c[i].err);
        }
    }
    return rc;
}

static int
run_record(const cli_args *a)
{
    if (!cli_has(a, OPT_OUTPUT)) {
        return cli_usage("record", "missing -o FILE");
    }
    sys_catch_interrupts();
    recorder r;
    memset(&r, 0, sizeof(r));
    r.want = cli_has(a, OPT_COUNT) ? a->count : 0;
    r.c = calloc((size_t)a->npos, sizeof(*r.c));
    int rc = r.c != NULL ? CLI_OK : cli_errorf("record", NULL, "out of memory");
    for (; r.n < a->npos && rc == CLI_OK; r.n++) {
        r.c[r.n] = (rec_chan){.r = &r, .name = a->pos[r.n], .id = (uint16_t)r.n};
        rc = rec_open_chan(a, &r.c[r.n]);
    }
    uint64_t cut = 0;
    if (rc == CLI_OK) {
        r.lock = sys_lock_new();
        int wrc = r.lock != NULL ? rec_writer_open(a->output, cli_has(a, OPT_APPEND), &r.w, &cut)
                                 : SHMCHAN_ENOMEM;
        rc = wrc == SHMCHAN_OK ? CLI_OK : rec_file_error("record", a->output, wrc);
    }
    if (rc == CLI_OK && cut != 0) {
        fprintf(stderr, "shmchan: record: %s: cut a torn tail of %" PRIu64 " bytes off before "
                "appending\n", a->output, cut);
    }
    rc = rc == CLI_OK ? rec_begin(&r, a->output) : rc;
    if (rc == CLI_OK) {
        rc = rec_run(&r, a);
    }
    int crc = r.w != NULL ? rec_writer_close(r.w) : SHMCHAN_OK;
    if (rc == CLI_OK && (r.werr != 0 || crc != SHMCHAN_OK)) {
        rc = rec_file_error("record", a->output, r.werr != 0 ? r.werr : crc);
    }
    if (r.w != NULL) {
        fprintf(stderr, "shmchan: record: %" PRIu64 " messages from %d channel%s to %s\n",
                r.total, r.n, r.n == 1 ? "" : "s", a->output);
    }
    rec_close_chans(&r);
    sys_lock_free(r.lock);
    return rc;
}

const cli_cmd cli_cmd_record = {
    .name = "record",
    .summary = "record the messages of channels to a file",
    .run = run_record,
    .opts = O(OPT_GLOBAL) | O(OPT_OUTPUT) | O(OPT_APPEND) | O(OPT_OLDEST) | O(OPT_COUNT) |
            O(OPT_TIMEOUT),
    .min_pos = 1,
    .max_pos = -1,
    .names = -1,
    .usage = "NAME... -o FILE [-a] [--oldest] [--count N] [--timeout SEC]",
    .help =
        "Record every message of the channels named, with its channel, sequence number\n"
        "and receive time, to a recording file (docs/recording.md), until Ctrl-C,\n"
        "SIGTERM, --count or --timeout. Queues are recorded as a subscriber: every\n"
        "message sent from the start (in block mode the recorder holds writers back like\n"
        "any subscriber); latest-value channels as a watcher: every version it sees\n"
        "(versions published faster than it reads are skipped and counted as lost).\n"
        "Each channel has its own thread, asleep in the kernel while nothing flows.\n"
        "A recorder that is killed leaves a file that reads back up to the kill.\n\n"
        "  -o, --output FILE  the recording file (replaced unless -a)\n"
        "  -a, --append       append a session to an existing recording (a torn tail\n"
        "                     left by a killed recorder is cut off first)\n"
        "  --oldest           queues: start at the oldest message still held;\n"
        "                     latest-value: record the current message too\n"
        "                     (default: only what is published from now)\n"
        "  -n, --count N      stop after N messages in all\n"
        "  -t, --timeout SEC  stop after SEC seconds\n"
        "  --global           Windows: the Global\\ namespace\n\n"
        "Ends with status 0 on Ctrl-C, SIGTERM or SIGHUP (the file is complete), and\n"
        "says on stderr how many messages it wrote.\n",
};

/* ------------------------------------------------------------ replay */

typedef struct target {
    char *name;
    uint32_t kind;
    shmchan_queue *q;
    shmchan_latest *l;
} target;

typedef struct player {
    const cli_args *a;
    target *t;
    size_t nt;
    size_t *sess; /* channel id of the session -> index in t, +1; 0: none */
    size_t nsess;
    bool based;
    int64_t base_rec, base_now;
    uint64_t sent;
} player;

static const char *
mapped_name(const cli_args *a, const char *name)
{
    size_t len = strlen(name);
    for (int i = 1; i < a->npos; i++) {
        const char *m = a->pos[i];
        if (strncmp(m, name, len) == 0 && m[len] == '=') {
            return m + len + 1;
        }
    }
    return name;
}

/* Open (creating it with the recorded geometry if missing) a target. */
static int
target_open(player *p, const rec_entry *e, const char *name, target *t)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = cli_flags(p->a, name);
    shmchan_info in = {.struct_size = sizeof(in)};
    int rc = shmchan_info_get(name, o.flags, &in);
    if (rc == SHMCHAN_ENOENT) {
        o.flags |= SHMCHAN_CREATE;
        o.max_msg = e->max_msg;
        o.capacity = e->kind == SHMCHAN_KIND_QUEUE ? e->capacity : 0;
        o.policy = e->kind == SHMCHAN_KIND_QUEUE ? e->policy : 0;
        in.kind = e->kind;
    } else if (rc == SHMCHAN_OK && in.kind != e->kind) {
        return cli_errorf("replay", name, "is a %s, the recording's %s was a %s", out_kind(in.kind),
                          e->name, out_kind(e->kind));
    } else if (rc != SHMCHAN_OK) {
        return cli_error("replay", name, rc);
    }
    t->kind = in.kind;
    rc = in.kind == SHMCHAN_KIND_QUEUE ? shmchan_queue_open(name, &o, &t->q)
                                       : shmchan_latest_open(name, &o, &t->l);
    return rc == SHMCHAN_OK ? CLI_OK : cli_open_failed("replay", name, o.flags, rc);
}

/* A CHANNEL record: find or open its target, remember it for the session. */
static int
play_channel(player *p, const rec_entry *e)
{
    const char *name = mapped_name(p->a, e->name);
    size_t i = 0;
    while (i < p->nt && strcmp(p->t[i].name, name) != 0) {
        i++;
    }
    if (i == p->nt) {
        int rc = cli_check_name("replay", name);
        target *t = rc == CLI_OK ? realloc(p->t, (p->nt + 1) * sizeof(*t)) : NULL;
        if (t == NULL) {
            return rc != CLI_OK ? rc : cli_errorf("replay", NULL, "out of memory");
        }
        p->t = t;
        memset(&t[i], 0, sizeof(t[i]));
        t[i].name = malloc(strlen(name) + 1);
        if (t[i].name == NULL) {
            return cli_errorf("replay", NULL, "out of memory");
        }
        strcpy(t[i].name, name);
        p->nt++;
        rc = target_open(p, e, name, &t[i]);
        if (rc != CLI_OK) {
            return rc;
        }
    }
    if (e->chan >= p->nsess) {
        size_t *s = realloc(p->sess, ((size_t)e->chan + 1) * sizeof(*s));
        if (s == NULL) {
            return cli_errorf("replay", NULL, "out of memory");
        }
        memset(s + p->nsess, 0, ((size_t)e->chan + 1 - p->nsess) * sizeof(*s));
        p->sess = s;
        p->nsess = (size_t)e->chan + 1;
    }
    p->sess[e->chan] = i + 1;
    return CLI_OK;
}

/* Sleep until the message's time, scaled by --speed, from the session's
 * first message. Returns false when interrupted. */
static bool
play_wait(player *p, int64_t time_ns)
{
    if (!p->based) {
        p->based = true;
        p->base_rec = time_ns;
        p->base_now = sys_unix_ns();
        return true;
    }
    double speed = cli_has(p->a, OPT_SPEED) ? p->a->speed : 1.0;
    int64_t due = p->base_now + (int64_t)((double)(time_ns - p->base_rec) / speed);
    for (;;) {
        if (sys_interrupted()) {
            return false;
        }
        int64_t left = due - sys_unix_ns();
        if (left <= 0) {
            return true;
        }
        sys_sleep_ms(left > 100000000 ? 100 : (uint64_t)(left + 999999) / 1000000);
    }
}

struct play_send {
    shmchan_queue *q;
    const rec_entry *e;
};

static int
play_send_fn(void *ctx, int64_t timeout_ms)
{
    struct play_send *s = ctx;
    return shmchan_queue_send(s->q, s->e->data, s->e->len, timeout_ms);
}

static int
play_message(player *p, const rec_entry *e)
{
    target *t = &p->t[p->sess[e->chan] - 1];
    if (!cli_has(p->a, OPT_FAST) && !play_wait(p, e->time_ns)) {
        return cli_exit_interrupted();
    }
    int rc;
    if (t->q != NULL) {
        struct play_send s = {t->q, e};
        rc = cli_wait(play_send_fn, &s, 0);
    } else {
        rc = shmchan_latest_publish(t->l, e->data, e->len, NULL);
    }
    if (rc == SHMCHAN_EINTR) {
        return cli_exit_interrupted();
    }
    if (rc != SHMCHAN_OK) {
        return cli_errorf("replay", t->name, "message %" PRIu64 ": %s (%s)", p->sent + 1,
                          shmchan_strerror(rc), shmchan_errname(rc));
    }
    p->sent++;
    return CLI_OK;
}

static int
play_entry(player *p, const rec_entry *e)
{
    switch (e->type) {
    case REC_SESSION:
        p->based = false; /* each session keeps its own timing, not the gap */
        if (p->sess != NULL) {
            memset(p->sess, 0, p->nsess * sizeof(*p->sess));
        }
        return CLI_OK;
    case REC_CHANNEL:
        return play_channel(p, e);
    default:
        return play_message(p, e);
    }
}

static void
report_tail(const char *verb, const char *path, rec_reader *r)
{
    uint64_t off, len;
    rec_tail(r, &off, &len);
    fprintf(stderr, "shmchan: %s %s: torn tail of %" PRIu64 " bytes at offset %" PRIu64
            " ignored (a recorder stopped mid-write)\n", verb, path, len, off);
}

static int
check_maps(const cli_args *a)
{
    for (int i = 1; i < a->npos; i++) {
        const char *eq = strchr(a->pos[i], '=');
        if (eq == NULL || eq == a->pos[i] || eq[1] == '\0') {
            return cli_usage("replay", "'%s' is not OLD=NEW", a->pos[i]);
        }
    }
    if (cli_has(a, OPT_SPEED) && cli_has(a, OPT_FAST)) {
        return cli_usage("replay", "--speed and --fast exclude each other");
    }
    return CLI_OK;
}

static int
run_replay(const cli_args *a)
{
    const char *path = a->pos[0];
    int rc = check_maps(a);
    if (rc != CLI_OK) {
        return rc;
    }
    sys_catch_interrupts();
    rec_reader *r;
    rc = rec_reader_open(path, &r);
    if (rc != SHMCHAN_OK) {
        return rec_file_error("replay", path, rc);
    }
    player p = {.a = a};
    rec_entry e;
    while ((rc = rec_next(r, &e)) == SHMCHAN_OK) {
        if ((rc = play_entry(&p, &e)) != CLI_OK) {
            break;
        }
    }
    if (rc == SHMCHAN_ETRUNCATED) {
        report_tail("replay", path, r);
    } else if (rc != SHMCHAN_EAGAIN && rc != CLI_OK && rc < 0) {
        rc = rec_file_error("replay", path, rc);
    }
    rc = rc == SHMCHAN_ETRUNCATED || rc == SHMCHAN_EAGAIN ? CLI_OK : rc;
    rec_reader_close(r);
    for (size_t i = 0; i < p.nt; i++) {
        shmchan_queue_close(p.t[i].q);
        shmchan_latest_close(p.t[i].l);
        free(p.t[i].name);
    }
    free(p.t);
    free(p.sess);
    return rc;
}

const cli_cmd cli_cmd_replay = {
    .name = "replay",
    .summary = "publish a recording's messages again",
    .run = run_replay,
    .opts = O(OPT_GLOBAL) | O(OPT_SPEED) | O(OPT_FAST),
    .min_pos = 1,
    .max_pos = -1,
    .names = 0,
    .usage = "FILE [OLD=NEW...] [--speed X | --fast]",
    .help =
        "Publish the messages of a recording again, in their order, into the channels\n"
        "they were recorded from, or into others: OLD=NEW renames a channel. A channel\n"
        "that does not exist is created with the recorded kind and sizes; an existing\n"
        "one must be of the same kind. Queue messages are sent (waiting for space in\n"
        "block mode), latest-value ones published. Sequence numbers are the target's.\n\n"
        "  --speed X   keep the recorded timing, X times faster (default 1: the original\n"
        "              timing; 0.5: half speed)\n"
        "  --fast      as fast as possible, without waiting\n"
        "  --global    Windows: the Global\\ namespace\n\n"
        "Each session of an appended recording keeps its own timing; the gap between\n"
        "sessions is not replayed. A torn tail is reported on stderr and skipped.\n",
};

/* --------------------------------------------------------------- cat */

static void
print_time(int64_t ns)
{
    time_t s = (time_t)(ns / 1000000000);
    struct tm *tm = gmtime(&s);
    char buf[32];
    if (tm == NULL || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", tm) == 0) {
        snprintf(buf, sizeof(buf), "-");
    }
    printf("%s.%06ldZ", buf, (long)((ns % 1000000000) / 1000));
}

/* Printable ASCII as is, the rest escaped, so that one message is one line. */
static void
print_escaped(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '\\') {
            fputs("\\\\", stdout);
        } else if (c == '\n') {
            fputs("\\n", stdout);
        } else if (c == '\t') {
            fputs("\\t", stdout);
        } else if (c < 0x20 || c >= 0x7f) {
            printf("\\x%02x", c);
        } else {
            putchar(c);
        }
    }
}

static int
cat_entry(const cli_args *a, rec_reader *r, const rec_entry *e)
{
    if (e->type != REC_MESSAGE) {
        return CLI_OK;
    }
    const rec_entry *ch = rec_channel(r, e->chan);
    if (a->fmt == FMT_JSON) {
        cli_json *o = json_obj();
        json_set_i64(o, "time_ns", e->time_ns);
        json_set_str(o, "channel", ch->name);
        json_set_str(o, "kind", out_kind(ch->kind));
        json_set_u64(o, "seq", e->seq);
        json_set_u64(o, "lost", e->lost);
        json_set_bytes(o, e->data, e->len);
        return json_print(o, false) == 0 ? CLI_OK : CLI_ERR;
    }
    print_time(e->time_ns);
    printf(" %s %" PRIu64 " ", ch->name, e->seq);
    print_escaped(e->data, e->len);
    if (e->lost != 0) {
        printf(" (%" PRIu64 " lost before)", e->lost);
    }
    return putchar('\n') == EOF ? CLI_ERR : CLI_OK;
}

static int
run_cat(const cli_args *a)
{
    int status = CLI_OK;
    for (int i = 0; i < a->npos; i++) {
        rec_reader *r;
        int rc = rec_reader_open(a->pos[i], &r);
        if (rc != SHMCHAN_OK) {
            status = rec_file_error("cat", a->pos[i], rc);
            continue;
        }
        rec_entry e;
        while ((rc = rec_next(r, &e)) == SHMCHAN_OK && cat_entry(a, r, &e) == CLI_OK) {
        }
        if (rc == SHMCHAN_ETRUNCATED) {
            report_tail("cat", a->pos[i], r);
        } else if (rc == SHMCHAN_ECORRUPT) {
            status = cli_errorf("cat", a->pos[i], "record at offset %" PRIu64 " is damaged "
                                "(a message of an undeclared channel)", e.offset);
        } else if (rc != SHMCHAN_EAGAIN && rc != SHMCHAN_OK) {
            status = rec_file_error("cat", a->pos[i], rc);
        }
        rec_reader_close(r);
    }
    return status;
}

const cli_cmd cli_cmd_cat = {
    .name = "cat",
    .summary = "print a recording",
    .run = run_cat,
    .opts = O(OPT_JSON),
    .min_pos = 1,
    .max_pos = -1,
    .names = 0,
    .usage = "FILE... [--json]",
    .help =
        "Print the messages of recordings, one per line: receive time (UTC), channel,\n"
        "sequence number and the message, with \\\\, \\n, \\t and \\xHH escapes for what\n"
        "is not printable ASCII (and how many were lost before it, if any). A torn\n"
        "tail (a recorder killed mid-write) is reported on stderr; everything before\n"
        "it is printed, and the status stays 0.\n\n"
        "  --json   one JSON object per line: time_ns, channel, kind, seq, lost, len,\n"
        "           encoding (utf-8 or base64), data\n",
};
