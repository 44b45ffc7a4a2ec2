"""Cross-language and cross-process exchange: C programs and Python processes
on the same channels, and raw access through multiprocessing.shared_memory
and mmap."""

from __future__ import annotations

import ctypes
import mmap
import os
import random
import struct
import sys
import unittest
from multiprocessing import resource_tracker, shared_memory

import shmchan
from support import CHILD_TIMEOUT, ChannelTest, queue_supported, run_python


def supports_queues() -> bool:
    return queue_supported()  # True, or fails naming the missing functions


def hexs(b: bytes) -> str:
    return b.hex() if b else "-"


def unhex(s: str) -> bytes:
    return b"" if s == "-" else bytes.fromhex(s)


def payloads(seed: int, count: int, max_len: int) -> list[bytes]:
    rnd = random.Random(seed)
    out = [b"", b"\0", b"\0\0msg\0", bytes(range(256))[:max_len]]
    while len(out) < count:
        out.append(bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(max_len + 1))))
    return out[:count]


class Abi(ChannelTest):
    def test_structs_match_the_c_compiler(self) -> None:
        ctypes_of = {
            "shmchan_opts": shmchan._ffi.Opts,
            "shmchan_info": shmchan._ffi.Info,
            "shmchan_peer": shmchan._ffi.Peer,
            "shmchan_msg": shmchan._ffi.Msg,
        }
        checked = 0
        for line in self.c_peer("abi").splitlines():
            parts = line.split()
            if len(parts) == 2:
                self.assertEqual(ctypes.sizeof(ctypes_of[parts[0]]), int(parts[1]), parts[0])
            else:
                struct_name, field = parts[0].split(".")
                desc = getattr(ctypes_of[struct_name], field)
                self.assertEqual((desc.offset, desc.size), (int(parts[1]), int(parts[2])), line)
            checked += 1
        self.assertGreater(checked, 15)


class LatestAcrossLanguages(ChannelTest):
    def test_c_publishes_python_reads(self) -> None:
        n = self.name()
        msgs = payloads(1, 12, 200)
        out = self.c_peer("publish", n, "256", *map(hexs, msgs))
        self.assertEqual(out.split(), [str(i) for i in range(1, 13)])
        with shmchan.Latest.open(n) as ch:
            self.assertEqual(ch.max_msg, 256)
            self.assertEqual(ch.read(), (12, msgs[-1]))
            with ch.view() as v:
                self.assertEqual(bytes(v.data), msgs[-1])

    def test_python_publishes_c_reads(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=512) as ch:
            for i, m in enumerate(payloads(2, 10, 512), 1):
                self.assertEqual(ch.publish(m), i)
                seq, data = self.c_peer("read", n).split()
                self.assertEqual((int(seq), unhex(data)), (i, m))
            with ch.begin(4) as res:  # zero-copy writes are seen by C too
                res.data[:] = b"\x01\x02\x03\x04"
            self.assertEqual(self.c_peer("read", n).split(), ["11", "01020304"])

    def test_c_process_sleeps_until_python_publishes(self) -> None:
        n = self.name()
        msgs = payloads(3, 5, 100)
        with shmchan.Latest.create(n, max_msg=128) as ch:
            p = self.c_peer_start("follow", n, str(len(msgs)), "30000")
            try:
                self.assertEqual(p.stdout.readline().strip(), "ready")
                for i, m in enumerate(msgs, 1):
                    ch.publish(m)
                    # Lockstep: a latest-value reader may skip, so wait for it.
                    seq, data = p.stdout.readline().split()
                    self.assertEqual((int(seq), unhex(data)), (i, m))
                self.assertEqual(p.wait(CHILD_TIMEOUT), 0, p.stderr.read())
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
                p.stderr.close()

    def test_round_trips_through_a_c_echo(self) -> None:
        a, b = self.name(), self.name()
        msgs = payloads(4, 200, 1000)
        with shmchan.Latest.create(a, max_msg=1024) as ping, \
                shmchan.Latest.create(b, max_msg=1024) as pong:
            p = self.c_peer_start("echo", a, b, str(len(msgs)))
            try:
                seq = 0
                for m in msgs:
                    ping.publish(m)
                    seq, data = pong.read_next(seq, timeout=CHILD_TIMEOUT)
                    self.assertEqual(data, m)
                self.assertEqual(seq, len(msgs))
                self.assertEqual(p.wait(CHILD_TIMEOUT), 0, p.stderr.read())
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
                p.stderr.close()

    def test_file_backed_both_ways(self) -> None:
        path = self.path("shared.chan")
        self.c_peer("publish", f"file:{path}", "64", hexs(b"from C\0"))
        with shmchan.Latest.open(path) as ch:
            self.assertEqual(ch.read(), (1, b"from C\0"))
            ch.publish(b"from Python")
        self.assertEqual(self.c_peer("read", f"file:{path}").split(),
                         ["2", hexs(b"from Python")])


class PythonProcesses(ChannelTest):
    def test_python_child_publishes(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=64) as ch:
            code = (
                "import shmchan, sys\n"
                "with shmchan.Latest.open(sys.argv[1]) as ch:\n"
                "    for i in range(1, 6):\n"
                "        ch.publish(b'child %d' % i)\n"
            )
            p = run_python(code, n)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(ch.read(), (5, b"child 5"))
        # The child's exit removed nothing.
        self.assertTrue(shmchan.exists(n))


# Raw access. The layout is internal (src/core/layout.h, docs/layout.md); the
# offsets below are those of layout version 1, as docs/python.md explains.
MAGIC = 0x004E4148434D4853
HDR = struct.Struct("<QIIIIIIIIQQQQQQQqII")
BUF_HDR = 16  # a latest-value buffer: u64 tag, u64 len, then the payload


def parse_latest(buf: memoryview) -> tuple[dict[str, int], int, bytes]:
    """Header fields, and (seq, payload) of the newest message, from raw bytes."""
    (magic, layout, _sig, kind, _policy, _hdr_size, nbuf, _mr, _mw, region_size, max_msg,
     _cap, ctl_off, _ctl_size, data_off, _data_size, _created, _pid, _sum) = HDR.unpack_from(buf, 0)
    hdr = dict(magic=magic, layout=layout, kind=kind, nbuf=nbuf, region_size=region_size,
               max_msg=max_msg, ctl_off=ctl_off, data_off=data_off)
    seq = struct.unpack_from("<Q", buf, ctl_off)[0]
    stride = (BUF_HDR + max_msg + 63) // 64 * 64
    b = data_off + (seq % nbuf) * stride
    tag, length = struct.unpack_from("<QQ", buf, b)
    if tag != 2 * seq:
        raise AssertionError("buffer being written")
    return hdr, seq, bytes(buf[b + BUF_HDR: b + BUF_HDR + length])


class RawAccess(ChannelTest):
    @unittest.skipUnless(sys.platform.startswith("linux"), "POSIX shared memory names")
    def test_multiprocessing_shared_memory_opens_the_region(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=100) as ch:
            ch.publish(b"first")
            ch.publish(b"raw \0 bytes")
            shm = shared_memory.SharedMemory(name="shmchan." + n, create=False)
            # Python 3.11 registers even attached segments with its resource
            # tracker, which would unlink the channel at exit: opt out.
            resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
            try:
                hdr, seq, payload = parse_latest(shm.buf)
                self.assertEqual(hdr["magic"], MAGIC)
                self.assertEqual(hdr["layout"], shmchan.LAYOUT_VERSION)
                self.assertEqual(hdr["kind"], 1)
                self.assertEqual(hdr["max_msg"], 100)
                self.assertLessEqual(hdr["region_size"], shm.size)
                self.assertEqual(hdr["region_size"], ch.info().region_size)
                self.assertEqual((seq, payload), (2, b"raw \0 bytes"))
            finally:
                shm.close()
        self.assertTrue(shmchan.exists(n))

    @unittest.skipUnless(sys.platform.startswith("linux"), "POSIX shared memory names")
    def test_resource_tracker_would_unlink_without_unregister(self) -> None:
        # Why the unregister above matters: a child that attaches and exits
        # without it loses the channel to the tracker; with it, nothing goes.
        code = (
            "import sys\n"
            "from multiprocessing import shared_memory, resource_tracker\n"
            "shm = shared_memory.SharedMemory(name='shmchan.' + sys.argv[1])\n"
            "if sys.argv[2] == 'unregister':\n"
            "    resource_tracker.unregister(shm._name, 'shared_memory')\n"
            "shm.close()\n"
        )
        for mode, survives in (("unregister", True), ("keep", False)):
            n = self.name()
            with shmchan.Latest.create(n):
                pass
            p = run_python(code, n, mode)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(shmchan.exists(n), survives, mode)

    def test_mmap_reads_a_file_backed_channel(self) -> None:
        path = self.path("raw.chan")
        self.c_peer("publish", f"file:{path}", "64", hexs(b"written by C"))
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            hdr, seq, payload = parse_latest(memoryview(m))
            self.assertEqual(hdr["magic"], MAGIC)
            self.assertEqual((seq, payload), (1, b"written by C"))
            self.assertEqual(hdr["region_size"], os.path.getsize(path))


@unittest.skipUnless(sys.platform.startswith("linux"), "POSIX shared memory names")
class QueuesAcrossLanguages(ChannelTest):
    def setUp(self) -> None:
        super().setUp()
        supports_queues()

    def test_c_sends_python_subscribes(self) -> None:
        n = self.name()
        msgs = payloads(5, 50, 300)
        with shmchan.Queue.create(n, max_msg=512, capacity=1 << 16,
                                  role="subscriber") as q:
            self.c_peer("qsend", n, *map(hexs, msgs))
            got = [q.recv(timeout=CHILD_TIMEOUT) for _ in msgs]
            self.assertEqual(got, msgs)

    def test_python_sends_c_subscribes(self) -> None:
        n = self.name()
        msgs = payloads(6, 50, 300)
        # A ring smaller than the messages: send_many waits for the C reader.
        with shmchan.Queue.create(n, max_msg=512, capacity=4096) as q:
            p = self.c_peer_start("qrecv", n, "sub", str(len(msgs)), "30000")
            try:
                self.assertEqual(p.stdout.readline().strip(), "ready")
                for m in msgs[:10]:
                    q.send(m, timeout=CHILD_TIMEOUT)
                self.assertEqual(q.send_many(msgs[10:], timeout=CHILD_TIMEOUT), len(msgs) - 10)
                lines = [p.stdout.readline().split() for _ in msgs]
                self.assertEqual([unhex(x[2]) for x in lines], msgs)
                seqs = [int(x[0]) for x in lines]
                self.assertEqual(seqs, sorted(seqs))
                self.assertEqual(p.wait(CHILD_TIMEOUT), 0, p.stderr.read())
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
                p.stderr.close()

    def test_round_trips_through_a_c_queue_echo(self) -> None:
        a, b = self.name(), self.name()
        msgs = payloads(7, 100, 400)
        with shmchan.Queue.create(a, max_msg=512) as out_q, \
                shmchan.Queue.create(b, max_msg=512, role="subscriber") as in_q:
            p = self.c_peer_start("qecho", a, b, str(len(msgs)))
            try:
                self.assertEqual(p.stdout.readline().strip(), "ready")
                for m in msgs:
                    out_q.send(m, timeout=CHILD_TIMEOUT)
                    self.assertEqual(in_q.recv(timeout=CHILD_TIMEOUT), m)
                self.assertEqual(p.wait(CHILD_TIMEOUT), 0, p.stderr.read())
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                p.stdout.close()
                p.stderr.close()

    def test_file_backed_queue_replays_to_c(self) -> None:
        path = self.path("replay.q")
        msgs = payloads(8, 20, 100)
        with shmchan.Queue.create(path, max_msg=128, capacity=1 << 14) as q:
            for m in msgs:
                q.send(m)
        out = self.c_peer("qrecv", f"file:{path}", "oldest", str(len(msgs)), "5000")
        lines = out.splitlines()[1:]
        self.assertEqual([unhex(x.split()[2]) for x in lines], msgs)


if __name__ == "__main__":
    unittest.main()
