/* POSIX-only checks: permission bits, other users, seccomp, signals, shm truncation. */
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "t.h"

shmchan_latest *t_latest_create(const char *name, uint64_t max_msg);
shmchan_latest *t_latest_join(const char *name);
void t_check_info_and_reap(const char *n, uint32_t flags);

void t_make_file_channel(const char *path);
int t_open_file(const char *path, shmchan_latest **ch);

static uint32_t
mode_of_shm(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "/dev/shm/shmchan.%s", name);
    struct stat st;
    T_TRUE(stat(path, &st) == 0);
    return st.st_mode & 07777;
}

TEST(region_mode_default_0600)
{
    const char *n = t_name();
    mode_t old = umask(0);
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    umask(old);
    T_EQ_U64(mode_of_shm(n), 0600);
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_info_get(n, 0, &info));
    T_EQ_U64(info.mode, 0600);
    shmchan_latest_close(ch);
}

TEST(region_mode_configurable)
{
    const char *n = t_name();
    mode_t old = umask(077); /* the requested mode wins over the umask */
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    o.mode = 0640;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    umask(old);
    T_EQ_U64(mode_of_shm(n), 0640);
    shmchan_latest_close(ch);
}

TEST(region_info_and_reap_named)
{
    t_check_info_and_reap(t_name(), 0);
}

TEST(region_unlink_removes_name)
{
    const char *n = t_name();
    shmchan_latest *a = t_latest_create(n, 16), *b = NULL;
    T_OK(shmchan_unlink(n, 0));
    T_ERR(shmchan_latest_open(n, NULL, &b), SHMCHAN_ENOENT); /* the name is gone... */
    T_OK(shmchan_latest_publish(a, "still", 5, NULL));      /* ...the channel is not */
    T_EQ_U64(shmchan_latest_seq(a), 1);
    T_ERR(shmchan_unlink(n, 0), SHMCHAN_ENOENT);
    shmchan_latest_close(a);
}

HELPER(open_as_nobody)
{
    gid_t id = (gid_t)t_unused_id(0); /* a uid and gid nobody else has */
    if (geteuid() == 0 && (setgid(id) != 0 || setuid((uid_t)id) != 0)) {
        return 3;
    }
    shmchan_latest *ch = NULL;
    return shmchan_latest_open(arg, NULL, &ch) == SHMCHAN_EACCES ? 0 : 1;
}

TEST(region_permission_denied)
{
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    if (geteuid() != 0) {
        o.mode = 0200; /* not readable even by its owner */
    }
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(n, &o, &ch));
    T_EQ_U64(t_wait(t_spawn("open_as_nobody", n)), 0);
    shmchan_latest_close(ch);
}

TEST(region_truncated_under_reader)
{
    const char *p = t_path();
    t_make_file_channel(p);
    shmchan_latest *ch = NULL;
    T_OK(t_open_file(p, &ch));
    char buf[64];
    size_t len = 0;
    T_OK(shmchan_latest_read(ch, buf, sizeof(buf), &len, NULL));
    T_TRUE(t_truncate(p, 0) == 0); /* as a careless or hostile process would */
    T_ERR(shmchan_latest_read(ch, buf, sizeof(buf), &len, NULL), SHMCHAN_ETRUNCATED);
    T_ERR(shmchan_latest_publish(ch, "x", 1, NULL), SHMCHAN_ETRUNCATED);
    T_ERR(shmchan_latest_wait(ch, 5, 10, NULL), SHMCHAN_ETRUNCATED);
    shmchan_latest_close(ch);

    /* The same on POSIX shared memory. */
    const char *n = t_name();
    shmchan_opts o = t_opts(SHMCHAN_CREATE);
    T_OK(shmchan_latest_open(n, &o, &ch));
    T_OK(shmchan_latest_publish(ch, "y", 1, NULL));
    char path[64];
    snprintf(path, sizeof(path), "/shmchan.%s", n);
    int fd = shm_open(path, O_RDWR, 0);
    T_TRUE(fd >= 0 && ftruncate(fd, 0) == 0);
    close(fd);
    T_ERR(shmchan_latest_read(ch, buf, sizeof(buf), &len, NULL), SHMCHAN_ETRUNCATED);
    shmchan_latest_close(ch);
}

/*
 * Forbid system calls: any call kills the process with SIGSYS. Normal builds
 * allow only exit_group. Sanitizer runtimes make calls of their own inside
 * their interceptors (gettid, sigaltstack, ...), so sanitizer builds instead
 * forbid the calls our library could make on a slow path: futex, fcntl,
 * sleeps, clocks, open/read.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DENY(nr)                                              \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),          \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)
#define FILTER                                                                              \
    DENY(SYS_futex), DENY(SYS_fcntl), DENY(SYS_nanosleep), DENY(SYS_clock_nanosleep),       \
        DENY(SYS_clock_gettime), DENY(SYS_openat), DENY(SYS_read), DENY(SYS_getpid),        \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#else
#define FILTER                                                      \
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_exit_group, 0, 1),      \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),               \
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)
#endif

void t_forbid_syscalls(void);

void
t_forbid_syscalls(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        FILTER,
    };
    struct sock_fprog prog = {(unsigned short)(sizeof(f) / sizeof(f[0])), f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        _exit(3);
    }
}

HELPER(latest_hot_path_no_syscalls)
{
    shmchan_latest *w = t_latest_join(arg), *r = t_latest_join(arg);
    char buf[64];
    /* A handle's first publish takes its writer slot (a kernel lock): once. */
    if (shmchan_latest_publish(w, "first", 5, NULL) != SHMCHAN_OK) {
        return 2;
    }
    t_forbid_syscalls();
    for (int i = 0; i < 100000; i++) {
        size_t len = 0;
        uint64_t seq = 0;
        if (shmchan_latest_publish(w, "payload", 7, NULL) != SHMCHAN_OK ||
            shmchan_latest_read(r, buf, sizeof(buf), &len, &seq) != SHMCHAN_OK ||
            seq != (uint64_t)i + 2 || shmchan_latest_wait(r, seq - 1, 0, NULL) != SHMCHAN_OK) {
            return 1;
        }
    }
    _exit(0); /* exit_group only: no atexit handlers (a sanitizer's would make calls) */
}

TEST(latest_publish_no_syscall_without_waiters)
{
    const char *n = t_name();
    shmchan_latest *ch = t_latest_create(n, 64);
    T_EQ_U64(t_wait(t_spawn("latest_hot_path_no_syscalls", n)), 0);
    T_EQ_U64(shmchan_latest_seq(ch), 100001);
    shmchan_latest_close(ch);
}

HELPER(latest_scribble_on_view)
{
    shmchan_opts o = t_opts(SHMCHAN_RDONLY);
    shmchan_latest *ch = NULL;
    if (shmchan_latest_open(arg, &o, &ch) != SHMCHAN_OK) {
        return 3;
    }
    shmchan_msg m;
    if (shmchan_latest_view(ch, &m) != SHMCHAN_OK) {
        return 1;
    }
    signal(SIGSEGV, SIG_DFL); /* the kernel's verdict, not a sanitizer's handler */
    *(volatile char *)m.data = 'Z'; /* must fault: the mapping is read-only */
    return 2;
}

TEST(latest_rdonly_mapping_protected)
{
    const char *n = t_name();
    shmchan_latest *w = t_latest_create(n, 64);
    T_OK(shmchan_latest_publish(w, "ro", 2, NULL));
    T_EQ_U64(t_wait(t_spawn("latest_scribble_on_view", n)), 128 + SIGSEGV);
    char buf[8];
    size_t len = 0;
    T_OK(shmchan_latest_read(w, buf, sizeof(buf), &len, NULL));
    T_MEMEQ(buf, "ro", 2);
    shmchan_latest_close(w);
}
