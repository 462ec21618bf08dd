#!/usr/bin/env bash
# numaslab options, and option parsing with bad values: one warning line
# naming the variable, and the default kept (shown by the tool, and by the
# allocator itself through optdump, which prints the options it ended up with).
source "$(dirname "$0")/common.sh"
run "$TOOL" options
expect_rc 0 "options"
expect_no_err "options"
rows=$("$TOOL" options --markdown | tail -n +3 | wc -l)
[[ $(grep -c '^NUMASLAB_' "$T/out") == "$rows" && $rows -ge 10 ]] || fail "options: $rows markdown rows, text differs"
for o in STATS STATS_FORMAT STATS_FILE NODES PAGES DECAY_MS; do
    grep -q "^NUMASLAB_$o " "$T/out" || fail "options: NUMASLAB_$o missing"
done
# --markdown does not depend on the environment
[[ $(NUMASLAB_DECAY_MS=abc "$TOOL" options --markdown 2>&1) == $("$TOOL" options --markdown) ]] ||
    fail "options --markdown changes with the environment"

# the tool shows the value the allocator will use
run env NUMASLAB_DECAY_MS=250 NUMASLAB_LARGE_CACHE=8M "$TOOL" options
expect_no_err "good values"
grep -q "set: NUMASLAB_DECAY_MS='250' -> 250$" "$T/out" && grep -q "set: NUMASLAB_LARGE_CACHE='8M' -> 8M$" "$T/out" ||
    fail "options with good values: $(grep set: "$T/out")"
run env NUMASLAB_DECAY_MS=abc "$TOOL" options
expect_one_line "tool, DECAY_MS=abc" "NUMASLAB_DECAY_MS='abc', using the default"
grep -q "set: NUMASLAB_DECAY_MS='abc' -> 1000$" "$T/out" || fail "options, DECAY_MS=abc: $(grep set: "$T/out")"

# the allocator: one warning per bad value, default kept
dump() { sed -n "s/^$1=//p" "$T/out"; }
run env NUMASLAB_DECAY_MS=250 NUMASLAB_STATS=1 NUMASLAB_STATS_FORMAT=json NUMASLAB_STATS_FILE=/dev/null "$OPTDUMP"
expect_no_err "optdump, good values"
[[ $(dump decay_ms) == 250 && $(dump stats) == 1 && $(dump stats_format) == json && $(dump stats_file) == /dev/null ]] ||
    fail "optdump, good values: $(cat "$T/out")"
for bad in DECAY_MS=abc DECAY_MS=-1 DECAY_MS=3600001 TCACHE_BYTES=17M LARGE_CACHE=1Q STATS=maybe STRICT=2; do
    var=${bad%%=*}
    field=$(tr 'A-Z' 'a-z' <<<"$var")
    run env NUMASLAB_$bad "$OPTDUMP"
    expect_rc 0 "optdump NUMASLAB_$bad"
    expect_one_line "optdump NUMASLAB_$bad" "NUMASLAB_$var"
    run env "$OPTDUMP"
    want=$(dump "$field")
    run env NUMASLAB_$bad "$OPTDUMP"
    [[ $(dump "$field") == "$want" ]] || fail "NUMASLAB_$bad: $field = $(dump "$field"), want the default $want"
done
# through numaslab run --set: the allocator's single warning, the program runs
run "$TOOL" run --set DECAY_MS=abc -- "$ALLOC" 10 64 5
expect_rc 0 "run --set DECAY_MS=abc"
expect_one_line "run --set DECAY_MS=abc" "NUMASLAB_DECAY_MS='abc', using the default"
ok "options listed; bad values: one warning naming the variable, default kept (tool and allocator)"
