# common.sh - sourced by the preload test scripts.
# Each script is called as: script.sh <path of libnumaslab.so> [more args]

NS_TEST=${NS_TEST:-$(basename "$0" .sh)}

log()  { printf '[%s] %s\n' "$NS_TEST" "$*"; }
fail() { printf '[%s] FAIL: %s\n' "$NS_TEST" "$*" >&2; exit 1; }
skip() { printf '[%s] SKIP: %s\n' "$NS_TEST" "$*"; exit 77; }

# need_cmd CMD [package]: skip the test when a tool is missing.
need_cmd() {
    command -v "$1" >/dev/null 2>&1 || skip "'$1' is not installed (apt-get install ${2:-$1})"
}

# check_lib PATH: the library argument must be a readable shared object.
check_lib() {
    [[ -n ${1:-} ]] || fail "usage: $0 <path of libnumaslab.so> ..."
    [[ -r $1 ]] || fail "library '$1' does not exist or is not readable (build the numaslab target)"
    case $1 in /*) ;; *) fail "library path '$1' must be absolute";; esac
}

# Make a private scratch directory, removed on exit; extra cleanup can be
# registered with at_exit "command".
NS_CLEANUP=()
at_exit() { NS_CLEANUP+=("$1"); }
_ns_on_exit() {
    local rc=$? c
    for ((c = ${#NS_CLEANUP[@]} - 1; c >= 0; c--)); do eval "${NS_CLEANUP[c]}" || true; done
    exit $rc
}
trap _ns_on_exit EXIT
make_scratch() {
    SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/ns-preload-XXXXXX")
    at_exit 'rm -rf "$SCRATCH"'
}

# preloaded CMD...: run CMD with the allocator preloaded (and nothing else
# preloaded).  Status is the command's.
preloaded() { env LD_PRELOAD="$NS_LIB" "$@"; }
# plain CMD...: run CMD without any preload.
plain() { env -u LD_PRELOAD "$@"; }

# no_reports FILE WHAT: the allocator wrote no report (invalid pointer, double
# free, warning, fatal error: lines starting "numaslab:") into FILE; the
# statistics lines of NUMASLAB_STATS=1 are allowed.
no_reports() {
    local bad
    bad=$(grep -E '(^|[^[:alnum:]_])numaslab: ' "$1" | grep -vE 'numaslab: ([0-9]+ node\(s\)|node [0-9]+:|class |stats |[ ]+[0-9]+ )' | head -5 || true)
    [[ -z $bad ]] || fail "$2: the allocator reported: $bad"
}

# describe_status RC: human text for an exit status (signals spelled out).
describe_status() {
    local rc=$1
    if ((rc > 128)); then
        printf 'killed by signal %d (%s)' $((rc - 128)) "$(kill -l $((rc - 128)) 2>/dev/null || echo '?')"
    else
        printf 'exit status %d' "$rc"
    fi
}

# show_diff A B [label]: print the first differences between two files.
show_diff() {
    local a=$1 b=$2
    echo "--- first differences (${3:-files}): < unpreloaded, > preloaded" >&2
    if command -v diff >/dev/null 2>&1 && [[ $(wc -c <"$a") -lt 50000000 ]]; then
        diff "$a" "$b" | head -20 >&2 || true
    fi
    cmp "$a" "$b" >&2 || true
    echo "sizes: $(wc -c <"$a") vs $(wc -c <"$b") bytes" >&2
}
