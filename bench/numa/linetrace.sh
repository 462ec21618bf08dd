#!/usr/bin/env bash
# Cross-thread line writes of the allocator, per operation, for one program.
#   bench/numa/linetrace.sh [--lib PATH] [--sites N] -- PROGRAM ARGS...
# Runs PROGRAM with libnumaslab-linetrace.so (build/, from a build with
# -DNUMASLAB_TESTS=ON) preloaded and prints linetrace.c's report with its
# top sites named by addr2line (function and file:line, inlined frames
# joined by " <- ").  Counts are exact; the time is not (every access of
# the allocator is a call).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
lib=$here/../../build/libnumaslab-linetrace.so
sites=8
while (($#)); do
    case $1 in
        --lib) lib=$2; shift 2 ;;
        --sites) sites=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "linetrace.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ -f $lib ]] || { echo "linetrace.sh: no $lib (cmake -DNUMASLAB_TESTS=ON; cmake --build build --target numaslab_linetrace)" >&2; exit 2; }
report=$(mktemp)
trap 'rm -f "$report"' EXIT
LINETRACE_FILE=$report LD_PRELOAD=$lib "$@" >/dev/null
grep -v ' site ' "$report"
grep ' site ' "$report" | head -n "$sites" | while read -r _ _ site _ _ n; do
    off=${site#*+}
    where=$(addr2line -f -i -p -s -e "$lib" "$off" | sed 's/ (inlined by) / <- /g' | tr '\n' ' ')
    printf '  %8s  %s\n' "$n" "$where"
done
