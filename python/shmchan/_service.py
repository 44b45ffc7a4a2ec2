"""Services (request/response): shmchan.Service, Request, Response."""

from __future__ import annotations

import ctypes
import dataclasses
import inspect
from ctypes import byref, c_size_t, c_uint64, c_void_p
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Union

from . import _errors, _ffi
from ._aio import ServiceEvents
from ._common import (
    BytesLike,
    Channel,
    FairLock,
    Info,
    Name,
    Peer,
    Timeout,
    as_buffer,
    check_int,
    encode_name,
    info_by_name,
    peers_by_name,
    spin_value,
)
from ._wait import opening

_lib = _ffi.lib
_EPEERDIED = _errors.exported["EPEERDIED"].code if "EPEERDIED" in _errors.exported else None
_EREMOTE = _errors.exported["EREMOTE"].code if "EREMOTE" in _errors.exported else None
_ESTATE = _errors.exported["ESTATE"].code

#: What a serve() handler may return: one body, or an iterable of bodies
#: (a stream: each but the last flagged "more").
HandlerResult = Union[BytesLike, Iterable[BytesLike], None]


class Response(NamedTuple):
    """One response a client received."""

    data: bytes
    id: int  #: the request it answers (as request() returned it)
    more: bool  #: more responses to the same request follow (a stream)
    error: bool  #: the server reports failure; data is its error text


class Request:
    """A request a server took: answer it with :meth:`Service.reply`."""

    __slots__ = ("data", "id", "_c", "_service", "_done")

    def __init__(self, service: "Service", data: bytes, c: _ffi.Request) -> None:
        self.data: bytes = data  #: the request body
        self.id: int = int(c.id)  #: the id the client library gave it
        self._c = c
        self._service = service
        self._done = False

    @property
    def answered(self) -> bool:
        """Whether its last response has been sent (or the client is gone)."""
        return self._done

    def __repr__(self) -> str:
        return f"<shmchan.Request id={self.id} {len(self.data)} bytes>"


def _peer_died(name: str, op: str, request_id: int) -> _errors.Error:
    e = _errors.error(_EPEERDIED, op, name)  # type: ignore[arg-type]
    e.request_id = request_id  # type: ignore[attr-defined]
    return e


def _remote_error(name: str, op: str, request_id: int, text: bytes) -> _errors.Error:
    e = _errors.error(_EREMOTE, op, name)  # type: ignore[arg-type]
    e.message = f"{e.message}: {text.decode(errors='replace')}"
    e.request_id = request_id  # type: ignore[attr-defined]
    e.body = text  # type: ignore[attr-defined]
    return e


class Service(Channel, ServiceEvents):
    """A service: requests from any number of clients to competing servers,
    each client receiving exactly the responses to its own requests.

    A handle is a client (the default) or a server (role="server"). A client
    sends requests (:meth:`request`, any number pending) and receives their
    responses (:meth:`response`), or does both in one :meth:`call`; a stream
    of responses is an iterator (:meth:`stream`). A server takes one request
    at a time (:meth:`take`) and answers it (:meth:`reply`, with more=True
    for all but the last part of a stream), or runs :meth:`serve` with a
    handler. Open one server handle per thread (or process) that serves.

    A server that dies while it holds a request makes that request fail at
    its client with :class:`PeerDied` at once; a server's error answer
    (error=True) raises :class:`RemoteError` from call() and stream(). A
    Service object may be shared by threads: its calls take turns.
    """

    _kind = "service"

    def __init__(
        self,
        name: Name,
        *,
        create: bool = False,
        exclusive: bool = False,
        role: str = "client",
        file: Optional[bool] = None,
        max_msg: int = 0,
        capacity: int = 0,
        max_servers: int = 0,
        max_clients: int = 0,
        mode: int = 0,
        spin_ns: Optional[int] = None,
        global_namespace: bool = False,
        resend: bool = False,
    ) -> None:
        """Open (create=True: or create) the service called name.

        Args:
            name: channel name, or a path for a file-backed service.
            create, exclusive, file, mode, spin_ns, global_namespace: as
                for :class:`shmchan.Queue`.
            role: "client" (default) or "server".
            max_msg: largest request and largest response (create default
                4096; 0 on open: any).
            capacity: request ring bytes (create default 1 MiB).
            max_servers, max_clients: slot counts (defaults 16 and 64).
            resend: client: call() sends a request again (at most three
                times) when the server holding it dies, instead of raising
                PeerDied; the request may then run more than once.
        """
        path, sname, is_file = encode_name(name, file)
        super().__init__(sname, path, is_file)
        if role not in ("client", "server"):
            raise ValueError("role must be 'client' or 'server'")
        if exclusive and not create:
            raise ValueError("exclusive=True needs create=True")
        if resend and role != "client":
            raise ValueError("resend=True is a client's option")
        o = _ffi.new_opts()
        o.flags = (
            (_ffi.CREATE if create else 0)
            | (_ffi.EXCL if exclusive else 0)
            | (_ffi.FILE if is_file else 0)
            | (_ffi.GLOBAL if global_namespace else 0)
            | (_ffi.SERVER if role == "server" else 0)
            | (_ffi.RESEND if resend else 0)
        )
        o.mode = check_int("mode", mode, "u32")
        o.max_msg = check_int("max_msg", max_msg)
        o.capacity = check_int("capacity", capacity)
        o.max_readers = check_int("max_servers", max_servers, "u32")
        o.max_writers = check_int("max_clients", max_clients, "u32")
        o.spin_ns = spin_value(spin_ns)
        h = c_void_p()
        rc = _lib.shmchan_service_open(path, byref(o), byref(h))
        if rc != 0:
            raise _errors.error(rc, "open", sname)
        self._adopt(h, _lib.shmchan_service_close)
        self._max_msg: int = _lib.shmchan_service_max_msg(h)
        self._role = role
        self._resend = resend
        self._lock: Any = FairLock()  # one call at a time per handle (shmchan.h)
        self._buf: Optional[ctypes.Array[ctypes.c_char]] = None
        self._bufmv = memoryview(b"")
        self._bufp = c_void_p()
        self._len = c_size_t()
        self._info = _ffi.Response()
        self._pending: set[int] = set()
        self._held: Optional[Request] = None

    @classmethod
    def create(
        cls,
        name: Name,
        *,
        max_msg: int = 0,
        capacity: int = 0,
        max_servers: int = 0,
        max_clients: int = 0,
        role: str = "client",
        exclusive: bool = False,
        mode: int = 0,
        file: Optional[bool] = None,
        spin_ns: Optional[int] = None,
        global_namespace: bool = False,
        resend: bool = False,
    ) -> "Service":
        """Create the service, or open it if it exists (exclusive=True: fail
        with AlreadyExists); geometry given must match an existing one's."""
        return cls(name, create=True, exclusive=exclusive, role=role, file=file,
                   max_msg=max_msg, capacity=capacity, max_servers=max_servers,
                   max_clients=max_clients, mode=mode, spin_ns=spin_ns,
                   global_namespace=global_namespace, resend=resend)

    @classmethod
    def open(
        cls,
        name: Name,
        *,
        role: str = "client",
        file: Optional[bool] = None,
        spin_ns: Optional[int] = None,
        global_namespace: bool = False,
        wait: Optional[float] = None,
        resend: bool = False,
    ) -> "Service":
        """Open an existing service (NotFound if there is none; with wait,
        after waiting up to that many seconds for it to be created)."""
        return opening(lambda: cls(name, role=role, file=file, spin_ns=spin_ns,
                                   global_namespace=global_namespace, resend=resend),
                       *encode_name(name, file)[::2], wait)

    @classmethod
    def client(cls, name: Name, **kw: object) -> "Service":
        """Open an existing service as a client (wait=seconds: wait that long
        for it to be created)."""
        return cls.open(name, role="client", **kw)  # type: ignore[arg-type]

    @classmethod
    def server(cls, name: Name, **kw: object) -> "Service":
        """Open an existing service as a server (wait=seconds: wait that long
        for it to be created)."""
        return cls.open(name, role="server", **kw)  # type: ignore[arg-type]

    # -------------------------------------------------------- properties
    @property
    def max_msg(self) -> int:
        """Largest request and largest response body."""
        return self._max_msg

    @property
    def role(self) -> str:
        """"client" or "server"."""
        return self._role

    @property
    def pending(self) -> int:
        """Client: requests sent whose last response has not arrived."""
        return len(self._pending)

    def info(self) -> Info:
        """A snapshot of the service's counters (readers: servers, writers:
        clients)."""
        if self.closed:
            raise self._closed_error()
        return info_by_name(self._path, self._name, self._file)

    def peers(self) -> list[Peer]:
        """The service's registered servers and clients (looked up by name),
        with role "server" or "client"."""
        if self.closed:
            raise self._closed_error()
        # The library names them so; one from before named them worker and
        # writer.
        roles = {"worker": "server", "writer": "client"}
        return [dataclasses.replace(p, role=roles.get(p.role, p.role))
                for p in peers_by_name(self._path, self._name, self._file)]

    # ------------------------------------------------------------- client
    def request(self, data: BytesLike, timeout: Timeout = None) -> int:
        """Client: send data as a request and return its id, which its
        responses carry. Waits up to timeout seconds for room in the request
        ring (None: for ever; 0: WouldBlock at once)."""
        ptr, n = as_buffer(data)
        rid = c_uint64()
        ref = byref(rid)
        h = self._enter()
        try:
            with self._lock:
                rc = self._blocking(
                    lambda ms: _lib.shmchan_service_request(h, ptr, n, ms, ref), timeout)
        finally:
            self._leave()
        if rc != 0:
            self._raise(rc, "request")
        self._pending.add(rid.value)
        return rid.value

    def response(self, timeout: Timeout = None) -> Response:
        """Client: the next response to any pending request of this handle.
        Raises TimedOut (WouldBlock with timeout 0), PeerDied (the server
        holding one of the requests died: ``e.request_id`` names it, which is
        no longer pending) and BadState when nothing is pending. An error
        answer is returned with error=True (call() and stream() raise it)."""
        buf = self._buffer()
        bufp, cap, lenref, info = self._bufp, self._max_msg, byref(self._len), self._info
        iref = byref(info)
        h = self._enter()
        try:
            with self._lock:
                rc = self._blocking(
                    lambda ms: _lib.shmchan_service_response(h, bufp, cap, ms, lenref, iref),
                    timeout)
                if rc == 0:
                    data = self._bufmv[: self._len.value].tobytes()
                    more = bool(info.flags & _ffi.REPLY_MORE)
                    if not more:
                        self._pending.discard(info.id)
                    return Response(data, int(info.id), more,
                                    bool(info.flags & _ffi.REPLY_ERROR))
                if rc == _EPEERDIED:
                    self._pending.discard(info.id)
                    raise _peer_died(self._name, "response", int(info.id))
        finally:
            self._leave()
        del buf
        self._raise(rc, "response")
        raise AssertionError("unreachable")

    def _responses_to(self, rid: int, timeout: Timeout) -> Iterator[Response]:
        """The responses to request rid, in order, until its last one;
        responses to other pending requests of this handle are an error
        (use request()/response() to interleave)."""
        while True:
            r = self.response(timeout)
            if r.id != rid:
                raise _errors.from_code(_ESTATE, "call", self._name)
            yield r
            if not r.more:
                return

    def call(self, data: BytesLike, timeout: Timeout = None) -> bytes:
        """Client: send data as a request and return its response. timeout
        (seconds, None: for ever) covers both. Raises RemoteError when the
        server answers with an error (its text in ``e.body``), PeerDied when
        it dies while it holds the request (with resend=True: after it sent
        the request again three times), TimedOut; BadState when other
        requests of this handle are pending (use request()/response())."""
        if self.closed:
            raise self._closed_error()
        if self._pending:
            raise _errors.from_code(_ESTATE, "call", self._name)
        for resends in range(_ffi.RESEND_MAX + 1):
            rid = self.request(data, timeout)
            try:
                return self._call_answer(rid, timeout)
            except _errors.Error as e:
                if e.code != _EPEERDIED or not self._resend or resends == _ffi.RESEND_MAX:
                    raise
        raise AssertionError("unreachable")

    def _call_answer(self, rid: int, timeout: Timeout) -> bytes:
        out: list[bytes] = []
        for r in self._responses_to(rid, timeout):
            if r.error:
                self._drain(rid, timeout, r)
                raise _remote_error(self._name, "call", rid, r.data)
            out.append(r.data)
        return out[-1] if len(out) == 1 else b"".join(out)

    def stream(self, data: BytesLike, timeout: Timeout = None) -> Iterator[bytes]:
        """Client: send data as a request and iterate over the parts of its
        response as they arrive (one part for a plain answer). timeout
        applies to each wait. Raises as call() does, at the part concerned."""
        if self.closed:
            raise self._closed_error()
        if self._pending:
            raise _errors.from_code(_ESTATE, "stream", self._name)
        rid = self.request(data, timeout)
        return self._parts(rid, timeout)

    def _parts(self, rid: int, timeout: Timeout) -> Iterator[bytes]:
        for r in self._responses_to(rid, timeout):
            if r.error:
                self._drain(rid, timeout, r)
                raise _remote_error(self._name, "stream", rid, r.data)
            yield r.data

    def _drain(self, rid: int, timeout: Timeout, last: Response) -> None:
        """After an error part flagged more: read the rest of that request's
        stream, so that the handle is ready for the next call."""
        while last.more:
            last = self.response(timeout)

    # ------------------------------------------------------------- server
    def take(self, timeout: Timeout = None) -> Request:
        """Server: take the next request, competing with the other servers.
        The handle holds it until its last response (reply() without
        more=True); BadState while one is held."""
        buf = self._buffer()
        bufp, cap = self._bufp, self._max_msg
        c = _ffi.Request()
        cref = byref(c)
        h = self._enter()
        try:
            with self._lock:
                rc = self._blocking(
                    lambda ms: _lib.shmchan_service_take(h, bufp, cap, ms, cref), timeout)
                if rc == 0:
                    data = self._bufmv[: c.len].tobytes()
                    req = Request(self, data, c)
                    self._held = req
                    return req
        finally:
            self._leave()
        del buf
        self._raise(rc, "take")
        raise AssertionError("unreachable")

    def reply(self, request: Request, data: BytesLike = b"", *, more: bool = False,
              error: bool = False, timeout: Timeout = None) -> bool:
        """Server: answer request with data; more=True: more parts follow
        (a stream), error=True: the request failed and data says why.
        Waits up to timeout seconds for room at a live client. Returns
        False when the client is gone (the answer is dropped: a server never
        waits for a dead client), True when it was delivered."""
        if request._service is not self:
            raise ValueError("request was taken by another Service handle")
        if request._done:
            raise _errors.from_code(_ESTATE, "reply", self._name)
        ptr, n = as_buffer(data)
        flags = (_ffi.REPLY_MORE if more else 0) | (_ffi.REPLY_ERROR if error else 0)
        cref = byref(request._c)
        h = self._enter()
        try:
            with self._lock:
                rc = self._blocking(
                    lambda ms: _lib.shmchan_service_reply(h, cref, ptr, n, flags, ms), timeout)
        finally:
            self._leave()
        if rc == _EPEERDIED:
            request._done = True
            self._held = None
            return False
        if rc != 0:
            self._raise(rc, "reply")
        if not more:
            request._done = True
            self._held = None
        return True

    def serve(self, handler: Callable[[bytes], HandlerResult], *, count: Optional[int] = None,
              idle_timeout: Timeout = None) -> int:
        """Server: take requests and answer each with handler(data): bytes
        (one response), an iterable of bytes (a stream: each part as it is
        produced), or None (an empty response). An exception in the handler
        answers with an error (its type and message) and serving goes on.
        Stops after count requests, or when none came for idle_timeout
        seconds (None: for ever; Ctrl-C: KeyboardInterrupt); returns how many
        it answered."""
        done = 0
        while count is None or done < count:
            try:
                req = self.take(idle_timeout)
            except _errors.exported["ETIMEDOUT"]:
                break
            except _errors.exported["EAGAIN"]:
                break
            self._answer(req, handler)
            done += 1
        return done

    def _answer(self, req: Request, handler: Callable[[bytes], HandlerResult]) -> None:
        try:
            result = handler(req.data)
            if result is None or isinstance(result, (bytes, bytearray, memoryview)) or \
                    not isinstance(result, Iterable) or inspect.isawaitable(result):
                self.reply(req, result if result is not None else b"")
                return
            prev: Optional[BytesLike] = None
            first = True
            for part in result:
                if not first and not self.reply(req, prev, more=True):
                    return  # the client left: stop producing
                prev, first = part, False
            self.reply(req, b"" if first else prev)
        except Exception as e:  # the handler's failure is the client's answer
            if not req.answered:
                text = f"{type(e).__name__}: {e}".encode(errors="replace")
                self.reply(req, text[: self._max_msg], error=True)
