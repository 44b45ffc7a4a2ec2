/*
 * bench.h - the interface between the benchmark harness and its transports.
 *
 * A transport moves fixed-size messages over a one-way *channel* from one or
 * more writer processes to one or more reader processes.  The harness creates
 * every channel in the parent process (create), forks the participating
 * processes, and each child attaches to the channels it uses (open) as a
 * writer or reader with a rank.  Messages are then moved with send/recv (copy)
 * or, when a transport provides them, reserve/commit and acquire/release
 * (zero copy).  After the children are reaped the parent calls destroy, which
 * must remove every named resource (shm names, message queues, socket files).
 *
 * A request/response transport (CAP_RPC) is the exception: one channel carries
 * both directions; writers are clients, readers are competing servers.
 *
 * A ping-pong is two channels (A->B and B->A); fan-out is one channel with N
 * readers when the transport can broadcast, else N one-to-one channels; fan-in
 * is one channel with M writers.  Every message starts with a struct msg_hdr
 * written by the harness and ends with a check word; transports only move the
 * bytes.  Adding a transport is one file that fills a struct transport and
 * registers it with BENCH_REGISTER_TRANSPORT(); see bench/README.md.
 */
#ifndef SHMBENCH_BENCH_H
#define SHMBENCH_BENCH_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a transport can do; the harness skips workloads it cannot run. */
enum {
    CAP_LATENCY = 1u << 0,      /* ping-pong, wake-up and fan-out (one message in flight) */
    CAP_STREAM = 1u << 1,       /* a queue with back-pressure: throughput workloads */
    CAP_BROADCAST = 1u << 2,    /* one channel, N readers, each reader sees every message */
    CAP_MULTI_WRITER = 1u << 3, /* M writers into one channel (fan-in) */
    CAP_BLOCKING = 1u << 4,     /* a waiting reader sleeps instead of spinning */
    CAP_LOSSY = 1u << 5,        /* may drop/overwrite messages; gaps are counted, not errors */
    CAP_ZERO_COPY = 1u << 6,    /* uses reserve/commit and acquire/release */
    CAP_IN_PLACE = 1u << 7,     /* zero copy, the message produced in place: the writer
                                   writes header and trailer into the loan, not a body */
    CAP_RPC = 1u << 8           /* a request/response channel (rpc workloads only): writers
                                   are clients, send() a request and recv() its response;
                                   readers are servers, recv() a request and send() the
                                   response to the request they received last */
};

/* Display order of transports in lists and reports. */
enum transport_group {
    GROUP_LIMIT = 0,     /* hardware limits */
    GROUP_REFERENCE = 1, /* minimal shared-memory code written for the benchmark */
    GROUP_KERNEL = 2,    /* kernel IPC */
    GROUP_LIBRARY = 3,   /* third-party libraries */
    GROUP_SHMCHAN = 4    /* the project's own channels */
};

enum bench_role { ROLE_WRITER = 0, ROLE_READER = 1 };

/* Parameters of one channel, fixed before create(). */
struct chan_config {
    size_t msg_size;        /* every message on the channel has exactly this size */
    unsigned writers;       /* number of writer endpoints (ranks 0..writers-1) */
    unsigned readers;       /* number of reader endpoints (ranks 0..readers-1) */
    unsigned depth;         /* queue depth hint in messages (>= 1) */
    unsigned index;         /* this channel's number within the run */
    unsigned channels;      /* number of channels in the run */
    int64_t op_timeout_ns;  /* longest wait of one blocking call */
    char tag[48];           /* unique per run: "shmbench-<pid>", for resource names */
};

/* One channel.  'shared' is set by create() in the parent and inherited by
 * fork; 'local' is private per-process endpoint state set by open(). */
struct chan {
    const struct transport *tp;
    struct chan_config cfg;
    void *shared;
    void *local;
    enum bench_role role;   /* set by the harness before open() */
    unsigned rank;
};

/*
 * Return values: 0 (or a pointer) on success, a negative errno on failure:
 * -ENOTSUP from create() when the configuration is not supported (reported
 * as "n/a"), -EHOSTDOWN from create() when a daemon the transport needs is not
 * running ("unavailable"), -ETIMEDOUT when a wait ran past its timeout.
 */
struct transport {
    const char *name;
    const char *summary;          /* one line for the report */
    unsigned caps;                /* CAP_* */
    enum transport_group group;
    size_t max_msg;               /* largest message size supported */

    int (*create)(struct chan *ch);              /* parent, before fork */
    int (*open)(struct chan *ch);                /* child, after fork; uses ch->role/rank */
    /* Copy interface; msg has cfg.msg_size bytes. */
    int (*send)(struct chan *ch, const void *msg, int64_t timeout_ns);
    int (*recv)(struct chan *ch, void *msg, int64_t timeout_ns);
    /* Optional: send may hold messages back (to pass them in batches) until
     * flush; stream writers flush after their last message. */
    int (*flush)(struct chan *ch, int64_t timeout_ns);
    /* Optional zero-copy interface; used instead of send/recv when set. */
    void *(*reserve)(struct chan *ch, int64_t timeout_ns, int *err);
    int (*commit)(struct chan *ch, void *msg);
    const void *(*acquire)(struct chan *ch, int64_t timeout_ns, int *err);
    void (*release)(struct chan *ch, const void *msg);
    void (*close)(struct chan *ch);              /* child, before exit */
    void (*destroy)(struct chan *ch);            /* parent, after the children are reaped */
};

void bench_register_transport(const struct transport *tp);
const struct transport *bench_find_transport(const char *name);
/* Sorted by group, then name; returns the count. */
size_t bench_transports(const struct transport **out, size_t max);

#define BENCH_REGISTER_TRANSPORT(tp)                                         \
    __attribute__((constructor)) static void bench_register_##tp(void)      \
    {                                                                        \
        bench_register_transport(&(tp));                                     \
    }

/* Register var, a copy of transport tp under another name, summary and caps
 * (a variant that moves messages the same way but is run differently). */
#define BENCH_REGISTER_VARIANT(var, tp, var_name, var_summary, var_caps)    \
    static struct transport var;                                             \
    __attribute__((constructor)) static void bench_register_##var(void)     \
    {                                                                        \
        var = (tp);                                                          \
        var.name = (var_name);                                               \
        var.summary = (var_summary);                                         \
        var.caps = (var_caps);                                               \
        bench_register_transport(&var);                                      \
    }

/* ---- helpers shared by transports ---- */

uint64_t now_ns(void);                        /* CLOCK_MONOTONIC */
void *bench_shm_alloc(size_t size);           /* anonymous MAP_SHARED, zeroed, page aligned; NULL on failure */
void bench_shm_free(void *p, size_t size);
int bench_read_full(int fd, void *buf, size_t len);        /* 0 or -errno (-EPIPE on EOF) */
int bench_write_full(int fd, const void *buf, size_t len); /* 0 or -errno */
int bench_set_socket_timeouts(int fd, int64_t timeout_ns);

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Spin-wait helper: call spin_step() in the loop body; it reads the clock only
 * every 1024 spins and returns -ETIMEDOUT once timeout_ns has passed. */
struct spin_wait {
    uint32_t spins;
    uint64_t deadline;
};

static inline int spin_step(struct spin_wait *w, int64_t timeout_ns)
{
    cpu_relax();
    if (++w->spins & 1023u)
        return 0;
    uint64_t t = now_ns();
    if (w->deadline == 0)
        w->deadline = t + (uint64_t)timeout_ns;
    else if (t > w->deadline)
        return -ETIMEDOUT;
    return 0;
}

#define BENCH_CACHE_LINE 64

#ifdef __cplusplus
}
#endif

#endif
