# allocators.sh - sourced by run.sh and numa-vm.sh: the allocators a benchmark
# compares and the libraries that get preloaded for them (Debian packages).
#
#   select_allocators LIB "REQUESTED LIST" NAME
#
# Sets alib[name] = library to LD_PRELOAD ("" for glibc, LIB for numaslab)
# and allocs = the requested allocators that are installed (default: all
# five), in order; an unknown name is fatal, one not installed is skipped
# with a line on stderr naming NAME (the calling script).
select_allocators() {
    local libdir=/usr/lib/x86_64-linux-gnu a
    declare -gA alib=([numaslab]=$1 [glibc]="" [mimalloc]=$libdir/libmimalloc.so.2
        [jemalloc]=$libdir/libjemalloc.so.2 [tcmalloc]=$libdir/libtcmalloc_minimal.so.4)
    allocs=()
    for a in ${2:-numaslab glibc mimalloc jemalloc tcmalloc}; do
        [ -v "alib[$a]" ] || { echo "$3: unknown allocator $a" >&2; exit 1; }
        if [ -n "${alib[$a]}" ] && [ ! -f "${alib[$a]}" ]; then
            echo "$3: $a not installed (${alib[$a]}), skipped" >&2
            continue
        fi
        allocs+=("$a")
    done
}
