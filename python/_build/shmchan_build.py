"""A minimal in-tree PEP 517 / PEP 660 build backend for the shmchan package.

It needs nothing but the standard library, so ``pip install ./python`` works
offline, with or without build isolation, and on a machine without
setuptools or wheel. It builds:

- a wheel of the package with its compiled module (shmchan/_native.c, built
  with the C compiler Python was built with and Python's headers, from
  python3-dev on Debian; no download), tagged for this interpreter; without a
  compiler or headers a pure-Python wheel (the ctypes path only).
  ``-C native=on`` makes a failed compile an error, ``-C native=off`` skips it;
- the wheel records where libshmchan was installed (``pkg-config --variable=libdir
  shmchan``, as ``cmake --install`` leaves it), so that ``import shmchan``
  finds it without ``ldconfig``; or, when given a libshmchan to bundle, the
  library copied next to the package, where the binding looks first after
  SHMCHAN_LIBRARY (a relative PATH is taken from where pip was run)::

      pip install ./python -C bundle-library=build/libshmchan.so
      SHMCHAN_BUNDLE_LIBRARY=build/libshmchan.so pip install ./python

- an editable wheel (``pip install -e ./python``): a .pth file naming this
  directory;
- an sdist.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent  # python/
PACKAGE = "shmchan"
SUMMARY = "Fast, crash-safe shared-memory channels between processes (ctypes binding)"
REQUIRES_PYTHON = ">=3.8"
LIB_NAME = {"win": "libshmchan.dll", "darwin": "libshmchan.dylib"}


def _version() -> str:
    text = (ROOT / PACKAGE / "__init__.py").read_text(encoding="utf-8")
    m = re.search(r'^__version__ = "([^"]+)"', text, re.M)
    if m is None:
        raise RuntimeError("shmchan/__init__.py has no __version__")
    return m.group(1)


def _metadata() -> str:
    readme = (ROOT.parent / "docs" / "python.md")
    body = readme.read_text(encoding="utf-8") if readme.exists() else ""
    head = (
        "Metadata-Version: 2.1\n"
        f"Name: {PACKAGE}\n"
        f"Version: {_version()}\n"
        f"Summary: {SUMMARY}\n"
        "License: MIT\n"
        f"Requires-Python: {REQUIRES_PYTHON}\n"
        "Classifier: Programming Language :: Python :: 3\n"
        "Classifier: Operating System :: POSIX :: Linux\n"
        "Classifier: Operating System :: Microsoft :: Windows\n"
    )
    if body:
        head += "Description-Content-Type: text/markdown\n\n" + body
    return head


def _package_files() -> list[Path]:
    files = []
    for p in sorted((ROOT / PACKAGE).iterdir()):
        if p.suffix in (".py", ".pyi") or p.name == "py.typed":
            files.append(p)
    return files


def _frontend_cwd() -> Optional[Path]:
    """The directory the build frontend (pip), our parent process, runs in,
    where the system says (Linux: /proc/PPID/cwd)."""
    try:
        return Path(os.readlink(f"/proc/{os.getppid()}/cwd"))
    except (OSError, AttributeError):
        return None


def _bundle_library(config_settings: Optional[dict[str, Any]]) -> Optional[Path]:
    path = (config_settings or {}).get("bundle-library") or os.environ.get(
        "SHMCHAN_BUNDLE_LIBRARY")
    if not path:
        return None
    p = Path(path).expanduser()
    if p.is_absolute():
        tried = [p]
    else:
        # pip runs this backend in the source directory; the user meant the
        # directory where they ran pip: pip's own working directory, else the
        # PWD the shell leaves (stale when a program started pip elsewhere,
        # hence second).
        tried = []
        front = _frontend_cwd()
        if front is not None:
            tried.append(front / p)
        pwd = os.environ.get("PWD")
        if pwd and Path(pwd).is_dir() and Path(pwd) / p not in tried:
            tried.append(Path(pwd) / p)
        if Path.cwd() / p not in tried:
            tried.append(Path.cwd() / p)
    for cand in tried:
        if cand.is_file():
            return cand.resolve()
    raise FileNotFoundError("bundle-library: no such file: " + " nor ".join(map(str, tried)))


def _installed_libdir() -> Optional[str]:
    """Where an installed libshmchan is, from its pkg-config file."""
    if os.name == "nt":
        return None
    try:
        p = subprocess.run(["pkg-config", "--variable=libdir", "shmchan"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    libdir = p.stdout.strip()
    if p.returncode != 0 or not libdir:
        return None
    if not any((Path(libdir) / n).exists() for n in ("libshmchan.so.0", "libshmchan.so",
                                                      "libshmchan.0.dylib")):
        return None
    return str(Path(libdir).resolve())


def _header_dir() -> Optional[Path]:
    for d in (ROOT.parent / "include", ROOT / "_build" / "include"):
        if (d / "shmchan" / "shmchan.h").is_file():
            return d
    return None


def _native_mode(config_settings: Optional[dict[str, Any]]) -> str:
    mode = str((config_settings or {}).get("native") or os.environ.get(
        "SHMCHAN_BUILD_NATIVE") or "auto").lower()
    if mode not in ("auto", "on", "off"):
        raise ValueError(f"native must be auto, on or off, not {mode!r}")
    return mode


def _compile_native(out_dir: Path) -> Path:
    """Compile shmchan/_native.c into an extension module for this Python."""
    if os.name == "nt":
        raise RuntimeError("the compiled module is built by CMake on Windows")
    inc = _header_dir()
    if inc is None:
        raise RuntimeError("include/shmchan/shmchan.h not found")
    pyinc = sysconfig.get_paths()["include"]
    if not (Path(pyinc) / "Python.h").is_file():
        raise RuntimeError(f"Python.h not found in {pyinc} (install python3-dev)")
    cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
    if shutil.which(cc[0]) is None:
        raise RuntimeError(f"no C compiler ({cc[0]})")
    out = out_dir / ("_native" + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
    cmd = cc + ["-shared", "-fPIC", "-O2", "-std=gnu11", "-fvisibility=hidden",
                "-I", str(inc), "-I", pyinc, str(ROOT / PACKAGE / "_native.c"), "-o", str(out)]
    if sys.platform == "darwin":
        cmd += ["-undefined", "dynamic_lookup"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stdout}{p.stderr}")
    return out


def _interpreter_tag() -> str:
    impl = sys.implementation.name
    if impl != "cpython":
        raise RuntimeError("the compiled module is for CPython")
    v = f"{sys.version_info[0]}{sys.version_info[1]}"
    return f"cp{v}-cp{v}{getattr(sys, 'abiflags', '')}"


def _platform_tag() -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", sysconfig.get_platform())


class _Wheel:
    """Writes a wheel: files plus dist-info with a RECORD of hashes."""

    def __init__(self, directory: str, tag: str) -> None:
        self.name = f"{PACKAGE}-{_version()}-{tag}.whl"
        self.tag = tag
        self.path = Path(directory) / self.name
        self.zip = zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_DEFLATED)
        self.records: list[str] = []

    def add(self, arcname: str, data: bytes, mode: int = 0o644) -> None:
        info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        self.zip.writestr(info, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        self.records.append(f"{arcname},sha256={digest},{len(data)}")

    def close(self, purelib: bool) -> str:
        di = f"{PACKAGE}-{_version()}.dist-info"
        self.add(f"{di}/METADATA", _metadata().encode())
        self.add(f"{di}/WHEEL", (
            "Wheel-Version: 1.0\n"
            "Generator: shmchan_build\n"
            f"Root-Is-Purelib: {'true' if purelib else 'false'}\n"
            f"Tag: {self.tag}\n").encode())
        self.add(f"{di}/top_level.txt", f"{PACKAGE}\n".encode())
        record = "\n".join(self.records + [f"{di}/RECORD,,"]) + "\n"
        self.zip.writestr(zipfile.ZipInfo(f"{di}/RECORD", date_time=(2020, 1, 1, 0, 0, 0)),
                          record)
        self.zip.close()
        return self.name


# ----------------------------------------------------------------- PEP 517


def get_requires_for_build_wheel(config_settings: Optional[dict[str, Any]] = None) -> list[str]:
    return []


def get_requires_for_build_sdist(config_settings: Optional[dict[str, Any]] = None) -> list[str]:
    return []


def get_requires_for_build_editable(
        config_settings: Optional[dict[str, Any]] = None) -> list[str]:
    return []


def build_wheel(wheel_directory: str, config_settings: Optional[dict[str, Any]] = None,
                metadata_directory: Optional[str] = None) -> str:
    lib = _bundle_library(config_settings)
    mode = _native_mode(config_settings)
    with tempfile.TemporaryDirectory() as tmp:
        native: Optional[Path] = None
        if mode != "off":
            try:
                native = _compile_native(Path(tmp))
            except (OSError, RuntimeError) as e:
                if mode == "on":
                    raise
                print(f"shmchan: compiled module not built ({e}); ctypes only",
                      file=sys.stderr)
        if native is not None:
            tag = f"{_interpreter_tag()}-{_platform_tag()}"
        else:
            tag = "py3-none-any" if lib is None else f"py3-none-{_platform_tag()}"
        w = _Wheel(wheel_directory, tag)
        for p in _package_files():
            w.add(f"{PACKAGE}/{p.name}", p.read_bytes())
        if native is not None:
            w.add(f"{PACKAGE}/{native.name}", native.read_bytes(), 0o755)
        if lib is not None:
            plat = "win" if os.name == "nt" else ("darwin" if "darwin" in _platform_tag() else "")
            w.add(f"{PACKAGE}/{LIB_NAME.get(plat, 'libshmchan.so')}", lib.read_bytes(), 0o755)
        libdir = None if lib is not None else _installed_libdir()
        w.add(f"{PACKAGE}/_install.py", (
            '"""Written by the build backend: where libshmchan was installed."""\n'
            f"LIBDIR = {libdir!r}\n").encode())
        return w.close(purelib=lib is None and native is None)


def build_editable(wheel_directory: str, config_settings: Optional[dict[str, Any]] = None,
                   metadata_directory: Optional[str] = None) -> str:
    w = _Wheel(wheel_directory, "py3-none-any")
    w.add(f"__editable__.{PACKAGE}.pth", (str(ROOT) + "\n").encode())
    return w.close(purelib=True)


def build_sdist(sdist_directory: str, config_settings: Optional[dict[str, Any]] = None) -> str:
    base = f"{PACKAGE}-{_version()}"
    name = f"{base}.tar.gz"
    files = ([ROOT / "pyproject.toml", ROOT / "_build" / "shmchan_build.py",
              ROOT / PACKAGE / "_native.c"] + _package_files())
    with tarfile.open(Path(sdist_directory) / name, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for p in files:
            tar.add(p, arcname=f"{base}/{p.relative_to(ROOT).as_posix()}")
        inc = _header_dir()
        if inc is not None:  # the compiled module's one header, for builds from the sdist
            tar.add(inc / "shmchan" / "shmchan.h", arcname=f"{base}/_build/include/shmchan/shmchan.h")
        data = _metadata().encode()
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(data)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return name


__all__ = ["build_wheel", "build_sdist", "build_editable", "get_requires_for_build_wheel",
           "get_requires_for_build_sdist", "get_requires_for_build_editable"]
