"""open(..., wait=seconds) waits for a channel to be created; the empty and
full cases of the non-blocking queue calls."""

from __future__ import annotations

import subprocess
import sys
import time
import unittest
from typing import Any

from support import ChannelTest, child_env, queue_supported

import shmchan
from shmchan import _wait

CREATE_LATER = (
    "import sys, time, shmchan\n"
    "time.sleep(float(sys.argv[3]))\n"
    "if sys.argv[2] == 'latest':\n"
    "    shmchan.Latest.create(sys.argv[1], max_msg=16).publish(b'hello')\n"
    "else:\n"
    "    import pathlib\n"
    "    q = shmchan.Queue.create(pathlib.Path(sys.argv[1]), max_msg=16); q.close()\n")


class WaitForCreation(ChannelTest):
    def creator(self, name: str, kind: str, delay: float) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-c", CREATE_LATER, name, kind, str(delay)],
                                env=child_env(), text=True)

    def counting_opens(self) -> list[float]:
        """Record each try of the opener made by _wait.opening."""
        tries: list[float] = []
        real = _wait.opening

        def spy(opener: Any, path: bytes, is_file: bool, wait: Any) -> Any:
            def counted() -> Any:
                tries.append(time.monotonic())
                return opener()
            return real(counted, path, is_file, wait)

        _wait_module: Any = sys.modules["shmchan._latest"]
        self.addCleanup(setattr, _wait_module, "opening", real)
        _wait_module.opening = spy
        return tries

    def test_latest_open_waits_for_the_creator(self) -> None:
        n = self.name()
        tries = self.counting_opens()
        p = self.creator(n, "latest", 0.5)
        t0 = time.monotonic()
        with shmchan.Latest.open(n, wait=30) as ch:
            waited = time.monotonic() - t0
            self.assertEqual(ch.read_next(0, timeout=10), (1, b"hello"))
        p.wait(30)
        self.assertGreater(waited, 0.2)
        # Woken by the creation, not by polling: a few tries, not dozens.
        self.assertLessEqual(len(tries), 6, tries)

    def test_queue_subscribe_waits_for_a_file_channel(self) -> None:
        queue_supported()  # fails when the library lacks a queue function
        path = self.path("later")
        p = self.creator(str(path), "queue", 0.3)
        try:
            with shmchan.Queue.subscribe(path, wait=30) as q:
                self.assertEqual(q.role, "subscriber")
        finally:
            p.wait(30)
            shmchan.unlink(path, missing_ok=True)

    def test_gives_up_after_wait_seconds(self) -> None:
        n = self.name()
        t0 = time.monotonic()
        with self.assertRaises(shmchan.NotFound):
            shmchan.Latest.open(n, wait=0.2)
        self.assertGreaterEqual(time.monotonic() - t0, 0.2)
        with self.assertRaises(shmchan.NotFound):
            shmchan.open_latest(n, wait=0)  # 0: one try
        with self.assertRaises(ValueError):
            shmchan.Latest.open(n, wait=-1)


class NonBlocking(ChannelTest):
    def setUp(self) -> None:
        super().setUp()
        queue_supported()  # fails when the library lacks a queue function

    def test_recv_batch_timeout_zero_on_empty_queue(self) -> None:
        with shmchan.Queue.create(self.name(), role="subscriber") as q:
            self.assertEqual(q.recv_batch(timeout=0), [])
            q.send(b"one")
            self.assertEqual([m.data for m in q.recv_batch(timeout=0)], [b"one"])
            self.assertEqual(q.recv_batch(8, timeout=0), [])
            with self.assertRaises(shmchan.TimedOut):
                q.recv_batch(timeout=0.01)

    def test_full_queue_says_full(self) -> None:
        with shmchan.Queue.create(self.name(), role="subscriber", max_msg=64,
                                  capacity=4096) as q:
            with self.assertRaises(shmchan.WouldBlock) as cm:
                for _ in range(10_000):
                    q.send(b"x" * 64, timeout=0)
            self.assertIn("queue full", str(cm.exception))
            self.assertNotIn("no message", str(cm.exception))
            with self.assertRaises(shmchan.WouldBlock) as cm:
                q.reserve(64, timeout=0)
            self.assertIn("queue full", str(cm.exception))
            q.recv_batch(1000, timeout=0)  # drain
            with self.assertRaises(shmchan.WouldBlock) as cm2:
                q.recv(timeout=0)
            self.assertNotIn("queue full", str(cm2.exception))


if __name__ == "__main__":
    unittest.main()
