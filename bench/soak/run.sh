#!/usr/bin/env bash
# run.sh - build bench/soak/soak.c and run it under LD_PRELOAD=libnumaslab.so.
#
#   bench/soak/run.sh [--lib PATH/libnumaslab.so] (--minutes N | --seconds N) [--out DIR]
#                     [--threads N] [--system] [-- extra soak options]
#
# Builds soak.c (gcc -O2) into DIR, runs it with numaslab preloaded, writes
#   DIR/soak.csv   one row per second (time_s,rss_kb,live_bytes,threads,ops,failures,...)
#   DIR/soak.log   the program's stdout and stderr
#   DIR/rss.png    RSS and live bytes over time (gnuplot, when installed and the run is >= 60 s)
#   DIR/command.txt, DIR/machine.txt
# Exit status: 0 = no failure and RSS plateaued; 1 = failures (pattern
# mismatch, NULL, failed fork child, crash, numaslab not loaded...);
# 3 = no failure but no plateau; 2/64 = usage or build problem.
#
#   --lib PATH   libnumaslab.so (default: build/libnumaslab.so next to the sources)
#   --minutes N  run time in minutes, or --seconds N (CI: --seconds 20)
#   --out DIR    output directory (default: a new /tmp/numaslab-soak.XXXXXX)
#   --threads N  worker threads (default: the program's, 16 x the CPUs)
#   --system     no LD_PRELOAD: the same soak against glibc's malloc (comparison)
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
orig_args="$*"
lib="" out="" dur_args=() thr_args=() system=0 extra=() secs=""
while [ $# -gt 0 ]; do
    case "$1" in
    --lib) lib=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --minutes) dur_args=(--minutes "$2"); secs=$(awk -v m="$2" 'BEGIN { printf "%d", m * 60 }'); shift 2 ;;
    --seconds) dur_args=(--seconds "$2"); secs=$(awk -v s="$2" 'BEGIN { printf "%d", s }'); shift 2 ;;
    --threads) thr_args=(--threads "$2"); shift 2 ;;
    --system) system=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 64 ;;
    esac
done
die() { echo "run.sh: $*" >&2; exit "${2:-2}"; }
[ ${#dur_args[@]} -gt 0 ] || die "--minutes N or --seconds N is required" 64
command -v gcc >/dev/null || die "gcc is missing: apt-get install -y gcc"
if [ $system = 0 ]; then
    if [ -z "$lib" ]; then
        [ -f "$here/../../build/libnumaslab.so" ] && lib=$here/../../build/libnumaslab.so
    fi
    [ -n "$lib" ] && [ -f "$lib" ] || die "libnumaslab.so not found (looked in $here/../../build); pass --lib PATH"
    lib=$(readlink -f "$lib")
fi
out=${out:-$(mktemp -d /tmp/numaslab-soak.XXXXXX)}
mkdir -p "$out" || die "cannot create $out"
out=$(readlink -f "$out")

gcc -O2 -g -Wall -Wextra -Wshadow -pthread -I"$here/../../include" -o "$out/soak" "$here/soak.c" \
    2>"$out/build.txt" || { cat "$out/build.txt" >&2; die "build of soak.c failed"; }

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), nproc $(nproc)"
    echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "numa nodes: $(cat /sys/devices/system/node/online 2>/dev/null)"
    echo "thp enabled: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
    echo "kernel: $(uname -srm)"
    echo "glibc: $(ldd --version 2>&1 | head -1)"
    echo "library: ${lib:-system malloc} ($(git -C "$here" describe --always --dirty 2>/dev/null || echo 'no git'))"
    echo "NUMASLAB_* in the environment: $(env | grep '^NUMASLAB_' | tr '\n' ' ')"
} >"$out/machine.txt"

cmd=("$out/soak" "${dur_args[@]}" "${thr_args[@]}" --csv "$out/soak.csv" "${extra[@]}")
echo "${lib:+LD_PRELOAD=$lib }${cmd[*]}" >"$out/command.txt"
echo "run.sh: $(cat "$out/command.txt")"
echo "run.sh: output in $out"
# a hang is a failure too: the run gets its duration plus 3 minutes
timeout -k 10 $((secs + 180)) env ${lib:+LD_PRELOAD=$lib} "${cmd[@]}" 2>&1 | tee "$out/soak.log"
rc=${PIPESTATUS[0]}
[ "$rc" = 124 ] || [ "$rc" = 137 ] && echo "run.sh: FAIL: the soak hung (killed by timeout)" >&2
if [ $system = 0 ] && ! grep -q '^soak: allocator numaslab' "$out/soak.log"; then
    echo "run.sh: FAIL: numaslab was not loaded (LD_PRELOAD=$lib)" >&2
    rc=1
fi

# plot RSS and live bytes over time
if command -v gnuplot >/dev/null && [ -s "$out/soak.csv" ] && [ "${secs:-0}" -ge 60 ]; then
    mapped="" label="glibc malloc"
    [ $system = 0 ] && label="numaslab ($lib)"
    [ $system = 0 ] && mapped='"" using 1:($9/1024) every ::1 with lines lw 1 dt 2 title "numaslab mapped", '
    gnuplot <<EOF 2>"$out/gnuplot.txt" || echo "run.sh: gnuplot failed (see $out/gnuplot.txt)" >&2
set terminal pngcairo size 1000,560 noenhanced font ",10"
set output "$out/rss.png"
set datafile separator ","
set key below
set autoscale xfix
set grid
set title "soak: $label, $(tail -1 "$out/soak.log" | sed -n 's/.*ops=\([0-9]*\).*failures=\([0-9]*\).*/\1 ops, \2 failures/p')"
set xlabel "time (s)"
set ylabel "MiB"
set yrange [0:*]
set y2label "ops/s (thousands)"
set y2tics
set ytics nomirror
set y2range [0:*]
prev = 0
prevt = 0
plot "$out/soak.csv" using 1:(\$2/1024) every ::1 with lines lw 2 title "RSS (VmRSS)", \
     "" using 1:(\$3/1048576) every ::1 with lines lw 2 title "live bytes (requested)", \
     $mapped"" using 1:(d = (\$5 - prev) / (\$1 - prevt), prev = \$5, prevt = \$1, d / 1e3) every 10::2 with lines lw 1 lc rgb "gray" axes x1y2 title "ops/s (10 s average)"
EOF
fi
case $rc in
0) echo "run.sh: PASS: no failure, RSS plateaued" ;;
3) echo "run.sh: FAIL: RSS did not plateau" >&2 ;;
*) echo "run.sh: FAIL: exit status $rc" >&2 ;;
esac
exit "$rc"
