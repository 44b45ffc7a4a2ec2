/*
 * harness.h - internal interface between the process harness (harness.c),
 * the workloads run by each child (workloads.c) and the command line
 * (main.c).  Not needed by transports.
 */
#ifndef SHMBENCH_HARNESS_H
#define SHMBENCH_HARNESS_H

#include "bench.h"
#include "hist.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>

#define MAX_PROCS 16
#define MAX_CHANS 16
#define MAX_CPUS 256

enum workload { WL_PINGPONG, WL_WAKEUP, WL_THROUGHPUT, WL_FANOUT, WL_FANIN, WL_MEMCPY, WL_RPC,
                WL_RPCLOAD };

const char *workload_name(enum workload wl);
int workload_parse(const char *name, enum workload *wl);

/* Everything that defines one experiment. */
struct run_params {
    const struct transport *tp; /* NULL for WL_MEMCPY */
    enum workload wl;
    size_t msg_size;
    unsigned fan;              /* readers for fan-out, writers for fan-in, clients for rpc */
    unsigned servers;          /* rpc: competing servers */
    double duration_s;         /* measured phase ends after this ... */
    uint64_t max_iters;        /* ... or after this many messages / round trips */
    uint64_t warmup;           /* messages / round trips not recorded */
    int64_t op_timeout_ns;     /* longest single wait */
    unsigned sleep_min_us;     /* wake-up: writer sleeps between messages */
    unsigned sleep_max_us;
    int cpus[MAX_CPUS];
    int ncpus;
};

/* What each child reports back through shared memory. */
struct proc_result {
    int status;                /* 0, or a negative errno */
    char where[80];            /* what failed */
    uint64_t msgs;             /* messages received (readers) or sent (writers) */
    uint64_t bytes;
    uint64_t lost;             /* sequence gaps seen by a reader of a lossy transport */
    uint64_t t_end;            /* CLOCK_MONOTONIC when the process finished its work */
    struct hist lat;
};

/* Shared control block, one per run, in anonymous shared memory. */
struct control {
    _Atomic unsigned ready;
    _Atomic unsigned abort;
    _Atomic unsigned go;
    _Atomic uint64_t t_start;
    alignas(64) _Atomic uint64_t acks;  /* readers count messages they have taken */
    _Atomic unsigned clients_done;      /* rpc: clients past their measured phase */
    alignas(64) struct proc_result res[MAX_PROCS];
};

/* Endpoint of one process on one channel. */
struct endpoint {
    struct chan *ch;
    void *scratch;             /* message buffer for copy transports */
};

enum proc_kind { PK_PINGER, PK_PONGER, PK_WRITER, PK_READER, PK_CLIENT, PK_SERVER };

/* One child process of a run. */
struct proc {
    enum proc_kind kind;
    unsigned rank;             /* writer rank for fan-in, reader index for fan-out */
    int cpu;
    unsigned n_out, n_in;
    struct endpoint out[MAX_CHANS];
    struct endpoint in[MAX_CHANS];
    unsigned out_rank[MAX_CHANS];
    unsigned in_rank[MAX_CHANS];
};

/* Context a workload function gets inside the child. */
struct proc_ctx {
    const struct run_params *rp;
    struct control *ctl;
    struct proc *self;
    struct proc_result *res;
    unsigned readers_total;    /* readers that ack each message (fan-out) */
    unsigned writers_total;    /* STOP messages a reader waits for; rpc: clients */
};

/* Summary of a finished run, for the CSV. */
struct run_result {
    char status[16];           /* ok, n/a, error, timeout, unavailable, interrupted */
    char note[200];
    char mode[16];             /* native, emulated, in-process */
    size_t msg_size;
    unsigned writers, readers;
    struct hist *lat;          /* merged latencies, may be empty */
    uint64_t msgs, bytes, lost;
    double seconds;
};

/* harness.c */
int run_experiment(const struct run_params *rp, struct run_result *rr);
int run_memcpy(const struct run_params *rp, struct run_result *rr);
extern volatile int harness_interrupted;

/* workloads.c: the body of a child; 0 or a negative errno (res->where set). */
int workload_child(struct proc_ctx *pc);
int control_wait_acks(struct control *ctl, uint64_t target, int64_t timeout_ns);

#endif
