/* test_large.c - blocks above NS_SMALL_MAX: their own 2 MiB-aligned mapping,
 * huge pages on whole granules only (never on the tail), the per-node cache
 * of freed mappings (reuse, budget, decay, release), resize in place and
 * growth without copying, double frees, big alignments. */
#include "unit_util.h"

static options_t saved;

static int setup(void **state)
{
    unit_start();
    saved = options;
    return 0;
}

/* every test starts with an empty cache and the default options */
static int each(void **state)
{
    options = saved;
    ns_release();
    assert_int_equal(node0_stats().large_cached, 0);
    return 0;
}

static large_t *large_of(void *p)
{
    uintptr_t e = addrmap_lookup((uintptr_t)p);
    assert_int_equal(e & NS_MAP_TAGS, NS_MAP_LARGE);
    return (large_t *)(e & ~NS_MAP_TAGS);
}

static void test_large_mapping_properties(void **state)
{
    size_t sizes[] = {NS_SMALL_MAX + 1, NS_SMALL_MAX + 4096, 300000, 1 * MiB, 2 * MiB - 1, 2 * MiB, 2 * MiB + 1,
                      5 * MiB + 123, 33 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        ns_node_stats_t before = node0_stats();
        char *p = ns_malloc(n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p & NS_SS_MASK, 0);
        large_t *l = large_of(p);
        assert_int_equal(l->base, (uintptr_t)p);
        assert_int_equal(l->state, NS_LARGE_LIVE);
        size_t page = (size_t)sysconf(_SC_PAGESIZE);   /* 4, 16 or 64 KiB on arm64 */
        assert_int_equal(l->usable, round_up_sz(n, page));
        assert_int_equal(l->reserved, round_up_sz(n, NS_SS_SIZE));
        assert_int_equal(ns_malloc_usable_size(p), round_up_sz(n, page));
        assert_int_equal(ns_node_of(p), 0);
        /* the whole reservation is registered, nothing past it */
        for (size_t off = 0; off < l->reserved; off += NS_SS_SIZE)
            assert_int_equal(addrmap_lookup((uintptr_t)p + off), (uintptr_t)l | NS_MAP_LARGE);
        assert_true((addrmap_lookup((uintptr_t)p + l->reserved) & NS_MAP_LARGE) == 0 ||
                    (large_t *)(addrmap_lookup((uintptr_t)p + l->reserved) & ~NS_MAP_TAGS) != l);
        p[0] = 1;
        p[ns_malloc_usable_size(p) - 1] = 2;
        ns_node_stats_t after = node0_stats();
        assert_int_equal(after.large_count, before.large_count + 1);
        /* stats' large_bytes counts live mappings only (cached ones apart) */
        assert_int_equal(after.large_bytes, before.large_bytes + l->reserved);
        ns_free(p);
    }
    /* the largest small request is not a large one */
    void *s = ns_malloc(NS_SMALL_MAX);
    assert_int_equal(addrmap_lookup((uintptr_t)s) & NS_MAP_TAGS, NS_MAP_SS);
    assert_int_equal(ns_malloc_usable_size(s), NS_SMALL_MAX);
    ns_free(s);
}

static void test_cache_reuse(void **state)
{
    size_t n = 3 * MiB + 5;
    void *p = ns_malloc(n);
    assert_non_null(p);
    memset(p, 0x77, n);
    uint64_t mapped0 = mapped_bytes();
    ns_node_stats_t s0 = node0_stats();
    assert_int_equal(s0.large_cached, 0);
    ns_free(p);
    ns_node_stats_t s1 = node0_stats();
    assert_int_equal(s1.large_cached, 1);
    assert_int_equal(s1.large_cached_bytes, 4 * MiB);
    assert_int_equal(s1.large_count, s0.large_count - 1);
    assert_int_equal(mapped_bytes(), mapped0);   /* still mapped, only cached */
    void *q = ns_malloc(n);
    assert_ptr_equal(q, p);
    ns_node_stats_t s2 = node0_stats();
    assert_int_equal(s2.large_cached, 0);
    assert_int_equal(s2.large_cached_bytes, 0);
    assert_int_equal(s2.large_count, s0.large_count);
    assert_int_equal(mapped_bytes(), mapped0);
    assert_int_equal(s2.released_bytes, s0.released_bytes);
    /* a smaller request in the same reservation size reuses it too */
    ns_free(q);
    q = ns_malloc(3 * MiB);
    assert_ptr_equal(q, p);
    assert_int_equal(ns_malloc_usable_size(q), 3 * MiB);
    ns_free(q);
    /* calloc from the cache: zeroed although the pages held 0x77 */
    unsigned char *z = ns_calloc(1, n);
    assert_ptr_equal(z, p);
    for (size_t i = 0; i < n; i += 512)
        if (z[i] != 0)
            fail_msg("calloc from the large cache: byte %zu = %#x", i, z[i]);
    assert_int_equal(z[n - 1], 0);
    ns_free(z);
}

/* Page-heap behaviour of the cache: a cached mapping is split for a smaller
 * request (the rest stays cached), and freed pieces merge again. */
static void test_cache_split_merge(void **state)
{
    ns_release();
    char *p = ns_malloc(8 * MiB);
    assert_non_null(p);
    memset(p, 0x5a, 8 * MiB);
    ns_free(p);
    assert_int_equal(node0_stats().large_cached, 1);
    assert_int_equal(node0_stats().large_cached_bytes, 8 * MiB);
    char *a = ns_malloc(2 * MiB - 100);            /* the front 2 MiB */
    assert_ptr_equal(a, p);
    assert_int_equal(node0_stats().large_cached_bytes, 6 * MiB);
    assert_int_equal(addrmap_lookup((uintptr_t)p + 2 * MiB) & NS_MAP_TAGS, NS_MAP_LARGE);
    char *b = ns_malloc(5 * MiB);                  /* the rest, 6 MiB */
    assert_ptr_equal(b, p + 2 * MiB);
    assert_int_equal(node0_stats().large_cached_bytes, 0);
    assert_int_equal(ns_malloc_usable_size(b), 5 * MiB);
    assert_int_equal((unsigned char)b[5 * MiB - 1], 0x5a);   /* same pages, not remapped */
    ns_free(a);
    ns_free(b);
    assert_int_equal(node0_stats().large_cached, 1);  /* merged again */
    assert_int_equal(node0_stats().large_cached_bytes, 8 * MiB);
    char *c = ns_malloc(8 * MiB);
    assert_ptr_equal(c, p);
    assert_int_equal(ns_malloc_usable_size(c), 8 * MiB);
    ns_free(c);
    ns_release();
}

static void test_cache_budget(void **state)
{
    options.large_cache = 8 * MiB;
    enum { N = 12 };
    void *v[N];
    for (int i = 0; i < N; i++)
        assert_non_null(v[i] = ns_malloc(2 * MiB));
    uint64_t rel0 = node0_stats().released_bytes;
    for (int i = 0; i < N; i++) {
        ns_free(v[i]);
        ns_node_stats_t s = node0_stats();
        if (s.large_cached_bytes > (uint64_t)options.large_cache)
            fail_msg("after %d frees: %lu bytes cached, budget %ld", i + 1, (unsigned long)s.large_cached_bytes,
                     (long)options.large_cache);
    }
    /* neighbours merge, so count bytes, not records: the budget is full
     * and everything else went back to the OS */
    ns_node_stats_t s = node0_stats();
    assert_true(s.large_cached >= 1 && s.large_cached <= 4);
    assert_true(s.large_cached_bytes >= 2 * MiB && s.large_cached_bytes <= 8 * MiB);
    assert_int_equal(s.released_bytes, rel0 + N * 2 * MiB - s.large_cached_bytes);
    /* the newest are kept: the next request gets one of the last freed */
    void *p = ns_malloc(2 * MiB);
    bool recent = false;
    for (int i = N - 4; i < N; i++)
        recent |= p == v[i];
    assert_true(recent);
    ns_free(p);
    /* a mapping bigger than half the budget is never cached */
    p = ns_malloc(6 * MiB);
    ns_free(p);
    assert_int_equal(addrmap_lookup((uintptr_t)p), 0);
    assert_true(node0_stats().large_cached_bytes <= 8 * MiB);
    /* budget 0: nothing cached */
    ns_release();
    options.large_cache = 0;
    p = ns_malloc(NS_SMALL_MAX + 1);
    ns_free(p);
    assert_int_equal(node0_stats().large_cached, 0);
    assert_int_equal(addrmap_lookup((uintptr_t)p), 0);
}

static void test_decay(void **state)
{
    options.decay_ms = 40;
    void *p = ns_malloc(4 * MiB);
    ns_free(p);
    assert_int_equal(node0_stats().large_cached, 1);
    node_pool_release(node_pool(0), false);           /* too young */
    assert_int_equal(node0_stats().large_cached, 1);
    assert_int_equal(addrmap_lookup((uintptr_t)p) & NS_MAP_TAGS, NS_MAP_LARGE);
    sleep_ms(120);
    uint64_t rel0 = node0_stats().released_bytes;
    size_t bytes = node_pool_release(node_pool(0), false);
    assert_true(bytes >= 4 * MiB);
    assert_int_equal(node0_stats().large_cached, 0);
    assert_int_equal(node0_stats().released_bytes, rel0 + bytes);
    assert_int_equal(addrmap_lookup((uintptr_t)p), 0);
    /* the address is really unmapped */
    unsigned char vec;
    assert_int_equal(mincore(p, 4096, &vec), -1);
    assert_int_equal(errno, ENOMEM);
}

static void test_decay_on_free(void **state)
{
    /* an old entry is evicted by a later free once the age gap exceeds decay */
    options.decay_ms = 30;
    void *a = ns_malloc(2 * MiB), *b = ns_malloc(2 * MiB);
    ns_free(a);
    sleep_ms(100);
    ns_free(b);
    assert_int_equal(node0_stats().large_cached, 1);
    assert_int_equal(addrmap_lookup((uintptr_t)a), 0);
    ns_release();
}

static void test_release_unmaps_cache(void **state)
{
    ns_release();
    void *v[3];
    for (int i = 0; i < 3; i++)
        v[i] = ns_malloc((size_t)(i + 1) * MiB + 1);
    for (int i = 0; i < 3; i++)
        ns_free(v[i]);
    assert_int_equal(node0_stats().large_cached_bytes, 2 * MiB + 4 * MiB + 4 * MiB);  /* maybe merged */
    size_t bytes = ns_release();
    assert_true(bytes >= 2 * MiB + 2 * MiB + 4 * MiB);
    ns_node_stats_t s = node0_stats();
    assert_int_equal(s.large_cached, 0);
    assert_int_equal(s.large_cached_bytes, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(addrmap_lookup((uintptr_t)v[i]), 0);
    assert_int_equal(ns_malloc_trim(0), 0);   /* nothing left to release */
}

static void test_resize_in_place(void **state)
{
    size_t big = 10 * MiB;
    char *p = ns_malloc(big);
    assert_non_null(p);
    for (size_t i = 0; i < big; i += 4096)
        p[i] = (char)(i >> 12);
    assert_int_equal(resident_bytes(p, big), big);
    uint64_t mapped0 = mapped_bytes();

    /* shrink to 3 MiB: same block; units past 4 MiB go back to the OS */
    char *q = ns_realloc(p, 3 * MiB);
    assert_ptr_equal(q, p);
    assert_int_equal(ns_malloc_usable_size(p), 3 * MiB);
    size_t res = resident_bytes(p + 4 * MiB, big - 4 * MiB);
    if (res != 0)
        fail_msg("after shrinking to 3 MiB, %zu bytes past 4 MiB still resident", res);
    assert_int_equal(resident_bytes(p, 3 * MiB), 3 * MiB);   /* the kept part stays */
    for (size_t i = 0; i < 3 * MiB; i += 4096)
        assert_int_equal(p[i], (char)(i >> 12));
    assert_int_equal(mapped_bytes(), mapped0);               /* reservation kept */

    /* grow back within the reservation: in place, zero past the old end */
    q = ns_realloc(p, 9 * MiB + 5);
    assert_ptr_equal(q, p);
    assert_int_equal(ns_malloc_usable_size(p), 9 * MiB + (size_t)sysconf(_SC_PAGESIZE));
    assert_int_equal(p[5 * MiB], 0);
    memset(p + 3 * MiB, 0x11, 6 * MiB);
    /* exactly to the reservation */
    assert_ptr_equal(ns_realloc(p, big), p);
    /* beyond the reservation: grows in place or moves, contents kept */
    q = ns_realloc(p, big + 1);
    assert_non_null(q);
    for (size_t i = 0; i < 3 * MiB; i += 4096)
        assert_int_equal(q[i], (char)(i >> 12));
    assert_int_equal(q[3 * MiB + 7], 0x11);
    /* a shrink within the first 2 MiB unit keeps one unit */
    char *r = ns_realloc(q, 600 * 1024);
    assert_ptr_equal(r, q);
    assert_int_equal(resident_bytes(r + 2 * MiB, 10 * MiB - 2 * MiB), 0);
    ns_free(r);
}

static void large_double_free_child(void *arg)
{
    size_t n = (size_t)(uintptr_t)arg;
    void *p = ns_malloc(n);
    void *keep = ns_malloc(n);     /* keeps the cache from being empty */
    ns_free(p);
    ns_free(p);
    (void)keep;
    _exit(0);
}

static void test_large_double_free(void **state)
{
    /* cached after the first free (merged with cached neighbours or not):
     * "double free"; too big to cache (over half of NUMASLAB_LARGE_CACHE):
     * unmapped, so the second free is of a pointer that is not ours */
    size_t sizes[] = {NS_SMALL_MAX + 1, 3 * MiB, 40 * MiB, 200 * MiB};
    for (int i = 0; i < 4; i++) {
        char err[512];
        int st = run_in_child(large_double_free_child, (void *)(uintptr_t)sizes[i], err, sizeof err);
        if (!died_of(st, SIGABRT))
            fail_msg("double free of a %zu-byte large block: status %#x, stderr '%s'", sizes[i], st, err);
        assert_non_null(strstr(err, sizes[i] * 2 <= (size_t)options.large_cache ? "double free" : "invalid pointer"));
    }
}

static void large_interior_child(void *arg)
{
    char *p = ns_malloc(3 * MiB);
    ns_free(p + 4096);
    _exit(0);
}

static void test_large_interior_free(void **state)
{
    char err[512];
    int st = run_in_child(large_interior_child, NULL, err, sizeof err);
    assert_true(died_of(st, SIGABRT));
    assert_non_null(strstr(err, "interior"));
}

static void test_big_alignments(void **state)
{
    size_t aligns[] = {4 * MiB, 64 * MiB, 128 * KiB, 1 * MiB};
    size_t sizes[] = {1, 100, NS_SMALL_MAX + 1, 3 * MiB};
    for (int a = 0; a < 4; a++)
        for (int s = 0; s < 4; s++) {
            void *p = NULL;
            assert_int_equal(ns_posix_memalign(&p, aligns[a], sizes[s]), 0);
            if ((uintptr_t)p % aligns[a])
                fail_msg("posix_memalign(%zu, %zu) = %p", aligns[a], sizes[s], p);
            assert_true(ns_malloc_usable_size(p) >= sizes[s]);
            memset(p, 1, sizes[s]);
            void *q = ns_aligned_alloc(aligns[a], sizes[s]);
            assert_non_null(q);
            if ((uintptr_t)q % aligns[a])
                fail_msg("aligned_alloc(%zu, %zu) = %p", aligns[a], sizes[s], q);
            ns_free(p);
            ns_free(q);
        }
    /* after freeing, cached mappings do not break later big alignments */
    for (int i = 0; i < 4; i++) {
        void *p = ns_memalign(64 * MiB, 2 * MiB);
        assert_int_equal((uintptr_t)p % (64 * MiB), 0);
        ns_free(p);
    }
}

/* Is THP usable here at all (not "never")?  Tests of where huge pages go
 * skip without it: every page would be a base page, and they would pass
 * without showing anything. */
static bool thp_available(void)
{
    char buf[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            buf[0] = 0;
        fclose(f);
    }
    return buf[0] && !strstr(buf, "[never]");
}

/* A large block's record asks for huge pages on its whole granules only,
 * and a cached mapping taken for a block of another size is reshaped: no
 * huge page asked for at the new tail, the cached pages kept (no fault on
 * reuse), calloc zeroes what was written. */
static void test_huge_prefix_and_reuse(void **state)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t sizes[] = {300 * KiB, 2 * MiB, 2900 * KiB, 4 * MiB + 1, 7900 * KiB};
    for (int i = 0; i < 5; i++) {
        char *p = ns_malloc(sizes[i]);
        assert_non_null(p);
        large_t *l = large_of(p);
        assert_int_equal(l->huge, round_up_sz(sizes[i], page) & ~NS_SS_MASK);
        ns_free(p);
    }
    ns_release();
    if (!thp_available())
        skip();
    /* a 7.9 MiB block written in full: its last granule is its tail */
    size_t big = 7900 * KiB, small = 2900 * KiB;
    char *p = ns_malloc(big);
    memset(p, 0x5a, big);
    assert_true(resident_bytes(p, 8 * MiB) <= round_up_sz(big, page));
    ns_free(p);
    size_t cached = resident_bytes(p + 2 * MiB, 2 * MiB);   /* the cache keeps the pages */
    assert_int_equal(cached, 2 * MiB);
    /* the cached 8 MiB mapping split for 2.9 MiB: granule 1, a whole
     * (maybe huge) granule before, is the tail now; its pages stay (they
     * were resident in the cache, and reuse must not fault them again) */
    char *q = ns_malloc(small);
    assert_ptr_equal(q, p);
    large_t *l = large_of(q);
    assert_int_equal(l->reserved, 4 * MiB);
    assert_int_equal(l->huge, 2 * MiB);
    assert_int_equal(l->touched, 4 * MiB);
    for (size_t i = 0; i < small; i += 4096)       /* the old contents: nothing was dropped */
        if ((unsigned char)q[i] != 0x5a)
            fail_msg("reused mapping: byte %zu = %#x, not the cached page's 0x5a", i, (unsigned char)q[i]);
    memset(q, 0x33, small);
    size_t res = resident_bytes(q, 4 * MiB);
    if (res > 4 * MiB || resident_bytes(q + 2 * MiB, 2 * MiB) != cached)
        fail_msg("reused mapping written in full: %zu resident in its 4 MiB (the cache held %zu in the tail)", res,
                 cached);
    /* freed, it merges with the rest of the split again; the huge part
     * stays a prefix (the rest's huge granule now refuses huge pages) */
    ns_free(q);
    assert_int_equal(node0_stats().large_cached, 1);
    l = large_of(p);
    assert_int_equal(l->reserved, 8 * MiB);
    assert_int_equal(l->huge, 2 * MiB);
    /* calloc of all of it: whole granules ask again, every byte zero */
    unsigned char *z = ns_calloc(1, 7 * MiB);
    assert_ptr_equal(z, p);
    assert_int_equal(large_of(z)->huge, 6 * MiB);
    for (size_t i = 0; i < 7 * MiB; i += 256)
        if (z[i])
            fail_msg("calloc over a reused mapping: byte %zu = %#x", i, z[i]);
    ns_free(z);
}

/* The physical frame behind a page, from /proc/self/pagemap (0 when the
 * kernel hides frames: not root). */
static uint64_t frame_of(const void *p)
{
    uint64_t e = 0;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd >= 0) {
        if (pread(fd, &e, sizeof e, (off_t)((uintptr_t)p / (uintptr_t)sysconf(_SC_PAGESIZE) * sizeof e)) != sizeof e)
            e = 0;
        close(fd);
    }
    return e >> 63 ? e & ((1ull << 55) - 1) : 0;
}

static unsigned char pattern(size_t i) { return (unsigned char)(i * 7 + (i >> 20)); }

/* Map [a, a+size) for ourselves only if it is free (a fence or a probe). */
static bool take_range(uintptr_t a, size_t size)
{
    void *m = mmap((void *)a, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m != MAP_FAILED && m != (void *)a)
        munmap(m, size);
    return m == (void *)a;
}

/* realloc past the reservation does not copy: in place when the granules
 * after it are free, else the pages move (the same physical frames at the
 * new address); the old range leaves the address map. */
static void test_realloc_grows_without_copying(void **state)
{
    unsigned char *p = large_with_room_after(3 * MiB, 4 * MiB);
    for (size_t i = 0; i < 3 * MiB; i++)
        p[i] = pattern(i);
    uint64_t frame = frame_of(p), frame_end = frame_of(p + 3 * MiB - 1);
    large_t *l = large_of(p);

    /* in place: the next 2 MiB are free (made sure by a probe) */
    uintptr_t end = l->base + l->reserved;
    if (take_range(end, 2 * MiB)) {
        munmap((void *)end, 2 * MiB);
        assert_ptr_equal(ns_realloc(p, 5 * MiB), p);
        assert_int_equal(l->reserved, 6 * MiB);
        assert_int_equal(addrmap_lookup(end), (uintptr_t)l | NS_MAP_LARGE);
    } else {
        print_message("the granules after the block are taken: in-place growth not shown\n");
        assert_non_null(p = ns_realloc(p, 5 * MiB));
    }
    l = large_of(p);

    /* moved: the granule after the reservation is fenced off */
    uintptr_t old = l->base;
    size_t old_reserved = l->reserved;
    end = old + old_reserved;
    bool fenced = take_range(end, 2 * MiB);
    ns_node_stats_t before = node0_stats();
    unsigned char *q = ns_realloc(p, 9 * MiB);
    assert_non_null(q);
    if (fenced) {
        munmap((void *)end, 2 * MiB);
        assert_true(q != p);
    }
    assert_int_equal((uintptr_t)q & NS_SS_MASK, 0);
    assert_ptr_equal(large_of(q), l);       /* the same record, retargeted */
    assert_int_equal(l->base, (uintptr_t)q);
    assert_int_equal(l->reserved, 10 * MiB);
    if (q != p)
        for (size_t off = 0; off < old_reserved; off += NS_SS_SIZE)
            assert_int_equal(addrmap_lookup(old + off), 0);
    ns_node_stats_t after = node0_stats();
    assert_int_equal(after.large_count, before.large_count);
    assert_int_equal(after.large_bytes, before.large_bytes + 4 * MiB);
    /* the truth that nothing was copied: the same physical pages */
    if (frame) {
        assert_int_equal(frame_of(q), frame);
        assert_int_equal(frame_of(q + 3 * MiB - 1), frame_end);
    } else {
        print_message("no frame numbers in /proc/self/pagemap (not root): no-copy not shown\n");
    }

    /* on to 64 MiB a MiB at a time, every byte kept, whole granules huge */
    size_t have = 3 * MiB;
    for (size_t n = 10 * MiB; n <= 64 * MiB; n += MiB) {
        assert_non_null(q = ns_realloc(q, n));
        for (size_t i = have; i < n; i++)
            q[i] = pattern(i);
        have = n;
    }
    for (size_t i = 0; i < have; i++)
        if (q[i] != pattern(i))
            fail_msg("byte %zu lost growing to %zu bytes", i, have);
    if (frame)
        assert_int_equal(frame_of(q), frame);
    assert_int_equal(large_of(q)->huge, 64 * MiB);
    assert_int_equal(node0_stats().large_bytes, before.large_bytes - old_reserved + 64 * MiB);
    ns_free(q);
}

#define T(f) cmocka_unit_test_setup(f, each)
int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_large_mapping_properties), T(test_cache_reuse), T(test_cache_split_merge), T(test_cache_budget), T(test_decay),
        T(test_decay_on_free), T(test_release_unmaps_cache), T(test_resize_in_place), T(test_large_double_free),
        T(test_large_interior_free), T(test_big_alignments), T(test_huge_prefix_and_reuse),
        T(test_realloc_grows_without_copying),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
