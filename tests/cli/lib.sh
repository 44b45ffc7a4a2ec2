# Helpers shared by the CLI tests (POSIX sh), sourced by each tests/cli/*.sh.
# Usage of a test: sh tests/cli/NAME.sh /path/to/shmchan
#
# Channels get unique names (cli-PID-N) and are removed, and background
# processes killed, when the test exits. A test prints each failed check and
# exits 1 if there was any, 77 (ctest: skipped) from skip().

set -u
S=${1:?usage: $0 /path/to/shmchan}
[ -x "$S" ] || { echo "not an executable: $S" >&2; exit 1; }
T=$(mktemp -d "${TMPDIR:-/tmp}/shmchan-cli.XXXXXX")
CHANNELS=""
PIDS=""
N=0
FAILS=0

cleanup() {
    # CONT before TERM, never after: a SIGCONT that lands while an exiting
    # sanitizer build is stopping itself for LeakSanitizer (ptrace) discards
    # that stop, and the process then spins for ever.
    for p in $PIDS; do
        kill -CONT "$p" 2>/dev/null && kill "$p" 2>/dev/null # a stopped one too
    done
    for c in $CHANNELS; do
        "$S" rm -f "$c" >/dev/null 2>&1
    done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# new_chan VAR: set VAR to a fresh channel name, removed at exit.
new_chan() {
    N=$((N + 1))
    eval "$1=cli-$$-$N"
    eval "CHANNELS=\"\$CHANNELS \$$1\""
}

# bg CMD...: run in the background, killed at exit; its pid is in $BG.
bg() {
    "$@" &
    BG=$!
    PIDS="$PIDS $BG"
}

fail() {
    echo "FAIL: $*" >&2
    FAILS=$((FAILS + 1))
}

skip() {
    echo "SKIP: $*"
    exit 77
}

finish() {
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS checks failed"
        exit 1
    fi
    echo "all checks passed"
    exit 0
}

# run CMD...: run with stdout in $T/out and stderr in $T/err; status in $RC.
run() {
    "$@" >"$T/out" 2>"$T/err"
    RC=$?
}

# expect WANT DESC CMD...: run CMD and check its exit status.
expect() {
    want=$1
    desc=$2
    shift 2
    run "$@"
    [ "$RC" -eq "$want" ] || fail "$desc: exit $RC, want $want; stderr: $(cat "$T/err")"
}

# expect_out WANT_STDOUT DESC CMD...: exit 0 and exactly this output.
expect_out() {
    want=$1
    desc=$2
    shift 2
    run "$@"
    [ "$RC" -eq 0 ] || fail "$desc: exit $RC; stderr: $(cat "$T/err")"
    [ "$(cat "$T/out")" = "$want" ] || fail "$desc: output '$(cat "$T/out")', want '$want'"
}

# err_is LINE DESC: the last command's stderr is exactly LINE.
err_is() {
    [ "$(cat "$T/err")" = "$1" ] || fail "$2: stderr '$(cat "$T/err")', want '$1'"
}

# err_has TEXT DESC: the last command's stderr contains TEXT.
err_has() {
    grep -qF -- "$1" "$T/err" || fail "$2: stderr '$(cat "$T/err")' lacks '$1'"
}

# json_check PYEXPR DESC FILE: PYEXPR (d = the parsed JSON) is true.
json_check() {
    python3 -c "import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" \
        "$3" || fail "$2: $1 is false for $(cat "$3")"
}

# wait_until DESC CMD...: poll CMD until it succeeds, failing after 20 s.
# (A bound against hanging, not a timing condition: CMD is a state check.)
wait_until() {
    desc=$1
    shift
    i=0
    while ! "$@"; do
        i=$((i + 1))
        if [ "$i" -ge 800 ]; then
            fail "$desc: never happened"
            return 1
        fi
        sleep 0.025
    done
    return 0
}

# lines_in FILE N: FILE has at least N lines.
lines_in() {
    [ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]
}

# json_field NAME FIELD: print a field of `info --json`.
json_field() {
    "$S" info "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# waits_at_least NAME N: the channel's waits counter is >= N.
waits_at_least() {
    [ "$(json_field "$1" waits 2>/dev/null || echo 0)" -ge "$2" ]
}

# exited PID: the process is gone (reaped by wait in the caller later).
exited() {
    ! kill -0 "$1" 2>/dev/null
}
