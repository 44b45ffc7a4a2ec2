/* shmchan-bridge: carries shmchan channels over NATS. Internal header. */
#ifndef SHMCHAN_BRIDGE_H
#define SHMCHAN_BRIDGE_H

#include <nats/nats.h>
#include <shmchan/shmchan.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define BR_HOST_MAX 32
#define BR_SUBJ_MAX 200
#define BR_LINKS_MAX 64
#define BR_POLL_MS 200 /* how often a waiting thread looks at the stop flag */

/* Header names carried by every bridged message. */
#define BR_H_SRC "Shmchan-Src"     /* "<host>/<channel>" of the exporting side */
#define BR_H_EPOCH "Shmchan-Epoch" /* source channel's creation time (ns) */
#define BR_H_SEQ "Shmchan-Seq"     /* source channel's sequence number */
#define BR_H_MSGID "Nats-Msg-Id"   /* JetStream de-duplication id */

enum br_dir { BR_EXPORT = 1, BR_IMPORT = 2 };
enum br_kind { BR_LATEST = 1, BR_QUEUE = 2 };
enum br_mode { BR_CORE = 1, BR_JETSTREAM = 2 };
enum br_full { BR_FULL_BLOCK = 1, BR_FULL_REPORT = 2 };

/* Counters of one link, read by the stats printer while the link runs. */
typedef struct br_counters {
    atomic_uint_fast64_t msgs;      /* messages carried */
    atomic_uint_fast64_t nats_msgs; /* NATS messages sent or taken (a core batch is one) */
    atomic_uint_fast64_t bytes;     /* payload bytes carried */
    atomic_uint_fast64_t stale;     /* latest import: older than what was published */
    atomic_uint_fast64_t dups;      /* queue import: already delivered, acked only */
    atomic_uint_fast64_t loops;     /* import: came from this host, dropped */
    atomic_uint_fast64_t malformed; /* import: missing or bad headers */
    atomic_uint_fast64_t oversize;  /* larger than max_payload / local max_msg */
    atomic_uint_fast64_t full;      /* JetStream limit reached (report mode: dropped) */
    atomic_uint_fast64_t lost;      /* export: overwritten in the local queue */
    atomic_uint_fast64_t errors;    /* other failed operations (retried) */
} br_counters;

/* One configured mapping between a local channel and a NATS subject. */
typedef struct br_link {
    int dir, kind, mode, on_full;
    char channel[SHMCHAN_NAME_MAX + 1];
    char subject[BR_SUBJ_MAX + 1];
    char stream[BR_SUBJ_MAX + 1];      /* JetStream stream name */
    char stream_subj[BR_SUBJ_MAX + 1]; /* subjects the stream covers (default: subject) */
    char durable[BR_SUBJ_MAX + 1];     /* import: durable consumer name */
    bool workqueue;                    /* stream retention: work queue */
    bool keep_own;                     /* import: accept messages this host exported */
    int64_t max_msgs;                  /* stream limit (0: none) */
    int64_t replicas;                  /* stream replicas in a cluster (0: server default) */
    int64_t dup_window_ms;             /* stream duplicate window */
    int64_t ack_wait_ms;               /* import: redelivery after this without an ack */
    int line;                          /* config line, for messages */
    br_counters c;
    /* runtime */
    struct br_ctx *ctx;
    natsConnection *nc; /* the connection that carries it: ctx->core_nc or ctx->nc */
    void *state; /* per-kind state, owned by the link module */
} br_link;

typedef struct br_config {
    char server[256];
    char host[BR_HOST_MAX + 1];
    char state_dir[512];
    int nlinks;
    br_link links[BR_LINKS_MAX];
    double stats_interval; /* seconds; 0: only at exit */
} br_config;

typedef struct br_ctx {
    br_config *cfg;
    natsConnection *nc;      /* JetStream links: libnats's own threads (NULL: none) */
    natsConnection *core_nc; /* core-NATS links: driven by the export loop (NULL: none) */
    jsCtx *js;
    volatile sig_atomic_t *stop;
    int stop_fd; /* readable once stopping (never read): waiting threads poll it */
    atomic_int connected;
} br_ctx;

/* config.c */
int br_config_line(br_config *cfg, char *line, int lineno, char *err, size_t errcap);
int br_config_file(br_config *cfg, const char *path, char *err, size_t errcap);
int br_config_check(br_config *cfg, char *err, size_t errcap);
void br_config_defaults(br_config *cfg);

/* log.c */
void br_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void br_stats_print(const br_config *cfg, FILE *f);

/* headers.c: parse and build the bridge headers */
typedef struct br_hdr {
    char src[BR_HOST_MAX + 1 + SHMCHAN_NAME_MAX + 1]; /* host/channel */
    char host[BR_HOST_MAX + 1];
    uint64_t epoch, seq;
} br_hdr;
int br_hdr_parse(natsMsg *m, br_hdr *h);
/* Core NATS carries the same fields in a small binary prefix instead of
 * headers (no per-message header map on either side): "SCB1", u8 n, n bytes
 * "host/channel", u64 epoch, u64 seq (little-endian), then the payload. */
#define BR_ENV_MAGIC "SCB1"
#define BR_ENV_MAX (5 + BR_HOST_MAX + 1 + SHMCHAN_NAME_MAX + 16)
size_t br_env_prefix(unsigned char *buf, const char *host, const char *chan, uint64_t epoch);
void br_env_seq(unsigned char *buf, size_t prefix_len, uint64_t seq);
/* Returns the payload offset, or 0 when the prefix is missing or malformed. */
size_t br_env_parse(const unsigned char *buf, size_t len, br_hdr *h);
/* A batch of queue messages in one core NATS message (docs/bridge.md): "SCB2",
 * u8 n, n bytes "host/channel", u64 epoch, u32 count, then count records of
 * u64 seq, u32 len and len bytes, all little-endian; sequences rise strictly. */
#define BR_BATCH_MAGIC "SCB2"
#define BR_BATCH_REC 12 /* a record's header: seq and len */
size_t br_batch_prefix(unsigned char *buf, const char *host, const char *chan, uint64_t epoch);
void br_batch_count(unsigned char *buf, size_t prefix_len, uint32_t count);
void br_batch_record(unsigned char *rec, uint64_t seq, uint32_t len);
/* Checks the whole batch; returns the offset of its first record and sets
 * *count, or returns 0 when anything in it is malformed. */
size_t br_batch_parse(const unsigned char *buf, size_t len, br_hdr *h, uint32_t *count);
/* The record at *pos of a batch br_batch_parse() accepted; advances *pos. */
const unsigned char *br_batch_next(const unsigned char *buf, size_t *pos, uint64_t *seq,
                                   size_t *len);
natsStatus br_hdr_set(natsMsg *m, const char *host, const char *chan, uint64_t epoch,
                      uint64_t seq, bool msgid);

/* link_latest.c, link_queue.c: start a link (threads or subscriptions) and stop it. */
int br_latest_start(br_link *l);
void br_latest_stop(br_link *l);
/* link_latest.c: the export loop, one thread that waits on the readiness
 * handles of every latest-value and core-NATS queue export and on the socket
 * of the core connection, which it reads and writes itself (libnats's
 * event-loop mode; docs/bridge.md, "Waiting and threads"). Order:
 * br_loop_init() before the core connection is made (br_loop_options() on its
 * options), br_export_loop_start() after the links' br_latest_start();
 * at the end br_core_drain() and the connections' flush while the loop still
 * runs, then br_export_loop_stop(), the links' br_latest_stop(), the
 * connection's destruction, and br_loop_close(). */
int br_loop_init(void);
natsStatus br_loop_options(natsOptions *o);
int br_export_loop_start(br_ctx *ctx);
void br_core_drain(void);
void br_export_loop_stop(br_ctx *ctx);
void br_loop_close(void);
int br_queue_start(br_link *l);
void br_queue_stop(br_link *l);
bool br_check_payload(br_link *l, size_t len, uint64_t seq);

/* dedupe.c: the queue importer's journal of delivered message ids */
typedef struct br_journal br_journal;
int br_journal_open(const char *dir, const char *name, br_journal **out, char *err, size_t errcap);
bool br_journal_seen(br_journal *j, const char *id);
int br_journal_begin(br_journal *j, const char *id, uint64_t local_seq, const void *data,
                     size_t len);
int br_journal_done(br_journal *j);
int br_journal_resolve(br_journal *j, const char *channel);
void br_journal_close(br_journal *j);

#endif
