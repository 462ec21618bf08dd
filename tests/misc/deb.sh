#!/usr/bin/env bash
# deb.sh BUILD_DIR SOURCE_DIR - the Debian package: `cpack -G DEB` in the
# build directory makes it; it must hold both libraries, the archive, the
# header, pkg-config and CMake files, the tool and both manual pages.  As
# root it is then installed with dpkg -i and used: a program built with
# pkg-config from /usr alone, python3 under `numaslab run` (statistics at
# exit, and `numaslab stats` of it while it runs), python3 under the
# installed hardened library, the manual pages through man; then removed
# with dpkg -r, leaving none of its files.  SKIP (77) when not root, when
# dpkg or cpack is missing, or when a numaslab package is installed already
# (it is not replaced).
set -euo pipefail
build=$1 src=$2
skip() { echo "deb: SKIP: $*"; exit 77; }
fail() { echo "deb: FAIL: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || skip "not root (dpkg -i needs root)"
for c in cpack dpkg dpkg-deb cc pkg-config python3 flock; do
    command -v "$c" >/dev/null || skip "$c is not installed"
done
exec 9>/tmp/numaslab-deb-test.lock
flock 9                        # one package test at a time on this machine
if dpkg-query -W -f='${Status}' numaslab 2>/dev/null | grep -q "ok installed"; then
    skip "a numaslab package is installed already; not replacing it"
fi
tmp=$(mktemp -d)
installed=0
cleanup() {
    [[ $installed == 0 ]] || dpkg -P numaslab >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$build" && cpack -G DEB -B "$tmp/pkg") >"$tmp/cpack.log" 2>&1 || { cat "$tmp/cpack.log"; fail "cpack -G DEB failed"; }
deb=$(ls "$tmp"/pkg/numaslab_*.deb)
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$tmp/contents"
want=(/usr/lib/libnumaslab.so /usr/lib/libnumaslab.so.0 /usr/lib/libnumaslab-hardened.so /usr/lib/libnumaslab.a
      /usr/include/numaslab.h /usr/lib/pkgconfig/numaslab.pc /usr/lib/cmake/numaslab/numaslabConfig.cmake
      /usr/lib/cmake/numaslab/numaslabTargets.cmake /usr/bin/numaslab
      /usr/share/man/man1/numaslab.1.gz /usr/share/man/man3/numaslab.3.gz)
for f in "${want[@]}"; do
    grep -qx -- "$f" "$tmp/contents" || fail "$(basename "$deb") lacks $f"
done
dpkg-deb -f "$deb" Depends | grep -q libhwloc || fail "Depends lacks libhwloc: $(dpkg-deb -f "$deb" Depends)"
echo "deb: $(basename "$deb"): ${#want[@]} files checked, Depends: $(dpkg-deb -f "$deb" Depends)"

dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -i failed"; }
installed=1
dpkg-query -W -f='${Status}' numaslab | grep -q "install ok installed" || fail "not installed after dpkg -i"

# a program built against the installed files only
cat >"$tmp/c.c" <<'C'
#include <numaslab.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void)
{
    char *p = malloc(3 << 20);
    memset(p, 1, 3 << 20);
    struct mallinfo2 m = mallinfo2();
    int ok = ns_node_of(p) >= 0 && m.hblks >= 1 && m.hblkhd >= (3u << 20);
    free(p);
    printf("installed consumer: %s\n", ok ? "ok" : "FAILED");
    return !ok;
}
C
cc -o "$tmp/c" "$tmp/c.c" $(pkg-config --cflags --libs numaslab) || fail "cannot build against the installed package"
deps=$(ldd "$tmp/c")
grep -qE "libnumaslab.so.0 => (/usr)?/lib/libnumaslab.so.0" <<<"$deps" || fail "not linked with /usr/lib: $deps"
"$tmp/c"

# the installed tool runs python3 with the installed library
/usr/bin/numaslab run --stats=json --stats-file "$tmp/s.json" -- python3 -c '
import sys
maps = open("/proc/self/maps").read()
assert "/usr/lib/libnumaslab.so" in maps, "libnumaslab.so from /usr/lib is not mapped"
x = [str(i) * 10 for i in range(100000)]
print("python3 under the installed numaslab:", len(x))
' || fail "python3 under numaslab run"
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["in_use_bytes"] > 0 and d["mapped_bytes"] >= d["in_use_bytes"], d
' "$tmp/s.json" || fail "statistics at exit: $(head -c 300 "$tmp/s.json")"

# live statistics of a running python3 through the installed tool
/usr/bin/numaslab run -- python3 -c '
import time
end = time.time() + 20
while time.time() < end:
    x = [bytes(100 + i % 3000) for i in range(2000)]
    time.sleep(0.005)
' &
pid=$!
sleep 1
ok=0
for _ in 1 2 3 4 5; do
    if /usr/bin/numaslab stats --json "$pid" >"$tmp/live.json" 2>/dev/null &&
        python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["pid"] == int(sys.argv[2]) and d["in_use_bytes"] > 0' \
            "$tmp/live.json" "$pid"; then
        ok=1
        break
    fi
    sleep 1
done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
[[ $ok == 1 ]] || fail "numaslab stats of a running python3 failed: $(head -c 300 "$tmp/live.json")"

# the installed hardened library
out=$(LD_PRELOAD=/usr/lib/libnumaslab-hardened.so python3 -c '
maps = open("/proc/self/maps").read()
assert "libnumaslab-hardened.so" in maps
print(sum(len(str(i)) for i in range(100000)))')
[[ $out == 488890 ]] || fail "python3 under the hardened library printed '$out'"

# the manual pages
zcat /usr/share/man/man1/numaslab.1.gz | grep -q '^\.TH NUMASLAB 1' || fail "numaslab.1 is not a man page"
zcat /usr/share/man/man3/numaslab.3.gz | grep -q 'NUMASLAB_DECAY_MS' || fail "numaslab.3 lacks the options"
if command -v man >/dev/null; then
    MANWIDTH=80 man 1 numaslab 2>/dev/null | grep -q "numaslab stats" || fail "man 1 numaslab does not show the tool's page"
    MANWIDTH=80 man 3 numaslab 2>/dev/null | grep -q "ns_malloc_onnode" || fail "man 3 numaslab does not show the API"
fi

dpkg -r numaslab >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -r failed"; }
installed=0
for f in "${want[@]}"; do
    [[ ! -e $f && ! -L $f ]] || fail "$f is left after dpkg -r"
done
dpkg -P numaslab >/dev/null 2>&1 || true     # and no record of it either
echo "deb: installed with dpkg -i, used (pkg-config consumer, numaslab run, numaslab stats, hardened library, man), removed with dpkg -r"
