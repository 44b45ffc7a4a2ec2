/*
 * Readiness notifiers on POSIX (platform.h, core/notify.h): on Linux a
 * non-blocking AF_UNIX datagram socket bound in the abstract namespace, so
 * that no file is ever created and the kernel frees the name when its owner
 * dies. Writers signal with one MSG_DONTWAIT sendto of an empty datagram from
 * one unbound socket per process. Elsewhere there is no abstract namespace:
 * ENOTSUP (a path in /tmp would outlive a SIGKILL).
 */
#include "platform/posix/posix.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#endif

struct shmchan__nf_os {
    int fd;
};

#ifdef __linux__

static socklen_t
nf_addr(uint64_t chan_id, uint32_t slot, struct sockaddr_un *a)
{
    memset(a, 0, sizeof(*a));
    a->sun_family = AF_UNIX;
    /* sun_path[0] = 0: the abstract namespace; the name is not NUL-terminated. */
    int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "shmchan.%016llx.%u",
                     (unsigned long long)chan_id, slot);
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

int
shmchan__nf_bind(uint64_t chan_id, uint32_t slot, shmchan__nf_os **out)
{
    shmchan__nf_os *o = calloc(1, sizeof(*o));
    if (o == NULL) {
        return SHMCHAN_ENOMEM;
    }
    o->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (o->fd < 0) {
        int rc = shmchan__posix_err(errno);
        free(o);
        return rc;
    }
    struct sockaddr_un a;
    socklen_t len = nf_addr(chan_id, slot, &a);
    if (bind(o->fd, (struct sockaddr *)&a, len) != 0) {
        int e = errno;
        (void)close(o->fd);
        free(o);
        return e == EADDRINUSE ? SHMCHAN_EBUSY : shmchan__posix_err(e);
    }
    *out = o;
    return SHMCHAN_OK;
}

/* One unbound sending socket per process, made on first use. */
static atomic_int sender = -1;

static int
sender_fd(void)
{
    int fd = atomic_load_explicit(&sender, memory_order_acquire);
    if (fd >= 0) {
        return fd;
    }
    int mine = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (mine < 0) {
        return -1;
    }
    int none = -1;
    if (atomic_compare_exchange_strong(&sender, &none, mine)) {
        return mine;
    }
    (void)close(mine); /* another thread was first */
    return none;
}

/*
 * A datagram in a receiver's queue is charged to the sending socket until it
 * is read, so receivers that never read (stopped, or a squatter on a name)
 * could fill our one socket's send buffer and make every later send fail
 * with EAGAIN, to live waiters too. On EAGAIN we therefore send once more
 * from a fresh socket, closed right after (replacing the shared one would
 * race with threads sending through it): if that fails as well, the
 * receiver's own queue is full, and a full queue is ready anyway.
 */
static bool
send_empty(int fd, const struct sockaddr_un *a, socklen_t len)
{
    return sendto(fd, "", 0, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)a, len) == 0 ||
           errno != EAGAIN;
}

void
shmchan__nf_signal(uint64_t chan_id, uint32_t slot)
{
    int fd = sender_fd();
    if (fd < 0) {
        return;
    }
    struct sockaddr_un a;
    socklen_t len = nf_addr(chan_id, slot, &a);
    /* ECONNREFUSED (gone, or never bound): ignored. Names are looked up per
     * socket type, so only datagram sockets bound to a notifier's name can
     * receive these. */
    if (send_empty(fd, &a, len)) {
        return;
    }
    int fresh = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fresh < 0) {
        return;
    }
    (void)send_empty(fresh, &a, len);
    (void)close(fresh); /* its datagram stays queued; no other thread saw it */
}

/*
 * One recv, not a loop until EAGAIN: writers send one datagram per arming,
 * so one is what is normally there, and the second call a loop makes would
 * cost every wake-up a system call. A stray datagram left behind (a late
 * sender, a self-signal, a peer that writes to our name) costs one spurious
 * wake-up, after which the next arming takes it; at most the socket's queue
 * length (net.unix.max_dgram_qlen) of them.
 */
void
shmchan__nf_drain(shmchan__nf_os *o)
{
    char b[16];
    while (recv(o->fd, b, sizeof(b), MSG_DONTWAIT) < 0 && errno == EINTR) {
    }
}

uint64_t
shmchan__random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v)) {
        return v;
    }
    /* No entropy yet (early boot): unique is what matters most, mix time and pid. */
    v = shmchan__now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&v;
    v ^= v >> 31;
    v *= UINT64_C(0x9e3779b97f4a7c15);
    return v ^ (v >> 29);
}

#else /* no abstract namespace */

int
shmchan__nf_bind(uint64_t chan_id, uint32_t slot, shmchan__nf_os **out)
{
    (void)chan_id;
    (void)slot;
    (void)out;
    return SHMCHAN_ENOTSUP;
}

void
shmchan__nf_signal(uint64_t chan_id, uint32_t slot)
{
    (void)chan_id;
    (void)slot;
}

void
shmchan__nf_drain(shmchan__nf_os *o)
{
    (void)o;
}

uint64_t
shmchan__random_u64(void)
{
    uint64_t v = shmchan__now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&v;
    v ^= v >> 31;
    v *= UINT64_C(0x9e3779b97f4a7c15);
    return v ^ (v >> 29);
}

#endif

void
shmchan__nf_unbind(shmchan__nf_os *o)
{
    if (o != NULL) {
        (void)close(o->fd);
        free(o);
    }
}

intptr_t
shmchan__nf_handle(const shmchan__nf_os *o)
{
    return o->fd;
}

int
shmchan__nf_poll(const intptr_t *handles, size_t n, int64_t timeout_ms, bool *ready)
{
    struct pollfd stack[64];
    struct pollfd *p = n <= 64 ? stack : calloc(n, sizeof(*p));
    if (p == NULL) {
        return SHMCHAN_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        p[i].fd = (int)handles[i];
        p[i].events = POLLIN;
        p[i].revents = 0;
    }
    int t = timeout_ms < 0 ? -1 : timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms;
    int r = poll(p, (nfds_t)n, t);
    int rc = r > 0 ? SHMCHAN_OK : r == 0 ? SHMCHAN_ETIMEDOUT : shmchan__posix_err(errno);
    for (size_t i = 0; i < n; i++) {
        ready[i] = r > 0 && p[i].revents != 0;
    }
    if (p != stack) {
        free(p);
    }
    return rc;
}
