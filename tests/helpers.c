/* Portable parts of the harness: failures, names, options, helper processes. */
#include <stdarg.h>

#include "t.h"

static void cleanup_now(void);

void
t_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s:%d: ", file, line);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    fflush(NULL);
    cleanup_now();
    _Exit(1);
}

const char *t_test_name = "";

void
t_skip(const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    printf("SKIP: %s\n", why);
    /* The test command collects skips with their reasons (scripts/test.sh). */
    const char *log = getenv("SHMCHAN_SKIP_LOG");
    FILE *f = log != NULL && log[0] != '\0' ? fopen(log, "a") : NULL;
    if (f != NULL) {
        fprintf(f, "%s\t%s\n", t_test_name, why);
        fclose(f);
    }
    fflush(NULL);
    cleanup_now();
    _Exit(T_SKIP_STATUS);
}

#define MAX_CLEANUP 256
static char names[MAX_CLEANUP][64];
static char paths[MAX_CLEANUP][512];
static int nnames, npaths, owner;

static void
cleanup_now(void)
{
    if (t_pid() != owner) {
        return;
    }
    for (int i = 0; i < nnames; i++) {
        (void)shmchan_unlink(names[i], 0);
    }
    for (int i = 0; i < npaths; i++) {
        (void)remove(paths[i]);
    }
}

static void
register_cleanup(void)
{
    if (owner == 0) {
        owner = t_pid();
        atexit(cleanup_now);
    }
}

const char *
t_name(void)
{
    static int counter;
    register_cleanup();
    if (nnames >= MAX_CLEANUP) {
        t_fail(__FILE__, __LINE__, "too many test names");
    }
    snprintf(names[nnames], sizeof(names[0]), "t%d-%d", t_pid(), counter++);
    /* A process of the same pid may have died before cleaning up. */
    (void)shmchan_unlink(names[nnames], 0);
    return names[nnames++];
}

const char *
t_path(void)
{
    static int counter;
    register_cleanup();
    if (npaths >= MAX_CLEANUP) {
        t_fail(__FILE__, __LINE__, "too many test paths");
    }
    const char *dir = getenv("TMPDIR");
    if (dir == NULL) {
        dir = getenv("TEMP");
    }
    if (dir == NULL) {
        dir = "/tmp";
    }
    snprintf(paths[npaths], sizeof(paths[0]), "%s/shmchan-t%d-%d.chan", dir, t_pid(),
             counter++);
    (void)remove(paths[npaths]);
    return paths[npaths++];
}

void
t_arg_word(const char *arg, int index, char *out, size_t cap)
{
    const char *p = arg;
    for (int i = 0; i < index && p != NULL; i++) {
        p = strchr(p, ' ');
        p = p != NULL ? p + 1 : NULL;
    }
    size_t n = 0;
    while (p != NULL && p[n] != '\0' && p[n] != ' ' && n + 1 < cap) {
        out[n] = p[n];
        n++;
    }
    out[n] = '\0';
}

uint32_t
t_arg_u32(const char *arg, int index)
{
    char w[32];
    t_arg_word(arg, index, w, sizeof(w));
    return (uint32_t)strtoul(w, NULL, 10);
}

shmchan_opts
t_opts(uint32_t flags)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = flags;
    return o;
}

t_proc
t_spawn(const char *helper, const char *arg)
{
    const char *argv[] = {t_self(), "--helper", helper, arg != NULL ? arg : "", NULL};
    return t_exec(argv);
}

int
t_wait_bounded(t_proc p, int ms)
{
    int st = t_wait_timeout(p, ms);
    if (st < 0) {
        t_kill(p);
        (void)t_wait(p);
        t_fail(__FILE__, __LINE__, "helper still running after %d ms", ms);
    }
    return st;
}

void
t_cleanup_of(int pid)
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "t%d-", pid);
    shmchan_list *it = NULL;
    if (shmchan_list_open(&it) != SHMCHAN_OK) {
        return; /* no listing here (Windows): named channels die with their users */
    }
    const char *name = NULL;
    char doomed[64][SHMCHAN_NAME_MAX + 1];
    int n = 0;
    while (n < 64 && shmchan_list_next(it, &name) == SHMCHAN_OK) {
        if (strncmp(name, prefix, strlen(prefix)) == 0) {
            snprintf(doomed[n++], sizeof(doomed[0]), "%s", name);
        }
    }
    shmchan_list_close(it);
    for (int i = 0; i < n; i++) {
        (void)shmchan_unlink(doomed[i], 0);
    }
}
