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

/* A cache's size from sysfs: the first index of this level that holds data. */
static uint64_t
sysfs_cache_size(int level)
{
    for (int i = 0; i < 16; i++) {
        char path[96], text[32];
        unsigned lv = 0;
        unsigned long long kb = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            return 0;
        }
        bool ok = fscanf(f, "%u", &lv) == 1;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        f = fopen(path, "r");
        ok = ok && f != NULL && fgets(text, sizeof text, f) != NULL;
        if (f != NULL) {
            fclose(f);
        }
        if (!ok || (int)lv != level || strncmp(text, "Instruction", 11) == 0) {
            continue;
        }
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        f = fopen(path, "r");
        ok = f != NULL && fscanf(f, "%lluK", &kb) == 1;
        if (f != NULL) {
            fclose(f);
        }
        return ok ? (uint64_t)kb * 1024 : 0;
    }
    return 0;
}

uint64_t
shmchan__plat_cache_size(int level)
{
    static shmchan__atomic_u64 cached[4]; /* + 1: looked up; racing first calls agree */
    if (level < 1 || level > 3) {
        return 0;
    }
    uint64_t v = shmchan__load(&cached[level], SHMCHAN__RELAXED);
    if (v != 0) {
        return v - 1;
    }
    long c = -1;
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE) && \
    defined(_SC_LEVEL3_CACHE_SIZE)
    static const int names[4] = {0, _SC_LEVEL1_DCACHE_SIZE, _SC_LEVEL2_CACHE_SIZE,
                                 _SC_LEVEL3_CACHE_SIZE};
    c = sysconf(names[level]);
#endif
    uint64_t size = c > 0 ? (uint64_t)c : sysfs_cache_size(level);
    shmchan__store(&cached[level], size + 1, SHMCHAN__RELAXED);
    return size;
}

void
shmchan__sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
