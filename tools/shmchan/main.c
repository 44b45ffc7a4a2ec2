/*
 * shmchan: the command-line tool. Dispatch, option parsing and error lines.
 *
 * Options are parsed from one table shared by all commands; each command
 * accepts a subset. Options and arguments may be mixed; "--" ends options.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sys.h"

typedef enum arg_kind {
    ARG_NONE,
    ARG_SIZE,
    ARG_UINT,
    ARG_SECONDS,
    ARG_MODE,
    ARG_POLICY,
    ARG_STRING,
    ARG_NUMBER,
    ARG_KIND
} arg_kind;

static const struct optdef {
    const char *name;
    char shortname;
    arg_kind arg;
} opt_table[OPT_COUNT_] = {
    [OPT_HELP] = {"help", 'h', ARG_NONE},
    [OPT_GLOBAL] = {"global", 0, ARG_NONE},
    [OPT_LATEST] = {"latest", 0, ARG_NONE},
    [OPT_QUEUE] = {"queue", 0, ARG_NONE},
    [OPT_MAX_MSG] = {"max-msg", 0, ARG_SIZE},
    [OPT_CAPACITY] = {"capacity", 0, ARG_SIZE},
    [OPT_POLICY] = {"policy", 0, ARG_POLICY},
    [OPT_READERS] = {"readers", 0, ARG_UINT},
    [OPT_WRITERS] = {"writers", 0, ARG_UINT},
    [OPT_MODE] = {"mode", 0, ARG_MODE},
    [OPT_EXCL] = {"excl", 0, ARG_NONE},
    [OPT_SEQ] = {"seq", 0, ARG_NONE},
    [OPT_JSON] = {"json", 0, ARG_NONE},
    [OPT_NULL] = {"null", 0, ARG_NONE},
    [OPT_FRAMES] = {"frames", 0, ARG_NONE},
    [OPT_LINES] = {"lines", 0, ARG_NONE},
    [OPT_COUNT] = {"count", 'n', ARG_UINT},
    [OPT_TIMEOUT] = {"timeout", 't', ARG_SECONDS},
    [OPT_FROM_NOW] = {"from-now", 0, ARG_NONE},
    [OPT_OLDEST] = {"oldest", 0, ARG_NONE},
    [OPT_WORKER] = {"worker", 0, ARG_NONE},
    [OPT_ALL] = {"all", 'a', ARG_NONE},
    [OPT_FORCE] = {"force", 'f', ARG_NONE},
    [OPT_INTERVAL] = {"interval", 'i', ARG_SECONDS},
    [OPT_ONCE] = {"once", 0, ARG_NONE},
    [OPT_SORT] = {"sort", 's', ARG_STRING},
    [OPT_OUTPUT] = {"output", 'o', ARG_STRING},
    [OPT_APPEND] = {"append", 'a', ARG_NONE},
    [OPT_SPEED] = {"speed", 0, ARG_NUMBER},
    [OPT_FAST] = {"fast", 0, ARG_NONE},
    [OPT_JOBS] = {"jobs", 'j', ARG_UINT},
    [OPT_SERVICE] = {"service", 0, ARG_NONE},
    [OPT_KIND] = {"kind", 0, ARG_KIND},
    [OPT_SERVERS] = {"servers", 0, ARG_UINT},
    [OPT_CLIENTS] = {"clients", 0, ARG_UINT},
    [OPT_RESEND] = {"resend", 0, ARG_NONE},
};

static const cli_cmd *const commands[] = {
    &cli_cmd_create, &cli_cmd_put, &cli_cmd_get, &cli_cmd_watch, &cli_cmd_send, &cli_cmd_recv,
    &cli_cmd_follow, &cli_cmd_ls,  &cli_cmd_info, &cli_cmd_rm,   &cli_cmd_gc,   &cli_cmd_doctor,
    &cli_cmd_top,    &cli_cmd_stat, &cli_cmd_record, &cli_cmd_replay, &cli_cmd_cat,
    &cli_cmd_call,   &cli_cmd_serve,
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* ------------------------------------------------------------ errors */

int
cli_error(const char *verb, const char *name, int rc)
{
    return cli_errorf(verb, name, "%s (%s)", shmchan_strerror(rc), shmchan_errname(rc));
}

int
cli_errorf(const char *verb, const char *name, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "shmchan: %s%s%s: ", verb, name != NULL ? " " : "", name != NULL ? name : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_ERR;
}

int
cli_usage(const char *verb, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "shmchan: %s%s", verb != NULL ? verb : "", verb != NULL ? ": " : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'shmchan %s%s--help')\n", verb != NULL ? verb : "",
            verb != NULL ? " " : "");
    return CLI_USAGE;
}

int
cli_interrupted(void)
{
    return sys_interrupted();
}

/* ----------------------------------------------------------- helpers */

bool
cli_has(const cli_args *a, enum cli_opt opt)
{
    return (a->given & O(opt)) != 0;
}

uint32_t
cli_flags(const cli_args *a, const char *name)
{
    uint32_t flags = 0;
    if (strpbrk(name, CLI_PATH_SEPS) != NULL) {
        flags |= SHMCHAN_FILE;
    }
    if (cli_has(a, OPT_GLOBAL)) {
        flags |= SHMCHAN_GLOBAL;
    }
    return flags;
}

int
cli_check_name(const char *verb, const char *name)
{
    if (strpbrk(name, CLI_PATH_SEPS) != NULL || shmchan_name_check(name) == SHMCHAN_OK) {
        return CLI_OK;
    }
    return cli_usage(verb,
                     "invalid channel name '%s': 1 to %d characters of A-Z a-z 0-9 . _ -, "
                     "not starting with '.'; a file path needs a '/', e.g. ./%s",
                     name, SHMCHAN_NAME_MAX, name);
}

/* ------------------------------------------------------ option values */

/* "64", "4k", "1M", "2GiB": a byte count with an optional binary suffix. */
static bool
parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned shift = 0;
    switch (*end) {
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    default: break;
    }
    if (shift != 0 && *end == 'i') {
        end++;
    }
    if (*end == 'B') {
        end++;
    }
    if (errno != 0 || *end != '\0' || v > (UINT64_MAX >> shift)) {
        return false;
    }
    *out = (uint64_t)v << shift;
    return true;
}

static bool
parse_uint(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = v;
    return true;
}

/* Seconds, fractions allowed, to milliseconds rounded up. */
static bool
parse_seconds(const char *s, int64_t *ms_out)
{
    char *end;
    if ((*s < '0' || *s > '9') && *s != '.') {
        return false;
    }
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !(v >= 0.0) || v > 1e9) {
        return false;
    }
    *ms_out = (int64_t)ceil(v * 1000.0);
    return true;
}

static bool
parse_number(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || end == s || !(v > 0.0) || v > 1e9) {
        return false;
    }
    *out = v;
    return true;
}

static bool
parse_mode(const char *s, uint32_t *out)
{
    char *end;
    if (*s < '0' || *s > '7') {
        return false;
    }
    errno = 0;
    unsigned long v = strtoul(s, &end, 8);
    /* Permission bits only: set-uid, set-gid and sticky make no sense on a channel. */
    if (errno != 0 || *end != '\0' || v > 0777 || v == 0) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static bool
parse_policy(const char *s, uint32_t *out)
{
    if (strcmp(s, "block") == 0) {
        *out = SHMCHAN_POLICY_BLOCK;
    } else if (strcmp(s, "overwrite") == 0) {
        *out = SHMCHAN_POLICY_OVERWRITE;
    } else {
        return false;
    }
    return true;
}

static bool
parse_kind(const char *s, uint32_t *out)
{
    static const struct {
        const char *name;
        uint32_t kind;
    } kinds[] = {{"latest", SHMCHAN_KIND_LATEST},
                 {"queue", SHMCHAN_KIND_QUEUE},
                 {"service", SHMCHAN_KIND_SERVICE}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        if (strcmp(s, kinds[i].name) == 0) {
            *out = kinds[i].kind;
            return true;
        }
    }
    return false;
}

static bool
store_u32(uint64_t v, uint32_t *out)
{
    if (v > UINT32_MAX) {
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

static bool
set_value(cli_args *a, enum cli_opt opt, const char *v)
{
    uint64_t n;
    switch (opt) {
    case OPT_MAX_MSG:
        return parse_size(v, &a->max_msg) && a->max_msg > 0;
    case OPT_CAPACITY:
        return parse_size(v, &a->capacity) && a->capacity > 0;
    case OPT_POLICY:
        return parse_policy(v, &a->policy);
    case OPT_READERS:
        return parse_uint(v, &n) && n > 0 && store_u32(n, &a->readers);
    case OPT_WRITERS:
        return parse_uint(v, &n) && n > 0 && store_u32(n, &a->writers);
    case OPT_MODE:
        return parse_mode(v, &a->mode);
    case OPT_COUNT:
        return parse_uint(v, &a->count);
    case OPT_TIMEOUT:
        return parse_seconds(v, &a->timeout_ms);
    case OPT_INTERVAL:
        return parse_seconds(v, &a->interval_ms) && a->interval_ms > 0;
    case OPT_SORT:
        a->sort = v;
        return true;
    case OPT_OUTPUT:
        a->output = v;
        return *v != '\0';
    case OPT_SPEED:
        return parse_number(v, &a->speed);
    case OPT_JOBS:
        return parse_uint(v, &n) && n > 0 && n <= 1024 && store_u32(n, &a->jobs);
    case OPT_KIND:
        return parse_kind(v, &a->kind);
    case OPT_SERVERS:
        return parse_uint(v, &n) && n > 0 && store_u32(n, &a->servers);
    case OPT_CLIENTS:
        return parse_uint(v, &n) && n > 0 && store_u32(n, &a->clients);
    default:
        return false;
    }
}

/* ------------------------------------------------------------ parsing */

static int
find_long(const char *name, size_t len)
{
    for (int i = 0; i < OPT_COUNT_; i++) {
        if (strlen(opt_table[i].name) == len && strncmp(opt_table[i].name, name, len) == 0) {
            return i;
        }
    }
    return -1;
}

/* A letter may mean different options to different commands (-a). */
static int
find_short(char c, uint64_t accepted)
{
    int any = -1;
    for (int i = 0; i < OPT_COUNT_; i++) {
        if (opt_table[i].shortname == c && c != 0) {
            if (accepted & O(i)) {
                return i;
            }
            any = any < 0 ? i : any;
        }
    }
    return any;
}

/* Edit distance (insertions, deletions, substitutions) of two short words. */
static size_t
distance(const char *a, size_t na, const char *b)
{
    size_t nb = strlen(b), row[64];
    if (na >= 63 || nb >= 63) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= nb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            diag = up;
        }
    }
    return row[nb];
}

/* The nearest of names[] to word: the only one it begins, else the closest
 * within half of its letters. NULL if none is near. */
static const char *
nearest(const char *word, size_t len, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t prefixed = 0, bd = (len + 1) / 2;
    for (size_t i = 0; i < n; i++) {
        if (len > 0 && strncmp(word, names[i], len) == 0) {
            prefixed++;
            best = names[i];
        }
    }
    if (prefixed == 1) {
        return best;
    }
    best = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t d = distance(word, len, names[i]);
        if (d <= bd && (best == NULL || d < distance(word, len, best))) {
            best = names[i];
        }
    }
    return best;
}

static int
unknown_option(const cli_args *a, const char *arg)
{
    const char *names[OPT_COUNT_];
    size_t n = 0;
    for (int i = 0; i < OPT_COUNT_; i++) {
        if ((a->cmd->opts | O(OPT_HELP)) & O(i)) {
            names[n++] = opt_table[i].name;
        }
    }
    const char *w = arg + (arg[1] == '-' ? 2 : 1);
    const char *eq = strchr(w, '=');
    const char *s = nearest(w, eq != NULL ? (size_t)(eq - w) : strlen(w), names, n);
    if (s != NULL) {
        return cli_usage(a->cmd->name, "unknown option '%s'; did you mean '--%s'?", arg, s);
    }
    return cli_usage(a->cmd->name, "unknown option '%s'", arg);
}

/* Parse the option at argv[*i]; advances *i past a separate value. */
static int
parse_option(cli_args *a, int argc, char **argv, int *i)
{
    const char *verb = a->cmd->name;
    const char *arg = argv[*i];
    const char *value = NULL;
    int opt;
    if (arg[1] == '-') {
        const char *eq = strchr(arg + 2, '=');
        size_t len = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        opt = find_long(arg + 2, len);
        value = eq != NULL ? eq + 1 : NULL;
    } else {
        opt = arg[2] == '\0' ? find_short(arg[1], a->cmd->opts | O(OPT_HELP)) : -1;
    }
    if (opt < 0 || !((a->cmd->opts | O(OPT_HELP)) & O(opt))) {
        return unknown_option(a, arg);
    }
    const struct optdef *d = &opt_table[opt];
    if (d->arg == ARG_NONE && value != NULL) {
        return cli_usage(verb, "option '--%s' takes no value", d->name);
    }
    if (d->arg != ARG_NONE && value == NULL) {
        if (*i + 1 >= argc) {
            return cli_usage(verb, "option '--%s' needs a value", d->name);
        }
        value = argv[++*i];
    }
    if (d->arg != ARG_NONE && !set_value(a, (enum cli_opt)opt, value)) {
        return cli_usage(verb, "bad value '%s' for --%s", value, d->name);
    }
    a->given |= O(opt);
    return CLI_OK;
}

static int
add_positional(cli_args *a, const char *arg)
{
    if (a->npos == CLI_MAX_POS) {
        return cli_usage(a->cmd->name, "too many arguments (at most %d)", CLI_MAX_POS);
    }
    a->pos[a->npos++] = arg;
    return CLI_OK;
}

static int
parse_args(cli_args *a, int argc, char **argv)
{
    bool options = true;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        int rc;
        if (options && strcmp(arg, "--") == 0) {
            options = false;
            continue;
        }
        if (options && arg[0] == '-' && arg[1] != '\0') {
            rc = parse_option(a, argc, argv, &i);
        } else {
            rc = add_positional(a, arg);
        }
        if (rc != CLI_OK) {
            return rc;
        }
    }
    return CLI_OK;
}

/* Output format options exclude each other. */
static int
check_format(cli_args *a)
{
    static const enum cli_opt fmts[] = {OPT_LINES, OPT_NULL, OPT_FRAMES, OPT_JSON};
    static const cli_fmt vals[] = {FMT_LINES, FMT_NULL, FMT_FRAMES, FMT_JSON};
    int n = 0;
    for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        if (cli_has(a, fmts[i])) {
            a->fmt = vals[i];
            n++;
        }
    }
    if (n > 1) {
        return cli_usage(a->cmd->name, "--lines, --null, --frames and --json exclude each other");
    }
    if (cli_has(a, OPT_SEQ) && a->fmt == FMT_FRAMES) {
        return cli_usage(a->cmd->name, "--seq does not combine with --frames");
    }
    if (cli_has(a, OPT_JSON) && !json_available()) {
        return cli_errorf(a->cmd->name, NULL,
                          "--json is not available: this shmchan was built without libjansson");
    }
    return CLI_OK;
}

static int
check_args(cli_args *a)
{
    const cli_cmd *c = a->cmd;
    if (a->npos < c->min_pos) {
        return cli_usage(c->name, "missing %s", c->min_pos - a->npos > 1 ? "arguments" : "NAME");
    }
    if (c->max_pos >= 0 && a->npos > c->max_pos) {
        return cli_usage(c->name, "unexpected argument '%s'", a->pos[c->max_pos]);
    }
    int rc = check_format(a);
    int names = c->names < 0 || c->names > a->npos ? a->npos : c->names;
    for (int i = 0; i < names && rc == CLI_OK; i++) {
        rc = cli_check_name(c->name, a->pos[i]);
    }
    return rc;
}

/* --------------------------------------------------------------- help */

static void
print_cmd_help(const cli_cmd *c)
{
    printf("usage: shmchan %s %s\n\n%s", c->name, c->usage, c->help);
}

static void
print_help(FILE *f)
{
    fputs("usage: shmchan COMMAND [OPTIONS] [ARGS]\n"
          "       shmchan COMMAND --help | --help | --version\n\n"
          "Shared-memory channels between processes on one machine.\n\nCommands:\n",
          f);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
    }
    fputs("\nNAME is a channel in shared memory (1-22 of A-Z a-z 0-9 . _ -), or a file\n"
          "path if it contains a '/' (use ./x for a file in the current directory).\n"
          "Exit status: 0 ok, 1 error, 2 usage error, 128+N interrupted by signal N.\n",
          f);
}

static void
print_version(void)
{
    printf("shmchan %s (libshmchan %s, layout version %u)\n", SHMCHAN_VERSION_STRING,
           shmchan_version(NULL, NULL, NULL), (unsigned)shmchan_layout_version());
}

static const cli_cmd *
find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i]->name, name) == 0) {
            return commands[i];
        }
    }
    return NULL;
}

static int
unknown_command(const char *name)
{
    const char *names[NCOMMANDS];
    for (size_t i = 0; i < NCOMMANDS; i++) {
        names[i] = commands[i]->name;
    }
    const char *s = nearest(name, strlen(name), names, NCOMMANDS);
    if (s != NULL) {
        return cli_usage(NULL, "unknown command '%s'; did you mean '%s'?", name, s);
    }
    return cli_usage(NULL, "unknown command '%s'", name);
}

/* "shmchan", "shmchan --help", "shmchan help [VERB]", "shmchan --version". */
static int
run_top_level(int argc, char **argv, bool *done)
{
    *done = true;
    if (argc < 2) {
        print_help(stderr);
        return CLI_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0) {
        const cli_cmd *c = argc > 2 ? find_command(argv[2]) : NULL;
        if (argc > 2 && c == NULL) {
            return unknown_command(argv[2]);
        }
        c != NULL ? print_cmd_help(c) : print_help(stdout);
        return CLI_OK;
    }
    if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0 || strcmp(a, "version") == 0) {
        print_version();
        return CLI_OK;
    }
    *done = false;
    return CLI_OK;
}

int
main(int argc, char **argv)
{
    bool done;
    int rc = run_top_level(argc, argv, &done);
    if (done) {
        return rc;
    }
    sys_init();
    cli_args a;
    memset(&a, 0, sizeof(a));
    a.timeout_ms = SHMCHAN_WAIT_FOREVER;
    a.interval_ms = 1000;
    a.cmd = find_command(argv[1]);
    if (a.cmd == NULL) {
        return unknown_command(argv[1]);
    }
    rc = parse_args(&a, argc - 2, argv + 2);
    if (rc != CLI_OK) {
        return rc;
    }
    if (cli_has(&a, OPT_HELP)) {
        print_cmd_help(a.cmd);
        return CLI_OK;
    }
    rc = check_args(&a);
    if (rc != CLI_OK) {
        return rc;
    }
    rc = a.cmd->run(&a);
    if (fflush(stdout) != 0 && rc == CLI_OK) {
        rc = cli_errorf(a.cmd->name, NULL, "writing output: %s", strerror(errno));
    }
    return rc;
}
