#!/usr/bin/env bash
# Test 1: LD_PRELOAD=libnumaslab.so is really loaded and owns the malloc family.
#   usage: preload_effective.sh <libnumaslab.so> <probe program>
set -euo pipefail
source "$(dirname "$0")/common.sh"
check_lib "${1:-}"
NS_LIB=$1
PROBE=${2:?usage: $0 <libnumaslab.so> <probe>}
[[ -x $PROBE ]] || fail "probe program '$PROBE' is not built"
make_scratch

# 1. ld.so must accept the library: a failed preload is only a warning on
# stderr ("object ... cannot be preloaded ... ignored"), so look at stderr.
rc=0
preloaded /bin/true 2>"$SCRATCH/true.err" || rc=$?
((rc == 0)) || fail "LD_PRELOAD=$NS_LIB /bin/true: $(describe_status $rc): $(cat "$SCRATCH/true.err")"
[[ ! -s $SCRATCH/true.err ]] || fail "the dynamic loader complained: $(cat "$SCRATCH/true.err")"
log "ld.so accepts the library"

# 2. the probe, linked normally, sees numaslab only when preloaded.
rc=0
plain "$PROBE" absent >"$SCRATCH/absent.out" 2>&1 || rc=$?
cat "$SCRATCH/absent.out"
((rc == 0)) || fail "probe without preload: $(describe_status $rc)"
rc=0
preloaded "$PROBE" numaslab >"$SCRATCH/numaslab.out" 2>&1 || rc=$?
cat "$SCRATCH/numaslab.out"
((rc == 0)) || fail "probe under LD_PRELOAD: $(describe_status $rc) (see the FAIL lines above)"
grep -q '^probe numaslab: ok' "$SCRATCH/numaslab.out" || fail "probe did not report success"

# 3. a program from the distribution: the library is mapped in its process.
real_lib=$(readlink -f "$NS_LIB")
maps_py='import sys
maps = open("/proc/self/maps").read()
print("mapped" if sys.argv[1] in maps else "absent")'
if [[ -x /usr/bin/python3 ]]; then
    got=$(preloaded /usr/bin/python3 -c "$maps_py" "$real_lib")
    [[ $got == mapped ]] || fail "python3 under LD_PRELOAD: $real_lib is not in /proc/self/maps"
    got=$(plain /usr/bin/python3 -c "$maps_py" "$real_lib")
    [[ $got == absent ]] || fail "python3 without LD_PRELOAD maps $real_lib?"
    log "python3: library mapped only when preloaded"
fi
n=$(preloaded /bin/cat /proc/self/maps | grep -c -F "$real_lib" || true)
((n > 0)) || fail "cat /proc/self/maps under LD_PRELOAD does not show $real_lib"
n=$(preloaded /bin/bash -c 'cat /proc/$$/maps' | grep -c -F "$real_lib" || true)
((n > 0)) || fail "bash under LD_PRELOAD does not map $real_lib"
log "cat and bash: library mapped"
log "PASS"
