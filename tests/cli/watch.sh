#!/bin/sh
# watch: woken by put in another process (not polling), output formats,
# --count/--timeout exit statuses, and a clean exit on SIGINT/SIGTERM.
. "$(dirname "$0")/lib.sh"

# watch --count 3 in the background prints the three messages put by other
# processes. Each put waits until the previous message was printed, because a
# latest-value channel keeps only the newest message.
new_chan c
expect 0 "create" "$S" create "$c"
bg "$S" watch "$c" --count 3 --from-now --timeout 60 >"$T/w1" 2>"$T/w1.err"
W=$BG
wait_until "watch asleep on the channel" waits_at_least "$c" 1
expect 0 "put one" "$S" put "$c" one
wait_until "watch printed one" lines_in "$T/w1" 1
expect 0 "put two" "$S" put "$c" two
wait_until "watch printed two" lines_in "$T/w1" 2
expect 0 "put three" "$S" put "$c" three
wait "$W"
rc=$?
[ "$rc" -eq 0 ] || fail "watch --count 3: exit $rc; stderr: $(cat "$T/w1.err")"
printf 'one\ntwo\nthree\n' | cmp -s - "$T/w1" || fail "watch printed '$(cat "$T/w1")'"
# It slept in the kernel and was woken by the publishes: the channel counts
# every sleep of a reader (a poller would never register as one).
run json_field "$c" waits
[ "$(cat "$T/out")" -ge 1 ] || fail "waits counter is $(cat "$T/out"), want >= 1"

# Without --from-now the current message comes first, at once.
expect_out "three" "watch prints the current message" "$S" watch "$c" --count 1
expect_out "3 three" "watch --seq" "$S" watch "$c" --count 1 --seq

# Formats, on a binary message.
printf 'a\nb\0c\377' >"$T/bin"
expect 0 "put binary" "$S" put "$c" <"$T/bin"
run "$S" watch "$c" --count 1 --null
{ cat "$T/bin"; printf '\0'; } | cmp -s - "$T/out" || fail "--null output differs"
run "$S" watch "$c" --count 1
{ cat "$T/bin"; printf '\n'; } | cmp -s - "$T/out" || fail "--lines output differs"
run "$S" watch "$c" --count 1 --frames
python3 - "$T/out" "$T/bin" <<'EOF' || fail "--frames output differs"
import sys
out, msg = open(sys.argv[1], "rb").read(), open(sys.argv[2], "rb").read()
sys.exit(0 if out == len(msg).to_bytes(4, "little") + msg else 1)
EOF
run "$S" watch "$c" --count 1 --json
python3 - "$T/out" "$T/bin" <<'EOF' || fail "--json (base64) output: $(cat "$T/out")"
import base64, json, sys
lines = open(sys.argv[1]).read().splitlines()
d = json.loads(lines[0])
ok = (len(lines) == 1 and d["seq"] == 4 and d["len"] == 6 and d["encoding"] == "base64"
      and base64.b64decode(d["data"]) == open(sys.argv[2], "rb").read())
sys.exit(0 if ok else 1)
EOF
expect 0 "put utf-8" "$S" put "$c" "$(printf 'h\303\251llo\tworld')"
run "$S" watch "$c" --count 1 --json
json_check 'd["encoding"] == "utf-8" and d["data"] == "h\u00e9llo\tworld" and d["len"] == 12' \
    "--json (utf-8)" "$T/out"

# --timeout: the watching time without --count (exit 0), a limit with it (exit 1).
expect_out "" "watch --from-now --timeout" "$S" watch "$c" --from-now --timeout 0.2
expect 1 "watch --count --timeout" "$S" watch "$c" --from-now --count 2 --timeout 0.2
err_is "shmchan: watch $c: timed out after 0 of 2 messages (SHMCHAN_ETIMEDOUT)" "count not reached"
expect_out "$(printf 'h\303\251llo\tworld')" "--timeout 0 prints what is there" \
    "$S" watch "$c" --timeout 0

# SIGINT and SIGTERM end a sleeping watch at once, quietly, by exiting with
# 128+signal (Python tells an exit status from a death by signal).
for sig in INT TERM; do
    new_chan s
    expect 0 "create for SIG$sig" "$S" create "$s"
    python3 - "$S" "$s" "$sig" <<'EOF' || fail "SIG$sig did not end watch cleanly"
import json, signal, subprocess, sys, time
shmchan, name, sig = sys.argv[1], sys.argv[2], getattr(signal, "SIG" + sys.argv[3])


def info():
    r = subprocess.run([shmchan, "info", name, "--json"], capture_output=True, check=True)
    return json.loads(r.stdout)


p = subprocess.Popen([shmchan, "watch", name, "--timeout", "60"],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
for _ in range(800):  # until it sleeps on the channel (bounded: 20 s)
    if info()["waits"] >= 1:
        break
    time.sleep(0.025)
p.send_signal(sig)
out, err = p.communicate(timeout=30)
in_use = info()["in_use"]
ok = p.returncode == 128 + sig and err == b"" and out == b"" and not in_use
if not ok:
    print(f"returncode {p.returncode}, stdout {out!r}, stderr {err!r}, in_use {in_use}")
sys.exit(0 if ok else 1)
EOF
done

finish
