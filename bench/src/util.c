/*
 * util.c - the transport registry and small helpers shared by the harness and
 * the transports: the monotonic clock, anonymous shared memory, full-length
 * reads and writes on file descriptors, and socket timeouts.
 */
#define _GNU_SOURCE
#include "bench.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRANSPORTS 64

static const struct transport *registry[MAX_TRANSPORTS];
static size_t registry_count;

void bench_register_transport(const struct transport *tp)
{
    if (registry_count < MAX_TRANSPORTS)
        registry[registry_count++] = tp;
}

const struct transport *bench_find_transport(const char *name)
{
    for (size_t i = 0; i < registry_count; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

static int compare_transports(const void *a, const void *b)
{
    const struct transport *x = *(const struct transport *const *)a;
    const struct transport *y = *(const struct transport *const *)b;
    if (x->group != y->group)
        return (int)x->group - (int)y->group;
    return strcmp(x->name, y->name);
}

size_t bench_transports(const struct transport **out, size_t max)
{
    size_t n = registry_count < max ? registry_count : max;
    memcpy(out, registry, n * sizeof *out);
    qsort(out, n, sizeof *out, compare_transports);
    return n;
}

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void *bench_shm_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void bench_shm_free(void *p, size_t size)
{
    if (p)
        munmap(p, size);
}

int bench_read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n == 0) {
            return -EPIPE;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return -ETIMEDOUT; /* SO_RCVTIMEO expired */
        } else if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

int bench_write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return -ETIMEDOUT; /* SO_SNDTIMEO expired */
        } else if (n < 0 && errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

int bench_set_socket_timeouts(int fd, int64_t timeout_ns)
{
    struct timeval tv = {.tv_sec = (time_t)(timeout_ns / 1000000000),
                         .tv_usec = (suseconds_t)(timeout_ns % 1000000000 / 1000)};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
        return -errno;
    return 0;
}
