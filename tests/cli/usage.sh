#!/bin/sh
# Help, version, usage errors (exit 2) and the one-line runtime error (exit 1).
. "$(dirname "$0")/lib.sh"

VERBS="create put get watch send recv follow ls info rm gc doctor"

# --help everywhere: exit 0, usage on stdout.
expect 0 "--help" "$S" --help
grep -q "^usage: shmchan COMMAND" "$T/out" || fail "--help: no usage line"
for v in $VERBS; do
    grep -q "^  $v " "$T/out" || fail "--help does not list $v"
done
for v in $VERBS; do
    expect 0 "$v --help" "$S" "$v" --help
    grep -q "^usage: shmchan $v" "$T/out" || fail "$v --help: no usage line"
    expect 0 "$v -h" "$S" "$v" -h
    expect 0 "help $v" "$S" help "$v"
    grep -q "^usage: shmchan $v" "$T/out" || fail "help $v: no usage line"
done

# --version: library and layout versions.
expect 0 "--version" "$S" --version
grep -Eq '^shmchan [0-9]+\.[0-9]+\.[0-9]+ \(libshmchan [0-9.]+, layout version [0-9]+\)$' \
    "$T/out" || fail "--version: '$(cat "$T/out")'"

# Usage errors: exit 2 and one line naming the command.
expect 2 "no arguments" "$S"
expect 2 "unknown command" "$S" frobnicate
err_is "shmchan: unknown command 'frobnicate' (see 'shmchan --help')" "unknown command"
expect 2 "unknown option" "$S" get x --bogus
err_is "shmchan: get: unknown option '--bogus' (see 'shmchan get --help')" "unknown option"
expect 2 "option of another command" "$S" get x --count 3
expect 2 "missing NAME" "$S" get
err_is "shmchan: get: missing NAME (see 'shmchan get --help')" "missing NAME"
expect 2 "extra argument" "$S" get x y
err_has "unexpected argument 'y'" "extra argument"
expect 2 "missing value" "$S" watch x --count
err_has "option '--count' needs a value" "missing value"
expect 2 "value on a flag" "$S" get x --json=yes
expect 2 "bad count" "$S" watch x --count many
err_is "shmchan: watch: bad value 'many' for --count (see 'shmchan watch --help')" "bad count"
expect 2 "negative timeout" "$S" watch x --timeout -1
expect 2 "bad timeout" "$S" watch x --timeout 1s
expect 2 "bad size" "$S" create x --max-msg 3Q
expect 2 "zero size" "$S" create x --max-msg 0
expect 2 "bad mode" "$S" create x --mode 0999
expect 2 "bad policy" "$S" create x --queue --policy sometimes
expect 2 "--latest with --queue" "$S" create x --latest --queue
expect 2 "queue option on latest" "$S" create x --capacity 1M
err_has "apply to queues (add --queue)" "queue option on latest"
expect 2 "formats exclude each other" "$S" watch x --json --null
expect 2 "--seq with --frames" "$S" watch x --seq --frames
expect 2 "--worker with --oldest" "$S" recv x --worker --oldest
expect 2 "invalid name" "$S" get "no spaces"
err_has "invalid channel name 'no spaces'" "invalid name"
expect 2 "name too long" "$S" get abcdefghijklmnopqrstuvwxyz
expect 2 "name starting with a dot" "$S" get .hidden
expect 2 "invalid name among several" "$S" rm ok-name "bad name"
# "--" ends options: a message may start with a dash.
new_chan c
expect 0 "create" "$S" create "$c"
expect 0 "put after --" "$S" put "$c" -- --not-an-option
expect_out "--not-an-option" "get after --" "$S" get "$c"

# Runtime errors: exit 1, "shmchan: VERB NAME: cause (CODE)".
new_chan missing
for v in get put watch info; do
    expect 1 "$v missing channel" "$S" "$v" "$missing"
    err_is "shmchan: $v $missing: no such channel (SHMCHAN_ENOENT)" "$v missing channel"
done
expect 1 "rm missing channel" "$S" rm "$missing"
err_is "shmchan: rm $missing: no such channel (SHMCHAN_ENOENT)" "rm missing channel"
expect 1 "file channel missing" "$S" get "$T/none"
err_is "shmchan: get $T/none: no such channel (SHMCHAN_ENOENT)" "file channel missing"

finish
