#!/usr/bin/env bash
# Build everything and run every test: the README's test command, and what
# .ci/run calls. Installs the Debian packages it needs when they are missing.
#
#   scripts/test.sh            all stages (about 10-20 minutes on 2 cores)
#   scripts/test.sh --quick    release build and its tests only
#   SHMCHAN_STRESS_SECONDS=N   lengthen (or shorten) stress, chaos and fuzz runs
#
# Stages: release build (-Werror) + ctest, install check, AddressSanitizer +
# UndefinedBehaviorSanitizer build + ctest, ThreadSanitizer build + the
# concurrency tests, fuzzing, crash chaos, and the Windows build under Wine.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

quick=0
[[ ${1:-} == --quick ]] && quick=1
export SHMCHAN_STRESS_SECONDS=${SHMCHAN_STRESS_SECONDS:-3}

total_pass=0
total_fail=0
failed_stages=()

# Run ctest in a build folder and add its counts to the totals.
run_ctest() {
    local stage=$1 dir=$2
    shift 2
    local log
    log=$(mktemp)
    (cd "$dir" && ctest --output-on-failure -j"$(jobs)" --timeout 600 "$@") 2>&1 | tee "$log"
    local line
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1)
    rm -f "$log"
    if [[ -z $line ]]; then
        record "$stage" 0 1
        return
    fi
    local failed total
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    record "$stage" $((total - failed)) "$failed"
}

record() {
    local stage=$1 pass=$2 fail=$3
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
    [[ $fail -ne 0 ]] && failed_stages+=("$stage")
    echo "== stage $stage: $pass passed, $fail failed"
}

# Configure and build; a failed build counts as a failed stage.
build() {
    local stage=$1 dir=$2
    shift 2
    echo "== stage $stage: building in $dir"
    if ! cmake -S . -B "$dir" -DSHMCHAN_WERROR=ON "$@" >"$dir.configure.log" 2>&1; then
        cat "$dir.configure.log"
        record "$stage-build" 0 1
        return 1
    fi
    # pipefail: the pipeline fails when the build does, and shows its last lines.
    if ! cmake --build "$dir" -j"$(jobs)" 2>&1 | tail -n 30; then
        record "$stage-build" 0 1
        return 1
    fi
}

mkdir -p _build
need_build_tools
need_packages libjansson-dev:/usr/include/jansson.h strace:strace util-linux:setpriv python3-numpy:/usr/lib/python3/dist-packages/numpy python3-zmq:/usr/lib/python3/dist-packages/zmq python3-mypy:/usr/lib/python3/dist-packages/mypy python3-dev:/usr/bin/python3-config \
    tmux:tmux pandoc:pandoc bash:bash

if build release _build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
    run_ctest release _build/release
fi

if [[ $quick -eq 0 ]]; then
    if build asan _build/asan -DCMAKE_BUILD_TYPE=Debug -DSHMCHAN_SANITIZE=address,undefined \
        -DSHMCHAN_BUILD_BENCH=OFF -DSHMCHAN_BUILD_EXAMPLES=OFF; then
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 run_ctest asan _build/asan
    fi
    for extra in scripts/test-tsan.sh scripts/test-fuzz.sh scripts/test-chaos.sh scripts/test-bridge.sh \
        scripts/test-windows.sh; do
        [[ -f $extra ]] || continue
        stage=$(basename "$extra" .sh)
        stage=${stage#test-}
        out=$(mktemp)
        bash "$extra" 2>&1 | tee "$out"
        rc=${PIPESTATUS[0]}
        line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1)
        line=${line#*: }
        ctest_line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$out" |
            tail -n1)
        if [[ -z $line && -n $ctest_line ]]; then # a ctest run: "N tests failed out of M"
            f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$ctest_line")
            t=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$ctest_line")
            line="$((t - f)) passed, $f failed"
        fi
        rm -f "$out"
        if [[ -n $line ]]; then
            p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")
            f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
            [[ $rc -ne 0 && $f -eq 0 ]] && f=1
            record "$stage" "$p" "$f"
        elif [[ $rc -eq 0 ]]; then
            record "$stage" 1 0
        else
            record "$stage" 0 1
        fi
    done
fi

echo
if [[ ${#failed_stages[@]} -ne 0 ]]; then
    echo "failed stages: ${failed_stages[*]}"
fi
echo "TOTAL: $total_pass passed, $total_fail failed"
[[ $total_fail -eq 0 ]]
