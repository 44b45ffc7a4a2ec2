"""Ctrl-C during a wait: a child Python process blocked in a shmchan call gets
SIGINT and must raise KeyboardInterrupt and exit. Without the binding's
bounded slices and EINTR handling it would sleep for ever, which the hang
guard (CHILD_TIMEOUT) turns into a failure."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import unittest

import shmchan
from support import CHILD_TIMEOUT, ChannelTest, child_env, queue_supported

CHILD = r"""
import signal, sys, threading, time
import shmchan

name, kind, call, mode = sys.argv[1:5]
ch = shmchan.Latest.open(name) if kind == "latest" else shmchan.Queue.open(name, role="subscriber")
if mode == "masked":
    # SIGINT then reaches only this helper thread: the main thread's kernel
    # sleep is not interrupted, so only the bounded slices can notice it.
    threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
if mode == "usr1":
    hits = []
    signal.signal(signal.SIGUSR1, lambda *a: hits.append(1))
print("ready", flush=True)
try:
    if call == "wait":
        r = ch.wait(after=0)
    elif call == "read_next":
        r = ch.read_next(after=0)
    else:
        r = ch.recv()
except KeyboardInterrupt:
    print("KeyboardInterrupt", flush=True)
    sys.exit(42)
print("returned", r, flush=True)
sys.exit(0)
"""


def waits_of(name: str) -> int:
    return shmchan.info(name).waits


@unittest.skipUnless(hasattr(signal, "pthread_sigmask"), "POSIX signals")
class CtrlC(ChannelTest):
    def start_child(self, name: str, kind: str, call: str, mode: str) -> subprocess.Popen[str]:
        before = waits_of(name)  # an earlier child of the same test may have slept too
        p = subprocess.Popen([sys.executable, "-c", CHILD, name, kind, call, mode],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=child_env())
        self.addCleanup(self.reap, p)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        # Wait until the child is asleep in the library: the channel counts
        # a reader that went to sleep.
        deadline = time.monotonic() + CHILD_TIMEOUT
        while waits_of(name) <= before:
            self.assertIsNone(p.poll(), p.stderr.read() if p.poll() is not None else "")
            self.assertLess(time.monotonic(), deadline, "child never slept")
            time.sleep(0.01)
        return p

    def reap(self, p: subprocess.Popen[str]) -> None:
        if p.poll() is None:
            p.kill()
        p.communicate()

    def interrupt(self, name: str, kind: str, call: str, mode: str) -> None:
        p = self.start_child(name, kind, call, mode)
        p.send_signal(signal.SIGINT)
        try:
            out, err = p.communicate(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail(f"{call} ({mode}) ignored Ctrl-C")
        self.assertEqual(p.returncode, 42, err)
        self.assertIn("KeyboardInterrupt", out)

    def test_wait(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n):
            self.interrupt(n, "latest", "wait", "plain")

    def test_read_next(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n):
            self.interrupt(n, "latest", "read_next", "plain")

    def test_wait_signal_not_interrupting_the_sleep(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n):
            self.interrupt(n, "latest", "wait", "masked")

    def test_other_signals_do_not_end_the_wait(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=16) as ch:
            p = self.start_child(n, "latest", "read_next", "usr1")
            for _ in range(3):
                p.send_signal(signal.SIGUSR1)
                time.sleep(0.05)
            self.assertIsNone(p.poll())  # still waiting
            ch.publish(b"go")
            out, err = p.communicate(timeout=CHILD_TIMEOUT)
            self.assertEqual(p.returncode, 0, err)
            self.assertIn("returned (1, b'go')", out)

    def test_queue_recv(self) -> None:
        queue_supported()  # fails when the library lacks a queue function
        n = self.name()
        with shmchan.Queue.create(n):
            self.interrupt(n, "queue", "recv", "plain")
            self.interrupt(n, "queue", "recv", "masked")


if __name__ == "__main__":
    unittest.main()
