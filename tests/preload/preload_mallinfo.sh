#!/usr/bin/env bash
# preload_mallinfo.sh LIB HARDENED_LIB PROG - a program that calls
# mallinfo2 gets numaslab's figures under LD_PRELOAD of either library
# (PROG checks them against ns_stats_get and against what it allocated),
# and glibc's without it.
source "$(dirname "$0")/common.sh"
check_lib "$1"
check_lib "$2"
prog=$3
for lib in "$1" "$2"; do
    out=$(LD_PRELOAD=$lib "$prog") || fail "under $(basename "$lib"): $out"
    [[ $out == "mallinfo2: numaslab "* ]] || fail "under $(basename "$lib") the program did not see numaslab: $out"
    log "$(basename "$lib"): $out"
done
out=$("$prog") || fail "without preload: $out"
[[ $out == "mallinfo2: not numaslab" ]] || fail "without preload: $out"
log "without preload: glibc's mallinfo2 (as expected)"
