#!/usr/bin/env bash
# Bridge benchmark: channel -> shmchan-bridge -> NATS -> shmchan-bridge -> channel
# next to a plain libnats publisher -> subscriber, through one local nats-server
# on a random loopback port. Prints a table (and writes bench/bridge/results.txt).
#
#   bench/bridge/run.sh [N_SMALL] [N_LARGE]    message counts (default 200000, 5000)
set -uo pipefail
cd "$(dirname "$0")/../.."
B=_build/bench-bridge
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DSHMCHAN_BUILD_BRIDGE=ON -DSHMCHAN_BUILD_BENCH=ON \
    -DSHMCHAN_BUILD_TESTS=OFF -DSHMCHAN_BUILD_EXAMPLES=OFF >/dev/null &&
    cmake --build $B -j2 --target bench_bridge shmchan_bridge shmchan_bridge_probe >/dev/null || exit 1
BENCH=$PWD/$B/bench/bridge/bench_bridge
BRIDGE=$PWD/$B/tools/bridge/shmchan-bridge
NSMALL=${1:-200000}
NLARGE=${2:-5000}
NLAT=${NLAT:-5000}
W=$(mktemp -d /tmp/shmchan-bridge-bench.XXXXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
URL=nats://127.0.0.1:$PORT
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait; rm -rf "$W"; rm -f /dev/shm/shmchan.bb_*' EXIT
printf 'listen: 127.0.0.1:%s\njetstream { store_dir: "%s" }\n' "$PORT" "$W/store" >"$W/conf"
nats-server -c "$W/conf" >"$W/ns.log" 2>&1 &
PIDS+=($!)
for i in $(seq 100); do grep -q "Server is ready" "$W/ns.log" && break; sleep 0.05; done

# run_pair MODE SIZE: fresh queues and two bridges for one measurement
start_bridges() { # MODE (core|jetstream)
    local mode=$1 opts="mode=core" s2="mode=core"
    RUN=$((${RUN:-0} + 1)) # fresh subjects and streams per measurement
    if [[ $mode == jetstream ]]; then
        opts="stream=BB$RUN"
        s2="stream=BC$RUN"
    fi
    "$BRIDGE" --host bA --server "$URL" --state-dir "$W/sa" \
        --export "queue bb_out bb.ping.$RUN $opts" --import "queue bb.pong.$RUN bb_in $s2" \
        >/dev/null 2>"$W/a.log" &
    PIDS+=($!)
    "$BRIDGE" --host bB --server "$URL" --state-dir "$W/sb" \
        --import "queue bb.ping.$RUN bb_ein $opts" --export "queue bb_eout bb.pong.$RUN $s2" \
        >/dev/null 2>"$W/b.log" &
    PIDS+=($!)
    BA=${PIDS[-2]} BB=${PIDS[-1]}
    local ready="import queue"
    [[ $mode == jetstream ]] && ready="pulling"
    for i in $(seq 400); do # both imports subscribed (state, not time)
        [[ $(cat "$W/a.log" "$W/b.log" | grep -c "$ready") -ge 2 ]] && break
        sleep 0.05
    done
    sleep 0.3
}
stop_bridges() { kill $BA $BB; wait $BA $BB 2>/dev/null; rm -f /dev/shm/shmchan.bb_*; }
mk_queues() {
    for q in bb_out bb_in bb_ein bb_eout; do
        "$PWD/$B/tools/bridge/shmchan-bridge-probe" qcreate $q $((16 << 20)) >/dev/null ||
            { echo "cannot create $q"; exit 1; }
    done
}
{
echo "# $(date -u +%F) $(lscpu | grep 'Model name' | sed 's/ \+/ /g'), $(nproc) CPUs"
echo "# mode size n msgs_per_s MB_per_s p50_us p99_us received"
for size in 64 65536; do
    n=$NSMALL
    [[ $size -gt 1024 ]] && n=$NLARGE
    $BENCH direct-tput "$URL" $size $n
    $BENCH direct-lat "$URL" $size $NLAT
    for mode in core jetstream; do
        mk_queues
        start_bridges $mode
        nb=$n
        [[ $mode == jetstream ]] && nb=$((n / 10))
        $BENCH chan-tput bb_out bb_ein $size $nb | sed "s/^chan/bridge-$mode/"
        stop_bridges
        mk_queues
        start_bridges $mode
        nl=$NLAT
        [[ $mode == jetstream ]] && nl=$((NLAT / 5))
        $BENCH chan-lat bb_out bb_in bb_ein bb_eout $size $nl |
            sed "s/^chan/bridge-$mode/"
        stop_bridges
    done
done
} | tee "$W/results.txt"
cp "$W/results.txt" bench/bridge/results.txt
