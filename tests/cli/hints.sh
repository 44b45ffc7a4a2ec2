#!/bin/sh
# Small things: `follow q | head -1` ends as soon as head does (the closed
# pipe is noticed while waiting, as tail -f does); unknown commands and
# options suggest the nearest; doctor counts "1 channel".
. "$(dirname "$0")/lib.sh"

# follow | head -1: one message, and no other ever comes. Without noticing
# the closed pipe, follow would wait for the next message for ever.
new_chan q
expect 0 "create" "$S" create "$q" --queue
# (Its pid is kept so that a follow that never ends is killed, not waited for.)
( "$S" follow "$q" 2>"$T/f.err" & echo $! >"$T/f.pid"; wait $!; echo $? >"$T/f.rc" ) |
    head -n1 >"$T/head.out" &
P=$!
readers() { [ "$(json_field "$q" readers 2>/dev/null || echo 0)" -ge 1 ]; }
wait_until "follow subscribed" readers
expect 0 "send one" "$S" send "$q" first
wait_until "follow ended after head exited" test -s "$T/f.rc" || kill "$(cat "$T/f.pid")"
wait "$P"
[ "$(cat "$T/head.out")" = first ] || fail "head got '$(cat "$T/head.out")'"
[ "$(cat "$T/f.rc" 2>/dev/null)" = 141 ] || fail "follow exit $(cat "$T/f.rc" 2>/dev/null), want 141 (SIGPIPE)"
[ ! -s "$T/f.err" ] || fail "follow wrote to stderr: $(cat "$T/f.err")"
# Its reader slot was released on the way out.
gone() { [ "$(json_field "$q" readers)" -eq 0 ]; }
wait_until "subscriber gone" gone
# The same for watch on a latest-value channel.
new_chan l
expect 0 "create latest" "$S" create "$l"
expect 0 "put" "$S" put "$l" v
( "$S" watch "$l" & echo $! >"$T/w.pid"; wait $!; echo $? >"$T/w.rc" ) |
    head -n1 >"$T/whead.out" &
P=$!
wait_until "watch ended after head exited" test -s "$T/w.rc" || kill "$(cat "$T/w.pid")"
wait "$P"
[ "$(cat "$T/w.rc")" = 141 ] || fail "watch exit $(cat "$T/w.rc"), want 141"

# Suggestions.
expect 2 "misspelt command" "$S" folow "$q"
err_is "shmchan: unknown command 'folow'; did you mean 'follow'? (see 'shmchan --help')" "folow"
expect 2 "command prefix" "$S" reco "$q"
err_has "did you mean 'record'?" "reco"
expect 2 "help of a misspelt command" "$S" help infoo
err_has "did you mean 'info'?" "help infoo"
expect 2 "misspelt option" "$S" recv "$q" --olds
err_is "shmchan: recv: unknown option '--olds'; did you mean '--oldest'? (see 'shmchan recv --help')" "--olds"
expect 2 "option of another command" "$S" info "$q" --watch
err_is "shmchan: info: unknown option '--watch' (see 'shmchan info --help')" "info --watch"
expect 2 "far from everything" "$S" xyzzy
err_is "shmchan: unknown command 'xyzzy' (see 'shmchan --help')" "xyzzy"
# -a is --all to ls and --append to record.
expect 0 "ls -a" "$S" ls -a "$q"

# doctor in a shared-memory folder of its own holding one channel.
if unshare --mount --map-root-user true 2>/dev/null; then
    unshare --mount --map-root-user sh -c 'mount -t tmpfs tmpfs /dev/shm && "$0" create one &&
        "$0" doctor' "$S" >"$T/doc" 2>&1
    grep -q "1 channel in shared memory" "$T/doc" || fail "doctor: $(grep channel "$T/doc")"
else
    echo "SKIP (one check): doctor's '1 channel' needs unshare --mount --map-root-user"
fi

finish
