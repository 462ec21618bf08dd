#!/usr/bin/env bash
# cross-arm64.sh - the arm64 build and its tests on an x86-64 machine (part
# of scripts/test.sh; README "Architectures"):
#  1. a Release cross build with Debian's aarch64-linux-gnu-gcc against the
#     arm64 libraries of Debian's multiarch (cmake/aarch64-linux-gnu.cmake),
#     in BUILD_DIR (default build-arm64);
#  2. the unit, integration and stress tests under qemu-user (4 KiB pages),
#     the stress tests at STRESS_ROUNDS (default 2: emulation is ~20x slower);
#  3. the unit and integration tests where the page size shows again, the
#     guest told its pages are 64 KiB (QEMU_PAGESIZE: the page size in the
#     auxiliary vector and sysconf, mmap placement on 64 KiB; the host
#     still protects 4 KiB);
#  4. the NUMA locality tests in an arm64 VM (qemu-system-aarch64, Debian's
#     arm64 kernel, 2 nodes): ctest numa_vm_2nodes of the cross build; and
#     the fork stress tests, which qemu-user cannot run, in the same kind
#     of VM.
# qemu-user runs the test programs directly (ctest's emulator) and, through
# binfmt_misc (registered here from qemu-user-static's entry when it is
# missing), the programs the tests start themselves (re-exec, fork + exec).
#   scripts/cross-arm64.sh [--no-vm] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
vm=1
[[ ${1:-} == --no-vm ]] && { vm=0; shift; }
build=${1:-build-arm64}
for t in aarch64-linux-gnu-gcc qemu-aarch64-static; do
    command -v $t >/dev/null || { echo "cross-arm64: $t missing (bash scripts/deps.sh)" >&2; exit 1; }
done

# binfmt_misc: a test that executes an arm64 program (its own binary
# again, a helper) needs the kernel to hand it to qemu
bm=/proc/sys/fs/binfmt_misc
if [[ ! -e $bm/qemu-aarch64 ]]; then
    mountpoint -q $bm || mount -t binfmt_misc binfmt_misc $bm 2>/dev/null || true
    if [[ -w $bm/register && -r /usr/lib/binfmt.d/qemu-aarch64.conf ]]; then
        cat /usr/lib/binfmt.d/qemu-aarch64.conf >$bm/register || true
    fi
fi
[[ -e $bm/qemu-aarch64 ]] ||
    echo "cross-arm64: no binfmt_misc entry for arm64 (not root?): tests that exec arm64 programs will fail" >&2

PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig \
    cmake -S . -B "$build" -DCMAKE_TOOLCHAIN_FILE="$PWD/cmake/aarch64-linux-gnu.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DNUMASLAB_TESTS=ON -DNUMASLAB_SANITIZER_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"

status=0
rounds=${STRESS_ROUNDS:-2}
echo "== arm64 (qemu-user, 4 KiB pages): unit, integration, stress (stress_fork*: in the VM below)"
# stress_threads is not run here: its checks are the process's RSS, which
# under qemu-user is the emulator's (it keeps what the guest unmapped).
# The fault-injection variants get more rounds: at 2, a run may see no
# injected failure at all, which they count as a failure of the test.
STRESS_ROUNDS=$rounds ctest --test-dir "$build" --output-on-failure --timeout 600 \
    -L 'unit|integration|stress' -LE long -E '^stress_(fork|threads)|_fi$' || status=1
STRESS_ROUNDS=$((rounds * 4)) ctest --test-dir "$build" --output-on-failure --timeout 600 \
    -L stress -R '_fi$' -E '^stress_(fork|threads)' || status=1
# the tests where the page size shows (page-aligned and large blocks,
# madvise ranges, guard pages); the slow ones that do not depend on it
# (options, remote stacks, bad frees, injected failures, the API again
# through the shared library) ran above
echo "== arm64 (qemu-user, 64 KiB pages): unit and integration tests that depend on the page size"
QEMU_PAGESIZE=65536 ctest --test-dir "$build" --output-on-failure --timeout 600 \
    -R '^(unit_(sizeclass|addrmap|superslab|tcache|tcache_off|large|pool|topo|validate)|integration_(api|node_stats|override|hardened))$' ||
    status=1
if ((vm)); then
    echo "== arm64 NUMA VM (qemu-system-aarch64, 2 nodes): locality tests"
    ctest --test-dir "$build" --output-on-failure --timeout 900 -R '^numa_vm_2nodes$' || status=1
    # fork while threads run: qemu-user (7.2) asserts in a child that starts
    # threads, so these run in the arm64 VM (a kernel of its own)
    echo "== arm64 VM (2 nodes): stress_fork, _fi, _hardened at $rounds rounds"
    s=$PWD/$build/tests/stress
    bash tests/numa-vm/run-in-numa-vm.sh --arch aarch64 --nodes 2 --mem-per-node 512 --timeout 900 \
        --env STRESS_ROUNDS="$rounds" --add "$s/stress_fork" --add "$s/stress_fork_fi" --add "$s/stress_fork_hardened" \
        -- tests/numa-vm/run-each.sh "$s/stress_fork" "$s/stress_fork_hardened" \
        "env NUMASLAB_FAULT_RATE=150 NUMASLAB_DECAY_MS=0 NUMASLAB_LARGE_CACHE=0 $s/stress_fork_fi" || status=1
fi
exit $status
