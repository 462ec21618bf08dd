#!/usr/bin/env bash
# run.sh - numaslab benchmark suite against glibc, mimalloc, jemalloc, tcmalloc.
#
#   bench/numa/run.sh [--quick | --smoke] [--reps N] [--threads "1 2"] [--out DIR]
#                     [--lib PATH/libnumaslab.so] [--allocators "numaslab glibc ..."]
#                     [--extra NAME=PATH ...] [--workloads "larson mixed_1k ..."]
#                     [--no-fastpath]
#
# Builds the workloads (gcc -O2) into DIR/bin, then for each repetition, for
# each workload and thread count, runs every installed allocator one after the
# other (LD_PRELOAD; glibc = no preload; the starting allocator rotates with
# the repetition), so machine noise hits all alike.  Default: 5 repetitions,
# thread counts 1..nproc.  Writes DIR/results.csv (every run), DIR/summary.txt
# and DIR/summary.md (medians, ratios, geometric means), DIR/throughput.png
# (gnuplot) and DIR/machine.txt; then the size sweep (size_sweep.c) once per
# allocator and the callgrind fast-path counts (fastpath.sh) unless
# --no-fastpath.  Exit status is non-zero if any run failed its self-check.
# machine.txt also records free page reporting (virtio-balloon): a VM that
# reports free 2 MiB blocks to its host gets them back unbacked, so every
# huge-page first touch there costs host faults (see bench/RESULTS.md).
#
#   --quick   smaller sizes, 3 repetitions (unless --reps)
#   --smoke   every workload once, tiny sizes, numaslab only, 2 threads; no
#             plot, no sweep, no fastpath; fails if any self-check fails (CI)
#   --extra NAME=PATH  (repeatable) one more library to preload, measured in
#             the same rotation as the others and reported as allocator NAME
#             (e.g. numaslab-prev=/tmp/old/libnumaslab.so,
#             numaslab-hardened=build/libnumaslab-hardened.so); also in the
#             size sweep and (a numaslab build: a path containing
#             "numaslab") with its own fastpath.sh run in the fast path
#
# Needs: gcc, python3, libnuma-dev (numaif.h, -lnuma), /usr/bin/time (Debian
# package time) and, except with --smoke, gnuplot (Debian gnuplot-nox); the
# peers: apt-get install -y libmimalloc2.0 libjemalloc2 libgoogle-perftools4
# libtcmalloc-minimal4 (a peer that is not installed is skipped); it installs
# nothing itself.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
orig_args="$*"
mode=full reps="" threads="" out="" lib="" allocs_req="" wl_req="" do_fastpath=1 extra_req=()
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) mode=quick; shift ;;
    --smoke) mode=smoke; shift ;;
    --reps) reps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --lib) lib=$2; shift 2 ;;
    --allocators) allocs_req=$2; shift 2 ;;
    --extra) extra_req+=("$2"); shift 2 ;;
    --workloads) wl_req=$2; shift 2 ;;
    --no-fastpath) do_fastpath=0; shift ;;
    -h | --help) sed -n '2,36p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 64 ;;
    esac
done

die() { echo "run.sh: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing: $2"; }
need gcc "apt-get install -y gcc"
need python3 "apt-get install -y python3"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: apt-get install -y time"
[ -f /usr/include/numaif.h ] || die "numaif.h is missing: apt-get install -y libnuma-dev"
[ "$mode" = smoke ] || need gnuplot "apt-get install -y gnuplot-nox"

if [ -z "$lib" ]; then
    for c in "$here/../../build/libnumaslab.so"; do
        [ -f "$c" ] && lib=$c
    done
fi
[ -n "$lib" ] && [ -f "$lib" ] || die "libnumaslab.so not found (looked in $here/../../build); pass --lib PATH"
lib=$(readlink -f "$lib")

ncpu=$(nproc)
if [ -z "$threads" ]; then
    if [ "$mode" = smoke ]; then threads=2; else threads=$(seq 1 "$ncpu" | tr '\n' ' '); fi
fi
case $mode in
full) reps=${reps:-5} ;;
quick) reps=${reps:-3} ;;
smoke) reps=${reps:-1} ;;
esac
out=${out:-$(mktemp -d /tmp/numaslab-bench.XXXXXX)}
mkdir -p "$out/bin" "$out/logs" || die "cannot create $out"
out=$(readlink -f "$out")

# ---------------------------------------------------------------- allocators
# shellcheck source=allocators.sh
. "$here/allocators.sh"
[ "$mode" = smoke ] && allocs_req=numaslab
select_allocators "$lib" "$allocs_req" run.sh "${extra_req[@]}"

# ---------------------------------------------------------------- workloads
# name|binary|arguments after THREADS, per mode (full / quick / smoke)
workloads_full=(
    "larson|larson|40 100000 1000 16 1024"
    "mixed_1k|mixed|3000000 2000 1024"
    "mixed_64k|mixed|400000 2000 65536"
    "prodcons|prodcons|1000000 16 512"
    "xmalloc|xmalloc|8000 100 16 256 4"
    "cache_scratch|cache_scratch|20000 1000 8"
    "large|large|60 1024 32768"
    "memeff|memeff|256 1 16384"
    "numa_local|numa_local|20000 8192 64"
)
workloads_quick=(
    "larson|larson|20 50000 1000 16 1024"
    "mixed_1k|mixed|1000000 2000 1024"
    "mixed_64k|mixed|100000 2000 65536"
    "prodcons|prodcons|300000 16 512"
    "xmalloc|xmalloc|2000 100 16 256 4"
    "cache_scratch|cache_scratch|5000 1000 8"
    "large|large|20 1024 32768"
    "memeff|memeff|64 1 16384"
    "numa_local|numa_local|5000 4096 16"
)
workloads_smoke=(
    "larson|larson|4 2000 200 16 1024"
    "mixed_1k|mixed|50000 500 1024"
    "mixed_64k|mixed|5000 200 65536"
    "prodcons|prodcons|20000 16 512"
    "xmalloc|xmalloc|100 50 16 256 4"
    "cache_scratch|cache_scratch|500 100 8"
    "large|large|4 1024 8192"
    "memeff|memeff|16 1 16384"
    "numa_local|numa_local|1000 1024 4"
)
declare -n wls=workloads_$mode
if [ -n "$wl_req" ]; then
    sel=()
    for w in "${wls[@]}"; do
        for r in $wl_req; do [ "${w%%|*}" = "$r" ] && sel+=("$w"); done
    done
    [ ${#sel[@]} -gt 0 ] || die "no workload matches '$wl_req'"
    wls=("${sel[@]}")
fi

# ---------------------------------------------------------------- build
CFLAGS="-O2 -Wall -Wextra -pthread"
for src in larson mixed prodcons xmalloc cache_scratch large memeff size_sweep fastpath; do
    gcc $CFLAGS -o "$out/bin/$src" "$here/$src.c" 2>"$out/logs/build-$src.txt" || { cat "$out/logs/build-$src.txt" >&2; die "build of $src.c failed"; }
done
gcc $CFLAGS -o "$out/bin/numa_local" "$here/numa_local.c" -lnuma 2>"$out/logs/build-numa_local.txt" ||
    { cat "$out/logs/build-numa_local.txt" >&2; die "build of numa_local.c failed (libnuma-dev?)"; }

# ---------------------------------------------------------------- machine.txt
if [ "$mode" != smoke ]; then
    {
        echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        echo "command: $0 $orig_args"
        echo "mode: $mode, repetitions: $reps, threads: $threads"
        echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
        echo "cores (nproc): $ncpu"
        echo "numa nodes: $(cat /sys/devices/system/node/online 2>/dev/null)"
        for d in /sys/devices/system/node/node[0-9]*; do
            [ -d "$d" ] && echo "  $(basename "$d"): cpus $(cat "$d/cpulist"), $(awk '/MemTotal/ {printf "%.1f GiB", $4/1048576}' "$d/meminfo")"
        done
        echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
        echo "thp enabled: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
        echo "thp defrag: $(cat /sys/kernel/mm/transparent_hugepage/defrag 2>/dev/null)"
        echo "kernel: $(uname -srm)"
        echo "glibc: $(ldd --version 2>&1 | head -1)"
        echo "gcc: $(gcc --version | head -1)"
        echo "numaslab: $lib (sha256 $(sha256sum "$lib" | cut -c1-16); work tree $(git -C "$here" describe --always --dirty 2>/dev/null || echo 'no git'), which need not be what the library was built from)"
        for e in "${extras[@]}"; do
            echo "extra $e: ${alib[$e]} (sha256 $(sha256sum "${alib[$e]}" | cut -c1-16))"
        done
        for p in libmimalloc2.0 libjemalloc2 libgoogle-perftools4 libtcmalloc-minimal4 libnuma1 gnuplot-nox valgrind; do
            echo "package $p: $(dpkg-query -W -f '${Version}' "$p" 2>/dev/null || echo 'not installed')"
        done
        pr=/sys/module/page_reporting/parameters
        if [ -r "$pr/page_reporting_order" ]; then
            echo "free page reporting (VM): order $(cat "$pr/page_reporting_order"), reported so far $(($(cat "$pr/reported_kib") / 1048576)) GiB"
        else
            echo "free page reporting (VM): none"
        fi
        echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    } >"$out/machine.txt"
fi

# ---------------------------------------------------------------- runs
csv=$out/results.csv
echo "rep,workload,threads,allocator,status,ops_per_sec,seconds,cpu_seconds,ops_per_cpu_sec,peak_rss_kb,time_maxrss_kb,wall_s,extra" >"$csv"
nfail=0
total=$((reps * ${#wls[@]} * $(echo $threads | wc -w) * ${#allocs[@]}))
k=0
t_start=$(date +%s)
for rep in $(seq 1 "$reps"); do
    for w in "${wls[@]}"; do
        IFS='|' read -r name bin args <<<"$w"
        for t in $threads; do
            n=${#allocs[@]}
            for j in $(seq 0 $((n - 1))); do
                a=${allocs[$(((j + rep - 1) % n))]}
                k=$((k + 1))
                log=$out/logs/$name.t$t.$a.r$rep
                timeout 600 /usr/bin/time -f "%M %e" -o "$log.time" \
                    env ${alib[$a]:+LD_PRELOAD=${alib[$a]}} "$out/bin/$bin" "$t" $args >"$log.out" 2>"$log.err"
                rc=$?
                line=$(grep -m1 '^RESULT ' "$log.out")
                tm=$(tail -1 "$log.time" 2>/dev/null)
                if [ $rc -ne 0 ] || [ -z "$line" ]; then
                    status="fail-rc$rc"
                    nfail=$((nfail + 1))
                    echo "FAIL: $name threads=$t allocator=$a rep=$rep exit=$rc: $(tail -2 "$log.err" | tr '\n' ' ')" >&2
                    echo "$rep,$name,$t,$a,$status,,,,,,,," >>"$csv"
                    continue
                fi
                get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
                echo "$rep,$name,$t,$a,ok,$(get ops_per_sec),$(get seconds),$(get cpu_seconds),$(get ops_per_cpu_sec),$(get peak_rss_kb),${tm% *},${tm#* },\"$(get extra)\"" >>"$csv"
                printf '[%d/%d %3ds] %-13s t=%d %-17s %12s ops/s  rss %s KiB\n' "$k" "$total" $(($(date +%s) - t_start)) \
                    "$name" "$t" "$a" "$(get ops_per_sec)" "$(get peak_rss_kb)"
            done
        done
    done
done

if [ "$mode" = smoke ]; then
    if [ $nfail -ne 0 ]; then
        echo "run.sh --smoke: $nfail workload(s) FAILED (logs in $out/logs)" >&2
        exit 1
    fi
    echo "run.sh --smoke: all ${#wls[@]} workloads passed their self-checks with numaslab ($(($(date +%s) - t_start)) s)"
    exit 0
fi

echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
python3 "$here/report.py" "$out" --plot --markdown "$out/summary.md" | tee "$out/summary.txt"

# ---------------------------------------------------------------- size sweep
sweep_iters=20000
[ "$mode" = quick ] && sweep_iters=5000
echo
echo "== size_sweep (ns per free+malloc around the large threshold, $sweep_iters iterations, 1 thread, one run)"
for a in "${allocs[@]}"; do
    env ${alib[$a]:+LD_PRELOAD=${alib[$a]}} "$out/bin/size_sweep" "$sweep_iters" >"$out/logs/size_sweep.$a.txt" 2>&1 ||
        { echo "size_sweep failed under $a" >&2; nfail=$((nfail + 1)); }
done
python3 - "$out" "${allocs[@]}" <<'PY' | tee "$out/size_sweep.txt"
import sys
out, allocs = sys.argv[1], sys.argv[2:]
tab = {}
for a in allocs:
    for line in open("%s/logs/size_sweep.%s.txt" % (out, a)):
        f = line.split()
        if len(f) == 2 and f[0].isdigit():
            tab.setdefault(f[0], {})[a] = f[1]
w = max([10] + [len(a) + 2 for a in allocs])
print("%10s" % "size" + "".join("%*s" % (w, a) for a in allocs))
for s, v in tab.items():
    print("%10s" % s + "".join("%*s" % (w, v.get(a, "-")) for a in allocs))
PY

if [ $do_fastpath -eq 1 ] && command -v valgrind >/dev/null; then
    echo
    echo "== fast path (callgrind)"
    "$here/fastpath.sh" --lib "$lib" --out "$out/fastpath" | tee "$out/fastpath.txt" || nfail=$((nfail + 1))
    # each extra library on its own (fastpath.sh knows the five allocators;
    # its row "numaslab" is renamed to the extra's name)
    for e in "${extras[@]}"; do
        [[ ${alib[$e]} == *numaslab* ]] || continue # fastpath.c names the library it finds mapped
        {
            echo
            echo "== fast path (callgrind): $e = ${alib[$e]}"
            "$here/fastpath.sh" --lib "${alib[$e]}" --only numaslab --out "$out/fastpath-$e" |
                sed "s/^numaslab  /$e  /"
        } | tee -a "$out/fastpath.txt" || nfail=$((nfail + 1))
    done
fi

echo
echo "results: $out (results.csv, summary.txt, summary.md, throughput.png, machine.txt, size_sweep.txt, fastpath.txt)"
[ $nfail -eq 0 ] || { echo "run.sh: $nfail run(s) FAILED, see above" >&2; exit 1; }
