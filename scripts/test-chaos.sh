#!/usr/bin/env bash
# Crash chaos: build the driver (tests/chaos) and run it for a bounded time.
#
#   scripts/test-chaos.sh              SHMCHAN_CHAOS_SECONDS (default 60) s in all
#   scripts/test-chaos.sh SECONDS [SEED]
#
# The driver prints one line per round, the totals (rounds, kills, restarts,
# messages checked, failures) and closes with "chaos: N passed, N failed"
# (rounds). A failing round prints what failed; rerun with the printed seed to
# replay the same schedule of kills (the timing still differs).
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

seconds=${1:-${SHMCHAN_CHAOS_SECONDS:-60}}
seed=${2:-}
build=_build/release

need_build_tools
echo "== chaos: building in $build"
mkdir -p _build
if ! cmake -S . -B "$build" -DSHMCHAN_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    >"$build.chaos-configure.log" 2>&1 ||
    ! cmake --build "$build" -j"$(jobs)" --target shmchan_chaos >"$build.chaos-build.log" 2>&1; then
    cat "$build.chaos-configure.log" "$build.chaos-build.log" 2>/dev/null | tail -n 40
    echo "chaos: 0 passed, 1 failed"
    exit 1
fi
"$build/tests/chaos/shmchan_chaos" "$seconds" $seed
