/*
 * Fuzz target: a hostile writer of a latest-value channel.
 *
 * A valid channel is created once; before each input its bytes are restored,
 * then the input overwrites a part of the shared region that any process
 * with write access could scribble on (the control block, the buffers' tags,
 * lengths and payloads, or the header too). Then every reader path runs over
 * it, on a read-write and a read-only handle, a well-behaved writer publishes
 * and the readers run again, and the inspection calls reopen the channel.
 *
 * The writers' lock and slots are scribbled too: a forged lock word names no
 * live holder here (the one writer's own word, a free or dead slot, no slot),
 * so the writer's publish must recover it and complete (docs/security.md).
 *
 * Input: byte 0 chooses the target range (bits 0-1), whether waits sleep
 * (bit 2) and how the rest applies (bit 3: patch records, see fz_scribble;
 * else copied over the range).
 */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/layout.h"
#include "fuzz_common.h"

#define MAX_MSG 64
#define CTL_OFF SHMCHAN__HDR_SIZE /* the control block follows the header */
#define DATA_OFF SHMCHAN__PAGE    /* first page after header and control block */

static const char *path;
static uint8_t *raw;        /* our own mapping of the whole file */
static uint8_t *pristine;   /* the bytes as created */
static size_t region_size;
static shmchan_latest *writer, *reader, *rdonly;

static void
setup(void)
{
    path = fz_scratch("latest");
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_FILE | SHMCHAN_CREATE | SHMCHAN_EXCL;
    o.max_msg = MAX_MSG;
    FZ_CHECK(shmchan_latest_open(path, &o, &writer) == SHMCHAN_OK);
    o.flags = SHMCHAN_FILE;
    o.spin_ns = SHMCHAN_SPIN_NONE;
    FZ_CHECK(shmchan_latest_open(path, &o, &reader) == SHMCHAN_OK);
    o.flags = SHMCHAN_FILE | SHMCHAN_RDONLY;
    FZ_CHECK(shmchan_latest_open(path, &o, &rdonly) == SHMCHAN_OK);
    for (int i = 0; i < 6; i++) {
        uint8_t msg[MAX_MSG];
        memset(msg, 'a' + i, sizeof(msg));
        FZ_CHECK(shmchan_latest_publish(writer, msg, 10u + (size_t)i, NULL) == SHMCHAN_OK);
    }
    shmchan_info info = {.struct_size = sizeof(info)};
    FZ_CHECK(shmchan_info_get(path, SHMCHAN_FILE, &info) == SHMCHAN_OK);
    region_size = (size_t)info.region_size;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    FZ_CHECK(fd >= 0);
    raw = mmap(NULL, region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    FZ_CHECK(raw != MAP_FAILED);
    close(fd);
    pristine = mmap(NULL, region_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    FZ_CHECK(pristine != MAP_FAILED);
    memcpy(pristine, raw, region_size);
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
    static const size_t starts[4] = {CTL_OFF, DATA_OFF, 0, CTL_OFF};
    size_t start = starts[d[0] & 3];
    size_t room = region_size - start;
    if ((d[0] & 3) == 3) {
        room = 192; /* the control block's words: seq, wake, waiters, the lock */
    }
    int sleep_ms = (d[0] & 4) ? 1 : 0;
    bool patch = (d[0] & 8) != 0;
    d++;
    n--;
    memcpy(raw, pristine, region_size);
    fz_scribble(raw + start, room, d, n, patch);

    fz_latest_reads(reader, sleep_ms);
    fz_latest_reads(rdonly, sleep_ms);
    fz_inspect(path, SHMCHAN_FILE);
    uint8_t msg[MAX_MSG];
    memset(msg, 'w', sizeof(msg));
    int rc = shmchan_latest_publish(writer, msg, sizeof(msg), NULL);
    FZ_CHECK(rc == SHMCHAN_OK);
    fz_latest_reads(reader, 0);
    void *buf = NULL;
    if (shmchan_latest_begin(writer, &buf) == SHMCHAN_OK) {
        fz_touch(buf, MAX_MSG);
        FZ_CHECK(shmchan_latest_abort(writer) == SHMCHAN_OK);
    }
    return 0;
}
