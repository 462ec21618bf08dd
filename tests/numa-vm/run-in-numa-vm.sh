#!/usr/bin/env bash
# run-in-numa-vm.sh - run one program inside a throw-away qemu VM that has
# several emulated NUMA nodes, and hand back its stdout, stderr and status.
#
# WHY: numaslab's development and CI machines have ONE NUMA node, so per-node
# placement, mbind, remote frees between nodes and spills can't be observed
# on them.  This boots the distribution kernel under qemu with N NUMA nodes
# (one RAM backend, one "-numa node" and a 10/20 SLIT per node), runs the
# program inside a busybox initramfs, and behaves as if it had run locally.
#
# USAGE
#   run-in-numa-vm.sh [options] -- PROGRAM [ARGS...]
#   run-in-numa-vm.sh --check-deps
#
#   --nodes N            NUMA nodes (default 2)
#   --cpus C             vCPUs (default = N), split into contiguous blocks,
#                        one per node (C < N leaves some nodes without CPUs;
#                        the guest then numbers the nodes with CPUs first,
#                        see TOPOLOGIES)
#   --mem-per-node MiB   RAM of each node (default 256, minimum 64)
#   --topology SPEC      instead of --nodes/--cpus/--mem-per-node: one
#                        ID:CPUS:MEM entry per node, comma-separated: node
#                        id, its vCPU count (0 = a CPU-less node) and MiB of
#                        RAM (0 = a memoryless node); e.g. 0:2:256,1:0:0,2:0:256
#                        (the guest sees nodes 0 and 2 only; node 2 has
#                        memory and no CPUs) or 0:1:256,1:1:0 (node 1 has a
#                        CPU and no memory).  vCPUs are numbered in node-id
#                        order.  See TOPOLOGIES below for what works.
#   --distance S:D:VAL   SLIT distance from node S to node D (10..255;
#                        S = D only with 10); also D to S unless that pair is
#                        given too.  Repeatable.  Default 10 local, 20 remote
#   --hugepages N        reserve N 2 MiB hugetlb pages before the program
#                        starts (the kernel spreads them over the nodes)
#   --thp MODE           transparent hugepages: always|madvise|never|keep
#                        (default madvise; "keep" = the kernel's choice,
#                        which is "never" when the VM has < 512 MiB)
#   --add PATH[:DEST]    also put file or directory PATH into the VM, at DEST
#                        (default: PATH's absolute path); ELF files bring
#                        their shared libraries, scripts their #! interpreter.
#                        Repeatable.
#   --env NAME=VALUE     environment variable for the program. Repeatable.
#   --timeout SEC        wall-clock limit for the whole VM (default 600)
#   --accel auto|tcg|kvm auto (default): kvm only if /dev/kvm is usable AND
#                        the CPU shows vmx/svm, else tcg (pure emulation)
#   --qemu-cpu MODEL     qemu -cpu value (default: host with kvm, qemu's
#                        default with tcg)
#   --arch ARCH          x86_64 (default) or aarch64: the guest's
#                        architecture, that of PROGRAM (see ARM64 below)
#   --kernel PATH        kernel image (default: newest /boot/vmlinuz-*;
#                        aarch64: the one scripts/deps.sh unpacked)
#   --append ARGS        extra kernel command-line arguments
#   --bzimage            boot the compressed kernel as is (slower under tcg)
#                        instead of the cached decompressed PVH vmlinux
#   --verbose, -v        stream the VM console (kernel + init) to stderr
#   --keep               keep the work dir (initramfs, console log)
#   --check-deps         only check that qemu, busybox, cpio and a kernel are
#                        there: exit 0, or print what is missing and exit 77
#
# The program runs as root, as a child of the VM's /init, with stdin =
# /dev/null and the same working directory path as here (created empty
# unless you --add things there).  Its stdout/stderr come back on ours.
#
# EXIT STATUS
#   the program's own exit status (128+signal if it was killed), or
#   124  the VM hit --timeout
#   125  the rig failed: bad usage, missing tool, the VM did not boot or
#        died without reporting a status (the console tail goes to stderr)
#   77   (--check-deps only) something needed is missing
#
# NEEDS (Debian 12 packages only): qemu-system-x86 linux-image-amd64
#   busybox-static cpio; optional xz-utils zstd binutils (decompress the
#   kernel once for a faster PVH boot).  No network; root is not needed as
#   long as the kernel image is readable.
#
# HOW IT WORKS
#   1. kernel: the bzImage is decompressed once into an ELF vmlinux with a
#      PVH note and cached in ${NUMA_VM_CACHE:-${TMPDIR:-/tmp}/numa-vm-cache-$UID};
#      qemu boots that directly, skipping the slow in-guest decompression.
#   2. initramfs (newc cpio): busybox + its applet links, the program, every
#      library ldd reports for each ELF file (plus the loader, and an
#      ld.so.cache; and libhwloc.so.15, which libnumaslab opens with dlopen,
#      for an ELF file that uses libnumaslab), the --add files, and a
#      generated /init.
#   3. /init mounts proc/sys/dev/hugetlbfs, sets THP and hugepages, runs the
#      program with stdout on ttyS1 and stderr on ttyS2, writes
#      "NUMA-VM-EXIT-STATUS: N" on ttyS3, and powers the VM off.  Each serial
#      port is a plain file on the host side.  (Serial output is slow, about
#      150-200 KB/s under tcg: keep the program's output small.)
#
# ARM64 (--arch aarch64): qemu-system-aarch64 (qemu-system-arm), machine
#   "virt" with a Cortex-A72 under tcg (Debian's arm64 kernel: 4 KiB pages,
#   48-bit user addresses), its NUMA nodes from the device tree (-numa node
#   and dist work as on x86; --topology shapes were tried on x86 only).  The
#   kernel and a static busybox come from Debian's arm64 packages, unpacked
#   (not installed) by scripts/deps.sh into $NUMA_VM_ARM64 (default
#   /var/cache/numaslab/arm64: boot/vmlinuz-*, bin/busybox); the program's
#   libraries are the multiarch ones (libc6:arm64 ...), listed by running
#   the arm64 dynamic loader under qemu-aarch64 (ldd cannot).  "virt" has
#   one serial port: the program's stdout and stderr go to files in the
#   guest and are written to the console between marker lines at the end.
#
# TOPOLOGIES (found by trying, qemu 7.2 + Debian 12 kernel 6.1, machine pc)
#   qemu: node ids must be 0..N-1 without a gap ("numa: Node ID missing: 1"),
#     so guest ids 0 and 2 need a qemu node 1 that the guest never brings
#     online: "1:0:0" (how, below).
#   qemu: a memoryless node is "-numa node,nodeid=N[,cpus=..]" without
#     memdev, even when the other nodes have one (a size=0 memory backend
#     is refused, and "mem=" is not supported by the pc machine); -m must
#     equal the sum of the memdevs ("total memory for NUMA nodes ... should
#     equal RAM size"), so -m is computed here.
#   qemu: distances need every pair given in at least one direction once one
#     is given (this rig always writes all pairs); local must be 10; remote
#     10..255 accepted by qemu.
#   kernel: node ids are NOT qemu's: the kernel numbers the SRAT's
#     proximity domains in the order it meets them, CPU entries first (in
#     vCPU order), then memory ranges (in address order = node order).  A
#     qemu node with neither CPUs nor memory has no SRAT entry, so the ids
#     after it shift down ("0:2:256,1:0:0,2:0:256" done naively boots with
#     online "0-1"), and a CPU-less node 0 before a node with CPUs swaps
#     ids with it ("0:0:256,1:2:256" boots with the CPUs on node 0).
#   so ID:0:0 is made a node with one vCPU that is possible but not present
#     (-smp CPUS,maxcpus=CPUS+k for k such nodes, like an empty socket; the
#     SRAT lists every possible vCPU): the kernel reserves
#     its id and never brings it online: "0:2:256,1:0:0,2:0:256" boots with
#     online "0,2", possible "0-2", numactl "available: 2 nodes (0,2)"
#     (the guest has one more possible CPU than present ones).  The ids are
#     kept as given only when nodes with CPUs come first, then empty ones,
#     then memory-only ones; other orders are refused with a message.
#   kernel: a node with CPUs and no memory ("0:1:256,1:1:0") is online, in
#     has_cpu, not in has_memory, MemTotal 0, numactl shows "node 1 size: 0".
#   kernel: a node with memory and no CPUs ("0:2:256,1:0:256") is online,
#     in has_memory and has_normal_memory, not in has_cpu.
#   kernel: a SLIT with a remote distance of 10 is accepted by qemu but
#     ignored as a whole by the kernel (it falls back to 10/20).
#   a node with only 2 MiB is still brought online (MemTotal 1 MiB): a tiny
#     memdev is no way to hide a node.  --topology wants >= 16 MiB per memory
#     node and >= 128 MiB in all (kernel + initramfs).
#
# EXAMPLE
#   tests/numa-vm/run-in-numa-vm.sh --nodes 4 -- /bin/cat /sys/devices/system/node/online
#   tests/numa-vm/run-in-numa-vm.sh --topology 0:2:256,1:0:0,2:0:256 -- /bin/cat /sys/devices/system/node/online
set -euo pipefail

PROG_NAME=${0##*/}
readonly RC_TIMEOUT=124 RC_RIG=125 RC_SKIP=77

die() { echo "$PROG_NAME: $*" >&2; exit $RC_RIG; }
log() { [[ $VERBOSE == 1 ]] && echo "$PROG_NAME: $*" >&2; return 0; }
usage() { sed -n '/^# USAGE/,/^# EXIT STATUS/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit $RC_RIG; }
is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }        # single-quote for /bin/sh

# ================================================================ options
NODES=2 CPUS="" MEM_PER_NODE=256 HUGEPAGES=0 THP=madvise TIMEOUT=600
ACCEL=auto QEMU_CPU="" KERNEL="" ARCH=x86_64 APPEND_EXTRA="" PVH=1 VERBOSE=0 KEEP=0
CHECK_ONLY=0 ADDS=() ENVS=() TOPOLOGY="" DISTANCES=() LEGACY_SHAPE=0
while (($#)); do
    case $1 in
        --nodes)        NODES=${2:?$1 needs a value}; LEGACY_SHAPE=1; shift 2 ;;
        --cpus)         CPUS=${2:?$1 needs a value}; LEGACY_SHAPE=1; shift 2 ;;
        --mem-per-node) MEM_PER_NODE=${2:?$1 needs a value}; LEGACY_SHAPE=1; shift 2 ;;
        --topology)     TOPOLOGY=${2:?$1 needs a value}; shift 2 ;;
        --distance)     DISTANCES+=("${2:?$1 needs a value}"); shift 2 ;;
        --hugepages)    HUGEPAGES=${2:?$1 needs a value}; shift 2 ;;
        --thp)          THP=${2:?$1 needs a value}; shift 2 ;;
        --add)          ADDS+=("${2:?$1 needs a value}"); shift 2 ;;
        --env)          ENVS+=("${2:?$1 needs a value}"); shift 2 ;;
        --timeout)      TIMEOUT=${2:?$1 needs a value}; shift 2 ;;
        --accel)        ACCEL=${2:?$1 needs a value}; shift 2 ;;
        --qemu-cpu)     QEMU_CPU=${2:?$1 needs a value}; shift 2 ;;
        --kernel)       KERNEL=${2:?$1 needs a value}; shift 2 ;;
        --arch)         ARCH=${2:?$1 needs a value}; shift 2 ;;
        --append)       APPEND_EXTRA=${2:?$1 needs a value}; shift 2 ;;
        --bzimage)      PVH=0; shift ;;
        -v|--verbose)   VERBOSE=1; shift ;;
        --keep)         KEEP=1; shift ;;
        --check-deps)   CHECK_ONLY=1; shift ;;
        -h|--help)      usage ;;
        --)             shift; break ;;
        -*)             echo "$PROG_NAME: unknown option $1" >&2; usage ;;
        *)              break ;;
    esac
done
CPUS=${CPUS:-$NODES}
case $ARCH in
    x86_64|amd64) ARCH=x86_64 ;;
    aarch64|arm64) ARCH=aarch64 PVH=0 ;;
    *) echo "$PROG_NAME: --arch must be x86_64 or aarch64" >&2; exit $RC_RIG ;;
esac
ARM64_DIR=${NUMA_VM_ARM64:-/var/cache/numaslab/arm64}

# ================================================================ tools
# find_deps: sets QEMU BUSYBOX KERNEL; prints each missing piece to stderr.
find_deps() {
    local missing=0 b
    if [[ $ARCH == aarch64 ]]; then
        QEMU=$(command -v qemu-system-aarch64 || true)
        [[ -n $QEMU ]] || { echo "$PROG_NAME: missing qemu-system-aarch64 (apt-get install qemu-system-arm)" >&2; missing=1; }
        command -v qemu-aarch64-static >/dev/null || { echo "$PROG_NAME: missing qemu-aarch64-static (apt-get install qemu-user-static), to list the program's libraries" >&2; missing=1; }
        BUSYBOX=$ARM64_DIR/bin/busybox
        [[ -x $BUSYBOX ]] || { echo "$PROG_NAME: missing $BUSYBOX (scripts/deps.sh unpacks busybox-static:arm64 there)" >&2; missing=1; }
        command -v cpio >/dev/null || { echo "$PROG_NAME: missing cpio (apt-get install cpio)" >&2; missing=1; }
        if [[ -z $KERNEL ]]; then
            KERNEL=$(ls -1 "$ARM64_DIR"/boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
            [[ -n $KERNEL ]] || { echo "$PROG_NAME: missing arm64 kernel in $ARM64_DIR/boot (scripts/deps.sh unpacks linux-image-arm64:arm64 there)" >&2; missing=1; }
        fi
        return $missing
    fi
    QEMU=$(command -v qemu-system-x86_64 || true)
    [[ -n $QEMU ]] || { echo "$PROG_NAME: missing qemu-system-x86_64 (apt-get install qemu-system-x86)" >&2; missing=1; }
    BUSYBOX=""
    for b in /bin/busybox /usr/bin/busybox; do [[ -x $b ]] && { BUSYBOX=$b; break; }; done
    [[ -n $BUSYBOX ]] || { echo "$PROG_NAME: missing busybox (apt-get install busybox-static)" >&2; missing=1; }
    command -v cpio >/dev/null || { echo "$PROG_NAME: missing cpio (apt-get install cpio)" >&2; missing=1; }
    if [[ -z $KERNEL ]]; then
        KERNEL=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
        [[ -n $KERNEL ]] || { echo "$PROG_NAME: missing kernel: no /boot/vmlinuz-* (apt-get install linux-image-amd64, or pass --kernel)" >&2; missing=1; }
    fi
    if [[ -n $KERNEL && ! -r $KERNEL ]]; then
        echo "$PROG_NAME: kernel $KERNEL is not readable (run as root, or chmod/copy it and pass --kernel)" >&2; missing=1
    fi
    return $missing
}
if [[ $CHECK_ONLY == 1 ]]; then
    find_deps && exit 0 || exit $RC_SKIP
fi
(($#)) || usage
find_deps || exit $RC_RIG

for v in NODES CPUS MEM_PER_NODE HUGEPAGES TIMEOUT; do
    is_uint "${!v}" || die "--${v,,} must be a non-negative integer (got '${!v}')"
done
((NODES >= 1 && NODES <= 64 && CPUS >= 1 && CPUS <= 255 && MEM_PER_NODE >= 64 && TIMEOUT >= 1)) ||
    die "need 1 <= --nodes <= 64, 1 <= --cpus <= 255, --mem-per-node >= 64, --timeout >= 1"

# The shape: NODE_CPUS[i] vCPUs and NODE_MEM[i] MiB for node i = 0..NODES-1,
# from --topology, or from --nodes/--cpus/--mem-per-node.
NODE_CPUS=() NODE_MEM=()
if [[ -n $TOPOLOGY ]]; then
    [[ $LEGACY_SHAPE == 0 ]] || die "--topology replaces --nodes, --cpus and --mem-per-node: give one or the other"
    declare -A seen=()
    IFS=, read -r -a entries <<<"$TOPOLOGY"
    for e in "${entries[@]}"; do
        [[ $e =~ ^([0-9]+):([0-9]+):([0-9]+)$ ]] || die "--topology: bad entry '$e' (want ID:CPUS:MiB, e.g. 0:2:256)"
        id=$((10#${BASH_REMATCH[1]})) c=$((10#${BASH_REMATCH[2]})) m=$((10#${BASH_REMATCH[3]}))
        ((id < 64)) || die "--topology: node id $id > 63"
        [[ -z ${seen[$id]:-} ]] || die "--topology: node $id given twice"
        ((m == 0 || m >= 16)) || die "--topology: node $id: memory is 0 (memoryless) or >= 16 MiB"
        seen[$id]=1 NODE_CPUS[id]=$c NODE_MEM[id]=$m
    done
    NODES=${#seen[@]} CPUS=0 total_mem=0
    for ((i = 0; i < NODES; i++)); do
        [[ -n ${seen[$i]:-} ]] ||
            die "--topology: node $i missing: qemu wants ids 0..$((NODES - 1)) without gaps; for a gap in the guest give the node neither CPUs nor memory ($i:0:0)"
        CPUS=$((CPUS + NODE_CPUS[i])) total_mem=$((total_mem + NODE_MEM[i]))
    done
    ((CPUS >= 1 && CPUS <= 255)) || die "--topology: need 1..255 vCPUs in all (got $CPUS)"
    # The guest kernel numbers the SRAT's proximity domains in the order it
    # meets them: CPU entries first (present vCPUs, then the absent ones of
    # the empty nodes, see below), then memory ranges.  Refuse a shape whose
    # ids it would change.
    order=()
    for ((i = 0; i < NODES; i++)); do ((NODE_CPUS[i] > 0)) && order+=("$i"); done
    for ((i = 0; i < NODES; i++)); do ((NODE_CPUS[i] == 0 && NODE_MEM[i] == 0)) && order+=("$i"); done
    for ((i = 0; i < NODES; i++)); do ((NODE_CPUS[i] == 0 && NODE_MEM[i] > 0)) && order+=("$i"); done
    [[ ${order[*]} == "$(seq -s ' ' 0 $((NODES - 1)))" ]] ||
        die "--topology $TOPOLOGY: the guest would number these nodes ${order[*]} -> 0..$((NODES - 1)) (it numbers nodes with CPUs first, then empty ones, then memory-only ones): order the ids that way"
    ((total_mem >= 128)) || die "--topology: need >= 128 MiB of memory in all (got $total_mem)"
else
    for ((i = 0; i < NODES; i++)); do
        NODE_CPUS[i]=$(((i + 1) * CPUS / NODES - i * CPUS / NODES)) NODE_MEM[i]=$MEM_PER_NODE
    done
fi
declare -A DIST=()
for d in "${DISTANCES[@]}"; do
    [[ $d =~ ^([0-9]+):([0-9]+):([0-9]+)$ ]] || die "--distance: bad value '$d' (want SRC:DST:VAL, e.g. 0:2:30)"
    s_=$((10#${BASH_REMATCH[1]})) d_=$((10#${BASH_REMATCH[2]})) v_=$((10#${BASH_REMATCH[3]}))
    ((s_ < NODES && d_ < NODES)) || die "--distance $d: no such node (nodes 0..$((NODES - 1)))"
    if ((s_ == d_)); then ((v_ == 10)) || die "--distance $d: qemu wants the local distance to be 10"
    else ((v_ >= 10 && v_ <= 255)) || die "--distance $d: the distance must be 10..255"; fi
    DIST[$s_:$d_]=$v_
done
[[ $THP =~ ^(always|madvise|never|keep)$ ]] || die "--thp must be always, madvise, never or keep"
for e in "${ENVS[@]}"; do
    [[ $e =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "bad --env '$e' (want NAME=VALUE)"
done

if [[ $ACCEL == auto && $ARCH == aarch64 ]]; then
    ACCEL=tcg                                   # an x86 host: emulation
elif [[ $ACCEL == auto ]]; then
    # /dev/kvm alone is not enough: without vmx/svm it can be a paravirtual
    # KVM (kvm_pvm) that boots a stock kernel far slower than tcg and dies.
    if [[ -r /dev/kvm && -w /dev/kvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=kvm; else ACCEL=tcg; fi
fi
case $ACCEL in
    kvm) QEMU_CPU=${QEMU_CPU:-host} ;;
    tcg) ;;
    *) die "--accel must be auto, tcg or kvm" ;;
esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/numa-vm.XXXXXX")
ROOT=$WORK/root
QEMU_PID=""
cleanup() {
    [[ -n $QEMU_PID ]] && kill "$QEMU_PID" 2>/dev/null
    if [[ $KEEP == 1 ]]; then echo "$PROG_NAME: work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ================================================================ kernel
# extract_vmlinux BZIMAGE OUT: find the compressed payload inside the
# bzImage, decompress it, keep it if it is an ELF with a PVH entry note.
extract_vmlinux() {
    local img=$1 out=$2 magic tool off
    command -v readelf >/dev/null || return 1
    for magic in 'xz:\xfd7zXZ\x00' 'zstd:\x28\xb5\x2f\xfd' 'gzip:\x1f\x8b\x08'; do
        tool=${magic%%:*}
        command -v "$tool" >/dev/null || continue
        for off in $(LC_ALL=C grep -obUaP "${magic#*:}" "$img" 2>/dev/null | cut -d: -f1 | head -n 5); do
            tail -c +$((off + 1)) "$img" | "$tool" -dcq >"$out.tmp" 2>/dev/null || true
            if [[ $(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]] &&
               LC_ALL=C readelf -n "$out.tmp" 2>/dev/null | grep -qE '\(0x00000012\)|PHYS32_ENTRY'; then
                mv -f "$out.tmp" "$out"; return 0        # note 0x12 = XEN_ELFNOTE_PHYS32_ENTRY
            fi
        done
    done
    rm -f "$out.tmp"; return 1
}
BOOT_IMAGE=$KERNEL
if [[ $PVH == 1 ]]; then
    CACHE=${NUMA_VM_CACHE:-${TMPDIR:-/tmp}/numa-vm-cache-$(id -u)}
    cached=$CACHE/vmlinux-$(basename "$KERNEL")-$(stat -c '%s-%Y' "$KERNEL")
    if [[ -s $cached && -O $cached ]]; then
        BOOT_IMAGE=$cached
    elif mkdir -p "$CACHE" 2>/dev/null && [[ -O $CACHE && -w $CACHE ]] && extract_vmlinux "$KERNEL" "$cached.$$"; then
        mv -f "$cached.$$" "$cached"; BOOT_IMAGE=$cached     # atomic: parallel runs are fine
    elif extract_vmlinux "$KERNEL" "$WORK/vmlinux"; then
        BOOT_IMAGE=$WORK/vmlinux
    fi                                                       # else: plain bzImage boot
fi
log "kernel: $BOOT_IMAGE, accel: $ACCEL"

# ================================================================ initramfs
declare -A ADDED=()
copy_in() {   # copy_in SRC DEST: put SRC at DEST inside the VM (follows symlinks)
    local src=$1 dest=$2
    [[ -n ${ADDED[$dest]:-} ]] && return 0
    ADDED[$dest]=1
    mkdir -p "$ROOT$(dirname "$dest")"
    if [[ -d $src ]]; then mkdir -p "$ROOT$dest" && cp -rL "$src/." "$ROOT$dest/"
    else cp -L --preserve=mode "$src" "$ROOT$dest"; fi
}
is_elf() { [[ -f $1 && $(head -c 4 "$1" | od -An -tx1 | tr -d ' \n') == 7f454c46 ]]; }
# Libraries libnumaslab opens with dlopen, which ldd does not list: hwloc,
# on machines with more than one node (src/numa/topo.c).  Taken from the
# directory the program's libc comes from, with the libraries they need.
DLOPENED=(libhwloc.so.15)
add_libs() {  # add_libs ELF: copy every library ldd reports, and the loader
    local out line lib numaslab=0 libdir="" so
    [[ ${1##*/} == libnumaslab*.so* ]] && numaslab=1       # the library itself, added to be preloaded
    if [[ $ARCH == aarch64 ]]; then                        # the arm64 loader lists them, under qemu-user
        [[ $(od -An -j18 -N2 -tu2 "$1" | tr -d ' ') == 183 ]] || return 0   # e_machine EM_AARCH64
        out=$(LC_ALL=C qemu-aarch64-static /lib/ld-linux-aarch64.so.1 --list "$1" 2>&1) || return 0
    else
        out=$(LC_ALL=C ldd "$1" 2>&1) || return 0          # static, or not for this machine
    fi
    while IFS= read -r line; do
        [[ $line == *"not found"* ]] && die "$1: missing library: $line"
        lib=""
        if [[ $line =~ =\>\ (/[^ ]+) ]]; then lib=${BASH_REMATCH[1]}
        elif [[ $line =~ ^[[:space:]]*(/[^ ]+)\ \( ]]; then lib=${BASH_REMATCH[1]}
        fi
        [[ -n $lib ]] && copy_in "$lib" "$lib"
        [[ $lib == */libnumaslab*.so* ]] && numaslab=1
        [[ $lib == */libc.so.6 ]] && libdir=${lib%/*}
    done <<<"$out"
    if ((numaslab)) && [[ -n $libdir ]]; then
        for so in "${DLOPENED[@]}"; do
            [[ -e $libdir/$so ]] && add_item "$libdir/$so" "$libdir/$so"
        done
    fi
    return 0
}
add_tool() {  # add_tool NAME-OR-PATH: a script's interpreter, unless busybox has it
    local t=$1
    if [[ $t != */* ]]; then
        [[ -e $ROOT/bin/$t || -e $ROOT/usr/bin/$t ]] && return 0
        t=$(command -v "$t") || return 0
    fi
    [[ -e $ROOT$t || ! -e $t ]] || add_item "$t" "$t"
}
add_item() {  # add_item SRC DEST: a file or directory, plus what its files need
    local src=$1 dest=$2 f interp arg
    copy_in "$src" "$dest"
    while IFS= read -r -d '' f; do
        if is_elf "$f"; then
            add_libs "$f"
        elif [[ $(head -c 2 "$f") == '#!' ]]; then
            read -r interp arg _ < <(head -n 1 "$f" | cut -c 3-) || true
            [[ -n ${interp:-} ]] && add_tool "$interp"
            [[ ${interp:-} == */env && -n ${arg:-} && $arg != -* ]] && add_tool "$arg"
        fi
    done < <(find -L "$src" -type f -print0 2>/dev/null)  # -L: an added symlink (libfoo.so.N) brings its libraries too
    return 0
}

mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,tmp,root,etc,run}
copy_in "$BUSYBOX" /bin/busybox
is_elf "$BUSYBOX" && add_libs "$BUSYBOX"                  # no-op for busybox-static
bb_run=(); [[ $ARCH == aarch64 ]] && bb_run=(qemu-aarch64-static)   # busybox-static:arm64 runs under qemu-user
for a in $("${bb_run[@]}" "$BUSYBOX" --list-full); do      # bin/sh, sbin/poweroff, ...
    [[ -e $ROOT/$a ]] || ln -s /bin/busybox "$ROOT/$a"
done

PROG=$1; shift
if [[ $PROG != */* ]]; then PROG=$(command -v "$PROG") || die "program '$1' not found in PATH"; fi
[[ -f $PROG && -x $PROG ]] || die "program '$PROG' is not an executable file"
PROG=$(realpath "$PROG")
add_item "$PROG" "$PROG"
for a in "${ADDS[@]}"; do
    src=${a%%:*} dest=""
    [[ $a == *:* ]] && dest=${a#*:}
    [[ -e $src ]] || die "--add: '$src' does not exist"
    [[ -n $dest ]] || dest=$(realpath -s "$src")
    [[ $dest == /* ]] || dest=$PWD/$dest
    add_item "$src" "$dest"
done
# The loader inside the VM finds the copied libraries through a real cache.
find "$ROOT" -name '*.so*' \( -type f -o -type l \) -printf '%h\n' | sed "s|^$ROOT||" | sort -u >"$ROOT/etc/ld.so.conf"
[[ $ARCH == aarch64 ]] || ldconfig -r "$ROOT" 2>/dev/null || true   # arm64: the multiarch default paths
mkdir -p "$ROOT$PWD"

{
    echo '#!/bin/sh'
    echo '# /init generated by run-in-numa-vm.sh'
    echo 'export PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root TERM=dumb'
    echo 'mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev'
    echo 'mkdir -p /dev/shm /dev/hugepages /dev/pts'
    echo 'mount -t tmpfs tmpfs /dev/shm; mount -t hugetlbfs hugetlbfs /dev/hugepages; chmod 1777 /tmp'
    [[ $ARCH == x86_64 ]] && echo 'for t in /dev/ttyS1 /dev/ttyS2 /dev/ttyS3; do stty -F $t raw -echo; done   # no \n -> \r\n'
    echo 'say() { echo "numa-vm: $*" >/dev/console; }'
    echo 'say "up $(cut -d" " -f1 /proc/uptime)s, nodes: $(ls -d /sys/devices/system/node/node* | sed "s|.*/||" | tr "\n" " ")online $(cat /sys/devices/system/node/online) has_cpu $(cat /sys/devices/system/node/has_cpu) has_memory $(cat /sys/devices/system/node/has_memory)"'
    [[ $THP != keep ]] && echo "echo $THP >/sys/kernel/mm/transparent_hugepage/enabled"
    if ((HUGEPAGES > 0)); then
        echo "echo $HUGEPAGES >/proc/sys/vm/nr_hugepages"
        echo "say \"hugepages: \$(cat /proc/sys/vm/nr_hugepages) of $HUGEPAGES, per node:\" \$(cat /sys/devices/system/node/node*/hugepages/hugepages-2048kB/nr_hugepages)"
    fi
    for e in "${ENVS[@]}"; do echo "export ${e%%=*}=$(sq "${e#*=}")"; done
    echo "cd $(sq "$PWD")"
    printf '%s' "$(sq "$PROG")"; for a in "$@"; do printf ' %s' "$(sq "$a")"; done
    if [[ $ARCH == x86_64 ]]; then
        echo ' </dev/null >/dev/ttyS1 2>/dev/ttyS2'
        echo 'rc=$?'
        echo 'echo "NUMA-VM-EXIT-STATUS: $rc" >/dev/ttyS3'
    else                                       # one serial port: the output after markers
        echo ' </dev/null >/tmp/numa-vm.out 2>/tmp/numa-vm.err'
        echo 'rc=$?'
        echo 'for f in out err; do echo "NUMA-VM-BEGIN-$f"; cat /tmp/numa-vm.$f; echo; echo "NUMA-VM-END-$f"; done >/dev/console'
        echo 'echo "NUMA-VM-EXIT-STATUS: $rc" >/dev/console'
    fi
    echo 'say "=== program exited with status $rc after $(cut -d" " -f1 /proc/uptime)s ==="'
    echo 'sync; poweroff -f; reboot -f'
} >"$ROOT/init"
chmod 755 "$ROOT/init"
(cd "$ROOT" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet -R 0:0) >"$WORK/initramfs.cpio" ||
    die "cpio failed"
log "initramfs: $(du -h "$WORK/initramfs.cpio" | cut -f1), $(find "$ROOT" -type f | wc -l) files"

# ================================================================ qemu
# A node with neither CPUs nor memory gets one vCPU that is possible but
# not present (-smp CPUS,maxcpus=CPUS+k; numbered after the present ones):
# qemu wants the node, and the kernel, which numbers the SRAT's proximity
# domains in the order it meets them, keeps the node's id but never brings
# it online (with no SRAT entry at all the ids after it would shift down).
numa_args=() ram=0 lo=0 absent=$CPUS
for ((i = 0; i < NODES; i++)); do
    node="node,nodeid=$i"
    if ((NODE_MEM[i] > 0)); then                # no memdev = a memoryless node
        numa_args+=(-object "memory-backend-ram,id=mem$i,size=${NODE_MEM[i]}M")
        node+=",memdev=mem$i" ram=$((ram + NODE_MEM[i]))
    fi
    if ((NODE_CPUS[i] > 0)); then
        node+=",cpus=$lo-$((lo + NODE_CPUS[i] - 1))" lo=$((lo + NODE_CPUS[i]))
    elif ((NODE_MEM[i] == 0)); then
        node+=",cpus=$absent" absent=$((absent + 1))
    fi
    numa_args+=(-numa "$node")
done
smp=$CPUS
((absent > CPUS)) && smp+=",maxcpus=$absent"
for ((i = 0; i < NODES; i++)); do             # SLIT: 10 local (implicit), 20 remote
    for ((j = 0; j < NODES; j++)); do
        ((i != j)) && numa_args+=(-numa "dist,src=$i,dst=$j,val=${DIST[$i:$j]:-${DIST[$j:$i]:-20}}")
    done
done
log "topology: $(for ((i = 0; i < NODES; i++)); do printf '%s ' "$i:${NODE_CPUS[i]}:${NODE_MEM[i]}"; done)"
cpu_args=(); [[ -n $QEMU_CPU ]] && cpu_args=(-cpu "$QEMU_CPU")
: >"$WORK/console.log"; : >"$WORK/stdout"; : >"$WORK/stderr"; : >"$WORK/status"
if [[ $ARCH == x86_64 ]]; then
    qemu_cmd=("$QEMU" -nodefaults -no-user-config -machine pc -accel "$ACCEL" "${cpu_args[@]}"
        -m "$ram" -smp "$smp" "${numa_args[@]}"
        -display none -monitor none -no-reboot
        -serial "file:$WORK/console.log" -serial "file:$WORK/stdout"
        -serial "file:$WORK/stderr" -serial "file:$WORK/status"
        -kernel "$BOOT_IMAGE" -initrd "$WORK/initramfs.cpio"
        -append "console=ttyS0 quiet loglevel=3 panic=-1 $APPEND_EXTRA")
else
    ((${#cpu_args[@]})) || cpu_args=(-cpu cortex-a72)
    qemu_cmd=("$QEMU" -nodefaults -no-user-config -machine virt -accel "$ACCEL" "${cpu_args[@]}"
        -m "$ram" -smp "$smp" "${numa_args[@]}"
        -display none -monitor none -no-reboot
        -serial "file:$WORK/console.log"
        -kernel "$BOOT_IMAGE" -initrd "$WORK/initramfs.cpio"
        -append "console=ttyAMA0 quiet loglevel=3 panic=-1 $APPEND_EXTRA")
fi
log "qemu: ${qemu_cmd[*]}"

start_ns=$(date +%s%N)
timeout --kill-after=10 "$TIMEOUT" "${qemu_cmd[@]}" </dev/null >"$WORK/qemu.out" 2>&1 &
QEMU_PID=$!
[[ $VERBOSE == 1 ]] && tail -n +1 -f --pid="$QEMU_PID" "$WORK/console.log" >&2 &
qrc=0; wait "$QEMU_PID" || qrc=$?
QEMU_PID=""
wait 2>/dev/null || true
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
log "VM wall time $((elapsed_ms / 1000)).$(printf %03d $((elapsed_ms % 1000)))s"

# ================================================================ results
if [[ $ARCH == aarch64 ]]; then    # split the console: the program's output is between the markers
    tr -d '\r' <"$WORK/console.log" | awk -v d="$WORK" '
        function flush(f,   i) { if (n && buf[n] == "") n--; for (i = 1; i <= n; i++) print buf[i] >f; n = 0 }
        /^NUMA-VM-BEGIN-(out|err)$/ { f = d "/" (substr($0, 15) == "out" ? "stdout" : "stderr"); n = 0; next }
        /^NUMA-VM-END-(out|err)$/ { if (f != "") flush(f); f = ""; next }
        /^NUMA-VM-EXIT-STATUS: / { print >(d "/status"); next }
        f != "" { buf[++n] = $0 }'
fi
cat "$WORK/stdout"
cat "$WORK/stderr" >&2
status=$(grep -ao 'NUMA-VM-EXIT-STATUS: [0-9]*' "$WORK/status" | tail -n 1 | cut -d' ' -f2 || true)
if [[ -n $status ]]; then
    log "program exit status $status"
    exit "$status"
fi
if ((qrc == 124 || qrc == 137)); then
    echo "$PROG_NAME: TIMEOUT after ${TIMEOUT}s; last console lines:" >&2
    tail -n 20 "$WORK/console.log" >&2
    exit $RC_TIMEOUT
fi
echo "$PROG_NAME: the VM ended without reporting a status (qemu rc=$qrc)" >&2
sed 's/^/  qemu: /' "$WORK/qemu.out" >&2
echo "$PROG_NAME: last console lines:" >&2
tail -n 30 "$WORK/console.log" >&2
exit $RC_RIG
