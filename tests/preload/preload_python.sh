#!/usr/bin/env bash
# Test 2: Debian's python3 runs an allocation-heavy self-checking workload
# under LD_PRELOAD; its output must equal an unpreloaded run's.
#   usage: preload_python.sh <libnumaslab.so> <py_workload.py>
set -euo pipefail
source "$(dirname "$0")/common.sh"
check_lib "${1:-}"
NS_LIB=$1
SCRIPT=${2:?usage: $0 <libnumaslab.so> <py_workload.py>}
PY=/usr/bin/python3
[[ -x $PY ]] || skip "$PY is not installed (apt-get install python3)"
$PY -c 'import sqlite3, ctypes, zlib' 2>/dev/null ||
    skip "$PY lacks sqlite3/ctypes/zlib (apt-get install python3)"
make_scratch

# Same hash seed everywhere; no user site, no pyenv, no startup files.
export PYTHONHASHSEED=0 PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1
unset PYTHONSTARTUP PYTHONPATH PYTHONHOME

run() { # run NAME [env assignments...]: run the workload, keep stdout/stderr
    local name=$1 rc=0 t0=$SECONDS
    shift
    env "$@" "$PY" -s -P "$SCRIPT" >"$SCRATCH/$name.out" 2>"$SCRATCH/$name.err" || rc=$?
    if ((rc != 0)); then
        echo "---- stderr of the $name run:" >&2
        tail -30 "$SCRATCH/$name.err" >&2
        echo "---- stdout of the $name run:" >&2
        cat "$SCRATCH/$name.out" >&2
        fail "python3 ($name): $(describe_status $rc)"
    fi
    log "$name run: ok in $((SECONDS - t0)) s"
}

run reference -u LD_PRELOAD
# PYTHONMALLOC=malloc: every object, however small, comes from malloc.
run preload-malloc LD_PRELOAD="$NS_LIB" PYTHONMALLOC=malloc EXPECT_NUMASLAB=1
# default pymalloc: arenas and large objects come from malloc/mmap.
# (and immediate decay: empty SuperSlabs and large mappings unmapped at once)
run preload-pymalloc LD_PRELOAD="$NS_LIB" EXPECT_NUMASLAB=1 NUMASLAB_DECAY_MS=0 NUMASLAB_VERBOSE=1

grep -q '^done: ' "$SCRATCH/reference.out" || fail "the reference run did not finish"
for name in preload-malloc preload-pymalloc; do
    no_reports "$SCRATCH/$name.err" "python3 ($name)"
    grep -q 'numaslab in use' "$SCRATCH/$name.err" ||
        fail "$name: the numaslab checks did not run: $(cat "$SCRATCH/$name.err")"
    if ! cmp -s "$SCRATCH/reference.out" "$SCRATCH/$name.out"; then
        show_diff "$SCRATCH/reference.out" "$SCRATCH/$name.out" "python3 workload digests"
        fail "$name: output differs from the run without LD_PRELOAD"
    fi
done
log "all $(wc -l <"$SCRATCH/reference.out") digest lines identical with and without preload"
log "PASS"
