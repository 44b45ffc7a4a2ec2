#!/bin/sh
# Queues: send (arguments, lines, frames), recv (subscriber from newest or
# oldest, worker), follow, per-reader lag and loss in info, the overwrite
# policy, a full queue, and the errors of each.
. "$(dirname "$0")/lib.sh"

new_chan q
expect 0 "create --queue" "$S" create "$q" --queue --max-msg 256 --capacity 64k

run "$S" info "$q" --json
json_check 'd["kind"] == "queue" and d["capacity"] == 65536 and d["policy"] == "block"' \
    "info --json of a queue" "$T/out"
json_check 'd["max_msg"] == 256 and d["max_readers"] == 64 and d["peers"] == []' \
    "info --json of a new queue" "$T/out"

# (readers NAME N: N live readers are registered.)
readers() {
    [ "$(json_field "$1" readers 2>/dev/null || echo -1)" -eq "$2" ]
}

# A subscriber joining at the newest gets what is sent after it joined.
bg "$S" recv "$q" --count 2 --timeout 60 >"$T/sub"
W=$BG
wait_until "subscriber registered" readers "$q" 1
expect 0 "send two arguments" "$S" send "$q" first second
wait "$W" || fail "recv --count 2 failed"
printf 'first\nsecond\n' | cmp -s - "$T/sub" || fail "subscriber got '$(cat "$T/sub")'"

# Lines from stdin: an empty line is an empty message, a last line without a
# newline counts; --oldest replays everything still held.
printf 'l1\nl2\n\nl4' | "$S" send "$q" || fail "send lines"
expect_out "$(printf 'first\nsecond\nl1\nl2\n\nl4')" "recv --oldest replays" \
    "$S" recv "$q" --oldest --count 6
expect 0 "recv --oldest --count 0 --timeout 0 takes what is there" \
    "$S" recv "$q" --oldest --count 0 --timeout 0
[ "$(wc -l <"$T/out")" -eq 6 ] || fail "recv --count 0 --timeout 0 got $(wc -l <"$T/out") lines"
run "$S" recv "$q" --oldest --count 2 --seq --json
python3 - "$T/out" <<'EOF' || fail "recv --json: $(cat "$T/out")"
import json, sys
a, b = [json.loads(l) for l in open(sys.argv[1])]
ok = (a["data"] == "first" and b["data"] == "second" and b["seq"] == a["seq"] + 1
      and a["lost"] == 0 and a["encoding"] == "utf-8" and a["len"] == 5)
sys.exit(0 if ok else 1)
EOF

# Frames: binary-exact in both directions, zero length and the largest size.
python3 - "$T/frames" <<'EOF'
import sys
msgs = [b"", b"\0\xff\n\0", bytes(range(256))]
with open(sys.argv[1], "wb") as f:
    for m in msgs:
        f.write(len(m).to_bytes(4, "little") + m)
EOF
new_chan fq
expect 0 "create frames queue" "$S" create "$fq" --queue --max-msg 256
bg "$S" recv "$fq" --count 3 --frames --timeout 60 >"$T/frames.out"
W=$BG
wait_until "frames subscriber registered" readers "$fq" 1
expect 0 "send --frames" "$S" send "$fq" --frames <"$T/frames"
wait "$W" || fail "recv --frames failed"
cmp -s "$T/frames" "$T/frames.out" || fail "frames differ after send --frames | recv --frames"

# Input errors.
python3 -c 'import sys; sys.stdout.write("z" * 257)' >"$T/long"
expect 1 "send an argument over max-msg" "$S" send "$q" "$(cat "$T/long")"
err_is "shmchan: send $q: message 1 of 257 bytes is larger than the channel's maximum of 256 (SHMCHAN_EMSGSIZE)" \
    "send an argument over max-msg"
expect 1 "send a line over max-msg" "$S" send "$q" <"$T/long"
err_is "shmchan: send $q: input message 1 is larger than the channel's maximum of 256 bytes (SHMCHAN_EMSGSIZE)" \
    "send a line over max-msg"
printf '\010\000\000\000abc' >"$T/short"
expect 1 "send a truncated frame" "$S" send "$q" --frames <"$T/short"
err_is "shmchan: send $q: input ends inside frame 1 (SHMCHAN_ETRUNCATED)" "send a truncated frame"
expect 1 "recv times out" "$S" recv "$q" --timeout 0.2
err_is "shmchan: recv $q: timed out after 0 of 1 messages (SHMCHAN_ETIMEDOUT)" "recv times out"
expect 0 "recv --count 0 --timeout: a listening time" "$S" recv "$q" --count 0 --timeout 0.2

# Workers share the messages: each goes to exactly one of them.
new_chan wq
expect 0 "create worker queue" "$S" create "$wq" --queue
bg "$S" recv "$wq" --worker --count 0 --timeout 60 >"$T/w1"
W1=$BG
bg "$S" recv "$wq" --worker --count 0 --timeout 60 >"$T/w2"
W2=$BG
wait_until "two workers registered" readers "$wq" 2
seq 1 40 | "$S" send "$wq" || fail "send 40 lines"
both_done() {
    [ "$(cat "$T/w1" "$T/w2" | wc -l)" -ge 40 ]
}
wait_until "workers received 40 messages" both_done
kill -INT "$W1" "$W2"
wait "$W1"
rc1=$?
wait "$W2"
rc2=$?
[ "$rc1" -eq 130 ] && [ "$rc2" -eq 130 ] || fail "workers on SIGINT: exit $rc1 and $rc2"
[ "$(cat "$T/w1" "$T/w2" | sort -n)" = "$(seq 1 40)" ] || fail "workers did not get each message once"

# follow, and per-reader lag in info: a stopped follower falls behind.
new_chan lq
expect 0 "create lag queue" "$S" create "$lq" --queue
bg "$S" follow "$lq" --timeout 60 >"$T/follow"
F=$BG
wait_until "follower registered" readers "$lq" 1
expect 0 "send a" "$S" send "$lq" a
wait_until "follower printed a" lines_in "$T/follow" 1
kill -STOP "$F"
expect 0 "send five" "$S" send "$lq" 1 2 3 4 5
run "$S" info "$lq" --json
json_check '[(p["role"], p["alive"], p["lag"], p["pid"]) for p in d["peers"] if p["role"] != "writer"] == [("subscriber", True, 5, '"$F"')]' \
    "info --json shows the follower's lag" "$T/out"
json_check 'd["messages"] == 6 and d["readers"] == 1' "info --json counters of the lag queue" "$T/out"
expect 0 "info text of a queue" "$S" info "$lq"
grep -Eq "^subscriber +[0-9]+ +$F +alive +[0-9]+ +5 " "$T/out" || fail "info peers table: $(cat "$T/out")"
expect 0 "ls of a queue" "$S" ls "$lq"
grep -Eq "^$lq +queue +4K +1M +block +" "$T/out" || fail "ls row of a queue: $(cat "$T/out")"
kill -CONT "$F"
wait_until "follower caught up" lines_in "$T/follow" 6
printf 'a\n1\n2\n3\n4\n5\n' | cmp -s - "$T/follow" || fail "follow printed '$(cat "$T/follow")'"
kill -INT "$F"
wait "$F"
rc=$?
[ "$rc" -eq 130 ] || fail "follow on SIGINT: exit $rc"

# A reader killed outright is shown dead, or already reclaimed.
bg "$S" follow "$lq" --timeout 60 >/dev/null
F=$BG
wait_until "second follower registered" readers "$lq" 1
kill -KILL "$F"
wait "$F" 2>/dev/null # no "Killed" notice
run "$S" info "$lq" --json
json_check 'not any(p["pid"] == '"$F"' and p["alive"] for p in d["peers"])' \
    "a killed reader is not alive" "$T/out"

# Overwrite: the writer never waits; a slow subscriber learns what it lost.
new_chan oq
expect 0 "create overwrite queue" "$S" create "$oq" --queue --policy overwrite --capacity 4k \
    --max-msg 64
bg "$S" follow "$oq" --json --timeout 60 >"$T/ow" 2>"$T/ow.err"
F=$BG
wait_until "overwrite follower registered" readers "$oq" 1
kill -STOP "$F"
seq 1 500 | "$S" send "$oq" --timeout 0 || fail "send to an overwrite queue waited or failed"
kill -CONT "$F"
got_last() {
    [ -s "$T/ow" ] && [ "$(tail -n 1 "$T/ow" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"])')" = 500 ]
}
wait_until "follower reached the last message" got_last
kill -INT "$F"
wait "$F"
python3 - "$T/ow" <<'EOF' || fail "overwrite: received + lost != sent: $(head -3 "$T/ow")"
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1])]
lost = sum(m["lost"] for m in msgs)
sys.exit(0 if lost > 0 and len(msgs) + lost == 500 else 1)
EOF
run json_field "$oq" drops
[ "$(cat "$T/out")" -gt 0 ] || fail "overwrite queue reports no drops"

# Block: a full queue makes send wait; --timeout bounds that; SIGINT ends it.
new_chan bq
expect 0 "create small block queue" "$S" create "$bq" --queue --capacity 4k --max-msg 1k
bg "$S" follow "$bq" --timeout 60 >/dev/null
F=$BG
wait_until "blocking follower registered" readers "$bq" 1
kill -STOP "$F"
python3 -c 'import sys; sys.stdout.write(("x" * 1000 + "\n") * 64)' >"$T/kilos"
expect 1 "send to a full queue, --timeout 0" "$S" send "$bq" --timeout 0 <"$T/kilos"
err_has "queue full after " "send to a full queue, --timeout 0"
kilo=$(head -n 1 "$T/kilos")
expect 1 "send to a full queue, --timeout 0.2" "$S" send "$bq" "$kilo" --timeout 0.2
err_is "shmchan: send $bq: timed out after 0 messages (SHMCHAN_ETIMEDOUT)" "send --timeout 0.2"
bg "$S" send "$bq" "$kilo" 2>"$T/send.err"
B=$BG
wait_until "blocked sender counted as waiting" waits_at_least "$bq" 1
kill -INT "$B"
wait "$B"
rc=$?
[ "$rc" -eq 130 ] || fail "blocked send on SIGINT: exit $rc, stderr $(cat "$T/send.err")"
kill -CONT "$F"

# Kinds do not mix.
new_chan lv
expect 0 "create latest" "$S" create "$lv"
expect 1 "recv on a latest-value channel" "$S" recv "$lv" --timeout 0
err_is "shmchan: recv $lv: is a latest-value channel, not a queue: use put, get or watch (SHMCHAN_EGEOMETRY)" \
    "recv on a latest-value channel"
expect 1 "watch on a queue" "$S" watch "$q" --timeout 0
err_has "is a queue, not a latest-value channel" "watch on a queue"

finish
