#!/usr/bin/env bash
# numa-vm.sh - the NUMA locality workload (numa_local.c) for every allocator,
# inside qemu VMs with several NUMA nodes (tests/numa-vm/run-in-numa-vm.sh),
# for machines that have one node themselves.
#
#   bench/numa/numa-vm.sh [--lib PATH/libnumaslab.so] [--nodes "2 4"] [--reps N]
#                         [--args "ITERATIONS WORKSET_KIB PREFILL_MIB"] [--out DIR]
#                         [--allocators "numaslab glibc ..."] [--extra NAME=PATH ...]
#
# For each node count N: one boot per allocator and repetition, N vCPUs (one
# per node), 512 MiB per node, THP madvise; the workload runs N threads, one
# pinned to each node, after the main thread has allocated and freed
# PREFILL_MIB on node 0.  Prints per allocator and node count the median
# share of the threads' pages on their own node (move_pages) and the median
# throughput.  Under qemu's TCG emulation (no KVM here) the throughput is
# only a rough comparison; the page placement is exact.  Writes DIR/numa-vm.csv
# (pages = the working-set pages move_pages located, summed over the threads).
# --extra NAME=PATH: one more library to preload as allocator NAME (repeatable;
# see allocators.sh).
# Exit status: 0, 77 if the VM tools are missing, 1 if a run failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
harness=$here/../../tests/numa-vm/run-in-numa-vm.sh
lib="" nodes="2 4" reps=3 wargs="20000 8192 64" out="" allocs_req="" extra_req=()
while [ $# -gt 0 ]; do
    case "$1" in
    --lib) lib=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --args) wargs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --allocators) allocs_req=$2; shift 2 ;;
    --extra) extra_req+=("$2"); shift 2 ;;
    -h | --help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "numa-vm.sh: unknown argument '$1' (see --help)" >&2; exit 64 ;;
    esac
done
die() { echo "numa-vm.sh: $*" >&2; exit 1; }
[ -n "$lib" ] || lib=$here/../../build/libnumaslab.so
[ -f "$lib" ] || die "libnumaslab.so not found ($lib); pass --lib PATH"
lib=$(readlink -f "$lib")
bash "$harness" --check-deps || exit 77
[ -f /usr/include/numaif.h ] || die "numaif.h is missing: apt-get install -y libnuma-dev"
out=${out:-$(mktemp -d /tmp/numaslab-numa-vm.XXXXXX)}
mkdir -p "$out/bin" && out=$(readlink -f "$out")
gcc -O2 -Wall -pthread -o "$out/bin/numa_local" "$here/numa_local.c" -lnuma || die "build of numa_local.c failed"

# shellcheck source=allocators.sh
. "$here/allocators.sh"
select_allocators "$lib" "$allocs_req" numa-vm.sh "${extra_req[@]}"

# field KEY LINE: the value of KEY in a RESULT line, either a top-level
# KEY=VALUE or a KEY:VALUE of its extra=k:v,k:v list.  Keys are matched
# whole: a pattern like 's/.*pages:\([0-9]*\)/' would take the last
# "pages:" of the line, the one of "unknown_pages:" (always 0 here).
field() {
    local x
    for x in $2; do
        case $x in
        "$1"=*) echo "${x#*=}"; return ;;
        extra=*) tr ',' '\n' <<<"${x#extra=}" | sed -n "s/^$1://p" | head -1 ;;
        esac
    done
}

csv=$out/numa-vm.csv
echo "nodes,allocator,rep,status,ops_per_sec,local_pct,pages" >"$csv"
nfail=0
for n in $nodes; do
    for rep in $(seq 1 "$reps"); do
        for a in "${allocs[@]}"; do
            pre=()
            [ -n "${alib[$a]}" ] && pre=(--add "${alib[$a]}" --env "LD_PRELOAD=${alib[$a]}")
            # shellcheck disable=SC2086  # wargs is a word list on purpose
            res=$(bash "$harness" --nodes "$n" --cpus "$n" --mem-per-node 512 --timeout 600 \
                --add "$out/bin/numa_local" "${pre[@]}" -- "$out/bin/numa_local" "$n" $wargs 2>"$out/err-$a-$n-$rep.txt")
            rc=$?
            line=$(grep '^RESULT' <<<"$res" | tail -1)
            if [ $rc -ne 0 ] || [ -z "$line" ]; then
                echo "numa-vm.sh: $a, $n nodes, rep $rep: failed (status $rc, see $out/err-$a-$n-$rep.txt)" >&2
                echo "$n,$a,$rep,fail,,," >>"$csv"
                nfail=$((nfail + 1))
                continue
            fi
            ops=$(field ops_per_sec "$line") pct=$(field local_pct "$line") pages=$(field pages "$line")
            if ! [[ $ops =~ ^[0-9.]+$ && $pct =~ ^[0-9.]+$ && $pages =~ ^[1-9][0-9]*$ ]]; then
                echo "numa-vm.sh: $a, $n nodes, rep $rep: cannot read ops_per_sec/local_pct/pages (> 0) from: $line" >&2
                echo "$n,$a,$rep,fail-parse,,," >>"$csv"
                nfail=$((nfail + 1))
                continue
            fi
            echo "$n,$a,$rep,ok,$ops,$pct,$pages" >>"$csv"
            echo "[$n nodes, rep $rep] $a: local ${pct} % of $pages pages, $ops ops/s" >&2
        done
    done
done

python3 - "$csv" "${allocs[@]}" <<'EOF'
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r['status'] == 'ok']
order = sys.argv[2:]
w = max([9] + [len(a) for a in order])
print(f"nodes  {'allocator':<{w}}  local % (median)  local % (min..max)  pages (median)  ops/s (median)  runs")
for n in sorted({r['nodes'] for r in rows}, key=int):
    for a in order:
        rs = [r for r in rows if r['nodes'] == n and r['allocator'] == a]
        if not rs:
            continue
        pct = [float(r['local_pct']) for r in rs]
        ops = [float(r['ops_per_sec']) for r in rs]
        pages = [int(r['pages']) for r in rs]
        print(f"{n:>5}  {a:<{w}}  {statistics.median(pct):>16.1f}  {min(pct):>8.1f}..{max(pct):<8.1f}  "
              f"{statistics.median(pages):>14.0f}  {statistics.median(ops):>14.0f}  {len(rs):>4}")
EOF
echo "csv: $csv"
[ $nfail -eq 0 ] || exit 1
