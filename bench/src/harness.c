/*
 * harness.c - runs one experiment: lays out the processes and channels of a
 * workload, creates the channels, forks one child per process (pinned to its
 * own core where there are enough), releases them together through a barrier
 * in shared memory, waits for them with a deadline, and merges what they
 * report.  Every child has a watchdog alarm and dies with its parent; the
 * parent kills the rest as soon as one fails, and always reaps every child
 * and calls destroy() on every channel it created, also on Ctrl-C.
 *
 * Also here: the memcpy bandwidth measurement used as the throughput limit.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "msg.h"

struct run {
    const struct run_params *rp;
    struct control *ctl;
    unsigned nchan, nproc;
    unsigned created;             /* channels created so far */
    unsigned readers_total, writers_total;
    bool emulated;
    size_t msg_size;
    struct chan chans[MAX_CHANS];
    struct proc procs[MAX_PROCS];
    pid_t pids[MAX_PROCS];
    int wstatus[MAX_PROCS];
    bool killed[MAX_PROCS];       /* SIGKILLed by the parent */
};

static const char *const workload_names[] = {"pingpong", "wakeup", "throughput", "fanout", "fanin",
                                             "memcpy", "rpc", "rpcload"};

const char *workload_name(enum workload wl)
{
    return workload_names[wl];
}

int workload_parse(const char *name, enum workload *wl)
{
    for (unsigned i = 0; i < sizeof workload_names / sizeof workload_names[0]; i++)
        if (strcmp(name, workload_names[i]) == 0) {
            *wl = (enum workload)i;
            return 0;
        }
    return -EINVAL;
}

static void set_result(struct run_result *rr, const char *status, const char *note)
{
    snprintf(rr->status, sizeof rr->status, "%s", status);
    snprintf(rr->note, sizeof rr->note, "%s", note);
}

/* ---- layout of processes and channels ---- */

static void add_out(struct run *r, unsigned p, unsigned c, unsigned rank)
{
    struct proc *pr = &r->procs[p];
    pr->out[pr->n_out].ch = &r->chans[c];
    pr->out_rank[pr->n_out++] = rank;
}

static void add_in(struct run *r, unsigned p, unsigned c, unsigned rank)
{
    struct proc *pr = &r->procs[p];
    pr->in[pr->n_in].ch = &r->chans[c];
    pr->in_rank[pr->n_in++] = rank;
}

static void set_chan(struct run *r, unsigned c, unsigned writers, unsigned readers)
{
    r->chans[c].cfg.writers = writers;
    r->chans[c].cfg.readers = readers;
}

static void layout_pingpong(struct run *r)
{
    r->nproc = 2;
    r->nchan = 2;
    set_chan(r, 0, 1, 1);
    set_chan(r, 1, 1, 1);
    r->procs[0].kind = PK_PINGER;
    r->procs[1].kind = PK_PONGER;
    add_out(r, 0, 0, 0);
    add_in(r, 0, 1, 0);
    add_in(r, 1, 0, 0);
    add_out(r, 1, 1, 0);
}

/* One writer (process 0) to n readers (processes 1..n). */
static void layout_one_to_n(struct run *r, unsigned n, bool broadcast)
{
    r->nproc = 1 + n;
    r->nchan = broadcast ? 1 : n;
    r->emulated = !broadcast;
    r->readers_total = n;
    r->writers_total = 1;
    r->procs[0].kind = PK_WRITER;
    for (unsigned c = 0; c < r->nchan; c++) {
        set_chan(r, c, 1, broadcast ? n : 1);
        add_out(r, 0, c, 0);
    }
    for (unsigned k = 0; k < n; k++) {
        r->procs[1 + k].kind = PK_READER;
        r->procs[1 + k].rank = k;
        add_in(r, 1 + k, broadcast ? 0 : k, broadcast ? k : 0);
    }
}

/* m writers (processes 1..m) into one channel read by process 0. */
static void layout_fanin(struct run *r, unsigned m)
{
    r->nproc = 1 + m;
    r->nchan = 1;
    r->readers_total = 1;
    r->writers_total = m;
    set_chan(r, 0, m, 1);
    r->procs[0].kind = PK_READER;
    add_in(r, 0, 0, 0);
    for (unsigned k = 0; k < m; k++) {
        r->procs[1 + k].kind = PK_WRITER;
        r->procs[1 + k].rank = k;
        add_out(r, 1 + k, 0, k);
    }
}

/* Request/response: one channel, m clients (processes 0..m-1, the channel's
 * writers) and n competing servers (processes m..m+n-1, its readers). */
static void layout_rpc(struct run *r, unsigned m, unsigned n)
{
    r->nproc = m + n;
    r->nchan = 1;
    r->readers_total = n;
    r->writers_total = m;
    set_chan(r, 0, m, n);
    for (unsigned k = 0; k < m; k++) {
        r->procs[k].kind = PK_CLIENT;
        r->procs[k].rank = k;
        add_out(r, k, 0, k);
    }
    for (unsigned k = 0; k < n; k++) {
        r->procs[m + k].kind = PK_SERVER;
        r->procs[m + k].rank = k;
        add_in(r, m + k, 0, k);
    }
}

static bool is_rpc_workload(enum workload wl)
{
    return wl == WL_RPC || wl == WL_RPCLOAD;
}

static bool is_latency_workload(enum workload wl)
{
    return wl == WL_PINGPONG || wl == WL_WAKEUP || wl == WL_FANOUT;
}

/* Fills r with the layout; returns NULL or why the run is not applicable. */
static const char *layout(struct run *r)
{
    const struct run_params *rp = r->rp;
    const struct transport *tp = rp->tp;
    unsigned fan = rp->fan ? rp->fan : 1;
    unsigned servers = rp->servers ? rp->servers : 1;
    if (fan + 1 > MAX_PROCS || fan > MAX_CHANS || fan + servers > MAX_PROCS)
        return "too many processes";
    if (is_rpc_workload(rp->wl) != ((tp->caps & CAP_RPC) != 0))
        return is_rpc_workload(rp->wl) ? "not a request/response transport"
                                       : "request/response transport (rpc workloads only)";
    if (is_rpc_workload(rp->wl)) {
        r->msg_size = rp->msg_size;
        if (r->msg_size > tp->max_msg)
            return "message size above the transport's limit";
        if (rp->wl == WL_RPC)
            layout_rpc(r, 1, 1);
        else
            layout_rpc(r, fan, servers);
        for (unsigned p = 0; p < r->nproc; p++)
            r->procs[p].cpu = rp->cpus[p % (unsigned)rp->ncpus];
        return NULL;
    }
    if (is_latency_workload(rp->wl) && !(tp->caps & CAP_LATENCY))
        return "transport has no latency mode";
    if (!is_latency_workload(rp->wl) && !(tp->caps & CAP_STREAM))
        return "transport is latency-only (no queue)";
    if (rp->wl == WL_FANIN && fan > 1 && !(tp->caps & CAP_MULTI_WRITER))
        return "transport has no multi-writer mode";
    r->msg_size = rp->msg_size;
    if (is_latency_workload(rp->wl) && r->msg_size > tp->max_msg)
        r->msg_size = tp->max_msg; /* e.g. 56 B: the payload that fits the limit's cache line */
    if (r->msg_size > tp->max_msg)
        return "message size above the transport's limit";
    switch (rp->wl) {
    case WL_PINGPONG:
        layout_pingpong(r);
        break;
    case WL_WAKEUP:
        layout_one_to_n(r, 1, true);
        break;
    case WL_THROUGHPUT: /* N readers: a stream every reader receives whole */
        if (fan > 1 && !(tp->caps & CAP_BROADCAST))
            return "transport has no broadcast mode";
        layout_one_to_n(r, fan, true);
        break;
    case WL_FANOUT:
        layout_one_to_n(r, fan, (tp->caps & CAP_BROADCAST) != 0);
        break;
    case WL_FANIN:
        layout_fanin(r, fan);
        break;
    case WL_MEMCPY:
        return "memcpy is not a transport workload";
    case WL_RPC:
    case WL_RPCLOAD:
        break; /* laid out above */
    }
    for (unsigned p = 0; p < r->nproc; p++)
        r->procs[p].cpu = rp->cpus[p % (unsigned)rp->ncpus];
    return NULL;
}

/* ---- channel setup and teardown (parent) ---- */

static unsigned queue_depth(size_t msg_size)
{
    size_t d = (4u << 20) / msg_size; /* about 4 MiB of queued data */
    return (unsigned)(d < 8 ? 8 : d > 256 ? 256 : d);
}

static int create_channels(struct run *r, struct run_result *rr)
{
    for (unsigned c = 0; c < r->nchan; c++) {
        struct chan *ch = &r->chans[c];
        ch->tp = r->rp->tp;
        ch->cfg.msg_size = r->msg_size;
        ch->cfg.depth = queue_depth(r->msg_size);
        ch->cfg.index = c;
        ch->cfg.channels = r->nchan;
        ch->cfg.op_timeout_ns = r->rp->op_timeout_ns;
        snprintf(ch->cfg.tag, sizeof ch->cfg.tag, "shmbench-%d", (int)getpid());
        int err = ch->tp->create(ch);
        if (err) {
            char note[160];
            const char *status = "error";
            if (err == -ENOTSUP) {
                status = "n/a";
                snprintf(note, sizeof note, "not supported by this transport with this size/width");
            } else if (err == -EHOSTDOWN) {
                status = "unavailable";
                snprintf(note, sizeof note, "the daemon this transport needs is not running");
            } else {
                snprintf(note, sizeof note, "create: %s", strerror(-err));
            }
            set_result(rr, status, note);
            return err;
        }
        r->created = c + 1;
    }
    return 0;
}

static void destroy_channels(struct run *r)
{
    for (unsigned c = 0; c < r->created; c++)
        if (r->chans[c].tp->destroy)
            r->chans[c].tp->destroy(&r->chans[c]);
    r->created = 0;
}

/* ---- the child process ---- */

static void pin_to_cpu(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

/* Polite wait for a shared counter: spin briefly, then yield, then sleep. */
static int wait_counter(struct control *ctl, _Atomic unsigned *counter, unsigned target,
                        int64_t timeout_ns)
{
    uint64_t start = now_ns();
    for (unsigned i = 0; atomic_load(counter) < target; i++) {
        if (atomic_load(&ctl->abort))
            return -ECANCELED;
        uint64_t waited = now_ns() - start;
        if (waited > (uint64_t)timeout_ns)
            return -ETIMEDOUT;
        if (waited > 1000000) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        } else if (i > 100) {
            sched_yield();
        }
    }
    return 0;
}

static int start_barrier(struct run *r)
{
    struct control *ctl = r->ctl;
    if (atomic_fetch_add(&ctl->ready, 1) + 1 == r->nproc) {
        atomic_store(&ctl->t_start, now_ns());
        atomic_store(&ctl->go, 1);
    }
    return wait_counter(ctl, &ctl->go, 1, 30 * (int64_t)1000000000);
}

static struct endpoint *find_endpoint(struct endpoint *eps, unsigned n, const struct chan *ch)
{
    for (unsigned i = 0; i < n; i++)
        if (eps[i].ch == ch)
            return &eps[i];
    return NULL;
}

static int open_endpoint(struct endpoint *ep, enum bench_role role, unsigned rank)
{
    size_t size = (ep->ch->cfg.msg_size + 63) & ~(size_t)63;
    ep->scratch = aligned_alloc(64, size);
    if (!ep->scratch)
        return -ENOMEM;
    memset(ep->scratch, 0xA5, size);
    ep->ch->role = role;
    ep->ch->rank = rank;
    return ep->ch->tp->open(ep->ch);
}

/* Opens this process's endpoints in channel order, so that peers that wait
 * for each other while opening (TCP accept, iceoryx subscriptions) meet. */
static int open_endpoints(struct run *r, struct proc *self, struct proc_result *res)
{
    for (unsigned c = 0; c < r->nchan; c++) {
        struct chan *ch = &r->chans[c];
        struct endpoint *ep = find_endpoint(self->out, self->n_out, ch);
        enum bench_role role = ROLE_WRITER;
        unsigned rank = 0;
        if (ep) {
            rank = self->out_rank[ep - self->out];
        } else if ((ep = find_endpoint(self->in, self->n_in, ch))) {
            role = ROLE_READER;
            rank = self->in_rank[ep - self->in];
        } else {
            continue;
        }
        int err = open_endpoint(ep, role, rank);
        if (err) {
            snprintf(res->where, sizeof res->where, "open channel %u as %s", c,
                     role == ROLE_WRITER ? "writer" : "reader");
            return err;
        }
    }
    return 0;
}

static void close_endpoints(struct proc *self)
{
    for (unsigned i = 0; i < self->n_out; i++)
        if (self->out[i].ch->tp->close)
            self->out[i].ch->tp->close(self->out[i].ch);
    for (unsigned i = 0; i < self->n_in; i++)
        if (self->in[i].ch->tp->close)
            self->in[i].ch->tp->close(self->in[i].ch);
}

static unsigned watchdog_seconds(const struct run_params *rp)
{
    return (unsigned)ceil(rp->duration_s * 2 + 20);
}

static _Atomic unsigned *done_counter(struct control *ctl)
{
    return &ctl->ready; /* reused after the start barrier: counts up to 2 * nproc */
}

static void child_main(struct run *r, unsigned p, const sigset_t *old_mask)
{
    struct proc *self = &r->procs[p];
    struct proc_result *res = &r->ctl->res[p];
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    sigprocmask(SIG_SETMASK, old_mask, NULL);
    alarm(watchdog_seconds(r->rp)); /* SIGALRM kills a child stuck anywhere */
    pin_to_cpu(self->cpu);
    hist_init(&res->lat);
    int err = open_endpoints(r, self, res);
    if (err) {
        res->status = err;
        atomic_store(&r->ctl->abort, 1);
        exit(1);
    }
    err = start_barrier(r);
    if (err) {
        snprintf(res->where, sizeof res->where, "start barrier");
        res->status = err;
        close_endpoints(self);
        exit(1);
    }
    struct proc_ctx pc = {r->rp, r->ctl, self, res, r->readers_total, r->writers_total};
    err = workload_child(&pc);
    if (!err) {
        /* nobody closes before everybody is done with the messages */
        atomic_fetch_add(done_counter(r->ctl), 1);
        wait_counter(r->ctl, done_counter(r->ctl), 2 * r->nproc, r->rp->op_timeout_ns);
    }
    close_endpoints(self);
    exit(err ? 1 : 0); /* exit, not _exit: libraries (iceoryx) clean up in atexit handlers */
}

/* ---- the parent ---- */

volatile int harness_interrupted;

static void kill_children(struct run *r)
{
    for (unsigned p = 0; p < r->nproc; p++)
        if (r->pids[p] > 0 && kill(r->pids[p], SIGKILL) == 0)
            r->killed[p] = true;
}

static bool child_failed(int wstatus)
{
    return !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0;
}

/* Reaps what has exited; returns how many children are still running. */
static unsigned reap(struct run *r, bool *failed)
{
    unsigned running = 0;
    for (unsigned p = 0; p < r->nproc; p++) {
        if (r->pids[p] <= 0)
            continue;
        if (waitpid(r->pids[p], &r->wstatus[p], WNOHANG) == r->pids[p]) {
            r->pids[p] = 0;
            if (child_failed(r->wstatus[p]))
                *failed = true;
        } else {
            running++;
        }
    }
    return running;
}

/* Sleeps in sigtimedwait (no polling that would disturb the measurement)
 * until all children exit, one fails, the deadline passes or we are
 * interrupted; then kills and reaps whatever is left.  Returns -ETIMEDOUT
 * if it had to kill for the deadline, -EINTR if interrupted. */
static int wait_children(struct run *r, const sigset_t *wait_set)
{
    uint64_t deadline = now_ns() + (uint64_t)(watchdog_seconds(r->rp) + 5) * 1000000000u;
    uint64_t kill_at = 0;
    bool failed = false;
    int rc = 0;
    while (reap(r, &failed) > 0) {
        uint64_t t = now_ns();
        if (failed && kill_at == 0) {
            atomic_store(&r->ctl->abort, 1);
            kill_at = t + 300000000u; /* let the others report, then kill them */
        }
        uint64_t until = kill_at ? kill_at : deadline;
        if (t >= until || harness_interrupted) {
            rc = harness_interrupted ? -EINTR : kill_at ? 0 : -ETIMEDOUT;
            break;
        }
        uint64_t left = until - t;
        struct timespec ts = {(time_t)(left / 1000000000u), (long)(left % 1000000000u)};
        int sig = sigtimedwait(wait_set, NULL, &ts);
        if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP)
            harness_interrupted = 1;
    }
    kill_children(r);
    for (unsigned p = 0; p < r->nproc; p++)
        if (r->pids[p] > 0 && waitpid(r->pids[p], &r->wstatus[p], 0) == r->pids[p])
            r->pids[p] = 0;
    return rc;
}

static int fork_children(struct run *r, const sigset_t *old_mask)
{
    fflush(NULL); /* children leave through exit(), which flushes stdio */
    for (unsigned p = 0; p < r->nproc; p++) {
        pid_t pid = fork();
        if (pid < 0)
            return -errno;
        if (pid == 0)
            child_main(r, p, old_mask);
        r->pids[p] = pid;
    }
    return 0;
}

static const char *kind_name(enum proc_kind k)
{
    static const char *const names[] = {"pinger", "ponger", "writer", "reader", "client", "server"};
    return names[k];
}

/* Describes process p's failure into rr if it matches this pass: 0 its own
 * error, 1 an error after noticing another's failure, 2 death by a signal it
 * got elsewhere (crash, watchdog), 3 killed by us.  Returns true if it did. */
static bool describe_process(struct run *r, unsigned p, int pass, struct run_result *rr)
{
    struct proc_result *res = &r->ctl->res[p];
    int ws = r->wstatus[p];
    char note[200];
    const char *who = kind_name(r->procs[p].kind);
    if (pass <= 1 && res->status && (pass == 1 || res->status != -ECANCELED)) {
        snprintf(note, sizeof note, "%s %u: %s: %s", who, p, res->where, strerror(-res->status));
        set_result(rr, res->status == -ETIMEDOUT ? "timeout" : "error", note);
        return true;
    }
    if (pass >= 2 && WIFSIGNALED(ws) && r->killed[p] == (pass == 3)) {
        bool watchdog = WTERMSIG(ws) == SIGALRM;
        snprintf(note, sizeof note, "%s %u %s by signal %d%s", who, p, pass == 3 ? "stopped" : "killed",
                 WTERMSIG(ws), watchdog ? " (watchdog)" : "");
        set_result(rr, watchdog || pass == 3 ? "timeout" : "error", note);
        return true;
    }
    return false;
}

/* The most telling failure of the run. */
static void describe_failure(struct run *r, struct run_result *rr)
{
    for (int pass = 0; pass < 4; pass++)
        for (unsigned p = 0; p < r->nproc; p++)
            if (describe_process(r, p, pass, rr))
                return;
    set_result(rr, "error", "a child failed");
}

static void collect(struct run *r, struct run_result *rr)
{
    struct control *ctl = r->ctl;
    uint64_t t_start = atomic_load(&ctl->t_start), t_end = t_start;
    for (unsigned p = 0; p < r->nproc; p++) {
        struct proc_result *res = &ctl->res[p];
        enum proc_kind k = r->procs[p].kind;
        if (k == PK_PINGER || k == PK_READER || k == PK_CLIENT) {
            hist_merge(rr->lat, &res->lat);
            rr->msgs += res->msgs;
            rr->bytes += res->bytes;
            rr->lost += res->lost;
            if (res->t_end > t_end)
                t_end = res->t_end;
        }
    }
    rr->seconds = (double)(t_end - t_start) / 1e9;
}

static void block_signals(sigset_t *set, sigset_t *old)
{
    sigemptyset(set);
    sigaddset(set, SIGCHLD);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
    sigprocmask(SIG_BLOCK, set, old);
}

static int run_processes(struct run *r, struct run_result *rr)
{
    sigset_t set, old;
    block_signals(&set, &old);
    int err = fork_children(r, &old);
    int rc = wait_children(r, &set);
    sigprocmask(SIG_SETMASK, &old, NULL);
    bool failed = err != 0;
    for (unsigned p = 0; p < r->nproc; p++)
        failed |= child_failed(r->wstatus[p]);
    if (rc == -EINTR)
        set_result(rr, "interrupted", "interrupted by a signal");
    else if (err)
        set_result(rr, "error", "fork failed");
    else if (rc == -ETIMEDOUT)
        set_result(rr, "timeout", "run exceeded its deadline");
    else if (failed)
        describe_failure(r, rr);
    else
        collect(r, rr);
    return failed || rc ? -1 : 0;
}

int run_experiment(const struct run_params *rp, struct run_result *rr)
{
    struct run *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->rp = rp;
    set_result(rr, "ok", "");
    const char *why = layout(r);
    rr->msg_size = r->msg_size ? r->msg_size : rp->msg_size;
    rr->writers = rp->wl == WL_FANIN || rp->wl == WL_RPCLOAD ? rp->fan : 1;
    rr->readers = rp->wl == WL_FANOUT || rp->wl == WL_THROUGHPUT ? (rp->fan ? rp->fan : 1) : 1;
    if (rp->wl == WL_RPCLOAD)
        rr->readers = rp->servers ? rp->servers : 1;
    snprintf(rr->mode, sizeof rr->mode, "%s", r->emulated ? "emulated" : "native");
    int rc = 0;
    if (why) {
        set_result(rr, "n/a", why);
    } else if (!(r->ctl = bench_shm_alloc(sizeof *r->ctl))) {
        set_result(rr, "error", "out of memory");
        rc = -ENOMEM;
    } else {
        rc = create_channels(r, rr);
        if (rc == 0)
            rc = run_processes(r, rr);
        destroy_channels(r);
        bench_shm_free(r->ctl, sizeof *r->ctl);
    }
    free(r);
    return rc == -ENOTSUP ? 0 : rc;
}

/* ---- memcpy: the throughput limit ---- */

int run_memcpy(const struct run_params *rp, struct run_result *rr)
{
    size_t size = rp->msg_size;
    char *src = aligned_alloc(64, (size + 63) & ~(size_t)63);
    char *dst = bench_shm_alloc(size);
    set_result(rr, "ok", "single process, private buffer to shared mapping");
    snprintf(rr->mode, sizeof rr->mode, "in-process");
    rr->msg_size = size;
    rr->writers = rr->readers = 1;
    if (!src || !dst) {
        set_result(rr, "error", "out of memory");
        free(src);
        bench_shm_free(dst, size);
        return -ENOMEM;
    }
    pin_to_cpu(rp->cpus[0]);
    memset(src, 0x5A, size);
    uint64_t check_every = size >= 4096 ? 1 : 256, n = 0;
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(rp->duration_s * 1e9), t = t0;
    while (n < rp->max_iters) {
        memcpy(dst, src, size);
        __asm__ __volatile__("" : : "r"(dst) : "memory"); /* keep every copy */
        if (++n % check_every == 0 && (t = now_ns()) > end)
            break;
    }
    t = now_ns();
    if (memcmp(dst, src, size) != 0)
        set_result(rr, "error", "copy mismatch");
    rr->msgs = n;
    rr->bytes = n * size;
    rr->seconds = (double)(t - t0) / 1e9;
    free(src);
    bench_shm_free(dst, size);
    return 0;
}
