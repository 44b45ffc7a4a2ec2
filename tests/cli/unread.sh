#!/bin/sh
# Issue 12: a block-policy queue overwrites nothing unread, also before its
# first reader; overwrite mode counts drops with no reader; a geometry
# mismatch names the field and both values.
. "$(dirname "$0")/lib.sh"

# Block policy before the first reader (issue 12): nothing unread is
# overwritten, so a sender with no reader waits for space, and the first
# worker then gets every message, in order, with nothing lost or dropped.
new_chan pq
expect 0 "create a 4k block queue" "$S" create "$pq" --queue --capacity 4k --max-msg 64
bg sh -c "seq 1 400 | '$S' send '$pq'"
P=$BG
wait_until "the early sender waits for space" waits_at_least "$pq" 1
exited "$P" && fail "send of 400 lines into 4k with no reader did not wait"
run "$S" recv "$pq" --worker --count 400 --timeout 60 --json
[ "$RC" -eq 0 ] || fail "first worker: exit $RC, stderr $(cat "$T/err")"
python3 - "$T/out" <<'EOF' || fail "first worker did not get 1..400 with lost 0: $(head -2 "$T/out")"
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1])]
ok = [m["data"] for m in msgs] == [str(i) for i in range(1, 401)] and all(m["lost"] == 0 for m in msgs)
sys.exit(0 if ok else 1)
EOF
wait "$P" || fail "the early sender failed"
run json_field "$pq" drops
[ "$(cat "$T/out")" -eq 0 ] || fail "block queue before its first reader counts drops $(cat "$T/out")"
expect 1 "a full block queue with no reader, --timeout 0.2" sh -c "seq 1 400 | '$S' send '$pq' --timeout 0.2"
err_has "SHMCHAN_ETIMEDOUT" "a full block queue with no reader"

# Overwrite policy with no reader: what is overwritten unread is counted.
new_chan nq
expect 0 "create a 4k overwrite queue" "$S" create "$nq" --queue --policy overwrite \
    --capacity 4k --max-msg 64
seq 1 400 | "$S" send "$nq" --timeout 0 || fail "send to an overwrite queue with no reader"
run "$S" info "$nq" --json
json_check 'd["drops"] > 0 and d["drops"] == d["oldest_seq"] - 1' \
    "overwrite with no reader: drops are the messages overwritten" "$T/out"

# A geometry mismatch names the field and both values (issue 12); a kind
# mismatch is reported only when the kind differs.
new_chan gx
expect 0 "create a latest-value channel of 1024" "$S" create "$gx" --max-msg 1024
expect 1 "create it again with another max-msg" "$S" create "$gx" --max-msg 2048
err_is "shmchan: create $gx: max_msg is 1024, not 2048 (SHMCHAN_EGEOMETRY)" "max-msg mismatch"
new_chan gy
expect 0 "create a 64k queue" "$S" create "$gy" --queue --capacity 64k
expect 1 "create it again with another capacity" "$S" create "$gy" --queue --capacity 128k
err_is "shmchan: create $gy: capacity is 65536, not 131072 (SHMCHAN_EGEOMETRY)" "capacity mismatch"
expect 1 "create it again with another policy" "$S" create "$gy" --queue --policy overwrite
err_is "shmchan: create $gy: policy is block, not overwrite (SHMCHAN_EGEOMETRY)" "policy mismatch"

finish
