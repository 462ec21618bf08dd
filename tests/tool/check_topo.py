"""check_topo.py TOOL - `numaslab topo --json` against /sys.

Checks: valid JSON; the node ids are the NUMA nodes with memory in
/sys/devices/system/node; each node's CPUs are its cpulist (within the
cgroup's CPUs), its memory total is MemTotal of its meminfo, free <= total;
hugetlb pages (2 MiB and 1 GiB, total and free) are the sysfs counters;
the distance matrix is each node's `distance` file; the THP settings are
the bracketed words of /sys/kernel/mm/transparent_hugepage/{enabled,defrag};
the plan uses every node and page mode thp (the default) (clean environment),
and its "config" (keyed like the allocator's JSON statistics) says so too.
Huge page counters may change while we read (other tests reserve pages):
a mismatch there is retried a few times before it fails.
"""
import json
import os
import re
import subprocess
import sys

tool = sys.argv[1]
SYS = "/sys/devices/system/node"


def fail(msg):
    print("check_topo: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def parse_list(s):
    out = set()
    for part in filter(None, s.strip().split(",")):
        a, _, b = part.partition("-")
        out.update(range(int(a), int(b or a) + 1))
    return out


def topo_json():
    p = subprocess.run([tool, "topo", "--json"], capture_output=True, text=True, env=os.environ)
    if p.returncode != 0:
        fail("topo --json: exit %d: %s" % (p.returncode, p.stderr))
    if p.stderr:
        fail("topo --json wrote to stderr: " + p.stderr)
    try:
        return json.loads(p.stdout)
    except ValueError as e:
        fail("topo --json is not valid JSON (%s): %s" % (e, p.stdout[:500]))


def sys_ids():
    if not os.path.isdir(SYS):
        return [0]
    ids = sorted(int(d[4:]) for d in os.listdir(SYS) if re.fullmatch(r"node\d+", d))
    mem = read(SYS + "/has_memory")
    if mem is not None:
        ids = [i for i in ids if i in parse_list(mem)]
    return ids or [0]


def allowed_cpus():
    for p in ("/sys/fs/cgroup/cpuset.cpus.effective", "/sys/fs/cgroup/cpuset/cpuset.effective_cpus"):
        v = read(p)
        if v:
            return parse_list(v)
    return None


def check_hugepages(d):
    bad = []
    for n in d["nodes"]:
        for size in ("2048kB", "1048576kB"):
            base = "%s/node%d/hugepages/hugepages-%s" % (SYS, n["id"], size)
            got = n["hugepages"][size]
            if not os.path.isdir(base):
                if got is not None:
                    bad.append("node %d %s: %r, no such sysfs dir" % (n["id"], size, got))
                continue
            want = {"total": int(read(base + "/nr_hugepages")), "free": int(read(base + "/free_hugepages"))}
            if got != want:
                bad.append("node %d hugepages %s: %r, sysfs %r" % (n["id"], size, got, want))
    return bad


d = topo_json()
for key in ("nodes", "distances", "thp", "numaslab", "config"):
    if key not in d:
        fail("no '%s' in %s" % (key, list(d)))

ids = [n["id"] for n in d["nodes"]]
if ids != sys_ids():
    fail("node ids %r, sysfs %r" % (ids, sys_ids()))

allowed = allowed_cpus()
for n in d["nodes"]:
    nid = n["id"]
    path = "%s/node%d" % (SYS, nid)
    if os.path.isdir(path):
        want = parse_list(read(path + "/cpulist", ""))
        if allowed is not None:
            want &= allowed
        if set(n["cpu_list"]) != want:
            fail("node %d cpus %r, sysfs %r" % (nid, n["cpu_list"], sorted(want)))
        if parse_list(n["cpus"]) != set(n["cpu_list"]):
            fail("node %d: cpus '%s' and cpu_list %r differ" % (nid, n["cpus"], n["cpu_list"]))
        m = re.search(r"MemTotal:\s+(\d+) kB", read(path + "/meminfo", ""))
        total = int(m.group(1)) * 1024
        if abs(n["memory_total_bytes"] - total) > max(total // 100, 64 << 20):
            fail("node %d memory %d, sysfs MemTotal %d" % (nid, n["memory_total_bytes"], total))
        free = n["memory_free_bytes"]
        if not isinstance(free, int) or free <= 0 or free > n["memory_total_bytes"]:
            fail("node %d free memory %r (total %d)" % (nid, free, n["memory_total_bytes"]))

for attempt in range(5):
    bad = check_hugepages(d)
    if not bad:
        break
    d = topo_json()
else:
    fail("; ".join(bad))

dist = d["distances"]
if dist["nodes"] != ids or len(dist["matrix"]) != len(ids) or any(len(r) != len(ids) for r in dist["matrix"]):
    fail("distance matrix shape: %r" % dist)
if dist["source"] not in ("hwloc", "libnuma", "default"):
    fail("distance source %r" % dist["source"])
for i, nid in enumerate(ids):
    row = read("%s/node%d/distance" % (SYS, nid))
    if row is not None and len(row.split()) == len(ids):
        if [int(x) for x in row.split()] != dist["matrix"][i]:
            fail("distances of node %d: %r, sysfs %s" % (nid, dist["matrix"][i], row))

for key in ("enabled", "defrag"):
    raw = read("/sys/kernel/mm/transparent_hugepage/" + key)
    if raw is None:
        if d["thp"][key] != "unavailable":
            fail("thp %s: %r without sysfs" % (key, d["thp"][key]))
        continue
    m = re.search(r"\[([^\]]+)\]", raw)
    if d["thp"][key] != m.group(1) or d["thp"][key + "_raw"] != raw:
        fail("thp %s: %r / %r, sysfs '%s'" % (key, d["thp"][key], d["thp"][key + "_raw"], raw))

plan = d["numaslab"]
if plan["nodes"] != ids or plan["pages_mode"] != "thp" or plan["nodes_option"] is not None:
    fail("plan in a clean environment: %r" % plan)
if not plan["summary"] or "NUMASLAB_PAGES=thp" not in plan["summary"]:
    fail("plan summary: %r" % plan["summary"])
def list_text(ids):
    # [0, 1, 2, 5] -> "0-2,5", as nodeset_format writes it
    runs = []
    for i in ids:
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join("%d-%d" % (a, b) if b > a else "%d" % a for a, b in runs)


want = {"nodes_used": list_text(ids), "pages": "thp", "hugetlb_fallback": True, "strict": False, "interleave": False,
        # one node: nothing to bind; several: no task policy, no cpuset limit
        "policy": "one node: no binding" if len(ids) == 1 else "default: every node with memory"}
if d.get("config") != want:
    fail("config in a clean environment: %r, want %r" % (d.get("config"), want))
print("check_topo: %d node(s) %r, cpus, memory, hugepages, distances (%s), THP %s/%s match /sys"
      % (len(ids), ids, dist["source"], d["thp"]["enabled"], d["thp"]["defrag"]))
