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
#
# Each stage reports "N passed, N failed, N skipped" in its own units (ctest
# tests, runner tests, fuzz targets, chaos rounds); they are never added up.
# A stage fails when its script fails, prints no summary, is missing, or skips
# a test that scripts/expected-skips.txt does not list (every skip is printed
# with its reason: tests log them to $SHMCHAN_SKIP_LOG). The last lines list
# the stages and close with "stages: N passed, N failed"; the exit status is
# non-zero if any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

quick=0
[[ ${1:-} == --quick ]] && quick=1
export SHMCHAN_STRESS_SECONDS=${SHMCHAN_STRESS_SECONDS:-3}

summaries=()
failed_stages=()
stages_passed=0

# The allowed skips: "STAGE TEST REASON" lines (STAGE may be *).
allowed_skip() {
    local stage=$1 name=$2
    awk -v s="$stage" -v n="$name" '
        /^[[:space:]]*(#|$)/ { next }
        ($1 == s || $1 == "*") && $2 == n { $1 = ""; $2 = ""; sub(/^ +/, ""); print; found = 1; exit }
        END { exit !found }' scripts/expected-skips.txt
}

# Print the skips a stage logged; echo the number not allowed, plus one for
# each skip the summary counted that logged no reason.
check_skips() {
    local stage=$1 log=$2 counted=$3
    local bad=0 logged=0 name why allowed
    while IFS=$'\t' read -r name why; do
        [[ -z $name ]] && continue
        [[ $name != python.* ]] && logged=$((logged + 1))
        if allowed=$(allowed_skip "$stage" "$name"); then
            echo "   skipped $name: $why (expected: $allowed)" >&2
        else
            echo "   UNEXPECTED skip $name: $why" >&2
            bad=$((bad + 1))
        fi
    done <"$log"
    if [[ $counted -gt $logged ]]; then
        echo "   UNEXPECTED: $((counted - logged)) skipped without a logged reason" >&2
        bad=$((bad + counted - logged))
    fi
    echo "$bad"
}

# record STAGE PASSED FAILED SKIPPED UNITS SKIPLOG [STATUS]
record() {
    local stage=$1 pass=$2 fail=$3 skip=$4 units=$5 log=$6 status=${7:-0}
    local bad=0 note=""
    if [[ -n $log && -f $log ]]; then
        bad=$(check_skips "$stage" "$log" "$skip")
        local py
        py=$(grep -c '^python\.' "$log")
        [[ $py -ne 0 ]] && note="; $py Python test methods skipped"
        rm -f "$log"
    fi
    [[ $bad -ne 0 ]] && note="$note; $bad unexpected skips"
    [[ $status -ne 0 ]] && note="$note; exit status $status"
    local line="$stage: $pass passed, $fail failed, $skip skipped ($units$note)"
    summaries+=("$line")
    if [[ $fail -ne 0 || $bad -ne 0 || $status -ne 0 ]]; then
        failed_stages+=("$stage")
    else
        stages_passed=$((stages_passed + 1))
    fi
    echo "== stage $line"
}

# Run ctest in a build folder and record its counts (ctest tests).
run_ctest() {
    local stage=$1 dir=$2
    shift 2
    local log skips
    log=$(mktemp)
    skips=$(mktemp)
    (cd "$dir" && SHMCHAN_SKIP_LOG=$skips ctest --output-on-failure -j"$(jobs)" --timeout 600 \
        "$@") 2>&1 | tee "$log"
    local status=${PIPESTATUS[0]}
    local line
    line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n1)
    local skipped
    skipped=$(grep -cE '^[[:space:]]*[0-9]+ - .* \(Skipped\)' "$log")
    rm -f "$log"
    if [[ -z $line ]]; then
        record "$stage" 0 1 0 "ctest printed no summary" "$skips" "$status"
        return
    fi
    local failed total
    failed=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
    record "$stage" $((total - failed - skipped)) "$failed" "$skipped" "ctest tests" "$skips" \
        "$status"
}

# Configure and build; a failed build counts as a failed stage.
build() {
    local stage=$1 dir=$2
    shift 2
    echo "== stage $stage: building in $dir"
    if ! cmake -S . -B "$dir" -DSHMCHAN_WERROR=ON "$@" >"$dir.configure.log" 2>&1; then
        cat "$dir.configure.log"
        record "$stage" 0 1 0 "configure failed" ""
        return 1
    fi
    # pipefail: the pipeline fails when the build does, and shows its last lines.
    if ! cmake --build "$dir" -j"$(jobs)" 2>&1 | tail -n 30; then
        record "$stage" 0 1 0 "build failed" ""
        return 1
    fi
}

# Run a stage script; its closing "[stage: ]N passed, N failed[, N skipped]"
# line gives the counts (or ctest's summary, for a script that runs ctest).
run_script() {
    local script=$1 units=$2
    local stage
    stage=$(basename "$script" .sh)
    stage=${stage#test-}
    if [[ ! -f $script ]]; then
        echo "== stage $stage: $script is missing"
        record "$stage" 0 1 0 "$script missing" ""
        return
    fi
    local out skips
    out=$(mktemp)
    skips=$(mktemp)
    SHMCHAN_SKIP_LOG=$skips bash "$script" 2>&1 | tee "$out"
    local rc=${PIPESTATUS[0]}
    local line p f s=0
    line=$(grep -E '^([A-Za-z]+: )?[0-9]+ passed, [0-9]+ failed' "$out" | tail -n1)
    line=${line#*: }
    if [[ -z $line ]]; then
        local ctest_line
        ctest_line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$out" |
            tail -n1)
        if [[ -n $ctest_line ]]; then # a ctest run: "N tests failed out of M"
            f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$ctest_line")
            s=$(grep -cE '^[[:space:]]*[0-9]+ - .* \(Skipped\)' "$out")
            local t
            t=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$ctest_line")
            line="$((t - f - s)) passed, $f failed, $s skipped"
        fi
    fi
    rm -f "$out"
    if [[ -z $line ]]; then
        # Exit status 0 without a summary is no evidence of anything.
        record "$stage" 0 1 0 "$script printed no summary" "$skips" "$rc"
        return
    fi
    p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")
    f=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")
    [[ $line =~ ([0-9]+)\ skipped ]] && s=${BASH_REMATCH[1]}
    record "$stage" "$p" "$f" "$s" "$units" "$skips" "$rc"
}

mkdir -p _build
need_build_tools
# python3-pip: the Python packaging test installs the binding with pip.
need_packages libjansson-dev:/usr/include/jansson.h strace:strace util-linux:setpriv \
    python3-pip:/usr/lib/python3/dist-packages/pip/__init__.py \
    python3-numpy:/usr/lib/python3/dist-packages/numpy python3-zmq:/usr/lib/python3/dist-packages/zmq \
    python3-mypy:/usr/lib/python3/dist-packages/mypy python3-dev:/usr/bin/python3-config \
    tmux:tmux pandoc:pandoc bash:bash libuv1-dev:/usr/include/uv.h

if build release _build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
    run_ctest release _build/release
fi

if [[ $quick -eq 0 ]]; then
    if build asan _build/asan -DCMAKE_BUILD_TYPE=Debug -DSHMCHAN_SANITIZE=address,undefined \
        -DSHMCHAN_BUILD_BENCH=OFF -DSHMCHAN_BUILD_EXAMPLES=OFF; then
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 run_ctest asan _build/asan
    fi
    run_script scripts/test-tsan.sh "runner tests"
    run_script scripts/test-fuzz.sh "fuzz targets"
    run_script scripts/test-chaos.sh "chaos rounds"
    run_script scripts/test-bridge.sh "bridge tests"
    run_script scripts/test-windows.sh "ctest tests under Wine"
fi

echo
echo "== summary (each stage in its own units)"
for s in "${summaries[@]}"; do
    echo "   $s"
done
if [[ ${#failed_stages[@]} -ne 0 ]]; then
    echo "failed stages: ${failed_stages[*]}"
fi
echo "stages: $stages_passed passed, ${#failed_stages[@]} failed"
[[ ${#failed_stages[@]} -eq 0 ]]
