#!/usr/bin/env bash
# Bridge benchmark: channel -> shmchan-bridge -> NATS -> shmchan-bridge -> channel
# next to plain libnats connections doing the same, through one local
# nats-server on a random loopback port (stopped by pid). Interleaved rounds:
# each round measures the direct path and the bridge back to back (their order
# alternating), so a change of load hits both; the summary gives per-round
# ratios and their medians. Writes bench/bridge/results.txt.
#
#   bench/bridge/run.sh [N_SMALL] [N_LARGE]   messages per throughput run at 64 B
#                                             and 64 KiB (default 200000, 5000)
#   ROUNDS=N     rounds (default 5)
#   NLAT=N       round trips per latency run (default 2000)
#   NJS=N        JetStream throughput messages at 64 B (default 2000; /10 at 64 KiB)
#   BRIDGE_BIN=PATH  measure this shmchan-bridge binary instead of this tree's (an older
#                build, for figures before and after a change; its path goes in the header)
#   PMQOS=none   do not hold a PM-QoS request (default: hold 0 us, as bench/run.sh does,
#                where /dev/cpu_dma_latency is writable: these KVM guests halt idle
#                vCPUs, and each wake of a halted one costs tens of microseconds, which
#                a path of more hand-offs pays more often)
set -uo pipefail
cd "$(dirname "$0")/../.."
B=_build/bench-bridge
cmake -S . -B $B -DCMAKE_BUILD_TYPE=Release -DSHMCHAN_BUILD_BRIDGE=ON -DSHMCHAN_BUILD_BENCH=ON \
    -DSHMCHAN_BUILD_TESTS=OFF -DSHMCHAN_BUILD_EXAMPLES=OFF >/dev/null &&
    cmake --build $B -j2 --target bench_bridge shmchan_bridge shmchan_bridge_probe >/dev/null || exit 1
BENCH=$PWD/$B/bench/bridge/bench_bridge
BRIDGE=${BRIDGE_BIN:-$PWD/$B/tools/bridge/shmchan-bridge}
PROBE=$PWD/$B/tools/bridge/shmchan-bridge-probe
NSMALL=${1:-200000}
NLARGE=${2:-5000}
ROUNDS=${ROUNDS:-5}
NLAT=${NLAT:-2000}
NJS=${NJS:-2000}
QOS="not held"
if [[ ${PMQOS:-held} == held && -w /dev/cpu_dma_latency ]]; then
    exec 9>/dev/cpu_dma_latency # the request lasts while fd 9 is open
    printf 0 >&9 && QOS="held (0 us)" # ASCII: the kernel reads it as a number
fi
W=$(mktemp -d /tmp/shmchan-bridge-bench.XXXXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
URL=nats://127.0.0.1:$PORT
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait; rm -rf "$W"; rm -f /dev/shm/shmchan.bb_*' EXIT
rm -f /dev/shm/shmchan.bb_* # a killed earlier run's queues
printf 'listen: 127.0.0.1:%s\njetstream { store_dir: "%s" }\n' "$PORT" "$W/store" >"$W/conf"
nats-server -c "$W/conf" >"$W/ns.log" 2>&1 &
PIDS+=($!)
for i in $(seq 100); do grep -q "Server is ready" "$W/ns.log" && break; sleep 0.05; done

# start_pair MODE: four block-policy queues bb_MODE_{out,in,ein,eout} and two
# bridges carrying out -> ein (ping) and eout -> in (pong); waits until both
# imports are subscribed and, for core NATS, both exports' channels are open
# (their logs say so: state, not time).
start_pair() {
    local m=$1 o1="mode=core" o2="mode=core" ready="import queue"
    if [[ $m == jetstream ]]; then
        o1="stream=BBPING" o2="stream=BBPONG" ready="pulling"
    fi
    for q in out in ein eout; do
        "$PROBE" qcreate bb_${m}_$q $((16 << 20)) >/dev/null || { echo "cannot create a queue"; exit 1; }
    done
    "$BRIDGE" --host bA --server "$URL" --state-dir "$W/sa" \
        --export "queue bb_${m}_out bb.$m.ping $o1" --import "queue bb.$m.pong bb_${m}_in $o2" \
        >/dev/null 2>"$W/$m-a.log" &
    PIDS+=($!)
    "$BRIDGE" --host bB --server "$URL" --state-dir "$W/sb" \
        --import "queue bb.$m.ping bb_${m}_ein $o1" --export "queue bb_${m}_eout bb.$m.pong $o2" \
        >/dev/null 2>"$W/$m-b.log" &
    PIDS+=($!)
    for i in $(seq 400); do
        # and, for core NATS, both exports' channels open (the exporter reads only what
        # is written after it has subscribed)
        [[ $(cat "$W/$m-a.log" "$W/$m-b.log" | grep -c "$ready") -ge 2 ]] &&
            { [[ $m != core ]] || [[ $(cat "$W/$m-a.log" "$W/$m-b.log" | grep -c "is open") -ge 2 ]]; } &&
            break
        sleep 0.05
    done
}
start_pair core
start_pair jetstream
for q in a b; do "$PROBE" qcreate bb_local_$q $((16 << 20)) >/dev/null || exit 1; done
sleep 0.3

direct() { "$BENCH" "direct-$1" "$URL" "$2" "$3"; }
bridged() { # MODE WHAT SIZE N
    local q=bb_$1
    if [[ $2 == tput ]]; then
        "$BENCH" chan-tput ${q}_out ${q}_ein "$3" "$4"
    else
        "$BENCH" chan-lat ${q}_out ${q}_in ${q}_ein ${q}_eout "$3" "$4"
    fi | sed "s/^chan-/bridge-$1-/"
}
{
    echo "# $(date -u +%FT%TZ) $(lscpu | grep 'Model name' | sed 's/ \+/ /g'), $(nproc) CPUs;" \
        "PM-QoS $QOS; load before: $(cut -d' ' -f1-3 /proc/loadavg); bridge $BRIDGE"
    echo "# round mode size n msgs_per_s MB_per_s rtt_p50_us rtt_p99_us received"
    for r in $(seq "$ROUNDS"); do
        for size in 64 65536; do
            n=$NSMALL nj=$NJS
            [[ $size -gt 1024 ]] && n=$NLARGE nj=$((NJS / 10))
            for what in tput lat; do
                count=$n
                [[ $what == lat ]] && count=$NLAT
                if ((r % 2)); then # alternate which path goes first
                    direct $what $size $count
                    bridged core $what $size $count
                else
                    bridged core $what $size $count
                    direct $what $size $count
                fi
                if [[ $what == lat ]]; then # the local hand-offs alone, same round
                    "$BENCH" local-lat bb_local_a bb_local_b $size $count
                    direct el-lat $size $count # both connections in event-loop mode
                    nj=$((NLAT / 5))
                fi
                bridged jetstream $what $size $nj
            done
        done | sed "s/^/$r /"
    done
    echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$W/raw.txt"

python3 - "$W/raw.txt" <<'EOF' | tee "$W/summary.txt"
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l[0] != "#"]
get = lambda r, m, s, col: next((float(x[col]) for x in rows
                                 if x[0] == r and x[1] == m and x[2] == s), None)
rounds = sorted({x[0] for x in rows}, key=int)
med = lambda v: st.median(v) if v else float("nan")
print("# summary: medians over %d rounds (per-round ratio or difference, then its median)" % len(rounds))
for s in ("64", "65536"):
    d = [get(r, "direct-tput", s, 4) for r in rounds]
    b = [get(r, "bridge-core-tput", s, 4) for r in rounds]
    j = [get(r, "bridge-jetstream-tput", s, 4) for r in rounds]
    ratio = [y / x for x, y in zip(d, b) if x and y is not None]
    print("tput %6s B: direct %9.0f msgs/s  bridge-core %9.0f  ratio %.2f (rounds: %s)  "
          "jetstream %7.0f" % (s, med(d), med(b), med(ratio),
                               " ".join("%.2f" % x for x in ratio), med(j)))
    for c, name in ((6, "p50"), (7, "p99")):
        d = [get(r, "direct-lat", s, c) for r in rounds]
        b = [get(r, "bridge-core-lat", s, c) for r in rounds]
        j = [get(r, "bridge-jetstream-lat", s, c) for r in rounds]
        loc = [get(r, "local-lat", s, c) for r in rounds]
        de = [get(r, "direct-el-lat", s, c) for r in rounds]
        add = [y - x for x, y in zip(d, b)]
        adde = [y - x for x, y in zip(de, b) if x is not None]
        print("rtt  %6s B %s: direct %7.1f us  bridge-core %7.1f  added %+7.1f (rounds: %s)  "
              "2 x local %7.1f  jetstream %8.1f" % (s, name, med(d), med(b), med(add),
                                   " ".join("%+.0f" % x for x in add),
                                   2 * med(loc), med(j)))
        if adde:
            print("rtt  %6s B %s: direct, event-loop mode %7.1f us  added over it %+7.1f "
                  "(rounds: %s)" % (s, name, med([x for x in de if x is not None]), med(adde),
                                    " ".join("%+.0f" % x for x in adde)))
lost = [x for x in rows if int(x[8]) < int(x[3])]
for x in lost:
    print("short: round %s %s %s B: %s of %s arrived" % (x[0], x[1], x[2], x[8], x[3]))
EOF
cat "$W/raw.txt" "$W/summary.txt" >bench/bridge/results.txt
