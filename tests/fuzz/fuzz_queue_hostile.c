/*
 * Fuzz target: a hostile writer of a queue.
 *
 * A valid queue (block mode, small ring) is created once with a few messages
 * in it. Before each input its bytes are restored; then a subscriber and a
 * worker join, the input overwrites a part of the region any process with
 * write access could scribble on (the control block with the positions, the
 * reader and writer tables, the ring's record headers and payloads, or the
 * header too), and every receive path, the counters, the peer list and a
 * send with no wait run over it; closing the handles runs over it as well.
 * The parts are found from the header's offsets, so the target needs no
 * knowledge of the queue's own structs.
 *
 * The queue's mutexes or locks, if it has any, are not spared: a forged lock
 * may make a writer give up (timeout 0 here) but must never block a reader.
 *
 * Input: byte 0 chooses the target range (0 control block, 1 data: tables and
 * ring, 2 everything from the header on, 3 the end of the data: the ring) and
 * with bit 3 how the rest applies (patch records, see fz_scribble; else copied
 * over the range).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/layout.h"
#include "fuzz_common.h"

#define OFF_CTL_OFF offsetof(shmchan__hdr, ctl_off) /* header offsets */
#define OFF_DATA_OFF offsetof(shmchan__hdr, data_off)

static const char *path;
static uint8_t *raw, *pristine;
static size_t region_size, ctl_off, data_off;
static shmchan_queue *writer;

static uint64_t
u64_at(const uint8_t *p, size_t off)
{
    uint64_t v;
    memcpy(&v, p + off, sizeof(v));
    return v;
}

static void
setup(void)
{
    path = fz_scratch("queue");
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_FILE | SHMCHAN_CREATE | SHMCHAN_EXCL;
    o.policy = SHMCHAN_POLICY_BLOCK;
    o.max_msg = 200;
    o.capacity = 4096;
    o.max_readers = 4;
    o.max_writers = 4;
    FZ_CHECK(shmchan_queue_open(path, &o, &writer) == SHMCHAN_OK);
    /* A subscriber that stays at the oldest message keeps a few in the ring. */
    shmchan_queue *sub = NULL;
    o.flags = SHMCHAN_FILE | SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST;
    o.policy = 0;
    o.max_msg = o.capacity = 0;
    o.max_readers = o.max_writers = 0;
    FZ_CHECK(shmchan_queue_open(path, &o, &sub) == SHMCHAN_OK);
    for (int i = 0; i < 8; i++) {
        uint8_t msg[200];
        memset(msg, 'a' + i, sizeof(msg));
        FZ_CHECK(shmchan_queue_send(writer, msg, 5u + 20u * (size_t)i, 0) == SHMCHAN_OK);
    }
    shmchan_info info = {.struct_size = sizeof(info)};
    FZ_CHECK(shmchan_queue_info(writer, &info) == SHMCHAN_OK);
    region_size = (size_t)info.region_size;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    FZ_CHECK(fd >= 0);
    raw = mmap(NULL, region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    FZ_CHECK(raw != MAP_FAILED);
    close(fd);
    ctl_off = (size_t)u64_at(raw, OFF_CTL_OFF);
    data_off = (size_t)u64_at(raw, OFF_DATA_OFF);
    FZ_CHECK(ctl_off < data_off && data_off < region_size);
    pristine = mmap(NULL, region_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    FZ_CHECK(pristine != MAP_FAILED);
    memcpy(pristine, raw, region_size);
    /* The subscriber's slot stays in the image as a reader that never reads
     * (its liveness lock is gone: a dead reader for the others to reclaim). */
    shmchan_queue_close(sub);
    memcpy(raw, pristine, region_size);
}

static shmchan_queue *
join(uint32_t role)
{
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_FILE | role;
    shmchan_queue *q = NULL;
    int rc = shmchan_queue_open(path, &o, &q);
    FZ_CHECK(rc == SHMCHAN_OK || q == NULL);
    return rc == SHMCHAN_OK ? q : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    if (path == NULL) {
        setup();
    }
    if (n == 0) {
        return 0;
    }
    size_t start, room;
    bool patch = (d[0] & 8) != 0;
    switch (d[0] & 3) {
    case 0:
        start = ctl_off;
        room = data_off - ctl_off;
        break;
    case 1:
        start = data_off;
        room = region_size - data_off;
        break;
    case 2:
        start = 0;
        room = region_size;
        break;
    default:
        start = region_size > 4096 ? region_size - 4096 : data_off;
        room = region_size - start;
        break;
    }
    d++;
    n--;
    memcpy(raw, pristine, region_size);
    shmchan_queue *sub = join(SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST);
    shmchan_queue *worker = join(SHMCHAN_WORKER);
    fz_scribble(raw + start, room, d, n, patch);

    if (sub != NULL) {
        fz_queue_reads(sub);
    }
    if (worker != NULL) {
        fz_queue_reads(worker);
    }
    fz_inspect(path, SHMCHAN_FILE);
    uint8_t msg[64];
    memset(msg, 'w', sizeof(msg));
    (void)shmchan_queue_send(writer, msg, sizeof(msg), 0);
    void *buf = NULL;
    if (shmchan_queue_reserve(writer, 32, 0, &buf) == SHMCHAN_OK) {
        fz_touch(buf, 32);
        (void)shmchan_queue_abort(writer);
    }
    if (sub != NULL) {
        fz_queue_reads(sub);
    }
    shmchan_queue *late = join(SHMCHAN_SUBSCRIBE);
    if (late != NULL) {
        fz_queue_reads(late);
        shmchan_queue_close(late);
    }
    shmchan_queue_close(sub);
    shmchan_queue_close(worker);
    return 0;
}
