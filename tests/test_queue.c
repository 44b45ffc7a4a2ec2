/* Queues, in one process: the API's semantics, errors, sizes and wrap-around. */
#include "core/ring.h" /* shmchan__ring_window */
#include "t.h"
#include "test_queue_util.h"

/* ------------------------------------------------ helpers (shared) */

shmchan_queue *
tq_create(const char *name, uint64_t capacity, uint64_t max_msg, uint32_t policy)
{
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.capacity = capacity;
    o.max_msg = max_msg;
    o.policy = policy;
    shmchan_queue *q = NULL;
    T_OK(shmchan_queue_open(name, &o, &q));
    return q;
}

shmchan_queue *
tq_open(const char *name, uint32_t flags)
{
    shmchan_opts o = t_opts(flags);
    shmchan_queue *q = NULL;
    T_OK(shmchan_queue_open(name, &o, &q));
    return q;
}

uint8_t
tq_byte(uint64_t key, size_t i)
{
    return (uint8_t)((key * 131u) ^ (i * 7u) ^ (key >> 8) ^ (i >> 8));
}

void
tq_fill(uint8_t *p, size_t len, uint64_t key)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = tq_byte(key, i);
    }
}

bool
tq_check(const uint8_t *p, size_t len, uint64_t key)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != tq_byte(key, i)) {
            return false;
        }
    }
    return true;
}

void
tq_info(const char *name, shmchan_info *info)
{
    memset(info, 0, sizeof(*info));
    info->struct_size = sizeof(*info);
    T_OK(shmchan_info_get(name, 0, info));
}

double
tq_seconds(void)
{
    const char *s = getenv("SHMCHAN_STRESS_SECONDS");
    return s != NULL ? atof(s) : 3.0;
}

/* ------------------------------------------------------------ basics */

TEST(queue_send_recv)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 0, 0, 0);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    T_EQ_U64(shmchan_queue_max_msg(w), 4096);
    char buf[64];
    for (int i = 1; i <= 200; i++) {
        char msg[32];
        int k = snprintf(msg, sizeof(msg), "message %d", i);
        T_OK(shmchan_queue_send(w, msg, (size_t)k, 0));
        size_t len = 0;
        shmchan_msg m;
        memset(&m, 0xff, sizeof(m));
        T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &m));
        T_EQ_U64(len, k);
        T_MEMEQ(buf, msg, len);
        T_EQ_U64(m.seq, i);
        T_EQ_U64(m.len, k);
        T_EQ_U64(m.lost, 0);
        T_TRUE(m.data == buf);
    }
    size_t len = 0;
    T_ERR(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EAGAIN);
    /* A second subscriber joining now starts at the newest: nothing for it. */
    shmchan_queue *late = tq_open(n, SHMCHAN_SUBSCRIBE);
    T_ERR(shmchan_queue_recv(late, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EAGAIN);
    T_OK(shmchan_queue_send(w, "x", 1, 0));
    T_OK(shmchan_queue_recv(late, buf, sizeof(buf), 0, &len, NULL));
    T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, NULL));
    T_EQ_U64(len, 1);
    shmchan_info info;
    tq_info(n, &info);
    T_EQ_U64(info.kind, SHMCHAN_KIND_QUEUE);
    T_EQ_U64(info.policy, SHMCHAN_POLICY_BLOCK);
    T_EQ_U64(info.capacity, 1u << 20);
    T_EQ_U64(info.messages, 201);
    T_EQ_U64(info.seq, 202);
    T_EQ_U64(info.readers, 2);
    T_EQ_U64(info.writers, 1);
    T_EQ_U64(info.max_readers, 64);
    T_EQ_U64(info.max_writers, 64);
    shmchan_queue_close(late);
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

TEST(queue_oldest_and_newest)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 0, 64, 0);
    for (int i = 0; i < 5; i++) {
        T_OK(shmchan_queue_send(w, &i, sizeof(i), 0));
    }
    shmchan_queue *newest = tq_open(n, SHMCHAN_SUBSCRIBE);
    shmchan_queue *oldest = tq_open(n, SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST);
    int v = -1;
    size_t len = 0;
    shmchan_msg m;
    for (int i = 0; i < 5; i++) {
        T_OK(shmchan_queue_recv(oldest, &v, sizeof(v), 0, &len, &m));
        T_EQ_U64(v, i);
        T_EQ_U64(m.seq, i + 1);
    }
    T_ERR(shmchan_queue_recv(oldest, &v, sizeof(v), 0, &len, NULL), SHMCHAN_EAGAIN);
    T_ERR(shmchan_queue_recv(newest, &v, sizeof(v), 0, &len, NULL), SHMCHAN_EAGAIN);
    shmchan_queue_close(newest);
    shmchan_queue_close(oldest);
    shmchan_queue_close(w);
}

TEST(queue_sizes)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 0, 300, 0);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    uint8_t big[301], out[301];
    tq_fill(big, sizeof(big), 9);
    size_t len = 0;
    T_ERR(shmchan_queue_send(w, big, 301, 0), SHMCHAN_EMSGSIZE); /* too big for the queue */
    void *p = NULL;
    T_ERR(shmchan_queue_reserve(w, 301, 0, &p), SHMCHAN_EMSGSIZE);
    T_OK(shmchan_queue_send(w, big, 300, 0));                      /* exactly max_msg */
    T_OK(shmchan_queue_send(w, NULL, 0, 0));                       /* zero-length */
    T_OK(shmchan_queue_send(w, big, 1, 0));
    /* Buffer too small: the message stays, its size is reported. */
    T_ERR(shmchan_queue_recv(r, out, 299, 0, &len, NULL), SHMCHAN_EMSGSIZE);
    T_EQ_U64(len, 300);
    T_ERR(shmchan_queue_recv(r, NULL, 0, 0, &len, NULL), SHMCHAN_EMSGSIZE);
    T_EQ_U64(len, 300);
    shmchan_msg m;
    T_OK(shmchan_queue_recv(r, out, sizeof(out), 0, &len, &m));
    T_EQ_U64(len, 300);
    T_EQ_U64(m.seq, 1);
    T_TRUE(tq_check(out, 300, 9));
    T_OK(shmchan_queue_recv(r, NULL, 0, 0, &len, &m)); /* zero-length needs no buffer */
    T_EQ_U64(len, 0);
    T_EQ_U64(m.seq, 2);
    T_OK(shmchan_queue_recv(r, out, 1, 0, &len, &m));
    T_EQ_U64(len, 1);
    T_EQ_U64(out[0], big[0]);
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

TEST(queue_timeouts)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 4096, 64, 0);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    char buf[64];
    size_t len = 0;
    T_ERR(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EAGAIN);
    uint64_t t0 = t_now_ns();
    T_ERR(shmchan_queue_recv(r, buf, sizeof(buf), 50, &len, NULL), SHMCHAN_ETIMEDOUT);
    T_TRUE(t_now_ns() - t0 >= 50u * 1000000u);
    shmchan_msg m;
    T_ERR(shmchan_queue_peek(r, 0, &m), SHMCHAN_EAGAIN);
    T_ERR(shmchan_queue_peek(r, 20, &m), SHMCHAN_ETIMEDOUT);
    /* Fill the ring (block mode): the subscriber holds writers back. */
    int sent = 0;
    uint8_t msg[64];
    for (;;) {
        tq_fill(msg, 64, (uint64_t)sent);
        if (shmchan_queue_send(w, msg, 64, 0) != SHMCHAN_OK) {
            break;
        }
        sent++;
        T_TRUE(sent < 4096 / 80 + 2);
    }
    T_TRUE(sent >= 4096 / 80 - 2);
    T_ERR(shmchan_queue_send(w, buf, 64, 0), SHMCHAN_EAGAIN);
    t0 = t_now_ns();
    T_ERR(shmchan_queue_send(w, buf, 64, 50), SHMCHAN_ETIMEDOUT);
    T_TRUE(t_now_ns() - t0 >= 50u * 1000000u);
    void *p = NULL;
    T_ERR(shmchan_queue_reserve(w, 8, 0, &p), SHMCHAN_EAGAIN);
    T_TRUE(p == NULL);
    /* Two out make room for one in, even with a pad at the ring's end. */
    T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &m));
    T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &m));
    tq_fill(msg, 64, (uint64_t)sent);
    T_OK(shmchan_queue_send(w, msg, 64, 0));
    /* Nothing was lost to the waits: every message, in order, intact. */
    for (int i = 2; i <= sent; i++) {
        T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &m));
        T_EQ_U64(m.seq, i + 1);
        T_EQ_U64(m.lost, 0);
        T_TRUE(tq_check((const uint8_t *)buf, len, (uint64_t)i));
    }
    T_ERR(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EAGAIN);
    shmchan_info info;
    tq_info(n, &info);
    T_TRUE(info.waits >= 1);
    T_EQ_U64(info.messages, sent + 1);
    T_EQ_U64(info.drops, 0);
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

TEST(queue_bad_arguments)
{
    const char *n = t_name();
    shmchan_queue *q = NULL;
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    T_ERR(shmchan_queue_open(n, &o, NULL), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_open(NULL, &o, &q), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_open("bad/name", &o, &q), SHMCHAN_ENAME);
    o.flags = SHMCHAN_CREATE | SHMCHAN_SUBSCRIBE | SHMCHAN_WORKER;
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EINVAL);
    o.flags = SHMCHAN_CREATE | SHMCHAN_OLDEST;
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EINVAL);
    o.flags = SHMCHAN_CREATE;
    o.policy = 7;
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EINVAL);
    o.policy = 0;
    o.capacity = 1024; /* cannot hold two 4096-byte messages */
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EINVAL);
    o.capacity = 0;
    o.max_msg = (uint64_t)1 << 40;
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EINVAL);
    T_TRUE(q == NULL);
    T_ERR(shmchan_queue_open(n, NULL, &q), SHMCHAN_ENOENT);

    shmchan_queue *w = tq_create(n, 8192, 100, SHMCHAN_POLICY_BLOCK);
    T_EQ_U64(shmchan_queue_max_msg(w), 100);
    T_EQ_U64(shmchan_queue_max_msg(NULL), 0);
    /* Geometry that differs from the channel's. */
    o = t_opts(0);
    o.max_msg = 99;
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EGEOMETRY);
    o = t_opts(0);
    o.policy = SHMCHAN_POLICY_OVERWRITE;
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EGEOMETRY);
    o = t_opts(0);
    o.capacity = 5000; /* rounds to 8192: the same */
    T_OK(shmchan_queue_open(n, &o, &q));
    shmchan_queue_close(q);
    shmchan_latest *l = NULL;
    T_ERR(shmchan_latest_open(n, NULL, &l), SHMCHAN_EGEOMETRY);

    /* Calls that need a role the handle does not have. */
    char buf[128];
    size_t len = 0, count = 0;
    shmchan_msg m, msgs[4];
    T_ERR(shmchan_queue_recv(w, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EKIND);
    T_ERR(shmchan_queue_peek(w, 0, &m), SHMCHAN_EKIND);
    T_ERR(shmchan_queue_recv_batch(w, buf, sizeof(buf), 4, 0, msgs, &count), SHMCHAN_EKIND);
    T_ERR(shmchan_queue_release(w), SHMCHAN_ESTATE);
    o = t_opts(SHMCHAN_RDONLY);
    shmchan_queue *ro = NULL;
    T_OK(shmchan_queue_open(n, &o, &ro));
    T_ERR(shmchan_queue_send(ro, "x", 1, 0), SHMCHAN_ERDONLY);
    void *p = NULL;
    T_ERR(shmchan_queue_reserve(ro, 1, 0, &p), SHMCHAN_ERDONLY);
    T_ERR(shmchan_queue_recv(ro, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EKIND);
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_queue_info(ro, &info));
    shmchan_queue_close(ro);
    o.flags = SHMCHAN_RDONLY | SHMCHAN_SUBSCRIBE; /* a reader must publish its cursor */
    T_ERR(shmchan_queue_open(n, &o, &ro), SHMCHAN_EINVAL);

    /* NULL and out-of-order calls. */
    T_ERR(shmchan_queue_send(NULL, "x", 1, 0), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_send(w, NULL, 1, 0), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_reserve(w, 1, 0, NULL), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_commit(NULL, 0), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_commit(w, 0), SHMCHAN_ESTATE);
    T_ERR(shmchan_queue_abort(w), SHMCHAN_ESTATE);
    T_OK(shmchan_queue_reserve(w, 10, 0, &p));
    T_ERR(shmchan_queue_reserve(w, 10, 0, &p), SHMCHAN_ESTATE);
    T_ERR(shmchan_queue_send(w, "x", 1, 0), SHMCHAN_ESTATE);
    T_ERR(shmchan_queue_commit(w, 11), SHMCHAN_EMSGSIZE); /* more than reserved */
    T_OK(shmchan_queue_abort(w));
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    T_ERR(shmchan_queue_recv(r, NULL, 5, 0, &len, NULL), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_recv(NULL, buf, 5, 0, &len, NULL), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_peek(r, 0, NULL), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_recv_batch(r, buf, sizeof(buf), 0, 0, msgs, &count), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_recv_batch(r, buf, sizeof(buf), 4, 0, NULL, &count), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_recv_batch(r, buf, sizeof(buf), 4, 0, msgs, NULL), SHMCHAN_EINVAL);
    T_OK(shmchan_queue_send(w, "abc", 3, 0));
    T_OK(shmchan_queue_peek(r, 0, &m));
    T_ERR(shmchan_queue_peek(r, 0, &m), SHMCHAN_ESTATE);
    T_ERR(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_ESTATE);
    T_OK(shmchan_queue_release(r));
    T_ERR(shmchan_queue_release(r), SHMCHAN_ESTATE);
    info.struct_size = 8;
    T_ERR(shmchan_queue_info(w, &info), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_info(NULL, &info), SHMCHAN_EINVAL);
    shmchan_queue_close(NULL);
    shmchan_queue_close(r);
    shmchan_queue_close(w);

    /* peers on a latest-value channel is not a thing. */
    const char *ln = t_name();
    o = t_opts(SHMCHAN_CREATE);
    T_OK(shmchan_latest_open(ln, &o, &l));
    shmchan_peer peers[2];
    T_ERR(shmchan_peers_get(ln, 0, peers, 2, &count), SHMCHAN_EKIND);
    T_ERR(shmchan_queue_open(ln, NULL, &q), SHMCHAN_EGEOMETRY);
    shmchan_latest_close(l);
}

TEST(queue_slot_limits)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.max_readers = 2;
    o.max_writers = 1;
    shmchan_queue *w = NULL, *q = NULL;
    T_OK(shmchan_queue_open(n, &o, &w)); /* takes the only writer slot */
    T_ERR(shmchan_queue_open(n, NULL, &q), SHMCHAN_ELIMIT);
    shmchan_queue *r1 = tq_open(n, SHMCHAN_SUBSCRIBE), *r2 = tq_open(n, SHMCHAN_WORKER);
    o = t_opts(SHMCHAN_SUBSCRIBE);
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_ELIMIT);
    /* A reader takes a writer slot at its first send only. */
    T_ERR(shmchan_queue_send(r1, "x", 1, 0), SHMCHAN_ELIMIT);
    shmchan_queue_close(w);
    T_OK(shmchan_queue_send(r1, "x", 1, 0));
    char c = 0;
    size_t len = 0;
    T_OK(shmchan_queue_recv(r1, &c, 1, 0, &len, NULL));
    T_EQ_U64(c, 'x');
    shmchan_queue_close(r2);
    T_OK(shmchan_queue_open(n, &o, &q)); /* the closed worker's slot is free again */
    shmchan_queue_close(q);
    shmchan_queue_close(r1);
}

/* --------------------------------------------------------- zero-copy */

TEST(queue_reserve_commit_abort)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 0, 256, 0);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    void *p = NULL;
    char buf[256];
    size_t len = 0;
    shmchan_msg m;
    T_OK(shmchan_queue_reserve(w, 200, 0, &p));
    memcpy(p, "in place", 8);
    T_ERR(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EAGAIN);
    T_OK(shmchan_queue_commit(w, 8)); /* fewer bytes than reserved */
    T_OK(shmchan_queue_reserve(w, 50, 0, &p));
    memcpy(p, "dropped", 7);
    T_OK(shmchan_queue_abort(w));
    T_OK(shmchan_queue_reserve(w, 0, 0, &p)); /* an empty reservation */
    T_OK(shmchan_queue_commit(w, 0));
    T_OK(shmchan_queue_send(w, "after", 5, 0));
    T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &m));
    T_EQ_U64(len, 8);
    T_MEMEQ(buf, "in place", 8);
    T_EQ_U64(m.seq, 1);
    T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &m));
    T_EQ_U64(len, 0);
    T_EQ_U64(m.seq, 3); /* sequence 2 was aborted: skipped, not lost */
    T_EQ_U64(m.lost, 0);
    T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &m));
    T_MEMEQ(buf, "after", 5);
    T_EQ_U64(m.seq, 4);
    T_ERR(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EAGAIN);
    /* Closing with an open reservation aborts it. */
    T_OK(shmchan_queue_reserve(w, 10, 0, &p));
    shmchan_queue_close(w);
    T_ERR(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EAGAIN);
    shmchan_info info;
    tq_info(n, &info);
    T_EQ_U64(info.messages, 3);
    T_EQ_U64(info.bytes, 13);
    shmchan_queue_close(r);
}

TEST(queue_peek_release)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 0, 64, 0);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    shmchan_queue *k = tq_open(n, SHMCHAN_WORKER);
    T_OK(shmchan_queue_send(w, "first", 5, 0));
    T_OK(shmchan_queue_send(w, "second", 6, 0));
    shmchan_msg m;
    T_OK(shmchan_queue_peek(r, 0, &m));
    T_EQ_U64(m.len, 5);
    T_MEMEQ(m.data, "first", 5);
    T_EQ_U64(m.seq, 1);
    T_OK(shmchan_queue_release(r));
    T_OK(shmchan_queue_peek(r, 0, &m));
    T_MEMEQ(m.data, "second", 6);
    T_EQ_U64(m.seq, 2);
    T_OK(shmchan_queue_release(r));
    T_ERR(shmchan_queue_peek(r, 0, &m), SHMCHAN_EAGAIN);
    /* A worker's peek takes the message: a second worker gets the next. */
    shmchan_queue *k2 = tq_open(n, SHMCHAN_WORKER);
    T_OK(shmchan_queue_peek(k, 0, &m));
    T_MEMEQ(m.data, "first", 5);
    char buf[16];
    size_t len = 0;
    T_OK(shmchan_queue_recv(k2, buf, sizeof(buf), 0, &len, &m));
    T_MEMEQ(buf, "second", 6);
    T_EQ_U64(m.seq, 2);
    T_OK(shmchan_queue_release(k));
    T_ERR(shmchan_queue_recv(k, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EAGAIN);
    T_ERR(shmchan_queue_recv(k2, buf, sizeof(buf), 0, &len, NULL), SHMCHAN_EAGAIN);
    /* Closing with a view releases it. */
    T_OK(shmchan_queue_send(w, "third", 5, 0));
    T_OK(shmchan_queue_peek(r, 0, &m));
    shmchan_queue_close(r);
    shmchan_queue_close(k2);
    shmchan_queue_close(k);
    shmchan_queue_close(w);
}

TEST(queue_recv_batch)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 0, 100, 0);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    shmchan_queue *k = tq_open(n, SHMCHAN_WORKER);
    uint8_t msg[100];
    for (uint64_t i = 0; i < 10; i++) {
        tq_fill(msg, (size_t)(i * 9 + 1), i);
        T_OK(shmchan_queue_send(w, msg, (size_t)(i * 9 + 1), 0));
    }
    for (int who = 0; who < 2; who++) {
        shmchan_queue *q = who == 0 ? r : k;
        uint8_t buf[256];
        shmchan_msg msgs[4];
        size_t count = 0;
        uint64_t next = 0;
        while (next < 10) {
            T_OK(shmchan_queue_recv_batch(q, buf, sizeof(buf), 4, 0, msgs, &count));
            T_TRUE(count >= 1 && count <= 4);
            for (size_t j = 0; j < count; j++, next++) {
                T_EQ_U64(msgs[j].seq, next + 1);
                T_EQ_U64(msgs[j].len, next * 9 + 1);
                T_TRUE(((const uint8_t *)msgs[j].data - buf) % 8 == 0);
                T_TRUE((const uint8_t *)msgs[j].data + msgs[j].len <= buf + sizeof(buf));
                T_TRUE(tq_check(msgs[j].data, (size_t)msgs[j].len, next));
            }
        }
        T_EQ_U64(next, 10);
        T_ERR(shmchan_queue_recv_batch(q, buf, sizeof(buf), 4, 0, msgs, &count),
              SHMCHAN_EAGAIN);
        T_EQ_U64(count, 0);
    }
    /* A first message larger than the buffer: EMSGSIZE, its size in msgs[0]. */
    T_OK(shmchan_queue_send(w, msg, 100, 0));
    uint8_t small[50];
    shmchan_msg msgs[2];
    size_t count = 9;
    T_ERR(shmchan_queue_recv_batch(r, small, sizeof(small), 2, 0, msgs, &count),
          SHMCHAN_EMSGSIZE);
    T_EQ_U64(count, 0);
    T_EQ_U64(msgs[0].len, 100);
    shmchan_queue_close(k);
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

/* A batch of n messages with keys key.. and sizes from rng (mostly small,
 * some past the 1 KiB that runs take, some empty). */
static void
mixed_batch(shmchan_msg *msgs, uint8_t (*data)[1500], size_t n, uint64_t key, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++) {
        *rng = *rng * 6364136223846793005u + 1442695040888963407u;
        uint64_t r = *rng >> 33;
        size_t len = r % 16 == 0 ? 1100 + (size_t)(r % 400) : r % 7 == 0 ? 0 : (size_t)(r % 200);
        tq_fill(data[i], len, key + i);
        msgs[i] = (shmchan_msg){.data = data[i], .len = len};
    }
}

/*
 * Runs (docs/queue.md, "Runs") across many laps of a small ring: batches of
 * 1 to 40 mixed messages, each byte and sequence checked by a subscriber
 * (recv and recv_batch in turn) and a worker, so that runs meet the ring's
 * end, rewinds and the larger messages that end a run.
 */
TEST(queue_send_batch_runs)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 8192, 1500, 0);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    shmchan_queue *wk = tq_open(n, SHMCHAN_WORKER);
    static uint8_t data[40][1500], buf[40 * 1512];
    shmchan_msg msgs[40], got[40];
    uint64_t rng = 42, key = 0;
    for (int round = 0; round < 400; round++) {
        size_t count = 1 + (size_t)(round * 7 % 40), sent = 0;
        mixed_batch(msgs, data, count, key, &rng);
        for (size_t done = 0; done < count; done += sent) {
            T_OK(shmchan_queue_send_batch(w, msgs + done, count - done, 1000, &sent));
            T_TRUE(sent >= 1);
            /* Both readers take what went, so that the next part fits. */
            for (size_t i = done; i < done + sent;) {
                size_t k = 0, len = 0;
                if (round % 2) {
                    T_OK(shmchan_queue_recv_batch(r, buf, sizeof(buf), 40, 0, got, &k));
                } else {
                    T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &got[0]));
                    got[0].data = buf;
                    got[0].len = len;
                    k = 1;
                }
                for (size_t j = 0; j < k; j++, i++) {
                    T_EQ_U64(got[j].seq, key + i + 1);
                    T_EQ_U64(got[j].len, msgs[i].len);
                    T_TRUE(tq_check(got[j].data, (size_t)got[j].len, key + i));
                }
            }
            for (size_t i = done; i < done + sent; i++) {
                size_t len = 0;
                shmchan_msg m;
                T_OK(shmchan_queue_recv(wk, buf, sizeof(buf), 0, &len, &m));
                T_EQ_U64(m.seq, key + i + 1);
                T_TRUE(len == msgs[i].len && tq_check(buf, len, key + i));
            }
        }
        key += count;
    }
    T_ERR(shmchan_queue_recv(r, buf, sizeof(buf), 0, NULL, NULL), SHMCHAN_EAGAIN);
    shmchan_info info;
    tq_info(n, &info);
    T_EQ_U64(info.messages, key); /* every message went, none twice */
    T_EQ_U64(info.recovered, 0);
    shmchan_queue_close(wk);
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

/* Overwrite mode: runs lap a subscriber that does not read; what it then
 * gets is intact, in order, with the losses counted. */
TEST(queue_send_batch_runs_lap)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 4096, 1500, SHMCHAN_POLICY_OVERWRITE);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    static uint8_t data[40][1500], buf[1500];
    shmchan_msg msgs[40];
    uint64_t rng = 7, key = 0;
    for (int round = 0; round < 50; round++) {
        size_t sent = 0;
        mixed_batch(msgs, data, 40, key, &rng);
        for (size_t done = 0; done < 40; done += sent) {
            T_OK(shmchan_queue_send_batch(w, msgs + done, 40 - done, 0, &sent));
        }
        key += 40;
    }
    uint64_t last = 0, seen = 0, lost = 0;
    size_t len = 0;
    shmchan_msg m;
    while (shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &m) == SHMCHAN_OK) {
        T_TRUE(m.seq > last);
        T_TRUE(tq_check(buf, len, m.seq - 1));
        lost += m.lost;
        last = m.seq;
        seen++;
    }
    T_EQ_U64(last, key); /* the newest is there */
    T_EQ_U64(seen + lost, key);
    T_TRUE(lost > 0);
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

TEST(queue_send_batch)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 4096, 1000, 0);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    static uint8_t data[10][1000];
    shmchan_msg msgs[10];
    for (uint64_t i = 0; i < 10; i++) {
        msgs[i] = (shmchan_msg){.data = data[i], .len = i * 41 + (i == 3 ? 0 : 1)};
        tq_fill(data[i], (size_t)msgs[i].len, i);
    }
    size_t sent = 99;
    T_OK(shmchan_queue_send_batch(w, msgs, 10, 0, &sent));
    T_EQ_U64(sent, 10);
    uint8_t buf[1000];
    for (uint64_t i = 0; i < 10; i++) {
        size_t len = 0;
        shmchan_msg m;
        T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &m));
        T_EQ_U64(m.seq, i + 1);
        T_EQ_U64(len, msgs[i].len);
        T_TRUE(tq_check(buf, len, i));
    }
    /* A ring too small for the batch: a prefix goes, then EAGAIN. */
    for (int i = 0; i < 10; i++) {
        msgs[i].len = 1000;
    }
    T_OK(shmchan_queue_send_batch(w, msgs, 10, 0, &sent));
    T_TRUE(sent >= 1 && sent < 10);
    size_t first = sent;
    T_ERR(shmchan_queue_send_batch(w, msgs + first, 10 - first, 0, &sent), SHMCHAN_EAGAIN);
    T_EQ_U64(sent, 0);
    T_ERR(shmchan_queue_send_batch(w, msgs + first, 10 - first, 30, &sent), SHMCHAN_ETIMEDOUT);
    for (size_t i = 0; i < first; i++) {
        size_t len = 0;
        T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, NULL));
        T_EQ_U64(len, 1000);
    }
    /* One too large: nothing goes. Bad arguments. */
    msgs[1].len = 1001;
    T_ERR(shmchan_queue_send_batch(w, msgs, 3, 0, &sent), SHMCHAN_EMSGSIZE);
    T_EQ_U64(sent, 0);
    T_ERR(shmchan_queue_recv(r, buf, sizeof(buf), 0, NULL, NULL), SHMCHAN_EAGAIN);
    msgs[1] = (shmchan_msg){.data = NULL, .len = 1};
    T_ERR(shmchan_queue_send_batch(w, msgs, 3, 0, &sent), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_send_batch(w, NULL, 1, 0, &sent), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_send_batch(w, msgs, 1, 0, NULL), SHMCHAN_EINVAL);
    T_ERR(shmchan_queue_send_batch(NULL, msgs, 1, 0, &sent), SHMCHAN_EINVAL);
    T_OK(shmchan_queue_send_batch(w, NULL, 0, 0, &sent));
    T_EQ_U64(sent, 0);
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

TEST(queue_large_messages)
{
    const char *n = t_name();
    const size_t big = 8u << 20;
    shmchan_queue *w = tq_create(n, 0, big, 0);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    shmchan_info info;
    tq_info(n, &info);
    T_TRUE(info.capacity >= 2 * (uint64_t)big);
    uint8_t *src = malloc(big), *dst = malloc(big);
    T_TRUE(src != NULL && dst != NULL);
    for (uint64_t i = 0; i < 5; i++) {
        size_t len = big - (size_t)i * 1000003u;
        tq_fill(src, len, i);
        if (i % 2 == 0) {
            T_OK(shmchan_queue_send(w, src, len, 1000));
        } else {
            void *p = NULL;
            T_OK(shmchan_queue_reserve(w, big, 1000, &p));
            memcpy(p, src, len);
            T_OK(shmchan_queue_commit(w, len));
        }
        size_t got = 0;
        T_OK(shmchan_queue_recv(r, dst, big, 1000, &got, NULL));
        T_EQ_U64(got, len);
        T_TRUE(tq_check(dst, got, i));
    }
    free(src);
    free(dst);
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

/* -------------------------------------------------------- wrap-around */

static const size_t odd_sizes[] = {1, 7, 13, 4093, 0, 64, 1000, 4096, 15, 17, 31, 33, 2049};
#define NODD (sizeof(odd_sizes) / sizeof(odd_sizes[0]))

static size_t
odd_len(uint64_t seq)
{
    return odd_sizes[(seq * 7) % NODD];
}

/* Fill a small ring over many laps with lengths that never line up with it,
 * through every send and receive call, and check every byte. */
TEST(queue_wraparound_odd_sizes)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 16384, 4096, 0);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    uint8_t msg[4096], buf[8192];
    uint64_t sent = 0, got = 0, target = 20000;
    while (got < target) {
        /* Write until full (sometimes zero-copy, sometimes committing less). */
        while (sent < target) {
            size_t len = odd_len(sent);
            int rc;
            if (sent % 3 == 0) {
                void *p = NULL;
                size_t want = sent % 2 == 1 && len + 40 <= 4096 ? len + 40 : len;
                rc = shmchan_queue_reserve(w, want, 0, &p);
                if (rc == SHMCHAN_OK) {
                    tq_fill(p, len, sent);
                    T_OK(shmchan_queue_commit(w, len));
                }
            } else {
                tq_fill(msg, len, sent);
                rc = shmchan_queue_send(w, msg, len, 0);
            }
            if (rc == SHMCHAN_EAGAIN) {
                break;
            }
            T_OK(rc);
            sent++;
        }
        /* Drain in the three ways. */
        int how = (int)(got % 3);
        do {
            if (how == 0) {
                size_t len = 0;
                shmchan_msg m;
                int rc = shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &m);
                if (rc == SHMCHAN_EAGAIN) {
                    break;
                }
                T_OK(rc);
                T_EQ_U64(m.seq, got + 1);
                T_EQ_U64(len, odd_len(got));
                T_TRUE(tq_check(buf, len, got));
                got++;
            } else if (how == 1) {
                shmchan_msg m;
                int rc = shmchan_queue_peek(r, 0, &m);
                if (rc == SHMCHAN_EAGAIN) {
                    break;
                }
                T_OK(rc);
                T_EQ_U64(m.seq, got + 1);
                T_EQ_U64(m.len, odd_len(got));
                T_TRUE(tq_check(m.data, (size_t)m.len, got));
                T_OK(shmchan_queue_release(r));
                got++;
            } else {
                shmchan_msg msgs[5];
                size_t count = 0;
                int rc = shmchan_queue_recv_batch(r, buf, sizeof(buf), 5, 0, msgs, &count);
                if (rc == SHMCHAN_EAGAIN) {
                    break;
                }
                T_OK(rc);
                for (size_t j = 0; j < count; j++, got++) {
                    T_EQ_U64(msgs[j].seq, got + 1);
                    T_EQ_U64(msgs[j].len, odd_len(got));
                    T_TRUE(tq_check(msgs[j].data, (size_t)msgs[j].len, got));
                }
            }
        } while (got < sent && (got % 11) != 0);
    }
    T_EQ_U64(got, target);
    shmchan_info info;
    tq_info(n, &info);
    T_EQ_U64(info.messages, target);
    T_TRUE(info.oldest_seq > 1); /* it really wrapped */
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

/* Peek the message with key, check it, widen [lo, hi] by where it lies. */
static void
rewind_take(shmchan_queue *r, uint64_t key, uintptr_t *lo, uintptr_t *hi)
{
    shmchan_msg m;
    T_OK(shmchan_queue_peek(r, 0, &m));
    T_EQ_U64(m.lost, 0);
    T_TRUE(tq_check(m.data, (size_t)m.len, key));
    *lo = (uintptr_t)m.data < *lo ? (uintptr_t)m.data : *lo;
    *hi = (uintptr_t)m.data > *hi ? (uintptr_t)m.data : *hi;
    T_OK(shmchan_queue_release(r));
}

/*
 * The rewinding tests scale with this process's window (derived from the
 * caches): a ring of two windows and records of about 1/131 of it, so that
 * the ring holds 131 records (2 MiB window: 4 MiB ring, records of 32 016
 * bytes). RW_MAX bounds the message for the largest window (32 MiB).
 */
#define RW_WINDOW shmchan__ring_window()
#define RW_RING (2 * RW_WINDOW)
#define RW_LEN ((size_t)((RW_RING / 131) & ~(uint64_t)15) - 16)
#define RW_MAX (UINT64_C(1) << 19)

size_t
tq_rewind_len(void)
{
    return RW_LEN;
}

/* Send n messages (keys from key0), the subscriber r taking each at once or
 * all at the end; return how far apart in the ring they lay. */
static uint64_t
rewind_round(shmchan_queue *w, shmchan_queue *r, uint64_t key0, unsigned n, bool keep_up)
{
    static uint8_t msg[RW_MAX];
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (unsigned i = 0; i < n; i++) {
        tq_fill(msg, RW_LEN, key0 + i);
        T_OK(shmchan_queue_send(w, msg, RW_LEN, 0));
        if (keep_up) {
            rewind_take(r, key0 + i, &lo, &hi);
        }
    }
    for (unsigned i = 0; !keep_up && i < n; i++) {
        rewind_take(r, key0 + i, &lo, &hi);
    }
    return hi - lo;
}

/*
 * Block mode, a ring of two windows: while its readers keep up, it goes round
 * its first window or so (records start early at the next lap), so that it
 * stays in the caches. A reader that lags still has half a window of
 * headroom and loses nothing; a ring nobody reads keeps its whole history for a late
 * SHMCHAN_OLDEST subscriber, and one that rewound at least the window.
 */
TEST(queue_rewinds_while_readers_keep_up)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, RW_RING, RW_LEN, 0);
    static uint8_t buf[RW_MAX];
    size_t len = 0;
    shmchan_msg m;
    for (uint64_t i = 0; i < 120; i++) { /* nobody reads: 3.8 MB stay */
        tq_fill(buf, RW_LEN, i);
        T_OK(shmchan_queue_send(w, buf, RW_LEN, 0));
    }
    shmchan_queue *late = tq_open(n, SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST);
    for (uint64_t i = 0; i < 120; i++) {
        T_OK(shmchan_queue_recv(late, buf, RW_LEN, 0, &len, &m));
        T_EQ_U64(m.seq, i + 1);
        T_TRUE(tq_check(buf, len, i));
    }
    shmchan_queue_close(late);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    (void)rewind_round(w, r, 1000, 20, true); /* from the end of the ring to its start */
    T_TRUE(rewind_round(w, r, 2000, 300, true) < RW_WINDOW); /* 2.3 rings */
    T_TRUE(rewind_round(w, r, 3000, 30, false) > 0);         /* 0.46 windows behind */
    (void)rewind_round(w, r, 4000, 100, true);
    T_TRUE(rewind_round(w, r, 5000, 300, true) < RW_WINDOW);
    shmchan_info info;
    tq_info(n, &info);
    T_EQ_U64(info.messages, 870);
    T_EQ_U64(info.drops, 0);
    T_TRUE(info.oldest_seq > 870 - 131); /* less than the ring */
    T_TRUE(info.oldest_seq <= 870 - 60); /* at least the window, less a record */
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

/* Read the next message (key) with peek; return where its payload lies. */
static uintptr_t
burst_take(shmchan_queue *r, uint64_t key)
{
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    rewind_take(r, key, &lo, &hi);
    return lo;
}

/*
 * Messages of RW_LEN bytes that a ring of `ring` bytes holds at once, when
 * its readers have consumed everything: records of 16 + RW_LEN bytes and the
 * zero header behind them, less one record the end of a lap may pad away.
 */
static unsigned
burst_room(uint64_t ring)
{
    return (unsigned)((ring - 16) / (16 + RW_LEN)) - 1;
}

/*
 * Block mode: one handle that writes and reads, past the ring offset from
 * which claims rewind, reads everything and then sends a burst without
 * waiting: the burst gets the whole capacity, although the claim that
 * rewound left the handle's cursor before its pad (issue 14). Then the ring
 * is really full, the burst reads back intact, and the next burst gets the
 * capacity again. In overwrite mode (which never rewinds) the same burst
 * goes on where the last message ended.
 */
static void
self_burst(uint32_t policy, uint32_t role)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE | role);
    o.capacity = RW_RING;
    o.max_msg = RW_LEN;
    o.policy = policy;
    shmchan_queue *q = NULL;
    T_OK(shmchan_queue_open(n, &o, &q));
    static uint8_t msg[RW_MAX];
    uint64_t key = 0, sent = 0;
    uintptr_t start = 0, last = 0;
    while (sent < RW_WINDOW) { /* one by one, read at once, up to the window */
        tq_fill(msg, RW_LEN, key);
        T_OK(shmchan_queue_send(q, msg, RW_LEN, 0));
        last = burst_take(q, key++);
        start = start == 0 ? last : start;
        sent += 16 + RW_LEN;
    }
    unsigned room = burst_room(RW_RING);
    for (int round = 0; round < 2; round++) {
        uint64_t key0 = key;
        for (unsigned i = 0; i < room; i++, key++) {
            tq_fill(msg, RW_LEN, key);
            T_OK(shmchan_queue_send(q, msg, RW_LEN, 0));
        }
        for (int extra = 0; policy == SHMCHAN_POLICY_BLOCK; extra++, key++) {
            T_TRUE(extra <= 1); /* then it is full: the one a lap's end may pad */
            tq_fill(msg, RW_LEN, key);
            int rc = shmchan_queue_send(q, msg, RW_LEN, 0);
            if (rc == SHMCHAN_EAGAIN) {
                break;
            }
            T_OK(rc);
        }
        uintptr_t first = burst_take(q, key0);
        if (round == 0 && policy == SHMCHAN_POLICY_BLOCK) {
            T_TRUE(first == start); /* it did rewind: the burst began at the ring's start */
        } else if (round == 0) {
            T_TRUE(first == last + 16 + RW_LEN); /* no rewind in overwrite mode */
        }
        for (uint64_t k = key0 + 1; k < key; k++) {
            (void)burst_take(q, k);
        }
    }
    shmchan_info info;
    tq_info(n, &info);
    T_EQ_U64(info.messages, key);
    T_EQ_U64(info.drops, 0);
    shmchan_queue_close(q);
}

TEST(queue_rewind_self_burst_gets_capacity)
{
    self_burst(SHMCHAN_POLICY_BLOCK, SHMCHAN_SUBSCRIBE);
    self_burst(SHMCHAN_POLICY_BLOCK, SHMCHAN_WORKER); /* work_pos at the PAD */
}

TEST(queue_overwrite_self_burst_no_rewind)
{
    self_burst(SHMCHAN_POLICY_OVERWRITE, SHMCHAN_SUBSCRIBE);
}

/*
 * The same with nobody reading: a subscriber reads everything, the next
 * claim rewinds, and the subscriber leaves before the PAD. The consumed
 * watermark, which then holds writers back, stands at the PAD: a burst
 * still gets the whole capacity, and a late SHMCHAN_OLDEST subscriber reads
 * the message that rewound and the burst, intact.
 */
TEST(queue_rewind_watermark_at_pad)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, RW_RING, RW_LEN, 0);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    static uint8_t msg[RW_MAX];
    uint64_t key = 0;
    uintptr_t start = 0;
    for (uint64_t sent = 0; sent < RW_WINDOW; sent += 16 + RW_LEN, key++) {
        tq_fill(msg, RW_LEN, key);
        T_OK(shmchan_queue_send(w, msg, RW_LEN, 0));
        uintptr_t at = burst_take(r, key);
        start = start == 0 ? at : start;
    }
    uint64_t key0 = key;
    tq_fill(msg, RW_LEN, key++);
    T_OK(shmchan_queue_send(w, msg, RW_LEN, 0)); /* rewinds: r is at the tail */
    shmchan_queue_close(r);
    for (unsigned i = 0; i < burst_room(RW_RING) - 1; i++, key++) {
        tq_fill(msg, RW_LEN, key);
        T_OK(shmchan_queue_send(w, msg, RW_LEN, 0));
    }
    shmchan_queue *late = tq_open(n, SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST);
    T_TRUE(burst_take(late, key0) == start);
    for (uint64_t k = key0 + 1; k < key; k++) {
        (void)burst_take(late, k);
    }
    shmchan_info info;
    tq_info(n, &info);
    T_EQ_U64(info.messages, key);
    shmchan_queue_close(late);
    shmchan_queue_close(w);
}

/* ----------------------------------------------------------- overwrite */

TEST(queue_overwrite_exact_loss)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 4096, 64, SHMCHAN_POLICY_OVERWRITE);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    shmchan_queue *r2 = tq_open(n, SHMCHAN_SUBSCRIBE);
    uint8_t msg[64], buf[64];
    /* 1000 messages into a ring of 51: writers never wait. */
    for (uint64_t i = 0; i < 1000; i++) {
        tq_fill(msg, 64, i);
        T_OK(shmchan_queue_send(w, msg, 64, 0));
    }
    shmchan_info info;
    tq_info(n, &info);
    uint64_t oldest = info.oldest_seq;
    T_TRUE(oldest > 900 && oldest < 1000);
    size_t len = 0;
    shmchan_msg m;
    T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &m));
    T_EQ_U64(m.seq, oldest);
    T_EQ_U64(m.lost, oldest - 1); /* exactly the ones overwritten */
    T_TRUE(tq_check(buf, len, m.seq - 1));
    for (uint64_t s = oldest + 1; s <= 1000; s++) {
        T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &m));
        T_EQ_U64(m.seq, s);
        T_EQ_U64(m.lost, 0);
        T_TRUE(tq_check(buf, len, s - 1));
    }
    T_ERR(shmchan_queue_recv(r, buf, sizeof(buf), 0, &len, &m), SHMCHAN_EAGAIN);
    /* Zero-copy: a view overwritten before release says so. */
    T_OK(shmchan_queue_peek(r2, 0, &m));
    T_EQ_U64(m.lost, oldest - 1);
    for (int i = 0; i < 60; i++) {
        T_OK(shmchan_queue_send(w, msg, 64, 0));
    }
    T_ERR(shmchan_queue_release(r2), SHMCHAN_ESTALE);
    T_OK(shmchan_queue_recv(r2, buf, sizeof(buf), 0, &len, &m));
    T_TRUE(m.lost > 0);
    tq_info(n, &info);
    T_TRUE(info.drops >= oldest - 1);
    shmchan_peer peers[4];
    size_t count = 0;
    T_OK(shmchan_peers_get(n, 0, peers, 4, &count));
    T_EQ_U64(count, 3);
    T_EQ_U64(peers[0].role, SHMCHAN_PEER_SUBSCRIBER);
    T_EQ_U64(peers[0].lost, oldest - 1);
    T_EQ_U64(peers[0].count, 1000 - oldest + 1);
    T_EQ_U64(peers[0].position, 1001);
    T_EQ_U64(peers[0].lag, 60);
    T_EQ_U64(peers[2].role, SHMCHAN_PEER_WRITER);
    T_EQ_U64(peers[2].count, 1060);
    T_EQ_U64(peers[2].alive, 1);
    shmchan_queue_close(r2);
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

TEST(queue_overwrite_workers)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 4096, 64, SHMCHAN_POLICY_OVERWRITE);
    shmchan_queue *k = tq_open(n, SHMCHAN_WORKER);
    uint8_t msg[64], buf[64];
    for (uint64_t i = 0; i < 500; i++) {
        tq_fill(msg, 64, i);
        T_OK(shmchan_queue_send(w, msg, 64, 0));
    }
    shmchan_info info;
    tq_info(n, &info);
    size_t len = 0;
    shmchan_msg m;
    T_OK(shmchan_queue_recv(k, buf, sizeof(buf), 0, &len, &m));
    T_EQ_U64(m.seq, info.oldest_seq);
    T_EQ_U64(m.lost, info.oldest_seq - 1);
    T_TRUE(tq_check(buf, len, m.seq - 1));
    shmchan_queue_close(k);
    shmchan_queue_close(w);
}

/* ---------------------------------------------------------- block mode */

TEST(queue_block_closing_reader_frees_writers)
{
    const char *n = t_name();
    shmchan_queue *w = tq_create(n, 4096, 64, 0);
    shmchan_queue *r = tq_open(n, SHMCHAN_SUBSCRIBE);
    shmchan_queue *k = tq_open(n, SHMCHAN_WORKER);
    uint8_t msg[64];
    int sent = 0;
    while (shmchan_queue_send(w, msg, 64, 0) == SHMCHAN_OK) {
        sent++;
    }
    shmchan_queue_close(r);
    T_ERR(shmchan_queue_send(w, msg, 64, 0), SHMCHAN_EAGAIN); /* the worker still holds it */
    uint8_t buf[64];
    size_t len = 0;
    for (int i = 0; i < 10; i++) {
        T_OK(shmchan_queue_recv(k, buf, sizeof(buf), 0, &len, NULL));
    }
    for (int i = 0; i < 8; i++) { /* 10 out make room for 8 in, pads included */
        T_OK(shmchan_queue_send(w, msg, 64, 0));
    }
    shmchan_queue_close(k);
    /* Issue 12: what nobody read is kept for the next reader, so with no
     * reader left the writer still waits; a worker that drains it frees it
     * for a whole ring. */
    int extra = 0;
    while (shmchan_queue_send(w, msg, 64, 0) == SHMCHAN_OK) {
        extra++;
    }
    T_TRUE(extra <= 2); /* at most what the pads left over */
    k = tq_open(n, SHMCHAN_WORKER);
    int drained = 0;
    while (shmchan_queue_recv(k, buf, sizeof(buf), 0, &len, NULL) == SHMCHAN_OK) {
        drained++;
    }
    T_EQ_U64(drained, sent - 10 + 8 + extra);
    shmchan_queue_close(k);
    int again = 0;
    while (shmchan_queue_send(w, msg, 64, 0) == SHMCHAN_OK) {
        again++;
    }
    T_TRUE(again >= sent - 2);
    shmchan_queue_close(w);
}

/*
 * One handle that is both a subscriber and a writer judges its own slots
 * alive: a send that waits for space, or a receive stuck at its own
 * reservation, must never drop the handle's reader slot or turn its claim
 * into a dropped record (OFD locks do not report their own holder).
 */
TEST(queue_own_slots_never_dead)
{
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_SUBSCRIBE);
    o.capacity = 4096;
    o.max_msg = 64;
    shmchan_queue *q = NULL;
    T_OK(shmchan_queue_open(t_name(), &o, &q));
    uint8_t msg[64], buf[64];
    int sent = 0;
    for (;; sent++) {
        tq_fill(msg, 64, (uint64_t)sent);
        if (shmchan_queue_send(q, msg, 64, 0) != SHMCHAN_OK) {
            break;
        }
        T_TRUE(sent < 4096 / 80 + 2);
    }
    /* The wait looks for dead readers that hold it back: we are alive. */
    T_ERR(shmchan_queue_send(q, msg, 64, 30), SHMCHAN_ETIMEDOUT);
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_queue_info(q, &info));
    T_EQ_U64(info.readers, 1);
    T_EQ_U64(info.drops, 0);
    T_TRUE(info.in_use);
    size_t len = 0;
    shmchan_msg m;
    for (int i = 0; i < sent; i++) {
        T_OK(shmchan_queue_recv(q, buf, sizeof(buf), 0, &len, &m));
        tq_fill(msg, 64, (uint64_t)i);
        T_MEMEQ(buf, msg, 64);
        T_EQ_U64(m.lost, 0);
    }
    /* A receive stuck at our own reservation waits; it does not drop it. */
    void *slot = NULL;
    T_OK(shmchan_queue_reserve(q, 64, 0, &slot));
    memset(slot, 0x5a, 64);
    T_ERR(shmchan_queue_recv(q, buf, sizeof(buf), 30, &len, &m), SHMCHAN_ETIMEDOUT);
    T_OK(shmchan_queue_commit(q, 64));
    T_OK(shmchan_queue_recv(q, buf, sizeof(buf), 0, &len, &m));
    T_EQ_U64(len, 64);
    T_EQ_U64(buf[0], 0x5a);
    shmchan_queue_close(q);
}
