#!/usr/bin/env bash
# rss_floor.sh - the RSS floor of small processes (issue 14): max RSS
# (/usr/bin/time -f %M) of /bin/true and `python3 -c pass`, and VmRSS read
# by the process itself after start (`cat /proc/self/status`, a program as
# small as true; python3 reading its own status), under glibc and each
# preloaded allocator; the median of N runs (default 10).  Output: a
# markdown table, KiB.
#
#   bench/numa/rss_floor.sh [-n RUNS] NAME=LIB ...
#   PYTHON (default /usr/bin/python3, the distribution's: a pyenv shim
#   named python3 would run a shell script and its children first)
#   NAME= (LIB empty) is glibc's malloc, no preload; LIB may be a list
#   A:B (LD_PRELOAD's syntax).
#
# Example:
#   bench/numa/rss_floor.sh glibc= numaslab=build/libnumaslab.so \
#     mimalloc=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 \
#     jemalloc=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
#     tcmalloc=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
set -euo pipefail
runs=10
[[ ${1:-} == -n ]] && { runs=$2; shift 2; }
PYTHON=${PYTHON:-/usr/bin/python3}
(($#)) || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2; }
median() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
pre() { [[ -n $1 ]] && echo "LD_PRELOAD=$1"; }
maxrss() {  # maxrss LIB CMD...: median of max RSS in KiB
    local lib=$1; shift
    for ((i = 0; i < runs; i++)); do
        env $(pre "$lib") /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -n 1
    done | median
}
vmrss() {   # vmrss LIB CMD...: median of the VmRSS line the command prints
    local lib=$1; shift
    for ((i = 0; i < runs; i++)); do
        env $(pre "$lib") "$@" | awk '/^VmRSS:/ {print $2}'
    done | median
}
py_status='import sys; sys.stdout.write(open("/proc/self/status").read())'
echo "| allocator | /bin/true max RSS | python3 -c pass max RSS | cat /proc/self/status: VmRSS | python3: VmRSS |"
echo "|---|---|---|---|---|"
for spec in "$@"; do
    name=${spec%%=*} lib=${spec#*=}
    for f in ${lib//:/ }; do [[ -f $f ]] || { echo "rss_floor: $f: no such file" >&2; exit 1; }; done
    echo "| $name | $(maxrss "$lib" /bin/true) | $(maxrss "$lib" "$PYTHON" -c pass) |" \
         "$(vmrss "$lib" cat /proc/self/status) | $(vmrss "$lib" "$PYTHON" -c "$py_status") |"
done
