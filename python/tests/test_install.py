"""The first run: the README's steps (cmake --install, then pip install
./python) give an importable package without ldconfig, and pip's
bundle-library takes a path relative to where pip runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from support import PYTHON_DIR, child_env

import shmchan

BUILD = Path(shmchan.library_path).resolve().parent
CODE = ("import json, shmchan; print(json.dumps([shmchan.library_path, shmchan.library_tried, "
        "shmchan.backend]))")


def pip_works() -> bool:
    return subprocess.run([sys.executable, "-m", "pip", "--version"],
                          capture_output=True).returncode == 0


@unittest.skipUnless(pip_works(), "pip is not available (Debian: python3-pip)")
@unittest.skipUnless((BUILD / "CMakeCache.txt").exists(), "the library is not in a build tree")
class FirstRun(unittest.TestCase):
    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="shmchan-install-"))
        # The checkout's layout: python/ with include/ beside it.
        self.src = self.tmp / "repo" / "python"
        shutil.copytree(PYTHON_DIR, self.src, ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(PYTHON_DIR.parent / "include", self.src.parent / "include")

    def tearDown(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def env(self) -> dict[str, str]:
        env = child_env()
        for k in ("SHMCHAN_LIBRARY", "LD_LIBRARY_PATH", "PYTHONPATH", "SHMCHAN_NATIVE"):
            env.pop(k, None)
        env["PIP_NO_INDEX"] = "1"
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        return env

    def pip_install(self, env: dict[str, str], cwd: Path, *extra: str) -> Path:
        site = self.tmp / "site"
        p = subprocess.run([sys.executable, "-m", "pip", "install", "--no-index",
                            "--no-build-isolation", "--target", str(site), *extra,
                            str(self.src)],
                           capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return site

    def imported(self, env: dict[str, str], site: Path) -> tuple[str, list[str], str]:
        env = dict(env, PYTHONPATH=str(site))
        p = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                           env=env, cwd=self.tmp, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        path, tried, backend = json.loads(p.stdout)
        return path, tried, backend

    def test_cmake_install_then_pip_install_needs_no_ldconfig(self) -> None:
        prefix = self.tmp / "prefix"
        p = subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(prefix)],
                           capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        pcs = list(prefix.glob("lib*/**/pkgconfig/shmchan.pc")) + \
            list(prefix.glob("lib*/pkgconfig/shmchan.pc"))
        self.assertTrue(pcs, "cmake --install left no shmchan.pc")
        env = self.env()
        # What a default prefix gets from pkg-config's own search path.
        env["PKG_CONFIG_PATH"] = str(pcs[0].parent)
        site = self.pip_install(env, self.tmp)
        env.pop("PKG_CONFIG_PATH")
        path, tried, backend = self.imported(env, site)
        self.assertTrue(Path(path).resolve().is_relative_to(prefix.resolve()), path)
        self.assertTrue(Path(path).is_file())
        self.assertEqual(len(tried), len(set(tried)), tried)
        self.assertEqual(len({str(Path(t).resolve()) for t in tried if os.sep in t}),
                         len([t for t in tried if os.sep in t]), tried)
        if os.environ.get("SHMCHAN_PY_BACKEND") == "native":
            self.assertEqual(backend, "native")  # pip compiled the module

    def test_bundle_library_path_relative_to_where_pip_runs(self) -> None:
        work = self.tmp / "work"
        (work / "rel").mkdir(parents=True)
        shutil.copy(shmchan.library_path, work / "rel" / "libshmchan.so")
        env = self.env()
        env["PWD"] = str(work)  # as the shell sets it
        site = self.pip_install(env, work, "--config-settings",
                                "bundle-library=rel/libshmchan.so")
        self.assertTrue((site / "shmchan" / "libshmchan.so").is_file())
        path, tried, _ = self.imported(env, site)
        self.assertEqual(path, str(site / "shmchan" / "libshmchan.so"))
        self.assertEqual(tried, [path])

    def test_bundle_library_relative_to_pip_with_a_stale_pwd(self) -> None:
        # A program that starts pip in another directory leaves PWD as it
        # was: the path is still taken from where pip runs, not from PWD.
        work, decoy = self.tmp / "work", self.tmp / "decoy"
        for d in (work, decoy):
            (d / "rel").mkdir(parents=True)
        shutil.copy(shmchan.library_path, work / "rel" / "libshmchan.so")
        (decoy / "rel" / "libshmchan.so").write_bytes(b"not this one")
        env = self.env()
        env["PWD"] = str(decoy)
        site = self.pip_install(env, work, "--config-settings",
                                "bundle-library=rel/libshmchan.so")
        bundled = site / "shmchan" / "libshmchan.so"
        self.assertEqual(bundled.read_bytes(), (work / "rel" / "libshmchan.so").read_bytes())
        path, tried, _ = self.imported(env, site)
        self.assertEqual(path, str(bundled))


if __name__ == "__main__":
    unittest.main()
