"""Raw ctypes declarations of libshmchan (include/shmchan/shmchan.h).

Internal: the Pythonic API is in the package itself. Every exported function
gets its argtypes and restype here; handles are ``c_void_p``. Structures
mirror the header field for field; the tests compare their sizes and offsets
with the C compiler's.

The library is looked for, in this order:

1. the path in the environment variable ``SHMCHAN_LIBRARY``;
2. next to this file (a copy placed in the package at install time);
3. the build tree of a source checkout (``<repo>/build*``, then
   ``<repo>/_build/release``, which scripts/test.sh makes), when the package
   is imported from ``<repo>/python``;
4. the libdir where ``pip install`` found it installed (``cmake --install``
   then ``pip install ./python``: no ``ldconfig`` needed);
5. the system: ``ctypes.util.find_library("shmchan")``, then the soname.

``library_path`` is the file that was loaded (for a bare soname, the file the
dynamic loader picked).

Its version is checked at import: the same major version as this binding and
at least the minor version the binding was written for.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from ctypes import (
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_int64,
    c_size_t,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path
from typing import Any

# The C API this binding was written against (include/shmchan/shmchan.h).
API_MAJOR = 0
API_MINOR = 2

ENV_LIBRARY = "SHMCHAN_LIBRARY"

# File names in a package or build directory, then names for the system loader.
if sys.platform == "win32":
    _NAMES = ("libshmchan.dll", "shmchan.dll")
    _SYSTEM = _NAMES
elif sys.platform == "darwin":
    _NAMES = ("libshmchan.dylib", "libshmchan.0.dylib")
    _SYSTEM = ("libshmchan.0.dylib",)
else:
    _NAMES = ("libshmchan.so", "libshmchan.so.0")
    _SYSTEM = ("libshmchan.so.0",)


def _installed_libdir() -> list[Path]:
    """The libdir that ``pip install`` found libshmchan installed in (from
    its pkg-config file), recorded in the wheel as shmchan/_install.py."""
    try:
        from . import _install  # type: ignore[attr-defined]
    except ImportError:
        return []
    libdir = getattr(_install, "LIBDIR", None)
    return [Path(libdir)] if libdir else []


def _candidates() -> list[str]:
    """Paths to try, in order of preference (see the module docstring), each
    once: files that resolve to the same library are tried once."""
    env = os.environ.get(ENV_LIBRARY)
    if env:
        return [env]  # explicit: no silent fallback to another copy
    here = Path(__file__).resolve().parent
    dirs = [here]
    repo = here.parent.parent
    if here.parent.name == "python" and (repo / "include" / "shmchan" / "shmchan.h").exists():
        dirs += [*sorted(repo.glob("build*")), repo / "_build" / "release"]
    dirs += _installed_libdir()
    out: list[str] = []
    seen: set[Path] = set()
    for d in dirs:
        for n in _NAMES:
            p = d / n
            if p.exists() and p.resolve() not in seen:
                seen.add(p.resolve())
                out.append(str(p))
    found = ctypes.util.find_library("shmchan")
    for name in ([found] if found else []) + list(_SYSTEM):
        if name not in out:
            out.append(name)
    return out


def _loaded_path(dll: ctypes.CDLL, fallback: str) -> str:
    """The file the dynamic loader actually opened for dll (Linux: dlinfo)."""
    if not sys.platform.startswith("linux"):
        return fallback
    try:
        class LinkMap(Structure):
            _fields_ = [("l_addr", c_void_p), ("l_name", c_char_p)]

        libc = ctypes.CDLL(None)
        lm = POINTER(LinkMap)()
        RTLD_DI_LINKMAP = 2
        if libc.dlinfo(c_void_p(dll._handle), RTLD_DI_LINKMAP, ctypes.byref(lm)) != 0:
            return fallback
        name = lm.contents.l_name
        return os.path.abspath(os.fsdecode(name)) if name else fallback
    except (AttributeError, OSError, ValueError):
        return fallback


#: Every place tried, in order, up to the one that loaded.
tried: list[str] = []


def _load() -> tuple[ctypes.CDLL, str]:
    errors = []
    for path in _candidates():
        tried.append(path)
        try:
            dll = ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"  {path}: {e}")
            continue
        if not os.path.dirname(path):  # a bare name: the loader searched for it
            return dll, _loaded_path(dll, path)
        return dll, os.path.abspath(path)  # what a relative path meant at load time
    raise ImportError(
        "shmchan: cannot load libshmchan; set SHMCHAN_LIBRARY to its path, build it "
        "(cmake --build build) or install it (cmake --install, then pip install ./python "
        "again). Tried:\n" + "\n".join(errors)
    )


lib, library_path = _load()

# ------------------------------------------------------------------ structs


class Opts(Structure):
    """struct shmchan_opts."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("flags", c_uint32),
        ("mode", c_uint32),
        ("policy", c_uint32),
        ("max_msg", c_uint64),
        ("capacity", c_uint64),
        ("max_readers", c_uint32),
        ("max_writers", c_uint32),
        ("spin_ns", c_uint32),
        ("reserved", c_uint32 * 5),
    ]


class Info(Structure):
    """struct shmchan_info."""

    _fields_ = [
        ("struct_size", c_uint32),
        ("kind", c_uint32),
        ("policy", c_uint32),
        ("mode", c_uint32),
        ("max_msg", c_uint64),
        ("capacity", c_uint64),
        ("region_size", c_uint64),
        ("seq", c_uint64),
        ("messages", c_uint64),
        ("bytes", c_uint64),
        ("drops", c_uint64),
        ("waits", c_uint64),
        ("recovered", c_uint64),
        ("oldest_seq", c_uint64),
        ("readers", c_uint32),
        ("writers", c_uint32),
        ("dead_readers", c_uint32),
        ("dead_writers", c_uint32),
        ("max_readers", c_uint32),
        ("max_writers", c_uint32),
        ("creator_pid", c_uint32),
        ("layout_version", c_uint32),
        ("created_unix_ns", c_int64),
        ("in_use", c_uint32),
        ("reserved", c_uint32 * 7),
    ]


class Peer(Structure):
    """struct shmchan_peer."""

    _fields_ = [
        ("role", c_uint32),
        ("slot", c_uint32),
        ("pid", c_uint32),
        ("alive", c_uint32),
        ("position", c_uint64),
        ("lag", c_uint64),
        ("count", c_uint64),
        ("lost", c_uint64),
    ]


class Msg(Structure):
    """struct shmchan_msg."""

    _fields_ = [
        ("data", c_void_p),
        ("len", c_uint64),
        ("seq", c_uint64),
        ("lost", c_uint64),
        ("token", c_uint64),
    ]


class Request(Structure):
    """struct shmchan_request (services: a request as a server took it)."""

    _fields_ = [
        ("data", c_void_p),
        ("len", c_uint64),
        ("id", c_uint64),
        ("token", c_uint64 * 2),
    ]


class Response(Structure):
    """struct shmchan_response (services: what a client's response carries)."""

    _fields_ = [
        ("id", c_uint64),
        ("len", c_uint64),
        ("flags", c_uint32),
        ("reserved", c_uint32),
    ]


# ---------------------------------------------------------------- constants
# Mirrors of the header's #defines (the error codes come from the library).

WAIT_FOREVER = -1
NAME_MAX = 22

CREATE = 0x0001
EXCL = 0x0002
FILE = 0x0004
RDONLY = 0x0008
GLOBAL = 0x0010
SUBSCRIBE = 0x0100
OLDEST = 0x0200
WORKER = 0x0400
SERVER = 0x0800
RESEND = 0x1000
RESEND_MAX = 3  # shmchan.h SHMCHAN_RESEND_MAX
REPLY_MORE = 0x1
REPLY_ERROR = 0x2

KIND_ANY = 0
KIND_LATEST = 1
KIND_QUEUE = 2
KIND_SERVICE = 3

POLICY_ANY = 0
POLICY_BLOCK = 1
POLICY_OVERWRITE = 2

SPIN_DEFAULT = 0
SPIN_NONE = 0xFFFFFFFF

PEER_WRITER = 1
PEER_SUBSCRIBER = 2
PEER_WORKER = 3
PEER_SERVER = 4
PEER_CLIENT = 5

OK = 0

# ------------------------------------------------------------- prototypes

_P = c_void_p  # every opaque handle
#: shmchan_os_handle: a file descriptor, or a HANDLE on Windows.
OS_HANDLE: Any = c_void_p if sys.platform == "win32" else c_int
_SZ = POINTER(c_size_t)
_U64 = POINTER(c_uint64)

_PROTOTYPES: dict[str, tuple[object, list[object]]] = {
    "shmchan_version": (c_char_p, [POINTER(c_int), POINTER(c_int), POINTER(c_int)]),
    "shmchan_layout_version": (c_uint32, []),
    "shmchan_strerror": (c_char_p, [c_int]),
    "shmchan_errname": (c_char_p, [c_int]),
    "shmchan_last_oserror": (c_int, []),
    "shmchan_last_error_detail": (c_char_p, []),
    "shmchan_last_error_geometry": (c_int, [POINTER(c_char_p), _U64, _U64]),
    "shmchan_opts_init": (None, [POINTER(Opts)]),
    "shmchan_unlink": (c_int, [c_char_p, c_uint32]),
    "shmchan_name_check": (c_int, [c_char_p]),
    "shmchan_info_get": (c_int, [c_char_p, c_uint32, POINTER(Info)]),
    "shmchan_peers_get": (c_int, [c_char_p, c_uint32, POINTER(Peer), c_size_t, _SZ]),
    "shmchan_list_open": (c_int, [POINTER(_P)]),
    "shmchan_list_next": (c_int, [_P, POINTER(c_char_p)]),
    "shmchan_list_close": (None, [_P]),
    "shmchan_reap": (c_int, [c_char_p, c_uint32, c_bool, POINTER(c_int)]),
    # latest-value channels
    "shmchan_latest_open": (c_int, [c_char_p, POINTER(Opts), POINTER(_P)]),
    "shmchan_latest_close": (None, [_P]),
    "shmchan_latest_publish": (c_int, [_P, c_void_p, c_size_t, _U64]),
    "shmchan_latest_begin": (c_int, [_P, POINTER(c_void_p)]),
    "shmchan_latest_commit": (c_int, [_P, c_size_t, _U64]),
    "shmchan_latest_abort": (c_int, [_P]),
    "shmchan_latest_read": (c_int, [_P, c_void_p, c_size_t, _SZ, _U64]),
    "shmchan_latest_wait": (c_int, [_P, c_uint64, c_int64, _U64]),
    "shmchan_latest_read_next": (
        c_int,
        [_P, c_uint64, c_void_p, c_size_t, c_int64, _SZ, _U64],
    ),
    "shmchan_latest_view": (c_int, [_P, POINTER(Msg)]),
    "shmchan_latest_view_check": (c_int, [_P, POINTER(Msg)]),
    "shmchan_latest_seq": (c_uint64, [_P]),
    "shmchan_latest_max_msg": (c_size_t, [_P]),
    # queues
    "shmchan_queue_open": (c_int, [c_char_p, POINTER(Opts), POINTER(_P)]),
    "shmchan_queue_close": (None, [_P]),
    "shmchan_queue_send": (c_int, [_P, c_void_p, c_size_t, c_int64]),
    # msgs as an address: send_many() passes an array('Q') of packed shmchan_msg
    "shmchan_queue_send_batch": (c_int, [_P, c_void_p, c_size_t, c_int64, _SZ]),
    "shmchan_queue_reserve": (c_int, [_P, c_size_t, c_int64, POINTER(c_void_p)]),
    "shmchan_queue_commit": (c_int, [_P, c_size_t]),
    "shmchan_queue_abort": (c_int, [_P]),
    "shmchan_queue_recv": (c_int, [_P, c_void_p, c_size_t, c_int64, _SZ, POINTER(Msg)]),
    "shmchan_queue_recv_batch": (
        c_int,
        [_P, c_void_p, c_size_t, c_size_t, c_int64, POINTER(Msg), _SZ],
    ),
    "shmchan_queue_peek": (c_int, [_P, c_int64, POINTER(Msg)]),
    "shmchan_queue_release": (c_int, [_P]),
    "shmchan_queue_max_msg": (c_size_t, [_P]),
    "shmchan_queue_info": (c_int, [_P, POINTER(Info)]),
    # services (docs/services.md)
    "shmchan_service_open": (c_int, [c_char_p, POINTER(Opts), POINTER(_P)]),
    "shmchan_service_close": (None, [_P]),
    "shmchan_service_max_msg": (c_size_t, [_P]),
    "shmchan_service_request": (c_int, [_P, c_void_p, c_size_t, c_int64, _U64]),
    "shmchan_service_response": (
        c_int,
        [_P, c_void_p, c_size_t, c_int64, _SZ, POINTER(Response)],
    ),
    "shmchan_service_call": (c_int, [_P, c_void_p, c_size_t, c_void_p, c_size_t, c_int64, _SZ]),
    "shmchan_service_take": (c_int, [_P, c_void_p, c_size_t, c_int64, POINTER(Request)]),
    "shmchan_service_reply": (
        c_int,
        [_P, POINTER(Request), c_void_p, c_size_t, c_uint32, c_int64],
    ),
    "shmchan_service_notify": (c_int, [_P, POINTER(OS_HANDLE)]),
    "shmchan_service_arm": (c_int, [_P]),
    # readiness handles and wait-sets (docs/event-loops.md)
    "shmchan_latest_notify": (c_int, [_P, POINTER(OS_HANDLE)]),
    "shmchan_latest_arm": (c_int, [_P, c_uint64]),
    "shmchan_queue_notify": (c_int, [_P, POINTER(OS_HANDLE)]),
    "shmchan_queue_arm": (c_int, [_P]),
    "shmchan_waitset_open": (c_int, [POINTER(_P)]),
    "shmchan_waitset_close": (None, [_P]),
    "shmchan_waitset_add_latest": (c_int, [_P, _P, c_uint64, c_size_t]),
    "shmchan_waitset_add_queue": (c_int, [_P, _P, c_size_t]),
    "shmchan_waitset_add_os": (c_int, [_P, OS_HANDLE, c_size_t]),
    "shmchan_waitset_wait": (c_int, [_P, c_int64, POINTER(c_size_t), c_size_t, _SZ]),
}

def _code_named(short: str) -> int:
    for code in range(-1, -256, -1):
        if lib.shmchan_errname(code) == b"SHMCHAN_" + short.encode():
            return code
    raise ImportError(f"shmchan: library error table lacks SHMCHAN_{short}")


def _stub(restype: object) -> object:
    """Stands in for a function this build lacks: fails with ENOTSUP."""
    rc = _code_named("ENOTSUP") if restype is c_int else 0

    def missing_function(*args: object) -> object:
        return None if restype is None else rc

    return missing_function


# Functions a library of this API version may lack (a build without queues);
# calling them fails with NotSupported instead of failing the import.
_OPTIONAL_PREFIXES = ("shmchan_queue_", "shmchan_waitset_", "shmchan_latest_notify",
                      "shmchan_latest_arm", "shmchan_service_")

missing: list[str] = []
#: Optional functions this library lacks (their calls raise NotSupported).
missing_optional: list[str] = []
for _name, (_restype, _argtypes) in _PROTOTYPES.items():
    try:
        _fn = getattr(lib, _name)
    except AttributeError:
        if _name.startswith(_OPTIONAL_PREFIXES):
            missing_optional.append(_name)
            globals()[_name] = _stub(_restype)
        else:
            missing.append(_name)
        continue
    _fn.restype = _restype
    _fn.argtypes = _argtypes

if missing:
    raise ImportError(f"shmchan: {library_path} lacks {', '.join(missing)}: too old a libshmchan")


class _Functions:
    """lib with the stubs of missing optional functions filled in."""

    def __init__(self, dll: ctypes.CDLL) -> None:
        self._dll = dll

    def __getattr__(self, name: str) -> object:
        stub = globals().get(name)
        fn = stub if stub is not None and name in missing_optional else getattr(self._dll, name)
        setattr(self, name, fn)
        return fn


dll = lib
lib = _Functions(dll)  # type: ignore[assignment]


def fast(name: str) -> Any:
    """A second pointer to an int-returning function, without argtypes.

    ctypes' per-argument conversion through argtypes costs about as much as
    the call itself, so the hot paths (publish, read, send, recv...) use
    these and pass ctypes objects of exactly the C parameter types
    (c_void_p, c_size_t(n), c_int64(ms), byref(...); bytes for a const
    pointer). Everything else goes through the declared prototypes."""
    if name in missing_optional:
        return globals()[name]
    fp = dll._FuncPtr((name, dll))
    fp.restype = c_int
    return fp


#: Constant timeout arguments for the fast calls.
C_NO_WAIT = c_int64(0)

# ------------------------------------------------------------ version check

_maj, _min, _pat = c_int(), c_int(), c_int()
version_string: str = lib.shmchan_version(ctypes.byref(_maj), ctypes.byref(_min),
                                          ctypes.byref(_pat)).decode()
version_info: tuple[int, int, int] = (_maj.value, _min.value, _pat.value)
layout_version: int = lib.shmchan_layout_version()

if version_info[0] != API_MAJOR or version_info[1] < API_MINOR:
    raise ImportError(
        f"shmchan: {library_path} is libshmchan {version_string}; this binding needs "
        f"{API_MAJOR}.{API_MINOR} or a later {API_MAJOR}.x"
    )
if layout_version == 0:
    raise ImportError(f"shmchan: {library_path} reports layout version 0: not a usable build")


def new_opts() -> Opts:
    """A zeroed shmchan_opts with its struct_size set by the library."""
    o = Opts()
    lib.shmchan_opts_init(ctypes.byref(o))
    return o
