#!/usr/bin/env bash
# repeat.sh - run every fork test many times in a row against one malloc
# library and count the results.
#
#   tests/fork/repeat.sh [-n RUNS] [-d BINDIR] [-o LOGDIR] [-t "stdio threads ..."] LIB
#
#   LIB     the library to LD_PRELOAD into the test programs built without
#           the allocator (fork_<test>_plain), e.g. build/libnumaslab.so or
#           build/libnumaslab-hardened.so; "glibc" (or "none") for no preload.
#   -n      runs of each test (default $FORK_REPEAT, else 100)
#   -d      directory of the fork_*_plain programs (default build/tests/fork
#           of this repository)
#   -o      where the logs of failed runs go (default a new temporary directory)
#   -t      which tests (default: stdio threads signal spawn)
#
# Each run is the test's own watchdog (a hang fails it with backtraces when
# gdb is installed) under timeout(1) as a last resort.  The test settings come
# from the environment (tests/fork/fork_common.h): FORK_SECONDS (here 2 unless
# set), FORK_COUNT, FORK_THREADS, FORK_TIMEOUT, FORK_STALL, FORK_GDB ...
# Prints, per test and in total, 'N passed, N failed' (and skipped, if any);
# exits 0 only if no run failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
runs=${FORK_REPEAT:-100}
bindir="$here/../../build/tests/fork"
logdir=""
tests="stdio threads signal spawn"

usage() {
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}

while getopts "n:d:o:t:h" opt; do
    case $opt in
    n) runs=$OPTARG ;;
    d) bindir=$OPTARG ;;
    o) logdir=$OPTARG ;;
    t) tests=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
lib=$1

case $runs in
'' | *[!0-9]*) echo "repeat.sh: -n/FORK_REPEAT must be a number, not '$runs'" >&2; exit 2 ;;
esac

preload=""
expect=""
case $lib in
glibc | none) expect="libc.so" ;;
*)
    if [ ! -f "$lib" ]; then
        echo "repeat.sh: no library $lib" >&2
        exit 2
    fi
    preload=$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")
    expect=$(basename "$lib")
    ;;
esac

for t in $tests; do
    if [ ! -x "$bindir/fork_${t}_plain" ]; then
        echo "repeat.sh: no program $bindir/fork_${t}_plain (build first, or give -d)" >&2
        exit 2
    fi
done

made_logdir=0
if [ -z "$logdir" ]; then
    logdir=$(mktemp -d "${TMPDIR:-/tmp}/fork-repeat.XXXXXX") || exit 2
    made_logdir=1
fi
mkdir -p "$logdir" || exit 2

export FORK_SECONDS=${FORK_SECONDS:-2}
export FORK_EXPECT_MALLOC_FROM="$expect"
# last resort if the test's own watchdog is stuck too
limit=$(( 2 * FORK_SECONDS + ${FORK_TIMEOUT:-$(( 2 * FORK_SECONDS + 40 ))} + 60 ))

echo "repeat.sh: $runs runs of each of: $tests; library: ${preload:-glibc (no preload)};" \
     "FORK_SECONDS=$FORK_SECONDS; logs of failed runs in $logdir"

tot_pass=0 tot_fail=0 tot_skip=0
for t in $tests; do
    pass=0 fail=0 skip=0
    start=$SECONDS
    for ((i = 1; i <= runs; i++)); do
        log="$logdir/fork_$t.$i.log"
        if [ -n "$preload" ]; then
            LD_PRELOAD="$preload${LD_PRELOAD:+:$LD_PRELOAD}" \
                timeout -k 10 "$limit" "$bindir/fork_${t}_plain" >"$log" 2>&1
        else
            timeout -k 10 "$limit" "$bindir/fork_${t}_plain" >"$log" 2>&1
        fi
        rc=$?
        case $rc in
        0) pass=$((pass + 1)); rm -f "$log" ;;
        77) skip=$((skip + 1)); rm -f "$log" ;;
        *)
            fail=$((fail + 1))
            [ $rc -eq 124 ] && echo "timeout(1): killed after $limit s" >>"$log"
            why=$(grep -m1 -E 'FAIL|HUNG' "$log" | cut -c1-160)
            echo "fork_$t: run $i/$runs FAILED (status $rc): ${why:-see log}  [$log]"
            ;;
        esac
    done
    line="fork_$t: $pass passed, $fail failed"
    [ $skip -gt 0 ] && line="$line, $skip skipped"
    echo "$line ($((SECONDS - start)) s)"
    tot_pass=$((tot_pass + pass)) tot_fail=$((tot_fail + fail)) tot_skip=$((tot_skip + skip))
done

line="total: $tot_pass passed, $tot_fail failed"
[ $tot_skip -gt 0 ] && line="$line, $tot_skip skipped"
echo "$line"
[ "$tot_fail" -eq 0 ] && [ $made_logdir -eq 1 ] && rmdir "$logdir" 2>/dev/null
[ "$tot_fail" -eq 0 ]
