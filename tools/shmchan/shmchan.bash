# bash completion for shmchan: commands, options and channel names. The
# commands and each command's options are read from the tool's own --help,
# so they follow it; channel names from /dev/shm (POSIX shared memory).

_shmchan_commands() {
    "$1" --help 2>/dev/null | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }'
}

_shmchan_channels() {
    local f
    for f in /dev/shm/shmchan.*; do
        [[ -e $f && $f != *..wait ]] && printf '%s\n' "${f#/dev/shm/shmchan.}"
    done
}

_shmchan() {
    local exe=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]} prev=
    local cmd=${COMP_WORDS[1]:-}
    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
    COMPREPLY=()
    if ((COMP_CWORD == 1)); then
        mapfile -t COMPREPLY < <(compgen -W "$(_shmchan_commands "$exe") help" -- "$cur")
        return
    fi
    case $prev in
    -o | --output)
        mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        return ;;
    -s | --sort)
        mapfile -t COMPREPLY < <(compgen -W "name msgs bytes lag drops waits" -- "$cur")
        return ;;
    --policy)
        mapfile -t COMPREPLY < <(compgen -W "block overwrite" -- "$cur")
        return ;;
    --kind)
        mapfile -t COMPREPLY < <(compgen -W "latest queue service" -- "$cur")
        return ;;
    -i | --interval | -t | --timeout | -n | --count | --speed | --max-msg | --capacity | \
        --readers | --writers | --mode | -j | --jobs | --servers | --clients)
        return ;; # a number
    esac
    # serve NAME -- COMMAND ARGS...: after the '--', a command, then its files.
    if [[ $cmd == serve ]]; then
        local i
        for ((i = 2; i < COMP_CWORD; i++)); do
            [[ ${COMP_WORDS[i]} == -- ]] || continue
            if ((COMP_CWORD == i + 1)); then
                mapfile -t COMPREPLY < <(compgen -c -- "$cur")
            else
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
            fi
            return
        done
    fi
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$("$exe" "$cmd" --help 2>/dev/null |
            grep -oE -- '--[a-z][a-z-]*' | sort -u)" -- "$cur")
        return
    fi
    case $cmd in
    help)
        mapfile -t COMPREPLY < <(compgen -W "$(_shmchan_commands "$exe")" -- "$cur") ;;
    cat)
        mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
    replay)
        # FILE, then OLD=NEW renamings of channels.
        if ((COMP_CWORD == 2)); then
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$(_shmchan_channels)" -- "$cur")
        fi ;;
    *)
        # Channel names; a word with a '/' is a file-backed channel's path.
        if [[ $cur == */* ]]; then
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -W "$(_shmchan_channels)" -- "$cur")
        fi ;;
    esac
}

complete -F _shmchan shmchan
