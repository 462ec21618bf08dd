#!/usr/bin/env bash
# run-all.sh - numaslab's NUMA tests in one command: boots a qemu VM with 2
# and then 4 emulated NUMA nodes and runs every in-VM test in each (one boot
# per node count).  Builds nothing: build the numa_vm_tests target first.
#
#   tests/numa-vm/run-all.sh [options] [BUILD_DIR] [-- HARNESS-OPTIONS...]
#
#   BUILD_DIR        the CMake build dir (default: build); the test program
#                    is BUILD_DIR/tests/numa-vm/numa_vm_tests
#   --prog FILE      the test program itself (instead of BUILD_DIR)
#   --nodes N        node count to boot; repeatable (default: 2 and 4)
#   --tests "A B"    only these in-VM tests (default: all of them:
#                    topo highaddr placement crossnode onnode migrate spill
#                    interleave prof parked)
#   --timeout SEC    limit per boot (default 240)
#   -v               stream the VM console (passed to the harness)
#   after --          more run-in-numa-vm.sh options, e.g. --env NUMASLAB_STATS=1
#
# Each boot: --cpus N (one vCPU per node), --mem-per-node 256 (small on
# purpose: the spill test fills node 0).  Output: one line per in-VM test.
#
# EXIT STATUS: 0 all passed; 77 qemu/kernel/busybox/cpio missing (test
# skipped; the message says what to install); otherwise the first failing
# boot's status: the number of failed in-VM tests, 124 a VM timed out,
# 125 the VM rig failed.
#
# Example (from the source root, after cmake --build build):
#   tests/numa-vm/run-all.sh build
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
HARNESS=$HERE/run-in-numa-vm.sh
DRIVER=$HERE/vm-driver.sh
BUILD=build PROG="" NODES_LIST=() TESTS="" TIMEOUT=240 EXTRA=()
while (($#)); do
    case $1 in
        --prog)    PROG=${2:?}; shift 2 ;;
        --nodes)   NODES_LIST+=("${2:?}"); shift 2 ;;
        --tests)   TESTS=${2:?}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        -v)        EXTRA+=(-v); shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        --)        shift; EXTRA+=("$@"); break ;;
        -*)        echo "run-all.sh: unknown option $1 (see --help)" >&2; exit 125 ;;
        *)         BUILD=$1; shift ;;
    esac
done
((${#NODES_LIST[@]})) || NODES_LIST=(2 4)
PROG=${PROG:-$BUILD/tests/numa-vm/numa_vm_tests}

# Works without exec bits too (e.g. a checkout that lost them).
if [[ ! -x $DRIVER ]]; then
    tmpd=$(mktemp -d); trap 'rm -rf "$tmpd"' EXIT
    cp "$DRIVER" "$tmpd/" && chmod +x "$tmpd/vm-driver.sh" && DRIVER=$tmpd/vm-driver.sh
fi

# Missing VM tools = skip (ctest SKIP_RETURN_CODE 77), not failure.
if ! bash "$HARNESS" "${EXTRA[@]}" --check-deps; then
    echo "numa-vm: SKIPPED: the VM tools above are missing (Debian: apt-get install qemu-system-x86 linux-image-amd64 busybox-static cpio)" >&2
    exit 77
fi
[[ -x $PROG ]] || { echo "numa-vm: no test program $PROG (build it: cmake --build $BUILD --target numa_vm_tests)" >&2; exit 125; }
PROG=$(realpath "$PROG")

# The heap profiler's unwinders are loaded with dlopen, so the harness's
# ldd walk does not bring them: add those of the program's architecture.
triplet=x86_64-linux-gnu
[[ " ${EXTRA[*]} " == *" aarch64 "* ]] && triplet=aarch64-linux-gnu
for so in libunwind.so.8 libgcc_s.so.1; do
    for d in /usr/lib/$triplet /lib/$triplet; do
        if [[ -e $d/$so ]]; then
            EXTRA=(--add "$(realpath "$d/$so"):/usr/lib/$triplet/$so" "${EXTRA[@]}")
            break
        fi
    done
done

first_rc=0
for n in "${NODES_LIST[@]}"; do
    start=$SECONDS
    rc=0
    # shellcheck disable=SC2086  # TESTS is a word list on purpose
    bash "$HARNESS" --nodes "$n" --cpus "$n" --mem-per-node 256 --timeout "$TIMEOUT" \
        --add "$PROG" "${EXTRA[@]}" -- "$DRIVER" "$PROG" $TESTS || rc=$?
    case $rc in
        0) echo "numa-vm: $n nodes: OK ($((SECONDS - start))s)" ;;
        124) echo "numa-vm: $n nodes: the VM TIMED OUT after ${TIMEOUT}s" ;;
        125) echo "numa-vm: $n nodes: the VM rig FAILED (see above)" ;;
        *) echo "numa-vm: $n nodes: $rc in-VM test(s) FAILED ($((SECONDS - start))s)" ;;
    esac
    ((first_rc == 0)) && first_rc=$rc
done
exit $first_rc
