"""SIGBUS with the application's own handler: Python's faulthandler, enabled
after the first open, takes over SIGBUS. A peer that truncates the channel
must still make reads fail with Truncated, not kill the interpreter (exit
135 before the guard handled handlers that re-raise)."""

from __future__ import annotations

import unittest

from support import ChannelTest, run_python

CHILD = r"""
import faulthandler, os, pathlib, sys
import shmchan

path = sys.argv[1]
ch = shmchan.Latest.create(pathlib.Path(path), max_msg=64)
ch.publish(b"before")
faulthandler.enable()
os.truncate(path, 0)
try:
    ch.read()
except shmchan.Truncated:
    print("truncated", flush=True)
try:
    ch.publish(b"after")
except shmchan.Truncated:
    print("truncated", flush=True)
ch.close()
print("alive", flush=True)
"""


class SigbusTest(ChannelTest):
    def test_faulthandler_enabled_after_open(self) -> None:
        p = run_python(CHILD, str(self.path("cut")))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), ["truncated", "truncated", "alive"], p.stderr)


if __name__ == "__main__":
    unittest.main()
