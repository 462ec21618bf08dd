#!/usr/bin/env bash
# The whole test suite: install what is missing, build (Release, with the
# sanitizer builds of the stress tests), run every test with ctest.
#   scripts/test.sh [extra ctest args, e.g. -R stress]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNUMASLAB_TESTS=ON >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure --timeout 600 "$@"
