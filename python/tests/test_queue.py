"""shmchan.Queue: every call, subscribers and workers, policies, zero-copy,
and Python processes exchanging through one queue."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import unittest
from typing import Optional

import shmchan
from support import CHILD_TIMEOUT, ChannelTest, child_env, queue_supported


class QueueTest(ChannelTest):
    def setUp(self) -> None:
        super().setUp()
        queue_supported()  # fails (never skips) when the library lacks a queue function

    def drain(self, q: shmchan.Queue) -> list[shmchan.Message]:
        return list(q.iter_messages(timeout=0))


class Basics(QueueTest):
    def test_send_recv_exact_bytes(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, max_msg=300, capacity=1 << 16) as w, \
                shmchan.Queue.subscribe(n) as r:
            self.assertEqual(w.max_msg, 300)
            self.assertIsNone(w.role)
            self.assertEqual(r.role, "subscriber")
            msgs = [b"", b"\0", b"msg 1", bytes(range(256)), b"x" * 300]
            for m in msgs:
                w.send(m)
            got = [r.recv_msg(timeout=5) for _ in msgs]
            self.assertEqual([g.data for g in got], msgs)
            seqs = [g.seq for g in got]
            self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(msgs))))
            self.assertEqual({g.lost for g in got}, {0})
            with self.assertRaises(shmchan.MessageTooLarge):
                w.send(b"x" * 301)

    def test_bytes_like_arguments(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, role="subscriber") as q:
            q.send(bytearray(b"ba"))
            q.send(memoryview(b"xxro")[2:])
            q.send(memoryview(bytearray(b"rw")))
            self.assertEqual([q.recv(0), q.recv(0), q.recv(0)], [b"ba", b"ro", b"rw"])

    def test_timeouts(self) -> None:
        with shmchan.Queue.create(self.name(), role="subscriber") as q:
            with self.assertRaises(shmchan.WouldBlock):
                q.recv(timeout=0)
            with self.assertRaises(shmchan.TimedOut) as cm:
                q.recv(timeout=0.05)
            self.assertIsInstance(cm.exception, TimeoutError)
            with self.assertRaises(ValueError):
                q.recv(timeout=-1)

    def test_geometry_and_info(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, max_msg=100, capacity=5000, max_readers=7, max_writers=5,
                                  policy="overwrite") as q:
            i = q.info()
            self.assertEqual(i.kind, "queue")
            self.assertEqual(i.policy, "overwrite")
            self.assertEqual(i.capacity, 8192)  # rounded up to a power of two
            self.assertEqual((i.max_msg, i.max_readers, i.max_writers), (100, 7, 5))
            by_name = shmchan.info(n)
            for f in ("kind", "policy", "capacity", "max_msg", "max_readers", "max_writers",
                      "region_size", "messages", "creator_pid", "layout_version"):
                self.assertEqual(getattr(by_name, f), getattr(i, f), f)
            with self.assertRaises(shmchan.GeometryMismatch):
                shmchan.Queue(n, max_msg=200)
            with self.assertRaises(shmchan.GeometryMismatch):
                shmchan.Queue(n, policy="block")
            with self.assertRaises(shmchan.AlreadyExists):
                shmchan.Queue.create(n, exclusive=True)
            with shmchan.Queue.open(n) as again:
                self.assertEqual(again.max_msg, 100)
            with self.assertRaises(shmchan.GeometryMismatch):
                shmchan.Latest.open(n)  # another kind
        with self.assertRaises(shmchan.InvalidArgument):
            shmchan.Queue.create(self.name(), max_msg=1000, capacity=1024)  # too small

    def test_counters(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, role="subscriber") as q:
            for i in range(10):
                q.send(b"%d" % i)
            self.assertEqual(len(self.drain(q)), 10)
            i = q.info()
            self.assertEqual(i.messages, 10)
            self.assertEqual(i.bytes, 10)
            # Liveness as another process sees it.
            self.assertEqual(shmchan.info(n).readers, 1)
            self.assertTrue(shmchan.info(n).in_use)

    def test_argument_checks(self) -> None:
        n = self.name()
        for kw in ({"role": "boss"}, {"start": "middle"}, {"role": "worker", "start": "oldest"},
                   {"policy": "drop"}, {"exclusive": True}):
            with self.assertRaises(ValueError, msg=kw):
                shmchan.Queue(n, **kw)  # type: ignore[arg-type]
        with shmchan.Queue.create(n) as q:
            with self.assertRaises(shmchan.WrongKind):
                q.recv(timeout=0)  # send-only handle
            with self.assertRaises(shmchan.InvalidArgument):
                shmchan.Queue(n, readonly=True, role="subscriber")
            with shmchan.Queue.open(n, readonly=True) as ro:
                with self.assertRaises(shmchan.ReadOnly):
                    ro.send(b"x")

    def test_file_backed_queue_replays(self) -> None:
        p = self.path("replay.q")
        with shmchan.Queue.create(p, max_msg=64, capacity=1 << 14) as q:
            self.assertTrue(q.is_file)
            for i in range(20):
                q.send(b"kept %d" % i)
        with shmchan.Queue.subscribe(p, oldest=True) as r:
            self.assertEqual([m.data for m in self.drain(r)], [b"kept %d" % i for i in range(20)])
        shmchan.unlink(p)


class Readers(QueueTest):
    def test_subscribers_newest_and_oldest(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n) as w:
            for i in range(3):
                w.send(b"early %d" % i)
            with shmchan.Queue.subscribe(n, oldest=True) as old, \
                    shmchan.Queue.subscribe(n) as new:
                with self.assertRaises(shmchan.WouldBlock):
                    new.recv(timeout=0)
                w.send(b"late")
                self.assertEqual([m.data for m in self.drain(old)],
                                 [b"early 0", b"early 1", b"early 2", b"late"])
                self.assertEqual([m.data for m in self.drain(new)], [b"late"])

    def test_broadcast_to_every_subscriber(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n) as w:
            subs = [shmchan.Queue.subscribe(n) for _ in range(3)]
            try:
                msgs = [b"m%d" % i for i in range(50)]
                for m in msgs:
                    w.send(m)
                for s in subs:
                    self.assertEqual([m.data for m in self.drain(s)], msgs)
            finally:
                for s in subs:
                    s.close()

    def test_workers_share_the_messages(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n) as w, shmchan.Queue.worker(n) as a, \
                shmchan.Queue.open(n, role="worker") as b:
            self.assertEqual(b.role, "worker")
            msgs = {b"job %d" % i for i in range(100)}
            for m in sorted(msgs):
                w.send(m)
            got_a: list[bytes] = []
            got_b: list[bytes] = []
            while True:
                progressed = False
                for q, got in ((a, got_a), (b, got_b)):
                    try:
                        got.append(q.recv(timeout=0))
                        progressed = True
                    except shmchan.WouldBlock:
                        pass
                if not progressed:
                    break
            self.assertEqual(len(got_a) + len(got_b), 100)
            self.assertEqual(set(got_a) | set(got_b), msgs)
            self.assertTrue(got_a and got_b, "both workers got work")

    def test_block_policy_holds_writers_back(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, max_msg=64, capacity=4096, policy="block") as w, \
                shmchan.Queue.subscribe(n) as r:
            sent = 0
            while True:
                try:
                    w.send(b"%063d" % sent, timeout=0)
                except shmchan.WouldBlock:
                    break
                sent += 1
            self.assertGreater(sent, 10)
            with self.assertRaises(shmchan.TimedOut):
                w.send(b"full", timeout=0.05)
            # Consuming frees space (a few records: wrapping may need a pad).
            head = [r.recv(timeout=0) for _ in range(4)]
            self.assertEqual(head, [b"%063d" % i for i in range(4)])
            w.send(b"%063d" % sent, timeout=5)
            rest = [m.data for m in self.drain(r)]
            self.assertEqual(rest, [b"%063d" % i for i in range(4, sent + 1)])
            self.assertGreater(r.info().waits, 0)

    def test_overwrite_policy_counts_losses(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, max_msg=64, capacity=4096, policy="overwrite") as w, \
                shmchan.Queue.subscribe(n) as r:
            total = 500
            for i in range(total):
                w.send(b"%08d" % i, timeout=0)  # never waits
            got = self.drain(r)
            lost = sum(m.lost for m in got)
            self.assertGreater(lost, 0)
            self.assertEqual(len(got) + lost, total)  # every message: got or counted lost
            nums = [int(m.data) for m in got]
            self.assertEqual(nums, sorted(nums))
            self.assertEqual(nums[-1], total - 1)
            self.assertEqual(r.peers()[0].lost if r.peers()[0].role == "subscriber" else lost,
                             lost)

    def test_recv_batch(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, role="subscriber") as q:
            for i in range(10):
                q.send(b"b%d" % i)
            first = q.recv_batch(4, timeout=0)
            self.assertEqual([m.data for m in first], [b"b0", b"b1", b"b2", b"b3"])
            self.assertEqual([m.seq for m in first],
                             list(range(first[0].seq, first[0].seq + 4)))
            rest = q.recv_batch(100, timeout=1)
            self.assertEqual([m.data for m in rest], [b"b%d" % i for i in range(4, 10)])
            self.assertEqual(q.recv_batch(timeout=0), [])  # empty: an empty batch
            with self.assertRaises(ValueError):
                q.recv_batch(0)

    def test_send_many(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, max_msg=100, capacity=1 << 18) as w, \
                shmchan.Queue.subscribe(n) as r:
            msgs = [b"", b"one", bytes(range(100))] + [b"%05d" % i for i in range(3000)]
            self.assertEqual(w.send_many(msgs), len(msgs))
            self.assertEqual(w.send_many(iter([bytearray(b"ba"), memoryview(b"xxro")[2:]])), 2)
            self.assertEqual(w.send_many([]), 0)
            got = [r.recv_msg(timeout=5) for _ in range(len(msgs) + 2)]
            self.assertEqual([g.data for g in got], msgs + [b"ba", b"ro"])
            seqs = [g.seq for g in got]
            self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(got))))
            # Too large: nothing of the chunk goes. Not bytes-like: TypeError.
            with self.assertRaises(shmchan.MessageTooLarge):
                w.send_many([b"ok", b"x" * 101])
            with self.assertRaises(TypeError):
                w.send_many(["text"])  # type: ignore[list-item]
            with self.assertRaises(shmchan.WouldBlock):
                r.recv(timeout=0)

    def test_send_many_when_full(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, max_msg=64, capacity=4096, policy="block") as w, \
                shmchan.Queue.subscribe(n) as r:
            msgs = [b"%063d" % i for i in range(200)]
            first = w.send_many(msgs, timeout=0)
            self.assertGreater(first, 10)
            self.assertLess(first, 200)
            self.assertEqual(w.send_many(msgs[first:], timeout=0.05), 0)
            # A reader in another thread makes room: the rest goes, waiting.
            got: list[bytes] = []
            t = threading.Thread(target=lambda: got.extend(r.recv(timeout=10)
                                                           for _ in range(200)))
            t.start()
            self.assertEqual(w.send_many(msgs[first:], timeout=10), 200 - first)
            t.join(20)
            self.assertEqual(got, msgs)

    def test_recv_into(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, role="subscriber") as q:
            q.send(b"0123456789")
            small = bytearray(4)
            with self.assertRaises(shmchan.MessageTooLarge) as cm:
                q.recv_into(small, timeout=0)
            self.assertEqual(cm.exception.size, 10)  # type: ignore[attr-defined]
            buf = bytearray(16)
            m = q.recv_into(buf, timeout=0)  # the message was left in place
            self.assertEqual(bytes(m.data), b"0123456789")
            self.assertEqual(bytes(buf[:10]), b"0123456789")

    def test_iteration(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, role="subscriber") as q:
            for i in range(5):
                q.send(b"%d" % i)
            got = []
            for data in q:
                got.append(data)
                if len(got) == 5:
                    break
            self.assertEqual(got, [b"0", b"1", b"2", b"3", b"4"])
            self.assertEqual(self.drain(q), [])

    def test_peers(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n) as w, shmchan.Queue.subscribe(n) as s, \
                shmchan.Queue.worker(n):
            w.send(b"x")
            self.assertEqual(s.recv(timeout=0), b"x")
            peers = shmchan.peers(n)
            self.assertEqual(peers, s.peers())
            roles = sorted(p.role for p in peers)
            self.assertIn("subscriber", roles)
            self.assertIn("worker", roles)
            self.assertIn("writer", roles)
            for p in peers:
                self.assertEqual(p.pid, os.getpid())
                self.assertTrue(p.alive)
            sub = [p for p in peers if p.role == "subscriber"][0]
            self.assertEqual((sub.count, sub.lag), (1, 0))


class ZeroCopy(QueueTest):
    def test_reserve_commit_abort(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, max_msg=64, role="subscriber") as q:
            res = q.reserve(10)
            self.assertEqual(len(res.data), 10)
            self.assertFalse(res.data.readonly)
            res.data[:5] = b"hello"
            res.commit(5)
            with self.assertRaises(ValueError):
                res.data
            self.assertEqual(q.recv(timeout=0), b"hello")
            with q.reserve(3) as r2:
                r2.data[:] = b"abc"
            self.assertEqual(q.recv(timeout=0), b"abc")
            with self.assertRaises(RuntimeError):
                with q.reserve(3) as r3:
                    r3.data[:] = b"xyz"
                    raise RuntimeError("abandon")
            q.reserve(4).abort()
            with self.assertRaises(shmchan.WouldBlock):
                q.recv(timeout=0)
            with self.assertRaises(shmchan.MessageTooLarge):
                q.reserve(65)
            res = q.reserve(2)
            with self.assertRaises(shmchan.BadState):
                q.send(b"x")  # this thread holds the reservation
            with self.assertRaises(shmchan.MessageTooLarge):
                res.commit(3)
            res.data[:] = b"ok"
            res.commit()
            with self.assertRaises(shmchan.BadState):
                res.abort()
            self.assertEqual(q.recv(timeout=0), b"ok")

    def test_peek_release(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, role="subscriber") as q:
            q.send(b"first")
            q.send(b"second")
            with q.peek(timeout=1) as v:
                self.assertEqual(bytes(v.data), b"first")
                self.assertTrue(v.data.readonly)
                self.assertEqual(v.lost, 0)
                with self.assertRaises(shmchan.BadState):
                    q.recv(timeout=0)  # a view is held
            self.assertTrue(v.released)
            self.assertEqual(q.recv(timeout=0), b"second")
            with self.assertRaises(shmchan.WouldBlock):
                q.peek(timeout=0)

    def test_peek_derived_buffers_block_release(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, role="subscriber") as q:
            q.send(b"0123456789")
            v = q.peek(timeout=0)
            part = v.data[3:6]
            with self.assertRaises(BufferError):
                v.release()
            self.assertEqual(bytes(part), b"345")
            del part
            v.release()
            with self.assertRaises(shmchan.WouldBlock):
                q.recv(timeout=0)  # consumed

    def test_peek_overwritten_is_stale(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, max_msg=64, capacity=4096, policy="overwrite") as w, \
                shmchan.Queue.subscribe(n) as r:
            w.send(b"looked at")
            v = r.peek(timeout=0)
            for i in range(500):
                w.send(b"%063d" % i, timeout=0)
            with self.assertRaises(shmchan.Stale):
                v.release()
            self.assertTrue(v.released)
            m = r.recv_msg(timeout=0)
            self.assertGreater(m.lost, 0)

    def test_large_frames_in_place(self) -> None:
        n = self.name()
        size = 4 << 20
        frame = bytes(range(256)) * (size // 256)
        with shmchan.Queue.create(n, max_msg=size, capacity=4 * size) as w, \
                shmchan.Queue.subscribe(n) as r:
            with w.reserve(size) as res:
                res.data[:] = frame
            with r.peek(timeout=5) as v:
                self.assertEqual(len(v), size)
                self.assertTrue(v.data == frame)

    def test_close_releases_views_and_reservations(self) -> None:
        n = self.name()
        q = shmchan.Queue.create(n, role="subscriber")
        q.send(b"x")
        v = q.peek(timeout=0)
        res = q.reserve(8)
        q.close()
        self.assertTrue(v.released)
        with self.assertRaises(ValueError):
            res.data
        with self.assertRaises(ValueError):
            q.send(b"y")


class Concurrency(QueueTest):
    def wait_until_waiting(self, q: shmchan.Queue, waits: int,
                           t: Optional[threading.Thread] = None) -> bool:
        """Until a reader of q's queue went to sleep in the library since
        info().waits was `waits` (nobody else waits in these tests), as a
        recv waiting for a message does; False if thread t ended first."""
        deadline = time.monotonic() + CHILD_TIMEOUT
        while q.info().waits == waits:
            if t is not None and not t.is_alive():
                return False
            self.assertLess(time.monotonic(), deadline, "the receiver never waited")
            time.sleep(0.0005)
        return True

    def test_send_goes_while_another_thread_waits_in_recv(self) -> None:
        # shmchan.h: one thread may send while another receives on a queue
        # handle, so the binding's sending and receiving locks are apart. The
        # receiver waits less than one of the binding's wait slices (50 ms):
        # a send that had to wait for that slice to end (one lock of the
        # whole handle, as before) would come after the receiver timed out,
        # every time. A send that goes at once is received, unless this
        # thread was held up for the whole wait, hence a few tries.
        n = self.name()
        with shmchan.Queue.create(n, role="subscriber", spin_ns=0) as q:
            for attempt in range(10):
                want = b"attempt %d" % attempt
                got: list[Optional[bytes]] = []

                def receive() -> None:
                    try:
                        got.append(q.recv(timeout=0.04))
                    except shmchan.TimedOut:
                        got.append(None)

                t = threading.Thread(target=receive)
                waits = q.info().waits
                t.start()
                self.wait_until_waiting(q, waits, t)
                q.send(want)
                t.join(CHILD_TIMEOUT)
                self.assertFalse(t.is_alive())
                if got == [want]:
                    break
                self.assertEqual(got, [None])
                self.assertEqual(q.recv(timeout=0), want)  # it came after the timeout
            else:
                self.fail("every send waited for the receiver's timeout")

    def test_send_and_recv_threads_on_one_handle(self) -> None:
        # Both directions on one handle from two threads: every message
        # arrives, in order, with every byte. The ring holds a few messages,
        # so the sender keeps waiting for space that only the receiving
        # thread on the same handle frees, and the receiver keeps waiting
        # for the sender.
        n = self.name()
        with shmchan.Queue.create(n, role="subscriber", max_msg=256, capacity=1024) as q:
            msgs = [bytes((i * 7 + k) & 0xFF for k in range(i % 200 + 1)) for i in range(2000)]
            got: list[bytes] = []

            def receive() -> None:
                for i in range(len(msgs)):
                    if i % 3 == 0:
                        got.append(q.recv(timeout=CHILD_TIMEOUT))
                    elif i % 3 == 1:
                        got.append(q.recv_msg(timeout=CHILD_TIMEOUT).data)
                    else:
                        with q.peek(timeout=CHILD_TIMEOUT) as v:
                            got.append(bytes(v.data))

            t = threading.Thread(target=receive)
            t.start()
            for i, m in enumerate(msgs):
                if i % 2:
                    q.send(m, timeout=CHILD_TIMEOUT)
                else:
                    with q.reserve(len(m), timeout=CHILD_TIMEOUT) as res:
                        res.data[:] = m
            t.join(CHILD_TIMEOUT)
            self.assertFalse(t.is_alive())
            self.assertEqual(got, msgs)

    def test_first_recv_blocks_while_the_other_thread_sends(self) -> None:
        # The receiver is asleep in recv before each message is sent.
        n = self.name()
        with shmchan.Queue.create(n, role="subscriber", capacity=1 << 16) as q:
            msgs = [b"%d" % i * (i % 7 + 1) for i in range(20)]
            got: list[bytes] = []
            t = threading.Thread(target=lambda: got.extend(q.recv(timeout=CHILD_TIMEOUT)
                                                           for _ in msgs))
            t.start()
            for m in msgs:
                self.wait_until_waiting(q, q.info().waits)
                q.send(m)
            t.join(CHILD_TIMEOUT)
            self.assertEqual(got, msgs)

    def test_threads_share_a_sender(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, capacity=1 << 16) as w, shmchan.Queue.subscribe(n) as r:
            per = 300
            ts = [threading.Thread(target=lambda k=k: [w.send(b"%d:%d" % (k, i))
                                                        for i in range(per)])
                  for k in range(3)]
            for t in ts:
                t.start()
            got = [r.recv(timeout=CHILD_TIMEOUT) for _ in range(3 * per)]
            for t in ts:
                t.join(CHILD_TIMEOUT)
            for k in range(3):
                mine = [int(g.split(b":")[1]) for g in got if g.startswith(b"%d:" % k)]
                self.assertEqual(mine, list(range(per)))

    def test_python_processes_write_one_queue(self) -> None:
        n = self.name()
        per = 300
        code = (
            "import shmchan, sys\n"
            "k = sys.argv[2]\n"
            "with shmchan.Queue.open(sys.argv[1]) as q:\n"
            "    for i in range(int(sys.argv[3])):\n"
            "        q.send(('%s:%d' % (k, i)).encode(), timeout=60)\n"
        )
        with shmchan.Queue.create(n, max_msg=64, capacity=4096) as _, \
                shmchan.Queue.subscribe(n) as r:
            procs = [subprocess.Popen([sys.executable, "-c", code, n, str(k), str(per)],
                                      env=child_env()) for k in range(2)]
            try:
                got = [r.recv(timeout=CHILD_TIMEOUT) for _ in range(2 * per)]
            finally:
                for p in procs:
                    p.wait(CHILD_TIMEOUT)
            self.assertEqual([p.returncode for p in procs], [0, 0])
            for k in range(2):
                mine = [int(g.split(b":")[1]) for g in got if g.startswith(b"%d:" % k)]
                self.assertEqual(mine, list(range(per)))  # each writer's order kept


class Issue12(QueueTest):
    """Block policy before the first reader, fork, pickling, closed objects."""

    def test_block_first_worker_gets_every_message(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, max_msg=64, capacity=4096) as w:
            sent = 0
            with self.assertRaises(shmchan.WouldBlock):
                for i in range(1, 401):
                    w.send(str(i).encode(), timeout=0)
                    sent = i
            self.assertLess(sent, 400)
            with self.assertRaises(shmchan.TimedOut):
                w.send(b"more", timeout=0.05)
            with shmchan.Queue.worker(n) as k:
                got = [k.recv_msg(timeout=5) for _ in range(sent)]
                self.assertEqual([m.data for m in got], [str(i).encode() for i in range(1, sent + 1)])
                self.assertEqual([m.lost for m in got], [0] * sent)
            self.assertEqual(w.info().drops, 0)

    def test_overwrite_with_no_reader_counts_drops(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, max_msg=64, capacity=4096, policy="overwrite") as w:
            for i in range(400):
                w.send(b"%d" % i, timeout=0)
            info = w.info()
            self.assertGreater(info.drops, 0)
            self.assertEqual(info.drops, info.oldest_seq - 1)

    @unittest.skipUnless(hasattr(os, "fork"), "needs os.fork")
    def test_fork_child_keeps_parents_reader_slot(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, max_msg=64, capacity=4096) as w, \
                shmchan.Queue.subscribe(n) as r:
            w.send(b"before")
            self.assertEqual(r.recv(timeout=5), b"before")
            pid = os.fork()
            if pid == 0:  # the child: never touches the handles, exits normally
                code = 1
                try:
                    import gc
                    try:
                        r.recv(timeout=0)
                    except shmchan.Forked:
                        code = 0
                    del r
                    gc.collect()  # the finalisers run here, as at a normal exit
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
            self.assertEqual(w.info().readers, 1)
            sent = 0
            with self.assertRaises(shmchan.WouldBlock):
                for i in range(1000):
                    w.send(b"%d" % i, timeout=0)
                    sent += 1
            self.assertLess(sent, 200)  # a ring of 4 KiB: the subscriber holds writers back
            got = [r.recv(timeout=5) for _ in range(sent)]
            self.assertEqual(got, [b"%d" % i for i in range(sent)])

    def test_pickling_a_handle_says_to_pass_the_name(self) -> None:
        import pickle
        n = self.name()
        with shmchan.Queue.create(n) as w:
            with self.assertRaisesRegex(TypeError, "pass its name"):
                pickle.dumps(w)

    def test_info_and_peers_on_a_closed_queue(self) -> None:
        n = self.name()
        w = shmchan.Queue.create(n)
        w.close()
        with self.assertRaises(ValueError):
            w.info()
        with self.assertRaises(ValueError):
            w.peers()

    def test_integers_out_of_range(self) -> None:
        n = self.name()
        for kw in ({"max_msg": 2**64}, {"max_msg": 2**64 + 100}, {"capacity": 2**64},
                   {"max_readers": 2**32}, {"max_writers": 2**32 + 5}, {"mode": 2**32}):
            with self.subTest(**kw), self.assertRaises(OverflowError):
                shmchan.Queue.create(n, **kw)
        for kw in ({"max_msg": -1}, {"capacity": -4096}, {"max_readers": -1}):
            with self.subTest(**kw), self.assertRaises(ValueError):
                shmchan.Queue.create(n, **kw)
        self.assertFalse(shmchan.exists(n))
        with shmchan.Queue.create(n, max_msg=64) as w:
            with self.assertRaises(OverflowError):
                w.reserve(2**64)
            with self.assertRaises(ValueError):
                w.reserve(-1)

    def test_geometry_mismatch_names_the_field(self) -> None:
        n = self.name()
        with shmchan.Queue.create(n, max_msg=1024, capacity=1 << 16):
            with self.assertRaises(shmchan.GeometryMismatch) as cm:
                shmchan.Queue.create(n, max_msg=2048)
            e = cm.exception
            self.assertEqual((e.field, e.existing, e.requested), ("max_msg", 1024, 2048))
            self.assertIn("max_msg is 1024, not 2048", str(e))
            with self.assertRaises(shmchan.GeometryMismatch) as cm:
                shmchan.Queue.create(n, policy="overwrite")
            self.assertEqual((cm.exception.field, cm.exception.existing,
                              cm.exception.requested), ("policy", "block", "overwrite"))
            with self.assertRaises(shmchan.GeometryMismatch) as cm:
                shmchan.Latest.open(n)
            self.assertEqual((cm.exception.field, cm.exception.existing,
                              cm.exception.requested), ("kind", "queue", "latest"))


if __name__ == "__main__":
    unittest.main()
