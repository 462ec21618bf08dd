#!/usr/bin/env bash
# exports.sh BUILD_DIR SOURCE_DIR - internals do not leave the library.
#
# The symbols that libnumaslab.so exports (nm -D) and that libnumaslab.a
# defines globally (nm -g) must be exactly the malloc family (with glibc's
# introspection: mallinfo, mallinfo2, malloc_stats, malloc_info, mallopt) plus the
# functions declared in include/numaslab.h: no internal, whatever its
# prefix.  Then a program that defines functions named like common
# internals links libnumaslab.a and runs (tests/misc/clash.c).
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

{
    printf '%s\n' malloc free calloc realloc reallocarray posix_memalign aligned_alloc memalign valloc \
        pvalloc malloc_usable_size malloc_trim cfree mallinfo mallinfo2 malloc_stats malloc_info mallopt
    # every function the public header declares: "type name(" / "type (name)("
    sed -n 's/^[a-z_ ]*[ *(]\(ns_[a-z_0-9]*\))\{0,1\}(.*/\1/p' "$src/include/numaslab.h"
} | sort -u >"$tmp/want"
[ "$(wc -l <"$tmp/want")" -ge 25 ] || { echo "exports: read only $(wc -l <"$tmp/want") names from numaslab.h" >&2; exit 1; }

nm -D --defined-only "$build/libnumaslab.so" | awk '{print $NF}' | sed 's/@.*//' | sort -u >"$tmp/so"
nm -g --defined-only "$build/libnumaslab.a" | awk 'NF == 3 {print $3}' | sort -u >"$tmp/a"
fail=0
for lib in so a; do
    if ! diff -u "$tmp/want" "$tmp/$lib" >"$tmp/diff.$lib"; then
        echo "exports: libnumaslab.$lib exports differ from numaslab.h + the malloc family (- missing, + extra):"
        grep '^[-+][a-z_]' "$tmp/diff.$lib" || true
        fail=1
    else
        echo "exports: libnumaslab.$lib exports exactly $(wc -l <"$tmp/want") symbols: the malloc family and numaslab.h"
    fi
done

# a program with functions named like numaslab's internals links the archive
cc -O1 -fno-builtin -I"$src/include" -o "$tmp/clash" "$src/tests/misc/clash.c" "$build/libnumaslab.a" \
    -lpthread -ldl 2>"$tmp/link.err" || { echo "exports: clash.c does not link with libnumaslab.a:"; cat "$tmp/link.err"; exit 1; }
"$tmp/clash" || { echo "exports: clash program failed"; exit 1; }
exit $fail
