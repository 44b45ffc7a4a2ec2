"""shmchan: fast, crash-safe shared-memory channels between processes.

A Python binding of libshmchan through ctypes (standard library only). The
channels are the C library's, so Python and C programs share them freely.

Latest-value channels keep the newest message::

    import shmchan
    with shmchan.Latest.create("telemetry", max_msg=1024) as ch:
        seq = ch.publish(b"msg 1")
    with shmchan.Latest.open("telemetry") as ch:
        seq, data = ch.read()            # newest, never torn
        seq, data = ch.read_next(seq)    # sleeps until a newer one

Queues deliver every message to every subscriber, or each to one worker::

    with shmchan.Queue.create("jobs", capacity=1 << 20) as q:
        q.send(b"job")
    with shmchan.Queue.subscribe("jobs", oldest=True) as q:
        for data in q: ...

Errors are subclasses of :class:`shmchan.Error`, one per C code (generated
from the library's table), some also built-in ones: ``shmchan.TimedOut`` is a
``TimeoutError``, ``NotFound`` a ``FileNotFoundError``, ``AlreadyExists`` a
``FileExistsError``, ``AccessDenied`` a ``PermissionError``. Nothing is ever
unlinked behind your back: a channel lives until :func:`unlink` (or reboot for
POSIX shared memory; file-backed ones persist).

See docs/python.md for the whole reference.
"""

from __future__ import annotations

import ctypes as _ctypes
from typing import Optional as _Optional

from . import _backend, _errors, _ffi
from ._common import SLICE_SECONDS, Info, Name, Peer, encode_name, info_by_name, peers_by_name
from ._errors import Error, ShmchanError
from ._aio import wait
from ._latest import Latest, LatestReservation, LatestView
from ._queue import Message, Queue, QueueReservation, QueueView
from ._service import Request, Response, Service
from ._recording import RecordedChannel, RecordedMessage, Recording, RecordingError
from ._wait import opening as _opening

__version__ = "0.2.0"

#: libshmchan's version string, e.g. "0.2.0", and as a tuple.
library_version: str = _ffi.version_string
library_version_info: tuple[int, int, int] = _ffi.version_info
#: Path of the libshmchan file that was loaded.
library_path: str = _ffi.library_path
#: The places tried for it, in order, each once.
library_tried: list[str] = list(_ffi.tried)
#: "native" when the compiled module serves the per-message calls, else "ctypes".
backend: str = _backend.name
#: Path of the compiled module that was loaded, or None.
native_path: _Optional[str] = _backend.native_path
#: Version of the shared-memory layout the loaded library reads and writes.
LAYOUT_VERSION: int = _ffi.layout_version
#: Longest channel name, in bytes.
NAME_MAX: int = _ffi.NAME_MAX

# One class per C error code, and the Pythonic aliases (see _errors).
globals().update(_errors.exported)
#: C code -> exception class.
error_classes: dict[int, type[Error]] = dict(_errors.classes)


def error_for(code: int) -> Error:
    """The exception instance for a C return code."""
    return _errors.from_code(code)


def valid_name(name: str) -> bool:
    """Whether name is a valid channel name: 1..22 bytes of [A-Za-z0-9._-],
    not starting with '.', no '..'."""
    return _ffi.lib.shmchan_name_check(name.encode()) == 0


def _flags(is_file: bool) -> int:
    return _ffi.FILE if is_file else 0


def unlink(name: Name, *, file: _Optional[bool] = None, missing_ok: bool = False) -> None:
    """Remove a channel's name (a file-backed one: its file). Processes that
    have it open keep using it until they close it. missing_ok: no error if
    it does not exist."""
    path, sname, is_file = encode_name(name, file)
    rc = _ffi.lib.shmchan_unlink(path, _flags(is_file))
    if rc != 0 and not (missing_ok and rc == _errors.exported["ENOENT"].code):
        raise _errors.error(rc, "unlink", sname)


def info(name: Name, *, file: _Optional[bool] = None) -> Info:
    """Describe a channel without joining it."""
    path, sname, is_file = encode_name(name, file)
    return info_by_name(path, sname, is_file)


def exists(name: Name, *, file: _Optional[bool] = None) -> bool:
    """Whether a channel of that name exists (and is readable as one)."""
    try:
        info(name, file=file)
    except _errors.exported["ENOENT"]:
        return False
    return True


def peers(name: Name, *, file: _Optional[bool] = None) -> list[Peer]:
    """A queue's registered readers and writers (WrongKind for a latest-value
    channel)."""
    path, sname, is_file = encode_name(name, file)
    return peers_by_name(path, sname, is_file)


def list_channels() -> list[str]:
    """Names of the channels in POSIX shared memory (not file-backed ones).
    NotSupported where the platform cannot enumerate them (Windows)."""
    it = _ctypes.c_void_p()
    rc = _ffi.lib.shmchan_list_open(_ctypes.byref(it))
    if rc != 0:
        raise _errors.error(rc, "list")
    names: list[str] = []
    try:
        p = _ctypes.c_char_p()
        while True:
            rc = _ffi.lib.shmchan_list_next(it, _ctypes.byref(p))
            if rc == _errors.EAGAIN:
                break
            if rc != 0:
                raise _errors.error(rc, "list")
            names.append((p.value or b"").decode(errors="surrogateescape"))
    finally:
        _ffi.lib.shmchan_list_close(it)
    return names


def reap(name: Name, *, file: _Optional[bool] = None, dry_run: bool = False) -> bool:
    """Remove the channel if no process has it open (its users all exited or
    crashed); dry_run only reports. Returns whether it was (or would be)
    removed; a channel in use raises Busy."""
    path, sname, is_file = encode_name(name, file)
    removed = _ctypes.c_int(0)
    rc = _ffi.lib.shmchan_reap(path, _flags(is_file), dry_run, _ctypes.byref(removed))
    if rc != 0:
        raise _errors.error(rc, "reap", sname)
    return bool(removed.value)


def open_latest(name: Name, *, create: bool = False, wait: _Optional[float] = None,
                **kw: object) -> Latest:
    """Latest(name, create=create, ...): see :class:`Latest`; wait=seconds
    waits that long for the channel to be created (see Latest.open)."""
    return _opening(lambda: Latest(name, create=create, **kw),  # type: ignore[arg-type]
                    *encode_name(name, kw.get("file"))[::2], wait)  # type: ignore[arg-type]


def open_queue(name: Name, *, create: bool = False, wait: _Optional[float] = None,
               **kw: object) -> Queue:
    """Queue(name, create=create, ...): see :class:`Queue`; wait=seconds
    waits that long for the queue to be created (see Queue.open)."""
    return _opening(lambda: Queue(name, create=create, **kw),  # type: ignore[arg-type]
                    *encode_name(name, kw.get("file"))[::2], wait)  # type: ignore[arg-type]


# Last, so that the module's own code above never sees the shadowed builtin;
# not in __all__, so that "from shmchan import *" does not shadow it either.
list = list_channels  # noqa: A001

__all__ = [
    "Error", "ShmchanError", "Latest", "LatestView", "LatestReservation", "Queue",
    "QueueView", "QueueReservation", "Message", "Service", "Request", "Response",
    "Info", "Recording", "RecordedMessage",
    "RecordedChannel", "RecordingError", "Peer", "unlink", "info", "exists",
    "peers", "list_channels", "reap", "valid_name", "open_latest", "open_queue",
    "error_for", "error_classes", "library_version", "library_version_info", "library_path",
    "library_tried", "backend", "native_path", "wait",
    "LAYOUT_VERSION", "NAME_MAX", "SLICE_SECONDS", "__version__",
] + sorted(_errors.exported)
