#!/bin/sh
# create, put and get on latest-value channels: arguments, stdin, binary data,
# sizes, modes and the errors of each.
. "$(dirname "$0")/lib.sh"

new_chan c
expect 0 "create" "$S" create "$c" --max-msg 300
expect 1 "get before any put" "$S" get "$c"
err_is "shmchan: get $c: nothing published yet (SHMCHAN_EAGAIN)" "get before any put"

# From an argument: exact bytes, no newline added.
expect 0 "put argument" "$S" put "$c" "msg 1"
run "$S" get "$c"
printf 'msg 1' | cmp -s - "$T/out" || fail "get: '$(cat "$T/out")', want 'msg 1' without newline"
expect_out "1 msg 1" "get --seq" "$S" get "$c" --seq
expect 0 "empty message" "$S" put "$c" ""
run "$S" get "$c"
[ "$RC" -eq 0 ] && [ ! -s "$T/out" ] || fail "empty message: exit $RC, '$(cat "$T/out")'"
expect_out "2 " "empty message --seq" "$S" get "$c" --seq

# From stdin, binary-safe: every byte value, NUL and 0xff included, round-trips.
python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256)) + b"\0\xff\n\0")' >"$T/bin"
expect 0 "put stdin" "$S" put "$c" <"$T/bin"
run "$S" get "$c"
cmp -s "$T/bin" "$T/out" || fail "binary round trip differs: $(od -c "$T/out" | head -3)"
printf 'tail\0\377' >"$T/bin2"
expect 0 "put -" "$S" put "$c" - <"$T/bin2"
run "$S" get "$c"
cmp -s "$T/bin2" "$T/out" || fail "put - round trip differs"
expect_out "4 " "seq after stdin puts" sh -c "'$S' get '$c' --seq | head -c 2"

# Largest message fits exactly; one byte more is refused and changes nothing.
python3 -c 'import sys; sys.stdout.buffer.write(b"x" * 300)' >"$T/max"
expect 0 "put max size" "$S" put "$c" <"$T/max"
run "$S" get "$c"
cmp -s "$T/max" "$T/out" || fail "max-size round trip differs"
python3 -c 'import sys; sys.stdout.buffer.write(b"y" * 301)' >"$T/over"
expect 1 "put stdin too big" "$S" put "$c" <"$T/over"
err_is "shmchan: put $c: standard input holds more than the channel's maximum of 300 bytes (SHMCHAN_EMSGSIZE)" \
    "put stdin too big"
expect 1 "put argument too big" "$S" put "$c" "$(cat "$T/over")"
err_is "shmchan: put $c: message of 301 bytes is larger than the channel's maximum of 300 (SHMCHAN_EMSGSIZE)" \
    "put argument too big"
run "$S" get "$c"
cmp -s "$T/max" "$T/out" || fail "a refused put changed the message"

# create: open-or-create accepts a matching channel, rejects a different one.
expect 0 "create again, same size" "$S" create "$c" --max-msg 300
expect 0 "create again, no size" "$S" create "$c"
expect 1 "create --excl existing" "$S" create "$c" --excl
err_is "shmchan: create $c: channel already exists (SHMCHAN_EEXIST)" "create --excl existing"
expect 1 "create other size" "$S" create "$c" --max-msg 64
err_has "(SHMCHAN_EGEOMETRY)" "create other size"

# Sizes take binary suffixes; the mode is exact.
new_chan d
expect 0 "create 2k, mode 0640" "$S" create "$d" --latest --max-msg 2k --mode 0640 --excl
expect_out 2048 "max_msg of 2k" json_field "$d" max_msg
expect_out 0640 "mode" json_field "$d" mode
new_chan e
expect 0 "create 1M" "$S" create "$e" --max-msg 1MiB
expect_out 1048576 "max_msg of 1MiB" json_field "$e" max_msg
head -c 1048576 /dev/urandom >"$T/big"
expect 0 "put 1 MiB from stdin" "$S" put "$e" <"$T/big"
run "$S" get "$e"
cmp -s "$T/big" "$T/out" || fail "1 MiB round trip differs"
new_chan f
expect 0 "create default mode" "$S" create "$f"
expect_out 0600 "default mode" json_field "$f" mode
expect_out 4096 "default max_msg" json_field "$f" max_msg

# A queue is not a latest-value channel, and the error says so.
new_chan q
expect 0 "create a queue" "$S" create "$q" --queue
expect 1 "put on a queue" "$S" put "$q" x
err_is "shmchan: put $q: is a queue, not a latest-value channel: use send, recv or follow (SHMCHAN_EGEOMETRY)" \
    "put on a queue"
expect 1 "get on a queue" "$S" get "$q"
err_has "is a queue, not a latest-value channel" "get on a queue"
expect 1 "send on a latest-value channel" "$S" send "$c" x
err_is "shmchan: send $c: is a latest-value channel, not a queue: use put, get or watch (SHMCHAN_EGEOMETRY)" \
    "send on a latest-value channel"
expect 1 "create --latest over a queue" "$S" create "$q" --latest
err_has "is a queue, not a latest-value channel" "create --latest over a queue"

finish
