#!/usr/bin/env bash
# Test 7: on a one-node machine a preloaded program maps neither hwloc nor
# its dependencies (libudev) nor libnuma: libnumaslab has no DT_NEEDED on
# them and opens libhwloc.so.15 with dlopen only when more than one node is
# online (src/numa/topo.c; tests/numa-vm checks that it does there).
# SKIP (77) on a machine with more than one node.
#   usage: preload_no_hwloc.sh <libnumaslab.so> [<libnumaslab-hardened.so>]
set -euo pipefail
source "$(dirname "$0")/common.sh"
check_lib "${1:-}"
NS_LIB=$1
HARDENED=${2:-}
make_scratch

online=$(cat /sys/devices/system/node/online 2>/dev/null || echo 0)
[[ $online == 0 ]] || skip "this machine has nodes $online online: hwloc is loaded here by design"
bad='libhwloc\.so|libudev\.so|libnuma\.so'

# 1. no DT_NEEDED on them
for lib in "$NS_LIB" $HARDENED; do
    needed=$(LC_ALL=C readelf -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
    grep -qE "$bad" <<<"$needed" && fail "$(basename "$lib") needs: $needed"
    log "$(basename "$lib") needs only: $needed"
done

# 2. nothing of them mapped in processes that allocate (the constructor
# that loads the topology ran): cat, python3, and sort through bash
for lib in "$NS_LIB" $HARDENED; do
    NS_LIB=$lib
    preloaded cat /proc/self/maps >"$SCRATCH/cat.maps"
    grep -q "$(basename "$(readlink -f "$lib")")" "$SCRATCH/cat.maps" || fail "cat: $lib is not mapped (preload not in effect?)"
    grep -E "$bad" "$SCRATCH/cat.maps" && fail "cat under $(basename "$lib") maps the lines above"
    if command -v python3 >/dev/null; then
        preloaded python3 -c '
import sys
x = [str(i) * 8 for i in range(20000)]
sys.stdout.write(open("/proc/self/maps").read())' >"$SCRATCH/py.maps"
        grep -E "$bad" "$SCRATCH/py.maps" && fail "python3 under $(basename "$lib") maps the lines above"
    fi
    preloaded bash -c 'seq 1000 | sort -n >/dev/null; cat /proc/$$/maps' >"$SCRATCH/bash.maps"
    grep -E "$bad" "$SCRATCH/bash.maps" && fail "bash under $(basename "$lib") maps the lines above"
    log "$(basename "$lib"): cat, python3 and bash map no libhwloc, libudev or libnuma"
done
log "ok"
