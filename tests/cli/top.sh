#!/bin/sh
# top, driven in tmux, and stat: what they show against known traffic. A
# queue written at 200 messages/s with a subscriber, one at 50/s, and a
# latest-value channel nobody writes: names, kinds, rates within +-30%,
# readers, sorting by name and by rate, the detail view's peers (the
# subscriber's and the writer's pids); top --json and stat --json likewise.
. "$(dirname "$0")/lib.sh"
command -v tmux >/dev/null || skip "tmux is not installed (scripts/test.sh installs it)"

# Channel names whose order by name (a, m, z) is not their order by rate.
new_chan base
a=$base-a
m=$base-m
z=$base-z
CHANNELS="$CHANNELS $a $m $z"
expect 0 "create a" "$S" create "$a" --queue
expect 0 "create m" "$S" create "$m"
expect 0 "create z" "$S" create "$z" --queue

# paced RATE NAME: send one message per 1/RATE s on an absolute schedule,
# through a `shmchan send` child that goes with it (one process to kill).
paced() {
    exec python3 -c '
import signal, subprocess, sys, time
rate = float(sys.argv[1])
p = subprocess.Popen([sys.argv[2], "send", sys.argv[3]], stdin=subprocess.PIPE)
def end(*_):
    p.kill()
    sys.exit(0)
signal.signal(signal.SIGTERM, end)
t0 = time.monotonic()
i = 0
while True:
    i += 1
    d = t0 + i / rate - time.monotonic()
    if d > 0:
        time.sleep(d)
    p.stdin.write(b"m%d\n" % i)
    p.stdin.flush()' "$1" "$S" "$2"
}
bg "$S" follow "$z" >/dev/null
F=$BG
wait_until "subscriber on z" sh -c "[ \"\$(\"$S\" info \"$z\" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"readers\"])')\" -ge 1 ]"
paced 200 "$z" &
PIDS="$PIDS $!"
paced 50 "$a" &
PIDS="$PIDS $!"
# Rates are checked once the counters are far past any rate: a view that
# showed totals instead of rates would fail.
wait_until "z has 600 messages" sh -c "[ \"\$(\"$S\" info \"$z\" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"messages\"])')\" -ge 600 ]"
WPID=$(python3 - "$S" "$z" <<'PY'
import json, subprocess, sys
d = json.loads(subprocess.run([sys.argv[1], "info", sys.argv[2], "--json"], capture_output=True).stdout)
print(" ".join(str(p["pid"]) for p in d["peers"] if p["role"] == "writer"))
PY
)
[ -n "$WPID" ] || fail "no writer pid on z"

# --- top in tmux
SOCK=shmchan-top-$$
tm() { tmux -L "$SOCK" "$@"; }
cleanup_tmux() { tm kill-server 2>/dev/null; }
trap 'cleanup_tmux; cleanup' EXIT
tm new-session -d -s top -x 150 -y 30 "$S top $a $m $z; echo TOP-EXITED \$?; sleep 60"
screen() { tm capture-pane -p -t top >"$T/screen"; }
# row NAME: the line of channel NAME on the screen.
row() { grep -E "^$1 " "$T/screen"; }
rate_of() { row "$1" | awk '{print $3}'; }
shows_rates() { screen && [ "$(rate_of "$z")" != "-" ] && [ -n "$(rate_of "$z")" ]; }
wait_until "top shows rates" shows_rates
screen
cp "$T/screen" "$T/screen1"
grep -q "shmchan top - 3 channels - sorted by name" "$T/screen" || fail "top header: $(head -n2 "$T/screen")"
row "$a" | grep -q " queue " || fail "a is a queue: $(row "$a")"
row "$m" | grep -q " latest " || fail "m is latest: $(row "$m")"
# in_range X LO HI
in_range() { python3 -c 'import sys; x=float(sys.argv[1].rstrip("K")); sys.exit(0 if float(sys.argv[2]) <= x <= float(sys.argv[3]) else 1)' "$@"; }
# Rates fluctuate with the load: any of five samples within +-30% passes.
ok=0
for i in 1 2 3 4 5; do
    screen
    if in_range "$(rate_of "$z")" 140 260 && in_range "$(rate_of "$a")" 35 65; then
        ok=1
        break
    fi
    sleep 1
done
[ $ok -eq 1 ] || fail "top rates: z $(rate_of "$z") (want 200), a $(rate_of "$a") (want 50)"
[ "$(row "$m" | awk '{print $3}')" = "0.0" ] || fail "m's rate: $(row "$m")"
[ "$(row "$z" | awk '{print $5}')" = "1" ] || fail "z's readers: $(row "$z")"
order() { grep -E "^$base-[amz] " "$T/screen" | awk '{print $1}' | tr '\n' ' '; }
[ "$(order)" = "$a $m $z " ] || fail "sorted by name: $(order)"
# Sort by rate: z (200/s), a (50/s), m (0/s).
tm send-keys -t top m
sorted_by_rate() { screen && grep -q "sorted by msg/s" "$T/screen" && [ "$(order)" = "$z $a $m " ]; }
wait_until "top sorted by msg/s" sorted_by_rate || cat "$T/screen"
# The highlight stayed on a (second now); up selects z; Enter shows its peers.
tm send-keys -t top k Enter
detail() { screen && grep -q "shmchan top - $z (queue, block)" "$T/screen"; }
wait_until "detail view of z" detail || cat "$T/screen"
grep -qE "^subscriber +[0-9]+ +$F +alive " "$T/screen" || fail "detail: no subscriber $F: $(cat "$T/screen")"
for w in $WPID; do
    grep -qE "^writer +[0-9]+ +$w +alive " "$T/screen" || fail "detail: no writer $w: $(cat "$T/screen")"
done
tm send-keys -t top Escape
back() { screen && grep -q "sorted by msg/s" "$T/screen"; }
wait_until "back to the list" back
tm send-keys -t top q
quit() { screen && grep -q "TOP-EXITED 0" "$T/screen"; }
wait_until "q quits top with status 0" quit || cat "$T/screen"
echo "--- top, as captured:"
cat "$T/screen1"

# --- top --json and --once
ok=0
for i in 1 2 3; do
    "$S" top "$a" "$m" "$z" --json --sort msgs >"$T/top.json" || fail "top --json"
    if python3 - "$T/top.json" "$z" "$a" "$m" "$F" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
z, a, m, f = sys.argv[2:6]
ch = {c["name"]: c for c in d["channels"]}
ok = ([c["name"] for c in d["channels"]] == [z, a, m]
      and 140 <= ch[z]["msg_rate"] <= 260 and 35 <= ch[a]["msg_rate"] <= 65
      and ch[m]["kind"] == "latest" and ch[m]["msg_rate"] == 0
      and ch[z]["readers"] == 1
      and any(p["role"] == "subscriber" and p["pid"] == int(f) for p in ch[z]["peers"]))
sys.exit(0 if ok else 1)
PY
    then ok=1; break; fi
done
[ $ok -eq 1 ] || fail "top --json: $(cat "$T/top.json")"
run "$S" top "$z" --once --interval 0.5
[ "$(grep -c "^$z " "$T/out")" -eq 1 ] && head -n1 "$T/out" | grep -q "^NAME" ||
    fail "top --once: $(cat "$T/out")"
expect 2 "top --sort bad" "$S" top --sort speed --once
err_has "bad value 'speed' for --sort" "top --sort bad"

# --- stat
run "$S" stat "$z" "$m" --interval 0.5 --count 4 --json
[ "$RC" -eq 0 ] || fail "stat: exit $RC $(cat "$T/err")"
python3 - "$T/out" "$z" "$m" <<'PY' || fail "stat --json: $(cat "$T/out")"
import json, sys
lines = [json.loads(x) for x in open(sys.argv[1])]
z, m = sys.argv[2], sys.argv[3]
rz = [d["msg_rate"] for d in lines if d["name"] == z]
rm = [d["msg_rate"] for d in lines if d["name"] == m]
avg = sum(rz) / len(rz)
sys.exit(0 if len(lines) == 8 and len(rz) == 4 and 140 <= avg <= 260 and rm == [0.0] * 4
         and all(d["interval_ms"] == 500 for d in lines) else 1)
PY
run "$S" stat "$z" --count 2 --interval 0.3
[ "$(grep -c " $z .* msg/s .* B/s " "$T/out")" -eq 2 ] || fail "stat text: $(cat "$T/out")"
expect 1 "stat of a missing channel" "$S" stat "$base-none" --count 1

finish
