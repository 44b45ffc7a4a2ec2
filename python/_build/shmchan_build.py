"""A minimal in-tree PEP 517 / PEP 660 build backend for the shmchan package.

It needs nothing but the standard library, so ``pip install ./python`` works
offline, with or without build isolation, and on a machine without
setuptools or wheel. It builds:

- a wheel of the pure-Python package (``py3-none-any``), or, when given a
  libshmchan to bundle, a platform wheel with the library copied next to the
  package, where the binding looks first after SHMCHAN_LIBRARY::

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
import sysconfig
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
        if p.suffix == ".py" or p.name == "py.typed":
            files.append(p)
    return files


def _bundle_library(config_settings: Optional[dict[str, Any]]) -> Optional[Path]:
    path = (config_settings or {}).get("bundle-library") or os.environ.get(
        "SHMCHAN_BUNDLE_LIBRARY")
    if not path:
        return None
    p = Path(path).resolve()
    if not p.is_file():
        raise FileNotFoundError(f"bundle-library: no such file: {p}")
    return p


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
    tag = "py3-none-any" if lib is None else f"py3-none-{_platform_tag()}"
    w = _Wheel(wheel_directory, tag)
    for p in _package_files():
        w.add(f"{PACKAGE}/{p.name}", p.read_bytes())
    if lib is not None:
        plat = "win" if os.name == "nt" else ("darwin" if "darwin" in _platform_tag() else "")
        w.add(f"{PACKAGE}/{LIB_NAME.get(plat, 'libshmchan.so')}", lib.read_bytes(), 0o755)
    return w.close(purelib=lib is None)


def build_editable(wheel_directory: str, config_settings: Optional[dict[str, Any]] = None,
                   metadata_directory: Optional[str] = None) -> str:
    w = _Wheel(wheel_directory, "py3-none-any")
    w.add(f"__editable__.{PACKAGE}.pth", (str(ROOT) + "\n").encode())
    return w.close(purelib=True)


def build_sdist(sdist_directory: str, config_settings: Optional[dict[str, Any]] = None) -> str:
    base = f"{PACKAGE}-{_version()}"
    name = f"{base}.tar.gz"
    files = [ROOT / "pyproject.toml", ROOT / "_build" / "shmchan_build.py"] + _package_files()
    with tarfile.open(Path(sdist_directory) / name, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for p in files:
            tar.add(p, arcname=f"{base}/{p.relative_to(ROOT).as_posix()}")
        data = _metadata().encode()
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size = len(data)
        info.mtime = int(time.time())
        tar.addfile(info, io.BytesIO(data))
    return name


__all__ = ["build_wheel", "build_sdist", "build_editable", "get_requires_for_build_wheel",
           "get_requires_for_build_sdist", "get_requires_for_build_editable"]
