/*
 * Issue 12: handles and fork, and the number of handles a process may hold.
 * A handle used in a process other than its opener's returns
 * SHMCHAN_EFORKED; closed there, it only unmaps and leaves the opener's slots,
 * locks and counts alone.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "t.h"
#include "test_queue_util.h"

/* Run fn in a forked child; its exit status. */
static int
in_child(int (*fn)(void *), void *ctx)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        _exit(fn(ctx));
    }
    int st = 0;
    T_TRUE(pid > 0 && waitpid(pid, &st, 0) == pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

typedef struct queues {
    shmchan_queue *w;
    shmchan_queue *s;
} queues;

static int
child_uses_queues(void *ctx)
{
    queues *h = ctx;
    char buf[64];
    size_t len = 0;
    void *p = NULL;
    shmchan_info info;
    memset(&info, 0, sizeof(info));
    info.struct_size = sizeof(info);
    int bad = 0;
    bad |= shmchan_queue_send(h->w, "x", 1, 0) != SHMCHAN_EFORKED;
    bad |= shmchan_queue_reserve(h->w, 8, 0, &p) != SHMCHAN_EFORKED;
    bad |= shmchan_queue_recv(h->s, buf, sizeof(buf), 0, &len, NULL) != SHMCHAN_EFORKED;
    bad |= shmchan_queue_info(h->s, &info) != SHMCHAN_EFORKED;
    shmchan_queue_close(h->s); /* must not free the parent's reader slot */
    shmchan_queue_close(h->w);
    return bad ? 1 : 0;
}

TEST(fork_queue_handles_stay_the_openers)
{
    const char *n = t_name();
    queues h = {tq_create(n, 4096, 64, 0), NULL};
    h.s = tq_open(n, SHMCHAN_SUBSCRIBE);
    T_OK(shmchan_queue_send(h.w, "before", 6, 0));
    T_EQ_U64(in_child(child_uses_queues, &h), 0);
    shmchan_info info;
    tq_info(n, &info);
    T_EQ_U64(info.readers, 1);
    T_EQ_U64(info.writers, 1);
    /* The subscriber still holds the writer back, and gets everything. */
    char msg[64];
    uint32_t sent = 0;
    while (shmchan_queue_send(h.w, msg, (size_t)snprintf(msg, sizeof(msg), "%u", sent), 0) ==
           SHMCHAN_OK) {
        sent++;
        T_TRUE(sent < 1000);
    }
    char buf[64];
    size_t len = 0;
    T_OK(shmchan_queue_recv(h.s, buf, sizeof(buf), 0, &len, NULL));
    T_EQ_U64(len, 6);
    for (uint32_t i = 0; i < sent; i++) {
        T_OK(shmchan_queue_recv(h.s, buf, sizeof(buf), 0, &len, NULL));
        T_EQ_U64(len, (size_t)snprintf(msg, sizeof(msg), "%u", i));
        T_MEMEQ(buf, msg, len);
    }
    shmchan_queue_close(h.s);
    shmchan_queue_close(h.w);
}

static int
child_uses_latest(void *ctx)
{
    shmchan_latest *ch = ctx;
    char buf[64];
    size_t len = 0;
    void *p = NULL;
    int bad = 0;
    bad |= shmchan_latest_publish(ch, "child", 5, NULL) != SHMCHAN_EFORKED;
    bad |= shmchan_latest_begin(ch, &p) != SHMCHAN_EFORKED;
    bad |= shmchan_latest_read(ch, buf, sizeof(buf), &len, NULL) != SHMCHAN_EFORKED;
    bad |= shmchan_latest_wait(ch, 0, 0, NULL) != SHMCHAN_EFORKED;
    shmchan_latest_close(ch);
    return bad ? 1 : 0;
}

TEST(fork_latest_handle_stays_the_openers)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    T_OK(shmchan_latest_publish(ch, "parent", 6, NULL));
    T_EQ_U64(in_child(child_uses_latest, ch), 0);
    char buf[64];
    size_t len = 0;
    uint64_t seq = 0;
    T_OK(shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq));
    T_EQ_U64(seq, 1);
    T_MEMEQ(buf, "parent", 6);
    T_OK(shmchan_latest_publish(ch, "again", 5, &seq));
    T_EQ_U64(seq, 2);
    shmchan_latest_close(ch);
}

/* More handles than the old fixed table of 4 096 guarded mappings. */
TEST(many_handles_in_one_process)
{
    enum { N = 5000 };
    struct rlimit rl;
    T_TRUE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
    if (rl.rlim_cur < N + 100) {
        rl.rlim_cur = rl.rlim_max < N + 100 ? rl.rlim_max : N + 100;
        T_TRUE(setrlimit(RLIMIT_NOFILE, &rl) == 0);
    }
    if (rl.rlim_cur < N + 100) {
        fprintf(stderr, "skip: RLIMIT_NOFILE's hard limit %llu is below %d\n",
                (unsigned long long)rl.rlim_max, N + 100);
        return;
    }
    const char *n = t_name();
    static shmchan_latest *hs[N];
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    for (int i = 0; i < N; i++) {
        T_OK(shmchan_latest_open(n, &o, &hs[i]));
    }
    T_OK(shmchan_latest_publish(hs[N - 1], "last", 4, NULL));
    char buf[8];
    size_t len = 0;
    T_OK(shmchan_latest_read(hs[0], buf, sizeof(buf), &len, NULL));
    T_EQ_U64(len, 4);
    for (int i = 0; i < N; i++) {
        shmchan_latest_close(hs[i]);
    }
}
