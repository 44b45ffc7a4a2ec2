/* POSIX layer of the test harness: processes, clocks, shell commands. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "t.h"

static char self_path[PATH_MAX];

void
t_set_self(const char *argv0)
{
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
    if (n > 0) {
        self_path[n] = '\0';
    } else {
        snprintf(self_path, sizeof(self_path), "%s", argv0);
    }
}

const char *
t_self(void)
{
    return self_path;
}

t_proc
t_exec(const char *const argv[])
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        t_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return (t_proc)pid;
}

static int
status_of(int st)
{
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int
t_wait(t_proc p)
{
    int st = 0;
    while (waitpid((pid_t)p, &st, 0) < 0) {
        if (errno != EINTR) {
            t_fail(__FILE__, __LINE__, "waitpid: %s", strerror(errno));
        }
    }
    return status_of(st);
}

int
t_wait_timeout(t_proc p, int ms)
{
    uint64_t end = t_now_ns() + (uint64_t)ms * 1000000u;
    for (;;) {
        int st = 0;
        pid_t r = waitpid((pid_t)p, &st, WNOHANG);
        if (r == (pid_t)p) {
            return status_of(st);
        }
        if (r < 0 && errno != EINTR) {
            t_fail(__FILE__, __LINE__, "waitpid: %s", strerror(errno));
        }
        if (t_now_ns() > end) {
            return -1;
        }
        usleep(500);
    }
}

void
t_kill(t_proc p)
{
    kill((pid_t)p, SIGKILL);
}

int
t_killed_status(void)
{
    return 128 + SIGKILL;
}

void
t_isolate(void)
{
    setpgid(0, 0);
}

void
t_kill_group(t_proc p)
{
    kill(-(pid_t)p, SIGKILL);
}

int
t_pid(void)
{
    return (int)getpid();
}

uint64_t
t_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
t_sleep_ms(int ms)
{
    usleep((useconds_t)ms * 1000u);
}

int
t_sh(const char *cmd, char *out, size_t cap)
{
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    if (p == NULL) {
        t_fail(__FILE__, __LINE__, "popen: %s", strerror(errno));
    }
    size_t n = 0;
    char sink[4096];
    for (;;) {
        bool keep = out != NULL && n + 1 < cap;
        size_t got = fread(keep ? out + n : sink, 1, keep ? cap - n - 1 : sizeof(sink), p);
        if (got == 0) {
            break;
        }
        n += keep ? got : 0;
    }
    if (out != NULL && cap > 0) {
        out[n] = '\0';
    }
    return status_of(pclose(p));
}

int
t_truncate(const char *path, uint64_t size)
{
    return truncate(path, (off_t)size);
}

void
t_die(void)
{
    raise(SIGKILL);
}

int
t_proc_id(t_proc p)
{
    return (int)p;
}

int
t_unused_id(int nth)
{
    /* The same answer in every process of a run: helpers recompute it. */
    for (int id = 61000; id < 2000000; id++) {
        if (getpwuid((uid_t)id) == NULL && getgrgid((gid_t)id) == NULL && nth-- == 0) {
            return id;
        }
    }
    t_fail(__FILE__, __LINE__, "no unused user or group id found");
}

uint8_t *
t_map_file(const char *path, size_t *size_out)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    T_TRUE(fd >= 0);
    off_t size = lseek(fd, 0, SEEK_END);
    void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    T_TRUE(p != MAP_FAILED);
    close(fd);
    *size_out = (size_t)size;
    return p;
}
