#!/usr/bin/env bash
# run.sh - the ctest driver of fuzz_alloc (tests/fuzz/CMakeLists.txt).
#
#   tests/fuzz/run.sh OUT_DIR [SOURCE_ROOT] [SECONDS]
#
# 1. builds OUT_DIR/fuzz_alloc with clang (build.sh; exit 77 = SKIP when
#    clang or libFuzzer is missing);
# 2. replays every input of tests/fuzz/corpus/ and tests/fuzz/crashes/ once
#    (the regression part: each must run clean);
# 3. fuzzes for SECONDS (default 20) starting from a copy of the corpus (the
#    repository is never written), -max_len=1024.
# Any sanitizer report, pattern mismatch or abort fails; the crashing input
# is kept in OUT_DIR/artifacts/ and its reproduction is printed.
# Environment: CLANG (the compiler; ctest passes the one CMake found).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: run.sh OUT_DIR [SOURCE_ROOT] [SECONDS]}
root=${2:-$(cd "$here/../.." && pwd)}
secs=${3:-20}
case ${CLANG:-} in *NOTFOUND*) echo "SKIP: clang not found at configure time (apt-get install -y clang)"; exit 77 ;; esac

bash "$here/build.sh" "$out" "$root"
rc=$?
[ $rc = 77 ] && exit 77
[ $rc = 0 ] || exit 1
fz=$out/fuzz_alloc
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# 2. replay
inputs=()
for d in "$here/corpus" "$here/crashes"; do
    [ -d "$d" ] || continue
    for f in "$d"/*; do [ -f "$f" ] && inputs+=("$f"); done
done
if [ ${#inputs[@]} -gt 0 ]; then
    if ! "$fz" -rss_limit_mb=4096 "${inputs[@]}" >"$out/replay.log" 2>&1; then
        tail -40 "$out/replay.log"
        echo "FAIL: replaying the corpus: an input crashed (log: $out/replay.log)"
        exit 1
    fi
    echo "replay: ${#inputs[@]} inputs ran clean"
fi

# 3. fuzz
rm -rf "$out/work-corpus" "$out/artifacts"
mkdir -p "$out/work-corpus" "$out/artifacts"
[ -d "$here/corpus" ] && cp "$here"/corpus/* "$out/work-corpus/" 2>/dev/null
"$fz" -max_total_time="$secs" -max_len=1024 -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts/" "$out/work-corpus" >"$out/fuzz.log" 2>&1
rc=$?
last=$(grep -E '^#[0-9]+' "$out/fuzz.log" | tail -1)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz.log")
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$out/fuzz.log")
echo "fuzz: ${secs} s, ${execs:-?} execs (${speed:-?}/s); last status: $last"
if [ $rc != 0 ] || grep -qE 'ERROR: (AddressSanitizer|libFuzzer)|runtime error:|fuzz_alloc: ' "$out/fuzz.log"; then
    grep -E 'fuzz_alloc: |ERROR: |runtime error:|SUMMARY:|^    #[0-9]' "$out/fuzz.log" | head -40
    for a in "$out"/artifacts/*; do
        [ -f "$a" ] && echo "crashing input: $a  reproduce: $fz $a   (keep it in tests/fuzz/crashes/)"
    done
    echo "FAIL: fuzzing found a problem (exit $rc, log: $out/fuzz.log)"
    exit 1
fi
echo "PASS"
