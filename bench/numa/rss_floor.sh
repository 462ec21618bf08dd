#!/usr/bin/env bash
# rss_floor.sh - the memory of small and real programs (issue 14): max RSS
# (/usr/bin/time -f %M) of /bin/true and `python3 -c pass`, VmRSS read by
# the process itself after start (`cat /proc/self/status`; python3 reading
# its own status), and the max RSS of real programs on generated input:
# a python3 script that reads a file with regular expressions, sort,
# gcc -O2 -c, perl, sqlite3 (an in-memory table with an index) and
# xz -9; under glibc and each preloaded allocator; the median of N runs
# (default 10).  Output: two markdown tables, KiB.
#
#   bench/numa/rss_floor.sh [-n RUNS] NAME=LIB ...
#   PYTHON (default /usr/bin/python3, the distribution's: a pyenv shim
#   named python3 would run a shell script and its children first)
#   NAME= (LIB empty) is glibc's malloc, no preload; LIB may be a list
#   A:B (LD_PRELOAD's syntax).  A real program that is not installed is
#   shown as "-".
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
# generated input, the same for every allocator
work=$(mktemp -d /tmp/rss_floor.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$PYTHON" - "$work" <<'PY'
import random, sys
d = sys.argv[1]
r = random.Random(14)
words = ["".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(3, 12))) for _ in range(5000)]
with open(d + "/text", "w") as f:
    for i in range(200000):
        f.write("%d %s=%d %s %s\n" % (i, r.choice(words), r.randint(0, 99999), r.choice(words), r.choice(words)))
with open(d + "/prog.c", "w") as f:
    for i in range(400):
        f.write("int f%d(int x) { int a[16]; for (int i = 0; i < 16; i++) a[i] = x * i + %d; "
                "return a[x & 15] + (x > 3 ? f%d(x - 1) : 0); }\n" % (i, i, max(i - 1, 0)))
PY
cat > "$work/re.py" <<'PY'
import re, sys, collections
c = collections.Counter()
pat = re.compile(r"^(\d+) (\w+)=(\d+) (\w+)")
for line in open(sys.argv[1]):
    m = pat.match(line)
    if m and int(m.group(3)) % 3 == 0:
        c[m.group(2)] += 1
print(len(c))
PY
sql="create table t(k integer, v text); insert into t select value, hex(randomblob(32)) from generate_series(1, 200000); create index i on t(v); select count(*) from t where v like 'AB%';"
real() {    # real LIB CMD...: median max RSS, or - when CMD is missing
    local lib=$1; shift
    command -v "$1" >/dev/null 2>&1 || { echo -; return; }
    maxrss "$lib" "$@"
}
echo "| allocator | /bin/true max RSS | python3 -c pass max RSS | cat /proc/self/status: VmRSS | python3: VmRSS |"
echo "|---|---|---|---|---|"
for spec in "$@"; do
    name=${spec%%=*} lib=${spec#*=}
    for f in ${lib//:/ }; do [[ -f $f ]] || { echo "rss_floor: $f: no such file" >&2; exit 1; }; done
    echo "| $name | $(maxrss "$lib" /bin/true) | $(maxrss "$lib" "$PYTHON" -c pass) |" \
         "$(vmrss "$lib" cat /proc/self/status) | $(vmrss "$lib" "$PYTHON" -c "$py_status") |"
done
echo
echo "| allocator | python3 re script | sort | gcc -O2 -c | perl | sqlite3 | xz -9 |"
echo "|---|---|---|---|---|---|---|"
for spec in "$@"; do
    name=${spec%%=*} lib=${spec#*=}
    echo "| $name | $(real "$lib" "$PYTHON" "$work/re.py" "$work/text") | $(real "$lib" sort "$work/text")" \
         "| $(real "$lib" gcc -O2 -c -o /dev/null "$work/prog.c")" \
         "| $(real "$lib" perl -ne '$h{$1}++ if /=(\d+)/; END { print scalar(keys %h), "\n" }' "$work/text")" \
         "| $(real "$lib" sqlite3 :memory: "$sql") | $(real "$lib" xz -9 -c "$work/text") |"
done
