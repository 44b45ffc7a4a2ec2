/* shmchan._native: the compiled fast path of the Python binding.
 *
 * Most Python code sends or receives one message per call, and through ctypes
 * a call costs about 2 us while the library needs tens of nanoseconds. This
 * module makes the per-message calls (queue send/recv, latest publish/read/
 * wait/read_next) plain CPython methods. Everything else stays in the Python
 * package, which also remains usable without this module (the ctypes path).
 *
 * It does not link libshmchan: setup() receives the addresses of the library's
 * public functions from the ctypes loader, so that both paths share the one
 * library that was loaded (shmchan.library_path) and the one C handle.
 *
 * A Handle owns a C handle and replaces the ctypes path's Handle object:
 * - calls that release the GIL (waits) count themselves in `active`; free()
 *   on a handle with active calls only marks it closing, and the last call out
 *   closes the C handle, so no thread ever passes a freed handle;
 * - waits run in slices of SLICE_MS with the GIL released, checking signals
 *   (Ctrl-C) and the closing flag between slices;
 * - wlock/rlock are this module's Lock objects, which the Python code uses as
 *   it used threading.Lock: one serialises the sending calls on a handle, the
 *   other the receiving calls (a queue handle allows one thread to send while
 *   another receives, shmchan.h), so a send never waits for a receive's wait
 *   nor the other way round; they record their owner, so that a send from the
 *   thread that holds a reservation fails with ESTATE instead of waiting for
 *   itself;
 * - a handle made before fork() refuses to work in the child, and the child's
 *   finaliser leaves the C handle (and the parent's slot) alone.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "structmember.h"

#include <stdint.h>
#include <string.h>

#include "shmchan/shmchan.h"

#ifdef _WIN32
#include <windows.h>
#else
#include <pthread.h>
#include <time.h>
#endif

#define SLICE_MS 50
/* Messages up to this many bytes are received into the handle's buffer and
 * copied into a new bytes object; larger max_msg receive straight into a bytes
 * object of max_msg bytes that is then shrunk (one copy instead of two). */
#define SMALL_MAX_MSG (64 * 1024)
/* Queues whose max_msg is at most this receive straight into a bytes object
 * of max_msg bytes that is then shortened in place, keeping its allocation:
 * no copy, and no more than CPython's small-object size (512) is ever held
 * for a short message. */
#define SPARE_MAX_MSG 512

enum { KIND_LATEST = 1, KIND_QUEUE = 2 };

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* The calling thread, as this module's locks record their owner: what
 * PyThread_get_thread_ident() returns, without its extra call. */
static ALWAYS_INLINE unsigned long
thread_ident(void)
{
#ifdef _WIN32
    return (unsigned long)GetCurrentThreadId();
#else
    return (unsigned long)pthread_self();
#endif
}

/* ------------------------------------------------------- library functions */

typedef void (*close_fn)(void *);
static struct {
    int (*latest_publish)(shmchan_latest *, const void *, size_t, uint64_t *);
    int (*latest_read)(shmchan_latest *, void *, size_t, size_t *, uint64_t *);
    int (*latest_wait)(shmchan_latest *, uint64_t, int64_t, uint64_t *);
    int (*latest_read_next)(shmchan_latest *, uint64_t, void *, size_t, int64_t, size_t *,
                            uint64_t *);
    void (*latest_close)(shmchan_latest *);
    int (*queue_send)(shmchan_queue *, const void *, size_t, int64_t);
    int (*queue_recv)(shmchan_queue *, void *, size_t, int64_t, size_t *, shmchan_msg *);
    void (*queue_close)(shmchan_queue *);
} fn;

#if defined(__GNUC__)
#define SAME_TYPE(f, member) \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&f), __typeof__(fn.member)), #f)
SAME_TYPE(shmchan_latest_publish, latest_publish);
SAME_TYPE(shmchan_latest_read, latest_read);
SAME_TYPE(shmchan_latest_wait, latest_wait);
SAME_TYPE(shmchan_latest_read_next, latest_read_next);
SAME_TYPE(shmchan_latest_close, latest_close);
SAME_TYPE(shmchan_queue_send, queue_send);
SAME_TYPE(shmchan_queue_recv, queue_recv);
SAME_TYPE(shmchan_queue_close, queue_close);
#endif

/* Error codes (from the library's table, given to setup()) and the Python
 * callables that turn them into exceptions. */
static int E_AGAIN, E_TIMEDOUT, E_INTR, E_STATE;
static PyObject *error_factory; /* (code, operation, channel) -> exception */
static PyObject *forked_factory; /* (channel) -> exception */
static int ready;

/* Bumped in every child after fork(): handles remember the value they were
 * made under, which costs nothing per call (getpid() is a system call). */
static volatile unsigned long fork_generation;
#ifndef _WIN32
static void
after_fork_child(void)
{
    fork_generation++;
}
#endif

/* Monotonic clock in nanoseconds, for the deadline of a timed wait. */
static int64_t
now_ns(void)
{
#ifdef _WIN32
    return (int64_t)GetTickCount64() * 1000000;
#else
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
#endif
}

/* ------------------------------------------------------------------ Lock */

/* A lock like threading.Lock (acquire, release, with, locked) that also
 * records which thread holds it, and is fair.
 *
 * Its state (locked, owner, waiters) is only read and written with the GIL
 * held, so taking and giving a free lock costs no atomic operation: that is
 * most of what a send or recv spends outside the library. Only a thread that
 * finds it taken sleeps, with the GIL released, on `turn` (a PyThread lock
 * that is held at all times except while being passed on). Giving the lock
 * with waiters hands it straight to one of them (it stays locked, and turn is
 * released once for that waiter), so a thread that gives and takes again in
 * a loop, as a wait in slices does, cannot starve the others. */
typedef struct {
    PyObject_HEAD
    PyThread_type_lock turn;
    unsigned long owner;
    int locked;
    int waiters;
} Lock;

static void
lock_wait_turn(Lock *l)
{
    l->waiters++;
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(l->turn, WAIT_LOCK);
    Py_END_ALLOW_THREADS
    l->waiters--;
}

static int
lock_take(Lock *l, int blocking)
{
    if (!l->locked) {
        l->locked = 1;
    } else if (!blocking) {
        return 0;
    } else {
        lock_wait_turn(l); /* handed over: still locked, now ours */
    }
    l->owner = thread_ident();
    return 1;
}

static void
lock_give(Lock *l)
{
    l->owner = 0;
    if (l->waiters > 0) {
        PyThread_release_lock(l->turn); /* to one waiter; stays locked */
    } else {
        l->locked = 0;
    }
}

static PyObject *
Lock_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    Lock *l = (Lock *)type->tp_alloc(type, 0);
    if (l == NULL) {
        return NULL;
    }
    l->turn = PyThread_allocate_lock();
    if (l->turn == NULL) {
        Py_DECREF(l);
        return PyErr_NoMemory();
    }
    PyThread_acquire_lock(l->turn, NOWAIT_LOCK); /* held but while handed over */
    return (PyObject *)l;
}

static void
Lock_dealloc(Lock *l)
{
    if (l->turn != NULL) {
        PyThread_free_lock(l->turn);
    }
    Py_TYPE(l)->tp_free((PyObject *)l);
}

static PyObject *
Lock_acquire(Lock *l, PyObject *args, PyObject *kw)
{
    static char *names[] = {"blocking", NULL};
    int blocking = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p:acquire", names, &blocking)) {
        return NULL;
    }
    return PyBool_FromLong(lock_take(l, blocking));
}

static PyObject *
Lock_release(Lock *l, PyObject *unused)
{
    if (!l->locked) {
        PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
        return NULL;
    }
    lock_give(l);
    Py_RETURN_NONE;
}

static PyObject *
Lock_enter(Lock *l, PyObject *unused)
{
    lock_take(l, 1);
    Py_RETURN_TRUE;
}

static PyObject *
Lock_exit(Lock *l, PyObject *args)
{
    return Lock_release(l, NULL);
}

static PyObject *
Lock_locked(Lock *l, PyObject *unused)
{
    return PyBool_FromLong(l->locked);
}

static PyObject *
Lock_held_here(Lock *l, PyObject *unused)
{
    return PyBool_FromLong(l->locked && l->owner == thread_ident());
}

static PyMethodDef Lock_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))Lock_acquire, METH_VARARGS | METH_KEYWORDS,
     "acquire(blocking=True) -> bool"},
    {"release", (PyCFunction)Lock_release, METH_NOARGS, "release()"},
    {"__enter__", (PyCFunction)Lock_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)Lock_exit, METH_VARARGS, NULL},
    {"locked", (PyCFunction)Lock_locked, METH_NOARGS, "Whether some thread holds it."},
    {"held_here", (PyCFunction)Lock_held_here, METH_NOARGS, "Whether this thread holds it."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject LockType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmchan._native.Lock",
    .tp_basicsize = sizeof(Lock),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A lock that records its owner thread (used by the shmchan package).",
    .tp_new = Lock_new,
    .tp_dealloc = (destructor)Lock_dealloc,
    .tp_methods = Lock_methods,
};

/* ---------------------------------------------------------------- Handle */

typedef struct {
    PyObject_HEAD
    void *h;             /* shmchan_latest * or shmchan_queue *; NULL once closed */
    int kind;            /* KIND_LATEST or KIND_QUEUE */
    int closing;         /* set by stop()/free(): calls raise ValueError */
    int free_requested;  /* free() while calls were active: the last one out frees */
    long active;         /* calls that released the GIL and are still inside */
    unsigned long generation;
    size_t max_msg;
    char *buf;           /* receive buffer of max_msg bytes (rlock), made on demand */
    uint64_t last;       /* latest: the newest sequence returned (Latest.last_seen) */
    uint64_t wseq;
    PyObject *name;      /* str, for error messages */
    Lock *wlock, *rlock; /* sending, receiving: held for the whole call */
    PyObject *spare;     /* queue recv: a bytes object of max_msg bytes to receive into */
    PyObject *weakrefs;
} Handle;

static void
handle_close_now(Handle *self)
{
    void *h = self->h;
    self->h = NULL;
    if (h == NULL || self->generation != fork_generation) {
        return; /* a child's copy: the parent's slot is not ours to free */
    }
    if (self->kind == KIND_LATEST) {
        fn.latest_close(h);
    } else {
        fn.queue_close(h);
    }
}

static PyObject *
raise_code(Handle *self, int rc, const char *op)
{
    PyObject *e = PyObject_CallFunction(error_factory, "isO", rc, op, self->name);
    if (e != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
    return NULL;
}

/* Raise what usable() found. */
static int
unusable(Handle *self)
{
    if (self->generation != fork_generation) {
        PyObject *e = PyObject_CallFunction(forked_factory, "O", self->name);
        if (e != NULL) {
            PyErr_SetObject((PyObject *)Py_TYPE(e), e);
            Py_DECREF(e);
        }
        return -1;
    }
    PyErr_Format(PyExc_ValueError, "operation on a closed %s",
                 self->kind == KIND_LATEST ? "channel" : "queue");
    return -1;
}

/* Entry check of every call: open, same process. Returns 0 or raises. */
static ALWAYS_INLINE int
usable(Handle *self)
{
    if (self->generation != fork_generation || self->h == NULL || self->closing) {
        return unusable(self);
    }
    return 0;
}

/* take() when the lock is taken. */
static int
take_contended(Handle *self, Lock *l, const char *op)
{
    if (l->owner == thread_ident()) {
        raise_code(self, E_STATE, op);
        return -1;
    }
    self->active++;
    lock_take(l, 1);
    self->active--;
    if (usable(self) != 0) {
        lock_give(l);
        if (self->active == 0 && self->free_requested) {
            handle_close_now(self);
        }
        return -1;
    }
    return 0;
}

/* Take a lock for a call on the handle. A lock this thread already holds is a
 * reservation in progress (ESTATE: it would wait for itself). Waiting for the
 * lock counts the call active. */
static ALWAYS_INLINE int
take(Handle *self, Lock *l, const char *op)
{
    if (!l->locked) {
        l->locked = 1;
        l->owner = thread_ident();
        return 0;
    }
    return take_contended(self, l, op);
}

/* timeout argument: -1 for None (for ever), else milliseconds as a double. */
static ALWAYS_INLINE int
parse_timeout(PyObject *t, double *ms)
{
    if (t == NULL || t == Py_None) {
        *ms = -1;
        return 0;
    }
    double s = PyFloat_AsDouble(t);
    if (s == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (!(s >= 0)) { /* negative or NaN */
        PyErr_SetString(PyExc_ValueError,
                        "timeout must be None (wait for ever) or a number of seconds >= 0");
        return -1;
    }
    /* Beyond about 100 years (or inf) is for ever: the deadline in ns must fit in int64. */
    *ms = s > 3e9 ? -1 : s * 1000.0;
    return 0;
}

typedef int (*call_fn)(Handle *, void *ctx, int64_t ms);

/* The slices of run_blocking(), after a first try found nothing to do. */
static int
wait_in_slices(Handle *self, call_fn call, void *ctx, double timeout_ms)
{
    int rc;
    int64_t end = 0;
    if (timeout_ms > 0) {
        end = now_ns() + (int64_t)(timeout_ms * 1e6);
    }
    self->active++;
    for (;;) {
        int64_t ms = SLICE_MS;
        if (timeout_ms > 0) {
            int64_t left = end - now_ns();
            if (left <= 0) {
                rc = E_TIMEDOUT;
                break;
            }
            int64_t left_ms = (int64_t)((left + 999999) / 1000000);
            ms = left_ms < SLICE_MS ? left_ms : SLICE_MS;
        }
        Py_BEGIN_ALLOW_THREADS
        rc = call(self, ctx, ms);
        Py_END_ALLOW_THREADS
        if (rc != E_TIMEDOUT && rc != E_INTR) {
            break;
        }
        if (PyErr_CheckSignals() != 0) {
            rc = INT32_MIN;
            break;
        }
        if (self->closing) {
            PyErr_Format(PyExc_ValueError, "%s closed while waiting",
                         self->kind == KIND_LATEST ? "channel" : "queue");
            rc = INT32_MIN;
            break;
        }
    }
    self->active--;
    return rc;
}

/* Run call(ms): first once without waiting and with the GIL held (the common
 * case: a message or space is there), then in slices with the GIL released
 * until it returns something other than a timeout, the caller's timeout is
 * spent, a signal handler raises or close() was called. Returns the
 * library's code, or INT32_MIN with a Python exception set. The caller holds
 * its lock (wlock or rlock): on a queue handle the other direction may be
 * inside the library meanwhile, which shmchan.h allows. Inlined into each
 * caller, so that the first try is a direct call of the library's function. */
static ALWAYS_INLINE int
run_blocking(Handle *self, call_fn call, void *ctx, double timeout_ms)
{
    int rc = call(self, ctx, 0);
    if ((rc != E_AGAIN && rc != E_TIMEDOUT && rc != E_INTR) || timeout_ms == 0) {
        return rc;
    }
    return wait_in_slices(self, call, ctx, timeout_ms);
}

/* Finish a call: release the lock, free the handle if close() came meanwhile. */
static void
finish(Handle *self, Lock *l)
{
    lock_give(l);
    if (self->active == 0 && self->free_requested) {
        handle_close_now(self);
    }
}

static int
ensure_buf(Handle *self)
{
    if (self->buf == NULL) {
        self->buf = PyMem_RawMalloc(self->max_msg ? self->max_msg : 1);
        if (self->buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    return 0;
}

/* Bytes-like argument: bytes directly, anything else through the buffer
 * protocol (C-contiguous only). */
typedef struct {
    const void *p;
    size_t n;
    Py_buffer view;
    int has_view;
} Data;

static ALWAYS_INLINE int
get_data(PyObject *o, Data *d)
{
    d->has_view = 0;
    if (PyBytes_CheckExact(o)) {
        d->p = PyBytes_AS_STRING(o);
        d->n = (size_t)PyBytes_GET_SIZE(o);
        return 0;
    }
    if (PyObject_GetBuffer(o, &d->view, PyBUF_FULL_RO) != 0) {
        return -1;
    }
    d->has_view = 1;
    if (!PyBuffer_IsContiguous(&d->view, 'C')) {
        PyBuffer_Release(&d->view);
        d->has_view = 0;
        PyErr_SetString(PyExc_ValueError, "buffer must be C-contiguous");
        return -1;
    }
    d->p = d->view.buf;
    d->n = (size_t)d->view.len;
    return 0;
}

static void
put_data(Data *d)
{
    if (d->has_view) {
        PyBuffer_Release(&d->view);
    }
}

static PyObject *
Handle_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *names[] = {"kind", "address", "name", "max_msg", NULL};
    int kind;
    unsigned long long addr, max_msg;
    PyObject *name;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "iKUK:Handle", names, &kind, &addr, &name,
                                     &max_msg)) {
        return NULL;
    }
    if (!ready) {
        PyErr_SetString(PyExc_RuntimeError, "shmchan._native.setup() was not called");
        return NULL;
    }
    if ((kind != KIND_LATEST && kind != KIND_QUEUE) || addr == 0) {
        PyErr_SetString(PyExc_ValueError, "bad kind or address");
        return NULL;
    }
    Handle *self = (Handle *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->h = (void *)(uintptr_t)addr;
    self->kind = kind;
    self->max_msg = (size_t)max_msg;
    self->generation = fork_generation;
    Py_INCREF(name);
    self->name = name;
    self->wlock = (Lock *)PyObject_CallNoArgs((PyObject *)&LockType);
    self->rlock = (Lock *)PyObject_CallNoArgs((PyObject *)&LockType);
    if (self->wlock == NULL || self->rlock == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static void
Handle_dealloc(Handle *self)
{
    if (self->weakrefs != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    handle_close_now(self);
    PyMem_RawFree(self->buf);
    Py_XDECREF(self->name);
    Py_XDECREF(self->wlock);
    Py_XDECREF(self->rlock);
    Py_XDECREF(self->spare);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Handle_stop(Handle *self, PyObject *unused)
{
    self->closing = 1;
    Py_RETURN_NONE;
}

static PyObject *
Handle_free(Handle *self, PyObject *unused)
{
    self->closing = 1;
    if (self->active == 0) {
        handle_close_now(self);
    } else {
        self->free_requested = 1;
    }
    Py_RETURN_NONE;
}

static PyObject *
Handle_get_ptr(Handle *self, void *unused)
{
    if (self->h == NULL) {
        Py_RETURN_NONE;
    }
    return PyLong_FromVoidPtr(self->h);
}

static PyObject *
Handle_get_active(Handle *self, void *unused)
{
    return PyLong_FromLong(self->active);
}

static PyObject *
Handle_get_last(Handle *self, void *unused)
{
    return PyLong_FromUnsignedLongLong(self->last);
}

/* An integer argument for a uint64_t, as the ctypes path checks it
 * (_common.check_int): TypeError for a non-integer or a bool, ValueError
 * below zero, OverflowError above 2**64 - 1. */
static int
as_u64(PyObject *v, const char *name, uint64_t *out)
{
    if (PyBool_Check(v) || !PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "%s must be an integer, not %.100s", name,
                     Py_TYPE(v)->tp_name);
        return -1;
    }
    PyObject *zero = PyLong_FromLong(0);
    int neg = zero == NULL ? -1 : PyObject_RichCompareBool(v, zero, Py_LT);
    Py_XDECREF(zero);
    if (neg != 0) {
        if (neg > 0) {
            PyErr_Format(PyExc_ValueError, "%s must be >= 0", name);
        }
        return -1;
    }
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    *out = x;
    return 0;
}

static int
Handle_set_last(Handle *self, PyObject *v, void *unused)
{
    if (v == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete last");
        return -1;
    }
    uint64_t x;
    if (as_u64(v, "last", &x) != 0) {
        return -1;
    }
    self->last = x;
    return 0;
}

/* after argument of wait/read_next: None means the newest returned. */
static int
parse_after(Handle *self, PyObject *a, uint64_t *out)
{
    if (a == NULL || a == Py_None) {
        *out = self->last;
        return 0;
    }
    return as_u64(a, "after", out);
}

/* ----------------------------------------------------------------- queue */

typedef struct {
    const void *p;
    size_t n;
} SendCtx;

static int
call_send(Handle *self, void *ctx, int64_t ms)
{
    SendCtx *c = ctx;
    return fn.queue_send(self->h, c->p, c->n, ms);
}

static PyObject *
Handle_send(Handle *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a[2] = {NULL, Py_None};
    if (kwnames != NULL || nargs < 1 || nargs > 2) {
        /* The rare spellings go through the general parser. */
        static const char *const kw[] = {"data", "timeout", NULL};
        PyObject *t = PyTuple_New(nargs);
        if (t == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < nargs; i++) {
            Py_INCREF(args[i]);
            PyTuple_SET_ITEM(t, i, args[i]);
        }
        PyObject *d = NULL;
        if (kwnames != NULL) {
            d = PyDict_New();
            for (Py_ssize_t i = 0; d != NULL && i < PyTuple_GET_SIZE(kwnames); i++) {
                if (PyDict_SetItem(d, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) != 0) {
                    Py_CLEAR(d);
                }
            }
            if (d == NULL) {
                Py_DECREF(t);
                return NULL;
            }
        }
        int ok = PyArg_ParseTupleAndKeywords(t, d, "O|O:send", (char **)kw, &a[0], &a[1]);
        Py_DECREF(t);
        Py_XDECREF(d);
        if (!ok) {
            return NULL;
        }
    } else {
        a[0] = args[0];
        if (nargs > 1) {
            a[1] = args[1];
        }
    }
    double tmo;
    Data d;
    if (parse_timeout(a[1], &tmo) != 0 || get_data(a[0], &d) != 0) {
        return NULL;
    }
    if (usable(self) != 0 || take(self, self->wlock, "send") != 0) {
        put_data(&d);
        return NULL;
    }
    SendCtx c = {d.p, d.n};
    int rc = run_blocking(self, call_send, &c, tmo);
    finish(self, self->wlock);
    put_data(&d);
    if (rc == INT32_MIN) {
        return NULL;
    }
    if (rc != 0) {
        return raise_code(self, rc, "send");
    }
    Py_RETURN_NONE;
}

typedef struct {
    void *buf;
    size_t cap;
    size_t len;
} RecvCtx;

static int
call_recv(Handle *self, void *ctx, int64_t ms)
{
    RecvCtx *c = ctx;
    return fn.queue_recv(self->h, c->buf, c->cap, ms, &c->len, NULL);
}

/* One optional argument, timeout (positional or keyword). */
static int
one_timeout(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *what,
            PyObject **out)
{
    *out = Py_None;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nargs + nkw > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (timeout)", what);
        return -1;
    }
    if (nargs == 1) {
        *out = args[0];
    } else if (nkw == 1) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(kwnames, 0)) ||
            PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, 0), "timeout") != 0) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument", what);
            return -1;
        }
        *out = args[0];
    }
    return 0;
}

static PyObject *
Handle_recv(Handle *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *t;
    double tmo;
    if (one_timeout(args, nargs, kwnames, "recv", &t) != 0 || parse_timeout(t, &tmo) != 0) {
        return NULL;
    }
    if (usable(self) != 0 || take(self, self->rlock, "recv") != 0) {
        return NULL;
    }
    PyObject *out = NULL;
    RecvCtx c;
    if (self->max_msg <= SPARE_MAX_MSG) {
        /* Straight into the spare bytes object, which a failed call keeps. */
        if (self->spare == NULL) {
            self->spare = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)self->max_msg);
            if (self->spare == NULL) {
                finish(self, self->rlock);
                return NULL;
            }
        }
        c.buf = PyBytes_AS_STRING(self->spare);
    } else if (self->max_msg > SMALL_MAX_MSG) {
        out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)self->max_msg);
        if (out == NULL) {
            finish(self, self->rlock);
            return NULL;
        }
        c.buf = PyBytes_AS_STRING(out);
    } else {
        if (ensure_buf(self) != 0) {
            finish(self, self->rlock);
            return NULL;
        }
        c.buf = self->buf;
    }
    c.cap = self->max_msg;
    c.len = 0;
    int rc = run_blocking(self, call_recv, &c, tmo);
    if (rc == 0) {
        if (self->max_msg <= SPARE_MAX_MSG && c.len <= self->max_msg) {
            out = self->spare;
            self->spare = NULL;
            /* Shortened in place: the allocation is at most SPARE_MAX_MSG. */
            Py_SET_SIZE(out, (Py_ssize_t)c.len);
            PyBytes_AS_STRING(out)[c.len] = '\0';
        } else if (out == NULL) {
            out = PyBytes_FromStringAndSize(c.buf, (Py_ssize_t)c.len);
        } else if (_PyBytes_Resize(&out, (Py_ssize_t)c.len) != 0) {
            out = NULL;
        }
    } else {
        Py_CLEAR(out);
    }
    finish(self, self->rlock);
    if (rc == INT32_MIN) {
        return NULL;
    }
    if (rc != 0) {
        return raise_code(self, rc, "recv");
    }
    return out;
}

/* ---------------------------------------------------------------- latest */

static PyObject *
Handle_publish(Handle *self, PyObject *data)
{
    Data d;
    if (get_data(data, &d) != 0) {
        return NULL;
    }
    if (usable(self) != 0 || take(self, self->wlock, "publish") != 0) {
        put_data(&d);
        return NULL;
    }
    uint64_t seq = 0;
    int rc = fn.latest_publish(self->h, d.p, d.n, &seq);
    finish(self, self->wlock);
    put_data(&d);
    if (rc != 0) {
        return raise_code(self, rc, "publish");
    }
    return PyLong_FromUnsignedLongLong(seq);
}

static PyObject *
seq_and_bytes(Handle *self, uint64_t seq, const char *buf, size_t len)
{
    PyObject *b = PyBytes_FromStringAndSize(buf, (Py_ssize_t)len);
    if (b == NULL) {
        return NULL;
    }
    self->last = seq;
    PyObject *s = PyLong_FromUnsignedLongLong(seq);
    if (s == NULL) {
        Py_DECREF(b);
        return NULL;
    }
    PyObject *t = PyTuple_New(2);
    if (t == NULL) {
        Py_DECREF(b);
        Py_DECREF(s);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, s);
    PyTuple_SET_ITEM(t, 1, b);
    return t;
}

static PyObject *
Handle_read(Handle *self, PyObject *unused)
{
    if (usable(self) != 0) {
        return NULL;
    }
    size_t len = 0;
    uint64_t seq = 0;
    int rc;
    PyObject *out = NULL;
    /* read never waits, so it never waits for the buffer's lock either: when
     * another thread holds it (a read_next asleep) it uses a buffer of its own. */
    if (lock_take(self->rlock, 0)) {
        if (ensure_buf(self) != 0) {
            finish(self, self->rlock);
            return NULL;
        }
        rc = fn.latest_read(self->h, self->buf, self->max_msg, &len, &seq);
        if (rc == 0) {
            out = seq_and_bytes(self, seq, self->buf, len);
        }
        finish(self, self->rlock);
    } else {
        char *tmp = PyMem_RawMalloc(self->max_msg ? self->max_msg : 1);
        if (tmp == NULL) {
            return PyErr_NoMemory();
        }
        rc = fn.latest_read(self->h, tmp, self->max_msg, &len, &seq);
        if (rc == 0) {
            out = seq_and_bytes(self, seq, tmp, len);
        }
        PyMem_RawFree(tmp);
    }
    if (rc != 0) {
        return raise_code(self, rc, "read");
    }
    return out;
}

/* Two optional arguments, after and timeout (positional or keyword). */
static int
after_timeout(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *what,
              PyObject **after, PyObject **timeout)
{
    *after = Py_None;
    *timeout = Py_None;
    if (nargs > 2) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 2 arguments (after, timeout)", what);
        return -1;
    }
    if (nargs > 0) {
        *after = args[0];
    }
    if (nargs > 1) {
        *timeout = args[1];
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_Check(k) && PyUnicode_CompareWithASCIIString(k, "after") == 0 &&
            nargs < 1) {
            *after = args[nargs + i];
        } else if (PyUnicode_Check(k) && PyUnicode_CompareWithASCIIString(k, "timeout") == 0 &&
                   nargs < 2) {
            *timeout = args[nargs + i];
        } else {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected or repeated keyword argument %R",
                         what, k);
            return -1;
        }
    }
    return 0;
}

typedef struct {
    uint64_t after;
    uint64_t seq;
    void *buf;
    size_t cap;
    size_t len;
} WaitCtx;

static int
call_wait(Handle *self, void *ctx, int64_t ms)
{
    WaitCtx *c = ctx;
    return fn.latest_wait(self->h, c->after, ms, &c->seq);
}

static int
call_read_next(Handle *self, void *ctx, int64_t ms)
{
    WaitCtx *c = ctx;
    return fn.latest_read_next(self->h, c->after, c->buf, c->cap, ms, &c->len, &c->seq);
}

static PyObject *
Handle_wait(Handle *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a, *t;
    double tmo;
    WaitCtx c = {0};
    if (after_timeout(args, nargs, kwnames, "wait", &a, &t) != 0 ||
        parse_after(self, a, &c.after) != 0 || parse_timeout(t, &tmo) != 0 ||
        usable(self) != 0) {
        return NULL;
    }
    /* The C handle may be shared by threads: waits need no lock. */
    int rc = run_blocking(self, call_wait, &c, tmo);
    if (self->active == 0 && self->free_requested) {
        handle_close_now(self);
    }
    if (rc == INT32_MIN) {
        return NULL;
    }
    if (rc != 0) {
        return raise_code(self, rc, "wait");
    }
    self->last = c.seq;
    return PyLong_FromUnsignedLongLong(c.seq);
}

static PyObject *
Handle_read_next(Handle *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *a, *t;
    double tmo;
    WaitCtx c = {0};
    if (after_timeout(args, nargs, kwnames, "read_next", &a, &t) != 0 ||
        parse_after(self, a, &c.after) != 0 || parse_timeout(t, &tmo) != 0 ||
        usable(self) != 0 || take(self, self->rlock, "read_next") != 0) {
        return NULL;
    }
    if (ensure_buf(self) != 0) {
        finish(self, self->rlock);
        return NULL;
    }
    c.buf = self->buf;
    c.cap = self->max_msg;
    int rc = run_blocking(self, call_read_next, &c, tmo);
    PyObject *out = NULL;
    if (rc == 0) {
        out = seq_and_bytes(self, c.seq, self->buf, c.len);
    }
    finish(self, self->rlock);
    if (rc == INT32_MIN) {
        return NULL;
    }
    if (rc != 0) {
        return raise_code(self, rc, "read_next");
    }
    return out;
}

static PyMethodDef Handle_methods[] = {
    {"stop", (PyCFunction)Handle_stop, METH_NOARGS,
     "Mark the handle closing: calls raise ValueError, waits leave within a slice."},
    {"free", (PyCFunction)Handle_free, METH_NOARGS,
     "Close the C handle now, or when the last call inside leaves."},
    {"send", (PyCFunction)(void (*)(void))Handle_send, METH_FASTCALL | METH_KEYWORDS,
     "send(data, timeout=None): Queue.send"},
    {"recv", (PyCFunction)(void (*)(void))Handle_recv, METH_FASTCALL | METH_KEYWORDS,
     "recv(timeout=None) -> bytes: Queue.recv"},
    {"publish", (PyCFunction)Handle_publish, METH_O, "publish(data) -> seq: Latest.publish"},
    {"read", (PyCFunction)Handle_read, METH_NOARGS, "read() -> (seq, bytes): Latest.read"},
    {"wait", (PyCFunction)(void (*)(void))Handle_wait, METH_FASTCALL | METH_KEYWORDS,
     "wait(after=None, timeout=None) -> seq: Latest.wait"},
    {"read_next", (PyCFunction)(void (*)(void))Handle_read_next, METH_FASTCALL | METH_KEYWORDS,
     "read_next(after=None, timeout=None) -> (seq, bytes): Latest.read_next"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Handle_getset[] = {
    {"ptr", (getter)Handle_get_ptr, NULL, "The C handle's address, or None once closed.", NULL},
    {"active", (getter)Handle_get_active, NULL, "Calls inside that released the GIL.", NULL},
    {"last", (getter)Handle_get_last, (setter)Handle_set_last,
     "Latest: the newest sequence returned by read/wait/read_next.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Handle_members[] = {
    {"wlock", T_OBJECT, offsetof(Handle, wlock), READONLY, "Lock of sending calls."},
    {"rlock", T_OBJECT, offsetof(Handle, rlock), READONLY, "Lock of receiving calls."},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject HandleType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "shmchan._native.Handle",
    .tp_basicsize = sizeof(Handle),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Handle(kind, address, name, max_msg): owns a libshmchan handle.",
    .tp_new = Handle_new,
    .tp_dealloc = (destructor)Handle_dealloc,
    .tp_methods = Handle_methods,
    .tp_getset = Handle_getset,
    .tp_members = Handle_members,
    .tp_weaklistoffset = offsetof(Handle, weakrefs),
};

/* ---------------------------------------------------------------- module */

static int
get_int(PyObject *d, const char *key, long long *out)
{
    PyObject *v = PyDict_GetItemString(d, key); /* borrowed */
    if (v == NULL) {
        PyErr_Format(PyExc_KeyError, "setup: %s missing", key);
        return -1;
    }
    *out = PyLong_AsLongLong(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static PyObject *
setup(PyObject *mod, PyObject *args)
{
    PyObject *funcs, *codes, *err, *forked;
    if (!PyArg_ParseTuple(args, "O!O!OO:setup", &PyDict_Type, &funcs, &PyDict_Type, &codes,
                          &err, &forked)) {
        return NULL;
    }
    struct {
        const char *name;
        void **slot;
    } table[] = {
        {"shmchan_latest_publish", (void **)&fn.latest_publish},
        {"shmchan_latest_read", (void **)&fn.latest_read},
        {"shmchan_latest_wait", (void **)&fn.latest_wait},
        {"shmchan_latest_read_next", (void **)&fn.latest_read_next},
        {"shmchan_latest_close", (void **)&fn.latest_close},
        {"shmchan_queue_send", (void **)&fn.queue_send},
        {"shmchan_queue_recv", (void **)&fn.queue_recv},
        {"shmchan_queue_close", (void **)&fn.queue_close},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        long long a;
        if (get_int(funcs, table[i].name, &a) != 0) {
            return NULL;
        }
        if (a == 0) {
            PyErr_Format(PyExc_ValueError, "setup: %s is NULL", table[i].name);
            return NULL;
        }
        *table[i].slot = (void *)(uintptr_t)a;
    }
    long long c[4];
    if (get_int(codes, "EAGAIN", &c[0]) || get_int(codes, "ETIMEDOUT", &c[1]) ||
        get_int(codes, "EINTR", &c[2]) || get_int(codes, "ESTATE", &c[3])) {
        return NULL;
    }
    E_AGAIN = (int)c[0];
    E_TIMEDOUT = (int)c[1];
    E_INTR = (int)c[2];
    E_STATE = (int)c[3];
    Py_INCREF(err);
    Py_XSETREF(error_factory, err);
    Py_INCREF(forked);
    Py_XSETREF(forked_factory, forked);
    ready = 1;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"setup", setup, METH_VARARGS,
     "setup(functions, codes, error, forked): the library's function addresses "
     "(name -> int), error codes (short name -> int), error(code, op, channel) "
     "and forked(channel) exception factories."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_native",
    "The compiled fast path of the shmchan binding (see shmchan/_native.c).", -1,
    module_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    if (PyType_Ready(&LockType) < 0 || PyType_Ready(&HandleType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) {
        return NULL;
    }
#ifndef _WIN32
    static int hooked;
    if (!hooked) {
        pthread_atfork(NULL, NULL, after_fork_child);
        hooked = 1;
    }
#endif
    Py_INCREF(&LockType);
    Py_INCREF(&HandleType);
    if (PyModule_AddObject(m, "Lock", (PyObject *)&LockType) != 0 ||
        PyModule_AddObject(m, "Handle", (PyObject *)&HandleType) != 0 ||
        PyModule_AddIntConstant(m, "SLICE_MS", SLICE_MS) != 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
