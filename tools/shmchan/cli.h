/*
 * The shmchan command-line tool: what its files share.
 *
 * The tool uses only the public API. Portable C11 everywhere except sys_*.c,
 * which hold the few OS services it needs beyond the library (signals, file
 * system statistics, the environment checks of `doctor`).
 */
#ifndef SHMCHAN_CLI_H
#define SHMCHAN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "shmchan/shmchan.h"

#if defined(__MINGW32__)
#define CLI_PRINTF(f, a) __attribute__((format(gnu_printf, f, a))) /* __USE_MINGW_ANSI_STDIO */
#elif defined(__GNUC__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* A NAME holding one of these is a file path (SHMCHAN_FILE). */
#ifdef _WIN32
#define CLI_PATH_SEPS "/\\:"
#else
#define CLI_PATH_SEPS "/"
#endif

/* Exit statuses. An interrupted wait exits with 128 + the signal number. */
enum { CLI_OK = 0, CLI_ERR = 1, CLI_USAGE = 2 };

/* Every option of every command; each command accepts a subset (a mask). */
enum cli_opt {
    OPT_HELP,
    OPT_GLOBAL,
    OPT_LATEST,
    OPT_QUEUE,
    OPT_MAX_MSG,
    OPT_CAPACITY,
    OPT_POLICY,
    OPT_READERS,
    OPT_WRITERS,
    OPT_MODE,
    OPT_EXCL,
    OPT_SEQ,
    OPT_JSON,
    OPT_NULL,
    OPT_FRAMES,
    OPT_LINES,
    OPT_COUNT,
    OPT_TIMEOUT,
    OPT_FROM_NOW,
    OPT_OLDEST,
    OPT_WORKER,
    OPT_ALL,
    OPT_FORCE,
    /* top, stat, record, replay (cmd_top.c, cmd_stat.c, cmd_record.c) */
    OPT_INTERVAL,
    OPT_ONCE,
    OPT_SORT,
    OPT_OUTPUT,
    OPT_APPEND,
    OPT_SPEED,
    OPT_FAST,
    /* services (cmd_service.c, create) */
    OPT_JOBS,
    OPT_SERVICE,
    OPT_KIND,
    OPT_SERVERS,
    OPT_CLIENTS,
    OPT_RESEND,
    OPT_COUNT_
};

#define O(opt) (UINT64_C(1) << (opt))

/* How watch, recv and follow write each message to stdout. */
typedef enum cli_fmt { FMT_LINES, FMT_NULL, FMT_FRAMES, FMT_JSON } cli_fmt;

#define CLI_MAX_POS 64

/* A parsed command line. Option values are valid where cli_has() says so. */
typedef struct cli_args {
    const struct cli_cmd *cmd;
    const char *pos[CLI_MAX_POS]; /* positional arguments */
    int npos;
    uint64_t given; /* O(opt) of each option given */
    uint64_t max_msg;
    uint64_t capacity;
    uint64_t count;
    int64_t timeout_ms; /* SHMCHAN_WAIT_FOREVER unless --timeout */
    uint32_t policy;
    uint32_t readers;
    uint32_t writers;
    uint32_t mode;
    cli_fmt fmt;
    int64_t interval_ms; /* --interval, 1000 unless given */
    const char *sort;    /* --sort KEY */
    const char *output;  /* -o FILE */
    double speed;        /* --speed X */
    uint32_t jobs;       /* serve -j N */
    uint32_t kind;       /* create --kind: SHMCHAN_KIND_* */
    uint32_t servers;    /* create --servers N */
    uint32_t clients;    /* create --clients N */
} cli_args;

typedef struct cli_cmd {
    const char *name;
    const char *summary; /* one line for `shmchan --help` */
    int (*run)(const cli_args *a);
    uint64_t opts; /* O() of the accepted options; --help always */
    int min_pos;
    int max_pos; /* -1: any number */
    int names;   /* leading arguments that are channel names; -1: all */
    const char *usage;
    const char *help;
} cli_cmd;

/* A growable byte buffer for messages of unknown size. */
typedef struct cli_buf {
    unsigned char *p;
    size_t cap;
} cli_buf;

bool buf_reserve(cli_buf *b, size_t n);
void buf_free(cli_buf *b);

/* names.c: a sorted list of channel names. */
typedef struct name_list {
    char **v;
    size_t n;
} name_list;

int names_from_shm(name_list *nm);
/* NAME of each side wait object "NAME..wait" in shared memory, sorted. */
int names_from_sides(name_list *nm);
int names_from_args(name_list *nm, const char *const *args, int n);
void names_free(name_list *nm);

/* main.c: option helpers and errors. */
bool cli_has(const cli_args *a, enum cli_opt opt);
uint32_t cli_flags(const cli_args *a, const char *name);
int cli_error(const char *verb, const char *name, int rc);
int cli_errorf(const char *verb, const char *name, const char *fmt, ...) CLI_PRINTF(3, 4);
int cli_usage(const char *verb, const char *fmt, ...) CLI_PRINTF(2, 3);
int cli_check_name(const char *verb, const char *name);
int cli_interrupted(void);

/* Commands (cmd_*.c). */
extern const cli_cmd cli_cmd_create, cli_cmd_put, cli_cmd_get, cli_cmd_watch;
extern const cli_cmd cli_cmd_send, cli_cmd_recv, cli_cmd_follow;
extern const cli_cmd cli_cmd_ls, cli_cmd_info, cli_cmd_rm, cli_cmd_gc, cli_cmd_doctor;
extern const cli_cmd cli_cmd_top, cli_cmd_stat, cli_cmd_record, cli_cmd_replay, cli_cmd_cat;
extern const cli_cmd cli_cmd_call, cli_cmd_serve;

/* cmd_admin.c: kind-aware opening, shared by the message commands. */
int cli_open_latest(const char *verb, const char *name, uint32_t flags, shmchan_latest **out);
int cli_open_queue(const char *verb, const char *name, uint32_t flags, shmchan_queue **out);
int cli_open_failed(const char *verb, const char *name, uint32_t flags, int rc);
/* cmd_service.c */
int cli_open_service(const char *verb, const char *name, uint32_t flags, shmchan_service **out);
/* cmd_multi.c: watch (latest-value) or follow (queues) over a->npos > 1
 * channels, each message printed with its channel's name. */
int cli_multi_run(const cli_args *a, bool queues, uint32_t reader_flags);

/* out.c: message output, input framing, number formatting. */
int out_message(const cli_args *a, const void *data, size_t len, uint64_t seq, uint64_t lost,
                bool with_lost);
int in_read_all(FILE *f, cli_buf *b, size_t limit, size_t *len_out);
int in_read_line(FILE *f, cli_buf *b, size_t limit, size_t *len_out);
int in_read_frame(FILE *f, cli_buf *b, size_t limit, size_t *len_out);
const char *out_size(uint64_t v, char *buf, size_t cap);
const char *out_kind(uint32_t kind);
const char *out_policy(uint32_t policy);

/*
 * Waiting with Ctrl-C: fn(ctx, timeout_ms) is one blocking library call. It
 * is called with slices of the time left before deadline_ms (from
 * cli_deadline(); 0 = none) until it returns anything but SHMCHAN_EAGAIN or
 * SHMCHAN_ETIMEDOUT. Returns that result, SHMCHAN_ETIMEDOUT when the time is
 * up, or SHMCHAN_EINTR once a signal was caught. The library is woken by the
 * writer at once; slicing only bounds how long a signal that lands just
 * before the wait's system call can go unnoticed.
 */
typedef int (*cli_wait_fn)(void *ctx, int64_t timeout_ms);
int cli_wait(cli_wait_fn fn, void *ctx, uint64_t deadline_ms);
uint64_t cli_deadline(int64_t timeout_ms);
int cli_exit_interrupted(void);

/* json.c: a thin layer over libjansson; without it every call is a no-op
 * and json_available() is false. Values passed to json_set/json_push are
 * owned by the container afterwards. */
typedef struct cli_json cli_json;
bool json_available(void);
cli_json *json_obj(void);
cli_json *json_arr(void);
void json_set(cli_json *obj, const char *key, cli_json *val);
void json_push(cli_json *arr, cli_json *val);
void json_set_u64(cli_json *obj, const char *key, uint64_t v);
void json_set_i64(cli_json *obj, const char *key, int64_t v);
void json_set_str(cli_json *obj, const char *key, const char *s);
void json_set_bool(cli_json *obj, const char *key, bool v);
void json_set_f64(cli_json *obj, const char *key, double v);
void json_set_bytes(cli_json *obj, const void *data, size_t len);
int json_print(cli_json *v, bool pretty);

#endif /* SHMCHAN_CLI_H */
