#!/usr/bin/env bash
# numaslab stats PID / numaslab top PID on a busy multithreaded process
# (tests/tool/live_prog.c: 9 threads, more than cores, each holding 1500
# blocks of 1000 bytes with checked contents, churning), under the normal
# and the hardened library: 100 JSON reads in a row, each checked against
# what the process holds (check_live.py); text reads; top; a forked child
# read on its own; usage errors; another user refused (root only).  The
# process's blocks are verified when it stops, so reading never disturbed
# it.  Extra arguments: LIVE_PROG HARDENED_LIB.
source "$(dirname "$0")/common.sh"
PROG=$6 HARD=$7
THREADS=9 BLOCKS=1500 SIZE=1000 CHILD_MIB=24

start_prog() { # LIB: starts the program, sets PID and CHILD
    LD_PRELOAD=$1 "$PROG" $THREADS $BLOCKS $SIZE $CHILD_MIB >"$T/prog.out" 2>"$T/prog.err" &
    PID=$!
    for _ in $(seq 200); do
        grep -q "^ready" "$T/prog.out" 2>/dev/null && break
        sleep 0.1
    done
    grep -q "^ready $PID$" "$T/prog.out" || fail "live_prog did not get ready: $(cat "$T/prog.out" "$T/prog.err")"
    CHILD=$(sed -n 's/^child //p' "$T/prog.out")
    # the area appears at the 16th slow path, the first figures when asked
    for _ in $(seq 50); do
        "$TOOL" stats "$PID" >/dev/null 2>&1 && return
        sleep 0.2
    done
    fail "no statistics area in live_prog after 10 s: $("$TOOL" stats "$PID" 2>&1)"
}
stop_prog() {
    kill -TERM "$PID"
    set +e; wait "$PID"; local rc=$?; set -e
    [[ $rc == 0 ]] || fail "live_prog exited with $rc: $(cat "$T/prog.err")"
}

for lib in "$LIB" "$HARD"; do
    name=$(basename "$lib")
    start_prog "$lib"
    files=()
    for i in $(seq 100); do
        run "$TOOL" stats --json "$PID"
        expect_rc 0 "$name: stats --json, read $i"
        expect_no_err "$name: stats --json, read $i (a busy process answers at once)"
        cp "$T/out" "$T/s$i.json"
        files+=("$T/s$i.json")
    done
    python3 "$HERE/check_live.py" "$PID" $THREADS $BLOCKS $SIZE "${files[@]}" || fail "$name: reports do not match the program"
    for i in 1 2 3; do
        run "$TOOL" stats "$PID"
        expect_rc 0 "$name: stats (text)"
        head -n1 "$T/out" | grep -qE '^numaslab: [0-9]+ node\(s\), [0-9]+ thread cache\(s\), mapped [0-9.]+ MiB, in use [0-9.]+ MiB$' ||
            fail "$name: text report: $(head -n1 "$T/out")"
        grep -q "^numaslab: class    size   requests  hit rate  live blocks  slabs$" "$T/out" || fail "$name: text report has no class table"
    done
    run "$TOOL" top --interval 200 --count 3 "$PID"
    expect_rc 0 "$name: top"
    [[ $(grep -c '^numaslab top: pid '"$PID" "$T/out") == 3 && $(grep -c '^node ' "$T/out") == 3 ]] ||
        fail "$name: top did not print 3 screens: $(cat "$T/out")"
    grep -qE '^ +0 +[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+ +[0-9.]+$' "$T/out" || fail "$name: top has no node 0 row: $(cat "$T/out")"
    # the forked child answers for itself: its own pid and its 24 MiB
    run "$TOOL" stats --json "$CHILD"
    expect_rc 0 "$name: stats of the forked child"
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["pid"] == int(sys.argv[2]), d["pid"]
assert d["in_use_bytes"] >= int(sys.argv[3]) * 2**20, d["in_use_bytes"]
assert d["in_use_bytes"] < 2 * int(sys.argv[3]) * 2**20, d["in_use_bytes"]
' "$T/out" "$CHILD" $CHILD_MIB || fail "$name: the child's report is not the child's: $(head -c 300 "$T/out")"
    # another user may not read it (the tool says so; the kernel would refuse too)
    if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
        cp "$TOOL" "$T/numaslab"; chmod 755 "$T" "$T/numaslab"
        run setpriv --reuid=65534 --regid=65534 --clear-groups "$T/numaslab" stats "$PID"
        expect_rc 1 "$name: stats as another user"
        expect_one_line "$name: stats as another user" "only its user or root"
    fi
    stop_prog
    ok "$name: 100 JSON reads, 3 text reads, top, the forked child; the process's blocks intact"
done

run "$TOOL" stats
expect_rc 2 "stats without a pid"
expect_one_line "stats without a pid" "no process id"
run "$TOOL" stats 12abc
expect_rc 2 "stats with a bad pid"
expect_one_line "stats with a bad pid" "is not a process id"
run "$TOOL" stats $$
expect_rc 1 "stats of a process without numaslab"
expect_one_line "stats of a process without numaslab" "has no numaslab statistics area"
run "$TOOL" top --interval 5 1
expect_rc 2 "top with a bad interval"
ok "usage errors"
