#!/usr/bin/env bash
# The heap profiler (NUMASLAB_PROF) against what tests/tool/prof_prog.c
# allocated, read by Debian's google-pprof and by `numaslab prof`, under
# the normal and the hardened library:
#   - live shares of four sites of known bytes (1 : 2 : 4 : 1.6) within
#     sampling error, a freed site absent from live bytes but present in
#     allocated bytes with its known total, the profile at exit showing the
#     half of a site freed after the mid-run dump;
#   - `numaslab prof` names the sites (addr2line) in the right order, with
#     their node;
#   - interval profiles, a bad profile path (one warning, nothing lost),
#     ns_prof_dump with the profiler off (ENOTSUP, no file);
#   - blocks that realloc grew or shrank are estimated at their new size;
#   - realloc moving a sampled large block while another thread allocates
#     blocks where it was: both sites' live bytes exact (every block
#     sampled);
#   - 6 threads handing blocks to each other (contents checked) with two
#     forks while the profiler samples: no deadlock, no damage.
# Extra arguments: PROF_PROG HARDENED_LIB.
source "$(dirname "$0")/common.sh"
PROG=$6 HARD=$7
command -v google-pprof >/dev/null || { echo "$NAME: SKIP: google-pprof missing (apt-get install google-perftools)"; exit 77; }
command -v addr2line >/dev/null || { echo "$NAME: SKIP: addr2line missing (binutils)"; exit 77; }

# flat share (percent) of FUNCTION in `google-pprof --text` output FILE
share() { awk -v f="$2" '$6 == f { sub("%", "", $2); print $2; exit }' "$1"; }
# |got - want| <= tol, all in the same unit
near() { python3 -c "import sys; g,w,t=map(float,sys.argv[1:]); sys.exit(abs(g-w)>t)" "$1" "$2" "$3"; }
# estimated MB of FUNCTION's flat column
flat_mb() { awk -v f="$2" '$6 == f { print $1; exit }' "$1"; }

for lib in "$LIB" "$HARD"; do
    name=$(basename "$lib")
    rm -f "$T"/exit.*.heap
    run env LD_PRELOAD="$lib" NUMASLAB_PROF=1 NUMASLAB_PROF_SAMPLE=16K NUMASLAB_PROF_FILE="$T/exit.%p.heap" \
        "$PROG" sites "$T/mid.heap"
    expect_rc 0 "$name: prof_prog sites"
    grep -qx "dump 0 0" "$T/out" || fail "$name: ns_prof_dump failed: $(cat "$T/out")"
    grep -qx "bad 0" "$T/out" || fail "$name: blocks damaged: $(cat "$T/out")"
    expect_no_err "$name: prof_prog sites"
    head -1 "$T/mid.heap" | grep -q "@ heap_v2/16384$" || fail "$name: header: $(head -1 "$T/mid.heap")"
    exitp=$(ls "$T"/exit.*.heap)
    [[ -f $exitp ]] || fail "$name: no profile at exit"

    # live bytes: a 2,560,000, b 5,120,000, c 10,240,000, large 4,194,304
    google-pprof --text --inuse_space "$PROG" "$T/mid.heap" >"$T/live.txt" 2>"$T/pprof.err" ||
        fail "$name: google-pprof failed: $(cat "$T/pprof.err")"
    total=$(sed -n 's/^Total: \([0-9.]*\) MB$/\1/p' "$T/live.txt")
    near "$total" 21.1 3 || fail "$name: pprof total $total MB, want about 21.1 (22,114,304 bytes)"
    for pair in site_a:11.6 site_b:23.2 site_c:46.3 site_large:19.0; do
        f=${pair%%:*} want=${pair##*:}
        got=$(share "$T/live.txt" "$f")
        [[ -n $got ]] || fail "$name: $f missing from pprof's live sites: $(head -12 "$T/live.txt")"
        near "$got" "$want" 5 || fail "$name: $f has $got % of live bytes, want $want +- 5"
    done
    ok "$name: pprof live shares a/b/c/large $(share "$T/live.txt" site_a)/$(share "$T/live.txt" site_b)/$(share "$T/live.txt" site_c)/$(share "$T/live.txt" site_large) % (want 11.6/23.2/46.3/19.0)"
    [[ -z $(share "$T/live.txt" site_churn) ]] || fail "$name: freed site_churn shows live bytes"
    google-pprof --text --alloc_space "$PROG" "$T/mid.heap" >"$T/alloc.txt" 2>/dev/null
    churn=$(flat_mb "$T/alloc.txt" site_churn)
    near "$churn" 24.4 6 || fail "$name: site_churn allocated $churn MB, want about 24.4 (200000 x 128 B)"
    ok "$name: freed site_churn: 0 live, $churn MB allocated (want 24.4)"

    # at exit, half of site_c was freed
    google-pprof --text --inuse_space "$PROG" "$exitp" >"$T/exit.txt" 2>/dev/null
    c_exit=$(flat_mb "$T/exit.txt" site_c)
    near "$c_exit" 4.9 1.2 || fail "$name: site_c at exit $c_exit MB, want about 4.9 (half freed)"
    ok "$name: site_c at exit $c_exit MB (want 4.9)"

    # numaslab prof: names, order, node column
    run "$TOOL" prof --top 4 "$T/mid.heap"
    expect_rc 0 "$name: numaslab prof"
    rows=$(sed -n '/^top sites by live bytes:/,/^$/p' "$T/out" | grep -E '^ +[0-9]')
    first=$(echo "$rows" | head -1)
    echo "$first" | grep -q " site_c (prof_prog.c:" || fail "$name: numaslab prof: first site is not site_c: $rows"
    echo "$first" | grep -q " 0:" || fail "$name: numaslab prof: no node column: $first"
    for f in site_a site_b site_large; do
        echo "$rows" | grep -q " $f (prof_prog.c:" || fail "$name: numaslab prof: $f missing: $rows"
    done
    mb=$(echo "$first" | awk '{print $1}')
    near "$mb" 9.8 1.5 || fail "$name: numaslab prof: site_c $mb MiB, want about 9.8"
    ok "$name: numaslab prof ranks site_c first ($mb MiB, want 9.8) and names all four"
done

# --no-symbols: object+offset
run "$TOOL" prof --no-symbols "$T/mid.heap"
expect_rc 0 "numaslab prof --no-symbols"
grep -q "$(basename "$PROG")+0x" "$T/out" || fail "--no-symbols: no object+offset frames: $(head -8 "$T/out")"

# interval profiles: 22 MB of growth at 4 MiB steps
rm -f "$T"/exit.*
run env LD_PRELOAD="$LIB" NUMASLAB_PROF=1 NUMASLAB_PROF_INTERVAL=4M NUMASLAB_PROF_FILE="$T/iv.heap" "$PROG" sites "$T/mid2.heap"
expect_rc 0 "interval profiles"
n=$(ls "$T"/iv.heap.* 2>/dev/null | wc -l)
[[ $n -ge 3 && $n -le 8 ]] || fail "interval profiles: $n files for 22 MB at 4 MiB steps, want 3..8"
for f in "$T"/iv.heap.*; do
    head -1 "$f" | grep -q "^heap profile: " || fail "interval profile $f has no header"
done
ok "interval profiles: $n files"

# a profile that cannot be written: one warning, the program's result intact
run env LD_PRELOAD="$LIB" NUMASLAB_PROF=1 NUMASLAB_PROF_FILE=/nonexistent/dir/p.heap "$PROG" sites "$T/mid3.heap"
expect_rc 0 "bad profile path"
expect_one_line "bad profile path" "cannot write the heap profile"

# profiler off: ns_prof_dump says ENOTSUP (95) and writes nothing
run env LD_PRELOAD="$LIB" "$PROG" sites "$T/off.heap"
expect_rc 0 "profiler off"
grep -qx "dump -1 95" "$T/out" || fail "profiler off: ns_prof_dump: $(head -1 "$T/out"), want -1 ENOTSUP"
[[ ! -e $T/off.heap ]] || fail "profiler off: a profile was written"

# threads and forks while sampling
run timeout 120 env LD_PRELOAD="$LIB" NUMASLAB_PROF=1 NUMASLAB_PROF_SAMPLE=4K NUMASLAB_PROF_FILE="$T/thr.heap" "$PROG" threads 6
expect_rc 0 "6 threads with forks"
grep -q "^ok" "$T/out" || fail "threads: $(cat "$T/out")"
google-pprof --text --alloc_space "$PROG" "$T/thr.heap" >"$T/thr.txt" 2>/dev/null
x=$(flat_mb "$T/thr.txt" site_x)
near "$x" 115 25 || fail "threads: site_x allocated $x MB, want about 115 (120000 blocks of 16..2015 B)"
ok "6 threads, 2 forks: contents intact, site_x $x MB allocated (want 115)"

# realloc moving a sampled large block while another thread allocates
# where it was: with every block sampled, live bytes are exact (a sample
# lost or misplaced shows as 0.3 MB off)
run timeout 120 env LD_PRELOAD="$LIB" NUMASLAB_PROF=1 NUMASLAB_PROF_SAMPLE=1 "$PROG" realloc "$T/re.heap"
expect_rc 0 "realloc while another thread allocates"
grep -qx "dump 0 0" "$T/out" || fail "realloc: ns_prof_dump failed: $(cat "$T/out")"
grep -qx "bad 0" "$T/out" || fail "realloc: contents damaged: $(cat "$T/out")"
grow=$(sed -n 's/^grow \([0-9]*\)$/\1/p' "$T/out")
google-pprof --text --inuse_space "$PROG" "$T/re.heap" >"$T/re.txt" 2>/dev/null
g=$(flat_mb "$T/re.txt" site_grow) y=$(flat_mb "$T/re.txt" site_y)
gw=$(python3 -c "print(round($grow / 1048576, 2))")
near "${g:-0}" "$gw" 0.15 || fail "realloc: site_grow live $g MB, want $gw (the block's size at the end): $(head -8 "$T/re.txt")"
near "${y:-0}" 18.75 0.15 || fail "realloc: site_y live $y MB, want 18.75 (64 x 300 KiB): $(head -8 "$T/re.txt")"
ok "realloc: the moving block's sample follows it ($g MB, want $gw), the other thread's 64 blocks all live ($y MB, want 18.75)"

# resized blocks keep the odds of their size: 1000 blocks grown from
# 300 KiB to 1 MiB and 1000 shrunk from 4 MiB to 1 MiB, 1000 MiB per site,
# sampled every 4 MiB on average (about 220 samples a site: the estimate's
# standard error is about 7 %; keeping the odds of the first size would
# give 3.1x too little and 2.9x too much).  A grown block that was not
# sampled at 300 KiB and is sampled by its new bytes is recorded at
# realloc's caller (resizes): its allocation's stack was never taken.
run timeout 120 env LD_PRELOAD="$LIB" NUMASLAB_PROF=1 NUMASLAB_PROF_SAMPLE=4M "$PROG" resize "$T/rs.heap"
expect_rc 0 "resize"
grep -qx "dump 0 0" "$T/out" || fail "resize: ns_prof_dump failed: $(cat "$T/out")"
google-pprof --text --inuse_space "$PROG" "$T/rs.heap" >"$T/rs.txt" 2>/dev/null
u=$(flat_mb "$T/rs.txt" site_up) r=$(flat_mb "$T/rs.txt" resizes) d=$(flat_mb "$T/rs.txt" site_down)
u=$(python3 -c "print(${u:-0} + ${r:-0})")
near "$u" 1000 300 || fail "resize: site_up + resizes (grown to 1 MiB) estimated $u MB live, want 1000 +- 300: $(head -8 "$T/rs.txt")"
near "${d:-0}" 1000 300 || fail "resize: site_down (shrunk to 1 MiB) estimated $d MB live, want 1000 +- 300: $(head -8 "$T/rs.txt")"
ok "resize: grown blocks estimated at $u MB, shrunk ones at $d MB (1000 each, +- 300)"

# usage
run "$TOOL" prof
expect_rc 2 "prof without a file"
run "$TOOL" prof "$T/out"
expect_rc 1 "prof of a file that is not a profile"
echo "$NAME: PASS"
