"""shmchan.Latest: every call, in one process (other processes: test_interop)."""

from __future__ import annotations

import array
import os
import threading
import unittest

import shmchan
from support import ChannelTest


class LatestBasics(ChannelTest):
    def test_publish_read_exact_bytes(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=300) as w, shmchan.Latest.open(n) as r:
            self.assertEqual(w.max_msg, 300)
            self.assertEqual(r.max_msg, 300)
            self.assertEqual(r.seq, 0)
            for i in range(1, 51):
                msg = f"msg {i}".encode()
                self.assertEqual(w.publish(msg), i)
                self.assertEqual(r.read(), (i, msg))  # exact length, no padding
            binary = bytes(range(256)) + b"\0" * 44
            self.assertEqual(w.publish(binary), 51)
            self.assertEqual(r.read(), (51, binary))
            self.assertEqual(w.publish(b""), 52)
            self.assertEqual(r.read(), (52, b""))
            self.assertEqual(r.seq, 52)

    def test_bytes_like_arguments(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=64) as ch:
            ch.publish(bytearray(b"bytearray"))
            self.assertEqual(ch.read()[1], b"bytearray")
            ch.publish(memoryview(b"xxreadonly view")[2:])
            self.assertEqual(ch.read()[1], b"readonly view")
            ch.publish(memoryview(bytearray(b"writable view")))
            self.assertEqual(ch.read()[1], b"writable view")
            a = array.array("I", [1, 2, 3])
            ch.publish(a)
            self.assertEqual(ch.read()[1], a.tobytes())
            with self.assertRaises(TypeError):
                ch.publish("a str is not bytes")  # type: ignore[arg-type]

    def test_empty_channel(self) -> None:
        with shmchan.Latest.create(self.name()) as ch:
            with self.assertRaises(shmchan.WouldBlock) as cm:
                ch.read()
            self.assertIsInstance(cm.exception, BlockingIOError)
            with self.assertRaises(shmchan.WouldBlock):
                ch.view()
            with self.assertRaises(shmchan.WouldBlock):
                ch.wait(timeout=0)
            self.assertEqual(ch.max_msg, 4096)  # the library's default

    def test_sizes(self) -> None:
        with shmchan.Latest.create(self.name(), max_msg=100) as ch:
            ch.publish(b"m" * 100)  # exactly the maximum
            with self.assertRaises(shmchan.MessageTooLarge) as cm:
                ch.publish(b"m" * 101)
            self.assertIsInstance(cm.exception, ValueError)
            self.assertEqual(ch.read(), (1, b"m" * 100))

    def test_read_into(self) -> None:
        with shmchan.Latest.create(self.name(), max_msg=64) as ch:
            ch.publish(b"0123456789")
            buf = bytearray(16)
            self.assertEqual(ch.read_into(buf), (1, 10))
            self.assertEqual(bytes(buf[:10]), b"0123456789")
            small = bytearray(4)
            with self.assertRaises(shmchan.MessageTooLarge) as cm:
                ch.read_into(small)
            self.assertEqual(cm.exception.size, 10)  # type: ignore[attr-defined]
            with self.assertRaises(TypeError):
                ch.read_into(b"read-only bytes")

    def test_geometry_and_exclusive(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=128):
            with self.assertRaises(shmchan.AlreadyExists) as cm:
                shmchan.Latest.create(n, exclusive=True)
            self.assertIsInstance(cm.exception, FileExistsError)
            with self.assertRaises(shmchan.GeometryMismatch):
                shmchan.Latest.open(n, max_msg=256)
            with shmchan.Latest.open(n, max_msg=128) as same:
                self.assertEqual(same.max_msg, 128)
            with shmchan.Latest.create(n) as again:  # open-or-create
                self.assertEqual(again.max_msg, 128)
        with self.assertRaises(ValueError):
            shmchan.Latest(n, exclusive=True)

    def test_open_missing_and_bad_names(self) -> None:
        with self.assertRaises(shmchan.NotFound) as cm:
            shmchan.Latest.open("py-no-such-channel")
        e = cm.exception
        self.assertIsInstance(e, FileNotFoundError)
        self.assertEqual(e.channel, "py-no-such-channel")
        self.assertEqual(e.operation, "open")
        for bad in ("", "a/b", "..x", ".hidden", "x" * 23, "sp ace"):
            with self.assertRaises(shmchan.InvalidName, msg=bad):
                shmchan.Latest.create(bad)

    def test_other_kind_is_rejected(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n):
            with self.assertRaises(shmchan.GeometryMismatch):
                shmchan.Queue.open(n)

    def test_mode(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, mode=0o640):
            self.assertEqual(shmchan.info(n).mode & 0o777, 0o640)
        n2 = self.name()
        with shmchan.Latest.create(n2):
            self.assertEqual(shmchan.info(n2).mode & 0o777, 0o600)

    def test_readonly(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=32) as w, shmchan.Latest.open(n, readonly=True) as r:
            self.assertTrue(r.readonly)
            w.publish(b"first")
            self.assertEqual(r.read(), (1, b"first"))
            with self.assertRaises(shmchan.ReadOnly):
                r.publish(b"nope")
            with self.assertRaises(shmchan.ReadOnly):
                r.begin()
            # A read-only handle sleeps on the side wait object (or polls);
            # its timeout must still end the wait.
            with self.assertRaises(shmchan.TimedOut):
                r.wait(timeout=0.05)
            w.publish(b"second")
            self.assertEqual(r.wait(after=1, timeout=5), 2)

    def test_file_backed_persists(self) -> None:
        p = self.path("latest.chan")
        with shmchan.Latest.create(p, max_msg=64) as ch:  # a Path: file-backed
            self.assertTrue(ch.is_file)
            ch.publish(b"kept on disk")
        self.assertTrue(p.exists())
        with shmchan.Latest.open(str(p), file=True) as ch:
            self.assertEqual(ch.read(), (1, b"kept on disk"))
        self.assertEqual(shmchan.info(p).kind, "latest")
        shmchan.unlink(p)
        self.assertFalse(p.exists())

    def test_name_property_and_repr(self) -> None:
        n = self.name()
        ch = shmchan.Latest.create(n)
        self.assertEqual(ch.name, n)
        self.assertFalse(ch.is_file)
        self.assertIn("open", repr(ch))
        ch.close()
        self.assertIn("closed", repr(ch))


class LatestWaiting(ChannelTest):
    def test_wait_and_read_next(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=64) as w, shmchan.Latest.open(n) as r:
            with self.assertRaises(shmchan.TimedOut) as cm:
                r.wait(timeout=0.05)
            self.assertIsInstance(cm.exception, TimeoutError)
            w.publish(b"a")
            self.assertEqual(r.wait(timeout=1), 1)
            self.assertEqual(r.last_seen, 1)
            with self.assertRaises(shmchan.TimedOut):
                r.wait(timeout=0.05)  # after=None: after what it saw
            self.assertEqual(r.wait(after=0, timeout=0), 1)
            w.publish(b"b")
            w.publish(b"c")
            self.assertEqual(r.read_next(timeout=1), (3, b"c"))  # skips b
            with self.assertRaises(shmchan.TimedOut):
                r.read_next(timeout=0.05)
            self.assertEqual(r.read_next(after=2, timeout=0), (3, b"c"))

    def test_wait_wakes_on_publish_from_thread(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=64) as w, shmchan.Latest.open(n) as r:
            got: list[tuple[int, bytes]] = []

            def reader() -> None:
                got.append(r.read_next(after=0, timeout=30))

            t = threading.Thread(target=reader)
            t.start()
            w.publish(b"wake up")
            t.join(30)
            self.assertEqual(got, [(1, b"wake up")])

    def test_updates_iteration(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=64) as w, shmchan.Latest.open(n) as r:
            w.publish(b"one")
            got = list(r.updates(timeout=0))
            self.assertEqual(got, [(1, b"one")])
            w.publish(b"two")
            it = iter(r)
            self.assertEqual(next(it), (2, b"two"))

    def test_bad_timeouts(self) -> None:
        with shmchan.Latest.create(self.name()) as ch:
            for bad in (-1, float("nan")):
                with self.assertRaises(ValueError):
                    ch.wait(timeout=bad)


class LatestZeroCopy(ChannelTest):
    def test_view_valid_then_stale(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=64) as w, shmchan.Latest.open(n) as r:
            w.publish(b"frame 1")
            with r.view() as v:
                self.assertEqual(v.seq, 1)
                self.assertEqual(len(v), 7)
                self.assertTrue(v.data.readonly)
                self.assertEqual(v.data.format, "B")
                self.assertEqual(bytes(v.data), b"frame 1")
                self.assertTrue(v.valid())
                v.check()
                with self.assertRaises(TypeError):
                    v.data[0] = 1  # type: ignore[index]
                # Enough publishes to come round to the viewed buffer.
                for i in range(8):
                    w.publish(b"later %d" % i)
                self.assertFalse(v.valid())
                with self.assertRaises(shmchan.Stale):
                    v.check()
            self.assertTrue(v.released)

    def test_view_cannot_be_used_after_release(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=64) as ch:
            ch.publish(b"payload")
            v = ch.view()
            mv = v.data
            v.release()
            with self.assertRaises(ValueError):
                bytes(mv)  # the memoryview object itself is released
            with self.assertRaises(ValueError):
                v.data
            with self.assertRaises(ValueError):
                v.valid()
            v.release()  # idempotent

    def test_derived_views_block_release_and_close(self) -> None:
        n = self.name()
        ch = shmchan.Latest.create(n, max_msg=64)
        ch.publish(b"0123456789")
        v = ch.view()
        part = v.data[2:5]
        with self.assertRaises(BufferError):
            v.release()
        self.assertFalse(v.released)
        self.assertEqual(bytes(v.data), b"0123456789")  # still usable
        with self.assertRaises(BufferError):
            ch.close()
        self.assertFalse(ch.closed)
        self.assertEqual(bytes(part), b"234")
        del part
        ch.close()  # releases the view
        self.assertTrue(v.released)
        self.assertTrue(ch.closed)

    def test_exported_buffer_blocks_release(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=64) as ch:
            ch.publish(b"abcd")
            v = ch.view()
            exported = memoryview(v.data)  # shares the view's buffer
            with self.assertRaises(BufferError):
                v.release()
            exported.release()
            v.release()

    def test_begin_commit_in_place(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=1 << 20) as w, shmchan.Latest.open(n) as r:
            frame = bytes(i % 251 for i in range(1 << 20))
            res = w.begin()
            self.assertEqual(len(res.data), 1 << 20)
            self.assertFalse(res.data.readonly)
            res.data[:] = frame
            self.assertEqual(res.commit(), 1)
            with self.assertRaises(ValueError):
                res.data  # invalid after commit
            self.assertEqual(r.read(), (1, frame))
            with w.begin(5) as res2:
                res2.data[:] = b"short"
            self.assertEqual(r.read(), (2, b"short"))
            with w.begin() as res3:
                res3.data[:3] = b"abc"
                res3.commit(3)  # explicit length inside the block
            self.assertEqual(r.read(), (3, b"abc"))
            w.begin()
            self.assertEqual(w.commit(0), 4)  # channel-level commit
            self.assertEqual(r.read(), (4, b""))

    def test_begin_abort(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=64) as w:
            w.publish(b"kept")
            res = w.begin()
            res.data[:4] = b"lost"
            res.abort()
            self.assertEqual(w.read(), (1, b"kept"))
            with self.assertRaises(RuntimeError):
                with w.begin() as res:
                    res.data[:4] = b"lost"
                    raise RuntimeError("abandon")
            self.assertEqual(w.read(), (1, b"kept"))
            w.begin()
            w.abort()
            with self.assertRaises(shmchan.BadState):
                w.abort()
            with self.assertRaises(shmchan.BadState):
                res.commit()
            self.assertEqual(w.publish(b"next"), 2)

    def test_begin_excludes_other_writes_in_this_thread(self) -> None:
        with shmchan.Latest.create(self.name(), max_msg=64) as w:
            res = w.begin(2)
            with self.assertRaises(shmchan.BadState):
                w.publish(b"x")
            with self.assertRaises(shmchan.BadState):
                w.begin()
            res.data[:] = b"ok"
            self.assertEqual(res.commit(), 1)

    def test_begin_blocks_writer_in_other_thread(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=64) as w:
            res = w.begin(5)
            done: list[int] = []
            t = threading.Thread(target=lambda: done.append(w.publish(b"other")))
            t.start()
            t.join(0.2)
            self.assertEqual(done, [])  # waits for the reservation
            res.data[:] = b"first"
            self.assertEqual(res.commit(), 1)
            t.join(30)
            self.assertEqual(done, [2])
            self.assertEqual(w.read(), (2, b"other"))

    def test_begin_sizes(self) -> None:
        with shmchan.Latest.create(self.name(), max_msg=8) as w:
            with self.assertRaises(shmchan.MessageTooLarge):
                w.begin(9)
            res = w.begin(8)
            with self.assertRaises(shmchan.MessageTooLarge):
                res.commit(9)
            res.commit(8)

    def test_close_aborts_reservation_and_releases_views(self) -> None:
        n = self.name()
        w = shmchan.Latest.create(n, max_msg=64)
        w.publish(b"one")
        v = w.view()
        res = w.begin()
        w.close()
        self.assertTrue(v.released)
        with self.assertRaises(ValueError):
            res.data
        with shmchan.Latest.open(n) as r:
            self.assertEqual(r.read(), (1, b"one"))
            self.assertEqual(r.publish(b"two"), 2)  # the writer lock is free


class LatestLifetime(ChannelTest):
    def test_closed_object_refuses_calls(self) -> None:
        ch = shmchan.Latest.create(self.name())
        ch.close()
        ch.close()  # idempotent
        self.assertTrue(ch.closed)
        for call in (lambda: ch.publish(b"x"), ch.read, ch.wait, ch.view, ch.begin,
                     lambda: ch.seq):
            with self.assertRaises(ValueError):
                call()

    def test_close_from_other_thread_ends_wait(self) -> None:
        ch = shmchan.Latest.create(self.name())
        errors: list[BaseException] = []

        def waiter() -> None:
            try:
                ch.wait(after=0, timeout=None)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        t = threading.Thread(target=waiter)
        t.start()
        t.join(0.2)
        ch.close()
        t.join(30)
        self.assertFalse(t.is_alive())
        self.assertEqual(len(errors), 1)
        self.assertIsInstance(errors[0], ValueError)

    def test_threads_share_one_object(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=64) as ch:
            per_thread = 300

            def writer(k: int) -> None:
                for i in range(per_thread):
                    ch.publish(b"t%d-%d" % (k, i))
                    seq, data = ch.read()
                    self.assertTrue(data.startswith(b"t"))

            ts = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(60)
            self.assertEqual(ch.seq, 4 * per_thread)
            self.assertEqual(ch.info().messages, 4 * per_thread)

    def test_channel_outlives_handles_until_unlinked(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=16) as ch:
            ch.publish(b"stays")
        # No resource tracker, no unlink on close: the channel is still there.
        with shmchan.Latest.open(n) as ch:
            self.assertEqual(ch.read(), (1, b"stays"))
        shmchan.unlink(n)
        with self.assertRaises(shmchan.NotFound):
            shmchan.Latest.open(n)

    def test_spin_options(self) -> None:
        n = self.name()
        for spin in (None, 0, 1000):
            with shmchan.Latest.create(n, spin_ns=spin) as ch:
                ch.publish(b"x")
                self.assertEqual(ch.wait(after=0, timeout=0), ch.seq)
        with self.assertRaises(ValueError):
            shmchan.Latest.create(n, spin_ns=-1)


class LatestInputs(ChannelTest):
    """Issue 12: integers never wrap; closed objects, pickling and fork."""

    def test_integers_out_of_range(self) -> None:
        n = self.name()
        for bad in (2**64, 2**64 + 100):
            with self.assertRaises(OverflowError):
                shmchan.Latest.create(n, max_msg=bad)
        with self.assertRaises(OverflowError):
            shmchan.Latest.create(n, mode=2**32)
        with self.assertRaises(ValueError):
            shmchan.Latest.create(n, max_msg=-1)
        with self.assertRaises(TypeError):
            shmchan.Latest.create(n, max_msg=4.5)  # type: ignore[arg-type]
        self.assertFalse(shmchan.exists(n))
        with shmchan.Latest.create(n, max_msg=64) as ch:
            self.assertEqual(ch.max_msg, 64)
            ch.publish(b"x")
            for call in (lambda: ch.wait(after=-1, timeout=0),
                         lambda: ch.read_next(after=-1, timeout=0)):
                with self.assertRaises(ValueError):
                    call()
            for call in (lambda: ch.wait(after=2**64, timeout=0),
                         lambda: ch.read_next(after=2**64, timeout=0),
                         lambda: ch.begin(2**64)):
                with self.assertRaises(OverflowError):
                    call()

    def test_info_on_a_closed_channel(self) -> None:
        ch = shmchan.Latest.create(self.name())
        ch.close()
        with self.assertRaises(ValueError):
            ch.info()

    def test_pickling_says_to_pass_the_name(self) -> None:
        import pickle
        with shmchan.Latest.create(self.name()) as ch:
            with self.assertRaisesRegex(TypeError, "pass its name"):
                pickle.dumps(ch)

    @unittest.skipUnless(hasattr(os, "fork"), "needs os.fork")
    def test_forked_child_gets_forked_error(self) -> None:
        with shmchan.Latest.create(self.name()) as ch:
            ch.publish(b"parent")
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    try:
                        ch.publish(b"child")
                    except shmchan.Forked:
                        code = 0
                    ch.close()  # only unmaps
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            self.assertEqual(os.waitstatus_to_exitcode(status), 0)
            self.assertEqual(ch.read(), (1, b"parent"))
            self.assertEqual(ch.publish(b"again"), 2)


if __name__ == "__main__":
    unittest.main()
