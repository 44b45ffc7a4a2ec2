/*
 * The latest-value writers' lock against a hostile peer (issue 12), and the
 * SIGBUS guard when the application installs its own SIGBUS handler.
 *
 * The lock lives in the control block (offsets below from src/core/layout.h):
 * the attacker maps the channel's file and writes there directly, as any
 * process with write access could. POSIX only: the attacker needs a
 * shared mapping of the file while the channel is in use.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/layout.h"
#include "t.h"

#define MAX_MSG 64
#define OFF_CTL SHMCHAN__HDR_SIZE
#define OFF_SEQ (OFF_CTL + offsetof(shmchan__latest_ctl, seq))
#define OFF_LOCK (OFF_CTL + offsetof(shmchan__latest_ctl, lock)) /* ctl line 2 */
#define OFF_LK_WAITERS (OFF_CTL + offsetof(shmchan__latest_ctl, lk_waiters))
#define OFF_SLOTS (OFF_CTL + offsetof(shmchan__latest_ctl, writers)) /* {state, hold} */
#define NSLOTS SHMCHAN__LATEST_WRITERS
#define SLOT_SIZE sizeof(shmchan__latest_wslot)
#define CTL_END (OFF_SLOTS + NSLOTS * SLOT_SIZE)
#define PER_WRITER 20000
#define WRITERS 3

static shmchan_latest *
open_file(const char *path, uint32_t flags)
{
    shmchan_opts o = t_opts(SHMCHAN_FILE | flags);
    o.max_msg = MAX_MSG;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(path, &o, &ch));
    return ch;
}

/* Our own shared mapping of the whole channel file, control block included. */
static uint8_t *
map_file(const char *path, size_t *size_out)
{
    uint8_t *p = t_map_file(path, size_out);
    T_TRUE(*size_out >= CTL_END);
    return p;
}

static _Atomic uint64_t *
word_at(uint8_t *base, size_t off)
{
    return (_Atomic uint64_t *)(void *)(base + off);
}

/* A self-checking message: writer, counter, then bytes derived from both. */
static void
make_msg(uint8_t *m, uint32_t writer, uint32_t counter)
{
    memcpy(m, &writer, 4);
    memcpy(m + 4, &counter, 4);
    for (int i = 8; i < MAX_MSG; i++) {
        m[i] = (uint8_t)(writer * 31u + counter + (uint32_t)i);
    }
}

static bool
whole_msg(const uint8_t *m, size_t len)
{
    if (len != MAX_MSG) {
        return false;
    }
    uint8_t want[MAX_MSG];
    uint32_t writer, counter;
    memcpy(&writer, m, 4);
    memcpy(&counter, m + 4, 4);
    make_msg(want, writer, counter);
    return memcmp(m, want, MAX_MSG) == 0;
}

/* arg: "path writer-id". Publishes PER_WRITER self-checking messages; any
 * error, a crash or a hang fails the test. */
HELPER(latest_lock_writer)
{
    char path[256];
    t_arg_word(arg, 0, path, sizeof(path));
    uint32_t id = t_arg_u32(arg, 1);
    shmchan_latest *ch = open_file(path, 0);
    uint8_t m[MAX_MSG];
    for (uint32_t i = 0; i < PER_WRITER; i++) {
        make_msg(m, id, i);
        if (shmchan_latest_publish(ch, m, sizeof(m), NULL) != SHMCHAN_OK) {
            return 1;
        }
    }
    shmchan_latest_close(ch);
    return 0;
}

static uint64_t
xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/*
 * arg: "path mode". Runs until killed.
 * mode 0: garbage into every byte of the lock line and the writer slots.
 * mode 1: forgery of a free lock only (CAS from 0), so that honest writers
 * never overlap: a word naming no slot, a free slot, or a live writer's slot
 * with its current generation while it does not hold the lock; and garbage
 * into the slots no honest writer uses.
 */
HELPER(latest_lock_attacker)
{
    char path[256];
    t_arg_word(arg, 0, path, sizeof(path));
    uint32_t mode = t_arg_u32(arg, 1);
    size_t size = 0;
    uint8_t *base = map_file(path, &size);
    uint64_t rnd = 0x9e3779b97f4a7c15ull ^ (uint64_t)t_pid();
    atomic_store(word_at(base, CTL_END - 8), 1); /* "attacking": the test waits for it */
    for (;;) {
        uint64_t r = xorshift(&rnd);
        if (mode == 0) {
            size_t off = OFF_LOCK + (size_t)(r % (CTL_END - OFF_LOCK - 8)) / 8 * 8;
            atomic_store(word_at(base, off), xorshift(&rnd));
            atomic_store(word_at(base, OFF_LOCK), xorshift(&rnd));
            continue;
        }
        uint64_t forged;
        switch (r % 3) {
        case 0: /* no such slot */
            forged = (r & 0xffffffff00000000ull) | (NSLOTS + 1 + (uint32_t)(r >> 8) % 1000);
            break;
        case 1: /* a slot nobody uses */
            forged = (r & 0xffffffff00000000ull) | (64 + (uint32_t)(r >> 8) % 64 + 1);
            break;
        default: { /* a live writer, its generation, while it does not hold */
            uint32_t k = (uint32_t)(r >> 8) % (WRITERS + 1);
            uint64_t st = atomic_load(word_at(base, OFF_SLOTS + k * SLOT_SIZE));
            forged = (st & 0xffffffff00000000ull) | (k + 1);
            break;
        }
        }
        uint64_t free_word = 0;
        atomic_compare_exchange_strong(word_at(base, OFF_LOCK), &free_word, forged);
        size_t junk = OFF_SLOTS + (64 + (size_t)(r >> 20) % 64) * SLOT_SIZE;
        atomic_store(word_at(base, junk), xorshift(&rnd));
        atomic_store(word_at(base, junk + 8), xorshift(&rnd));
    }
}

/* Writers publish under attack while we read; returns reads that were whole. */
static void
run_under_attack(uint32_t mode, uint64_t *whole_out, uint64_t *reads_out)
{
    const char *p = t_path();
    shmchan_latest *rd = open_file(p, SHMCHAN_CREATE | SHMCHAN_EXCL);
    char arg[300];
    snprintf(arg, sizeof(arg), "%s %u", p, mode);
    t_proc attacker = t_spawn("latest_lock_attacker", arg);
    size_t size = 0;
    uint8_t *base = map_file(p, &size);
    for (int i = 0; atomic_load(word_at(base, CTL_END - 8)) == 0; i++) {
        T_TRUE(i < 600000); /* the attacker is at work before the writers start */
        usleep(50);
    }
    t_proc w[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        snprintf(arg, sizeof(arg), "%s %d", p, i + 1);
        w[i] = t_spawn("latest_lock_writer", arg);
    }
    uint64_t whole = 0, reads = 0;
    int done = 0, status[WRITERS];
    bool finished[WRITERS] = {false};
    uint64_t hang_guard = t_now_ns() + 120ull * 1000 * 1000 * 1000;
    while (done < WRITERS) {
        if (t_now_ns() > hang_guard) {
            for (int i = 0; i < WRITERS; i++) {
                t_kill(w[i]);
            }
            t_kill(attacker);
            T_TRUE(!"writers stopped publishing: a forged lock blocks them");
        }
        uint8_t m[MAX_MSG];
        size_t len = 0;
        int rc = shmchan_latest_read(rd, m, sizeof(m), &len, NULL);
        T_TRUE(rc == SHMCHAN_OK || rc == SHMCHAN_EAGAIN);
        if (rc == SHMCHAN_OK) {
            T_TRUE(len <= MAX_MSG);
            reads++;
            whole += whole_msg(m, len);
        }
        for (int i = 0; i < WRITERS; i++) {
            if (!finished[i] && (status[i] = t_wait_timeout(w[i], 0)) != -1) {
                finished[i] = true;
                done++;
            }
        }
    }
    t_kill(attacker);
    t_wait(attacker);
    for (int i = 0; i < WRITERS; i++) {
        T_EQ_U64(status[i], 0); /* every publish completed, nobody crashed */
    }
    /* The attack is over: the channel works as if nothing happened. */
    uint8_t m[MAX_MSG], back[MAX_MSG];
    make_msg(m, 99, 7);
    T_OK(shmchan_latest_publish(rd, m, sizeof(m), NULL));
    size_t len = 0;
    T_OK(shmchan_latest_read(rd, back, sizeof(back), &len, NULL));
    T_EQ_U64(len, MAX_MSG);
    T_MEMEQ(back, m, MAX_MSG);
    if (mode == 1) {
        /* Forgeries only replaced a free lock: each publish its own sequence. */
        T_EQ_U64(shmchan_latest_seq(rd), WRITERS * PER_WRITER + 1);
    }
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_info_get(p, SHMCHAN_FILE, &info));
    printf("mode %u: %llu locks recovered from forged or dead owners\n", mode,
           (unsigned long long)info.recovered);
    T_TRUE(info.recovered > 0); /* the attack did reach the writers */
    munmap(base, size);
    shmchan_latest_close(rd);
    *whole_out = whole;
    *reads_out = reads;
}

/*
 * Garbage in every byte of the lock word and the writer slots while honest
 * writers publish: none crashes or hangs, every publish completes, reads stay
 * in bounds. A peer that rewrites the lock under a holder can make two
 * honest writers overlap, so messages read meanwhile may be torn, as when it
 * writes the buffers themselves (docs/security.md); they are counted, not
 * required whole.
 */
TEST(latest_lock_garbage_attack)
{
    uint64_t whole = 0, reads = 0;
    run_under_attack(0, &whole, &reads);
    printf("%llu reads under attack, %llu whole\n", (unsigned long long)reads,
           (unsigned long long)whole);
}

/* Forged owners of a free lock (no such slot, a free slot, a live writer
 * that does not hold it) under load: recovered at once, every message read
 * is whole, and every publish got its own sequence. */
TEST(latest_lock_forged_under_load)
{
    uint64_t whole = 0, reads = 0;
    run_under_attack(1, &whole, &reads);
    T_EQ_U64(whole, reads);
    T_TRUE(reads > 0);
    printf("%llu reads under forgery, all whole\n", (unsigned long long)reads);
}

/* arg: path. Each forged word in turn, then a publish that must complete. */
HELPER(latest_lock_forgeries)
{
    shmchan_latest *a = open_file(arg, 0), *b = open_file(arg, 0);
    size_t size = 0;
    uint8_t *base = map_file(arg, &size);
    _Atomic uint64_t *lock = word_at(base, OFF_LOCK);
    if (shmchan_latest_publish(a, "a", 1, NULL) != SHMCHAN_OK ||
        shmchan_latest_publish(b, "b", 1, NULL) != SHMCHAN_OK) {
        return 1;
    }
    /* a took writer slot 0, b slot 1 (the creator never published). */
    uint64_t gen_a = atomic_load(word_at(base, OFF_SLOTS)) >> 32;
    uint64_t gen_b = atomic_load(word_at(base, OFF_SLOTS + SLOT_SIZE)) >> 32;
    if (gen_a == 0 || gen_b == 0) {
        return 2;
    }
    const uint64_t forged[] = {
        0xdeadbeefcafebabeull,          /* garbage */
        7ull << 32 | (NSLOTS + 1),      /* no such slot */
        1ull << 32 | 10,                /* a free slot */
        gen_b << 32 | 2,                /* b: live, not holding */
        (gen_b + 1) << 32 | 2,          /* b's slot, another generation */
        gen_a << 32 | 1,                /* a's own word while a does not hold */
    };
    for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
        atomic_store(lock, forged[i]);
        char msg[16];
        int n = snprintf(msg, sizeof(msg), "after %zu", i);
        uint64_t seq = 0;
        if (shmchan_latest_publish(a, msg, (size_t)n, &seq) != SHMCHAN_OK) {
            return 3;
        }
        char back[MAX_MSG];
        size_t len = 0;
        if (shmchan_latest_read(b, back, sizeof(back), &len, NULL) != SHMCHAN_OK ||
            len != (size_t)n || memcmp(back, msg, len) != 0 || atomic_load(lock) != 0) {
            return 4;
        }
    }
    shmchan_latest_close(b);
    shmchan_latest_close(a);
    return 0;
}

/* A forged lock word never blocks publish: progress is the assertion (the
 * bound only turns a hang into a failure). */
TEST(latest_lock_forged_words)
{
    const char *p = t_path();
    shmchan_latest *ch = open_file(p, SHMCHAN_CREATE | SHMCHAN_EXCL);
    T_EQ_U64(t_wait_bounded(t_spawn("latest_lock_forgeries", p), 60000), 0);
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_info_get(p, SHMCHAN_FILE, &info));
    T_EQ_U64(info.recovered, 6);
    shmchan_latest_close(ch);
}

typedef struct range {
    uint64_t lo, hi;
} range;

/* Every mapping of this process, from /proc/self/maps, but for the huge
 * reservations of sanitizers (shadow memory spans terabytes, where any
 * number looks like an address): a holder's own memory, its stacks, TLS and
 * mappings, is far smaller. */
static size_t
own_mappings(range *out, size_t cap)
{
    FILE *f = fopen("/proc/self/maps", "r");
    T_TRUE(f != NULL);
    size_t n = 0;
    char line[512];
    while (n < cap && fgets(line, sizeof(line), f) != NULL) {
        unsigned long long lo, hi;
        if (sscanf(line, "%llx-%llx", &lo, &hi) == 2 && hi - lo <= (1ull << 32)) {
            out[n].lo = lo;
            out[n].hi = hi;
            n++;
        }
    }
    fclose(f);
    return n;
}

static bool
is_address(const range *maps, size_t n, uint64_t v)
{
    for (size_t i = 0; i < n; i++) {
        if (v >= maps[i].lo && v < maps[i].hi) {
            return true;
        }
    }
    return false;
}

/* How many 8-byte words of [base, base + len) hold an address of ours. */
static int
addresses_in(const uint8_t *base, size_t len)
{
    static range maps[4096];
    size_t n = own_mappings(maps, 4096);
    int found = 0;
    for (size_t off = 0; off + 8 <= len; off += 4) {
        uint64_t v;
        memcpy(&v, base + off, 8);
        found += is_address(maps, n, v);
    }
    return found;
}

/*
 * No process address in shared memory: while this process holds the writers'
 * lock (between begin and commit, a second handle waiting too), no word of
 * the region, at any 4-byte offset, points into any of our mappings. The
 * robust mutex this replaced held its holder's robust-list pointers there.
 */
TEST(latest_lock_no_address_in_shm)
{
    const char *p = t_path();
    shmchan_latest *a = open_file(p, SHMCHAN_CREATE | SHMCHAN_EXCL);
    shmchan_latest *b = open_file(p, 0);
    T_OK(shmchan_latest_publish(b, "warm", 4, NULL));
    size_t size = 0;
    uint8_t *base = map_file(p, &size);
    void *buf = NULL;
    T_OK(shmchan_latest_begin(a, &buf));
    memset(buf, 'A', MAX_MSG);
    T_TRUE(atomic_load(word_at(base, OFF_LOCK)) != 0); /* held, by a slot word */
    T_EQ_U64(addresses_in(base, size), 0);
    T_OK(shmchan_latest_commit(a, MAX_MSG, NULL));
    T_EQ_U64(addresses_in(base, size), 0);
    munmap(base, size);
    shmchan_latest_close(b);
    shmchan_latest_close(a);
}

/* arg: path. Take the lock, write half a message, wait to be killed. */
HELPER(latest_lock_hold_forever)
{
    shmchan_latest *ch = open_file(arg, 0);
    void *buf = NULL;
    if (shmchan_latest_begin(ch, &buf) != SHMCHAN_OK) {
        return 1;
    }
    memset(buf, 'X', 32);
    for (;;) {
        pause();
    }
}

/* arg: path. One publish, which waits for the lock. */
HELPER(latest_lock_publish_once)
{
    shmchan_latest *ch = open_file(arg, 0);
    int rc = shmchan_latest_publish(ch, "waiter", 6, NULL);
    shmchan_latest_close(ch);
    return rc == SHMCHAN_OK ? 0 : 1;
}

/*
 * A writer SIGKILLed between begin and commit while another writer sleeps
 * waiting for the lock: nobody releases it, yet the sleeper notices the dead
 * owner at its next look, takes the lock and publishes; readers never saw
 * the half message.
 */
TEST(latest_lock_holder_sigkilled)
{
    const char *p = t_path();
    shmchan_latest *ch = open_file(p, SHMCHAN_CREATE | SHMCHAN_EXCL);
    T_OK(shmchan_latest_publish(ch, "complete", 8, NULL));
    size_t size = 0;
    uint8_t *base = map_file(p, &size);
    _Atomic uint64_t *lock = word_at(base, OFF_LOCK);
    t_proc holder = t_spawn("latest_lock_hold_forever", p);
    for (int i = 0; atomic_load(lock) == 0; i++) {
        T_TRUE(i < 600000); /* the holder took it */
        usleep(50);
    }
    t_proc waiter = t_spawn("latest_lock_publish_once", p);
    _Atomic uint32_t *sleepers = (_Atomic uint32_t *)(void *)(base + OFF_LK_WAITERS);
    for (int i = 0; atomic_load(sleepers) == 0; i++) {
        T_TRUE(i < 600000); /* the waiter went to sleep on the lock */
        usleep(50);
    }
    T_EQ_U64(t_wait_timeout(waiter, 0), (uint64_t)-1); /* still waiting */
    t_kill(holder);
    T_EQ_U64(t_wait(holder), t_killed_status());
    T_EQ_U64(t_wait_bounded(waiter, 30000), 0);
    char buf[MAX_MSG];
    size_t len = 0;
    uint64_t seq = 0;
    T_OK(shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq));
    T_EQ_U64(seq, 2);
    T_EQ_U64(len, 6);
    T_MEMEQ(buf, "waiter", 6);
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_info_get(p, SHMCHAN_FILE, &info));
    T_EQ_U64(info.recovered, 1);
    munmap(base, size);
    shmchan_latest_close(ch);
}

/* ------------------------------------------------------------- SIGBUS */

static struct sigaction app_previous;
static volatile sig_atomic_t app_hits;

/* What Python's faulthandler does: restore the previous handler, report,
 * re-raise (the previous handler runs now, without the fault's address). */
static void
app_reraise(int sig)
{
    app_hits++;
    sigaction(sig, &app_previous, NULL);
    raise(sig);
}

/* What a chaining crash reporter does: call the previous handler itself. */
static void
app_chain(int sig, siginfo_t *si, void *uc)
{
    app_hits++;
    if (app_previous.sa_flags & SA_SIGINFO) {
        app_previous.sa_sigaction(sig, si, uc);
    } else if (app_previous.sa_handler != SIG_DFL && app_previous.sa_handler != SIG_IGN) {
        app_previous.sa_handler(sig);
    } else {
        signal(sig, SIG_DFL);
    }
}

static void
install_app_handler(bool reraise)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    if (reraise) {
        sa.sa_handler = app_reraise;
        sa.sa_flags = SA_NODEFER;
    } else {
        sa.sa_sigaction = app_chain;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    }
    T_TRUE(sigaction(SIGBUS, &sa, &app_previous) == 0);
}

/* arg: "path mode": 0 the handler re-raises, 1 it chains. The application's
 * handler comes after our first open; a peer then truncates the channel. */
HELPER(latest_sigbus_app_handler)
{
    char path[256];
    t_arg_word(arg, 0, path, sizeof(path));
    uint32_t mode = t_arg_u32(arg, 1);
    shmchan_latest *ch = open_file(path, SHMCHAN_CREATE | SHMCHAN_EXCL);
    if (shmchan_latest_publish(ch, "before", 6, NULL) != SHMCHAN_OK) {
        return 1;
    }
    install_app_handler(mode == 0);
    if (t_truncate(path, 0) != 0) {
        return 2;
    }
    char buf[MAX_MSG];
    size_t len = 0;
    int rc = shmchan_latest_read(ch, buf, sizeof(buf), &len, NULL);
    int rc2 = shmchan_latest_publish(ch, "x", 1, NULL);
    shmchan_latest_close(ch);
    if (rc != SHMCHAN_ETRUNCATED || rc2 != SHMCHAN_ETRUNCATED) {
        return 3;
    }
    return app_hits > 0 ? 0 : 4; /* the application's handler saw it first */
}

/* The application installs its own SIGBUS handler after our first open:
 * truncation still reads as SHMCHAN_ETRUNCATED and the process lives. */
TEST(latest_sigbus_app_handler_after_open)
{
    char arg[300];
    snprintf(arg, sizeof(arg), "%s 0", t_path());
    T_EQ_U64(t_wait(t_spawn("latest_sigbus_app_handler", arg)), 0);
    snprintf(arg, sizeof(arg), "%s 1", t_path());
    T_EQ_U64(t_wait(t_spawn("latest_sigbus_app_handler", arg)), 0);
}

/* arg: path. An application handler that chains to ours comes after our
 * first open, a second open puts ours back on top, and then a SIGBUS that is
 * nobody's arrives: the process dies of it, without looping between the two
 * handlers. */
HELPER(latest_sigbus_foreign_fault)
{
    shmchan_latest *a = open_file(arg, SHMCHAN_CREATE | SHMCHAN_EXCL);
    install_app_handler(false);
    shmchan_latest *b = open_file(arg, 0);
    (void)a;
    (void)b;
    raise(SIGBUS);
    return 0; /* not reached: a raised SIGBUS with SIG_DFL kills */
}

TEST(latest_sigbus_foreign_fault_still_fatal)
{
    T_EQ_U64(t_wait(t_spawn("latest_sigbus_foreign_fault", t_path())), 128 + SIGBUS);
}
