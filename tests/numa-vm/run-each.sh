#!/bin/sh
# run-each.sh - runs INSIDE a VM (busybox sh): each argument is one command
# line, run in turn; one PASS/FAIL line each on stdout, the commands' own
# output on stderr; exit status = number of failed commands.
#   run-each.sh 'PROG ARGS' 'env NAME=VALUE PROG2' ...
# Used by scripts/cross-arm64.sh for the tests that qemu-user cannot run
# (fork with threads: qemu-aarch64 7.2 asserts in the child).
failed=0
for c in "$@"; do
    if sh -c "$c" >&2; then echo "PASS $c"; else echo "FAIL $c (exit $?)"; failed=$((failed + 1)); fi
done
exit $failed
