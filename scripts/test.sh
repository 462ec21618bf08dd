#!/usr/bin/env bash
# The whole test suite (CI runs this): install what is missing, then
#  1. a Release build with the sanitizer builds of the stress tests: every
#     test (ctest), including the layer check, the export check and the
#     fast-path instruction budget;
#  2. a Debug build (assertions, validators of every slab, bin, SuperSlab
#     and thread cache at each slow-path state change, lock-order checks):
#     the unit, integration, stress and fork tests, the stress tests at
#     fewer rounds (Debug code runs at -O0 with O(slab) checks);
#  3. an arm64 cross build (build-arm64): its unit, integration and stress
#     tests under qemu-user, and its NUMA tests in an arm64 VM
#     (scripts/cross-arm64.sh, README "Architectures").
# Longer runs are labelled "long" and are not part of it (README: Tests).
#   scripts/test.sh [extra ctest args for both runs, e.g. -R stress]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNUMASLAB_TESTS=ON >/dev/null
cmake --build build -j"$jobs"
cmake -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug -DNUMASLAB_TESTS=ON -DNUMASLAB_SANITIZER_TESTS=OFF >/dev/null
cmake --build build-debug -j"$jobs"
status=0
echo "== Release build: every test"
ctest --test-dir build --output-on-failure --timeout 600 -LE long "$@" || status=1
echo "== Debug build (validators, lock order): unit, integration, stress, fork"
STRESS_ROUNDS=20 ctest --test-dir build-debug --output-on-failure --timeout 600 -L 'unit|integration|stress|fork' -LE long "$@" || status=1
echo "== arm64: cross build, tests under qemu-user (4 and 64 KiB pages), NUMA VM"
bash scripts/cross-arm64.sh build-arm64 || status=1
exit $status
