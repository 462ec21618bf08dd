#!/usr/bin/env bash
# numa-vm.sh - the NUMA locality workload (numa_local.c) for every allocator,
# inside qemu VMs with several NUMA nodes (tests/numa-vm/run-in-numa-vm.sh),
# for machines that have one node themselves.
#
#   bench/numa/numa-vm.sh [--lib PATH/libnumaslab.so] [--nodes "2 4"] [--reps N]
#                         [--args "ITERATIONS WORKSET_KIB PREFILL_MIB"] [--out DIR]
#                         [--allocators "numaslab glibc ..."]
#
# For each node count N: one boot per allocator and repetition, N vCPUs (one
# per node), 512 MiB per node, THP madvise; the workload runs N threads, one
# pinned to each node, after the main thread has allocated and freed
# PREFILL_MIB on node 0.  Prints per allocator and node count the median
# share of the threads' pages on their own node (move_pages) and the median
# throughput.  Under qemu's TCG emulation (no KVM here) the throughput is
# only a rough comparison; the page placement is exact.  Writes DIR/numa-vm.csv.
# Exit status: 0, 77 if the VM tools are missing, 1 if a run failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
harness=$here/../../tests/numa-vm/run-in-numa-vm.sh
lib="" nodes="2 4" reps=3 wargs="20000 8192 64" out="" allocs_req=""
while [ $# -gt 0 ]; do
    case "$1" in
    --lib) lib=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --args) wargs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --allocators) allocs_req=$2; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
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
select_allocators "$lib" "$allocs_req" numa-vm.sh

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
            ops=$(sed 's/.*ops_per_sec=\([0-9.]*\).*/\1/' <<<"$line")
            pct=$(sed 's/.*local_pct:\([0-9.]*\).*/\1/' <<<"$line")
            pages=$(sed 's/.*,pages:\([0-9]*\).*/\1/' <<<"$line")
            echo "$n,$a,$rep,ok,$ops,$pct,$pages" >>"$csv"
            echo "[$n nodes, rep $rep] $a: local ${pct} % of $pages pages, $ops ops/s" >&2
        done
    done
done

python3 - "$csv" <<'EOF'
import csv, statistics, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r['status'] == 'ok']
order = ['numaslab', 'glibc', 'mimalloc', 'jemalloc', 'tcmalloc']
print("nodes  allocator  local % (median)  local % (min..max)  ops/s (median)  runs")
for n in sorted({r['nodes'] for r in rows}, key=int):
    for a in order:
        rs = [r for r in rows if r['nodes'] == n and r['allocator'] == a]
        if not rs:
            continue
        pct = [float(r['local_pct']) for r in rs]
        ops = [float(r['ops_per_sec']) for r in rs]
        print(f"{n:>5}  {a:<9}  {statistics.median(pct):>16.1f}  {min(pct):>8.1f}..{max(pct):<8.1f}  "
              f"{statistics.median(ops):>14.0f}  {len(rs):>4}")
EOF
echo "csv: $csv"
[ $nfail -eq 0 ] || exit 1
