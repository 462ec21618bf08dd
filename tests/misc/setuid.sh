#!/usr/bin/env bash
# setuid.sh BUILD_DIR SOURCE_DIR - a setuid program ignores NUMASLAB_*.
#
# Options are read with secure_getenv: in a setuid or setgid program (the
# kernel's AT_SECURE) they are not read at all, so that NUMASLAB_STATS_FILE
# cannot make a privileged program create or truncate a file the user
# names.  Checked with a program linked with libnumaslab.a, made setuid
# root and run as nobody: the statistics file must not appear; the same
# program without the setuid bit, run the same way, must create it (the
# control: the variables do work).  Needs root and setpriv: else SKIP.
set -euo pipefail
build=$1 src=$2
[ "$(id -u)" = 0 ] || { echo "setuid: SKIP: needs root (to make a setuid program)"; exit 77; }
command -v setpriv >/dev/null || { echo "setuid: SKIP: setpriv (util-linux) missing"; exit 77; }
tmp=$(mktemp -d /tmp/numaslab-setuid.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
mkdir "$tmp/out" && chmod 1777 "$tmp/out"
cat >"$tmp/prog.c" <<'C'
#include <stdlib.h>
#include <string.h>
int main(void)
{
    for (int i = 0; i < 1000; i++) {
        char *p = malloc(100 + i);
        if (!p)
            return 1;
        memset(p, i, 100 + i);
        free(p);
    }
    return 0;
}
C
cc -O1 -fno-builtin -o "$tmp/prog" "$tmp/prog.c" "$build/libnumaslab.a" -lhwloc -lnuma -lpthread
cp "$tmp/prog" "$tmp/prog-suid"
chmod 755 "$tmp/prog"
chmod 4755 "$tmp/prog-suid"
as_nobody() {
    setpriv --reuid=65534 --regid=65534 --clear-groups env NUMASLAB_STATS=1 NUMASLAB_STATS_FORMAT=json \
        NUMASLAB_STATS_FILE="$tmp/out/$1.json" "$tmp/$2"
}
as_nobody plain prog
[ -s "$tmp/out/plain.json" ] || { echo "setuid: FAIL: the control (no setuid bit) wrote no statistics"; exit 1; }
grep -q '"numaslab_stats"' "$tmp/out/plain.json" || { echo "setuid: FAIL: control output is not the statistics"; exit 1; }
as_nobody suid prog-suid
if [ -e "$tmp/out/suid.json" ]; then
    echo "setuid: FAIL: a setuid program created NUMASLAB_STATS_FILE ($tmp/out/suid.json)"
    exit 1
fi
echo "setuid: NUMASLAB_STATS_FILE honoured by a plain program, ignored by the same program setuid root (run as nobody)"
