/* shmchan: fast, crash-safe shared-memory channels between processes. MIT licence. */

/*
 * This is the whole public interface of shmchan. Anything not declared here is
 * internal and unsupported, including the layout of the shared memory itself
 * (documented for the curious in docs/design.md and docs/queue.md).
 *
 * A channel lives in a named region of shared memory: POSIX shared memory or a
 * named mapping on Windows (a short portable name such as "telemetry"), or a
 * file that persists (SHMCHAN_FILE, the name is then a path). Three kinds exist:
 *
 *   - latest-value channels (shmchan_latest_*): writers publish whole messages,
 *     readers always get the newest complete one with its sequence number, and
 *     can sleep until a newer one arrives;
 *   - queues (shmchan_queue_*): a bounded ring of variable-length messages with
 *     any number of writers, broadcast subscribers and competing workers;
 *   - services (shmchan_service_*): requests from any number of clients to
 *     competing servers, each client receiving the responses to its own.
 *
 * Every function returns SHMCHAN_OK (0) or a negative SHMCHAN_E* code; see
 * shmchan_strerror(). Handles are opaque and owned by the caller until the
 * matching _close().
 */
#ifndef SHMCHAN_H
#define SHMCHAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && !defined(SHMCHAN_STATIC)
#ifdef SHMCHAN_BUILDING
#define SHMCHAN_API __declspec(dllexport)
#else
#define SHMCHAN_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define SHMCHAN_API __attribute__((visibility("default")))
#else
#define SHMCHAN_API
#endif

/* ---------------------------------------------------------------- version */

#define SHMCHAN_VERSION_MAJOR 0
#define SHMCHAN_VERSION_MINOR 2
#define SHMCHAN_VERSION_PATCH 0
#define SHMCHAN_VERSION_STRING "0.2.0"

/** Library version as a string; any of the outputs may be NULL. */
SHMCHAN_API const char *shmchan_version(int *major, int *minor, int *patch);

/** Version of the shared-memory layout this library reads and writes. */
SHMCHAN_API uint32_t shmchan_layout_version(void);

/* ----------------------------------------------------------------- errors */

/*
 * One table is the single source of the codes, their names and messages.
 * Codes are never renumbered or reused.
 */
#define SHMCHAN_ERRNO_MAP(X)                                                       \
    X(EINVAL, -1, "invalid argument")                                              \
    X(ENAME, -2, "invalid channel name")                                           \
    X(ENOENT, -3, "no such channel")                                               \
    X(EEXIST, -4, "channel already exists")                                        \
    X(EACCES, -5, "permission denied")                                             \
    X(ETIMEDOUT, -6, "timed out")                                                  \
    X(EAGAIN, -7, "no message available now")                                     \
    X(EMSGSIZE, -8, "message larger than the channel or buffer allows")           \
    X(EBADMAGIC, -9, "not a shmchan channel")                                      \
    X(ELAYOUT, -10, "channel layout version not supported by this library")        \
    X(EGEOMETRY, -11, "channel kind or geometry differs from the one requested")   \
    X(ETRUNCATED, -12, "channel storage is smaller than its header says")         \
    X(ECORRUPT, -13, "channel header or control data is corrupt")                  \
    X(ENOSPC, -14, "no space left to create the channel")                          \
    X(ENOMEM, -15, "out of memory")                                                \
    X(ELIMIT, -16, "channel has no free reader or writer slot")                    \
    X(EKIND, -17, "operation does not apply to this channel or handle")            \
    X(EINTR, -18, "interrupted")                                                   \
    X(EBUSY, -19, "channel is in use")                                             \
    X(ERDONLY, -20, "channel was opened read-only")                                \
    X(ESTALE, -21, "message was overwritten while being looked at")               \
    X(ENOTSUP, -22, "not supported on this platform")                              \
    X(EINIT, -23, "channel is still being created by another process")            \
    X(ESTATE, -24, "call out of order (nothing reserved, or already reserved)")   \
    X(EUNSAFE, -25, "unsafe object: not a regular file, or another user's non-channel") \
    X(EFORKED, -26, "handle was opened by another process (inherited across fork)") \
    X(EUNKNOWNKIND, -27, "channel kind not supported by this library (made by a newer one?)") \
    X(EPEERDIED, -28, "the peer died while handling the request")                \
    X(EREMOTE, -29, "the server answered with an error")                          \
    X(ESYS, -99, "operating system error")

enum {
    SHMCHAN_OK = 0,
#define SHMCHAN_ERRNO_ENUM_(name, code, msg) SHMCHAN_##name = (code),
    SHMCHAN_ERRNO_MAP(SHMCHAN_ERRNO_ENUM_)
#undef SHMCHAN_ERRNO_ENUM_
};

/** Message for a code; never NULL, also for unknown codes. */
SHMCHAN_API const char *shmchan_strerror(int err);

/** Name of a code such as "SHMCHAN_ETIMEDOUT"; never NULL. */
SHMCHAN_API const char *shmchan_errname(int err);

/** errno (GetLastError() on Windows) behind this thread's last SHMCHAN_ESYS. */
SHMCHAN_API int shmchan_last_oserror(void);

/**
 * What this thread's last failed open said beyond its code, as text, such as
 * "max_msg is 1024, not 2048" after SHMCHAN_EGEOMETRY, or "" when it said
 * nothing more. Each shmchan_latest_open(), shmchan_queue_open() and
 * shmchan_service_open() clears it first. The string is thread-local and lives until this thread's next open.
 * Thread-safety: any thread (each sees its own). Blocking: no.
 */
SHMCHAN_API const char *shmchan_last_error_detail(void);

/**
 * The parts of this thread's last SHMCHAN_EGEOMETRY: the field that differs
 * ("kind", "policy", "max_msg", "capacity", "max_readers", "max_writers"; a
 * static string), the existing channel's value and the requested one (kinds
 * and policies as SHMCHAN_KIND_* and SHMCHAN_POLICY_*). Any output may be NULL.
 * @return SHMCHAN_OK, or SHMCHAN_ENOENT when this thread's last open failed
 *         otherwise or succeeded (the outputs are then left alone).
 * Thread-safety: any thread (each sees its own). Blocking: no.
 */
SHMCHAN_API int shmchan_last_error_geometry(const char **field_out, uint64_t *existing_out,
                                            uint64_t *requested_out);

/* ---------------------------------------------------------------- options */

/* Timeouts, in milliseconds, of every blocking call. */
#define SHMCHAN_WAIT_FOREVER (-1)
#define SHMCHAN_NO_WAIT 0

/* Channel names: 1..SHMCHAN_NAME_MAX bytes of [A-Za-z0-9._-], not starting with
 * '.', no "..". Short enough for macOS's 31-byte POSIX shm names with our prefix. */
#define SHMCHAN_NAME_MAX 22

/* shmchan_opts.flags */
#define SHMCHAN_CREATE 0x0001u    /* create the channel if it does not exist */
#define SHMCHAN_EXCL 0x0002u      /* with SHMCHAN_CREATE: fail if it exists */
#define SHMCHAN_FILE 0x0004u      /* the name is a file path (persists) */
#define SHMCHAN_RDONLY 0x0008u    /* map read-only: read, view and wait only */
#define SHMCHAN_GLOBAL 0x0010u    /* Windows: Global\ namespace instead of Local\ */
#define SHMCHAN_SUBSCRIBE 0x0100u /* queue: receive every message (broadcast) */
#define SHMCHAN_OLDEST 0x0200u    /* subscriber: start at the oldest held message */
#define SHMCHAN_WORKER 0x0400u    /* queue: compete with other workers for messages */
#define SHMCHAN_SERVER 0x0800u    /* service: open as a server (compete for requests);
                                     without it a service handle is a client */
#define SHMCHAN_RESEND 0x1000u    /* service client: shmchan_service_call() sends a request
                                     again when the server holding it dies (at least once) */
#define SHMCHAN_NOCONSUME 0x2000u /* subscriber: what it reads is not marked consumed when it
                                     leaves or dies (a read-ahead, a tap); block-mode writers
                                     still wait for it while it lives */

/* Channel kinds (shmchan_opts.kind, shmchan_info.kind). A channel of a
 * kind this library does not know (a newer library made it) opens and
 * inspects as SHMCHAN_EUNKNOWNKIND; the kinds it knows are unaffected. */
#define SHMCHAN_KIND_ANY 0u
#define SHMCHAN_KIND_LATEST 1u
#define SHMCHAN_KIND_QUEUE 2u
#define SHMCHAN_KIND_SERVICE 3u

/** Name of a kind ("latest", "queue", "service"), or NULL for a kind this library does
 *  not know. */
SHMCHAN_API const char *shmchan_kind_name(uint32_t kind);

/* What a full queue does (shmchan_opts.policy). */
#define SHMCHAN_POLICY_ANY 0u       /* create: block; open: accept the creator's */
#define SHMCHAN_POLICY_BLOCK 1u     /* writers wait for the slowest live reader */
#define SHMCHAN_POLICY_OVERWRITE 2u /* writers never wait; slow readers lose */

#define SHMCHAN_SPIN_DEFAULT 0u          /* spin_ns: default (20 µs) */
#define SHMCHAN_SPIN_NONE 0xFFFFFFFFu    /* spin_ns: sleep at once */

/* Every flag this version knows; any other bit is SHMCHAN_EINVAL. */
#define SHMCHAN_FLAGS_KNOWN                                                                  \
    (SHMCHAN_CREATE | SHMCHAN_EXCL | SHMCHAN_FILE | SHMCHAN_RDONLY | SHMCHAN_GLOBAL |        \
     SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST | SHMCHAN_WORKER | SHMCHAN_SERVER | SHMCHAN_RESEND | \
     SHMCHAN_NOCONSUME)

/*
 * Options for opening or creating a channel. Zero means "default" when creating
 * and "accept whatever the channel has" when opening; a non-zero geometry field
 * that differs from an existing channel's is SHMCHAN_EGEOMETRY, and
 * shmchan_last_error_detail() / shmchan_last_error_geometry() then name the
 * field and both values. Flag bits outside SHMCHAN_FLAGS_KNOWN and non-zero
 * reserved words are SHMCHAN_EINVAL, so that later versions can give them a
 * meaning without an older library silently ignoring it.
 */
typedef struct shmchan_opts {
    uint32_t struct_size; /* set by shmchan_opts_init(); leave alone */
    uint32_t flags;       /* SHMCHAN_CREATE | SHMCHAN_EXCL | ... ; 0 = open existing */
    uint32_t mode;        /* permission bits at creation, 0..0777 (anything else is
                             SHMCHAN_EINVAL); 0 = 0600. An existing channel keeps
                             its own mode (shmchan_info.mode says which). */
    uint32_t policy;      /* queue: SHMCHAN_POLICY_* */
    uint64_t max_msg;     /* largest message in bytes; create default 4096 */
    uint64_t capacity;    /* queue: ring bytes, rounded up to a power of two;
                             create default 1 MiB */
    uint32_t max_readers; /* queue: reader slots; create default 64 */
    uint32_t max_writers; /* queue: writer slots; create default 64 */
    uint32_t spin_ns;     /* readers busy-wait this long before sleeping (up to 8 x
                             while messages keep arriving just after); SHMCHAN_SPIN_* */
    uint32_t reserved[5]; /* must be zero */
} shmchan_opts;

/** Fill opts with defaults (all zero) and its struct_size. */
SHMCHAN_API void shmchan_opts_init(shmchan_opts *opts);

/* ------------------------------------------------------ region management */

/**
 * Remove a channel's name (SHMCHAN_FILE in flags: a file path). Processes
 * that have it open keep using it until they close it. It removes whatever is
 * at the name (a FIFO or a foreign file too: check with shmchan_info_get()
 * first where that matters, as `shmchan rm` does), but takes turns with
 * reapers and waits (bounded) for a creator to finish building, so that it
 * never lands on a channel a racing shmchan_reap() did not mean to remove.
 * @return SHMCHAN_OK, SHMCHAN_ENAME, SHMCHAN_ENOENT, SHMCHAN_EACCES, SHMCHAN_ESYS.
 * Blocking: up to about 2 s while a creator builds the channel.
 */
SHMCHAN_API int shmchan_unlink(const char *name, uint32_t flags);

/** Whether name is a valid channel name (SHMCHAN_OK or SHMCHAN_ENAME). */
SHMCHAN_API int shmchan_name_check(const char *name);

/*
 * A snapshot of a channel, readable by any process that may open it, without
 * disturbing readers or writers. Counters are exact at some instant each, not
 * all at one instant.
 */
typedef struct shmchan_info {
    uint32_t struct_size;  /* set by the caller: sizeof(shmchan_info) */
    uint32_t kind;         /* SHMCHAN_KIND_* */
    uint32_t policy;       /* queue: SHMCHAN_POLICY_* */
    uint32_t mode;         /* permission bits of the backing object */
    uint64_t max_msg;
    uint64_t capacity;     /* queue ring bytes; latest: 0 */
    uint64_t region_size;  /* bytes of shared memory, header included */
    uint64_t seq;          /* latest: newest sequence; queue: next sequence */
    uint64_t messages;     /* messages published / committed */
    uint64_t bytes;        /* payload bytes published / committed */
    uint64_t drops;        /* queue: messages overwritten unread (docs/queue.md, 5) */
    uint64_t waits;        /* times a writer waited for space / reader slept */
    uint64_t recovered;    /* dead peers cleaned up (readers, writers, locks) */
    uint64_t oldest_seq;   /* queue: oldest message still held */
    uint32_t readers;      /* live readers (queue) */
    uint32_t writers;      /* live registered writers (queue) */
    uint32_t dead_readers; /* slots whose process is gone, not yet reclaimed */
    uint32_t dead_writers;
    uint32_t max_readers;
    uint32_t max_writers;
    uint32_t creator_pid;
    uint32_t layout_version;
    int64_t created_unix_ns; /* wall-clock creation time */
    uint32_t in_use;         /* 1 if some process has the channel open */
    uint32_t reserved[7];
} shmchan_info;

/**
 * Describe the channel called name without joining it (flags: SHMCHAN_FILE).
 * Never blocks on what is at the name: a FIFO, socket, directory or symlink
 * there is SHMCHAN_EUNSAFE at once.
 * @return SHMCHAN_OK, the open errors (SHMCHAN_ENOENT, SHMCHAN_EBADMAGIC,
 *         SHMCHAN_ELAYOUT, SHMCHAN_ETRUNCATED, SHMCHAN_ECORRUPT, SHMCHAN_EACCES,
 *         SHMCHAN_EUNSAFE), SHMCHAN_EUNKNOWNKIND for a kind this library does
 *         not know.
 */
SHMCHAN_API int shmchan_info_get(const char *name, uint32_t flags, shmchan_info *info);

/* Roles of the peers listed by shmchan_peers_get(): a queue's writers,
 * subscribers and workers; a service's servers (readers of its requests:
 * position, lag and count as a worker's) and clients (writers of requests:
 * count only). Services first listed their servers as SHMCHAN_PEER_WORKER
 * and their clients as SHMCHAN_PEER_WRITER (earlier 0.2.0 builds): code
 * that reads both kinds of library should accept both. */
#define SHMCHAN_PEER_WRITER 1u
#define SHMCHAN_PEER_SUBSCRIBER 2u
#define SHMCHAN_PEER_WORKER 3u
#define SHMCHAN_PEER_SERVER 4u
#define SHMCHAN_PEER_CLIENT 5u

typedef struct shmchan_peer {
    uint32_t role;     /* SHMCHAN_PEER_* */
    uint32_t slot;     /* index in the channel's table */
    uint32_t pid;
    uint32_t alive;    /* 0 when its process is gone */
    uint64_t position; /* reader: sequence of the next message it will get */
    uint64_t lag;      /* reader: messages published that it has not consumed */
    uint64_t count;    /* messages received (reader) or sent (writer) */
    uint64_t lost;     /* subscriber: messages overwritten before it read them */
} shmchan_peer;

/**
 * List a queue's registered readers and writers (a service's servers and
 * clients), at most cap of them;
 * *count_out receives how many exist (which may exceed cap).
 * @return SHMCHAN_OK, SHMCHAN_EKIND for a latest-value channel, the open errors.
 */
SHMCHAN_API int shmchan_peers_get(const char *name, uint32_t flags, shmchan_peer *peers,
                                  size_t cap, size_t *count_out);

/*
 * Iterate the channels in POSIX shared memory (not files). Unsupported where
 * the platform cannot enumerate named objects (SHMCHAN_ENOTSUP on Windows).
 */
typedef struct shmchan_list shmchan_list;
SHMCHAN_API int shmchan_list_open(shmchan_list **out);
/** Next name; SHMCHAN_EAGAIN at the end. The string lives until the next call. */
SHMCHAN_API int shmchan_list_next(shmchan_list *it, const char **name_out);
SHMCHAN_API void shmchan_list_close(shmchan_list *it);
/*
 * The same for side wait objects (read-only readers' notifiers of a
 * latest-value channel, "NAME..wait", docs/event-loops.md): each names the
 * channel NAME it was made for, whether or not that channel still exists.
 * Iterate and close as above.
 */
SHMCHAN_API int shmchan_list_sides_open(shmchan_list **out);

/**
 * Remove the channel if no process has it open (its users all exited or
 * crashed). With dry_run it only reports. *removed_out (may be NULL) is 1 if
 * it was (or would be) removed. Never removes a channel in use or being
 * created: it decides under the channel's init lock, which a creator holds
 * from before the channel is READY until it has joined (docs/design.md,
 * "Race-free creation"), and it removes the name only if it still names the
 * object it inspected.
 * @return SHMCHAN_OK, SHMCHAN_EBUSY if some process has it open or is creating
 *         it, SHMCHAN_ENOENT if it is gone (or replaced) meanwhile, open errors
 *         (SHMCHAN_EUNSAFE for a FIFO, socket, directory or symlink).
 */
SHMCHAN_API int shmchan_reap(const char *name, uint32_t flags, bool dry_run, int *removed_out);

/**
 * Remove the side wait object "NAME..wait" of a latest-value channel if it
 * is orphaned: the channel NAME is gone, or the channel under that name now
 * is not the one the side object was made for (its channel id differs). A
 * side object that belongs to the channel there is never removed
 * (*removed_out 0), nor an object whose header is not a side object's
 * (SHMCHAN_EBADMAGIC). With dry_run it only
 * reports. shmchan_unlink() and shmchan_reap() remove a channel's side
 * object with it; this collects those left by older versions or by removing
 * a channel's file alone.
 * @return SHMCHAN_OK, SHMCHAN_ENOENT if there is no side object, SHMCHAN_EBADMAGIC,
 *         SHMCHAN_EUNSAFE (a FIFO, socket, directory or symlink), SHMCHAN_EBUSY
 *         if the channel is being created or its side object was taken over
 *         meanwhile, SHMCHAN_ENOTSUP where side objects have no name that
 *         outlives their users (Windows), the channel's open errors when it
 *         cannot be inspected (then nothing is removed).
 */
SHMCHAN_API int shmchan_reap_side(const char *name, uint32_t flags, bool dry_run,
                                  int *removed_out);

/* A message as seen in place (zero-copy) or as received. */
typedef struct shmchan_msg {
    const void *data; /* in shared memory for views; borrowed, see each call */
    uint64_t len;     /* payload bytes */
    uint64_t seq;     /* the channel's sequence number of this message */
    uint64_t lost;    /* queue overwrite: messages this reader missed before it */
    uint64_t token;   /* internal; leave alone */
} shmchan_msg;

/* --------------------------------------------------- latest-value channels */

typedef struct shmchan_latest shmchan_latest;

/**
 * Open or create a latest-value channel. SHMCHAN_EINVAL also for unknown flag
 * bits or non-zero reserved words; after SHMCHAN_EGEOMETRY (kind or max_msg
 * differs) shmchan_last_error_detail() names the field and both values. Every
 * other call on the handle returns SHMCHAN_EFORKED in a process other than
 * the opener's (see Caveats).
 * @return SHMCHAN_OK, SHMCHAN_EINVAL, SHMCHAN_ENAME, SHMCHAN_ENOENT,
 *         SHMCHAN_EEXIST, SHMCHAN_EACCES, SHMCHAN_EBADMAGIC, SHMCHAN_ELAYOUT,
 *         SHMCHAN_EGEOMETRY, SHMCHAN_ETRUNCATED, SHMCHAN_ECORRUPT,
 *         SHMCHAN_ENOSPC, SHMCHAN_ENOMEM, SHMCHAN_EINIT, SHMCHAN_EUNSAFE,
 *         SHMCHAN_ESYS. SHMCHAN_EUNSAFE: the name is a FIFO, socket, directory
 *         or symlink, or (creating) an object of another user that is not a
 *         valid channel; see docs/security.md, "The filesystem".
 * Thread-safety: any thread. A handle may be shared by threads.
 */
SHMCHAN_API int shmchan_latest_open(const char *name, const shmchan_opts *opts,
                                    shmchan_latest **out);
/** Close the handle (NULL is a no-op). The channel stays until unlinked. */
SHMCHAN_API void shmchan_latest_close(shmchan_latest *ch);

/**
 * Publish len bytes as the newest message. Writers never wait for readers;
 * concurrent writers are serialised by a lock that survives a dead holder, and
 * each publish gets the next sequence number (starting at 1). A handle's
 * first publish takes one of the channel's 128 writer slots until it closes.
 * @return SHMCHAN_OK, SHMCHAN_EMSGSIZE, SHMCHAN_ERDONLY, SHMCHAN_ETRUNCATED,
 *         SHMCHAN_ELIMIT (all writer slots taken).
 */
SHMCHAN_API int shmchan_latest_publish(shmchan_latest *ch, const void *data, size_t len,
                                       uint64_t *seq_out);

/**
 * Zero-copy publish: *buf_out receives max_msg writable bytes in a buffer no
 * reader sees yet; shmchan_latest_commit() publishes the first len of them,
 * shmchan_latest_abort() drops them. Holds the writer lock meanwhile.
 * Blocking: waits for the writers' lock while another writer holds it
 * (another thread sharing the handle too); a dead or forged holder is
 * recovered, never waited for for ever.
 * @return SHMCHAN_OK, SHMCHAN_ESTATE if this thread already began on this
 *         handle, SHMCHAN_ERDONLY, SHMCHAN_ETRUNCATED, SHMCHAN_ELIMIT (the
 *         handle's first publish found all 128 writer slots taken).
 */
SHMCHAN_API int shmchan_latest_begin(shmchan_latest *ch, void **buf_out);
SHMCHAN_API int shmchan_latest_commit(shmchan_latest *ch, size_t len, uint64_t *seq_out);
SHMCHAN_API int shmchan_latest_abort(shmchan_latest *ch);

/**
 * Copy out the newest complete message. Never torn.
 * @return SHMCHAN_OK, SHMCHAN_EAGAIN if nothing was published yet,
 *         SHMCHAN_EMSGSIZE if cap is too small (*len_out still says how much).
 */
SHMCHAN_API int shmchan_latest_read(shmchan_latest *ch, void *buf, size_t cap,
                                    size_t *len_out, uint64_t *seq_out);

/**
 * Wait until a message newer than after_seq exists; *seq_out receives the
 * newest sequence. Spins for spin_ns, then sleeps in the kernel.
 * @return SHMCHAN_OK, SHMCHAN_ETIMEDOUT, SHMCHAN_EAGAIN (timeout 0),
 *         SHMCHAN_EINTR if a signal interrupted the sleep.
 */
SHMCHAN_API int shmchan_latest_wait(shmchan_latest *ch, uint64_t after_seq, int64_t timeout_ms,
                                    uint64_t *seq_out);

/** Wait for a message newer than after_seq, then read the newest. */
SHMCHAN_API int shmchan_latest_read_next(shmchan_latest *ch, uint64_t after_seq, void *buf,
                                         size_t cap, int64_t timeout_ms, size_t *len_out,
                                         uint64_t *seq_out);

/**
 * Look at the newest message in place. msg->data stays readable while the
 * handle is open but may be overwritten by later publishes: whatever was
 * derived from it is valid only if shmchan_latest_view_check() then says so.
 * @return SHMCHAN_OK, SHMCHAN_EAGAIN if nothing was published yet.
 */
SHMCHAN_API int shmchan_latest_view(shmchan_latest *ch, shmchan_msg *msg);
/** SHMCHAN_OK if the viewed message was not overwritten since, else SHMCHAN_ESTALE. */
SHMCHAN_API int shmchan_latest_view_check(shmchan_latest *ch, const shmchan_msg *msg);

/** Newest published sequence (0: none yet), without copying. */
SHMCHAN_API uint64_t shmchan_latest_seq(shmchan_latest *ch);
SHMCHAN_API size_t shmchan_latest_max_msg(const shmchan_latest *ch);

/* ----------------------------------------------------------------- queues */

typedef struct shmchan_queue shmchan_queue;

/**
 * Open or create a queue. Any handle not opened read-only can send. With
 * SHMCHAN_SUBSCRIBE (optionally | SHMCHAN_OLDEST) or SHMCHAN_WORKER the handle
 * also takes a reader slot and can receive; in block mode its position then
 * holds writers back until it consumes or closes (or its process dies).
 * Block mode never overwrites a message that no reader has received: with no
 * reader registered, writers wait for the first one (docs/queue.md, "Unread
 * messages"); a subscriber joining at the newest does not consume what came
 * before it.
 * @return the errors of shmchan_latest_open(), and SHMCHAN_ELIMIT when the
 *         reader table (for a plain handle: the writer table) is full.
 * Thread-safety: one thread may send (send, reserve, commit, abort,
 * send_batch) while another receives (recv, recv_batch, peek, release,
 * notify, arm) on the same handle, and info and max_msg may be called from
 * any thread meanwhile; two threads on the same side still need the
 * caller's serialisation (or a handle per thread), and close needs every
 * other call on the handle finished.
 */
SHMCHAN_API int shmchan_queue_open(const char *name, const shmchan_opts *opts,
                                   shmchan_queue **out);
SHMCHAN_API void shmchan_queue_close(shmchan_queue *q);

/**
 * Copy len bytes in as one message. In block mode waits up to timeout_ms for
 * space (also while no reader is registered and the ring holds only unread
 * messages); in overwrite mode never waits. Any call on a handle opened by
 * another process (inherited across fork) returns SHMCHAN_EFORKED.
 * @return SHMCHAN_OK, SHMCHAN_EMSGSIZE, SHMCHAN_EAGAIN (no space, timeout 0),
 *         SHMCHAN_ETIMEDOUT, SHMCHAN_ERDONLY, SHMCHAN_EINTR, SHMCHAN_ESTATE (a
 *         reservation is open), SHMCHAN_ELIMIT (a reader handle's first send
 *         finds no free writer slot), SHMCHAN_ETRUNCATED, SHMCHAN_ECORRUPT.
 */
SHMCHAN_API int shmchan_queue_send(shmchan_queue *q, const void *data, size_t len,
                                   int64_t timeout_ms);

/**
 * Send msgs[0..count) (their data and len; the other fields are ignored) as
 * count messages, in order, waking sleeping readers once. Waits up to
 * timeout_ms for the first one's space only; the rest go while they fit, so
 * *sent_out may be less than count: send the remainder again.
 * @return as shmchan_queue_send(); SHMCHAN_OK when at least one went and the
 *         next found no space; SHMCHAN_EMSGSIZE before sending any if one is
 *         too large. *sent_out says how many went, also with an error.
 */
SHMCHAN_API int shmchan_queue_send_batch(shmchan_queue *q, const shmchan_msg *msgs, size_t count,
                                         int64_t timeout_ms, size_t *sent_out);

/**
 * Zero-copy send: reserve len bytes in the ring and fill them in place at
 * *buf_out, then commit (possibly fewer bytes) or abort. One reservation per
 * handle at a time; readers see messages in reservation order.
 * @return as shmchan_queue_send(), and SHMCHAN_ESTATE when already reserved.
 */
SHMCHAN_API int shmchan_queue_reserve(shmchan_queue *q, size_t len, int64_t timeout_ms,
                                      void **buf_out);
SHMCHAN_API int shmchan_queue_commit(shmchan_queue *q, size_t len);
SHMCHAN_API int shmchan_queue_abort(shmchan_queue *q);

/**
 * Receive the next message into buf. info (may be NULL) receives its length,
 * sequence and, in overwrite mode, how many messages were lost before it.
 * @return SHMCHAN_OK, SHMCHAN_EAGAIN (nothing, timeout 0), SHMCHAN_ETIMEDOUT,
 *         SHMCHAN_EMSGSIZE (cap too small: the message is left in place and
 *         *len_out says its size), SHMCHAN_EKIND (handle has no reader role),
 *         SHMCHAN_EINTR, SHMCHAN_ESTATE (a view is held), SHMCHAN_ETRUNCATED,
 *         SHMCHAN_ECORRUPT (the ring holds what no writer would write).
 */
SHMCHAN_API int shmchan_queue_recv(shmchan_queue *q, void *buf, size_t cap, int64_t timeout_ms,
                                   size_t *len_out, shmchan_msg *info);

/**
 * Receive up to max messages packed into buf (each at an 8-byte aligned
 * offset); msgs[i].data points into buf. Waits only for the first one.
 * @return as shmchan_queue_recv() (SHMCHAN_EMSGSIZE: msgs[0].len says the
 *         size); *count_out receives how many were copied.
 */
SHMCHAN_API int shmchan_queue_recv_batch(shmchan_queue *q, void *buf, size_t cap, size_t max,
                                         int64_t timeout_ms, shmchan_msg *msgs,
                                         size_t *count_out);

/**
 * Zero-copy receive: msg->data points at the next message in the ring, valid
 * until shmchan_queue_release() on this handle. In overwrite mode a writer may
 * lap a slow reader: release then returns SHMCHAN_ESTALE if the bytes were
 * overwritten meanwhile (discard what was derived from them).
 * @return as shmchan_queue_recv(), and SHMCHAN_ESTATE if a view is held.
 */
SHMCHAN_API int shmchan_queue_peek(shmchan_queue *q, int64_t timeout_ms, shmchan_msg *msg);
SHMCHAN_API int shmchan_queue_release(shmchan_queue *q);

SHMCHAN_API size_t shmchan_queue_max_msg(const shmchan_queue *q);

/** A snapshot of this queue's counters (as shmchan_info_get(), without reopening). */
SHMCHAN_API int shmchan_queue_info(shmchan_queue *q, shmchan_info *info);

/* --------------------------------------------------------------- services
 *
 * Request/response channels (SHMCHAN_KIND_SERVICE, docs/services.md): any
 * number of clients and servers. A client sends requests and receives
 * exactly the responses to its own requests, matched by an id the library
 * assigns; servers compete for requests (as queue workers do) and answer
 * each once, or with a stream of responses flagged SHMCHAN_REPLY_MORE and a
 * last one without it.
 *
 * shmchan_opts for services: max_msg = largest request AND response body
 * (default 4096); capacity = request ring bytes (as a queue's); max_readers =
 * server slots (default 16); max_writers = client slots (default 64). Each
 * client slot has a reply ring of its own, sized by the library from
 * max_msg: the smallest power of two that holds four responses of max_msg
 * bytes, and at least 64 KiB. policy must be 0 or SHMCHAN_POLICY_BLOCK.
 *
 * Crashes: a client that dies loses its pending responses and nothing else
 * (the next client in its slot starts clean; servers drop replies to it
 * without blocking). A server that dies while it holds a request makes the
 * client's wait for that request fail with SHMCHAN_EPEERDIED within a sleep
 * slice (about 10 ms), not at the timeout. No wait lasts past its timeout.
 */
typedef struct shmchan_service shmchan_service;

/* A request as a server took it; pass it back to shmchan_service_reply(). */
typedef struct shmchan_request {
    const void *data;  /* the body (in the buf given to take) */
    uint64_t len;
    uint64_t id;       /* assigned by the client library, unique per client slot generation */
    uint64_t token[2]; /* internal (client slot + generation); leave alone */
} shmchan_request;

/* shmchan_service_reply() flags / shmchan_response.flags */
#define SHMCHAN_REPLY_MORE 0x1u  /* more responses follow (a stream); without it: the last */
#define SHMCHAN_REPLY_ERROR 0x2u /* the server reports failure; body = error text */

/* SHMCHAN_RESEND: sends of one call after the first, at most. A request that
 * kills every server that takes it should not take all of them down. */
#define SHMCHAN_RESEND_MAX 3

typedef struct shmchan_response {
    uint64_t id;    /* the request it answers */
    uint64_t len;
    uint32_t flags; /* SHMCHAN_REPLY_MORE / SHMCHAN_REPLY_ERROR as the server sent them */
    uint32_t reserved;
} shmchan_response;

/**
 * Open or create a service channel: a server with SHMCHAN_SERVER in
 * opts->flags (takes a server slot), else a client (takes a client slot and
 * its reply ring). SHMCHAN_RDONLY, SHMCHAN_SUBSCRIBE, SHMCHAN_OLDEST and
 * SHMCHAN_WORKER are SHMCHAN_EINVAL here.
 * @return the errors of shmchan_queue_open(); SHMCHAN_ELIMIT when every
 *         server (client) slot is taken; SHMCHAN_EGEOMETRY for a channel
 *         of another kind.
 * Thread-safety: one thread at a time per handle (open a handle per thread);
 * max_msg from any thread. Close needs every other call finished.
 */
SHMCHAN_API int shmchan_service_open(const char *name, const shmchan_opts *opts,
                                     shmchan_service **out);
/** Close the handle (NULL: no-op). A client's pending responses are lost;
 *  a server's unanswered request fails for its client with SHMCHAN_EPEERDIED. */
SHMCHAN_API void shmchan_service_close(shmchan_service *s);
/** Largest request and response body in bytes (0 for NULL). */
SHMCHAN_API size_t shmchan_service_max_msg(const shmchan_service *s);

/**
 * Client: send a request (len bytes copied). *id_out (may be NULL) receives
 * its id, which the responses carry. Waits up to timeout_ms for space in the
 * request ring. Any number of requests may be pending on a handle.
 * @return SHMCHAN_OK, SHMCHAN_EMSGSIZE (len > max_msg), SHMCHAN_EAGAIN (no
 *         space, timeout 0), SHMCHAN_ETIMEDOUT, SHMCHAN_EKIND (a server
 *         handle), SHMCHAN_ESTATE (a reservation is open), SHMCHAN_EINTR,
 *         SHMCHAN_EFORKED, SHMCHAN_ETRUNCATED, SHMCHAN_ECORRUPT.
 */
SHMCHAN_API int shmchan_service_request(shmchan_service *s, const void *data, size_t len,
                                        int64_t timeout_ms, uint64_t *id_out);

/**
 * Client: the next response to ANY pending request of this handle, copied
 * into buf; *len_out (may be NULL) its length, info (may be NULL) its id and
 * flags. A response without SHMCHAN_REPLY_MORE completes its request.
 * Responses to requests this handle did not send (a previous owner's of the
 * slot, forged ones) are dropped.
 * @return SHMCHAN_OK, SHMCHAN_EAGAIN (none now, timeout 0),
 *         SHMCHAN_ETIMEDOUT, SHMCHAN_ESTATE (no request pending),
 *         SHMCHAN_EPEERDIED (the server that held one of the pending
 *         requests died or closed without its last response: info->id names
 *         it and it is no longer pending), SHMCHAN_EMSGSIZE (cap too small:
 *         the response stays, *len_out and info say its size and id),
 *         SHMCHAN_EKIND (a server handle), SHMCHAN_EINTR, SHMCHAN_EFORKED,
 *         SHMCHAN_ETRUNCATED, SHMCHAN_ECORRUPT.
 */
SHMCHAN_API int shmchan_service_response(shmchan_service *s, void *buf, size_t cap,
                                         int64_t timeout_ms, size_t *len_out,
                                         shmchan_response *info);

/**
 * Client: request + wait for its final response (single-response services),
 * within one timeout for both. Needs no other request pending on the handle
 * (SHMCHAN_ESTATE). Responses flagged SHMCHAN_REPLY_MORE are skipped: use
 * request/response for streams. A response flagged SHMCHAN_REPLY_ERROR
 * gives SHMCHAN_EREMOTE with its body (the error text) in buf.
 * With SHMCHAN_RESEND in the client's open flags, a request whose server
 * died (or closed) holding it is sent again to whichever server takes it
 * next, within the same timeout and at most SHMCHAN_RESEND_MAX times: the
 * request may then have run more than once (the dead server may have acted
 * on it), so use it for requests that are safe to repeat. Without it such a
 * call fails with SHMCHAN_EPEERDIED.
 * @return as shmchan_service_request() and shmchan_service_response(), and
 *         SHMCHAN_EREMOTE. On SHMCHAN_ETIMEDOUT the request stays pending
 *         (its response may still come: shmchan_service_response()).
 */
SHMCHAN_API int shmchan_service_call(shmchan_service *s, const void *req, size_t req_len,
                                     void *buf, size_t cap, int64_t timeout_ms,
                                     size_t *len_out);

/**
 * Server: take the next request, competing with the other servers; its body
 * is copied into buf and req->data points there. A server handle holds one
 * request at a time: answer it (its last response) before taking another.
 * Requests of a client slot that was closed or has a new owner since, and
 * forged ones, are skipped (a client that died may still have its request
 * taken: the reply then says SHMCHAN_EPEERDIED).
 * @return SHMCHAN_OK, SHMCHAN_EAGAIN (none, timeout 0), SHMCHAN_ETIMEDOUT,
 *         SHMCHAN_EMSGSIZE (cap too small: the request stays for another
 *         server or a bigger buf; req->len says its size), SHMCHAN_ESTATE (a
 *         request is still unanswered, or a reply reserved), SHMCHAN_EKIND
 *         (a client handle), SHMCHAN_EINTR, SHMCHAN_EFORKED,
 *         SHMCHAN_ETRUNCATED, SHMCHAN_ECORRUPT.
 */
SHMCHAN_API int shmchan_service_take(shmchan_service *s, void *buf, size_t cap,
                                     int64_t timeout_ms, shmchan_request *req);

/**
 * Server: answer req (as take gave it) with len bytes; flags
 * SHMCHAN_REPLY_MORE (more follow) and/or SHMCHAN_REPLY_ERROR. Waits up to
 * timeout_ms for space in the client's reply ring while the client lives.
 * @return SHMCHAN_OK, SHMCHAN_EPEERDIED (the client is gone or its slot has a
 *         new owner: the reply is dropped and the request done; a server
 *         looks at a client at most once per ms while replies find space,
 *         and always before it waits for space, so it never blocks on a dead
 *         client; a reply within that ms is dropped by the slot's next
 *         owner and returns SHMCHAN_OK), SHMCHAN_EMSGSIZE, SHMCHAN_EAGAIN (no space,
 *         timeout 0), SHMCHAN_ETIMEDOUT, SHMCHAN_EINVAL (unknown flags, or req
 *         not the request this handle holds), SHMCHAN_ESTATE (nothing held,
 *         or a reply reserved), SHMCHAN_EKIND, SHMCHAN_EINTR, SHMCHAN_EFORKED,
 *         SHMCHAN_ETRUNCATED, SHMCHAN_ECORRUPT.
 */
SHMCHAN_API int shmchan_service_reply(shmchan_service *s, const shmchan_request *req,
                                      const void *data, size_t len, uint32_t flags,
                                      int64_t timeout_ms);

/**
 * Zero-copy: reserve len bytes for a request body (client) or a response
 * body (server, to req) in shared memory, fill them at *buf_out, then commit
 * (possibly fewer bytes; flags as for reply). One reservation per handle.
 * @return as shmchan_service_request() / shmchan_service_reply();
 *         SHMCHAN_ESTATE from commit when nothing is reserved.
 */
SHMCHAN_API int shmchan_service_request_reserve(shmchan_service *s, size_t len,
                                                int64_t timeout_ms, void **buf_out);
SHMCHAN_API int shmchan_service_request_commit(shmchan_service *s, size_t len,
                                               uint64_t *id_out);
SHMCHAN_API int shmchan_service_reply_reserve(shmchan_service *s, const shmchan_request *req,
                                              size_t len, int64_t timeout_ms, void **buf_out);
SHMCHAN_API int shmchan_service_reply_commit(shmchan_service *s, size_t len, uint32_t flags);

/* ------------------------------------------------------- readiness handles
 *
 * For readers that wait in an event loop (epoll, libuv, libevent, GLib,
 * asyncio, WaitForMultipleObjects) instead of in the calls above. Each
 * latest-value handle and each queue subscriber or worker can have one
 * readiness handle: on Linux a file descriptor that poll/epoll/select report
 * readable, on Windows an event HANDLE. The loop is:
 *
 *     shmchan_queue_notify(q, &fd);           once; the handle starts armed
 *     loop: wait until fd is readable
 *           shmchan_queue_recv(q, ..., SHMCHAN_NO_WAIT, ...) until SHMCHAN_EAGAIN
 *           shmchan_queue_arm(q)              drain and re-arm
 *
 * Contract:
 * - Level semantics at arming: arm drains the handle, arms it and looks
 *   again; if the reader has something to receive (latest: a sequence newer
 *   than after_seq; queue: a message, or a record a writer is still filling,
 *   or an error its next receive reports), the handle is ready at once.
 *   Nothing published between the last receive and the arming is missed.
 * - After arming, the first publish or send (from any process) makes it
 *   ready; writers signal each armed handle at most once per arming, never
 *   once per message, without blocking, and a dead or stopped reader never
 *   makes a writer wait or fail. Spurious readiness is possible (receive with
 *   SHMCHAN_NO_WAIT and expect SHMCHAN_EAGAIN).
 * - Writers with no armed handle make no system call. While a handle exists,
 *   publishers of the channel issue a full memory fence per publish.
 * - The OS object is owned by the shmchan handle: do not close it, and stop
 *   polling it before closing the shmchan handle. It is non-blocking and
 *   close-on-exec; nothing is created in any filesystem (Linux: an abstract
 *   AF_UNIX datagram socket; Windows: a named event), and the kernel reclaims
 *   it when the process dies.
 * - At most 64 readiness handles per channel at once (SHMCHAN_ELIMIT).
 * Platforms: Linux and Windows; elsewhere SHMCHAN_ENOTSUP.
 * Thread-safety: latest handles as the handle; on a queue handle notify and
 * arm are receiving calls (see shmchan_queue_open()).
 */
#ifdef _WIN32
typedef void *shmchan_os_handle; /* an event HANDLE */
#else
typedef int shmchan_os_handle;   /* a file descriptor */
#endif

/**
 * The readiness handle of a latest-value reader, made at the first call and
 * armed with after_seq 0 (ready at once if anything was ever published).
 * A read-only handle (SHMCHAN_RDONLY) registers in the channel's side wait
 * object ("<name>..wait", docs/event-loops.md "Read-only readers"), which
 * gives it no way to write the channel.
 * @return SHMCHAN_OK, SHMCHAN_ERDONLY (read-only and the channel has no
 *         usable side object: made by an older creator, not writable by this
 *         user, forged, or Windows), SHMCHAN_ELIMIT, SHMCHAN_ENOTSUP,
 *         SHMCHAN_ENOMEM, SHMCHAN_ESYS.
 */
SHMCHAN_API int shmchan_latest_notify(shmchan_latest *ch, shmchan_os_handle *h_out);

/**
 * Drain and re-arm: the handle turns ready at the first publish of a
 * sequence newer than after_seq, at once if one exists.
 * @return SHMCHAN_OK, SHMCHAN_ESTATE (no readiness handle yet).
 * Blocking: no.
 */
SHMCHAN_API int shmchan_latest_arm(shmchan_latest *ch, uint64_t after_seq);

/**
 * The readiness handle of a queue subscriber or worker, made at the first
 * call and armed. A worker's handle says a message is there to compete for:
 * another worker may take it first (its receive then says SHMCHAN_EAGAIN).
 * @return SHMCHAN_OK, SHMCHAN_EKIND (no reader role), SHMCHAN_ESTATE (a view
 *         is held), SHMCHAN_ELIMIT, SHMCHAN_ENOTSUP, SHMCHAN_ENOMEM, SHMCHAN_ESYS.
 */
SHMCHAN_API int shmchan_queue_notify(shmchan_queue *q, shmchan_os_handle *h_out);

/**
 * Drain and re-arm: ready at the next send, at once if this reader has
 * something to receive now.
 * @return SHMCHAN_OK, SHMCHAN_ESTATE (no readiness handle yet, or a view is
 *         held), SHMCHAN_EKIND.
 * Blocking: no.
 */
SHMCHAN_API int shmchan_queue_arm(shmchan_queue *q);

/**
 * The readiness handle of a service handle, made at the first call and
 * armed: a client's turns ready when a response (or a record a server is
 * still filling) is in its reply ring, a server's when a request is there to
 * compete for (another server may take it first: take then says
 * SHMCHAN_EAGAIN). A client whose request's server died is not signalled:
 * it learns at its next shmchan_service_response() call (poll with a timer).
 * @return SHMCHAN_OK, SHMCHAN_ELIMIT, SHMCHAN_ENOTSUP, SHMCHAN_ENOMEM,
 *         SHMCHAN_EFORKED, SHMCHAN_ESYS.
 */
SHMCHAN_API int shmchan_service_notify(shmchan_service *s, shmchan_os_handle *h_out);

/**
 * Drain and re-arm: ready at the next response (client) or request (server),
 * at once if one is there now.
 * @return SHMCHAN_OK, SHMCHAN_ESTATE (no readiness handle yet).
 * Blocking: no.
 */
SHMCHAN_API int shmchan_service_arm(shmchan_service *s);

/* -------------------------------------------------------------- wait-sets
 *
 * Wait on several readers (latest-value handles, queue subscribers and
 * workers) and foreign descriptors or HANDLEs at once, from one thread,
 * without an event loop. Each entry has a caller's key; a wait returns the
 * keys of the entries that are ready.
 *
 * - A latest-value entry is ready when its channel has a sequence newer than
 *   the last one the wait-set reported for it (at first, after_seq); a
 *   report moves that mark to the newest sequence then.
 * - A queue entry is ready while its reader has something to receive
 *   (level-triggered: report it again until the caller receives it all).
 * - A foreign entry is ready when the OS says so (readable fd; a signalled
 *   HANDLE, which the wait consumes if it is an auto-reset object).
 * Adding a channel makes its readiness handle (shmchan_*_notify); the
 * wait-set arms it before each wait, so do not arm it yourself meanwhile.
 * Windows waits on at most 64 entries (WaitForMultipleObjects): more is
 * SHMCHAN_EINVAL at the wait; Linux has no such limit (poll).
 * Thread-safety: one thread per wait-set; its channels' handles follow their
 * own rules. Closing a channel: remove its entry first.
 */
typedef struct shmchan_waitset shmchan_waitset;

/** A new, empty wait-set. @return SHMCHAN_OK, SHMCHAN_EINVAL, SHMCHAN_ENOMEM. */
SHMCHAN_API int shmchan_waitset_open(shmchan_waitset **out);
/** Free the wait-set (NULL: no-op). The channels stay open. */
SHMCHAN_API void shmchan_waitset_close(shmchan_waitset *ws);

/**
 * Add a reader under key (keys are unique in a wait-set).
 * @return SHMCHAN_OK, SHMCHAN_EEXIST (key in use), the errors of
 *         shmchan_latest_notify() / shmchan_queue_notify(), SHMCHAN_ENOMEM.
 */
SHMCHAN_API int shmchan_waitset_add_latest(shmchan_waitset *ws, shmchan_latest *ch,
                                           uint64_t after_seq, uintptr_t key);
SHMCHAN_API int shmchan_waitset_add_queue(shmchan_waitset *ws, shmchan_queue *q,
                                          uintptr_t key);
/** Add a foreign fd (Linux: readable) or HANDLE (Windows: signalled). */
SHMCHAN_API int shmchan_waitset_add_os(shmchan_waitset *ws, shmchan_os_handle h,
                                       uintptr_t key);
/** Remove the entry of key. @return SHMCHAN_OK, SHMCHAN_ENOENT. */
SHMCHAN_API int shmchan_waitset_remove(shmchan_waitset *ws, uintptr_t key);

/**
 * Wait up to timeout_ms until at least one entry is ready; keys_out[0..cap)
 * receives the keys of the ready ones, *count_out how many were stored.
 * @return SHMCHAN_OK, SHMCHAN_ETIMEDOUT, SHMCHAN_EAGAIN (timeout 0, none
 *         ready), SHMCHAN_EINTR, SHMCHAN_EINVAL (empty wait-set; Windows:
 *         more than 64 entries), the errors of arming, SHMCHAN_ESYS.
 */
SHMCHAN_API int shmchan_waitset_wait(shmchan_waitset *ws, int64_t timeout_ms,
                                     uintptr_t *keys_out, size_t cap, size_t *count_out);

/* ---------------------------------------------------------------- caveats
 *
 * - fork(): a handle belongs to the process that opened it. In a child every
 *   call on an inherited handle returns SHMCHAN_EFORKED (shmchan_latest_seq()
 *   returns 0), and shmchan_*_close() there only unmaps it: the opener's slots,
 *   locks and counts stay. Open new handles in the child. (Detected by a
 *   pthread_atfork handler, and at close also by the pid.) Liveness of readers
 *   is tracked per open handle, not per process; a child that inherited the
 *   descriptor keeps the opener's liveness locks held until it closes it or
 *   exits.
 * - Handles: a process may hold as many as its descriptor limit allows (each
 *   holds one descriptor and one mapping).
 * - Crashes: a process that dies mid-operation is detected by the kernel
 *   resources it held (locks), not by its pid, and cleaned up on the next
 *   operation that needs it; see docs/recovery.md.
 * - Network filesystems: file-backed channels need a local filesystem with
 *   coherent shared mappings and fcntl locks; NFS and SMB are not supported.
 * - Peers must share one layout: 64-bit processes of the same byte order. The
 *   header's magic and signature reject anything else.
 * - Access control is the backing object's permission bits (0600 default).
 *   A process with write access can lie in its messages, but can never make a
 *   reader crash, hang for ever or access memory out of bounds.
 */

#ifdef __cplusplus
}
#endif

#endif /* SHMCHAN_H */
