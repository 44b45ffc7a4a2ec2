/*
 * workloads.c - what each child process does once all endpoints are open and
 * the start barrier has released everyone.
 *
 *  ping-pong   The pinger stamps CLOCK_MONOTONIC, sends message i on channel
 *              A->B, waits for the echo of message i on B->A and records the
 *              round trip.  The first 'warmup' round trips are not recorded.
 *  wake-up     The writer waits until the reader has taken the previous
 *              message (an ack counter in the harness's shared memory), sleeps
 *              50-100 us so the reader is blocked again, stamps and sends.  The
 *              reader records now - stamp: one-way latency to a sleeping reader.
 *  fan-out     As wake-up without the sleep: the writer stamps and sends one
 *              message to N readers (one broadcast channel, or N one-to-one
 *              channels in turn), then waits until all N have taken it.
 *  throughput  The writer(s) send back to back until the duration or message
 *              count is reached, then a STOP message; the reader checks every
 *              header, trailer and sequence number and notes when the last STOP
 *              arrived.  Fan-in is this with M writers on one channel; with
 *              N readers (broadcast transports) each receives the whole stream.
 *  rpc         Request/response (CAP_RPC transports): one client stamps and
 *              sends request i, waits for its response and records the round
 *              trip; the server echoes every request.  rpcload is the same with
 *              M clients calling back to back into N competing servers, from
 *              the start barrier, no warm-up: the figure is calls/s of all
 *              clients.  Each client checks that every response is the echo
 *              of its own last request (sequence, rank, check words); each
 *              server that a client's sequence only grows.  The last client
 *              to finish sends one STOP request per server; a server answers
 *              it and leaves, so the next STOP reaches another server.
 *
 * Messages move through out_begin/out_end and in_begin/in_end, which use the
 * transport's zero-copy calls when it has them and send/recv otherwise.  A
 * writer produces the whole message (with zero copy it copies its message
 * body into the loaned buffer), except with in-place transports, whose
 * writers stand for a producer that builds its message in the loan and write
 * only header and trailer there; a reader checks header and trailer (with
 * copy transports the whole message has been copied to it).
 */
#define _GNU_SOURCE
#include "harness.h"
#include "msg.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- message I/O through either interface ---- */

static void *out_begin(struct endpoint *ep, int64_t timeout_ns, int *err)
{
    const struct transport *tp = ep->ch->tp;
    *err = 0;
    if (tp->reserve)
        return tp->reserve(ep->ch, timeout_ns, err);
    return ep->scratch;
}

static int out_end(struct endpoint *ep, void *msg, int64_t timeout_ns)
{
    const struct transport *tp = ep->ch->tp;
    if (tp->commit)
        return tp->commit(ep->ch, msg);
    return tp->send(ep->ch, msg, timeout_ns);
}

static const void *in_begin(struct endpoint *ep, int64_t timeout_ns, int *err)
{
    const struct transport *tp = ep->ch->tp;
    if (tp->acquire)
        return tp->acquire(ep->ch, timeout_ns, err);
    *err = tp->recv(ep->ch, ep->scratch, timeout_ns);
    return *err ? NULL : ep->scratch;
}

static void in_end(struct endpoint *ep, const void *msg)
{
    const struct transport *tp = ep->ch->tp;
    if (tp->release)
        tp->release(ep->ch, msg);
}

static int fail(struct proc_ctx *pc, int err, const char *what)
{
    snprintf(pc->res->where, sizeof pc->res->where, "%s", what);
    pc->res->status = err;
    atomic_store(&pc->ctl->abort, 1);
    return err;
}

/* Send one message with the given header fields. */
static int send_msg(struct proc_ctx *pc, struct endpoint *ep, uint64_t seq, uint64_t stamp,
                    uint32_t writer, uint32_t flags)
{
    size_t size = ep->ch->cfg.msg_size;
    int err;
    void *m = out_begin(ep, pc->rp->op_timeout_ns, &err);
    if (!m)
        return fail(pc, err ? err : -EIO, "reserve");
    if (m != ep->scratch && !(ep->ch->tp->caps & CAP_IN_PLACE))
        memcpy(m, ep->scratch, size); /* zero copy: the writer still produces every byte */
    msg_write(m, size, seq, stamp, writer, flags);
    err = out_end(ep, m, pc->rp->op_timeout_ns);
    return err ? fail(pc, err, "send") : 0;
}

/* Receive one message and check its layout; the header is copied to *h. */
static int recv_msg(struct proc_ctx *pc, struct endpoint *ep, struct msg_hdr *h, uint64_t *t_recv)
{
    int err = 0;
    const void *m = in_begin(ep, pc->rp->op_timeout_ns, &err);
    if (t_recv)
        *t_recv = now_ns();
    if (!m)
        return fail(pc, err ? err : -EIO, "recv");
    err = msg_read(m, ep->ch->cfg.msg_size, h);
    in_end(ep, m);
    return err ? fail(pc, err, "corrupt message") : 0;
}

/* Check h->seq against the next expected sequence number of its writer. */
static int check_seq(struct proc_ctx *pc, const struct msg_hdr *h, uint64_t *expected, bool lossy)
{
    if (h->seq == *expected) {
        (*expected)++;
        return 0;
    }
    if (lossy && h->seq > *expected) {
        pc->res->lost += h->seq - *expected;
        *expected = h->seq + 1;
        return 0;
    }
    char what[80];
    snprintf(what, sizeof what, "sequence %llu, expected %llu", (unsigned long long)h->seq,
             (unsigned long long)*expected);
    return fail(pc, -EBADMSG, what);
}

static bool is_lossy(const struct endpoint *ep)
{
    return (ep->ch->tp->caps & CAP_LOSSY) != 0;
}

int control_wait_acks(struct control *ctl, uint64_t target, int64_t timeout_ns)
{
    struct spin_wait w = {0, 0};
    unsigned spins = 0;
    while (atomic_load_explicit(&ctl->acks, memory_order_acquire) < target) {
        if (atomic_load_explicit(&ctl->abort, memory_order_relaxed))
            return -ECANCELED;
        if (++spins > 2000)
            sched_yield(); /* readers may share this core */
        if (spin_step(&w, timeout_ns))
            return -ETIMEDOUT;
    }
    return 0;
}

static uint64_t duration_ns(const struct proc_ctx *pc)
{
    return (uint64_t)(pc->rp->duration_s * 1e9);
}

/* The measured phase lasts 'duration' from the end of the warm-up. */
static uint64_t initial_end(const struct proc_ctx *pc)
{
    return pc->rp->warmup ? UINT64_MAX : atomic_load(&pc->ctl->t_start) + duration_ns(pc);
}

static uint64_t update_end(const struct proc_ctx *pc, uint64_t seq, uint64_t t, uint64_t end)
{
    return seq == pc->rp->warmup ? t + duration_ns(pc) : end;
}

/* ---- ping-pong ---- */

static int run_pinger(struct proc_ctx *pc)
{
    struct endpoint *out = &pc->self->out[0], *in = &pc->self->in[0];
    uint64_t end = initial_end(pc), total = pc->rp->warmup + pc->rp->max_iters;
    uint64_t expected = 1, seq;
    for (seq = 1; seq <= total; seq++) {
        struct msg_hdr h;
        uint64_t t0 = now_ns(), t1;
        if (send_msg(pc, out, seq, t0, 0, 0) || recv_msg(pc, in, &h, &t1) ||
            check_seq(pc, &h, &expected, false))
            return pc->res->status;
        if (seq > pc->rp->warmup)
            hist_record(&pc->res->lat, t1 - t0);
        end = update_end(pc, seq, t1, end);
        if (t1 > end)
            break;
    }
    pc->res->msgs = pc->res->lat.count;
    pc->res->t_end = now_ns();
    return send_msg(pc, out, seq + 1, 0, 0, MSG_STOP);
}

static int run_ponger(struct proc_ctx *pc)
{
    struct endpoint *in = &pc->self->in[0], *out = &pc->self->out[0];
    uint64_t expected = 1;
    for (;;) {
        struct msg_hdr h;
        if (recv_msg(pc, in, &h, NULL))
            return pc->res->status;
        if (h.flags & MSG_STOP)
            return 0;
        if (check_seq(pc, &h, &expected, false) || send_msg(pc, out, h.seq, h.stamp_ns, 0, 0))
            return pc->res->status;
        pc->res->msgs++;
    }
}

/* ---- one-way latency: wake-up and fan-out ---- */

static void sleep_us(unsigned us)
{
    struct timespec ts = {0, (long)us * 1000};
    clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

static unsigned next_sleep_us(const struct run_params *rp, uint64_t *rng)
{
    *rng ^= *rng << 13; /* xorshift64 */
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    unsigned span = rp->sleep_max_us - rp->sleep_min_us + 1;
    return rp->sleep_min_us + (unsigned)(*rng % span);
}

/* Send STOP to every output channel once all readers took the last message. */
static int send_stops(struct proc_ctx *pc, uint64_t seq, uint64_t acks)
{
    int err = control_wait_acks(pc->ctl, acks, pc->rp->op_timeout_ns);
    if (err)
        return fail(pc, err, "waiting for readers");
    for (unsigned c = 0; c < pc->self->n_out; c++)
        if (send_msg(pc, &pc->self->out[c], seq, 0, 0, MSG_STOP))
            return pc->res->status;
    return 0;
}

/* Wake-up (sleep > 0) and fan-out (sleep == 0) writer. */
static int run_latency_writer(struct proc_ctx *pc, bool sleep_first)
{
    uint64_t end = initial_end(pc), total = pc->rp->warmup + pc->rp->max_iters;
    uint64_t rng = 0x2545F4914F6CDD1Dull, seq;
    unsigned n = pc->readers_total;
    for (seq = 1; seq <= total; seq++) {
        int err = control_wait_acks(pc->ctl, (seq - 1) * n, pc->rp->op_timeout_ns);
        if (err)
            return fail(pc, err, "waiting for readers");
        if (sleep_first)
            sleep_us(next_sleep_us(pc->rp, &rng));
        uint64_t stamp = now_ns();
        for (unsigned c = 0; c < pc->self->n_out; c++)
            if (send_msg(pc, &pc->self->out[c], seq, stamp, 0, 0))
                return pc->res->status;
        pc->res->msgs++;
        end = update_end(pc, seq, stamp, end);
        if (stamp > end)
            break;
    }
    uint64_t sent = pc->res->msgs;
    return send_stops(pc, sent + 1, sent * n);
}

static int run_latency_reader(struct proc_ctx *pc)
{
    struct endpoint *in = &pc->self->in[0];
    uint64_t expected = 1;
    for (;;) {
        struct msg_hdr h;
        uint64_t t;
        if (recv_msg(pc, in, &h, &t))
            return pc->res->status;
        if (h.flags & MSG_STOP)
            break;
        if (check_seq(pc, &h, &expected, is_lossy(in)))
            return pc->res->status;
        if (h.seq > pc->rp->warmup)
            hist_record(&pc->res->lat, t - h.stamp_ns);
        pc->res->msgs++;
        atomic_fetch_add_explicit(&pc->ctl->acks, 1, memory_order_release);
    }
    pc->res->t_end = now_ns();
    return 0;
}

/* ---- throughput and fan-in ---- */

static int run_stream_writer(struct proc_ctx *pc)
{
    struct endpoint *out = &pc->self->out[0];
    size_t size = out->ch->cfg.msg_size;
    /* no warm-up: the rate covers everything from the start barrier */
    uint64_t end = atomic_load(&pc->ctl->t_start) + duration_ns(pc), total = pc->rp->max_iters;
    uint64_t check_every = size >= 4096 ? 1 : 64, seq;
    uint32_t me = pc->self->rank;
    for (seq = 1; seq <= total; seq++) {
        if (send_msg(pc, out, seq, 0, me, 0))
            return pc->res->status;
        if (seq % check_every == 0 && now_ns() > end)
            break;
    }
    if (seq > total)
        seq = total;
    pc->res->msgs = seq;
    pc->res->bytes = seq * size;
    pc->res->t_end = now_ns();
    if (send_msg(pc, out, seq + 1, 0, me, MSG_STOP))
        return pc->res->status;
    const struct transport *tp = out->ch->tp;
    int err = tp->flush ? tp->flush(out->ch, pc->rp->op_timeout_ns) : 0;
    return err ? fail(pc, err, "flush") : 0;
}

static int run_stream_reader(struct proc_ctx *pc)
{
    struct endpoint *in = &pc->self->in[0];
    uint64_t expected[MAX_PROCS];
    unsigned stops = 0, writers = pc->writers_total;
    bool lossy = is_lossy(in);
    for (unsigned w = 0; w < MAX_PROCS; w++)
        expected[w] = 1;
    while (stops < writers) {
        struct msg_hdr h;
        if (recv_msg(pc, in, &h, NULL))
            return pc->res->status;
        if (h.writer >= writers)
            return fail(pc, -EBADMSG, "bad writer rank");
        if (h.flags & MSG_STOP) {
            stops++;
            continue;
        }
        if (check_seq(pc, &h, &expected[h.writer], lossy))
            return pc->res->status;
        pc->res->msgs++;
    }
    pc->res->bytes = pc->res->msgs * in->ch->cfg.msg_size;
    pc->res->t_end = now_ns();
    return 0;
}

/* ---- request/response ---- */

/* One call: request (seq, stamp, me, flags), then its echo; *t1 = arrival. */
static int rpc_call(struct proc_ctx *pc, struct endpoint *ep, uint64_t seq, uint64_t stamp,
                    uint32_t me, uint32_t flags, uint64_t *t1)
{
    struct msg_hdr h;
    if (send_msg(pc, ep, seq, stamp, me, flags) || recv_msg(pc, ep, &h, t1))
        return pc->res->status;
    if (h.seq != seq || h.writer != me || h.flags != flags || h.stamp_ns != stamp)
        return fail(pc, -EBADMSG, "response to another request");
    return 0;
}

static int run_client(struct proc_ctx *pc)
{
    struct endpoint *ep = &pc->self->out[0];
    bool load = pc->rp->wl == WL_RPCLOAD;
    uint64_t warmup = load ? 0 : pc->rp->warmup, total = warmup + pc->rp->max_iters, seq;
    uint64_t end = load ? atomic_load(&pc->ctl->t_start) + duration_ns(pc) : initial_end(pc);
    uint32_t me = pc->self->rank;
    for (seq = 1; seq <= total; seq++) {
        uint64_t t0 = now_ns(), t1;
        if (rpc_call(pc, ep, seq, t0, me, 0, &t1))
            return pc->res->status;
        if (seq > warmup)
            hist_record(&pc->res->lat, t1 - t0);
        if (!load)
            end = update_end(pc, seq, t1, end);
        if (t1 > end)
            break;
    }
    pc->res->msgs = pc->res->lat.count;
    pc->res->bytes = pc->res->msgs * ep->ch->cfg.msg_size;
    pc->res->t_end = now_ns();
    if (atomic_fetch_add(&pc->ctl->clients_done, 1) + 1 < pc->writers_total)
        return 0;
    for (unsigned k = 0; k < pc->readers_total; k++) { /* the last client stops every server */
        uint64_t t1;
        if (rpc_call(pc, ep, seq + 1 + k, 0, me, MSG_STOP, &t1))
            return pc->res->status;
    }
    return 0;
}

static int run_server(struct proc_ctx *pc)
{
    struct endpoint *ep = &pc->self->in[0];
    uint64_t last[MAX_PROCS] = {0};
    for (;;) {
        struct msg_hdr h;
        if (recv_msg(pc, ep, &h, NULL))
            return pc->res->status;
        if (h.writer >= pc->writers_total)
            return fail(pc, -EBADMSG, "bad client rank");
        if (h.seq <= last[h.writer])
            return fail(pc, -EBADMSG, "request sequence went back");
        last[h.writer] = h.seq;
        if (send_msg(pc, ep, h.seq, h.stamp_ns, h.writer, h.flags))
            return pc->res->status;
        if (h.flags & MSG_STOP)
            return 0;
        pc->res->msgs++;
    }
}

int workload_child(struct proc_ctx *pc)
{
    enum workload wl = pc->rp->wl;
    switch (pc->self->kind) {
    case PK_PINGER:
        return run_pinger(pc);
    case PK_PONGER:
        return run_ponger(pc);
    case PK_WRITER:
        if (wl == WL_THROUGHPUT || wl == WL_FANIN)
            return run_stream_writer(pc);
        return run_latency_writer(pc, wl == WL_WAKEUP);
    case PK_READER:
        if (wl == WL_THROUGHPUT || wl == WL_FANIN)
            return run_stream_reader(pc);
        return run_latency_reader(pc);
    case PK_CLIENT:
        return run_client(pc);
    case PK_SERVER:
        return run_server(pc);
    }
    return -EINVAL;
}
