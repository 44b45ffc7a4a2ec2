"""The Python examples (examples/python) run and do what they say."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import unittest

import shmchan
from support import CHILD_TIMEOUT, REPO, ChannelTest, child_env, queue_supported

EXAMPLES = REPO / "examples" / "python"


def run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True,
                          text=True, timeout=CHILD_TIMEOUT, env=child_env())


@unittest.skipUnless(EXAMPLES.is_dir(), "examples/python not in this tree")
class Examples(ChannelTest):
    def test_recipe_writer_and_reader(self) -> None:
        n = self.name()
        rd = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "latest_reader.py"), "--name", n, "--create",
             "--until", "msg 5", "--timeout", "30"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())
        try:
            deadline = time.monotonic() + CHILD_TIMEOUT
            while not shmchan.exists(n):  # the reader creates it
                self.assertIsNone(rd.poll())
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.01)
            wr = run("latest_writer.py", "--name", n, "--count", "5", "--interval", "0.02")
            self.assertEqual(wr.returncode, 0, wr.stderr)
            self.assertEqual(wr.stdout.splitlines(),
                             [f"writer: published 'msg {i}' as #{i}" for i in range(1, 6)])
            out, err = rd.communicate(timeout=CHILD_TIMEOUT)
        finally:
            if rd.poll() is None:
                rd.kill()
                rd.communicate()
        self.assertEqual(rd.returncode, 0, err)
        lines = out.splitlines()
        self.assertEqual(lines[-1], "reader: #5 msg 5")
        nums = []
        for line in lines:  # whole messages only, in order (some may be skipped)
            m = re.fullmatch(r"reader: #(\d+) msg (\d+)", line)
            self.assertIsNotNone(m, line)
            self.assertEqual(m.group(1), m.group(2))
            nums.append(int(m.group(1)))
        self.assertEqual(nums, sorted(set(nums)))

    def test_reader_without_writer(self) -> None:
        p = run("latest_reader.py", "--name", self.name())
        self.assertEqual(p.returncode, 1)
        self.assertIn("start the writer first", p.stdout)

    def test_frames_latest(self) -> None:
        p = run("frames_zero_copy.py", "demo", "--name", self.name(), "--frames", "10",
                "--size", "1000000")
        self.assertEqual(p.returncode, 0, p.stderr)
        m = re.search(r"reader: (\d+) frames verified in place", p.stdout)
        self.assertIsNotNone(m, p.stdout)
        self.assertGreaterEqual(int(m.group(1)), 1)
        self.assertIn("writer: 10 frames of 1000000 bytes", p.stdout)

    def test_frames_queue(self) -> None:
        queue_supported()  # fails when the library lacks a queue function
        p = run("frames_zero_copy.py", "demo", "--queue", "--name", self.name(), "--frames",
                "10", "--size", "1000000")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("reader: 10 frames verified in place, 0 discarded", p.stdout)


if __name__ == "__main__":
    unittest.main()
