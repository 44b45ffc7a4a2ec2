/* Wait-sets (issue 13): several channels and foreign handles, one wait. */
#include <stdio.h>

#include "t.h"
#include "test_queue_util.h"

shmchan_latest *t_latest_create(const char *name, uint64_t max_msg);
shmchan_latest *t_latest_join(const char *name);

/* One wait: how many keys, and whether key k was among them. */
static size_t
wait_keys(shmchan_waitset *ws, int64_t ms, uintptr_t *keys, int *rc_out)
{
    size_t n = 0;
    *rc_out = shmchan_waitset_wait(ws, ms, keys, 8, &n);
    return n;
}

static bool
has_key(const uintptr_t *keys, size_t n, uintptr_t k)
{
    for (size_t i = 0; i < n; i++) {
        if (keys[i] == k) {
            return true;
        }
    }
    return false;
}

TEST(waitset_channels)
{
    const char *a = t_name(), *b = t_name(), *qn = t_name();
    shmchan_latest *wa = t_latest_create(a, 64), *wb = t_latest_create(b, 64);
    shmchan_latest *ra = t_latest_join(a), *rb = t_latest_join(b);
    shmchan_queue *own = tq_create(qn, 1 << 16, 64, SHMCHAN_POLICY_OVERWRITE);
    shmchan_queue *sub = tq_open(qn, SHMCHAN_SUBSCRIBE);
    shmchan_waitset *ws = NULL;
    T_OK(shmchan_waitset_open(&ws));
    int rc;
    uintptr_t keys[8];
    T_ERR(shmchan_waitset_wait(ws, 0, keys, 8, &(size_t){0}), SHMCHAN_EINVAL); /* empty */
    T_OK(shmchan_waitset_add_latest(ws, ra, 0, 1));
    T_OK(shmchan_waitset_add_latest(ws, rb, 0, 2));
    T_OK(shmchan_waitset_add_queue(ws, sub, 3));
    T_ERR(shmchan_waitset_add_queue(ws, sub, 3), SHMCHAN_EEXIST);
    (void)wait_keys(ws, 0, keys, &rc);
    T_ERR(rc, SHMCHAN_EAGAIN);
    (void)wait_keys(ws, 50, keys, &rc);
    T_ERR(rc, SHMCHAN_ETIMEDOUT);

    T_OK(shmchan_latest_publish(wb, "b1", 2, NULL));
    size_t n = wait_keys(ws, 5000, keys, &rc);
    T_OK(rc);
    T_TRUE(n == 1 && keys[0] == 2);
    (void)wait_keys(ws, 0, keys, &rc); /* reported once: b1 is no longer news */
    T_ERR(rc, SHMCHAN_EAGAIN);

    T_OK(shmchan_queue_send(own, "q1", 2, 0));
    T_OK(shmchan_latest_publish(wa, "a1", 2, NULL));
    n = wait_keys(ws, 5000, keys, &rc);
    T_OK(rc);
    T_TRUE(n == 2 && has_key(keys, n, 1) && has_key(keys, n, 3));
    n = wait_keys(ws, 0, keys, &rc); /* the queue is level-triggered */
    T_OK(rc);
    T_TRUE(n == 1 && keys[0] == 3);
    char buf[64];
    size_t len = 0;
    T_OK(shmchan_queue_recv(sub, buf, sizeof(buf), 0, &len, NULL));
    (void)wait_keys(ws, 0, keys, &rc);
    T_ERR(rc, SHMCHAN_EAGAIN);

    T_OK(shmchan_waitset_remove(ws, 2));
    T_ERR(shmchan_waitset_remove(ws, 2), SHMCHAN_ENOENT);
    T_OK(shmchan_latest_publish(wb, "b2", 2, NULL));
    (void)wait_keys(ws, 0, keys, &rc);
    T_ERR(rc, SHMCHAN_EAGAIN);
    shmchan_waitset_close(ws);
    shmchan_queue_close(sub);
    shmchan_queue_close(own);
    shmchan_latest_close(ra);
    shmchan_latest_close(rb);
    shmchan_latest_close(wa);
    shmchan_latest_close(wb);
}
