#!/usr/bin/env bash
# The main job: a writer publishes on a latest-value channel and two readers
# receive each message as it arrives; then the same with a queue, if built.
# Builds what it needs first. Ends by itself within seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
need_build_tools

build=_build/demo
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DSHMCHAN_BUILD_TESTS=OFF \
    -DSHMCHAN_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(jobs)" >/dev/null
ex="$build/examples"

chan="demo-$$"
cleanup() { rm -f "/dev/shm/shmchan.$chan" "/dev/shm/shmchan.$chan..wait" "/dev/shm/shmchan.$chan-q"; }
trap cleanup EXIT

echo "== latest-value channel '$chan': 1 writer, 2 readers"
"$ex/latest_reader" "$chan" 5 5000 &
r1=$!
"$ex/latest_reader" "$chan" 5 5000 &
r2=$!
sleep 0.3 # let the readers start waiting
"$ex/latest_writer" "$chan" 5 300
wait "$r1" "$r2"

if [[ -x $ex/queue_producer && -x $ex/queue_consumer ]]; then
    echo "== queue '$chan-q': 1 producer, 2 subscribers, every message to each"
    "$ex/queue_consumer" "$chan-q" 5 5000 &
    c1=$!
    "$ex/queue_consumer" "$chan-q" 5 5000 &
    c2=$!
    sleep 0.3
    "$ex/queue_producer" "$chan-q" 5 100
    wait "$c1" "$c2"
fi
echo "== demo done"
