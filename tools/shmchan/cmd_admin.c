/*
 * Channel management: create, ls, info, rm, gc, and kind-aware opening.
 * doctor lives in cmd_doctor.c.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "sample.h"

/* ------------------------------------------------------------ opening */

/*
 * A geometry mismatch names the field and both values, as the failed open
 * itself reported them (not as a later look at the channel might, which a
 * racing re-creation could change); a kind mismatch says which verbs fit.
 */
static const char *
kind_noun(uint64_t kind)
{
    switch (kind) {
    case SHMCHAN_KIND_LATEST: return "a latest-value channel";
    case SHMCHAN_KIND_QUEUE: return "a queue";
    case SHMCHAN_KIND_SERVICE: return "a service";
    default: return NULL;
    }
}

static const char *
kind_verbs(uint64_t kind)
{
    switch (kind) {
    case SHMCHAN_KIND_QUEUE: return "send, recv or follow";
    case SHMCHAN_KIND_SERVICE: return "call or serve";
    default: return "put, get or watch";
    }
}

int
cli_open_failed(const char *verb, const char *name, uint32_t flags, int rc)
{
    (void)flags;
    const char *field = NULL;
    uint64_t have = 0, want = 0;
    if (rc != SHMCHAN_EGEOMETRY || shmchan_last_error_geometry(&field, &have, &want) != SHMCHAN_OK) {
        return cli_error(verb, name, rc);
    }
    if (strcmp(field, "kind") == 0 && kind_noun(have) != NULL && kind_noun(want) != NULL) {
        return cli_errorf(verb, name, "is %s, not %s: use %s (SHMCHAN_EGEOMETRY)",
                          kind_noun(have), kind_noun(want), kind_verbs(have));
    }
    if (have == 0 && strcmp(field, "max_msg") != 0) {
        return cli_errorf(verb, name, "is a latest-value channel, which has no %s: use put, "
                          "get or watch (SHMCHAN_EGEOMETRY)", field);
    }
    return cli_errorf(verb, name, "%s (SHMCHAN_EGEOMETRY)", shmchan_last_error_detail());
}

int
cli_open_latest(const char *verb, const char *name, uint32_t flags, shmchan_latest **out)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = flags;
    int rc = shmchan_latest_open(name, &o, out);
    return rc == SHMCHAN_OK ? CLI_OK : cli_open_failed(verb, name, flags, rc);
}

int
cli_open_queue(const char *verb, const char *name, uint32_t flags, shmchan_queue **out)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = flags;
    int rc = shmchan_queue_open(name, &o, out);
    return rc == SHMCHAN_OK ? CLI_OK : cli_open_failed(verb, name, flags, rc);
}

/* ------------------------------------------------------------- create */

#define QUEUE_ONLY (O(OPT_CAPACITY) | O(OPT_POLICY) | O(OPT_READERS) | O(OPT_WRITERS))
#define SERVICE_ONLY (O(OPT_SERVERS) | O(OPT_CLIENTS))

/* The kind asked for: --latest, --queue, --service or --kind K (one of them). */
static int
create_kind(const cli_args *a, uint32_t *kind)
{
    int n = 0;
    *kind = SHMCHAN_KIND_LATEST;
    if (cli_has(a, OPT_LATEST)) {
        n++;
    }
    if (cli_has(a, OPT_QUEUE)) {
        *kind = SHMCHAN_KIND_QUEUE;
        n++;
    }
    if (cli_has(a, OPT_SERVICE)) {
        *kind = SHMCHAN_KIND_SERVICE;
        n++;
    }
    if (cli_has(a, OPT_KIND)) {
        *kind = a->kind;
        n++;
    }
    if (n > 1) {
        return cli_usage("create", "--latest, --queue, --service and --kind exclude each other");
    }
    if (*kind == SHMCHAN_KIND_LATEST && (a->given & QUEUE_ONLY) != 0) {
        return cli_usage("create", "--capacity, --policy, --readers and --writers apply to "
                         "queues (add --queue)");
    }
    if (*kind != SHMCHAN_KIND_SERVICE && (a->given & SERVICE_ONLY) != 0) {
        return cli_usage("create", "--servers and --clients apply to services (add --service)");
    }
    if (*kind == SHMCHAN_KIND_SERVICE &&
        (a->given & (O(OPT_READERS) | O(OPT_WRITERS) | O(OPT_POLICY))) != 0) {
        return cli_usage("create", "a service has --servers and --clients, not --readers, "
                         "--writers or --policy");
    }
    return CLI_OK;
}

static void
create_opts(const cli_args *a, const char *name, shmchan_opts *o)
{
    shmchan_opts_init(o);
    o->flags = cli_flags(a, name) | SHMCHAN_CREATE | (cli_has(a, OPT_EXCL) ? SHMCHAN_EXCL : 0u);
    o->mode = a->mode;
    o->max_msg = a->max_msg;
    o->capacity = a->capacity;
    o->policy = a->policy;
    o->max_readers = a->readers;
    o->max_writers = a->writers;
    if (cli_has(a, OPT_SERVERS) || cli_has(a, OPT_CLIENTS)) {
        o->max_readers = a->servers; /* a service's server and client slots */
        o->max_writers = a->clients;
    }
}

static int info_get(const char *name, uint32_t flags, shmchan_info *in);

/* A channel that existed keeps its mode: an explicit --mode that differs is
 * an error (status 1), so that a script never believes it set one. Checked
 * while our handle keeps the channel there; created ones have the mode asked. */
static int
create_check_mode(const cli_args *a, const char *name, uint32_t flags)
{
    shmchan_info in;
    if (!cli_has(a, OPT_MODE) ||
        info_get(name, flags & (SHMCHAN_FILE | SHMCHAN_GLOBAL), &in) != SHMCHAN_OK ||
        in.mode == 0 || in.mode == a->mode) {
        return CLI_OK; /* no permission bits on Windows */
    }
    return cli_errorf("create", name, "exists with mode %04o, not the %04o asked for; its mode "
                      "was not changed (remove it and create it again, or chmod it)",
                      (unsigned)in.mode, (unsigned)a->mode);
}

static int
run_create(const cli_args *a)
{
    const char *name = a->pos[0];
    uint32_t kind;
    int rc = create_kind(a, &kind);
    if (rc != CLI_OK) {
        return rc;
    }
    shmchan_opts o;
    create_opts(a, name, &o);
    shmchan_queue *q = NULL;
    shmchan_latest *ch = NULL;
    shmchan_service *sv = NULL;
    if (kind == SHMCHAN_KIND_QUEUE) {
        rc = shmchan_queue_open(name, &o, &q);
    } else if (kind == SHMCHAN_KIND_SERVICE) {
        rc = shmchan_service_open(name, &o, &sv); /* a client handle, closed at once */
    } else {
        rc = shmchan_latest_open(name, &o, &ch);
    }
    int status = rc == SHMCHAN_OK ? create_check_mode(a, name, o.flags)
                                  : cli_open_failed("create", name, o.flags, rc);
    shmchan_queue_close(q);
    shmchan_latest_close(ch);
    shmchan_service_close(sv);
    return status;
}

const cli_cmd cli_cmd_create = {
    .name = "create",
    .summary = "create a latest-value channel, a queue or a service",
    .run = run_create,
    .opts = O(OPT_GLOBAL) | O(OPT_LATEST) | O(OPT_QUEUE) | O(OPT_SERVICE) | O(OPT_KIND) |
            O(OPT_MAX_MSG) | O(OPT_MODE) | O(OPT_EXCL) | QUEUE_ONLY | SERVICE_ONLY,
    .min_pos = 1,
    .max_pos = 1,
    .names = 1,
    .usage = "NAME [--latest | --queue | --service | --kind K] [--max-msg N] [--capacity N]\n"
             "              [--policy block|overwrite] [--readers N] [--writers N]\n"
             "              [--servers N] [--clients N] [--mode 0640] [--excl]",
    .help =
        "Create a channel, or check that an existing one has the kind and sizes given.\n"
        "Sizes take a binary suffix: 512, 64k, 1M, 2G (k = 1024).\n\n"
        "  --latest           a latest-value channel: readers get the newest message\n"
        "                     (the default)\n"
        "  --queue            a queue: a bounded ring of messages, every one delivered\n"
        "  --service          a service: requests from clients to competing servers, each\n"
        "                     client getting the responses to its own (call, serve)\n"
        "  --kind K           the same by name: latest, queue or service\n"
        "  --max-msg N        largest message in bytes (default 4k); for a service the\n"
        "                     largest request and the largest response\n"
        "  --capacity N       queue: ring size in bytes, rounded up to a power of two\n"
        "                     (default 1M); service: the request ring's\n"
        "  --policy P         queue, when full: block (writers wait for the slowest live\n"
        "                     reader; the default) or overwrite (writers never wait, slow\n"
        "                     readers lose the oldest messages and are told how many)\n"
        "  --readers N        queue: reader slots (default 64)\n"
        "  --writers N        queue: writer slots (default 64)\n"
        "  --servers N        service: server slots (default 16)\n"
        "  --clients N        service: client slots (default 64)\n"
        "  --mode MODE        permission bits in octal, up to 0777 (default 0600: owner\n"
        "                     only); an existing channel with another mode is an error\n"
        "  --excl             fail if the channel exists (default: accept an existing one\n"
        "                     if its kind and the sizes given match)\n"
        "  --global           Windows: the Global\\ namespace\n",
};

/* --------------------------------------------------------- info to JSON */

static const char *
created_utc(int64_t unix_ns, char *buf, size_t cap)
{
    time_t t = (time_t)(unix_ns / 1000000000);
    struct tm *tm = gmtime(&t);
    if (tm == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", tm) == 0) {
        snprintf(buf, cap, "-");
    }
    return buf;
}

static void
info_json_queue(cli_json *o, const shmchan_info *in)
{
    json_set_u64(o, "capacity", in->capacity);
    json_set_str(o, "policy", out_policy(in->policy));
    json_set_u64(o, "oldest_seq", in->oldest_seq);
    json_set_u64(o, "drops", in->drops);
    json_set_u64(o, "readers", in->readers);
    json_set_u64(o, "writers", in->writers);
    json_set_u64(o, "dead_readers", in->dead_readers);
    json_set_u64(o, "dead_writers", in->dead_writers);
    json_set_u64(o, "max_readers", in->max_readers);
    json_set_u64(o, "max_writers", in->max_writers);
}

static cli_json *
info_json(const char *name, uint32_t flags, const shmchan_info *in)
{
    char mode[8], when[32];
    cli_json *o = json_obj();
    json_set_str(o, "name", name);
    json_set_bool(o, "file", (flags & SHMCHAN_FILE) != 0);
    json_set_str(o, "kind", out_kind(in->kind));
    snprintf(mode, sizeof(mode), "%04o", (unsigned)in->mode);
    json_set_str(o, "mode", mode);
    json_set_u64(o, "max_msg", in->max_msg);
    json_set_u64(o, "region_size", in->region_size);
    json_set_u64(o, "seq", in->seq);
    json_set_u64(o, "messages", in->messages);
    json_set_u64(o, "bytes", in->bytes);
    json_set_u64(o, "waits", in->waits);
    json_set_u64(o, "recovered", in->recovered);
    if (in->kind == SHMCHAN_KIND_QUEUE || in->kind == SHMCHAN_KIND_SERVICE) {
        info_json_queue(o, in); /* a service: readers are its servers, writers its clients */
    }
    json_set_bool(o, "in_use", in->in_use != 0);
    json_set_u64(o, "creator_pid", in->creator_pid);
    json_set_i64(o, "created_unix_ns", in->created_unix_ns);
    json_set_str(o, "created", created_utc(in->created_unix_ns, when, sizeof(when)));
    json_set_u64(o, "layout_version", in->layout_version);
    return o;
}

static cli_json *
error_json(const char *name, int rc)
{
    cli_json *o = json_obj();
    json_set_str(o, "name", name);
    json_set_str(o, "error", shmchan_errname(rc));
    json_set_str(o, "message", shmchan_strerror(rc));
    return o;
}

static int
info_get(const char *name, uint32_t flags, shmchan_info *in)
{
    memset(in, 0, sizeof(*in));
    in->struct_size = sizeof(*in);
    return shmchan_info_get(name, flags, in);
}

/* ----------------------------------------------------------------- ls */

static void
ls_header(void)
{
    printf("%-22s %-6s %7s %8s %-9s %10s %10s %7s %7s %4s %s\n", "NAME", "KIND", "MAX-MSG",
           "CAPACITY", "POLICY", "SEQ", "MESSAGES", "READERS", "WRITERS", "DEAD", "IN-USE");
}

static void
ls_row(const char *name, const shmchan_info *in)
{
    char mx[24], cap[24], rd[16], wr[16], dead[16];
    bool q = in->kind == SHMCHAN_KIND_QUEUE || in->kind == SHMCHAN_KIND_SERVICE;
    snprintf(rd, sizeof(rd), q ? "%" PRIu32 : "-", in->readers);
    snprintf(wr, sizeof(wr), q ? "%" PRIu32 : "-", in->writers);
    snprintf(dead, sizeof(dead), q ? "%" PRIu32 : "-", in->dead_readers + in->dead_writers);
    printf("%-22s %-6s %7s %8s %-9s %10" PRIu64 " %10" PRIu64 " %7s %7s %4s %s\n", name,
           out_kind(in->kind), out_size(in->max_msg, mx, sizeof(mx)),
           q ? out_size(in->capacity, cap, sizeof(cap)) : "-", q ? out_policy(in->policy) : "-",
           in->seq, in->messages, rd, wr, dead, in->in_use ? "yes" : "no");
}

typedef struct ls_state {
    const cli_args *a;
    cli_json *arr;
    size_t hidden;
    int status;
} ls_state;

/* A channel found by listing that cannot be read is shown with --all only; a
 * channel named on the command line that cannot be read is an error. */
static void
ls_one(ls_state *st, const char *name, bool listed)
{
    uint32_t flags = cli_flags(st->a, name);
    bool json = st->a->fmt == FMT_JSON;
    shmchan_info in;
    int rc = info_get(name, flags, &in);
    if (rc == SHMCHAN_OK) {
        json ? json_push(st->arr, info_json(name, flags, &in)) : ls_row(name, &in);
    } else if (!listed) {
        st->status = cli_error("ls", name, rc);
    } else if (rc == SHMCHAN_ENOENT) {
        /* removed since it was listed */
    } else if (!cli_has(st->a, OPT_ALL)) {
        st->hidden++;
    } else if (json) {
        json_push(st->arr, error_json(name, rc));
    } else {
        printf("%-22s error: %s (%s)\n", name, shmchan_strerror(rc), shmchan_errname(rc));
    }
}

static int
ls_finish(ls_state *st)
{
    if (st->a->fmt == FMT_JSON) {
        cli_json *o = json_obj();
        json_set(o, "channels", st->arr);
        json_set_u64(o, "hidden", st->hidden);
        return json_print(o, true) == 0 ? st->status : CLI_ERR;
    }
    if (st->hidden != 0) {
        fprintf(stderr, "shmchan: ls: %zu channels cannot be read; 'shmchan ls --all' shows "
                "them\n", st->hidden);
    }
    return st->status;
}

static int
run_ls(const cli_args *a)
{
    ls_state st = {a, NULL, 0, CLI_OK};
    name_list nm;
    int rc = a->npos > 0 ? names_from_args(&nm, a->pos, a->npos) : names_from_shm(&nm);
    if (rc != SHMCHAN_OK) {
        return cli_errorf("ls", NULL, "listing shared memory: %s (%s)", shmchan_strerror(rc),
                          shmchan_errname(rc));
    }
    if (a->fmt == FMT_JSON) {
        st.arr = json_arr();
    } else {
        ls_header();
    }
    for (size_t i = 0; i < nm.n; i++) {
        ls_one(&st, nm.v[i], a->npos == 0);
    }
    names_free(&nm);
    return ls_finish(&st);
}

const cli_cmd cli_cmd_ls = {
    .name = "ls",
    .summary = "list channels",
    .run = run_ls,
    .opts = O(OPT_GLOBAL) | O(OPT_JSON) | O(OPT_ALL),
    .min_pos = 0,
    .max_pos = -1,
    .names = -1,
    .usage = "[NAME...] [--json] [--all]",
    .help =
        "List the channels in POSIX shared memory (or just the NAMEs given, which may be\n"
        "file paths): kind, largest message, queue capacity and policy, sequence number,\n"
        "messages published, live readers and writers, dead ones not yet reclaimed\n"
        "(queues; a latest-value channel does not track its readers) and whether any\n"
        "process has it open.\n\n"
        "  -a, --all   also list channels that cannot be read (permission, corruption,\n"
        "              being created), with the error; without it they are only counted\n"
        "              (on stderr). A NAME given that cannot be read is an error (status 1)\n"
        "  --json      {\"channels\": [objects with the fields of `info --json`, or name,\n"
        "              error and message], \"hidden\": unreadable channels not shown}\n"
        "  --global    Windows: the Global\\ namespace\n",
};

/* --------------------------------------------------------------- info */

static void
info_text_queue(const shmchan_info *in)
{
    char cap[24];
    printf("capacity        %s (%" PRIu64 " bytes)\n", out_size(in->capacity, cap, sizeof(cap)),
           in->capacity);
    printf("policy          %s\n", out_policy(in->policy));
    printf("oldest-seq      %" PRIu64 "\n", in->oldest_seq);
    printf("drops           %" PRIu64 "\n", in->drops);
    printf("readers         %" PRIu32 " live, %" PRIu32 " dead, %" PRIu32 " slots\n",
           in->readers, in->dead_readers, in->max_readers);
    printf("writers         %" PRIu32 " live, %" PRIu32 " dead, %" PRIu32 " slots\n",
           in->writers, in->dead_writers, in->max_writers);
}

static void
info_text_service(const shmchan_info *in)
{
    char cap[24];
    printf("capacity        %s (%" PRIu64 " bytes of request ring)\n",
           out_size(in->capacity, cap, sizeof(cap)), in->capacity);
    printf("servers         %" PRIu32 " live, %" PRIu32 " dead, %" PRIu32 " slots\n",
           in->readers, in->dead_readers, in->max_readers);
    printf("clients         %" PRIu32 " live, %" PRIu32 " dead, %" PRIu32 " slots\n",
           in->writers, in->dead_writers, in->max_writers);
}

static void
info_text(const char *name, uint32_t flags, const shmchan_info *in)
{
    char when[32];
    printf("name            %s%s\n", name, (flags & SHMCHAN_FILE) ? " (file)" : "");
    printf("kind            %s\n", out_kind(in->kind));
    printf("mode            %04o\n", (unsigned)in->mode);
    printf("max-msg         %" PRIu64 "\n", in->max_msg);
    printf("region-size     %" PRIu64 "\n", in->region_size);
    printf("seq             %" PRIu64 "\n", in->seq);
    printf("messages        %" PRIu64 "\n", in->messages);
    printf("bytes           %" PRIu64 "\n", in->bytes);
    printf("waits           %" PRIu64 "\n", in->waits);
    printf("recovered       %" PRIu64 "\n", in->recovered);
    if (in->kind == SHMCHAN_KIND_QUEUE) {
        info_text_queue(in);
    } else if (in->kind == SHMCHAN_KIND_SERVICE) {
        info_text_service(in);
    }
    printf("in-use          %s\n", in->in_use ? "yes" : "no");
    printf("creator-pid     %" PRIu32 "\n", in->creator_pid);
    printf("created         %s\n", created_utc(in->created_unix_ns, when, sizeof(when)));
    printf("layout-version  %" PRIu32 "\n", in->layout_version);
}

/* All peers of a queue; *out is malloc'ed. */
static int
peers_get(const char *name, uint32_t flags, shmchan_peer **out, size_t *n)
{
    size_t cap = 16;
    *out = NULL;
    for (;;) {
        shmchan_peer *p = realloc(*out, cap * sizeof(*p));
        if (p == NULL) {
            return SHMCHAN_ENOMEM;
        }
        *out = p;
        int rc = shmchan_peers_get(name, flags, p, cap, n);
        if (rc != SHMCHAN_OK || *n <= cap) {
            return rc;
        }
        cap = *n + 16; /* more joined meanwhile */
    }
}

/* A service's peers come as SHMCHAN_PEER_SERVER and _CLIENT; a library
 * from before those listed them as workers and writers. */
static const char *
role_name(uint32_t kind, uint32_t role)
{
    if (kind == SHMCHAN_KIND_SERVICE && role == SHMCHAN_PEER_WORKER) {
        return "server";
    }
    if (kind == SHMCHAN_KIND_SERVICE && role == SHMCHAN_PEER_WRITER) {
        return "client";
    }
    return peer_role_name(role);
}

static void
peers_text(const shmchan_peer *p, size_t n, uint32_t kind)
{
    if (n == 0) {
        printf("\nno readers or writers registered\n");
        return;
    }
    printf("\n%-10s %5s %8s %-5s %12s %10s %12s %10s\n", "ROLE", "SLOT", "PID", "STATE",
           "POSITION", "LAG", "COUNT", "LOST");
    for (size_t i = 0; i < n; i++) {
        bool reader = !peer_is_writer(p[i].role);
        char pos[24] = "-", lag[24] = "-";
        if (reader) {
            snprintf(pos, sizeof(pos), "%" PRIu64, p[i].position);
            snprintf(lag, sizeof(lag), "%" PRIu64, p[i].lag);
        }
        printf("%-10s %5" PRIu32 " %8" PRIu32 " %-5s %12s %10s %12" PRIu64 " %10" PRIu64 "\n",
               role_name(kind, p[i].role), p[i].slot, p[i].pid, p[i].alive ? "alive" : "dead",
               pos, lag, p[i].count, p[i].lost);
    }
}

static cli_json *
peers_json(const shmchan_peer *p, size_t n, uint32_t kind)
{
    cli_json *arr = json_arr();
    for (size_t i = 0; i < n; i++) {
        cli_json *o = json_obj();
        json_set_str(o, "role", role_name(kind, p[i].role));
        json_set_u64(o, "slot", p[i].slot);
        json_set_u64(o, "pid", p[i].pid);
        json_set_bool(o, "alive", p[i].alive != 0);
        if (!peer_is_writer(p[i].role)) {
            json_set_u64(o, "position", p[i].position);
            json_set_u64(o, "lag", p[i].lag);
            json_set_u64(o, "lost", p[i].lost);
        }
        json_set_u64(o, "count", p[i].count);
        json_push(arr, o);
    }
    return arr;
}

static int
info_peers(const cli_args *a, const char *name, uint32_t flags, uint32_t kind, cli_json *o)
{
    shmchan_peer *p = NULL;
    size_t n = 0;
    int rc = peers_get(name, flags, &p, &n);
    if (rc == SHMCHAN_OK) {
        a->fmt == FMT_JSON ? json_set(o, "peers", peers_json(p, n, kind))
                           : peers_text(p, n, kind);
    }
    free(p);
    return rc;
}

static int
run_info(const cli_args *a)
{
    const char *name = a->pos[0];
    uint32_t flags = cli_flags(a, name);
    shmchan_info in;
    int rc = info_get(name, flags, &in);
    if (rc != SHMCHAN_OK) {
        return cli_error("info", name, rc);
    }
    bool json = a->fmt == FMT_JSON;
    cli_json *o = json ? info_json(name, flags, &in) : NULL;
    if (!json) {
        info_text(name, flags, &in);
    }
    if (in.kind == SHMCHAN_KIND_QUEUE || in.kind == SHMCHAN_KIND_SERVICE) {
        rc = info_peers(a, name, flags, in.kind, o);
    }
    if (json) {
        int prc = json_print(o, true);
        rc = rc == SHMCHAN_OK && prc != 0 ? SHMCHAN_ESYS : rc;
    }
    return rc == SHMCHAN_OK ? CLI_OK : cli_error("info", name, rc);
}

const cli_cmd cli_cmd_info = {
    .name = "info",
    .summary = "show a channel's counters and peers",
    .run = run_info,
    .opts = O(OPT_GLOBAL) | O(OPT_JSON),
    .min_pos = 1,
    .max_pos = 1,
    .names = 1,
    .usage = "NAME [--json]",
    .help =
        "Show a channel's geometry and counters without joining it: sequence, messages\n"
        "and bytes published, waits (times a reader slept until woken, or a writer\n"
        "waited for space), dead peers recovered, whether it is in use; for queues also\n"
        "the drops, and each reader (position, lag, messages lost) and writer, with\n"
        "those whose process is gone marked dead; for services the servers and clients.\n\n"
        "  --json     one JSON object; queues add \"peers\": [{role, slot, pid, alive,\n"
        "             position, lag, lost, count}]\n"
        "  --global   Windows: the Global\\ namespace\n",
};

/* ----------------------------------------------------------------- rm */

/*
 * Without --force a name is removed only if it was recognised as a channel:
 * one that opens, or whose header shows it is one (another layout version,
 * damaged, being created). Under our shared-memory prefix an object with
 * foreign contents is squatting our names and goes too; a file with foreign
 * contents is somebody's data (`rm ./notes.txt` must not delete notes). A
 * FIFO, socket, symlink or device (EUNSAFE) or an object we cannot read
 * (EACCES) is never recognised.
 */
static bool
rm_recognised(int rc, bool file)
{
    switch (rc) {
    case SHMCHAN_OK:
    case SHMCHAN_ENOENT: /* unlink reports it */
    case SHMCHAN_ELAYOUT:
    case SHMCHAN_ECORRUPT:
    case SHMCHAN_EGEOMETRY:
    case SHMCHAN_EINIT:
        return true;
    case SHMCHAN_EBADMAGIC:
    case SHMCHAN_ETRUNCATED:
        return !file;
    default:
        return false;
    }
}

static int
rm_one(const cli_args *a, const char *name)
{
    uint32_t flags = cli_flags(a, name);
    bool force = cli_has(a, OPT_FORCE);
    if (!force) {
        shmchan_info in;
        int rc = info_get(name, flags, &in);
        if (!rm_recognised(rc, (flags & SHMCHAN_FILE) != 0)) {
            return cli_errorf("rm", name, "not removed: %s (%s); use --force to remove it anyway",
                              shmchan_strerror(rc), shmchan_errname(rc));
        }
    }
    int rc = shmchan_unlink(name, flags);
    if (rc == SHMCHAN_ENOENT && force) {
        return CLI_OK;
    }
    return rc == SHMCHAN_OK ? CLI_OK : cli_error("rm", name, rc);
}

static int
run_rm(const cli_args *a)
{
    int status = CLI_OK;
    for (int i = 0; i < a->npos; i++) {
        if (rm_one(a, a->pos[i]) != CLI_OK) {
            status = CLI_ERR;
        }
    }
    return status;
}

const cli_cmd cli_cmd_rm = {
    .name = "rm",
    .summary = "remove channels",
    .run = run_rm,
    .opts = O(OPT_GLOBAL) | O(OPT_FORCE),
    .min_pos = 1,
    .max_pos = -1,
    .names = -1,
    .usage = "NAME... [--force]",
    .help =
        "Remove channels by name. Processes that have one open keep using it until they\n"
        "close it; new opens no longer find it. Only what is recognisably a channel is\n"
        "removed (also a damaged one): not a FIFO, socket, symlink or device, not what\n"
        "you cannot read, and for a file path not a file of other contents. Continues\n"
        "past errors; status 1 if any failed.\n\n"
        "  -f, --force   ignore missing channels; remove names that are not recognisably\n"
        "                channels too\n"
        "  --global      Windows: the Global\\ namespace\n",
};

/* ----------------------------------------------------------------- gc */

/*
 * What could not be inspected is reported and left alone without changing
 * the status (docs/cli.md): with --force a dry look comes first, so that
 * only a failed removal makes the status 1.
 */
static int
gc_one(const cli_args *a, const char *name, bool listed, size_t *found)
{
    bool force = cli_has(a, OPT_FORCE);
    uint32_t flags = cli_flags(a, name);
    int removed = 0;
    int rc = shmchan_reap(name, flags, true, &removed);
    bool inspected = rc == SHMCHAN_OK;
    if (inspected && force && removed) {
        rc = shmchan_reap(name, flags, false, &removed);
    }
    if (rc == SHMCHAN_EBUSY || rc == SHMCHAN_EINIT || (rc == SHMCHAN_ENOENT && listed)) {
        return CLI_OK; /* in use, being created, or gone meanwhile */
    }
    if (rc != SHMCHAN_OK) {
        cli_error("gc", name, rc);
        return inspected ? CLI_ERR : CLI_OK;
    }
    if (removed) {
        printf("%s %s\n", force ? "removed" : "unused", name);
        (*found)++;
    }
    return CLI_OK;
}

/*
 * Side wait objects ("NAME..wait", docs/event-loops.md) whose channel is gone
 * or is another one now; `ls` never lists them. Given names, only those
 * names' side objects are looked at, and "none there" is no news.
 */
static int
gc_side_one(const cli_args *a, const char *name, size_t *found)
{
    bool force = cli_has(a, OPT_FORCE);
    uint32_t flags = cli_flags(a, name);
    int removed = 0;
    int rc = shmchan_reap_side(name, flags, true, &removed);
    bool inspected = rc == SHMCHAN_OK;
    if (inspected && force && removed) {
        rc = shmchan_reap_side(name, flags, false, &removed);
    }
    if (rc == SHMCHAN_ENOENT || rc == SHMCHAN_EBUSY || rc == SHMCHAN_ENOTSUP) {
        return CLI_OK; /* none, gone meanwhile, being taken over, or none here */
    }
    if (rc != SHMCHAN_OK) {
        char what[4096];
        (void)snprintf(what, sizeof(what), "%s..wait", name);
        cli_error("gc", what, rc);
        return inspected ? CLI_ERR : CLI_OK; /* as for channels (gc_one) */
    }
    if (removed) {
        printf("%s %s..wait\n", force ? "removed" : "unused", name);
        (*found)++;
    }
    return CLI_OK;
}

/* Every side object in shared memory (after the channels: a channel that gc
 * removed took its own side object with it). */
static int
gc_sides(const cli_args *a, size_t *found)
{
    name_list nm;
    int rc = names_from_sides(&nm);
    if (rc != SHMCHAN_OK) {
        return rc == SHMCHAN_ENOTSUP
                   ? CLI_OK
                   : cli_errorf("gc", NULL, "listing side wait objects: %s (%s)",
                                shmchan_strerror(rc), shmchan_errname(rc));
    }
    int status = CLI_OK;
    for (size_t i = 0; i < nm.n; i++) {
        if (gc_side_one(a, nm.v[i], found) != CLI_OK) {
            status = CLI_ERR;
        }
    }
    names_free(&nm);
    return status;
}

static int
run_gc(const cli_args *a)
{
    name_list nm;
    int rc = a->npos > 0 ? names_from_args(&nm, a->pos, a->npos) : names_from_shm(&nm);
    if (rc != SHMCHAN_OK) {
        return cli_errorf("gc", NULL, "listing shared memory: %s (%s)", shmchan_strerror(rc),
                          shmchan_errname(rc));
    }
    int status = CLI_OK;
    size_t found = 0;
    for (size_t i = 0; i < nm.n; i++) {
        if (gc_one(a, nm.v[i], a->npos == 0, &found) != CLI_OK) {
            status = CLI_ERR;
        }
        if (a->npos > 0 && gc_side_one(a, nm.v[i], &found) != CLI_OK) {
            status = CLI_ERR;
        }
    }
    names_free(&nm);
    if (a->npos == 0 && gc_sides(a, &found) != CLI_OK) {
        status = CLI_ERR;
    }
    if (found != 0 && !cli_has(a, OPT_FORCE)) {
        fprintf(stderr, "shmchan: gc: dry run: %zu unused; 'shmchan gc --force' removes them\n",
                found);
    }
    return status;
}

const cli_cmd cli_cmd_gc = {
    .name = "gc",
    .summary = "find (and with --force remove) channels nobody has open",
    .run = run_gc,
    .opts = O(OPT_GLOBAL) | O(OPT_FORCE),
    .min_pos = 0,
    .max_pos = -1,
    .names = -1,
    .usage = "[NAME...] [--force]",
    .help =
        "Find channels that no process has open (their users all exited or crashed):\n"
        "every channel in shared memory, or the NAMEs given (file paths too). Prints\n"
        "'unused NAME' for each and removes nothing, unless --force: then it removes\n"
        "them and prints 'removed NAME'. A channel in use is never removed. Safe to run\n"
        "at any time. Names that cannot be inspected (not a channel, a FIFO, no\n"
        "permission, missing) are reported on stderr and skipped; they do not change\n"
        "the status. Side wait objects (NAME..wait, for read-only readers) whose\n"
        "channel is gone, or is another channel now, are found and removed the same\n"
        "way ('unused NAME..wait'); one that belongs to its channel is left alone.\n\n"
        "  -f, --force   remove the unused channels (status 1 only if a removal failed)\n"
        "  --global      Windows: the Global\\ namespace\n",
};
