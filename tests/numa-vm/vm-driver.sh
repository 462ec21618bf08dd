#!/bin/sh
# vm-driver.sh - runs INSIDE the NUMA VM (busybox sh): every in-VM test, one
# process each, with a time limit per test; one line per test; exit status =
# number of failed tests (0 = all passed).
#
#   vm-driver.sh PROGRAM [TEST...]     default tests: topo highaddr placement
#                                      crossnode onnode migrate spill interleave prof parked
# Started by run-all.sh through run-in-numa-vm.sh; PER_TEST_TIMEOUT (seconds,
# default 120) can be set with the harness's --env.
prog=$1; shift
[ $# -gt 0 ] || set -- topo highaddr placement crossnode onnode migrate spill interleave prof parked
limit=${PER_TEST_TIMEOUT:-120}
up() { cut -d' ' -f1 /proc/uptime; }
nodes=$(ls -d /sys/devices/system/node/node[0-9]* | wc -l)
echo "numa-vm: $nodes nodes, $(grep -c ^processor /proc/cpuinfo) cpus, MemFree/node MiB:" \
     $(for m in /sys/devices/system/node/node[0-9]*/meminfo; do awk '/MemFree/ {printf "%d ", $4/1024}' "$m"; done)
failed=0 failed_names=""
for t in "$@"; do
    t0=$(up)
    out=$(timeout "$limit" "$prog" "$t" 2>&1)
    rc=$?
    dt=$(awk -v a="$t0" -v b="$(up)" 'BEGIN { printf "%.1f", b - a }')
    if [ $rc -eq 0 ]; then
        echo "PASS $t (${dt}s) $out"
    else
        case $rc in 143) why="timed out after ${limit}s" ;; 13[0-9]) why="killed by signal $((rc - 128))" ;; *) why="exit $rc" ;; esac
        out=${out#FAIL "$t": }
        echo "FAIL $t (${dt}s, $why) $(printf '%s' "$out" | head -c 1500)"
        failed=$((failed + 1)) failed_names="$failed_names $t"
    fi
done
echo "numa-vm: $nodes nodes: $(( $# - failed )) of $# tests passed${failed_names:+; failed:$failed_names}"
exit $failed
