/*
 * Recording files: framing, checksums, the torn tail. See rec.h and
 * docs/recording.md. All integers are little-endian, whatever the host.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rec.h"
#include "shmchan/shmchan.h"
#include "sys.h"

/* ------------------------------------------------------------ CRC-32 */

/* CRC-32 of zlib and Ethernet (reflected 0xEDB88320), so that Python's
 * zlib.crc32 checks the same; slice-by-4 tables, built once. */
static uint32_t crc_table[4][256];
static int crc_ready;

static void
crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 4; t++) {
            uint32_t p = crc_table[t - 1][i];
            crc_table[t][i] = (p >> 8) ^ crc_table[0][p & 0xFFu];
        }
    }
    crc_ready = 1;
}

uint32_t
rec_crc32(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    if (!crc_ready) {
        crc_init(); /* first called before the recorder's threads start */
    }
    crc = ~crc;
    while (len >= 4) {
        crc ^= (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
               (uint32_t)p[3] << 24;
        crc = crc_table[3][crc & 0xFFu] ^ crc_table[2][(crc >> 8) & 0xFFu] ^
              crc_table[1][(crc >> 16) & 0xFFu] ^ crc_table[0][crc >> 24];
        p += 4;
        len -= 4;
    }
    while (len-- > 0) {
        crc = crc_table[0][(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
    }
    return ~crc;
}

/* ------------------------------------------------------ little-endian */

static void
put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void
put32(unsigned char *p, uint32_t v)
{
    put16(p, v);
    put16(p + 2, v >> 16);
}

static void
put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t
get16(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t
get32(const unsigned char *p)
{
    return get16(p) | get16(p + 2) << 16;
}

static uint64_t
get64(const unsigned char *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void
header_bytes(unsigned char h[REC_HEADER_SIZE])
{
    memcpy(h, REC_MAGIC, 8);
    put16(h + 8, REC_VERSION);
    put16(h + 10, REC_HEADER_SIZE);
    put32(h + 12, 0); /* flags, none yet */
}

/* 0 if h is a header this reader understands, else the error. */
static int
header_check(const unsigned char *h, size_t n)
{
    if (n < 8 || memcmp(h, REC_MAGIC, 8) != 0) {
        return n < 8 && memcmp(h, REC_MAGIC, n) == 0 ? SHMCHAN_ETRUNCATED : SHMCHAN_EBADMAGIC;
    }
    if (n < REC_HEADER_SIZE) {
        return SHMCHAN_ETRUNCATED;
    }
    if (get16(h + 8) != REC_VERSION || get16(h + 10) < REC_HEADER_SIZE) {
        return SHMCHAN_ELAYOUT;
    }
    return SHMCHAN_OK;
}

/* ------------------------------------------------------------- reader */

typedef struct chan_decl {
    rec_entry e;
    char *name;
} chan_decl;

struct rec_reader {
    FILE *f;
    uint64_t off;
    unsigned char *body;
    size_t cap;
    uint64_t tail_off, tail_len;
    chan_decl *chans; /* indexed by id; the current session's */
    size_t nchans;
};

int
rec_reader_open(const char *path, rec_reader **out)
{
    unsigned char h[REC_HEADER_SIZE];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return errno == ENOENT ? SHMCHAN_ENOENT : SHMCHAN_ESYS;
    }
    size_t n = fread(h, 1, sizeof(h), f);
    int rc = ferror(f) ? SHMCHAN_ESYS : header_check(h, n);
    rec_reader *r = rc == SHMCHAN_OK ? calloc(1, sizeof(*r)) : NULL;
    if (r == NULL) {
        fclose(f);
        return rc != SHMCHAN_OK ? rc : SHMCHAN_ENOMEM;
    }
    r->f = f;
    r->off = get16(h + 10);
    if (r->off > REC_HEADER_SIZE && fseek(f, (long)r->off, SEEK_SET) != 0) {
        rec_reader_close(r);
        return SHMCHAN_ESYS;
    }
    *out = r;
    return SHMCHAN_OK;
}

static void
forget_channels(rec_reader *r)
{
    for (size_t i = 0; i < r->nchans; i++) {
        free(r->chans[i].name);
    }
    free(r->chans);
    r->chans = NULL;
    r->nchans = 0;
}

void
rec_reader_close(rec_reader *r)
{
    if (r != NULL) {
        forget_channels(r);
        fclose(r->f);
        free(r->body);
        free(r);
    }
}

void
rec_tail(const rec_reader *r, uint64_t *offset, uint64_t *bytes)
{
    *offset = r->tail_off;
    *bytes = r->tail_len;
}

const rec_entry *
rec_channel(const rec_reader *r, uint16_t id)
{
    return id < r->nchans && r->chans[id].name != NULL ? &r->chans[id].e : NULL;
}

/* The rest of the file from the frame at r->off is a torn tail. */
static int
torn(rec_reader *r, uint64_t read_so_far)
{
    uint64_t more = 0;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), r->f)) > 0) {
        more += n;
    }
    r->tail_off = r->off;
    r->tail_len = read_so_far + more;
    return SHMCHAN_ETRUNCATED;
}

static int
declare_channel(rec_reader *r, rec_entry *e)
{
    if (e->chan >= r->nchans) {
        size_t n = (size_t)e->chan + 1;
        chan_decl *c = realloc(r->chans, n * sizeof(*c));
        if (c == NULL) {
            return SHMCHAN_ENOMEM;
        }
        memset(c + r->nchans, 0, (n - r->nchans) * sizeof(*c));
        r->chans = c;
        r->nchans = n;
    }
    chan_decl *d = &r->chans[e->chan];
    free(d->name);
    d->name = malloc(strlen(e->name) + 1);
    if (d->name == NULL) {
        return SHMCHAN_ENOMEM;
    }
    strcpy(d->name, e->name);
    d->e = *e;
    d->e.name = d->name;
    return SHMCHAN_OK;
}

/* Decode a body whose checksum matched. EAGAIN: a type to skip. */
static int
decode(rec_reader *r, unsigned char *b, size_t n, rec_entry *e)
{
    e->type = b[0];
    switch (e->type) {
    case REC_SESSION:
        if (n < 16) {
            return SHMCHAN_ECORRUPT;
        }
        e->pid = get32(b + 4);
        e->start_ns = (int64_t)get64(b + 8);
        forget_channels(r);
        return SHMCHAN_OK;
    case REC_CHANNEL: {
        if (n < 24 || get16(b + 6) > n - 24 || get16(b + 6) == 0) {
            return SHMCHAN_ECORRUPT;
        }
        size_t len = get16(b + 6);
        e->kind = b[1];
        e->policy = b[2];
        e->chan = (uint16_t)get16(b + 4);
        e->max_msg = get64(b + 8);
        e->capacity = get64(b + 16);
        b[24 + len] = '\0'; /* the body buffer has a byte to spare */
        e->name = (const char *)b + 24;
        return declare_channel(r, e);
    }
    case REC_MESSAGE:
        if (n < REC_MSG_HEAD) {
            return SHMCHAN_ECORRUPT;
        }
        e->chan = (uint16_t)get16(b + 2);
        e->seq = get64(b + 8);
        e->time_ns = (int64_t)get64(b + 16);
        e->lost = get64(b + 24);
        e->data = b + REC_MSG_HEAD;
        e->len = n - REC_MSG_HEAD;
        return rec_channel(r, e->chan) != NULL ? SHMCHAN_OK : SHMCHAN_ECORRUPT;
    default:
        return SHMCHAN_EAGAIN;
    }
}

int
rec_next(rec_reader *r, rec_entry *e)
{
    for (;;) {
        unsigned char fr[REC_FRAME_SIZE];
        memset(e, 0, sizeof(*e));
        e->offset = r->off;
        size_t n = fread(fr, 1, sizeof(fr), r->f);
        if (ferror(r->f)) {
            return SHMCHAN_ESYS;
        }
        if (n == 0) {
            return SHMCHAN_EAGAIN;
        }
        uint32_t len = get32(fr);
        if (n < sizeof(fr) || len == 0 || len > REC_BODY_MAX) {
            return torn(r, n);
        }
        if (len + 1u > r->cap) {
            unsigned char *b = realloc(r->body, (size_t)len + 1);
            if (b == NULL) {
                return SHMCHAN_ENOMEM;
            }
            r->body = b;
            r->cap = (size_t)len + 1;
        }
        size_t got = fread(r->body, 1, len, r->f);
        if (got < len || rec_crc32(0, r->body, len) != get32(fr + 4)) {
            return torn(r, sizeof(fr) + got);
        }
        int rc = decode(r, r->body, len, e);
        r->off += sizeof(fr) + len;
        if (rc != SHMCHAN_EAGAIN) {
            return rc;
        }
    }
}

/* ------------------------------------------------------------- writer */

struct rec_writer {
    FILE *f;
    uint64_t bytes;
    int err; /* first error, sticky */
    unsigned char *buf;
    size_t cap;
};

/* The offset where the valid records of an existing file end. */
static int
valid_end(const char *path, uint64_t *end, uint64_t *cut)
{
    rec_reader *r;
    int rc = rec_reader_open(path, &r);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    rec_entry e;
    while ((rc = rec_next(r, &e)) == SHMCHAN_OK) {
    }
    *end = r->off;
    *cut = r->tail_len;
    rec_reader_close(r);
    return rc == SHMCHAN_EAGAIN || rc == SHMCHAN_ETRUNCATED ? SHMCHAN_OK : rc;
}

static int
open_append(const char *path, FILE **f, uint64_t *bytes, uint64_t *cut)
{
    uint64_t end = 0;
    int rc = valid_end(path, &end, cut);
    if (rc != SHMCHAN_OK) {
        return rc;
    }
    *f = fopen(path, "r+b");
    if (*f == NULL) {
        return SHMCHAN_ESYS;
    }
    if ((*cut != 0 && sys_file_truncate(*f, end) != 0) || fseek(*f, 0, SEEK_END) != 0) {
        fclose(*f);
        return SHMCHAN_ESYS;
    }
    *bytes = end;
    return SHMCHAN_OK;
}

int
rec_writer_open(const char *path, bool append, rec_writer **out, uint64_t *cut_out)
{
    FILE *f = NULL;
    uint64_t bytes = 0, cut = 0;
    int rc = SHMCHAN_ENOENT;
    if (append) {
        rc = open_append(path, &f, &bytes, &cut);
        if (rc == SHMCHAN_ETRUNCATED) {
            rc = SHMCHAN_ENOENT; /* shorter than a header: nothing to keep */
        }
        if (rc != SHMCHAN_OK && rc != SHMCHAN_ENOENT) {
            return rc;
        }
    }
    if (rc == SHMCHAN_ENOENT) {
        unsigned char h[REC_HEADER_SIZE];
        header_bytes(h);
        f = fopen(path, "wb");
        if (f == NULL || fwrite(h, 1, sizeof(h), f) != sizeof(h)) {
            if (f != NULL) {
                fclose(f);
            }
            return SHMCHAN_ESYS;
        }
        bytes = sizeof(h);
    }
    rec_writer *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        fclose(f);
        return SHMCHAN_ENOMEM;
    }
    (void)setvbuf(f, NULL, _IOFBF, 1u << 18);
    w->f = f;
    w->bytes = bytes;
    *out = w;
    if (cut_out != NULL) {
        *cut_out = cut;
    }
    return SHMCHAN_OK;
}

/* Frame and write b[0..n) (the body); b has REC_FRAME_SIZE bytes before it. */
static int
write_framed(rec_writer *w, unsigned char *frame, size_t n)
{
    put32(frame, (uint32_t)n);
    put32(frame + 4, rec_crc32(0, frame + REC_FRAME_SIZE, n));
    if (w->err == 0 && fwrite(frame, 1, REC_FRAME_SIZE + n, w->f) != REC_FRAME_SIZE + n) {
        w->err = SHMCHAN_ESYS;
    }
    w->bytes += REC_FRAME_SIZE + n;
    return w->err != 0 ? w->err : SHMCHAN_OK;
}

static unsigned char *
scratch(rec_writer *w, size_t n)
{
    if (n > w->cap) {
        unsigned char *b = realloc(w->buf, n);
        if (b == NULL) {
            return NULL;
        }
        w->buf = b;
        w->cap = n;
    }
    return w->buf;
}

int
rec_write_session(rec_writer *w, uint32_t pid, int64_t start_ns)
{
    unsigned char b[REC_FRAME_SIZE + 16] = {0};
    b[REC_FRAME_SIZE] = REC_SESSION;
    put32(b + REC_FRAME_SIZE + 4, pid);
    put64(b + REC_FRAME_SIZE + 8, (uint64_t)start_ns);
    return write_framed(w, b, 16);
}

int
rec_write_channel(rec_writer *w, uint16_t id, uint32_t kind, uint32_t policy, uint64_t max_msg,
                  uint64_t capacity, const char *name)
{
    size_t len = strlen(name);
    unsigned char *b = len <= 0xFFFF ? scratch(w, REC_FRAME_SIZE + 24 + len) : NULL;
    if (b == NULL) {
        return SHMCHAN_ENOMEM;
    }
    unsigned char *p = b + REC_FRAME_SIZE;
    memset(p, 0, 24);
    p[0] = REC_CHANNEL;
    p[1] = (unsigned char)kind;
    p[2] = (unsigned char)policy;
    put16(p + 4, id);
    put16(p + 6, (uint32_t)len);
    put64(p + 8, max_msg);
    put64(p + 16, capacity);
    memcpy(p + 24, name, len);
    return write_framed(w, b, 24 + len);
}

int
rec_write_message(rec_writer *w, uint16_t id, uint64_t seq, int64_t time_ns, uint64_t lost,
                  const void *data, size_t len)
{
    if (len > REC_BODY_MAX - REC_MSG_HEAD) {
        return SHMCHAN_EMSGSIZE;
    }
    unsigned char *b = scratch(w, REC_FRAME_SIZE + REC_MSG_HEAD + len);
    if (b == NULL) {
        return SHMCHAN_ENOMEM;
    }
    unsigned char *p = b + REC_FRAME_SIZE;
    memset(p, 0, 8);
    p[0] = REC_MESSAGE;
    put16(p + 2, id);
    put64(p + 8, seq);
    put64(p + 16, (uint64_t)time_ns);
    put64(p + 24, lost);
    memcpy(p + REC_MSG_HEAD, data, len);
    return write_framed(w, b, REC_MSG_HEAD + len);
}

int
rec_flush(rec_writer *w)
{
    if (w->err == 0 && fflush(w->f) != 0) {
        w->err = SHMCHAN_ESYS;
    }
    return w->err != 0 ? w->err : SHMCHAN_OK;
}

uint64_t
rec_bytes(const rec_writer *w)
{
    return w->bytes;
}

int
rec_writer_close(rec_writer *w)
{
    if (w == NULL) {
        return SHMCHAN_OK;
    }
    int rc = rec_flush(w);
    if (fclose(w->f) != 0 && rc == SHMCHAN_OK) {
        rc = SHMCHAN_ESYS;
    }
    free(w->buf);
    free(w);
    return rc;
}
