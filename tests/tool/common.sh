# common.sh - sourced by the tool tests.  Arguments of every test:
#   TOOL LIB ALLOC PROBE OPTDUMP   (numaslab, libnumaslab.so, helpers)
set -euo pipefail
TOOL=$1 LIB=$2 ALLOC=$3 PROBE=$4 OPTDUMP=$5
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NAME=$(basename "$0" .sh)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# a clean environment: no NUMASLAB_* or LD_PRELOAD from outside
for v in $(env | sed -n 's/^\(NUMASLAB_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
unset LD_PRELOAD

fail() { echo "$NAME: FAIL: $*" >&2; exit 1; }
ok() { echo "$NAME: ok: $*"; }
# run CMD...: exit status in RC, stdout in $T/out, stderr in $T/err
run() { set +e; "$@" >"$T/out" 2>"$T/err"; RC=$?; set -e; }
nlines() { wc -l <"$1" | tr -d ' '; }
expect_rc() { [[ $RC == "$1" ]] || fail "$2: exit status $RC, want $1 (stderr: $(head -c 400 "$T/err"))"; }
# expect_one_line WHAT PATTERN: stderr is exactly one line and contains PATTERN
expect_one_line() {
    [[ $(nlines "$T/err") == 1 ]] || fail "$1: want one line on stderr, got: '$(cat "$T/err")'"
    grep -q -- "$2" "$T/err" || fail "$1: stderr lacks '$2': $(cat "$T/err")"
}
expect_no_err() { [[ ! -s $T/err ]] || fail "$1: unexpected stderr: $(head -c 400 "$T/err")"; }
