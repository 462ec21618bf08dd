#!/usr/bin/env bash
# Install what numaslab needs to build and test on Debian 12 (run as root).
# Safe to re-run: installs only what is missing.
set -euo pipefail
PKGS=(cmake make gcc g++ pkg-config libcmocka-dev libnuma-dev libhwloc-dev
      python3 redis-server redis-tools time
      # the fast-path instruction budget (bench/numa/fastpath.sh --budget)
      valgrind
      # the Debian package (cpack -G DEB: dpkg-shlibdeps, file; tests/misc/deb.sh: man)
      dpkg-dev file man-db
      # tests/tool/stats.sh checks the JSON under a decimal-comma locale
      locales
      # the fuzz target (tests/fuzz) and the soak plot (bench/soak)
      clang libclang-rt-14-dev gnuplot-nox
      # the multi-node VM tests (tests/numa-vm)
      qemu-system-x86 linux-image-amd64 busybox-static cpio xz-utils zstd binutils numactl)
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
