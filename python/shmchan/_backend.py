"""Which path the per-message calls take: the compiled module or ctypes.

The compiled module (``shmchan._native``, from _native.c) makes send, recv,
publish, read, wait and read_next plain C methods; everything else stays on
ctypes, over the same library and the same C handle. It is used when found:

1. ``shmchan/_native*.so`` (``.pyd``) in the package (``pip install ./python``
   compiles it when a C compiler and Python's headers are there);
2. next to the libshmchan that was loaded (a CMake build tree builds it there);
3. the path in ``SHMCHAN_NATIVE``.

``SHMCHAN_PY_BACKEND=ctypes`` never loads it; ``=native`` makes ``import
shmchan`` fail when it cannot be loaded (the tests run once each way).
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

from . import _errors, _ffi

ENV_BACKEND = "SHMCHAN_PY_BACKEND"
ENV_NATIVE = "SHMCHAN_NATIVE"
LATEST = 1
QUEUE = 2

# Functions the compiled module calls, by address in the loaded library.
_FUNCTIONS = (
    "shmchan_latest_publish", "shmchan_latest_read", "shmchan_latest_wait",
    "shmchan_latest_read_next", "shmchan_latest_close", "shmchan_queue_send",
    "shmchan_queue_recv", "shmchan_queue_close",
)


def _places() -> list[Path]:
    """Candidate files of the compiled module, in order, without duplicates."""
    out: list[Path] = []
    env = os.environ.get(ENV_NATIVE)
    if env:
        return [Path(env)]
    here = Path(__file__).resolve().parent
    lib_dir = Path(_ffi.library_path).resolve().parent if os.sep in _ffi.library_path else None
    for d in (here, lib_dir):
        if d is None:
            continue
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            p = d / f"_native{suffix}"
            if p.is_file() and p not in out:
                out.append(p)
    return out


def _forked(channel: str) -> Exception:
    """What the compiled module raises for a handle used after fork(): the
    library's own EFORKED, as the ctypes path raises it."""
    return _errors.from_code(_errors.exported["EFORKED"].code, None, channel)


def _load() -> tuple[Optional[ModuleType], Optional[str], list[str]]:
    want = os.environ.get(ENV_BACKEND, "auto").strip().lower() or "auto"
    if want not in ("auto", "native", "ctypes"):
        raise ImportError(f"shmchan: {ENV_BACKEND} must be auto, native or ctypes, not {want!r}")
    tried: list[str] = []
    if want == "ctypes":
        return None, None, tried
    for path in _places():
        try:
            spec = importlib.util.spec_from_file_location("shmchan._native", path)
            if spec is None or spec.loader is None:
                raise ImportError("not a loadable module")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        except (ImportError, OSError) as e:
            tried.append(f"  {path}: {e}")
            continue
        dll = _ffi.dll
        mod.setup(
            {n: ctypes.cast(getattr(dll, n), ctypes.c_void_p).value for n in _FUNCTIONS},
            {n: _errors.exported[n].code for n in ("EAGAIN", "ETIMEDOUT", "EINTR", "ESTATE")},
            _errors.error, _forked)
        return mod, str(path), tried
    if want == "native":
        raise ImportError(
            f"shmchan: {ENV_BACKEND}=native but the compiled module was not loaded; tried:\n"
            + ("\n".join(tried) or "  (no _native module found next to the package or to "
                                   f"{_ffi.library_path})"))
    return None, None, tried


native, native_path, native_tried = _load()
#: "native" (the compiled module) or "ctypes".
name = "native" if native is not None else "ctypes"

_QUEUE_METHODS = ("send", "recv")
_LATEST_METHODS = ("publish", "read", "wait", "read_next")


def attach(channel: Any, kind: int) -> None:
    """After the channel's C handle was opened: give it to the compiled
    module, whose methods then serve the channel's per-message calls (bound
    on the instance), and share its locks with the Python code."""
    if native is None:
        return
    old = channel._handle
    h = native.Handle(kind, old.ptr.value, channel._name, channel._max_msg)
    old.ptr = None  # the compiled Handle owns it now
    channel._handle = h
    channel._wlock = h.wlock
    channel._rlock = h.rlock
    d = channel.__dict__
    for m in (_QUEUE_METHODS if kind == QUEUE else _LATEST_METHODS):
        d[m] = getattr(h, m)


class _LastSeen:
    """Latest._last: kept by the compiled Handle when there is one (its read,
    wait and read_next update it), else in the instance."""

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        h = obj.__dict__.get("_handle")
        if native is not None and type(h) is native.Handle:
            return h.last
        return obj.__dict__.get("_last_seen", 0)

    def __set__(self, obj: Any, value: int) -> None:
        h = obj.__dict__.get("_handle")
        if native is not None and type(h) is native.Handle:
            h.last = value
        else:
            obj.__dict__["_last_seen"] = value


def install(latest_class: type) -> None:
    """Make Latest._last the descriptor above (only with the compiled module)."""
    if native is not None:
        latest_class._last = _LastSeen()  # type: ignore[attr-defined]
