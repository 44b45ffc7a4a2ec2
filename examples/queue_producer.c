#define _POSIX_C_SOURCE 200809L
/*
 * Queue producer: sends COUNT numbered messages into a queue. Every
 * subscriber gets every one of them, in order; in the default block policy
 * the producer waits for the slowest live subscriber instead of losing any.
 *
 *   queue_producer NAME [COUNT] [INTERVAL_MS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <shmchan/shmchan.h>

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s NAME [COUNT] [INTERVAL_MS]\n", argv[0]);
        return 2;
    }
    long count = argc > 2 ? atol(argv[2]) : 10;
    long interval = argc > 3 ? atol(argv[3]) : 0;

    shmchan_opts opts;
    shmchan_opts_init(&opts);
    opts.flags = SHMCHAN_CREATE;
    opts.max_msg = 256;
    opts.capacity = 64 * 1024;
    shmchan_queue *q = NULL;
    int rc = shmchan_queue_open(argv[1], &opts, &q);
    if (rc != SHMCHAN_OK) {
        fprintf(stderr, "queue_producer: %s: %s\n", argv[1], shmchan_strerror(rc));
        return 1;
    }
    for (long n = 1; n <= count && rc == SHMCHAN_OK; n++) {
        char msg[64];
        int len = snprintf(msg, sizeof(msg), "job %ld", n);
        rc = shmchan_queue_send(q, msg, (size_t)len, 5000);
        if (rc == SHMCHAN_OK) {
            printf("producer: sent \"%s\"\n", msg);
            fflush(stdout);
        }
        if (interval > 0) {
            struct timespec ts = {interval / 1000, (interval % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (rc != SHMCHAN_OK) {
        fprintf(stderr, "queue_producer: send: %s\n", shmchan_strerror(rc));
    }
    shmchan_queue_close(q);
    return rc == SHMCHAN_OK ? 0 : 1;
}
