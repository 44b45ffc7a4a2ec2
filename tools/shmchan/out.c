/*
 * Output and input framing of messages, waiting in slices, small formatters.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sys.h"

/* Longest single wait; see cli_wait(). */
#define WAIT_SLICE_MS 500

bool
buf_reserve(cli_buf *b, size_t n)
{
    if (n <= b->cap && b->p != NULL) {
        return true;
    }
    size_t cap = b->cap != 0 ? b->cap : 4096;
    while (cap < n) {
        cap = cap > SIZE_MAX / 2 ? n : cap * 2;
    }
    unsigned char *p = realloc(b->p, cap);
    if (p == NULL) {
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void
buf_free(cli_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->cap = 0;
}

/* ------------------------------------------------------------ waiting */

uint64_t
cli_deadline(int64_t timeout_ms)
{
    if (timeout_ms < 0) {
        return 0;
    }
    uint64_t d = sys_now_ms() + (uint64_t)timeout_ms;
    return d != 0 ? d : 1;
}

int
cli_wait(cli_wait_fn fn, void *ctx, uint64_t deadline_ms)
{
    for (;;) {
        if (sys_interrupted()) {
            return SHMCHAN_EINTR;
        }
        int64_t slice = WAIT_SLICE_MS;
        if (deadline_ms != 0) {
            uint64_t now = sys_now_ms();
            uint64_t left = deadline_ms > now ? deadline_ms - now : 0;
            slice = left < WAIT_SLICE_MS ? (int64_t)left : WAIT_SLICE_MS;
        }
        int rc = fn(ctx, slice);
        if (rc == SHMCHAN_EINTR && !sys_interrupted()) {
            continue; /* a signal we do not act on, e.g. SIGWINCH */
        }
        if (rc != SHMCHAN_EAGAIN && rc != SHMCHAN_ETIMEDOUT) {
            return rc;
        }
        if (deadline_ms != 0 && sys_now_ms() >= deadline_ms) {
            return SHMCHAN_ETIMEDOUT;
        }
    }
}

/* After a caught signal: exit quietly, with the shell's status for it. */
int
cli_exit_interrupted(void)
{
    fflush(stdout);
    return 128 + sys_interrupted();
}

/* ------------------------------------------------------------- output */

static bool
put_u32le(uint64_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return fwrite(b, 1, 4, stdout) == 4;
}

static int
out_json_message(const void *data, size_t len, uint64_t seq, uint64_t lost, bool with_lost)
{
    cli_json *o = json_obj();
    json_set_u64(o, "seq", seq);
    if (with_lost) {
        json_set_u64(o, "lost", lost);
    }
    json_set_bytes(o, data, len);
    return json_print(o, false);
}

/*
 * One message in the format chosen: raw bytes and a newline (--lines, the
 * default), raw bytes and a NUL (--null), a 4-byte little-endian length and
 * the bytes (--frames), or a JSON object per line (--json). --seq prefixes
 * the sequence number and a space. Flushed, so a pipe sees it at once.
 */
int
out_message(const cli_args *a, const void *data, size_t len, uint64_t seq, uint64_t lost,
            bool with_lost)
{
    bool ok = true;
    if (a->fmt == FMT_JSON) {
        ok = out_json_message(data, len, seq, lost, with_lost) == 0;
    } else if (a->fmt == FMT_FRAMES) {
        if ((uint64_t)len > UINT32_MAX) {
            return SHMCHAN_EMSGSIZE;
        }
        ok = put_u32le(len) && fwrite(data, 1, len, stdout) == len;
    } else {
        if (cli_has(a, OPT_SEQ)) {
            ok = printf("%" PRIu64 " ", seq) > 0;
        }
        ok = ok && fwrite(data, 1, len, stdout) == len;
        ok = ok && fputc(a->fmt == FMT_NULL ? '\0' : '\n', stdout) != EOF;
    }
    if (fflush(stdout) != 0 || !ok) {
        return SHMCHAN_ESYS;
    }
    return SHMCHAN_OK;
}

/* -------------------------------------------------------------- input */

/* All of f, at most limit bytes: SHMCHAN_EMSGSIZE if there is more. */
int
in_read_all(FILE *f, cli_buf *b, size_t limit, size_t *len_out)
{
    size_t len = 0;
    for (;;) {
        size_t want = len < limit ? limit - len : 0;
        if (want > 65536) {
            want = 65536;
        }
        if (!buf_reserve(b, len + want + 1)) {
            return SHMCHAN_ENOMEM;
        }
        size_t n = fread(b->p + len, 1, want + 1, f);
        len += n;
        *len_out = len;
        if (len > limit) {
            return SHMCHAN_EMSGSIZE;
        }
        if (n < want + 1) {
            return ferror(f) ? SHMCHAN_ESYS : SHMCHAN_OK;
        }
    }
}

/*
 * One line without its '\n'; a last line without one counts too. Returns
 * SHMCHAN_EAGAIN at the end of input, SHMCHAN_EMSGSIZE for a line longer than
 * limit (*len_out then says how much was read of it).
 */
int
in_read_line(FILE *f, cli_buf *b, size_t limit, size_t *len_out)
{
    size_t len = 0;
    int c;
    while ((c = getc(f)) != EOF && c != '\n') {
        if (len == limit) {
            *len_out = len + 1;
            return SHMCHAN_EMSGSIZE;
        }
        if (!buf_reserve(b, len + 1)) {
            return SHMCHAN_ENOMEM;
        }
        b->p[len++] = (unsigned char)c;
    }
    *len_out = len;
    if (c == EOF && ferror(f)) {
        return SHMCHAN_ESYS;
    }
    return c == EOF && len == 0 ? SHMCHAN_EAGAIN : SHMCHAN_OK;
}

/*
 * One frame: a 4-byte little-endian length, then that many bytes. Returns
 * SHMCHAN_EAGAIN at a clean end of input, SHMCHAN_ETRUNCATED for a partial
 * frame, SHMCHAN_EMSGSIZE for a length over limit (*len_out says it).
 */
int
in_read_frame(FILE *f, cli_buf *b, size_t limit, size_t *len_out)
{
    unsigned char h[4];
    size_t n = fread(h, 1, 4, f);
    if (n < 4) {
        if (ferror(f)) {
            return SHMCHAN_ESYS;
        }
        return n == 0 ? SHMCHAN_EAGAIN : SHMCHAN_ETRUNCATED;
    }
    uint64_t len = (uint64_t)h[0] | (uint64_t)h[1] << 8 | (uint64_t)h[2] << 16 |
                   (uint64_t)h[3] << 24;
    *len_out = (size_t)len;
    if (len > limit) {
        return SHMCHAN_EMSGSIZE;
    }
    if (!buf_reserve(b, (size_t)len)) {
        return SHMCHAN_ENOMEM;
    }
    if (fread(b->p, 1, (size_t)len, f) != len) {
        return ferror(f) ? SHMCHAN_ESYS : SHMCHAN_ETRUNCATED;
    }
    return SHMCHAN_OK;
}

/* ---------------------------------------------------------- formatting */

/* Exact sizes in the largest binary unit that divides them: 4K, 1M, 1000. */
const char *
out_size(uint64_t v, char *buf, size_t cap)
{
    static const char units[] = "KMGT";
    int u = -1;
    while (v != 0 && v % 1024 == 0 && u < 3) {
        v /= 1024;
        u++;
    }
    if (u < 0) {
        snprintf(buf, cap, "%" PRIu64, v);
    } else {
        snprintf(buf, cap, "%" PRIu64 "%c", v, units[u]);
    }
    return buf;
}

const char *
out_kind(uint32_t kind)
{
    const char *name = shmchan_kind_name(kind); /* the library's table of kinds */
    return name != NULL ? name : "unknown";
}

const char *
out_policy(uint32_t policy)
{
    switch (policy) {
    case SHMCHAN_POLICY_BLOCK:
        return "block";
    case SHMCHAN_POLICY_OVERWRITE:
        return "overwrite";
    default:
        return "-";
    }
}
