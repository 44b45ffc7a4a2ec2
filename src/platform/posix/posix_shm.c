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

static void
shm_path(const char *name, char *out, size_t cap)
{
    (void)snprintf(out, cap, "%s%s", SHM_PREFIX, name);
}

static int
open_fd(const char *name, uint32_t flags, int oflags, uint32_t mode)
{
    if (flags & SHMCHAN_FILE) {
        return open(name, oflags | O_CLOEXEC | O_NOCTTY, (mode_t)mode);
    }
    char path[64];
    shm_path(name, path, sizeof(path));
    return shm_open(path, oflags, (mode_t)mode);
}

/* Create exclusively when asked; fall back to opening an existing one. */
static int
open_or_create(const char *name, uint32_t flags, uint32_t mode, bool *created)
{
    int acc = (flags & SHMCHAN_RDONLY) ? O_RDONLY : O_RDWR;
    *created = false;
    if (flags & SHMCHAN_CREATE) {
        int fd = open_fd(name, flags, acc | O_CREAT | O_EXCL, mode);
        if (fd >= 0) {
            *created = true;
            /* The mode is exact, whatever the umask says. */
            if (fchmod(fd, (mode_t)mode) != 0) {
                int e = errno;
                close(fd);
                errno = e;
                return -1;
            }
            return fd;
        }
        if (errno != EEXIST || (flags & SHMCHAN_EXCL)) {
            return -1;
        }
    }
    return open_fd(name, flags, acc, 0);
}

int
shmchan__shm_open(const char *name, uint32_t flags, uint32_t mode, shmchan__shm **out,
                  bool *created_out)
{
    *out = NULL;
    if (!(flags & SHMCHAN_FILE) && strlen(name) + sizeof(SHM_PREFIX) > 64) {
        return SHMCHAN_ENAME;
    }
    shmchan__shm *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return SHMCHAN_ENOMEM;
    }
    s->fd = open_or_create(name, flags, mode, created_out);
    if (s->fd < 0) {
        int rc = shmchan__posix_err(errno);
        free(s);
        return rc;
    }
    s->rdonly = (flags & SHMCHAN_RDONLY) != 0;
    *out = s;
    return SHMCHAN_OK;
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

void
shmchan__dir_close(shmchan__dir *d)
{
    if (d != NULL) {
        closedir(d->d);
        free(d);
    }
}
