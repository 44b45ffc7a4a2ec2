#!/bin/sh
# record, replay, cat: a queue and a latest-value channel recorded while
# messages flow; replay into renamed channels, recorded again, compared
# message by message and in timing (original, --speed 4, --fast); a recorder
# killed with SIGKILL mid-stream reads back (cat and shmchan.Recording), a
# torn tail is reported; errors.
. "$(dirname "$0")/lib.sh"
PYDIR=$(cd "$(dirname "$0")/../../python" && pwd)

# start_recorder OUT.rec ERR NAME...: record in the background ($REC), and
# return once it has subscribed (it says so after writing its channel records).
start_recorder() {
    out=$1
    err=$2
    shift 2
    bg "$S" record "$@" -o "$out" 2>"$err"
    REC=$BG
    wait_until "recorder started" grep -q ': recording ' "$err"
}

# count_in FILE N: the recording holds at least N messages.
count_in() {
    [ "$("$S" cat "$1" 2>/dev/null | wc -l)" -ge "$2" ]
}

new_chan q
new_chan l
expect 0 "create queue" "$S" create "$q" --queue --max-msg 256
expect 0 "create latest" "$S" create "$l"

# 1. Record while a writer sends known messages with gaps of about 0.3 s.
# Each latest-value message waits until the recorder has it (a latest-value
# channel keeps only the newest).
start_recorder "$T/a.rec" "$T/a.err" "$q" "$l"
"$S" send "$q" one
sleep 0.3
"$S" put "$l" "$(printf 'v1\ttab')"
wait_until "v1 recorded" count_in "$T/a.rec" 2
sleep 0.3
"$S" send "$q" two three
sleep 0.4
"$S" put "$l" v2
wait_until "v2 recorded" count_in "$T/a.rec" 5
sleep 0.5
"$S" send "$q" four
wait_until "four recorded" count_in "$T/a.rec" 6
kill -INT "$REC"
wait "$REC"
rc=$?
[ "$rc" -eq 0 ] || fail "record after SIGINT: exit $rc; stderr: $(cat "$T/a.err")"
grep -q "6 messages from 2 channels" "$T/a.err" || fail "record summary: $(cat "$T/a.err")"

run "$S" cat "$T/a.rec"
sed 's/^[^ ]* //' "$T/out" >"$T/cat.txt"
printf '%s 1 one\n%s 1 v1\\ttab\n%s 2 two\n%s 3 three\n%s 2 v2\n%s 4 four\n' \
    "$q" "$l" "$q" "$q" "$l" "$q" | cmp -s - "$T/cat.txt" || fail "cat shows '$(cat "$T/out")'"
grep -qE '^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:]{8}\.[0-9]{6}Z ' "$T/out" ||
    fail "cat: no UTC receive time in '$(head -n1 "$T/out")'"

# compare ORIG.rec COPY.rec SPEED: same messages in the same order, channels
# renamed, and each message's time from the first within a tolerance of the
# original's / SPEED (never early; at most 0.5 s late). SPEED 0: --fast, in
# well under the original's time.
compare() {
    "$S" cat --json "$1" >"$T/c1.json" && "$S" cat --json "$2" >"$T/c2.json" || return 1
    python3 - "$T/c1.json" "$T/c2.json" "$3" "$q" "$l" <<'PY'
import json, sys
a = [json.loads(x) for x in open(sys.argv[1])]
b = [json.loads(x) for x in open(sys.argv[2])]
speed, q, l = float(sys.argv[3]), sys.argv[4], sys.argv[5]
ren = {q: q + "-r", l: l + "-r"}
# Each channel's messages, renamed, in order, with their times from the
# first message of the recording.
def chans(ms, t0, rename):
    out = {}
    for m in ms:
        out.setdefault(rename.get(m["channel"], m["channel"]), []).append(
            (m["data"], (m["time_ns"] - t0) / 1e9))
    return out
t0, u0 = min(m["time_ns"] for m in a), min(m["time_ns"] for m in b)
ca, cb = chans(a, t0, ren), chans(b, u0, {})
if speed == 0:
    # As fast as possible: a latest-value channel keeps only the newest, so
    # only its last version is sure to be seen.
    ca[l + "-r"] = ca[l + "-r"][-1:]
    cb[l + "-r"] = cb.get(l + "-r", [])[-1:]
for name in ca:
    if [d for d, _ in ca[name]] != [d for d, _ in cb.get(name, [])]:
        print("messages differ:", name, ca[name], cb.get(name))
        sys.exit(1)
    for (d, orig), (_, got) in zip(ca[name], cb[name]):
        if speed == 0:
            good = got < 0.2 or got < orig / 2
        else:
            good = orig / speed - 0.15 <= got <= orig / speed + 0.5
        if not good:
            print(f"speed {speed}: message {d!r} at {got:.3f} s, original {orig:.3f} s")
            sys.exit(1)
PY
}

# 2. Replay into renamed channels (created by replay), recorded again.
for speed in 1 4 0; do
    "$S" rm -f "$q-r" "$l-r" >/dev/null 2>&1
    expect 0 "create renamed queue" "$S" create "$q-r" --queue --max-msg 256
    expect 0 "create renamed latest" "$S" create "$l-r"
    CHANNELS="$CHANNELS $q-r $l-r"
    start_recorder "$T/r$speed.rec" "$T/r$speed.err" "$q-r" "$l-r"
    case $speed in
    0) opt=--fast ;;
    *) opt="--speed $speed" ;;
    esac
    # shellcheck disable=SC2086
    expect 0 "replay $opt" "$S" replay "$T/a.rec" "$q=$q-r" "$l=$l-r" $opt
    want=6
    [ "$speed" = 0 ] && want=5 # v1 may be overwritten before it is seen
    wait_until "replay $opt recorded" count_in "$T/r$speed.rec" $want
    kill -INT "$REC"
    wait "$REC"
    compare "$T/a.rec" "$T/r$speed.rec" "$speed" || fail "replay $opt differs from the original"
done

# 3. replay creates a missing channel with the recorded kind and sizes.
new_chan q3
new_chan l3
expect 0 "replay into new channels" "$S" replay "$T/a.rec" "$q=$q3" "$l=$l3" --fast
run json_field "$q3" max_msg
[ "$(cat "$T/out")" = 256 ] || fail "replayed queue's max_msg: $(cat "$T/out")"
expect_out "v2" "replayed latest value" "$S" get "$l3"
expect 1 "replay into a channel of another kind" "$S" replay "$T/a.rec" "$q=$l3" --fast
err_has "is a latest, the recording's $q was a queue" "kind mismatch"

# 4. SIGKILL mid-stream: a writer sends 200000 numbered 64-byte messages at
# full speed; the recorder is killed once its file passed 1 MB.
new_chan k
expect 0 "create queue k" "$S" create "$k" --queue --max-msg 64 --capacity 64k
python3 -c '
import sys
w = sys.stdout.buffer
for i in range(200000):
    m = b"%08d" % i * 8
    w.write(len(m).to_bytes(4, "little") + m)' >"$T/frames"
start_recorder "$T/k.rec" "$T/k.err" "$k"
bg sh -c 'exec "$0" send "$1" --frames <"$2"' "$S" "$k" "$T/frames"
W=$BG
big() { [ "$(wc -c <"$T/k.rec")" -gt 1000000 ]; }
wait_until "recording passed 1 MB" big
kill -KILL "$REC"
wait "$REC" 2>/dev/null
kill "$W" 2>/dev/null
wait "$W" 2>/dev/null
check_prefix() {
    python3 - "$1" "$2" <<'PY'
import json, sys
msgs = [json.loads(x) for x in open(sys.argv[1])]
ok = len(msgs) >= int(sys.argv[2]) and all(
    m["seq"] == i + 1 and m["data"] == "%08d" % i * 8 for i, m in enumerate(msgs))
print(len(msgs))
sys.exit(0 if ok else 1)
PY
}
run "$S" cat --json "$T/k.rec"
[ "$RC" -eq 0 ] || fail "cat after SIGKILL: exit $RC; $(cat "$T/err")"
cp "$T/out" "$T/k.json"
# A kill can land while a buffer is half written: then cat has reported a
# torn tail already, and the file is cut there before tearing it again.
if [ -s "$T/err" ]; then
    grep -q "torn tail of [0-9]* bytes at offset [0-9]* ignored" "$T/err" ||
        fail "cat after SIGKILL: stderr $(cat "$T/err")"
    off=$(sed -n 's/.* at offset \([0-9]*\) ignored.*/\1/p' "$T/err")
    python3 -c 'import os, sys; os.truncate(sys.argv[1], int(sys.argv[2]))' "$T/k.rec" "$off"
fi
n=$(check_prefix "$T/k.json" 9000) || fail "cat after SIGKILL: not every message 1..N ($n)"
# The same through Python.
# The reader is pure Python: load its module without the binding's library.
python3 -c '
import importlib.util, sys
spec = importlib.util.spec_from_file_location("rec", sys.argv[3])
rec = sys.modules["rec"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rec)
with rec.Recording(sys.argv[1]) as r:
    ms = r.messages()
ok = len(ms) == int(sys.argv[2]) and all(m.data == b"%08d" % i * 8 for i, m in enumerate(ms))
sys.exit(0 if ok else 1)' "$T/k.rec" "$n" "$PYDIR/shmchan/_recording.py" ||
    fail "shmchan.Recording after SIGKILL"
# Tear the last record: cat reports it and prints everything before it.
size=$(wc -c <"$T/k.rec")
python3 -c 'import os, sys; os.truncate(sys.argv[1], int(sys.argv[2]) - 10)' "$T/k.rec" "$size"
run "$S" cat --json "$T/k.rec"
[ "$RC" -eq 0 ] || fail "cat of a torn file: exit $RC"
err_is "shmchan: cat $T/k.rec: torn tail of 94 bytes at offset $((size - 104)) ignored (a recorder stopped mid-write)" "torn tail"
m=$(check_prefix "$T/out" 1) || fail "cat of a torn file: messages differ"
[ "$m" -eq $((n - 1)) ] || fail "cat of a torn file: $m messages, want $((n - 1))"

# 5. Errors.
expect 2 "record without -o" "$S" record "$q"
err_has "missing -o FILE" "record without -o"
printf 'not a recording at all' >"$T/junk"
expect 1 "cat of a non-recording" "$S" cat "$T/junk"
err_is "shmchan: cat $T/junk: not a shmchan recording" "cat junk"
expect 1 "replay of a missing file" "$S" replay "$T/missing.rec"
expect 2 "replay with a bad mapping" "$S" replay "$T/a.rec" nonsense
expect 1 "record -a onto a non-recording" "$S" record "$q" -o "$T/junk" -a --timeout 0.1
[ "$(cat "$T/junk")" = "not a recording at all" ] || fail "record -a changed a non-recording"

finish
