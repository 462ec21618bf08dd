"""check_stats.py FILE SIZE N KEEP [exact] - the JSON statistics of alloc_prog.

alloc_prog allocated N blocks of SIZE bytes and kept KEEP of them live at
exit.  Checks: the document's shape (96 classes of increasing size, one
entry per node); the class that serves SIZE (the smallest class >= SIZE)
counts >= N requests and KEEP live blocks (exactly with "exact", i.e. with
thread caches off; otherwise up to one cache's worth more, 512 blocks);
hit rates in [0, 1] (null without requests) and = 1 - refills / requests;
and the books balance: the classes' live bytes equal the nodes' small
in-use bytes, node totals add up to the process totals, SuperSlabs by
backing and by occupancy add up to the SuperSlab count.
"""
import json
import sys

path, size, n, keep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
exact = len(sys.argv) > 5 and sys.argv[5] == "exact"


def fail(msg):
    print("check_stats: FAIL: %s (%s)" % (msg, path), file=sys.stderr)
    sys.exit(1)


try:
    with open(path) as f:
        d = json.load(f)
except ValueError as e:
    fail("not valid JSON: %s" % e)

for key in ("numaslab_stats", "pid", "program", "node_count", "threads", "mapped_bytes", "in_use_bytes", "nodes",
            "classes"):
    if key not in d:
        fail("no '%s'" % key)
classes = d["classes"]
if len(classes) != 96 or [c["class"] for c in classes] != list(range(96)):
    fail("want classes 0..95, got %d" % len(classes))
if any(a["size"] >= b["size"] for a, b in zip(classes, classes[1:])):
    fail("class sizes not increasing")
if len(d["nodes"]) != d["node_count"] or [x["node"] for x in d["nodes"]] != list(range(d["node_count"])):
    fail("nodes %r for node_count %d" % ([x["node"] for x in d["nodes"]], d["node_count"]))

for c in classes:
    if c["requests"] == 0:
        if c["hit_rate"] is not None:
            fail("class %d: hit rate %r without requests" % (c["class"], c["hit_rate"]))
        continue
    want = max(0.0, 1 - c["refills"] / c["requests"])
    if not 0 <= c["hit_rate"] <= 1 or abs(c["hit_rate"] - want) > 0.0001:
        fail("class %d: hit rate %r, want %.4f" % (c["class"], c["hit_rate"], want))

cls = next(c for c in classes if c["size"] >= size)
if cls["requests"] < n:
    fail("class %d (size %d): %d requests, want >= %d" % (cls["class"], cls["size"], cls["requests"], n))
hi = keep if exact else keep + 512
if not keep <= cls["live_blocks"] <= hi:
    fail("class %d (size %d): %d live blocks, want %d..%d" % (cls["class"], cls["size"], cls["live_blocks"], keep, hi))
if cls["slabs"] < 1:
    fail("class %d: no slab" % cls["class"])

live_bytes = sum(c["live_blocks"] * c["size"] for c in classes)
small = sum(x["small_in_use"] for x in d["nodes"])
if live_bytes != small:
    fail("classes hold %d live bytes, nodes %d small bytes in use" % (live_bytes, small))
if sum(x["mapped_bytes"] for x in d["nodes"]) != d["mapped_bytes"]:
    fail("node mapped bytes do not add up to mapped_bytes")
if sum(x["in_use_bytes"] for x in d["nodes"]) != d["in_use_bytes"]:
    fail("node in-use bytes do not add up to in_use_bytes")
if sum(c["slabs"] for c in classes) != sum(x["slabs"] for x in d["nodes"]):
    fail("class slabs do not add up to node slabs")
for x in d["nodes"]:
    if x["superslabs"] != x["ss_hugetlb"] + x["ss_thp"] + x["ss_base"] or x["superslabs"] != sum(x["occupancy"]):
        fail("node %d: superslabs %d, by backing %d/%d/%d, occupancy %r" % (
            x["node"], x["superslabs"], x["ss_hugetlb"], x["ss_thp"], x["ss_base"], x["occupancy"]))
    if x["superslab_bytes"] != x["superslabs"] << 21:
        fail("node %d: superslab_bytes %d for %d SuperSlabs" % (x["node"], x["superslab_bytes"], x["superslabs"]))
    if x["remote_drained"] > x["remote_frees"]:
        fail("node %d: drained more remote frees than there were" % x["node"])
    if x["mapped_bytes"] != x["superslab_bytes"] + x["large_bytes"] + x["large_cached_bytes"]:
        fail("node %d: mapped_bytes" % x["node"])
    if x["in_use_bytes"] < x["small_in_use"]:
        fail("node %d: in_use_bytes < small_in_use" % x["node"])
if d["in_use_bytes"] < keep * size:
    fail("in_use_bytes %d < the %d bytes kept" % (d["in_use_bytes"], keep * size))
print("check_stats: class %d (size %d): %d requests, %d live (kept %d%s), hit rate %s; books balance" % (
    cls["class"], cls["size"], cls["requests"], cls["live_blocks"], keep, ", caches off" if exact else "",
    cls["hit_rate"]))
