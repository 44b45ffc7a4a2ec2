/* The configuration: one directive per line, parsed strictly (any unknown word,
 * missing or extra argument is an error naming the line). See docs/bridge.md. */
#define _GNU_SOURCE
#include "bridge.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORDS 16

void br_config_defaults(br_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->server, sizeof cfg->server, "nats://127.0.0.1:4222");
    snprintf(cfg->state_dir, sizeof cfg->state_dir, "/var/lib/shmchan-bridge");
}

__attribute__((format(printf, 4, 5))) static int fail(char *err, size_t cap, int line,
                                                      const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(err, cap, "line %d: %s", line, msg);
    else
        snprintf(err, cap, "%s", msg);
    return -1;
}

/* Host ids and stream/durable names: letters, digits, '-' and '_' only (they
 * appear in subjects, message ids and JetStream API subjects). */
static bool word_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
            return false;
    return true;
}

/* NATS subjects: dot-separated tokens of printable non-space characters. */
static bool subject_ok(const char *s, bool wildcards)
{
    size_t n = strlen(s);
    if (n == 0 || n > BR_SUBJ_MAX || s[0] == '.' || s[n - 1] == '.' || strstr(s, ".."))
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c >= 0x7f)
            return false;
        if (!wildcards && (c == '*' || c == '>'))
            return false;
    }
    return true;
}

static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

static int parse_secs(const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v < 1e9))
        return -1;
    *ms = (int64_t)(v * 1000.0);
    return 0;
}

static int link_option(br_link *l, const char *opt, int line, char *err, size_t cap)
{
    const char *eq = strchr(opt, '=');
    size_t klen = eq ? (size_t)(eq - opt) : strlen(opt);
    const char *v = eq ? eq + 1 : "";
#define KEY(k) (klen == strlen(k) && strncmp(opt, k, klen) == 0)
    if (KEY("workqueue") && !eq) {
        l->workqueue = true;
    } else if (KEY("own") && eq) {
        if (strcmp(v, "drop") == 0)
            l->keep_own = false;
        else if (strcmp(v, "keep") == 0)
            l->keep_own = true;
        else
            return fail(err, cap, line, "own must be drop or keep, not '%s'", v);
    } else if (KEY("mode") && eq) {
        if (strcmp(v, "core") == 0)
            l->mode = BR_CORE;
        else if (strcmp(v, "jetstream") == 0)
            l->mode = BR_JETSTREAM;
        else
            return fail(err, cap, line, "mode must be core or jetstream, not '%s'", v);
    } else if (KEY("on_full") && eq) {
        if (strcmp(v, "block") == 0)
            l->on_full = BR_FULL_BLOCK;
        else if (strcmp(v, "report") == 0)
            l->on_full = BR_FULL_REPORT;
        else
            return fail(err, cap, line, "on_full must be block or report, not '%s'", v);
    } else if (KEY("stream") && eq) {
        if (!word_ok(v, BR_SUBJ_MAX))
            return fail(err, cap, line, "bad stream name '%s' (letters, digits, - and _)", v);
        snprintf(l->stream, sizeof l->stream, "%s", v);
    } else if (KEY("durable") && eq) {
        if (!word_ok(v, BR_SUBJ_MAX))
            return fail(err, cap, line, "bad durable name '%s' (letters, digits, - and _)", v);
        snprintf(l->durable, sizeof l->durable, "%s", v);
    } else if (KEY("stream_subjects") && eq) {
        if (!subject_ok(v, true))
            return fail(err, cap, line, "bad subject '%s'", v);
        snprintf(l->stream_subj, sizeof l->stream_subj, "%s", v);
    } else if (KEY("max_msgs") && eq) {
        if (parse_i64(v, &l->max_msgs))
            return fail(err, cap, line, "max_msgs must be a count, not '%s'", v);
    } else if (KEY("replicas") && eq) {
        if (parse_i64(v, &l->replicas) || l->replicas < 1 || l->replicas > 5)
            return fail(err, cap, line, "replicas must be 1 to 5, not '%s'", v);
    } else if (KEY("ack_wait") && eq) {
        if (parse_secs(v, &l->ack_wait_ms) || l->ack_wait_ms < 1000)
            return fail(err, cap, line, "ack_wait must be seconds >= 1, not '%s'", v);
    } else if (KEY("dup_window") && eq) {
        if (parse_secs(v, &l->dup_window_ms) || l->dup_window_ms < 1000)
            return fail(err, cap, line, "dup_window must be seconds >= 1, not '%s'", v);
    } else {
        return fail(err, cap, line, "unknown or malformed option '%s'", opt);
    }
#undef KEY
    return 0;
}

/* export KIND CHANNEL SUBJECT [opt...] | import KIND SUBJECT CHANNEL [opt...] */
static int parse_link(br_config *cfg, char **w, int n, int line, char *err, size_t cap)
{
    if (cfg->nlinks >= BR_LINKS_MAX)
        return fail(err, cap, line, "too many links (at most %d)", BR_LINKS_MAX);
    if (n < 4)
        return fail(err, cap, line, "'%s' needs KIND, then CHANNEL and SUBJECT", w[0]);
    br_link *l = &cfg->links[cfg->nlinks];
    memset(l, 0, sizeof *l);
    l->line = line;
    l->dir = strcmp(w[0], "export") == 0 ? BR_EXPORT : BR_IMPORT;
    if (strcmp(w[1], "latest") == 0)
        l->kind = BR_LATEST;
    else if (strcmp(w[1], "queue") == 0)
        l->kind = BR_QUEUE;
    else
        return fail(err, cap, line, "kind must be latest or queue, not '%s'", w[1]);
    const char *chan = l->dir == BR_EXPORT ? w[2] : w[3];
    const char *subj = l->dir == BR_EXPORT ? w[3] : w[2];
    if (shmchan_name_check(chan) != SHMCHAN_OK)
        return fail(err, cap, line, "invalid channel name '%s'", chan);
    if (!subject_ok(subj, l->dir == BR_IMPORT))
        return fail(err, cap, line,
                    "invalid subject '%s' (no spaces or empty tokens; wildcards on import only)",
                    subj);
    snprintf(l->channel, sizeof l->channel, "%s", chan);
    snprintf(l->subject, sizeof l->subject, "%s", subj);
    l->mode = l->kind == BR_QUEUE ? BR_JETSTREAM : BR_CORE;
    l->on_full = BR_FULL_BLOCK;
    l->dup_window_ms = 120000;
    l->ack_wait_ms = 30000;
    for (int i = 4; i < n; i++)
        if (link_option(l, w[i], line, err, cap))
            return -1;
    if (l->kind == BR_LATEST && l->mode != BR_CORE)
        return fail(err, cap, line, "%s", "latest-value channels travel over core NATS only");
    if (l->mode == BR_JETSTREAM && !l->stream[0])
        return fail(err, cap, line, "%s", "a JetStream queue needs stream=NAME");
    if (l->mode == BR_CORE &&
        (l->stream[0] || l->durable[0] || l->workqueue || l->max_msgs || l->replicas))
        return fail(err, cap, line, "%s", "stream options need mode=jetstream");
    if (l->dir == BR_EXPORT && (l->durable[0] || l->keep_own))
        return fail(err, cap, line, "%s", "durable= and own= apply to imports only");
    if (l->dir == BR_IMPORT && (l->workqueue || l->max_msgs || l->replicas || l->stream_subj[0]))
        return fail(err, cap, line, "%s", "stream settings belong to the exporting side");
    if (!l->stream_subj[0])
        memcpy(l->stream_subj, l->subject, sizeof l->stream_subj);
    cfg->nlinks++;
    return 0;
}

static int split(char *line, char **w)
{
    int n = 0;
    char *hash = strchr(line, '#');
    if (hash)
        *hash = 0;
    for (char *tok = strtok(line, " \t\r\n"); tok; tok = strtok(NULL, " \t\r\n")) {
        if (n == MAX_WORDS)
            return -1;
        w[n++] = tok;
    }
    return n;
}

int br_config_line(br_config *cfg, char *line, int lineno, char *err, size_t cap)
{
    char *w[MAX_WORDS];
    int n = split(line, w);
    if (n < 0)
        return fail(err, cap, lineno, "%s", "too many words");
    if (n == 0)
        return 0;
    if (strcmp(w[0], "export") == 0 || strcmp(w[0], "import") == 0)
        return parse_link(cfg, w, n, lineno, err, cap);
    if (n != 2)
        return fail(err, cap, lineno, "'%s' takes exactly one value", w[0]);
    if (strcmp(w[0], "server") == 0) {
        if (strlen(w[1]) >= sizeof cfg->server)
            return fail(err, cap, lineno, "%s", "server URL too long");
        memcpy(cfg->server, w[1], strlen(w[1]) + 1);
    } else if (strcmp(w[0], "host") == 0) {
        if (!word_ok(w[1], BR_HOST_MAX))
            return fail(err, cap, lineno, "bad host id '%s' (1-32 letters, digits, - or _)", w[1]);
        snprintf(cfg->host, sizeof cfg->host, "%s", w[1]);
    } else if (strcmp(w[0], "state_dir") == 0) {
        if (strlen(w[1]) >= sizeof cfg->state_dir)
            return fail(err, cap, lineno, "%s", "state_dir too long");
        memcpy(cfg->state_dir, w[1], strlen(w[1]) + 1);
    } else if (strcmp(w[0], "stats_interval") == 0) {
        int64_t ms;
        if (parse_secs(w[1], &ms))
            return fail(err, cap, lineno, "stats_interval must be seconds, not '%s'", w[1]);
        cfg->stats_interval = (double)ms / 1000.0;
    } else {
        return fail(err, cap, lineno, "unknown directive '%s'", w[0]);
    }
    return 0;
}

int br_config_file(br_config *cfg, const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return -1;
    }
    char buf[1024];
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets(buf, sizeof buf, f)) {
        lineno++;
        if (!strchr(buf, '\n') && !feof(f))
            rc = fail(err, cap, lineno, "%s", "line longer than 1023 bytes");
        else
            rc = br_config_line(cfg, buf, lineno, err, cap);
    }
    fclose(f);
    if (rc) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", err);
        snprintf(err, cap, "%s: %s", path, tmp);
    }
    return rc;
}

/* Rules that need the whole configuration: a channel is imported or exported,
 * never both (so nothing imported is ever re-exported: no loops between hosts),
 * and a subject is exported once. */
int br_config_check(br_config *cfg, char *err, size_t cap)
{
    if (!cfg->host[0])
        return fail(err, cap, 0, "%s", "no host id: set 'host ID' or --host");
    if (cfg->nlinks == 0)
        return fail(err, cap, 0, "%s", "nothing to bridge: no export or import");
    for (int i = 0; i < cfg->nlinks; i++) {
        br_link *a = &cfg->links[i];
        for (int j = i + 1; j < cfg->nlinks; j++) {
            br_link *b = &cfg->links[j];
            if (strcmp(a->channel, b->channel) == 0 && (a->dir != b->dir || a->dir == BR_IMPORT))
                return fail(err, cap, b->line,
                            "channel '%s' is already bridged (a channel is imported once or "
                            "exported, never both: that would loop)",
                            b->channel);
            if (a->dir == BR_EXPORT && b->dir == BR_EXPORT && strcmp(a->subject, b->subject) == 0)
                return fail(err, cap, b->line, "subject '%s' is exported twice", b->subject);
        }
        if (a->dir == BR_IMPORT && a->mode == BR_JETSTREAM && !a->durable[0]) {
            snprintf(a->durable, sizeof a->durable, "%s_", cfg->host);
            size_t k = strlen(a->durable);
            for (const char *s = a->channel; *s && k + 1 < sizeof a->durable; s++)
                a->durable[k++] = (*s == '.') ? '_' : *s;
            a->durable[k] = 0;
        }
    }
    return 0;
}
