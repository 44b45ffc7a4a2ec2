/*
 * Hardening: what a hostile or buggy peer with write access can do to a
 * channel, and regressions for the bugs the fuzzers and the chaos driver
 * found, and queue faults: too many readers, dead readers, truncation.
 */
#include "core/layout.h"
#include "t.h"

/* Offsets in the region header, from the layout itself. */
#define OFF_REGION_SIZE offsetof(shmchan__hdr, region_size)
#define OFF_KIND offsetof(shmchan__hdr, kind)
#define OFF_MAX_MSG offsetof(shmchan__hdr, max_msg)
#define OFF_CTL_SIZE offsetof(shmchan__hdr, ctl_size)
#define OFF_DATA_SIZE offsetof(shmchan__hdr, data_size)
#define OFF_CHECKSUM offsetof(shmchan__hdr, checksum)
#define HDR_SIZE SHMCHAN__HDR_SIZE
/* A latest-value channel with max_msg 64: control block, then 4 buffers of
 * {tag, len} + payload, each rounded up to cache lines, at the first page. */
#define OFF_SEQ (SHMCHAN__HDR_SIZE + offsetof(shmchan__latest_ctl, seq))
#define OFF_BUF0 SHMCHAN__PAGE
#define BUF_STRIDE \
    ((sizeof(shmchan__latest_buf) + 64 + SHMCHAN__CACHE_LINE - 1) / SHMCHAN__CACHE_LINE * \
     SHMCHAN__CACHE_LINE)
#define OFF_BUF_LEN offsetof(shmchan__latest_buf, len)

static void
rw_at(const char *path, long off, void *p, size_t n, bool write)
{
    FILE *f = fopen(path, "r+b");
    T_TRUE(f != NULL);
    T_TRUE(fseek(f, off, SEEK_SET) == 0);
    T_EQ_U64(write ? fwrite(p, 1, n, f) : fread(p, 1, n, f), n);
    fclose(f);
}

static void
put_u64(const char *path, long off, uint64_t v)
{
    rw_at(path, off, &v, sizeof(v), true);
}

/* What a writer forging the header does: fields changed, checksum redone. */
static void
forge_header(const char *path, long off, uint64_t v)
{
    uint8_t h[HDR_SIZE];
    rw_at(path, 0, h, sizeof(h), false);
    memcpy(h + off, &v, sizeof(v));
    uint32_t sum = 2166136261u;
    for (size_t i = 0; i < OFF_CHECKSUM; i++) {
        sum = (sum ^ h[i]) * 16777619u;
    }
    memcpy(h + OFF_CHECKSUM, &sum, sizeof(sum));
    rw_at(path, 0, h, sizeof(h), true);
}

static const char *
make_file_latest(uint64_t max_msg)
{
    const char *p = t_path();
    shmchan_opts o = t_opts(SHMCHAN_CREATE | SHMCHAN_EXCL | SHMCHAN_FILE);
    o.max_msg = max_msg;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(p, &o, &ch));
    T_OK(shmchan_latest_publish(ch, "genuine", 7, NULL));
    shmchan_latest_close(ch);
    return p;
}

/*
 * A header with a valid checksum whose sizes only add up modulo 2^64: the
 * fuzzer's first find. max_msg = 2^62 + 64 makes 4 buffers of 2^62 + 128
 * bytes "fit" in 512, and readers then addressed buffers 2^62 bytes apart.
 */
TEST(hardening_forged_sizes_rejected)
{
    static const struct {
        long off;
        uint64_t value;
    } lies[] = {
        {OFF_MAX_MSG, (UINT64_C(1) << 62) + 64}, /* the fuzzer's input */
        {OFF_MAX_MSG, UINT64_MAX},
        {OFF_MAX_MSG, (UINT64_C(1) << 40) + 1}, /* just over what a creator may ask */
        {OFF_CTL_SIZE, UINT64_MAX - 255},        /* wraps the control block's end to 0 */
        {OFF_DATA_SIZE, UINT64_MAX - 100},
        {OFF_REGION_SIZE, 1u << 20},             /* more than the file */
    };
    for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        const char *p = make_file_latest(64);
        forge_header(p, lies[i].off, lies[i].value);
        shmchan_opts o = t_opts(SHMCHAN_FILE);
        shmchan_latest *ch = NULL;
        int rc = shmchan_latest_open(p, &o, &ch);
        T_TRUE(ch == NULL);
        T_TRUE(rc == SHMCHAN_ECORRUPT || rc == SHMCHAN_ETRUNCATED);
        shmchan_info info = {.struct_size = sizeof(info)};
        T_TRUE(shmchan_info_get(p, SHMCHAN_FILE, &info) == rc);
    }
}

HELPER(hardening_rdonly_wait)
{
    shmchan_opts o = t_opts(SHMCHAN_RDONLY | SHMCHAN_FILE);
    shmchan_latest *ch = NULL;
    if (shmchan_latest_open(arg, &o, &ch) != SHMCHAN_OK) {
        return 1;
    }
    uint64_t seq = shmchan_latest_seq(ch), t0 = t_now_ns();
    int rc = shmchan_latest_wait(ch, seq, 50, NULL);
    uint64_t took = t_now_ns() - t0;
    int rc2 = shmchan_latest_read_next(ch, seq, NULL, 0, 30, NULL, NULL);
    shmchan_latest_close(ch);
    return rc == SHMCHAN_ETIMEDOUT && rc2 == SHMCHAN_ETIMEDOUT && took >= 50000000u ? 0 : 2;
}

/* A read-only waiter polls instead of registering; its timeout used to be
 * lost, so it spun for ever once nothing new came (found by the fuzzer). */
TEST(hardening_rdonly_wait_times_out)
{
    const char *p = make_file_latest(64);
    T_EQ_U64(t_wait_bounded(t_spawn("hardening_rdonly_wait", p), 10000), 0);
}

static void
expect_no_message(shmchan_latest *ch)
{
    char buf[64];
    size_t len = 0;
    shmchan_msg m;
    T_ERR(shmchan_latest_read(ch, buf, sizeof(buf), &len, NULL), SHMCHAN_EAGAIN);
    T_ERR(shmchan_latest_view(ch, &m), SHMCHAN_EAGAIN);
}

/*
 * A writer that lies in the shared control words: buffer tags that never
 * match, lengths beyond max_msg, a sequence far ahead. Readers give up with
 * EAGAIN after a bounded number of looks and never return more than max_msg
 * bytes; an honest writer then repairs everything by publishing.
 */
TEST(hardening_hostile_control_words)
{
    const char *p = make_file_latest(64);
    shmchan_opts o = t_opts(SHMCHAN_FILE);
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(p, &o, &ch));
    long b1 = OFF_BUF0 + BUF_STRIDE; /* sequence 1 lives in buffer 1 */

    put_u64(p, b1, 12345); /* a tag that is not 2 * seq */
    uint64_t t0 = t_now_ns();
    expect_no_message(ch);
    printf("gave up after %.1f ms\n", (double)(t_now_ns() - t0) / 1e6);

    put_u64(p, b1, 2);          /* the right tag... */
    put_u64(p, b1 + (long)OFF_BUF_LEN, 1u << 30); /* ...with a length far beyond max_msg */
    expect_no_message(ch);

    put_u64(p, OFF_SEQ, UINT64_MAX); /* a sequence nobody published */
    expect_no_message(ch);
    T_EQ_U64(shmchan_latest_seq(ch), UINT64_MAX);
    T_OK(shmchan_latest_wait(ch, 5, 0, NULL)); /* says so; reads still fail safely */

    /* read_next's fast path copies the successor's buffer straight away: a
     * length over max_msg must not pass there either, even into a buffer
     * large enough for it (it would read past the buffer in the region). */
    static char big[4096];
    size_t len = 0;
    uint64_t seq = 0;
    put_u64(p, OFF_SEQ, 1);
    put_u64(p, b1, 2);
    put_u64(p, b1 + (long)OFF_BUF_LEN, 1000);
    int rc = shmchan_latest_read_next(ch, 0, big, sizeof(big), 0, &len, &seq);
    T_TRUE(rc == SHMCHAN_EAGAIN || (rc == SHMCHAN_OK && len <= 64));
    rc = shmchan_latest_read(ch, big, sizeof(big), &len, &seq);
    T_TRUE(rc == SHMCHAN_EAGAIN || (rc == SHMCHAN_OK && len <= 64));

    char buf[64];
    T_OK(shmchan_latest_publish(ch, "repaired", 8, &seq));
    T_EQ_U64(seq, 2);
    T_OK(shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq));
    T_EQ_U64(len, 8);
    T_MEMEQ(buf, "repaired", 8);
    shmchan_latest_close(ch);
}

/* ------------------------------------------------------------- queues */

static shmchan_queue *
queue_open(const char *name, uint32_t flags, uint32_t max_readers, int *rc_out)
{
    shmchan_opts o = t_opts(flags);
    if (flags & SHMCHAN_CREATE) {
        o.policy = SHMCHAN_POLICY_BLOCK;
        o.max_msg = 64;
        o.capacity = 4096;
        o.max_readers = max_readers;
        o.max_writers = 4;
    }
    shmchan_queue *q = NULL;
    *rc_out = shmchan_queue_open(name, &o, &q);
    return q;
}

static void
queue_roundtrip(shmchan_queue *w, shmchan_queue *r, const char *msg)
{
    char buf[64];
    size_t len = 0;
    T_OK(shmchan_queue_send(w, msg, strlen(msg), 1000));
    T_OK(shmchan_queue_recv(r, buf, sizeof(buf), 1000, &len, NULL));
    T_EQ_U64(len, strlen(msg));
    T_MEMEQ(buf, msg, len);
}

HELPER(hardening_queue_subscribe_and_die)
{
    int rc;
    shmchan_queue *q = queue_open(arg, SHMCHAN_SUBSCRIBE, 0, &rc);
    if (rc != SHMCHAN_OK || q == NULL) {
        return 1;
    }
    t_die();
    return 2;
}

/* Too many readers: SHMCHAN_ELIMIT for the next one, and the channel stays
 * usable for those it has; a slot comes back when its reader closes or dies. */
TEST(hardening_queue_too_many_readers)
{
    const char *n = t_name();
    int rc;
    shmchan_queue *w = queue_open(n, SHMCHAN_CREATE, 2, &rc);
    T_OK(rc);
    shmchan_queue *a = queue_open(n, SHMCHAN_SUBSCRIBE, 0, &rc);
    T_OK(rc);
    shmchan_queue *b = queue_open(n, SHMCHAN_WORKER, 0, &rc);
    T_OK(rc);
    shmchan_queue *c = queue_open(n, SHMCHAN_SUBSCRIBE, 0, &rc);
    T_ERR(rc, SHMCHAN_ELIMIT);
    T_TRUE(c == NULL);
    queue_roundtrip(w, a, "still works");
    char buf[64];
    size_t len = 0;
    T_OK(shmchan_queue_recv(b, buf, sizeof(buf), 1000, &len, NULL));
    shmchan_queue_close(a);
    c = queue_open(n, SHMCHAN_SUBSCRIBE, 0, &rc);
    T_OK(rc); /* the closed reader's slot */
    shmchan_queue_close(c);
    T_EQ_U64(t_wait(t_spawn("hardening_queue_subscribe_and_die", n)), t_killed_status());
    c = queue_open(n, SHMCHAN_SUBSCRIBE, 0, &rc);
    T_OK(rc); /* the dead reader's slot is reclaimed */
    queue_roundtrip(w, c, "after a death");
    shmchan_queue_close(c);
    shmchan_queue_close(b);
    shmchan_queue_close(w);
}

/* A dead subscriber in block mode must not hold writers back for ever. */
TEST(hardening_queue_dead_reader_does_not_block)
{
    const char *n = t_name();
    int rc;
    shmchan_queue *w = queue_open(n, SHMCHAN_CREATE, 4, &rc);
    T_OK(rc);
    T_EQ_U64(t_wait(t_spawn("hardening_queue_subscribe_and_die", n)), t_killed_status());
    /* A live worker reads what is sent (issue 12: with no live reader at all,
     * writers keep what nobody read and wait instead). */
    shmchan_queue *k = queue_open(n, SHMCHAN_WORKER, 0, &rc);
    T_OK(rc);
    char msg[64], buf[64];
    size_t len = 0;
    memset(msg, 'q', sizeof(msg));
    for (int i = 0; i < 1000; i++) { /* far more than the 4 KiB ring holds */
        T_OK(shmchan_queue_send(w, msg, sizeof(msg), 5000));
        T_OK(shmchan_queue_recv(k, buf, sizeof(buf), 0, &len, NULL));
    }
    shmchan_queue_close(k);
    shmchan_queue_close(w);
}

/* Truncated underneath: every operation says so; nobody gets SIGBUS. POSIX
 * only: Windows cannot truncate a mapped file. */
TEST(hardening_queue_truncated_underneath)
{
    const char *p = t_path();
    int rc;
    shmchan_queue *w = queue_open(p, SHMCHAN_CREATE | SHMCHAN_FILE, 4, &rc);
    T_OK(rc);
    shmchan_queue *r = queue_open(p, SHMCHAN_FILE | SHMCHAN_SUBSCRIBE, 0, &rc);
    T_OK(rc);
    queue_roundtrip(w, r, "before");
    T_OK(shmchan_queue_send(w, "pending", 7, 0));
    T_TRUE(t_truncate(p, 0) == 0); /* POSIX only: Windows cannot shrink a mapped file */
    char buf[64];
    size_t len = 0;
    shmchan_msg m;
    T_ERR(shmchan_queue_recv(r, buf, sizeof(buf), 10, &len, NULL), SHMCHAN_ETRUNCATED);
    T_ERR(shmchan_queue_peek(r, 10, &m), SHMCHAN_ETRUNCATED);
    T_ERR(shmchan_queue_send(w, "x", 1, 10), SHMCHAN_ETRUNCATED);
    shmchan_queue_close(r);
    shmchan_queue_close(w);
}

/*
 * The layout-version policy for new kinds (docs/design.md, "Kinds and the
 * layout version"): a header whose kind number this library does not know,
 * with everything else valid (a newer library made it, or a peer forged it),
 * is "unsupported kind" to every entry point, not "corrupt", and the kinds
 * this library knows stay usable beside it.
 */
TEST(kinds_unknown_kind_is_unsupported_not_corrupt)
{
    const char *p = make_file_latest(64);
    forge_header(p, (long)OFF_KIND, 99); /* kind 99, policy 0; checksum redone */
    shmchan_info info = {.struct_size = sizeof(info)};
    T_ERR(shmchan_info_get(p, SHMCHAN_FILE, &info), SHMCHAN_EUNKNOWNKIND);
    size_t n = 0;
    T_ERR(shmchan_peers_get(p, SHMCHAN_FILE, NULL, 0, &n), SHMCHAN_EUNKNOWNKIND);
    shmchan_opts o = t_opts(SHMCHAN_FILE);
    shmchan_latest *ch = NULL;
    T_ERR(shmchan_latest_open(p, &o, &ch), SHMCHAN_EUNKNOWNKIND);
    T_TRUE(ch == NULL);
    shmchan_queue *q = NULL;
    T_ERR(shmchan_queue_open(p, &o, &q), SHMCHAN_EUNKNOWNKIND);
    T_TRUE(q == NULL);
    T_TRUE(shmchan_kind_name(99) == NULL);
    T_TRUE(strcmp(shmchan_kind_name(SHMCHAN_KIND_QUEUE), "queue") == 0);
    T_TRUE(strcmp(shmchan_errname(SHMCHAN_EUNKNOWNKIND), "SHMCHAN_EUNKNOWNKIND") == 0);

    /* The kinds it knows, beside it: unaffected. */
    const char *known = make_file_latest(64);
    T_OK(shmchan_info_get(known, SHMCHAN_FILE, &info));
    T_EQ_U64(info.kind, SHMCHAN_KIND_LATEST);
    T_OK(shmchan_latest_open(known, &o, &ch));
    char buf[64];
    size_t len = 0;
    uint64_t seq = 0;
    T_OK(shmchan_latest_read(ch, buf, sizeof(buf), &len, &seq));
    T_EQ_U64(len, 7);
    T_MEMEQ(buf, "genuine", 7);
    shmchan_latest_close(ch);
}
