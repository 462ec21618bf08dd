"""Write keys to redis and check them back, over raw RESP (no redis module).

  redis_check.py port                      print a free loopback TCP port
  redis_check.py gen N SEED                RESP SET commands on stdout (redis-cli --pipe)
  redis_check.py verify PORT N SEED        read the N keys back and run more checks
Exit status 0 when everything matched; a message on stderr otherwise.
"""
import hashlib
import random
import socket
import sys


def value_of(seed, i):
    """Key i's value: 16 B .. 64 KiB, binary (contains \\r\\n, NULs...)."""
    rng = random.Random(seed * 1_000_003 + i)
    if i % 997 == 0:
        size = 65536
    elif i % 991 == 0:
        size = 16
    else:
        r = rng.random()
        if r < 0.60:
            size = rng.randint(16, 512)
        elif r < 0.90:
            size = rng.randint(513, 8192)
        elif r < 0.98:
            size = rng.randint(8193, 32768)
        else:
            size = rng.randint(32769, 65536)
    head = b"v%d:" % i
    return head + rng.randbytes(size - len(head)) if size > len(head) else head[:size]


def key_of(i):
    return b"ns:key:%06d" % i


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, int):
            a = b"%d" % a
        elif isinstance(a, str):
            a = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Fail(Exception):
    pass


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.rd = self.sock.makefile("rb", buffering=1 << 16)

    def read(self):
        line = self.rd.readline()
        if not line.endswith(b"\r\n"):
            raise Fail(f"connection closed or bad reply line {line!r}")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise Fail(f"server error: {rest.decode(errors='replace')}")
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.rd.read(n + 2)
            if len(data) != n + 2 or data[-2:] != b"\r\n":
                raise Fail("short bulk reply")
            return data[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise Fail(f"unknown reply type {line!r}")

    def pipeline(self, cmds):
        self.sock.sendall(b"".join(resp(*c) for c in cmds))
        return [self.read() for _ in cmds]

    def call(self, *args):
        return self.pipeline([args])[0]


def info(c, section):
    text = c.call("INFO", section).decode()
    return dict(l.split(":", 1) for l in text.splitlines() if ":" in l and not l.startswith("#"))


def expect(cond, msg):
    if not cond:
        raise Fail(msg)


def verify(port, n, seed):
    c = Client(port)
    expect(c.call("PING") == "PONG", "PING")
    expect(c.call("DBSIZE") == n, f"DBSIZE is {c.call('DBSIZE')}, want {n}")

    # 1. every key reads back exactly (MGET batches of 250)
    total = 0
    bad = []
    for start in range(0, n, 250):
        idx = list(range(start, min(n, start + 250)))
        got = c.call("MGET", *[key_of(i) for i in idx])
        for i, g in zip(idx, got):
            want = value_of(seed, i)
            total += len(want)
            if g != want:
                bad.append((i, None if g is None else len(g), len(want)))
    expect(not bad, f"{len(bad)} of {n} values differ, first (key, got len, want len): {bad[:5]}")
    print(f"read back {n} keys, {total} bytes: all equal")

    mem = info(c, "memory")
    expect(mem.get("mem_allocator"), "INFO memory has no mem_allocator")
    used = int(mem["used_memory"])
    expect(used >= total, f"used_memory {used} < the {total} bytes stored")
    expect(used < 4 * total + (64 << 20), f"used_memory {used} absurd for {total} bytes")
    big = c.call("MEMORY", "USAGE", key_of(0))           # a 64 KiB value
    expect(big is not None and big >= 65536, f"MEMORY USAGE of a 64 KiB value: {big}")
    print(f"mem_allocator:{mem['mem_allocator']} used_memory:{used} MEMORY USAGE(64KiB key):{big}")

    # 2. grow values in place (APPEND/SETRANGE: sdsMakeRoomFor -> realloc)
    grown = {}
    cmds = []
    for i in range(0, n, 10):
        suffix = hashlib.sha256(b"%d" % i).digest() * (1 + i % 50)
        cmds.append(("APPEND", key_of(i), suffix))
        grown[i] = value_of(seed, i) + suffix
    lens = c.pipeline(cmds)
    expect(lens == [len(grown[i]) for i in sorted(grown)], "APPEND returned wrong lengths")
    c.pipeline([("SETRANGE", key_of(i), len(grown[i]) + 100, b"tail") for i in sorted(grown)])
    for i in grown:
        grown[i] = grown[i] + b"\0" * 100 + b"tail"
    keys = sorted(grown)
    for start in range(0, len(keys), 250):
        part = keys[start:start + 250]
        got = c.call("MGET", *[key_of(i) for i in part])
        diff = [i for i, g in zip(part, got) if g != grown[i]]
        expect(not diff, f"after APPEND/SETRANGE {len(diff)} values differ, first keys {diff[:5]}")
    print(f"APPEND/SETRANGE on {len(grown)} keys: all equal")

    # 3. hashes, lists, sets, sorted sets (listpack -> hashtable/skiplist)
    rng = random.Random(seed)
    hashes = {}
    cmds = []
    for h in range(100):
        fields = {b"f%d" % f: rng.randbytes(rng.randint(1, 300)) for f in range(rng.randint(1, 400))}
        hashes[h] = fields
        flat = [x for kv in fields.items() for x in kv]
        cmds.append(("HSET", b"ns:hash:%d" % h, *flat))
    c.pipeline(cmds)
    for h, fields in hashes.items():
        got = c.call("HGETALL", b"ns:hash:%d" % h)
        expect(dict(zip(got[::2], got[1::2])) == fields, f"HGETALL ns:hash:{h} differs")
    lists = {}
    cmds = []
    for li in range(50):
        items = [rng.randbytes(rng.randint(0, 200)) for _ in range(rng.randint(1, 3000))]
        lists[li] = items
        cmds.append(("RPUSH", b"ns:list:%d" % li, *items))
    c.pipeline(cmds)
    for li, items in lists.items():
        expect(c.call("LRANGE", b"ns:list:%d" % li, 0, -1) == items, f"LRANGE ns:list:{li} differs")
        k = min(len(items), 100)
        expect(c.call("LPOP", b"ns:list:%d" % li, k) == items[:k], f"LPOP ns:list:{li} differs")
        expect(c.call("LLEN", b"ns:list:%d" % li) == len(items) - k, f"LLEN ns:list:{li}")
    sets = {}
    cmds = []
    for s in range(50):
        members = {b"m%d" % rng.randrange(100000) for _ in range(rng.randint(1, 2000))}
        sets[s] = members
        cmds.append(("SADD", b"ns:set:%d" % s, *members))
        cmds.append(("ZADD", b"ns:zset:%d" % s,
                     *[x for m in sorted(members) for x in (str(int(m[1:]) % 977), m)]))
    c.pipeline(cmds)
    for s, members in sets.items():
        expect(set(c.call("SMEMBERS", b"ns:set:%d" % s)) == members, f"SMEMBERS ns:set:{s} differs")
        want = sorted(members, key=lambda m: (int(m[1:]) % 977, m))
        expect(c.call("ZRANGE", b"ns:zset:%d" % s, 0, -1) == want, f"ZRANGE ns:zset:{s} differs")
    inter = c.call("SINTERCARD", 2, b"ns:set:0", b"ns:set:1")
    expect(inter == len(sets[0] & sets[1]), f"SINTERCARD {inter} != {len(sets[0] & sets[1])}")
    print("hashes, lists, sets, sorted sets: all equal")

    # 4. delete half the strings; the other half is still intact
    dels = c.pipeline([("DEL", key_of(i)) for i in range(0, n, 2)])
    expect(all(d == 1 for d in dels), "DEL of an existing key did not return 1")
    expect(c.call("EXISTS", *[key_of(i) for i in range(0, min(n, 2000))]) == min(n, 2000) // 2,
           "EXISTS count wrong after DEL")
    for start in range(1, n, 500):
        idx = list(range(start, min(n, start + 500), 2))
        got = c.call("MGET", *[key_of(i) for i in idx])
        want = [grown.get(i, value_of(seed, i)) for i in idx]
        expect(got == want, f"values near key {start} differ after deleting the even keys")
    print(f"DEL {len(dels)} keys: the others intact")

    # 5. everything freed: used_memory falls back (malloc_usable_size stays consistent)
    c.call("FLUSHALL", "SYNC")
    expect(c.call("DBSIZE") == 0, "DBSIZE after FLUSHALL")
    after = int(info(c, "memory")["used_memory"])
    expect(after < used // 4 and after < (32 << 20),
           f"used_memory after FLUSHALL is {after} (was {used} with the data)")
    print(f"FLUSHALL: used_memory {used} -> {after}")


def main():
    cmd = sys.argv[1]
    if cmd == "port":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
        s.close()
    elif cmd == "gen":
        n, seed = int(sys.argv[2]), int(sys.argv[3])
        w = sys.stdout.buffer
        for i in range(n):
            w.write(resp("SET", key_of(i), value_of(seed, i)))
        w.flush()
    elif cmd == "verify":
        try:
            verify(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        except (Fail, OSError) as e:
            print(f"redis check FAILED: {e}", file=sys.stderr)
            sys.exit(1)
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
