/*
 * POSIX backing objects: shm_open names ("/shmchan.<name>") or files.
 */
#include "platform/posix/posix.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHM_PREFIX "/shmchan."
#define SHM_DIR "/dev/shm"
#define SIDE_SUFFIX "..wait" /* core/side.h */

static void
shm_path(const char *name, char *out, size_t cap)
{
    (void)snprintf(out, cap, "%s%s", SHM_PREFIX, name);
}

/*
 * Every open refuses what an attacker can put at a name: O_NOFOLLOW fails on
 * a symbolic link, O_NONBLOCK keeps a FIFO from blocking the open until a
 * writer comes, and the fstat after it refuses anything that is not a
 * regular file (docs/security.md, "The filesystem"). glibc's shm_open is an
 * open() under /dev/shm that passes O_NONBLOCK on; other systems' shm_open
 * reject unknown flags and cannot hold FIFOs, so they get none.
 */
#ifdef __linux__
#define SHM_NONBLOCK O_NONBLOCK
#else
#define SHM_NONBLOCK 0
#endif

static int
open_fd(const char *name, uint32_t flags, int oflags, uint32_t mode)
{
    if (flags & SHMCHAN_FILE) {
        return open(name, oflags | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK, (mode_t)mode);
    }
    char path[64];
    shm_path(name, path, sizeof(path));
    return shm_open(path, oflags | SHM_NONBLOCK, (mode_t)mode);
}

/* A regular file, or a shared-memory object where the system gives those no
 * file type; then blocking mode again (it changes nothing for those). */
static int
check_regular(int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return shmchan__posix_err(errno);
    }
    if (!S_ISREG(st.st_mode) && (st.st_mode & S_IFMT) != 0) {
        return SHMCHAN_EUNSAFE;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        return shmchan__posix_err(errno);
    }
    return SHMCHAN_OK;
}

/* How often a create retries when the name it found vanished before it
 * could open it (a failed creator or a reaper removed it meanwhile). */
#define CREATE_TRIES 64

/*
 * Create exclusively when asked; fall back to opening an existing one. A
 * name that vanishes between the two is created again, so that a plain
 * create never reports ENOENT. Returns the fd, or a negative SHMCHAN_E*.
 */
static int
open_or_create(const char *name, uint32_t flags, uint32_t mode, bool *created)
{
    int acc = (flags & SHMCHAN_RDONLY) ? O_RDONLY : O_RDWR;
    *created = false;
    for (int i = 0;; i++) {
        if (flags & SHMCHAN_CREATE) {
            int fd = open_fd(name, flags, acc | O_CREAT | O_EXCL, mode);
            if (fd >= 0) {
                *created = true;
                /* The mode is exact, whatever the umask says. */
                if (fchmod(fd, (mode_t)mode) != 0) {
                    int rc = shmchan__posix_err(errno);
                    close(fd);
                    return rc;
                }
                return fd;
            }
            if (errno != EEXIST || (flags & SHMCHAN_EXCL)) {
                return errno == ELOOP ? SHMCHAN_EUNSAFE : shmchan__posix_err(errno);
            }
        }
        int fd = open_fd(name, flags, acc, 0);
        if (fd >= 0) {
            return fd;
        }
        /* A symlink, a socket, a directory (glibc's shm_open reports EINVAL
         * for one; our names are valid, so nothing else gives EINVAL). */
        if (errno == ELOOP || errno == ENXIO || errno == EISDIR ||
            (errno == EINVAL && !(flags & SHMCHAN_FILE))) {
            return SHMCHAN_EUNSAFE;
        }
        if (errno != ENOENT || !(flags & SHMCHAN_CREATE) || i + 1 >= CREATE_TRIES) {
            return shmchan__posix_err(errno);
        }
    }
}

int
shmchan__shm_open(const char *name, uint32_t flags, uint32_t mode, shmchan__shm **out,
                  bool *created_out)
{
    *out = NULL;
    *created_out = false;
    if (!(flags & SHMCHAN_FILE) && strlen(name) + sizeof(SHM_PREFIX) > 64) {
        return SHMCHAN_ENAME;
    }
    shmchan__shm *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SHMCHAN_ENOMEM;
    }
    bool created = false;
    int fd = open_or_create(name, flags, mode, &created);
    int rc = fd < 0 ? fd : check_regular(fd);
    if (rc != SHMCHAN_OK) {
        if (fd >= 0) {
            close(fd); /* never one we created: O_CREAT makes regular files */
        }
        free(s);
        return rc;
    }
    s->fd = fd;
    s->rdonly = (flags & SHMCHAN_RDONLY) != 0;
    pthread_mutex_init(&s->held_mu, NULL);
    *created_out = created;
    *out = s;
    return SHMCHAN_OK;
}

bool
shmchan__shm_foreign(shmchan__shm *s)
{
    struct stat st;
    return fstat(s->fd, &st) != 0 || st.st_uid != geteuid();
}

bool
shmchan__shm_same_owner(shmchan__shm *a, shmchan__shm *b)
{
    struct stat sa, sb;
    return fstat(a->fd, &sa) == 0 && fstat(b->fd, &sb) == 0 && sa.st_uid == sb.st_uid;
}

void
shmchan__shm_follow(shmchan__shm *side, shmchan__shm *chan)
{
    struct stat ss, cs;
    if (fstat(side->fd, &ss) != 0 || fstat(chan->fd, &cs) != 0 || ss.st_uid != geteuid()) {
        return;
    }
    mode_t mode = cs.st_mode & 0777;
    mode |= (mode & 0444) >> 1;
    if (ss.st_gid != cs.st_gid) {
        (void)fchown(side->fd, (uid_t)-1, cs.st_gid); /* best effort: readers poll else */
    }
    if ((ss.st_mode & 0777) != mode) {
        (void)fchmod(side->fd, mode);
    }
}

bool
shmchan__side_supported(void)
{
#ifdef __linux__
    return true; /* abstract-socket notifiers (posix_notify.c) */
#else
    return false;
#endif
}

int
shmchan__side_attach(shmchan__shm *chan, uint64_t size, shmchan__shm **out, void **addr_out)
{
    (void)chan;
    (void)size;
    (void)out;
    (void)addr_out;
    return SHMCHAN_ENOTSUP; /* made by the creator, opened by name (core/side.c) */
}

int
shmchan__shm_set_mode(shmchan__shm *s, uint32_t mode)
{
    return fchmod(s->fd, (mode_t)mode) == 0 ? SHMCHAN_OK : shmchan__posix_err(errno);
}

static int
stat_name(const char *name, uint32_t flags, struct stat *st)
{
    if (flags & SHMCHAN_FILE) {
        return lstat(name, st);
    }
    char path[64 + sizeof(SHM_DIR)];
    (void)snprintf(path, sizeof(path), "%s%s", SHM_DIR, SHM_PREFIX);
    (void)snprintf(path + strlen(path), sizeof(path) - strlen(path), "%s", name);
    return lstat(path, st);
}

int
shmchan__shm_same(shmchan__shm *s, const char *name, uint32_t flags)
{
    struct stat mine, there;
    if (fstat(s->fd, &mine) != 0) {
        return shmchan__posix_err(errno);
    }
#ifndef __linux__
    if (!(flags & SHMCHAN_FILE)) {
        return SHMCHAN_OK; /* no path to compare with; see docs/security.md */
    }
#endif
    if (stat_name(name, flags, &there) != 0) {
        return errno == ENOENT ? SHMCHAN_ENOENT : shmchan__posix_err(errno);
    }
    return mine.st_dev == there.st_dev && mine.st_ino == there.st_ino ? SHMCHAN_OK
                                                                      : SHMCHAN_ENOENT;
}

int
shmchan__shm_size(shmchan__shm *s, uint64_t *size_out)
{
    struct stat st;
    if (fstat(s->fd, &st) != 0) {
        return shmchan__posix_err(errno);
    }
    *size_out = (uint64_t)st.st_size;
    return SHMCHAN_OK;
}

uint32_t
shmchan__shm_mode(shmchan__shm *s)
{
    struct stat st;
    return fstat(s->fd, &st) == 0 ? (uint32_t)(st.st_mode & 07777) : 0;
}

int
shmchan__shm_reserve(shmchan__shm *s, uint64_t size)
{
    if (ftruncate(s->fd, (off_t)size) != 0) {
        return shmchan__posix_err(errno);
    }
    /* Reserve now: a full /dev/shm or disk fails here, not as SIGBUS later. */
    int e = posix_fallocate(s->fd, 0, (off_t)size);
    if (e != 0 && e != EOPNOTSUPP && e != EINVAL) {
        return shmchan__posix_err(e);
    }
    return SHMCHAN_OK;
}

static void
unmap(shmchan__shm *s)
{
    if (s->base != NULL) {
        shmchan__posix_guard_remove(s->base);
        munmap(s->base, (size_t)s->len);
        s->base = NULL;
        s->len = 0;
    }
}

int
shmchan__shm_map(shmchan__shm *s, uint64_t size, void **addr_out)
{
    unmap(s);
    int prot = s->rdonly ? PROT_READ : PROT_READ | PROT_WRITE;
    void *p = mmap(NULL, (size_t)size, prot, MAP_SHARED, s->fd, 0);
    if (p == MAP_FAILED) {
        return shmchan__posix_err(errno);
    }
    int rc = shmchan__posix_guard_add(p, size, &s->faulted, s->fd);
    if (rc != SHMCHAN_OK) {
        munmap(p, (size_t)size);
        return rc;
    }
    s->base = p;
    s->len = size;
    *addr_out = p;
    return SHMCHAN_OK;
}

bool
shmchan__shm_faulted(const shmchan__shm *s)
{
    return atomic_load_explicit(&s->faulted, memory_order_relaxed) != 0;
}

void
shmchan__shm_close(shmchan__shm *s)
{
    if (s == NULL) {
        return;
    }
    unmap(s);
    close(s->fd); /* drops every OFD lock of this object */
    pthread_mutex_destroy(&s->held_mu);
    free(s);
}

int
shmchan__shm_unlink(const char *name, uint32_t flags)
{
    int r;
    if (flags & SHMCHAN_FILE) {
        r = unlink(name);
    } else {
        char path[64];
        shm_path(name, path, sizeof(path));
        r = shm_unlink(path);
    }
    return r == 0 ? SHMCHAN_OK : shmchan__posix_err(errno);
}

/* ------------------------------------------------------------ listing */

struct shmchan__dir {
    DIR *d;
    char name[SHMCHAN_NAME_MAX + 1];
};

int
shmchan__dir_open(shmchan__dir **out)
{
    shmchan__dir *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return SHMCHAN_ENOMEM;
    }
    d->d = opendir(SHM_DIR);
    if (d->d == NULL) {
        int rc = shmchan__posix_err(errno);
        free(d);
        return rc == SHMCHAN_ENOENT ? SHMCHAN_ENOTSUP : rc;
    }
    *out = d;
    return SHMCHAN_OK;
}

int
shmchan__dir_next(shmchan__dir *d, const char **name_out)
{
    const size_t plen = sizeof(SHM_PREFIX) - 2; /* without '/' and NUL */
    struct dirent *e;
    while ((e = readdir(d->d)) != NULL) {
        if (strncmp(e->d_name, &SHM_PREFIX[1], plen) != 0) {
            continue;
        }
        const char *name = e->d_name + plen;
        if (shmchan_name_check(name) != SHMCHAN_OK) {
            continue;
        }
        memcpy(d->name, name, strlen(name) + 1);
        *name_out = d->name;
        return SHMCHAN_OK;
    }
    return SHMCHAN_EAGAIN;
}

int
shmchan__dir_next_side(shmchan__dir *d, const char **name_out)
{
    const size_t plen = sizeof(SHM_PREFIX) - 2; /* without '/' and NUL */
    const size_t slen = sizeof(SIDE_SUFFIX) - 1;
    struct dirent *e;
    while ((e = readdir(d->d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len <= plen + slen || len - plen - slen > SHMCHAN_NAME_MAX ||
            strncmp(e->d_name, &SHM_PREFIX[1], plen) != 0 ||
            strcmp(e->d_name + len - slen, SIDE_SUFFIX) != 0) {
            continue;
        }
        memcpy(d->name, e->d_name + plen, len - plen - slen);
        d->name[len - plen - slen] = '\0';
        if (shmchan_name_check(d->name) != SHMCHAN_OK) {
            continue;
        }
        *name_out = d->name;
        return SHMCHAN_OK;
    }
    return SHMCHAN_EAGAIN;
}

void
shmchan__dir_close(shmchan__dir *d)
{
    if (d != NULL) {
        closedir(d->d);
        free(d);
    }
}
