"""Queues: shmchan.Queue."""

from __future__ import annotations

import ctypes
import threading
from array import array
from ctypes import byref, c_size_t, c_void_p
from itertools import accumulate
from typing import Any, Iterable, Iterator, NamedTuple, Optional, Sequence

from . import _backend, _errors, _ffi
from ._aio import QueueEvents
from ._obj import QueueObjects
from ._wait import opening
from ._common import (
    _SLICE_C,
    BytesLike,
    Channel,
    check_int,
    FairLock,
    Info,
    Mapped,
    Name,
    Peer,
    Timeout,
    as_buffer,
    encode_name,
    peers_by_name,
    spin_value,
    writable_buffer,
)

_lib = _ffi.lib
_send = _lib.shmchan_queue_send
_recv = _lib.shmchan_queue_recv
# Without argtypes, for the hot paths: exact ctypes arguments only.
_send_f = _ffi.fast("shmchan_queue_send")
_recv_f = _ffi.fast("shmchan_queue_recv")
_send_batch = _lib.shmchan_queue_send_batch
_recv_batch = _lib.shmchan_queue_recv_batch
_recv_batch_f = _ffi.fast("shmchan_queue_recv_batch")
_NO_WAIT = _ffi.C_NO_WAIT
_string_at = ctypes.string_at

_ROLES = {None: 0, "subscriber": _ffi.SUBSCRIBE, "worker": _ffi.WORKER}
_POLICIES = {None: _ffi.POLICY_ANY, "block": _ffi.POLICY_BLOCK,
             "overwrite": _ffi.POLICY_OVERWRITE}
_BATCH_BYTES = 256 * 1024
_SEND_CHUNK = 1024  # messages packed per send_many() call into the library
_MSG_WORDS = ctypes.sizeof(_ffi.Msg) // 8


def _Batch(cap: int, max_count: int) -> tuple[Any, ...]:
    """Buffers of a recv_batch() of this size, kept by the handle."""
    buf = ctypes.create_string_buffer(cap)
    msgs = (_ffi.Msg * max_count)()
    count = c_size_t()
    words = memoryview(msgs).cast("B").cast("Q")
    return (cap, max_count, buf, c_void_p(ctypes.addressof(buf)), msgs, words, count,
            byref(count), ctypes.addressof(buf), memoryview(buf).cast("B"))


class Message(NamedTuple):
    """A received message."""

    data: bytes
    seq: int  #: the queue's sequence number of the message
    lost: int  #: overwrite mode: messages this reader missed just before it


def _pack(items: Sequence[BytesLike]) -> tuple[bytes, "array[int]"]:
    """The items' bytes back to back, and a shmchan_msg array (as u64 words:
    data, len, seq, lost, token) pointing into them; the bytes must outlive
    the array's use."""
    if all(type(m) is bytes for m in items):
        lens = list(map(len, items))
    else:
        lens = [memoryview(m).nbytes for m in items]
    blob = b"".join(items)
    base = ctypes.cast(ctypes.c_char_p(blob), c_void_p).value or 0
    descs = array("Q", bytes(8 * _MSG_WORDS * len(items)))
    descs[0::_MSG_WORDS] = array("Q", [base + o for o in accumulate(lens[:-1], initial=0)])
    descs[1::_MSG_WORDS] = array("Q", lens)
    return blob, descs


def _align8(n: int) -> int:
    return (n + 7) & ~7


class Queue(Channel, QueueObjects, QueueEvents):
    """A queue: a bounded ring of variable-length messages with any number
    of writers, broadcast subscribers and competing workers.

    Every handle not opened read-only can send. A handle opened with
    role="subscriber" receives every message (from the newest on, or with
    start="oldest" from the oldest still held); role="worker" competes with
    the other workers, each message going to exactly one of them. In block
    policy a reader's position holds writers back until it consumes or
    closes; in overwrite policy writers never wait and slow readers learn
    how many messages they lost (Message.lost).

    A Queue object may be shared by threads. Its sending calls (send,
    send_many, reserve and the reservation's commit/abort) are serialised
    among themselves, and so are its receiving calls (recv*, peek, the
    view's release, fileno and arm); a sending and a receiving thread never wait for each
    other, so one handle serves a thread that publishes while another
    blocks in recv. Open one handle per thread for parallel receiving.
    """

    _kind = "queue"

    def __init__(
        self,
        name: Name,
        *,
        create: bool = False,
        exclusive: bool = False,
        readonly: bool = False,
        file: Optional[bool] = None,
        role: Optional[str] = None,
        start: str = "newest",
        max_msg: int = 0,
        capacity: int = 0,
        policy: Optional[str] = None,
        max_readers: int = 0,
        max_writers: int = 0,
        mode: int = 0,
        spin_ns: Optional[int] = None,
        global_namespace: bool = False,
    ) -> None:
        """Open (create=True: or create) the queue called name.

        Args:
            name: channel name, or a path for a file-backed queue (persists;
                a ``pathlib.Path`` implies file=True).
            create, exclusive, readonly, file, mode, spin_ns, global_namespace:
                as for :class:`shmchan.Latest`.
            role: None (send only), "subscriber" or "worker".
            start: subscribers: "newest" (only messages sent from now on) or
                "oldest" (replay what the ring still holds).
            max_msg: largest message (create default 4096; 0 on open: any).
            capacity: ring bytes, rounded up to a power of two (default 1 MiB).
            policy: "block" (default) or "overwrite"; None on open: any.
            max_readers, max_writers: slot counts (default 64 each).
        """
        path, sname, is_file = encode_name(name, file)
        super().__init__(sname, path, is_file)
        if role not in _ROLES:
            raise ValueError("role must be None, 'subscriber' or 'worker'")
        if start not in ("newest", "oldest"):
            raise ValueError("start must be 'newest' or 'oldest'")
        if start == "oldest" and role != "subscriber":
            raise ValueError("start='oldest' applies to subscribers")
        if policy not in _POLICIES:
            raise ValueError("policy must be None, 'block' or 'overwrite'")
        if exclusive and not create:
            raise ValueError("exclusive=True needs create=True")
        o = _ffi.new_opts()
        o.flags = (
            (_ffi.CREATE if create else 0)
            | (_ffi.EXCL if exclusive else 0)
            | (_ffi.RDONLY if readonly else 0)
            | (_ffi.FILE if is_file else 0)
            | (_ffi.GLOBAL if global_namespace else 0)
            | _ROLES[role]
            | (_ffi.OLDEST if start == "oldest" else 0)
        )
        o.mode = check_int("mode", mode, "u32")
        o.policy = _POLICIES[policy]
        o.max_msg = check_int("max_msg", max_msg)
        o.capacity = check_int("capacity", capacity)
        o.max_readers = check_int("max_readers", max_readers, "u32")
        o.max_writers = check_int("max_writers", max_writers, "u32")
        o.spin_ns = spin_value(spin_ns)
        h = c_void_p()
        rc = _lib.shmchan_queue_open(path, byref(o), byref(h))
        if rc != 0:
            raise _errors.error(rc, "open", sname)
        self._adopt(h, _lib.shmchan_queue_close)
        self._max_msg: int = _lib.shmchan_queue_max_msg(h)
        self._capc = c_size_t(self._max_msg)
        self._role = role
        self._readonly = readonly
        # One lock per direction, held for the whole call (shmchan.h: one
        # thread may send while another receives on a queue handle). Fair, so
        # that a thread looping on one direction cannot starve another.
        self._rlock: Any = FairLock()  # receiving, peeking
        self._wlock: Any = FairLock()  # sending, reserving (until commit/abort)
        self._buf: Optional[ctypes.Array[ctypes.c_char]] = None
        self._bufmv = memoryview(b"")
        self._bufp = c_void_p()
        self._len = c_size_t()
        self._lenref = byref(self._len)
        self._msg = _ffi.Msg()
        self._msgref = byref(self._msg)
        self._reservation: Optional[QueueReservation] = None
        self._peeked: Optional[QueueView] = None
        self._batch: Optional[tuple[Any, ...]] = None
        # The compiled module (if loaded) takes over send and recv.
        _backend.attach(self, _backend.QUEUE)

    @classmethod
    def create(
        cls,
        name: Name,
        *,
        max_msg: int = 0,
        capacity: int = 0,
        policy: Optional[str] = None,
        max_readers: int = 0,
        max_writers: int = 0,
        role: Optional[str] = None,
        start: str = "newest",
        exclusive: bool = False,
        mode: int = 0,
        file: Optional[bool] = None,
        spin_ns: Optional[int] = None,
        global_namespace: bool = False,
    ) -> "Queue":
        """Create the queue, or open it if it exists (exclusive=True: fail
        with AlreadyExists); geometry given must match an existing queue's."""
        return cls(name, create=True, exclusive=exclusive, file=file, role=role, start=start,
                   max_msg=max_msg, capacity=capacity, policy=policy,
                   max_readers=max_readers, max_writers=max_writers, mode=mode,
                   spin_ns=spin_ns, global_namespace=global_namespace)

    @classmethod
    def open(
        cls,
        name: Name,
        *,
        role: Optional[str] = None,
        start: str = "newest",
        readonly: bool = False,
        file: Optional[bool] = None,
        spin_ns: Optional[int] = None,
        global_namespace: bool = False,
        wait: Optional[float] = None,
    ) -> "Queue":
        """Open an existing queue (NotFound if there is none; with wait,
        after waiting up to that many seconds for it to be created)."""
        return opening(lambda: cls(name, role=role, start=start, readonly=readonly, file=file,
                                   spin_ns=spin_ns, global_namespace=global_namespace),
                       *encode_name(name, file)[::2], wait)

    @classmethod
    def subscribe(cls, name: Name, *, oldest: bool = False, **kw: object) -> "Queue":
        """Open an existing queue as a subscriber (oldest=True: replay;
        wait=seconds: wait that long for it to be created)."""
        return cls.open(name, role="subscriber", start="oldest" if oldest else "newest",
                        **kw)  # type: ignore[arg-type]

    @classmethod
    def worker(cls, name: Name, **kw: object) -> "Queue":
        """Open an existing queue as a competing worker (wait=seconds: wait
        that long for it to be created)."""
        return cls.open(name, role="worker", **kw)  # type: ignore[arg-type]

    # -------------------------------------------------------- properties
    @property
    def max_msg(self) -> int:
        return self._max_msg

    @property
    def role(self) -> Optional[str]:
        """None (send only), "subscriber" or "worker"."""
        return self._role

    def info(self) -> Info:
        """A snapshot of the queue's counters."""
        c = _ffi.Info()
        c.struct_size = ctypes.sizeof(c)
        h = self._enter()
        try:  # no lock: info runs beside sends and receives (shmchan.h)
            rc = _lib.shmchan_queue_info(h, byref(c))
        finally:
            self._leave()
        if rc != 0:
            self._raise(rc, "info")
        return Info._from_c(c)

    def peers(self) -> list[Peer]:
        """The queue's registered readers and writers (looked up by name)."""
        if self.closed:
            raise self._closed_error()
        return peers_by_name(self._path, self._name, self._file)

    # ----------------------------------------------------------- sending
    def send(self, data: BytesLike, timeout: Timeout = None) -> None:
        """Send data (any bytes-like object) as one message. In block policy
        waits up to timeout seconds for space (None: for ever; 0: raise
        WouldBlock at once); in overwrite policy never waits."""
        if type(data) is bytes:
            ptr, n = data, len(data)
        else:
            ptr, n = as_buffer(data)
        if self._reservation is not None:
            self._no_reservation_here("send")
        active = self._active
        active.append(None)  # inlined _enter()/_leave(): the hot path
        try:
            h = self._h
            if h is None or self._closing:
                raise self._closed_error()
            lock = self._wlock
            lock.acquire()  # cheaper than "with" on the hot path
            try:
                if timeout is None:
                    rc = _send_f(h, ptr, c_size_t(n), _SLICE_C)
                    if rc != 0:
                        rc = self._blocking(lambda ms: _send(h, ptr, n, ms), None, rc)
                elif timeout == 0:
                    rc = _send_f(h, ptr, c_size_t(n), _NO_WAIT)
                else:
                    rc = self._blocking(lambda ms: _send(h, ptr, n, ms), timeout)
            finally:
                lock.release()
        finally:
            active.pop()
            if self._closing and not active:
                self._free()
        if rc != 0:
            self._raise(rc, "send")

    def send_many(self, messages: Iterable[BytesLike], timeout: Timeout = None) -> int:
        """Send each of messages (bytes-like objects) as one message, in
        order: as send() in a loop, but with one call into the library for
        as many as fit, waking sleeping readers once per call. The cheapest
        way to send many small messages. timeout applies to each wait for
        space, as in send(); returns how many went, fewer than all only when
        a wait ran out (timeout 0: those that fitted at once). A message
        larger than max_msg raises MessageTooLarge before any of its chunk
        (1024 messages) goes."""
        items = messages if isinstance(messages, (list, tuple)) else list(messages)
        if self._reservation is not None:
            self._no_reservation_here("send_many")
        done, rc = 0, 0
        h = self._enter()
        try:
            with self._wlock:
                sent = c_size_t()
                sref = byref(sent)
                for start in range(0, len(items), _SEND_CHUNK):
                    chunk = items[start: start + _SEND_CHUNK]
                    blob, descs = _pack(chunk)  # descs point into blob: both live on
                    addr, count = descs.buffer_info()[0], len(chunk)
                    at = 0
                    while at < count and rc == 0:
                        p = c_void_p(addr + 8 * _MSG_WORDS * at)
                        left = count - at
                        rc = self._blocking(lambda ms: _send_batch(h, p, left, ms, sref),
                                            timeout)
                        at += sent.value
                    done += at
                    if rc != 0:
                        break
        finally:
            self._leave()
        if rc in (_errors.EAGAIN, _errors.ETIMEDOUT) and timeout is not None:
            return done
        if rc != 0:
            self._raise(rc, "send_many")
        return done

    def reserve(self, size: int, timeout: Timeout = None) -> "QueueReservation":
        """Zero-copy send: reserve size bytes in the ring and return a
        reservation whose ``data`` is a writable memoryview over them. Fill
        it, then commit() (possibly fewer bytes) or abort(); a ``with`` block
        commits when it ends normally and aborts on an exception."""
        size = check_int("size", size, "size")
        self._no_reservation_here("reserve")
        h = self._enter()
        try:
            self._wlock.acquire()
            ptr = c_void_p()
            pref = byref(ptr)
            try:
                rc = self._blocking(lambda ms: _lib.shmchan_queue_reserve(h, size, ms, pref),
                                    timeout)
            except BaseException:
                self._wlock.release()
                raise
            if rc != 0:
                self._wlock.release()
                self._raise(rc, "reserve")
            res = QueueReservation(self, ptr.value or 0, size)
            self._reservation = res
            return res
        finally:
            self._leave()

    # --------------------------------------------------------- receiving
    def _recv(self, timeout: Timeout, info: bool) -> tuple[Any, int]:
        """Receive into the handle's buffer: (bytes or Message, return code)."""
        active = self._active
        active.append(None)  # inlined _enter()/_leave(): the hot path
        try:
            h = self._h
            if h is None or self._closing:
                raise self._closed_error()
            lock = self._rlock
            lock.acquire()  # cheaper than "with" on the hot path
            try:
                if self._buf is None:
                    self._buffer()
                buf, cap, lenref, msgref = self._bufp, self._max_msg, self._lenref, self._msgref
                if timeout is None:
                    rc = _recv_f(h, buf, self._capc, _SLICE_C, lenref, msgref)
                    if rc != 0:
                        rc = self._blocking(lambda ms: _recv(h, buf, cap, ms, lenref, msgref),
                                            None, rc)
                elif timeout == 0:
                    rc = _recv_f(h, buf, self._capc, _NO_WAIT, lenref, msgref)
                else:
                    rc = self._blocking(lambda ms: _recv(h, buf, cap, ms, lenref, msgref),
                                        timeout)
                if rc != 0:
                    data = None
                elif info:
                    m = self._msg
                    data = Message(self._bufmv[: self._len.value].tobytes(), m.seq, m.lost)
                else:
                    data = self._bufmv[: self._len.value].tobytes()
            finally:
                lock.release()
        finally:
            active.pop()
            if self._closing and not active:
                self._free()
        return data, rc

    def recv_msg(self, timeout: Timeout = None) -> Message:
        """Receive the next message with its sequence number and loss count.
        Waits up to timeout seconds (None: for ever; 0: raise WouldBlock at
        once if there is none); raises TimedOut when the time is up."""
        msg, rc = self._recv(timeout, True)
        if rc != 0:
            self._raise(rc, "recv")
        return msg  # type: ignore[no-any-return]

    def recv(self, timeout: Timeout = None) -> bytes:
        """Receive the next message's bytes (see recv_msg for timeouts)."""
        # _recv() inlined, without the message info: the hot path.
        active = self._active
        active.append(None)
        try:
            h = self._h
            if h is None or self._closing:
                raise self._closed_error()
            lock = self._rlock
            lock.acquire()
            try:
                if self._buf is None:
                    self._buffer()
                bufp, cap, lenref = self._bufp, self._max_msg, self._lenref
                if timeout is None:
                    rc = _recv_f(h, bufp, self._capc, _SLICE_C, lenref, None)
                    if rc != 0:
                        rc = self._blocking(lambda ms: _recv(h, bufp, cap, ms, lenref, None),
                                            None, rc)
                elif timeout == 0:
                    rc = _recv_f(h, bufp, self._capc, _NO_WAIT, lenref, None)
                else:
                    rc = self._blocking(lambda ms: _recv(h, bufp, cap, ms, lenref, None),
                                        timeout)
                if rc == 0:
                    data = self._bufmv[: self._len.value].tobytes()
            finally:
                lock.release()
        finally:
            active.pop()
            if self._closing and not active:
                self._free()
        if rc != 0:
            self._raise(rc, "recv")
        return data

    def recv_into(self, buffer: BytesLike, timeout: Timeout = None) -> Message:
        """Receive the next message into a writable buffer; returns a Message
        whose data is a memoryview of the bytes written. If it does not fit,
        raises MessageTooLarge with ``.size`` and leaves it in the queue."""
        ptr, cap = writable_buffer(buffer)
        n = c_size_t()
        m = _ffi.Msg()
        nref, mref = byref(n), byref(m)
        h = self._enter()
        try:
            with self._rlock:
                rc = self._blocking(lambda ms: _recv(h, ptr, cap, ms, nref, mref), timeout)
        finally:
            self._leave()
        if rc != 0:
            e = _errors.error(rc, "recv", self._name)
            if rc == _errors.EMSGSIZE:
                e.size = n.value  # type: ignore[attr-defined]
            raise e
        return Message(memoryview(buffer).cast("B")[: n.value], m.seq, m.lost)  # type: ignore

    def recv_batch(self, max_count: int = 64, timeout: Timeout = None,
                   max_bytes: int = _BATCH_BYTES) -> list[Message]:
        """Receive up to max_count messages in one call, waiting (as recv_msg)
        only for the first; at most about max_bytes are copied at once. The
        cheapest way to receive many small messages."""
        max_count = check_int("max_count", max_count, "size")
        max_bytes = check_int("max_bytes", max_bytes, "size")
        if max_count <= 0:
            raise ValueError("max_count must be positive")
        cap = max(_align8(self._max_msg), min(max_bytes, max_count * _align8(self._max_msg)))
        h = self._enter()
        try:
            with self._rlock:
                b = self._batch
                if b is None or b[0] != cap or b[1] != max_count:
                    b = self._batch = _Batch(cap, max_count)
                _, _, buf, bufp, msgs, words, count, cref, base, mv = b
                if timeout is None:
                    rc = _recv_batch_f(h, bufp, c_size_t(cap), c_size_t(max_count),
                                       _SLICE_C, msgs, cref)
                    if rc != 0:
                        rc = self._blocking(
                            lambda ms: _recv_batch(h, buf, cap, max_count, ms, msgs, cref), None,
                            rc)
                else:
                    rc = self._blocking(
                        lambda ms: _recv_batch(h, buf, cap, max_count, ms, msgs, cref), timeout)
                if rc == 0:
                    # The shmchan_msg array read as u64 words: data, len, seq, lost, token.
                    w = words[: 5 * count.value].tolist()
                    new = tuple.__new__
                    out = [new(Message, (mv[w[i] - base: w[i] - base + w[i + 1]].tobytes(),
                                         w[i + 2], w[i + 3]))
                           for i in range(0, len(w), 5)]
        finally:
            self._leave()
        if rc == _errors.EAGAIN and timeout == 0:
            return []  # nothing waiting: an empty batch, as a non-blocking poll expects
        if rc != 0:
            self._raise(rc, "recv_batch")
        return out

    def iter_messages(self, timeout: Timeout = None) -> Iterator[Message]:
        """Yield received Messages until a receive times out (never when
        timeout is None)."""
        while True:
            try:
                m = self.recv_msg(timeout)
            except (_errors.exported["ETIMEDOUT"], _errors.exported["EAGAIN"]):
                return
            yield m

    def __iter__(self) -> Iterator[bytes]:
        """Receive for ever: ``for data in queue: ...`` (Ctrl-C stops it)."""
        while True:
            yield self.recv(None)

    def peek(self, timeout: Timeout = None) -> "QueueView":
        """Zero-copy receive: the next message in place, as a read-only
        memoryview (``.data``), valid until release() (or the end of a
        ``with`` block), which consumes it. In overwrite policy release()
        raises Stale if a writer overwrote the bytes meanwhile."""
        m = _ffi.Msg()
        mref = byref(m)
        h = self._enter()
        try:
            with self._rlock:
                rc = self._blocking(lambda ms: _lib.shmchan_queue_peek(h, ms, mref), timeout)
                if rc == 0:
                    v = QueueView(self, m)
                    self._peeked = v
        finally:
            self._leave()
        if rc != 0:
            self._raise(rc, "peek")
        return v


class QueueView(Mapped):
    """A received message in place (see Queue.peek)."""

    def __init__(self, channel: Queue, msg: _ffi.Msg) -> None:
        self._msg = msg
        self._done = False
        super().__init__(channel, msg.data or 0, msg.len)

    @property
    def seq(self) -> int:
        return int(self._msg.seq)

    @property
    def lost(self) -> int:
        """Overwrite policy: messages missed just before this one."""
        return int(self._msg.lost)

    def release(self) -> None:
        """Consume the message and invalidate ``data``. Raises Stale if the
        bytes were overwritten while held (overwrite policy): discard what
        was derived from them. Idempotent."""
        if self._done:
            return
        self._unmap()  # BufferError while derived buffers live: nothing done
        self._done = True
        q: Queue = self._channel  # type: ignore[assignment]
        h = q._enter()
        try:
            with q._rlock:  # a receiving call
                rc = _lib.shmchan_queue_release(h)
        finally:
            q._peeked = None
            q._leave()
        if rc != 0:
            raise _errors.error(rc, "release", q.name)

    _forget = release

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.release()
        else:
            try:
                self.release()
            except _errors.Error:
                pass  # the exception in flight matters more

    def __repr__(self) -> str:
        state = "released" if self._done else f"{self._length} bytes"
        return f"<shmchan.QueueView seq={self.seq} {state}>"


class QueueReservation(Mapped):
    """Space reserved in a queue's ring, written in place (see Queue.reserve)."""

    _readonly = False

    def __init__(self, channel: Queue, address: int, length: int) -> None:
        self._thread = threading.get_ident()
        self._done = False
        super().__init__(channel, address, length)

    def commit(self, length: Optional[int] = None) -> None:
        """Send the first length bytes (default: all reserved) as a message."""
        n = self._length if length is None else check_int("length", length, "size")
        if not 0 <= n <= self._length:
            raise _errors.from_code(_errors.EMSGSIZE, "commit", self._channel.name)
        self._finish(True, n)

    def abort(self) -> None:
        """Give the space back; no message is sent."""
        self._finish(False, 0)

    def _finish(self, commit: bool, n: int) -> None:
        op = "commit" if commit else "abort"
        if self._done:
            raise _errors.from_code(_errors.exported["ESTATE"].code, op, self._channel.name)
        self._unmap()
        self._done = True
        q: Queue = self._channel  # type: ignore[assignment]
        h = q._enter()
        try:  # under the wlock that reserve() took
            if commit:
                rc = _lib.shmchan_queue_commit(h, n)
                if rc != 0:
                    _lib.shmchan_queue_abort(h)
            else:
                rc = _lib.shmchan_queue_abort(h)
        finally:
            q._reservation = None
            q._wlock.release()
            q._leave()
        if rc != 0:
            raise _errors.error(rc, op, q.name)

    def _forget(self) -> None:
        if not self._done:
            self.abort()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._done:
            return
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def __repr__(self) -> str:
        state = "done" if self._done else f"{self._length} bytes"
        return f"<shmchan.QueueReservation {state}>"
