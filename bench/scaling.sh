#!/usr/bin/env bash
# Multi-core scaling runs of the benchmark: fan-out to 1, 2, 4 and 8
# subscribers (one message in flight, and streaming), fan-in from 1, 2 and 4
# writers, ping-pong and one-way throughput, for machines with enough
# cores that every process spins on its own (the 2-core CI machine cannot
# show scaling). Builds only the benchmark, needs nothing beyond a C
# compiler and CMake, and writes CSV rows (shmbench's format) to OUT_DIR.
#
#   bench/scaling.sh [OUT_DIR]        (default: bench/)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-bench}
mkdir -p "$out"
build=_build/scaling
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSHMCHAN_BUILD_TESTS=OFF \
    -DSHMCHAN_BUILD_TOOLS=OFF -DSHMCHAN_BUILD_EXAMPLES=OFF -DSHMCHAN_BUILD_PYTHON_TESTS=OFF \
    -DSHMCHAN_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j"$(nproc)" --target shmbench >/dev/null
bench=$build/bench/shmbench
csv=$out/scaling.csv
rm -f "$csv"
host="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "# $host" >"$out/scaling-machine.txt"

run() { "$bench" "$@" -o "$csv" -T 5000 >/dev/null 2>&1 || echo "failed: $*" >&2; }

for t in shmchan-queue-poll shmchan-queue-wait shmchan-queue-zc shmchan-latest-wait \
         spin-futex pipe unix; do
    for n in 1 2 4 8; do
        run -t "$t" -w fanout -n "$n" -s 64 -d 2
    done
done
# Streaming fan-out: one writer sends back to back, N subscribers each take
# every message (writer rate = msgs_per_s / N).
for t in shmchan-queue-poll shmchan-queue-wait shmchan-queue-zc shmchan-queue-batch; do
    for n in 1 2 4 8; do
        run -t "$t" -w throughput -n "$n" -s 64 -d 2
    done
done
for t in shmchan-queue-poll shmchan-queue-wait pipe unix mqueue; do
    for n in 1 2 4; do
        run -t "$t" -w fanin -n "$n" -s 64 -d 2
    done
done
for t in limit-line spin-futex ring shmchan-latest-wait shmchan-queue-poll shmchan-queue-wait \
         futex pipe unix; do
    run -t "$t" -w pingpong -s 64 -d 2 -q held
done
for s in 64 4K 64K 1M; do
    for t in ring shmchan-queue-poll shmchan-queue-wait shmchan-queue-batch shmchan-queue-zc \
             shmchan-queue-zc-inplace pipe unix; do
        run -t "$t" -w throughput -s "$s" -d 2
    done
    run -w memcpy -s "$s" -d 1
done
cat "$csv"
