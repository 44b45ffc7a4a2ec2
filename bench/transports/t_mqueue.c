/*
 * t_mqueue.c - a POSIX message queue (mq_open) per channel, named
 * "/shmbench-<pid>-<channel>" and unlinked by destroy().  Blocking
 * mq_timedsend/mq_timedreceive with a CLOCK_REALTIME deadline.  Any number of
 * writers.  Queue depth and message size above fs.mqueue.msg_max (default
 * 10) and msgsize_max (default 8192) need CAP_SYS_RESOURCE; without it the
 * depth is cut to msg_max, and larger messages are reported as n/a.
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

struct mq_shared {
    char name[64];
};

struct mq_local {
    mqd_t q;
};

static long read_limit(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static int mq_create(struct chan *ch)
{
    if (ch->cfg.readers > 1)
        return -ENOTSUP;
    struct mq_shared *ms = malloc(sizeof *ms);
    if (!ms)
        return -ENOMEM;
    snprintf(ms->name, sizeof ms->name, "/%s-%u", ch->cfg.tag, ch->cfg.index);
    struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
    setrlimit(RLIMIT_MSGQUEUE, &unlimited); /* best effort; needs privileges */
    struct mq_attr attr = {.mq_maxmsg = ch->cfg.depth, .mq_msgsize = (long)ch->cfg.msg_size};
    mq_unlink(ms->name);
    mqd_t q = mq_open(ms->name, O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
    long msg_max = read_limit("/proc/sys/fs/mqueue/msg_max");
    if (q == (mqd_t)-1 && errno == EINVAL && msg_max > 0 && msg_max < attr.mq_maxmsg) {
        attr.mq_maxmsg = msg_max; /* unprivileged: the queue may not be deeper */
        q = mq_open(ms->name, O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
    }
    if (q == (mqd_t)-1) {
        int err = errno;
        free(ms);
        return err == EINVAL || err == ENOMEM || err == EMFILE ? -ENOTSUP : -err;
    }
    mq_close(q);
    ch->shared = ms;
    return 0;
}

static int mq_open_endpoint(struct chan *ch)
{
    struct mq_shared *ms = ch->shared;
    struct mq_local *ml = malloc(sizeof *ml);
    if (!ml)
        return -ENOMEM;
    ml->q = mq_open(ms->name, ch->role == ROLE_WRITER ? O_WRONLY : O_RDONLY);
    if (ml->q == (mqd_t)-1) {
        free(ml);
        return -errno;
    }
    ch->local = ml;
    return 0;
}

static struct timespec deadline(int64_t timeout_ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ns = ts.tv_nsec + timeout_ns % 1000000000;
    ts.tv_sec += (time_t)(timeout_ns / 1000000000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    return ts;
}

static int mq_send_msg(struct chan *ch, const void *msg, int64_t timeout_ns)
{
    struct mq_local *ml = ch->local;
    struct timespec ts = deadline(timeout_ns);
    while (mq_timedsend(ml->q, msg, ch->cfg.msg_size, 0, &ts) < 0)
        if (errno != EINTR)
            return -errno;
    return 0;
}

static int mq_recv_msg(struct chan *ch, void *msg, int64_t timeout_ns)
{
    struct mq_local *ml = ch->local;
    struct timespec ts = deadline(timeout_ns);
    ssize_t n;
    while ((n = mq_timedreceive(ml->q, msg, ch->cfg.msg_size, NULL, &ts)) < 0)
        if (errno != EINTR)
            return -errno;
    return (size_t)n == ch->cfg.msg_size ? 0 : -EBADMSG;
}

static void mq_close_endpoint(struct chan *ch)
{
    struct mq_local *ml = ch->local;
    if (ml)
        mq_close(ml->q);
    free(ml);
    ch->local = NULL;
}

static void mq_destroy(struct chan *ch)
{
    struct mq_shared *ms = ch->shared;
    mq_unlink(ms->name);
    free(ms);
}

static const struct transport transport_mqueue = {
    .name = "mqueue",
    .summary = "POSIX message queue (mq_open), blocking",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_MULTI_WRITER | CAP_BLOCKING,
    .group = GROUP_KERNEL,
    .max_msg = 16u << 20,
    .create = mq_create,
    .open = mq_open_endpoint,
    .send = mq_send_msg,
    .recv = mq_recv_msg,
    .close = mq_close_endpoint,
    .destroy = mq_destroy,
};

BENCH_REGISTER_TRANSPORT(transport_mqueue)
