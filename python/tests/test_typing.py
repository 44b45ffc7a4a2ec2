"""The type stubs (shmchan/__init__.pyi) against the runtime package, and
mypy --strict seeing real types through them (python.mypy runs it on the
examples and tests/typed_usage.py)."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

from support import PYTHON_DIR

import shmchan
from shmchan import _errors

STUB = PYTHON_DIR / "shmchan" / "__init__.pyi"


def stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text(encoding="utf-8"))


def stub_names() -> dict[str, ast.AST]:
    out: dict[str, ast.AST] = {}
    for node in stub_tree().body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            out[node.name] = node
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def have_mypy() -> bool:
    return subprocess.run([sys.executable, "-c", "import mypy"],
                          capture_output=True).returncode == 0


class StubMatchesRuntime(unittest.TestCase):
    def test_every_public_name_is_declared(self) -> None:
        names = stub_names()
        missing = [n for n in shmchan.__all__ if n not in names]
        self.assertEqual(missing, [])

    def test_exception_classes_and_aliases(self) -> None:
        names = stub_names()
        for name, cls in _errors.exported.items():
            with self.subTest(name=name):
                node = names.get(name)
                self.assertIsNotNone(node, f"{name} not in the stub")
                if cls.__name__ == name:
                    assert isinstance(node, ast.ClassDef)
                    bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
                    self.assertEqual(bases, [b.__name__ for b in cls.__bases__])
                else:
                    assert isinstance(node, ast.Assign)
                    assert isinstance(node.value, ast.Name)
                    self.assertEqual(node.value.id, cls.__name__)

    def test_class_members_exist_at_runtime(self) -> None:
        names = stub_names()
        for cname in ("Latest", "Queue", "LatestView", "QueueView", "LatestReservation",
                      "QueueReservation"):
            node = names[cname]
            assert isinstance(node, ast.ClassDef)
            cls = getattr(shmchan, cname)
            declared = {f.name for f in node.body if isinstance(f, ast.FunctionDef)}
            public = {n for n, _ in inspect.getmembers(cls) if not n.startswith("_")}
            with self.subTest(cls=cname):
                self.assertEqual(sorted(declared - set(dir(cls))), [])
                inherited = set()
                for base in node.bases:
                    if isinstance(base, ast.Name) and isinstance(names.get(base.id),
                                                                 ast.ClassDef):
                        b = names[base.id]
                        assert isinstance(b, ast.ClassDef)
                        inherited |= {f.name for f in b.body if isinstance(f, ast.FunctionDef)}
                self.assertEqual(sorted(public - declared - inherited), [])


@unittest.skipUnless(have_mypy(), "mypy is not installed (Debian: python3-mypy)")
class MypySeesTypes(unittest.TestCase):
    def mypy(self, code: str) -> subprocess.CompletedProcess[str]:
        with tempfile.TemporaryDirectory() as tmp:
            f = Path(tmp) / "use.py"
            f.write_text(code, encoding="utf-8")
            env = dict(os.environ, MYPYPATH=str(PYTHON_DIR))
            return subprocess.run(
                [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                 "--cache-dir", os.path.join(tmp, "cache"), str(f)],
                capture_output=True, text=True, env=env, timeout=300)

    def test_wrong_types_are_reported(self) -> None:
        p = self.mypy(
            "import shmchan\n"
            "with shmchan.Latest.create('x') as ch:\n"
            "    reveal_type(ch)\n"
            "    s: str = ch.publish(b'x')\n"
            "try:\n"
            "    pass\n"
            "except shmchan.TimedOut as e:\n"
            "    t: TimeoutError = e\n"
            "    n: str = e.code\n")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn('Revealed type is "shmchan.Latest"', p.stdout)
        self.assertIn('use.py:4: error: Incompatible types in assignment', p.stdout)
        self.assertIn('use.py:9: error: Incompatible types in assignment', p.stdout)
        self.assertNotIn("use.py:8:", p.stdout)  # TimedOut is a TimeoutError


if __name__ == "__main__":
    unittest.main()
