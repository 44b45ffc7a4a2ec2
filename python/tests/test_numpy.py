"""numpy arrays as messages: dtype and shape kept, copies on recv_array and
read_array, zero-copy arrays over views guarded like their memoryviews."""

from __future__ import annotations

import struct
import unittest

from support import ChannelTest, queue_supported, run_python

import shmchan

try:
    import numpy as np
except ImportError:  # the test command installs python3-numpy
    np = None  # type: ignore[assignment]


@unittest.skipIf(np is None, "numpy is not installed (Debian: python3-numpy)")
class Arrays(ChannelTest):
    def setUp(self) -> None:
        super().setUp()
        queue_supported()  # fails when the library lacks a queue function

    def samples(self) -> list["np.ndarray"]:
        return [
            np.arange(12, dtype="<f8").reshape(3, 4),
            np.arange(6, dtype=">i2").reshape(2, 3),  # byte order kept
            np.array([True, False, True]),
            np.array([1 + 2j, 3 - 4j], dtype=np.complex64),
            np.array(["2020-01-01", "2021-06-30"], dtype="datetime64[ns]"),
            np.array(3.5),  # 0-d
            np.zeros((0, 3), dtype=np.uint8),  # empty
            np.arange(20, dtype=np.int32).reshape(4, 5).T,  # not contiguous: sent as C order
        ]

    def test_queue_round_trip_keeps_dtype_and_shape(self) -> None:
        with shmchan.Queue.create(self.name(), role="subscriber", max_msg=1 << 16) as q:
            for a in self.samples():
                with self.subTest(dtype=str(a.dtype), shape=a.shape):
                    q.send_array(a)
                    b = q.recv_array(timeout=1)
                    self.assertEqual(b.dtype, a.dtype)
                    self.assertEqual(b.shape, a.shape)
                    np.testing.assert_array_equal(a, b)
                    self.assertTrue(b.flags.writeable)

    def test_between_processes(self) -> None:
        n = self.name()
        shmchan.Queue.create(n, max_msg=1 << 20).close()
        with shmchan.Queue.subscribe(n, oldest=True) as q:
            p = run_python(
                "import sys, numpy as np, shmchan\n"
                "with shmchan.Queue.open(sys.argv[1]) as q:\n"
                "    q.send_array(np.arange(100000, dtype=np.float32).reshape(100, 1000))\n"
                "    q.send_obj({'a': np.eye(3), 'name': 'eye'})\n", n)
            self.assertEqual(p.returncode, 0, p.stderr)
            a = q.recv_array(timeout=5)
            np.testing.assert_array_equal(a, np.arange(100000, dtype=np.float32)
                                          .reshape(100, 1000))
            o = q.recv_obj(timeout=5)
            np.testing.assert_array_equal(o["a"], np.eye(3))
            self.assertTrue(o["a"].flags.writeable)

    def test_peek_array_is_zero_copy_and_guarded(self) -> None:
        with shmchan.Queue.create(self.name(), role="subscriber", max_msg=4096) as q:
            q.send_array(np.arange(10, dtype=np.int64))
            v = q.peek(timeout=1)
            a = v.array()
            np.testing.assert_array_equal(a, np.arange(10))
            self.assertFalse(a.flags.writeable)
            self.assertFalse(a.flags.owndata)  # a view of the message in the ring
            with self.assertRaises(BufferError):
                v.release()  # the array still looks at the ring
            self.assertFalse(v.released)
            np.testing.assert_array_equal(a, np.arange(10))  # still valid
            del a
            v.release()
            self.assertEqual(q.info().messages, 1)
            with self.assertRaises(shmchan.WouldBlock):
                q.peek(timeout=0)

    def test_latest_arrays(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=4096) as w, shmchan.Latest.open(n) as r:
            self.assertEqual(w.publish_array(np.full((2, 2), 7, dtype=np.uint16)), 1)
            seq, a = r.read_array()
            self.assertEqual(seq, 1)
            np.testing.assert_array_equal(a, np.full((2, 2), 7))
            self.assertEqual(a.dtype, np.uint16)
            with r.view() as v:
                z = v.array()
                self.assertEqual(z.shape, (2, 2))
                v.check()
                with self.assertRaises(BufferError):
                    v.release()
                del z

    def test_refused_dtypes_and_sizes(self) -> None:
        with shmchan.Queue.create(self.name(), role="subscriber", max_msg=256) as q:
            with self.assertRaises(TypeError):
                q.send_array(np.array([object()]))
            with self.assertRaises(TypeError):
                q.send_array(np.zeros(2, dtype=[("a", "i4"), ("b", "f8")]))
            with self.assertRaises(shmchan.MessageTooLarge):
                q.send_array(np.zeros(1000))
            self.assertEqual(q.info().messages, 0)

    def test_hostile_messages_raise_value_error(self) -> None:
        head = struct.Struct("<4sBBH")
        bad = [
            b"short",
            b"XXXX" + bytes(60),
            head.pack(b"SCN1", 200, 3, 0) + bytes(64),  # ndim beyond numpy's
            head.pack(b"SCN1", 1, 3, 0) + struct.pack("<Q", 1 << 40) + b"<f8" + bytes(64),
            head.pack(b"SCN1", 1, 2, 0) + struct.pack("<Q", 1) + b"|O" + bytes(64),
            head.pack(b"SCN1", 1, 3, 0) + struct.pack("<Q", 1) + b"zz9" + bytes(64),
            head.pack(b"SCN1", 0, 60, 0) + b"<f8",  # dtype longer than the message
            # A subarray dtype: its dimensions are not in the shape.
            head.pack(b"SCN1", 1, 7, 0) + struct.pack("<Q", 1) + b"(2,3)f8" + bytes(128),
            # Dimensions numpy cannot hold, with a product of 0 bytes.
            head.pack(b"SCN1", 2, 3, 0) + struct.pack("<QQ", 0, (1 << 64) - 1) + b"<f8",
        ]
        with shmchan.Queue.create(self.name(), role="subscriber", max_msg=256) as q:
            for b in bad:
                with self.subTest(b=b[:16]):
                    q.send(b)
                    with self.assertRaises(ValueError):
                        q.recv_array(timeout=1)
                    q.send(b)
                    with q.peek(timeout=1) as v:
                        with self.assertRaises(ValueError):
                            v.array()


if __name__ == "__main__":
    unittest.main()
