#!/usr/bin/env bash
# bench/run.sh - builds shmbench and runs the whole IPC benchmark suite, then
# writes bench/RESULTS.md, bench/results.csv, bench/results_dist.csv and the
# bench/*.png plots.
#
#   bench/run.sh            full run: 3 interleaved rounds (about 10 minutes on a
#                           2-core machine); each figure is the median round's
#   bench/run.sh --quick    one short round of everything (under a minute)
#
# Options: --build-dir DIR (default <repo>/build-bench), --no-install (do not
# apt-get missing packages), --only a,b,c (only these transports; the name
# readiness selects the readiness-handle benchmarks of issue 13, pairs the
# paired target runs of issue 14).
#
# Every experiment is one shmbench process under `timeout`, so one broken
# transport cannot stop the suite.  Latency workloads run with a PM-QoS
# request of 0 held and not held.  The iceoryx transports run while this
# script's own RouDi daemon (iox-roudi) is up; it is stopped afterwards.
set -u

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")
BUILD_DIR=$REPO_DIR/build-bench
MODE=full
INSTALL=1
ONLY=""

usage() { sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) MODE=quick ;;
        --build-dir) BUILD_DIR=$2; shift ;;
        --no-install) INSTALL=0 ;;
        --only) ONLY=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

LOG_DIR=$BUILD_DIR/logs
CSV=$BENCH_DIR/results.csv
DIST=$BENCH_DIR/results_dist.csv
ROUDI_PID=""

log() { printf '== %s\n' "$*" >&2; }

# ---------------------------------------------------------------- packages --

PACKAGES="cmake gcc g++ make pkg-config python3 libzmq3-dev libboost-dev
          libiceoryx-binding-c-dev iceoryx gnuplot-nox"

missing_packages() {
    local p
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || printf '%s ' "$p"
    done
}

install_packages() {
    command -v dpkg-query >/dev/null || { log "not a Debian system: skipping package check"; return; }
    local missing; missing=$(missing_packages)
    [ -z "$missing" ] && return
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if sudo -n true 2>/dev/null; then sudo="sudo -n"; else
            log "missing packages ($missing) and no root: continuing without them"; return
        fi
    fi
    log "installing: $missing"
    $sudo apt-get update -qq >"$LOG_DIR/apt.log" 2>&1
    # one by one, so that one unavailable package does not block the others
    for p in $missing; do
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$p" \
            >>"$LOG_DIR/apt.log" 2>&1 || log "could not install $p (see $LOG_DIR/apt.log)"
    done
}

# ------------------------------------------------------------------- build --

BIN=""

configure_and_build() { # $1 = source dir, $2 = build dir
    cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release >"$LOG_DIR/cmake.log" 2>&1 &&
        cmake --build "$2" --target shmbench -j "$(nproc)" >"$LOG_DIR/build.log" 2>&1
}

build() {
    # Through the top-level project when it includes bench/ (so the shmchan
    # transports get the library), else bench/ alone.
    if grep -Eq '^[^#]*add_subdirectory\(\s*bench' "$REPO_DIR/CMakeLists.txt" 2>/dev/null &&
        configure_and_build "$REPO_DIR" "$BUILD_DIR/project"; then
        BIN=$BUILD_DIR/project/bench/shmbench
    elif configure_and_build "$BENCH_DIR" "$BUILD_DIR/standalone"; then
        BIN=$BUILD_DIR/standalone/shmbench
    else
        log "build failed, see $LOG_DIR/cmake.log and $LOG_DIR/build.log"
        tail -20 "$LOG_DIR/build.log" >&2
        exit 1
    fi
    grep -h 'optional transports' "$LOG_DIR/cmake.log" >&2
}

# ------------------------------------------------------------------- RouDi --

roudi_start() {
    [ -n "$ROUDI_PID" ] && return 0
    command -v iox-roudi >/dev/null || { log "iox-roudi not installed"; return 1; }
    if pgrep -x iox-roudi >/dev/null; then
        log "using the iox-roudi that is already running"; return 0
    fi
    iox-roudi -m off -l warning -c "$BENCH_DIR/iceoryx/roudi.toml" >"$LOG_DIR/roudi.log" 2>&1 &
    ROUDI_PID=$!
    local i
    for i in $(seq 100); do
        grep -q 'RouDi is ready' "$LOG_DIR/roudi.log" 2>/dev/null && return 0
        kill -0 "$ROUDI_PID" 2>/dev/null || break
        sleep 0.1
    done
    log "iox-roudi did not come up (see $LOG_DIR/roudi.log)"
    roudi_stop
    return 1
}

roudi_stop() {
    [ -z "$ROUDI_PID" ] && return 0
    kill -TERM "$ROUDI_PID" 2>/dev/null
    local i
    for i in $(seq 50); do
        kill -0 "$ROUDI_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$ROUDI_PID" 2>/dev/null
    wait "$ROUDI_PID" 2>/dev/null
    ROUDI_PID=""
}

# Names left behind by shmbench processes that were killed outright (their
# own cleanup runs on errors, timeouts and Ctrl-C): Boost shm objects, ZeroMQ
# socket files, iceoryx runtime sockets.  POSIX message queues cannot be
# listed without mounting mqueue; shmbench unlinks its own.
cleanup_leftovers() {
    local f pid
    for f in /dev/shm/shmbench-* /tmp/shmbench-*.zmq /tmp/shmbench-*.sock /tmp/shmbench_*; do
        [ -e "$f" ] || continue
        pid=${f##*/shmbench[-_]}
        pid=${pid%%[!0-9]*}
        [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && rm -f "$f"
    done
}

trap 'roudi_stop; cleanup_leftovers' EXIT
trap 'roudi_stop; cleanup_leftovers; exit 130' INT TERM

# --------------------------------------------------------------- the suite --

# Full runs go through the suite ROUNDS times, each experiment shorter: the
# vCPUs of these VMs move between host cores every few minutes, which moves
# every figure by up to 3x, and interleaving spreads that over all transports.
if [ "$MODE" = quick ]; then
    ROUNDS=1
    PP_D=0.15 PP_W=200 WU_D=0.1 WU_W=20 FO_D=0.1 FO_W=10 TP_D=0.1 FI_D=0.1 MC_D=0.05
    LAT_QOS="held off" TP_QOS="held" FO_QOS="held" FI_QOS="held"
else
    ROUNDS=3
    PP_D=0.5 PP_W=1000 WU_D=0.4 WU_W=50 FO_D=0.4 FO_W=20 TP_D=0.4 FI_D=0.4 MC_D=0.2
    LAT_QOS="held off" TP_QOS="held off" FO_QOS="held off" FI_QOS="held off"
fi
SIZES="64 4K 64K 1M"
FANOUT="1 2 4 8"
FANIN="2 4"
RPC_LOAD="4 2" # clients servers: the issue-16 load case

CSV_HEADER="transport,workload,pmqos,msg_size,writers,readers,mode,status,samples,lost,min_ns,median_ns,p99_ns,p999_ns,max_ns,mean_ns,msgs_per_s,bytes_per_s,seconds,qos_us,note"

# A row for an experiment that did not report.
fallback_row() { # transport workload pmqos bytes fan status note [servers]
    local w=1 r=1
    [ "$2" = fanin ] && w=$5
    [ "$2" = fanout ] && r=$5
    [ "$2" = rpcload ] && w=$5 && r=${8:-1}
    printf '%s,%s,%s,%s,%s,%s,native,%s,0,0,,,,,,,,,,,"%s"\n' "$1" "$2" "$3" "$4" "$w" "$r" "$6" "$7" >>"$CSV"
}

bytes_of() { case "$1" in *K) echo $(( ${1%K} * 1024 ));; *M) echo $(( ${1%M} * 1048576 ));; *) echo "$1";; esac; }

# one experiment: transport workload pmqos size fan duration warmup [servers]
experiment() {
    local limit before rc status
    limit=$(awk -v d="$6" 'BEGIN { printf "%d", d * 3 + 45 }')
    before=$(cat "$CSV" 2>/dev/null | wc -l)
    timeout -k 5 "$limit" "$BIN" -t "$1" -w "$2" -q "$3" -s "$4" -n "$5" -m "${8:-1}" -d "$6" \
        -W "$7" -o "$CSV" -D "$DIST" 2>>"$LOG_DIR/runs.log"
    rc=$?
    if [ "$(cat "$CSV" 2>/dev/null | wc -l)" -le "$before" ]; then
        # it did not report: killed by `timeout` or crashed
        status=error
        { [ "$rc" = 124 ] || [ "$rc" = 137 ]; } && status=timeout
        [ "$before" = 0 ] && echo "$CSV_HEADER" >"$CSV"
        fallback_row "$1" "$2" "$3" "$(bytes_of "$4")" "$5" "$status" "exit status $rc, limit ${limit}s" "${8:-1}"
    fi
    tail -n 1 "$CSV" | awk -F, '{ printf "  %-13s %-10s %-4s %8s B  x%-3s %s\n", $1, $2, $3, $4, ($2=="fanin" ? $5 : $2=="rpcload" ? $5 "x" $6 : $6), $8 }' >&2
}

has_cap() { case ",$1," in *",$2,"*) return 0;; *) return 1;; esac; }

run_transport() { # name caps
    local t=$1 caps=$2 q s n
    if has_cap "$caps" rpc; then # request/response: round trip, then clients x servers
        for q in $LAT_QOS; do experiment "$t" rpc "$q" 64 1 "$PP_D" "$PP_W"; done
        # shellcheck disable=SC2086
        set -- $RPC_LOAD
        experiment "$t" rpcload held 64 "$1" "$FI_D" 0 "$2"
        return
    fi
    if has_cap "$caps" latency; then
        for q in $LAT_QOS; do
            experiment "$t" pingpong "$q" 64 1 "$PP_D" "$PP_W"
            experiment "$t" wakeup "$q" 64 1 "$WU_D" "$WU_W"
        done
        for q in $FO_QOS; do
            for n in $FANOUT; do experiment "$t" fanout "$q" 64 "$n" "$FO_D" "$FO_W"; done
        done
    fi
    if has_cap "$caps" stream; then
        for q in $TP_QOS; do
            for s in $SIZES; do experiment "$t" throughput "$q" "$s" 1 "$TP_D" 0; done
        done
        if has_cap "$caps" multi-writer; then
            for q in $FI_QOS; do
                for n in $FANIN; do experiment "$t" fanin "$q" 64 "$n" "$FI_D" 0; done
            done
        fi
    fi
}

run_memcpy_limit() {
    local q s
    for q in $TP_QOS; do
        for s in $SIZES; do
            "$BIN" -w memcpy -q "$q" -s "$s" -d "$MC_D" -o "$CSV" 2>>"$LOG_DIR/runs.log"
        done
    done
}

selected() { [ -z "$ONLY" ] || case ",$ONLY," in *",$1,"*) return 0;; *) return 1;; esac; }

run_suite() {
    local name group caps rest
    run_memcpy_limit
    while IFS=$'\t' read -r name group caps rest; do
        selected "$name" || continue
        case "$name" in
            iceoryx*) roudi_start || { log "skipping $name: no RouDi"; continue; } ;;
            *) roudi_stop ;;
        esac
        log "$name"
        run_transport "$name" "$caps"
    done <"$BUILD_DIR/transports.tsv"
    roudi_stop
}

# ------------------------------------------------ paired targets (issue 14) --
# The vCPUs of these guests move between host cores every few seconds to
# minutes, and the same binary's round trip moves 2-3x with them (two placements
# are common: 0.23 and 0.46 us for the limit line). Figures of the suite taken
# minutes apart can therefore come from different placements. For each target
# this block runs ours and its reference back to back in short slices,
# alternating which goes first, PAIR_N times; report.py takes the median of the
# per-pair ratios (bench/pairs.csv: target,pair,transport,value,...).

PAIRS_CSV=$BENCH_DIR/pairs.csv

# one slice: transport workload size -> the figure (median ns or msgs/s or B/s)
slice() {
    local field=12
    [ "$2" = throughput ] && field=17
    [ "$2" = throughput ] && [ "$3" != 64 ] && field=18
    if [ "$1" = limit-memcpy ]; then
        timeout -k 5 30 "$BIN" -w memcpy -q held -s "$3" -d "$PAIR_D" 2>/dev/null | cut -d, -f18
    else
        timeout -k 5 60 "$BIN" -t "$1" -w "$2" -q held -s "$3" -d "$PAIR_D" 2>/dev/null |
            cut -d, -f"$field"
    fi
}

# target workload size ours reference [reference's workload]
pair() {
    local i a b t
    for i in $(seq "$PAIR_N"); do
        if [ $((i % 2)) = 1 ]; then
            a=$(slice "$4" "$2" "$3") b=$(slice "$5" "${6:-$2}" "$3")
        else
            b=$(slice "$5" "${6:-$2}" "$3") a=$(slice "$4" "$2" "$3")
        fi
        [ -n "$a" ] && [ -n "$b" ] && echo "$1,$i,$4,$a,$5,$b" >>"$PAIRS_CSV"
    done
}

run_pairs() {
    PAIR_N=9 PAIR_D=0.2
    [ "$MODE" = quick ] && PAIR_N=3 PAIR_D=0.1
    echo "target,pair,ours,ours_value,reference,reference_value" >"$PAIRS_CSV"
    selected pairs || return 0 # --only ...,pairs
    log "paired targets: $PAIR_N alternations of ${PAIR_D}s slices"
    pair queue-poll-rtt pingpong 64 shmchan-queue-poll limit-line
    pair latest-poll-rtt pingpong 64 shmchan-latest-poll limit-line
    pair queue-wait-rtt pingpong 64 shmchan-queue-wait spin-futex
    pair latest-wait-rtt pingpong 64 shmchan-latest-wait spin-futex
    pair queue-wakeup wakeup 64 shmchan-queue-wait futex
    pair ring-64 throughput 64 shmchan-queue-poll ring
    pair ring-64-batch throughput 64 shmchan-queue-batch ring
    pair pipe-64 throughput 64 shmchan-queue-poll pipe
    pair pipe-64-wait throughput 64 shmchan-queue-wait pipe
    pair pipe-64-batch throughput 64 shmchan-queue-batch pipe
    pair memcpy-1M throughput 1M shmchan-queue-wait limit-memcpy
    pair memcpy-1M-batch throughput 1M shmchan-queue-batch limit-memcpy
    # the same copies against a ring that crosses the same two cores (memcpy
    # stays in one core's caches; a far placement slows every cross-core copy)
    pair ring-1M throughput 1M shmchan-queue-wait ring
    # issue 16: the service round trip against our queue ping-pong and iceoryx
    pair service-poll-rtt rpc 64 shmchan-service-poll shmchan-queue-poll pingpong
    pair service-wait-rtt rpc 64 shmchan-service-wait shmchan-queue-wait pingpong
    if roudi_start; then
        pair service-iceoryx rpc 64 shmchan-service-poll iceoryx-rpc-poll
        roudi_stop
    fi
}

# ------------------------------------------- readiness handles (issue 13) --
# Once per run, after the suite: notify_bench (64 B round trip with each
# side in epoll, next to a pipe and an eventfd; one epoll loop over 1000
# queues next to 1000 Unix sockets) and bench/python/bench_asyncio.py
# (asyncio next to Unix-socket streams and zmq.asyncio). Their figures go to
# bench/readiness.csv; report.py turns them into the targets of issue 13.

READINESS_CSV=$BENCH_DIR/readiness.csv

run_readiness() {
    local rounds=20000 messages=1000000 a_rounds=5000 a_messages=200000
    local nb=$BUILD_DIR/project/bench/notify_bench lib=$BUILD_DIR/project/libshmchan.so
    [ "$MODE" = quick ] && rounds=2000 messages=100000 a_rounds=500 a_messages=20000
    rm -f "$READINESS_CSV"
    selected readiness || return 0 # --only ...,readiness
    if [ "$BIN" != "$BUILD_DIR/project/bench/shmbench" ] ||
        ! cmake --build "$BUILD_DIR/project" --target notify_bench shmchan -j "$(nproc)" \
            >>"$LOG_DIR/build.log" 2>&1; then
        log "readiness: notify_bench not built (needs the project build), skipped"
        return
    fi
    log "readiness handles: notify_bench rtt --rounds $rounds, fanin --messages $messages"
    timeout -k 5 900 "$nb" rtt --rounds "$rounds" --csv "$READINESS_CSV" \
        >"$LOG_DIR/notify_rtt.log" 2>&1 || log "notify_bench rtt failed (see $LOG_DIR/notify_rtt.log)"
    timeout -k 5 900 "$nb" fanin --messages "$messages" --csv "$READINESS_CSV" \
        >"$LOG_DIR/notify_fanin.log" 2>&1 || log "notify_bench fanin failed (see $LOG_DIR/notify_fanin.log)"
    # Debian's python3 has python3-zmq; the compiled module (when the project
    # builds it) sits next to the library, as in the tests.
    local py=python3
    [ -x /usr/bin/python3 ] && py=/usr/bin/python3
    cmake --build "$BUILD_DIR/project" --target shmchan_py_native >>"$LOG_DIR/build.log" 2>&1 ||
        log "readiness: no compiled Python module, bench_asyncio.py uses ctypes"
    log "readiness handles: bench_asyncio.py --rounds $a_rounds --messages $a_messages"
    PYTHONPATH=$REPO_DIR/python SHMCHAN_LIBRARY=$lib timeout -k 5 900 \
        "$py" "$BENCH_DIR/python/bench_asyncio.py" --rounds "$a_rounds" --messages "$a_messages" \
        --csv "$READINESS_CSV" >"$LOG_DIR/asyncio.log" 2>&1 ||
        log "bench_asyncio.py failed (see $LOG_DIR/asyncio.log)"
}

# -------------------------------------------------------------------- main --

mkdir -p "$LOG_DIR"
[ "$INSTALL" = 1 ] && install_packages
log "building in $BUILD_DIR"
build
"$BIN" --list >"$BUILD_DIR/transports.tsv"
RESULTS_CSV=$CSV RESULTS_DIST=$DIST
rm -f "$LOG_DIR"/round-*.csv "$LOG_DIR/runs.log"
START=$(date +%s)
ROUND_FILES=()
for ROUND in $(seq "$ROUNDS"); do
    log "running the $MODE suite, round $ROUND of $ROUNDS"
    CSV=$LOG_DIR/round-$ROUND.csv DIST=$LOG_DIR/round-$ROUND-dist.csv
    run_suite
    ROUND_FILES+=("$CSV")
done
run_pairs
run_readiness
log "suite took $(( $(date +%s) - START )) s"
python3 "$BENCH_DIR/report/report.py" --results "$RESULTS_CSV" --dist "$RESULTS_DIST" \
    --rounds "${ROUND_FILES[@]}" \
    --transports "$BUILD_DIR/transports.tsv" --outdir "$BENCH_DIR" --mode "$MODE" \
    --readiness "$READINESS_CSV" --pairs "$PAIRS_CSV" \
    --seconds "$(( $(date +%s) - START ))"
log "wrote $BENCH_DIR/RESULTS.md"
