#!/usr/bin/env bash
# One option parser: `numaslab topo` and `numaslab options` say what the
# allocator does, for any environment.  For each environment below (odd and
# bad values included) it compares
#   - the plan of `numaslab topo --json` ("config") with the "config" of the
#     allocator's own JSON statistics (a program run under it through
#     `numaslab run --stats=json --stats-file F`): nodes_used, pages,
#     hugetlb_fallback, strict, interleave;
#   - the warning lines ("numaslab: warning: ...") of both: the same text,
#     once each (and as many as the case expects: 0 for a good value, 1 for
#     a bad one);
#   - every value `numaslab options` shows (the default, or "set: ... -> V")
#     with the value the allocator ended up with (optdump), and their warnings.
# A difference fails with both sides shown.
source "$(dirname "$0")/common.sh"

# node 0 missing (odd machines): the cases naming it warn
ids=$(python3 -c 'import json,sys; print(" ".join(str(n["id"]) for n in json.load(sys.stdin)["nodes"]))' \
      < <("$TOOL" topo --json))
w0=1
[[ " $ids " == *" 0 "* ]] && w0=0

# "WARNINGS|VAR=VALUE ...": the warning lines the environment gets
cases=(
    "$w0|NUMASLAB_NODES=0,"
    "1|NUMASLAB_NODES=1-0"
    "1|NUMASLAB_NODES=99"
    "0|NUMASLAB_NODES="
    "0|NUMASLAB_NODES=all"
    "0|NUMASLAB_NODES=ALL"
    "$w0|NUMASLAB_NODES=0"
    "$w0|NUMASLAB_NODES=0-0"
    "$w0|NUMASLAB_NODES=0-1023"
    "1|NUMASLAB_NODES=1024"
    "1|NUMASLAB_NODES=x"
    "1|NUMASLAB_NODES=,0"
    "1|NUMASLAB_NODES=0,,1"
    "1|NUMASLAB_HUGETLB_FALLBACK=maybe"
    "0|NUMASLAB_HUGETLB_FALLBACK=0"
    "0|NUMASLAB_HUGETLB_FALLBACK=1"
    "1|NUMASLAB_PAGES=hugetlb NUMASLAB_HUGETLB_FALLBACK=maybe"
    "0|NUMASLAB_PAGES=hugetlb NUMASLAB_HUGETLB_FALLBACK=yes"
    "0|NUMASLAB_PAGES=thp"
    "0|NUMASLAB_PAGES=none"
    "0|NUMASLAB_PAGES=NONE"
    "0|NUMASLAB_PAGES=hugetlb"
    "0|NUMASLAB_PAGES=auto"
    "1|NUMASLAB_PAGES=bogus"
    "1|NUMASLAB_PAGES="
    "0|NUMASLAB_STRICT=yes NUMASLAB_INTERLEAVE=on"
    "0|NUMASLAB_STRICT=TRUE NUMASLAB_INTERLEAVE=off"
    "2|NUMASLAB_STRICT=2 NUMASLAB_INTERLEAVE=maybe"
    "0|NUMASLAB_TCACHE_BYTES=64K"
    "0|NUMASLAB_TCACHE_BYTES=65536"
    "0|NUMASLAB_TCACHE_BYTES=1M"
    "0|NUMASLAB_TCACHE_BYTES=16M"
    "0|NUMASLAB_TCACHE_BYTES=1kib"
    "1|NUMASLAB_TCACHE_BYTES=17M"
    "1|NUMASLAB_TCACHE_BYTES=99G"
    "1|NUMASLAB_TCACHE_BYTES=-1"
    "1|NUMASLAB_TCACHE_BYTES=1Q"
    "0|NUMASLAB_DECAY_MS=0"
    "0|NUMASLAB_DECAY_MS=3600000"
    "1|NUMASLAB_DECAY_MS=3600001"
    "1|NUMASLAB_DECAY_MS=abc"
    "1|NUMASLAB_DECAY_MS=1K"
    "1|NUMASLAB_LARGE_CACHE=99999999999999999999"
    "2|NUMASLAB_NODES=x NUMASLAB_PAGES=bogus"
)

warnings() { grep '^numaslab: warning: ' "$1" || true; }
# what the tool shows as the value of every option: the default, or the
# value after "set:" for the options set in the environment
tool_values() {
    awk '/^NUMASLAB_/ { name = tolower(substr($1, 10)); order[n++] = name; val[name] = $4 }
         /^    set: / { val[name] = $NF }
         END { for (i = 0; i < n; i++) print order[i] "=" val[order[i]] }' "$1"
}
# compare WHAT A-FILE B-FILE A-NAME B-NAME: fail with a diff
same() {
    diff -u --label "$4" --label "$5" "$2" "$3" >"$T/diff" ||
        fail "$1: $4 and $5 differ:"$'\n'"$(cat "$T/diff")"
}

n=0
for c in "${cases[@]}"; do
    want=${c%%|*}
    read -ra vars <<<"${c#*|}"
    what="${vars[*]}"

    # the tool's plan and the allocator's report
    run env "${vars[@]}" "$TOOL" topo --json
    expect_rc 0 "topo --json, $what"
    cp "$T/out" "$T/topo.json"
    cp "$T/err" "$T/topo.err"
    rm -f "$T/stats.json"
    run env "${vars[@]}" "$TOOL" run --stats=json --stats-file "$T/stats.json" -- "$ALLOC" 10 64 5
    expect_rc 0 "the allocator, $what"
    cp "$T/err" "$T/run.err"
    [[ -s $T/stats.json ]] || fail "$what: the allocator wrote no statistics (stderr: $(cat "$T/run.err"))"
    printf '%s\n' "$what" >"$T/c$n.what"
    mv "$T/topo.json" "$T/c$n.topo.json"
    mv "$T/stats.json" "$T/c$n.stats.json"
    warnings "$T/topo.err" >"$T/w.topo"
    warnings "$T/run.err" >"$T/w.alloc"
    same "$what: warnings" "$T/w.topo" "$T/w.alloc" "numaslab topo" "allocator"
    [[ $(nlines "$T/w.topo") == "$want" ]] ||
        fail "$what: $(nlines "$T/w.topo") warning line(s), want $want: $(cat "$T/w.topo")"
    # topo says nothing else; run adds at most its hugetlb note
    [[ $(grep -cv '^numaslab: warning: ' "$T/topo.err") == 0 ]] || fail "$what: topo stderr: $(cat "$T/topo.err")"
    [[ $(grep -v '^numaslab: warning: ' "$T/run.err" | grep -cv '^numaslab run: warning: --pages hugetlb') == 0 ]] ||
        fail "$what: run stderr: $(cat "$T/run.err")"

    # every option's value: numaslab options and the allocator (optdump)
    run env "${vars[@]}" "$TOOL" options
    expect_rc 0 "options, $what"
    tool_values "$T/out" >"$T/v.tool"
    warnings "$T/err" >"$T/w.tool"
    run env "${vars[@]}" "$OPTDUMP"
    expect_rc 0 "optdump, $what"
    cp "$T/out" "$T/v.alloc"
    # the allocator also checks the node list against the machine's nodes
    # (compared with numaslab topo above); here only the parser's warnings
    warnings "$T/err" | { grep -v 'names no existing node' || true; } >"$T/w.alloc"
    same "$what: option values" "$T/v.tool" "$T/v.alloc" "numaslab options" "allocator"
    # the option warnings (the parser's)
    same "$what: option warnings" "$T/w.tool" "$T/w.alloc" "numaslab options" "allocator"
    n=$((n + 1))
done

# the plans against the allocator's reports: every case in one python
python3 - "$T" "$n" >"$T/cfg" <<'EOF' || fail "$(cat "$T/cfg")"
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
keys = ["nodes_used", "pages", "hugetlb_fallback", "strict", "interleave", "policy"]
bad = []
for i in range(n):
    what = open("%s/c%d.what" % (d, i)).read().strip()
    plan = json.load(open("%s/c%d.topo.json" % (d, i)))["config"]
    used = json.load(open("%s/c%d.stats.json" % (d, i)))["config"]
    if sorted(plan) != sorted(keys) or sorted(used) != sorted(keys):
        bad.append("%s: config keys: numaslab topo %s, allocator %s" % (what, sorted(plan), sorted(used)))
        continue
    bad += ["%s: %s: numaslab topo %s, allocator %s" % (what, k, json.dumps(plan[k]), json.dumps(used[k]))
            for k in keys if plan[k] != used[k]]
if bad:
    print("the plan of numaslab topo --json and the allocator's config differ:\n  " + "\n  ".join(bad))
    sys.exit(1)
EOF
ok "$n environments: numaslab topo's plan = the allocator's config, numaslab options = the values it uses, the same warnings"
