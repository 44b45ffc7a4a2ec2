/* Shared parts of the fuzz targets (see fuzz_common.h). */
#include "fuzz_common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
fz_broken(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: promise broken: %s\n", file, line, what);
    abort();
}

#define MAX_SCRATCH 8
static char scratch[MAX_SCRATCH][512];
static int nscratch;

static void
remove_scratch(void)
{
    for (int i = 0; i < nscratch; i++) {
        (void)unlink(scratch[i]);
    }
}

const char *
fz_scratch(const char *tag)
{
    FZ_CHECK(nscratch < MAX_SCRATCH);
    if (nscratch == 0) {
        atexit(remove_scratch);
    }
    const char *dir = getenv("SHMCHAN_FUZZ_DIR"); /* the script's, removed after a crash */
    snprintf(scratch[nscratch], sizeof(scratch[0]), "%s/shmchan-fuzz-%s-%d",
             dir != NULL ? dir : "/dev/shm", tag, (int)getpid());
    (void)unlink(scratch[nscratch]);
    return scratch[nscratch++];
}

void
fz_write_file(const char *path, const uint8_t *d, size_t n)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FZ_CHECK(fd >= 0);
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, d + done, n - done);
        FZ_CHECK(w > 0);
        done += (size_t)w;
    }
    close(fd);
}

void
fz_touch(const void *p, uint64_t n)
{
    const volatile uint8_t *b = p;
    uint8_t sum = 0;
    for (uint64_t i = 0; i < n; i++) {
        sum ^= b[i];
    }
    (void)sum;
}

void
fz_scribble(uint8_t *dst, size_t room, const uint8_t *d, size_t n, bool patch)
{
    if (!patch) {
        memcpy(dst, d, n < room ? n : room);
        return;
    }
    for (; n >= 10 && room >= 8; d += 10, n -= 10) {
        uint16_t off;
        memcpy(&off, d, sizeof(off));
        size_t at = ((size_t)off * 8) % (room - room % 8);
        memcpy(dst + at, d + 2, 8);
    }
}

/* A read's outputs: within the channel's bounds and the caller's buffer. */
static void
check_read(int rc, size_t len, size_t cap, size_t max_msg)
{
    if (rc == SHMCHAN_OK) {
        FZ_CHECK(len <= cap && len <= max_msg);
    } else if (rc == SHMCHAN_EMSGSIZE) {
        FZ_CHECK(len > cap && len <= max_msg);
    }
}

void
fz_latest_reads(shmchan_latest *ch, int sleep_ms)
{
    static uint8_t big[1 << 16];
    uint8_t small[8];
    size_t max_msg = shmchan_latest_max_msg(ch);
    /* A caller's buffer may well be larger than max_msg: lengths must be
     * bounded by the channel, not only by the buffer. */
    size_t cap = sizeof(big);
    size_t len = 0;
    uint64_t seq = 0;
    int rc = shmchan_latest_read(ch, big, cap, &len, &seq);
    check_read(rc, len, cap, max_msg);
    rc = shmchan_latest_read(ch, small, sizeof(small), &len, &seq);
    check_read(rc, len, sizeof(small), max_msg);
    shmchan_msg m;
    if (shmchan_latest_view(ch, &m) == SHMCHAN_OK) {
        FZ_CHECK(m.len <= max_msg);
        fz_touch(m.data, m.len);
        rc = shmchan_latest_view_check(ch, &m);
        FZ_CHECK(rc == SHMCHAN_OK || rc == SHMCHAN_ESTALE || rc == SHMCHAN_ETRUNCATED);
    }
    (void)shmchan_latest_wait(ch, shmchan_latest_seq(ch), 0, &seq);
    (void)shmchan_latest_wait(ch, 0, 0, &seq);
    /* read_next after every recent sequence: its fast path reads the
     * successor's buffer directly. */
    uint64_t newest = shmchan_latest_seq(ch);
    uint64_t after = newest > 4 ? newest - 4 : 0;
    for (int i = 0; i < 6; i++, after++) {
        rc = shmchan_latest_read_next(ch, after, big, cap, 0, &len, &seq);
        check_read(rc, len, cap, max_msg);
        rc = shmchan_latest_read_next(ch, after, small, sizeof(small), 0, &len, &seq);
        check_read(rc, len, sizeof(small), max_msg);
    }
    if (sleep_ms > 0) {
        rc = shmchan_latest_wait(ch, UINT64_MAX - 1, sleep_ms, &seq);
        FZ_CHECK(rc != SHMCHAN_OK || seq == UINT64_MAX);
    }
}

void
fz_queue_reads(shmchan_queue *q)
{
    static uint8_t big[1 << 16];
    static uint8_t packed[1 << 16];
    uint8_t small[8];
    size_t max_msg = shmchan_queue_max_msg(q);
    size_t cap = sizeof(big);
    size_t len = 0;
    shmchan_msg info;
    for (int i = 0; i < 4; i++) {
        int rc = shmchan_queue_recv(q, big, cap, 0, &len, &info);
        check_read(rc, len, cap, max_msg);
        if (rc == SHMCHAN_OK) {
            FZ_CHECK(info.len == len);
        }
    }
    int rc = shmchan_queue_recv(q, small, sizeof(small), 0, &len, &info);
    check_read(rc, len, sizeof(small), max_msg);
    shmchan_msg m;
    if (shmchan_queue_peek(q, 0, &m) == SHMCHAN_OK) {
        FZ_CHECK(m.len <= max_msg);
        fz_touch(m.data, m.len);
        rc = shmchan_queue_release(q);
        FZ_CHECK(rc == SHMCHAN_OK || rc == SHMCHAN_ESTALE || rc == SHMCHAN_ETRUNCATED);
    }
    shmchan_msg msgs[16];
    size_t count = 0;
    rc = shmchan_queue_recv_batch(q, packed, sizeof(packed), 16, 0, msgs, &count);
    if (rc == SHMCHAN_OK) {
        FZ_CHECK(count >= 1 && count <= 16);
        for (size_t i = 0; i < count; i++) {
            const uint8_t *d = msgs[i].data;
            FZ_CHECK(msgs[i].len <= max_msg);
            FZ_CHECK(d >= packed && d + msgs[i].len <= packed + sizeof(packed));
        }
    }
    shmchan_info qi = {.struct_size = sizeof(qi)};
    (void)shmchan_queue_info(q, &qi);
}

void
fz_inspect(const char *name, uint32_t flags)
{
    shmchan_info info = {.struct_size = sizeof(info)};
    (void)shmchan_info_get(name, flags, &info);
    shmchan_peer peers[8];
    size_t count = 0;
    int rc = shmchan_peers_get(name, flags, peers, 8, &count);
    if (rc == SHMCHAN_OK) {
        for (size_t i = 0; i < count && i < 8; i++) {
            FZ_CHECK(peers[i].role >= SHMCHAN_PEER_WRITER && peers[i].role <= SHMCHAN_PEER_CLIENT);
        }
    }
    int removed = 0;
    (void)shmchan_reap(name, flags, true, &removed);
}
