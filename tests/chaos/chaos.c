/*
 * shmchan_chaos: the crash-chaos driver (see chaos.h for the design).
 *
 *   shmchan_chaos [SECONDS] [SEED]
 *
 * SECONDS (default SHMCHAN_CHAOS_SECONDS, else 60) bounds the whole run; it
 * runs rounds until the time is spent, cycling through the kinds of channel.
 * Prints one line per round and closes with "chaos: N passed, N failed"
 * (rounds). Exit status 0 only if every round passed.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "chaos.h"

#define WRITER_BOUND_MS 15000 /* a writer's last send may wait 10 s for space */
#define READER_BOUND_MS 5000
#define READY_BOUND_MS 5000

chaos_board *chaos_b;

typedef enum {
    KIND_LATEST,
    KIND_LATEST_CREATE_RACE,
    KIND_QUEUE_BLOCK,
    KIND_QUEUE_WORKERS,
    KIND_QUEUE_OVERWRITE,
    KIND_COUNT
} round_kind;

static const char *const kind_names[] = {"latest", "latest-create-race", "queue-block",
                                         "queue-workers", "queue-overwrite"};

typedef struct {
    pid_t pid; /* 0: slot free */
    int role;
    bool killable;
} child;

typedef struct {
    round_kind kind;
    chaos_chan chan;
    child kids[CHAOS_SLOTS];
    int next_inc;
    int kills, restarts, worker_kills;
    bool failed;
    uint64_t rng;
} round_state;

/* Totals over the run. */
static struct {
    int rounds, passed, failed, kills, restarts;
    uint64_t checked, committed;
} total;

static bool
is_writer(int role)
{
    return role == ROLE_LATEST_WRITER || role == ROLE_QUEUE_WRITER;
}

static int
run_child(chaos_slot *s, const chaos_chan *c, uint64_t seed)
{
    switch (atomic_load(&s->role)) {
    case ROLE_LATEST_WRITER:
        return chaos_latest_writer(s, c, seed);
    case ROLE_LATEST_READER:
    case ROLE_LATEST_STABLE:
        return chaos_latest_reader(s, c, seed);
    case ROLE_QUEUE_WRITER:
        return chaos_queue_writer(s, c, seed);
    default:
        return chaos_queue_reader(s, c, seed);
    }
}

/* Start a process of role in a free slot; returns the slot or -1. */
static int
spawn(round_state *r, int role, bool killable, int stable_index)
{
    int i = 0;
    while (i < CHAOS_SLOTS && r->kids[i].pid != 0) {
        i++;
    }
    if (i == CHAOS_SLOTS || (is_writer(role) && r->next_inc >= CHAOS_INCS)) {
        return -1;
    }
    chaos_slot *s = &chaos_b->slots[i];
    memset(s, 0, sizeof(*s));
    atomic_store(&s->role, role);
    atomic_store(&s->inc, is_writer(role) ? r->next_inc++ : stable_index);
    uint64_t seed = chaos_rand(&r->rng) | 1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "chaos: fork: %s\n", strerror(errno));
        exit(2);
    }
    if (pid == 0) {
        _exit(run_child(s, &r->chan, seed));
    }
    r->kids[i] = (child){pid, role, killable};
    return i;
}

static void
report_child(round_state *r, int i, const char *what)
{
    chaos_slot *s = &chaos_b->slots[i];
    printf("  FAIL pid %d (role %d): %s%s%s\n", (int)r->kids[i].pid, r->kids[i].role, what,
           s->failure[0] ? ": " : "", s->failure);
    r->failed = true;
}

/* Collect a child that ended; a non-zero status or a failure fails the round. */
static void
collect(round_state *r, int i, int status)
{
    chaos_slot *s = &chaos_b->slots[i];
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || atomic_load(&s->failures) != 0) {
        char what[64];
        if (WIFSIGNALED(status)) {
            snprintf(what, sizeof(what), "died of signal %d", WTERMSIG(status));
        } else {
            snprintf(what, sizeof(what), "exit status %d", WEXITSTATUS(status));
        }
        report_child(r, i, what);
    }
    total.checked += atomic_load(&s->checked);
    r->kids[i].pid = 0;
}

static void
reap_exited(round_state *r)
{
    for (int i = 0; i < CHAOS_SLOTS; i++) {
        int st;
        if (r->kids[i].pid != 0 && waitpid(r->kids[i].pid, &st, WNOHANG) == r->kids[i].pid) {
            collect(r, i, st);
        }
    }
}

static void
kill_one(round_state *r)
{
    int live[CHAOS_SLOTS], n = 0;
    for (int i = 0; i < CHAOS_SLOTS; i++) {
        if (r->kids[i].pid != 0 && r->kids[i].killable) {
            live[n++] = i;
        }
    }
    if (n == 0) {
        return;
    }
    int i = live[chaos_rand(&r->rng) % (uint64_t)n];
    child k = r->kids[i];
    kill(k.pid, SIGKILL);
    int st;
    while (waitpid(k.pid, &st, 0) < 0 && errno == EINTR) {
    }
    chaos_slot *s = &chaos_b->slots[i];
    if (is_writer(k.role)) {
        atomic_store(&chaos_b->killed[atomic_load(&s->inc)], 1);
    }
    r->worker_kills += k.role == ROLE_QUEUE_WORKER;
    r->kills++;
    total.checked += atomic_load(&s->checked);
    /* A failure it recorded before dying still counts. */
    if (atomic_load(&s->failures) != 0) {
        report_child(r, i, "failed before it was killed");
    }
    r->kids[i].pid = 0;
    if (chaos_rand(&r->rng) % 4 != 0 && spawn(r, k.role, true, 0) >= 0) {
        r->restarts++;
    }
}

static void
sleep_us(uint64_t us)
{
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Wait for every child of the given kind (writers or not) within bound_ms. */
static void
finish(round_state *r, bool writers, int bound_ms)
{
    uint64_t end = chaos_now_ns() + (uint64_t)bound_ms * 1000000u;
    for (;;) {
        reap_exited(r);
        bool left = false;
        for (int i = 0; i < CHAOS_SLOTS; i++) {
            left |= r->kids[i].pid != 0 && is_writer(r->kids[i].role) == writers;
        }
        if (!left) {
            return;
        }
        if (chaos_now_ns() > end) {
            break;
        }
        sleep_us(1000);
    }
    for (int i = 0; i < CHAOS_SLOTS; i++) {
        if (r->kids[i].pid != 0 && is_writer(r->kids[i].role) == writers) {
            report_child(r, i, "did not finish in time (deadlock?)");
            kill(r->kids[i].pid, SIGKILL);
            waitpid(r->kids[i].pid, NULL, 0);
            r->kids[i].pid = 0;
        }
    }
}

static bool
wait_ready(round_state *r)
{
    uint64_t end = chaos_now_ns() + (uint64_t)READY_BOUND_MS * 1000000u;
    for (;;) {
        bool all = true;
        for (int i = 0; i < CHAOS_SLOTS; i++) {
            all &= r->kids[i].pid == 0 || atomic_load(&chaos_b->slots[i].ready) != 0;
        }
        if (all) {
            return true;
        }
        if (chaos_now_ns() > end) {
            printf("  FAIL: readers did not open the queue within %d ms\n", READY_BOUND_MS);
            r->failed = true;
            return false;
        }
        sleep_us(500);
    }
}

static void
start_roles(round_state *r)
{
    switch (r->kind) {
    case KIND_LATEST:
    case KIND_LATEST_CREATE_RACE:
        spawn(r, ROLE_LATEST_STABLE, false, 0);
        for (int i = 0; i < 3; i++) {
            /* One creator survives the race (the others die creating, to
             * be recovered from): the round must then have messages. */
            spawn(r, ROLE_LATEST_WRITER, i != 0 || r->kind != KIND_LATEST_CREATE_RACE, 0);
            spawn(r, ROLE_LATEST_READER, true, 0);
        }
        return;
    case KIND_QUEUE_BLOCK:
        spawn(r, ROLE_QUEUE_STABLE, false, 0);
        spawn(r, ROLE_QUEUE_STABLE, false, 1);
        spawn(r, ROLE_QUEUE_SUBSCRIBER, true, 0);
        spawn(r, ROLE_QUEUE_SUBSCRIBER, true, 0);
        break;
    case KIND_QUEUE_WORKERS:
        /* One worker is never killed: with no live worker at all, writers
         * need not keep messages for workers, and those are not "lost". */
        spawn(r, ROLE_QUEUE_STABLE, false, 0);
        spawn(r, ROLE_QUEUE_WORKER, false, 0);
        for (int i = 0; i < 3; i++) {
            spawn(r, ROLE_QUEUE_WORKER, true, 0);
        }
        break;
    default:
        spawn(r, ROLE_QUEUE_STABLE, false, 0);
        spawn(r, ROLE_QUEUE_SUBSCRIBER, true, 0);
        spawn(r, ROLE_QUEUE_SUBSCRIBER, true, 0);
        break;
    }
    /* Stable subscribers must be in before the first message is sent. */
    if (wait_ready(r)) {
        for (int i = 0; i < 3; i++) {
            spawn(r, ROLE_QUEUE_WRITER, true, 0);
        }
    }
}

static int
count_role(const round_state *r, int role)
{
    int n = 0;
    for (int i = 0; i < CHAOS_SLOTS; i++) {
        n += r->kids[i].pid != 0 && r->kids[i].role == role;
    }
    return n;
}

/* The chaos phase: kill a random process every few milliseconds. */
static void
rampage(round_state *r, uint64_t ms)
{
    uint64_t start = chaos_now_ns(), end = start + ms * 1000000u;
    while (chaos_now_ns() < end) {
        /* Right after the start children are still creating and joining. */
        bool early = chaos_now_ns() - start < 30000000u;
        sleep_us(early ? 200 + chaos_rand(&r->rng) % 800 : 500 + chaos_rand(&r->rng) % 7500);
        reap_exited(r);
        kill_one(r);
    }
    /* Leave the writers at least one process. */
    if (count_role(r, ROLE_LATEST_WRITER) + count_role(r, ROLE_QUEUE_WRITER) == 0) {
        spawn(r, r->kind <= KIND_LATEST_CREATE_RACE ? ROLE_LATEST_WRITER : ROLE_QUEUE_WRITER,
              true, 0);
    }
}

static uint64_t
taken_count(uint32_t inc, uint64_t upto)
{
    uint64_t n = 0;
    for (uint64_t c = 0; c < upto && c < CHAOS_BITS; c++) {
        n += (atomic_load(&chaos_b->taken[inc][c / 64]) >> (c % 64)) & 1;
    }
    return n;
}

/* The stable latest-value reader accepted messages, and its read after the
 * writers were done was the newest: the last publish of its writer (whose
 * count is c, or c + 1 if it was killed after publishing). */
static void
check_latest_stable(round_state *r)
{
    uint64_t inc = atomic_load(&chaos_b->latest_final_inc);
    uint64_t n = atomic_load(&chaos_b->latest_final_count);
    if (atomic_load(&chaos_b->latest_checked) == 0 || n == 0 || inc >= CHAOS_INCS) {
        printf("  FAIL: the stable reader accepted %llu messages, none at the end\n",
               (unsigned long long)atomic_load(&chaos_b->latest_checked));
        r->failed = true;
        return;
    }
    uint64_t c = atomic_load(&chaos_b->committed[inc]), k = atomic_load(&chaos_b->killed[inc]);
    if (n < c || n > c + k) {
        printf("  FAIL: the last message read is writer %llu's #%llu, which committed %llu\n",
               (unsigned long long)inc, (unsigned long long)n, (unsigned long long)c);
        r->failed = true;
    }
}

/* What incarnation inc may have committed beyond its count: nothing if it
 * lived, else its send in progress (a batch, or one message). */
static uint64_t
uncounted(int inc)
{
    uint64_t b = atomic_load(&chaos_b->batch[inc]);
    return atomic_load(&chaos_b->killed[inc]) ? (b > 1 ? b : 1) : 0;
}

/* Nothing lost or duplicated for the stable subscribers; workers lose at
 * most one message per killed worker and invent none. */
static void
check_deliveries(round_state *r, int stable)
{
    uint64_t missing = 0, committed = 0;
    bool newest_seen[CHAOS_STABLE] = {false};
    for (int inc = 0; inc < r->next_inc; inc++) {
        uint64_t c = atomic_load(&chaos_b->committed[inc]);
        uint64_t k = uncounted(inc);
        total.committed += c;
        committed += c;
        for (int j = 0; j < stable; j++) {
            uint64_t got = atomic_load(&chaos_b->received[j][inc]);
            bool ok = r->kind == KIND_QUEUE_OVERWRITE ? got <= c + k : got >= c && got <= c + k;
            /* Overwrite mode may lose any message but the newest of all:
             * nothing overwrote that one, so some writer's got reached c. */
            newest_seen[j] |= c > 0 && got >= c;
            if (!ok) {
                printf("  FAIL: stable subscriber %d got %llu messages of writer %d, which "
                       "committed %llu (+%llu if it died in a send)\n", j, (unsigned long long)got,
                       inc, (unsigned long long)c, (unsigned long long)k);
                r->failed = true;
            }
        }
        if (r->kind == KIND_QUEUE_WORKERS) {
            missing += c - taken_count((uint32_t)inc, c);
            if (taken_count((uint32_t)inc, CHAOS_BITS) > c + k) {
                printf("  FAIL: workers got messages writer %d never committed\n", inc);
                r->failed = true;
            }
        }
    }
    for (int j = 0; j < stable && r->kind == KIND_QUEUE_OVERWRITE; j++) {
        if (!newest_seen[j]) {
            printf("  FAIL: stable subscriber %d never got any writer's last message\n", j);
            r->failed = true;
        }
    }
    if (committed == 0) {
        printf("  FAIL: the writers committed nothing this round\n");
        r->failed = true;
    }
    if (r->kind <= KIND_LATEST_CREATE_RACE) {
        check_latest_stable(r);
    }
    if (missing > (uint64_t)r->worker_kills) {
        printf("  FAIL: workers lost %llu messages with only %d workers killed\n",
               (unsigned long long)missing, r->worker_kills);
        r->failed = true;
    }
}

/* After the round: the channel still works, and since nobody has it open
 * any more, reap removes it (no lock or slot of a dead process survives). */
static void
check_after_latest(round_state *r)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    shmchan_latest *ch = NULL;
    /* Even in a create race: the last writer of the round lived to create it. */
    int rc = shmchan_latest_open(r->chan.name, &o, &ch);
    uint8_t buf[CHAOS_MAX_MSG], msg[CHAOS_MAX_MSG];
    size_t len = 0;
    uint32_t inc;
    uint64_t counter, seq;
    if (rc == SHMCHAN_OK) {
        rc = shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq);
        if (rc == SHMCHAN_OK && chaos_msg_check(buf, len, &inc, &counter) != NULL) {
            printf("  FAIL: the last message is not intact\n");
            r->failed = true;
        }
        rc = rc == SHMCHAN_EAGAIN ? SHMCHAN_OK : rc;
    }
    if (rc == SHMCHAN_OK) {
        rc = shmchan_latest_publish(ch, msg, chaos_msg_make(msg, 0, 0, 64), NULL);
    }
    shmchan_latest_close(ch);
    if (rc != SHMCHAN_OK) {
        printf("  FAIL: after the round: %s\n", shmchan_errname(rc));
        r->failed = true;
    }
}

static void
check_after_queue(round_state *r)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_SUBSCRIBE;
    shmchan_queue *sub = NULL, *w = NULL;
    int rc = shmchan_queue_open(r->chan.name, &o, &sub);
    if (rc == SHMCHAN_OK) {
        rc = shmchan_queue_open(r->chan.name, NULL, &w);
    }
    uint8_t msg[CHAOS_MAX_MSG], buf[CHAOS_MAX_MSG];
    size_t len = 0;
    if (rc == SHMCHAN_OK) {
        rc = shmchan_queue_send(w, msg, chaos_msg_make(msg, 0, 0, 64), 2000);
    }
    if (rc == SHMCHAN_OK) {
        rc = shmchan_queue_recv(sub, buf, sizeof(buf), 2000, &len, NULL);
    }
    if (rc == SHMCHAN_OK && (len != 64 || memcmp(buf, msg, 64) != 0)) {
        printf("  FAIL: after the round the queue returned another message\n");
        r->failed = true;
    }
    shmchan_queue_close(w);
    shmchan_queue_close(sub);
    if (rc != SHMCHAN_OK) {
        printf("  FAIL: after the round: %s\n", shmchan_errname(rc));
        r->failed = true;
    }
}

static void
check_reap(round_state *r)
{
    int removed = 0;
    int rc = shmchan_reap(r->chan.name, 0, false, &removed);
    if (rc != SHMCHAN_OK || removed != 1) {
        printf("  FAIL: reap of the unused channel: %s, removed %d\n", shmchan_errname(rc),
               removed);
        r->failed = true;
        (void)shmchan_unlink(r->chan.name, 0);
    }
}

/* Clear the workers' bits of this round: up to each incarnation's count and
 * what it may have committed uncounted (a killed writer's batch). */
static void
clear_board(int incs)
{
    for (int inc = 0; inc < incs; inc++) {
        uint64_t upto = atomic_load(&chaos_b->committed[inc]) + uncounted(inc) + 2;
        size_t words = (size_t)(upto < CHAOS_BITS ? upto : CHAOS_BITS) / 64 + 1;
        memset((void *)chaos_b->taken[inc], 0,
               sizeof(uint64_t) * (words < CHAOS_BITS / 64 ? words : CHAOS_BITS / 64));
    }
    memset((void *)chaos_b, 0, offsetof(chaos_board, taken));
}

static void
run_round(round_kind kind, int number, uint64_t seed, uint64_t ms)
{
    static round_state r;
    memset(&r, 0, sizeof(r));
    uint64_t checked0 = total.checked, committed0 = total.committed;
    r.kind = kind;
    r.rng = (seed ^ ((uint64_t)number * 0x9E3779B97F4A7C15u)) | 1;
    snprintf(r.chan.name, sizeof(r.chan.name), "chaos%d-%d", (int)getpid(), number);
    r.chan.policy = kind == KIND_QUEUE_OVERWRITE ? SHMCHAN_POLICY_OVERWRITE : SHMCHAN_POLICY_BLOCK;
    r.chan.create_race = kind == KIND_LATEST_CREATE_RACE;
    int rc = SHMCHAN_OK;
    if (kind == KIND_LATEST) {
        shmchan_opts o;
        shmchan_opts_init(&o);
        o.flags = SHMCHAN_CREATE | SHMCHAN_EXCL;
        o.max_msg = CHAOS_MAX_MSG;
        shmchan_latest *ch = NULL;
        rc = shmchan_latest_open(r.chan.name, &o, &ch);
        shmchan_latest_close(ch);
    } else if (kind != KIND_LATEST_CREATE_RACE) {
        rc = chaos_queue_create(&r.chan);
    }
    if (rc != SHMCHAN_OK) {
        printf("  FAIL: create: %s\n", shmchan_errname(rc));
        r.failed = true;
    } else {
        start_roles(&r);
        rampage(&r, ms);
    }
    atomic_store(&chaos_b->stop, 1);
    finish(&r, true, WRITER_BOUND_MS);
    atomic_store(&chaos_b->writers_done, 1);
    finish(&r, false, READER_BOUND_MS);
    if (rc == SHMCHAN_OK) {
        if (kind >= KIND_QUEUE_BLOCK) {
            check_deliveries(&r, kind == KIND_QUEUE_BLOCK ? 2 : 1);
            check_after_queue(&r);
        } else {
            check_deliveries(&r, 0);
            check_after_latest(&r);
        }
        check_reap(&r);
    }
    total.rounds++;
    r.failed ? total.failed++ : total.passed++;
    total.kills += r.kills;
    total.restarts += r.restarts;
    printf("round %d %s: %d kills, %d restarts, %d writers, %llu committed, %llu checked: %s\n",
           number, kind_names[kind], r.kills, r.restarts, r.next_inc,
           (unsigned long long)(total.committed - committed0),
           (unsigned long long)(total.checked - checked0), r.failed ? "FAILED" : "ok");
    clear_board(r.next_inc);
}

int
main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *env = getenv("SHMCHAN_CHAOS_SECONDS");
    double seconds = argc > 1 ? atof(argv[1]) : env != NULL ? atof(env) : 60.0;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : chaos_now_ns();
    chaos_b = mmap(NULL, sizeof(chaos_board), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (chaos_b == MAP_FAILED) {
        perror("chaos: mmap");
        return 2;
    }
    printf("chaos: %.0f s, seed %llu\n", seconds, (unsigned long long)seed);
    uint64_t end = chaos_now_ns() + (uint64_t)(seconds * 1e9);
    uint64_t rng = seed | 1;
    for (int n = 0; chaos_now_ns() + 1500000000u < end || n == 0; n++) {
        round_kind kind = (round_kind)(n % KIND_COUNT);
        run_round(kind, n, seed, 300 + chaos_rand(&rng) % 400);
    }
    printf("chaos: %d rounds, %d kills, %d restarts, %llu messages checked, %llu committed, "
           "%d failures\n", total.rounds, total.kills, total.restarts,
           (unsigned long long)total.checked, (unsigned long long)total.committed, total.failed);
    printf("chaos: %d passed, %d failed\n", total.passed, total.failed);
    return total.failed == 0 ? 0 : 1;
}
