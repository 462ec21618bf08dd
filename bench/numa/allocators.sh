# shellcheck shell=bash
# allocators.sh - sourced by run.sh and numa-vm.sh: the allocators a benchmark
# compares and the libraries that get preloaded for them (Debian packages).
#
#   select_allocators LIB "REQUESTED LIST" NAME [EXTRA_NAME=PATH ...]
#
# Sets alib[name] = library to LD_PRELOAD ("" for glibc, LIB for numaslab)
# and allocs = the requested allocators that are installed (default: all
# five), in order; an unknown name is fatal, one not installed is skipped
# with a line on stderr naming NAME (the calling script).
#
# Each EXTRA_NAME=PATH (the scripts' --extra option, repeatable) adds one more
# preloaded library as an allocator of its own, e.g. numaslab-prev=/tmp/old.so
# to set an earlier build beside the current one: it is measured in the same
# rotation as the others and reported as its own column.  Extras come after
# the requested list (or where that list names them); a missing file, a name
# of the table above or a repeated name is fatal.  Sets extras = their names.
select_allocators() {
    local libdir=/usr/lib/x86_64-linux-gnu a e name path req
    declare -gA alib=([numaslab]=$1 [glibc]="" [mimalloc]=$libdir/libmimalloc.so.2
        [jemalloc]=$libdir/libjemalloc.so.2 [tcmalloc]=$libdir/libtcmalloc_minimal.so.4)
    extras=()
    for e in "${@:4}"; do
        name=${e%%=*} path=${e#*=}
        [[ $e == *=* && $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ && -n $path ]] ||
            { echo "$3: --extra wants NAME=PATH (NAME of letters, digits, . _ -), got '$e'" >&2; exit 1; }
        [ -v "alib[$name]" ] && { echo "$3: --extra $name: the name is taken" >&2; exit 1; }
        [ -f "$path" ] || { echo "$3: --extra $name: no such file $path" >&2; exit 1; }
        alib[$name]=$(readlink -f "$path")
        extras+=("$name")
    done
    req=${2:-numaslab glibc mimalloc jemalloc tcmalloc}
    for e in "${extras[@]}"; do
        [[ " $req " == *" $e "* ]] || req="$req $e"
    done
    allocs=()
    for a in $req; do
        [ -v "alib[$a]" ] || { echo "$3: unknown allocator $a" >&2; exit 1; }
        if [ -n "${alib[$a]}" ] && [ ! -f "${alib[$a]}" ]; then
            echo "$3: $a not installed (${alib[$a]}), skipped" >&2
            continue
        fi
        allocs+=("$a")
    done
}
