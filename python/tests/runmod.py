"""Run one test module as ctest does: ``python3 runmod.py test_queue``.

Like ``python -m unittest -v MODULE``, and then: prints
"python MODULE: N passed, N failed, N skipped" and every skip with its reason,
appends the skips to the file named by $SHMCHAN_SKIP_LOG (scripts/test.sh
checks them against scripts/expected-skips.txt), and fails a module that ran
no test at all. Exit status 0 only when every test that ran passed."""

from __future__ import annotations

import os
import sys
import unittest


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: runmod.py MODULE", file=sys.stderr)
        return 2
    mod = argv[1]
    suite = unittest.defaultTestLoader.loadTestsFromName(mod)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped) + len(result.expectedFailures)
    passed = result.testsRun - failed - skipped
    print(f"python {mod}: {passed} passed, {failed} failed, {skipped} skipped")
    log = os.environ.get("SHMCHAN_SKIP_LOG")
    for test, why in result.skipped:
        name = f"python.{test.id()}"
        print(f"SKIP {name}: {why}")
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"{name}\t{' '.join(str(why).split())}\n")
    if result.testsRun == 0:
        print(f"python {mod}: no test ran", file=sys.stderr)
        return 1
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
