"""Event loops (issue 13): fileno() and arm(), selectors, asyncio coroutines
without a thread per channel, cancellation, shmchan.wait()."""

from __future__ import annotations

import asyncio
import selectors
import sys
import threading
import time
import unittest

import shmchan
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


if __name__ == "__main__":
    unittest.main()
