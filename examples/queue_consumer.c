#define _POSIX_C_SOURCE 200809L
/*
 * Queue subscriber: receives COUNT messages, each exactly once and in order,
 * sleeping in the kernel while the queue is empty. Pass "worker" as a fourth
 * argument to compete with other workers instead (each message goes to one).
 *
 *   queue_consumer NAME [COUNT] [TIMEOUT_MS] [worker]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <shmchan/shmchan.h>

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s NAME [COUNT] [TIMEOUT_MS] [worker]\n", argv[0]);
        return 2;
    }
    long count = argc > 2 ? atol(argv[2]) : 10;
    int64_t timeout = argc > 3 ? atol(argv[3]) : SHMCHAN_WAIT_FOREVER;
    bool worker = argc > 4 && strcmp(argv[4], "worker") == 0;

    shmchan_opts opts;
    shmchan_opts_init(&opts);
    opts.flags = SHMCHAN_CREATE | (worker ? SHMCHAN_WORKER : SHMCHAN_SUBSCRIBE);
    opts.max_msg = 256;
    opts.capacity = 64 * 1024;
    shmchan_queue *q = NULL;
    int rc = shmchan_queue_open(argv[1], &opts, &q);
    if (rc != SHMCHAN_OK) {
        fprintf(stderr, "queue_consumer: %s: %s\n", argv[1], shmchan_strerror(rc));
        return 1;
    }
    for (long got = 0; got < count; got++) {
        char buf[256];
        size_t len = 0;
        shmchan_msg info;
        rc = shmchan_queue_recv(q, buf, sizeof(buf), timeout, &len, &info);
        if (rc != SHMCHAN_OK) {
            fprintf(stderr, "queue_consumer: %s: %s\n", argv[1], shmchan_strerror(rc));
            break;
        }
        printf("%s %ld: #%llu \"%.*s\"\n", worker ? "worker" : "subscriber", (long)getpid(),
               (unsigned long long)info.seq, (int)len, buf);
        fflush(stdout);
    }
    shmchan_queue_close(q);
    return rc == SHMCHAN_OK ? 0 : 1;
}
