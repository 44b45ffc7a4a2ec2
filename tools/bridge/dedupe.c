/* The queue importer's journal: which JetStream messages it already delivered
 * into its local queue, so that a redelivery (an ack lost to a crash of the
 * bridge or the server) is acked again but never sent twice.
 *
 * A file of JOURNAL_SLOTS records, written in a ring, mapped shared: it
 * survives a SIGKILL of the bridge (the page cache keeps it), which is the
 * failure it is for. Before each local send the importer writes a PENDING
 * record (hash of the message id, the local queue's next sequence, length and
 * hash of the payload); after the send, DONE; then it acks. On start, a
 * PENDING record is the one message whose send may or may not have happened:
 * it is resolved by looking for those bytes in the local queue at or after that
 * sequence (journal_resolve). The file is ours but is still validated. */
#define _GNU_SOURCE
#include "bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define JOURNAL_SLOTS 8192u
#define JOURNAL_MAGIC 0x4c4e524a42484353ull /* "SCHBJRNL" */
#define SET_SLOTS 16384u /* two generations of up to JOURNAL_SLOTS/2 ids each */

enum { REC_EMPTY = 0, REC_PENDING = 1, REC_DONE = 2, REC_VOID = 3 };

/* One delivery. All fields are rewritten for each new message. */
typedef struct jrec {
    uint64_t id_hash;
    uint64_t local_seq; /* the local queue's next sequence before the send */
    uint64_t data_hash;
    uint64_t len;
    uint32_t state;
    uint32_t pad;
} jrec;

typedef struct jfile {
    uint64_t magic;
    uint64_t next; /* index of the next record to write (mod JOURNAL_SLOTS) */
    jrec rec[JOURNAL_SLOTS];
} jfile;

struct br_journal {
    jfile *f;
    uint64_t *gen[2]; /* open-addressing sets of id hashes (0: empty) */
    uint32_t count[2];
    jrec *pending;
};

static uint64_t hash64(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    h ^= h >> 33; /* finalizer: spread FNV's weak high bits */
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h ? h : 1;
}

static bool set_has(const uint64_t *set, uint64_t h)
{
    for (uint32_t i = (uint32_t)h & (SET_SLOTS - 1);; i = (i + 1) & (SET_SLOTS - 1)) {
        if (set[i] == h)
            return true;
        if (set[i] == 0)
            return false;
    }
}

static void set_add(br_journal *j, uint64_t h)
{
    if (set_has(j->gen[0], h) || set_has(j->gen[1], h))
        return;
    if (j->count[0] >= JOURNAL_SLOTS / 2) { /* rotate: the older half is forgotten */
        uint64_t *old = j->gen[1];
        j->gen[1] = j->gen[0];
        j->count[1] = j->count[0];
        memset(old, 0, SET_SLOTS * sizeof *old);
        j->gen[0] = old;
        j->count[0] = 0;
    }
    uint32_t i = (uint32_t)h & (SET_SLOTS - 1);
    while (j->gen[0][i])
        i = (i + 1) & (SET_SLOTS - 1);
    j->gen[0][i] = h;
    j->count[0]++;
}

int br_journal_open(const char *dir, const char *name, br_journal **out, char *err, size_t cap)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.journal", dir, name);
    mkdir(dir, 0700);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, sizeof(jfile)) != 0) {
        snprintf(err, cap, "journal %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    jfile *f = mmap(NULL, sizeof(jfile), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    br_journal *j = calloc(1, sizeof *j);
    if (f == MAP_FAILED || !j || !(j->gen[0] = calloc(SET_SLOTS, 8)) ||
        !(j->gen[1] = calloc(SET_SLOTS, 8))) {
        snprintf(err, cap, "journal %s: out of memory or mmap failed", path);
        return -1;
    }
    j->f = f;
    if (f->magic != JOURNAL_MAGIC) { /* new or foreign: start empty */
        memset(f, 0, sizeof *f);
        f->magic = JOURNAL_MAGIC;
    }
    uint64_t start = f->next; /* oldest first, so the newest land in gen[0] */
    for (uint64_t k = 0; k < JOURNAL_SLOTS; k++) {
        jrec *r = &f->rec[(start + k) % JOURNAL_SLOTS];
        if (r->state == REC_DONE)
            set_add(j, r->id_hash);
        else if (r->state == REC_PENDING)
            j->pending = r;
    }
    *out = j;
    return 0;
}

bool br_journal_seen(br_journal *j, const char *id)
{
    uint64_t h = hash64(id, strlen(id), 0);
    return set_has(j->gen[0], h) || set_has(j->gen[1], h);
}

int br_journal_begin(br_journal *j, const char *id, uint64_t local_seq, const void *data,
                     size_t len)
{
    jrec *r = &j->f->rec[j->f->next % JOURNAL_SLOTS];
    r->state = REC_EMPTY;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    r->id_hash = hash64(id, strlen(id), 0);
    r->local_seq = local_seq;
    r->data_hash = hash64(data, len, 1);
    r->len = len;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    r->state = REC_PENDING;
    j->pending = r;
    return 0;
}

int br_journal_done(br_journal *j)
{
    jrec *r = j->pending;
    if (!r)
        return -1;
    r->state = REC_DONE;
    set_add(j, r->id_hash);
    j->f->next = (j->f->next + 1) % JOURNAL_SLOTS;
    j->pending = NULL;
    return 0;
}

/* Abandon the pending record (the send did not happen). */
static void journal_void(br_journal *j)
{
    j->pending->state = REC_VOID;
    j->pending = NULL;
}

/* Settle a PENDING record left by a crash: look for its bytes in the local
 * queue at or after the sequence it recorded. Returns 1 if found (now DONE),
 * 0 if not (VOID: JetStream redelivers it), -1 if it cannot tell (the queue
 * already dropped that part of the ring: also VOID, a duplicate is possible). */
int br_journal_resolve(br_journal *j, const char *channel)
{
    if (!j->pending)
        return 0;
    jrec want = *j->pending;
    shmchan_opts o;
    shmchan_opts_init(&o);
    o.flags = SHMCHAN_SUBSCRIBE | SHMCHAN_OLDEST;
    shmchan_queue *q;
    if (shmchan_queue_open(channel, &o, &q) != SHMCHAN_OK) {
        journal_void(j);
        return -1;
    }
    int found = 0;
    bool first = true, unsure = false;
    shmchan_msg m;
    while (found == 0 && shmchan_queue_peek(q, SHMCHAN_NO_WAIT, &m) == SHMCHAN_OK) {
        if (first && m.seq > want.local_seq)
            unsure = true; /* the ring no longer reaches back to that sequence */
        first = false;
        if (m.seq >= want.local_seq && m.len == want.len &&
            hash64(m.data, (size_t)m.len, 1) == want.data_hash)
            found = 1;
        if (shmchan_queue_release(q) != SHMCHAN_OK && found == 1)
            found = 0; /* overwritten while hashed: not proof */
    }
    shmchan_queue_close(q);
    if (found == 0 && unsure)
        found = -1;
    if (found == 1) {
        br_journal_done(j);
    } else {
        journal_void(j);
    }
    return found;
}

void br_journal_close(br_journal *j)
{
    if (!j)
        return;
    munmap(j->f, sizeof(jfile));
    free(j->gen[0]);
    free(j->gen[1]);
    free(j);
}
