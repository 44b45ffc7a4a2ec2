/*
 * Writes the seed corpus of the fuzz targets from channels made by the
 * library itself, so the seeds follow the layout whatever it becomes:
 *   make_corpus DIR      (DIR/fuzz_open, DIR/fuzz_latest_hostile, ...)
 * Run by scripts/test-fuzz.sh --regen-corpus; the output is committed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/layout.h"
#include "shmchan/shmchan.h"

#define CTL_OFF SHMCHAN__HDR_SIZE
#define CTL_LINES offsetof(shmchan__latest_ctl, lock) /* the latest control block's counters */

static const char *outdir;
static char scratch[128];

static void
die(const char *what, int rc)
{
    fprintf(stderr, "make_corpus: %s: %s\n", what, shmchan_strerror(rc));
    exit(1);
}

static uint8_t *
slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        die(path, SHMCHAN_ESYS);
    }
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(*n ? *n : 1);
    if (p == NULL || fread(p, 1, *n, f) != *n) {
        die(path, SHMCHAN_ESYS);
    }
    fclose(f);
    return p;
}

/* One seed: an optional leading mode byte, then n bytes of p. */
static void
seed(const char *target, const char *name, int mode, const uint8_t *p, size_t n)
{
    char dir[512], path[1024];
    snprintf(dir, sizeof(dir), "%s/%s", outdir, target);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        die(dir, SHMCHAN_ESYS);
    }
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        die(path, SHMCHAN_ESYS);
    }
    if (mode >= 0) {
        fputc(mode, f);
    }
    fwrite(p, 1, n, f);
    fclose(f);
}

static void
publish_n(shmchan_latest *ch, int count)
{
    size_t max = shmchan_latest_max_msg(ch);
    for (int i = 0; i < count; i++) {
        char msg[64];
        int len = snprintf(msg, sizeof(msg), "message %d from the seed", i);
        int rc = shmchan_latest_publish(ch, msg, (size_t)len < max ? (size_t)len : max, NULL);
        if (rc != SHMCHAN_OK) {
            die("publish", rc);
        }
    }
}

static void
latest_seeds(void)
{
    static const struct {
        const char *name;
        uint64_t max_msg;
        int publishes;
        bool dangling; /* a begun, never committed publish: what a dead writer leaves */
    } kinds[] = {
        {"latest-empty", 64, 0, false},    {"latest-one", 64, 1, false},
        {"latest-lapped", 64, 6, false},   {"latest-dead-writer", 64, 3, true},
        {"latest-tiny", 1, 2, false},
    };
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        unlink(scratch);
        shmchan_opts o;
        shmchan_opts_init(&o);
        o.flags = SHMCHAN_FILE | SHMCHAN_CREATE | SHMCHAN_EXCL;
        o.max_msg = kinds[k].max_msg;
        shmchan_latest *ch = NULL;
        int rc = shmchan_latest_open(scratch, &o, &ch);
        if (rc != SHMCHAN_OK) {
            die("latest_open", rc);
        }
        publish_n(ch, kinds[k].publishes);
        void *buf = NULL;
        if (kinds[k].dangling && shmchan_latest_begin(ch, &buf) == SHMCHAN_OK) {
            memset(buf, 'X', 16);
        }
        size_t n = 0;
        uint8_t *img = slurp(scratch, &n);
        seed("fuzz_open", kinds[k].name, -1, img, n);
        if (kinds[k].max_msg == 64 && kinds[k].publishes == 6) {
            /* Patch mode: one record that rewrites the sequence word. */
            uint8_t rec[10] = {0};
            memcpy(rec + 2, img + CTL_OFF, 8);
            seed("fuzz_latest_hostile", "patch-seq", 8 | 3, rec, sizeof(rec));
        }
        if (kinds[k].max_msg == 64) {
            size_t data_off = 4096;
            char name[64];
            snprintf(name, sizeof(name), "%s-ctl", kinds[k].name);
            seed("fuzz_latest_hostile", name, 3, img + CTL_OFF, CTL_LINES);
            snprintf(name, sizeof(name), "%s-data", kinds[k].name);
            seed("fuzz_latest_hostile", name, 1, img + data_off, n - data_off);
            snprintf(name, sizeof(name), "%s-all", kinds[k].name);
            seed("fuzz_latest_hostile", name, 2 | 4, img, n);
        }
        if (k == 2) {
            seed("fuzz_open", "latest-header-only", -1, img, 256);
            seed("fuzz_open", "latest-half-header", -1, img, 100);
            uint8_t unready[256];
            memcpy(unready, img, sizeof(unready));
            memset(unready + 112, 0, 4); /* state: a creator died before READY */
            seed("fuzz_open", "latest-unready", -1, unready, sizeof(unready));
        }
        free(img);
        if (buf != NULL) {
            (void)shmchan_latest_abort(ch);
        }
        shmchan_latest_close(ch);
    }
}

static void
queue_seeds(void)
{
    static const uint32_t policies[] = {SHMCHAN_POLICY_BLOCK, SHMCHAN_POLICY_OVERWRITE};
    for (size_t k = 0; k < 2; k++) {
        unlink(scratch);
        shmchan_opts o;
        shmchan_opts_init(&o);
        o.flags = SHMCHAN_FILE | SHMCHAN_CREATE | SHMCHAN_EXCL;
        o.policy = policies[k];
        o.max_msg = 200;
        o.capacity = 4096;
        o.max_readers = 4;
        o.max_writers = 4;
        shmchan_queue *q = NULL, *sub = NULL;
        int rc = shmchan_queue_open(scratch, &o, &q);
        if (rc != SHMCHAN_OK) {
            die("queue_open", rc);
        }
        shmchan_opts s;
        shmchan_opts_init(&s);
        s.flags = SHMCHAN_FILE | SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST;
        if ((rc = shmchan_queue_open(scratch, &s, &sub)) != SHMCHAN_OK) {
            die("queue subscribe", rc);
        }
        for (int i = 0; i < 8; i++) {
            char msg[200];
            memset(msg, 'a' + i, sizeof(msg));
            (void)shmchan_queue_send(q, msg, 5u + 20u * (size_t)i, 0);
        }
        char got[200];
        size_t len = 0;
        (void)shmchan_queue_recv(sub, got, sizeof(got), 0, &len, NULL);
        size_t n = 0;
        uint8_t *img = slurp(scratch, &n);
        uint64_t ctl_off, data_off;
        memcpy(&ctl_off, img + 64, 8);
        memcpy(&data_off, img + 80, 8);
        char name[64];
        snprintf(name, sizeof(name), "queue-%s", k == 0 ? "block" : "overwrite");
        seed("fuzz_open", name, -1, img, n);
        snprintf(name, sizeof(name), "queue-%s-ctl", k == 0 ? "block" : "overwrite");
        seed("fuzz_queue_hostile", name, 0, img + ctl_off, (size_t)(data_off - ctl_off));
        snprintf(name, sizeof(name), "queue-%s-data", k == 0 ? "block" : "overwrite");
        seed("fuzz_queue_hostile", name, 1, img + data_off, n - (size_t)data_off);
        uint8_t rec[10] = {0};
        memcpy(rec + 2, img + ctl_off, 8);
        snprintf(name, sizeof(name), "queue-%s-patch", k == 0 ? "block" : "overwrite");
        seed("fuzz_queue_hostile", name, 8, rec, sizeof(rec));
        free(img);
        shmchan_queue_close(sub);
        shmchan_queue_close(q);
    }
}

/* A service (issue 16) with a request taken and answered and one pending:
 * its first pages only (header, control block, request ring, server table);
 * fuzz_open's second pass grows the file to the size the header claims. */
static void
service_seeds(void)
{
    unlink(scratch);
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_FILE | SHMCHAN_CREATE | SHMCHAN_EXCL | SHMCHAN_SERVER;
    o.max_msg = 64;
    o.capacity = 256;
    o.max_readers = 1;
    o.max_writers = 1;
    shmchan_service *srv = NULL, *cl = NULL;
    int rc = shmchan_service_open(scratch, &o, &srv);
    if (rc != SHMCHAN_OK) {
        die("service_open", rc);
    }
    shmchan_opts c;
    shmchan_opts_init(&c);
    c.flags = SHMCHAN_FILE;
    if ((rc = shmchan_service_open(scratch, &c, &cl)) != SHMCHAN_OK) {
        die("service client", rc);
    }
    uint8_t buf[64];
    shmchan_request rq;
    (void)shmchan_service_request(cl, "first", 5, 0, NULL);
    if (shmchan_service_take(srv, buf, sizeof(buf), 0, &rq) == SHMCHAN_OK) {
        (void)shmchan_service_reply(srv, &rq, "answer", 6, 0, 0);
    }
    (void)shmchan_service_request(cl, "second", 6, 0, NULL);
    size_t n = 0;
    uint8_t *img = slurp(scratch, &n);
    uint64_t data_off;
    memcpy(&data_off, img + 80, 8);
    size_t keep = (size_t)data_off + 3 * SHMCHAN__PAGE;
    seed("fuzz_open", "service-pending", -1, img, keep < n ? keep : n);
    free(img);
    shmchan_service_close(cl);
    shmchan_service_close(srv);
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        die(outdir, SHMCHAN_ESYS);
    }
    snprintf(scratch, sizeof(scratch), "/dev/shm/shmchan-corpus-%d", (int)getpid());
    latest_seeds();
    queue_seeds();
    service_seeds();
    unlink(scratch);
    uint8_t junk[300];
    for (size_t i = 0; i < sizeof(junk); i++) {
        junk[i] = (uint8_t)(i * 37u + 11u);
    }
    seed("fuzz_open", "foreign", -1, junk, sizeof(junk));
    seed("fuzz_open", "empty", -1, junk, 0);
    return 0;
}
