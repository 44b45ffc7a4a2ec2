/*
 * Fuzz target: open a channel from arbitrary bytes.
 *
 * The input is written to a file and opened as every kind and role with
 * SHMCHAN_FILE; whatever opens has every read path run over it, and the
 * inspection calls run on the file. A second pass does the same after fixing
 * up the header's checksum and growing the file to the size the header claims,
 * so that inputs get past the checksum to the geometry checks and the readers
 * (the fuzzer learns the magic and the signature from the comparisons).
 *
 * Promises: no crash, no hang, no access out of bounds, outputs within bounds.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"

/* Header offsets (src/core/layout.h pins them). */
#define OFF_REGION_SIZE 40
#define OFF_CHECKSUM 108
#define GROW_MAX (4u << 20) /* grow to the claimed size up to this */

static uint32_t
fnv1a(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

static void
run_latest(const char *path, uint32_t extra)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_FILE | extra;
    shmchan_latest *ch = NULL;
    if (shmchan_latest_open(path, &o, &ch) == SHMCHAN_OK) {
        fz_latest_reads(ch, 0);
        if ((extra & SHMCHAN_RDONLY) == 0) {
            uint8_t msg[16] = "fuzz";
            (void)shmchan_latest_publish(ch, msg, sizeof(msg), NULL);
            fz_latest_reads(ch, 0);
        }
        shmchan_latest_close(ch);
    } else {
        FZ_CHECK(ch == NULL);
    }
}

static void
run_queue(const char *path, uint32_t extra)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_FILE | extra;
    shmchan_queue *q = NULL;
    if (shmchan_queue_open(path, &o, &q) == SHMCHAN_OK) {
        if (extra & (SHMCHAN_SUBSCRIBE | SHMCHAN_WORKER)) {
            fz_queue_reads(q);
        }
        shmchan_info info = {.struct_size = sizeof(info)};
        (void)shmchan_queue_info(q, &info);
        shmchan_queue_close(q);
    } else {
        FZ_CHECK(q == NULL);
    }
}

/* A service client and server (issue 16): one exchange, never waiting. */
static void
run_service(const char *path, uint32_t extra)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_FILE | extra;
    shmchan_service *s = NULL;
    if (shmchan_service_open(path, &o, &s) != SHMCHAN_OK) {
        FZ_CHECK(s == NULL);
        return;
    }
    uint8_t buf[64];
    size_t len = 0;
    if (extra & SHMCHAN_SERVER) {
        shmchan_request rq;
        if (shmchan_service_take(s, buf, sizeof(buf), 0, &rq) == SHMCHAN_OK) {
            FZ_CHECK(rq.len <= sizeof(buf));
            (void)shmchan_service_reply(s, &rq, "fuzz", 4, 0, 0);
        }
    } else if (shmchan_service_request(s, "fuzz", 4, 0, NULL) == SHMCHAN_OK) {
        shmchan_response info;
        int rc = shmchan_service_response(s, buf, sizeof(buf), 0, &len, &info);
        FZ_CHECK(rc != SHMCHAN_OK || len <= sizeof(buf));
    }
    shmchan_service_close(s);
}

static void
run_all(const char *path)
{
    fz_inspect(path, SHMCHAN_FILE);
    run_latest(path, SHMCHAN_RDONLY);
    run_latest(path, 0);
    run_queue(path, SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST);
    run_queue(path, SHMCHAN_WORKER);
    run_queue(path, 0);
    run_service(path, SHMCHAN_SERVER);
    run_service(path, 0);
    run_latest(path, SHMCHAN_CREATE); /* may rebuild what a "dead creator" left */
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    static const char *path;
    if (path == NULL) {
        path = fz_scratch("open");
    }
    fz_write_file(path, d, n);
    run_all(path);

    if (n < OFF_CHECKSUM + 4) {
        return 0;
    }
    uint8_t *fixed = malloc(n);
    FZ_CHECK(fixed != NULL);
    memcpy(fixed, d, n);
    uint32_t sum = fnv1a(fixed, OFF_CHECKSUM);
    memcpy(fixed + OFF_CHECKSUM, &sum, sizeof(sum));
    fz_write_file(path, fixed, n);
    uint64_t claimed = 0;
    memcpy(&claimed, fixed + OFF_REGION_SIZE, sizeof(claimed));
    free(fixed);
    if (claimed > n && claimed <= GROW_MAX) {
        FZ_CHECK(truncate(path, (off_t)claimed) == 0);
    }
    run_all(path);
    return 0;
}
