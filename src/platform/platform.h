/*
 * The contract every platform implements (src/platform/posix/, src/platform/win/).
 *
 * The core (src/core/) includes no OS header and calls only what is declared
 * here. Functions return SHMCHAN_OK or a negative SHMCHAN_E* code; OS failures
 * that map to no specific code return SHMCHAN_ESYS after recording the OS error
 * with shmchan__oserror_set().
 */
#ifndef SHMCHAN_PLATFORM_H
#define SHMCHAN_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmchan/shmchan.h"
#include "compat.h"

#if !defined(SHMCHAN_PLATFORM_POSIX) && !defined(SHMCHAN_PLATFORM_WIN)
#error "no platform selected: define SHMCHAN_PLATFORM_POSIX or SHMCHAN_PLATFORM_WIN"
#endif

/* ------------------------------------------------------- backing objects */

/*
 * An open backing object: POSIX shared memory or a file (an fd), a named or
 * file mapping on Windows (handles). It remembers its one mapping, so that
 * wait/wake and locks can be keyed by offset where the platform needs names.
 */
typedef struct shmchan__shm shmchan__shm;

/*
 * Open the backing object of a channel. flags: SHMCHAN_CREATE, SHMCHAN_EXCL,
 * SHMCHAN_FILE (name is a path, taken as given), SHMCHAN_RDONLY,
 * SHMCHAN_GLOBAL. *created_out says whether this call created it (then its
 * size is 0 and the caller initialises it). Names are already validated.
 * Never follows a symbolic link at the name and never blocks: anything but a
 * regular file or shared-memory object there (FIFO, socket, device,
 * directory, symlink) is EUNSAFE. With SHMCHAN_CREATE, a name that vanishes
 * between the exclusive create and the plain open is created again.
 * Errors: ENOENT, EEXIST, EACCES, EUNSAFE, ENOSPC, ENOMEM, ESYS.
 */
int shmchan__shm_open(const char *name, uint32_t flags, uint32_t mode, shmchan__shm **out,
                      bool *created_out);

/* Current size of the backing object in bytes. */
int shmchan__shm_size(shmchan__shm *s, uint64_t *size_out);

/* Grow the object to size and reserve its storage now (posix_fallocate), so
 * that a full /dev/shm or disk fails here with ENOSPC, never as SIGBUS later. */
int shmchan__shm_reserve(shmchan__shm *s, uint64_t size);

/* Map the first size bytes shared (read-only with SHMCHAN_RDONLY at open).
 * The mapping is guarded: if the object shrinks underneath, accesses past the
 * end read zeros instead of raising SIGBUS, and shmchan__shm_faulted() turns
 * true. One mapping per object; mapping again replaces the previous one. */
int shmchan__shm_map(shmchan__shm *s, uint64_t size, void **addr_out);

/* True once an access to the mapping hit storage that was truncated away. */
bool shmchan__shm_faulted(const shmchan__shm *s);

/* Unmap, drop all locks and close. NULL is a no-op. */
void shmchan__shm_close(shmchan__shm *s);

/* Remove the name. Errors: ENOENT, EACCES, ESYS. */
int shmchan__shm_unlink(const char *name, uint32_t flags);

/* Whether the name still refers to this very object: OK, or ENOENT when it is
 * gone or names another object now (always OK where names cannot outlive
 * their last handle or be replaced, as on Windows). */
int shmchan__shm_same(shmchan__shm *s, const char *name, uint32_t flags);

/* Whether the object belongs to another user than this process's effective
 * one (false where the platform has no owners to compare, as on Windows). */
bool shmchan__shm_foreign(shmchan__shm *s);

/* Whether two objects have the same owner (a channel's side wait object,
 * core/side.h). */
bool shmchan__shm_same_owner(shmchan__shm *a, shmchan__shm *b);

/* Give side (an object of ours) the group of chan and chan's mode with each
 * read bit also granting write: a `chgrp`/`chmod` of a channel after its
 * creation reaches its side object at the owner's next open. */
void shmchan__shm_follow(shmchan__shm *side, shmchan__shm *chan);

/* Whether side wait objects for read-only readers work here (core/side.h):
 * they need readiness notifiers and owners to compare. */
bool shmchan__side_supported(void);

/* Set the permission bits of an object of ours (no-op where there are none). */
int shmchan__shm_set_mode(shmchan__shm *s, uint32_t mode);

/* Permission bits of the object (0 where the platform has none). */
uint32_t shmchan__shm_mode(shmchan__shm *s);

/* Enumerate channel names in shared memory; ENOTSUP where impossible. */
typedef struct shmchan__dir shmchan__dir;
int shmchan__dir_open(shmchan__dir **out);
int shmchan__dir_next(shmchan__dir *d, const char **name_out); /* EAGAIN at the end */
void shmchan__dir_close(shmchan__dir *d);

/* ----------------------------------------------------------------- locks */

/*
 * Numbered advisory locks on a backing object, held per open object (not per
 * process) and released by the kernel when the object is closed or its
 * process dies: the basis of peer liveness that survives pid reuse.
 * Indices used by the core are in core/layout.h (SHMCHAN__LOCK_*).
 */

/* Take lock idx (exclusive or shared) without waiting: OK or EBUSY. Taking a
 * lock this object already holds converts it (upgrade or downgrade). */
int shmchan__lock_try(shmchan__shm *s, uint32_t idx, bool exclusive);

/* Release lock idx held by this object (no-op if not held). */
void shmchan__lock_drop(shmchan__shm *s, uint32_t idx);

/* Whether lock idx is held, by this object or another, in a way that
 * conflicts with an exclusive request from a third: OK if free, EBUSY if held.
 * Never takes the lock. A lock this object holds counts as held, so that a
 * handle never judges its own slot's owner (itself) gone. */
int shmchan__lock_probe(shmchan__shm *s, uint32_t idx);

/* ----------------------------------------------------- waiting and waking */

/*
 * Block while *word == expected, until woken, timeout_ns (< 0: for ever)
 * elapses or a signal arrives. Works across processes on a word inside the
 * mapping of s. Returns OK (woken, value changed, or spurious: callers
 * re-check), ETIMEDOUT or EINTR.
 */
int shmchan__wait(shmchan__shm *s, const shmchan__atomic_u32 *word, uint32_t expected,
                  int64_t timeout_ns);

/* Wake every waiter on word. */
void shmchan__wake_all(shmchan__shm *s, const shmchan__atomic_u32 *word);

/* ------------------------------------------------- readiness notifiers */

/*
 * The OS object behind a notifier slot (core/notify.h): on Linux an AF_UNIX
 * datagram socket bound in the abstract namespace to "shmchan.<id>.<slot>"
 * (id as 16 hex digits), non-blocking; on Windows a manual-reset event
 * "Local\shmchan.<id>.<slot>". Both vanish with their last handle, so a
 * dead owner's name is free again and nothing is left in any filesystem.
 *
 * nf_bind: create and own the object: OK, EBUSY (the name is taken: a live
 * owner or a squatter), ENOTSUP (no such mechanism here), ESYS.
 * nf_handle: what a caller polls or waits on (fd, or HANDLE as intptr_t).
 * nf_drain: consume a pending signal, without blocking (POSIX: one, which is
 * what a writer sends per arming; a stray one left costs a spurious wake-up).
 * nf_signal: make the named slot's object ready, without ever blocking and
 * ignoring every failure (gone, full, never bound).
 */
typedef struct shmchan__nf_os shmchan__nf_os;
int shmchan__nf_bind(uint64_t chan_id, uint32_t slot, shmchan__nf_os **out);
void shmchan__nf_unbind(shmchan__nf_os *o);
intptr_t shmchan__nf_handle(const shmchan__nf_os *o);
void shmchan__nf_drain(shmchan__nf_os *o);
void shmchan__nf_signal(uint64_t chan_id, uint32_t slot);
/* Wait until one of n handles (nf_handle's kind, or a caller's fd/HANDLE) is
 * ready, or timeout_ms (< 0: for ever); ready[i] says which. OK, ETIMEDOUT,
 * EINTR, EINVAL (too many for this platform), ESYS. */
int shmchan__nf_poll(const intptr_t *handles, size_t n, int64_t timeout_ms, bool *ready);
/* 64 unpredictable bits where the OS offers them, else well mixed ones. */
uint64_t shmchan__random_u64(void);

/* --------------------------------------------------- asymmetric fences */

/*
 * The Dekker handshakes between a publisher (fast side: store the message,
 * then look at the sleepers count) and a waiter (slow side: count itself in,
 * then look at the message) need a full barrier on both sides. Where the OS
 * can force one on other processes (Linux membarrier GLOBAL_EXPEDITED), the
 * waiter about to sleep pays for both and the publisher's barrier is only a
 * compiler barrier (see docs/design.md, "Waiting").
 *
 * shmchan__asym_register(): register this process as a fast side whose
 * barriers a slow side may force; true when done (idempotent).
 * shmchan__fence_slow(): a full barrier here and on every running thread of
 * every registered process; false when only this thread's could be issued
 * although registered processes may exist (the caller bounds its sleep).
 */
bool shmchan__asym_register(void);
bool shmchan__fence_slow(void);

/* ------------------------------------------------ processes and time */

uint32_t shmchan__pid(void);
/* Bumped in a child process by fork() (a pthread_atfork child handler,
 * installed by shmchan__fork_watch(), which is cheap after the first call;
 * never changes on Windows): a handle that recorded another value was opened
 * by an ancestor. A plain load, for the hot paths. */
extern shmchan__atomic_u32 shmchan__forks;
void shmchan__fork_watch(void);
/* Start time of a process in platform units, 0 if unknown or gone: pairs
 * with a pid to name one process for display and diagnosis. */
uint64_t shmchan__proc_start(uint32_t pid);
/* Whether process pid exists now (for display only: pids are reused). */
bool shmchan__proc_exists(uint32_t pid);
uint64_t shmchan__now_ns(void);      /* monotonic */
int64_t shmchan__realtime_ns(void);  /* wall clock, Unix epoch */
void shmchan__sleep_ns(uint64_t ns);
/* CPUs online (at least 1), looked up once. */
uint32_t shmchan__cpu_count(void);
/* Bytes of one data (or unified) cache of this level (2 or 3) of the CPU we
 * run on, as the OS reports it; 0 when unknown. Not cached: callers derive
 * their policy from it once. */
uint64_t shmchan__cache_size(unsigned level);

/* ------------------------------------------------------------ OS errors */

void shmchan__oserror_set(int err);
int shmchan__oserror_get(void);

#endif /* SHMCHAN_PLATFORM_H */
