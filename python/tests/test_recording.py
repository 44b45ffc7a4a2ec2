"""shmchan.Recording reads what `shmchan record` writes: every message of a
queue and a latest-value channel, a recorder killed with SIGKILL mid-stream,
a torn tail, appended sessions, files that are not recordings."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
import unittest
from pathlib import Path
from typing import Optional

import shmchan
from support import CHILD_TIMEOUT, REPO, ChannelTest


def cli() -> Optional[str]:
    p = os.environ.get("SHMCHAN_CLI")
    if p and os.path.exists(p):
        return p
    for cand in sorted(REPO.glob("_build/*/tools/shmchan/shmchan")):
        return str(cand)
    return None


class RecordingTest(ChannelTest):
    def setUp(self) -> None:
        super().setUp()
        exe = cli()
        if exe is None:
            self.fail("the shmchan CLI was not found (set SHMCHAN_CLI)")
        self.cli = exe
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def start_recorder(self, *args: str) -> subprocess.Popen[bytes]:
        """Start `shmchan record ARGS`; returns once it has subscribed (it
        says so on stderr after writing its channel records). The lines
        before that are in self.before."""
        p = subprocess.Popen([self.cli, "record", *args], stderr=subprocess.PIPE)
        assert p.stderr is not None
        err = p.stderr
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), err.close()))
        self.before = b""
        while True:
            line = err.readline()
            if not line or b": recording " in line:
                break
            self.before += line
        self.assertIn(b"recording", line)
        return p

    def test_queue_and_latest(self) -> None:
        q, l = self.name(), self.name()
        path = Path(self.tmp.name) / "a.rec"
        with shmchan.Queue.create(q, max_msg=256) as tx, shmchan.Latest.create(l) as lt:
            rec = self.start_recorder(q, l, "-o", str(path), "--count", "6")
            sent = []
            for i in range(3):
                tx.send(f"q{i}".encode())
                sent.append((q, i + 1, f"q{i}".encode()))
            lt.publish(b"\x00\xffv1")
            sent.append((l, 1, b"\x00\xffv1"))
            # A latest-value channel keeps only the newest: wait until the
            # recorder took v1 (its file grows) before publishing v2.
            deadline = time.monotonic() + CHILD_TIMEOUT
            while len(self.read(path)) < 4 and time.monotonic() < deadline:
                time.sleep(0.01)
            lt.publish(b"v2")
            tx.send(b"q3")
            sent += [(l, 2, b"v2"), (q, 4, b"q3")]
            self.assertEqual(rec.wait(CHILD_TIMEOUT), 0)
        with shmchan.Recording(path) as r:
            got = [(m.channel.name, m.seq, m.data) for m in r]
            kinds = {c.name: c.kind for c in r.channels}
            self.assertEqual(r.torn_bytes, 0)
            self.assertEqual(r.sessions, 1)
        self.assertEqual(sorted(got), sorted(sent))
        self.assertEqual([g for g in got if g[0] == q], [s for s in sent if s[0] == q])
        self.assertEqual(kinds, {q: "queue", l: "latest"})

    def read(self, path: Path) -> list[shmchan.RecordedMessage]:
        with shmchan.Recording(path) as r:
            return r.messages()

    def test_killed_recorder_and_torn_tail(self) -> None:
        q = self.name()
        path = Path(self.tmp.name) / "k.rec"
        with shmchan.Queue.create(q, max_msg=64, capacity=1 << 16) as tx:
            rec = self.start_recorder(q, "-o", str(path))
            n = 0
            while path.stat().st_size < 200_000:  # well past the first flushes
                tx.send(n.to_bytes(8, "little") * 8)
                n += 1
            rec.send_signal(signal.SIGKILL)
            rec.wait(CHILD_TIMEOUT)
        with shmchan.Recording(path) as r:
            msgs = r.messages()
            torn_at = r.torn_offset if r.torn_bytes else None
        if torn_at is not None:
            # The kill landed while a buffer was half written: cut the torn
            # record off before tearing the file again below.
            os.truncate(path, torn_at)
        # Everything written reads back, in order, with nothing invented.
        self.assertGreater(len(msgs), 1000)
        self.assertLessEqual(len(msgs), n)
        for i, m in enumerate(msgs):
            self.assertEqual((m.seq, m.data), (i + 1, i.to_bytes(8, "little") * 8))
        # Cut the file inside its last record: that record is a torn tail.
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.truncate(size - 10)
        with shmchan.Recording(path) as r:
            again = r.messages()
            self.assertEqual(len(again), len(msgs) - 1)
            self.assertEqual(r.torn_bytes, 8 + 32 + 64 - 10)
            self.assertEqual(r.torn_offset, size - (8 + 32 + 64))
        # Appending cuts the torn tail off and adds a session.
        with shmchan.Queue.open(q) as tx:
            rec = self.start_recorder(q, "-o", str(path), "-a", "--count", "1")
            self.assertIn(b"cut a torn tail of 94 bytes", self.before)
            tx.send(b"after")
            self.assertEqual(rec.wait(CHILD_TIMEOUT), 0)
        with shmchan.Recording(path) as r:
            final = r.messages()
            self.assertEqual(r.torn_bytes, 0)
            self.assertEqual(r.sessions, 2)
        self.assertEqual(final[:-1], again)
        self.assertEqual((final[-1].data, final[-1].session), (b"after", 1))

    def test_not_a_recording(self) -> None:
        p = Path(self.tmp.name) / "x"
        p.write_bytes(b"hello, world, not a recording")
        with self.assertRaises(shmchan.RecordingError):
            shmchan.Recording(p)
        p.write_bytes(b"SHMCHREC\x09\x00\x10\x00\x00\x00\x00\x00")
        with self.assertRaisesRegex(shmchan.RecordingError, "version 9"):
            shmchan.Recording(p)


if __name__ == "__main__":
    unittest.main()
