"""Latest-value channels: shmchan.Latest."""

from __future__ import annotations

import ctypes
import threading
from ctypes import byref, c_size_t, c_uint64, c_void_p
from typing import Iterator, Optional

from . import _backend, _errors, _ffi
from ._aio import LatestEvents
from ._obj import LatestObjects
from ._wait import opening
from ._common import (
    _SLICE_C,
    BytesLike,
    Channel,
    check_int,
    Info,
    Mapped,
    Name,
    Timeout,
    as_buffer,
    encode_name,
    spin_value,
    writable_buffer,
)

_lib = _ffi.lib
_read = _lib.shmchan_latest_read
_read_next = _lib.shmchan_latest_read_next
_wait = _lib.shmchan_latest_wait
_string_at = ctypes.string_at
# Without argtypes, for the hot paths: exact ctypes arguments only.
_publish_f = _ffi.fast("shmchan_latest_publish")
_read_f = _ffi.fast("shmchan_latest_read")
_read_next_f = _ffi.fast("shmchan_latest_read_next")
_wait_f = _ffi.fast("shmchan_latest_wait")


class Latest(Channel, LatestObjects, LatestEvents):
    """A latest-value channel: writers publish whole messages, readers get the
    newest complete one with its sequence number (1, 2, ...) and can sleep
    until a newer one exists.

    Open one with :meth:`create` or :meth:`open` (or the constructor, whose
    keywords are the union of both). Objects are context managers; close()
    releases the handle, never the channel (see :func:`shmchan.unlink`).

    A Latest object may be shared by threads: calls on it are safe from any
    thread, writes through one object are serialised.
    """

    _kind = "latest-value channel"

    def __init__(
        self,
        name: Name,
        *,
        create: bool = False,
        exclusive: bool = False,
        readonly: bool = False,
        file: Optional[bool] = None,
        max_msg: int = 0,
        mode: int = 0,
        spin_ns: Optional[int] = None,
        global_namespace: bool = False,
    ) -> None:
        """Open (create=True: or create) the channel called name.

        Args:
            name: a channel name ([A-Za-z0-9._-], at most 22 bytes) or, for a
                file-backed channel, a path (a ``pathlib.Path`` implies file=True).
            create: create the channel if it does not exist.
            exclusive: with create, fail with AlreadyExists if it exists.
            readonly: map read-only: read, view and wait only.
            file: the name is a file path (None: True for os.PathLike names).
            max_msg: largest message in bytes; when creating 0 means 4096,
                when opening a non-zero value must match the channel's.
            mode: permission bits at creation (0: 0o600).
            spin_ns: busy-wait before sleeping, in ns (None: library default
                of 20 µs; 0: sleep at once).
            global_namespace: Windows: the Global\\ namespace.
        """
        path, sname, is_file = encode_name(name, file)
        super().__init__(sname, path, is_file)
        if exclusive and not create:
            raise ValueError("exclusive=True needs create=True")
        o = _ffi.new_opts()
        o.flags = (
            (_ffi.CREATE if create else 0)
            | (_ffi.EXCL if exclusive else 0)
            | (_ffi.RDONLY if readonly else 0)
            | (_ffi.FILE if is_file else 0)
            | (_ffi.GLOBAL if global_namespace else 0)
        )
        o.mode = check_int("mode", mode, "u32")
        o.max_msg = check_int("max_msg", max_msg)
        o.spin_ns = spin_value(spin_ns)
        h = c_void_p()
        rc = _lib.shmchan_latest_open(path, byref(o), byref(h))
        if rc != 0:
            raise _errors.error(rc, "open", sname)
        self._adopt(h, _lib.shmchan_latest_close)
        self._max_msg: int = _lib.shmchan_latest_max_msg(h)
        self._capc = c_size_t(self._max_msg)
        self._readonly = readonly
        self._last = 0
        # Copy-out buffer and out-parameters, used by one thread at a time
        # (others fall back to their own); allocated on first read.
        self._rlock = threading.Lock()
        self._buf: Optional[ctypes.Array[ctypes.c_char]] = None
        self._bufmv = memoryview(b"")
        self._bufp = c_void_p()
        self._len = c_size_t()
        self._seq = c_uint64()
        self._lenref = byref(self._len)
        self._seqref = byref(self._seq)
        # Writes through this object are serialised; a reservation holds it.
        self._wlock = threading.Lock()
        self._wseq = c_uint64()
        self._wseqref = byref(self._wseq)
        self._reservation: Optional[LatestReservation] = None
        # The compiled module (if loaded) takes over publish/read/wait/read_next.
        _backend.attach(self, _backend.LATEST)

    @classmethod
    def create(
        cls,
        name: Name,
        *,
        max_msg: int = 0,
        exclusive: bool = False,
        mode: int = 0,
        file: Optional[bool] = None,
        spin_ns: Optional[int] = None,
        global_namespace: bool = False,
    ) -> "Latest":
        """Create the channel, or open it if it exists (exclusive=True: fail
        with AlreadyExists). An existing channel must have the same max_msg
        if one is given (GeometryMismatch otherwise)."""
        return cls(name, create=True, exclusive=exclusive, max_msg=max_msg, mode=mode,
                   file=file, spin_ns=spin_ns, global_namespace=global_namespace)

    @classmethod
    def open(
        cls,
        name: Name,
        *,
        readonly: bool = False,
        max_msg: int = 0,
        file: Optional[bool] = None,
        spin_ns: Optional[int] = None,
        global_namespace: bool = False,
        wait: Optional[float] = None,
    ) -> "Latest":
        """Open an existing channel (NotFound if there is none; with wait,
        after waiting up to that many seconds for it to be created)."""
        return opening(lambda: cls(name, readonly=readonly, max_msg=max_msg, file=file,
                                   spin_ns=spin_ns, global_namespace=global_namespace),
                       *encode_name(name, file)[::2], wait)

    # -------------------------------------------------------- properties
    @property
    def max_msg(self) -> int:
        """Largest message, in bytes."""
        return self._max_msg

    @property
    def readonly(self) -> bool:
        return self._readonly

    @property
    def seq(self) -> int:
        """Newest published sequence number (0: nothing published yet)."""
        h = self._enter()
        try:
            return int(_lib.shmchan_latest_seq(h))
        finally:
            self._leave()

    @property
    def last_seen(self) -> int:
        """The newest sequence this object returned (read, wait, view...):
        what wait() and read_next() wait to see exceeded by default."""
        return self._last

    def info(self) -> Info:
        """A snapshot of the channel's counters (looked up by name)."""
        return self._info_by_name()

    # ----------------------------------------------------------- writing
    def publish(self, data: BytesLike) -> int:
        """Publish data (any bytes-like object) as the newest message and
        return its sequence number. Never waits for readers.

        Raises MessageTooLarge, ReadOnly, BadState (this thread holds a
        reservation from begin())."""
        if type(data) is bytes:
            ptr, n = data, len(data)
        else:
            ptr, n = as_buffer(data)
        if self._reservation is not None:
            self._no_reservation_here("publish")
        active = self._active
        active.append(None)  # inlined _enter()/_leave(): the hot path
        try:
            h = self._h
            if h is None or self._closing:
                raise self._closed_error()
            lock = self._wlock
            lock.acquire()  # cheaper than "with" on the hot path
            try:
                rc = _publish_f(h, ptr, c_size_t(n), self._wseqref)
                seq = self._wseq.value
            finally:
                lock.release()
        finally:
            active.pop()
            if self._closing and not active:
                self._free()
        if rc != 0:
            self._raise(rc, "publish")
        return seq

    def begin(self, length: Optional[int] = None) -> "LatestReservation":
        """Zero-copy publish: a reservation whose ``data`` is a writable
        memoryview of length (default max_msg) bytes in a buffer no reader
        sees yet. Fill it, then ``commit()`` (the ``with`` block commits when
        it ends normally and aborts on an exception) or ``abort()``.

        Holds the channel's writer lock until then: other writers wait."""
        if length is None:
            length = self._max_msg
        length = check_int("length", length, "size")
        if not 0 <= length <= self._max_msg:
            raise _errors.from_code(_errors.EMSGSIZE, "begin", self._name)
        self._no_reservation_here("begin")
        h = self._enter()
        try:
            self._wlock.acquire()
            ptr = c_void_p()
            try:
                rc = _lib.shmchan_latest_begin(h, byref(ptr))
            except BaseException:
                self._wlock.release()
                raise
            if rc != 0:
                self._wlock.release()
                self._raise(rc, "begin")
            res = LatestReservation(self, ptr.value or 0, length)
            self._reservation = res
            return res
        finally:
            self._leave()

    def commit(self, length: Optional[int] = None) -> int:
        """Commit the reservation from begin(); see LatestReservation.commit."""
        res = self._reservation
        if res is None:
            raise _errors.from_code(_errors.exported["ESTATE"].code, "commit", self._name)
        return res.commit(length)

    def abort(self) -> None:
        """Abort the reservation from begin()."""
        res = self._reservation
        if res is None:
            raise _errors.from_code(_errors.exported["ESTATE"].code, "abort", self._name)
        res.abort()

    # ----------------------------------------------------------- reading
    def read(self) -> tuple[int, bytes]:
        """The newest complete message as (sequence, bytes). Never torn.

        Raises WouldBlock (a BlockingIOError) if nothing was published yet."""
        active = self._active
        active.append(None)
        try:
            h = self._h
            if h is None or self._closing:
                raise self._closed_error()
            lock = self._rlock
            if lock.acquire(False):
                try:
                    if self._buf is None:
                        self._buffer()
                    rc = _read_f(h, self._bufp, self._capc, self._lenref, self._seqref)
                    if rc == 0:
                        seq, data = self._seq.value, self._bufmv[: self._len.value].tobytes()
                finally:
                    lock.release()
            else:  # another thread uses the buffer: one of our own
                buf = ctypes.create_string_buffer(max(self._max_msg, 1))
                n, s = c_size_t(), c_uint64()
                rc = _read(h, buf, self._max_msg, byref(n), byref(s))
                if rc == 0:
                    seq, data = s.value, _string_at(buf, n.value)
        finally:
            active.pop()
            if self._closing and not active:
                self._free()
        if rc != 0:
            self._raise(rc, "read")
        self._last = seq
        return seq, data

    def read_into(self, buffer: BytesLike) -> tuple[int, int]:
        """Copy the newest message into a writable buffer (bytearray,
        memoryview, numpy array...): returns (sequence, length). Raises
        MessageTooLarge (with ``.size``, the length needed) if it does not fit."""
        ptr, cap = writable_buffer(buffer)
        n, s = c_size_t(), c_uint64()
        h = self._enter()
        try:
            rc = _read(h, ptr, cap, byref(n), byref(s))
        finally:
            self._leave()
        if rc != 0:
            e = _errors.error(rc, "read", self._name)
            if rc == _errors.EMSGSIZE:
                e.size = n.value  # type: ignore[attr-defined]
            raise e
        self._last = s.value
        return s.value, n.value

    def wait(self, after: Optional[int] = None, timeout: Timeout = None) -> int:
        """Sleep until a message newer than ``after`` exists; return the
        newest sequence. after=None: the newest this object returned
        (:attr:`last_seen`). timeout in seconds; None waits for ever.

        Raises TimedOut (a TimeoutError), or WouldBlock if timeout=0 and
        nothing newer exists. Ctrl-C raises KeyboardInterrupt promptly."""
        after = self._last if after is None else check_int("after", after)
        s = c_uint64()
        sref = byref(s)
        h = self._enter()
        try:
            if timeout is None:  # first slice inline: the common, fast case
                rc = self._blocking(lambda ms: _wait(h, after, ms, sref), None,
                                    _wait_f(h, c_uint64(after), _SLICE_C, sref))
            else:
                rc = self._blocking(lambda ms: _wait(h, after, ms, sref), timeout)
        finally:
            self._leave()
        if rc != 0:
            self._raise(rc, "wait")
        self._last = s.value
        return s.value

    def read_next(self, after: Optional[int] = None, timeout: Timeout = None) -> tuple[int, bytes]:
        """Wait as wait() does, then read the newest message: (sequence, bytes).
        Messages published in between are skipped (latest-value semantics)."""
        after = self._last if after is None else check_int("after", after)
        h = self._enter()
        try:
            cap = self._max_msg
            if self._rlock.acquire(False):
                try:
                    self._buffer()
                    buf, lenref, seqref = self._bufp, self._lenref, self._seqref
                    n, s = self._len, self._seq
                    first = None
                    if timeout is None:
                        first = _read_next_f(h, c_uint64(after), buf, self._capc, _SLICE_C,
                                             lenref, seqref)
                    rc = self._blocking(
                        lambda ms: _read_next(h, after, buf, cap, ms, lenref, seqref), timeout,
                        first)
                    if rc == 0:
                        seq, data = s.value, self._bufmv[: n.value].tobytes()
                finally:
                    self._rlock.release()
            else:
                buf = ctypes.create_string_buffer(max(cap, 1))
                n, s = c_size_t(), c_uint64()
                lenref, seqref = byref(n), byref(s)
                rc = self._blocking(
                    lambda ms: _read_next(h, after, buf, cap, ms, lenref, seqref), timeout)
                if rc == 0:
                    seq, data = s.value, _string_at(buf, n.value)
        finally:
            self._leave()
        if rc != 0:
            self._raise(rc, "read_next")
        self._last = seq
        return seq, data

    def updates(self, after: Optional[int] = None,
                timeout: Timeout = None) -> Iterator[tuple[int, bytes]]:
        """Yield (sequence, bytes) each time a newer message exists, skipping
        any published in between. Ends when a wait times out (never when
        timeout is None)."""
        seq = self._last if after is None else check_int("after", after)
        while True:
            try:
                seq, data = self.read_next(seq, timeout)
            except (_errors.exported["ETIMEDOUT"], _errors.exported["EAGAIN"]):
                return
            yield seq, data

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        """updates() for ever: ``for seq, data in channel: ...``."""
        return self.updates()

    def view(self) -> "LatestView":
        """Zero-copy read: the newest message in place, as a read-only
        memoryview (``.data``) with its sequence (``.seq``).

        A later publish may overwrite the bytes while you look at them: call
        ``check()`` (raises Stale) or ``valid()`` after using them. release()
        (or the end of a ``with`` block) invalidates the memoryview."""
        m = _ffi.Msg()
        h = self._enter()
        try:
            rc = _lib.shmchan_latest_view(h, byref(m))
        finally:
            self._leave()
        if rc != 0:
            self._raise(rc, "view")
        self._last = m.seq
        return LatestView(self, m)



_backend.install(Latest)  # last_seen kept by the compiled handle, if any

class LatestView(Mapped):
    """The newest message of a Latest channel, in place (see Latest.view)."""

    def __init__(self, channel: Latest, msg: _ffi.Msg) -> None:
        self._msg = msg
        super().__init__(channel, msg.data or 0, msg.len)

    @property
    def seq(self) -> int:
        """Sequence number of the viewed message."""
        return int(self._msg.seq)

    def valid(self) -> bool:
        """Whether the message was not overwritten since view(): what was
        derived from ``data`` before this call is a whole, untorn message."""
        return self._check() == 0

    def check(self) -> None:
        """Raise Stale if the message was overwritten since view()."""
        rc = self._check()
        if rc != 0:
            raise _errors.error(rc, "view", self._channel.name)

    def _check(self) -> int:
        if self._mv is None:
            raise ValueError("zero-copy view already released")
        ch = self._channel
        h = ch._enter()
        try:
            return int(_lib.shmchan_latest_view_check(h, byref(self._msg)))
        finally:
            ch._leave()

    def release(self) -> None:
        """Invalidate ``data``. Idempotent."""
        self._unmap()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "released" if self._mv is None else f"{self._length} bytes"
        return f"<shmchan.LatestView seq={self.seq} {state}>"


class LatestReservation(Mapped):
    """A message being written in place (see Latest.begin)."""

    _readonly = False

    def __init__(self, channel: Latest, address: int, length: int) -> None:
        self._thread = threading.get_ident()
        self._done = False
        super().__init__(channel, address, length)

    def commit(self, length: Optional[int] = None) -> int:
        """Publish the first length bytes (default: the reserved length) and
        return the sequence number. ``data`` is invalid afterwards."""
        n = self._length if length is None else check_int("length", length, "size")
        if not 0 <= n <= self._channel.max_msg:  # type: ignore[attr-defined]
            raise _errors.from_code(_errors.EMSGSIZE, "commit", self._channel.name)
        return self._finish(True, n)

    def abort(self) -> None:
        """Drop the reservation; readers never see it."""
        self._finish(False, 0)

    def _finish(self, commit: bool, n: int) -> int:
        if self._done:
            raise _errors.from_code(_errors.exported["ESTATE"].code,
                                    "commit" if commit else "abort", self._channel.name)
        self._unmap()  # BufferError while derived buffers live: nothing done
        ch: Latest = self._channel  # type: ignore[assignment]
        self._done = True
        seq = c_uint64()
        h = ch._enter()
        try:
            if commit:
                rc = _lib.shmchan_latest_commit(h, n, byref(seq))
                if rc != 0:
                    _lib.shmchan_latest_abort(h)  # never keep the writer lock
            else:
                rc = _lib.shmchan_latest_abort(h)
        finally:
            ch._reservation = None
            ch._wlock.release()
            ch._leave()
        if rc != 0:
            raise _errors.error(rc, "commit" if commit else "abort", ch.name)
        return int(seq.value)

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
        return f"<shmchan.LatestReservation {state}>"
