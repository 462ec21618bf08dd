#!/usr/bin/env bash
# hugetlb.sh - reserve hugetlb pages, run hp_hugetlb's phases, restore.
#
#   hugetlb.sh HP_HUGETLB [PAGES]        (PAGES default 48)
#
# As root: saves vm.nr_hugepages and vm.nr_overcommit_hugepages, sets the
# overcommit to 0 and nr_hugepages to PAGES, checks how many the kernel
# really reserved (HP_RESERVED for the program), runs
#   NUMASLAB_PAGES=auto                                 hp_hugetlb auto
#   NUMASLAB_PAGES=hugetlb                              hp_hugetlb fallback
#   NUMASLAB_PAGES=hugetlb NUMASLAB_HUGETLB_FALLBACK=0  hp_hugetlb strict
# each in a fresh process (the options are read at start-up) under a time
# limit (a phase that exits 3, inconclusive because other processes used
# hugetlb pages meanwhile, runs again, up to 3 times, then counts as skipped), and restores both settings in an EXIT trap (on failure and on
# INT/TERM too).  THP "never" is switched to "madvise" for the run (the
# auto phase falls back to THP) and restored as well.
# Not root, or no hugetlb support: skip (77).
set -u
PROG=${1:?usage: hugetlb.sh HP_HUGETLB [PAGES]}
PAGES=${2:-48}
NR=/proc/sys/vm/nr_hugepages
OC=/proc/sys/vm/nr_overcommit_hugepages
THP=/sys/kernel/mm/transparent_hugepage/enabled
LIMIT=${HP_TIMEOUT:-30}

if [[ $(id -u) != 0 ]]; then
    echo "SKIP: reserving hugetlb pages (vm.nr_hugepages) needs root"
    exit 77
fi
if [[ ! -w $NR || ! -d /sys/kernel/mm/hugepages/hugepages-2048kB ]]; then
    echo "SKIP: this kernel has no 2 MiB hugetlb pages ($NR / hugepages-2048kB missing)"
    exit 77
fi
old_nr=$(cat "$NR") old_oc=$(cat "$OC") old_thp=""
restore() {
    echo "$old_oc" > "$OC"
    echo "$old_nr" > "$NR"
    [[ -n $old_thp ]] && echo "$old_thp" > "$THP"
    echo "hugetlb.sh: restored nr_hugepages=$(cat "$NR") (was $old_nr), nr_overcommit_hugepages=$(cat "$OC")${old_thp:+, THP [$old_thp]}"
}
trap restore EXIT
trap 'exit 130' INT TERM

if [[ -r $THP && $(sed -n 's/.*\[\(.*\)\].*/\1/p' "$THP") == never ]]; then
    old_thp=never
    echo madvise > "$THP"
fi
echo 0 > "$OC"
echo "$((old_nr + PAGES))" > "$NR" 2>/dev/null || true
got=$(( $(cat "$NR") - old_nr ))
free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
echo "hugetlb.sh: nr_hugepages $old_nr -> $(cat "$NR") (asked +$PAGES, got +$got), HugePages_Free $free"
if ((got < 24 || free < 24)); then
    echo "SKIP: the kernel reserved only $got hugetlb pages ($free free): memory too fragmented or too small"
    exit 77
fi
# Pages that were already reserved before us may be used by someone else:
# the program only counts on the free ones.
export HP_RESERVED=$free

fail_rc=0 skips=0 runs=0
run() {
    local r=0 attempt
    for attempt in 1 2 3; do
        echo "=== $* (attempt $attempt)"
        r=0
        env "$@" || r=$?
        ((r == 3)) || break
        sleep 1
    done
    if ((r == 3)); then
        echo "hugetlb.sh: SKIP: other processes used hugetlb pages during all 3 attempts: $*"
        r=77
    fi
    runs=$((runs + 1))
    if ((r == 124)); then echo "hugetlb.sh: TIMED OUT after ${LIMIT}s: $*"; fi
    if ((r == 77)); then skips=$((skips + 1));
    elif ((r != 0 && fail_rc == 0)); then fail_rc=$r; fi
}
run NUMASLAB_PAGES=auto timeout -k 5 "$LIMIT" "$PROG" auto
run NUMASLAB_PAGES=hugetlb timeout -k 5 "$LIMIT" "$PROG" fallback
run NUMASLAB_PAGES=hugetlb NUMASLAB_HUGETLB_FALLBACK=0 timeout -k 5 "$LIMIT" "$PROG" strict
echo "hugetlb.sh: HugePages_Free $free before the phases, $(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo) after"
# (our children have exited: pages not free now belong to other processes)
# Any failure -> its status; else any phase skipped -> skipped (77): the
# test did not verify everything it should.
((fail_rc != 0)) && exit $fail_rc
((skips > 0)) && { echo "SKIP: $skips of $runs phase(s) could not be measured (see above)"; exit 77; }
exit 0
