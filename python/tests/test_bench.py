"""The Python benchmark runs (tiny sizes; its figures are not checked here:
no timing decides a test)."""

from __future__ import annotations

import subprocess
import sys
import unittest

from support import CHILD_TIMEOUT, REPO, child_env, queue_supported

BENCH = REPO / "bench" / "python" / "bench_python.py"


@unittest.skipUnless(BENCH.exists(), "bench/python not in this tree")
class Bench(unittest.TestCase):
    def test_smoke(self) -> None:
        queue_supported()  # fails when the library lacks a queue function
        p = subprocess.run([sys.executable, str(BENCH), "--smoke"], capture_output=True,
                           text=True, timeout=4 * CHILD_TIMEOUT, env=child_env())
        self.assertEqual(p.returncode, 0, p.stderr)
        table = [line for line in p.stdout.splitlines() if line.startswith("| ")]
        names = [line.split("|")[1].strip() for line in table[1:]]
        self.assertIn("shmchan latest", names)
        self.assertIn("multiprocessing.Pipe", names)
        self.assertIn("multiprocessing.Queue", names)
        self.assertIn("recipe: mmap polling", names)
        self.assertIn("shmchan queue", names)
        self.assertIn("multiprocessing.Pipe (target >= 2 x)", p.stdout)
        self.assertIn("CPU per message (ns)", table[0])

    def test_only_queue_prints_its_target(self) -> None:
        """--only without the multiprocessing rows still prints the queue's
        throughput target against pyzmq (or says there is no pyzmq row)."""
        queue_supported()
        p = subprocess.run([sys.executable, str(BENCH), "--smoke", "--only", "shmchan queue"],
                           capture_output=True, text=True, timeout=4 * CHILD_TIMEOUT,
                           env=child_env())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("multiprocessing.Pipe", p.stdout)
        self.assertIn("- shmchan queue, one send and one recv per message: ", p.stdout)
        self.assertIn("(target >= 2 M msg/s and >= 4 x pyzmq)", p.stdout)

    def test_per_call(self) -> None:
        queue_supported()
        p = subprocess.run([sys.executable, str(BENCH), "--per-call", "--smoke"],
                           capture_output=True, text=True, timeout=4 * CHILD_TIMEOUT,
                           env=child_env())
        self.assertEqual(p.returncode, 0, p.stderr)
        rows = {line.split("|")[1].strip(): line.split("|")[2:6]
                for line in p.stdout.splitlines() if line.startswith("| ")}
        # Each binding in a child of its own; ctypes always loads.
        self.assertIn("native", rows)
        self.assertTrue(all(c.strip().replace(",", "").isdigit() for c in rows["ctypes"]),
                        p.stdout)


if __name__ == "__main__":
    unittest.main()
