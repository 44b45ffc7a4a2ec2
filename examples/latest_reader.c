#define _POSIX_C_SOURCE 200809L
/*
 * The recipe's reader, done right: prints each new message as it arrives.
 * It sleeps in the kernel until the writer publishes (no polling interval),
 * and every message it prints is whole: never a mix of two.
 *
 *   latest_reader NAME [COUNT] [TIMEOUT_MS]     (COUNT 0: for ever)
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <shmchan/shmchan.h>

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s NAME [COUNT] [TIMEOUT_MS]\n", argv[0]);
        return 2;
    }
    long count = argc > 2 ? atol(argv[2]) : 0;
    int64_t timeout = argc > 3 ? atol(argv[3]) : SHMCHAN_WAIT_FOREVER;

    shmchan_opts opts;
    shmchan_opts_init(&opts);
    opts.flags = SHMCHAN_CREATE; /* readers may start first */
    opts.max_msg = 1024;
    shmchan_latest *ch = NULL;
    int rc = shmchan_latest_open(argv[1], &opts, &ch);
    if (rc != SHMCHAN_OK) {
        fprintf(stderr, "latest_reader: %s: %s\n", argv[1], shmchan_strerror(rc));
        return 1;
    }
    uint64_t seen = shmchan_latest_seq(ch); /* only what comes after we start */
    for (long got = 0; count == 0 || got < count; got++) {
        char buf[1024];
        size_t len = 0;
        rc = shmchan_latest_read_next(ch, seen, buf, sizeof(buf), timeout, &len, &seen);
        if (rc != SHMCHAN_OK) {
            fprintf(stderr, "latest_reader: %s: %s\n", argv[1], shmchan_strerror(rc));
            break;
        }
        printf("reader %ld: #%llu \"%.*s\"\n", (long)getpid(), (unsigned long long)seen,
               (int)len, buf);
        fflush(stdout);
    }
    shmchan_latest_close(ch);
    return rc == SHMCHAN_OK ? 0 : 1;
}
