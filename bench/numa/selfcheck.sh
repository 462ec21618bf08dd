#!/usr/bin/env bash
# selfcheck.sh - the workloads' checks bite: each workload of issue 12 runs
# once (tiny size, 2 threads) under broken_alloc.c, a malloc that now and then
# hands out a block that is still in use, and must fail its self-check
# (exit 2, "SELFCHECK FAILED" on stderr); and once under glibc, where it must
# pass.  ctest bench_selfcheck runs it.
#
#   bench/numa/selfcheck.sh [--out DIR]
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=""
[ "${1:-}" = --out ] && out=$2
out=${out:-$(mktemp -d /tmp/numaslab-selfcheck.XXXXXX)}
mkdir -p "$out" || { echo "selfcheck.sh: cannot create $out" >&2; exit 1; }
command -v gcc >/dev/null || { echo "selfcheck.sh: gcc is missing" >&2; exit 1; }
gcc -O2 -shared -fPIC -o "$out/broken_alloc.so" "$here/broken_alloc.c" || exit 1
# name|binary|arguments (THREADS first)
cases=(
    "mthread|mthread|2 200000 256"
    "rptest|rptest|2 2000 200 20 2"
    "mstress|mstress|2 3 50000 100 200"
    "larson_orig|larson|2 20 10000 1000 10 1000 larson_orig"
    "latency|latency|2 20000 200000 256 2"
    "growth|growth|2 400 200000 262144 8"
)
fail=0
for c in "${cases[@]}"; do
    IFS='|' read -r name bin args <<<"$c"
    [ -x "$out/$bin" ] || gcc -O2 -Wall -Wextra -pthread -o "$out/$bin" "$here/$bin.c" || exit 1
    # shellcheck disable=SC2086
    "$out/$bin" $args >"$out/$name.glibc.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL: $name fails under glibc (exit $rc): $(tail -1 "$out/$name.glibc.out")"
        fail=1
    fi
    # shellcheck disable=SC2086
    LD_PRELOAD=$out/broken_alloc.so "$out/$bin" $args >"$out/$name.broken.out" 2>&1
    rc=$?
    if [ $rc -eq 2 ] && grep -q 'SELFCHECK FAILED' "$out/$name.broken.out"; then
        echo "ok: $name notices the broken allocator: $(grep -m1 'SELFCHECK FAILED' "$out/$name.broken.out" | cut -c1-100)"
    else
        echo "FAIL: $name does not notice a block handed out twice (exit $rc)"
        fail=1
    fi
done
exit $fail
