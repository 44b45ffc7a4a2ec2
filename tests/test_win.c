/* Windows-only checks: named-channel lifetime, namespaces, lock files, wake-ups. */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <ctype.h>

#define SHMCHAN_PLATFORM_WIN 1 /* the platform layer itself is under test below */
#include "platform/platform.h"
#include "t.h"

shmchan_latest *t_latest_create(const char *name, uint64_t max_msg);
shmchan_latest *t_latest_join(const char *name);

static bool
lock_file_exists(const char *name)
{
    char dir[MAX_PATH], path[MAX_PATH + 64];
    DWORD n = GetEnvironmentVariableA("ProgramData", dir, sizeof(dir));
    T_TRUE(n > 0 && n < sizeof(dir));
    DWORD session = 0;
    T_TRUE(ProcessIdToSessionId(GetCurrentProcessId(), &session));
    snprintf(path, sizeof(path), "%s\\shmchan\\s%lu.%s.lock", dir, (unsigned long)session, name);
    return GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES;
}

TEST(win_named_lifetime)
{
    const char *n = t_name();
    shmchan_latest *a = t_latest_create(n, 16), *b = t_latest_join(n), *c = NULL;
    T_OK(shmchan_latest_publish(a, "x", 1, NULL));
    /* A name in use cannot be taken away on Windows: unlink says it exists,
     * and the channel stays reachable until its last user closes it. */
    T_OK(shmchan_unlink(n, 0));
    T_OK(shmchan_latest_open(n, NULL, &c));
    T_EQ_U64(shmchan_latest_seq(c), 1);
    shmchan_latest_close(a);
    shmchan_latest_close(c);
    T_EQ_U64(shmchan_latest_seq(b), 1); /* alive while any handle is */
    T_OK(shmchan_latest_publish(b, "y", 1, NULL));
    shmchan_latest_close(b);
    /* The last handle took it away, data and all. */
    T_ERR(shmchan_latest_open(n, NULL, &c), SHMCHAN_ENOENT);
    T_ERR(shmchan_unlink(n, 0), SHMCHAN_ENOENT);
    shmchan_info info = {.struct_size = sizeof(info)};
    T_ERR(shmchan_info_get(n, 0, &info), SHMCHAN_ENOENT);
    int removed = -1;
    T_ERR(shmchan_reap(n, 0, false, &removed), SHMCHAN_ENOENT);
    a = t_latest_create(n, 16); /* the name is free for a new channel */
    T_EQ_U64(shmchan_latest_seq(a), 0);
    shmchan_latest_close(a);
}

HELPER(win_create_publish_exit)
{
    shmchan_latest *ch = t_latest_create(arg, 16);
    return shmchan_latest_publish(ch, "gone", 4, NULL) == SHMCHAN_OK ? 0 : 1;
}

HELPER(win_publish_exit)
{
    shmchan_latest *ch = t_latest_join(arg);
    return shmchan_latest_publish(ch, "kept", 4, NULL) == SHMCHAN_OK ? 0 : 1;
}

TEST(win_named_lifetime_across_processes)
{
    /* A channel whose only user exits is gone... */
    const char *n = t_name();
    T_EQ_U64(t_wait(t_spawn("win_create_publish_exit", n)), 0);
    shmchan_latest *ch = NULL;
    T_ERR(shmchan_latest_open(n, NULL, &ch), SHMCHAN_ENOENT);
    /* ...one that another process holds keeps what the exited one wrote. */
    ch = t_latest_create(n, 16);
    T_EQ_U64(t_wait(t_spawn("win_publish_exit", n)), 0);
    char buf[16];
    size_t len = 0;
    T_OK(shmchan_latest_read(ch, buf, sizeof(buf), &len, NULL));
    T_EQ_U64(len, 4);
    T_MEMEQ(buf, "kept", 4);
    shmchan_latest_close(ch);
}

TEST(win_lock_file_follows_channel)
{
    const char *n = t_name();
    T_TRUE(!lock_file_exists(n));
    shmchan_latest *a = t_latest_create(n, 16), *b = t_latest_join(n);
    T_TRUE(lock_file_exists(n));
    shmchan_latest_close(a);
    T_TRUE(lock_file_exists(n)); /* b still uses it */
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_info_get(n, 0, &info));
    T_EQ_U64(info.in_use, 1);
    int removed = -1;
    T_ERR(shmchan_reap(n, 0, false, &removed), SHMCHAN_EBUSY);
    T_EQ_U64(removed, 0);
    shmchan_latest_close(b);
    T_TRUE(!lock_file_exists(n)); /* removed by the last user */
    /* and an absent channel does not leave one behind */
    T_ERR(shmchan_latest_open(n, NULL, &a), SHMCHAN_ENOENT);
    T_TRUE(!lock_file_exists(n));
}

TEST(win_global_namespace)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_EXCL | SHMCHAN_GLOBAL);
    shmchan_latest *g = NULL, *l = NULL;
    int rc = shmchan_latest_open(n, &o, &g);
    if (rc == SHMCHAN_EACCES) {
        /* Real Windows without SeCreateGlobalPrivilege: said plainly, and
         * win_global_without_privilege checks that branch. */
        T_EQ_U64(shmchan_last_oserror(), ERROR_PRIVILEGE_NOT_HELD);
        T_SKIP("this process lacks SeCreateGlobalPrivilege: the Global\\ branch cannot run");
    }
    T_OK(rc);
    T_OK(shmchan_latest_publish(g, "global", 6, NULL));
    /* Local\ and Global\ are different namespaces: same name, two channels. */
    T_ERR(shmchan_latest_open(n, NULL, &l), SHMCHAN_ENOENT);
    o.flags = SHMCHAN_CREATE | SHMCHAN_EXCL;
    T_OK(shmchan_latest_open(n, &o, &l));
    T_EQ_U64(shmchan_latest_seq(l), 0);
    o.flags = SHMCHAN_GLOBAL;
    shmchan_latest *g2 = NULL;
    T_OK(shmchan_latest_open(n, &o, &g2));
    T_EQ_U64(shmchan_latest_seq(g2), 1);
    shmchan_latest_close(g2);
    shmchan_latest_close(l);
    shmchan_latest_close(g);
}

/* Without SeCreateGlobalPrivilege (removed from this process's token),
 * creating a Global\ channel fails with EACCES and the OS error says why. */
TEST(win_global_without_privilege)
{
    HANDLE tok = NULL;
    TOKEN_PRIVILEGES tp = {.PrivilegeCount = 1};
    T_TRUE(OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES | TOKEN_QUERY, &tok));
    T_TRUE(LookupPrivilegeValueA(NULL, "SeCreateGlobalPrivilege", &tp.Privileges[0].Luid));
    tp.Privileges[0].Attributes = SE_PRIVILEGE_REMOVED;
    T_TRUE(AdjustTokenPrivileges(tok, FALSE, &tp, 0, NULL, NULL));
    CloseHandle(tok);
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_EXCL | SHMCHAN_GLOBAL);
    shmchan_latest *g = NULL;
    int rc = shmchan_latest_open(n, &o, &g);
    if (rc == SHMCHAN_OK) {
        shmchan_latest_close(g);
        T_SKIP("this Windows (Wine) creates Global\\ objects without SeCreateGlobalPrivilege: "
               "the refusal cannot be seen here");
    }
    T_ERR(rc, SHMCHAN_EACCES);
    T_EQ_U64(shmchan_last_oserror(), ERROR_PRIVILEGE_NOT_HELD);
}

/* Listing channels is POSIX only (no enumeration of named mappings). */
TEST(win_list_not_supported)
{
    shmchan_list *it = (shmchan_list *)&it;
    T_ERR(shmchan_list_open(&it), SHMCHAN_ENOTSUP);
    T_TRUE(it == NULL);
}

HELPER(win_join_and_die)
{
    char name[512];
    unsigned flags = 0;
    if (sscanf(arg, "%511s %u", name, &flags) != 2) {
        return 3;
    }
    shmchan_opts o = t_opts(flags);
    shmchan_latest *ch = NULL;
    if (shmchan_latest_open(name, &o, &ch) != SHMCHAN_OK) {
        return 1;
    }
    t_die(); /* holding its locks, the lock file and the mappings */
    return 2;
}

TEST(win_killed_peer_leaves_nothing)
{
    /* Named channel: the dead peer's handles and locks go with it, so the
     * last live user still removes the lock file when it leaves. */
    const char *n = t_name();
    char arg[600];
    shmchan_latest *ch = t_latest_create(n, 16);
    snprintf(arg, sizeof(arg), "%s 0", n);
    T_EQ_U64(t_wait(t_spawn("win_join_and_die", arg)), t_killed_status());
    T_OK(shmchan_latest_publish(ch, "alive", 5, NULL));
    shmchan_latest_close(ch);
    T_TRUE(!lock_file_exists(n));
    T_ERR(shmchan_latest_open(n, NULL, &ch), SHMCHAN_ENOENT);

    /* File channel: its byte-range locks die with it: not in use, reapable. */
    const char *p = t_path();
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_FILE);
    T_OK(shmchan_latest_open(p, &o, &ch));
    shmchan_latest_close(ch);
    snprintf(arg, sizeof(arg), "%s %u", p, (unsigned)SHMCHAN_FILE);
    T_EQ_U64(t_wait(t_spawn("win_join_and_die", arg)), t_killed_status());
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_info_get(p, SHMCHAN_FILE, &info));
    T_EQ_U64(info.in_use, 0);
    int removed = 0;
    T_OK(shmchan_reap(p, SHMCHAN_FILE, false, &removed));
    T_EQ_U64(removed, 1);
}

/* The same file by two spellings of its path. */
static void
other_spelling(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s", path);
    for (char *p = out; *p != '\0'; p++) {
        *p = *p == '/' ? '\\' : (char)toupper((unsigned char)*p);
    }
}

HELPER(win_file_publish_later)
{
    t_sleep_ms(200);
    shmchan_opts o = t_opts(SHMCHAN_FILE);
    shmchan_latest *ch = NULL;
    if (shmchan_latest_open(arg, &o, &ch) != SHMCHAN_OK) {
        return 1;
    }
    int rc = shmchan_latest_publish(ch, "file", 4, NULL);
    shmchan_latest_close(ch);
    return rc == SHMCHAN_OK ? 0 : 2;
}

TEST(win_file_channel_wakes_by_any_path)
{
    const char *p = t_path();
    char alt[600];
    other_spelling(p, alt, sizeof(alt));
    T_TRUE(strcmp(p, alt) != 0);
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_FILE);
    o.spin_ns = SHMCHAN_SPIN_NONE;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(p, &o, &ch));
    t_proc pid = t_spawn("win_file_publish_later", alt);
    uint64_t seq = 0;
    T_OK(shmchan_latest_wait(ch, 0, 10000, &seq));
    T_EQ_U64(seq, 1);
    T_EQ_U64(t_wait(pid), 0);
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_info_get(p, SHMCHAN_FILE, &info));
    T_TRUE(info.waits >= 1); /* it slept, and the other path's publish woke it */
    shmchan_latest_close(ch);
}

/* ------------------------------------------- the platform's wait and wake */

#define WW_ROUNDS 2000
#define WW_SLEEPERS 3
#define WW_ACK 32 /* index of the acknowledgement counter among the words */

/* Words 0 and 16 (alternate rounds, two wait slots) and the ack counter, in a
 * named region made with the platform calls alone. */
static shmchan__atomic_u32 *
ww_words(const char *name, uint32_t flags, shmchan__shm **s)
{
    bool created = false;
    T_OK(shmchan__shm_open(name, flags, 0600, s, &created));
    if (flags & SHMCHAN_CREATE) {
        T_OK(shmchan__shm_reserve(*s, 65536));
    }
    void *base = NULL;
    T_OK(shmchan__shm_map(*s, 65536, &base));
    return (shmchan__atomic_u32 *)((char *)base + 4096);
}

/* Sleep through every round, never with a timeout: a lost wake-up leaves this
 * process blocked, the waker never gets its acknowledgement, the test fails. */
HELPER(win_ww_sleeper)
{
    shmchan__shm *s = NULL;
    shmchan__atomic_u32 *w = ww_words(arg, 0, &s);
    uint64_t waits = 0;
    shmchan__fetch_add(&w[WW_ACK], 1, SHMCHAN__SEQ_CST);
    for (uint32_t r = 1; r <= WW_ROUNDS; r++) {
        shmchan__atomic_u32 *word = &w[(r % 2) * 16];
        for (;;) {
            uint32_t v = shmchan__load(word, SHMCHAN__ACQUIRE);
            if (v >= r) {
                break;
            }
            if (shmchan__wait(s, word, v, -1) != SHMCHAN_OK) {
                return 1;
            }
            waits++;
        }
        shmchan__fetch_add(&w[WW_ACK], 1, SHMCHAN__SEQ_CST);
    }
    printf("sleeper: %llu waits in %d rounds\n", (unsigned long long)waits, WW_ROUNDS);
    shmchan__shm_close(s);
    return 0;
}

static void
ww_await_acks(shmchan__atomic_u32 *ack, uint32_t want, uint32_t round)
{
    uint64_t end = t_now_ns() + UINT64_C(20000000000);
    while (shmchan__load(ack, SHMCHAN__ACQUIRE) < want) {
        if (t_now_ns() > end) {
            t_fail(__FILE__, __LINE__, "round %u: %u of %u acknowledgements: a lost wake-up",
                   round, shmchan__load(ack, SHMCHAN__ACQUIRE), want);
        }
        SwitchToThread();
    }
}

TEST(win_wait_wake_no_lost_wakeup)
{
    const char *n = t_name();
    shmchan__shm *s = NULL;
    shmchan__atomic_u32 *w = ww_words(n, SHMCHAN_CREATE | SHMCHAN_EXCL, &s);
    t_proc pids[WW_SLEEPERS];
    for (int i = 0; i < WW_SLEEPERS; i++) {
        pids[i] = t_spawn("win_ww_sleeper", n);
    }
    ww_await_acks(&w[WW_ACK], WW_SLEEPERS, 0);
    for (uint32_t r = 1; r <= WW_ROUNDS; r++) {
        shmchan__atomic_u32 *word = &w[(r % 2) * 16];
        shmchan__store(word, r, SHMCHAN__RELEASE);
        shmchan__wake_all(s, word);
        ww_await_acks(&w[WW_ACK], WW_SLEEPERS * (r + 1), r);
    }
    for (int i = 0; i < WW_SLEEPERS; i++) {
        T_EQ_U64(t_wait_bounded(pids[i], 60000), 0);
    }
    /* A timed wait that nobody wakes times out. */
    uint64_t t0 = t_now_ns();
    T_ERR(shmchan__wait(s, &w[0], shmchan__load(&w[0], SHMCHAN__RELAXED), 30 * 1000000),
          SHMCHAN_ETIMEDOUT);
    T_TRUE(t_now_ns() - t0 >= 30u * 1000000u);
    shmchan__shm_close(s);
}
