#!/usr/bin/env bash
# numaslab run composes with numactl in both orders: as the program of
# numactl (numactl --cpunodebind=N numaslab run -- PROG) and around it
# (numaslab run -- numactl --cpunodebind=N PROG).  Either way PROG runs
# with numaslab preloaded, on the CPUs of node N, with the options given.
source "$(dirname "$0")/common.sh"
if ! command -v numactl >/dev/null; then
    echo "SKIP: numactl is not installed (apt-get install numactl)"
    exit 77
fi
node=$(ls -d /sys/devices/system/node/node[0-9]* 2>/dev/null | head -n1 | sed 's/.*node//'); node=${node:-0}
if ! numactl --cpunodebind=$node true 2>"$T/err"; then
    echo "SKIP: numactl --cpunodebind=$node does not work here: $(cat "$T/err")"
    exit 77
fi
nodecpus=$(cat /sys/devices/system/node/node$node/cpulist 2>/dev/null || true)
subset() {   # subset LIST OF: every cpu of LIST is in OF
    python3 - "$1" "$2" <<'PY'
import sys
def p(s):
    out = set()
    for part in filter(None, s.split(",")):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out
sys.exit(0 if p(sys.argv[1]) and (not sys.argv[2] or p(sys.argv[1]) <= p(sys.argv[2])) else 1)
PY
}
check_probe() {   # check_probe WHAT
    expect_rc 0 "$1"
    grep -qx 'preloaded=1' "$T/out" || fail "$1: numaslab not in the program: $(cat "$T/out" "$T/err")"
    cpus=$(sed -n 's/^cpus=//p' "$T/out")
    subset "$cpus" "$nodecpus" || fail "$1: program runs on cpus $cpus, node $node has $nodecpus"
}
run numactl --cpunodebind=$node "$TOOL" run -- "$PROBE"
check_probe "numactl --cpunodebind=$node numaslab run -- probe"
run "$TOOL" run -- numactl --cpunodebind=$node "$PROBE"
check_probe "numaslab run -- numactl --cpunodebind=$node probe"
# options and exit status cross numactl in both orders
run numactl --cpunodebind=$node "$TOOL" run --nodes $node --stats=json -- sh -c 'echo "$NUMASLAB_NODES $NUMASLAB_STATS_FORMAT"; exit 9'
expect_rc 9 "numactl ... numaslab run ... exit 9"
[[ $(cat "$T/out") == "$node json" ]] || fail "numactl ... numaslab run: environment '$(cat "$T/out")'"
run "$TOOL" run --nodes $node -- numactl --cpunodebind=$node sh -c 'echo "$NUMASLAB_NODES"; exit 4'
expect_rc 4 "numaslab run -- numactl ... exit 4"
[[ $(cat "$T/out") == "$node" ]] || fail "numaslab run -- numactl: environment '$(cat "$T/out")'"
# statistics of the program behind numactl (numactl itself execs, it writes none)
run "$TOOL" run --stats=json --stats-file "$T/s.%p.json" -- numactl --cpunodebind=$node "$ALLOC" 100 200 10
expect_rc 0 "stats behind numactl"
files=("$T"/s.*.json)
[[ ${#files[@]} == 1 && -s ${files[0]} ]] || fail "stats behind numactl: files ${files[*]}"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["program"].startswith("ns_tool_alloc") or d["program"]=="alloc_prog", d["program"]' "${files[0]}" ||
    fail "stats behind numactl: not the program's: $(head -c 300 "${files[0]}")"
ok "numactl before and after numaslab run: preloaded, bound to node $node cpus, options and status pass"
