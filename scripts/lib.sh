# Shared by the scripts: package installation and build helpers.

# Install the Debian packages whose commands or files are missing.
# Usage: need_packages "pkg:probe" ... ; probe is a command name or an absolute path.
need_packages() {
    local missing=()
    for spec in "$@"; do
        local pkg=${spec%%:*} probe=${spec#*:}
        if [[ $probe == /* ]]; then
            [[ -e $probe ]] && continue
        else
            command -v "$probe" >/dev/null 2>&1 && continue
        fi
        missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    echo "== installing: ${missing[*]}"
    local sudo=""
    [[ $(id -u) -ne 0 ]] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

need_build_tools() {
    need_packages gcc:gcc make:make cmake:cmake pkg-config:pkg-config \
        python3:python3 libc6-dev:/usr/include/stdio.h
}

jobs() {
    nproc 2>/dev/null || echo 2
}
