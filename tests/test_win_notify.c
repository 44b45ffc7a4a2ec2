/* Readiness handles on Windows (issue 13): the event HANDLE of a reader. */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <stdio.h>
#include <string.h>

#include "t.h"
#include "test_queue_util.h"

shmchan_latest *t_latest_create(const char *name, uint64_t max_msg);
shmchan_latest *t_latest_join(const char *name);

static bool
signalled_within(shmchan_os_handle h, DWORD ms)
{
    return WaitForSingleObject((HANDLE)h, ms) == WAIT_OBJECT_0;
}

HELPER(win_notify_publisher)
{
    shmchan_latest *ch = t_latest_join(arg);
    int rc = shmchan_latest_publish(ch, "news", 4, NULL);
    shmchan_latest_close(ch);
    return rc == SHMCHAN_OK ? 0 : 1;
}

TEST(win_notify_latest_event)
{
    const char *n = t_name();
    shmchan_latest *r = t_latest_create(n, 64);
    shmchan_os_handle h = NULL;
    T_OK(shmchan_latest_notify(r, &h));
    T_TRUE(h != NULL && !signalled_within(h, 0));
    T_EQ_U64(t_wait(t_spawn("win_notify_publisher", n)), 0); /* another process */
    T_TRUE(signalled_within(h, 5000));
    T_TRUE(signalled_within(h, 0)); /* manual reset: stays set until re-armed */
    T_OK(shmchan_latest_arm(r, 1));
    T_TRUE(!signalled_within(h, 0));
    T_OK(shmchan_latest_arm(r, 0)); /* a newer message is there: at once */
    T_TRUE(signalled_within(h, 0));
    shmchan_latest_close(r);
}

HELPER(win_notify_sender)
{
    shmchan_queue *q = tq_open(arg, 0);
    int rc = shmchan_queue_send(q, "job", 3, 5000);
    shmchan_queue_close(q);
    return rc == SHMCHAN_OK ? 0 : 1;
}

TEST(win_notify_queue_event)
{
    const char *n = t_name();
    shmchan_queue *own = tq_create(n, 1 << 16, 64, SHMCHAN_POLICY_BLOCK);
    shmchan_queue *sub = tq_open(n, SHMCHAN_SUBSCRIBE);
    shmchan_os_handle h = NULL;
    T_OK(shmchan_queue_notify(sub, &h));
    T_TRUE(!signalled_within(h, 0));
    T_EQ_U64(t_wait(t_spawn("win_notify_sender", n)), 0);
    T_TRUE(signalled_within(h, 5000));
    char buf[64];
    size_t len = 0;
    T_OK(shmchan_queue_recv(sub, buf, sizeof(buf), 0, &len, NULL));
    T_MEMEQ(buf, "job", 3);
    T_OK(shmchan_queue_arm(sub));
    T_TRUE(!signalled_within(h, 0));
    shmchan_queue_close(sub);
    shmchan_queue_close(own);
}

HELPER(win_notify_armed_then_killed)
{
    shmchan_latest *r = t_latest_join(arg);
    shmchan_os_handle h = NULL;
    if (shmchan_latest_notify(r, &h) != SHMCHAN_OK) {
        return 3;
    }
    Sleep(INFINITE);
    return 0;
}

/* How many notifiers this process can make now (all closed again). */
static int
free_slots(const char *n)
{
    shmchan_latest *hs[65];
    int k = 0;
    for (; k < 65; k++) {
        hs[k] = t_latest_join(n);
        shmchan_os_handle h = NULL;
        int rc = shmchan_latest_notify(hs[k], &h);
        if (rc != SHMCHAN_OK) {
            T_EQ_U64(rc, SHMCHAN_ELIMIT);
            shmchan_latest_close(hs[k]);
            break;
        }
    }
    for (int i = 0; i < k; i++) {
        shmchan_latest_close(hs[i]);
    }
    return k;
}

TEST(win_notify_killed_waiter_frees_its_slot)
{
    const char *n = t_name();
    shmchan_latest *w = t_latest_create(n, 64);
    T_EQ_U64(free_slots(n), 64);
    t_proc p = t_spawn("win_notify_armed_then_killed", n);
    int left = 64;
    for (int tries = 0; tries < 1000 && left == 64; tries++) {
        Sleep(10);
        left = free_slots(n);
    }
    T_EQ_U64(left, 63); /* the waiter holds one */
    T_OK(shmchan_latest_publish(w, "x", 1, NULL)); /* fires it */
    t_kill(p);
    (void)t_wait(p);
    T_EQ_U64(free_slots(n), 64); /* its slot is free again */
    T_OK(shmchan_latest_publish(w, "y", 1, NULL));
    shmchan_latest_close(w);
}

/* ------------------------------------------------------ read-only readers */

/*
 * Read-only readers on Windows (issue 13): the side wait object is the named
 * mapping "Local\shmchan.<name>..wait" that every opener attaches to
 * (win_shm.c, shmchan__side_attach). Its words, as in side.h: line 1 holds
 * the armed count and the scan bound, the armed words follow on line 2.
 */
#define WSIDE_ARMED 64
#define WSIDE_USED 68
#define WSIDE_SLOTS 128
#define WSIDE_SIZE (128 + 4 * 64)

/* The side object mapped read-write, as any peer that may open it can. */
static volatile uint32_t *
wside_map(const char *name)
{
    wchar_t w[128];
    _snwprintf(w, 128, L"Local\\shmchan.%hs..wait", name);
    w[127] = L'\0';
    HANDLE m = OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE, FALSE, w);
    T_TRUE(m != NULL);
    void *p = MapViewOfFile(m, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, WSIDE_SIZE);
    CloseHandle(m); /* the view keeps it */
    T_TRUE(p != NULL);
    return p;
}

/* A manual-reset event the test and its helper meet on. */
static HANDLE
cue(const char *name, char which)
{
    wchar_t w[128];
    _snwprintf(w, 128, L"Local\\shmchan-test.%hs.%c", name, which);
    w[127] = L'\0';
    return CreateEventW(NULL, TRUE, FALSE, w);
}

/* Some armed word in the side table is 1 and the count says so. */
static bool
side_armed(volatile uint32_t *side)
{
    if (side[WSIDE_ARMED / 4] == 0) {
        return false;
    }
    for (int i = 0; i < 64; i++) {
        if (side[WSIDE_SLOTS / 4 + i] == 1) {
            return true;
        }
    }
    return false;
}

static void
await_side_armed(volatile uint32_t *side)
{
    for (int i = 0; i < 10000 && !side_armed(side); i++) {
        Sleep(1);
    }
    T_TRUE(side_armed(side));
}

/*
 * A read-only reader in another process: it cannot publish; a blocking wait
 * arms a slot of the side object (the test sees it armed: it sleeps on its
 * event, not in the 1 ms poll) and a publish wakes it; its readiness HANDLE
 * is not ready after arming, and WaitForMultipleObjects reports it, among
 * another event, when the next message comes. Exit codes say which step
 * failed.
 */
HELPER(win_rdonly_reader)
{
    HANDLE a = cue(arg, 'a'), b = cue(arg, 'b'), other = CreateEventW(NULL, TRUE, FALSE, NULL);
    shmchan_opts ro = t_opts(SHMCHAN_RDONLY);
    shmchan_latest *ch = NULL;
    char buf[64];
    size_t len = 0;
    uint64_t seq = 0;
    void *p = NULL;
    if (a == NULL || b == NULL || other == NULL || shmchan_latest_open(arg, &ro, &ch) != SHMCHAN_OK ||
        shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq) != SHMCHAN_OK || seq != 1) {
        return 10;
    }
    if (shmchan_latest_publish(ch, "evil", 4, NULL) != SHMCHAN_ERDONLY ||
        shmchan_latest_begin(ch, &p) != SHMCHAN_ERDONLY) {
        return 11;
    }
    SetEvent(a);
    if (shmchan_latest_wait(ch, 1, 30000, &seq) != SHMCHAN_OK || seq != 2) {
        return 12;
    }
    shmchan_os_handle h = NULL;
    if (shmchan_latest_notify(ch, &h) != SHMCHAN_OK || shmchan_latest_arm(ch, seq) != SHMCHAN_OK) {
        return 13;
    }
    HANDLE hs[2] = {other, (HANDLE)h};
    if (WaitForMultipleObjects(2, hs, FALSE, 0) != WAIT_TIMEOUT) {
        return 14; /* nothing new: not ready */
    }
    SetEvent(b);
    if (WaitForMultipleObjects(2, hs, FALSE, 30000) != WAIT_OBJECT_0 + 1) {
        return 15;
    }
    if (shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq) != SHMCHAN_OK || seq != 3 ||
        len != 5 || memcmp(buf, "event", 5) != 0) {
        return 16;
    }
    shmchan_latest_close(ch);
    CloseHandle(other);
    CloseHandle(a);
    CloseHandle(b);
    return 0;
}

TEST(win_notify_rdonly_reader_sleeps_and_wakes)
{
    const char *n = t_name();
    shmchan_latest *w = t_latest_create(n, 64);
    T_OK(shmchan_latest_publish(w, "first", 5, NULL));
    HANDLE a = cue(n, 'a'), b = cue(n, 'b');
    T_TRUE(a != NULL && b != NULL);
    volatile uint32_t *side = wside_map(n); /* the writer's open attached it */
    t_proc r = t_spawn("win_rdonly_reader", n);
    T_TRUE(WaitForSingleObject(a, 30000) == WAIT_OBJECT_0);
    await_side_armed(side);
    T_OK(shmchan_latest_publish(w, "wake", 4, NULL));
    T_TRUE(WaitForSingleObject(b, 30000) == WAIT_OBJECT_0);
    await_side_armed(side);
    T_OK(shmchan_latest_publish(w, "event", 5, NULL));
    T_EQ_U64(t_wait_bounded(r, 60000), 0);
    UnmapViewOfFile((void *)side);
    CloseHandle(a);
    CloseHandle(b);
    shmchan_latest_close(w);
}

/*
 * Any peer that may open the channel may write its side object: whatever it
 * puts there, writers neither fail nor block, a read-only waiter still gets
 * its messages, and an opener that finds another channel's id there goes
 * without (ERDONLY from notify) and still receives, polling.
 */
TEST(win_notify_rdonly_hostile_side_table)
{
    const char *n = t_name();
    shmchan_latest *w = t_latest_create(n, 64), *r = NULL, *late = NULL;
    shmchan_opts ro = t_opts(SHMCHAN_RDONLY);
    T_OK(shmchan_latest_open(n, &ro, &r));
    shmchan_os_handle h = NULL;
    T_OK(shmchan_latest_notify(r, &h));
    volatile uint32_t *side = wside_map(n);
    uint64_t seq = 0;
    for (int round = 0; round < 2000; round++) {
        side[WSIDE_ARMED / 4] = round % 2 ? 0xFFFFFFFFu : 0;
        side[WSIDE_USED / 4] = 0xFFFFFFFFu;
        for (int i = 0; i < 64; i++) {
            side[WSIDE_SLOTS / 4 + i] = round % 3 == 2 ? 0xFFFFFFFFu : 1u;
        }
        T_OK(shmchan_latest_publish(w, "y", 1, &seq));
    }
    T_OK(shmchan_latest_arm(r, 0));
    T_TRUE(signalled_within(h, 5000)); /* news at arming: ready at once */
    uint64_t got = 0;
    T_OK(shmchan_latest_wait(r, seq - 1, 5000, &got));
    T_EQ_U64(got, seq);
    T_OK(shmchan_latest_arm(r, seq));
    T_TRUE(!signalled_within(h, 0));
    T_OK(shmchan_latest_publish(w, "z", 1, &seq)); /* the scribbled table still works */
    T_TRUE(signalled_within(h, 5000));
    memset((void *)side, 0xA5, 64); /* magic and channel id forged */
    T_OK(shmchan_latest_open(n, &ro, &late));
    T_ERR(shmchan_latest_notify(late, &h), SHMCHAN_ERDONLY); /* no side: it polls */
    T_OK(shmchan_latest_publish(w, "z", 1, &seq));
    T_OK(shmchan_latest_wait(late, seq - 1, 5000, &got));
    T_EQ_U64(got, seq);
    shmchan_latest_close(late);
    shmchan_latest_close(r);
    UnmapViewOfFile((void *)side);
    shmchan_latest_close(w);
}

/* A file-backed channel's side object is named after the file's identity,
 * so a read-only reader and a writer meet on it. */
TEST(win_notify_rdonly_file_channel)
{
    const char *p = t_path();
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_FILE);
    o.max_msg = 64;
    shmchan_latest *w = NULL, *r = NULL;
    T_OK(shmchan_latest_open(p, &o, &w));
    shmchan_opts ro = t_opts(SHMCHAN_RDONLY | SHMCHAN_FILE);
    T_OK(shmchan_latest_open(p, &ro, &r));
    shmchan_os_handle h = NULL;
    T_OK(shmchan_latest_notify(r, &h));
    T_TRUE(!signalled_within(h, 0));
    uint64_t seq = 0;
    T_OK(shmchan_latest_publish(w, "file", 4, &seq));
    T_TRUE(signalled_within(h, 5000));
    char buf[8];
    size_t len = 0;
    uint64_t got = 0;
    T_OK(shmchan_latest_read(r, buf, sizeof(buf), &len, &got));
    T_EQ_U64(got, seq);
    T_MEMEQ(buf, "file", 4);
    shmchan_latest_close(r);
    shmchan_latest_close(w);
}
