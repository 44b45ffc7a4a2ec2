/*
 * Recording files: the format of `shmchan record`, `replay` and `cat`
 * (docs/recording.md is its specification; python/shmchan/_recording.py
 * reads the same).
 *
 * A file is a 16-byte header, then framed records: a 4-byte length, a CRC-32
 * of the body, the body. A recorder killed mid-write leaves at most one torn
 * record at the end; readers stop there and report it, and everything before
 * it reads back. Appending (record -a) first cuts such a tail off.
 *
 * Thread-safety: a rec_writer or rec_reader is used by one thread at a time
 * (the recorder serialises its channel threads with a lock).
 */
#ifndef SHMCHAN_CLI_REC_H
#define SHMCHAN_CLI_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REC_MAGIC "SHMCHREC"
#define REC_VERSION 1u
#define REC_HEADER_SIZE 16u
#define REC_FRAME_SIZE 8u           /* length + CRC-32 before each body */
#define REC_BODY_MAX (1u << 30)     /* a longer length is damage */
#define REC_MSG_HEAD 32u            /* a message body before its data */

enum rec_type { REC_SESSION = 1, REC_CHANNEL = 2, REC_MESSAGE = 3 };

/* One record as read. Pointers are valid until the next rec_next(). */
typedef struct rec_entry {
    int type;
    uint64_t offset;    /* of its frame in the file */
    /* REC_SESSION */
    uint32_t pid;
    int64_t start_ns;
    /* REC_CHANNEL and REC_MESSAGE: the session's channel id */
    uint16_t chan;
    /* REC_CHANNEL */
    uint32_t kind;      /* SHMCHAN_KIND_* */
    uint32_t policy;
    uint64_t max_msg;
    uint64_t capacity;
    const char *name;   /* NUL-terminated */
    /* REC_MESSAGE */
    uint64_t seq;
    int64_t time_ns;    /* receive time, Unix epoch nanoseconds */
    uint64_t lost;      /* messages (versions) the recorder missed before it */
    const unsigned char *data;
    size_t len;
} rec_entry;

uint32_t rec_crc32(uint32_t crc, const void *data, size_t len);

/* ------------------------------------------------------------ writing */

typedef struct rec_writer rec_writer;

/*
 * Create path (replacing a file there), or with append open an existing
 * recording (or create it if missing), check it and cut a torn tail off
 * (*cut_out receives its bytes). err receives a reason on failure.
 * @return SHMCHAN_OK, SHMCHAN_EBADMAGIC (not a recording), SHMCHAN_ELAYOUT
 *         (a newer version), SHMCHAN_ESYS (errno set), SHMCHAN_ENOMEM.
 */
int rec_writer_open(const char *path, bool append, rec_writer **out, uint64_t *cut_out);
int rec_write_session(rec_writer *w, uint32_t pid, int64_t start_ns);
int rec_write_channel(rec_writer *w, uint16_t id, uint32_t kind, uint32_t policy,
                      uint64_t max_msg, uint64_t capacity, const char *name);
int rec_write_message(rec_writer *w, uint16_t id, uint64_t seq, int64_t time_ns, uint64_t lost,
                      const void *data, size_t len);
/* Hand what is buffered to the kernel: it then survives the recorder's death. */
int rec_flush(rec_writer *w);
uint64_t rec_bytes(const rec_writer *w);
/* Flush and close; returns the first error seen on the way. */
int rec_writer_close(rec_writer *w);

/* ------------------------------------------------------------ reading */

typedef struct rec_reader rec_reader;

/* @return SHMCHAN_OK, SHMCHAN_ENOENT, SHMCHAN_EBADMAGIC, SHMCHAN_ELAYOUT,
 *         SHMCHAN_ETRUNCATED (shorter than a header), SHMCHAN_ESYS. */
int rec_reader_open(const char *path, rec_reader **out);
/*
 * The next record. Records of unknown types are skipped.
 * @return SHMCHAN_OK, SHMCHAN_EAGAIN at a clean end, SHMCHAN_ETRUNCATED at a
 *         torn or damaged tail (rec_tail() says where and how long),
 *         SHMCHAN_ECORRUPT (a message of a channel never declared), ESYS.
 */
int rec_next(rec_reader *r, rec_entry *e);
/* The torn tail found: its offset and bytes (0, 0 if none). */
void rec_tail(const rec_reader *r, uint64_t *offset, uint64_t *bytes);
/* The name of a channel id of the current session, or NULL. */
const rec_entry *rec_channel(const rec_reader *r, uint16_t id);
void rec_reader_close(rec_reader *r);

#endif /* SHMCHAN_CLI_REC_H */
