#define _GNU_SOURCE
/*
 * Several queues in one epoll loop, one thread, no polling: each subscriber's
 * readiness handle is a file descriptor that epoll reports readable when the
 * subscriber has messages. Drain with SHMCHAN_NO_WAIT, then re-arm.
 *
 *   event_loop_epoll NAME...     print every message as "NAME: text"
 *   event_loop_epoll --demo N    two queues, a child sends N to each; exits 0
 *                                when all 2N arrived (the test command runs it)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <shmchan/shmchan.h>

#define MAX_QUEUES 64

static shmchan_queue *
subscribe(const char *name)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_CREATE | SHMCHAN_SUBSCRIBE;
    shmchan_queue *q = NULL;
    int rc = shmchan_queue_open(name, &o, &q);
    if (rc != SHMCHAN_OK) {
        fprintf(stderr, "%s: %s\n", name, shmchan_strerror(rc));
        exit(1);
    }
    return q;
}

/* Receive everything there is, then re-arm; returns how many. */
static long
drain(const char *name, shmchan_queue *q)
{
    char buf[4096];
    size_t len = 0;
    long n = 0;
    while (shmchan_queue_recv(q, buf, sizeof(buf), SHMCHAN_NO_WAIT, &len, NULL) == SHMCHAN_OK) {
        printf("%s: %.*s\n", name, (int)len, buf);
        n++;
    }
    shmchan_queue_arm(q); /* a message that came meanwhile makes it ready at once */
    return n;
}

/* Wait on the subscribers qs (closed at the end) until stop_after messages
 * arrived (0: for ever) or 10 s pass without news. */
static long
loop(char **names, shmchan_queue **qs, int n, long stop_after)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (int i = 0; i < n; i++) {
        int fd = -1;
        if (shmchan_queue_notify(qs[i], &fd) != SHMCHAN_OK) {
            return -1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    long total = 0;
    while (stop_after == 0 || total < stop_after) {
        struct epoll_event evs[MAX_QUEUES];
        int k = epoll_wait(ep, evs, MAX_QUEUES, 10000);
        if (k <= 0) {
            break; /* 10 s without news: give up (a demo must not hang) */
        }
        for (int j = 0; j < k; j++) {
            uint32_t i = evs[j].data.u32;
            total += drain(names[i], qs[i]);
        }
        fflush(stdout);
    }
    for (int i = 0; i < n; i++) {
        shmchan_queue_close(qs[i]);
    }
    close(ep);
    return total;
}

static int
demo(long count)
{
    char a[32], b[32];
    snprintf(a, sizeof(a), "evdemo-a%d", (int)getpid());
    snprintf(b, sizeof(b), "evdemo-b%d", (int)getpid());
    char *names[] = {a, b};
    /* Subscribe before the child sends, so that nothing is missed. */
    shmchan_queue *qs[2] = {subscribe(a), subscribe(b)};
    pid_t child = fork();
    if (child == 0) {
        shmchan_queue *w[2] = {NULL, NULL};
        for (int i = 0; i < 2; i++) {
            shmchan_opts o;
            shmchan_opts_init(&o);
            if (shmchan_queue_open(names[i], &o, &w[i]) != SHMCHAN_OK) {
                _exit(1);
            }
        }
        for (long m = 0; m < count; m++) {
            char text[64];
            int len = snprintf(text, sizeof(text), "message %ld", m);
            shmchan_queue_send(w[m % 2], text, (size_t)len, 5000);
            shmchan_queue_send(w[(m + 1) % 2], text, (size_t)len, 5000);
            usleep(1000);
        }
        _exit(0);
    }
    long got = loop(names, qs, 2, 2 * count);
    int st = 0;
    waitpid(child, &st, 0);
    shmchan_unlink(a, 0);
    shmchan_unlink(b, 0);
    fprintf(stderr, "event_loop_epoll: %ld of %ld messages\n", got, 2 * count);
    return got == 2 * count && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--demo") == 0) {
        return demo(atol(argv[2]));
    }
    if (argc < 2 || argc - 1 > MAX_QUEUES) {
        fprintf(stderr, "usage: %s NAME... | --demo N\n", argv[0]);
        return 2;
    }
    shmchan_queue *qs[MAX_QUEUES];
    for (int i = 0; i < argc - 1; i++) {
        qs[i] = subscribe(argv[i + 1]);
    }
    return loop(argv + 1, qs, argc - 1, 0) < 0 ? 1 : 0;
}
