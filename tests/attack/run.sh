#!/usr/bin/env bash
# tests/attack/run.sh - run every attack program against one malloc and
# compare what happened with an expectation table.
#
#   run.sh LIB EXPECT_FILE [BINDIR]
#
# LIB          the library to preload (build/libnumaslab.so,
#              build/libnumaslab-hardened.so), or "none" for the C library's
#              own malloc (glibc).
# EXPECT_FILE  expect-default.txt, expect-hardened.txt, or "-": run the
#              attacks listed in expect-default.txt and only report what
#              happened (how the README's glibc column was measured).
# BINDIR       where the attack_* programs are (ctest passes the build's);
#              without it they are compiled here with cc into a temporary
#              directory.
#
# Each program runs with LD_PRELOAD=LIB (the programs are linked normally,
# never against numaslab), the allocators' default settings (NUMASLAB_*,
# MALLOC_* and GLIBC_TUNABLES of the caller are dropped) and a 60 s timeout;
# its stdout, stderr and exit status give the outcome:
#   abort         killed by SIGABRT, and stderr has exactly one report line:
#                 a line starting with "numaslab:" (with LIB=none: any line);
#                 lines from elsewhere are not counted
#   not detected  exit 3: the program printed the overlap it achieved
#   repeats       exit 4 (freed_words): a value repeats in freed blocks
#   no repeats    exit 5 (freed_words)
#   anything else (exit 0: the attack had no effect and nothing was
#   reported; a crash; a timeout; several report lines) is printed as it is.
# An expected abort must also carry the table's text in its report line.
#
# The table (one attack per line, '#' comments):
#   attack | expected outcome | text the report line contains (abort only) [| retry]
# "retry": the outcome depends on random keys or layout, and a run in which
# the attack had no effect (exit 0: nothing detected, nothing overlapped) is
# run again, up to three runs in all.
# An attack NAME_nocache runs attack_NAME with the thread caches off
# (NUMASLAB_TCACHE_BYTES=0; GLIBC_TUNABLES=glibc.malloc.tcache_count=0).
#
# Exit status 1 (FAIL) when an attack the table expects to be detected is
# not (or is caught by another check), when freed blocks that repeated
# nothing repeat a value, when malloc does not come from LIB, or on any
# outcome outside the table's words.  An attack now detected that the table
# calls "not detected" (or "repeats" -> "no repeats") passes with a NOTE:
# update the table and the README's "Security" section.
set -u
if [ $# -lt 2 ]; then
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
LIB=$1
EXPECT=$2
BINDIR=${3:-}
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "$LIB" != none ] && [ ! -f "$LIB" ]; then
    echo "run.sh: no library $LIB" >&2
    exit 2
fi
report_only=0
if [ "$EXPECT" = - ]; then
    report_only=1
    EXPECT=$HERE/expect-default.txt
fi
if [ ! -f "$EXPECT" ]; then
    echo "run.sh: no expectation table $EXPECT" >&2
    exit 2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ns-attack.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
if [ -z "$BINDIR" ]; then
    BINDIR=$WORK/bin
    mkdir -p "$BINDIR"
    for src in "$HERE"/*.c; do
        name=$(basename "$src" .c)
        if ! ${CC:-cc} -O2 -fno-builtin -Wall -Wextra -pthread -o "$BINDIR/attack_$name" "$src" -ldl; then
            echo "run.sh: cannot compile $src" >&2
            exit 2
        fi
    done
fi
ulimit -c 0 2>/dev/null || true        # no core files from the expected aborts
# the allocators' defaults: no option from the caller's environment
for v in $(compgen -e | grep -E '^(NUMASLAB_|MALLOC_)'); do unset "$v"; done
unset GLIBC_TUNABLES LD_PRELOAD

trim() { local s=$1; s=${s#"${s%%[![:space:]]*}"}; s=${s%"${s##*[![:space:]]}"}; printf '%s' "$s"; }

lib_real=
[ "$LIB" != none ] && lib_real=$(readlink -f "$LIB")
status=0
count=0
printf '%-4s %-22s %-14s %-14s %s\n' "" "attack" "expected" "observed" "report"
while IFS= read -r line || [ -n "$line" ]; do
    line=${line%%#*}
    [ -z "$(trim "$line")" ] && continue
    IFS='|' read -r name want text retry <<<"$line"
    name=$(trim "$name")
    want=$(trim "$want")
    text=$(trim "${text:-}")
    retry=$(trim "${retry:-}")
    prog=$BINDIR/attack_${name%_nocache}
    envs=()
    if [ "$name" != "${name%_nocache}" ]; then
        envs=(NUMASLAB_TCACHE_BYTES=0 GLIBC_TUNABLES=glibc.malloc.tcache_count=0)
    fi
    if [ ! -x "$prog" ]; then
        echo "FAIL $name: no program $prog"
        status=1
        continue
    fi
    count=$((count + 1))
    out=$WORK/$name.out
    err=$WORK/$name.err
    attempt=0
    while :; do
        attempt=$((attempt + 1))
        pre=()
        [ "$LIB" != none ] && pre=(LD_PRELOAD="$LIB")
        # (the group's 2>/dev/null: bash's own "Aborted" notice)
        { timeout 60 env "${envs[@]}" "${pre[@]}" "$prog" >"$out" 2>"$err" </dev/null; } 2>/dev/null
        rc=$?
        # "retry": a run where the attack had no effect (exit 0) is a
        # known random miss; three in a row are not
        [ "$retry" = retry ] && [ $rc -eq 0 ] && [ $attempt -lt 3 ] || break
    done

    # the outcome
    msg=
    if [ "$LIB" = none ]; then
        reports=$(grep -c . "$err")
        msg=$(grep -m1 . "$err")
    else
        reports=$(grep -c '^numaslab:' "$err")
        msg=$(grep -m1 '^numaslab:' "$err")
    fi
    case $rc in
    124) got="timeout" ;;
    134) if [ "$reports" -eq 1 ]; then got="abort"; else got="abort with $reports report lines"; fi ;;
    3) got="not detected"; msg=$(grep -m1 '^NOT DETECTED' "$out") ;;
    4) got="repeats"; msg=$(grep -m1 '^REPEATS' "$out") ;;
    5) got="no repeats"; msg=$(grep -m1 '^NO REPEATS' "$out") ;;
    0) got="no effect"; msg=$(tail -n1 "$out") ;;
    2) got="setup failed"; msg=$(tail -n1 "$out") ;;
    *) if [ "$rc" -gt 128 ]; then got="crash (SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128))))"
       else got="exit $rc"; fi ;;
    esac

    # malloc must come from the library under test
    from=$(sed -n 's/^malloc-from: //p' "$out" | head -n1)
    origin_ok=1
    if [ "$LIB" != none ]; then
        [ -n "$from" ] && [ "$(readlink -f "$from")" = "$lib_real" ] || origin_ok=0
    else
        case $from in *libc.so*) ;; *) origin_ok=0 ;; esac
    fi

    verdict=PASS
    note=
    if [ $origin_ok -eq 0 ]; then
        verdict=FAIL
        note="malloc comes from '${from:-?}', not from $LIB"
    elif [ $report_only -eq 1 ]; then
        verdict=----
    elif [ "$got" = "$want" ]; then
        if [ "$want" = abort ] && [ -n "$text" ] && [[ $msg != *"$text"* ]]; then
            verdict=FAIL
            note="the report is not the expected one ($text)"
        fi
    elif [ "$want" = "not detected" ] && [ "$got" = abort ]; then
        note="NOTE: now detected; update $(basename "$EXPECT") and the README's Security section"
    elif [ "$want" = repeats ] && [ "$got" = "no repeats" ]; then
        note="NOTE: no value repeats now; update $(basename "$EXPECT") and the README's Security section"
    else
        verdict=FAIL
    fi
    [ $report_only -eq 1 ] && want=-
    printf '%-4s %-22s %-14s %-14s %s\n' "$verdict" "$name" "$want" "$got" "$msg"
    [ $attempt -gt 1 ] && echo "     (attempt $attempt: the earlier ones had no effect, a known random miss)"
    [ -n "$note" ] && echo "     $note"
    if [ "$verdict" = FAIL ]; then
        status=1
        echo "     --- stdout of $name (exit status $rc):"
        sed 's/^/     | /' "$out"
        echo "     --- stderr:"
        sed 's/^/     | /' "$err"
    fi
done <"$EXPECT"

if [ $count -eq 0 ]; then
    echo "run.sh: no attack in $EXPECT" >&2
    exit 2
fi
if [ $status -ne 0 ]; then
    echo "FAIL: an attack's outcome against $LIB differs from $(basename "$EXPECT")"
else
    echo "OK: $count attacks against $LIB"
fi
exit $status
