"""Python objects as messages: send_obj/recv_obj, publish_obj/read_obj
(pickle protocol 5, large buffers out of band)."""

from __future__ import annotations

import pickle
import struct
import unittest
from typing import Any

from support import ChannelTest, queue_supported, run_python

import shmchan
from shmchan import _obj


class Encoding(unittest.TestCase):
    def test_large_buffers_travel_out_of_band(self) -> None:
        big = bytearray(b"\x07" * 1_000_000)
        enc = _obj._Encoded({"payload": pickle.PickleBuffer(big), "n": 1})
        self.assertEqual(enc.lens, [1_000_000])
        self.assertLess(len(enc.pickle), 1000)  # the stream does not hold the megabyte
        # The buffer kept is the object's own memory, not a copy of it.
        self.assertEqual(enc.buffers[0].obj, big)

    def test_decoded_buffers_are_slices_of_the_one_copy(self) -> None:
        big = bytearray(range(256)) * 100
        enc = _obj._Encoded([pickle.PickleBuffer(big)])
        msg = bytearray(enc.size)
        enc.write(memoryview(msg))
        out = _obj.decode(msg)
        self.assertTrue(bytes(out[0]) == bytes(big))
        # PickleBuffer unpickles to a view of the message copy, not a second
        # copy: a change to the message shows through.
        msg[-1] ^= 0xFF
        self.assertEqual(memoryview(out[0])[-1], big[-1] ^ 0xFF)

    def test_hostile_headers_raise_value_error(self) -> None:
        ok = _obj._Encoded([1, 2, 3])
        good = bytearray(ok.size)
        ok.write(memoryview(good))
        self.assertEqual(_obj.decode(good), [1, 2, 3])
        bad = [
            b"",
            b"XXXX" + bytes(12),
            struct.pack("<4sIQ", b"SCP5", 0xFFFFFFFF, 0),
            struct.pack("<4sIQ", b"SCP5", 0, 1 << 60),
            struct.pack("<4sIQQ", b"SCP5", 1, 0, 1 << 62),
            good[:10],
        ]
        for b in bad:
            with self.subTest(b=bytes(b[:24])):
                with self.assertRaises(ValueError):
                    _obj.decode(bytearray(b))


class Objects(ChannelTest):
    def setUp(self) -> None:
        super().setUp()
        queue_supported()  # fails when the library lacks a queue function

    def test_queue_objects_between_processes(self) -> None:
        n = self.name()
        shmchan.Queue.create(n, max_msg=1 << 16).close()
        with shmchan.Queue.subscribe(n, oldest=True) as q:
            p = run_python(
                "import sys, shmchan\n"
                "with shmchan.Queue.open(sys.argv[1]) as q:\n"
                "    q.send_obj({'k': [1, 2.5, 'three'], 'b': bytearray(b'x' * 5000)})\n"
                "    q.send_obj(('second', None))\n", n)
            self.assertEqual(p.returncode, 0, p.stderr)
            got = q.recv_obj(timeout=5)
            self.assertEqual(got, {"k": [1, 2.5, "three"], "b": bytearray(b"x" * 5000)})
            self.assertEqual(q.recv_obj(timeout=5), ("second", None))
            with self.assertRaises(shmchan.WouldBlock):
                q.recv_obj(timeout=0)

    def test_too_large_sends_nothing(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, max_msg=256, role="subscriber") as q:
            with self.assertRaises(shmchan.MessageTooLarge) as cm:
                q.send_obj(b"y" * 1000)
            self.assertGreater(cm.exception.size, 1000)  # type: ignore[attr-defined]
            q.send_obj("fits")
            self.assertEqual(q.recv_obj(timeout=1), "fits")
            self.assertEqual(q.info().messages, 1)

    def test_not_an_object_message(self) -> None:
        with shmchan.Queue.create(self.name(), role="subscriber") as q:
            q.send(b"plain bytes")
            with self.assertRaises(ValueError):
                q.recv_obj(timeout=1)
            self.assertEqual(q.info().messages, 1)  # consumed, not left to block the queue

    def test_latest_objects(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=4096) as w, shmchan.Latest.open(n) as r:
            with self.assertRaises(shmchan.WouldBlock):
                r.read_obj()
            s1 = w.publish_obj({"v": 1})
            s2 = w.publish_obj({"v": 2})
            self.assertEqual((s1, s2), (1, 2))
            self.assertEqual(r.read_obj(), (2, {"v": 2}))
            res: Any = r.read_next_obj(after=1, timeout=1)
            self.assertEqual(res, (2, {"v": 2}))
            with self.assertRaises(shmchan.TimedOut):
                r.read_next_obj(timeout=0.05)
            with self.assertRaises(shmchan.MessageTooLarge):
                w.publish_obj(b"z" * 5000)
            self.assertEqual(r.read_obj(), (2, {"v": 2}))  # nothing published


if __name__ == "__main__":
    unittest.main()
