#!/usr/bin/env bash
# Install into a temporary prefix, then build two consumers against it: one
# with pkg-config, one with CMake's find_package.  Both must run and get
# their memory from numaslab (ns_node_of(malloc'd pointer) == 0).
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(dirname "$(find "$tmp/prefix" -name libnumaslab.so | head -n1)")
cat >"$tmp/consumer.c" <<'C'
#include <numaslab.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void)
{
    char *p = malloc(100);
    if (!p) return 1;
    strcpy(p, "hello");
    int node = ns_node_of(p);
    void *q = ns_malloc(5000);
    int ok = node == 0 && ns_node_of(q) == 0 && strcmp(p, "hello") == 0;
    ns_free(q);
    free(p);
    printf("consumer: node %d, %s\n", node, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
C
export PKG_CONFIG_PATH=$libdir/pkgconfig
cc "$tmp/consumer.c" -o "$tmp/pc_consumer" $(pkg-config --cflags --libs numaslab) -Wl,-rpath,"$libdir"
"$tmp/pc_consumer"
mkdir -p "$tmp/cm"
cp "$tmp/consumer.c" "$tmp/cm/"
cat >"$tmp/cm/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.18)
project(consumer C)
find_package(numaslab REQUIRED)
add_executable(cm_consumer consumer.c)
target_link_libraries(cm_consumer numaslab::numaslab)
add_executable(cm_consumer_static consumer.c)
target_link_libraries(cm_consumer_static numaslab::numaslab_static)
CM
cmake -S "$tmp/cm" -B "$tmp/cm/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_BUILD_RPATH="$libdir" >/dev/null
cmake --build "$tmp/cm/build" >/dev/null
"$tmp/cm/build/cm_consumer"
"$tmp/cm/build/cm_consumer_static"
echo "install: pkg-config and find_package consumers work"
