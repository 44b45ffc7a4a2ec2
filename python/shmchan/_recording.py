"""Reading the recording files of `shmchan record` (docs/recording.md), in
pure Python: no library call is needed, so a recording can be read anywhere.

A file is a 16-byte header ("SHMCHREC", version, header size, flags), then
framed records: a 4-byte length, the CRC-32 (zlib's) of the body, the body.
A recorder killed mid-write leaves a torn record at the end: reading stops
there, and :attr:`Recording.torn_bytes` says how much was left unread.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import BinaryIO, Iterator, NamedTuple, Optional, Union

MAGIC = b"SHMCHREC"
VERSION = 1
_HEADER = struct.Struct("<8sHHI")
_FRAME = struct.Struct("<II")
_SESSION = struct.Struct("<B3xIq")
_CHANNEL = struct.Struct("<BBBxHHQQ")
_MESSAGE = struct.Struct("<BxH4xQqQ")
_BODY_MAX = 1 << 30
_KINDS = {1: "latest", 2: "queue"}
_POLICIES = {0: "", 1: "block", 2: "overwrite"}


class RecordingError(ValueError):
    """The file is not a recording this reader understands, or is damaged
    before its end."""


class RecordedChannel(NamedTuple):
    """A channel as recorded: its name, kind ("queue" or "latest") and sizes."""

    name: str
    kind: str
    policy: str
    max_msg: int
    capacity: int


class RecordedMessage(NamedTuple):
    """One recorded message: its channel, the channel's sequence number, the
    recorder's receive time (Unix epoch nanoseconds), how many messages (queue
    overwrite) or versions (latest value) the recorder missed before it, the
    bytes, and which session of the file (0, 1, ... for appended ones)."""

    channel: RecordedChannel
    seq: int
    time_ns: int
    lost: int
    data: bytes
    session: int


class Recording:
    """A recording file, read from its start::

        with shmchan.Recording("session.rec") as rec:
            for m in rec:
                print(m.channel.name, m.seq, m.time_ns, m.data)
            if rec.torn_bytes:
                print("the recorder was killed; ignored", rec.torn_bytes, "bytes")

    Iterating yields :class:`RecordedMessage` in file order; it can be done
    once per open. ``channels`` lists every channel declared so far.
    """

    def __init__(self, path: Union[str, "os.PathLike[str]"]) -> None:
        self.path = os.fspath(path)
        self._f: BinaryIO = open(self.path, "rb")
        try:
            head = self._f.read(_HEADER.size)
            if len(head) < 8 or head[:8] != MAGIC:
                raise RecordingError(f"{self.path}: not a shmchan recording")
            if len(head) < _HEADER.size:
                raise RecordingError(f"{self.path}: shorter than a recording's header")
            _, version, header_size, _flags = _HEADER.unpack(head)
            if version != VERSION or header_size < _HEADER.size:
                raise RecordingError(f"{self.path}: recording format version {version} not "
                                     f"supported (this reader reads {VERSION})")
            self._f.seek(header_size)
        except BaseException:
            self._f.close()
            raise
        self._offset = header_size
        #: Channels declared so far, in order (all of them once iterated).
        self.channels: list[RecordedChannel] = []
        #: Offset and length of a torn tail found at the end (0, 0 if none).
        self.torn_offset = 0
        self.torn_bytes = 0
        self.sessions = 0
        self._ids: dict[int, RecordedChannel] = {}

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _torn(self, got: int) -> None:
        rest = len(self._f.read())
        self.torn_offset = self._offset
        self.torn_bytes = got + rest

    def _bodies(self) -> Iterator[bytes]:
        while True:
            frame = self._f.read(_FRAME.size)
            if not frame:
                return
            if len(frame) < _FRAME.size:
                self._torn(len(frame))
                return
            length, crc = _FRAME.unpack(frame)
            if length == 0 or length > _BODY_MAX:
                self._torn(len(frame))
                return
            body = self._f.read(length)
            if len(body) < length or zlib.crc32(body) != crc:
                self._torn(len(frame) + len(body))
                return
            self._offset += _FRAME.size + length
            yield body

    def _channel(self, body: bytes) -> None:
        if len(body) < _CHANNEL.size:
            raise RecordingError(f"{self.path}: damaged channel record at {self._offset}")
        _, kind, policy, cid, nlen, max_msg, capacity = _CHANNEL.unpack_from(body)
        name = body[_CHANNEL.size:_CHANNEL.size + nlen]
        if nlen == 0 or len(name) < nlen:
            raise RecordingError(f"{self.path}: damaged channel record at {self._offset}")
        ch = RecordedChannel(name.decode(errors="surrogateescape"), _KINDS.get(kind, "unknown"),
                             _POLICIES.get(policy, ""), max_msg, capacity)
        self._ids[cid] = ch
        self.channels.append(ch)

    def __iter__(self) -> Iterator[RecordedMessage]:
        for body in self._bodies():
            kind = body[0]
            if kind == 1:
                if len(body) < _SESSION.size:
                    raise RecordingError(f"{self.path}: damaged session record")
                self.sessions += 1
                self._ids = {}
            elif kind == 2:
                self._channel(body)
            elif kind == 3:
                if len(body) < _MESSAGE.size:
                    raise RecordingError(f"{self.path}: damaged message record")
                _, cid, seq, time_ns, lost = _MESSAGE.unpack_from(body)
                ch: Optional[RecordedChannel] = self._ids.get(cid)
                if ch is None:
                    raise RecordingError(f"{self.path}: message of an undeclared channel at "
                                         f"offset {self._offset}")
                yield RecordedMessage(ch, seq, time_ns, lost, bytes(body[_MESSAGE.size:]),
                                      self.sessions - 1)
            # other types: newer records this reader skips

    def messages(self) -> list[RecordedMessage]:
        """All (remaining) messages as a list."""
        return list(self)
