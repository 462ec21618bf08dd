#!/usr/bin/env bash
# numaslab run: exit status passed through, NUMASLAB_* variables and
# LD_PRELOAD reach the program, and every bad invocation is one line on
# stderr with the right exit status (and the program is not started).
source "$(dirname "$0")/common.sh"
libreal=$(realpath "$LIB")

# exit status, with and without "--"
for st in 0 7 255; do
    run "$TOOL" run -- sh -c "exit $st"
    expect_rc $st "run -- sh -c 'exit $st'"
done
run "$TOOL" run sh -c 'exit 3'
expect_rc 3 "run without --"
# a program killed by a signal: the shell sees the signal (128 + 9)
run bash -c "\"$TOOL\" run -- sh -c 'kill -9 \$\$'; echo \$? >\"$T/sig\""
[[ $(cat "$T/sig") == 137 ]] || fail "killed program: status $(cat "$T/sig"), want 137"

# the environment the program gets
show='echo "$NUMASLAB_NODES|$NUMASLAB_STRICT|$NUMASLAB_INTERLEAVE|$NUMASLAB_PAGES|$NUMASLAB_DECAY_MS|$NUMASLAB_TCACHE_BYTES|$NUMASLAB_STATS|$NUMASLAB_STATS_FORMAT|$NUMASLAB_STATS_FILE|$LD_PRELOAD"'
node=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | head -n1 | sed 's/.*node//'); node=${node:-0}
run "$TOOL" run --nodes $node --strict --interleave --pages thp --set decay_ms=5 --set NUMASLAB_TCACHE_BYTES=1M \
    --stats=json --stats-file "$T/st.json" -- sh -c "$show"
expect_rc 0 "run with every option"
want="$node|1|1|thp|5|1M|1|json|$T/st.json|$libreal"
[[ $(cat "$T/out") == "$want" ]] || fail "environment: '$(cat "$T/out")', want '$want'"
# --name=value forms, --stats alone, --lib, and an existing LD_PRELOAD kept after ours
other=$(gcc -print-file-name=libm.so.6 2>/dev/null || true)
[[ -f $other ]] || other=$(ldconfig -p | sed -n 's/.*libm.so.6.*=> //p' | head -n1)
run env LD_PRELOAD="$other" "$TOOL" run --nodes=all --pages=none --lib="$LIB" --stats -- sh -c "$show"
expect_rc 0 "run --name=value"
want="all|||none|||1|||$LIB:$other"
[[ $(head -n1 "$T/out") == "$want" ]] || fail "environment: '$(head -n1 "$T/out")', want '$want'"
# values the allocator accepts, the tool accepts (its parser): '' is all
# nodes, a trailing comma is allowed, the page words in any case
run "$TOOL" run --nodes '' --pages HugeTLB -- sh -c "$show"
expect_rc 0 "run --nodes '' --pages HugeTLB"
[[ $(cut -d'|' -f1,4 "$T/out") == "|HugeTLB" ]] ||
    fail "--nodes '' --pages HugeTLB: environment '$(cat "$T/out")'"
run "$TOOL" run --nodes "$node," -- sh -c "$show"
expect_rc 0 "run --nodes $node,"
[[ $(cut -d'|' -f1 "$T/out") == "$node," ]] || fail "--nodes $node,: environment '$(cat "$T/out")'"
run "$TOOL" run --stats -- "$ALLOC" 10 100 5
expect_rc 0 "run --stats"
grep -q '^numaslab: .* node(s)' "$T/err" || fail "--stats: no statistics on stderr: $(head -c 300 "$T/err")"
# the library really is in the program
run "$TOOL" run -- "$PROBE"
grep -qx 'preloaded=1' "$T/out" || fail "probe under numaslab run: $(cat "$T/out" "$T/err")"

# errors: one line, status, program not started
marker="$T/ran"
check_err() {   # check_err STATUS PATTERN ARGS... (the program would create $marker)
    local st=$1 pat=$2
    shift 2
    run "$TOOL" run "$@" -- touch "$marker"
    expect_rc "$st" "run $*"
    expect_one_line "run $*" "$pat"
    [[ ! -e $marker ]] || fail "run $*: the program ran"
}
check_err 2 "unknown option '--bogus'" --bogus
check_err 2 "unknown option '-x'" -x
check_err 2 "node 1000 does not exist on this machine" --nodes 1000
check_err 2 "node 1000 does not exist on this machine" --nodes 0,1000
check_err 2 "want a list of nodes" --nodes 0-x
check_err 2 "want a list of nodes" --nodes 1-0
check_err 2 "want a list of nodes" --nodes ,0
check_err 2 "want auto, hugetlb, thp or none" --pages gigantic
check_err 2 "want --stats, --stats=text or --stats=json" --stats=xml
check_err 2 "unknown option 'BOGUS'" --set BOGUS=1
check_err 2 "wants NAME=VALUE" --set DECAY_MS
check_err 2 "not found or not readable" --lib /nonexistent/libnumaslab.so
check_err 2 "is not writable" --stats-file /nonexistent-dir/stats.json
run "$TOOL" run --nodes
expect_rc 2 "--nodes without a value"
expect_one_line "--nodes without a value" "wants a list"
run "$TOOL" run --strict
expect_rc 2 "no program"
expect_one_line "no program" "no program given"
# program not found: 127; not executable: 126
run "$TOOL" run -- numaslab-no-such-program-xyz arg
expect_rc 127 "program not found"
expect_one_line "program not found" "numaslab-no-such-program-xyz: command not found"
run "$TOOL" run -- /nonexistent/prog
expect_rc 127 "program path not found"
expect_one_line "program path not found" "command not found"
printf 'echo hi\n' >"$T/noexec"
chmod 644 "$T/noexec"
run "$TOOL" run -- "$T/noexec"
expect_rc 126 "program not executable"
expect_one_line "program not executable" "permission denied"

# --pages hugetlb without hugetlb pages: one warning, the program still runs
# (a fake /sys under NUMASLAB_TOOL_SYSROOT: one node, no pages reserved)
fake=$T/root/sys/devices/system/node
mkdir -p $fake/node0/hugepages/hugepages-2048kB $fake/node1/hugepages/hugepages-2048kB
echo 0 >$fake/node0/hugepages/hugepages-2048kB/nr_hugepages
echo 0 >$fake/node0/hugepages/hugepages-2048kB/free_hugepages
echo 8 >$fake/node1/hugepages/hugepages-2048kB/nr_hugepages
echo 8 >$fake/node1/hugepages/hugepages-2048kB/free_hugepages
run env NUMASLAB_TOOL_SYSROOT=$T/root "$TOOL" run --nodes 0 --pages hugetlb -- sh -c 'exit 5'
expect_rc 5 "--pages hugetlb without pages"
expect_one_line "--pages hugetlb without pages" "warning: --pages hugetlb but no hugetlb 2 MiB page is reserved on node(s) 0"
grep -q "SuperSlabs will use THP" "$T/err" || fail "hugetlb warning does not say what happens: $(cat "$T/err")"
echo 4 >$fake/node0/hugepages/hugepages-2048kB/nr_hugepages
# (the program itself may then fail: the real machine may have no hugetlb page either)
run env NUMASLAB_TOOL_SYSROOT=$T/root NUMASLAB_HUGETLB_FALLBACK=0 "$TOOL" run --nodes 0 --pages hugetlb -- true
head -n1 "$T/err" | grep -q "warning: --pages hugetlb but every hugetlb 2 MiB page is in use on node(s) 0.*ENOMEM" ||
    fail "--pages hugetlb, all in use, no fallback: $(cat "$T/err")"
run env NUMASLAB_TOOL_SYSROOT=$T/root "$TOOL" run --nodes 0-1 --pages hugetlb -- true
expect_rc 0 "--pages hugetlb with free pages on node 1"
expect_no_err "--pages hugetlb with free pages on node 1"
NUMASLAB_TOOL_SYSROOT=$T/root check_err 2 "node 2 does not exist on this machine (nodes: 0-1)" --nodes 1-2
ok "exit status, environment, LD_PRELOAD, and one-line errors (2 / 126 / 127) for every bad invocation"
