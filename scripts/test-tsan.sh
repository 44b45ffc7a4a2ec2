#!/usr/bin/env bash
# ThreadSanitizer: build with -DSHMCHAN_SANITIZE=thread and run the test suite,
# whose threads_* tests run several threads on one channel (TSan cannot see
# other processes; the process tests still run, for the threads inside each).
# Zero reports are required: any report fails its test (exit code 66).
#
#   scripts/test-tsan.sh            the whole suite
#   scripts/test-tsan.sh NAME...    only these tests
#
# tests/tsan.supp holds the suppressions, each naming one function whose race
# is a documented protocol (the seqlock's payload copy). GCC warns that TSan
# does not model atomic_thread_fence (-Wtsan); the seqlock's fences order only
# that payload copy, so the warning is disabled for this build.
# Closes with "tsan: N passed, N failed, N skipped" (tests).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

build=_build/tsan
need_build_tools
mkdir -p _build
echo "== tsan: building in $build"
if ! cmake -S . -B "$build" -DSHMCHAN_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DSHMCHAN_SANITIZE=thread -DCMAKE_C_FLAGS=-Wno-tsan -DSHMCHAN_BUILD_BENCH=OFF \
    -DSHMCHAN_BUILD_EXAMPLES=OFF -DSHMCHAN_BUILD_TOOLS=OFF >"$build.configure.log" 2>&1 ||
    ! cmake --build "$build" -j"$(jobs)" --target shmchan_tests >"$build.build.log" 2>&1; then
    cat "$build.configure.log" "$build.build.log" 2>/dev/null | tail -n 40
    echo "tsan: 0 passed, 1 failed"
    exit 1
fi
TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1"
export TSAN_OPTIONS="$TSAN_OPTIONS suppressions=$PWD/tests/tsan.supp"
export SHMCHAN_STRESS_SECONDS=${SHMCHAN_STRESS_SECONDS:-3}
log=$(mktemp)
"$build/tests/shmchan_tests" "$@" 2>&1 | tee "$log"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$log" | tail -n1)
reports=$(grep -c 'WARNING: ThreadSanitizer' "$log")
rm -f "$log"
echo "tsan: $reports reports"
if [[ -z $line ]]; then
    echo "tsan: 0 passed, 1 failed"
    exit 1
fi
echo "tsan: $line"
[[ $line == *" 0 failed,"* && $reports -eq 0 ]]
