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
leaves nothing blocked. Windows' default Proactor loop has no add_reader:
there the coroutines raise NotSupported (use a SelectorEventLoop, which
cannot wait on event HANDLEs either, or ``shmchan.wait`` in a thread).
"""

from __future__ import annotations

import asyncio
import contextlib
from ctypes import byref, c_size_t, c_void_p
from typing import Any, AsyncIterator, Optional, Sequence

from . import _errors, _ffi

_lib = _ffi.lib
_EAGAIN = _errors.exported["EAGAIN"]


def _os_handle(value: Any) -> int:
    return int(value.value if hasattr(value, "value") else value or 0)


async def _readable(channel: Any, fd: int) -> None:
    """Until fd is readable, through the running loop's add_reader."""
    loop = asyncio.get_running_loop()
    if getattr(channel, "_aio_waiting", False):
        raise RuntimeError(f"another coroutine already waits on this {channel._kind}")
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


