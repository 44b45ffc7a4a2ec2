"""Python objects and numpy arrays as messages: the methods that Queue and
Latest get from the mixins here.

Objects go through pickle protocol 5 with out-of-band buffers: the pickle
stream and each large buffer inside the object (a numpy array's data, a
bytearray, a PickleBuffer) are copied once, straight into the reserved
message in shared memory; the receiver copies the message once into a
bytearray and unpickles with the buffers as slices of it, so arrays come back
writable, referring to that copy. Message layout (little-endian)::

    b"SCP5"  u32 count  u64 pickle_len  u64 len[count]  pickle  (pad to 64) buf ...

Unpickling runs code chosen by whoever wrote the message: use the object
calls only between processes that trust each other (as with multiprocessing).
numpy arrays sent with send_array/publish_array use a plain header instead
(see _numpy.py) and are safe to receive from any writer.
"""

from __future__ import annotations

import pickle
import struct
from typing import TYPE_CHECKING, Any, Optional

from . import _errors, _numpy

if TYPE_CHECKING:
    from ._latest import Latest
    from ._queue import Queue

MAGIC = b"SCP5"
_HEAD = struct.Struct("<4sIQ")
ALIGN = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) & ~(ALIGN - 1)


class _Encoded:
    """An object pickled with its large buffers kept out of band."""

    def __init__(self, obj: Any) -> None:
        self.buffers: list[memoryview] = []
        self.pickle = pickle.dumps(obj, protocol=5, buffer_callback=self._take)
        self.lens = [m.nbytes for m in self.buffers]
        head = _HEAD.size + 8 * len(self.lens)
        self.pickle_at = head
        self.offsets = []
        at = head + len(self.pickle)
        for n in self.lens:
            at = _align(at)
            self.offsets.append(at)
            at += n
        self.size = at

    def _take(self, pb: pickle.PickleBuffer) -> bool:
        try:
            m = pb.raw()  # flat bytes; BufferError if not contiguous
        except BufferError:
            return True  # serialised in band instead
        self.buffers.append(m)
        return False

    def write(self, dst: memoryview) -> None:
        _HEAD.pack_into(dst, 0, MAGIC, len(self.lens), len(self.pickle))
        struct.pack_into(f"<{len(self.lens)}Q", dst, _HEAD.size, *self.lens)
        dst[self.pickle_at:self.pickle_at + len(self.pickle)] = self.pickle
        for at, m in zip(self.offsets, self.buffers):
            dst[at:at + m.nbytes] = m


def decode(buf: Any) -> Any:
    """The object in a message (a writable copy, e.g. a bytearray): validates
    the header against the message's length before unpickling."""
    with memoryview(buf) as whole:
        mv = whole.cast("B")
        try:
            return _decode(mv)
        except BaseException:
            mv.release()  # not kept alive by the traceback
            raise


def _decode(mv: memoryview) -> Any:
    n = mv.nbytes
    if n < _HEAD.size:
        raise ValueError("not an object message (too short)")
    magic, count, plen = _HEAD.unpack_from(mv, 0)
    if magic != MAGIC:
        raise ValueError("not an object message (send_obj/publish_obj)")
    head = _HEAD.size + 8 * count
    if count > n // 8 or head + plen > n:
        raise ValueError("object message header does not fit the message")
    lens = struct.unpack_from(f"<{count}Q", mv, _HEAD.size)
    bufs = []
    at = head + plen
    for ln in lens:
        at = _align(at)
        if at + ln > n:
            raise ValueError("object message header does not fit the message")
        bufs.append(pickle.PickleBuffer(mv[at:at + ln]))
        at += ln
    return pickle.loads(mv[head:head + plen], buffers=bufs)


def _too_large(size: int, max_msg: int, op: str, name: str) -> Exception:
    e = _errors.from_code(_errors.EMSGSIZE, op, name)
    e.size = size  # type: ignore[attr-defined]
    return e


def _take_copy(q: "Queue", timeout: Optional[float], copy: Any) -> Any:
    """copy(data) of the next message, consumed. In overwrite policy a
    message overwritten while being copied is dropped and the next one taken."""
    while True:
        v = q.peek(timeout)
        try:
            out = copy(v.data)
        except BaseException:
            v.release()
            raise
        try:
            v.release()
        except _errors.exported["ESTALE"]:
            continue
        return out


class QueueObjects:
    """Queue.send_obj / recv_obj and the numpy array calls."""

    def send_obj(self: "Queue", obj: Any, timeout: Optional[float] = None) -> None:
        """Send a picklable object as one message (pickle protocol 5; large
        buffers inside it are copied once, straight into the queue). Timeouts
        as in send(); MessageTooLarge (with ``.size``) if it exceeds max_msg."""
        enc = _Encoded(obj)
        if enc.size > self.max_msg:
            raise _too_large(enc.size, self.max_msg, "send_obj", self.name)
        with self.reserve(enc.size, timeout) as r:
            enc.write(r.data)

    def recv_obj(self: "Queue", timeout: Optional[float] = None) -> Any:
        """Receive an object sent with send_obj (timeouts as in recv()). The
        message is copied once; numpy arrays and buffers in the object refer
        to that copy. Unpickling trusts the sender: see the module notes."""
        return decode(_take_copy(self, timeout, bytearray))

    def send_array(self: "Queue", array: Any, timeout: Optional[float] = None) -> None:
        """Send a numpy array (dtype, shape and data) as one message, copied
        once into the queue. Receive it with recv_array() or, without a copy,
        ``peek().array()``."""
        enc = _numpy.Encoded(array)
        if enc.size > self.max_msg:
            raise _too_large(enc.size, self.max_msg, "send_array", self.name)
        with self.reserve(enc.size, timeout) as r:
            enc.write(r.data)

    def recv_array(self: "Queue", timeout: Optional[float] = None) -> Any:
        """Receive an array sent with send_array: a new, writable array."""
        return _take_copy(self, timeout, _numpy.copy_out)


def _publish(ch: "Latest", enc: Any) -> int:
    r = ch.begin(enc.size)
    try:
        enc.write(r.data)
    except BaseException:
        r.abort()
        raise
    return r.commit()


class LatestObjects:
    """Latest.publish_obj / read_obj and the numpy array calls."""

    def publish_obj(self: "Latest", obj: Any) -> int:
        """Publish a picklable object as the newest message (pickle protocol
        5, large buffers copied once, in place); returns its sequence."""
        enc = _Encoded(obj)
        if enc.size > self.max_msg:
            raise _too_large(enc.size, self.max_msg, "publish_obj", self.name)
        return _publish(self, enc)

    def read_obj(self: "Latest") -> tuple[int, Any]:
        """The newest object (published with publish_obj) as (sequence,
        object): copied once, checked untorn. Unpickling trusts the writer."""
        while True:
            with self.view() as v:
                copy = bytearray(v.data)
                if not v.valid():
                    continue  # overwritten while copied: take the newer one
                return v.seq, decode(copy)

    def read_next_obj(self: "Latest", after: Optional[int] = None,
                      timeout: Optional[float] = None) -> tuple[int, Any]:
        """Wait as wait() does, then read_obj()."""
        self.wait(after, timeout)
        return self.read_obj()

    def publish_array(self: "Latest", array: Any) -> int:
        """Publish a numpy array (dtype, shape, data) as the newest message,
        written in place; returns its sequence. Readers get it with
        read_array() or, without a copy, ``view().array()``."""
        enc = _numpy.Encoded(array)
        if enc.size > self.max_msg:
            raise _too_large(enc.size, self.max_msg, "publish_array", self.name)
        return _publish(self, enc)

    def read_array(self: "Latest") -> tuple[int, Any]:
        """The newest array as (sequence, new writable array), checked untorn."""
        while True:
            with self.view() as v:
                arr = _numpy.copy_out(v.data)
                if not v.valid():
                    continue
                return v.seq, arr
