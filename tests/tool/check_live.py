#!/usr/bin/env python3
"""check_live.py PID THREADS BLOCKS SIZE FILE... - the JSON reports that
`numaslab stats --json PID` printed for tests/tool/live_prog, read one
after another while it ran, against what the program holds: THREADS x
BLOCKS blocks of SIZE bytes at every moment (each thread frees one block
and allocates the next, so at most one per thread is missing), plus what
thread caches hold and the program's small bookkeeping.  The per-class
request count must never go down from one read to the next and must grow
over the run (the reports are fresh, not one copy read 100 times)."""
import json
import sys

pid, threads, blocks, size = (int(x) for x in sys.argv[1:5])
files = sys.argv[5:]
prev_req = None
first_req = None
for f in files:
    with open(f) as fh:
        d = json.load(fh)
    where = f"{f}"
    assert d["pid"] == pid, f"{where}: pid {d['pid']}, want {pid}"
    cls = min((c for c in d["classes"] if c["size"] >= size), key=lambda c: c["size"])
    held = threads * (blocks - 1)
    assert cls["live_blocks"] >= held, f"{where}: class {cls['size']} has {cls['live_blocks']} live blocks, the program holds >= {held}"
    lo = held * cls["size"]
    # thread caches: at most 64 KiB per class per thread for the classes the
    # program uses (its blocks, stdio, thread set-up), plus 16 MiB of slack
    # and the batches of 64 short-lived blocks of up to 4 KiB
    hi = threads * blocks * cls["size"] + (threads + 1) * 4 * 65536 + threads * 64 * 4096 + 16 * 2**20
    assert lo <= d["in_use_bytes"] <= hi, f"{where}: in use {d['in_use_bytes']} outside [{lo}, {hi}]"
    assert d["mapped_bytes"] >= d["in_use_bytes"], f"{where}: mapped {d['mapped_bytes']} < in use {d['in_use_bytes']}"
    assert sum(n["in_use_bytes"] for n in d["nodes"]) == d["in_use_bytes"], f"{where}: nodes do not add up"
    assert d["threads"] >= threads, f"{where}: {d['threads']} thread caches, the program runs {threads} threads"
    req = cls["requests"]
    if prev_req is not None:
        assert req >= prev_req, f"{where}: requests went down: {prev_req} -> {req}"
    else:
        first_req = req
    prev_req = req
assert prev_req > first_req, f"requests did not grow over {len(files)} reads ({first_req} -> {prev_req}): stale copies"
print(f"check_live: {len(files)} reports of pid {pid}: in use within bounds, requests {first_req} -> {prev_req}")
