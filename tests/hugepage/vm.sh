#!/usr/bin/env bash
# vm.sh - run hp_vm inside a 2-node qemu VM with 32 hugetlb pages (split by
# the kernel over the nodes), through the project's harness.
#
#   vm.sh RUN-IN-NUMA-VM.SH HP_VM
#
# Missing qemu/kernel/busybox/cpio: skip (77).  Exit: hp_vm's status, 124 the
# VM timed out, 125 the VM rig failed.
set -u
HARNESS=${1:?usage: vm.sh RUN-IN-NUMA-VM.SH HP_VM}
PROG=${2:?usage: vm.sh RUN-IN-NUMA-VM.SH HP_VM}
if ! bash "$HARNESS" --check-deps; then
    echo "SKIP: the VM tools are missing (Debian: apt-get install qemu-system-x86 linux-image-amd64 busybox-static cpio)"
    exit 77
fi
PROG=$(realpath "$PROG")
rc=0
bash "$HARNESS" --nodes 2 --cpus 2 --mem-per-node 256 --hugepages 32 --timeout "${HP_VM_TIMEOUT:-100}" \
    --env NUMASLAB_PAGES=auto \
    --add "$PROG" -- "$PROG" || rc=$?
case $rc in
    124) echo "vm.sh: the VM TIMED OUT" ;;
    125) echo "vm.sh: the VM rig FAILED (see above)" ;;
esac
exit $rc
