#!/usr/bin/env bash
# layers.sh BUILD_DIR - the layer rule holds for the built core
# (scripts/check_layers.sh), and the check does catch a violation: moved
# into src/superslab, the objects of src/numa/bin.c reference src/numa.
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")/../.." && pwd)
bash "$here/scripts/check_layers.sh" "$build"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/CMakeFiles"
cp -r "$build/CMakeFiles/numaslab_core_obj.dir" "$tmp/CMakeFiles/"
mv "$tmp/CMakeFiles/numaslab_core_obj.dir/src/numa/bin.c.o" "$tmp/CMakeFiles/numaslab_core_obj.dir/src/superslab/"
if out=$(bash "$here/scripts/check_layers.sh" "$tmp" 2>&1); then
    echo "layers: a planted violation was not found:"; echo "$out"; exit 1
fi
echo "$out" | grep -q "uses .* from src/numa, a layer above it" || { echo "layers: unexpected output: $out"; exit 1; }
echo "layers: a planted violation (bin.c in src/superslab) is reported: $(echo "$out" | head -n1)"
