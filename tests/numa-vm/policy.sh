#!/usr/bin/env bash
# policy.sh - numaslab under the operator's NUMA policy and on real-world
# topologies (issue 18), proven in qemu VMs: numactl --membind, --interleave
# and --preferred around a test program whose pages are located one by one
# with move_pages(2); a CPU-less memory node with node ids 0 and 2; a node
# with a CPU and no memory.  Builds nothing: build numa_policy_test (and
# numa_policy_test_glibc for the reference runs) first.
#
#   tests/numa-vm/policy.sh [options] [BUILD_DIR] [-- HARNESS-OPTIONS...]
#
#   BUILD_DIR          the CMake build dir (default: build); programs are
#                      BUILD_DIR/tests/numa-vm/numa_policy_test{,_glibc}
#   --prog FILE        the numaslab test program (instead of BUILD_DIR)
#   --glibc-prog FILE  the same program with glibc's malloc (reference runs;
#                      "" = none)
#   --boots "A B"      only these boots (default: all: 2nodes cpuless memless)
#   --no-ref           no glibc reference runs
#   --timeout SEC      limit per boot (default 180)
#   -v                 stream the VM console (passed to the harness)
#   after --           more run-in-numa-vm.sh options
#
# Boots and cases (numactl is Debian's, put into the VM with --add; in the
# VM, policy-vm.sh runs each case as its own process):
#   2nodes    --nodes 2 --cpus 2 (node 0: CPU 0, node 1: CPU 1), 256 MiB each
#     a  numactl --membind=1 --cpunodebind=0 P malloc     every page on node 1
#     b  numactl --interleave=all P malloc                nodes 0 and 1 >= 30 % each
#     c  numactl --preferred=1 --cpunodebind=0 P malloc   >= 95 % on node 1
#     d  NUMASLAB_NODES=0 numactl --preferred=1 --cpunodebind=0 P malloc
#                                                         >= 95 % on node 0 (the
#                                                         explicit option wins)
#   cpuless   --topology 0:2:256,1:0:0,2:0:256: online nodes 0 and 2, node 2
#             has memory and no CPUs
#     e-online   /sys/devices/system/node/online is "0,2"
#     e-default  P malloc: >= 95 % on node 0, no page and no ns_node_of on 2
#     e-onnode   P onnode=2 (ns_malloc_onnode(.., 2)): >= 95 % on node 2
#     e-membind  numactl --membind=2 P malloc: >= 95 % on node 2
#   memless   --topology 0:1:256,1:1:0: node 1 has CPU 1 and no memory
#     f-thread   P thread=1 (a thread pinned to CPU 1 allocates): >= 95 % on
#                node 0, no page and no ns_node_of on 1, nothing on stderr
#     f-cpunode  numactl --physcpubind=1 P malloc (the whole process on the
#                memoryless node's CPU; numactl refuses --cpunodebind=1,
#                "node argument 1 is out of range": libnuma counts only
#                nodes with memory): as f-thread
#   ref-* cases: the same with glibc's malloc (d: no expectation, glibc has
#   no NUMASLAB_NODES; e-onnode: none).
# P prints the pages per node of its small and large blocks, ns_node_of of
# some blocks and numaslab's "config" object (with the "policy" in force).
#
# EXIT STATUS: 0 all cases passed; 77 qemu/kernel/busybox/cpio or numactl
# missing (skipped; the message says what to install); otherwise the number
# of failed cases, or 124 (a VM timed out) / 125 (the VM rig failed).
#
# Example (from the source root, after cmake --build build):
#   tests/numa-vm/policy.sh build
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
HARNESS=$HERE/run-in-numa-vm.sh
VMSCRIPT=$HERE/policy-vm.sh
BUILD=build PROG="" GPROG=unset BOOTS="2nodes cpuless memless" REF=1 TIMEOUT=180 EXTRA=()
while (($#)); do
    case $1 in
        --prog)       PROG=${2:?}; shift 2 ;;
        --glibc-prog) GPROG=${2?}; shift 2 ;;
        --boots)      BOOTS=${2:?}; shift 2 ;;
        --no-ref)     REF=0; shift ;;
        --timeout)    TIMEOUT=${2:?}; shift 2 ;;
        -v)           EXTRA+=(-v); shift ;;
        -h|--help)    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        --)           shift; EXTRA+=("$@"); break ;;
        -*)           echo "policy.sh: unknown option $1 (see --help)" >&2; exit 125 ;;
        *)            BUILD=$1; shift ;;
    esac
done
PROG=${PROG:-$BUILD/tests/numa-vm/numa_policy_test}
[[ $GPROG == unset ]] && GPROG=$BUILD/tests/numa-vm/numa_policy_test_glibc
[[ $REF == 1 && -n $GPROG && -x $GPROG ]] || GPROG=""

if ! bash "$HARNESS" "${EXTRA[@]}" --check-deps; then
    echo "numa-vm policy: SKIPPED: the VM tools above are missing (Debian: apt-get install qemu-system-x86 linux-image-amd64 busybox-static cpio)" >&2
    exit 77
fi
NUMACTL=$(command -v numactl || true)
if [[ -z $NUMACTL ]]; then
    echo "numa-vm policy: SKIPPED: numactl is missing (Debian: apt-get install numactl; scripts/deps.sh)" >&2
    exit 77
fi
[[ -x $PROG ]] || { echo "numa-vm policy: no test program $PROG (build it: cmake --build $BUILD --target numa_policy_test)" >&2; exit 125; }
PROG=$(realpath "$PROG")
[[ -n $GPROG ]] && GPROG=$(realpath "$GPROG")

tmpd=$(mktemp -d "${TMPDIR:-/tmp}/numa-policy.XXXXXX")
trap 'rm -rf "$tmpd"' EXIT
cp "$VMSCRIPT" "$tmpd/policy-vm.sh"

# both NAME FLAGS PREFIX ARGS [REF-ARGS]: the case line "NAME FLAGS PREFIX
# numa_policy_test ARGS" for policy-vm.sh and, with a glibc program, its
# reference "ref-NAME" with REF-ARGS (default ARGS; "none" = no reference).
P=$PROG G=$GPROG
cases=""
add() { cases+="$*"$'\n'; }
both() {   # both NAME FLAGS "PREFIX" "ARGS" ["REF-ARGS"]
    local name=$1 flags=$2 prefix=$3 args=$4 refargs=${5-$4} rflags=ref
    [[ $flags == - ]] || rflags=$flags,ref
    add "$name $flags $prefix $P $args"
    if [[ -n $G && $refargs != none ]]; then add "ref-$name $rflags $prefix $G $refargs"; fi
}

first_rc=0 failed=0
boot() {   # boot NAME HARNESS-SHAPE-OPTIONS...: run $cases in one VM
    local name=$1; shift
    printf '%s' "$cases" >"$tmpd/cases-$name"
    echo "#### numa-vm policy: boot $name ($*)"
    local start=$SECONDS rc=0
    bash "$HARNESS" "$@" --timeout "$TIMEOUT" --add "$PROG" ${G:+--add "$G"} --add "$NUMACTL" \
        --add "$tmpd/policy-vm.sh" --add "$tmpd/cases-$name" "${EXTRA[@]}" \
        -- /bin/sh "$tmpd/policy-vm.sh" "$tmpd/cases-$name" || rc=$?
    case $rc in
        0) echo "numa-vm policy: $name: OK ($((SECONDS - start))s)" ;;
        124) echo "numa-vm policy: $name: the VM TIMED OUT after ${TIMEOUT}s" ;;
        125) echo "numa-vm policy: $name: the VM rig FAILED (see above)" ;;
        *) echo "numa-vm policy: $name: $rc case(s) FAILED ($((SECONDS - start))s)" ;;
    esac
    case $rc in 0) ;; 124|125) ((first_rc)) || first_rc=$rc ;; *) failed=$((failed + rc)) ;; esac
    cases=""
}

for b in $BOOTS; do
    case $b in
    2nodes)
        both a  - "numactl --membind=1 --cpunodebind=0"    "malloc --expect 1=100"
        both b  - "numactl --interleave=all"               "malloc --expect spread=0,1"
        both c  - "numactl --preferred=1 --cpunodebind=0"  "malloc --expect 1=100"
        both d  - "env NUMASLAB_NODES=0 numactl --preferred=1 --cpunodebind=0" "malloc --expect 0=100" "malloc"
        boot 2nodes --nodes 2 --cpus 2 --mem-per-node 256 ;;
    cpuless)
        add "e-online - echo online=\$(cat /sys/devices/system/node/online); test \"\$(cat /sys/devices/system/node/online)\" = 0,2"
        both e-default - "" "malloc --expect 0=100 --expect-none 2"
        both e-onnode  - "" "onnode=2 --expect 2=100" none
        both e-membind - "numactl --membind=2" "malloc --expect 2=100"
        boot cpuless --topology 0:2:256,1:0:0,2:0:256 ;;
    memless)
        both f-thread  quiet "" "thread=1 --expect 0=100 --expect-none 1"
        both f-cpunode quiet "numactl --physcpubind=1" "malloc --expect 0=100 --expect-none 1"
        boot memless --topology 0:1:256,1:1:0 ;;
    *) echo "policy.sh: unknown boot '$b' (2nodes cpuless memless)" >&2; exit 125 ;;
    esac
done
if ((first_rc)); then exit $first_rc; fi
echo "numa-vm policy: $failed case(s) failed in all"
exit $failed       # at most the number of cases (< 77)
