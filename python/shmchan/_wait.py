"""open(..., wait=seconds): wait for a channel that does not exist yet, so
that the order in which processes start stops mattering.

On Linux the wait sleeps in the kernel: an inotify watch on the directory
that holds the channel (``/dev/shm`` for named channels, whose objects are
``/dev/shm/shmchan.<name>``; the file's directory for file-backed ones)
wakes it when an entry of that name appears, and the open is retried then.
Elsewhere, or when inotify is unavailable, it retries with a backoff (at most
50 ms between tries). A channel found half-made (its creator is still
initialising it: Initializing or Truncated) is retried after a short sleep,
since writes through a mapping raise no inotify event.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import struct
import sys
import time
from typing import Callable, Optional, TypeVar

from . import _errors

T = TypeVar("T")

_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_IN_ATTRIB = 0x004
_IN_CLOSE_WRITE = 0x008
_IN_MOVED_TO = 0x080
_IN_CREATE = 0x100
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len; then len bytes of name
SHM_DIR = "/dev/shm"
SHM_PREFIX = "shmchan."
_HALF_MADE_SLEEP = 0.002
_POLL_MAX = 0.05

_libc: Optional[ctypes.CDLL] = None


def _inotify() -> Optional[ctypes.CDLL]:
    global _libc
    if not sys.platform.startswith("linux"):
        return None
    if _libc is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.inotify_init1.argtypes = [ctypes.c_int]
            libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        except (OSError, AttributeError):
            return None
        _libc = libc
    return _libc


class _Watch:
    """An inotify watch on a directory for entries called name."""

    def __init__(self, directory: str, name: str) -> None:
        self.fd = -1
        self.name = os.fsencode(name)
        libc = _inotify()
        if libc is None or not os.path.isdir(directory):
            return
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            return
        mask = _IN_CREATE | _IN_MOVED_TO | _IN_ATTRIB | _IN_CLOSE_WRITE
        if libc.inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
            os.close(fd)
            return
        self.fd = fd

    def wait(self, seconds: Optional[float]) -> None:
        """Sleep until an event about name (or the time is up)."""
        end = None if seconds is None else time.monotonic() + seconds
        while True:
            left = None if end is None else max(0.0, end - time.monotonic())
            r, _, _ = select.select([self.fd], [], [], left)
            if not r:
                return
            if self._ours():
                return

    def _ours(self) -> bool:
        found = False
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return found
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                raise
            at = 0
            while at + _EVENT.size <= len(buf):
                _, _, _, n = _EVENT.unpack_from(buf, at)
                name = buf[at + _EVENT.size: at + _EVENT.size + n].rstrip(b"\0")
                found = found or name == self.name
                at += _EVENT.size + n

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _where(path: bytes, is_file: bool) -> tuple[str, str]:
    """(directory, entry name) of a channel's backing object."""
    if is_file:
        p = os.path.abspath(os.fsdecode(path))
        return os.path.dirname(p), os.path.basename(p)
    return SHM_DIR, SHM_PREFIX + os.fsdecode(path)


def opening(opener: Callable[[], T], path: bytes, is_file: bool, wait: Optional[float]) -> T:
    """opener(), and while it raises NotFound (or finds the channel half
    made) retried until wait seconds have passed; wait None or 0: once."""
    if wait is None or wait == 0:
        return opener()
    if wait < 0 or wait != wait:
        raise ValueError("wait must be None or a number of seconds >= 0")
    end = time.monotonic() + wait
    not_found = _errors.exported["ENOENT"]
    half_made = (_errors.exported["EINIT"], _errors.exported["ETRUNCATED"])
    watch: Optional[_Watch] = None
    pause = 0.001
    try:
        while True:
            try:
                return opener()
            except not_found:
                if time.monotonic() >= end:
                    raise
                if watch is None:
                    watch = _Watch(*_where(path, is_file))
                    continue  # the watch is set: try again before sleeping
                left = end - time.monotonic()
                if watch.fd >= 0:
                    watch.wait(left)
                else:
                    time.sleep(min(pause, left))
                    pause = min(pause * 2, _POLL_MAX)
            except half_made:
                if time.monotonic() >= end:
                    raise
                time.sleep(_HALF_MADE_SLEEP)
    finally:
        if watch is not None:
            watch.close()
