#!/bin/sh
# Manual pages and completion: every command in the tool's table (its
# --help) has a section in docs/cli.md and a rendered page, every option of
# its --help is in that page, and bash completion offers commands, options
# and channel names.
. "$(dirname "$0")/lib.sh"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
MAN=$(dirname "$S")/man
"$S" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }' \
    >"$T/cmds"
[ "$(wc -l <"$T/cmds")" -ge 17 ] || fail "commands in --help: $(cat "$T/cmds")"
[ -f "$MAN/shmchan.1" ] || fail "no $MAN/shmchan.1 (is pandoc installed?)"
while read -r c; do
    grep -qx "### $c" "$SRC/docs/cli.md" || fail "docs/cli.md has no section for $c"
    page=$MAN/shmchan-$c.1
    if [ ! -f "$page" ]; then
        fail "no manual page for $c"
        continue
    fi
    sed 's/\\-/-/g' "$page" >"$T/page"
    grep -q "^\.TH \"SHMCHAN-$(echo "$c" | tr a-z A-Z)\" \"1\"" "$page" || fail "$c: no .TH line"
    grep -q "^shmchan-$c - " "$T/page" || fail "$c: no NAME line"
    for o in $("$S" "$c" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
        grep -qF -- "$o" "$T/page" || fail "shmchan-$c(1) lacks $o of 'shmchan $c --help'"
    done
    grep -q "shmchan-$c" "$MAN/shmchan.1" || fail "shmchan(1) does not refer to shmchan-$c"
done <"$T/cmds"

# Completion, in bash.
command -v bash >/dev/null || skip "no bash"
new_chan ch
expect 0 "create" "$S" create "$ch"
# complete WORD...: the completions of the last word.
complete_words() {
    bash -c '
        . "$1"
        shift
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        _shmchan
        printf "%s\n" "${COMPREPLY[@]}"' _ "$SRC/tools/shmchan/shmchan.bash" "$@" | sort | tr '\n' ' '
}
[ "$(complete_words "$S" rec)" = "record recv " ] || fail "complete 'rec': $(complete_words "$S" rec)"
[ "$(complete_words "$S" record --o)" = "--oldest --output " ] ||
    fail "complete 'record --o': $(complete_words "$S" record --o)"
[ "$(complete_words "$S" top --sort m)" = "msgs " ] || fail "complete '--sort m'"
[ "$(complete_words "$S" follow "$ch")" = "$ch " ] || fail "complete a channel: $(complete_words "$S" follow "$ch")"
[ "$(complete_words "$S" help fo)" = "follow " ] || fail "complete 'help fo'"

finish
