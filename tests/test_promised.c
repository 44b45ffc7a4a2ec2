/*
 * Promises of the README and docs that no other test checked (issue 19):
 * SHMCHAN_WAIT_FOREVER, and the slot generations that keep the cleanup of a
 * dead reader away from the slot's next owner. Written against the public
 * API only. The waits synchronise on the channel's own counters (a sleep is
 * counted before it starts), never on a sleep of the test.
 */
#include "t.h"
#include "test_queue_util.h"

/* Wait (bounded, 60 s) until the channel counts more than `above` sleeps. */
static int
await_sleep(const char *name, uint64_t above)
{
    shmchan_info info = {.struct_size = sizeof(info)};
    uint64_t end = t_now_ns() + UINT64_C(60000000000);
    do {
        if (shmchan_info_get(name, 0, &info) != SHMCHAN_OK || t_now_ns() > end) {
            return 1;
        }
        t_sleep_ms(1);
    } while (info.waits <= above);
    return 0;
}

/* arg: "name kind": once the test's waiter sleeps, publish (latest) or
 * send (queue) "forever". */
HELPER(promised_wake_forever)
{
    char name[64], kind[16];
    t_arg_word(arg, 0, name, sizeof(name));
    t_arg_word(arg, 1, kind, sizeof(kind));
    if (await_sleep(name, 0) != 0) {
        return 3;
    }
    int rc;
    if (strcmp(kind, "latest") == 0) {
        shmchan_latest *ch = NULL;
        rc = shmchan_latest_open(name, NULL, &ch);
        rc = rc != SHMCHAN_OK ? rc : shmchan_latest_publish(ch, "forever", 7, NULL);
        shmchan_latest_close(ch);
    } else {
        shmchan_queue *q = NULL;
        rc = shmchan_queue_open(name, NULL, &q);
        rc = rc != SHMCHAN_OK ? rc : shmchan_queue_send(q, "forever", 7, SHMCHAN_WAIT_FOREVER);
        shmchan_queue_close(q);
    }
    return rc == SHMCHAN_OK ? 0 : 1;
}

/* WAIT_FOREVER sleeps (it is no zero or short timeout) and returns the
 * message once a peer sends it: latest wait and read_next, queue recv. */
TEST(wait_forever_sleeps_until_woken)
{
    char arg[128], buf[16];
    size_t len = 0;
    uint64_t seq = 0;
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.spin_ns = SHMCHAN_SPIN_NONE;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    snprintf(arg, sizeof(arg), "%s latest", n);
    t_proc p = t_spawn("promised_wake_forever", arg);
    T_OK(shmchan_latest_read_next(ch, 0, buf, sizeof(buf), SHMCHAN_WAIT_FOREVER, &len, &seq));
    T_EQ_U64(seq, 1);
    T_EQ_U64(len, 7);
    T_MEMEQ(buf, "forever", 7);
    T_EQ_U64(t_wait_bounded(p, 60000), 0);
    shmchan_latest_close(ch);

    const char *qn = t_name();
    shmchan_queue *w = tq_create(qn, 4096, 64, SHMCHAN_POLICY_BLOCK);
    shmchan_opts so = t_opts(SHMCHAN_SUBSCRIBE);
    so.spin_ns = SHMCHAN_SPIN_NONE;
    shmchan_queue *r = NULL;
    T_OK(shmchan_queue_open(qn, &so, &r));
    snprintf(arg, sizeof(arg), "%s queue", qn);
    p = t_spawn("promised_wake_forever", arg);
    shmchan_msg m;
    T_OK(shmchan_queue_recv(r, buf, sizeof(buf), SHMCHAN_WAIT_FOREVER, &len, &m));
    T_EQ_U64(len, 7);
    T_MEMEQ(buf, "forever", 7);
    T_EQ_U64(t_wait_bounded(p, 60000), 0);
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_queue_info(r, &info));
    T_TRUE(info.waits >= 1); /* it slept: the helper sent only after that */
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

#define GEN_MSGS 300
#define GEN_STOP UINT32_MAX

/* arg: name. Subscribe and die at once: a dead owner of the only slot. */
HELPER(promised_gen_die)
{
    shmchan_opts o = t_opts(SHMCHAN_SUBSCRIBE);
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(arg, &o, &q) != SHMCHAN_OK) {
        return 1;
    }
    t_die();
    return 2;
}

/* arg: "name joined". Take the slot (retrying while the dead owner still
 * holds it), create the file joined, then receive until the stop message:
 * every message after the first must follow it with nothing lost, as for
 * any live subscriber in block mode. */
HELPER(promised_gen_join)
{
    char name[64], joined[512];
    t_arg_word(arg, 0, name, sizeof(name));
    t_arg_word(arg, 1, joined, sizeof(joined));
    shmchan_opts o = t_opts(SHMCHAN_SUBSCRIBE);
    shmchan_queue *q = NULL;
    int rc;
    uint64_t end = t_now_ns() + UINT64_C(60000000000);
    while ((rc = shmchan_queue_open(name, &o, &q)) != SHMCHAN_OK) {
        if (t_now_ns() > end) {
            fprintf(stderr, "gen join: %s\n", shmchan_errname(rc));
            return 3;
        }
    }
    FILE *f = fopen(joined, "wb");
    if (f == NULL || fclose(f) != 0) {
        return 6;
    }
    uint32_t next = 0, v = 0;
    bool first = true;
    for (;;) {
        size_t len = 0;
        shmchan_msg m;
        rc = shmchan_queue_recv(q, &v, sizeof(v), 30000, &len, &m);
        if (rc != SHMCHAN_OK || len != sizeof(v) || m.lost != 0) {
            fprintf(stderr, "gen join: %s, len %zu, lost %llu\n", shmchan_errname(rc), len,
                    (unsigned long long)m.lost);
            return 4;
        }
        if (v == GEN_STOP) {
            break;
        }
        if (!first && v != next) {
            fprintf(stderr, "gen join: got %u after %u\n", v, next - 1);
            return 5;
        }
        first = false;
        next = v + 1;
    }
    shmchan_queue_close(q);
    return 0;
}

/*
 * One reader slot. Its owner dies; a new subscriber takes the slot while a
 * writer, blocked by the dead owner's position, drops that owner. The drop
 * is a CAS that includes the slot's generation: were it not, a drop decided
 * about the dead owner could land on the new one, whom the writer would then
 * overwrite (the joiner would see a gap or lose its place). Many rounds, to
 * race the two.
 */
TEST(queue_slot_generation_protects_next_owner)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.capacity = 4096;
    o.max_msg = 16;
    o.max_readers = 1;
    shmchan_queue *w = NULL;
    T_OK(shmchan_queue_open(n, &o, &w));
    int rounds = 0;
    const char *joined = t_path();
    char arg[600];
    snprintf(arg, sizeof(arg), "%s %s", n, joined);
    /* At least 10 rounds; more for the stress time (SHMCHAN_STRESS_SECONDS). */
    for (uint64_t end = t_now_ns() + (uint64_t)(tq_seconds() * 1e9);
         rounds < 10 || (t_now_ns() < end && rounds < 1000); rounds++) {
        T_EQ_U64(t_wait_bounded(t_spawn("promised_gen_die", n), 60000), t_killed_status());
        (void)remove(joined);
        t_proc j = t_spawn("promised_gen_join", arg);
        for (uint32_t i = 0; i < GEN_MSGS; i++) {
            T_OK(shmchan_queue_send(w, &i, sizeof(i), 60000));
        }
        /* The stop goes out once the joiner is in (else it would miss it). */
        FILE *f;
        while ((f = fopen(joined, "rb")) == NULL) {
            T_TRUE(t_wait_timeout(j, 1) < 0);
        }
        fclose(f);
        uint32_t stop = GEN_STOP;
        T_OK(shmchan_queue_send(w, &stop, sizeof(stop), 60000));
        T_EQ_U64(t_wait_bounded(j, 60000), 0);
    }
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_queue_info(w, &info));
    printf("%d rounds, %llu dead readers recovered\n", rounds,
           (unsigned long long)info.recovered);
    T_TRUE(info.recovered >= 1);
    shmchan_queue_close(w);
}
