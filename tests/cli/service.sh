#!/bin/sh
# Services: create --service, serve (a command per request, -j N at once,
# errors as error answers, SIGTERM), call (arguments, stdin, --json, a
# server that dies holding the request, --resend), info/ls, and the errors of each.
. "$(dirname "$0")/lib.sh"

new_chan sv
expect 0 "create --service" "$S" create "$sv" --service --max-msg 256 --servers 4 --clients 8
run "$S" info "$sv" --json
json_check 'd["kind"] == "service" and d["max_msg"] == 256' "info --json of a service" "$T/out"
json_check 'd["max_readers"] == 4 and d["max_writers"] == 8 and d["readers"] == 0' \
    "info --json: server and client slots" "$T/out"
expect 0 "create --kind service again (same geometry)" "$S" create "$sv" --kind service \
    --max-msg 256
expect 1 "create --kind queue over a service" "$S" create "$sv" --kind queue
err_has "is a service, not a queue: use call or serve" "create --kind queue over a service"

# (servers NAME N: N live servers are registered.)
servers() {
    [ "$(json_field "$1" readers 2>/dev/null || echo -1)" -eq "$2" ]
}

# serve + call: the command's stdout is the answer, byte for byte.
bg "$S" serve "$sv" -j 2 -- tr a-z A-Z
SERVE=$BG
wait_until "two servers registered" servers "$sv" 2
expect_out "HELLO WORLD" "call" "$S" call "$sv" "hello world" --timeout 60
printf 'line 1\nline 2\n' >"$T/in"
run "$S" call "$sv" - --timeout 60 <"$T/in"
[ "$RC" -eq 0 ] || fail "call - : exit $RC: $(cat "$T/err")"
printf 'LINE 1\nLINE 2\n' | cmp -s - "$T/out" || fail "call - answered '$(cat "$T/out")'"
run "$S" call "$sv" "json me" --json --timeout 60
json_check 'd["data"] == "JSON ME" and d["last"] and not d["error"] and d["part"] == 0' \
    "call --json" "$T/out"
expect 1 "a request over max-msg" "$S" call "$sv" "$(printf '%0300d' 0)" --timeout 60
err_has "larger than the service's maximum of 256" "a request over max-msg"
run "$S" info "$sv"
grep -q "^servers  *2 live" "$T/out" || fail "info shows the servers: $(cat "$T/out")"
grep -q "^server  *[0-9]" "$T/out" || fail "info's peers name servers: $(cat "$T/out")"
run "$S" info "$sv" --json
json_check '[p["role"] for p in d["peers"]] == ["server", "server"] and d["readers"] == 2' \
    "info --json peers of a service" "$T/out"

# SIGTERM: no more requests, slots released, status 128+15.
kill -TERM "$SERVE"
wait "$SERVE"
rc=$?
[ "$rc" -eq 143 ] || fail "serve after SIGTERM: exit $rc, want 143"
wait_until "servers gone after SIGTERM" servers "$sv" 0

# -j 2 runs two commands at once: each waits until both have started, so
# with one at a time the calls would never be answered.
mkdir "$T/started"
bg "$S" serve "$sv" -j 2 -- sh -c 'touch "$0/$$"; while [ "$(ls "$0" | wc -l)" -lt 2 ]; do sleep 0.02; done; echo both' "$T/started"
SERVE=$BG
wait_until "two servers for -j 2" servers "$sv" 2
bg "$S" call "$sv" a --timeout 60 >"$T/c1"
C1=$BG
bg "$S" call "$sv" b --timeout 60 >"$T/c2"
C2=$BG
wait "$C1" || fail "first concurrent call failed"
wait "$C2" || fail "second concurrent call failed"
[ "$(cat "$T/c1") $(cat "$T/c2")" = "both both" ] || fail "concurrent calls answered '$(cat "$T/c1")' and '$(cat "$T/c2")'"
kill -TERM "$SERVE"
wait "$SERVE"

# A failing command answers with an error: its stderr, or its status.
bg "$S" serve "$sv" -- sh -c 'cat >/dev/null; echo "bad input" >&2; exit 3'
SERVE=$BG
wait_until "failing server registered" servers "$sv" 1
expect 1 "call of a failing command" "$S" call "$sv" x --timeout 60
err_is "shmchan: call $sv: the server answered with an error: bad input" "error answer"
run "$S" call "$sv" x --json --timeout 60
[ "$RC" -eq 1 ] || fail "call --json of an error: exit $RC"
json_check 'd["error"] and d["data"] == "bad input\n" and d["last"]' "call --json of an error" \
    "$T/out"
kill -TERM "$SERVE"
wait "$SERVE"
bg "$S" serve "$sv" -- sh -c 'exit 5'
SERVE=$BG
wait_until "silent failing server registered" servers "$sv" 1
expect 1 "call of a command failing silently" "$S" call "$sv" x --timeout 60
err_has "sh exited with status 5" "exit status as the error text"
kill -TERM "$SERVE"
wait "$SERVE"
bg "$S" serve "$sv" -- shmchan-no-such-command
SERVE=$BG
wait_until "server of a missing command registered" servers "$sv" 1
expect 1 "call of a missing command" "$S" call "$sv" x --timeout 60
err_has "cannot run shmchan-no-such-command" "missing command"
kill -TERM "$SERVE"
wait "$SERVE"

# A server that dies holding the request: the call fails at once with
# EPEERDIED (not at its timeout, which is far away).
bg "$S" serve "$sv" -- sh -c 'kill -9 $PPID; sleep 5'
SERVE=$BG
wait_until "doomed server registered" servers "$sv" 1
expect 1 "call when the server dies" "$S" call "$sv" x --timeout 600
err_has "the server died while handling the request (SHMCHAN_EPEERDIED)" "dead server"
wait "$SERVE"

# --resend: the same doomed server takes the request and dies; the call
# sends it again and a server started only after that death answers it.
bg "$S" serve "$sv" -- sh -c 'kill -9 $PPID; sleep 5'
SERVE=$BG
wait_until "doomed server registered" servers "$sv" 1
bg "$S" call "$sv" again --resend --timeout 600 >"$T/resent" 2>"$T/resent.err"
CALL=$BG
wait "$SERVE"
bg "$S" serve "$sv" -- tr a-z A-Z
SERVE=$BG
wait "$CALL"
rc=$?
[ "$rc" -eq 0 ] || fail "call --resend after a dead server: exit $rc: $(cat "$T/resent.err")"
[ "$(cat "$T/resent")" = "AGAIN" ] || fail "call --resend answered '$(cat "$T/resent")'"
kill -TERM "$SERVE"
wait "$SERVE"

# No server: the timeout; usage and kind errors.
expect 1 "call without a server" "$S" call "$sv" x --timeout 0.2
err_has "SHMCHAN_ETIMEDOUT" "call without a server"
new_chan none
expect 1 "call of a missing service" "$S" call "$none" x
err_has "no such channel" "call of a missing service"
new_chan q
expect 0 "create a queue" "$S" create "$q" --queue
expect 1 "call of a queue" "$S" call "$q" x
err_has "is a queue, not a service: use send, recv or follow" "call of a queue"
expect 1 "send to a service" "$S" send "$sv" x
err_has "is a service, not a queue: use call or serve" "send to a service"
expect 2 "serve without a command" "$S" serve "$sv"
expect 2 "call without a message" "$S" call "$sv"
expect 2 "serve -j 0" "$S" serve "$sv" -j 0 -- cat
expect 2 "--servers on a queue" "$S" create "$q" --queue --servers 2
expect 2 "--readers on a service" "$S" create "$sv" --service --readers 2
run "$S" ls "$sv"
grep -q "^$sv  *service " "$T/out" || fail "ls shows the service: $(cat "$T/out")"

finish
