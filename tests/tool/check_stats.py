"""check_stats.py FILE SIZE N KEEP [exact] - the JSON statistics of alloc_prog.

alloc_prog (one thread) allocated N blocks of SIZE bytes and an array of N
pointers (calloc, 8 * N bytes), and kept KEEP of the blocks live at exit.
The statistics are checked against that, not against each other (that the
classes' live bytes add up to the nodes' small_in_use, the node totals to
the process totals, superslab_bytes to superslabs << 21, or the occupancy
buckets to the SuperSlab count holds by construction in stats.c):

  - shape: 96 classes of increasing size, one entry per node, and as many
    nodes as /sys/devices/system/node/online has node slots;
  - one thread with a cache, no remote frees (there is no other thread);
  - the class that serves SIZE (the smallest class >= SIZE): >= N requests
    and KEEP live blocks (exactly with "exact", i.e. thread caches off;
    otherwise up to one cache's worth more, 512 blocks);
  - hit rates: null without requests, else in [0, 1]; with caches off every
    request is a miss (refills == requests, hit rate 0), with caches on some
    of the N allocations of SIZE were served from the cache (hit rate > 0);
  - bytes: small_in_use (summed over the nodes) and in_use_bytes hold at
    least the KEEP blocks at their class size, and small_in_use at most those
    plus the calloc'd array, what libc and ld.so allocate (<= 16 KiB) and,
    with caches on, one cache per class used (NUMASLAB_TCACHE_BYTES, 64 KiB
    by default, at least 2 blocks);
  - SuperSlabs: at least enough 2 MiB to hold the KEEP blocks, at most enough
    for everything the program ever had live at once plus one, and the
    occupancy histogram (buckets of 1-8, 9-16, 17-24, 25-32 used 64 KiB
    units) has room for the units the KEEP blocks fill; mapped_bytes covers
    the KEEP blocks.
"""
import json
import sys

path, size, n, keep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
exact = len(sys.argv) > 5 and sys.argv[5] == "exact"

SS = 2 << 20            # SuperSlab
UNIT = 64 << 10         # the occupancy histogram's unit (SuperSlab / 32)
LIBC = 16 << 10         # what libc and ld.so allocate in alloc_prog
TCACHE = 64 << 10       # NUMASLAB_TCACHE_BYTES default (README)


def fail(msg):
    print("check_stats: FAIL: %s (%s)" % (msg, path), file=sys.stderr)
    sys.exit(1)


def sys_node_slots():
    try:
        with open("/sys/devices/system/node/online") as f:
            text = f.read().strip()
    except OSError:
        return 1
    hi = 0
    for part in text.split(","):
        hi = max(hi, int(part.split("-")[-1]))
    return hi + 1


def ceil_div(a, b):
    return -(-a // b)


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
slots = min(sys_node_slots(), 64)
if d["node_count"] != slots:
    fail("node_count %d; /sys/devices/system/node/online has %d node slot(s)" % (d["node_count"], slots))

# one thread: its cache, no frees from another node's thread
if d["threads"] != 1:
    fail("threads %d; alloc_prog has one thread" % d["threads"])
for x in d["nodes"]:
    for key in ("bin_lock_acquires", "bin_lock_contended", "remote_batches", "remote_blocks"):
        if key not in x:
            fail("node %d: no '%s'" % (x["node"], key))
    if x["remote_frees"] or x["remote_drained"] or x["remote_batches"] or x["remote_blocks"]:
        fail("node %d: remote_frees %d, remote_drained %d, remote_batches %d, remote_blocks %d in a one-thread "
             "program" % (x["node"], x["remote_frees"], x["remote_drained"], x["remote_batches"], x["remote_blocks"]))

used = [c for c in classes if c["requests"] > 0]
for c in classes:
    if c["requests"] == 0:
        if c["hit_rate"] is not None:
            fail("class %d: hit rate %r without requests" % (c["class"], c["hit_rate"]))
        continue
    if not 0 <= c["hit_rate"] <= 1:
        fail("class %d: hit rate %r" % (c["class"], c["hit_rate"]))
    if exact and (c["refills"] != c["requests"] or c["hit_rate"] != 0):
        fail("class %d: caches off, yet %d requests, %d refills, hit rate %r" % (
            c["class"], c["requests"], c["refills"], c["hit_rate"]))

cls = next(c for c in classes if c["size"] >= size)
csize = cls["size"]
if cls["requests"] < n:
    fail("class %d (size %d): %d requests, want >= %d" % (cls["class"], csize, cls["requests"], n))
hi = keep if exact else keep + 512
if not keep <= cls["live_blocks"] <= hi:
    fail("class %d (size %d): %d live blocks, want %d..%d" % (cls["class"], csize, cls["live_blocks"], keep, hi))
if cls["slabs"] < 1:
    fail("class %d: no slab" % cls["class"])
if not exact and n > 1 and not cls["hit_rate"] > 0:
    fail("class %d: caches on, %d allocations, none served from the cache (hit rate %r)" % (
        cls["class"], n, cls["hit_rate"]))

# what the program holds at exit, and the most it ever held at once
kept = keep * csize
arr = next((c["size"] for c in classes if c["size"] >= 8 * n), 0)   # the calloc'd array, if small
caches = 0 if exact else sum(max(TCACHE, 2 * c["size"]) for c in used)
peak = n * csize + arr + LIBC + caches + len(used) * 4 * UNIT        # + a partly used slab per class

small = sum(x["small_in_use"] for x in d["nodes"])
if small < kept:
    fail("small_in_use %d < the %d KEEP blocks of %d bytes" % (small, keep, csize))
if small > kept + arr + LIBC + caches:
    fail("small_in_use %d > the %d KEEP blocks of %d bytes + the %d-byte array + %d libc + %d caches" % (
        small, keep, csize, arr, LIBC, caches))
if d["in_use_bytes"] < kept:
    fail("in_use_bytes %d < the %d bytes kept" % (d["in_use_bytes"], kept))
if d["mapped_bytes"] < kept:
    fail("mapped_bytes %d < the %d bytes kept" % (d["mapped_bytes"], kept))

superslabs = sum(x["superslabs"] for x in d["nodes"])
ss_bytes = sum(x["superslab_bytes"] for x in d["nodes"])
lo, hi = ceil_div(kept, SS), ceil_div(peak, SS) + 1
if not lo <= superslabs <= hi or not lo * SS <= ss_bytes <= hi * SS:
    fail("%d SuperSlabs (%d bytes); the KEEP blocks need >= %d, the program never held more than %d bytes "
         "(<= %d SuperSlabs)" % (superslabs, ss_bytes, lo, peak, hi))
occ = [sum(x["occupancy"][b] for x in d["nodes"]) for b in range(5)]
room = sum(occ[b] * 8 * b * UNIT for b in range(5))
if room < kept:
    fail("occupancy %r has room for %d bytes (8 units of 64 KiB per bucket step), the KEEP blocks fill %d" % (
        occ, room, kept))
if sum(occ) > hi:
    fail("occupancy %r counts %d SuperSlabs, more than the program could need (%d)" % (occ, sum(occ), hi))
print("check_stats: class %d (size %d): %d requests, %d live (kept %d%s), hit rate %s; small_in_use %d "
      "(kept %d), %d SuperSlab(s) (%d..%d)" % (
          cls["class"], csize, cls["requests"], cls["live_blocks"], keep, ", caches off" if exact else "",
          cls["hit_rate"], small, kept, superslabs, lo, hi))
