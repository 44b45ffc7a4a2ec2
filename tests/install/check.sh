#!/usr/bin/env bash
# Install the build into a scratch prefix, then build a program against it
# with find_package (shared and static) and with pkg-config, and run them.
set -euo pipefail
build=$1
src=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
test -f "$prefix/include/shmchan/shmchan.h"
if [[ -x $build/tools/shmchan/shmchan ]]; then
    test -x "$prefix/bin/shmchan" || { echo "CLI built but not installed"; exit 1; }
    # Its manual pages (one per command of its --help) and bash completion.
    for c in "" $("$prefix/bin/shmchan" --help |
        awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print "-" $1 } on && /^$/ { on = 0 }'); do
        test -s "$prefix/share/man/man1/shmchan$c.1" || { echo "shmchan$c.1 not installed"; exit 1; }
    done
    test -s "$prefix/share/bash-completion/completions/shmchan" ||
        { echo "bash completion not installed"; exit 1; }
fi

cmake -S "$src" -B "$work/b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/b" >/dev/null
LD_LIBRARY_PATH="$prefix/lib:${LD_LIBRARY_PATH:-}" "$work/b/consumer_shared" "inst-$$-a"
"$work/b/consumer_static" "inst-$$-b"
if ldd "$work/b/consumer_static" | grep -q libshmchan; then
    echo "static consumer links libshmchan dynamically"; exit 1
fi

pcdir=$(dirname "$(find "$prefix" -name shmchan.pc | head -n1)")
export PKG_CONFIG_PATH=$pcdir
# shellcheck disable=SC2046
cc -std=c11 -o "$work/pc" "$src/consumer.c" $(pkg-config --cflags --libs shmchan)
LD_LIBRARY_PATH="$prefix/lib" "$work/pc" "inst-$$-c"
# shellcheck disable=SC2046
cc -std=c11 -o "$work/pcs" "$src/consumer.c" $(pkg-config --static --cflags shmchan) \
    "$prefix/lib/libshmchan.a" $(pkg-config --static --libs-only-l shmchan | sed 's/-lshmchan//')
"$work/pcs" "inst-$$-d"
echo "install check passed: find_package (shared, static) and pkg-config (shared, static)"
