#!/usr/bin/env bash
# Test 4: a C++ program (new/delete, aligned new, sized delete, containers,
# 16 threads passing unique_ptr<Blob>s) passes with and without the preload.
#   usage: preload_cxx.sh <libnumaslab.so> <ns_preload_cxx program>
set -euo pipefail
source "$(dirname "$0")/common.sh"
check_lib "${1:-}"
NS_LIB=$1
PROG=${2:?usage: $0 <libnumaslab.so> <program>}
[[ -x $PROG ]] || fail "'$PROG' is not built"
make_scratch

run() { # run NAME env...: the program must exit 0 and print its ok line
    local name=$1 rc=0 t0=$SECONDS
    shift
    env "$@" "$PROG" >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" || rc=$?
    if ((rc != 0)); then
        cat "$SCRATCH/$name.err" "$SCRATCH/$name.out" >&2
        fail "C++ workload ($name): $(describe_status $rc)"
    fi
    grep -q '^cxx_workload: ok (0 failures' "$SCRATCH/$name.out" ||
        fail "C++ workload ($name) did not report success: $(cat "$SCRATCH/$name.out" "$SCRATCH/$name.err")"
    log "$name: $(cat "$SCRATCH/$name.out") in $((SECONDS - t0)) s"
}

run plain -u LD_PRELOAD -u EXPECT_NUMASLAB
# default options, twice (threads interleave differently each time); then
# without thread caches and with immediate decay (every free reaches the
# shared pools, every empty SuperSlab / large mapping is unmapped at once);
# then with statistics printed at exit.
run preloaded-1 LD_PRELOAD="$NS_LIB" EXPECT_NUMASLAB=1
run preloaded-2 LD_PRELOAD="$NS_LIB" EXPECT_NUMASLAB=1
run preloaded-nocache LD_PRELOAD="$NS_LIB" EXPECT_NUMASLAB=1 NUMASLAB_VERBOSE=1 \
    NUMASLAB_TCACHE_BYTES=0 NUMASLAB_DECAY_MS=0 NUMASLAB_LARGE_CACHE=0
run preloaded-stats LD_PRELOAD="$NS_LIB" EXPECT_NUMASLAB=1 NUMASLAB_STATS=1 NUMASLAB_VERBOSE=1
for name in preloaded-1 preloaded-2 preloaded-nocache preloaded-stats; do
    grep -q 'numaslab in use' "$SCRATCH/$name.out" || fail "$name: the program did not check numaslab"
    no_reports "$SCRATCH/$name.err" "$name"
done
grep -qE '^numaslab: [0-9]+ node\(s\)' "$SCRATCH/preloaded-stats.err" ||
    fail "NUMASLAB_STATS=1 printed no statistics at exit: $(head -5 "$SCRATCH/preloaded-stats.err")"
log "NUMASLAB_STATS=1: $(grep -E '^numaslab: [0-9]+ node' "$SCRATCH/preloaded-stats.err")"
log "PASS"
