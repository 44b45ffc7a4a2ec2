"""Module functions (unlink, info, exists, list, reap, peers, valid_name),
finding and checking the library at import, and packaging."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import shmchan
from support import PYTHON_DIR, ChannelTest, child_env, missing_functions, run_python


class ModuleFunctions(ChannelTest):
    def test_unlink(self) -> None:
        n = self.name()
        shmchan.Latest.create(n).close()
        self.assertTrue(shmchan.exists(n))
        shmchan.unlink(n)
        self.assertFalse(shmchan.exists(n))
        with self.assertRaises(shmchan.NotFound):
            shmchan.unlink(n)
        shmchan.unlink(n, missing_ok=True)
        with self.assertRaises(shmchan.InvalidName):
            shmchan.unlink("no/slashes")

    def test_unlink_while_open(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n, max_msg=8) as ch:
            shmchan.unlink(n)
            self.assertEqual(ch.publish(b"still"), 1)  # the handle keeps working
            self.assertEqual(ch.read(), (1, b"still"))
            self.assertFalse(shmchan.exists(n))

    def test_info(self) -> None:
        n = self.name()
        before = time.time_ns()
        with shmchan.Latest.create(n, max_msg=200) as ch:
            ch.publish(b"12345")
            ch.publish(b"678")
            i = shmchan.info(n)
            self.assertEqual(i, ch.info())
            self.assertEqual(i.kind, "latest")
            self.assertIsNone(i.policy)
            self.assertEqual(i.max_msg, 200)
            self.assertEqual(i.capacity, 0)
            self.assertEqual(i.seq, 2)
            self.assertEqual(i.messages, 2)
            self.assertEqual(i.bytes, 8)
            self.assertEqual(i.creator_pid, os.getpid())
            self.assertEqual(i.layout_version, shmchan.LAYOUT_VERSION)
            self.assertTrue(i.in_use)
            self.assertGreater(i.region_size, 200)
            self.assertGreaterEqual(i.created_unix_ns, before - 10**9)
        self.assertFalse(shmchan.info(n).in_use)
        with self.assertRaises(shmchan.NotFound):
            shmchan.info(self.name())

    def test_info_of_file_channel(self) -> None:
        p = self.path("info.chan")
        with shmchan.Latest.create(p, max_msg=32):
            self.assertEqual(shmchan.info(p).max_msg, 32)
            self.assertEqual(shmchan.info(str(p), file=True).max_msg, 32)
            self.assertTrue(shmchan.exists(p))

    @unittest.skipUnless(sys.platform.startswith("linux"), "listing needs /dev/shm")
    def test_list(self) -> None:
        a, b = self.name(), self.name()
        shmchan.Latest.create(a).close()
        shmchan.Latest.create(b).close()
        names = shmchan.list()
        self.assertIn(a, names)
        self.assertIn(b, names)
        self.assertIs(shmchan.list, shmchan.list_channels)
        shmchan.unlink(a)
        self.assertNotIn(a, shmchan.list())

    def test_fifo_hangs_nothing(self) -> None:
        """A FIFO at a channel's name or path (anybody can make one in
        /dev/shm) makes info(), exists(), reap() and opening fail at once
        with Unsafe, and list() goes on; run in a child with a timeout, so
        that a regression fails instead of hanging the suite."""
        fifo_path = self.path("fifo")
        os.mkfifo(fifo_path)
        names = [str(fifo_path)]
        if sys.platform.startswith("linux"):
            n = self.name()
            os.mkfifo(f"/dev/shm/shmchan.{n}")
            names.append(n)
        code = ("import pathlib, shmchan, sys\n"
                "for arg in sys.argv[1:]:\n"
                "    name = pathlib.Path(arg) if '/' in arg else arg\n"
                "    for call in (shmchan.info, shmchan.exists, shmchan.reap,\n"
                "                 lambda n: shmchan.Latest.open(n, readonly=True),\n"
                "                 lambda n: shmchan.Latest.create(n)):\n"
                "        try:\n"
                "            call(name)\n"
                "        except shmchan.Unsafe:\n"
                "            continue\n"
                "        sys.exit(f'{name}: {call} did not raise Unsafe')\n"
                "if len(sys.argv) > 2 and sys.argv[2] not in shmchan.list():\n"
                "    sys.exit('list() lost the FIFO')\n"
                "print('ok')\n")
        try:
            p = run_python(code, *names, timeout=30)
        except subprocess.TimeoutExpired:
            self.fail("a FIFO hung info(), exists(), reap() or open()")
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "ok"), p.stderr)
        self.assertTrue(fifo_path.is_fifo())

    def test_reap(self) -> None:
        n = self.name()
        ch = shmchan.Latest.create(n)
        with self.assertRaises(shmchan.Busy):
            shmchan.reap(n)
        with self.assertRaises(shmchan.Busy):
            shmchan.reap(n, dry_run=True)
        ch.close()
        self.assertTrue(shmchan.reap(n, dry_run=True))
        self.assertTrue(shmchan.exists(n))
        self.assertTrue(shmchan.reap(n))
        self.assertFalse(shmchan.exists(n))
        with self.assertRaises(shmchan.NotFound):
            shmchan.reap(n)

    def test_reap_after_the_user_crashed(self) -> None:
        n = self.name()
        code = ("import os, shmchan, sys\n"
                "ch = shmchan.Latest.create(sys.argv[1])\n"
                "ch.publish(b'x')\n"
                "os._exit(0)  # no close: as if it crashed\n")
        p = run_python(code, n)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(shmchan.reap(n))

    def test_peers_of_latest_channel(self) -> None:
        n = self.name()
        with shmchan.Latest.create(n):
            with self.assertRaises(shmchan.WrongKind):
                shmchan.peers(n)

    def test_valid_name(self) -> None:
        self.assertTrue(shmchan.valid_name("telemetry"))
        self.assertTrue(shmchan.valid_name("a.b-c_D9"))
        self.assertTrue(shmchan.valid_name("x" * shmchan.NAME_MAX))
        for bad in ("", "x" * (shmchan.NAME_MAX + 1), "a/b", ".a", "a..b", "é"):
            self.assertFalse(shmchan.valid_name(bad), bad)

    def test_open_helpers(self) -> None:
        n = self.name()
        with shmchan.open_latest(n, create=True, max_msg=10) as w:
            self.assertIsInstance(w, shmchan.Latest)
            with shmchan.open_latest(n) as r:
                w.publish(b"x")
                self.assertEqual(r.read(), (1, b"x"))

    def test_versions(self) -> None:
        self.assertEqual(shmchan.library_version,
                         ".".join(map(str, shmchan.library_version_info)))
        self.assertEqual(shmchan.library_version_info[0], 0)
        self.assertGreaterEqual(shmchan.LAYOUT_VERSION, 1)
        self.assertTrue(os.path.exists(shmchan.library_path) or "shmchan" in shmchan.library_path)


class DeclaredFunctions(unittest.TestCase):
    def test_library_exports_every_declared_function(self) -> None:
        # _ffi replaces a missing queue function with a stub that fails with
        # NotSupported (for users of an older library); the tests' library
        # must have every function the binding declares.
        self.assertEqual(missing_functions(), [])
        self.assertEqual(shmchan._ffi.missing_optional, [])


class LibraryLookup(unittest.TestCase):
    """How the package finds libshmchan (see shmchan/_ffi.py)."""

    CODE = "import shmchan; print(shmchan.library_path)"

    def env_without_library(self) -> dict[str, str]:
        """Where the library is found is tested here, not which backend: a
        copied package has no compiled module, so let it take either."""
        env = child_env()
        del env["SHMCHAN_LIBRARY"]
        env["SHMCHAN_PY_BACKEND"] = "auto"
        return env

    def test_environment_variable_wins_and_does_not_fall_back(self) -> None:
        env = child_env()
        env["SHMCHAN_LIBRARY"] = "/nonexistent/libshmchan.so"
        p = run_python(self.CODE, env=env)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("ImportError", p.stderr)
        self.assertIn("SHMCHAN_LIBRARY", p.stderr)

    def test_relative_environment_path_is_reported_absolute(self) -> None:
        # library_path names the file that was loaded, also after a chdir.
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "rel").mkdir()
            shutil.copy(shmchan.library_path, Path(tmp) / "rel" / "libshmchan.so")
            env = child_env()
            env["SHMCHAN_LIBRARY"] = os.path.join("rel", "libshmchan.so")
            env["SHMCHAN_PY_BACKEND"] = "auto"  # no compiled module next to the copy
            p = run_python("import os, shmchan; os.chdir('/'); print(shmchan.library_path); "
                           "print(shmchan.library_tried)", env=env, cwd=tmp)
            self.assertEqual(p.returncode, 0, p.stderr)
            path = p.stdout.splitlines()[0]
            self.assertTrue(os.path.isabs(path), path)
            self.assertEqual(Path(path).resolve(), (Path(tmp) / "rel" / "libshmchan.so").resolve())

    def test_copy_next_to_the_package(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            pkg = Path(tmp) / "shmchan"
            shutil.copytree(PYTHON_DIR / "shmchan", pkg,
                            ignore=shutil.ignore_patterns("__pycache__", "*.so*"))
            shutil.copy(shmchan.library_path, pkg / "libshmchan.so")
            if shmchan.native_path:  # the compiled module travels with the package
                shutil.copy(shmchan.native_path, pkg)
            env = self.env_without_library()
            env["PYTHONPATH"] = tmp
            p = run_python(self.CODE, env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout.strip(), str(pkg / "libshmchan.so"))

    def fake_checkout(self, tmp: str, builds: list[str]) -> Path:
        """A checkout's shape: python/shmchan, the public header, and a copy
        of the library in each of builds (relative folders)."""
        repo = Path(tmp) / "repo"
        shutil.copytree(PYTHON_DIR / "shmchan", repo / "python" / "shmchan",
                        ignore=shutil.ignore_patterns("__pycache__", "*.so*"))
        (repo / "include" / "shmchan").mkdir(parents=True)
        shutil.copy(PYTHON_DIR.parent / "include" / "shmchan" / "shmchan.h",
                    repo / "include" / "shmchan" / "shmchan.h")
        for b in builds:
            (repo / b).mkdir(parents=True)
            shutil.copy(shmchan.library_path, repo / b / "libshmchan.so")
        return repo

    def test_build_tree_of_a_checkout(self) -> None:
        # The release build scripts/test.sh makes (_build/release), then a
        # build*/ folder, which comes first when both exist.
        for builds, want in ((["_build/release"], "_build/release"),
                             (["_build/release", "build"], "build")):
            with tempfile.TemporaryDirectory() as tmp:
                repo = self.fake_checkout(tmp, builds)
                env = self.env_without_library()
                env["PYTHONPATH"] = str(repo / "python")
                p = run_python(self.CODE, env=env)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stdout.strip(), str(repo / want / "libshmchan.so"))

    def test_version_mismatch_is_refused(self) -> None:
        # Pretend the binding needs a newer API than the library has.
        code = ("import sys, importlib.util, pathlib\n"
                "src = pathlib.Path(sys.argv[1]).read_text()\n"
                "import re; src = re.sub(r'(?m)^API_MINOR = \\d+$', 'API_MINOR = 999', src)\n"
                "import types; m = types.ModuleType('shmchan._ffi'); m.__file__ = sys.argv[1]\n"
                "try:\n"
                "    exec(compile(src, sys.argv[1], 'exec'), m.__dict__)\n"
                "except ImportError as e:\n"
                "    print('refused:', e)\n")
        p = run_python(code, str(PYTHON_DIR / "shmchan" / "_ffi.py"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("refused:", p.stdout)
        self.assertIn("0.999", p.stdout)


class Packaging(unittest.TestCase):
    def test_pip_install_offline(self) -> None:
        pip = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True,
                             text=True)
        # Not a skip: the test command installs python3-pip (scripts/test.sh).
        self.assertEqual(pip.returncode, 0, f"pip is not available: {pip.stderr}")
        with tempfile.TemporaryDirectory() as tmp:
            env = child_env()
            env.pop("PYTHONPATH")
            env["PIP_NO_INDEX"] = "1"
            env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
            target = Path(tmp) / "site"
            # A copy: the build writes nothing into the source tree anyway.
            # With the header beside it, as in the checkout: the compiled module needs it.
            src = Path(tmp) / "repo" / "python"
            shutil.copytree(PYTHON_DIR, src, ignore=shutil.ignore_patterns("__pycache__"))
            shutil.copytree(PYTHON_DIR.parent / "include", src.parent / "include")
            p = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--no-index", "--target", str(target),
                 "--config-settings", f"bundle-library={shmchan.library_path}", str(src)],
                capture_output=True, text=True, env=env, timeout=300)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertTrue((target / "shmchan" / "libshmchan.so").exists())
            env.pop("SHMCHAN_LIBRARY")
            env["PYTHONPATH"] = str(target)
            p = subprocess.run([sys.executable, "-c", LibraryLookup.CODE], capture_output=True,
                               text=True, env=env, cwd=tmp, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout.strip(), str(target / "shmchan" / "libshmchan.so"))


if __name__ == "__main__":
    unittest.main()
