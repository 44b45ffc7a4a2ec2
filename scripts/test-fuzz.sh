#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz) with clang and run each one for a
# short, bounded time from the committed seed corpus.
#
#   scripts/test-fuzz.sh                 every target for SHMCHAN_FUZZ_SECONDS (default 25) s
#   scripts/test-fuzz.sh TARGET...       only these targets
#   scripts/test-fuzz.sh --regen-corpus  rewrite tests/fuzz/corpus from real channels
#
# Prints the executions of each target and closes with "fuzz: N passed, N failed"
# (targets). A crash, leak, sanitizer report or a hang longer than
# SHMCHAN_FUZZ_TIMEOUT (default 10) s fails the target; its input is kept in
# _build/fuzz/artifacts/ and the line to reproduce it is printed. Inputs the
# fuzzer finds go to _build/fuzz/work/TARGET (not the committed corpus).
# Longer runs: docs/hardening.md.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

targets=(fuzz_open fuzz_latest_hostile fuzz_queue_hostile)
seconds=${SHMCHAN_FUZZ_SECONDS:-25}
hang=${SHMCHAN_FUZZ_TIMEOUT:-10}
build=_build/fuzz

fuzzer_runtime() {
    compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null
}

need_build_tools
need_packages clang:clang
fuzzer_runtime || need_packages libclang-rt-14-dev:/nonexistent/force-install
if ! fuzzer_runtime; then
    echo "fuzz: libFuzzer runtime (libclang-rt-14-dev) not found"
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi

echo "== fuzz: building in $build"
if ! cmake -S tests/fuzz -B "$build" -DCMAKE_C_COMPILER=clang >"$build.configure.log" 2>&1 ||
    ! cmake --build "$build" -j"$(jobs)" >"$build.build.log" 2>&1; then
    cat "$build.configure.log" "$build.build.log" 2>/dev/null | tail -n 40
    echo "fuzz: 0 passed, 1 failed"
    exit 1
fi

if [[ ${1:-} == --regen-corpus ]]; then
    rm -rf tests/fuzz/corpus.new
    "$build/make_corpus" tests/fuzz/corpus.new || exit 1
    # Keep the regression inputs (inputs that once found a bug).
    for f in tests/fuzz/corpus/*/regress-*; do
        [[ -e $f ]] || continue
        d=tests/fuzz/corpus.new/$(basename "$(dirname "$f")")
        mkdir -p "$d" && cp "$f" "$d/"
    done
    rm -rf tests/fuzz/corpus && mv tests/fuzz/corpus.new tests/fuzz/corpus
    find tests/fuzz/corpus -type f | sort
    exit 0
fi
[[ $# -gt 0 ]] && targets=("$@")

scratch=$(mktemp -d /dev/shm/shmchan-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
export SHMCHAN_FUZZ_DIR=$scratch
mkdir -p "$build/artifacts"
pass=0
fail=0
for t in "${targets[@]}"; do
    work=$build/work/$t
    mkdir -p "$work"
    seeds=tests/fuzz/corpus/$t
    [[ -d $seeds ]] || seeds=
    log=$build/$t.log
    # ASan's quarantine would grow to its default 256 MiB per target: keep it small.
    ASAN_OPTIONS=quarantine_size_mb=16:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        timeout --kill-after=10 $((seconds + hang + 60)) \
        "$build/$t" -max_total_time="$seconds" -timeout="$hang" -rss_limit_mb=2048 \
        -max_len=16384 -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" \
        "$work" $seeds >"$log" 2>&1
    rc=$?
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n1)
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n1)
    if [[ $rc -eq 0 && -n $execs ]]; then
        echo "fuzz: $t: ${execs} executions in ${seconds} s, ${cov:-cov: ?}: ok"
        pass=$((pass + 1))
    else
        echo "fuzz: $t: FAILED (exit $rc) after ${execs:-?} executions"
        grep -E 'ERROR|SUMMARY|promise broken|#[0-9]+ 0x.* in ' "$log" | head -n 30
        art=$(sed -nE 's/.*Test unit written to ([^ ]+).*/\1/p' "$log" | tail -n1)
        [[ -n $art ]] && echo "  reproduce: $build/$t $art"
        echo "  full log: $log"
        fail=$((fail + 1))
    fi
done
echo "fuzz: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
