"""Exceptions, generated at import from the library's own error table.

The C header's SHMCHAN_ERRNO_MAP is the single source of the codes, their
names and their messages: this module asks the library for the name and
message of every code in the range and makes one class per code, named as in
C without the prefix (``shmchan.ETIMEDOUT``). A code added to the C table
appears here without any change. What Python adds is only *how* a code fits
Python's own hierarchy: the built-in base class, the ``errno`` value for the
``OSError`` ones, and a Pythonic alias (``shmchan.TimedOut``).
"""

from __future__ import annotations

import ctypes
import errno as _errno
from typing import Any, Optional

from . import _ffi

# Codes scanned at import; the table's codes are small negatives and ESYS.
_CODE_RANGE = range(-1, -256, -1)

# Built-in classes that a code also derives from, with the errno they carry
# (None: not an OSError).
_BUILTIN: dict[str, tuple[type, Optional[int]]] = {
    "ETIMEDOUT": (TimeoutError, _errno.ETIMEDOUT),
    "ENOENT": (FileNotFoundError, _errno.ENOENT),
    "EEXIST": (FileExistsError, _errno.EEXIST),
    "EACCES": (PermissionError, _errno.EACCES),
    "EAGAIN": (BlockingIOError, _errno.EAGAIN),
    "EINTR": (InterruptedError, _errno.EINTR),
    "ENOSPC": (OSError, _errno.ENOSPC),
    "ESYS": (OSError, None),  # errno: the library's last OS error
    "EINVAL": (ValueError, None),
    "ENAME": (ValueError, None),
    "EMSGSIZE": (ValueError, None),
}

# Pythonic names, bound to the same classes as the C names.
_ALIASES: dict[str, str] = {
    "EINVAL": "InvalidArgument",
    "ENAME": "InvalidName",
    "ENOENT": "NotFound",
    "EEXIST": "AlreadyExists",
    "EACCES": "AccessDenied",
    "ETIMEDOUT": "TimedOut",
    "EAGAIN": "WouldBlock",
    "EMSGSIZE": "MessageTooLarge",
    "EBADMAGIC": "NotAChannel",
    "ELAYOUT": "LayoutMismatch",
    "EGEOMETRY": "GeometryMismatch",
    "ETRUNCATED": "Truncated",
    "ECORRUPT": "Corrupt",
    "ENOSPC": "NoSpace",
    "ELIMIT": "LimitReached",
    "EKIND": "WrongKind",
    "EINTR": "Interrupted",
    "EBUSY": "Busy",
    "ERDONLY": "ReadOnly",
    "ESTALE": "Stale",
    "ENOTSUP": "NotSupported",
    "EINIT": "Initializing",
    "ESTATE": "BadState",
    "EUNSAFE": "Unsafe",
    "EFORKED": "Forked",
    "EUNKNOWNKIND": "UnknownKind",
    "EPEERDIED": "PeerDied",
    "EREMOTE": "RemoteError",
}


class Error(Exception):
    """Base of every shmchan error.

    Attributes:
        code: the C code (a negative int, e.g. -6).
        name: the C name, e.g. ``"SHMCHAN_ETIMEDOUT"``.
        message: the C message, e.g. ``"timed out"``.
        channel: the channel name or path involved, or None.
        operation: the call that failed (``"open"``, ``"publish"``...), or None.
        oserror: for ESYS, the operating system's errno behind it, else 0.
        field, existing, requested: for EGEOMETRY raised by an open, the
            field that differs ("kind", "policy", "max_msg", "capacity",
            "max_readers", "max_writers") and the existing channel's and the
            requested values (kind and policy as names: "queue", "block"...);
            else None.
    """

    code: int = 0
    name: str = "SHMCHAN_EUNKNOWN"
    message: str = "unknown shmchan error"
    _errno: Optional[int] = None

    def __init__(
        self,
        message: Optional[str] = None,
        *,
        channel: Optional[str] = None,
        operation: Optional[str] = None,
        oserror: int = 0,
    ) -> None:
        if message is not None:
            self.message = message
        self.field: Optional[str] = None
        self.existing: Any = None
        self.requested: Any = None
        self.channel = channel
        self.operation = operation
        self.oserror = oserror
        if isinstance(self, OSError):
            eno = self._errno if self._errno is not None else (oserror or None)
            super().__init__(eno, self.message)
            if channel is not None:
                self.filename = channel
        else:
            super().__init__(self.message)

    def __str__(self) -> str:
        where = ""
        if self.operation:
            where = self.operation + (f" {self.channel!r}" if self.channel else "") + ": "
        elif self.channel:
            where = f"{self.channel!r}: "
        extra = ""
        if self.oserror:
            import os

            extra = f"; {os.strerror(self.oserror)}"
        return f"{where}{self.message}{extra} [{self.name}]"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> Any:
        return (from_code, (self.code, self.operation, self.channel, self.oserror))


Error.__module__ = "shmchan"

# Pythonic alias of the base, as in ../shared/STYLE.md.
ShmchanError = Error

# code -> class, filled below from the library.
classes: dict[int, type[Error]] = {}


def _make(code: int, cname: str, message: str) -> type[Error]:
    short = cname[len("SHMCHAN_"):] if cname.startswith("SHMCHAN_") else cname
    builtin, eno = _BUILTIN.get(short, (None, None))
    bases: tuple[type, ...] = (Error, builtin) if builtin is not None else (Error,)
    ns = {
        "code": code,
        "name": cname,
        "message": message,
        "_errno": eno,
        "__doc__": f"{cname} ({code}): {message}.",
        "__module__": "shmchan",
    }
    return type(short, bases, ns)


def _generate() -> dict[str, type[Error]]:
    names: dict[str, type[Error]] = {}
    for code in _CODE_RANGE:
        cname = _ffi.lib.shmchan_errname(code).decode()
        if cname == "SHMCHAN_EUNKNOWN":
            continue
        cls = _make(code, cname, _ffi.lib.shmchan_strerror(code).decode())
        classes[code] = cls
        names[cls.__name__] = cls
        alias = _ALIASES.get(cls.__name__)
        if alias is not None:
            names[alias] = cls
    return names


exported: dict[str, type[Error]] = _generate()

# Codes the binding itself branches on; their absence would be a broken table.
for _needed in ("EAGAIN", "ETIMEDOUT", "EINTR", "EMSGSIZE", "ESTALE", "ESYS"):
    if _needed not in exported:
        raise ImportError(f"shmchan: library error table lacks SHMCHAN_{_needed}")

EAGAIN: int = exported["EAGAIN"].code
ETIMEDOUT: int = exported["ETIMEDOUT"].code
EINTR: int = exported["EINTR"].code
EMSGSIZE: int = exported["EMSGSIZE"].code
ESTALE: int = exported["ESTALE"].code
ESYS: int = exported["ESYS"].code
EGEOMETRY: int = exported["EGEOMETRY"].code if "EGEOMETRY" in exported else 0


def from_code(
    code: int,
    operation: Optional[str] = None,
    channel: Optional[str] = None,
    oserror: int = 0,
) -> Error:
    """The exception for a C return code (an unknown code gives a plain Error)."""
    cls = classes.get(code)
    if cls is None:
        e = Error(_ffi.lib.shmchan_strerror(code).decode(), channel=channel, operation=operation)
        e.code = code
        e.name = _ffi.lib.shmchan_errname(code).decode()
        return e
    return cls(channel=channel, operation=operation, oserror=oserror)


_KIND_NAMES = {1: "latest", 2: "queue", 3: "service"}
_POLICY_NAMES = {0: None, 1: "block", 2: "overwrite"}


def _geometry(e: Error) -> None:
    """Attach this thread's last geometry mismatch (the open just failed)."""
    field = ctypes.c_char_p()
    have, want = ctypes.c_uint64(), ctypes.c_uint64()
    if _ffi.lib.shmchan_last_error_geometry(ctypes.byref(field), ctypes.byref(have),
                                            ctypes.byref(want)) != 0 or not field.value:
        return
    e.field = field.value.decode()
    names = {"kind": _KIND_NAMES, "policy": _POLICY_NAMES}.get(e.field)
    e.existing = names.get(have.value, have.value) if names else have.value
    e.requested = names.get(want.value, want.value) if names else want.value
    detail = _ffi.lib.shmchan_last_error_detail()
    if detail:
        e.message = f"{e.message}: {detail.decode()}"


def error(code: int, operation: Optional[str] = None, channel: Optional[str] = None) -> Error:
    """from_code(), picking up what this thread's library call left behind:
    the OS errno of an ESYS, the field and values of an EGEOMETRY."""
    oserr = _ffi.lib.shmchan_last_oserror() if code == ESYS else 0
    if code == EAGAIN and operation in _FULL_OPERATIONS:
        # The library's one message for EAGAIN speaks of receiving.
        return classes[code]("queue full: no space for the message", channel=channel,
                             operation=operation)
    e = from_code(code, operation, channel, oserr)
    if code == EGEOMETRY:
        _geometry(e)
    return e


#: Calls whose EAGAIN means the queue had no space (timeout 0).
_FULL_OPERATIONS = ("send", "send_many", "reserve", "send_obj", "send_array")
