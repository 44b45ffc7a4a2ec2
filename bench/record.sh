#!/usr/bin/env bash
# How fast `shmchan record` takes 64-byte messages off a queue.
#
#   bench/record.sh [BUILD_DIR] [MESSAGES]     (default: build, 1000000)
#
# Two figures: (1) drain: the queue is filled first, then the recorder takes
# every message (--oldest --count N): the recorder alone; (2) live: the
# recorder records while `shmchan send --frames` writes at full speed (the
# sender may be the limit). The recording goes to a temporary folder (tmpfs
# where /tmp is one: the disk is not measured).
set -euo pipefail
build=${1:-build}
n=${2:-1000000}
S=$build/tools/shmchan/shmchan
[[ -x $S ]] || { echo "no $S: build first" >&2; exit 1; }
work=$(mktemp -d)
q=bench-rec-$$
trap '"$S" rm -f "$q" >/dev/null 2>&1; rm -rf "$work"' EXIT
python3 -c '
import sys
m = b"x" * 64
sys.stdout.buffer.write((len(m).to_bytes(4, "little") + m) * int(sys.argv[1]))' "$n" >"$work/frames"
now() { date +%s.%N; }
rate() { python3 -c "import sys; print(f'{int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])) / 1e6:.2f} M msgs/s')" "$@"; }

# (1) drain a queue holding all n messages.
"$S" create "$q" --queue --max-msg 64 --capacity $((n * 128))
"$S" send "$q" --frames <"$work/frames"
t0=$(now)
"$S" record "$q" -o "$work/d.rec" --oldest --count "$n" 2>/dev/null
t1=$(now)
echo "drain: $n messages in $(python3 -c "print(f'{$t1 - $t0:.2f}')") s: $(rate "$n" "$t0" "$t1") ($(wc -c <"$work/d.rec") bytes)"
"$S" rm "$q"

# (2) live, against the CLI sender at full speed (a 4 MiB block-mode ring).
"$S" create "$q" --queue --max-msg 64 --capacity 4M
"$S" record "$q" -o "$work/l.rec" --count "$n" 2>"$work/err" &
rec=$!
until grep -q ': recording ' "$work/err"; do sleep 0.01; done
t0=$(now)
"$S" send "$q" --frames <"$work/frames"
t1=$(now)
wait "$rec"
t2=$(now)
echo "live: sender $(rate "$n" "$t0" "$t1"), recorder done after $(rate "$n" "$t0" "$t2")"
echo "cpu: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
