#!/bin/sh
# File-backed channels: a NAME with a '/' is a path; they persist as files.
. "$(dirname "$0")/lib.sh"

cd "$T" || exit 1

# ./x is a file in the current directory; plain x would be shared memory.
expect 0 "create ./chan" "$S" create ./chan --max-msg 128 --mode 0640
[ -f chan ] || fail "no file ./chan after create"
[ "$(stat -c %a chan)" = 640 ] || fail "mode of ./chan is $(stat -c %a chan)"
expect 1 "plain name is not the file" "$S" get chan
err_is "shmchan: get chan: no such channel (SHMCHAN_ENOENT)" "plain name is not the file"
expect 0 "put ./chan" "$S" put ./chan "persisted"
expect_out persisted "get ./chan" "$S" get ./chan
expect_out persisted "get by absolute path" "$S" get "$T/chan"
printf '\0\377\0' >bin
expect 0 "put binary to a file channel" "$S" put ./chan <bin
run "$S" get ./chan
cmp -s bin "$T/out" || fail "file channel binary round trip"

# watch works on files too.
expect 0 "put text" "$S" put ./chan text
expect_out "3 text" "watch ./chan" "$S" watch ./chan --count 1 --seq

# info and ls by path.
run "$S" info ./chan --json
json_check 'd["file"] is True and d["name"] == "./chan" and d["max_msg"] == 128 and d["seq"] == 3' \
    "info --json of a file" "$T/out"
expect 0 "ls ./chan" "$S" ls ./chan
grep -Eq '^\./chan +latest +128 ' "$T/out" || fail "ls ./chan: $(cat "$T/out")"

# gc by path: unused, so listed; removed with --force.
expect_out "unused ./chan" "gc ./chan" "$S" gc ./chan
[ -f chan ] || fail "gc dry run removed the file"

# rm removes channel files, but not files that are not channels.
echo "my notes" >notes.txt
expect 1 "rm a file that is not a channel" "$S" rm ./notes.txt
err_is "shmchan: rm ./notes.txt: not removed: not a shmchan channel (SHMCHAN_EBADMAGIC); use --force to remove it anyway" \
    "rm a file that is not a channel"
[ -f notes.txt ] || fail "rm removed notes.txt"
expect 1 "get on a foreign file" "$S" get ./notes.txt
err_is "shmchan: get ./notes.txt: not a shmchan channel (SHMCHAN_EBADMAGIC)" "get on a foreign file"
expect 0 "rm ./chan" "$S" rm ./chan
[ ! -e chan ] || fail "rm ./chan left the file"
expect 0 "rm --force of a non-channel" "$S" rm --force ./notes.txt
[ ! -e notes.txt ] || fail "rm --force left notes.txt"
expect 1 "create in a missing directory" "$S" create ./no/such/dir/chan
err_has "shmchan: create ./no/such/dir/chan: " "create in a missing directory"

finish
