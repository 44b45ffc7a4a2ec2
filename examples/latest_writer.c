#define _POSIX_C_SOURCE 200809L
/*
 * The recipe's writer, done right: publishes "msg N" on a latest-value
 * channel once per interval. Readers always get a whole message with its
 * sequence number and sleep until the next one; nothing is NUL-padded.
 *
 *   latest_writer NAME [COUNT] [INTERVAL_MS]     (COUNT 0: for ever)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <shmchan/shmchan.h>

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s NAME [COUNT] [INTERVAL_MS]\n", argv[0]);
        return 2;
    }
    long count = argc > 2 ? atol(argv[2]) : 0;
    long interval = argc > 3 ? atol(argv[3]) : 1000;

    shmchan_opts opts;
    shmchan_opts_init(&opts);
    opts.flags = SHMCHAN_CREATE; /* open it, or create it if nobody has yet */
    opts.max_msg = 1024;
    shmchan_latest *ch = NULL;
    int rc = shmchan_latest_open(argv[1], &opts, &ch);
    if (rc != SHMCHAN_OK) {
        fprintf(stderr, "latest_writer: %s: %s\n", argv[1], shmchan_strerror(rc));
        return 1;
    }
    for (long n = 1; count == 0 || n <= count; n++) {
        char msg[64];
        int len = snprintf(msg, sizeof(msg), "msg %ld", n);
        uint64_t seq = 0;
        rc = shmchan_latest_publish(ch, msg, (size_t)len, &seq);
        if (rc != SHMCHAN_OK) {
            fprintf(stderr, "latest_writer: publish: %s\n", shmchan_strerror(rc));
            break;
        }
        printf("writer: published \"%s\" as #%llu\n", msg, (unsigned long long)seq);
        fflush(stdout);
        if (count == 0 || n < count) {
            sleep_ms(interval);
        }
    }
    shmchan_latest_close(ch);
    return rc == SHMCHAN_OK ? 0 : 1;
}
