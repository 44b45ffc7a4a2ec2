/* Processes, clocks and OS error mapping on POSIX. */
#include "platform/posix/posix.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Thread_local int last_oserror;

shmchan__atomic_u32 shmchan__forks;
static pthread_once_t fork_watched = PTHREAD_ONCE_INIT;

/* Runs in the child, single-threaded, right after fork(). */
static void
forked_child(void)
{
    atomic_fetch_add(&shmchan__forks, 1);
}

static void
fork_register(void)
{
    (void)pthread_atfork(NULL, NULL, forked_child);
}

void
shmchan__fork_watch(void)
{
    (void)pthread_once(&fork_watched, fork_register);
}

void
shmchan__oserror_set(int err)
{
    last_oserror = err;
}

int
shmchan__oserror_get(void)
{
    return last_oserror;
}

int
shmchan__posix_err(int e)
{
    shmchan__oserror_set(e);
    switch (e) {
    case ENOENT:
        return SHMCHAN_ENOENT;
    case EEXIST:
        return SHMCHAN_EEXIST;
    case EACCES:
    case EPERM:
    case EROFS:
        return SHMCHAN_EACCES;
    case ENOSPC:
    case EFBIG:
    case EDQUOT:
        return SHMCHAN_ENOSPC;
    case ENOMEM:
        return SHMCHAN_ENOMEM;
    case ENAMETOOLONG:
        return SHMCHAN_ENAME;
    case EINVAL:
        return SHMCHAN_EINVAL;
    case EINTR:
        return SHMCHAN_EINTR;
    case EMFILE:
    case ENFILE:
        return SHMCHAN_ELIMIT;
    default:
        return SHMCHAN_ESYS;
    }
}

uint32_t
shmchan__pid(void)
{
    return (uint32_t)getpid();
}

bool
shmchan__proc_exists(uint32_t pid)
{
    return pid != 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

uint64_t
shmchan__proc_start(uint32_t pid)
{
#ifdef __linux__
    char path[64], buf[1024];
    (void)snprintf(path, sizeof(path), "/proc/%u/stat", pid);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Field 22 (starttime) counts from the ')' closing field 2, which may hold spaces. */
    char *p = strrchr(buf, ')');
    for (int field = 2; p != NULL && field < 22; field++) {
        p = strchr(p + 1, ' ');
    }
    unsigned long long t = 0;
    return (p != NULL && sscanf(p + 1, "%llu", &t) == 1) ? (uint64_t)t : 0;
#else
    (void)pid;
    return 0;
#endif
}

uint64_t
shmchan__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t
shmchan__realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint32_t
shmchan__cpu_count(void)
{
    static shmchan__atomic_u32 cached; /* racing first calls store the same */
    uint32_t n = shmchan__load(&cached, SHMCHAN__RELAXED);
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 && c < 65536 ? (uint32_t)c : 1u;
        shmchan__store(&cached, n, SHMCHAN__RELAXED);
    }
    return n;
}

/* "1024K", "32M" or bytes, as sysfs writes a cache's size; 0 if not that. */
static uint64_t
parse_size(const char *s)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || v == 0 || v > (1ull << 40)) {
        return 0;
    }
    return *end == 'K' ? v << 10 : *end == 'M' ? v << 20 : *end == 'G' ? v << 30 : v;
}

/* One line of a small sysfs file, "" when it cannot be read. */
static void
read_line(const char *path, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    if (fgets(buf, (int)cap, f) == NULL) {
        buf[0] = '\0';
    }
    fclose(f);
}

uint64_t
shmchan__cache_size(unsigned level)
{
#if defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
    long v = sysconf(level == 2 ? _SC_LEVEL2_CACHE_SIZE : _SC_LEVEL3_CACHE_SIZE);
    if (v > 0) {
        return (uint64_t)v;
    }
#endif
    /* Linux without the glibc names, or where glibc does not know the CPU:
     * the kernel's cache description of CPU 0. */
    for (int i = 0; i < 8; i++) {
        char path[96], buf[32];
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        read_line(path, buf, sizeof(buf));
        if (strtoul(buf, NULL, 10) != level) {
            continue;
        }
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        read_line(path, buf, sizeof(buf));
        if (strncmp(buf, "Instruction", 11) == 0) {
            continue;
        }
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        read_line(path, buf, sizeof(buf));
        return parse_size(buf);
    }
    return 0;
}

void
shmchan__sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
