#!/usr/bin/env bash
# Quick start: install what is missing, build numaslab, show the machine as
# numaslab sees it, and run a real program (python3) with numaslab preloaded,
# printing the allocator's statistics when it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DNUMASLAB_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "== numaslab topo"
build/numaslab topo
echo "== numaslab run --stats -- python3 (sorts and hashes 200k random strings)"
build/numaslab run --stats -- /usr/bin/python3 -c '
import random, hashlib
random.seed(1)
words = ["".join(random.choice("abcdefghij") for _ in range(random.randint(4, 40))) for _ in range(200000)]
words.sort()
print("python3 under numaslab: %d strings, sha256 of the sorted list %s" % (len(words), hashlib.sha256("".join(words).encode()).hexdigest()[:16]))
'
