"""numpy arrays as messages, without pickle (numpy stays optional: it is
imported on first use).

Message layout (little-endian)::

    b"SCN1"  u8 ndim  u8 dtype_len  u16 0  u64 shape[ndim]  dtype (ASCII)  (pad to 64) data

The dtype is numpy's ``dtype.str`` (``"<f8"``, ``"|u1"``, ``"<M8[ns]"``...):
plain dtypes only, never object arrays (a pointer means nothing in another
process) nor structured ones. A reader validates everything against the
message's length, so any bytes a writer puts there give an array or a
ValueError, never a crash.
"""

from __future__ import annotations

import struct
from typing import Any

MAGIC = b"SCN1"
_HEAD = struct.Struct("<4sBBH")
ALIGN = 64
MAX_NDIM = 32  # numpy's own limit
MAX_DTYPE = 64


def _np() -> Any:
    try:
        import numpy
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise ImportError("shmchan: the array calls need numpy (Debian: python3-numpy)") from e
    return numpy


def _align(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


class Encoded:
    """An array's header and its C-contiguous data, ready to be written."""

    def __init__(self, array: Any) -> None:
        np = _np()
        a = np.asarray(array)
        if a.dtype.hasobject or a.dtype.fields is not None or a.dtype.itemsize == 0:
            raise TypeError(f"arrays of dtype {a.dtype} cannot be sent (plain dtypes only; "
                            "send_obj pickles anything)")
        self.array = np.ascontiguousarray(a)
        self.dtype = a.dtype.str.encode("ascii")
        self.shape = a.shape
        self.data_at = _align(_HEAD.size + 8 * a.ndim + len(self.dtype))
        self.size = self.data_at + self.array.nbytes

    def write(self, dst: memoryview) -> None:
        nd = len(self.shape)
        _HEAD.pack_into(dst, 0, MAGIC, nd, len(self.dtype), 0)
        struct.pack_into(f"<{nd}Q", dst, _HEAD.size, *self.shape)
        at = _HEAD.size + 8 * nd
        dst[at:at + len(self.dtype)] = self.dtype
        n = self.array.nbytes
        if n:  # as bytes: memoryview() refuses some dtypes (datetime64)
            dst[self.data_at:self.data_at + n] = self.array.reshape(-1).view("u1")


def parse(data: Any) -> tuple[Any, tuple[int, ...], int, int]:
    """(dtype, shape, offset, nbytes) of the array message in data, checked."""
    # Released on the way out, also by an exception, whose traceback would
    # otherwise keep an export of a zero-copy view alive.
    with memoryview(data) as mv:
        return _parse(mv)


def _parse(mv: memoryview) -> tuple[Any, tuple[int, ...], int, int]:
    np = _np()
    n = mv.nbytes
    if n < _HEAD.size:
        raise ValueError("not an array message (too short)")
    magic, nd, dlen, _ = _HEAD.unpack_from(mv, 0)
    if magic != MAGIC:
        raise ValueError("not an array message (send_array/publish_array)")
    if nd > MAX_NDIM or dlen == 0 or dlen > MAX_DTYPE or _HEAD.size + 8 * nd + dlen > n:
        raise ValueError("array message header does not fit the message")
    shape = struct.unpack_from(f"<{nd}Q", mv, _HEAD.size)
    at = _HEAD.size + 8 * nd
    try:
        dtype = np.dtype(mv[at:at + dlen].tobytes().decode("ascii"))
    except (TypeError, ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"array message has a bad dtype: {e}") from None
    # A subarray dtype ("(2,3)f8") would add dimensions the shape does not
    # have; no array's dtype is one, so a writer of send_array never sends it.
    if (dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None
            or dtype.itemsize == 0):
        raise ValueError(f"array message has a dtype that is not plain: {dtype}")
    count = 1
    for d in shape:
        count *= d
    nbytes = count * dtype.itemsize
    off = _align(at + dlen)
    if off + nbytes > n:
        raise ValueError("array message is shorter than its shape says")
    return dtype, tuple(shape), off, nbytes


def view_of(data: memoryview) -> Any:
    """A read-only array over data (no copy): it holds an export of data, so
    the view it came from cannot be released while the array lives."""
    np = _np()
    dtype, shape, off, nbytes = parse(data)
    return np.frombuffer(data, dtype=dtype, count=nbytes // dtype.itemsize,
                         offset=off).reshape(shape)


def copy_out(data: memoryview) -> Any:
    """A new, writable array with the message's contents."""
    np = _np()
    dtype, shape, off, nbytes = parse(data)
    out = np.empty(shape, dtype=dtype)
    if nbytes:
        out.reshape(-1).view("u1")[:] = np.frombuffer(data, "u1", nbytes, off)
    return out


class ViewArray:
    """``array()`` of zero-copy views (Latest.view, Queue.peek)."""

    data: memoryview

    def array(self) -> Any:
        """The viewed message (sent with send_array/publish_array) as a
        read-only numpy array over the shared memory, without a copy. Like
        any buffer derived from ``data``, it must be dropped (del) before the
        view is released; release() raises BufferError while it lives. For
        a latest-value view, check() after using it tells whether the bytes
        were overwritten meanwhile."""
        return view_of(self.data)
