# Issue 12, the filesystem, through the CLI: a FIFO, a socket or a dangling
# symlink named like a channel hangs no command (ls, gc, gc --force, doctor,
# info; each runs under timeout(1), so a hang fails with 124); rm without
# --force removes only what it recognised as a channel; create --mode takes
# permission bits only and reports a different mode on an existing channel.
#
# Runs in a private mount namespace with its own tmpfs on /dev/shm (unshare
# -m: needs root), so that what it plants there is seen by nobody else.

if [ -z "${SHMCHAN_FS_NS:-}" ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null; then
        echo "FAIL: needs root and unshare(1) for a private /dev/shm" >&2
        exit 1
    fi
    SHMCHAN_FS_NS=1 exec unshare -m --propagation private sh -c \
        'mount -t tmpfs -o size=4m,mode=1777 shmchan-cli /dev/shm && exec sh "$0" "$@"' "$0" "$@"
fi

. "$(dirname "$0")/lib.sh"

TO="timeout ${SHMCHAN_FS_TIMEOUT:-20}"
mkfifo /dev/shm/shmchan.evil-fifo || fail "mkfifo"
python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
    /dev/shm/shmchan.evil-sock || fail "socket"
ln -s /nonexistent /dev/shm/shmchan.evil-link || fail "symlink"
new_chan good
expect 0 "create good" "$S" create "$good"

# Nothing hangs; listing and gc report the odd entries and go on.
expect 0 "ls" $TO "$S" ls
grep -q "^$good " "$T/out" || fail "ls does not list $good: $(cat "$T/out")"
err_has "3 channels cannot be read" "ls counts the odd entries"
expect 0 "ls --all" $TO "$S" ls --all
grep -q "^evil-fifo .*SHMCHAN_EUNSAFE" "$T/out" || fail "ls --all: $(cat "$T/out")"
expect 1 "info on a FIFO" $TO "$S" info evil-fifo
err_is "shmchan: info evil-fifo: unsafe object: not a regular file, or another user's non-channel (SHMCHAN_EUNSAFE)" "info on a FIFO"
expect 0 "doctor" $TO "$S" doctor
grep -q "evil-fifo: unsafe object" "$T/out" || fail "doctor does not report the FIFO: $(cat "$T/out")"
expect 0 "gc" $TO "$S" gc
grep -qx "unused $good" "$T/out" || fail "gc: $(cat "$T/out")"
err_has "gc evil-fifo: unsafe object" "gc reports the FIFO"
# Only what could not be inspected: status 0, as docs/cli.md says.
expect 0 "gc --force of a FIFO alone" $TO "$S" gc --force evil-fifo
printf 'not a channel, just bytes' >/dev/shm/shmchan.garbage
expect 0 "gc --force of foreign bytes alone" $TO "$S" gc --force garbage
err_has "gc garbage: not a shmchan channel (SHMCHAN_EBADMAGIC)" "gc --force reports foreign bytes"
[ -e /dev/shm/shmchan.garbage ] || fail "gc --force removed foreign bytes"
rm -f /dev/shm/shmchan.garbage
expect 0 "gc --force" $TO "$S" gc --force
grep -qx "removed $good" "$T/out" || fail "gc --force: $(cat "$T/out")"
[ -p /dev/shm/shmchan.evil-fifo ] || fail "gc --force removed the FIFO"

# File paths: a FIFO there hangs nothing either.
mkfifo "$T/fifo"
expect 1 "info on a FIFO path" $TO "$S" info "$T/fifo"
err_has "SHMCHAN_EUNSAFE" "info on a FIFO path"
expect 1 "create at a FIFO path" $TO "$S" create "$T/fifo"

# rm without --force removes only channels.
for n in evil-fifo evil-sock evil-link; do
    expect 1 "rm $n" $TO "$S" rm "$n"
    err_has "not removed" "rm $n"
done
[ -p /dev/shm/shmchan.evil-fifo ] || fail "rm removed the FIFO"
[ -S /dev/shm/shmchan.evil-sock ] || fail "rm removed the socket"
[ -L /dev/shm/shmchan.evil-link ] || fail "rm removed the symlink"
expect 1 "rm a FIFO path" $TO "$S" rm "$T/fifo"
[ -p "$T/fifo" ] || fail "rm removed the FIFO path"
# A channel its user cannot read (nobody's, mode 0200) is not recognised.
if command -v setpriv >/dev/null; then
    new_chan unread
    expect 0 "create unread" "$S" create "$unread" --mode 0600
    chown 65534:65534 "/dev/shm/shmchan.$unread" && chmod 0200 "/dev/shm/shmchan.$unread"
    expect 1 "rm of an unreadable channel" setpriv --reuid=65534 --regid=65534 \
        --clear-groups "$S" rm "$unread"
    err_has "SHMCHAN_EACCES" "rm of an unreadable channel"
    [ -e "/dev/shm/shmchan.$unread" ] || fail "rm removed a channel its user cannot read"
else
    fail "setpriv not found: install util-linux"
fi
expect 0 "rm --force removes them" "$S" rm --force evil-fifo evil-sock evil-link "$T/fifo"
[ -e /dev/shm/shmchan.evil-fifo ] && fail "rm --force left the FIFO"
[ -L /dev/shm/shmchan.evil-link ] && fail "rm --force left the symlink"

# create --mode: permission bits only; a different mode on an existing one is
# reported (status 1) and not changed.
new_chan m
for bad in 7777 4600 1777 10600; do
    expect 2 "create --mode $bad" "$S" create "$m" --mode "$bad"
done
[ -e "/dev/shm/shmchan.$m" ] && fail "a bad --mode created the channel"
expect 0 "create --mode 0640" "$S" create "$m" --mode 0640
expect 0 "create again, same mode" "$S" create "$m" --mode 0640
expect 0 "create again, no mode" "$S" create "$m"
expect 1 "create again, other mode" "$S" create "$m" --mode 0600
err_has "exists with mode 0640, not the 0600 asked for" "create with another mode"
[ "$(stat -c %a "/dev/shm/shmchan.$m")" = 640 ] || fail "mode changed"

finish
