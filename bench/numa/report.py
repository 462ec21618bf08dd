#!/usr/bin/env python3
"""report.py - summarise results.csv written by run.sh (standard library only).

    report.py OUTDIR [--plot] [--markdown FILE] [--replace DIR ...] [--pool DIR ...]
                     [--min-runs N] [--max-spread PCT]

Prints one table per workload (medians over the repetitions), the geometric
means over the suite, and with --plot writes OUTDIR/throughput.png through
gnuplot.  --markdown also writes the same tables as Markdown.

N interleaved runs: run.sh --reps N runs every cell (workload, threads,
allocator) N times, the allocators in a rotation that changes with the
repetition.  Every table shows the median over the runs of a cell and its
spread = (max-min)/median; a spread above --max-spread (default 10 %) is
marked "!" and listed at the end with the run.sh command that reruns the
cell (then --replace or --pool that directory).  --min-runs N also lists
the cells with fewer than N good runs.  The table "medians and spread per
cell" gives every cell of every allocator on one line.

Scaling: each workload table has a column "scaling" (throughput at T
threads / at 1 thread, medians, same allocator); the table "scaling from
1 to 2 threads" lists it per allocator for the thread-local workloads
(THREAD_LOCAL below: every block is freed by the thread that allocated
it), with the issue's target (>= 1.9x, or >= 0.95x glibc's own scaling).

The latency workload (per-call latency percentiles of malloc and free,
from its extra fields) is shown in a table of its own, allocators side by
side, and left out of the throughput tables and the geometric means.

Allocators other than the five of run.sh (its --extra libraries, e.g.
numaslab-prev, numaslab-hardened) are listed after numaslab, and get a table
of their own: numaslab against each of them and against the best peer, per
workload and thread count, with the spreads.

--replace DIR (repeatable): the results.csv of a targeted rerun (run.sh
--workloads W --threads T --out DIR) replaces every row of the cells
(workload, threads) it holds; the replaced cells are named in the output.
--pool DIR (repeatable): its rows are added to those of the same cells
instead (medians over all the runs).  The paired ratio numaslab/X is the
median over the repetitions of numaslab's throughput divided by X's in the
same repetition of the same run (they ran minutes apart at most, in the
rotation), which cancels load that changes slowly."""
import csv, math, os, statistics, subprocess, sys

out = sys.argv[1]
want_plot = "--plot" in sys.argv
md_file = sys.argv[sys.argv.index("--markdown") + 1] if "--markdown" in sys.argv else None
replace_dirs = [sys.argv[i + 1] for i, x in enumerate(sys.argv) if x == "--replace"]
pool_dirs = [sys.argv[i + 1] for i, x in enumerate(sys.argv) if x == "--pool"]
min_runs = int(sys.argv[sys.argv.index("--min-runs") + 1]) if "--min-runs" in sys.argv else 0
max_spread = float(sys.argv[sys.argv.index("--max-spread") + 1]) / 100 if "--max-spread" in sys.argv else 0.10


def load(d, src):
    rs = list(csv.DictReader(open(os.path.join(d, "results.csv"))))
    for r in rs:
        r["src"] = src
    return rs


rows = load(out, 0)
replaced, pooled = [], []
for i, d in enumerate(replace_dirs):
    new = load(d, "r%d" % i)
    cells = list(dict.fromkeys((r["workload"], r["threads"]) for r in new))
    rows = [r for r in rows if (r["workload"], r["threads"]) not in cells] + new
    replaced += [(w, t, d) for w, t in cells]
for i, d in enumerate(pool_dirs):
    new = load(d, "p%d" % i)
    rows += new
    pooled += [(w, t, d) for w, t in dict.fromkeys((r["workload"], r["threads"]) for r in new)]
ok = [r for r in rows if r["status"] == "ok"]
failed = [r for r in rows if r["status"] != "ok"]

PEERS = ["glibc", "mimalloc", "jemalloc", "tcmalloc"]
extras = [a for a in dict.fromkeys(r["allocator"] for r in rows) if a not in ["numaslab"] + PEERS]
order_alloc = ["numaslab"] + extras + PEERS
allocs = [a for a in order_alloc if any(r["allocator"] == a for r in rows)]
SUITE = ["larson", "mixed_1k", "mixed_64k", "prodcons", "xmalloc", "cache_scratch", "large", "memeff", "numa_local",
         "mthread", "rptest", "mstress", "larson_orig"]
# every block freed by the thread that allocated it (memeff idles 1.1 s: its throughput does not scale)
THREAD_LOCAL = ["mthread", "mixed_1k", "mixed_64k", "cache_scratch", "large", "numa_local"]
LATENCY = ["latency"]
all_workloads = sorted(dict.fromkeys(r["workload"] for r in rows), key=lambda w: SUITE.index(w) if w in SUITE else len(SUITE))
workloads = [w for w in all_workloads if w not in LATENCY]
lat_workloads = [w for w in all_workloads if w in LATENCY]
threads = sorted({int(r["threads"]) for r in rows})


def med(key, w, t, a):
    v = [float(r[key]) for r in ok if r["workload"] == w and int(r["threads"]) == t and r["allocator"] == a and r[key] not in ("", "-")]
    return statistics.median(v) if v else None


def spread(w, t, a, key="ops_per_sec"):
    """(max-min)/median of wall throughput (or KEY): the noise of this cell."""
    v = [float(r[key]) for r in ok if r["workload"] == w and int(r["threads"]) == t and r["allocator"] == a]
    if len(v) < 2:
        return None
    m = statistics.median(v)
    return (max(v) - min(v)) / m if m else None


def paired(w, t, a, b):
    """median over the repetitions of ops(a) / ops(b) within the same repetition of the same run"""
    by = {}
    for r in ok:
        if r["workload"] == w and int(r["threads"]) == t and r["allocator"] in (a, b):
            by.setdefault((r["src"], r["rep"]), {})[r["allocator"]] = float(r["ops_per_sec"])
    v = [x[a] / x[b] for x in by.values() if a in x and b in x and x[b] > 0]
    return statistics.median(v) if v else None


def extra(w, t, a, key):
    v = []
    for r in ok:
        if r["workload"] == w and int(r["threads"]) == t and r["allocator"] == a:
            for kv in r["extra"].split(","):
                if kv.startswith(key + ":"):
                    v.append(float(kv.split(":", 1)[1]))
    return statistics.median(v) if v else None


def fsp_flag(sp):
    return "-" if sp is None else "%.0f%%%s" % (100 * sp, "!" if sp > max_spread else "")


def nruns(w, t, a):
    return sum(1 for r in ok if r["workload"] == w and int(r["threads"]) == t and r["allocator"] == a)


def scaling(w, t, a):
    """throughput at t threads / at 1 thread (medians)"""
    v1, vt = med("ops_per_sec", w, 1, a), med("ops_per_sec", w, t, a)
    return vt / v1 if v1 and vt and t != 1 else None


def fmt_ops(x):
    if x is None:
        return "-"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= div:
            return "%.3g%s" % (x / div, unit)
    return "%.3g" % x


def ratio(x, y):
    return "%.2f" % (x / y) if x and y else "-"


EXTRA_COLS = {
    "memeff": [("overhead", "HWM/live", "%.2f"), ("rss_shrunk_kb", "RSS shrunk MiB", None), ("rss_idle_kb", "RSS idle MiB", None)],
    "numa_local": [("local_pct", "local %", "%.1f")],
    "cache_scratch": [("shared_lines", "shared lines", "%.0f")],
}

lines_txt, lines_md = [], []
header = ["allocator", "thr", "ops/s (median)", "vs numaslab", "vs glibc", "spread", "runs", "scaling", "ops/cpu-s", "cpu vs glibc", "peak RSS MiB", "RSS vs numaslab"]
for w in workloads:
    ex = EXTRA_COLS.get(w, [])
    hdr = header + [e[1] for e in ex]
    table = []
    for t in threads:
        ns, gl = med("ops_per_sec", w, t, "numaslab"), med("ops_per_sec", w, t, "glibc")
        gl_cpu = med("ops_per_cpu_sec", w, t, "glibc")
        ns_rss = med("peak_rss_kb", w, t, "numaslab")
        for a in allocs:
            v = med("ops_per_sec", w, t, a)
            if v is None:
                continue
            c = med("ops_per_cpu_sec", w, t, a)
            rss = med("peak_rss_kb", w, t, a)
            sp = spread(w, t, a)
            sc = scaling(w, t, a)
            row = [a, str(t), fmt_ops(v), ratio(v, ns), ratio(v, gl), fsp_flag(sp), str(nruns(w, t, a)),
                   "%.2fx" % sc if sc else "-", fmt_ops(c), ratio(c, gl_cpu), "%.1f" % (rss / 1024) if rss else "-", ratio(rss, ns_rss)]
            for key, _, f in ex:
                x = extra(w, t, a, key)
                row.append("-" if x is None else (f % x if f else "%.1f" % (x / 1024)))
            table.append(row)
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(hdr)]
    lines_txt.append("== %s" % w)
    lines_txt.append("  ".join(h.rjust(widths[i]) for i, h in enumerate(hdr)))
    for r in table:
        lines_txt.append("  ".join(c.rjust(widths[i]) for i, c in enumerate(r)))
    lines_txt.append("")
    lines_md.append("### %s\n" % w)
    lines_md.append("| " + " | ".join(hdr) + " |")
    lines_md.append("|" + "---|" * len(hdr))
    for r in table:
        lines_md.append("| " + " | ".join(("**%s**" % c if i == 0 and c == "numaslab" else c) for i, c in enumerate(r)) + " |")
    lines_md.append("")

def emit(title, md_title, md_text, hdr, table):
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(hdr)]
    lines_txt.append("== " + title)
    lines_txt.append("  ".join(h.rjust(widths[i]) for i, h in enumerate(hdr)))
    for r in table:
        lines_txt.append("  ".join(c.rjust(widths[i]) for i, c in enumerate(r)))
    lines_txt.append("")
    lines_md.append("### %s\n" % md_title)
    if md_text:
        lines_md.append(md_text + "\n")
    lines_md.append("| " + " | ".join(hdr) + " |")
    lines_md.append("|" + "---|" * len(hdr))
    for r in table:
        lines_md.append("| " + " | ".join(("**%s**" % c if i == 0 and c == "numaslab" else c) for i, c in enumerate(r)) + " |")
    lines_md.append("")


# latency: percentiles of malloc and free per allocator (medians over the runs of each figure)
LAT_KEYS = [("malloc_p50", "p50"), ("malloc_p99", "p99"), ("malloc_p999", "p99.9"), ("malloc_max", "max"),
            ("free_p50", "p50"), ("free_p99", "p99"), ("free_p999", "p99.9"), ("free_max", "max")]
for w in lat_workloads:
    hdr = ["allocator", "thr"] + ["malloc " + h for _, h in LAT_KEYS[:4]] + ["free " + h for _, h in LAT_KEYS[4:]] + \
          ["p99.9 vs best peer (malloc/free)", "timer ns", "late %", "runs"]
    table = []
    peers_here = [p for p in PEERS if p in allocs]
    for t in threads:
        best = {}
        for key in ("malloc_p999", "free_p999"):
            pv = [extra(w, t, p, key) for p in peers_here]
            pv = [x for x in pv if x is not None]
            best[key] = min(pv) if pv else None
        for a in allocs:
            if not nruns(w, t, a):
                continue
            vals = [extra(w, t, a, k) for k, _ in LAT_KEYS]
            row = [a, str(t)] + ["-" if v is None else "%.0f" % v for v in vals]
            row.append("%s/%s" % tuple(ratio(extra(w, t, a, k), best[k]) for k in ("malloc_p999", "free_p999")))
            tn, lp = extra(w, t, a, "timer_ns"), extra(w, t, a, "late_pct")
            row += ["-" if tn is None else "%.0f" % tn, "-" if lp is None else "%.1f" % lp, str(nruns(w, t, a))]
            table.append(row)
    emit("%s: per-call latency in ns (medians over the runs; timer cost subtracted; p99.9 vs best peer > 1: slower than the best peer)" % w,
         "%s: per-call latency (ns)" % w,
         "Per-call latency of malloc and of free in nanoseconds, medians over the runs of each percentile (the timer's own cost, `timer ns`, subtracted); `p99.9 vs best peer`: this allocator's p99.9 over the lowest p99.9 among the peers (malloc/free; above 1 is slower); `late %`: requests that ran more than 1 ms behind the workload's steady rate.",
         hdr, table)

# scaling from 1 to 2 threads on the thread-local workloads
if 1 in threads and 2 in threads:
    tl = [w for w in THREAD_LOCAL if w in workloads]
    hdr = ["allocator"] + tl + ["geomean", "vs glibc (geomean)", "cells below target"]
    table = []
    for a in allocs:
        sc = [scaling(w, 2, a) for w in tl]
        gsc = [scaling(w, 2, "glibc") for w in tl]
        have = [x for x in sc if x]
        rel = [x / g for x, g in zip(sc, gsc) if x and g]
        below = [w for w, x, g in zip(tl, sc, gsc) if x and x < 1.9 and not (g and x >= 0.95 * g)]
        gm = lambda l: "%.2fx" % math.exp(sum(map(math.log, l)) / len(l)) if l else "-"
        table.append([a] + ["%.2fx" % x if x else "-" for x in sc] + [gm(have), gm(rel).rstrip("x"), ", ".join(below) or "none"])
    emit("scaling from 1 to 2 threads, thread-local workloads (throughput at 2 threads / at 1 thread, medians; target >= 1.9x or >= 0.95x glibc's)",
         "Scaling from 1 to 2 threads (thread-local workloads)",
         "Throughput at 2 threads over throughput at 1 thread (medians of the runs), per allocator, on the workloads where every block is freed by the thread that allocated it; target: at least 1.9x, or at least 0.95x glibc's own scaling in the same run (`cells below target` lists the misses).",
         hdr, table)

# medians and spread per cell, every allocator on one line
hdr = ["workload", "thr"] + allocs + ["max spread"]
table = []
for w in workloads:
    for t in threads:
        cells, sps = [], []
        for a in allocs:
            v, sp = med("ops_per_sec", w, t, a), spread(w, t, a)
            cells.append("-" if v is None else "%s %s/%d" % (fmt_ops(v), fsp_flag(sp), nruns(w, t, a)))
            if sp is not None:
                sps.append(sp)
        table.append([w, str(t)] + cells + [fsp_flag(max(sps)) if sps else "-"])
emit("medians and spread per cell (ops/s median, spread = (max-min)/median, '!' above %.0f %%, /runs)" % (100 * max_spread),
     "Medians and spread per cell",
     "Median throughput, its spread (max-min)/median, marked `!` above %.0f %%, and the number of runs, per workload, thread count and allocator." % (100 * max_spread),
     hdr, table)

# the memory table: peak RSS per cell, every allocator on one line, and
# issue 14's targets (geometric mean at most 1.15x glibc's and below every
# peer's; no cell above 1.5x glibc)
hdr = ["workload", "thr"] + allocs
table, logs = [], {a: [] for a in allocs}
for w in workloads:
    for t in threads:
        g = med("peak_rss_kb", w, t, "glibc")
        cells = []
        for a in allocs:
            v = med("peak_rss_kb", w, t, a)
            if v and g:
                logs[a].append(math.log(v / g))
            cells.append("-" if not v else "%.1f (%s)" % (v / 1024, ratio(v, g)) if g else "%.1f" % (v / 1024))
        table.append([w, str(t)] + cells)
gmean = {a: math.exp(sum(l) / len(l)) for a, l in logs.items() if l}
table.append(["geomean vs glibc", ""] + ["%.3f" % gmean[a] if a in gmean else "-" for a in allocs])
over = {a: sum(1 for x in logs[a] if x > math.log(1.5)) for a in allocs}
table.append(["cells above 1.5x glibc", ""] + [str(over[a]) for a in allocs])
emit("memory: peak RSS per cell, MiB (ratio to glibc); issue 14's targets: geomean <= 1.15x glibc and below every peer's, no cell above 1.5x",
     "Memory: peak RSS per workload",
     "Peak RSS (VmHWM read by the workload at its end), MiB, medians of the runs, and its ratio to glibc's in the same cell; the last rows give the geometric mean of the ratios and the cells above 1.5x glibc (issue 14's targets: a geometric mean of at most 1.15x glibc's and below every peer's, and no cell above 1.5x).",
     hdr, table)

# geometric means over the suite: run time relative to glibc (= glibc ops / allocator ops)
geo = []
for a in allocs:
    lr, lc, lm, ln, n = [], [], [], [], 0
    for w in workloads:
        for t in threads:
            g, v = med("ops_per_sec", w, t, "glibc"), med("ops_per_sec", w, t, a)
            gc, vc = med("ops_per_cpu_sec", w, t, "glibc"), med("ops_per_cpu_sec", w, t, a)
            gm, vm = med("peak_rss_kb", w, t, "glibc"), med("peak_rss_kb", w, t, a)
            ns = med("ops_per_sec", w, t, "numaslab")
            if ns and v:
                ln.append(math.log(ns / v))
            if g and v:
                lr.append(math.log(g / v))
            if gc and vc:
                lc.append(math.log(gc / vc))
            if gm and vm:
                lm.append(math.log(vm / gm))
    gm_ = lambda l: "%.3f" % math.exp(sum(l) / len(l)) if l else "-"
    geo.append([a, gm_(lr), gm_(lc), gm_(lm), gm_(ln), str(len(lr))])
gh = ["allocator", "time vs glibc (wall)", "time vs glibc (cpu)", "peak RSS vs glibc", "time vs numaslab (wall)", "cells"]
widths = [max(len(h), *(len(r[i]) for r in geo)) for i, h in enumerate(gh)]
lines_txt.append("== geometric mean over the suite (every workload x thread count; < 1 is faster / smaller than glibc)")
lines_txt.append("  ".join(h.rjust(widths[i]) for i, h in enumerate(gh)))
for r in geo:
    lines_txt.append("  ".join(c.rjust(widths[i]) for i, c in enumerate(r)))
lines_md.append("### Geometric mean over the suite\n")
lines_md.append("Run time (and peak RSS) relative to glibc, geometric mean over every workload and thread count; below 1 is faster (smaller).\n")
lines_md.append("| " + " | ".join(gh) + " |")
lines_md.append("|" + "---|" * len(gh))
for r in geo:
    lines_md.append("| " + " | ".join(("**%s**" % c if i == 0 and c == "numaslab" else c) for i, c in enumerate(r)) + " |")
lines_md.append("")

# numaslab against each extra library and against the best peer, per cell
peers = [a for a in PEERS if a in allocs]
if extras and "numaslab" in allocs:
    ch = ["workload", "thr", "numaslab", "spread"]
    for e in extras:
        ch += [e, "spread", "numaslab/" + e, "paired", "(cpu)", "cpu spread"]
    ch += ["best peer", "ops/s", "spread", "numaslab/best", "paired", "(cpu)", "max spread", "runs"]
    table = []
    for w in workloads:
        for t in threads:
            ns = med("ops_per_sec", w, t, "numaslab")
            if ns is None:
                continue
            fsp = lambda a, k="ops_per_sec": "%.0f%%" % (100 * spread(w, t, a, k)) if spread(w, t, a, k) is not None else "-"
            nsc = med("ops_per_cpu_sec", w, t, "numaslab")
            row = [w, str(t), fmt_ops(ns), fsp("numaslab")]
            for e in extras:
                v = med("ops_per_sec", w, t, e)
                pr = paired(w, t, "numaslab", e)
                row += [fmt_ops(v), fsp(e), ratio(ns, v), "%.2f" % pr if pr else "-", ratio(nsc, med("ops_per_cpu_sec", w, t, e)),
                        "%s/%s" % (fsp("numaslab", "ops_per_cpu_sec"), fsp(e, "ops_per_cpu_sec"))]
            pv = [(med("ops_per_sec", w, t, p), p) for p in peers]
            pv = [x for x in pv if x[0]]
            if pv:
                bv, bp = max(pv)
                pr = paired(w, t, "numaslab", bp)
                row += [bp, fmt_ops(bv), fsp(bp), ratio(ns, bv), "%.2f" % pr if pr else "-", ratio(nsc, med("ops_per_cpu_sec", w, t, bp))]
            else:
                row += ["-"] * 6
            sps = [spread(w, t, a) for a in allocs]
            sps = [x for x in sps if x is not None]
            row.append("%.0f%%" % (100 * max(sps)) if sps else "-")
            row.append(str(sum(1 for r in ok if r["workload"] == w and int(r["threads"]) == t and r["allocator"] == "numaslab")))
            table.append(row)
    widths = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(ch)]
    lines_txt.append("")
    lines_txt.append("== numaslab against %s and the best peer (throughput ratio of the medians, > 1 = numaslab faster; paired: median of the per-repetition ratios; (cpu): ratio of the medians of ops per CPU-second; spread = (max-min)/median)" % ", ".join(extras))
    lines_txt.append("  ".join(h.rjust(widths[i]) for i, h in enumerate(ch)))
    for r in table:
        lines_txt.append("  ".join(c.rjust(widths[i]) for i, c in enumerate(r)))
    lines_md.append("### numaslab against %s and the best peer\n" % ", ".join(extras))
    lines_md.append("Median throughput; `numaslab/X` > 1: numaslab is faster (ratio of the medians), `paired` the median of the per-repetition ratios (numaslab and X ran in the same rotation), `(cpu)` the ratio of the medians of operations per CPU-second (user + system time of the process, which time-slicing with other processes does not inflate); spread = (max-min)/median of the runs (`cpu spread`: numaslab's / X's, of ops per CPU-second); max spread: the largest of the cell's allocators (wall).\n")
    lines_md.append("| " + " | ".join(ch) + " |")
    lines_md.append("|" + "---|" * len(ch))
    for r in table:
        lines_md.append("| " + " | ".join(r) + " |")
    lines_md.append("")

noisy, noisy_cells, few = [], [], []
for w in all_workloads:
    for t in threads:
        hi = [(a, spread(w, t, a)) for a in allocs]
        hi = ["%s %.0f%%" % (a, 100 * sp) for a, sp in hi if sp is not None and sp > max_spread]
        if hi:
            noisy.append("  %s t=%d: %s" % (w, t, ", ".join(hi)))
            noisy_cells.append((w, t))
        lo = ["%s %d" % (a, nruns(w, t, a)) for a in allocs if nruns(w, t, a) < min_runs]
        if lo:
            few.append("  %s t=%d: %s" % (w, t, ", ".join(lo)))
lines_txt.append("")
lines_txt.append("== cells (workload, threads) where an allocator's spread is above %.0f %%: %d" % (100 * max_spread, len(noisy)))
lines_txt += noisy
if noisy_cells:
    reps_seen = max(int(r["rep"]) for r in rows)
    lines_txt.append("  rerun each, adding the --lib/--extra/--allocators of this run (machine.txt), then report.py %s --replace DIR (or --pool DIR to add the runs):" % out)
    for w, t in noisy_cells:
        lines_txt.append("    bench/numa/run.sh --workloads %s --threads %d --reps %d --no-fastpath --out %s/rerun-%s-t%d" % (w, t, reps_seen, out, w, t))
if min_runs:
    lines_txt.append("")
    lines_txt.append("== cells with fewer than %d good runs: %d" % (min_runs, len(few)))
    lines_txt += few
if pooled:
    lines_txt.append("")
    lines_txt.append("== cells pooled with further runs: " + "; ".join("%s t=%s from %s" % x for x in pooled))
    lines_md.append("Cells pooled with further runs: " + "; ".join("%s t=%s (%s)" % x for x in pooled) + "\n")
if replaced:
    lines_txt.append("")
    lines_txt.append("== cells replaced by targeted reruns: " + "; ".join("%s t=%s from %s" % x for x in replaced))
    lines_md.append("Cells replaced by targeted reruns: " + "; ".join("%s t=%s (%s)" % x for x in replaced) + "\n")
if failed:
    lines_txt.append("")
    lines_txt.append("FAILED RUNS (%d):" % len(failed))
    for r in failed:
        lines_txt.append("  %s threads=%s allocator=%s rep=%s status=%s" % (r["workload"], r["threads"], r["allocator"], r["rep"], r["status"]))

print("\n".join(lines_txt))
if md_file:
    open(md_file, "w").write("\n".join(lines_md) + "\n")

if want_plot:
    n = len(workloads)
    cols = 3
    rws = (n + cols - 1) // cols
    dat = os.path.join(out, "plot.dat")
    with open(dat, "w") as f:
        for w in workloads:
            for a in allocs:
                f.write("# %s %s\n" % (w, a))
                for t in threads:
                    v = med("ops_per_sec", w, t, a)
                    if v is not None:
                        f.write("%d %g\n" % (t, v))
                f.write("\n\n")
    gp = os.path.join(out, "plot.gp")
    style = {"numaslab": "lw 3 lc rgb '#d62728' pt 7", "glibc": "lw 2 lc rgb '#1f77b4' pt 5", "mimalloc": "lw 2 lc rgb '#2ca02c' pt 9",
             "jemalloc": "lw 2 lc rgb '#9467bd' pt 11", "tcmalloc": "lw 2 lc rgb '#ff7f0e' pt 13"}
    extra_styles = ["lw 2 dt 2 lc rgb '#8c564b' pt 6", "lw 2 dt 3 lc rgb '#e377c2' pt 4", "lw 2 dt 4 lc rgb '#7f7f7f' pt 8",
                    "lw 2 dt 5 lc rgb '#17becf' pt 10"]
    for i, e in enumerate(extras):
        style[e] = extra_styles[i % len(extra_styles)]
    with open(gp, "w") as f:
        f.write("set terminal pngcairo noenhanced size %d,%d font ',9'\n" % (cols * 420, rws * 320))
        f.write("set output '%s'\n" % os.path.join(out, "throughput.png"))
        f.write("set multiplot layout %d,%d title 'median throughput (ops/s, wall clock) against threads'\n" % (rws, cols))
        f.write("set key left top font ',7'\nset xtics 1\nset grid\nset format y '%.2s%c'\nset yrange [0:*]\n")
        f.write("set xrange [%g:%g]\n" % (min(threads) - 0.3, max(threads) + 0.3))
        idx = 0
        for w in workloads:
            f.write("set title '%s'\n" % w)
            parts = []
            for a in allocs:
                parts.append("'%s' index %d using 1:2 with linespoints %s title '%s'" % (dat, idx, style.get(a, ""), a))
                idx += 1
            f.write("plot " + ", ".join(parts) + "\n")
        f.write("unset multiplot\n")
    subprocess.run(["gnuplot", gp], check=True)
    print("plot: %s" % os.path.join(out, "throughput.png"))
