/*
 * Services under kill chaos (in the style of test_queue_chaos.c): servers
 * killed at random (also while holding a request, and dying on their own
 * with a response claimed and half written), clients killed at random (also
 * with a request claimed and unfinished), for SHMCHAN_STRESS_SECONDS. Two
 * clients that are never killed check every call: it either completes with
 * exactly the right bytes, or fails with SHMCHAN_EPEERDIED (its server
 * died) or SHMCHAN_ETIMEDOUT; nothing else, and never another's bytes.
 */
#include "t.h"
#include "test_queue_util.h"

#define SC_MAXMSG 600
#define SC_SERVERS 3
#define SC_VICTIMS 2
#define SC_STABLE 2
#define SC_CALL_MS 3000
#define SC_MIN_KILLS 10
#define SC_ORPHAN_NS (60ull * 1000 * 1000 * 1000) /* outlive a dead test by at most this */

static uint64_t
sc_rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The servers' answer: every byte xor 0x5A, reversed, then 8 bytes of a
 * checksum of the request (so that a response to another request of the
 * same length never passes). Streams ('S' first) come in two parts. */
static size_t
sc_answer(const uint8_t *req, size_t len, uint8_t *out)
{
    uint64_t sum = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        out[len - 1 - i] = (uint8_t)(req[i] ^ 0x5A);
        sum = (sum ^ req[i]) * 1099511628211ull;
    }
    memcpy(out + len, &sum, 8);
    return len + 8;
}

/* arg: "name seed": serve until killed; now and then die on our own right
 * after taking a request, or with a response reserved and half written. */
HELPER(svc_chaos_server)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    uint64_t seed = 0x9E3779B97F4A7C15ull * (t_arg_u32(arg, 1) + 1);
    shmchan_opts o = t_opts(SHMCHAN_SERVER);
    shmchan_service *s = NULL;
    if (shmchan_service_open(name, &o, &s) != SHMCHAN_OK) {
        return 3;
    }
    uint8_t buf[SC_MAXMSG], ans[SC_MAXMSG + 8];
    uint64_t give_up = t_now_ns() + (uint64_t)(tq_seconds() * 1e9) + SC_ORPHAN_NS;
    while (t_now_ns() < give_up) {
        shmchan_request rq;
        int rc = shmchan_service_take(s, buf, sizeof(buf), 200, &rq);
        if (rc == SHMCHAN_ETIMEDOUT) {
            continue;
        }
        if (rc != SHMCHAN_OK) {
            fprintf(stderr, "chaos server: take %s\n", shmchan_errname(rc));
            return 1;
        }
        uint64_t r = sc_rnd(&seed) % 200;
        if (r == 0) {
            t_die(); /* holding the request */
        }
        size_t alen = sc_answer(rq.data, (size_t)rq.len, ans);
        if (r == 1) {
            void *p = NULL;
            if (shmchan_service_reply_reserve(s, &rq, alen, 1000, &p) == SHMCHAN_OK) {
                memset(p, 0xEE, alen / 2);
                t_die(); /* a response claimed, never committed */
            }
        }
        bool stream = rq.len > 0 && ((const uint8_t *)rq.data)[0] == 'S';
        size_t first = stream ? alen / 2 : alen;
        rc = shmchan_service_reply(s, &rq, ans, first, stream ? SHMCHAN_REPLY_MORE : 0,
                                   SC_CALL_MS);
        if (rc == SHMCHAN_OK && stream) {
            rc = shmchan_service_reply(s, &rq, ans + first, alen - first, 0, SC_CALL_MS);
        }
        if (rc != SHMCHAN_OK && rc != SHMCHAN_EPEERDIED && rc != SHMCHAN_ETIMEDOUT) {
            fprintf(stderr, "chaos server: reply %s\n", shmchan_errname(rc));
            return 1;
        }
        if (rc == SHMCHAN_ETIMEDOUT) {
            /* The client stopped reading: give the request up by closing. */
            shmchan_service_close(s);
            if (shmchan_service_open(name, &o, &s) != SHMCHAN_OK) {
                return 3;
            }
        }
    }
    return 7;
}

/* One call (a stream when 'S' leads), checked. 0: right bytes; 1:
 * EPEERDIED; 2: ETIMEDOUT (the handle must be reopened: its request may
 * still be pending); -1: anything else, or wrong bytes. */
static int
sc_call(shmchan_service *c, uint64_t *seed)
{
    uint8_t req[SC_MAXMSG - 8], want[SC_MAXMSG], got[SC_MAXMSG];
    size_t len = (size_t)(sc_rnd(seed) % sizeof(req));
    for (size_t i = 0; i < len; i++) {
        req[i] = (uint8_t)sc_rnd(seed);
    }
    bool stream = len > 0 && sc_rnd(seed) % 3 == 0;
    if (len > 0) {
        req[0] = stream ? 'S' : 'C';
    }
    size_t wlen = sc_answer(req, len, want);
    uint64_t id = 0;
    int rc = shmchan_service_request(c, req, len, SC_CALL_MS, &id);
    size_t at = 0;
    while (rc == SHMCHAN_OK) {
        shmchan_response info;
        size_t n = 0;
        rc = shmchan_service_response(c, got + at, sizeof(got) - at, SC_CALL_MS, &n, &info);
        if (rc == SHMCHAN_EPEERDIED && info.id != id) {
            fprintf(stderr, "chaos client: EPEERDIED for id %llu, not %llu\n",
                    (unsigned long long)info.id, (unsigned long long)id);
            return -1;
        }
        if (rc != SHMCHAN_OK) {
            break;
        }
        if (info.id != id || info.flags & SHMCHAN_REPLY_ERROR) {
            fprintf(stderr, "chaos client: response to id %llu, flags %u\n",
                    (unsigned long long)info.id, info.flags);
            return -1;
        }
        at += n;
        if (!(info.flags & SHMCHAN_REPLY_MORE)) {
            if (at != wlen || memcmp(got, want, wlen) != 0) {
                fprintf(stderr, "chaos client: wrong bytes (%zu, want %zu)\n", at, wlen);
                return -1;
            }
            return 0;
        }
    }
    if (rc == SHMCHAN_EPEERDIED) {
        return 1;
    }
    if (rc == SHMCHAN_ETIMEDOUT) {
        fprintf(stderr, "  chaos client: timed out %s id %llu (%zu bytes of a %s)\n",
                id == 0 ? "sending" : "waiting for", (unsigned long long)id, at,
                stream ? "stream" : "call");
        return 2;
    }
    fprintf(stderr, "chaos client: %s\n", shmchan_errname(rc));
    return -1;
}

/* arg: "name seed stable": calls until the time is up (stable) or until
 * killed (victim: sometimes dies with a request reserved). Exit 0 when
 * every call was right; stable clients print their counts. */
HELPER(svc_chaos_client)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    uint64_t seed = 0x2545F4914F6CDD1Dull * (t_arg_u32(arg, 1) + 1);
    bool stable = t_arg_u32(arg, 2) != 0;
    shmchan_opts o = t_opts(0);
    shmchan_service *c = NULL;
    if (shmchan_service_open(name, &o, &c) != SHMCHAN_OK) {
        return 3;
    }
    uint64_t end = t_now_ns() + (uint64_t)(tq_seconds() * 1e9);
    uint64_t give_up = end + SC_ORPHAN_NS;
    uint64_t ok = 0, died = 0, timed_out = 0;
    while (stable ? t_now_ns() < end : t_now_ns() < give_up) {
        if (!stable && sc_rnd(&seed) % 300 == 0) {
            void *p = NULL;
            if (shmchan_service_request_reserve(c, 100, 1000, &p) == SHMCHAN_OK) {
                memset(p, 0xCC, 50);
                t_die();
            }
        }
        int r = sc_call(c, &seed);
        if (r < 0) {
            return 2;
        }
        ok += r == 0;
        died += r == 1;
        timed_out += r == 2;
        if (r == 2) {
            shmchan_service_close(c);
            if (shmchan_service_open(name, &o, &c) != SHMCHAN_OK) {
                return 3;
            }
        }
    }
    shmchan_service_close(c);
    printf("  stable client: %llu right, %llu EPEERDIED, %llu ETIMEDOUT\n",
           (unsigned long long)ok, (unsigned long long)died, (unsigned long long)timed_out);
    return ok > 0 ? 0 : 4;
}

static t_proc
sc_spawn(const char *helper, const char *n, uint32_t seed, int stable)
{
    char arg[128];
    snprintf(arg, sizeof(arg), "%s %u %d", n, seed, stable);
    return t_spawn(helper, arg);
}

TEST(service_chaos)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.max_msg = SC_MAXMSG;
    o.max_readers = SC_SERVERS + 1;
    o.max_writers = SC_VICTIMS + SC_STABLE + 2;
    o.capacity = 16384;
    shmchan_service *keep = NULL;
    T_OK(shmchan_service_open(n, &o, &keep)); /* a client that never calls */
    uint32_t seed = 1;
    t_proc servers[SC_SERVERS], victims[SC_VICTIMS], stable[SC_STABLE];
    for (int i = 0; i < SC_SERVERS; i++) {
        servers[i] = sc_spawn("svc_chaos_server", n, seed++, 0);
    }
    for (int i = 0; i < SC_VICTIMS; i++) {
        victims[i] = sc_spawn("svc_chaos_client", n, seed++, 0);
    }
    for (int i = 0; i < SC_STABLE; i++) {
        stable[i] = sc_spawn("svc_chaos_client", n, seed++, 1);
    }
    uint64_t rs = 0xC4A05ull;
    uint64_t end = t_now_ns() + (uint64_t)(tq_seconds() * 1e9);
    int kills = 0, deaths = 0;
    /* At least SC_MIN_KILLS kills, however slowly processes start (Wine). */
    uint64_t hard_end = end + SC_ORPHAN_NS / 2;
    while (t_now_ns() < end || (kills < SC_MIN_KILLS && t_now_ns() < hard_end)) {
        t_sleep_ms(5 + (int)(sc_rnd(&rs) % 40));
        /* Servers that died on their own come back; so do killed ones. */
        for (int i = 0; i < SC_SERVERS; i++) {
            int st = t_wait_timeout(servers[i], 0);
            if (st >= 0) {
                T_TRUE(st != 1 && st != 3); /* a protocol failure, not a death */
                deaths++;
                servers[i] = sc_spawn("svc_chaos_server", n, seed++, 0);
            }
        }
        for (int i = 0; i < SC_VICTIMS; i++) {
            int st = t_wait_timeout(victims[i], 0);
            if (st >= 0) {
                T_TRUE(st != 2 && st != 3);
                deaths++;
                victims[i] = sc_spawn("svc_chaos_client", n, seed++, 0);
            }
        }
        uint64_t r = sc_rnd(&rs) % 3;
        if (r == 0) {
            int i = (int)(sc_rnd(&rs) % SC_SERVERS);
            t_kill(servers[i]);
            T_EQ_U64(t_wait(servers[i]), t_killed_status());
            servers[i] = sc_spawn("svc_chaos_server", n, seed++, 0);
            kills++;
        } else if (r == 1) {
            int i = (int)(sc_rnd(&rs) % SC_VICTIMS);
            t_kill(victims[i]);
            int st = t_wait(victims[i]);
            T_TRUE(st != 2 && st != 3);
            victims[i] = sc_spawn("svc_chaos_client", n, seed++, 0);
            kills++;
        }
    }
    /* Servers still come back while the stable clients finish their calls. */
    uint64_t bound = t_now_ns() + 120ull * 1000 * 1000 * 1000;
    bool finished[SC_STABLE] = {false};
    for (int done = 0; done < SC_STABLE;) {
        T_TRUE(t_now_ns() < bound);
        t_sleep_ms(5);
        for (int i = 0; i < SC_SERVERS; i++) {
            int st = t_wait_timeout(servers[i], 0);
            if (st >= 0) {
                T_TRUE(st != 1 && st != 3);
                servers[i] = sc_spawn("svc_chaos_server", n, seed++, 0);
            }
        }
        done = 0;
        for (int i = 0; i < SC_STABLE; i++) {
            if (!finished[i]) {
                int st = t_wait_timeout(stable[i], 0);
                if (st >= 0) {
                    T_EQ_U64(st, 0);
                    finished[i] = true;
                }
            }
            done += finished[i];
        }
    }
    for (int i = 0; i < SC_SERVERS; i++) {
        t_kill(servers[i]);
        (void)t_wait(servers[i]);
    }
    for (int i = 0; i < SC_VICTIMS; i++) {
        t_kill(victims[i]);
        int st = t_wait(victims[i]);
        T_TRUE(st != 2 && st != 3);
    }
    printf("  %d kills, %d deaths of their own\n", kills, deaths);
    T_TRUE(kills >= SC_MIN_KILLS);
    shmchan_service_close(keep);
}
