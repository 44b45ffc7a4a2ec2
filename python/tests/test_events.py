"""Event loops (issue 13): fileno() and arm(), selectors, asyncio coroutines
without a thread per channel, cancellation, shmchan.wait()."""

from __future__ import annotations

import asyncio
import os
import select
import selectors
import sys
import threading
import time
import unittest
from typing import Any, Callable
from unittest import mock

import shmchan
from shmchan import _aio
from support import ChannelTest, run_python

LINUX = sys.platform.startswith("linux")


@unittest.skipUnless(LINUX, "readiness descriptors are Linux's (Windows: event HANDLEs)")
class Readiness(ChannelTest):
    def test_fileno_and_arm_with_selectors(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=64) as w, shmchan.Latest.open(n) as r:
            sel = selectors.DefaultSelector()
            sel.register(r, selectors.EVENT_READ)  # the selectors convention
            self.assertEqual(sel.select(0), [])
            w.publish(b"one")
            self.assertEqual(len(sel.select(5)), 1)
            self.assertEqual(r.read(), (1, b"one"))
            r.arm()  # after last_seen (1): nothing newer
            self.assertEqual(sel.select(0), [])
            w.publish(b"two")
            self.assertEqual(len(sel.select(5)), 1)
            r.arm(0)  # something newer than 0 is there: ready at once
            self.assertEqual(len(sel.select(0)), 1)
            sel.close()

    def test_queue_reader_fileno(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, capacity=1 << 16, max_msg=64) as w, \
                shmchan.Queue.open(n, role="subscriber") as sub:
            with self.assertRaises(shmchan.WrongKind):
                w.fileno()
            sel = selectors.DefaultSelector()
            sel.register(sub.fileno(), selectors.EVENT_READ)
            self.assertEqual(sel.select(0), [])
            w.send(b"a")
            w.send(b"b")
            self.assertEqual(len(sel.select(5)), 1)
            self.assertEqual(sub.recv(0), b"a")
            sub.arm()  # b is still there
            self.assertEqual(len(sel.select(0)), 1)
            self.assertEqual(sub.recv(0), b"b")
            sub.arm()
            self.assertEqual(sel.select(0), [])
            sel.close()

    def test_wait_several(self) -> None:
        a, b, qn = self.name(), self.name(), self.name()
        with shmchan.Latest.create(a, max_msg=16) as wa, shmchan.Latest.open(a) as ra, \
                shmchan.Latest.create(b, max_msg=16) as wb, shmchan.Latest.open(b) as rb, \
                shmchan.Queue.create(qn, capacity=1 << 16, max_msg=16) as wq, \
                shmchan.Queue.open(qn, role="subscriber") as rq:
            self.assertEqual(shmchan.wait([ra, rb, rq], 0), [])
            t0 = time.monotonic()
            self.assertEqual(shmchan.wait([ra, rb, rq], 0.05), [])
            self.assertGreaterEqual(time.monotonic() - t0, 0.04)
            wb.publish(b"x")
            wq.send(b"y")
            self.assertEqual(shmchan.wait([ra, rb, rq], 5), [rb, rq])
            rb.read()
            rq.recv(0)
            self.assertEqual(shmchan.wait([ra, rb, rq], 0), [])
            wa.publish(b"z")
            self.assertEqual(shmchan.wait([ra, rb, rq], 5), [ra])


@unittest.skipUnless(LINUX, "asyncio's add_reader on a descriptor: Linux")
class Asyncio(ChannelTest):
    def test_recv_async_from_another_process(self) -> None:
        n = self.name()
        code = ("import sys, time, shmchan\n"
                "q = shmchan.Queue.open(sys.argv[1])\n"
                "time.sleep(0.2)\n"
                "for i in range(100): q.send(b'm%d' % i)\n")

        async def main(q: shmchan.Queue) -> list[bytes]:
            threads = threading.active_count()
            loop = asyncio.get_running_loop()
            child = loop.run_in_executor(None, run_python, code, n)
            got = []
            async for data in q:
                got.append(data)
                self.assertLessEqual(threading.active_count(), threads + 1)  # the child's only
                if len(got) == 100:
                    break
            p = await child
            self.assertEqual(p.returncode, 0, p.stderr)
            return got

        with shmchan.Queue.create(n, capacity=1 << 16, max_msg=64) as own, \
                shmchan.Queue.open(n, role="subscriber") as q:
            got = asyncio.run(main(q))
        self.assertEqual(got, [b"m%d" % i for i in range(100)])

    def test_latest_async_for(self) -> None:
        n = self.name()

        async def main(w: shmchan.Latest, r: shmchan.Latest) -> list[int]:
            async def writer() -> None:
                for i in range(1, 51):
                    w.publish(b"%d" % i)
                    await asyncio.sleep(0.001)

            task = asyncio.ensure_future(writer())
            seen = []
            async for seq, data in r:
                self.assertEqual(data, b"%d" % seq)
                seen.append(seq)
                if seq == 50:
                    break
            await task
            return seen

        with shmchan.Latest.create(n, max_msg=16) as w, shmchan.Latest.open(n) as r:
            seen = asyncio.run(main(w, r))
        self.assertEqual(seen[-1], 50)
        self.assertEqual(seen, sorted(set(seen)))  # newer each time

    def test_cancel_leaves_nothing_blocked(self) -> None:
        n = self.name()

        async def main(q: shmchan.Queue) -> bytes:
            loop = asyncio.get_running_loop()
            threads = threading.active_count()
            t = asyncio.ensure_future(q.recv_async())
            await asyncio.sleep(0.05)
            t.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await t
            self.assertEqual(threading.active_count(), threads)  # no thread was used
            self.assertFalse(loop.remove_reader(q.fileno()))  # nor a reader left
            # Nothing was received by the cancelled call: the next one gets it.
            w.send(b"after")
            return await asyncio.wait_for(q.recv_async(), 5)

        with shmchan.Queue.create(n, capacity=1 << 16, max_msg=64) as w, \
                shmchan.Queue.open(n, role="subscriber") as q:
            self.assertEqual(asyncio.run(main(q)), b"after")

    def test_one_waiter_per_handle(self) -> None:
        n = self.name()

        async def main(q: shmchan.Queue) -> None:
            t = asyncio.ensure_future(q.recv_async())
            await asyncio.sleep(0.01)
            with self.assertRaises(RuntimeError):
                await q.recv_async()
            t.cancel()

        with shmchan.Queue.create(n, capacity=1 << 16, max_msg=64), \
                shmchan.Queue.open(n, role="subscriber") as q:
            asyncio.run(main(q))


class _StandInPool:
    """Stands in for Windows' thread-pool waits (shmchan._aio._ThreadPoolWaits)
    where there are none: register() starts a thread that waits for the
    handle (here the Linux readiness descriptor) and calls back once from
    that thread; unregister() ends the wait and returns only after a running
    callback has finished, as UnregisterWaitEx(INVALID_HANDLE_VALUE) does."""

    def __init__(self) -> None:
        self.registered = 0
        self.fired = 0
        self.lock = threading.Lock()

    def register(self, handle: int, fn: Callable[[], None]) -> Any:
        stop_r, stop_w = os.pipe()

        def wait() -> None:
            r, _, _ = select.select([handle, stop_r], [], [])
            if handle in r and stop_r not in r:
                with self.lock:
                    self.fired += 1
                fn()

        t = threading.Thread(target=wait, daemon=True)
        t.start()
        with self.lock:
            self.registered += 1
        return (t, stop_r, stop_w)

    def unregister(self, token: Any) -> None:
        t, stop_r, stop_w = token
        os.write(stop_w, b"x")
        t.join()
        os.close(stop_r)
        os.close(stop_w)
        with self.lock:
            self.registered -= 1


@unittest.skipUnless(LINUX, "the stand-in waits on Linux readiness descriptors")
class AsyncioThreadPool(ChannelTest):
    """The coroutines' Windows mechanism (a thread-pool wait completing the
    future with call_soon_threadsafe; docs/event-loops.md), run here against
    a stand-in for kernel32's waits, in a loop whose add_reader is
    unsupported as in the Proactor loop. Not a test of kernel32 itself."""

    def setUp(self) -> None:
        super().setUp()
        self.pool = _StandInPool()
        saved = _aio._pool
        _aio._pool = self.pool
        self.addCleanup(setattr, _aio, "_pool", saved)
        patch = mock.patch.object(asyncio.selector_events.BaseSelectorEventLoop, "add_reader",
                                  side_effect=NotImplementedError)
        patch.start()
        self.addCleanup(patch.stop)

    def test_recv_async_and_async_for(self) -> None:
        n = self.name()

        async def main(w: shmchan.Queue, q: shmchan.Queue) -> list[bytes]:
            async def writer() -> None:
                for i in range(50):
                    w.send(b"m%d" % i)
                    await asyncio.sleep(0.001)

            task = asyncio.ensure_future(writer())
            got = [await q.recv_async()]
            async for data in q:
                got.append(data)
                if len(got) == 50:
                    break
            await task
            return got

        with shmchan.Queue.create(n, capacity=1 << 16, max_msg=64) as w, \
                shmchan.Queue.open(n, role="subscriber") as q:
            got = asyncio.run(main(w, q))
        self.assertEqual(got, [b"m%d" % i for i in range(50)])
        self.assertGreater(self.pool.fired, 0)  # some waits were completed by the pool
        self.assertEqual(self.pool.registered, 0)

    def test_latest_read_next_async(self) -> None:
        n = self.name()

        async def main(w: shmchan.Latest, r: shmchan.Latest) -> tuple[int, bytes]:
            t = asyncio.ensure_future(r.read_next_async(0))
            await asyncio.sleep(0.05)
            self.assertFalse(t.done())
            self.assertEqual(self.pool.registered, 1)
            w.publish(b"news")
            return await asyncio.wait_for(t, 5)

        with shmchan.Latest.create(n, max_msg=16) as w, shmchan.Latest.open(n) as r:
            self.assertEqual(asyncio.run(main(w, r)), (1, b"news"))
        self.assertEqual((self.pool.fired, self.pool.registered), (1, 0))

    def test_cancel_unregisters_the_wait(self) -> None:
        n = self.name()

        async def main(w: shmchan.Queue, q: shmchan.Queue) -> bytes:
            t = asyncio.ensure_future(q.recv_async())
            await asyncio.sleep(0.05)
            self.assertEqual(self.pool.registered, 1)
            t.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await t
            self.assertEqual(self.pool.registered, 0)  # nothing left waiting
            w.send(b"after")  # the cancelled call received nothing
            return await asyncio.wait_for(q.recv_async(), 5)

        with shmchan.Queue.create(n, capacity=1 << 16, max_msg=64) as w, \
                shmchan.Queue.open(n, role="subscriber") as q:
            self.assertEqual(asyncio.run(main(w, q)), b"after")
        self.assertEqual(self.pool.registered, 0)

    def test_callback_after_the_loop_closed(self) -> None:
        # A pool thread that fires after the loop is gone must not raise.
        loop = asyncio.new_event_loop()
        loop.close()
        calls: list[Callable[[], None]] = []
        ended: list[Any] = []

        class Capture:
            def register(self, handle: int, fn: Callable[[], None]) -> Any:
                calls.append(fn)
                return "token"

            def unregister(self, token: Any) -> None:
                ended.append(token)

        channel = mock.Mock(_aio_waiting=False)
        coro = _aio._signalled(channel, loop, Capture(), 0)
        coro.send(None)  # registered, now awaiting its future
        self.assertTrue(channel._aio_waiting)
        calls[0]()  # call_soon_threadsafe on a closed loop: ignored
        coro.close()  # the coroutine ends (as when its task is dropped)
        self.assertEqual(ended, ["token"])
        self.assertFalse(channel._aio_waiting)

if __name__ == "__main__":
    unittest.main()
