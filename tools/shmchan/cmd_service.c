/*
 * Services: call (a client) and serve (a server that answers each request by
 * running a command). docs/cli.md and docs/services.md describe them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sys.h"

int
cli_open_service(const char *verb, const char *name, uint32_t flags, shmchan_service **out)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = flags;
    int rc = shmchan_service_open(name, &o, out);
    return rc == SHMCHAN_OK ? CLI_OK : cli_open_failed(verb, name, flags, rc);
}

/* --------------------------------------------------------------- call */

struct response_wait {
    shmchan_service *s;
    cli_buf *b;
    size_t len;
    shmchan_response info;
};

static int
response_wait_fn(void *ctx, int64_t timeout_ms)
{
    struct response_wait *w = ctx;
    return shmchan_service_response(w->s, w->b->p, w->b->cap, timeout_ms, &w->len, &w->info);
}

struct request_wait {
    shmchan_service *s;
    const void *data;
    size_t len;
    uint64_t id;
};

static int
request_wait_fn(void *ctx, int64_t timeout_ms)
{
    struct request_wait *w = ctx;
    return shmchan_service_request(w->s, w->data, w->len, timeout_ms, &w->id);
}

/* One response part: raw bytes, or one JSON object per line. */
static int
call_output(const cli_args *a, const struct response_wait *w, uint64_t part)
{
    if (a->fmt != FMT_JSON) {
        return fwrite(w->b->p, 1, w->len, stdout) == w->len && fflush(stdout) == 0 ? SHMCHAN_OK
                                                                                  : SHMCHAN_ESYS;
    }
    cli_json *o = json_obj();
    json_set_u64(o, "id", w->info.id);
    json_set_u64(o, "part", part);
    json_set_bool(o, "last", (w->info.flags & SHMCHAN_REPLY_MORE) == 0);
    json_set_bool(o, "error", (w->info.flags & SHMCHAN_REPLY_ERROR) != 0);
    json_set_u64(o, "len", w->len);
    json_set_bytes(o, w->b->p, w->len);
    return json_print(o, false) == 0 ? SHMCHAN_OK : SHMCHAN_ESYS;
}

static int
call_failed(const char *name, int rc, uint64_t parts)
{
    switch (rc) {
    case SHMCHAN_EINTR:
        return cli_exit_interrupted();
    case SHMCHAN_ETIMEDOUT:
        return cli_errorf("call", name, "no %s within the timeout (SHMCHAN_ETIMEDOUT)",
                          parts == 0 ? "response" : "last response");
    case SHMCHAN_EPEERDIED:
        return cli_errorf("call", name, "the server died while handling the request "
                          "(SHMCHAN_EPEERDIED)");
    case SHMCHAN_ESYS:
        if (sys_interrupted()) {
            return cli_exit_interrupted();
        }
        return cli_errorf("call", name, "writing output: %s", strerror(errno));
    default:
        return cli_error("call", name, rc);
    }
}

/* Print the parts of the response to w's request until its last one. An
 * error response goes to stderr (status 1) unless --json shows it. With
 * --resend, a server that dies holding the request before any part came
 * gives SHMCHAN_EPEERDIED back, for the caller to send it again. */
static int
call_responses(const cli_args *a, const char *name, struct response_wait *w, uint64_t deadline)
{
    for (uint64_t part = 0;; part++) {
        int rc = cli_wait(response_wait_fn, w, deadline);
        if (rc == SHMCHAN_EPEERDIED && part == 0 && cli_has(a, OPT_RESEND)) {
            return rc;
        }
        if (rc != SHMCHAN_OK) {
            return call_failed(name, rc, part);
        }
        bool error = (w->info.flags & SHMCHAN_REPLY_ERROR) != 0;
        if (error && a->fmt != FMT_JSON) {
            return cli_errorf("call", name, "the server answered with an error: %.*s",
                              (int)(w->len > 4000 ? 4000 : w->len), (const char *)w->b->p);
        }
        rc = call_output(a, w, part);
        if (rc != SHMCHAN_OK) {
            return call_failed(name, rc, part);
        }
        if ((w->info.flags & SHMCHAN_REPLY_MORE) == 0) {
            return error ? CLI_ERR : CLI_OK;
        }
    }
}

static int
call_request(const cli_args *a, shmchan_service *s, const char *name, cli_buf *in)
{
    size_t max = shmchan_service_max_msg(s);
    struct request_wait rq = {s, a->pos[1], strlen(a->pos[1]), 0};
    if (strcmp(a->pos[1], "-") == 0) {
        int rc = in_read_all(stdin, in, max, &rq.len);
        if (rc == SHMCHAN_EMSGSIZE) {
            return cli_errorf("call", name, "standard input is larger than the service's "
                              "maximum of %zu bytes (SHMCHAN_EMSGSIZE)", max);
        }
        if (rc != SHMCHAN_OK) {
            return cli_errorf("call", name, "reading standard input: %s", strerror(errno));
        }
        rq.data = in->p != NULL ? (const void *)in->p : "";
    }
    if (rq.len > max) {
        return cli_errorf("call", name, "request of %zu bytes is larger than the service's "
                          "maximum of %zu (SHMCHAN_EMSGSIZE)", rq.len, max);
    }
    uint64_t deadline = cli_deadline(a->timeout_ms);
    cli_buf out = {0};
    if (!buf_reserve(&out, max != 0 ? max : 1)) {
        return cli_error("call", name, SHMCHAN_ENOMEM);
    }
    int rc = SHMCHAN_EPEERDIED;
    for (int sends = 0; rc == SHMCHAN_EPEERDIED; sends++) {
        if (sends > SHMCHAN_RESEND_MAX) {
            rc = call_failed(name, rc, 0);
            break;
        }
        rc = cli_wait(request_wait_fn, &rq, deadline);
        if (rc != SHMCHAN_OK) {
            rc = call_failed(name, rc, 0);
            break;
        }
        struct response_wait w = {s, &out, 0, {0}};
        rc = call_responses(a, name, &w, deadline);
    }
    buf_free(&out);
    return rc;
}

static int
run_call(const cli_args *a)
{
    const char *name = a->pos[0];
    sys_catch_interrupts();
    sys_watch_stdout();
    shmchan_service *s;
    int rc = cli_open_service("call", name, cli_flags(a, name), &s);
    if (rc != CLI_OK) {
        return rc;
    }
    cli_buf in = {0};
    rc = call_request(a, s, name, &in);
    buf_free(&in);
    shmchan_service_close(s);
    return rc;
}

const cli_cmd cli_cmd_call = {
    .name = "call",
    .summary = "send a request to a service and print the response",
    .run = run_call,
    .opts = O(OPT_GLOBAL) | O(OPT_TIMEOUT) | O(OPT_JSON) | O(OPT_RESEND),
    .min_pos = 2,
    .max_pos = 2,
    .names = 1,
    .usage = "NAME MSG|- [--timeout SEC] [--json] [--resend]",
    .help =
        "Send MSG (with '-': all of standard input) as one request to a service and write\n"
        "the response to standard output as raw bytes, exactly as the server sent it. A\n"
        "streamed response is written part after part as the parts arrive.\n\n"
        "  -t, --timeout SEC  give up SEC seconds after starting (status 1; default: wait\n"
        "                     for ever)\n"
        "  --json             one JSON object per response part: id, part, last, error,\n"
        "                     len, encoding, data\n"
        "  --resend           send the request again (up to 3 times) when the server\n"
        "                     holding it dies before answering: for requests that are\n"
        "                     safe to run more than once\n"
        "  --global           Windows: the Global\\ namespace\n\n"
        "A response flagged as an error (`serve`: the command failed) is written to\n"
        "stderr and exits with status 1; so does a server that dies while it holds the\n"
        "request (SHMCHAN_EPEERDIED), at once rather than at the timeout. Ctrl-C ends it\n"
        "with status 128+signal.\n",
};

/* -------------------------------------------------------------- serve */

typedef struct server {
    const cli_args *a;
    const char *name;
    char *const *argv;      /* the command */
    shmchan_service *s;
    sys_thread *thread;
    sys_lock *lock;         /* shared: the fields below and the first error */
    int *status;
    volatile int *stop;
} server;

static int
take_once(server *sv, cli_buf *b, shmchan_request *req)
{
    for (;;) {
        sys_lock_take(sv->lock);
        bool stop = *sv->stop != 0;
        sys_lock_give(sv->lock);
        if (stop || sys_interrupted()) {
            return SHMCHAN_EINTR;
        }
        int rc = shmchan_service_take(sv->s, b->p, b->cap, 500, req);
        if (rc != SHMCHAN_ETIMEDOUT && rc != SHMCHAN_EAGAIN && rc != SHMCHAN_EINTR) {
            return rc;
        }
    }
}

/* Reply, retrying while the client is alive but its reply ring full. */
static int
reply_all(server *sv, const shmchan_request *req, const void *data, size_t len, uint32_t flags)
{
    uint64_t deadline = cli_deadline(sv->a->timeout_ms);
    for (;;) {
        int rc = shmchan_service_reply(sv->s, req, data, len, flags, 500);
        if (rc != SHMCHAN_ETIMEDOUT && rc != SHMCHAN_EAGAIN && rc != SHMCHAN_EINTR) {
            return rc;
        }
        if (deadline != 0 && sys_now_ms() >= deadline) {
            return SHMCHAN_ETIMEDOUT;
        }
    }
}

/* Run the command on one request and answer it. */
static int
serve_one(server *sv, const shmchan_request *req)
{
    size_t max = shmchan_service_max_msg(sv->s);
    sys_output out = {0}, err = {0};
    int status = 0;
    int e = sys_run(sv->argv, req->data, (size_t)req->len, max, &out, &err, &status);
    char text[512];
    int rc;
    if (e != 0) {
        snprintf(text, sizeof(text), "cannot run %s: %s", sv->argv[0], strerror(e));
        rc = reply_all(sv, req, text, strlen(text), SHMCHAN_REPLY_ERROR);
    } else if (status != 0) {
        if (err.len == 0) {
            snprintf(text, sizeof(text), "%s %s %d", sv->argv[0],
                     status > 255 ? "was killed by signal" : "exited with status",
                     status > 255 ? status - 256 : status);
        }
        rc = err.len != 0 ? reply_all(sv, req, err.p, err.len, SHMCHAN_REPLY_ERROR)
                          : reply_all(sv, req, text, strlen(text), SHMCHAN_REPLY_ERROR);
    } else if (out.total > max) {
        snprintf(text, sizeof(text), "the output of %s (%zu bytes) is larger than the "
                 "service's maximum message of %zu bytes", sv->argv[0], out.total, max);
        rc = reply_all(sv, req, text, strlen(text), SHMCHAN_REPLY_ERROR);
    } else {
        rc = reply_all(sv, req, out.p != NULL ? (const void *)out.p : "", out.len, 0);
    }
    free(out.p);
    free(err.p);
    /* a client that left (or timed out and closed) costs its answer only */
    return rc == SHMCHAN_EPEERDIED ? SHMCHAN_OK : rc;
}

static void
serve_fail(server *sv, int rc, const char *what)
{
    sys_lock_take(sv->lock);
    if (*sv->stop == 0) {
        *sv->status = cli_errorf("serve", sv->name, "%s: %s (%s)", what, shmchan_strerror(rc),
                                 shmchan_errname(rc));
        *sv->stop = 1;
    }
    sys_lock_give(sv->lock);
}

static void
serve_loop(void *arg)
{
    server *sv = arg;
    cli_buf b = {0};
    size_t max = shmchan_service_max_msg(sv->s);
    if (!buf_reserve(&b, max != 0 ? max : 1)) {
        serve_fail(sv, SHMCHAN_ENOMEM, "request buffer");
        return;
    }
    for (;;) {
        shmchan_request req;
        int rc = take_once(sv, &b, &req);
        if (rc == SHMCHAN_EINTR) {
            break;
        }
        if (rc == SHMCHAN_OK) {
            rc = serve_one(sv, &req);
        }
        if (rc != SHMCHAN_OK && rc != SHMCHAN_EMSGSIZE) {
            serve_fail(sv, rc, "answering a request");
            break;
        }
    }
    buf_free(&b);
}

static int
serve_open(const cli_args *a, server *sv, int n)
{
    const char *name = a->pos[0];
    for (int i = 0; i < n; i++) {
        int rc = cli_open_service("serve", name, cli_flags(a, name) | SHMCHAN_SERVER, &sv[i].s);
        if (rc != CLI_OK) {
            return rc;
        }
    }
    return CLI_OK;
}

static int
run_serve(const cli_args *a)
{
    const char *name = a->pos[0];
    if (a->npos < 2) {
        return cli_usage("serve", "missing COMMAND (after '--')");
    }
    int n = cli_has(a, OPT_JOBS) ? (int)a->jobs : 1;
    int status = CLI_OK;
    volatile int stop = 0;
    server *sv = calloc((size_t)n, sizeof(*sv));
    char **argv = calloc((size_t)a->npos, sizeof(*argv)); /* COMMAND ARGS... NULL */
    sys_lock *lock = sys_lock_new();
    if (sv == NULL || argv == NULL || lock == NULL) {
        free(sv);
        free(argv);
        sys_lock_free(lock);
        return cli_error("serve", name, SHMCHAN_ENOMEM);
    }
    for (int i = 1; i < a->npos; i++) {
        argv[i - 1] = (char *)a->pos[i];
    }
    sys_catch_interrupts();
    for (int i = 0; i < n; i++) {
        sv[i] = (server){a, name, argv, NULL, NULL, lock, &status, &stop};
    }
    int rc = serve_open(a, sv, n);
    for (int i = 0; rc == CLI_OK && i < n; i++) {
        if (sys_thread_start(&sv[i].thread, serve_loop, &sv[i]) != 0) {
            serve_fail(&sv[i], SHMCHAN_ENOMEM, "starting a worker thread");
        }
    }
    for (int i = 0; i < n; i++) {
        if (sv[i].thread != NULL) {
            sys_thread_join(sv[i].thread);
        }
        shmchan_service_close(sv[i].s);
    }
    free(sv);
    free(argv);
    sys_lock_free(lock);
    if (rc != CLI_OK) {
        return rc;
    }
    return status != CLI_OK ? status : sys_interrupted() ? cli_exit_interrupted() : CLI_OK;
}

const cli_cmd cli_cmd_serve = {
    .name = "serve",
    .summary = "answer a service's requests by running a command",
    .run = run_serve,
    .opts = O(OPT_GLOBAL) | O(OPT_JOBS) | O(OPT_TIMEOUT),
    .min_pos = 1,
    .max_pos = -1,
    .names = 1,
    .usage = "NAME [-j N] [--timeout SEC] -- COMMAND [ARGS...]",
    .help =
        "Serve a service: for each request, run COMMAND with the request on its\n"
        "standard input, and answer with what it wrote to standard output. A command\n"
        "that exits with a non-zero status (or is killed) answers with an error whose\n"
        "text is its standard error (or says the status); output larger than the\n"
        "service's maximum message is an error too. COMMAND is looked up in PATH and\n"
        "run directly, not through a shell (use `-- sh -c '...'` for one).\n\n"
        "  -j, --jobs N       run up to N commands at once (default 1), each as its own\n"
        "                     server of the service, competing with any other servers\n"
        "  -t, --timeout SEC  how long an answer may wait for room at a live client that\n"
        "                     does not read (default: for ever)\n"
        "  --global           Windows: the Global\\ namespace\n\n"
        "Runs until SIGINT, SIGTERM or SIGHUP: it then takes no more requests, lets the\n"
        "commands running finish and answers them, releases its server slots and exits\n"
        "with status 128+signal (a second signal ends it at once). A client that has\n"
        "gone costs only its answer.\n",
};
