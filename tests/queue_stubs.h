/*
 * Weak stand-ins for the queue functions that the placeholder queue module
 * (src/core/queue.c before the queue lands) does not define, so that code
 * written against the declared API links now. The placeholder's
 * shmchan_queue_open() returns SHMCHAN_ENOTSUP, so none of these is reached.
 * CMake defines SHMCHAN_QUEUE_STUBS (tests/queue_stubs.cmake) only while the
 * library lacks the queue functions. Include in exactly one file of a
 * program. Remove once the queue is on main.
 */
#ifndef SHMCHAN_QUEUE_STUBS_H
#define SHMCHAN_QUEUE_STUBS_H

#include "shmchan/shmchan.h"

#ifdef SHMCHAN_QUEUE_STUBS
#define QSTUB

QSTUB void shmchan_queue_close(shmchan_queue *q) { (void)q; }
QSTUB int shmchan_queue_send(shmchan_queue *q, const void *d, size_t n, int64_t t)
{ (void)q; (void)d; (void)n; (void)t; return SHMCHAN_ENOTSUP; }
QSTUB int shmchan_queue_reserve(shmchan_queue *q, size_t n, int64_t t, void **b)
{ (void)q; (void)n; (void)t; (void)b; return SHMCHAN_ENOTSUP; }
QSTUB int shmchan_queue_commit(shmchan_queue *q, size_t n)
{ (void)q; (void)n; return SHMCHAN_ENOTSUP; }
QSTUB int shmchan_queue_abort(shmchan_queue *q) { (void)q; return SHMCHAN_ENOTSUP; }
QSTUB int shmchan_queue_recv(shmchan_queue *q, void *b, size_t c, int64_t t, size_t *l,
                             shmchan_msg *i)
{ (void)q; (void)b; (void)c; (void)t; (void)l; (void)i; return SHMCHAN_ENOTSUP; }
QSTUB int shmchan_queue_recv_batch(shmchan_queue *q, void *b, size_t c, size_t m, int64_t t,
                                   shmchan_msg *ms, size_t *n)
{ (void)q; (void)b; (void)c; (void)m; (void)t; (void)ms; (void)n; return SHMCHAN_ENOTSUP; }
QSTUB int shmchan_queue_peek(shmchan_queue *q, int64_t t, shmchan_msg *m)
{ (void)q; (void)t; (void)m; return SHMCHAN_ENOTSUP; }
QSTUB int shmchan_queue_release(shmchan_queue *q) { (void)q; return SHMCHAN_ENOTSUP; }
QSTUB size_t shmchan_queue_max_msg(const shmchan_queue *q) { (void)q; return 0; }
QSTUB int shmchan_queue_info(shmchan_queue *q, shmchan_info *i)
{ (void)q; (void)i; return SHMCHAN_ENOTSUP; }

#undef QSTUB
#endif
#endif
