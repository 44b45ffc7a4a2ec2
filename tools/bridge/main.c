/* shmchan-bridge: carries local shmchan channels to NATS subjects and back.
 * Configuration and behaviour: docs/bridge.md. Uses only the public shmchan API. */
#define _GNU_SOURCE
#include "bridge.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_stats;
/* Readable from the first stop on, for good: every waiting thread polls it
 * (nobody reads it), so a stop wakes them without any periodic look. */
static int g_stop_fd = -1;
/* SIGUSR1 (and a stop) wake the main thread, which reads it. */
static int g_wake_fd = -1;

static void poke(int fd)
{
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof one) < 0) { /* full counter: it is readable anyway */
    }
}

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGUSR1) {
        g_stats = 1;
    } else {
        g_stop = 1;
        poke(g_stop_fd);
    }
    poke(g_wake_fd);
    errno = saved;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shmchan-bridge [--config FILE] [--server URL[,URL...]] [--host ID]\n"
            "                      [--state-dir DIR] [--export 'KIND CHANNEL SUBJECT [OPT...]']...\n"
            "                      [--import 'KIND SUBJECT CHANNEL [OPT...]']...\n"
            "                      [--stats-interval SEC] [--check]\n"
            "KIND is latest or queue. OPT: mode=core|jetstream stream=NAME durable=NAME own=drop|keep\n"
            "workqueue max_msgs=N replicas=N dup_window=SEC ack_wait=SEC on_full=block|report\n"
            "stream_subjects=SUBJ.\n"
            "SIGTERM/SIGINT: stop cleanly. SIGUSR1: print the counters as JSON on stdout.\n"
            "Exit status: 0 stopped cleanly, 1 runtime error, 2 bad configuration or usage.\n");
}

/* Command-line words map onto the configuration file's directives. */
static int parse_args(br_config *cfg, int argc, char **argv, bool *check)
{
    char err[600], line[1100];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(a, "--check") == 0) {
            *check = true;
            continue;
        }
        static const char *const map[][2] = {
            {"--server", "server"},         {"--host", "host"},     {"--state-dir", "state_dir"},
            {"--stats-interval", "stats_interval"}, {"--export", "export"}, {"--import", "import"},
            {"--config", NULL}};
        int k = -1;
        for (int j = 0; j < (int)(sizeof map / sizeof map[0]); j++)
            if (strcmp(a, map[j][0]) == 0)
                k = j;
        if (k < 0 || i + 1 >= argc) {
            fprintf(stderr, "shmchan-bridge: %s '%s'\n", k < 0 ? "unknown option" : "missing value for", a);
            usage(stderr);
            return -1;
        }
        const char *v = argv[++i];
        int rc;
        if (!map[k][1]) {
            rc = br_config_file(cfg, v, err, sizeof err);
        } else {
            snprintf(line, sizeof line, "%s %s", map[k][1], v);
            rc = br_config_line(cfg, line, 0, err, sizeof err);
        }
        if (rc) {
            fprintf(stderr, "shmchan-bridge: %s%s%s\n", map[k][1] ? a : "", map[k][1] ? ": " : "",
                    err);
            return -1;
        }
    }
    return 0;
}

static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
    (void)nc;
    (void)closure;
    int64_t ms = 100;
    for (int i = 1; i < attempts && ms < 5000; i++)
        ms *= 2;
    return ms > 5000 ? 5000 : ms;
}

/* One of the bridge's two connections, for its log lines. */
typedef struct conn_info {
    br_ctx *ctx;
    const char *what;
} conn_info;

static void on_connected(natsConnection *nc, void *closure)
{
    conn_info *ci = closure;
    char url[256] = "?";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    atomic_store(&ci->ctx->connected, 1);
    br_log("connected to %s (max_payload %lld; %s)", url,
           (long long)natsConnection_GetMaxPayload(nc), ci->what);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    conn_info *ci = closure;
    atomic_store(&ci->ctx->connected, 0);
    if (!*ci->ctx->stop)
        br_log("disconnected from the NATS server (%s); reconnecting with backoff (100 ms to 5 s)",
               ci->what);
}

static void on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    conn_info *ci = closure;
    br_log("connection closed (%s)", ci->what);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    conn_info *ci = closure;
    br_log("NATS error%s (%s): %s", sub ? " on a subscription" : "", ci->what,
           natsStatus_GetText(err));
}

/* "url1,url2,...": a server list for a cluster (libnats picks and fails over). */
static natsStatus set_servers(natsOptions *o, const char *list)
{
    char buf[sizeof ((br_config *)0)->server];
    const char *urls[16];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *u = strtok_r(buf, ",", &save); u && n < 16;
         u = strtok_r(NULL, ",", &save))
        urls[n++] = u;
    return n ? natsOptions_SetServers(o, urls, n) : NATS_INVALID_ARG;
}

/* One connection: the JetStream links' (libnats's reader and delivery
 * threads; their blocking requests) or, with core, the core links' (no libnats
 * thread reads it: the export loop does, docs/bridge.md "Waiting and threads"). */
static natsStatus connect(br_ctx *ctx, bool core, natsConnection **out)
{
    static conn_info infos[2];
    conn_info *ci = &infos[core];
    ci->ctx = ctx;
    ci->what = core ? "core links, event loop" : "JetStream links";
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = set_servers(o, ctx->cfg->server);
    if (s == NATS_OK)
        s = natsOptions_SetName(o, core ? "shmchan-bridge core" : "shmchan-bridge");
    if (s == NATS_OK && core)
        s = br_loop_options(o);
    if (s == NATS_OK) /* write at once: no 1 ms flusher delay per hop (exports batch) */
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK)
        s = natsOptions_SetCustomReconnectDelay(o, reconnect_delay, ctx);
    if (s == NATS_OK)
        s = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, ci);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(o, on_connected, ci);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(o, on_disconnected, ci);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(o, on_closed, ci);
    if (s == NATS_OK)
        s = natsOptions_SetErrorHandler(o, on_error, ci);
    if (s == NATS_OK) {
        s = natsConnection_Connect(out, o);
        if (s == NATS_NOT_YET_CONNECTED) {
            br_log("NATS server %s not reachable yet (%s); retrying with backoff",
                   ctx->cfg->server, ci->what);
            s = NATS_OK;
        } else if (s == NATS_OK) {
            on_connected(*out, ci);
        }
    }
    if (s == NATS_OK && !core)
        s = natsConnection_JetStream(&ctx->js, *out, NULL);
    natsOptions_Destroy(o);
    return s;
}

static bool uses_latest_module(const br_link *l)
{
    return l->kind == BR_LATEST || l->mode == BR_CORE;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sleep until a signal (stop, SIGUSR1) or the next stats interval: an idle
 * bridge's main thread does not wake otherwise. */
static void run(br_ctx *ctx)
{
    br_config *cfg = ctx->cfg;
    double next_stats = now_s() + cfg->stats_interval;
    while (!g_stop) {
        int timeout = -1;
        if (cfg->stats_interval > 0) {
            double left = next_stats - now_s();
            timeout = left > 0 ? (int)(left * 1000) + 1 : 0;
        }
        struct pollfd pf = {g_wake_fd, POLLIN, 0};
        if (poll(&pf, 1, timeout) > 0) {
            uint64_t v;
            if (read(g_wake_fd, &v, sizeof v) < 0) { /* EAGAIN: another read took it */
            }
        }
        if (g_stats || (cfg->stats_interval > 0 && now_s() >= next_stats)) {
            g_stats = 0;
            br_stats_print(cfg, stdout);
            fflush(stdout);
            next_stats = now_s() + cfg->stats_interval;
        }
    }
}

int main(int argc, char **argv)
{
    static br_config cfg;
    br_config_defaults(&cfg);
    bool check = false;
    char err[600];
    if (parse_args(&cfg, argc, argv, &check) != 0)
        return 2;
    if (br_config_check(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "shmchan-bridge: %s\n", err);
        return 2;
    }
    if (check) {
        printf("configuration OK: host %s, %d link(s)\n", cfg.host, cfg.nlinks);
        return 0;
    }
    g_stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    g_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (g_stop_fd < 0 || g_wake_fd < 0) {
        fprintf(stderr, "shmchan-bridge: eventfd: %s\n", strerror(errno));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: waits return EINTR and see the flag */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    br_ctx ctx = {.cfg = &cfg, .stop = &g_stop, .stop_fd = g_stop_fd};
    bool any_core = false, any_js = false;
    for (int i = 0; i < cfg.nlinks; i++) {
        any_core |= uses_latest_module(&cfg.links[i]);
        any_js |= !uses_latest_module(&cfg.links[i]);
    }
    if (br_loop_init() != 0) {
        fprintf(stderr, "shmchan-bridge: epoll: %s\n", strerror(errno));
        return 1;
    }
    natsStatus s = NATS_OK;
    if (any_core)
        s = connect(&ctx, true, &ctx.core_nc);
    if (s == NATS_OK && any_js)
        s = connect(&ctx, false, &ctx.nc);
    if (s != NATS_OK) {
        fprintf(stderr, "shmchan-bridge: cannot set up the NATS connection to %s: %s\n",
                cfg.server, natsStatus_GetText(s));
        return 1;
    }
    int rc = 0;
    int started = 0;
    for (; started < cfg.nlinks; started++) {
        br_link *l = &cfg.links[started];
        l->ctx = &ctx;
        l->nc = uses_latest_module(l) ? ctx.core_nc : ctx.nc;
        if ((uses_latest_module(l) ? br_latest_start(l) : br_queue_start(l)) != 0) {
            rc = 1;
            g_stop = 1;
            started++;
            break;
        }
        br_log("%s %s %s %s %s (%s)", l->dir == BR_EXPORT ? "export" : "import",
               l->kind == BR_LATEST ? "latest" : "queue", l->channel,
               l->dir == BR_EXPORT ? "->" : "<-", l->subject,
               l->mode == BR_CORE ? "core NATS, at most once" : "JetStream, at least once");
    }
    if (rc == 0 && br_export_loop_start(&ctx) != 0) {
        br_log("cannot start the export loop");
        rc = 1;
        g_stop = 1;
    }
    if (rc == 0)
        br_log("running as host %s", cfg.host);
    run(&ctx);
    br_log("stopping: finishing messages in flight");
    poke(g_stop_fd); /* a stop that was not a signal (a failed start) */
    /* The export loop stops exporting at once; it reads and writes the core
     * connection until the imports' subscriptions are drained and what it
     * published is flushed (both need it to process the server's replies). */
    br_core_drain();
    for (int i = 0; i < started; i++)
        if (!uses_latest_module(&cfg.links[i]))
            br_queue_stop(&cfg.links[i]);
    if (ctx.core_nc)
        natsConnection_FlushTimeout(ctx.core_nc, 2000);
    if (ctx.nc)
        natsConnection_FlushTimeout(ctx.nc, 2000);
    br_export_loop_stop(&ctx);
    for (int i = 0; i < started; i++)
        if (uses_latest_module(&cfg.links[i]))
            br_latest_stop(&cfg.links[i]);
    br_stats_print(&cfg, stdout);
    jsCtx_Destroy(ctx.js);
    natsConnection_Destroy(ctx.core_nc);
    natsConnection_Destroy(ctx.nc);
    br_loop_close();
    nats_CloseAndWait(2000);
    br_log("stopped");
    return rc;
}
