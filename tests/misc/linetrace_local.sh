#!/usr/bin/env bash
# Thread-local work shares no cache line: 4 threads (more than the cores
# of a small machine) each allocate and free their own blocks (bench
# mthread: random sizes up to 32 KiB, contents checked), under
# libnumaslab-linetrace.so, which records the last thread to write each
# 64-byte line the allocator writes.  Fails when the allocator writes a
# line last written by another thread more than once per 1000 operations
# (the fixed cost of starting and ending threads is ~0.15; a design that
# mixes blocks of several threads in one slab line had 7-9).
#   linetrace_local.sh LINETRACE_LIB MTHREAD_BIN
set -euo pipefail
lib=$1 bin=$2
limit=1.0
out=$(bash "$(dirname "$0")/../../bench/numa/linetrace.sh" --lib "$lib" --sites 5 -- "$bin" 4 1000000)
echo "$out"
per=$(sed -n 's/.*(\([0-9.]*\) per 1000 ops).*/\1/p' <<<"$out")
ops=$(sed -n 's/^linetrace: ops \([0-9]*\).*/\1/p' <<<"$out")
[[ -n $per && -n $ops ]] || { echo "FAIL: no linetrace report"; exit 1; }
# the workload's own count: 4 threads x 1000000 iterations, a free and a malloc each
(( ops >= 8000000 )) || { echo "FAIL: $ops operations counted, expected at least 8000000"; exit 1; }
if python3 -c "import sys; sys.exit(0 if float('$per') <= $limit else 1)"; then
    echo "ok: $per cross-thread line writes per 1000 operations (limit $limit)"
else
    echo "FAIL: $per cross-thread line writes per 1000 operations on thread-local work (limit $limit)"
    exit 1
fi
