/*
 * Queues under SIGKILL chaos: writers killed at random points and between
 * reserve and commit, readers (subscribers and workers) killed at random,
 * many times over a few seconds (SHMCHAN_STRESS_SECONDS). Two subscribers
 * that are never killed must see every committed message exactly once, in
 * each writer's order, intact (block mode), and everybody left must finish.
 */
#include "t.h"
#include "test_queue_util.h"

typedef struct tq_head {
    uint32_t writer;
    uint32_t counter;
    uint32_t len;
    uint32_t sum;
} tq_head;

size_t tq_make(uint8_t *buf, uint32_t writer, uint32_t counter);
int tq_send_run(shmchan_queue *q, uint32_t id, uint32_t first, uint32_t n, int64_t timeout_ms);
int tq_verify(const uint8_t *buf, size_t len, tq_head *out);

#define CH_MAXMSG 512
#define CH_MAX_INC 4096 /* writer incarnations */
#define CH_PROGRESS_EVERY 8
#define CH_STOP UINT32_MAX
#define CH_MIN_KILLS 20
#define CH_ORPHAN_NS (60ull * 1000 * 1000 * 1000) /* outlive a dead test by at most this */

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * arg: "name inc progress mode". Sends messages counted from 0 and records
 * every 8th committed count in the progress file. mode 1: after a few
 * messages, reserve, scribble and die before committing.
 */
HELPER(queue_chaos_writer)
{
    char name[64], path[512];
    t_arg_word(arg, 0, name, sizeof(name));
    uint32_t inc = t_arg_u32(arg, 1), mode = t_arg_u32(arg, 3);
    t_arg_word(arg, 2, path, sizeof(path));
    FILE *f = fopen(path, "r+b"); /* one 4-byte slot per incarnation */
    shmchan_queue *q = NULL;
    if (f == NULL || shmchan_queue_open(name, NULL, &q) != SHMCHAN_OK) {
        return 3;
    }
    setvbuf(f, NULL, _IONBF, 0);
    uint64_t seed = 0x9E3779B97F4A7C15ull * (inc + 1);
    uint32_t stop_at = mode == 1 ? (uint32_t)(rnd(&seed) % 50) : UINT32_MAX;
    uint8_t buf[CH_MAXMSG];
    uint64_t give_up = t_now_ns() + (uint64_t)(tq_seconds() * 1e9) + CH_ORPHAN_NS;
    for (uint32_t c = 0; t_now_ns() < give_up; c++) { /* the test kills us long before */
        if (c == stop_at) {
            void *p = NULL;
            if (shmchan_queue_reserve(q, CH_MAXMSG, 2000, &p) == SHMCHAN_OK) {
                memset(p, 0xAB, CH_MAXMSG / 2);
                t_die();
            }
        }
        uint32_t first = c;
        int rc;
        if (c % 5 == 1) { /* some in batches of 4: several claims under one lock hold */
            rc = tq_send_run(q, inc, c, 4, 2000);
            c += 3;
        } else {
            size_t len = tq_make(buf, inc, c);
            do {
                rc = shmchan_queue_send(q, buf, len, 2000); /* keeps trying while blocked */
            } while (rc == SHMCHAN_ETIMEDOUT);
        }
        if (rc != SHMCHAN_OK) {
            fprintf(stderr, "chaos writer: %s\n", shmchan_errname(rc));
            return 1;
        }
        if ((c + 1) / CH_PROGRESS_EVERY != first / CH_PROGRESS_EVERY) {
            uint32_t done = c + 1;
            if (fseek(f, (long)inc * 4, SEEK_SET) != 0 || fwrite(&done, 4, 1, f) != 1) {
                return 4;
            }
        }
    }
    return 7;
}

/* arg: "name flags": receive and check until killed; pause now and then so
 * that writers in block mode wait for us. Exits 2 on a corrupted message. */
HELPER(queue_chaos_reader)
{
    char name[64];
    t_arg_word(arg, 0, name, sizeof(name));
    shmchan_opts o = t_opts(t_arg_u32(arg, 1));
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(name, &o, &q) != SHMCHAN_OK) {
        return 3;
    }
    uint64_t seed = (uint64_t)t_pid() * 0x2545F4914F6CDD1Dull | 1;
    uint8_t buf[4 * CH_MAXMSG];
    uint64_t give_up = t_now_ns() + (uint64_t)(tq_seconds() * 1e9) + CH_ORPHAN_NS;
    for (uint64_t call = 0; t_now_ns() < give_up; call++) {
        shmchan_msg msgs[4];
        size_t got = 0, len = 0;
        int rc;
        if (call % 2 == 0) {
            rc = shmchan_queue_recv(q, buf, sizeof(buf), 100, &len, &msgs[0]);
            msgs[0].data = buf;
            got = 1;
        } else {
            rc = shmchan_queue_recv_batch(q, buf, sizeof(buf), 4, 100, msgs, &got);
        }
        if (rc == SHMCHAN_ETIMEDOUT) {
            continue;
        }
        if (rc != SHMCHAN_OK) {
            return 1;
        }
        for (size_t i = 0; i < got; i++) {
            tq_head h;
            if (tq_verify(msgs[i].data, (size_t)msgs[i].len, &h) != 0) {
                return 2;
            }
        }
        if (rnd(&seed) % 64 == 0) {
            t_sleep_ms((int)(rnd(&seed) % 20));
        }
    }
    return 7;
}

/*
 * arg: "name out strict": a subscriber that is never killed. Checks every
 * message; strict (block mode): each writer's counters contiguous from 0, no
 * message lost; else increasing. Ends at a stop message and writes
 * "inc count" lines, an "errors N" and a "lost N" line (overwritten messages
 * the queue reported).
 */
HELPER(queue_chaos_stable)
{
    char name[64], out[512];
    t_arg_word(arg, 0, name, sizeof(name));
    t_arg_word(arg, 1, out, sizeof(out));
    bool strict = t_arg_u32(arg, 2) != 0;
    shmchan_opts o = t_opts(SHMCHAN_SUBSCRIBE);
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(name, &o, &q) != SHMCHAN_OK) {
        return 3;
    }
    static uint32_t next[CH_MAX_INC], count[CH_MAX_INC];
    uint64_t errors = 0, last_seq = 0, lost = 0;
    uint8_t buf[CH_MAXMSG];
    for (;;) {
        size_t len = 0;
        shmchan_msg m;
        int rc = shmchan_queue_recv(q, buf, sizeof(buf), 30000, &len, &m);
        if (rc != SHMCHAN_OK) {
            fprintf(stderr, "stable subscriber: %s\n", shmchan_errname(rc));
            return 1;
        }
        tq_head h;
        if (tq_verify(buf, len, &h) != 0 || m.seq < last_seq + 1 + m.lost ||
            (strict && m.lost != 0)) {
            errors++;
            continue;
        }
        last_seq = m.seq;
        lost += m.lost;
        if (h.writer == CH_STOP) {
            break;
        }
        if (h.writer >= CH_MAX_INC || (strict ? h.counter != next[h.writer]
                                              : h.counter < next[h.writer])) {
            errors++;
            continue;
        }
        next[h.writer] = h.counter + 1;
        count[h.writer]++;
    }
    shmchan_queue_close(q);
    FILE *f = fopen(out, "w");
    if (f == NULL) {
        return 6;
    }
    for (uint32_t i = 0; i < CH_MAX_INC; i++) {
        if (count[i] != 0) {
            fprintf(f, "%u %u\n", i, count[i]);
        }
    }
    fprintf(f, "errors %llu\nlost %llu\n", (unsigned long long)errors,
            (unsigned long long)lost);
    fclose(f);
    return 0;
}

typedef struct chaos_proc {
    t_proc pid;
    int kind; /* 0 writer, 1 dying writer, 2 subscriber, 3 worker */
    bool live;
} chaos_proc;

static void
spawn(chaos_proc *p, int kind, const char *name, uint32_t *inc, const char *progress)
{
    char arg[700];
    p->kind = kind;
    p->live = true;
    if (kind <= 1) {
        T_TRUE(*inc < CH_MAX_INC);
        snprintf(arg, sizeof(arg), "%s %u %s %d", name, *inc, progress, kind);
        (*inc)++;
        p->pid = t_spawn("queue_chaos_writer", arg);
    } else {
        snprintf(arg, sizeof(arg), "%s %u", name,
                 kind == 2 ? SHMCHAN_SUBSCRIBE : SHMCHAN_WORKER);
        p->pid = t_spawn("queue_chaos_reader", arg);
    }
}

/* A chaos process ended: every one ends by SIGKILL, ours or its own. */
static void
reap(chaos_proc *p, int status)
{
    if (status != t_killed_status()) {
        t_fail(__FILE__, __LINE__, "chaos process (kind %d) ended with %d", p->kind, status);
    }
    p->live = false;
}

static void
progress_read(const char *path, uint32_t *v, size_t n)
{
    FILE *f = fopen(path, "rb");
    T_TRUE(f != NULL && fread(v, 4, n, f) == n);
    fclose(f);
}

static void
chaos(uint32_t policy)
{
    enum { NPROC = 6, NSTABLE = 2 };
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.capacity = 16384;
    o.max_msg = CH_MAXMSG;
    o.policy = policy;
    o.max_readers = 16;
    o.max_writers = 16;
    shmchan_queue *q = NULL;
    T_OK(shmchan_queue_open(n, &o, &q));
    bool strict = policy == SHMCHAN_POLICY_BLOCK;
    const char *out[NSTABLE];
    t_proc stable[NSTABLE];
    char arg[700];
    for (int i = 0; i < NSTABLE; i++) {
        out[i] = t_path();
        snprintf(arg, sizeof(arg), "%s %s %d", n, out[i], strict);
        stable[i] = t_spawn("queue_chaos_stable", arg);
    }
    for (int i = 0; i < 20000; i++) {
        shmchan_info info;
        tq_info(n, &info);
        if (info.readers == NSTABLE) {
            break;
        }
        t_sleep_ms(1);
    }
    const char *progress = t_path();
    FILE *pf = fopen(progress, "wb");
    static uint32_t zeros[CH_MAX_INC];
    T_TRUE(pf != NULL && fwrite(zeros, 4, CH_MAX_INC, pf) == CH_MAX_INC);
    fclose(pf);
    uint32_t inc = 0, kills = 0;
    chaos_proc procs[NPROC];
    static const int kinds[NPROC] = {0, 0, 1, 1, 2, 3};
    for (int i = 0; i < NPROC; i++) {
        spawn(&procs[i], kinds[i], n, &inc, progress);
    }
    uint64_t seed = 88172645463325252ull ^ (uint64_t)t_pid();
    uint64_t end = t_now_ns() + (uint64_t)(tq_seconds() * 1e9);
    uint32_t died = 0; /* dying writers that got to die on their own */
    /* As long as the time asks, and at least as many kills as a slow
     * machine (Wine starts processes slowly) needs for the checks below. */
    while (t_now_ns() < end || kills < CH_MIN_KILLS || died == 0) {
        t_sleep_ms(1 + (int)(rnd(&seed) % 15));
        for (int i = 0; i < NPROC; i++) {
            int st = t_wait_timeout(procs[i].pid, 0);
            if (st >= 0) {
                reap(&procs[i], st);
                T_EQ_U64(procs[i].kind, 1); /* only dying writers end by themselves */
                died++;
                spawn(&procs[i], procs[i].kind, n, &inc, progress);
            }
        }
        chaos_proc *victim = &procs[rnd(&seed) % NPROC];
        t_kill(victim->pid);
        reap(victim, t_wait(victim->pid));
        kills++;
        spawn(victim, victim->kind, n, &inc, progress);
    }
    for (int i = 0; i < NPROC; i++) {
        t_kill(procs[i].pid);
        reap(&procs[i], t_wait(procs[i].pid));
    }
    /* Nothing is wedged: a send goes through and every survivor finishes. */
    tq_head stop = {CH_STOP, 0, sizeof(tq_head), 0};
    T_OK(shmchan_queue_send(q, &stop, sizeof(stop), 20000));
    static uint32_t got[NSTABLE][CH_MAX_INC];
    unsigned long long lost[NSTABLE];
    for (int i = 0; i < NSTABLE; i++) {
        T_EQ_U64(t_wait_bounded(stable[i], 60000), 0);
        FILE *f = fopen(out[i], "r");
        T_TRUE(f != NULL);
        unsigned a, b;
        while (fscanf(f, "%u %u", &a, &b) == 2) {
            T_TRUE(a < CH_MAX_INC);
            got[i][a] = b;
        }
        unsigned long long errors = 99;
        T_TRUE(fscanf(f, "errors %llu lost %llu", &errors, &lost[i]) == 2);
        fclose(f);
        T_EQ_U64(errors, 0); /* no corrupted, duplicated or (block) lost message */
    }
    uint64_t total[NSTABLE] = {0}, progressed = 0;
    uint32_t late = 0; /* incarnations of the second half that reached a subscriber */
    static uint32_t prog[CH_MAX_INC];
    progress_read(progress, prog, CH_MAX_INC);
    for (uint32_t i = 0; i < inc; i++) {
        uint32_t p = prog[i];
        progressed += p;
        for (int j = 0; j < NSTABLE; j++) {
            total[j] += got[j][i];
        }
        late += i >= inc / 2 && got[0][i] != 0 && got[1][i] != 0;
        if (strict) {
            T_TRUE(got[0][i] >= p); /* every committed message arrived */
            T_EQ_U64(got[0][i], got[1][i]);
        }
    }
    /* Lower bounds a queue that delivers nothing cannot meet. The marks
     * prove commits (else `got >= p` checked nothing); in overwrite mode
     * each committed message was received or reported lost; and both
     * subscribers kept receiving after many crashes, from writers started
     * in the second half of the run. */
    T_TRUE(progressed > 0);
    for (int j = 0; j < NSTABLE; j++) {
        T_TRUE(total[j] > 0);
        T_TRUE(total[j] + lost[j] >= progressed);
    }
    T_TRUE(late > 0);
    shmchan_info info;
    tq_info(n, &info);
    printf("%u kills, %u writers, %llu and %llu messages to the subscribers (%llu and %llu "
           "lost), %u late writers reached both, %llu recovered\n", kills, inc,
           (unsigned long long)total[0], (unsigned long long)total[1], lost[0], lost[1], late,
           (unsigned long long)info.recovered);
    printf("%llu messages committed before the progress marks\n",
           (unsigned long long)progressed);
    T_TRUE(info.recovered > 0); /* at least the reservations left by dying writers */
    shmchan_queue_close(q);
}

TEST(queue_chaos_block)
{
    chaos(SHMCHAN_POLICY_BLOCK);
}

TEST(queue_chaos_overwrite)
{
    chaos(SHMCHAN_POLICY_OVERWRITE);
}
