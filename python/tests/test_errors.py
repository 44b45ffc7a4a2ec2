"""Error mapping: the exception classes against the C header's table, the
built-in bases, and the classes real failures raise."""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import unittest

import shmchan
from support import CHILD_TIMEOUT, ChannelTest, child_env, unused_id


class ErrorTable(ChannelTest):
    def test_classes_match_the_header_table(self) -> None:
        # The C peer prints SHMCHAN_ERRNO_MAP as compiled from the header.
        rows = self.c_peer("errors").splitlines()
        self.assertGreaterEqual(len(rows), 20)
        seen = set()
        for row in rows:
            code_s, cname, message = row.split(" ", 2)
            code = int(code_s)
            cls = shmchan.error_classes[code]
            short = cname[len("SHMCHAN_"):]
            self.assertIs(getattr(shmchan, short), cls)
            self.assertEqual(cls.code, code)
            self.assertEqual(cls.name, cname)
            self.assertEqual(cls.message, message)
            self.assertTrue(issubclass(cls, shmchan.Error))
            seen.add(code)
        self.assertEqual(seen, set(shmchan.error_classes))  # nothing extra

    def test_builtin_bases_and_errno(self) -> None:
        cases = [
            (shmchan.TimedOut, TimeoutError, errno.ETIMEDOUT),
            (shmchan.NotFound, FileNotFoundError, errno.ENOENT),
            (shmchan.AlreadyExists, FileExistsError, errno.EEXIST),
            (shmchan.AccessDenied, PermissionError, errno.EACCES),
            (shmchan.WouldBlock, BlockingIOError, errno.EAGAIN),
            (shmchan.Interrupted, InterruptedError, errno.EINTR),
            (shmchan.NoSpace, OSError, errno.ENOSPC),
        ]
        for cls, builtin, eno in cases:
            self.assertTrue(issubclass(cls, builtin), cls)
            self.assertTrue(issubclass(cls, shmchan.Error), cls)
            e = cls(channel="c1", operation="open")
            self.assertEqual(e.errno, eno)
            self.assertEqual(e.strerror, cls.message)
            self.assertEqual(e.filename, "c1")
        for cls in (shmchan.InvalidArgument, shmchan.InvalidName, shmchan.MessageTooLarge):
            self.assertTrue(issubclass(cls, ValueError), cls)
        self.assertFalse(issubclass(shmchan.Stale, OSError))
        self.assertIs(shmchan.ShmchanError, shmchan.Error)
        self.assertIs(shmchan.TimedOut, shmchan.ETIMEDOUT)

    def test_attributes_and_text(self) -> None:
        e = shmchan.error_for(shmchan.ETIMEDOUT.code)
        self.assertIsInstance(e, shmchan.TimedOut)
        self.assertEqual(e.code, -6)
        self.assertEqual(e.name, "SHMCHAN_ETIMEDOUT")
        self.assertEqual(e.message, "timed out")
        e2 = shmchan.NotFound(channel="telemetry", operation="open")
        self.assertEqual(str(e2), "open 'telemetry': no such channel [SHMCHAN_ENOENT]")
        self.assertIn("SHMCHAN_ENOENT", repr(e2))

    def test_system_error_carries_os_errno(self) -> None:
        e = shmchan._errors.from_code(shmchan.ESYS.code, "open", "x", errno.EIO)
        self.assertIsInstance(e, OSError)
        self.assertEqual(e.errno, errno.EIO)
        self.assertEqual(e.oserror, errno.EIO)
        self.assertIn(os.strerror(errno.EIO), str(e))

    def test_unknown_code(self) -> None:
        e = shmchan.error_for(-250)
        self.assertIs(type(e), shmchan.Error)
        self.assertEqual(e.code, -250)
        self.assertEqual(e.name, "SHMCHAN_EUNKNOWN")

    def test_pickle_round_trip(self) -> None:
        e = shmchan.NotFound(channel="c", operation="open")
        e2 = pickle.loads(pickle.dumps(e))
        self.assertIs(type(e2), shmchan.NotFound)
        self.assertEqual((e2.code, e2.channel, e2.operation), (e.code, "c", "open"))


class RealFailures(ChannelTest):
    """Each failure raises the class of its C code."""

    def test_open_errors(self) -> None:
        n = self.name()
        with self.assertRaises(shmchan.NotFound):
            shmchan.Latest.open(n)
        with self.assertRaises(shmchan.InvalidName):
            shmchan.Latest.create("bad/name")
        with shmchan.Latest.create(n, max_msg=16):
            with self.assertRaises(shmchan.AlreadyExists):
                shmchan.Latest.create(n, exclusive=True)
            with self.assertRaises(shmchan.GeometryMismatch):
                shmchan.Latest.open(n, max_msg=32)

    def test_not_a_channel(self) -> None:
        p = self.path("foreign")
        p.write_bytes(b"this is not a shmchan channel at all" * 200)
        with self.assertRaises(shmchan.NotAChannel):
            shmchan.Latest.open(p)
        with self.assertRaises(shmchan.NotAChannel):
            shmchan.info(p)

    def test_truncated_file(self) -> None:
        p = self.path("cut")
        with shmchan.Latest.create(p, max_msg=4096) as ch:
            ch.publish(b"x" * 100)
        size = p.stat().st_size
        with open(p, "r+b") as f:
            f.truncate(size // 2)
        with self.assertRaises(shmchan.Truncated):
            shmchan.Latest.open(p)

    # A process of another user, as the C access tests run them: root
    # ignores permission bits, so as root (as CI runs) the opener is a
    # second uid that setpriv(1) starts (util-linux, installed by the test
    # command); as any other user, the file's mode 0 refuses its owner too.
    DENIED_CODE = (
        "import pathlib, sys, shmchan\n"
        "for arg in sys.argv[1:]:\n"
        "    target = pathlib.Path(arg) if arg.startswith('/') else arg  # a file or a name\n"
        "    for ro in (False, True):\n"
        "        try:\n"
        "            shmchan.Latest.open(target, readonly=ro).close()\n"
        "            print('opened', target, ro)\n"
        "        except shmchan.AccessDenied as e:\n"
        "            print('denied', isinstance(e, PermissionError), type(e).__name__)\n"
    )

    @unittest.skipUnless(hasattr(os, "geteuid"), "POSIX users")
    def test_access_denied(self) -> None:
        p = self.path("private")
        with shmchan.Latest.create(p):
            pass
        n = self.name()
        shmchan.Latest.create(n).close()  # mode 0600 by default
        if os.geteuid() != 0:
            os.chmod(p, 0)
            with self.assertRaises(shmchan.AccessDenied) as cm:
                shmchan.Latest.open(p)
            self.assertIsInstance(cm.exception, PermissionError)
            argv = [sys.executable, "-c", self.DENIED_CODE, str(p)]
            targets = 1
        else:
            os.chmod(p.parent, 0o755)  # only the file's own mode (0600, root's) refuses
            uid = str(unused_id())
            setpriv = shutil.which("setpriv")
            self.assertIsNotNone(setpriv, "setpriv not found: install util-linux")
            argv = [str(setpriv), f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                    sys.executable, "-c", self.DENIED_CODE, str(p), n]
            targets = 2
        r = subprocess.run(argv, capture_output=True, text=True, timeout=CHILD_TIMEOUT,
                           env=child_env(), cwd=tempfile.gettempdir())
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ["denied True EACCES"] * 2 * targets,
                         r.stderr)
        self.assertEqual(shmchan.info(n).seq, 0)  # untouched

    def test_call_errors(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=8) as w, shmchan.Latest.open(n, readonly=True) as r:
            with self.assertRaises(shmchan.WouldBlock):
                r.read()
            with self.assertRaises(shmchan.MessageTooLarge):
                w.publish(b"123456789")
            with self.assertRaises(shmchan.ReadOnly):
                r.publish(b"x")
            with self.assertRaises(shmchan.TimedOut):
                r.wait(timeout=0.01)
            with self.assertRaises(shmchan.BadState):
                w.commit()
        with self.assertRaises(shmchan.NotFound):
            shmchan.unlink(self.name())


class Issue12Errors(ChannelTest):
    def test_forked_error_class(self) -> None:
        self.assertIs(shmchan.Forked, shmchan.EFORKED)
        self.assertEqual(shmchan.EFORKED.name, "SHMCHAN_EFORKED")
        self.assertIn("another process", shmchan.EFORKED.message)

    def test_geometry_attributes(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=1024):
            with self.assertRaises(shmchan.GeometryMismatch) as cm:
                shmchan.Latest.create(n, max_msg=2048)
            e = cm.exception
            self.assertEqual((e.field, e.existing, e.requested), ("max_msg", 1024, 2048))
            self.assertIn("max_msg is 1024, not 2048", str(e))
            with self.assertRaises(shmchan.GeometryMismatch) as cm:
                shmchan.Queue.open(n)
            self.assertEqual((cm.exception.field, cm.exception.existing), ("kind", "latest"))
        # Other errors carry no geometry.
        with self.assertRaises(shmchan.NotFound) as nf:
            shmchan.Latest.open(self.name())
        self.assertIsNone(nf.exception.field)


if __name__ == "__main__":
    unittest.main()
