#!/usr/bin/env bash
# cross-arm64.sh - the arm64 build and its tests on an x86-64 machine (part
# of scripts/test.sh; README "Architectures"):
#  1. a Release cross build with Debian's aarch64-linux-gnu-gcc against the
#     arm64 libraries of Debian's multiarch (cmake/aarch64-linux-gnu.cmake),
#     in BUILD_DIR (default build-arm64);
#  2. the unit, integration and stress tests under qemu-user (4 KiB pages),
#     the stress tests at STRESS_ROUNDS (default 2: emulation is ~20x slower);
#  3. the unit and integration tests again with the guest told its pages are
#     64 KiB (QEMU_PAGESIZE: the page size in the auxiliary vector and
#     sysconf, mmap placement on 64 KiB; the host still protects 4 KiB);
#  4. the NUMA locality tests in an arm64 VM (qemu-system-aarch64, Debian's
#     arm64 kernel, 2 nodes): ctest numa_vm_2nodes of the cross build.
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
echo "== arm64 (qemu-user, 4 KiB pages): unit, integration, stress"
STRESS_ROUNDS=${STRESS_ROUNDS:-2} ctest --test-dir "$build" --output-on-failure --timeout 600 \
    -L 'unit|integration|stress' -LE long || status=1
echo "== arm64 (qemu-user, 64 KiB pages): unit, integration"
QEMU_PAGESIZE=65536 ctest --test-dir "$build" --output-on-failure --timeout 600 \
    -L 'unit|integration' -LE long || status=1
if ((vm)); then
    echo "== arm64 NUMA VM (qemu-system-aarch64, 2 nodes): locality tests"
    ctest --test-dir "$build" --output-on-failure --timeout 900 -R '^numa_vm_2nodes$' || status=1
fi
exit $status
