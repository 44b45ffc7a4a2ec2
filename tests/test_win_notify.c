/* Readiness handles on Windows (issue 13): the event HANDLE of a reader. */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <stdio.h>

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
