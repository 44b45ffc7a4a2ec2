/*
 * doctor: check the environment (through sys_env_checks) and every channel
 * in shared memory, and say what to fix. Exits 1 only when a check failed
 * outright; warnings (including unreadable channels) leave it at 0.
 */
#include <inttypes.h>
#include <string.h>

#include "cli.h"
#include "sys.h"

#define MAX_CHECKS 16
#define MAX_PROBLEMS 64

typedef struct problem {
    char name[256];
    int rc;
} problem;

typedef struct survey {
    int list_rc;          /* listing itself: OK or why not */
    size_t total;
    size_t unused;
    size_t dead_peers;
    size_t nproblems;     /* stored, at most MAX_PROBLEMS */
    size_t problems_seen; /* all of them */
    problem problems[MAX_PROBLEMS];
} survey;

static const char *const status_names[] = {"ok", "info", "warn", "fail"};

static const char *
channel_fix(int rc)
{
    switch (rc) {
    case SHMCHAN_EACCES:
        return "it belongs to another user or its mode excludes you: ask its owner, or create "
               "shared channels with --mode 0660 for a group";
    case SHMCHAN_ELAYOUT:
        return "made by another shmchan version: use that version, or remove it (shmchan rm) "
               "once nothing uses it";
    case SHMCHAN_EUNSAFE:
        return "not a channel (a FIFO, socket, symlink or directory) or another user's object "
               "squatting the name: see who made it (ls -l /dev/shm), then shmchan rm --force NAME";
    case SHMCHAN_EINIT:
        return "being created, or its creator died while creating it: if this persists, "
               "remove it (shmchan rm)";
    case SHMCHAN_EBADMAGIC:
    case SHMCHAN_ECORRUPT:
    case SHMCHAN_ETRUNCATED:
        return "damaged: remove it (shmchan rm NAME) and create it again";
    default:
        return "see 'shmchan info NAME'";
    }
}

static void
survey_one(survey *s, const char *name)
{
    shmchan_info in;
    memset(&in, 0, sizeof(in));
    in.struct_size = sizeof(in);
    int rc = shmchan_info_get(name, 0, &in);
    if (rc == SHMCHAN_ENOENT) {
        return; /* removed since it was listed */
    }
    s->total++;
    if (rc != SHMCHAN_OK) {
        if (s->nproblems < MAX_PROBLEMS) {
            problem *p = &s->problems[s->nproblems++];
            snprintf(p->name, sizeof(p->name), "%s", name);
            p->rc = rc;
        }
        s->problems_seen++;
        return;
    }
    s->unused += in.in_use == 0;
    s->dead_peers += (size_t)in.dead_readers + in.dead_writers;
}

static void
survey_channels(survey *s)
{
    name_list nm;
    memset(s, 0, sizeof(*s));
    s->list_rc = names_from_shm(&nm);
    if (s->list_rc != SHMCHAN_OK) {
        return;
    }
    for (size_t i = 0; i < nm.n; i++) {
        survey_one(s, nm.v[i]);
    }
    names_free(&nm);
}

/* The summary of the channel survey as one more check. */
static void
survey_check(const survey *s, sys_check *c)
{
    memset(c, 0, sizeof(*c));
    c->name = "channels";
    if (s->list_rc != SHMCHAN_OK) {
        c->status = SYS_INFO;
        snprintf(c->detail, sizeof(c->detail), "cannot list channels here: %s (%s)",
                 shmchan_strerror(s->list_rc), shmchan_errname(s->list_rc));
        return;
    }
    c->status = s->problems_seen != 0 ? SYS_WARN : SYS_OK;
    snprintf(c->detail, sizeof(c->detail), "%zu channel%s in shared memory, %zu unreadable, "
             "%zu not in use, %zu dead peer%s awaiting recovery",
             s->total, s->total == 1 ? "" : "s", s->problems_seen, s->unused, s->dead_peers,
             s->dead_peers == 1 ? "" : "s");
    if (s->unused != 0) {
        snprintf(c->fix, sizeof(c->fix), "'shmchan gc' lists the channels no process has open; "
                 "'shmchan gc --force' removes them");
    }
}

static size_t
count_status(const sys_check *c, size_t n, sys_status st)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        k += c[i].status == st;
    }
    return k;
}

static void
print_text(const sys_check *c, size_t n, const survey *s)
{
    printf("shmchan %s, layout version %u\n", shmchan_version(NULL, NULL, NULL),
           (unsigned)shmchan_layout_version());
    for (size_t i = 0; i < n; i++) {
        printf("%-5s %-11s %s\n", status_names[c[i].status], c[i].name, c[i].detail);
        if (c[i].fix[0] != '\0') {
            printf("      fix: %s\n", c[i].fix);
        }
    }
    for (size_t i = 0; i < s->nproblems; i++) {
        const problem *p = &s->problems[i];
        printf("warn  channel     %s: %s (%s)\n      fix: %s\n", p->name,
               shmchan_strerror(p->rc), shmchan_errname(p->rc), channel_fix(p->rc));
    }
    size_t fails = count_status(c, n, SYS_FAIL);
    size_t warns = count_status(c, n, SYS_WARN) + s->nproblems;
    printf("%zu failed, %zu warnings\n", fails, warns);
}

static cli_json *
checks_json(const sys_check *c, size_t n)
{
    cli_json *arr = json_arr();
    for (size_t i = 0; i < n; i++) {
        cli_json *o = json_obj();
        json_set_str(o, "name", c[i].name);
        json_set_str(o, "status", status_names[c[i].status]);
        json_set_str(o, "detail", c[i].detail);
        json_set_str(o, "fix", c[i].fix);
        json_push(arr, o);
    }
    return arr;
}

static cli_json *
survey_json(const survey *s)
{
    cli_json *o = json_obj();
    json_set_bool(o, "listed", s->list_rc == SHMCHAN_OK);
    json_set_u64(o, "total", s->total);
    json_set_u64(o, "unreadable", s->problems_seen);
    json_set_u64(o, "unused", s->unused);
    json_set_u64(o, "dead_peers", s->dead_peers);
    cli_json *arr = json_arr();
    for (size_t i = 0; i < s->nproblems; i++) {
        cli_json *p = json_obj();
        json_set_str(p, "name", s->problems[i].name);
        json_set_str(p, "error", shmchan_errname(s->problems[i].rc));
        json_set_str(p, "message", shmchan_strerror(s->problems[i].rc));
        json_set_str(p, "fix", channel_fix(s->problems[i].rc));
        json_push(arr, p);
    }
    json_set(o, "problems", arr);
    return o;
}

static int
print_json(const sys_check *c, size_t n, const survey *s)
{
    cli_json *o = json_obj();
    json_set_bool(o, "ok", count_status(c, n, SYS_FAIL) == 0);
    json_set_str(o, "version", shmchan_version(NULL, NULL, NULL));
    json_set_u64(o, "layout_version", shmchan_layout_version());
    json_set(o, "checks", checks_json(c, n));
    json_set(o, "channels", survey_json(s));
    return json_print(o, true);
}

static int
run_doctor(const cli_args *a)
{
    static sys_check checks[MAX_CHECKS];
    static survey s;
    size_t n = sys_env_checks(checks, MAX_CHECKS - 1);
    survey_channels(&s);
    survey_check(&s, &checks[n++]);
    if (a->fmt == FMT_JSON) {
        if (print_json(checks, n, &s) != 0) {
            return CLI_ERR;
        }
    } else {
        print_text(checks, n, &s);
    }
    return count_status(checks, n, SYS_FAIL) != 0 ? CLI_ERR : CLI_OK;
}

const cli_cmd cli_cmd_doctor = {
    .name = "doctor",
    .summary = "check the environment and the channels",
    .run = run_doctor,
    .opts = O(OPT_JSON),
    .min_pos = 0,
    .max_pos = 0,
    .names = 0,
    .usage = "[--json]",
    .help =
        "Check what shmchan depends on and say what to fix: the shared-memory directory\n"
        "(/dev/shm: present, a tmpfs, writable), its size and free space, the limit on\n"
        "open files, systemd-logind's RemoveIPC (which deletes a user's shared memory\n"
        "when they log out), support for the file locks that track live peers, and\n"
        "whether every channel in shared memory can be opened. Each line is ok, info,\n"
        "warn or fail, with a fix where one applies. Status 1 if any check failed;\n"
        "warnings alone leave it 0.\n\n"
        "  --json   {ok, version, layout_version, checks: [{name, status, detail, fix}],\n"
        "            channels: {total, unreadable, unused, dead_peers, problems: [...]}}\n",
};
