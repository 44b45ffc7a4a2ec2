/*
 * POSIX (Linux) services of the CLI: signals, the monotonic clock and the
 * environment checks of `shmchan doctor`. See sys.h.
 */
#define _GNU_SOURCE /* F_OFD_SETLK, F_OFD_GETLK */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"

#define SHM_DIR "/dev/shm"
#define MIB (1024.0 * 1024.0)

static volatile sig_atomic_t caught;

void
sys_init(void)
{
}

static void
on_signal(int sig)
{
    caught = sig;
}

void
sys_catch_interrupts(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: the library's wait returns SHMCHAN_EINTR at once. */
    sa.sa_flags = SA_RESETHAND;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        (void)sigaction(sigs[i], &sa, NULL);
    }
}

int
sys_interrupted(void)
{
    return (int)caught;
}

uint64_t
sys_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

int64_t
sys_unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint32_t
sys_getpid(void)
{
    return (uint32_t)getpid();
}

void
sys_sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    (void)nanosleep(&ts, NULL); /* EINTR: the caller checks sys_interrupted() */
}

int
sys_file_truncate(FILE *f, uint64_t size)
{
    return fflush(f) == 0 && ftruncate(fileno(f), (off_t)size) == 0 ? 0 : -1;
}

/* ------------------------------------------------------ commands (serve) */

extern char **environ;

/* Append what fd has now to o (beyond cap: counted, dropped). 0 at EOF. */
static int
drain(int fd, sys_output *o, size_t cap)
{
    unsigned char chunk[65536];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0) {
        return n < 0 && (errno == EINTR || errno == EAGAIN) ? 1 : 0;
    }
    size_t keep = o->len < cap ? cap - o->len : 0;
    keep = keep < (size_t)n ? keep : (size_t)n;
    /* Out of memory: read on all the same, so that the command never blocks
     * on a full pipe; what was not kept shows as total > len, as past cap. */
    unsigned char *p = keep != 0 ? realloc(o->p, o->len + keep) : NULL;
    if (p != NULL) {
        memcpy(p + o->len, chunk, keep);
        o->p = p;
        o->len += keep;
    }
    o->total += (size_t)n;
    return 1;
}

/* Feed stdin and read stdout/stderr together, so that a command that writes
 * much before it has read all of its input never blocks on us. */
static void
pump(int in_fd, const unsigned char *in, size_t in_len, int out_fd, int err_fd, size_t cap,
     sys_output *out, sys_output *err)
{
    size_t sent = 0;
    if (in_len == 0) {
        close(in_fd);
        in_fd = -1;
    }
    while (out_fd >= 0 || err_fd >= 0) {
        struct pollfd p[3] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {in_fd, POLLOUT, 0}};
        if (poll(p, 3, -1) < 0) {
            continue; /* EINTR: a signal for the tool; the command runs on */
        }
        if (in_fd >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t n = write(in_fd, in + sent, in_len - sent);
            if (n > 0) {
                sent += (size_t)n;
            }
            if ((n < 0 && errno != EINTR && errno != EAGAIN) || sent == in_len) {
                close(in_fd); /* all given, or the command stopped reading */
                in_fd = -1;
            }
        }
        if (out_fd >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !drain(out_fd, out, cap)) {
            close(out_fd);
            out_fd = -1;
        }
        if (err_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) && !drain(err_fd, err, cap)) {
            close(err_fd);
            err_fd = -1;
        }
    }
    if (in_fd >= 0) {
        close(in_fd);
    }
}

static int
spawn(char *const argv[], int fds[3][2], pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGTERM);
    sigaddset(&dflt, SIGHUP);
    sigaddset(&dflt, SIGPIPE);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, fds[0][0], 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1][1], 1);
    posix_spawn_file_actions_adddup2(&fa, fds[2][1], 2);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int e = posix_spawnp(pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return e;
}

static void
ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN); /* a command that stops reading its input is not fatal */
}

int
sys_run(char *const argv[], const void *in, size_t in_len, size_t cap, sys_output *out,
        sys_output *err, int *status)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    int fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    pid_t pid;
    int e = 0;
    pthread_once(&once, ignore_sigpipe);
    for (int i = 0; i < 3 && e == 0; i++) {
        e = pipe2(fds[i], O_CLOEXEC) == 0 ? 0 : errno;
    }
    if (e == 0) {
        e = spawn(argv, fds, &pid);
    }
    close(fds[0][0]); /* the command's ends (close(-1) is harmless) */
    close(fds[1][1]);
    close(fds[2][1]);
    if (e != 0) {
        close(fds[0][1]);
        close(fds[1][0]);
        close(fds[2][0]);
        return e;
    }
    fcntl(fds[0][1], F_SETFL, O_NONBLOCK);
    pump(fds[0][1], in, in_len, fds[1][0], fds[2][0], cap, out, err);
    int ws = 0;
    while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
    }
    *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 256 + (WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
    return 0;
}

/* ------------------------------------------------------ stdout watch */

static pthread_t main_thread;

/* poll() reports POLLERR on a pipe's write end once no reader is left (and
 * POLLHUP on a socket): then interrupt the main thread's wait, again every
 * 100 ms in case one lands before its sleep begins. */
static void *
stdout_watch(void *arg)
{
    (void)arg;
    struct pollfd p = {STDOUT_FILENO, 0, 0};
    while (poll(&p, 1, -1) < 0 || (p.revents & (POLLERR | POLLHUP)) == 0) {
        p.revents = 0;
    }
    caught = SIGPIPE;
    for (;;) {
        (void)pthread_kill(main_thread, SIGPIPE);
        sys_sleep_ms(100);
    }
    return NULL;
}

void
sys_watch_stdout(void)
{
    struct stat st;
    if (fstat(STDOUT_FILENO, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: the wait returns SHMCHAN_EINTR */
    sigemptyset(&sa.sa_mask);
    (void)sigaction(SIGPIPE, &sa, NULL);
    main_thread = pthread_self();
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    (void)pthread_create(&t, &at, stdout_watch, NULL);
    pthread_attr_destroy(&at);
}

/* ----------------------------------------------------- threads, locks */

struct sys_thread {
    pthread_t t;
    void (*fn)(void *);
    void *arg;
};

struct sys_lock {
    pthread_mutex_t m;
};

static void *
thread_main(void *p)
{
    sys_thread *t = p;
    t->fn(t->arg);
    return NULL;
}

int
sys_thread_start(sys_thread **out, void (*fn)(void *), void *arg)
{
    sys_thread *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return -1;
    }
    t->fn = fn;
    t->arg = arg;
    if (pthread_create(&t->t, NULL, thread_main, t) != 0) {
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void
sys_thread_join(sys_thread *t)
{
    if (t != NULL) {
        (void)pthread_join(t->t, NULL);
        free(t);
    }
}

sys_lock *
sys_lock_new(void)
{
    sys_lock *l = calloc(1, sizeof(*l));
    if (l != NULL && pthread_mutex_init(&l->m, NULL) != 0) {
        free(l);
        l = NULL;
    }
    return l;
}

void
sys_lock_free(sys_lock *l)
{
    if (l != NULL) {
        pthread_mutex_destroy(&l->m);
        free(l);
    }
}

void
sys_lock_take(sys_lock *l)
{
    (void)pthread_mutex_lock(&l->m);
}

void
sys_lock_give(sys_lock *l)
{
    (void)pthread_mutex_unlock(&l->m);
}

/* ---------------------------------------------------------- terminal */

static struct termios term_saved;
static bool term_is_raw;

int
sys_term_raw(void)
{
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO) ||
        tcgetattr(STDIN_FILENO, &term_saved) != 0) {
        return -1;
    }
    struct termios t = term_saved;
    t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &t) != 0) {
        return -1;
    }
    term_is_raw = true;
    return 0;
}

void
sys_term_restore(void)
{
    if (term_is_raw) {
        (void)tcsetattr(STDIN_FILENO, TCSANOW, &term_saved);
        term_is_raw = false;
    }
}

void
sys_term_size(int *rows, int *cols)
{
    struct winsize w;
    *rows = 24;
    *cols = 80;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_row > 0 && w.ws_col > 0) {
        *rows = w.ws_row;
        *cols = w.ws_col;
    }
}

static int
read_byte(int64_t timeout_ms)
{
    struct pollfd p = {STDIN_FILENO, POLLIN, 0};
    unsigned char c;
    if (poll(&p, 1, (int)timeout_ms) <= 0 || read(STDIN_FILENO, &c, 1) != 1) {
        return -1;
    }
    return c;
}

int
sys_term_key(int64_t timeout_ms)
{
    int c = read_byte(timeout_ms);
    if (c != 0x1b) {
        return c;
    }
    /* An escape sequence follows at once; a lone ESC does not. */
    if (read_byte(30) != '[') {
        return SYS_KEY_ESC;
    }
    int d = read_byte(30);
    return d == 'A' ? SYS_KEY_UP : d == 'B' ? SYS_KEY_DOWN : -1;
}

/* ----------------------------------------------------------- checks */

static sys_check *
check_new(sys_check *c, const char *name, sys_status st)
{
    memset(c, 0, sizeof(*c));
    c->name = name;
    c->status = st;
    return c;
}

/* The type of the file system mounted at path, or NULL if none is. */
static bool
mount_type(const char *path, char *type, size_t cap)
{
    FILE *f = fopen("/proc/self/mounts", "r");
    char dev[256], dir[256], fs[64];
    bool found = false;
    if (f == NULL) {
        return false;
    }
    while (fscanf(f, "%255s %255s %63s %*[^\n]", dev, dir, fs) == 3) {
        if (strcmp(dir, path) == 0) {
            snprintf(type, cap, "%s", fs); /* the last mount there wins */
            found = true;
        }
    }
    fclose(f);
    return found;
}

static void
check_shm_dir(sys_check *c)
{
    struct stat st;
    char type[64];
    if (stat(SHM_DIR, &st) != 0 || !S_ISDIR(st.st_mode)) {
        check_new(c, "shm-dir", SYS_FAIL);
        snprintf(c->detail, sizeof(c->detail), "%s is missing: %s", SHM_DIR, strerror(errno));
        snprintf(c->fix, sizeof(c->fix), "mount a tmpfs there: mount -t tmpfs -o "
                 "mode=1777,nosuid,nodev tmpfs %s (containers: it is normally provided)", SHM_DIR);
        return;
    }
    bool mounted = mount_type(SHM_DIR, type, sizeof(type));
    bool writable = access(SHM_DIR, W_OK | X_OK) == 0;
    check_new(c, "shm-dir", !writable ? SYS_FAIL : mounted ? SYS_OK : SYS_WARN);
    snprintf(c->detail, sizeof(c->detail), "%s is %s%s, %s", SHM_DIR,
             mounted ? "a mount of type " : "not a separate mount", mounted ? type : "",
             writable ? "writable" : "not writable by this user");
    if (!writable) {
        snprintf(c->fix, sizeof(c->fix), "make it world-writable with the sticky bit: "
                 "chmod 1777 %s", SHM_DIR);
    } else if (!mounted) {
        snprintf(c->fix, sizeof(c->fix), "mount a tmpfs on %s so that shared memory stays in "
                 "memory", SHM_DIR);
    }
}

static double
human(double bytes)
{
    return bytes >= 1024 * MIB ? bytes / (1024 * MIB) : bytes / MIB;
}

static const char *
unit(double bytes)
{
    return bytes >= 1024 * MIB ? "GiB" : "MiB";
}

static void
check_shm_space(sys_check *c)
{
    struct statvfs vfs;
    if (statvfs(SHM_DIR, &vfs) != 0) {
        check_new(c, "shm-space", SYS_WARN);
        snprintf(c->detail, sizeof(c->detail), "statvfs(%s): %s", SHM_DIR, strerror(errno));
        return;
    }
    double total = (double)vfs.f_blocks * (double)vfs.f_frsize;
    double avail = (double)vfs.f_bavail * (double)vfs.f_frsize;
    bool full = avail < 1 * MIB;
    bool small = total < 256 * MIB || avail < total / 10;
    check_new(c, "shm-space", full ? SYS_FAIL : small ? SYS_WARN : SYS_OK);
    snprintf(c->detail, sizeof(c->detail), "%s: %.1f %s total, %.1f %s free", SHM_DIR,
             human(total), unit(total), human(avail), unit(avail));
    if (full || small) {
        snprintf(c->fix, sizeof(c->fix), "remove unused channels (shmchan gc), or give %s more "
                 "room: containers often get 64 MiB (docker run --shm-size=1g; Kubernetes: an "
                 "emptyDir volume with medium: Memory), hosts: mount -o remount,size=2G %s",
                 SHM_DIR, SHM_DIR);
    }
}

static void
limit_text(rlim_t v, char *buf, size_t cap)
{
    if (v == RLIM_INFINITY) {
        snprintf(buf, cap, "unlimited");
    } else {
        snprintf(buf, cap, "%llu", (unsigned long long)v);
    }
}

static void
check_nofile(sys_check *c)
{
    struct rlimit rl;
    char soft[32], hard[32];
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        check_new(c, "open-files", SYS_WARN);
        snprintf(c->detail, sizeof(c->detail), "getrlimit: %s", strerror(errno));
        return;
    }
    limit_text(rl.rlim_cur, soft, sizeof(soft));
    limit_text(rl.rlim_max, hard, sizeof(hard));
    bool low = rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 1024;
    check_new(c, "open-files", low ? SYS_WARN : SYS_OK);
    snprintf(c->detail, sizeof(c->detail), "RLIMIT_NOFILE soft %s, hard %s (each open channel "
             "handle holds one descriptor)", soft, hard);
    if (low) {
        snprintf(c->fix, sizeof(c->fix), "raise it: ulimit -n %s, or LimitNOFILE= in the "
                 "systemd unit", hard);
    }
}

/* Locks on open file descriptions are how peers' liveness is tracked. */
static void
check_ofd_locks(sys_check *c)
{
    char path[] = SHM_DIR "/.shmchan-doctor-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        check_new(c, "ofd-locks", SYS_WARN);
        snprintf(c->detail, sizeof(c->detail), "could not test: %s: %s", path, strerror(errno));
        return;
    }
    unlink(path);
    struct flock fl;
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 1;
    fl.l_len = 1;
    int ok = fcntl(fd, F_OFD_SETLK, &fl) == 0;
    int err = errno;
    close(fd);
    check_new(c, "ofd-locks", ok ? SYS_OK : SYS_FAIL);
    if (ok) {
        snprintf(c->detail, sizeof(c->detail), "open file description locks work on %s",
                 SHM_DIR);
    } else {
        snprintf(c->detail, sizeof(c->detail), "F_OFD_SETLK failed: %s", strerror(err));
        snprintf(c->fix, sizeof(c->fix), "shmchan needs Linux 3.15 or later (OFD locks) to "
                 "tell live peers from dead ones; under gVisor or similar sandboxes use a "
                 "kernel that supports them");
    }
}

/* ------------------------------------------------- systemd RemoveIPC */

typedef struct removeipc {
    int value; /* -1 unset, 0 no, 1 yes */
    char where[200];
} removeipc;

static int
parse_bool(const char *v)
{
    static const char *const yes[] = {"1", "yes", "y", "true", "t", "on"};
    static const char *const no[] = {"0", "no", "n", "false", "f", "off"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            return 1;
        }
        if (strcasecmp(v, no[i]) == 0) {
            return 0;
        }
    }
    return -1;
}

static char *
trim(char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
                     s[n - 1] == '\r')) {
        s[--n] = '\0';
    }
    return s;
}

/* Apply one logind.conf file: the last RemoveIPC= in [Login] wins. */
static void
removeipc_file(removeipc *r, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[512];
    bool login = false;
    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *s = trim(line);
        if (*s == '[') {
            login = strcmp(s, "[Login]") == 0;
            continue;
        }
        char *eq = strchr(s, '=');
        if (!login || *s == '#' || *s == ';' || eq == NULL) {
            continue;
        }
        *eq = '\0';
        int v = parse_bool(trim(eq + 1));
        if (strcmp(trim(s), "RemoveIPC") == 0 && v >= 0) {
            r->value = v;
            snprintf(r->where, sizeof(r->where), "%s", path);
        }
    }
    fclose(f);
}

static const char *const dropin_dirs[] = {
    "/usr/lib/systemd/logind.conf.d", "/usr/local/lib/systemd/logind.conf.d",
    "/run/systemd/logind.conf.d", "/etc/systemd/logind.conf.d",
};
#define NDIRS (sizeof(dropin_dirs) / sizeof(dropin_dirs[0]))
#define MAX_DROPINS 64

typedef struct dropin {
    char name[128];
    int dir; /* index in dropin_dirs: a later directory shadows the same name */
} dropin;

static void
dropin_add(dropin *d, size_t *n, const char *name, int dir)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(d[i].name, name) == 0) {
            d[i].dir = dir;
            return;
        }
    }
    if (*n < MAX_DROPINS && strlen(name) < sizeof(d[0].name)) {
        snprintf(d[*n].name, sizeof(d[0].name), "%s", name);
        d[(*n)++].dir = dir;
    }
}

static int
dropin_cmp(const void *a, const void *b)
{
    return strcmp(((const dropin *)a)->name, ((const dropin *)b)->name);
}

/* Drop-ins are applied in file-name order, whatever their directory. */
static void
removeipc_dropins(removeipc *r)
{
    dropin d[MAX_DROPINS];
    size_t n = 0;
    for (size_t i = 0; i < NDIRS; i++) {
        DIR *dir = opendir(dropin_dirs[i]);
        struct dirent *e;
        while (dir != NULL && (e = readdir(dir)) != NULL) {
            size_t len = strlen(e->d_name);
            if (len > 5 && strcmp(e->d_name + len - 5, ".conf") == 0) {
                dropin_add(d, &n, e->d_name, (int)i);
            }
        }
        if (dir != NULL) {
            closedir(dir);
        }
    }
    qsort(d, n, sizeof(d[0]), dropin_cmp);
    for (size_t i = 0; i < n; i++) {
        char path[512];
        if (snprintf(path, sizeof(path), "%s/%s", dropin_dirs[d[i].dir], d[i].name) <
            (int)sizeof(path)) {
            removeipc_file(r, path);
        }
    }
}

static const char removeipc_fix[] =
    "put 'RemoveIPC=no' under [Login] in /etc/systemd/logind.conf.d/shmchan.conf and run "
    "'systemctl restart systemd-logind'; or run the processes as a system user or a "
    "lingering user (loginctl enable-linger), or use file-backed channels (NAME with a '/')";

static void
check_removeipc(sys_check *c)
{
    removeipc r = {-1, ""};
    uid_t uid = getuid();
    removeipc_file(&r, "/usr/lib/systemd/logind.conf");
    removeipc_file(&r, "/etc/systemd/logind.conf");
    removeipc_dropins(&r);
    bool systemd = access("/run/systemd/system", F_OK) == 0;
    bool exempt = uid < 1000; /* root and system users (systemd's SYS_UID_MAX is 999) */
    bool risky = systemd && !exempt && r.value != 0;
    check_new(c, "remove-ipc", risky ? SYS_WARN : systemd ? SYS_OK : SYS_INFO);
    char setting[240];
    if (r.value < 0) {
        snprintf(setting, sizeof(setting), "RemoveIPC is not set (systemd's default is yes)");
    } else {
        snprintf(setting, sizeof(setting), "RemoveIPC=%s in %s", r.value ? "yes" : "no", r.where);
    }
    snprintf(c->detail, sizeof(c->detail), "%s; %s", setting,
             !systemd ? "systemd is not running here, so it does not apply"
             : exempt ? "does not apply to root and system users"
             : r.value == 0 ? "channels survive logout"
                            : "logind deletes this user's channels when their last session ends");
    if (risky) {
        snprintf(c->fix, sizeof(c->fix), "%s", removeipc_fix);
    }
}

size_t
sys_env_checks(sys_check *out, size_t cap)
{
    void (*const checks[])(sys_check *) = {check_shm_dir, check_shm_space, check_nofile,
                                           check_removeipc, check_ofd_locks};
    size_t n = 0;
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]) && n < cap; i++) {
        checks[i](&out[n++]);
    }
    return n;
}
