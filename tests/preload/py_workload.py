"""Allocation-heavy, deterministic, self-checking python3 workload.

Prints one digest line per section on stdout; the test runs it with and
without LD_PRELOAD=libnumaslab.so and requires identical stdout.  Every
section also checks itself (assert), so a corrupted result fails even if
both runs were to agree.  With EXPECT_NUMASLAB=1 it also checks (on stderr)
that the interpreter's memory really comes from numaslab.
"""
import collections
import ctypes
import gc
import hashlib
import heapq
import json
import os
import random
import re
import sqlite3
import struct
import sys
import threading
import zlib

SCALE = int(os.environ.get("NS_PY_SCALE", "1"))


def h(obj):
    """Digest of a value through its canonical JSON / bytes form."""
    if isinstance(obj, (bytes, bytearray)):
        data = bytes(obj)
    else:
        data = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()[:32]


def out(name, value):
    print(f"{name}: {value}", flush=True)


def rand_word(rng, lo=1, hi=24):
    n = rng.randint(lo, hi)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789_-") for _ in range(n))


# ---------------------------------------------------------------- sections
def sec_sort(rng):
    n = 80_000 * SCALE
    ints = [rng.randrange(-10**12, 10**12) for _ in range(n)]
    floats = [rng.random() * 1e6 for _ in range(n // 2)]
    words = [rand_word(rng) for _ in range(n // 2)]
    s_ints = sorted(ints)
    assert all(s_ints[i] <= s_ints[i + 1] for i in range(len(s_ints) - 1))
    assert s_ints == list(heapq.merge(*(sorted(ints[i::7]) for i in range(7))))
    s_words = sorted(words, key=lambda w: (len(w), w))
    assert collections.Counter(s_words) == collections.Counter(words)
    s_floats = sorted(floats, reverse=True)
    assert s_floats[0] == max(floats) and s_floats[-1] == min(floats)
    return h([s_ints[::997], s_words[::331], [repr(f) for f in s_floats[::499]], sum(ints)])


def sec_dict(rng):
    n = 70_000 * SCALE
    d = {}
    for i in range(n):
        k = f"key:{rng.getrandbits(48):012x}:{i}"
        d[k] = (i, rand_word(rng, 0, 40), [i] * (i % 7))
    keys = list(d)
    assert len(keys) == n
    for k in keys[::2]:                  # delete half, then refill (table churn)
        del d[k]
    assert len(d) == n - (n + 1) // 2
    for i, k in enumerate(keys[::2]):
        d[k + ":again"] = i
    total = 0
    for i in range(1, n, 2):
        v = d[keys[i]]
        assert v[0] == i and len(v[2]) == i % 7 and v[2][:1] in ([], [i])
        total += v[0]
    assert total == sum(d[k][0] for k in keys[1::2])
    inverted = {v[1]: k for k, v in d.items() if isinstance(v, tuple)}
    return h([len(d), total, sorted(inverted)[:200], sorted(d)[-50:]])


def sec_sets(rng):
    n = 60_000 * SCALE
    a = {rng.randrange(4 * n) for _ in range(n)}
    b = {rng.randrange(4 * n) for _ in range(n)}
    inter, union, diff = a & b, a | b, a - b
    assert len(union) == len(a) + len(b) - len(inter)
    assert all(x in a and x not in b for x in diff)
    assert inter == {x for x in a if x in b}
    fs = frozenset(rand_word(rng) for _ in range(n // 4))
    assert len(fs | fs) == len(fs)
    return h([len(inter), len(union), len(diff), sorted(inter)[:500], sum(union), sorted(fs)[:100]])


def make_doc(rng, depth):
    if depth == 0:
        r = rng.random()
        if r < 0.3:
            return rand_word(rng, 0, 60)
        if r < 0.6:
            return rng.randrange(-10**15, 10**15)
        if r < 0.8:
            return round(rng.uniform(-1e9, 1e9), 6)
        return [None, True, False][rng.randrange(3)]
    if rng.random() < 0.5:
        return {rand_word(rng, 1, 12): make_doc(rng, depth - 1) for _ in range(rng.randint(1, 8))}
    return [make_doc(rng, depth - 1) for _ in range(rng.randint(1, 8))]


def sec_json(rng):
    docs = [make_doc(rng, 5) for _ in range(40 * SCALE)]
    text = json.dumps(docs, sort_keys=True)
    back = json.loads(text)
    assert back == docs
    text2 = json.dumps(back, sort_keys=True, indent=1)
    assert json.loads(text2) == docs
    return f"{len(text)} {h(text.encode())}"


def sec_hash_zlib(rng):
    blobs = [rng.randbytes(rng.choice([17, 4096, 65536, 1 << 20, 3 << 20])) for _ in range(40)]
    text = ("".join(rand_word(rng) + " " for _ in range(80_000 * SCALE))).encode()
    digests = []
    for b in blobs + [text]:
        c = zlib.compress(b, 6)
        assert zlib.decompress(c) == b
        d = zlib.decompressobj()
        parts = [d.decompress(c[i:i + 1000]) for i in range(0, len(c), 1000)]
        assert b"".join(parts) + d.flush() == b
        digests.append((hashlib.sha256(b).hexdigest(), hashlib.md5(c).hexdigest(), len(c)))
    sha = hashlib.sha512()
    for b in blobs:
        sha.update(b)
    assert sha.digest() == hashlib.sha512(b"".join(blobs)).digest()
    return h([digests, sha.hexdigest()])


def sec_grow(rng):
    # bytearray / list / str growth: realloc of ever larger blocks
    ba = bytearray()
    parts = []
    for i in range(30_000 * SCALE):
        chunk = struct.pack("<IQ", i, rng.getrandbits(64)) * rng.randint(1, 20)
        ba += chunk
        parts.append(chunk)
    assert bytes(ba) == b"".join(parts)
    del ba[::3]                            # shrink in place
    s = ""
    for i in range(20_000):
        s += str(i)
    assert len(s) == sum(len(str(i)) for i in range(20_000))
    big = [bytes([i % 251]) * (1 << (10 + i % 14)) for i in range(48)]   # 1 KiB..8 MiB
    for i, b in enumerate(big):
        assert b[0] == b[-1] == i % 251 and len(b) == 1 << (10 + i % 14)
    lst = []
    for i in range(200_000 * SCALE):
        lst.append(i)
    while len(lst) > 1000:
        del lst[len(lst) // 2:]
    return h([len(ba), hashlib.sha1(ba).hexdigest(), hashlib.sha1(s.encode()).hexdigest(), lst[-5:]])


def sec_regex(rng):
    text = "\n".join(f"{rand_word(rng)}@{rand_word(rng, 2, 8)}.org {rng.randrange(10**6)} {rand_word(rng)}"
                     for _ in range(25_000 * SCALE))
    emails = re.findall(r"([\w-]+)@([\w-]+)\.org", text)
    nums = [int(m) for m in re.findall(r" (\d+) ", text)]
    assert len(emails) == text.count("@")
    swapped = re.sub(r"(\w+)@(\w+)", r"\2#\1", text)
    assert "#" not in text
    assert swapped.count("#") == len(re.findall(r"(\w+)@(\w+)", text))
    return h([len(emails), sum(nums), emails[:100], hashlib.md5(swapped.encode()).hexdigest()])


def sec_sqlite(rng):
    db = sqlite3.connect(":memory:")
    db.execute("create table t (id integer primary key, name text, v real, blob blob)")
    rows = [(i, rand_word(rng, 1, 30), rng.random(), rng.randbytes(rng.randint(0, 2000)))
            for i in range(15_000 * SCALE)]
    db.executemany("insert into t values (?,?,?,?)", rows)
    db.execute("create index t_name on t(name)")
    (cnt, total_len) = db.execute("select count(*), sum(length(blob)) from t").fetchone()
    assert cnt == len(rows) and total_len == sum(len(r[3]) for r in rows)
    top = db.execute("select name, count(*) from t group by name order by 2 desc, 1 limit 20").fetchall()
    db.execute("delete from t where id % 3 = 0")
    left = db.execute("select count(*) from t").fetchone()[0]
    assert left == len(rows) - len(range(0, len(rows), 3))
    got = db.execute("select id, name, blob from t where id % 1000 = 1 order by id").fetchall()
    assert got == [(r[0], r[1], r[3]) for r in rows if r[0] % 1000 == 1 and r[0] % 3 != 0]
    db.close()
    return h([cnt, total_len, top, left])


class Node:
    def __init__(self, v):
        self.v = v
        self.peers = []


def sec_gc(rng):
    gc.collect()
    live = []
    for round_ in range(12):
        nodes = [Node(i) for i in range(10_000)]
        for nd in nodes:
            nd.peers = [nodes[rng.randrange(len(nodes))] for _ in range(3)]
        live.append(nodes[rng.randrange(len(nodes))].v)
        del nodes, nd
        freed = gc.collect()
        assert freed >= 10_000, freed
    return h(live)


def thread_work(seed):
    rng = random.Random(seed)
    acc = []
    d = {}
    for i in range(15_000):
        key = rand_word(rng, 1, 12)
        d.setdefault(key, []).append(rng.randbytes(rng.randint(0, 300)))
        if i % 5000 == 4999:
            acc.append(hashlib.sha256(b"".join(b"".join(v) for _, v in sorted(d.items()))).hexdigest())
            if i % 10000 == 9999:
                d.clear()
    doc = make_doc(rng, 5)
    assert json.loads(json.dumps(doc)) == doc
    acc.append(h(doc))
    acc.append(h(sorted(rng.random() for _ in range(20_000))))
    return acc


def sec_threads(rng):
    seeds = [rng.getrandbits(32) for _ in range(8)]
    results = [None] * 8
    errors = []

    def run(i):
        try:
            for _ in range(SCALE):
                results[i] = thread_work(seeds[i])
        except BaseException as e:       # noqa: BLE001 - report, don't hang
            errors.append(f"thread {i}: {e!r}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    # the same work done in this thread must give the same answers
    for i in (0, 5):
        assert thread_work(seeds[i]) == results[i], f"thread {i} disagrees with a serial run"
    return h(results)


def sec_fork(rng):
    """fork() while other threads are inside malloc (zlib and hashlib drop
    the GIL and allocate), then allocate a lot in the child: a lock the
    allocator left held across fork() deadlocks the child."""
    import signal
    import time
    stop = threading.Event()
    errors = []

    def churn(seed):
        r = random.Random(seed)
        data = r.randbytes(1 << 18)
        try:
            while not stop.is_set():
                c = zlib.compress(data[:r.randint(1, len(data))], 1)
                assert zlib.decompress(c)[:16] == data[:16]
                hashlib.sha256(bytes(r.randint(1, 1 << 16))).digest()
        except BaseException as e:       # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=churn, args=(rng.getrandbits(32),)) for _ in range(2)]
    for t in threads:
        t.start()
    results = []
    try:
        for k in range(8):
            time.sleep(0.01)
            pid = os.fork()
            if pid == 0:                 # child: allocate, check, exit
                code = 1
                try:
                    cr = random.Random(k)
                    d = {i: cr.randbytes(cr.randint(0, 2000)) for i in range(3000)}
                    blob = zlib.compress(b"".join(d.values()), 1)
                    ok = zlib.decompress(blob) == b"".join(d.values())
                    t2 = threading.Thread(target=lambda: [bytes(i) for i in range(3000)])
                    t2.start()
                    t2.join()
                    code = 0 if ok else 2
                finally:
                    os._exit(code)
            deadline = time.monotonic() + 60
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    raise AssertionError(f"fork child {k} hung for 60 s (a lock held across fork?)")
                time.sleep(0.01)
            if os.WIFSIGNALED(status):
                raise AssertionError(f"fork child {k} killed by signal {os.WTERMSIG(status)}")
            assert os.WEXITSTATUS(status) == 0, f"fork child {k} exit status {os.WEXITSTATUS(status)}"
            results.append(k)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    return f"{len(results)} children ok"


def check_numaslab():
    """EXPECT_NUMASLAB=1: the interpreter's memory must come from numaslab."""
    maps = open("/proc/self/maps").read()
    assert "libnumaslab" in maps, "libnumaslab is not mapped in this python3"
    libc = ctypes.CDLL(None)
    try:
        node_of = libc.ns_node_of
    except AttributeError:
        raise AssertionError("ns_node_of is not visible (dlsym RTLD_DEFAULT)")
    node_of.argtypes = [ctypes.c_void_p]
    node_of.restype = ctypes.c_int
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    p = libc.malloc(1000)
    assert node_of(p) >= 0, f"ns_node_of(malloc(1000)) = {node_of(p)}"
    libc.free(p)
    # a large bytes object is a malloc'd block starting at id(obj)
    big = bytes(1 << 20)
    assert node_of(id(big)) >= 0, f"ns_node_of(bytes(1 MiB) object) = {node_of(id(big))}"
    if os.environ.get("PYTHONMALLOC") == "malloc":
        small = (1, 2, "x")              # pymalloc is off: even small objects
        small_ok = [node_of(id(o)) >= 0 for o in (bytes(40), 12345678901234567890)]
        assert all(small_ok), f"small objects not from numaslab: {small_ok}"
        del small
    nodes = sum(1 for n in os.listdir("/sys/devices/system/node") if re.fullmatch(r"node\d+", n)) \
        if os.path.isdir("/sys/devices/system/node") else 1
    if nodes == 1:
        assert node_of(id(big)) == 0
    print("numaslab in use: ns_node_of checks passed", file=sys.stderr)


def main():
    if os.environ.get("EXPECT_NUMASLAB") == "1":
        check_numaslab()
    rng = random.Random(20240611)
    sections = [sec_sort, sec_dict, sec_sets, sec_json, sec_hash_zlib, sec_grow,
                sec_regex, sec_sqlite, sec_gc, sec_threads, sec_fork]
    for sec in sections:
        out(sec.__name__[4:], sec(random.Random(rng.getrandbits(64))))
    out("done", len(sections))


if __name__ == "__main__":
    main()
