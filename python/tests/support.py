"""Shared helpers of the binding's tests: unique channel names removed after
each test, the C peer program, child Python processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Optional

import shmchan

HERE = Path(__file__).resolve().parent
PYTHON_DIR = HERE.parent
REPO = PYTHON_DIR.parent

# Bounds on waiting for child processes: hang guards, not timing checks.
CHILD_TIMEOUT = 60.0

_counter = 0


def unique_name() -> str:
    global _counter
    _counter += 1
    return f"py{os.getpid()}-{_counter}"


def missing_functions() -> list[str]:
    """Functions the binding declares (_ffi._PROTOTYPES) that the loaded
    library does not export. _ffi stubs missing queue functions for users of
    an older library; in the tests every one of them must be there."""
    return [n for n in shmchan._ffi._PROTOTYPES if not hasattr(shmchan._ffi.dll, n)]


def queue_supported() -> bool:
    """True, or an AssertionError naming what the library lacks: a library
    without queues fails the queue tests instead of skipping them (one
    forgotten SHMCHAN_API must not pass as "no queues yet")."""
    missing = missing_functions() + list(shmchan._ffi.missing_optional)
    if missing:
        raise AssertionError(f"{shmchan.library_path} lacks {', '.join(sorted(set(missing)))}")
    return True


def unused_id(nth: int = 0) -> int:
    """The nth id at or above 61000 that no user and no group has (the C
    tests' t_unused_id): for a process run as another user."""
    import grp
    import pwd
    for i in range(61000, 2000000):
        try:
            pwd.getpwuid(i)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(i)
            continue
        except KeyError:
            pass
        if nth == 0:
            return i
        nth -= 1
    raise AssertionError("no unused user or group id")


def c_peer() -> Optional[str]:
    """The C peer program built by python/CMakeLists.txt, or None."""
    p = os.environ.get("SHMCHAN_C_PEER")
    if p and os.path.exists(p):
        return p
    for build in sorted(REPO.glob("build*")):
        cand = build / "python" / "shmchan_c_peer"
        if cand.exists():
            return str(cand)
    return None


def child_env() -> dict[str, str]:
    """Environment for child Python processes: this package, this library."""
    env = dict(os.environ)
    paths = [str(PYTHON_DIR), str(HERE)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["SHMCHAN_LIBRARY"] = shmchan.library_path
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_python(code: str, *args: str, timeout: float = CHILD_TIMEOUT,
               env: Optional[dict[str, str]] = None,
               cwd: Optional[str] = None) -> subprocess.CompletedProcess[str]:
    """Run code in a child interpreter (in cwd, default a neutral directory,
    since ``-c`` puts the working directory first on sys.path)."""
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, env=env if env is not None else child_env(),
                          cwd=cwd if cwd is not None else tempfile.gettempdir())


class ChannelTest(unittest.TestCase):
    """Gives each test fresh channel names and removes them afterwards."""

    def setUp(self) -> None:
        self._names: list[str] = []
        self._tmp: Optional[str] = None

    def tearDown(self) -> None:
        for n in self._names:
            shmchan.unlink(n, missing_ok=True)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def name(self) -> str:
        n = unique_name()
        self._names.append(n)
        return n

    def path(self, leaf: str = "chan") -> Path:
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="shmchan-py-")
        return Path(self._tmp) / leaf

    def c_peer(self, *args: str, timeout: float = CHILD_TIMEOUT) -> str:
        exe = c_peer()
        if exe is None:
            self.skipTest("C peer program not built (set SHMCHAN_C_PEER)")
        p = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)
        self.assertEqual(p.returncode, 0, f"c_peer {args}: {p.stderr}")
        return p.stdout

    def c_peer_start(self, *args: str) -> subprocess.Popen[str]:
        exe = c_peer()
        if exe is None:
            self.skipTest("C peer program not built (set SHMCHAN_C_PEER)")
        return subprocess.Popen([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
