"""The compiled module (shmchan/_native.c) and the choice of backend.

ctest runs every Python test module twice: with SHMCHAN_PY_BACKEND=native
(python.<module>) and =ctypes (python.ctypes.<module>). The tests here that
name the compiled module run on both passes; they check what each backend
must do, and that the one asked for is the one loaded."""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import unittest

from support import ChannelTest, child_env, queue_supported, run_python

import shmchan

WANT = os.environ.get("SHMCHAN_PY_BACKEND", "")


class Backend(unittest.TestCase):
    def test_the_backend_asked_for_is_loaded(self) -> None:
        if WANT not in ("native", "ctypes"):
            self.skipTest("SHMCHAN_PY_BACKEND not set (ctest sets it)")
        self.assertEqual(shmchan.backend, WANT)
        if WANT == "native":
            self.assertIsNotNone(shmchan.native_path)
            assert shmchan.native_path is not None
            self.assertTrue(os.path.isfile(shmchan.native_path))
            # The per-message calls are the compiled methods, not Python code.
            with shmchan.Latest.create(f"pyn{os.getpid()}", max_msg=8) as ch:
                try:
                    self.assertEqual(type(ch.publish).__name__, "builtin_function_or_method")
                finally:
                    shmchan.unlink(ch.name)
        else:
            self.assertIsNone(shmchan.native_path)

    def test_native_required_but_missing_fails_the_import(self) -> None:
        env = child_env()
        env["SHMCHAN_PY_BACKEND"] = "native"
        env["SHMCHAN_NATIVE"] = "/nonexistent/_native.so"
        p = run_python("import shmchan", env=env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("compiled module was not loaded", p.stderr)

    def test_ctypes_forced(self) -> None:
        env = child_env()
        env["SHMCHAN_PY_BACKEND"] = "ctypes"
        p = run_python("import shmchan; print(shmchan.backend, shmchan.native_path)", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.split(), ["ctypes", "None"])

    def test_bad_backend_name(self) -> None:
        env = child_env()
        env["SHMCHAN_PY_BACKEND"] = "fortran"
        p = run_python("import shmchan", env=env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("SHMCHAN_PY_BACKEND", p.stderr)


class Behaviour(ChannelTest):
    def setUp(self) -> None:
        super().setUp()
        queue_supported()  # fails when the library lacks a queue function

    def test_blocking_recv_releases_the_gil(self) -> None:
        q = shmchan.Queue.create(self.name(), role="subscriber")
        done = threading.Event()

        def waiter() -> None:
            try:
                q.recv(timeout=3)
            except shmchan.TimedOut:
                pass
            done.set()

        t = threading.Thread(target=waiter)
        t.start()
        # While the waiter sleeps in the library, this thread runs Python code.
        spins, end = 0, time.monotonic() + 0.3
        while time.monotonic() < end:
            spins += 1
        waiting = not done.is_set()
        q.send(b"wake")
        t.join(10)
        q.close()
        self.assertTrue(waiting, "this thread could not run while another waited in recv")
        self.assertGreater(spins, 1000)

    def test_blocking_read_next_releases_the_gil(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=16) as w, shmchan.Latest.open(n) as r:
            got: list[tuple[int, bytes]] = []
            t = threading.Thread(target=lambda: got.append(r.read_next(0, timeout=5)))
            t.start()
            time.sleep(0.1)  # the reader is waiting (or about to)
            w.publish(b"late")  # runs only if the waiting thread let go of the GIL
            t.join(10)
            self.assertEqual(got, [(1, b"late")])
            self.assertEqual(r.last_seen, 1)

    def test_close_from_another_thread_ends_a_wait(self) -> None:
        q = shmchan.Queue.create(self.name(), role="subscriber")
        errors: list[BaseException] = []

        def waiter() -> None:
            try:
                q.recv()
            except BaseException as e:  # noqa: B902 - recorded for the assertion
                errors.append(e)

        t = threading.Thread(target=waiter)
        t.start()
        time.sleep(0.1)
        q.close()
        t.join(10)
        self.assertFalse(t.is_alive())
        self.assertEqual(len(errors), 1)
        self.assertIsInstance(errors[0], ValueError)
        self.assertTrue(q.closed)
        with self.assertRaises(ValueError):
            q.send(b"x")

    def test_send_while_this_thread_holds_a_reservation(self) -> None:
        q = shmchan.Queue.create(self.name(), role="subscriber")
        with q:
            r = q.reserve(4)
            with self.assertRaises(shmchan.BadState):
                q.send(b"x", timeout=0)
            r.abort()
            q.send(b"ok")
            self.assertEqual(q.recv(timeout=1), b"ok")

    def test_buffers_and_timeouts(self) -> None:
        q = shmchan.Queue.create(self.name(), role="subscriber", max_msg=64)
        with q:
            q.send(bytearray(b"ab"))
            q.send(memoryview(b"xcd")[1:])
            q.send(memoryview(bytearray(b"ef")).toreadonly())
            self.assertEqual([q.recv(0), q.recv(timeout=0), q.recv()], [b"ab", b"cd", b"ef"])
            with self.assertRaises(ValueError):
                q.send(memoryview(b"abcdef")[::2])
            with self.assertRaises(TypeError):
                q.send("text")  # type: ignore[arg-type]
            with self.assertRaises(ValueError):
                q.recv(timeout=-1)
            with self.assertRaises(shmchan.WouldBlock):
                q.recv(timeout=0)
            t0 = time.monotonic()
            with self.assertRaises(shmchan.TimedOut):
                q.recv(timeout=0.05)
            self.assertGreaterEqual(time.monotonic() - t0, 0.05)
            with self.assertRaises(shmchan.MessageTooLarge):
                q.send(bytes(65))

    def test_large_messages_received_whole(self) -> None:
        q = shmchan.Queue.create(self.name(), role="subscriber", max_msg=1 << 20,
                                 capacity=4 << 20)
        with q:
            big = os.urandom(700_000)
            q.send(big)
            q.send(b"small")
            self.assertEqual(q.recv(1), big)
            self.assertEqual(q.recv(1), b"small")

    @unittest.skipUnless(hasattr(os, "fork"), "fork() is POSIX")
    def test_handle_refused_after_fork_and_left_to_the_parent(self) -> None:
        q = shmchan.Queue.create(self.name(), role="subscriber")
        pid = os.fork()
        if pid == 0:  # child: the handle refuses; dropping it frees nothing of the parent's
            code = 1
            try:
                q.send(b"child")
            except shmchan.Forked:
                code = 0
            del q
            gc.collect()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        q.send(b"parent")  # the parent's handle and reader slot still work
        self.assertEqual(q.recv(timeout=1), b"parent")
        self.assertEqual([p.pid for p in q.peers() if p.role == "subscriber"], [os.getpid()])
        q.close()


if __name__ == "__main__":
    unittest.main()
