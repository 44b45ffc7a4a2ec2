#!/bin/sh
# watch and follow over several channels (issue 13): one process waits on all
# of them through the readiness handles, wakes on whichever has news and
# prints each message with its channel's name ("NAME: ", --json "name").
. "$(dirname "$0")/lib.sh"

new_chan q1
new_chan q2
expect 0 "create q1" "$S" create "$q1" --queue
expect 0 "create q2" "$S" create "$q2" --queue
bg "$S" follow "$q1" "$q2" --count 4 --timeout 60 >"$T/f" 2>"$T/f.err"
F=$BG
sleep 1 # subscribed meanwhile: a subscriber gets what is sent after it joined
expect 0 "send a" "$S" send "$q1" a
expect 0 "send b" "$S" send "$q2" b
expect 0 "send c" "$S" send "$q2" c
expect 0 "send d" "$S" send "$q1" d
wait "$F"
rc=$?
[ "$rc" -eq 0 ] || fail "follow q1 q2: exit $rc; stderr: $(cat "$T/f.err")"
printf '%s: a\n%s: b\n%s: c\n%s: d\n' "$q1" "$q2" "$q2" "$q1" | cmp -s - "$T/f" ||
    fail "follow printed '$(cat "$T/f")'"

new_chan l1
new_chan l2
expect 0 "create l1" "$S" create "$l1"
expect 0 "create l2" "$S" create "$l2"
bg "$S" watch "$l1" "$l2" --from-now --count 2 --timeout 60 --json >"$T/w" 2>"$T/w.err"
W=$BG
sleep 1
expect 0 "put x" "$S" put "$l2" x
wait_until "watch printed x" lines_in "$T/w" 1
expect 0 "put y" "$S" put "$l1" y
wait "$W"
rc=$?
[ "$rc" -eq 0 ] || fail "watch l1 l2: exit $rc; stderr: $(cat "$T/w.err")"
python3 - "$T/w" "$l1" "$l2" <<'EOF' || fail "watch --json printed '$(cat "$T/w")'"
import json, sys
lines = [json.loads(x) for x in open(sys.argv[1]).read().splitlines()]
want = [(sys.argv[3], "x"), (sys.argv[2], "y")]
sys.exit(0 if [(d["name"], d["data"]) for d in lines] == want else 1)
EOF

expect 2 "follow --frames over two" "$S" follow "$q1" "$q2" --frames --timeout 0.1
err_has "--frames" "follow --frames over two"
finish
