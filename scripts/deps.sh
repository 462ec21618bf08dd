#!/usr/bin/env bash
# Install what numaslab needs to build and test on Debian 12 (run as root).
# Safe to re-run: installs only what is missing.
set -euo pipefail
PKGS=(cmake make gcc g++ pkg-config libcmocka-dev libnuma-dev libhwloc-dev
      python3 redis-server redis-tools time
      # the heap profiler: its unwinder (dlopen), and pprof and addr2line for
      # tests/tool/prof.sh
      libunwind8 google-perftools
      # the fast-path instruction budget (bench/numa/fastpath.sh --budget)
      valgrind
      # the Debian package (cpack -G DEB: dpkg-shlibdeps, file; tests/misc/deb.sh: man)
      dpkg-dev file man-db
      # tests/tool/stats.sh checks the JSON under a decimal-comma locale
      locales
      # the fuzz target (tests/fuzz) and the soak plot (bench/soak)
      clang libclang-rt-14-dev gnuplot-nox
      # the multi-node VM tests (tests/numa-vm)
      qemu-system-x86 linux-image-amd64 busybox-static cpio xz-utils zstd binutils numactl
      # the arm64 build and its tests (scripts/cross-arm64.sh): cross
      # compilers, the arm64 libraries through multiarch, qemu-user for the
      # test programs, qemu-system-arm for the arm64 NUMA VM
      gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libnuma-dev:arm64 libhwloc-dev:arm64
      libcmocka-dev:arm64 libunwind8:arm64 qemu-user-static qemu-system-arm)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    if [[ $(id -u) != 0 ]]; then
        echo "numaslab: not root: run dpkg --add-architecture arm64 first" >&2
        exit 1
    fi
    dpkg --add-architecture arm64
fi
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "numaslab: installing ${missing[*]}" >&2
    if [[ $(id -u) != 0 ]]; then
        echo "numaslab: not root: install these packages first: ${missing[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The arm64 NUMA VM (tests/numa-vm/run-in-numa-vm.sh --arch aarch64): Debian's
# arm64 kernel and static busybox, unpacked (not installed: they would
# replace the host's own) into /var/cache/numaslab/arm64.
arm64_dir=${NUMA_VM_ARM64:-/var/cache/numaslab/arm64}
if ! ls "$arm64_dir"/boot/vmlinuz-* >/dev/null 2>&1 || [[ ! -x $arm64_dir/bin/busybox ]]; then
    echo "numaslab: unpacking the arm64 kernel and busybox into $arm64_dir" >&2
    kpkg=$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-arm64\).*/\1/p' | head -n 1)
    [[ -n $kpkg ]] || { echo "numaslab: no arm64 kernel package found (apt-cache depends linux-image-arm64:arm64)" >&2; exit 1; }
    dl=$(mktemp -d)
    # (apt warns that it downloads as root into a folder its _apt user
    # cannot write: harmless here)
    (cd "$dl" && apt-get download -qq "$kpkg" busybox-static:arm64 2>/dev/null)
    mkdir -p "$arm64_dir"
    for d in "$dl"/*.deb; do dpkg-deb -x "$d" "$dl/x"; done
    mkdir -p "$arm64_dir/boot" "$arm64_dir/bin"
    cp "$dl"/x/boot/vmlinuz-* "$arm64_dir/boot/"
    cp "$dl"/x/bin/busybox "$arm64_dir/bin/busybox"
    rm -rf "$dl"
fi
