#!/usr/bin/env bash
# fastpath.sh - instructions per malloc/free pair on the thread-cache path,
# counted by callgrind (deterministic, immune to machine noise).
#
#   bench/numa/fastpath.sh [--lib PATH/libnumaslab.so] [--n N] [--sizes "16 64 256 1024"] [--out DIR]
#                          [--only numaslab] [--budget INSTR]
# --only: measure only that allocator; --budget: exit 1 if numaslab's
# allocator instructions per pair exceed INSTR at any size (the test
# suite's check of the fast path, tests/misc).
#
# For each installed allocator and size, runs `fastpath N SIZE` and
# `fastpath 2N SIZE` under valgrind --tool=callgrind with LD_PRELOAD set in
# valgrind's environment (valgrind passes it on to the client; the
# instrumented process is the client itself, and its FASTPATH line names the
# malloc library it found mapped, which is checked).  Instructions per pair =
# (Ir(2N) - Ir(N)) / N, so start-up and exit cancel out; the loop itself
# (free + malloc + one store + index arithmetic) adds about 6 instructions to
# every allocator alike; callgrind_annotate gives the Ir of main() itself,
# which is subtracted for the second table (allocator instructions only:
# malloc + free and whatever they call).  Writes DIR/fastpath.csv and prints
# both tables.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lib="" n=200000 sizes="16 64 256 1024" out="" only="" budget=""
while [ $# -gt 0 ]; do
    case "$1" in
    --lib) lib=$2; shift 2 ;;
    --n) n=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "fastpath.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
command -v valgrind >/dev/null || { echo "fastpath.sh: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
if [ -z "$lib" ]; then
    for c in "$here/../../build/libnumaslab.so" "$here/../../build-release/libnumaslab.so"; do
        [ -f "$c" ] && { lib=$(readlink -f "$c"); break; }
    done
fi
[ -n "$lib" ] && [ -f "$lib" ] || { echo "fastpath.sh: libnumaslab.so not found; pass --lib PATH" >&2; exit 1; }
out=${out:-$(mktemp -d /tmp/numaslab-fastpath.XXXXXX)}
mkdir -p "$out"
gcc -O2 -o "$out/fastpath" "$here/fastpath.c"

libdir=/usr/lib/x86_64-linux-gnu
declare -a names=(numaslab glibc) libs=("$lib" "")
for pair in "mimalloc:$libdir/libmimalloc.so.2" "jemalloc:$libdir/libjemalloc.so.2" "tcmalloc:$libdir/libtcmalloc_minimal.so.4"; do
    [ -f "${pair#*:}" ] && { names+=("${pair%%:*}"); libs+=("${pair#*:}"); }
done

if [ -n "$only" ]; then
    for i in "${!names[@]}"; do
        [ "${names[$i]}" = "$only" ] || { unset 'names[i]'; unset 'libs[i]'; }
    done
fi

ir() { # ir ALLOC_INDEX N SIZE -> total Ir of the client
    local f="$out/cg.${names[$1]}.$2.$3"
    LD_PRELOAD="${libs[$1]}" valgrind --tool=callgrind --callgrind-out-file="$f.out" \
        "$out/fastpath" "$2" "$3" >"$f.stdout" 2>"$f.stderr" || { echo "fastpath.sh: run failed, see $f.stderr" >&2; exit 1; }
    local got
    got=$(sed -n 's/.*lib=\([a-z]*\).*/\1/p' "$f.stdout")
    [ "$got" = "${names[$1]}" ] || { echo "fastpath.sh: expected ${names[$1]} in the client, found '$got' ($f.stdout)" >&2; exit 1; }
    awk '/^summary:/ {print $2}' "$f.out"
}

mainir() { # Ir spent in main() itself (the loop), from callgrind_annotate
    callgrind_annotate "$out/cg.${names[$1]}.$2.$3.out" 2>/dev/null | awk '/:main \[/ {gsub(",", "", $1); if (!done) print $1; done = 1}'
}

echo "allocator,size,n,ir_n,ir_2n,instr_per_pair,loop_per_pair,alloc_per_pair" >"$out/fastpath.csv"
for s in $sizes; do
    for i in "${!names[@]}"; do
        a=$(ir "$i" "$n" "$s")
        b=$(ir "$i" $((2 * n)) "$s")
        ma=$(mainir "$i" "$n" "$s"); mb=$(mainir "$i" $((2 * n)) "$s")
        echo "${names[$i]},$s,$n,$a,$b,$(awk -v a="$a" -v b="$b" -v ma="${ma:-0}" -v mb="${mb:-0}" -v n="$n" \
            'BEGIN {printf "%.1f,%.1f,%.1f", (b - a) / n, (mb - ma) / n, (b - a - (mb - ma)) / n}')" >>"$out/fastpath.csv"
    done
done
python3 - "$out/fastpath.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
allocs = list(dict.fromkeys(r["allocator"] for r in rows))
sizes = list(dict.fromkeys(r["size"] for r in rows))
for col, title in (("instr_per_pair", "instructions per malloc+free pair, loop included (callgrind, (Ir(2N)-Ir(N))/N, N=%s)"),
                   ("alloc_per_pair", "allocator instructions per malloc+free pair (the above minus main()'s own, N=%s)")):
    v = {(r["allocator"], r["size"]): float(r[col]) for r in rows}
    print(title % rows[0]["n"])
    print("%-10s" % "allocator" + "".join("%10s" % (s + " B") for s in sizes))
    for a in allocs:
        print("%-10s" % a + "".join("%10.1f" % v[(a, s)] for s in sizes))
    print()
PY
echo "(csv: $out/fastpath.csv)"
if [ -n "$budget" ]; then
    over=$(awk -F, -v b="$budget" '$1 == "numaslab" && $8 > b {print $2 " B: " $8}' "$out/fastpath.csv")
    if [ -n "$over" ]; then
        echo "fastpath.sh: over the budget of $budget instructions per malloc+free pair: $over" >&2
        exit 1
    fi
    echo "fastpath.sh: numaslab within the budget of $budget instructions per malloc+free pair"
fi
