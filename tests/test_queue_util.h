/* Helpers shared by the queue tests (defined in test_queue.c). */
#ifndef SHMCHAN_TEST_QUEUE_UTIL_H
#define SHMCHAN_TEST_QUEUE_UTIL_H

#include "t.h"

/* Create a queue (0: defaults) and return a plain handle (a writer). */
shmchan_queue *tq_create(const char *name, uint64_t capacity, uint64_t max_msg,
                         uint32_t policy);
/* Open an existing queue with flags (SHMCHAN_SUBSCRIBE, SHMCHAN_WORKER...). */
shmchan_queue *tq_open(const char *name, uint32_t flags);
/* Payload byte i of the message identified by key, and fill/check helpers. */
uint8_t tq_byte(uint64_t key, size_t i);
void tq_fill(uint8_t *p, size_t len, uint64_t key);
bool tq_check(const uint8_t *p, size_t len, uint64_t key);
void tq_info(const char *name, shmchan_info *info);
/* Rewinding tests: a ring of 2 * shmchan__ring_window() bytes holds 131
 * records of messages this long (test_queue.c). */
size_t tq_rewind_len(void);
/* SHMCHAN_STRESS_SECONDS, default 3. */
double tq_seconds(void);

#endif
