/*
 * The crash-chaos driver: shared declarations.
 *
 * The driver forks writer and reader processes on a channel, kills random
 * ones with SIGKILL at random moments, restarts some, and after each round
 * checks that every survivor finished within a bound (no deadlock), that no
 * torn or corrupted message was ever delivered, and, for queues in block
 * mode, that no committed message was lost or duplicated for a subscriber
 * that lived through the round.
 *
 * Processes talk to the driver only through one anonymous shared mapping
 * (struct chaos_board) made before any fork: per-process slots with counters
 * and the first failure's text, the writers' commit counts and the workers'
 * receipt bitmap. Children never use a channel handle of their parent: each
 * opens its own after fork.
 */
#ifndef SHMCHAN_CHAOS_H
#define SHMCHAN_CHAOS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmchan/shmchan.h"

#define CHAOS_SLOTS 64     /* processes alive at once, per round, at most */
#define CHAOS_INCS 256     /* writer incarnations per round */
#define CHAOS_STABLE 4     /* subscribers never killed, whose receipts are checked */
#define CHAOS_MAX_MSG 256
#define CHAOS_BITS (1u << 20) /* messages per writer incarnation, at most */

/* Roles of a child. */
enum chaos_role {
    ROLE_LATEST_WRITER = 1,
    ROLE_LATEST_READER,
    ROLE_QUEUE_WRITER,
    ROLE_QUEUE_SUBSCRIBER, /* killable: checks order and integrity */
    ROLE_QUEUE_STABLE,     /* never killed: also checks that nothing was lost */
    ROLE_QUEUE_WORKER,
    ROLE_LATEST_STABLE, /* never killed: its last read must be the newest message */
};

typedef struct chaos_slot {
    _Atomic int role;
    _Atomic int inc;          /* writer incarnation, or stable subscriber index */
    _Atomic uint32_t ready;   /* 1 once its channel handle is open */
    _Atomic uint64_t checked; /* messages verified (readers) */
    _Atomic uint64_t sent;    /* messages committed (writers) */
    _Atomic uint64_t failures;
    char failure[200];        /* the first failure, as text */
} chaos_slot;

typedef struct chaos_board {
    _Atomic uint32_t stop;         /* writers: stop sending */
    _Atomic uint32_t writers_done; /* readers: drain what is left, then stop */
    chaos_slot slots[CHAOS_SLOTS];
    /* Writers: messages committed, stored after each commit returned OK. */
    _Atomic uint64_t committed[CHAOS_INCS];
    /* Whether each incarnation was killed (it may have committed one more
     * send: one message, or up to `batch` of a send_batch in progress). */
    _Atomic uint32_t killed[CHAOS_INCS];
    _Atomic uint32_t batch[CHAOS_INCS];
    /* Stable subscribers: messages received from each incarnation. */
    _Atomic uint64_t received[CHAOS_STABLE][CHAOS_INCS];
    /* The stable latest-value reader: messages it accepted, and the message
     * it read once the writers were done (incarnation, counter + 1; 0: none). */
    _Atomic uint64_t latest_checked, latest_final_inc, latest_final_count;
    /* Workers: one bit per (incarnation, counter), set by whoever got it. */
    _Atomic uint64_t taken[CHAOS_INCS][CHAOS_BITS / 64];
} chaos_board;

extern chaos_board *chaos_b;

/* What a round runs on. */
typedef struct chaos_chan {
    char name[SHMCHAN_NAME_MAX + 1];
    uint32_t policy; /* queues */
    bool create_race; /* children create it (and may die creating it) */
} chaos_chan;

/* Message format: a header, then bytes derived from it; see chaos.c. */
size_t chaos_msg_make(uint8_t *buf, uint32_t inc, uint64_t counter, size_t len);
/* OK or a description of what is wrong (static string). */
const char *chaos_msg_check(const uint8_t *buf, size_t len, uint32_t *inc, uint64_t *counter);
size_t chaos_msg_len(uint64_t *rng);

uint64_t chaos_rand(uint64_t *state);
void chaos_fail(chaos_slot *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t chaos_now_ns(void);

/* Child bodies; each returns its exit status. */
int chaos_latest_writer(chaos_slot *s, const chaos_chan *c, uint64_t seed);
int chaos_latest_reader(chaos_slot *s, const chaos_chan *c, uint64_t seed);
int chaos_queue_writer(chaos_slot *s, const chaos_chan *c, uint64_t seed);
int chaos_queue_reader(chaos_slot *s, const chaos_chan *c, uint64_t seed);

/* Create the round's queue (the driver does, then closes it). */
int chaos_queue_create(const chaos_chan *c);

#endif
