/*
 * t_iceoryx.c - Eclipse iceoryx 2.x through its C binding: zero-copy
 * publish/subscribe in shared memory managed by the RouDi daemon, which must
 * already run (bench/run.sh starts and stops iox-roudi).  Each channel is the
 * service ("shmbench", <run tag>, "ch<index>"); the writer loans a chunk,
 * the harness writes the message into it and the writer publishes it; the
 * reader takes the chunk, the harness checks it in place, and the reader
 * releases it.  Lossless: the publisher waits for a full subscriber queue.
 *
 *  iceoryx-poll  the reader busy-polls iox_sub_take_chunk.
 *  iceoryx-wait  the reader sleeps in a waitset until the subscriber has data.
 *
 * Any number of subscribers (fan-out) and publishers (fan-in) per service.
 */
#define _GNU_SOURCE
#include "../src/bench.h"

#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/wait_set.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ROUDI_SOCKET "/tmp/roudi"
#define MAX_QUEUE 256 /* iceoryx's largest subscriber queue */

struct iox_local {
    iox_pub_storage_t pub_storage;
    iox_sub_storage_t sub_storage;
    iox_ws_storage_t ws_storage;
    iox_pub_t pub;
    iox_sub_t sub;
    iox_ws_t ws;
    bool use_waitset;
};

static unsigned runtime_users; /* channels open in this process */

/* RouDi listens on a Unix datagram socket; without it iox_runtime_init would
 * wait a long time and then abort, so check first. */
static bool roudi_running(void)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX, .sun_path = ROUDI_SOCKET};
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    close(fd);
    return ok;
}

static int iox_create(struct chan *ch)
{
    if (!roudi_running())
        return -EHOSTDOWN;
    if (ch->cfg.msg_size > UINT32_MAX)
        return -ENOTSUP;
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000};
    nanosleep(&ts, NULL);
}

/* Polls cond(ch) every millisecond until it holds or the timeout passes. */
static int wait_until(bool (*cond)(struct iox_local *), struct iox_local *l, int64_t timeout_ns)
{
    for (int64_t waited = 0; !cond(l); waited += 1000000) {
        if (waited > timeout_ns)
            return -ETIMEDOUT;
        sleep_ms(1);
    }
    return 0;
}

static bool has_subscribers(struct iox_local *l)
{
    return iox_pub_has_subscribers(l->pub);
}

static bool is_subscribed(struct iox_local *l)
{
    return iox_sub_get_subscription_state(l->sub) == SubscribeState_SUBSCRIBED;
}

static int open_publisher(struct chan *ch, struct iox_local *l, const char *event)
{
    iox_pub_options_t opts;
    iox_pub_options_init(&opts);
    opts.historyCapacity = 0;
    opts.offerOnCreate = true;
    opts.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
    l->pub = iox_pub_init(&l->pub_storage, "shmbench", ch->cfg.tag, event, &opts);
    return wait_until(has_subscribers, l, ch->cfg.op_timeout_ns);
}

static int open_subscriber(struct chan *ch, struct iox_local *l, const char *event)
{
    iox_sub_options_t opts;
    iox_sub_options_init(&opts);
    opts.queueCapacity = ch->cfg.depth < MAX_QUEUE ? ch->cfg.depth : MAX_QUEUE;
    opts.historyRequest = 0;
    opts.subscribeOnCreate = true;
    opts.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
    l->sub = iox_sub_init(&l->sub_storage, "shmbench", ch->cfg.tag, event, &opts);
    if (l->use_waitset) {
        l->ws = iox_ws_init(&l->ws_storage);
        if (iox_ws_attach_subscriber_state(l->ws, l->sub, SubscriberState_HAS_DATA, 0, NULL) !=
            WaitSetResult_SUCCESS)
            return -EIO;
    }
    return wait_until(is_subscribed, l, ch->cfg.op_timeout_ns);
}

static int open_common(struct chan *ch, bool use_waitset)
{
    struct iox_local *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    ch->local = l;
    l->use_waitset = use_waitset;
    if (runtime_users++ == 0) {
        char name[64];
        snprintf(name, sizeof name, "shmbench_%d", (int)getpid());
        iox_set_loglevel(Iceoryx_LogLevel_Warn);
        iox_runtime_init(name);
    }
    char event[32];
    snprintf(event, sizeof event, "ch%u", ch->cfg.index);
    if (ch->role == ROLE_WRITER)
        return open_publisher(ch, l, event);
    return open_subscriber(ch, l, event);
}

static int iox_open_poll(struct chan *ch)
{
    return open_common(ch, false);
}

static int iox_open_wait(struct chan *ch)
{
    return open_common(ch, true);
}

static void *iox_reserve(struct chan *ch, int64_t timeout_ns, int *err)
{
    struct iox_local *l = ch->local;
    void *chunk = NULL;
    struct spin_wait w = {0, 0};
    enum iox_AllocationResult r;
    while ((r = iox_pub_loan_chunk(l->pub, &chunk, (uint32_t)ch->cfg.msg_size)) != AllocationResult_SUCCESS) {
        if (r != AllocationResult_RUNNING_OUT_OF_CHUNKS) {
            *err = -ENOMEM;
            return NULL;
        }
        if (spin_step(&w, timeout_ns)) {
            *err = -ETIMEDOUT;
            return NULL;
        }
    }
    return chunk;
}

static int iox_commit(struct chan *ch, void *msg)
{
    struct iox_local *l = ch->local;
    iox_pub_publish_chunk(l->pub, msg);
    return 0;
}

/* One attempt to take a chunk: 1 taken, 0 none yet, negative on error. */
static int try_take(struct iox_local *l, const void **chunk)
{
    enum iox_ChunkReceiveResult r = iox_sub_take_chunk(l->sub, chunk);
    if (r == ChunkReceiveResult_SUCCESS)
        return 1;
    return r == ChunkReceiveResult_NO_CHUNK_AVAILABLE ? 0 : -EIO;
}

static const void *iox_acquire_poll(struct chan *ch, int64_t timeout_ns, int *err)
{
    struct iox_local *l = ch->local;
    const void *chunk = NULL;
    struct spin_wait w = {0, 0};
    int got;
    while ((got = try_take(l, &chunk)) == 0)
        if (spin_step(&w, timeout_ns)) {
            *err = -ETIMEDOUT;
            return NULL;
        }
    *err = got < 0 ? got : 0;
    return got > 0 ? chunk : NULL;
}

static const void *iox_acquire_wait(struct chan *ch, int64_t timeout_ns, int *err)
{
    struct iox_local *l = ch->local;
    const void *chunk = NULL;
    uint64_t deadline = 0;
    int got;
    while ((got = try_take(l, &chunk)) == 0) {
        /* the wait may return early with nothing; only the deadline counts */
        uint64_t t = now_ns();
        if (deadline == 0)
            deadline = t + (uint64_t)timeout_ns;
        else if (t > deadline) {
            *err = -ETIMEDOUT;
            return NULL;
        }
        uint64_t left = deadline - t;
        struct timespec ts = {(time_t)(left / 1000000000), (long)(left % 1000000000)};
        iox_notification_info_t info[1];
        uint64_t missed = 0;
        iox_ws_timed_wait(l->ws, ts, info, 1, &missed);
    }
    *err = got < 0 ? got : 0;
    return got > 0 ? chunk : NULL;
}

static void iox_release(struct chan *ch, const void *msg)
{
    struct iox_local *l = ch->local;
    iox_sub_release_chunk(l->sub, msg);
}

static void iox_close(struct chan *ch)
{
    struct iox_local *l = ch->local;
    if (!l)
        return;
    if (l->ws) {
        iox_ws_detach_subscriber_state(l->ws, l->sub, SubscriberState_HAS_DATA);
        iox_ws_deinit(l->ws);
    }
    if (l->sub)
        iox_sub_deinit(l->sub);
    if (l->pub)
        iox_pub_deinit(l->pub);
    free(l);
    ch->local = NULL;
    if (--runtime_users == 0)
        iox_runtime_shutdown();
}

static const struct transport transport_iceoryx_poll = {
    .name = "iceoryx-poll",
    .summary = "iceoryx 2 C binding, zero-copy pub/sub, reader busy-polls",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_BROADCAST | CAP_MULTI_WRITER | CAP_ZERO_COPY,
    .group = GROUP_LIBRARY,
    .max_msg = 1u << 20,
    .create = iox_create,
    .open = iox_open_poll,
    .reserve = iox_reserve,
    .commit = iox_commit,
    .acquire = iox_acquire_poll,
    .release = iox_release,
    .close = iox_close,
};

static const struct transport transport_iceoryx_wait = {
    .name = "iceoryx-wait",
    .summary = "iceoryx 2 C binding, zero-copy pub/sub, reader blocks in a waitset",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_BROADCAST | CAP_MULTI_WRITER | CAP_BLOCKING | CAP_ZERO_COPY,
    .group = GROUP_LIBRARY,
    .max_msg = 1u << 20,
    .create = iox_create,
    .open = iox_open_wait,
    .reserve = iox_reserve,
    .commit = iox_commit,
    .acquire = iox_acquire_wait,
    .release = iox_release,
    .close = iox_close,
};

BENCH_REGISTER_TRANSPORT(transport_iceoryx_poll)
BENCH_REGISTER_TRANSPORT(transport_iceoryx_wait)
/* iceoryx-wait with the message produced in place, beside shmchan-queue-zc-inplace. */
BENCH_REGISTER_VARIANT(transport_iceoryx_wait_inplace, transport_iceoryx_wait,
                       "iceoryx-wait-inplace",
                       "iceoryx-wait with the message produced in place (writer fills header and "
                       "trailer)",
                       CAP_STREAM | CAP_BLOCKING | CAP_ZERO_COPY | CAP_IN_PLACE)
