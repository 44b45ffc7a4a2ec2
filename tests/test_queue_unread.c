/*
 * Issue 12: a block-policy queue overwrites nothing unread, also before its
 * first reader and after its readers have gone (docs/queue.md, "Unread
 * messages"); drops count what is overwritten unread under any policy.
 */
#include <stdio.h>
#include <string.h>

#include "t.h"
#include "test_queue_util.h"

/* Message i: its number as text, so that order and content are checked. */
static size_t
msg_of(uint32_t i, char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap, "message %u", i);
}

/* Receive count messages with q and check they are from..from+count-1, in
 * order, with nothing lost. */
static void
expect_msgs(shmchan_queue *q, uint32_t from, uint32_t count)
{
    for (uint32_t i = from; i < from + count; i++) {
        char buf[64], want[64];
        size_t len = 0, wlen = msg_of(i, want, sizeof(want));
        shmchan_msg info;
        T_OK(shmchan_queue_recv(q, buf, sizeof(buf), 10000, &len, &info));
        T_EQ_U64(len, wlen);
        T_TRUE(memcmp(buf, want, len) == 0);
        T_EQ_U64(info.lost, 0);
    }
}

/* arg: "name count": send messages 1..count, each waiting as long as needed. */
HELPER(queue_early_writer)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    uint32_t count = t_arg_u32(arg, 1);
    shmchan_opts o = t_opts(0);
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(name, &o, &q) != SHMCHAN_OK) {
        return 3;
    }
    for (uint32_t i = 1; i <= count; i++) {
        char buf[64];
        size_t len = msg_of(i, buf, sizeof(buf));
        if (shmchan_queue_send(q, buf, len, SHMCHAN_WAIT_FOREVER) != SHMCHAN_OK) {
            return 4;
        }
    }
    shmchan_queue_close(q);
    return 0;
}

/* The case: 400 messages into a 4 KiB ring before any reader. The
 * writer waits; the first worker, started later, gets all 400 in order. */
TEST(queue_block_first_worker_gets_all)
{
    const char *n = t_name();
    shmchan_queue *mine = tq_create(n, 4096, 64, 0);
    char arg[128];
    snprintf(arg, sizeof(arg), "%s 400", n);
    t_proc p = t_spawn("queue_early_writer", arg);
    shmchan_info info;
    for (int i = 0; i < 20000; i++) { /* until it waits for space (a state, not a time) */
        tq_info(n, &info);
        if (info.waits != 0) {
            break;
        }
        t_sleep_ms(1);
    }
    T_TRUE(info.waits != 0);
    T_TRUE(info.messages < 400);
    shmchan_queue *k = tq_open(n, SHMCHAN_WORKER);
    expect_msgs(k, 1, 400);
    T_EQ_U64(t_wait(p), 0);
    tq_info(n, &info);
    T_EQ_U64(info.messages, 400);
    T_EQ_U64(info.drops, 0);
    shmchan_queue_close(k);
    shmchan_queue_close(mine);
}

/* No reader: a full ring makes a writer time out, and the first
 * SHMCHAN_OLDEST subscriber gets every message. */
TEST(queue_block_no_reader_times_out)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 4096, 64, 0);
    char buf[64];
    uint32_t sent = 0;
    for (;;) {
        size_t len = msg_of(sent + 1, buf, sizeof(buf));
        int rc = shmchan_queue_send(w, buf, len, 0);
        if (rc == SHMCHAN_EAGAIN) {
            break;
        }
        T_OK(rc);
        sent++;
        T_TRUE(sent < 1000);
    }
    size_t len = msg_of(sent + 1, buf, sizeof(buf));
    T_ERR(shmchan_queue_send(w, buf, len, 30), SHMCHAN_ETIMEDOUT);
    shmchan_queue *s = tq_open(n, SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST);
    expect_msgs(s, 1, sent);
    shmchan_info info;
    tq_info(n, &info);
    T_EQ_U64(info.drops, 0);
    shmchan_queue_close(s);
    shmchan_queue_close(w);
}

/*
 * The watermark: a subscriber joining at the newest does not consume what
 * came before it; a worker that reads part and leaves frees only that part;
 * the next worker continues where it stopped.
 */
TEST(queue_block_unread_kept_across_readers)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 4096, 64, 0);
    char buf[64];
    uint32_t sent = 0;
    while (shmchan_queue_send(w, buf, msg_of(sent + 1, buf, sizeof(buf)), 0) == SHMCHAN_OK) {
        sent++;
        T_TRUE(sent < 1000); /* a 4 KiB ring with no reader fills */
    }
    shmchan_queue *k = tq_open(n, SHMCHAN_WORKER);
    expect_msgs(k, 1, 10);
    shmchan_queue_close(k);
    uint32_t more = 0; /* room for about the ten read, no more */
    while (shmchan_queue_send(w, buf, msg_of(sent + more + 1, buf, sizeof(buf)), 0) ==
           SHMCHAN_OK) {
        more++;
    }
    T_TRUE(more >= 8 && more <= 11);
    k = tq_open(n, SHMCHAN_WORKER);
    expect_msgs(k, 11, sent + more - 10);
    size_t len = 0;
    T_ERR(shmchan_queue_recv(k, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EAGAIN);
    shmchan_info info;
    tq_info(n, &info);
    T_EQ_U64(info.drops, 0);
    shmchan_queue_close(k);
    /* A full ring again; then a subscriber at the newest, and no worker:
     * registered readers alone hold writers back, so the backlog nobody
     * registered will read gives way (writers never wait for ever on it),
     * and the subscriber gets everything sent after it joined. */
    uint32_t seq = sent + more;
    while (shmchan_queue_send(w, buf, msg_of(seq + 1, buf, sizeof(buf)), 0) == SHMCHAN_OK) {
        seq++;
    }
    shmchan_queue *s = tq_open(n, SHMCHAN_SUBSCRIBE); /* at the newest */
    for (uint32_t i = 1; i <= 20; i++) {
        T_OK(shmchan_queue_send(w, buf, msg_of(seq + i, buf, sizeof(buf)), 0));
    }
    expect_msgs(s, seq + 1, 20);
    shmchan_queue_close(s);
    shmchan_queue_close(w);
}

/* Overwrite policy with no reader: every message overwritten is a drop, and
 * an SHMCHAN_OLDEST subscriber gets exactly the rest. */
TEST(queue_overwrite_no_reader_counts_drops)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 4096, 64, SHMCHAN_POLICY_OVERWRITE);
    char buf[64];
    for (uint32_t i = 1; i <= 400; i++) {
        T_OK(shmchan_queue_send(w, buf, msg_of(i, buf, sizeof(buf)), 0));
    }
    shmchan_info info;
    tq_info(n, &info);
    T_TRUE(info.oldest_seq > 1);
    T_EQ_U64(info.drops, info.oldest_seq - 1);
    shmchan_queue *s = tq_open(n, SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST);
    expect_msgs(s, (uint32_t)info.oldest_seq, 400 - (uint32_t)info.oldest_seq + 1);
    shmchan_queue_close(s);
    shmchan_queue_close(w);
}

/* Send count messages from seq+1 on with w and receive each with s at once,
 * so that s never holds the writer back for long. */
static void
send_and_follow(shmchan_queue *w, shmchan_queue *s, uint32_t seq, uint32_t count)
{
    char buf[64];
    for (uint32_t i = seq + 1; i <= seq + count; i++) {
        T_OK(shmchan_queue_send(w, buf, msg_of(i, buf, sizeof(buf)), 0));
        expect_msgs(s, i, 1);
    }
}

/*
 * A backlog that no registered reader was placed to read (the subscriber
 * joined at the newest, no worker) is overwritten once the ring comes round:
 * each of its messages counts in drops, exactly once, under both policies.
 */
static void
backlog_nobody_read(uint32_t policy)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 4096, 64, policy);
    char buf[64];
    uint32_t sent = 0;
    while (sent < 100 && shmchan_queue_send(w, buf, msg_of(sent + 1, buf, sizeof(buf)), 0) ==
                             SHMCHAN_OK) {
        sent++;
    }
    shmchan_info info;
    tq_info(n, &info);
    uint64_t before = info.drops; /* overwrite policy, no reader: counted already */
    T_EQ_U64(before, info.oldest_seq - 1);
    shmchan_queue *s = tq_open(n, SHMCHAN_SUBSCRIBE); /* at the newest */
    send_and_follow(w, s, sent, 3 * sent);
    tq_info(n, &info);
    T_TRUE(info.oldest_seq > sent + 1); /* the whole backlog is gone */
    T_EQ_U64(info.drops, sent);         /* every message of it counted, once */
    shmchan_queue_close(s);
    tq_info(n, &info);
    T_EQ_U64(info.drops, sent);
    shmchan_queue_close(w);
}

TEST(queue_block_backlog_nobody_read_counts_drops)
{
    backlog_nobody_read(0);
}

TEST(queue_overwrite_backlog_nobody_read_counts_drops)
{
    backlog_nobody_read(SHMCHAN_POLICY_OVERWRITE);
}

/* Two subscribers placed at different points: what neither was placed to
 * read counts, what the earlier one read does not. */
TEST(queue_backlog_drops_only_what_no_subscriber_covers)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 4096, 64, SHMCHAN_POLICY_OVERWRITE);
    char buf[64];
    for (uint32_t i = 1; i <= 20; i++) {
        T_OK(shmchan_queue_send(w, buf, msg_of(i, buf, sizeof(buf)), 0));
    }
    shmchan_queue *a = tq_open(n, SHMCHAN_SUBSCRIBE); /* placed at 21 */
    for (uint32_t i = 21; i <= 30; i++) {
        T_OK(shmchan_queue_send(w, buf, msg_of(i, buf, sizeof(buf)), 0));
    }
    shmchan_queue *b = tq_open(n, SHMCHAN_SUBSCRIBE); /* placed at 31 */
    expect_msgs(a, 21, 10);
    for (uint32_t i = 31; i <= 400; i++) {
        T_OK(shmchan_queue_send(w, buf, msg_of(i, buf, sizeof(buf)), 0));
        expect_msgs(a, i, 1);
        expect_msgs(b, i, 1);
    }
    shmchan_info info;
    tq_info(n, &info);
    T_TRUE(info.oldest_seq > 31);
    T_EQ_U64(info.drops, 20); /* 1..20; a read 21..30 */
    shmchan_queue_close(a);
    shmchan_queue_close(b);
    shmchan_queue_close(w);
}
