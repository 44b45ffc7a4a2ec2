/*
 * t_boost_mq.cpp - Boost.Interprocess message_queue: a bounded queue of
 * fixed-size messages in named shared memory ("shmbench-<pid>-<channel>",
 * removed by destroy()), guarded by a process-shared mutex and condition
 * variables, so a reader blocks in the kernel while the queue is empty.
 * try_send/try_receive first; timed_send/timed_receive only when they would
 * block.  Any number of writers.  The only C++ file: every entry point
 * catches exceptions so none crosses into the C harness.
 */
#include "../src/bench.h"

#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/interprocess/ipc/message_queue.hpp>
#include <cstdio>
#include <cstdlib>

namespace bip = boost::interprocess;

namespace {

struct bmq_shared {
    char name[64];
};

struct bmq_local {
    bip::message_queue *queue;
};

const char *queue_name(const chan *ch)
{
    return static_cast<const bmq_shared *>(ch->shared)->name;
}

bip::message_queue *queue_of(chan *ch)
{
    return static_cast<bmq_local *>(ch->local)->queue;
}

boost::posix_time::ptime deadline(int64_t timeout_ns)
{
    return boost::posix_time::microsec_clock::universal_time() +
           boost::posix_time::microseconds(timeout_ns / 1000);
}

int bmq_create(chan *ch)
{
    if (ch->cfg.readers > 1)
        return -ENOTSUP;
    auto *bs = static_cast<bmq_shared *>(std::calloc(1, sizeof(bmq_shared)));
    if (!bs)
        return -ENOMEM;
    std::snprintf(bs->name, sizeof bs->name, "%s-%u", ch->cfg.tag, ch->cfg.index);
    try {
        bip::message_queue::remove(bs->name);
        bip::message_queue q(bip::create_only, bs->name, ch->cfg.depth, ch->cfg.msg_size);
    } catch (const std::exception &) {
        bip::message_queue::remove(bs->name);
        std::free(bs);
        return -EIO;
    }
    ch->shared = bs;
    return 0;
}

int bmq_open(chan *ch)
{
    auto *bl = static_cast<bmq_local *>(std::calloc(1, sizeof(bmq_local)));
    if (!bl)
        return -ENOMEM;
    ch->local = bl;
    try {
        bl->queue = new bip::message_queue(bip::open_only, queue_name(ch));
    } catch (const std::exception &) {
        return -EIO;
    }
    return 0;
}

int bmq_send(chan *ch, const void *msg, int64_t timeout_ns)
{
    try {
        bip::message_queue *q = queue_of(ch);
        if (q->try_send(msg, ch->cfg.msg_size, 0) ||
            q->timed_send(msg, ch->cfg.msg_size, 0, deadline(timeout_ns)))
            return 0;
        return -ETIMEDOUT;
    } catch (const std::exception &) {
        return -EIO;
    }
}

int bmq_recv(chan *ch, void *msg, int64_t timeout_ns)
{
    try {
        bip::message_queue *q = queue_of(ch);
        bip::message_queue::size_type got = 0;
        unsigned int priority = 0;
        if (q->try_receive(msg, ch->cfg.msg_size, got, priority) ||
            q->timed_receive(msg, ch->cfg.msg_size, got, priority, deadline(timeout_ns)))
            return got == ch->cfg.msg_size ? 0 : -EBADMSG;
        return -ETIMEDOUT;
    } catch (const std::exception &) {
        return -EIO;
    }
}

void bmq_close(chan *ch)
{
    auto *bl = static_cast<bmq_local *>(ch->local);
    if (bl)
        delete bl->queue;
    std::free(bl);
    ch->local = nullptr;
}

void bmq_destroy(chan *ch)
{
    try {
        bip::message_queue::remove(queue_name(ch));
    } catch (const std::exception &) {
    }
    std::free(ch->shared);
}

const transport transport_boost_mq = {
    .name = "boost-mq",
    .summary = "Boost.Interprocess message_queue, blocking",
    .caps = CAP_LATENCY | CAP_STREAM | CAP_MULTI_WRITER | CAP_BLOCKING,
    .group = GROUP_LIBRARY,
    .max_msg = 1u << 30,
    .create = bmq_create,
    .open = bmq_open,
    .send = bmq_send,
    .recv = bmq_recv,
    .flush = nullptr,
    .reserve = nullptr,
    .commit = nullptr,
    .acquire = nullptr,
    .release = nullptr,
    .close = bmq_close,
    .destroy = bmq_destroy,
};

} // namespace

BENCH_REGISTER_TRANSPORT(transport_boost_mq)
