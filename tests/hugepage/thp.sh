#!/usr/bin/env bash
# thp.sh - run a huge-page test with transparent huge pages available.
#
#   thp.sh [--thp always|madvise] [--env NAME=VALUE]... -- PROGRAM [ARGS...]
#
# --thp MODE: run under that THP mode (root; restored afterwards).
# If THP is "never" (/sys/kernel/mm/transparent_hugepage/enabled), switch
# it to "madvise" for the run and restore "never" afterwards (an EXIT trap:
# also on failure, Ctrl-C or TERM; the program runs under `timeout` so the
# trap gets to run before ctest's own timeout).  Not root then: skip (77).
# "madvise" and "always" are left alone.  The --env variables are set for
# the program only (numaslab reads its options once, at start-up);
# --unset NAME removes one.
#
# Exit status: the program's (77 = skipped), 124 timed out.
set -u
THP=/sys/kernel/mm/transparent_hugepage/enabled
LIMIT=${HP_TIMEOUT:-100}
envs=() unsets=() force=""
while (($#)); do
    case $1 in
        --thp) force=$2; shift 2 ;;
        --env) envs+=("$2"); shift 2 ;;
        --unset) unsets+=("-u" "$2"); shift 2 ;;
        --) shift; break ;;
        *) break ;;
    esac
done
(($#)) || { echo "usage: thp.sh [--env N=V]... -- PROGRAM [ARGS...]" >&2; exit 2; }

if [[ ! -r $THP ]]; then
    echo "SKIP: this kernel has no transparent huge pages ($THP is missing)"
    exit 77
fi
mode=$(sed -n 's/.*\[\(.*\)\].*/\1/p' "$THP")
restore=""
if [[ -n $force && $mode != "$force" ]]; then
    if [[ $(id -u) != 0 ]]; then
        echo "SKIP: running under THP '$force' (now '$mode') needs root"
        exit 77
    fi
    restore=$mode
    trap 'echo "$restore" > "$THP" && echo "thp.sh: THP restored to [$restore]"' EXIT
    trap 'exit 130' INT TERM
    echo "$force" > "$THP" || { echo "thp.sh: cannot set THP to $force" >&2; exit 1; }
    echo "thp.sh: THP was [$mode]: set to [$force] for this test"
elif [[ $mode == never ]]; then
    if [[ $(id -u) != 0 ]]; then
        echo "SKIP: THP is 'never' and switching it to 'madvise' for the test needs root"
        exit 77
    fi
    restore=never
    trap 'echo "$restore" > "$THP" && echo "thp.sh: THP restored to [$restore]"' EXIT
    trap 'exit 130' INT TERM
    echo madvise > "$THP" || { echo "thp.sh: cannot set THP to madvise" >&2; exit 1; }
    echo "thp.sh: THP was [never]: set to [madvise] for this test"
fi
rc=0
env "${unsets[@]}" "${envs[@]}" timeout -k 5 "$LIMIT" "$@" || rc=$?
exit $rc
