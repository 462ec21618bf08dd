#!/usr/bin/env bash
# huge1g.sh PROG: reserve one 1 GiB hugetlb page (root), run PROG with and
# without NUMASLAB_HUGE_1G=1, restore the reservation.  Skips (77) when not
# root, when the CPU has no 1 GiB pages, or when the kernel cannot find a
# free contiguous GiB.
set -euo pipefail
prog=$1
knob=/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root to reserve a 1 GiB page"; exit 77; }
[[ -w $knob ]] || { echo "SKIP: no 1 GiB huge page support ($knob)"; exit 77; }
old=$(cat "$knob")
trap 'echo "$old" > "$knob"' EXIT
echo $((old + 1)) > "$knob" 2>/dev/null || true
if (( $(cat "$knob") < old + 1 )); then
    echo "SKIP: the kernel could not reserve a 1 GiB page (memory fragmented)"
    exit 77
fi
echo "== NUMASLAB_HUGE_1G=1"
NUMASLAB_HUGE_1G=1 timeout -k 5 60 "$prog" on
echo "== without the option"
env -u NUMASLAB_HUGE_1G timeout -k 5 60 "$prog" off
