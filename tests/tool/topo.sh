#!/usr/bin/env bash
# numaslab topo: --json compared with /sys (check_topo.py), the text form,
# and the plan following NUMASLAB_NODES / NUMASLAB_PAGES / NUMASLAB_STRICT
# with the allocator's warnings and fallbacks for bad values.
source "$(dirname "$0")/common.sh"
python3 "$HERE/check_topo.py" "$TOOL"

# text
run "$TOOL" topo
expect_rc 0 "topo"
expect_no_err "topo"
for pat in '^NUMA nodes \(hwloc ' '^  node [0-9]+: cpus ' 'hugetlb 2 MiB pages ' '1 GiB pages ' '^distances \(' \
           '^transparent huge pages: enabled .*, defrag ' '^numaslab will use: .*SuperSlabs of 2 MiB on '; do
    grep -qE "$pat" "$T/out" || fail "topo text has no line matching '$pat': $(cat "$T/out")"
done
thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unavailable)
grep -qF "enabled $thp" "$T/out" || fail "topo text does not show THP '$thp'"

# helper: a field of the plan from topo --json under an environment
plan() { python3 -c 'import json,sys; print(json.load(sys.stdin)["numaslab"][sys.argv[1]])' "$1" <"$T/out"; }
first=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["nodes"][0]["id"])' < <("$TOOL" topo --json))
all=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["numaslab"]["nodes"])' < <("$TOOL" topo --json))

run env NUMASLAB_NODES=$first NUMASLAB_PAGES=none NUMASLAB_STRICT=1 NUMASLAB_INTERLEAVE=yes "$TOOL" topo --json
expect_rc 0 "topo with options"
expect_no_err "topo with options"
[[ $(plan nodes) == "[$first]" && $(plan pages_mode) == none && $(plan pages) == "base pages" &&
   $(plan strict) == True && $(plan interleave) == True && $(plan nodes_option) == "$first" ]] ||
    fail "plan with NODES=$first PAGES=none STRICT=1: $(cat "$T/out")"

for mode in auto hugetlb thp; do
    run env NUMASLAB_PAGES=$mode "$TOOL" topo --json
    [[ $(plan pages_mode) == "$mode" ]] || fail "NUMASLAB_PAGES=$mode: plan $(plan pages_mode)"
done

# bad values: the allocator's one-line warning (its parser, its text), and
# its fallback (plan_vs_allocator.sh compares with the allocator itself)
run env NUMASLAB_NODES=1000 "$TOOL" topo --json
expect_rc 0 "NODES=1000"
expect_one_line "NUMASLAB_NODES=1000" "numaslab: warning: NUMASLAB_NODES names no existing node, using all: 1000$"
[[ $(plan nodes) == "$all" ]] || fail "NUMASLAB_NODES=1000: plan nodes $(plan nodes), want all $all"
run env NUMASLAB_NODES=x-y "$TOOL" topo --json
expect_one_line "NUMASLAB_NODES=x-y" "numaslab: warning: bad value NUMASLAB_NODES='x-y', using the default$"
[[ $(plan nodes) == "$all" ]] || fail "NUMASLAB_NODES=x-y: plan nodes $(plan nodes), want all $all"
run env NUMASLAB_NODES=$first, "$TOOL" topo --json
expect_no_err "NUMASLAB_NODES=$first, (a trailing comma is accepted, as by the allocator)"
[[ $(plan nodes) == "[$first]" ]] || fail "NUMASLAB_NODES=$first,: plan nodes $(plan nodes)"
run env NUMASLAB_PAGES=gigantic "$TOOL" topo
expect_one_line "NUMASLAB_PAGES=gigantic" "numaslab: warning: bad value NUMASLAB_PAGES='gigantic', using the default$"
grep -q "NUMASLAB_PAGES=thp" "$T/out" || fail "NUMASLAB_PAGES=gigantic: plan does not fall back to thp (the default)"
run env NUMASLAB_PAGES=hugetlb NUMASLAB_HUGETLB_FALLBACK=maybe "$TOOL" topo --json
expect_one_line "NUMASLAB_HUGETLB_FALLBACK=maybe" "bad value NUMASLAB_HUGETLB_FALLBACK='maybe', using the default$"
[[ $(plan hugetlb_fallback) == True && $(plan pages) == *"then THP"* ]] ||
    fail "NUMASLAB_HUGETLB_FALLBACK=maybe: the plan does not keep the fallback: $(cat "$T/out")"
run env NUMASLAB_PAGES=hugetlb NUMASLAB_HUGETLB_FALLBACK=off "$TOOL" topo --json
[[ $(plan hugetlb_fallback) == False && $(plan pages) == *"only"* ]] || fail "NUMASLAB_HUGETLB_FALLBACK=off: $(cat "$T/out")"

# JSON escaping: quotes, backslashes and control characters in a string
run env "NUMASLAB_NODES=0\"\\	x" "$TOOL" topo --json
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["numaslab"]["nodes_option"] == "0\"\\\tx", d["numaslab"]["nodes_option"]' "$T/out" ||
    fail "topo --json with quotes in NUMASLAB_NODES is not valid JSON: $(cat "$T/out")"
ok "topo --json matches /sys; text form; plan follows NUMASLAB_NODES/PAGES/STRICT/INTERLEAVE; bad values warn once"
