#define _GNU_SOURCE
/*
 * Several queues in a libuv loop: uv_poll_t watches each subscriber's
 * readiness descriptor; the callback drains with SHMCHAN_NO_WAIT and
 * re-arms. The same works for libevent (event_new(fd, EV_READ|EV_PERSIST))
 * and GLib (g_unix_fd_add).
 *
 *   event_loop_libuv NAME...     print every message as "NAME: text"
 *   event_loop_libuv --demo N    two queues, a child sends N to each; exits 0
 *                                when all 2N arrived (the test command runs it)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <shmchan/shmchan.h>

typedef struct watched {
    uv_poll_t poll;
    const char *name;
    shmchan_queue *q;
} watched;

static long total, stop_after;
static uv_timer_t idle_timer;

static void
on_ready(uv_poll_t *p, int status, int events)
{
    (void)events;
    watched *w = p->data;
    if (status < 0) {
        return;
    }
    char buf[4096];
    size_t len = 0;
    while (shmchan_queue_recv(w->q, buf, sizeof(buf), SHMCHAN_NO_WAIT, &len, NULL) ==
           SHMCHAN_OK) {
        printf("%s: %.*s\n", w->name, (int)len, buf);
        total++;
    }
    shmchan_queue_arm(w->q); /* a message that came meanwhile makes it ready at once */
    fflush(stdout);
    uv_timer_again(&idle_timer);
    if (stop_after != 0 && total >= stop_after) {
        uv_stop(p->loop);
    }
}

static void
on_idle(uv_timer_t *t)
{
    uv_stop(t->loop); /* 10 s without news: give up (a demo must not hang) */
}

static int
watch(uv_loop_t *loop, watched *w, const char *name)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_CREATE | SHMCHAN_SUBSCRIBE;
    int fd = -1;
    if (shmchan_queue_open(name, &o, &w->q) != SHMCHAN_OK ||
        shmchan_queue_notify(w->q, &fd) != SHMCHAN_OK) {
        fprintf(stderr, "%s: cannot subscribe\n", name);
        return -1;
    }
    w->name = name;
    uv_poll_init(loop, &w->poll, fd);
    w->poll.data = w;
    return uv_poll_start(&w->poll, UV_READABLE, on_ready);
}

/* Subscribe to every name and watch it in the default loop. */
static watched *
watch_all(char **names, int n)
{
    watched *ws = calloc((size_t)n, sizeof(*ws));
    for (int i = 0; i < n; i++) {
        if (ws == NULL || watch(uv_default_loop(), &ws[i], names[i]) != 0) {
            return NULL;
        }
    }
    return ws;
}

/* Run the loop over ws (closed and freed at the end). */
static long
run(watched *ws, int n)
{
    uv_loop_t *loop = uv_default_loop();
    if (ws == NULL) {
        return -1;
    }
    uv_timer_init(loop, &idle_timer);
    uv_timer_start(&idle_timer, on_idle, 10000, 10000);
    uv_run(loop, UV_RUN_DEFAULT);
    for (int i = 0; i < n; i++) {
        uv_poll_stop(&ws[i].poll); /* stop watching before closing the handle */
        shmchan_queue_close(ws[i].q);
    }
    free(ws);
    return total;
}

static int
demo(long count)
{
    char a[32], b[32];
    snprintf(a, sizeof(a), "uvdemo-a%d", (int)getpid());
    snprintf(b, sizeof(b), "uvdemo-b%d", (int)getpid());
    char *names[] = {a, b};
    watched *ws = watch_all(names, 2); /* subscribed before the child sends */
    pid_t child = fork();
    if (child == 0) {
        shmchan_opts o;
        shmchan_opts_init(&o);
        shmchan_queue *w[2] = {NULL, NULL};
        if (shmchan_queue_open(a, &o, &w[0]) != SHMCHAN_OK ||
            shmchan_queue_open(b, &o, &w[1]) != SHMCHAN_OK) {
            _exit(1);
        }
        for (long m = 0; m < count; m++) {
            char text[64];
            int len = snprintf(text, sizeof(text), "message %ld", m);
            shmchan_queue_send(w[0], text, (size_t)len, 5000);
            shmchan_queue_send(w[1], text, (size_t)len, 5000);
            usleep(1000);
        }
        _exit(0);
    }
    stop_after = 2 * count;
    long got = run(ws, 2);
    int st = 0;
    waitpid(child, &st, 0);
    shmchan_unlink(a, 0);
    shmchan_unlink(b, 0);
    fprintf(stderr, "event_loop_libuv: %ld of %ld messages\n", got, 2 * count);
    return got == 2 * count && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--demo") == 0) {
        return demo(atol(argv[2]));
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s NAME... | --demo N\n", argv[0]);
        return 2;
    }
    return run(watch_all(argv + 1, argc - 1), argc - 1) < 0 ? 1 : 0;
}
