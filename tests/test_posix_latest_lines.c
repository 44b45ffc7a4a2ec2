/*
 * The latest-value protocol of layout 4 (issue 14, "Cache lines per message"
 * in docs/design.md): no "being written" mark on a buffer, readers that
 * follow the stream from the buffers' tags without seq, and what that asks of
 * writers and of the overwrite check.
 *
 * The raw tests map the channel's file and write a buffer directly, as a peer
 * (or a writer that died between two stores of its commit) leaves it. The
 * offsets come from layout.h (offsetof) and from the header. POSIX only: the test
 * needs a shared mapping of the file while the channel is in use.
 */
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <string.h>
#include <unistd.h>

#include "core/layout.h"
#include "t.h"

#define MAX_MSG 64
#define HDR_OFF_DATA offsetof(shmchan__hdr, data_off)
#define BUF_HDR sizeof(shmchan__latest_buf) /* tag, len */
#define OFF_LEN offsetof(shmchan__latest_buf, len)
/* BUF_HDR + MAX_MSG rounded up to a cache line */
#define STRIDE ((BUF_HDR + MAX_MSG + SHMCHAN__CACHE_LINE - 1) / SHMCHAN__CACHE_LINE * SHMCHAN__CACHE_LINE)
#define NBUF SHMCHAN__LATEST_NBUF

static shmchan_latest *
open_file(const char *path, uint32_t flags)
{
    shmchan_opts o = t_opts(SHMCHAN_FILE | flags);
    o.max_msg = MAX_MSG;
    shmchan_latest *ch = NULL;
    T_OK(shmchan_latest_open(path, &o, &ch));
    return ch;
}


/* The buffer of sequence s in the raw mapping. */
static uint8_t *
raw_buf(uint8_t *base, size_t size, uint64_t s)
{
    uint64_t data_off;
    memcpy(&data_off, base + HDR_OFF_DATA, sizeof(data_off));
    T_TRUE(data_off + NBUF * STRIDE <= size);
    return base + data_off + (s % NBUF) * STRIDE;
}

/* Message s complete in its buffer, seq not yet moved: what a writer leaves
 * that dies between its commit's tag and seq stores. */
static void
complete_unpublished(uint8_t *b, uint64_t s, const char *text)
{
    uint64_t len = strlen(text);
    memcpy(b + BUF_HDR, text, len);
    atomic_store((_Atomic uint64_t *)(void *)(b + OFF_LEN), len);
    atomic_store((_Atomic uint64_t *)(void *)(b + offsetof(shmchan__latest_buf, tag)), 2 * s);
}

TEST(latest_complete_unpublished_message_kept)
{
    const char *path = t_path();
    shmchan_latest *w = open_file(path, SHMCHAN_CREATE);
    shmchan_latest *r = open_file(path, 0);
    T_OK(shmchan_latest_publish(w, "one", 3, NULL));
    size_t size = 0;
    uint8_t *base = t_map_file(path, &size);
    complete_unpublished(raw_buf(base, size, 2), 2, "two, unpublished");

    /* Readers take it from its tag, and no later call goes back behind it. */
    char buf[MAX_MSG];
    size_t len = 0;
    uint64_t seq = 0;
    T_OK(shmchan_latest_read_next(r, 1, buf, sizeof(buf), SHMCHAN_NO_WAIT, &len, &seq));
    T_EQ_U64(seq, 2);
    T_EQ_U64(len, 16);
    T_MEMEQ(buf, "two, unpublished", 16);
    T_OK(shmchan_latest_read(r, buf, sizeof(buf), &len, &seq));
    T_EQ_U64(seq, 2);
    T_EQ_U64(shmchan_latest_seq(r), 2);

    /* The next writer publishes it rather than reuse its sequence. */
    T_OK(shmchan_latest_publish(w, "three", 5, &seq));
    T_EQ_U64(seq, 3);
    T_OK(shmchan_latest_read_next(r, 2, buf, sizeof(buf), SHMCHAN_NO_WAIT, &len, &seq));
    T_EQ_U64(seq, 3);
    T_MEMEQ(buf, "three", 5);
    shmchan_info info = {.struct_size = sizeof(info)};
    T_OK(shmchan_info_get(path, SHMCHAN_FILE, &info));
    T_EQ_U64(info.seq, 3);

    munmap(base, size);
    shmchan_latest_close(r);
    shmchan_latest_close(w);
}

TEST(latest_view_stale_once_writer_may_begin)
{
    const char *path = t_path();
    shmchan_latest *w = open_file(path, SHMCHAN_CREATE);
    shmchan_latest *r = open_file(path, 0);
    T_OK(shmchan_latest_publish(w, "viewed", 6, NULL));
    shmchan_msg m;
    T_OK(shmchan_latest_view(r, &m));
    T_EQ_U64(m.seq, 1);
    /* Messages 2 and 3 go to other buffers: the view holds. */
    T_OK(shmchan_latest_publish(w, "2", 1, NULL));
    T_OK(shmchan_latest_publish(w, "3", 1, NULL));
    T_OK(shmchan_latest_view_check(r, &m));
    T_MEMEQ(m.data, "viewed", 6);
    /* With message 4 complete the writer of 5 may begin on the viewed buffer
     * at any time, and leaves no mark there: the check must say so now. */
    T_OK(shmchan_latest_publish(w, "4", 1, NULL));
    T_ERR(shmchan_latest_view_check(r, &m), SHMCHAN_ESTALE);
    void *dst = NULL;
    T_OK(shmchan_latest_begin(w, &dst));
    memset(dst, 'X', 6);
    T_MEMEQ(m.data, "XXXXXX", 6); /* the writer of 5 writes over the view */
    T_ERR(shmchan_latest_view_check(r, &m), SHMCHAN_ESTALE);
    T_OK(shmchan_latest_abort(w));
    shmchan_latest_close(r);
    shmchan_latest_close(w);
}
