"""What latest-value channels and queues share: handle lifetime, blocking
calls issued in slices, zero-copy buffers, bytes-like arguments, info."""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import math
import operator
import os
import sys
import threading
import time
import weakref
from ctypes import c_char, c_ubyte, c_void_p
from typing import Any, Callable, Optional, Union

from . import _errors, _ffi
from ._numpy import ViewArray

#: Longest single wait inside the library. Blocking calls loop over waits this
#: long so that a signal handler (Ctrl-C: KeyboardInterrupt) runs promptly even
#: when the signal does not interrupt the kernel sleep, and so that close()
#: from another thread ends a wait.
SLICE_SECONDS = 0.05
_SLICE_MS = int(SLICE_SECONDS * 1000)
_SLICE_C = ctypes.c_int64(_SLICE_MS)  # for the fast calls (_ffi.fast)

Name = Union[str, "os.PathLike[str]"]
Timeout = Optional[float]
BytesLike = Union[bytes, bytearray, memoryview, Any]


def encode_name(name: Name, file: Optional[bool]) -> tuple[bytes, str, bool]:
    """(bytes for C, str for messages, is a file path)."""
    is_file = isinstance(name, os.PathLike) if file is None else bool(file)
    s = os.fspath(name)
    if isinstance(s, bytes):
        return s, os.fsdecode(s), is_file
    return os.fsencode(s), s, is_file


# Ranges of the C integer types behind the binding's integer parameters.
_INT_RANGES = {
    "u32": (0, 2**32 - 1),
    "u64": (0, 2**64 - 1),
    "size": (0, 2 ** (8 * ctypes.sizeof(ctypes.c_size_t)) - 1),
}


def check_int(name: str, value: Any, ctype: str = "u64") -> int:
    """value as an int for a C parameter of type ctype ("u32", "u64" or
    "size"): every integer argument of the binding passes here, so that none
    wraps silently through ctypes. TypeError for a non-integer (bool too),
    ValueError below the range, OverflowError above it."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {type(value).__name__}") from None
    lo, hi = _INT_RANGES[ctype]
    if v < lo:
        raise ValueError(f"{name} must be >= {lo}, not {v}")
    if v > hi:
        raise OverflowError(f"{name} must be at most {hi}, not {v}")
    return v


def check_timeout(timeout: Timeout) -> None:
    if timeout is not None and (timeout < 0 or math.isnan(timeout)):
        raise ValueError("timeout must be None (wait for ever) or a number of seconds >= 0")


def spin_value(spin_ns: Optional[int]) -> int:
    """Python's spin_ns (None: default, 0: none) to the C field."""
    if spin_ns is None:
        return _ffi.SPIN_DEFAULT
    spin_ns = check_int("spin_ns", spin_ns, "u32")
    if spin_ns == 0:
        return _ffi.SPIN_NONE
    if spin_ns >= _ffi.SPIN_NONE:
        raise OverflowError(f"spin_ns must be below {_ffi.SPIN_NONE}, not {spin_ns}")
    return spin_ns


def as_buffer(data: BytesLike) -> tuple[Any, int]:
    """A pointer-compatible argument and the length of a bytes-like object.

    bytes are passed as they are; writable buffers (bytearray, memoryview,
    numpy arrays...) by address without copying; read-only ones that are not
    bytes are copied once.
    """
    if type(data) is bytes:
        return data, len(data)
    mv = memoryview(data)
    if not mv.c_contiguous:
        raise ValueError("buffer must be C-contiguous")
    n = mv.nbytes
    if n == 0:
        return None, 0
    if mv.readonly:
        return mv.tobytes(), n
    return (c_char * n).from_buffer(mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv), n


def writable_buffer(buffer: Any) -> tuple[Any, int]:
    """Address-compatible argument and size of a writable buffer (recv_into)."""
    mv = memoryview(buffer)
    if mv.readonly:
        raise TypeError("buffer must be writable")
    if not mv.c_contiguous:
        raise ValueError("buffer must be C-contiguous")
    n = mv.nbytes
    if n == 0:
        return None, 0
    return (c_char * n).from_buffer(mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv), n


# ------------------------------------------------------------------ handles


class Handle:
    """Owns a C handle; frees it when freed explicitly or garbage collected.

    Arrays exported by zero-copy views refer to it, so the mapping of a
    channel dropped without close() lives until the last derived buffer goes.
    """

    __slots__ = ("ptr", "close_fn")

    def __init__(self, ptr: c_void_p, close_fn: Callable[[Any], None]) -> None:
        self.ptr: Optional[c_void_p] = ptr
        self.close_fn = close_fn

    def free(self) -> None:
        ptr, self.ptr = self.ptr, None
        if ptr is not None:
            self.close_fn(ptr)

    def __del__(self) -> None:
        self.free()


class FairLock:
    """A lock that a thread giving it while others wait hands to one of them,
    so that a thread taking it again at once (a loop of receives or sends)
    cannot starve them; the ctypes path's locks of a queue's two directions.
    (The compiled module's Lock behaves the same.)"""

    __slots__ = ("_free", "_guard", "_waiters")

    def __init__(self) -> None:
        self._free = threading.Lock()  # held by the owner
        self._guard = threading.Lock()  # orders the hand-over
        self._waiters: "collections.deque[threading.Lock]" = collections.deque()

    def acquire(self, blocking: bool = True) -> bool:
        if self._free.acquire(False):
            return True
        return self._acquire_slow(blocking)

    def _acquire_slow(self, blocking: bool) -> bool:
        with self._guard:
            if not blocking:
                return self._free.acquire(False)
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
            if self._free.acquire(False):  # given meanwhile: not waiting after all
                self._waiters.remove(turn)
                return True
        try:
            turn.acquire()  # handed over by release()
        except BaseException:  # a signal handler raised: leave the line
            with self._guard:
                if turn in self._waiters:
                    self._waiters.remove(turn)
                    raise
            self.release()  # handed over meanwhile: pass it on
            raise
        return True

    def release(self, *exc: object) -> None:
        if not self._waiters:
            self._free.release()
            # A thread that joined the line before that release found the
            # lock taken: take it back for it, unless a third thread has it
            # (whose release then hands it over).
            if not self._waiters or not self._free.acquire(False):
                return
        with self._guard:
            if self._waiters:
                self._waiters.popleft().release()  # stays held: theirs now
            else:
                self._free.release()

    __enter__ = acquire
    __exit__ = release


class Channel:
    """Base of Latest and Queue: owns a C handle and the views into it.

    Every call on the handle registers itself in _active while it uses the
    handle; close() marks the channel closing, waits for the calls in other
    threads to leave (blocking calls leave within SLICE_SECONDS) and frees the
    handle, or leaves that to the last call out. So no thread ever passes a
    freed handle to the library.
    """

    _kind = "channel"

    def __init__(self, name: str, path: bytes, is_file: bool) -> None:
        self._h: Optional[c_void_p] = None
        self._handle: Optional[Handle] = None
        self._name = name
        self._path = path
        self._file = is_file
        self._active: list[None] = []
        self._closing = False
        self._free_lock = threading.Lock()
        self._views: "weakref.WeakSet[Mapped]" = weakref.WeakSet()
        self._arrays: list[Any] = []

    # ------------------------------------------ shared by Latest and Queue
    def _no_reservation_here(self, op: str) -> None:
        """ESTATE if this thread holds a reservation (it would wait for itself)."""
        res = self._reservation  # type: ignore[attr-defined]
        if res is not None and res._thread == threading.get_ident():
            raise _errors.from_code(_errors.exported["ESTATE"].code, op, self._name)

    def _buffer(self) -> "ctypes.Array[ctypes.c_char]":
        """The handle's receive buffer of max_msg bytes, made on first use."""
        if self._buf is None:  # type: ignore[has-type]
            buf = ctypes.create_string_buffer(max(self._max_msg, 1))  # type: ignore[attr-defined]
            self._bufmv = memoryview(buf).cast("B")  # slicing it copies faster than string_at
            self._bufp = c_void_p(ctypes.addressof(buf))  # converts faster than the array
            self._buf = buf
        return self._buf

    # ------------------------------------------------------------ lifetime
    @property
    def name(self) -> str:
        """The channel's name (or file path)."""
        return self._name

    @property
    def is_file(self) -> bool:
        """Whether the channel is file-backed."""
        return self._file

    @property
    def closed(self) -> bool:
        return self._h is None or self._closing

    def _enter(self) -> c_void_p:
        # list.append and list.pop are atomic under the GIL; the hot paths
        # inline these two methods.
        self._active.append(None)
        h = self._h
        if h is None or self._closing:
            self._active.pop()
            raise self._closed_error()
        return h

    def _leave(self) -> None:
        self._active.pop()
        if self._closing and not self._active:
            self._free()

    def _closed_error(self) -> ValueError:
        return ValueError(f"operation on a closed {self._kind}")

    def _check_open(self) -> None:
        """Between slices of a blocking call: stop if close() was called."""
        if self._closing:
            raise ValueError(f"{self._kind} closed while waiting")

    def _adopt(self, h: c_void_p, close_fn: Callable[[Any], None]) -> None:
        self._handle = Handle(h, close_fn)
        self._h = h

    def _free(self) -> None:
        with self._free_lock:
            h, self._h = self._h, None
        if h is not None and self._handle is not None:
            self._handle.free()

    def close(self) -> None:
        """Close the handle. The channel itself stays until unlink().

        Zero-copy views and reservations still held are released first
        (reservations are aborted). Raises BufferError, leaving the channel
        open, if memoryviews derived from a view are still alive: release
        them first, since the mapping is about to go away.
        """
        if self._h is None:
            return
        self._release_views()
        self._closing = True
        stop = getattr(self._handle, "stop", None)  # the compiled module's calls
        if stop is not None:
            stop()
        # Calls in other threads see _closing and leave within a slice.
        deadline = time.monotonic() + 4 * SLICE_SECONDS + 1.0
        while (self._active or getattr(self._handle, "active", 0)) and \
                time.monotonic() < deadline:
            time.sleep(0.001)
        if not self._active:
            self._free()
        # else: a call is still inside (close() from a signal handler that
        # interrupted this very thread's wait): it frees the handle on leaving.

    def _release_views(self) -> None:
        for v in list(self._views):
            v._forget()
        live = self._live_arrays()
        if live:
            raise BufferError(
                f"{live} memoryview(s) derived from zero-copy views of {self._name!r} are "
                "still alive; release them (or del them) before closing"
            )

    def _live_arrays(self) -> int:
        # An array referenced by more than this list, the loop variable and
        # getrefcount's argument is still exported by some memoryview.
        if not hasattr(sys, "getrefcount"):
            return 0
        self._arrays = [a for a in self._arrays if sys.getrefcount(a) > 3]
        return len(self._arrays)

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<shmchan.{type(self).__name__} {self._name!r} {state}>"

    # --------------------------------------------------------- blocking
    def _blocking(self, call: Callable[[int], int], timeout: Timeout,
                  rc: Optional[int] = None) -> int:
        """Run call(timeout_ms) in slices until it returns something other
        than ETIMEDOUT/EINTR or the caller's timeout is spent. The caller has
        entered the handle. rc: the result of a first slice the caller made
        itself (only with timeout None), to go on from."""
        if rc is not None:
            if rc != _errors.ETIMEDOUT and rc != _errors.EINTR:
                return rc
            self._check_open()
        check_timeout(timeout)
        if timeout == 0:
            return call(0)
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            if end is None:
                ms = _SLICE_MS
            else:
                left = end - time.monotonic()
                if left <= 0:
                    return _errors.ETIMEDOUT
                ms = min(_SLICE_MS, max(1, math.ceil(left * 1000)))
            rc = call(ms)
            if rc != _errors.ETIMEDOUT and rc != _errors.EINTR:
                return rc
            # Python runs pending signal handlers here (KeyboardInterrupt).
            self._check_open()

    def _raise(self, rc: int, op: str) -> None:
        raise _errors.error(rc, op, self._name)

    # ---------------------------------------------------------- exports
    def _track(self, view: "Mapped", array: Any) -> None:
        if len(self._arrays) > 32:
            self._live_arrays()
        self._arrays.append(array)
        self._views.add(view)

    def _info_by_name(self) -> "Info":
        if self.closed:
            raise self._closed_error()
        return info_by_name(self._path, self._name, self._file)

    def __reduce__(self) -> Any:
        raise TypeError(
            f"a {self._kind} handle cannot be pickled or passed to another process: pass "
            f"its name ({self._name!r}) instead and open it there"
        )


class Mapped(ViewArray):
    """A memoryview over shared memory that is invalidated when released.

    The memoryview exports a ctypes array placed on the shared memory;
    release() calls memoryview.release(), after which every use of ``data``
    (and of the memoryview object taken from it) raises ValueError. Slices or
    numpy arrays made from ``data`` must be dropped before release(), which
    otherwise raises BufferError and changes nothing.
    """

    _readonly = True

    def __init__(self, channel: Channel, address: int, length: int) -> None:
        self._channel = channel
        self._address = address
        self._length = length
        self._array: Any = None
        self._mv: Optional[memoryview] = None
        self._export()
        channel._track(self, self._array)

    def _export(self) -> None:
        arr = (c_ubyte * self._length).from_address(self._address)
        # Buffers derived from the view keep the handle, hence the mapping.
        arr._shmchan_handle = self._channel._handle
        raw = memoryview(arr)
        mv = raw.cast("B")
        raw.release()
        if self._readonly:
            ro = mv.toreadonly()
            mv.release()
            mv = ro
        self._array, self._mv = arr, mv

    @property
    def data(self) -> memoryview:
        """The bytes in shared memory, as a memoryview (format 'B')."""
        mv = self._mv
        if mv is None:
            raise ValueError("zero-copy view already released")
        return mv

    @property
    def released(self) -> bool:
        return self._mv is None

    def __len__(self) -> int:
        return self._length

    def __bytes__(self) -> bytes:
        return self.data.tobytes()

    def _unmap(self) -> None:
        """Invalidate the memoryview; BufferError (and no change) if
        buffers derived from it are still alive."""
        mv = self._mv
        if mv is None:
            return
        mv.release()  # BufferError while e.g. numpy holds an export of it
        self._mv = None
        arr, self._array = self._array, None
        # References now: arr, the channel's list, getrefcount's argument.
        if hasattr(sys, "getrefcount") and sys.getrefcount(arr) > 3:
            self._array = arr
            raw = memoryview(arr).cast("B")
            self._mv = raw.toreadonly() if self._readonly else raw
            raise BufferError(
                "memoryviews derived from this zero-copy view are still alive; "
                "del them before releasing it"
            )
        self._channel._views.discard(self)

    def _forget(self) -> None:
        """Called by close(): release, with the C-side cleanup if any."""
        self._unmap()

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------- info

_KINDS = {_ffi.KIND_LATEST: "latest", _ffi.KIND_QUEUE: "queue", _ffi.KIND_SERVICE: "service"}
_POLICIES = {_ffi.POLICY_BLOCK: "block", _ffi.POLICY_OVERWRITE: "overwrite"}
_ROLES = {_ffi.PEER_WRITER: "writer", _ffi.PEER_SUBSCRIBER: "subscriber",
          _ffi.PEER_WORKER: "worker", _ffi.PEER_SERVER: "server", _ffi.PEER_CLIENT: "client"}


@dataclasses.dataclass(frozen=True)
class Info:
    """A snapshot of a channel (struct shmchan_info)."""

    kind: str  #: "latest", "queue" or "service"
    policy: Optional[str]  #: queue: "block" or "overwrite"; latest: None
    mode: int  #: permission bits of the backing object
    max_msg: int
    capacity: int  #: queue ring bytes; latest: 0
    region_size: int  #: bytes of shared memory, header included
    seq: int  #: latest: newest sequence; queue: next sequence
    messages: int  #: messages published / committed
    bytes: int  #: payload bytes published / committed
    drops: int  #: queue overwrite: messages overwritten unread
    waits: int  #: times a writer waited for space / a reader slept
    recovered: int  #: dead peers cleaned up
    oldest_seq: int  #: queue: oldest message still held
    readers: int
    writers: int
    dead_readers: int
    dead_writers: int
    max_readers: int
    max_writers: int
    creator_pid: int
    layout_version: int
    created_unix_ns: int
    in_use: bool  #: some process has the channel open

    @classmethod
    def _from_c(cls, c: _ffi.Info) -> "Info":
        vals = {}
        for f in dataclasses.fields(cls):
            vals[f.name] = getattr(c, f.name)
        vals["kind"] = _KINDS.get(c.kind, str(c.kind))
        vals["policy"] = _POLICIES.get(c.policy) if c.kind == _ffi.KIND_QUEUE else None
        vals["in_use"] = bool(c.in_use)
        return cls(**vals)


@dataclasses.dataclass(frozen=True)
class Peer:
    """A queue's registered reader or writer, a service's server or client
    (struct shmchan_peer)."""

    role: str  #: "writer", "subscriber", "worker"; services: "server", "client"
    slot: int
    pid: int
    alive: bool
    position: int  #: reader: sequence of the next message it will get
    lag: int  #: reader: messages published it has not consumed
    count: int  #: messages received (reader) or sent (writer)
    lost: int  #: subscriber: messages overwritten before it read them


def info_by_name(path: bytes, name: str, is_file: bool) -> Info:
    c = _ffi.Info()
    c.struct_size = ctypes.sizeof(c)
    rc = _ffi.lib.shmchan_info_get(path, _ffi.FILE if is_file else 0, ctypes.byref(c))
    if rc != 0:
        raise _errors.error(rc, "info", name)
    return Info._from_c(c)


def peers_by_name(path: bytes, name: str, is_file: bool) -> list[Peer]:
    flags = _ffi.FILE if is_file else 0
    count = ctypes.c_size_t(0)
    cap = 64
    while True:
        arr = (_ffi.Peer * cap)()
        rc = _ffi.lib.shmchan_peers_get(path, flags, arr, cap, ctypes.byref(count))
        if rc != 0:
            raise _errors.error(rc, "peers", name)
        if count.value <= cap:
            break
        cap = count.value + 16  # more registered meanwhile: ask again
    return [
        Peer(_ROLES.get(p.role, str(p.role)), p.slot, p.pid, bool(p.alive), p.position,
             p.lag, p.count, p.lost)
        for p in arr[: count.value]
    ]
