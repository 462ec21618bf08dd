#!/usr/bin/env bash
# The manual pages: numaslab --help, help CMD, CMD --help for every command;
# usage errors are one line with exit status 2.
source "$(dirname "$0")/common.sh"
for args in "--help" "-h" "help"; do
    run "$TOOL" $args
    expect_rc 0 "numaslab $args"
    for sec in NAME SYNOPSIS DESCRIPTION COMMANDS "EXIT STATUS" EXAMPLES; do
        grep -q "^$sec" "$T/out" || fail "numaslab $args: no $sec section"
    done
done
for cmd in topo run options stats top; do
    for form in "$cmd --help" "help $cmd" "$cmd -h"; do
        run "$TOOL" $form
        expect_rc 0 "numaslab $form"
        grep -q "^NAME" "$T/out" && grep -q "^SYNOPSIS" "$T/out" && grep -q "numaslab $cmd" "$T/out" ||
            fail "numaslab $form: not the manual page of $cmd"
        expect_no_err "numaslab $form"
    done
done
# every run option is documented on its page
"$TOOL" run --help >"$T/run"
for o in --nodes --strict --interleave --pages --stats --stats-file --set --lib; do
    grep -q -- "^    $o" "$T/run" || fail "run --help does not document $o"
done
run "$TOOL" --version
expect_rc 0 "--version"
grep -qE '^numaslab [0-9]+\.[0-9]+\.[0-9]+$' "$T/out" || fail "--version: $(cat "$T/out")"
run "$TOOL" frobnicate
expect_rc 2 "unknown command"
expect_one_line "unknown command" "unknown command 'frobnicate'"
run "$TOOL" help frobnicate
expect_rc 2 "help of an unknown command"
expect_one_line "help of an unknown command" "frobnicate"
run "$TOOL"
expect_rc 2 "no command"
grep -q "^SYNOPSIS" "$T/err" || fail "no command: no usage on stderr"
run "$TOOL" stats
expect_rc 2 "stats without PID"
expect_one_line "stats without PID" "no process id given"
for cmd in topo options; do
    run "$TOOL" $cmd --bogus
    expect_rc 2 "$cmd --bogus"
    expect_one_line "$cmd --bogus" "unknown option '--bogus'"
done
# the man pages are made from the same texts and the option table
run "$TOOL" man 1
expect_rc 0 "man 1"
head -n1 "$T/out" | grep -q '^\.TH NUMASLAB 1 ' || fail "man 1: no .TH line"
for cmd in topo run stats top options; do
    "$TOOL" $cmd --help | sed -n 2p | sed 's/^    //; s/-/\\-/g' >"$T/name"
    grep -qF -- "$(cat "$T/name")" "$T/out" || fail "man 1 lacks the NAME line of $cmd: $(cat "$T/name")"
done
run "$TOOL" man 3 "$HERE/../../include/numaslab.h"
expect_rc 0 "man 3"
for v in $("$TOOL" options --markdown | sed -n 's/^| `\(NUMASLAB_[A-Z_0-9]*\)`.*/\1/p'); do
    grep -q "^\.B $v " "$T/out" || fail "man 3 lacks option $v"
done
grep -q "ns_stats_get_sized" "$T/out" && grep -q '^\.SH "*MALLINFO2' "$T/out" || fail "man 3 lacks the API or the statistics"
run "$TOOL" man 4
expect_rc 2 "man 4"
ok "manual pages of numaslab, topo, run, options, stats, top, and numaslab(1), numaslab(3); usage errors are one line, exit 2"
