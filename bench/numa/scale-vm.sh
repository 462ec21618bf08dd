#!/usr/bin/env bash
# scale-vm.sh - scaling benchmark (issue 16): larson, xmalloc, cross-node
# producer/consumer and mixed at 1..16 threads for every allocator, inside
# qemu VMs with several NUMA nodes (tests/numa-vm/run-in-numa-vm.sh), plus
# numaslab's bin-lock and remote-free counters per operation.
#
#   bench/numa/scale-vm.sh [--lib PATH/libnumaslab.so] [--out DIR] [--reps N]
#                          [--allocators "numaslab glibc ..."] [--extra NAME=PATH ...]
#                          [--threads "1 2 4 8 16"] [--vms "8:2 16:4"]
#                          [--work F] [--rmw-lib PATH] [--quick] [--timeout SEC]
#                          [--run-timeout SEC]
#   bench/numa/scale-vm.sh --report DIR [--report DIR2 ...] [--out OUT]
#       (tables again from DIR/vm-*/out.txt; several runs of the same
#       command are pooled as repetitions, into OUT, default the first DIR)
#
# --vms: VM shapes as VCPUS:NODES; memory per node 2048/NODES MiB (1024 with
# 2 nodes, 512 with 4).  ONE boot per shape: a generated /bin/sh driver
# runs every allocator in sequence inside it (LD_PRELOAD per run; glibc =
# none), cell by cell (workload, threads), the allocators' order rotating
# with the cell and repetition, so the VM's state (THP, free memory, qemu's
# scheduling on the loaded host) drifts over all alike.  A boot of the
# 16-vCPU VM costs about 19 s on the 2-core host (8 vCPUs: 6.5 s; TCG,
# host under load), so one boot per shape instead of one per allocator
# saves 4 boots (~100 s) a shape.
#
# Workloads (the sizes were cut to fit a run of both shapes, all five
# allocators and threads 1..16 into 12-17 minutes of qemu TCG emulation
# on the 2-core host: there is no usable KVM there, see bench/RESULTS.md):
#   larson   T 4 20000*F 1000 16 1024   per thread: 4 epochs (a thread's life
#                                        each) of 20000 replacements, 1000 slots
#   xmalloc  T B 100 16 256 1           400000*F objects in all, B = 4000*F/T
#                                        batches per worker, ONE worker per thread
#                                        (run.sh uses 4)
#   prodcons T N 16 512                 400000*F blocks in all over max(1, T/2)
#                                        pairs; PRODCONS_CROSS=1: producer i on
#                                        node i % nodes, its consumer on node (i+1) % nodes
#   mixed    T N 2000 1024              2000000*F operations in all, N = 2000000*F/T
#                                        per thread (mixed_1k)
# so larson's work grows with T (its epoch length is what the bin-lock count
# depends on) and the others do the same work at every T.  --work F scales
# them (default 1; --quick: 0.05, threads "1 16").  Every run is killed
# after --run-timeout SEC (default 60) inside the VM and reported as such
# (throughput then "< x" of glibc's).
#
# Counts (numaslab only): each cell is also run twice with NUMASLAB_STATS=1
# NUMASLAB_STATS_FORMAT=json: a "long" run (the workload above) and a
# "warm" one with a quarter of its work (larson: 1 epoch instead of 4;
# the others a quarter of the op count).  The statistics are written at
# exit, so the long run's counters include start-up, the first fills of
# every cache and the teardown; the difference long - warm cancels those
# (both runs have the same threads and live set) and leaves the counts of
# 3/4 of the long run's operations in steady state (for larson that
# includes its per-epoch thread exits and starts: that is its steady
# state).  From the per-node fields bin_lock_acquires, bin_lock_contended,
# remote_batches and remote_blocks (summed over the nodes) and the
# benchmark's operation count: malloc+free pairs per bin lock acquisition
# (pairs = ops for larson, xmalloc and prodcons, whose operation is a
# malloc+free pair; ops/2 for mixed, whose operation is one call), bin lock
# acquisitions per 1000 operations, cross-node frees per 1000 operations,
# blocks per remote batch (remote_blocks / remote_batches) and remote
# batches per 1000 cross-node frees; the whole long run's figures beside
# them.  Targets (issue 16): >= 64 pairs per bin lock on larson and mixed
# at 16 threads; on prodcons at most one atomic read-modify-write per 16
# cross-node frees, checked here as blocks per batch >= 16.
#
# --rmw-lib PATH  HOOK for the statistics build that counts the allocator's
#   atomic RMWs: the counts runs preload PATH instead of --lib and read the
#   top-level JSON field "atomic_rmw" of its statistics; the tables then
#   get a column "cross-node frees per atomic RMW" (prodcons: >= 16).
#   Without it the column is left out.
#
# Throughput in these VMs measures qemu's scheduling of 8 or 16 vCPUs on
# the host's cores (under TCG, where every TLB flush and IPI waits for all
# vCPU threads): it is reported relative to glibc in the same VM and cell,
# never gated.  --timeout SEC limits each whole VM (default 3600).  The
# VM's output stays small (a line per run; the serial console carries
# ~150 KB/s).  Writes DIR/scale.csv (a row per run),
# DIR/summary.md (the tables), DIR/machine.txt, DIR/vm-V-N/{plan.sh,out.txt,err.txt}.
# Exit status: 0; 1 if a run failed (a peer killed at the run limit is not
# a failure, numaslab killed is); 77 if the VM tools are missing.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
harness=$here/../../tests/numa-vm/run-in-numa-vm.sh
orig_args="$*"
lib="" out="" reps=1 allocs_req="" extra_req=() threads="" vms="8:2 16:4" work="" rmw_lib="" quick=0
vm_timeout=3600 report_only=() run_cap=60
while [ $# -gt 0 ]; do
    case "$1" in
    --lib) lib=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --allocators) allocs_req=$2; shift 2 ;;
    --extra) extra_req+=("$2"); shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --vms) vms=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --rmw-lib) rmw_lib=$2; shift 2 ;;
    --quick) quick=1; shift ;;
    --timeout) vm_timeout=$2; shift 2 ;;
    --run-timeout) run_cap=$2; shift 2 ;;
    --report) report_only+=("$2"); shift 2 ;;
    -h | --help) sed -n '2,77p' "$0"; exit 0 ;;
    *) echo "scale-vm.sh: unknown argument '$1' (see --help)" >&2; exit 64 ;;
    esac
done
die() { echo "scale-vm.sh: $*" >&2; exit 1; }

# ---------------------------------------------------------------- report
# report OUT DIR...: parse each DIR/vm-*/out.txt (the runs of DIR k > 1
# become repetitions 1000k + r) into OUT/scale.csv and OUT/summary.md
report() {
    python3 - "$@" <<'PY'
import csv, glob, math, os, statistics, sys
out, dirs = sys.argv[1], sys.argv[2:]
rows = []
cap = {}
for k, dd in enumerate(dirs):
  for f in sorted(glob.glob(os.path.join(dd, "vm-*", "out.txt"))):
    for line in open(f, errors="replace"):
        if line.startswith("I shape="):
            d = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
            cap[d["shape"]] = float(d.get("cap", "0"))
        if not line.startswith("R "):
            continue
        d = dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
        if k:
            d["rep"] = str(1000 * k + int(d["rep"]))
        rows.append(d)
cols = ["shape", "vcpus", "nodes", "rep", "allocator", "workload", "threads", "variant", "status", "ops",
        "ops_per_sec", "seconds", "cpu_seconds", "peak_rss_kb", "bin_lock_acquires", "bin_lock_contended",
        "remote_batches", "remote_blocks", "atomic_rmw", "threads_created", "per_node"]
keys = ["bin_lock_acquires", "bin_lock_contended", "remote_batches", "remote_blocks"]
recs = []
for d in rows:
    v, n = d["shape"].split(":")
    r = {"shape": d["shape"], "vcpus": v, "nodes": n, "rep": d["rep"], "allocator": d["a"], "workload": d["wl"],
         "threads": d["t"], "variant": d["var"], "ops": d["ops"]}
    ok = d.get("rc") == "0" and "ops_per_sec" in d
    r["status"] = "ok" if ok else "timeout" if d.get("rc") in ("137", "124") else "fail-rc" + d.get("rc", "?")
    ex = dict(x.split(":", 1) for x in d.get("extra", "").split(",") if ":" in x)
    r["threads_created"] = ex.get("threads_created", "")
    for k in ("ops_per_sec", "seconds", "cpu_seconds", "peak_rss_kb"):
        r[k] = d.get(k, "")
    pn = []
    for k in keys:
        if k in d and d[k] != "":
            vals = [int(x) for x in d[k].split(":") if x != ""]
            r[k] = sum(vals)
            pn.append(k + "=" + "/".join(map(str, vals)))
        else:
            r[k] = ""
    if d["var"] != "tput" and ok and r["bin_lock_acquires"] == "":
        r["status"] = "fail-nostats"
    r["atomic_rmw"] = d.get("rmw", "") if d.get("rmw", "NA") != "NA" else ""
    r["per_node"] = " ".join(pn)
    recs.append(r)
with open(os.path.join(out, "scale.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=cols)
    w.writeheader()
    for r in recs:
        w.writerow(r)

ok = [r for r in recs if r["status"] == "ok"]
fails = [r for r in recs if r["status"] != "ok"]
shapes = sorted({r["shape"] for r in recs}, key=lambda s: [int(x) for x in s.split(":")])
wls = [w for w in ("larson", "xmalloc", "prodcons", "mixed") if any(r["workload"] == w for r in recs)]
order = []
for r in recs:
    if r["allocator"] not in order:
        order.append(r["allocator"])
peers = [a for a in order if a != "glibc"]
thr = sorted({int(r["threads"]) for r in recs})
has_rmw = any(r["atomic_rmw"] != "" for r in ok)
rmw_missing = any(d.get("rmw") == "NA" for d in rows)
L = []
P = L.append
for dd in dirs:
    meta = os.path.join(dd, "machine.txt")
    if os.path.exists(meta):
        P("```")
        P(open(meta).read().rstrip())
        P("```")
        P("")

def med(xs):
    return statistics.median(xs) if xs else None

P("### Throughput relative to glibc in the same VM (reported, not gated)")
P("")
P("Median over repetitions of each allocator's ops/s divided by glibc's in the same cell "
  "(> 1 = faster than glibc); glibc's own column in M ops/s.  The VM's vCPUs share the host's "
  "2 cores, so these ratios measure the allocators under qemu's scheduling, not a 16-core machine.")
for sh in shapes:
    v, n = sh.split(":")
    P("")
    P(f"**{v} vCPUs, {n} nodes**")
    P("")
    P("| workload | threads | glibc M ops/s | " + " | ".join(peers) + " |")
    P("|---|---:|---:|" + "---:|" * len(peers))
    geo = {a: [] for a in peers}
    timeouts = []
    for wl in wls:
        for t in thr:
            cell = [r for r in ok if r["shape"] == sh and r["workload"] == wl and int(r["threads"]) == t and r["variant"] == "tput"]
            g = med([float(r["ops_per_sec"]) for r in cell if r["allocator"] == "glibc"])
            if not cell:
                continue
            line = f"| {wl} | {t} | " + (f"{g / 1e6:.2f}" if g else "-") + " |"
            for a in peers:
                x = med([float(r["ops_per_sec"]) for r in cell if r["allocator"] == a])
                to = [r for r in recs if r["shape"] == sh and r["workload"] == wl and int(r["threads"]) == t
                      and r["variant"] == "tput" and r["allocator"] == a and r["status"] == "timeout"]
                if x and g:
                    line += f" {x / g:.2f} |"
                    geo[a].append(x / g)
                elif to and g and cap.get(sh):
                    ub = float(to[0]["ops"]) / cap[sh] / g
                    line += f" < {ub:.2f} (killed at {cap[sh]:.0f} s) |"
                    geo[a].append(ub)
                    timeouts.append(a)
                else:
                    line += " - |"
            P(line)
    P("| geometric mean | | 1 |" + "".join(
        (" < " if a in timeouts else " ") + f"{math.exp(sum(map(math.log, geo[a])) / len(geo[a])):.2f} |"
        if geo[a] else " - |" for a in peers))
    reps_here = sorted({r["rep"] for r in ok if r["shape"] == sh}, key=int)
    if len(reps_here) > 1:  # the spread: each repetition's geometric mean on its own
        per = []
        for a in peers:
            gs = []
            for rp in reps_here:
                xs = []
                for r in ok:
                    if r["shape"] == sh and r["rep"] == rp and r["allocator"] == a and r["variant"] == "tput":
                        g = [float(q["ops_per_sec"]) for q in ok if q["shape"] == sh and q["rep"] == rp and
                             q["allocator"] == "glibc" and q["variant"] == "tput" and q["workload"] == r["workload"]
                             and q["threads"] == r["threads"]]
                        if g:
                            xs.append(float(r["ops_per_sec"]) / g[0])
                if xs:
                    gs.append(f"{math.exp(sum(map(math.log, xs)) / len(xs)):.2f}")
            per.append(f"{a} " + " / ".join(gs))
        P("")
        P("Each repetition's geometric mean on its own (completed runs only): " + "; ".join(per) + ".")

def counts(cell_rows, var):
    rs = [r for r in cell_rows if r["variant"] == var]
    if not rs:
        return None
    # sum over repetitions (each repetition is one run of each variant)
    s = {k: sum(int(r[k]) for r in rs) for k in keys}
    s["ops"] = sum(float(r["ops"]) for r in rs)
    s["rmw"] = sum(int(r["atomic_rmw"]) for r in rs) if all(r["atomic_rmw"] != "" for r in rs) else None
    s["n"] = len(rs)
    s["thr"] = sum(int(r["threads_created"] or 0) for r in rs)
    return s

def pairs_of(wl, ops):
    return ops / 2 if wl == "mixed" else ops

def fmt_ratio(num, den, nd=1):
    if den <= 0:
        return "inf" if num > 0 else "-"
    return f"{num / den:,.{nd}f}"

P("")
P("### numaslab's counters per operation")
P("")
P("From `NUMASLAB_STATS=1 NUMASLAB_STATS_FORMAT=json` at exit, summed over the nodes.  "
  "**Steady** = a long run minus a warm-up run of the same cell with a quarter of its work "
  "(start-up, first cache fills and teardown cancel); **whole** = the long run alone.  "
  "Pairs = ops (larson, xmalloc, prodcons: one malloc+free per operation) or ops/2 (mixed: one call "
  "per operation).  Blocks per batch = remote_blocks / remote_batches; batches per 1000 cross-node "
  "frees = 1000 / that; inf = the long run took no more bin locks than its warm-up; contended % only "
  "where the steady state took >= 200 bin locks.  Targets (issue 16): >= 64 pairs per bin lock on larson and mixed at 16 "
  "threads; prodcons: <= 1 atomic RMW per 16 cross-node frees, here checked as >= 16 blocks per batch"
  + (" and with the RMW build's atomic_rmw." if has_rmw else
     " (an RMW build was given, but its statistics had no top-level \"atomic_rmw\": no RMW column)." if rmw_missing
     else " (no RMW-counting build given: no RMW column)."))
for sh in shapes:
    v, n = sh.split(":")
    P("")
    P(f"**{v} vCPUs, {n} nodes**")
    P("")
    hdr = ("| workload | threads | steady ops | pairs / bin lock (steady) | bin locks / 1000 ops (steady) | "
           "contended % (steady) | cross-node frees / 1000 ops (steady) | blocks / batch (steady) | "
           "batches / 1000 cross-node frees (steady) | bin locks / thread started (steady, larson) | "
           "pairs / bin lock (whole) | blocks / batch (whole) |")
    sep = "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    if has_rmw:
        hdr += " cross-node frees / atomic RMW (steady) |"
        sep += "---:|"
    P(hdr)
    P(sep)
    for wl in wls:
        for t in thr:
            cell = [r for r in ok if r["shape"] == sh and r["workload"] == wl and int(r["threads"]) == t]
            lo, wa = counts(cell, "long"), counts(cell, "warm")
            if not lo:
                continue
            if wa:
                dl = {k: lo[k] - wa[k] for k in keys}
                dops = lo["ops"] - wa["ops"]
            else:
                dl, dops = None, None
            pr = pairs_of(wl, dops) if dl else None
            c = []
            if dl:
                acq = dl["bin_lock_acquires"]
                c.append(f"{dops:,.0f}")
                ppl = fmt_ratio(pr, acq)
                if (wl in ("larson", "mixed") and t == 16):
                    ppl += " (target >= 64: " + ("met" if acq <= 0 or pr / acq >= 64 else "MISSED") + ")"
                c.append(ppl)
                c.append(f"{1000 * acq / dops:.3f}")
                c.append(fmt_ratio(100 * dl["bin_lock_contended"], acq) if acq >= 200 else "-")
                c.append(f"{1000 * dl['remote_blocks'] / dops:.1f}")
                bpb = fmt_ratio(dl["remote_blocks"], dl["remote_batches"])
                if wl == "prodcons" and dl["remote_batches"] > 0:
                    bpb += " (target >= 16: " + ("met" if dl["remote_blocks"] / dl["remote_batches"] >= 16 else "MISSED") + ")"
                c.append(bpb)
                c.append(fmt_ratio(1000 * dl["remote_batches"], dl["remote_blocks"]))
                c.append(fmt_ratio(acq, lo["thr"] - wa["thr"]) if lo["thr"] > wa["thr"] else "-")
            else:
                c += ["-"] * 8
            c.append(fmt_ratio(pairs_of(wl, lo["ops"]), lo["bin_lock_acquires"]))
            c.append(fmt_ratio(lo["remote_blocks"], lo["remote_batches"]))
            if has_rmw:
                if dl and lo["rmw"] is not None and wa["rmw"] is not None:
                    dr = lo["rmw"] - wa["rmw"]
                    x = fmt_ratio(dl["remote_blocks"], dr)
                    if wl == "prodcons" and dr > 0:
                        x += " (target >= 16: " + ("met" if dl["remote_blocks"] / dr >= 16 else "MISSED") + ")"
                    c.append(x)
                else:
                    c.append("-")
            P(f"| {wl} | {t} | " + " | ".join(c) + " |")
P("")
P(f"Runs: {len(recs)}, failed: {len(fails)}" + ("" if not fails else ": " + ", ".join(
    f"{r['shape']} {r['allocator']} {r['workload']} t={r['threads']} {r['variant']} ({r['status']})" for r in fails)))
open(os.path.join(out, "summary.md"), "w").write("\n".join(L) + "\n")
print("\n".join(L))
PY
}
if [ ${#report_only[@]} -gt 0 ]; then
    for d in "${report_only[@]}"; do [ -d "$d" ] || die "--report: no directory $d"; done
    mkdir -p "${out:-${report_only[0]}}" || die "cannot create $out"
    report "${out:-${report_only[0]}}" "${report_only[@]}"
    exit $?
fi

# ---------------------------------------------------------------- setup
[ -n "$lib" ] || lib=$here/../../build/libnumaslab.so
[ -f "$lib" ] || die "libnumaslab.so not found ($lib); pass --lib PATH"
lib=$(readlink -f "$lib")
if [ -n "$rmw_lib" ]; then
    [ -f "$rmw_lib" ] || die "--rmw-lib: no such file $rmw_lib"
    rmw_lib=$(readlink -f "$rmw_lib")
fi
bash "$harness" --check-deps || exit 77
command -v python3 >/dev/null || die "python3 is missing"
[[ $reps =~ ^[1-9][0-9]*$ ]] || die "--reps wants a positive integer"
if [ $quick = 1 ]; then
    work=${work:-0.05} threads=${threads:-"1 16"}
fi
work=${work:-1} threads=${threads:-"1 2 4 8 16"}
[[ $work =~ ^[0-9]*\.?[0-9]+$ ]] || die "--work wants a number"
for t in $threads; do [[ $t =~ ^[1-9][0-9]*$ ]] || die "--threads: bad count '$t'"; done
for s in $vms; do [[ $s =~ ^[1-9][0-9]*:[1-9][0-9]*$ ]] || die "--vms: bad shape '$s' (want VCPUS:NODES)"; done
out=${out:-$(mktemp -d /tmp/numaslab-scale-vm.XXXXXX)}
mkdir -p "$out/bin" || die "cannot create $out"
out=$(readlink -f "$out")
for src in larson xmalloc prodcons mixed; do
    gcc -O2 -Wall -Wextra -pthread -o "$out/bin/$src" "$here/$src.c" || die "build of $src.c failed"
done

# shellcheck source=allocators.sh
. "$here/allocators.sh"
select_allocators "$lib" "$allocs_req" scale-vm.sh "${extra_req[@]}"
have_numaslab=0
for a in "${allocs[@]}"; do [ "$a" = numaslab ] && have_numaslab=1; done
counts_lib=${rmw_lib:-$lib}

scaled() { awk -v a="$1" -v f="$work" 'BEGIN { x = int(a * f + 0.5); print (x < 1 ? 1 : x) }'; }
l_ops=$(scaled 20000) x_tot=$(scaled 400000) p_tot=$(scaled 400000) m_tot=$(scaled 2000000)
# wl_args WORKLOAD T VARIANT: prints "OPS WORKLOAD T ARGS..." (OPS = the benchmark's operation count;
# the binary is named as the workload).  larson: per thread (an epoch is a thread's life); the
# others: a fixed total per cell, split over the threads (pairs); warm = a quarter.
wl_args() {
    local wl=$1 t=$2 var=$3 e b q=1 p
    [ "$var" = warm ] && q=4
    case $wl in
    larson)
        e=4; [ "$var" = warm ] && e=1
        echo "$((t * e * l_ops)) larson $t $e $l_ops 1000 16 1024" ;;
    xmalloc)
        b=$(((x_tot / q / t + 99) / 100))
        echo "$((t * b * 100)) xmalloc $t $b 100 16 256 1" ;;
    prodcons)
        p=$((t / 2 > 0 ? t / 2 : 1)) b=$((p_tot / q / (t / 2 > 0 ? t / 2 : 1)))
        echo "$((p * b)) prodcons $t $b 16 512" ;;
    mixed)
        b=$((m_tot / q / t))
        echo "$((t * b)) mixed $t $b 2000 1024" ;;
    esac
}

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "command: $0 $orig_args"
    echo "vms: $vms (memory per node 2048/nodes MiB), repetitions: $reps, threads: $threads, work factor: $work"
    echo "workloads: larson 4 epochs (warm 1) of $l_ops replacements per thread, 1000 slots, 16..1024 B; per cell in all (warm a quarter): xmalloc $x_tot objects (1 worker per thread, batches of 100, 16..256 B), prodcons $p_tot blocks (16..512 B, PRODCONS_CROSS=1), mixed $m_tot ops (2000 slots per thread, 16..1024 B); run limit $run_cap s"
    echo "host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, kernel $(uname -r), qemu $(qemu-system-x86_64 --version | head -1 | awk '{print $4}'), accel $([ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo && echo kvm || echo tcg)"
    echo "numaslab: $lib (sha256 $(sha256sum "$lib" | cut -c1-16); work tree $(git -C "$here" describe --always --dirty 2>/dev/null || echo 'no git'))"
    [ -n "$rmw_lib" ] && echo "counts runs preload (RMW build): $rmw_lib"
    for p in libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4; do
        echo "package $p: $(dpkg-query -W -f '${Version}' "$p" 2>/dev/null || echo 'not installed')"
    done
    echo "host load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/machine.txt"

# ---------------------------------------------------------------- one VM per shape
nfail=0
adds=(--add "$out/bin")
for a in "${allocs[@]}"; do [ -n "${alib[$a]}" ] && adds+=(--add "${alib[$a]}"); done
[ -n "$rmw_lib" ] && adds+=(--add "$rmw_lib")
t_all=$(date +%s)
for shape in $vms; do
    vcpus=${shape%:*} nodes=${shape#*:}
    mem=$((2048 / nodes))
    [ $mem -ge 64 ] || mem=64
    vdir=$out/vm-$vcpus-$nodes
    mkdir -p "$vdir"
    plan=$vdir/plan.sh
    nruns=0
    {
        echo '#!/bin/sh'
        echo "# generated by scale-vm.sh for $vcpus vCPUs over $nodes nodes: one line R ... per run on stdout"
        echo "B=$out/bin SHAPE=$shape CAP=$run_cap"
        cat <<'SH'
export PRODCONS_CROSS=1
echo "I shape=$SHAPE cap=$CAP nodes=$(cat /sys/devices/system/node/online) cpus=$(nproc) mem_kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo) thp=$(cat /sys/kernel/mm/transparent_hugepage/enabled | sed 's/.*\[\(.*\)\].*/\1/')"
for n in /sys/devices/system/node/node[0-9]*; do echo "I ${n##*/} cpus=$(cat $n/cpulist)"; done
# top-level "atomic_rmw" of a JSON file (the RMW-counting build's); NA if none
rmw_of() {
    awk '{ s = s $0 "\n" } END {
        d = 0; n = length(s); q = 0
        for (i = 1; i <= n; i++) {
            c = substr(s, i, 1)
            if (q) { if (c == "\\") i++; else if (c == "\"") q = 0; continue }
            if (c == "\"") {
                if (d == 1 && substr(s, i, 12) == "\"atomic_rmw\"") {
                    r = substr(s, i + 12); sub(/^[ \t\n]*:[ \t\n]*/, "", r)
                    if (match(r, /^[0-9]+/)) { print substr(r, 1, RLENGTH); exit }
                }
                q = 1; continue
            }
            if (c == "{" || c == "[") d++; else if (c == "}" || c == "]") d--
        }
        print "NA" }' "$1"
}
# run REP ALLOC LIB VARIANT OPS WORKLOAD T ARGS... (the binary is named as the workload)
run() {
    rep=$1 a=$2 lib=$3 var=$4 ops=$5 wl=$6 t=$7
    shift 7
    rm -f /tmp/st.json /tmp/o /tmp/e
    set -- timeout -s KILL $CAP "$B/$wl" "$t" "$@"
    [ -n "$lib" ] && set -- env "LD_PRELOAD=$lib" "$@"
    if [ "$var" != tput ]; then
        NUMASLAB_STATS=1 NUMASLAB_STATS_FORMAT=json NUMASLAB_STATS_FILE=/tmp/st.json "$@" >/tmp/o 2>/tmp/e
    else
        "$@" >/tmp/o 2>/tmp/e
    fi
    rc=$?
    line="R shape=$SHAPE rep=$rep a=$a wl=$wl t=$t var=$var ops=$ops rc=$rc"
    res=$(grep -m1 '^RESULT ' /tmp/o | cut -d' ' -f4-6,8-9)
    [ -n "$res" ] && line="$line $res"
    if [ "$var" != tput ] && [ -s /tmp/st.json ]; then
        for k in bin_lock_acquires bin_lock_contended remote_batches remote_blocks; do
            v=$(grep -o "\"$k\": *[0-9]*" /tmp/st.json | sed 's/.*: *//' | tr '\n' ':')
            line="$line $k=${v%:}"
        done
        [ "$RMW" = 1 ] && line="$line rmw=$(rmw_of /tmp/st.json)"
    fi
    echo "$line"
    if [ $rc -eq 137 ]; then
        echo "TIMEOUT $SHAPE $a $wl t=$t $var: killed after $CAP s" >&2
    elif [ $rc -ne 0 ] || [ -z "$res" ]; then
        echo "FAIL $SHAPE $a $wl t=$t $var rc=$rc: $(tail -c 300 /tmp/e | tr '\n' ' ')" >&2
    fi
}
SH
        [ -n "$rmw_lib" ] && echo "RMW=1" || echo "RMW=0"
        k=0
        for rep in $(seq 1 "$reps"); do
            for wl in larson xmalloc prodcons mixed; do
                for t in $threads; do
                    n=${#allocs[@]}
                    for j in $(seq 0 $((n - 1))); do
                        a=${allocs[$(((j + k) % n))]}
                        echo "run $rep $a '${alib[$a]}' tput $(wl_args "$wl" "$t" tput)"
                        nruns=$((nruns + 1))
                    done
                    k=$((k + 1))
                    if [ $have_numaslab = 1 ]; then
                        for var in warm long; do
                            echo "run $rep numaslab '$counts_lib' $var $(wl_args "$wl" "$t" "$var")"
                            nruns=$((nruns + 1))
                        done
                    fi
                done
            done
        done
        echo 'echo "I done uptime=$(cut -d" " -f1 /proc/uptime)"'
    } >"$plan"
    chmod 755 "$plan"
    echo "scale-vm.sh: $vcpus vCPUs, $nodes nodes, $mem MiB per node: $nruns runs in one VM ($(date +%H:%M:%S))" >&2
    t0=$(date +%s)
    bash "$harness" --nodes "$nodes" --cpus "$vcpus" --mem-per-node "$mem" --timeout "$vm_timeout" \
        "${adds[@]}" -- "$plan" >"$vdir/out.txt" 2>"$vdir/err.txt"
    rc=$?
    el=$(($(date +%s) - t0))
    echo "vm $shape: status $rc, ${el} s, $(grep -c '^R ' "$vdir/out.txt") of $nruns runs reported" >>"$out/machine.txt"
    echo "scale-vm.sh: $shape done in ${el} s (status $rc); $(grep -c '^FAIL' "$vdir/err.txt") failed runs," \
        "$(grep -c '^TIMEOUT' "$vdir/err.txt") killed at the run limit" >&2
    grep -E '^(FAIL|TIMEOUT)' "$vdir/err.txt" >&2
    # a peer killed at the limit is a result (reported as such); numaslab's would be a hang: a failure
    if [ $rc -ne 0 ] || [ "$(grep -c '^R ' "$vdir/out.txt")" -ne $nruns ] || grep -qE '^(FAIL|TIMEOUT [^ ]* numaslab )' "$vdir/err.txt"; then
        nfail=$((nfail + 1))
        [ $rc -ne 0 ] && tail -5 "$vdir/err.txt" >&2
    fi
done
echo "total: $(($(date +%s) - t_all)) s; host load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
report "$out" "$out" >/dev/null || nfail=$((nfail + 1))
echo "scale-vm.sh: $out/scale.csv, $out/summary.md" >&2
[ $nfail -eq 0 ] || exit 1
