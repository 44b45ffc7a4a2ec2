"""Event loops: readiness handles, asyncio coroutines and shmchan.wait().

Every reader (a Latest object, a Queue subscriber or worker) has a
readiness handle (``fileno()``): on Linux a file descriptor that poll, epoll,
selectors and asyncio report readable when the reader has something to
receive. Re-arm it with ``arm()`` after receiving what there is; a message
that arrived meanwhile makes it ready at once. docs/event-loops.md has the
contract.

The coroutines (``await q.recv_async()``, ``async for data in q``) register
the descriptor with the running loop's ``add_reader`` for the time of one
wait, not a thread per channel: cancelling one removes the reader and
leaves nothing blocked.

On Windows the readiness handle is an event HANDLE, which no asyncio loop
can watch (the default Proactor loop has no add_reader; the selector loop's
select() takes sockets only). There each wait registers the HANDLE with the
system thread pool (kernel32's RegisterWaitForSingleObject, run once): the
pool's own wait thread, shared by up to 63 waits of the process, calls back
when the event is set, and the callback completes the coroutine's future
through call_soon_threadsafe. Whether the wait completed or was cancelled,
UnregisterWaitEx(INVALID_HANDLE_VALUE) ends it, returning only after a
callback that is running has finished, so nothing is left registered and
no callback outlives the wait. docs/event-loops.md says what of this was run
on Windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from ctypes import byref, c_size_t, c_void_p
from typing import Any, AsyncIterator, Callable, Optional, Sequence

from . import _errors, _ffi

_lib = _ffi.lib
_EAGAIN = _errors.exported["EAGAIN"]


def _os_handle(value: Any) -> int:
    return int(value.value if hasattr(value, "value") else value or 0)


class _ThreadPoolWaits:
    """Waits of the Windows thread pool on a HANDLE (kernel32, through ctypes).

    register(handle, fn) makes the pool call fn() once, on one of its
    threads, when handle is signalled, and returns a token; unregister(token)
    ends that wait and returns once no call of fn is running or will run.
    Tests on other systems replace it with a stand-in of the same interface
    (python/tests/test_events.py)."""

    _INFINITE = 0xFFFFFFFF
    _WT_EXECUTEONLYONCE = 0x00000008

    def __init__(self) -> None:
        import ctypes
        from ctypes import wintypes

        # getattr: these exist on Windows only (and type-check everywhere).
        k32 = getattr(ctypes, "WinDLL")("kernel32", use_last_error=True)
        # WAITORTIMERCALLBACK: void (PVOID context, BOOLEAN timed_out)
        self._callback = getattr(ctypes, "WINFUNCTYPE")(None, ctypes.c_void_p, ctypes.c_ubyte)
        self._register = k32.RegisterWaitForSingleObject
        self._register.argtypes = [ctypes.POINTER(wintypes.HANDLE), wintypes.HANDLE,
                                   self._callback, ctypes.c_void_p, wintypes.ULONG,
                                   wintypes.ULONG]
        self._register.restype = wintypes.BOOL
        self._unregister = k32.UnregisterWaitEx
        self._unregister.argtypes = [wintypes.HANDLE, wintypes.HANDLE]
        self._unregister.restype = wintypes.BOOL
        self._ctypes = ctypes
        self._handle = wintypes.HANDLE

    def register(self, handle: int, fn: Callable[[], None]) -> Any:
        # The callback object must live until the wait is unregistered: the
        # token holds it.
        cb = self._callback(lambda _context, _timed_out: fn())
        wait = self._handle()
        if not self._register(byref(wait), self._handle(handle), cb, None, self._INFINITE,
                              self._WT_EXECUTEONLYONCE):
            raise getattr(self._ctypes, "WinError")(getattr(self._ctypes, "get_last_error")())
        return (wait, cb)

    def unregister(self, token: Any) -> None:
        wait, _cb = token
        # INVALID_HANDLE_VALUE: block until a running callback has returned.
        # It runs on a pool thread and needs the GIL only briefly: ctypes
        # releases the GIL during this call, so the two cannot deadlock.
        self._unregister(wait, self._handle(-1))


_pool: Any = None  # the thread-pool waits in use: Windows', or a test's stand-in


def _thread_pool() -> Any:
    """The thread-pool waits where readiness handles are event HANDLEs
    (Windows), else None (descriptors: the loop's add_reader)."""
    global _pool
    if _pool is None and sys.platform == "win32":
        _pool = _ThreadPoolWaits()
    return _pool


def _complete(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _signalled(channel: Any, loop: asyncio.AbstractEventLoop, pool: Any,
                     handle: int) -> None:
    """Until the event HANDLE is set, through a thread-pool wait."""
    fut: asyncio.Future[None] = loop.create_future()

    def fired() -> None:  # on a pool thread
        try:
            loop.call_soon_threadsafe(_complete, fut)
        except RuntimeError:
            pass  # the loop is closed: nobody waits for the future any more

    token = pool.register(handle, fired)
    channel._aio_waiting = True
    try:
        await fut
    finally:
        channel._aio_waiting = False
        pool.unregister(token)


async def _readable(channel: Any, fd: int) -> None:
    """Until fd is readable, through the running loop's add_reader (or the
    thread pool's wait on a Windows event HANDLE)."""
    loop = asyncio.get_running_loop()
    if getattr(channel, "_aio_waiting", False):
        raise RuntimeError(f"another coroutine already waits on this {channel._kind}")
    pool = _thread_pool()
    if pool is not None:
        await _signalled(channel, loop, pool, fd)
        return
    fut: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    try:
        loop.add_reader(fd, ready)
    except NotImplementedError:
        raise _errors.error(_errors.exported["ENOTSUP"].code, "add_reader (this event loop)",
                            channel.name) from None
    channel._aio_waiting = True
    try:
        await fut
    finally:
        channel._aio_waiting = False
        loop.remove_reader(fd)


def _notify_fd(obj: Any, notify: Any, lock: Any = None) -> int:
    """Make obj's readiness handle with the library's notify call, under
    lock if one is given."""
    h = _ffi.OS_HANDLE()
    handle = obj._enter()
    try:
        with lock if lock is not None else contextlib.nullcontext():
            rc = notify(handle, byref(h))
    finally:
        obj._leave()
    if rc != 0:
        obj._raise(rc, "fileno")
    return _os_handle(h)


class LatestEvents:
    """fileno(), arm() and the coroutines of a latest-value channel."""

    _nf_fd: Optional[int] = None
    _aio_waiting = False

    def fileno(self) -> int:
        """The readiness descriptor (created at the first call, armed for
        any message: ready at once if anything was ever published). Do not
        close it; stop watching it before closing the channel."""
        if self._nf_fd is None:
            self._nf_fd = _notify_fd(self, _lib.shmchan_latest_notify)
        return self._nf_fd

    def arm(self, after: Optional[int] = None) -> None:
        """Drain the readiness handle and re-arm it for a sequence newer
        than ``after`` (default :attr:`last_seen`): ready at once if one
        exists already."""
        self.fileno()
        a = self._last if after is None else int(after)  # type: ignore[attr-defined]
        ch = self._enter()  # type: ignore[attr-defined]
        try:
            rc = _lib.shmchan_latest_arm(ch, a)
        finally:
            self._leave()  # type: ignore[attr-defined]
        if rc != 0:
            self._raise(rc, "arm")  # type: ignore[attr-defined]

    async def read_next_async(self, after: Optional[int] = None) -> tuple[int, bytes]:
        """Coroutine: wait (in the running loop, no thread) until a message
        newer than ``after`` (default :attr:`last_seen`) exists, then read
        the newest as (sequence, bytes)."""
        a = self._last if after is None else int(after)  # type: ignore[attr-defined]
        fd = self.fileno()
        while True:
            if self.seq > a:  # type: ignore[attr-defined]
                return self.read()  # type: ignore[attr-defined, no-any-return]
            self.arm(a)
            if self.seq > a:  # type: ignore[attr-defined]
                continue
            await _readable(self, fd)

    async def _updates(self) -> AsyncIterator[tuple[int, bytes]]:
        while True:
            yield await self.read_next_async()

    def __aiter__(self) -> AsyncIterator[tuple[int, bytes]]:
        """``async for seq, data in channel``: each newer message."""
        return self._updates()


class QueueEvents:
    """fileno(), arm() and the coroutines of a queue reader."""

    _nf_fd: Optional[int] = None
    _aio_waiting = False

    def fileno(self) -> int:
        """The readiness descriptor of this subscriber or worker (created at
        the first call, armed). Do not close it; stop watching it before
        closing the queue. Raises WrongKind for a handle without a reader
        role."""
        if self._nf_fd is None:
            lock = self._rlock  # type: ignore[attr-defined]  # a receiving call
            self._nf_fd = _notify_fd(self, _lib.shmchan_queue_notify, lock)
        return self._nf_fd

    def arm(self) -> None:
        """Drain the readiness handle and re-arm it: ready at the next
        send, at once if this reader has something to receive now."""
        self.fileno()
        q = self._enter()  # type: ignore[attr-defined]
        try:
            with self._rlock:  # type: ignore[attr-defined]  # a receiving call
                rc = _lib.shmchan_queue_arm(q)
        finally:
            self._leave()  # type: ignore[attr-defined]
        if rc != 0:
            self._raise(rc, "arm")  # type: ignore[attr-defined]

    async def recv_msg_async(self) -> Any:
        """Coroutine: the next Message, waiting in the running loop (no
        thread). Cancelling it receives nothing and leaves nothing blocked."""
        fd = self.fileno()
        while True:
            try:
                return self.recv_msg(0)  # type: ignore[attr-defined]
            except _EAGAIN:
                pass
            self.arm()
            await _readable(self, fd)

    async def recv_async(self) -> bytes:
        """Coroutine: the next message's bytes (see recv_msg_async)."""
        fd = self.fileno()
        while True:
            try:
                return self.recv(0)  # type: ignore[attr-defined, no-any-return]
            except _EAGAIN:
                pass
            self.arm()
            await _readable(self, fd)

    async def _messages(self) -> AsyncIterator[bytes]:
        while True:
            yield await self.recv_async()

    def __aiter__(self) -> AsyncIterator[bytes]:
        """``async for data in queue``: every message, for ever."""
        return self._messages()


class ServiceEvents:
    """fileno(), arm() and the coroutines of a service handle: a client's
    descriptor is ready when a response is there, a server's when a request
    is there to compete for."""

    _nf_fd: Optional[int] = None
    _aio_waiting = False

    def fileno(self) -> int:
        """The readiness descriptor of this client or server (created at the
        first call, armed). Do not close it; stop watching it before closing
        the service. A client whose request's server died is not signalled:
        it learns at its next response() (the coroutines poll for that)."""
        if self._nf_fd is None:
            lock = self._lock  # type: ignore[attr-defined]
            self._nf_fd = _notify_fd(self, _lib.shmchan_service_notify, lock)
        return self._nf_fd

    def arm(self) -> None:
        """Drain the readiness handle and re-arm it: ready at the next
        response (client) or request (server), at once if one is there."""
        self.fileno()
        h = self._enter()  # type: ignore[attr-defined]
        try:
            with self._lock:  # type: ignore[attr-defined]
                rc = _lib.shmchan_service_arm(h)
        finally:
            self._leave()  # type: ignore[attr-defined]
        if rc != 0:
            self._raise(rc, "arm")  # type: ignore[attr-defined]

    async def _ready(self, poll_s: Optional[float]) -> None:
        fd = self.fileno()
        self.arm()
        if poll_s is None:
            await _readable(self, fd)
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(_readable(self, fd), poll_s)

    async def response_async(self) -> Any:
        """Coroutine: the next Response to a pending request (as response(),
        waiting in the running loop, no thread)."""
        while True:
            try:
                return self.response(0)  # type: ignore[attr-defined]
            except _EAGAIN:
                pass
            # a server's death is not signalled: look again every 10 ms
            await self._ready(0.01)

    async def call_async(self, data: Any) -> bytes:
        """Coroutine: request(data), then its response (as call())."""
        from ._service import _remote_error

        rid = self.request(data, 0)  # type: ignore[attr-defined]
        parts: list[bytes] = []
        while True:
            r = await self.response_async()
            if r.error:
                err, rest = r, r
                while rest.more:  # the rest of that stream, so the handle is ready again
                    rest = await self.response_async()
                raise _remote_error(self.name, "call", rid, err.data)  # type: ignore[attr-defined]
            parts.append(r.data)
            if not r.more:
                return b"".join(parts)

    async def take_async(self) -> Any:
        """Coroutine: take the next Request (server), waiting in the loop."""
        while True:
            try:
                return self.take(0)  # type: ignore[attr-defined]
            except _EAGAIN:
                pass
            await self._ready(None)


Waitable = Any  # a Latest, a Queue reader, an int descriptor or an object with fileno()


def wait(items: Sequence[Waitable], timeout: Optional[float] = None) -> list[Waitable]:
    """Wait until at least one of items is ready and return those that are,
    in their order: a Latest with a sequence newer than its last_seen, a
    Queue reader with something to receive, a descriptor (or object with
    fileno()) that is readable. timeout in seconds (None: for ever); [] when
    it runs out. For synchronous code; in asyncio use the coroutines."""
    from ._latest import Latest
    from ._queue import Queue

    ws = c_void_p()
    rc = _lib.shmchan_waitset_open(byref(ws))
    if rc != 0:
        raise _errors.error(rc, "wait")
    held: list[Any] = []
    try:
        for i, it in enumerate(items):
            if isinstance(it, Latest):
                h = it._enter()
                held.append(it)
                rc = _lib.shmchan_waitset_add_latest(ws, h, it.last_seen, i)
            elif isinstance(it, Queue):
                h = it._enter()
                held.append(it)
                rc = _lib.shmchan_waitset_add_queue(ws, h, i)
            else:
                fd = it if isinstance(it, int) else it.fileno()
                rc = _lib.shmchan_waitset_add_os(ws, fd, i)
            if rc != 0:
                raise _errors.error(rc, "wait", getattr(it, "name", None))
        keys = (c_size_t * max(len(items), 1))()
        n = c_size_t()
        ms = -1 if timeout is None else max(0, int(timeout * 1000))
        rc = _lib.shmchan_waitset_wait(ws, ms, keys, len(items), byref(n))
        if rc in (_errors.exported["ETIMEDOUT"].code, _EAGAIN.code):
            return []
        if rc != 0:
            raise _errors.error(rc, "wait")
        ready = sorted(keys[k] for k in range(n.value))
        return [items[k] for k in ready]
    finally:
        for it in held:
            it._leave()
        _lib.shmchan_waitset_close(ws)


