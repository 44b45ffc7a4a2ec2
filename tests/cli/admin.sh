#!/bin/sh
# ls, info, rm, gc and doctor, in text and JSON.
. "$(dirname "$0")/lib.sh"

new_chan a
new_chan b
expect 0 "create a" "$S" create "$a" --max-msg 64
expect 0 "create b" "$S" create "$b" --max-msg 1k
expect 0 "put a" "$S" put "$a" hello
expect 0 "put a again" "$S" put "$a" "hello again"

# get --json
run "$S" get "$a" --json
json_check 'd == {"name": "'"$a"'", "seq": 2, "len": 11, "encoding": "utf-8", "data": "hello again"}' \
    "get --json" "$T/out"

# info, text and JSON.
expect 0 "info" "$S" info "$a"
grep -Eq "^kind +latest$" "$T/out" || fail "info: no kind line"
grep -Eq "^seq +2$" "$T/out" || fail "info: no seq line"
grep -Eq "^bytes +16$" "$T/out" || fail "info: no bytes line"
run "$S" info "$a" --json
json_check 'd["name"] == "'"$a"'" and d["kind"] == "latest" and d["max_msg"] == 64' "info --json" "$T/out"
json_check 'd["seq"] == 2 and d["messages"] == 2 and d["bytes"] == 16 and d["mode"] == "0600"' \
    "info --json counters" "$T/out"
json_check 'd["in_use"] is False and d["file"] is False and d["creator_pid"] > 0' \
    "info --json state" "$T/out"
json_check 'all(k in d for k in ("waits", "recovered", "region_size", "created", "layout_version"))' \
    "info --json fields" "$T/out"

# ls lists both with their figures; with names, just those.
expect 0 "ls" "$S" ls
grep -Eq "^$a +latest +64 +- +- +2 +2 +- +- +- +no$" "$T/out" || fail "ls row of a: $(grep "$a" "$T/out")"
grep -Eq "^$b +latest +1K " "$T/out" || fail "ls row of b: $(grep "$b" "$T/out")"
expect 0 "ls NAME" "$S" ls "$b"
[ "$(wc -l <"$T/out")" -eq 2 ] || fail "ls NAME: $(cat "$T/out")"
run "$S" ls --json
json_check '[c["seq"] for c in d["channels"] if c["name"] == "'"$a"'"] == [2]' "ls --json" "$T/out"
json_check 'all("error" not in c for c in d["channels"])' "ls --json without --all" "$T/out"
expect 0 "ls --all" "$S" ls --all
new_chan missing
expect 1 "ls of a missing channel" "$S" ls "$a" "$missing"
err_is "shmchan: ls $missing: no such channel (SHMCHAN_ENOENT)" "ls of a missing channel"
grep -q "^$a " "$T/out" || fail "ls of a missing channel still lists the other one"

# gc: dry run by default; --force removes only what no process has open.
# (Named channels only: other tests may be using theirs right now.)
bg "$S" watch "$b" --timeout 60 >/dev/null
W=$BG
wait_until "b held open by a watcher" waits_at_least "$b" 1
expect 0 "gc dry run" "$S" gc "$a" "$b"
grep -qx "unused $a" "$T/out" || fail "gc dry run does not list $a: $(cat "$T/out")"
grep -q "$b" "$T/out" && fail "gc dry run lists $b, which is in use"
expect 0 "a still there after the dry run" "$S" info "$a"
expect 0 "gc --force" "$S" gc --force "$a" "$b"
[ "$(cat "$T/out")" = "removed $a" ] || fail "gc --force: '$(cat "$T/out")'"
expect 1 "a removed by gc --force" "$S" info "$a"
expect_out True "b kept: in use" json_field "$b" in_use
expect 0 "gc of all channels (dry run) is safe" "$S" gc
kill "$W"
wait "$W"
expect_out "unused $b" "b unused once its watcher is gone" "$S" gc "$b"

# gc and side wait objects (NAME..wait, read-only readers' notifiers): one
# whose channel is gone, or is another channel now, is collected; one that
# belongs to its channel is left alone; ls never lists them.
new_chan o
expect 0 "create o" "$S" create "$o" --max-msg 64
side=/dev/shm/shmchan.$o..wait
[ -f "$side" ] || fail "o has no side wait object"
expect_out "unused $o" "gc: the channel is unused, its own side object no orphan" "$S" gc "$o"
rm -f "/dev/shm/shmchan.$o" # the channel's file alone, as an older rm did
expect 0 "ls with an orphaned side object" "$S" ls
grep -q -- "$o" "$T/out" && fail "ls lists an orphaned side object: $(grep -- "$o" "$T/out")"
expect 0 "gc dry run of everything" "$S" gc
grep -qx "unused $o..wait" "$T/out" || fail "gc dry run misses the orphan: $(cat "$T/out")"
[ -f "$side" ] || fail "gc dry run removed the orphan"
expect_out "removed $o..wait" "gc --force NAME removes the orphan" "$S" gc --force "$o"
[ -e "$side" ] && fail "the orphan is still there after gc --force"
new_chan p
expect 0 "create p" "$S" create "$p" --max-msg 64
cp "/dev/shm/shmchan.$p..wait" "$T/stale"
expect 0 "rm p" "$S" rm "$p"
expect 0 "create p again (another channel id)" "$S" create "$p" --max-msg 64
expect 0 "put p" "$S" put "$p" kept
bg "$S" watch "$p" --timeout 60 >/dev/null
W=$BG
wait_until "p held open by a watcher" waits_at_least "$p" 1
cat "$T/stale" >"/dev/shm/shmchan.$p..wait" # the former channel's, stale now
expect_out "unused $p..wait" "gc finds the stale side object" "$S" gc "$p"
expect_out "removed $p..wait" "gc --force removes only the stale side object" "$S" gc -f "$p"
[ -e "/dev/shm/shmchan.$p..wait" ] && fail "the stale side object is still there"
expect_out "kept" "p itself is untouched" "$S" get "$p"
kill "$W"
wait "$W"
new_chan q
printf 'not a side object' >"/dev/shm/shmchan.$q..wait"
expect 0 "gc --force of somebody's bytes at a side name" "$S" gc --force "$q"
[ -f "/dev/shm/shmchan.$q..wait" ] || fail "gc --force removed bytes that are no side object"
err_has "$q..wait" "gc reports what it left alone"
rm -f "/dev/shm/shmchan.$q..wait"

# rm: several at once; a missing one is an error unless --force.
new_chan c
expect 0 "create c" "$S" create "$c"
expect 1 "rm b, missing, c" "$S" rm "$b" "$missing" "$c"
err_is "shmchan: rm $missing: no such channel (SHMCHAN_ENOENT)" "rm with a missing one"
expect 1 "b removed" "$S" info "$b"
expect 1 "c removed" "$S" info "$c"
expect 0 "rm -f missing" "$S" rm -f "$missing"

# rm of a channel in use: its users keep it, new opens fail.
new_chan d
expect 0 "create d" "$S" create "$d"
bg "$S" watch "$d" --count 1 --from-now --timeout 60 >"$T/d.out"
W=$BG
wait_until "d watched" waits_at_least "$d" 1
expect 0 "rm d in use" "$S" rm "$d"
expect 1 "d gone by name" "$S" put "$d" x
kill "$W"
wait "$W"

# doctor: runs, exits 0 here, checks what it says.
expect 0 "doctor" "$S" doctor
for check in shm-dir shm-space open-files remove-ipc ofd-locks channels; do
    grep -Eq "^(ok|info|warn) +$check " "$T/out" || fail "doctor: no $check line: $(cat "$T/out")"
done
grep -Eq "^0 failed, [0-9]+ warnings$" "$T/out" || fail "doctor: no summary"
run "$S" doctor --json
json_check 'd["ok"] is True and d["layout_version"] >= 1 and d["channels"]["listed"] is True' \
    "doctor --json" "$T/out"
json_check '{c["name"] for c in d["checks"]} >= {"shm-dir", "shm-space", "open-files", "remove-ipc", "ofd-locks"}' \
    "doctor --json checks" "$T/out"
json_check 'all(c["status"] in ("ok", "info", "warn") for c in d["checks"])' \
    "doctor --json statuses" "$T/out"

finish
