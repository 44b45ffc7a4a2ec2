#!/usr/bin/env bash
# Tests of shmchan-bridge (tools/bridge/, docs/bridge.md) against real
# nats-server processes: each on a random free loopback port (never 4222),
# started here and stopped by pid, with its store in a temporary folder.
# Two "hosts" are two private /dev/shm mounts (unshare -m + tmpfs, as root),
# each with its own bridge; the tests that need them are skipped, and counted
# as skipped in the summary, where that is impossible.
#
#   scripts/test-bridge.sh            all tests (about 1-2 minutes on 2 cores)
#   SHMCHAN_STRESS_SECONDS=N          length of the chaos loop (default 20 s here)
#   BRIDGE_TESTS="name ..."           run only these tests
#   BRIDGE_SANITIZE=address,undefined  build the bridge with sanitizers (_build/bridge-san)
#   CHAOS_KILLS="server writer ..."   what the chaos test kills (default: all: bridgeA
#                                     bridgeB server writer reader termA termB)
#
# Prints "bridge: N passed, N failed, N skipped" last.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

need_build_tools
need_packages nats-server:/usr/sbin/nats-server libnats-dev:/usr/include/nats/nats.h \
    util-linux:unshare python3:python3

BUILD=_build/bridge
SAN=${BRIDGE_SANITIZE:-}
BTYPE=RelWithDebInfo
[[ -n $SAN ]] && BUILD=_build/bridge-san && BTYPE=Debug # as test.sh's asan stage
mkdir -p _build
echo "== bridge: building in $BUILD"
if ! cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=$BTYPE -DSHMCHAN_WERROR=ON \
    -DSHMCHAN_BUILD_BRIDGE=ON -DSHMCHAN_BUILD_TESTS=OFF -DSHMCHAN_BUILD_BENCH=OFF \
    -DSHMCHAN_BUILD_EXAMPLES=OFF -DSHMCHAN_SANITIZE="$SAN" >$BUILD.configure.log 2>&1 ||
    ! cmake --build $BUILD -j"$(jobs)" --target shmchan_bridge shmchan_bridge_probe 2>&1 |
    tail -n 20; then
    cat $BUILD.configure.log
    echo "bridge: 0 passed, 1 failed (build)"
    exit 1
fi
BRIDGE=$PWD/$BUILD/tools/bridge/shmchan-bridge
PROBE=$PWD/$BUILD/tools/bridge/shmchan-bridge-probe
NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
CHAOS_SECONDS=${SHMCHAN_STRESS_SECONDS:-20}
[[ $CHAOS_SECONDS -lt 20 ]] && CHAOS_SECONDS=20

WORK=$(mktemp -d /tmp/shmchan-bridge-test.XXXXXX)
PIDS=() # every process started here

# Stop, by pid, the processes this script started that still run: only a pid
# whose parent is this shell (never one reused by someone else's process).
is_child() { [[ $(awk '/^PPid:/ {print $2}' "/proc/$1/status" 2>/dev/null) == "$$" ]]; }
stop_children() { # [KEEP_PID...]
    local p
    for p in "${PIDS[@]}"; do
        [[ " $* " == *" $p "* ]] && continue
        is_child "$p" && kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
}
cleanup() {
    stop_children
    [[ -n ${KEEP_WORK:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT

# ------------------------------------------------------------------ helpers

free_port() {
    python3 -c 'import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    if p != 4222: print(p); break'
}

# wait_for FILE PATTERN [SECONDS]: wait until a line matches (state, not time).
wait_for() {
    local file=$1 pat=$2 limit=${3:-20} i
    for ((i = 0; i < limit * 20; i++)); do
        grep -qE -- "$pat" "$file" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "   timed out waiting for /$pat/ in $file"
    return 1
}

# ns_start NAME [max_payload]: start (or restart, same port and store) server NAME.
declare -A NS_PID NS_PORT
ns_start() {
    local name=$1 maxp=${2:-}
    local dir=$WORK/ns-$name
    mkdir -p "$dir"
    [[ -n ${NS_PORT[$name]:-} ]] || NS_PORT[$name]=$(free_port)
    {
        echo "listen: 127.0.0.1:${NS_PORT[$name]}"
        echo "jetstream { store_dir: \"$dir/store\" }"
        [[ -n $maxp ]] && echo "max_payload: $maxp"
    } >"$dir/conf"
    : >"$dir/log"
    "$NATS_SERVER" -c "$dir/conf" >>"$dir/log" 2>&1 &
    NS_PID[$name]=$!
    PIDS+=($!)
    wait_for "$dir/log" "Server is ready" 20
}
# cluster_start: three JetStream nodes c1..c3 routed to each other on loopback.
declare -A CL_PORT
cluster_start() {
    local i j
    for i in 1 2 3; do
        [[ -n ${NS_PORT[c$i]:-} ]] || NS_PORT[c$i]=$(free_port)
        [[ -n ${CL_PORT[$i]:-} ]] || CL_PORT[$i]=$(free_port)
    done
    for i in 1 2 3; do node_start $i || return 1; done
}
node_start() { # N: start (or restart, same ports and store) node cN
    local i=$1 j routes="" dir=$WORK/ns-c$1
    mkdir -p "$dir"
    for j in 1 2 3; do
        [[ $j -ne $i ]] && routes+="nats-route://127.0.0.1:${CL_PORT[$j]}, "
    done
    cat >"$dir/conf" <<EOC
server_name: c$i
listen: 127.0.0.1:${NS_PORT[c$i]}
jetstream { store_dir: "$dir/store" }
cluster { name: shmchan-test, listen: 127.0.0.1:${CL_PORT[$i]}, routes: [ ${routes%, } ] }
EOC
    : >"$dir/log"
    "$NATS_SERVER" -c "$dir/conf" >>"$dir/log" 2>&1 &
    NS_PID[c$i]=$!
    PIDS+=($!)
    wait_for "$dir/log" "Server is ready" 20
}
ns_kill() { kill -"${2:-9}" "${NS_PID[$1]}" 2>/dev/null; wait "${NS_PID[$1]}" 2>/dev/null; }
ns_url() { echo "nats://127.0.0.1:${NS_PORT[$1]}"; }

# Hosts: a process holding a private mount namespace with its own /dev/shm.
declare -A HOST_PID
NS_OK=1
NS_WHY=""
host_start() {
    local name=$1 ready=$WORK/host-$1.ready
    unshare -m --propagation private bash -c \
        "mount -t tmpfs -o size=256m tmpfs /dev/shm && echo ok >$ready && exec sleep 100000" \
        2>"$WORK/host-$name.err" &
    HOST_PID[$name]=$!
    PIDS+=($!)
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -s $ready ]] && return 0
        kill -0 "${HOST_PID[$name]}" 2>/dev/null || break
        sleep 0.05
    done
    NS_WHY="unshare -m + tmpfs on /dev/shm failed: $(head -c 200 "$WORK/host-$name.err")"
    return 1
}
# on HOST CMD...: run CMD in HOST's namespace. In the background use
# "$(nsx HOST) CMD... &" instead: a function run with & is a subshell, whose pid
# is not CMD's; nsenter execs CMD, so there $! is CMD's pid.
on() {
    local h=$1
    shift
    nsenter -t "${HOST_PID[$h]}" -m -- "$@"
}
nsx() { echo "nsenter -t ${HOST_PID[$1]} -m --"; }

# bridge HOST NAME ARGS...: start a bridge in HOST; its log is $WORK/NAME.log.
declare -A BR_PID
bridge() {
    local h=$1 name=$2
    shift 2
    $(nsx "$h") "$BRIDGE" --host "$h" --state-dir "$WORK/state-$name" "$@" \
        >>"$WORK/$name.out" 2>>"$WORK/$name.log" &
    BR_PID[$name]=$!
    PIDS+=($!)
}
bridge_stop() { # SIGTERM, expect a clean exit
    kill -TERM "${BR_PID[$1]}" 2>/dev/null
    wait "${BR_PID[$1]}"
    local st=$?
    [[ $st -eq 0 ]] || echo "   bridge $1 exited with status $st after SIGTERM"
    return $st
}
bridge_kill() { kill -9 "${BR_PID[$1]}" 2>/dev/null; wait "${BR_PID[$1]}" 2>/dev/null; }
# The counter FIELD of the last stats line of bridge NAME for channel CHAN.
stat_of() { stats_of "$1:$2:$3"; }
# stats_of NAME:CHAN:FIELD...: several counters, space-separated (summed over
# the links of CHAN), from the last stats line: grep and awk, not python3,
# whose start costs seconds on a loaded machine.
stats_of() {
    local spec name chan field out=()
    for spec in "$@"; do
        IFS=: read -r name chan field <<<"$spec"
        out+=("$(grep '^{' "$WORK/$name.out" | tail -n1 |
            grep -o "{\"dir\":[^}]*\"channel\":\"${chan//./\\.}\"[^}]*}" |
            grep -o "\"$field\":[0-9]*" | awk -F: '{s += $2} END {print s + 0}')")
    done
    echo "${out[*]}"
}

# Raw NATS publish (for messages no bridge would send), one connection for
# any number of messages, each MSG separated by "--":
#   pub.py URL MSG [-- MSG...]  where MSG is one of
#     SUBJECT SIZE [HEADER...]        headers as JetStream exports use
#     SUBJECT SIZE env SRC EPOCH SEQ  the core-NATS envelope (docs/bridge.md)
#     SUBJECT SIZE batch SRC EPOCH SEQ,SEQ... [overrun]
#                                     a core-NATS batch of SIZE-byte records;
#                                     overrun: the last one's length 1 too large
# Exits 1 if the server refused any of them.
cat >"$WORK/pub.py" <<'EOF'
import socket, struct, sys
host, port = sys.argv[1].rsplit("/", 1)[1].split(":")
s = socket.create_connection((host, int(port)))
s.recv(4096)
s.sendall(b'CONNECT {"verbose":false,"headers":true}\r\n')

def pub(subj, size, hdrs):
    body = b"x" * size
    if hdrs and hdrs[0] == "env":
        src = hdrs[1].encode()
        body = b"SCB1" + bytes([len(src)]) + src + struct.pack("<QQ", int(hdrs[2]), int(hdrs[3])) + body
        hdrs = []
    elif hdrs and hdrs[0] == "batch":
        src, seqs = hdrs[1].encode(), [int(x) for x in hdrs[3].split(",")]
        recs = [struct.pack("<QI", q, size + (len(hdrs) > 4 and i == len(seqs) - 1)) + body
                for i, q in enumerate(seqs)]
        body = (b"SCB2" + bytes([len(src)]) + src + struct.pack("<QI", int(hdrs[2]), len(seqs))
                + b"".join(recs))
        hdrs = []
    if hdrs:
        h = ("NATS/1.0\r\n" + "".join(x + "\r\n" for x in hdrs) + "\r\n").encode()
        s.sendall(b"HPUB %s %d %d\r\n" % (subj.encode(), len(h), len(h) + len(body)) + h + body + b"\r\n")
    else:
        s.sendall(b"PUB %s %d\r\n" % (subj.encode(), len(body)) + body + b"\r\n")

msg = []
for a in sys.argv[2:] + ["--"]:
    if a != "--":
        msg.append(a)
    elif msg:
        pub(msg[0], int(msg[1]), msg[2:])
        msg = []
s.sendall(b"PING\r\n")
buf = b""
while b"PONG" not in buf and b"-ERR" not in buf:
    d = s.recv(4096)
    if not d: break
    buf += d
sys.exit(0 if b"-ERR" not in buf else 1)
EOF

# Check a queue's received "seq id" lines against the sent ids.
# check_ids SENT_FILE RECV_FILE [MAYBE_FILE]: every sent id exactly once, an id
# in MAYBE (written by a writer killed before it could log it) at most once.
cat >"$WORK/check.py" <<'EOF'
import sys
sent = [int(l) for l in open(sys.argv[1]) if l.strip()]
maybe = set(int(l) for l in open(sys.argv[3]) if l.strip()) if len(sys.argv) > 3 else set()
seen, byseq, bad = {}, {}, []
for l in open(sys.argv[2]):
    p = l.split()
    if len(p) != 2 or not p[1].isdigit():
        bad.append(l.strip()); continue
    seq, i = int(p[0]), int(p[1])
    if seq in byseq:  # the same local message read again by a restarted reader
        if byseq[seq] != i: bad.append("seq %d is %d and %d" % (seq, byseq[seq], i))
        continue
    byseq[seq] = i
    seen[i] = seen.get(i, 0) + 1
lost = [i for i in sent if i not in seen]
dup = [i for i, n in seen.items() if n > 1]
extra = [i for i in seen if i not in set(sent) and i not in maybe]
print("   sent %d, received %d distinct, lost %d, duplicated %d, unexpected %d, bad %d"
      % (len(set(sent)), len(seen), len(lost), len(dup), len(extra), len(bad)))
for name, xs in (("lost", lost), ("duplicated", dup), ("unexpected", extra), ("bad", bad)):
    if xs: print("   %s: %s" % (name, xs[:10]))
sys.exit(1 if lost or dup or extra or bad else 0)
EOF
check_ids() { python3 "$WORK/check.py" "$@"; }

# recv_until HOST QUEUE SENT RECV [MAYBE]: read HOST's QUEUE into RECV until
# every id in SENT is there (state, not time), giving up after 90 s. With
# SAY=1 it prints the last check's summary (no second python3 start).
recv_until() {
    local h=$1 q=$2 sent=$3 recv=$4 maybe=${5:-/dev/null} lastseq out
    local settle=$((SECONDS + 90))
    while :; do
        lastseq=$(tail -n1 "$recv" 2>/dev/null | cut -d' ' -f1)
        on "$h" "$PROBE" qrecv "$q" 1000 "${lastseq:-0}" >>"$recv" 2> >(grep -v '^subscribed$' >&2)
        out=$(check_ids "$sent" "$recv" "$maybe") && { [[ -z ${SAY:-} ]] || echo "$out"; return 0; }
        [[ $SECONDS -lt $settle ]] || { [[ -z ${SAY:-} ]] || echo "$out"; return 1; }
    done
}

# ------------------------------------------------------------------ tests

# A wrong configuration is refused with exit status 2 and a line naming the cause.
t_config_errors() {
    local c=$WORK/cfg rc=0 out
    expect_bad() { # WHAT PATTERN ARGS...
        local what=$1 pat=$2
        shift 2
        out=$("$BRIDGE" "$@" 2>&1)
        local st=$?
        if [[ $st -ne 2 ]] || ! grep -qE -- "$pat" <<<"$out"; then
            echo "   $what: status $st, output: $out"
            rc=1
        fi
    }
    printf 'host hA\nexport latest telem shm.telem\nbogus 1\n' >"$c"
    expect_bad "unknown directive" "line 3: unknown directive 'bogus'" --config "$c"
    printf 'host hA\nexport latest telem\n' >"$c"
    expect_bad "missing subject" "line 2: .*needs KIND" --config "$c"
    printf 'host hA\nexport queue jobs jobs.a\n' >"$c"
    expect_bad "no stream" "line 2: a JetStream queue needs stream=NAME" --config "$c"
    printf 'host hA\nexport latest telem shm.a\nimport latest shm.b telem\n' >"$c"
    expect_bad "loop" "line 3: channel 'telem' is already bridged.*loop" --config "$c"
    printf 'host h.A\nexport latest telem shm.a\n' >"$c"
    expect_bad "bad host" "line 1: bad host id" --config "$c"
    printf 'host hA\nexport latest bad/name shm.a\n' >"$c"
    expect_bad "bad channel" "invalid channel name" --config "$c"
    printf 'host hA\nexport latest t shm.*\n' >"$c"
    expect_bad "wildcard export" "invalid subject" --config "$c"
    printf 'host hA\nexport queue q q.a stream=S on_full=maybe\n' >"$c"
    expect_bad "bad on_full" "on_full must be block or report" --config "$c"
    expect_bad "missing file" "nonexistent.conf: No such file" --config "$WORK/nonexistent.conf"
    expect_bad "no host" "no host id" --export "latest telem shm.a"
    expect_bad "unknown option" "unknown option '--frobnicate'" --frobnicate 1
    printf '# ok\nhost hA\nserver nats://127.0.0.1:1\nexport latest telem shm.a # x\n' >"$c"
    out=$("$BRIDGE" --config "$c" --import "queue jobs.* work stream=JOBS durable=pool" --check 2>&1) ||
        { echo "   valid configuration refused: $out"; rc=1; }
    return $rc
}

# The server is down when the bridges start: messages written meanwhile wait in
# the local queue and arrive, each once, after it starts. A core-NATS queue on
# the same bridges (their event-loop connection, first attached by libnats's
# reconnect thread) carries what is written once both are connected.
t_server_down_at_start() {
    NS_PORT[late]=$(free_port)
    local url="nats://127.0.0.1:${NS_PORT[late]}" rc=0
    on hA "$PROBE" qcreate sd.q && on hB "$PROBE" qcreate sd.q || return 1
    on hA "$PROBE" qcreate sdc.q && on hB "$PROBE" qcreate sdc.q || return 1
    bridge hA sd-a --server "$url" --export "queue sd.q sd.a stream=SD" \
        --export "queue sdc.q sd.c mode=core"
    bridge hB sd-b --server "$url" --import "queue sd.a sd.q stream=SD" \
        --import "queue sd.c sdc.q mode=core"
    wait_for "$WORK/sd-a.log" "not reachable yet" || return 1
    on hA "$PROBE" qsend sd.q 1 300 200 >"$WORK/sd.sent" || return 1
    ns_start late || return 1
    wait_for "$WORK/sd-b.log" "pulling sd.a" 30 || return 1
    wait_for "$WORK/sd-a.log" "connected to .*core links" 30 || return 1
    wait_for "$WORK/sd-b.log" "connected to .*core links" 30 || return 1
    sleep 1 # B's subscription has reached the server (core NATS: at most once)
    on hA "$PROBE" qsend sdc.q 1 300 200 >"$WORK/sdc.sent" || return 1
    recv_until hB sd.q "$WORK/sd.sent" "$WORK/sd.recv" || rc=1
    recv_until hB sdc.q "$WORK/sdc.sent" "$WORK/sdc.recv" || rc=1
    bridge_stop sd-a && bridge_stop sd-b || { echo "   unclean exit"; return 1; }
    ns_kill late TERM
    check_ids "$WORK/sd.sent" "$WORK/sd.recv" || rc=1
    check_ids "$WORK/sdc.sent" "$WORK/sdc.recv" || rc=1
    return $rc
}

# Two hosts mirror a latest-value channel each way (same channel name on both);
# each also imports every host's value into all.telem, where its own come back
# and are dropped by the source-host rule (no loop).
t_latest_mirror() {
    ns_start lm || return 1
    local url rc=0 h o
    url=$(ns_url lm)
    for h in hA hB; do
        o=$([[ $h == hA ]] && echo hB || echo hA)
        on $h "$PROBE" lpub telem 0 >/dev/null || return 1
        bridge $h lm-$h --server "$url" --stats-interval 0.5 \
            --export "latest telem shm.$h.telem" --import "latest shm.$o.telem $o.telem" \
            --import "latest shm.*.telem all.telem"
        wait_for "$WORK/lm-$h.log" "running as host" || return 1
    done
    $(nsx hA) "$PROBE" lwatch hB.telem 3000 >"$WORK/lm-hA.watch" &
    local wa=$!
    $(nsx hB) "$PROBE" lwatch hA.telem 3000 >"$WORK/lm-hB.watch" &
    local wb=$!
    sleep 0.5 # the watchers are running: they print whatever comes next
    $(nsx hA) "$PROBE" lpub telem 3000 200 >"$WORK/lm-hA.last" &
    local pa=$!
    on hB "$PROBE" lpub telem 3000 200 >"$WORK/lm-hB.last"
    wait $pa $wa $wb
    for h in hA hB; do
        o=$([[ $h == hA ]] && echo hB || echo hA)
        local last got n
        last=$(cat "$WORK/lm-$o.last")
        got=$(tail -n1 "$WORK/lm-$h.watch")
        n=$(wc -l <"$WORK/lm-$h.watch")
        echo "   $h sees $o.telem: $n updates, last $got (published up to $last)"
        [[ $got == "$last" ]] || rc=1
        grep -qE "BACKWARDS|CORRUPT" "$WORK/lm-$h.watch" && rc=1
    done
    sleep 0.6
    for h in hA hB; do
        bridge_stop lm-$h || rc=1
        local loops exported
        loops=$(stat_of lm-$h all.telem loops)
        exported=$(stat_of lm-$h telem msgs)
        echo "   $h: exported $exported, own values dropped on import (loops) $loops"
        [[ $loops -gt 0 && $exported -le 3000 ]] || rc=1
    done
    ns_kill lm TERM
    return $rc
}

# A queue from host A to host B: every message, small and large, once. The
# far queue (1 MiB, block policy) is smaller than the 13 MiB sent, so its
# reader, subscribed first, holds the importer back: flow control end to end.
t_queue_e2e() {
    ns_start qe || return 1
    local url rc=0
    url=$(ns_url qe)
    on hA "$PROBE" qcreate qe.q && on hB "$PROBE" qcreate qe.q $((1 << 20)) || return 1
    $(nsx hB) "$PROBE" qrecv qe.q 600000 >"$WORK/qe.recv" 2>"$WORK/qe.reader" &
    local r=$!
    wait_for "$WORK/qe.reader" subscribed || return 1
    bridge hA qe-a --server "$url" --export "queue qe.q qe.a stream=QE"
    bridge hB qe-b --server "$url" --import "queue qe.a qe.q stream=QE"
    { on hA "$PROBE" qsend qe.q 1 1000 64 && on hA "$PROBE" qsend qe.q 1001 200 65536; } \
        >"$WORK/qe.sent" || return 1
    local settle=$((SECONDS + 90))
    until check_ids "$WORK/qe.sent" "$WORK/qe.recv" >/dev/null || [[ $SECONDS -ge $settle ]]; do
        sleep 0.5
    done
    kill -9 $r
    wait $r 2>/dev/null
    bridge_stop qe-a && bridge_stop qe-b || rc=1
    ns_kill qe TERM
    check_ids "$WORK/qe.sent" "$WORK/qe.recv" || rc=1
    return $rc
}

# A queue over core NATS (at most once): what the exporter finds queued goes
# out in batches (small messages many to a NATS message, 64 KiB ones a few),
# the importer sends each batch on; with the subscription's pending limits far
# above this traffic, every message arrives once, in order, every byte right.
t_core_queue() {
    ns_start cq || return 1
    local url rc=0
    url=$(ns_url cq)
    on hA "$PROBE" qcreate cq.q && on hB "$PROBE" qcreate cq.q $((4 << 20)) || return 1
    $(nsx hB) "$PROBE" qrecv cq.q 600000 >"$WORK/cq.recv" 2>"$WORK/cq.reader" &
    local r=$!
    wait_for "$WORK/cq.reader" subscribed || return 1
    bridge hB cq-b --server "$url" --import "queue cq.a cq.q mode=core"
    wait_for "$WORK/cq-b.log" "import queue" || return 1
    bridge hA cq-a --server "$url" --export "queue cq.q cq.a mode=core"
    wait_for "$WORK/cq-a.log" "channel cq.q is open" || return 1
    { on hA "$PROBE" qsend cq.q 1 10000 64 && on hA "$PROBE" qsend cq.q 10001 200 65536; } \
        >"$WORK/cq.sent" || return 1
    local settle=$((SECONDS + 60))
    until check_ids "$WORK/cq.sent" "$WORK/cq.recv" >/dev/null || [[ $SECONDS -ge $settle ]]; do
        sleep 0.5
    done
    kill -9 $r
    wait $r 2>/dev/null
    bridge_stop cq-a && bridge_stop cq-b || rc=1
    ns_kill cq TERM
    check_ids "$WORK/cq.sent" "$WORK/cq.recv" || rc=1
    local m n
    m=$(stat_of cq-a cq.q msgs)
    n=$(stat_of cq-a cq.q nats_msgs)
    echo "   exporter: $m messages in $n NATS messages"
    [[ $n -gt 0 && $n -lt $m ]] || { echo "   expected batches (fewer NATS messages)"; rc=1; }
    return $rc
}

# A core-NATS queue import into a full local queue (no reader yet, a 1 MiB
# ring, 3 MB sent): the export loop, which reads the core connection and
# delivers the imports itself, holds that message back and goes on with the
# rest of its work (the same bridge's latest-value export still flows, and
# its import of a latest value too); once a reader comes, every message
# arrives once, in order.
t_core_full() {
    ns_start cfu || return 1
    local url rc=0
    url=$(ns_url cfu)
    on hA "$PROBE" qcreate cfu.q && on hB "$PROBE" qcreate cfu.q $((1 << 20)) || return 1
    on hA "$PROBE" lpub cfu.l 0 >/dev/null && on hB "$PROBE" lpub cfu.m 0 >/dev/null || return 1
    bridge hB cfu-b --server "$url" --import "queue cfu.a cfu.q mode=core" \
        --export "latest cfu.m cfu.m" --import "latest cfu.l cfu.l"
    wait_for "$WORK/cfu-b.log" "running as host" || return 1
    bridge hA cfu-a --server "$url" --export "queue cfu.q cfu.a mode=core" \
        --export "latest cfu.l cfu.l" --import "latest cfu.m cfu.m"
    wait_for "$WORK/cfu-a.log" "channel cfu.q is open" || return 1
    wait_for "$WORK/cfu-b.log" "channel cfu.m is open" || return 1
    on hA "$PROBE" qsend cfu.q 1 3000 1000 >"$WORK/cfu.sent" || return 1
    # B's import is held now (its ring holds about 1000 of the 3000): values
    # still go both ways through B's loop.
    $(nsx hA) "$PROBE" lwatch cfu.m 3000 >"$WORK/cfu-a.watch" &
    local wa=$!
    $(nsx hB) "$PROBE" lwatch cfu.l 3000 >"$WORK/cfu-b.watch" &
    local wb=$!
    sleep 0.5
    $(nsx hA) "$PROBE" lpub cfu.l 100 2000 >"$WORK/cfu-a.last" &
    local pa=$!
    on hB "$PROBE" lpub cfu.m 100 2000 >"$WORK/cfu-b.last"
    wait $pa $wa $wb
    local got last
    got=$(tail -n1 "$WORK/cfu-a.watch")
    last=$(cat "$WORK/cfu-b.last")
    echo "   while held: A sees B's latest value $got (published up to $last)"
    [[ $got == "$last" ]] || rc=1
    got=$(tail -n1 "$WORK/cfu-b.watch")
    last=$(cat "$WORK/cfu-a.last")
    echo "   while held: B sees A's latest value $got (published up to $last)"
    [[ $got == "$last" ]] || rc=1
    kill -USR1 "${BR_PID[cfu-b]}"
    wait_for "$WORK/cfu-b.out" '"channel":"cfu.q"' || return 1
    local held
    held=$(stat_of cfu-b cfu.q msgs)
    echo "   delivered before a reader came: $held of 3000"
    [[ $held -gt 0 && $held -lt 3000 ]] || { echo "   expected a full local queue"; rc=1; }
    : >"$WORK/cfu.recv"
    recv_until hB cfu.q "$WORK/cfu.sent" "$WORK/cfu.recv" || rc=1
    bridge_stop cfu-a && bridge_stop cfu-b || rc=1
    ns_kill cfu TERM
    check_ids "$WORK/cfu.sent" "$WORK/cfu.recv" || rc=1
    awk 'NR > 1 && $2 != p + 1 { bad = 1 } { p = $2 } END { exit bad }' "$WORK/cfu.recv" ||
        { echo "   not in order"; rc=1; }
    return $rc
}

# Competing workers on two hosts share one durable consumer of a work-queue
# stream: each job reaches exactly one of them.
t_workers() {
    ns_start wk || return 1
    local url h
    url=$(ns_url wk)
    on hA "$PROBE" qcreate wk.jobs && on hA "$PROBE" qcreate wk.work && on hB "$PROBE" qcreate wk.work ||
        return 1
    bridge hA wk-a --server "$url" --export "queue wk.jobs jobs.hA stream=WORK workqueue" \
        --import "queue jobs.* wk.work stream=WORK durable=pool own=keep"
    wait_for "$WORK/wk-a.log" "pulling" || return 1
    bridge hB wk-b --server "$url" --import "queue jobs.* wk.work stream=WORK durable=pool own=keep"
    wait_for "$WORK/wk-b.log" "pulling" || return 1
    on hA "$PROBE" qsend wk.jobs 1 2000 100 >"$WORK/wk.sent" || return 1
    : >"$WORK/wk.recv-a"
    : >"$WORK/wk.recv-b"
    local settle=$((SECONDS + 90)) la lb pa
    while :; do # both workers read until the two together have every job
        la=$(tail -n1 "$WORK/wk.recv-a" | cut -d' ' -f1)
        lb=$(tail -n1 "$WORK/wk.recv-b" | cut -d' ' -f1)
        $(nsx hA) "$PROBE" qrecv wk.work 1000 "${la:-0}" >>"$WORK/wk.recv-a" 2>/dev/null &
        pa=$!
        on hB "$PROBE" qrecv wk.work 1000 "${lb:-0}" >>"$WORK/wk.recv-b" 2>/dev/null
        wait $pa
        # local seqs of the two hosts overlap: make them distinct before merging
        { sed 's/^/1/' "$WORK/wk.recv-a"; sed 's/^/2/' "$WORK/wk.recv-b"; } >"$WORK/wk.recv"
        check_ids "$WORK/wk.sent" "$WORK/wk.recv" >/dev/null && break
        [[ $SECONDS -lt $settle ]] || break
    done
    bridge_stop wk-a && bridge_stop wk-b || return 1
    ns_kill wk TERM
    local na nb
    na=$(wc -l <"$WORK/wk.recv-a")
    nb=$(wc -l <"$WORK/wk.recv-b")
    echo "   host A's worker got $na jobs, host B's $nb"
    check_ids "$WORK/wk.sent" "$WORK/wk.recv" && [[ $na -gt 0 && $nb -gt 0 ]]
}

# Bad input: malformed, hostile and oversized NATS messages are counted,
# logged and not delivered; the good ones around them all arrive.
t_bad_messages() {
    ns_start bm 16384 || return 1
    local url rc=0
    url=$(ns_url bm)
    on hA "$PROBE" qcreate bm.q && on hB "$PROBE" qcreate bm.q 1048576 || return 1
    on hB "$PROBE" lpub bm.l 0 >/dev/null
    bridge hA bm-a --server "$url" --export "queue bm.q bm.a stream=BM"
    bridge hB bm-b --server "$url" --import "queue bm.a bm.q stream=BM" \
        --import "latest bm.l bm.l"
    wait_for "$WORK/bm-b.log" "pulling" || return 1
    on hA "$PROBE" qsend bm.q 1 50 100 >"$WORK/bm.sent" || return 1
    # a message larger than the server's max_payload (16 KiB): refused by the exporter
    on hA "$PROBE" qsend bm.q 51 1 20000 >/dev/null || return 1
    # queue: no headers, a bad number, a bad source; latest: seq 0, a bad source,
    # no envelope, larger than its max_msg, a record overruns, seqs not rising.
    # One connection for all (a python3 start costs seconds on a loaded machine).
    python3 "$WORK/pub.py" "$url" \
        bm.a 10 -- \
        bm.a 10 "Shmchan-Src: x/y" "Shmchan-Epoch: 1" "Shmchan-Seq: 12abc" -- \
        bm.a 10 "Shmchan-Src: /../../etc" "Shmchan-Epoch: 1" "Shmchan-Seq: 5" -- \
        bm.l 10 env hX/bm.l 1 0 -- \
        bm.l 10 env hX/../x 1 5 -- \
        bm.l 3 -- \
        bm.l 8000 env hX/bm.l 1 7 -- \
        bm.l 10 batch hX/bm.l 1 8,9 overrun -- \
        bm.l 10 batch hX/bm.l 1 9,9 || rc=1
    on hA "$PROBE" qsend bm.q 52 50 100 >>"$WORK/bm.sent" || return 1
    SAY=1 recv_until hB bm.q "$WORK/bm.sent" "$WORK/bm.recv" || rc=1
    bridge_stop bm-a && bridge_stop bm-b || rc=1 # each prints its counters at exit
    ns_kill bm TERM
    local mq ml ov oi
    read -r mq ml ov oi < <(stats_of bm-b:bm.q:malformed bm-b:bm.l:malformed \
        bm-a:bm.q:oversize bm-b:bm.l:oversize)
    echo "   malformed refused: queue $mq, latest $ml; oversize refused: exporter $ov, importer $oi"
    [[ $mq -eq 3 && $ml -eq 5 && $ov -eq 1 && $oi -eq 1 ]] || rc=1
    grep -q "larger than the server's max_payload" "$WORK/bm-a.log" || rc=1
    return $rc
}

# The JetStream export window through failed publishes and crashes: a
# work-queue stream of at most 20 messages (discard new) refuses most of each
# window of 256 while a worker on host B frees room, so publishes fail in the
# middle of windows whose later messages are stored; the exporter is
# SIGKILLed three times meanwhile. Its restart point never passes a message the
# stream refused: every message arrives exactly once.
t_js_window() {
    ns_start jw || return 1
    local url rc=0 i
    url=$(ns_url jw)
    on hA "$PROBE" qcreate jw.q && on hB "$PROBE" qcreate jw.q || return 1
    start_jw() { bridge hA jw-a --server "$url" --export "queue jw.q jw.a stream=JW workqueue max_msgs=20"; }
    start_jw
    bridge hB jw-b --server "$url" --import "queue jw.a jw.q stream=JW"
    wait_for "$WORK/jw-b.log" "pulling" || return 1
    $(nsx hA) "$PROBE" qsend jw.q 1 1500 100 >"$WORK/jw.sent" &
    local w=$!
    for i in 1 2 3; do
        wait_for "$WORK/jw-a.log" "stream JW is full" || rc=1
        sleep "0.$((RANDOM % 5 + 1))"
        bridge_kill jw-a
        sed -i 's/stream JW is full/(full, before a kill)/' "$WORK/jw-a.log"
        start_jw
    done
    wait $w || rc=1
    : >"$WORK/jw.recv"
    recv_until hB jw.q "$WORK/jw.sent" "$WORK/jw.recv"
    bridge_stop jw-a && bridge_stop jw-b || rc=1
    ns_kill jw TERM
    echo "   3 kills, the stream full $(grep -c "full, before a kill" "$WORK/jw-a.log") times before them;" \
        "$(grep -c "(restart point)" "$WORK/jw-a.log") restarts resumed after their restart point"
    check_ids "$WORK/jw.sent" "$WORK/jw.recv" || rc=1
    return $rc
}

# An idle bridge sleeps: with 8 latest-value, 8 core-NATS queue and 2 JetStream
# queue exports open and nothing to carry, none of its threads wakes for 2 s
# (context switches, summed over every thread) and it uses no CPU time. (The
# exports wait on their channels' readiness handles in one epoll loop, the
# JetStream ones in poll() on theirs, the main thread for a signal.)
t_idle() {
    ns_start id || return 1
    local url args=() i rc=0
    url=$(ns_url id)
    for i in 1 2 3 4 5 6 7 8; do
        on hA "$PROBE" lpub id.l$i 0 >/dev/null && on hA "$PROBE" qcreate id.q$i || return 1
        args+=(--export "latest id.l$i id.l$i" --export "queue id.q$i id.q$i mode=core")
    done
    for i in 1 2; do
        on hA "$PROBE" qcreate id.j$i || return 1
        args+=(--export "queue id.j$i id.j$i stream=ID$i")
    done
    bridge hA id-a --server "$url" "${args[@]}"
    wait_for "$WORK/id-a.log" "running as host" || return 1
    local n
    for ((n = 0; n < 200; n++)); do # every export open and waiting (state, not time)
        [[ $(grep -c "channel id\.[lq][0-9] is open\|created stream ID" "$WORK/id-a.log") -ge 18 ]] &&
            break
        sleep 0.05
    done
    local p=${BR_PID[id-a]}
    sample() { # "wake-ups cpu-ticks" of process $p, all threads
        local w=0 t f
        for t in /proc/$p/task/*; do
            f=$(awk '/ctxt_switches/ {s += $2} END {print s}' "$t/status" 2>/dev/null)
            w=$((w + ${f:-0}))
        done
        echo "$w $(awk '{print $14 + $15}' /proc/$p/stat)"
    }
    sleep 0.5 # the last export's first arming is done
    local w0 c0 w1 c1
    read -r w0 c0 < <(sample)
    sleep 2
    read -r w1 c1 < <(sample)
    echo "   idle 2 s with 18 exports ($(ls /proc/$p/task | wc -l) threads):" \
        "$((w1 - w0)) wake-ups, $((c1 - c0)) CPU ticks"
    [[ $((w1 - w0)) -le 4 && $((c1 - c0)) -le 1 ]] || rc=1 # a 200 ms poll per export: ~200
    # still carrying after the idle time: a value published now is exported
    on hA "$PROBE" lpub id.l1 1 >/dev/null
    for ((n = 0; n < 100; n++)); do
        kill -USR1 "$p"
        sleep 0.1
        grep -q '"channel":"id.l1",[^}]*"msgs":1' "$WORK/id-a.out" && break
    done
    grep -q '"channel":"id.l1",[^}]*"msgs":1' "$WORK/id-a.out" ||
        { echo "   the value published after the idle time was not exported"; rc=1; }
    bridge_stop id-a || rc=1
    ns_kill id TERM
    return $rc
}

# A queue through a 3-node JetStream cluster (stream with 3 replicas): one
# node is SIGKILLed, then another after the first is back; the bridges fail
# over between the servers; every message arrives once.
t_cluster_failover() {
    cluster_start || return 1
    local urls="nats://127.0.0.1:${NS_PORT[c1]},nats://127.0.0.1:${NS_PORT[c2]},nats://127.0.0.1:${NS_PORT[c3]}"
    on hA "$PROBE" qcreate cf.q && on hB "$PROBE" qcreate cf.q || return 1
    bridge hA cf-a --server "$urls" --export "queue cf.q cf.a stream=CF replicas=3"
    bridge hB cf-b --server "$urls" --import "queue cf.a cf.q stream=CF ack_wait=2"
    wait_for "$WORK/cf-b.log" "pulling" 60 || return 1
    : >"$WORK/cf.sent"
    on hA "$PROBE" qsend cf.q 1 300 100 >>"$WORK/cf.sent" || return 1
    ns_kill c1
    on hA "$PROBE" qsend cf.q 301 300 100 >>"$WORK/cf.sent" || return 1
    node_start 1 || return 1
    sleep 1 # let c1 catch up before taking c2 (quorum is 2 of 3)
    ns_kill c2
    on hA "$PROBE" qsend cf.q 601 300 100 >>"$WORK/cf.sent" || return 1
    : >"$WORK/cf.recv"
    recv_until hB cf.q "$WORK/cf.sent" "$WORK/cf.recv"
    bridge_stop cf-a && bridge_stop cf-b || return 1
    grep -h "connected to\|disconnected" "$WORK/cf-a.log" "$WORK/cf-b.log" | wc -l |
        sed 's/^/   connection state changes logged: /'
    check_ids "$WORK/cf.sent" "$WORK/cf.recv"
}

# Chaos: a queue (A -> B, JetStream) and a latest-value channel (A -> B) while
# the bridges, the server, the writers and the readers are SIGKILLed at random
# points (and the bridges sometimes stopped with SIGTERM). Then everything settles: the queue lost and duplicated nothing, the
# latest-value reader never saw a value go back.
t_chaos() {
    ns_start ch || return 1
    local url end round=0 next=1 kills="" rc=0
    url=$(ns_url ch)
    on hA "$PROBE" qcreate ch.q && on hB "$PROBE" qcreate ch.q || return 1
    on hA "$PROBE" lpub ch.l 0 >/dev/null && on hB "$PROBE" lpub ch.l 0 >/dev/null || return 1
    : >"$WORK/ch.sent"
    : >"$WORK/ch.maybe"
    : >"$WORK/ch.recv"
    : >"$WORK/ch.watch"
    start_a() { bridge hA ch-a --server "$url" --export "queue ch.q ch.a stream=CH" \
        --export "latest ch.l ch.l"; }
    start_b() { bridge hB ch-b --server "$url" --import "queue ch.a ch.q stream=CH ack_wait=2" \
        --import "latest ch.l ch.l"; }
    start_a
    start_b
    end=$((SECONDS + CHAOS_SECONDS))
    while [[ $SECONDS -lt $end ]]; do
        round=$((round + 1))
        local n=$((RANDOM % 400 + 100)) lastseq
        $(nsx hA) "$PROBE" qsend ch.q $next $n 100 >"$WORK/ch.w" &
        local w=$!
        $(nsx hA) "$PROBE" lpub ch.l 100000 50 >/dev/null &
        local lp=$!
        lastseq=$(tail -n1 "$WORK/ch.recv" | cut -d' ' -f1)
        $(nsx hB) "$PROBE" qrecv ch.q 60000 "${lastseq:-0}" >>"$WORK/ch.recv" 2>/dev/null &
        local r=$!
        $(nsx hB) "$PROBE" lwatch ch.l 60000 >>"$WORK/ch.watch" &
        local lw=$!
        sleep "0.$((RANDOM % 8 + 2))"
        local victims=(${CHAOS_KILLS:-bridgeA bridgeB server writer reader termA termB})
        local v=${victims[$((RANDOM % ${#victims[@]}))]}
        case $v in
        bridgeA) bridge_kill ch-a; start_a ;;
        bridgeB) bridge_kill ch-b; start_b ;;
        termA) bridge_stop ch-a || rc=1; start_a ;; # SIGTERM: a clean stop loses nothing
        termB) bridge_stop ch-b || rc=1; start_b ;;
        server) ns_kill ch; ns_start ch || rc=1 ;;
        writer) kill -9 $w 2>/dev/null ;;
        reader) kill -9 $r 2>/dev/null ;;
        esac
        kills+="$v "
        echo "round $round: ids $next.., killed $v" >>"$WORK/ch.rounds"
        wait $w 2>/dev/null
        cat "$WORK/ch.w" >>"$WORK/ch.sent"
        # a writer killed after a send but before its log line: that id may arrive (once)
        echo $((next + $(wc -l <"$WORK/ch.w"))) >>"$WORK/ch.maybe"
        next=$((next + n + 1)) # never reuse a possibly sent id
        sleep "0.$((RANDOM % 5))"
        kill -9 $r $lw $lp 2>/dev/null
        wait $r $lw $lp 2>/dev/null
        if grep -qE "BACKWARDS|CORRUPT" "$WORK/ch.watch"; then
            echo "   latest-value went back or was corrupt in round $round"
            rc=1
        fi
    done
    echo "   $round rounds; killed: $(tr ' ' '\n' <<<"$kills" | xargs -n1 | sort | uniq -c | xargs)"
    [[ -n ${CHAOS_DEBUG:-} ]] && cp "$WORK/ch.rounds" "$WORK/ch.sent" "$WORK/ch.recv" /tmp/
    # settle: read until every sent id is there (messages fetched by a killed
    # importer come back after its ack_wait)
    recv_until hB ch.q "$WORK/ch.sent" "$WORK/ch.recv" "$WORK/ch.maybe"
    # the latest-value path still works after all that, and never went back
    $(nsx hB) "$PROBE" lwatch ch.l 3000 >"$WORK/ch.watch2" &
    local lw2=$!
    sleep 0.5
    on hA "$PROBE" lpub ch.l 2000 500 >"$WORK/ch.llast"
    wait $lw2
    [[ $(tail -n1 "$WORK/ch.watch2") == "$(cat "$WORK/ch.llast")" ]] ||
        { echo "   latest-value did not reach the last value after the chaos"; rc=1; }
    grep -qE "BACKWARDS|CORRUPT" "$WORK/ch.watch" "$WORK/ch.watch2" && rc=1
    bridge_stop ch-a || rc=1
    bridge_stop ch-b || rc=1
    ns_kill ch TERM
    check_ids "$WORK/ch.sent" "$WORK/ch.recv" "$WORK/ch.maybe" || rc=1
    return $rc
}

# ------------------------------------------------------------------ runner

bash_trace() { PS4="+ \${EPOCHREALTIME} "; set -x; "$@"; local r=$?; set +x; return $r; }
pass=0
fail=0
skip=0
skipped=()
TWO_HOST="t_server_down_at_start t_latest_mirror t_queue_e2e t_core_queue t_core_full t_workers t_bad_messages"
TWO_HOST+=" t_js_window t_idle t_cluster_failover t_chaos"
ALL="t_config_errors $TWO_HOST"
if [[ $(id -u) -ne 0 ]]; then
    NS_OK=0
    NS_WHY="not root: unshare -m and mounting a tmpfs on /dev/shm need root"
elif ! host_start hA || ! host_start hB; then
    NS_OK=0
fi
for t in ${BRIDGE_TESTS:-$ALL}; do
    t=t_${t#t_}
    if [[ $NS_OK -eq 0 && " $TWO_HOST " == *" $t "* ]]; then
        echo "== bridge: SKIP ${t#t_} ($NS_WHY)"
        skip=$((skip + 1))
        skipped+=("${t#t_}")
        continue
    fi
    echo "== bridge: ${t#t_}"
    start=$SECONDS
    if ${BRIDGE_TRACE:+bash_trace} $t; then
        pass=$((pass + 1))
        echo "   ok ($((SECONDS - start)) s)"
    else
        fail=$((fail + 1))
        echo "   FAILED ($((SECONDS - start)) s); bridge logs:"
        for f in "$WORK"/*.log; do
            [[ $f == */host-* ]] && continue
            echo "   --- $f"
            tail -n 15 "$f" | sed 's/^/     /'
        done
    fi
    stop_children "${HOST_PID[@]}" # the hosts' namespace holders stay for the next test
    unset BR_PID NS_PID NS_PORT CL_PORT
    declare -gA BR_PID NS_PID NS_PORT CL_PORT
    rm -f "$WORK"/*.log "$WORK"/*.out
done
summary="bridge: $pass passed, $fail failed, $skip skipped"
[[ $skip -ne 0 ]] && summary+=" (${skipped[*]}: $NS_WHY)"
echo "$summary"
[[ $fail -eq 0 ]]
