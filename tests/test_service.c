/*
 * Services (docs/services.md): calls, streams, many clients and servers in
 * separate processes with every byte checked, crashes of either side,
 * timeouts, bad arguments, and a hostile peer scribbling on what the
 * zero-copy calls expose. Portable: helpers are re-executed test processes
 * (t_spawn), killed with t_kill (SIGKILL / TerminateProcess).
 */
#include "t.h"

#define SV_WAIT 20000 /* ms: bounds waits that must end long before */

static shmchan_opts
sv_opts(uint32_t flags, uint32_t servers, uint32_t clients, uint64_t max_msg)
{
    shmchan_opts o = t_opts(flags);
    o.max_readers = servers;
    o.max_writers = clients;
    o.max_msg = max_msg;
    return o;
}

static shmchan_service *
sv_open(const char *name, uint32_t flags)
{
    shmchan_opts o = t_opts(flags);
    shmchan_service *s = NULL;
    T_OK(shmchan_service_open(name, &o, &s));
    return s;
}

static shmchan_service *
sv_create(const char *name, uint32_t flags, uint32_t servers, uint32_t clients, uint64_t max_msg)
{
    shmchan_opts o = sv_opts(flags | SHMCHAN_CREATE, servers, clients, max_msg);
    shmchan_service *s = NULL;
    T_OK(shmchan_service_open(name, &o, &s));
    return s;
}

/* The answer every test server gives: the request's bytes, each + 1, then
 * the request's length as 4 bytes. */
static size_t
sv_answer(const uint8_t *req, size_t len, uint8_t *out)
{
    for (size_t i = 0; i < len; i++) {
        out[i] = (uint8_t)(req[i] + 1);
    }
    uint32_t n = (uint32_t)len;
    memcpy(out + len, &n, 4);
    return len + 4;
}

/* Deterministic request bytes of client k, call i. */
static size_t
sv_request(uint32_t k, uint32_t i, uint8_t *out, size_t max)
{
    uint64_t x = 0x9E3779B97F4A7C15ull * (k * 100003u + i + 1);
    size_t len = (size_t)(x % (max + 1));
    for (size_t j = 0; j < len; j++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out[j] = (uint8_t)x;
    }
    return len;
}

TEST(service_single_call_in_process)
{
    const char *n = t_name();
    shmchan_service *srv = sv_create(n, SHMCHAN_SERVER, 2, 2, 256);
    shmchan_service *cl = sv_open(n, 0);
    T_EQ_U64(shmchan_service_max_msg(cl), 256);
    T_TRUE(strcmp(shmchan_kind_name(SHMCHAN_KIND_SERVICE), "service") == 0);
    uint64_t id = 0;
    T_OK(shmchan_service_request(cl, "hello", 5, 0, &id));
    T_TRUE(id != 0);
    uint8_t buf[300];
    shmchan_request rq;
    T_OK(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq));
    T_EQ_U64(rq.len, 5);
    T_EQ_U64(rq.id, id);
    T_MEMEQ(rq.data, "hello", 5);
    /* One request at a time per server handle. */
    T_ERR(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq), SHMCHAN_ESTATE);
    uint8_t ans[300];
    size_t alen = sv_answer(rq.data, (size_t)rq.len, ans);
    T_OK(shmchan_service_reply(srv, &rq, ans, alen, 0, 0));
    T_ERR(shmchan_service_reply(srv, &rq, ans, alen, 0, 0), SHMCHAN_ESTATE);
    uint8_t out[300];
    size_t len = 0;
    shmchan_response info;
    T_OK(shmchan_service_response(cl, out, sizeof(out), 0, &len, &info));
    T_EQ_U64(len, alen);
    T_EQ_U64(info.id, id);
    T_EQ_U64(info.flags, 0);
    T_MEMEQ(out, ans, alen);
    /* Nothing pending any more. */
    T_ERR(shmchan_service_response(cl, out, sizeof(out), 0, &len, &info), SHMCHAN_ESTATE);
    shmchan_info inf = {.struct_size = sizeof(inf)};
    T_OK(shmchan_info_get(n, 0, &inf));
    T_EQ_U64(inf.kind, SHMCHAN_KIND_SERVICE);
    T_EQ_U64(inf.readers, 1);
    T_EQ_U64(inf.writers, 1);
    T_EQ_U64(inf.messages, 1);
    shmchan_peer peers[4];
    size_t np = 0;
    T_OK(shmchan_peers_get(n, 0, peers, 4, &np));
    T_EQ_U64(np, 2);
    /* servers first (the request ring's readers), then clients */
    T_EQ_U64(peers[0].role, SHMCHAN_PEER_SERVER);
    T_EQ_U64(peers[1].role, SHMCHAN_PEER_CLIENT);
    T_EQ_U64(peers[0].count, 1); /* the request it took */
    T_EQ_U64(peers[1].count, 1); /* the request it sent */
    shmchan_service_close(cl);
    shmchan_service_close(srv);
}

TEST(service_stream_and_interleaved_requests)
{
    const char *n = t_name();
    shmchan_service *srv = sv_create(n, SHMCHAN_SERVER, 1, 1, 64);
    shmchan_service *cl = sv_open(n, 0);
    uint64_t id1 = 0, id2 = 0;
    T_OK(shmchan_service_request(cl, "a", 1, 0, &id1));
    T_OK(shmchan_service_request(cl, "bb", 2, 0, &id2));
    T_TRUE(id1 != id2);
    uint8_t buf[64];
    shmchan_request rq;
    T_OK(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq));
    T_EQ_U64(rq.id, id1);
    for (int i = 0; i < 3; i++) {
        char part[8];
        snprintf(part, sizeof(part), "p%d", i);
        T_OK(shmchan_service_reply(srv, &rq, part, 2, SHMCHAN_REPLY_MORE, 0));
    }
    T_OK(shmchan_service_reply(srv, &rq, "end", 3, 0, 0));
    T_OK(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq));
    T_EQ_U64(rq.id, id2);
    T_OK(shmchan_service_reply(srv, &rq, "oops", 4, SHMCHAN_REPLY_ERROR, 0));
    char out[64];
    size_t len = 0;
    shmchan_response info;
    for (int i = 0; i < 3; i++) {
        char part[8];
        snprintf(part, sizeof(part), "p%d", i);
        T_OK(shmchan_service_response(cl, out, sizeof(out), 0, &len, &info));
        T_EQ_U64(info.id, id1);
        T_EQ_U64(info.flags, SHMCHAN_REPLY_MORE);
        T_EQ_U64(len, 2);
        T_MEMEQ(out, part, 2);
    }
    T_OK(shmchan_service_response(cl, out, sizeof(out), 0, &len, &info));
    T_EQ_U64(info.id, id1);
    T_EQ_U64(info.flags, 0);
    T_MEMEQ(out, "end", 3);
    T_OK(shmchan_service_response(cl, out, sizeof(out), 0, &len, &info));
    T_EQ_U64(info.id, id2);
    T_EQ_U64(info.flags, SHMCHAN_REPLY_ERROR);
    T_MEMEQ(out, "oops", 4);
    shmchan_service_close(cl);
    shmchan_service_close(srv);
}

TEST(service_zero_copy_request_and_reply)
{
    const char *n = t_name();
    shmchan_service *srv = sv_create(n, SHMCHAN_SERVER, 1, 1, 2000);
    shmchan_service *cl = sv_open(n, 0);
    void *p = NULL;
    T_OK(shmchan_service_request_reserve(cl, 1500, 0, &p));
    T_ERR(shmchan_service_request(cl, "x", 1, 0, NULL), SHMCHAN_ESTATE);
    memset(p, 'q', 1200);
    uint64_t id = 0;
    T_ERR(shmchan_service_request_commit(cl, 1501, &id), SHMCHAN_EMSGSIZE);
    T_OK(shmchan_service_request_commit(cl, 1200, &id));
    T_ERR(shmchan_service_request_commit(cl, 1, &id), SHMCHAN_ESTATE);
    uint8_t buf[2000];
    shmchan_request rq;
    T_OK(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq));
    T_EQ_U64(rq.len, 1200);
    T_EQ_U64(rq.id, id);
    for (size_t i = 0; i < 1200; i++) {
        T_TRUE(buf[i] == 'q');
    }
    T_OK(shmchan_service_reply_reserve(srv, &rq, 2000, 0, &p));
    memset(p, 'r', 1999);
    T_OK(shmchan_service_reply_commit(srv, 1999, 0));
    T_ERR(shmchan_service_reply_commit(srv, 1, 0), SHMCHAN_ESTATE);
    size_t len = 0;
    shmchan_response info;
    uint8_t small[10];
    /* Too small: the response stays, its size is said. */
    T_ERR(shmchan_service_response(cl, small, sizeof(small), 0, &len, &info), SHMCHAN_EMSGSIZE);
    T_EQ_U64(len, 1999);
    T_EQ_U64(info.id, id);
    T_OK(shmchan_service_response(cl, buf, sizeof(buf), 0, &len, &info));
    T_EQ_U64(len, 1999);
    for (size_t i = 0; i < 1999; i++) {
        T_TRUE(buf[i] == 'r');
    }
    shmchan_service_close(cl);
    shmchan_service_close(srv);
}

TEST(service_bad_arguments_and_sizes)
{
    const char *n = t_name();
    shmchan_service *s = NULL;
    shmchan_opts o = sv_opts(SHMCHAN_CREATE | SHMCHAN_WORKER, 1, 1, 64);
    T_ERR(shmchan_service_open(n, &o, &s), SHMCHAN_EINVAL);
    o = sv_opts(SHMCHAN_CREATE | SHMCHAN_RDONLY, 1, 1, 64);
    T_ERR(shmchan_service_open(n, &o, &s), SHMCHAN_EINVAL);
    o = sv_opts(SHMCHAN_CREATE, 1, 1, 64);
    o.policy = SHMCHAN_POLICY_OVERWRITE;
    T_ERR(shmchan_service_open(n, &o, &s), SHMCHAN_EINVAL);
    T_ERR(shmchan_service_open(n, NULL, NULL), SHMCHAN_EINVAL);
    /* SHMCHAN_SERVER means nothing to the other kinds: refused, not ignored. */
    shmchan_queue *q = NULL;
    shmchan_latest *l = NULL;
    o = t_opts(SHMCHAN_CREATE | SHMCHAN_SERVER);
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EINVAL);
    T_ERR(shmchan_latest_open(n, &o, &l), SHMCHAN_EINVAL);
    shmchan_service *srv = sv_create(n, SHMCHAN_SERVER, 1, 1, 64);
    shmchan_service *cl = sv_open(n, 0);
    /* Slots are limited: one server, one client. */
    o = t_opts(SHMCHAN_SERVER);
    T_ERR(shmchan_service_open(n, &o, &s), SHMCHAN_ELIMIT);
    o = t_opts(0);
    T_ERR(shmchan_service_open(n, &o, &s), SHMCHAN_ELIMIT);
    /* Another kind's channel, another geometry. */
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EGEOMETRY);
    o = sv_opts(0, 0, 0, 128);
    T_ERR(shmchan_service_open(n, &o, &s), SHMCHAN_EGEOMETRY);
    uint8_t big[65];
    memset(big, 1, sizeof(big));
    T_ERR(shmchan_service_request(cl, big, 65, 0, NULL), SHMCHAN_EMSGSIZE);
    T_ERR(shmchan_service_request(cl, NULL, 1, 0, NULL), SHMCHAN_EINVAL);
    T_ERR(shmchan_service_request(NULL, "x", 1, 0, NULL), SHMCHAN_EINVAL);
    T_ERR(shmchan_service_request(srv, "x", 1, 0, NULL), SHMCHAN_EKIND);
    uint8_t buf[64];
    shmchan_request rq;
    T_ERR(shmchan_service_take(cl, buf, sizeof(buf), 0, &rq), SHMCHAN_EKIND);
    T_ERR(shmchan_service_take(srv, buf, sizeof(buf), 0, NULL), SHMCHAN_EINVAL);
    T_ERR(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq), SHMCHAN_EAGAIN);
    T_ERR(shmchan_service_reply(srv, &rq, "x", 1, 0, 0), SHMCHAN_ESTATE);
    T_ERR(shmchan_service_response(cl, buf, sizeof(buf), 0, NULL, NULL), SHMCHAN_ESTATE);
    T_ERR(shmchan_service_call(srv, "x", 1, buf, sizeof(buf), 0, NULL), SHMCHAN_EKIND);
    /* A request too big for the server's buf stays for a bigger one. */
    T_OK(shmchan_service_request(cl, big, 64, 0, NULL));
    T_ERR(shmchan_service_take(srv, buf, 10, 0, &rq), SHMCHAN_EMSGSIZE);
    T_EQ_U64(rq.len, 64);
    T_OK(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq));
    T_ERR(shmchan_service_reply(srv, &rq, "x", 1, 0x80, 0), SHMCHAN_EINVAL);
    shmchan_request other = rq;
    other.id++;
    T_ERR(shmchan_service_reply(srv, &other, "x", 1, 0, 0), SHMCHAN_EINVAL);
    T_ERR(shmchan_service_reply(srv, &rq, big, 65, 0, 0), SHMCHAN_EMSGSIZE);
    T_ERR(shmchan_service_call(cl, "x", 1, buf, sizeof(buf), 0, NULL), SHMCHAN_ESTATE);
    T_OK(shmchan_service_reply(srv, &rq, big, 64, 0, 0));
    T_OK(shmchan_service_response(cl, buf, sizeof(buf), 0, NULL, NULL));
    shmchan_service_close(cl);
    shmchan_service_close(srv);
    shmchan_service_close(NULL);
    T_EQ_U64(shmchan_service_max_msg(NULL), 0);
}

TEST(service_timeouts)
{
    const char *n = t_name();
    shmchan_service *srv = sv_create(n, SHMCHAN_SERVER, 1, 1, 64);
    shmchan_service *cl = sv_open(n, 0);
    uint8_t buf[64];
    shmchan_request rq;
    T_ERR(shmchan_service_take(srv, buf, sizeof(buf), 30, &rq), SHMCHAN_ETIMEDOUT);
    T_ERR(shmchan_service_call(cl, "x", 1, buf, sizeof(buf), 30, NULL), SHMCHAN_ETIMEDOUT);
    /* The request stays pending after the call's timeout. */
    T_ERR(shmchan_service_response(cl, buf, sizeof(buf), 0, NULL, NULL), SHMCHAN_EAGAIN);
    T_ERR(shmchan_service_response(cl, buf, sizeof(buf), 25, NULL, NULL), SHMCHAN_ETIMEDOUT);
    T_OK(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq));
    /* Taken and held by a live server: still only a timeout. */
    T_ERR(shmchan_service_response(cl, buf, sizeof(buf), 25, NULL, NULL), SHMCHAN_ETIMEDOUT);
    T_OK(shmchan_service_reply(srv, &rq, "y", 1, 0, 0));
    size_t len = 0;
    T_OK(shmchan_service_response(cl, buf, sizeof(buf), 0, &len, NULL));
    T_EQ_U64(len, 1);
    shmchan_service_close(cl);
    shmchan_service_close(srv);
}

/* A server that closes (or dies) holding a request: its client hears
 * SHMCHAN_EPEERDIED for that id; a reply to a client that left, or to the
 * next owner of its slot, is dropped with SHMCHAN_EPEERDIED. */
TEST(service_close_holding_and_replaced_client)
{
    const char *n = t_name();
    shmchan_service *srv = sv_create(n, SHMCHAN_SERVER, 2, 1, 64);
    shmchan_service *cl = sv_open(n, 0);
    uint64_t id = 0;
    T_OK(shmchan_service_request(cl, "r1", 2, 0, &id));
    uint8_t buf[64];
    shmchan_request rq;
    T_OK(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq));
    shmchan_service_close(srv);
    shmchan_response info;
    size_t len = 1;
    T_ERR(shmchan_service_response(cl, buf, sizeof(buf), SV_WAIT, &len, &info), SHMCHAN_EPEERDIED);
    T_EQ_U64(info.id, id);
    T_ERR(shmchan_service_response(cl, buf, sizeof(buf), 0, NULL, NULL), SHMCHAN_ESTATE);

    srv = sv_open(n, SHMCHAN_SERVER);
    T_OK(shmchan_service_request(cl, "r2", 2, 0, &id));
    T_OK(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq));
    shmchan_service_close(cl);
    /* A server trusts a client it found alive for 1 ms (docs/services.md,
     * "Crash semantics"); after that its next reply looks again. */
    t_sleep_ms(5);
    T_ERR(shmchan_service_reply(srv, &rq, "z", 1, 0, 0), SHMCHAN_EPEERDIED);
    /* The next owner of the slot: a late reply of the old request never reaches it. */
    cl = sv_open(n, 0);
    T_OK(shmchan_service_request(cl, "r3", 2, 0, &id));
    T_OK(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq));
    T_OK(shmchan_service_reply(srv, &rq, "ok", 2, 0, 0));
    T_OK(shmchan_service_response(cl, buf, sizeof(buf), 0, &len, &info));
    T_EQ_U64(info.id, id);
    T_MEMEQ(buf, "ok", 2);
    shmchan_service_close(cl);
    shmchan_service_close(srv);
}

/* ------------------------------------------------- separate processes */

/*
 * arg: "name". Serves until it takes "quit" (answered "bye"): requests
 * starting with 'S' get their answer as a stream of three parts (MORE)
 * and an empty last response; every other one the answer in one piece.
 */
HELPER(svc_server)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    shmchan_opts o = t_opts(SHMCHAN_SERVER);
    shmchan_service *s = NULL;
    if (shmchan_service_open(name, &o, &s) != SHMCHAN_OK) {
        return 3;
    }
    size_t cap = shmchan_service_max_msg(s);
    uint8_t *buf = malloc(cap), *ans = malloc(cap + 4);
    for (;;) {
        shmchan_request rq;
        int rc = shmchan_service_take(s, buf, cap, SV_WAIT * 3, &rq);
        if (rc != SHMCHAN_OK) {
            return 4;
        }
        if (rq.len == 4 && memcmp(rq.data, "quit", 4) == 0) {
            rc = shmchan_service_reply(s, &rq, "bye", 3, 0, SV_WAIT);
            shmchan_service_close(s);
            free(buf);
            free(ans);
            return rc == SHMCHAN_OK ? 0 : 5;
        }
        size_t alen = sv_answer(rq.data, (size_t)rq.len, ans);
        if (rq.len > 0 && ((const uint8_t *)rq.data)[0] == 'S') {
            size_t third = alen / 3;
            rc = shmchan_service_reply(s, &rq, ans, third, SHMCHAN_REPLY_MORE, SV_WAIT);
            rc = rc != SHMCHAN_OK ? rc
                                  : shmchan_service_reply(s, &rq, ans + third, third,
                                                          SHMCHAN_REPLY_MORE, SV_WAIT);
            rc = rc != SHMCHAN_OK ? rc
                                  : shmchan_service_reply(s, &rq, ans + 2 * third,
                                                          alen - 2 * third, SHMCHAN_REPLY_MORE,
                                                          SV_WAIT);
            rc = rc != SHMCHAN_OK ? rc : shmchan_service_reply(s, &rq, NULL, 0, 0, SV_WAIT);
        } else {
            rc = shmchan_service_reply(s, &rq, ans, alen, 0, SV_WAIT);
        }
        if (rc != SHMCHAN_OK && rc != SHMCHAN_EPEERDIED) {
            return 6;
        }
    }
}

/* One call checked byte for byte: 0, or a failure status. A stream's
 * parts are joined before the check. */
static int
sv_check_call(shmchan_service *c, uint32_t k, uint32_t i, size_t max, bool stream)
{
    uint8_t *req = malloc(max), *want = malloc(max + 4), *got = malloc(max + 4);
    size_t len = sv_request(k, i, req, max - 4 > 0 ? max - 4 : 0);
    if (stream && len > 0) {
        req[0] = 'S';
    } else if (len > 0 && req[0] == 'S') {
        req[0] = 'T';
    }
    size_t wlen = sv_answer(req, len, want), glen = 0;
    int status = 0;
    if (!stream) {
        int rc = shmchan_service_call(c, req, len, got, max + 4, SV_WAIT, &glen);
        status = rc != SHMCHAN_OK ? 20 : glen != wlen || memcmp(got, want, wlen) != 0 ? 21 : 0;
    } else {
        uint64_t id = 0;
        status = shmchan_service_request(c, req, len, SV_WAIT, &id) != SHMCHAN_OK ? 22 : 0;
        size_t at = 0;
        for (int parts = 0; status == 0; parts++) {
            shmchan_response info;
            size_t n = 0;
            int rc = shmchan_service_response(c, got + at, max + 4 - at, SV_WAIT, &n, &info);
            if (rc != SHMCHAN_OK || info.id != id || parts > 3) {
                status = 23;
                break;
            }
            at += n;
            if (!(info.flags & SHMCHAN_REPLY_MORE)) {
                status = parts != 3 || n != 0 || at != wlen || memcmp(got, want, wlen) != 0 ? 24
                                                                                           : 0;
                break;
            }
        }
    }
    free(req);
    free(want);
    free(got);
    return status;
}

/* arg: "name k calls": calls checked byte for byte, every 5th a stream,
 * every 7th two requests in flight at once. */
HELPER(svc_client)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    uint32_t k = t_arg_u32(arg, 1), calls = t_arg_u32(arg, 2);
    shmchan_opts o = t_opts(0);
    shmchan_service *c = NULL;
    if (shmchan_service_open(name, &o, &c) != SHMCHAN_OK) {
        return 3;
    }
    size_t max = shmchan_service_max_msg(c);
    for (uint32_t i = 0; i < calls; i++) {
        int st = sv_check_call(c, k, i, max, i % 5 == 4);
        if (st != 0) {
            return st;
        }
        if (i % 7 == 6) {
            uint64_t a = 0, b = 0;
            uint8_t in[2][8] = {{'p', (uint8_t)i}, {'q', (uint8_t)i}}, out[16];
            if (shmchan_service_request(c, in[0], 2, SV_WAIT, &a) != SHMCHAN_OK ||
                shmchan_service_request(c, in[1], 2, SV_WAIT, &b) != SHMCHAN_OK) {
                return 30;
            }
            for (int j = 0; j < 2; j++) {
                shmchan_response info;
                size_t n = 0;
                if (shmchan_service_response(c, out, sizeof(out), SV_WAIT, &n, &info) !=
                    SHMCHAN_OK) {
                    return 31;
                }
                const uint8_t *src = info.id == a ? in[0] : info.id == b ? in[1] : NULL;
                uint8_t want[16];
                if (src == NULL || n != sv_answer(src, 2, want) || memcmp(out, want, n) != 0) {
                    return 32;
                }
            }
        }
    }
    shmchan_service_close(c);
    return 0;
}

static void
sv_quit_servers(const char *n, int count)
{
    shmchan_service *c = sv_open(n, 0);
    for (int i = 0; i < count; i++) {
        char out[8];
        size_t len = 0;
        T_OK(shmchan_service_call(c, "quit", 4, out, sizeof(out), SV_WAIT, &len));
        T_EQ_U64(len, 3);
    }
    shmchan_service_close(c);
}

TEST(service_4_clients_3_servers_processes)
{
    const char *n = t_name();
    /* Kept open to the end: a named channel on Windows lives while a
     * handle does. */
    shmchan_service *keep = sv_create(n, 0, 4, 6, 3000);
    t_proc servers[3], clients[4];
    char arg[128];
    snprintf(arg, sizeof(arg), "%s", n);
    for (int i = 0; i < 3; i++) {
        servers[i] = t_spawn("svc_server", arg);
    }
    for (int k = 0; k < 4; k++) {
        snprintf(arg, sizeof(arg), "%s %d 150", n, k);
        clients[k] = t_spawn("svc_client", arg);
    }
    for (int k = 0; k < 4; k++) {
        T_EQ_U64(t_wait_bounded(clients[k], 120000), 0);
    }
    sv_quit_servers(n, 3);
    for (int i = 0; i < 3; i++) {
        T_EQ_U64(t_wait_bounded(servers[i], 60000), 0);
    }
    shmchan_info inf = {.struct_size = sizeof(inf)};
    T_OK(shmchan_info_get(n, 0, &inf));
    T_EQ_U64(inf.dead_readers + inf.dead_writers, 0);
    shmchan_service_close(keep);
}

/* arg: "name": sends "hang", then waits for ever without reading. */
HELPER(svc_hang_client)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    shmchan_opts o = t_opts(0);
    shmchan_service *c = NULL;
    if (shmchan_service_open(name, &o, &c) != SHMCHAN_OK ||
        shmchan_service_request(c, "hang", 4, SV_WAIT, NULL) != SHMCHAN_OK) {
        return 3;
    }
    for (;;) {
        t_sleep_ms(1000);
    }
}

/* A client killed with replies unread: the server's reply says
 * SHMCHAN_EPEERDIED at once; the next owner of its slot works, through a
 * reply ring the dead one had partly filled, lap after lap. */
TEST(service_dead_client_and_slot_reuse)
{
    const char *n = t_name();
    shmchan_service *srv = sv_create(n, SHMCHAN_SERVER, 1, 1, 1000);
    char arg[64];
    snprintf(arg, sizeof(arg), "%s", n);
    t_proc cp = t_spawn("svc_hang_client", arg);
    uint8_t buf[1000];
    shmchan_request rq;
    T_OK(shmchan_service_take(srv, buf, sizeof(buf), SV_WAIT, &rq));
    T_MEMEQ(rq.data, "hang", 4);
    memset(buf, 7, sizeof(buf));
    for (int i = 0; i < 10; i++) {
        T_OK(shmchan_service_reply(srv, &rq, buf, 900, SHMCHAN_REPLY_MORE, 0));
    }
    t_kill(cp);
    T_EQ_U64(t_wait(cp), t_killed_status());
    /* Replies go on into the dead client's ring while there is space (the
     * server trusts a live client for 1 ms at a time); the first one that
     * would wait for space looks, and the reply is dropped: no blocking. */
    int rc = SHMCHAN_OK;
    for (int i = 0; i < 200 && rc == SHMCHAN_OK; i++) {
        rc = shmchan_service_reply(srv, &rq, buf, 900, SHMCHAN_REPLY_MORE, SV_WAIT);
    }
    T_ERR(rc, SHMCHAN_EPEERDIED);
    T_ERR(shmchan_service_reply(srv, &rq, buf, 10, 0, 0), SHMCHAN_ESTATE);
    shmchan_service *cl = sv_open(n, 0);
    for (uint32_t i = 0; i < 300; i++) {
        uint8_t req[1000], ans[1004], out[1004];
        size_t len = sv_request(99, i, req, 990);
        uint64_t id = 0;
        T_OK(shmchan_service_request(cl, req, len, 0, &id));
        T_OK(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq));
        size_t alen = sv_answer(rq.data, (size_t)rq.len, ans);
        T_OK(shmchan_service_reply(srv, &rq, ans, alen, 0, 0));
        size_t got = 0;
        shmchan_response info;
        T_OK(shmchan_service_response(cl, out, sizeof(out), 0, &got, &info));
        T_EQ_U64(info.id, id);
        T_EQ_U64(got, alen);
        T_MEMEQ(out, ans, alen);
    }
    shmchan_service_close(cl);
    shmchan_service_close(srv);
}

/* A helper's server handle on the service named by arg, holding one request
 * it took (its body in buf); NULL when either step failed. */
static shmchan_service *
take_one(const char *arg, char *name, size_t name_cap, uint8_t *buf, size_t cap,
         shmchan_request *rq)
{
    t_arg_word(arg, 0, name, name_cap);
    shmchan_opts o = t_opts(SHMCHAN_SERVER);
    shmchan_service *s = NULL;
    if (shmchan_service_open(name, &o, &s) != SHMCHAN_OK) {
        return NULL;
    }
    if (shmchan_service_take(s, buf, cap, SV_WAIT, rq) != SHMCHAN_OK) {
        shmchan_service_close(s);
        return NULL;
    }
    return s;
}

/* arg: "name": takes one request, says "got" (MORE), then waits for ever. */
HELPER(svc_hold_server)
{
    char name[64];
    uint8_t buf[64];
    shmchan_request rq;
    shmchan_service *s = take_one(arg, name, sizeof(name), buf, sizeof(buf), &rq);
    if (s == NULL ||
        shmchan_service_reply(s, &rq, "got", 3, SHMCHAN_REPLY_MORE, SV_WAIT) != SHMCHAN_OK) {
        return 3;
    }
    for (;;) {
        t_sleep_ms(1000);
    }
}

/* A server killed holding a request: the client's wait ends with
 * SHMCHAN_EPEERDIED for that id (not ETIMEDOUT at its long timeout), and
 * its other request is still answered by another server. */
TEST(service_dead_server_holding_request)
{
    const char *n = t_name();
    shmchan_service *cl = sv_create(n, 0, 2, 1, 64);
    char arg[64];
    snprintf(arg, sizeof(arg), "%s", n);
    t_proc sp = t_spawn("svc_hold_server", arg);
    uint64_t id = 0, id2 = 0;
    T_OK(shmchan_service_request(cl, "first", 5, 0, &id));
    uint8_t out[64];
    size_t len = 0;
    shmchan_response info;
    T_OK(shmchan_service_response(cl, out, sizeof(out), SV_WAIT, &len, &info));
    T_EQ_U64(info.id, id);
    T_EQ_U64(info.flags, SHMCHAN_REPLY_MORE);
    T_MEMEQ(out, "got", 3);
    T_OK(shmchan_service_request(cl, "second", 6, 0, &id2));
    t_kill(sp);
    T_EQ_U64(t_wait(sp), t_killed_status());
    T_ERR(shmchan_service_response(cl, out, sizeof(out), SV_WAIT * 3, &len, &info),
          SHMCHAN_EPEERDIED);
    T_EQ_U64(info.id, id);
    /* The second one was never taken: another server answers it. */
    shmchan_service *srv = sv_open(n, SHMCHAN_SERVER);
    uint8_t buf[64];
    shmchan_request rq;
    T_OK(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq));
    T_EQ_U64(rq.id, id2);
    T_OK(shmchan_service_reply(srv, &rq, "2nd", 3, 0, 0));
    T_OK(shmchan_service_response(cl, out, sizeof(out), 0, &len, &info));
    T_EQ_U64(info.id, id2);
    T_MEMEQ(out, "2nd", 3);
    shmchan_service_close(srv);
    shmchan_service_close(cl);
}

/* arg: "name": takes one request and exits without answering it, after
 * starting svc_server, which serves what comes next (until "quit"). */
HELPER(svc_die_server)
{
    char name[64];
    uint8_t buf[64];
    shmchan_request rq;
    if (take_one(arg, name, sizeof(name), buf, sizeof(buf), &rq) == NULL) {
        return 3;
    }
    (void)t_spawn("svc_server", name);
    _Exit(0); /* dies holding the request: no close, no answer */
}

/* One call against a server that dies holding its request, which starts
 * a good server before dying: rc of the call and, when OK, its answer. */
static int
call_through_dying_server(uint32_t flags, uint8_t *out, size_t *len)
{
    const char *n = t_name();
    shmchan_service *cl = sv_create(n, flags, 2, 1, 64);
    t_proc die = t_spawn("svc_die_server", n);
    int rc = shmchan_service_call(cl, "job", 3, out, 64, SV_WAIT * 3, len);
    T_EQ_U64(t_wait(die), 0);
    uint8_t bye[64];
    size_t blen = 0;
    T_OK(shmchan_service_call(cl, "quit", 4, bye, sizeof(bye), SV_WAIT * 3, &blen));
    T_EQ_U64(blen, 3);
    shmchan_service_close(cl);
    return rc;
}

/* SHMCHAN_RESEND: the request of a server that died holding it goes to the
 * next server; without it the call fails with SHMCHAN_EPEERDIED. It is a
 * client's option (EINVAL for servers, queues and latest-value channels). */
TEST(service_resend_after_dead_server)
{
    uint8_t out[64], want[64];
    size_t len = 0;
    T_ERR(call_through_dying_server(0, out, &len), SHMCHAN_EPEERDIED);
    T_OK(call_through_dying_server(SHMCHAN_RESEND, out, &len));
    T_EQ_U64(len, sv_answer((const uint8_t *)"job", 3, want));
    T_MEMEQ(out, want, len);

    const char *n = t_name();
    shmchan_service *s = NULL;
    shmchan_opts o = sv_opts(SHMCHAN_CREATE | SHMCHAN_SERVER | SHMCHAN_RESEND, 1, 1, 64);
    T_ERR(shmchan_service_open(n, &o, &s), SHMCHAN_EINVAL);
    o = t_opts(SHMCHAN_CREATE | SHMCHAN_RESEND);
    shmchan_queue *q = NULL;
    shmchan_latest *l = NULL;
    T_ERR(shmchan_queue_open(n, &o, &q), SHMCHAN_EINVAL);
    T_ERR(shmchan_latest_open(n, &o, &l), SHMCHAN_EINVAL);
}

/* ------------------------------------------------------- hostile peer */

/* Forged reply headers (through the zero-copy pointer, as a hostile
 * server can): another generation, an id never sent, unknown flags. The
 * client drops each and still gets its real response. */
TEST(service_hostile_reply_headers)
{
    const char *n = t_name();
    shmchan_service *srv = sv_create(n, SHMCHAN_SERVER, 1, 2, 64);
    shmchan_service *cl = sv_open(n, 0);
    uint64_t id = 0;
    T_OK(shmchan_service_request(cl, "x", 1, 0, &id));
    uint8_t buf[64];
    shmchan_request rq;
    T_OK(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq));
    for (int k = 0; k < 3; k++) {
        void *p = NULL;
        T_OK(shmchan_service_reply_reserve(srv, &rq, 8, 0, &p));
        memcpy(p, "forged!!", 8);
        T_OK(shmchan_service_reply_commit(srv, 8, SHMCHAN_REPLY_MORE));
        uint8_t *h = (uint8_t *)p - 16; /* the reply header, in shared memory */
        if (k == 0) {
            h[8] ^= 1; /* generation */
        } else if (k == 1) {
            uint64_t bad = id + 1000;
            memcpy(h, &bad, 8);
        } else {
            h[12] = 0x40; /* flags */
        }
    }
    T_OK(shmchan_service_reply(srv, &rq, "real", 4, 0, 0));
    uint8_t out[64];
    size_t len = 0;
    shmchan_response info;
    T_OK(shmchan_service_response(cl, out, sizeof(out), 0, &len, &info));
    T_EQ_U64(info.id, id);
    T_EQ_U64(len, 4);
    T_MEMEQ(out, "real", 4);
    T_ERR(shmchan_service_response(cl, out, sizeof(out), 0, &len, &info), SHMCHAN_ESTATE);
    shmchan_service_close(cl);
    shmchan_service_close(srv);
}

/* A client that names another client's slot (and generation) in its
 * request, or forges it otherwise: the server never sees the request, so no
 * reply can be sent into the other client's ring. */
TEST(service_hostile_request_headers)
{
    const char *n = t_name();
    shmchan_service *srv = sv_create(n, SHMCHAN_SERVER, 1, 2, 64);
    shmchan_service *victim = sv_open(n, 0);
    shmchan_service *evil = sv_open(n, 0);
    /* The victim's header, to copy its slot and generation. */
    void *vp = NULL;
    T_OK(shmchan_service_request_reserve(victim, 1, 0, &vp));
    uint8_t vhdr[16];
    memcpy(vhdr, (uint8_t *)vp - 16, 16);
    T_OK(shmchan_service_request_commit(victim, 0, NULL));
    uint8_t buf[64];
    shmchan_request rq;
    T_OK(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq));
    T_OK(shmchan_service_reply(srv, &rq, "v", 1, 0, 0));
    for (int k = 0; k < 4; k++) {
        void *p = NULL;
        T_OK(shmchan_service_request_reserve(evil, 4, 0, &p));
        memcpy(p, "evil", 4);
        uint64_t id = 0;
        T_OK(shmchan_service_request_commit(evil, 4, &id));
        uint8_t *h = (uint8_t *)p - 16;
        if (k == 0) {
            memcpy(h + 8, vhdr + 8, 8); /* the victim's slot and generation */
        } else if (k == 1) {
            uint32_t big = 1000000;
            memcpy(h + 8, &big, 4);
        } else if (k == 2) {
            memset(h, 0, 8); /* id 0 */
        } else {
            h[12] ^= 0x5a; /* our slot, another generation */
        }
    }
    T_ERR(shmchan_service_take(srv, buf, sizeof(buf), 0, &rq), SHMCHAN_EAGAIN);
    uint8_t out[8];
    size_t len = 0;
    T_OK(shmchan_service_response(victim, out, sizeof(out), 0, &len, NULL));
    T_EQ_U64(len, 1);
    T_MEMEQ(out, "v", 1);
    T_ERR(shmchan_service_response(victim, out, sizeof(out), 0, &len, NULL), SHMCHAN_ESTATE);
    shmchan_service_close(evil);
    shmchan_service_close(victim);
    shmchan_service_close(srv);
}
