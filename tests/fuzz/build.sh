#!/usr/bin/env bash
# build.sh - build the libFuzzer target fuzz_alloc with clang.
#
#   tests/fuzz/build.sh OUT_DIR [SOURCE_ROOT]
#
# Compiles tests/fuzz/fuzz_alloc.c and the allocator's sources (every
# src/**/*.c except src/override.c, so ASan keeps its own malloc and the
# ns_* API is what is fuzzed, instrumented too) with
# -fsanitize=fuzzer,address,undefined into OUT_DIR/fuzz_alloc.
# Environment: CLANG (default: clang on PATH), FUZZ_CFLAGS (extra flags, e.g.
# -DNS_HARDENED=1 for the hardened build).
# Exit status: 0 built; 77 clang or libFuzzer missing (message on stderr);
# 1 the build failed.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: build.sh OUT_DIR [SOURCE_ROOT]}
root=${2:-$(cd "$here/../.." && pwd)}
cc=${CLANG:-$(command -v clang || true)}
if [ -z "$cc" ] || ! [ -x "$cc" ]; then
    echo "SKIP: clang not found (apt-get install -y clang)" >&2
    exit 77
fi
mkdir -p "$out/obj" || exit 1

# libFuzzer present? (Debian: libclang-rt-14-dev, pulled in by clang)
probe=$out/obj/probe.c
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe"
if ! "$cc" -fsanitize=fuzzer,address -o "$out/obj/probe" "$probe" 2>"$out/obj/probe.log"; then
    echo "SKIP: $cc cannot build a libFuzzer target (apt-get install -y libclang-rt-14-dev): $(tail -1 "$out/obj/probe.log")" >&2
    exit 77
fi

SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
# src/free.c and src/stats.c call __atomic_load_n on ns_init_state, an
# _Atomic int: gcc accepts it, clang rejects it ("address argument to atomic
# operation must be a pointer to integer or pointer").  Until src/ uses
# atomic_load_explicit there, this macro casts the _Atomic away (it is a
# no-op for every other use).
SHIM='-D__atomic_load_n(p,o)=__atomic_load_n((__typeof__((void)0,*(p))*)(p),o)'
CFLAGS="-std=gnu11 -g -O1 $SAN -DNS_BUILDING=1 -I$root/src -I$root/include -Wall -Wextra -Wno-unused-parameter ${FUZZ_CFLAGS:-}"

srcs=$(cd "$root" && find src -name '*.c' ! -name override.c | sort)
[ -n "$srcs" ] || { echo "build.sh: no sources under $root/src" >&2; exit 1; }
rm -f "$out"/obj/*.o "$out/obj/build.log"
fail=0
jobs_max=$(nproc)
pids=()
for s in $srcs; do
    o=$out/obj/$(echo "$s" | tr / _).o
    "$cc" $CFLAGS "$SHIM" -c "$root/$s" -o "$o" 2>>"$out/obj/build.log" &
    pids+=($!)
    if [ ${#pids[@]} -ge "$jobs_max" ]; then
        wait "${pids[0]}" || fail=1
        pids=("${pids[@]:1}")
    fi
done
for p in "${pids[@]}"; do wait "$p" || fail=1; done
if [ $fail = 0 ]; then
    "$cc" $CFLAGS -fsanitize=fuzzer -o "$out/fuzz_alloc" "$here/fuzz_alloc.c" "$out"/obj/*.o \
        -lhwloc -lnuma -lpthread 2>>"$out/obj/build.log" || fail=1
fi
if [ $fail != 0 ]; then
    cat "$out/obj/build.log" >&2
    echo "build.sh: build of fuzz_alloc failed" >&2
    exit 1
fi
echo "build.sh: built $out/fuzz_alloc"
