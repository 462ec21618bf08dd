/* test_node_stats.c - ns_node_of, ns_malloc_onnode and the statistics API,
 * checked against truths the allocator does not compute itself:
 *   - what the test allocated and freed (N blocks of a size: the class's
 *     live blocks and the node's small_in_use move by exactly that once the
 *     thread cache is flushed with ns_release());
 *   - where the kernel put the pages (move_pages(2) in query mode): the node
 *     ns_node_of() and ns_malloc_onnode() claim is the node of the page;
 *   - the kernel's mappings (/proc/self/smaps, found by the addresses of the
 *     test's own blocks): the read-write mappings that hold them must be
 *     covered by the SuperSlab count and by mapped_bytes, and a large
 *     mapping the kernel still shows must be counted live or cached;
 *   - the online nodes in /sys and the threads the test starts.
 * Sums of the allocator's own counters (mapped_bytes = SuperSlab + large
 * bytes, superslab_bytes = superslabs x 2 MiB) are not checked: such a check
 * passes whatever the counters say.
 *
 * Every case runs on any machine: nodes are compared with the kernel's
 * answer, not with "node 0", so a machine with several nodes runs the same
 * checks and nothing is skipped (to see it there:
 * tests/numa-vm/run-in-numa-vm.sh --nodes 2 --add BIN -- BIN).
 *
 * Linked against numaslab_core (no malloc override), so plain malloc() here is
 * glibc's: a handy source of "foreign" pointers, and bookkeeping that does not
 * touch the heap under test.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "numaslab.h"
#include "integ_util.h"

typedef unsigned long long ull;

static int a_global_int = 42;
static char a_global_array[4096];

static unsigned char online[SYS_NODES_MAX]; /* the kernel's online nodes */
static int slots;                           /* highest online node id + 1 */
static smaps_t smaps_now;                   /* /proc/self/smaps, parsed */

/* move_pages answers (false under qemu-user, which does not emulate it: the
 * arm64 run of scripts/cross-arm64.sh; page placement on arm64 is checked
 * in the arm64 NUMA VM instead, tests/numa-vm) */
static bool have_move_pages = true;

static int group_setup(void **state)
{
    (void)state;
    slots = sys_node_online(online);
    if (slots < 1) {
        print_message("cannot read /sys/devices/system/node/online\n");
        return -1;
    }
    static unsigned char probe[1];
    if (page_node_of(probe) == -1000 - ENOSYS) {
        have_move_pages = false;
        print_message("move_pages(2) is not implemented here (qemu-user?): pages' nodes are not checked\n");
    }
    return 0;
}

static void get_stats(ns_stats_t *st)
{
    memset(st, 0xEE, sizeof *st); /* so fields the allocator forgets show up */
    assert_int_equal(ns_stats_get(st), 0);
}

static void read_smaps(void)
{
    if (smaps_read(&smaps_now) != 0)
        fail_msg("cannot read /proc/self/smaps: %s", strerror(errno));
}

/* Totals over the nodes (the test's own sum: it compares them with what it
 * allocated, not with the allocator's totals). */
typedef struct tot {
    uint64_t superslabs, large_count, large_bytes, large_cached, large_cached_bytes, small_in_use, remote_frees;
} tot_t;

static tot_t totals(const ns_stats_t *st)
{
    tot_t t;
    memset(&t, 0, sizeof t);
    for (int n = 0; n < st->nodes && n < 64; n++) {
        const ns_node_stats_t *x = &st->node[n];
        t.superslabs += x->superslabs;
        t.large_count += x->large_count;
        t.large_bytes += x->large_bytes;
        t.large_cached += x->large_cached;
        t.large_cached_bytes += x->large_cached_bytes;
        t.small_in_use += x->small_in_use;
        t.remote_frees += x->remote_frees;
    }
    return t;
}

/* The size class whose block size is `usable` (a small block's usable size
 * is its class's size). */
static int class_of(const ns_stats_t *st, size_t usable)
{
    for (int k = 0; k < NS_STATS_CLASSES; k++)
        if (st->classes[k].size == usable)
            return k;
    fail_msg("no size class of %zu bytes in the statistics", usable);
    return -1;
}

/* ns_node_of(p) names an online node (want >= 0: that one), and the kernel
 * has the pages of the block's first and last byte on that node. */
static void check_placed(const char *what, void *p, size_t size, int want)
{
    int n = ns_node_of(p);
    if (n < 0 || n >= slots || !online[n])
        fail_msg("%s(%zu) = %p: ns_node_of = %d, not an online node (%d slot(s))", what, size, p, n, slots);
    if (want >= 0 && n != want)
        fail_msg("%s(%zu, node %d) = %p: ns_node_of = %d", what, size, want, p, n);
    unsigned char *c = p;
    if (!have_move_pages)
        return;
    int k0 = page_node_of(c), k1 = page_node_of(c + (size ? size - 1 : 0));
    if (k0 != n || k1 != n)
        fail_msg("%s(%zu) = %p: ns_node_of says node %d, move_pages says the pages are on %d and %d", what, size, p,
                 n, k0, k1);
}

/* ------------------------------------------------------------ ns_node_of */

/* Every block of ours is on an online node, and the kernel agrees. */
static void test_node_of_ours(void **state)
{
    (void)state;
    size_t sizes[] = {1, 16, 64, 100, 1000, 4096, 30000, 100000, 1 * MiB, 4 * MiB, 33 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = ns_malloc(sizes[i]);
        assert_non_null(p);
        check_placed("ns_malloc", p, sizes[i], -1);
        void *q = ns_calloc(1, sizes[i]);
        assert_non_null(q);
        check_placed("ns_calloc", q, sizes[i], -1);
        void *r = NULL;
        assert_int_equal(ns_posix_memalign(&r, 4096, sizes[i]), 0);
        check_placed("ns_posix_memalign", r, sizes[i], -1);
        ns_free(p);
        ns_free(q);
        ns_free(r);
    }
}

static void test_node_of_foreign(void **state)
{
    (void)state;
    int local = 1;
    char stack_buf[256];
    memset(stack_buf, 0, sizeof stack_buf);
    /* make sure the allocator is initialised and has memory mapped */
    void *mine = ns_malloc(100);
    void *mine_large = ns_malloc(8 * MiB);
    assert_non_null(mine);
    assert_non_null(mine_large);

    assert_int_equal(ns_node_of(&local), -1);
    assert_int_equal(ns_node_of(stack_buf + 100), -1);
    assert_int_equal(ns_node_of(&a_global_int), -1);
    assert_int_equal(ns_node_of(a_global_array + 2048), -1);
    assert_int_equal(ns_node_of((const void *)(uintptr_t)&test_node_of_foreign), -1); /* text */
    assert_int_equal(ns_node_of(NULL), -1);

    size_t len = 8 * MiB;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    m[0] = 1;
    assert_int_equal(ns_node_of(m), -1);
    assert_int_equal(ns_node_of(m + 4096), -1);
    assert_int_equal(ns_node_of(m + 2 * MiB), -1);
    assert_int_equal(ns_node_of(m + len - 1), -1);
    munmap(m, len);

    /* glibc's own heap (this binary does not override malloc) */
    void *g = malloc(100), *gl = malloc(16 * MiB);
    assert_non_null(g);
    assert_non_null(gl);
    assert_int_equal(ns_node_of(g), -1);
    assert_int_equal(ns_node_of(gl), -1);
    free(g);
    free(gl);

    /* the lookup is total: any address, mapped or not */
    uintptr_t odd[] = {1, 4095, 4096, 0x10000, (uintptr_t)1 << 40, ((uintptr_t)1 << 47) - 1,
                       (uintptr_t)1 << 47, (uintptr_t)1 << 56, 0xffff800000000000u,
                       UINTPTR_MAX - 4095, UINTPTR_MAX};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        int n = ns_node_of((const void *)odd[i]);
        if (n != -1)
            fail_msg("ns_node_of(%#lx) = %d, expected -1", (unsigned long)odd[i], n);
    }
    ns_free(mine);
    ns_free(mine_large);
}

/* ------------------------------------------------------------ ns_malloc_onnode */

/* On every online node: the block belongs to that node and the kernel put
 * its pages there.  Node numbers past the last online one are EINVAL. */
static void test_malloc_onnode(void **state)
{
    (void)state;
    size_t sizes[] = {1, 16, 64, 4096, 100000, 4 * MiB};
    for (int node = 0; node < slots; node++) {
        if (!online[node])
            continue;
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            errno = 0;
            void *p = ns_malloc_onnode(sizes[i], node);
            if (!p)
                fail_msg("ns_malloc_onnode(%zu, %d) returned NULL (errno %d)", sizes[i], node, errno);
            assert_true(is_aligned(p, sizes[i] >= 16 ? 16 : 1));
            size_t u = ns_malloc_usable_size(p);
            assert_true(u >= sizes[i]);
            pat_fill(p, u, (uint32_t)i);
            assert_int_equal(pat_check(p, u, (uint32_t)i), PAT_OK);
            check_placed("ns_malloc_onnode", p, u, node);
            void *q = ns_realloc(p, sizes[i] * 2 + 1);
            assert_non_null(q);
            assert_int_equal(pat_check(q, u < sizes[i] * 2 + 1 ? u : sizes[i] * 2 + 1, (uint32_t)i), PAT_OK);
            ns_free(q);
        }
    }
    void *z = ns_malloc_onnode(0, 0);
    if (z)
        ns_free(z);

    int bad_nodes[] = {9999, 63, 64, 1024, -1, -2, INT_MAX, INT_MIN, slots, slots + 1};
    for (size_t i = 0; i < sizeof bad_nodes / sizeof bad_nodes[0]; i++) {
        if (bad_nodes[i] >= 0 && bad_nodes[i] < slots)
            continue;       /* a real node on this machine */
        errno = 0;
        void *p = ns_malloc_onnode(64, bad_nodes[i]);
        int e = errno;
        if (p)
            fail_msg("ns_malloc_onnode(64, %d) = %p with %d node slot(s), expected NULL", bad_nodes[i], p, slots);
        if (e != EINVAL)
            fail_msg("ns_malloc_onnode(64, %d): errno %d, expected EINVAL", bad_nodes[i], e);
        errno = 0;
        p = ns_malloc_onnode(8 * MiB, bad_nodes[i]);
        e = errno;
        assert_null(p);
        assert_int_equal(e, EINVAL);
    }
}

/* ------------------------------------------------------------ stats */

static void test_stats_get_null(void **state)
{
    (void)state;
    assert_int_equal(ns_stats_get(NULL), EINVAL);
}

/* nodes: the node slots /sys reports; threads: at least this one and at
 * most the threads in /proc/self/task, one more while a thread the test
 * started has a cache, back once it has exited. */
static pthread_barrier_t bar;

static void *cached_thread(void *arg)
{
    (void)arg;
    void *p = ns_malloc(64);      /* this thread now has a cache */
    pthread_barrier_wait(&bar);   /* main reads the statistics */
    pthread_barrier_wait(&bar);
    ns_free(p);
    return p ? NULL : (void *)1;
}

static void test_stats_nodes_and_threads(void **state)
{
    (void)state;
    void *warm = ns_malloc(64); /* this thread has a cache */
    assert_non_null(warm);
    ns_stats_t a, b, c;
    get_stats(&a);
    int want = slots > 64 ? 64 : slots;
    if (a.nodes != want)
        fail_msg("stats: %d node(s); /sys/devices/system/node/online gives %d node slot(s)", a.nodes, want);
    /* every thread with a cache is a thread of the process */
    int tasks = 0;
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        tasks += e->d_name[0] != '.';
    closedir(d);
    if (a.threads < 1 || a.threads > (uint64_t)tasks)
        fail_msg("threads with a cache: %llu; the process has %d thread(s), this one with a cache", (ull)a.threads,
                 tasks);
    assert_int_equal(pthread_barrier_init(&bar, NULL, 2), 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cached_thread, NULL), 0);
    pthread_barrier_wait(&bar);
    get_stats(&b);
    pthread_barrier_wait(&bar);
    void *ret = (void *)-1;
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_null(ret);
    get_stats(&c);
    pthread_barrier_destroy(&bar);
    if (b.threads != a.threads + 1)
        fail_msg("threads with a cache: %llu, then %llu while one more thread had allocated (want +1)",
                 (ull)a.threads, (ull)b.threads);
    if (c.threads != a.threads)
        fail_msg("threads with a cache: %llu before, %llu after the thread exited", (ull)a.threads,
                 (ull)c.threads);
    ns_free(warm);
}

static void **map_array(size_t n)
{
    void **v = mmap(NULL, n * sizeof *v, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(v != MAP_FAILED);
    return v;
}

/* N blocks of one size: with the thread cache flushed (ns_release) before
 * both readings, the class's live blocks grow by exactly N, each node's
 * small_in_use by exactly the class size times the blocks the kernel has on
 * that node, and after freeing them everything is back. */
static void test_stats_small_blocks_counted(void **state)
{
    (void)state;
    enum { N = 5000 };
    const size_t size = 200;
    void **v = map_array(N);
    static int status[N];
    static uint64_t on_node[64];
    memset(on_node, 0, sizeof on_node);
    ns_release();
    ns_stats_t a, b, c;
    get_stats(&a);
    for (int i = 0; i < N; i++) {
        v[i] = ns_malloc(size);
        assert_non_null(v[i]);
        memset(v[i], i & 0xff, size);
    }
    size_t u = ns_malloc_usable_size(v[0]);
    ns_release();
    get_stats(&b);
    int k = class_of(&b, u);
    /* the kernel's node of each block's page, and the allocator's */
    if (!have_move_pages)
        for (int i = 0; i < N; i++)
            status[i] = ns_node_of(v[i]);     /* only the counters are checked */
    else if (pages_node(v, N, status) != 0)
        fail_msg("move_pages (query) failed: %s", strerror(errno));
    int wrong = 0;
    for (int i = 0; i < N; i++) {
        int n = ns_node_of(v[i]);
        assert_true(n >= 0 && n < 64);
        if (status[i] != n && wrong++ < 3)
            print_message("block %p: ns_node_of %d, page on node %d\n", v[i], n, status[i]);
        on_node[n]++;
    }
    if (wrong)
        fail_msg("%d of %d blocks: ns_node_of differs from the node move_pages reports", wrong, N);
    const ns_class_stats_t *ca = &a.classes[k], *cb = &b.classes[k];
    if (cb->live_blocks - ca->live_blocks != N)
        fail_msg("class %d (%u bytes): live_blocks %llu -> %llu after %d allocations (cache flushed), want +%d", k,
                 cb->size, (ull)ca->live_blocks, (ull)cb->live_blocks, N, N);
    if (cb->requests - ca->requests < N)
        fail_msg("class %d: requests %llu -> %llu after %d allocations", k, (ull)ca->requests, (ull)cb->requests, N);
    if (b.in_use_bytes - a.in_use_bytes != (uint64_t)N * u)
        fail_msg("in_use_bytes grew by %lld after %d blocks of %zu usable bytes, want %llu",
                 (long long)(b.in_use_bytes - a.in_use_bytes), N, u, (ull)N * u);
    for (int n = 0; n < b.nodes && n < 64; n++)
        if (b.node[n].small_in_use - a.node[n].small_in_use != on_node[n] * u)
            fail_msg("node %d: small_in_use grew by %lld; the kernel has %llu of our %zu-byte blocks there", n,
                     (long long)(b.node[n].small_in_use - a.node[n].small_in_use), (ull)on_node[n], u);
    for (int i = 0; i < N; i++)
        ns_free(v[i]);
    ns_release();
    get_stats(&c);
    if (c.classes[k].live_blocks != ca->live_blocks)
        fail_msg("class %d: live_blocks %llu -> %llu -> %llu: not back after freeing", k, (ull)ca->live_blocks,
                 (ull)cb->live_blocks, (ull)c.classes[k].live_blocks);
    for (int n = 0; n < c.nodes && n < 64; n++)
        if (c.node[n].small_in_use != a.node[n].small_in_use)
            fail_msg("node %d: small_in_use %llu -> %llu -> %llu: not back after freeing", n,
                     (ull)a.node[n].small_in_use, (ull)b.node[n].small_in_use, (ull)c.node[n].small_in_use);
    if (c.in_use_bytes != a.in_use_bytes)
        fail_msg("in_use_bytes %llu -> %llu -> %llu: not back after freeing", (ull)a.in_use_bytes,
                 (ull)b.in_use_bytes, (ull)c.in_use_bytes);
    munmap(v, N * sizeof *v);
}

static int cmp_uptr(const void *x, const void *y)
{
    uintptr_t a = *(const uintptr_t *)x, b = *(const uintptr_t *)y;
    return a < b ? -1 : a > b;
}

/* SuperSlabs (2 MiB, 2 MiB aligned) that hold the blocks: counted from the
 * blocks' addresses. */
static size_t regions_2m(void *const *v, size_t n)
{
    uintptr_t *r = (uintptr_t *)map_array(n);
    for (size_t i = 0; i < n; i++)
        r[i] = (uintptr_t)v[i] & ~(uintptr_t)(2 * MiB - 1);
    qsort(r, n, sizeof *r, cmp_uptr);
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += i == 0 || r[i] != r[i - 1];
    munmap(r, n * sizeof *r);
    return d;
}

/* The statistics against the kernel's mappings (/proc/self/smaps).  The
 * read-write mappings that hold the test's small blocks (found by the
 * blocks' addresses) are SuperSlabs only while no large mapping is live
 * (SuperSlabs live in reserved ranges, and their VMAs carry MADV_HUGEPAGE
 * or MADV_NOHUGEPAGE, so they do not merge with the test's or glibc's plain
 * mappings): superslabs x 2 MiB must cover their size and the 2 MiB regions
 * the blocks occupy, and must fit in the advised anonymous mappings the
 * process has.  mapped_bytes covers every read-write mapping holding a
 * block of ours (small or large) and their Rss; a large block's reserve
 * fits in its mapping; after freeing and ns_release() what the kernel still
 * maps at our former addresses is SuperSlabs still counted. */
static void test_stats_vs_smaps(void **state)
{
    (void)state;
    enum { N = 20000 };
    const size_t size = 200, lsize = 5 * MiB;
    void **v = map_array(N + 1);
    ns_release();
    ns_stats_t a, b, c, d;
    get_stats(&a);
    tot_t ta = totals(&a);
    if (ta.large_count || ta.large_cached)
        fail_msg("%llu live and %llu cached large mapping(s) at the start (earlier cases free theirs, ns_release "
                 "drops the cache): they could share a VMA with the SuperSlabs",
                 (ull)ta.large_count, (ull)ta.large_cached);
    for (int i = 0; i < N; i++) {
        v[i] = ns_malloc(size);
        assert_non_null(v[i]);
        memset(v[i], 0x5a, size);
    }
    get_stats(&b);
    read_smaps();
    tot_t tb = totals(&b);
    smaps_sum_t s;
    smaps_sum_of(&smaps_now, v, N, &s);
    size_t regions = regions_2m(v, N);
    print_message("      %d blocks of %zu bytes in %zu SuperSlab(s); smaps: %llu read-write VMA(s) hold them, "
                  "%llu bytes, Rss %llu; stats: superslabs %llu, mapped_bytes %llu\n",
                  N, size, regions, (ull)s.vmas, (ull)s.bytes, (ull)s.rss, (ull)tb.superslabs,
                  (ull)b.mapped_bytes);
    if (s.unmapped)
        fail_msg("%llu of our blocks lie in no read-write mapping of /proc/self/smaps", (ull)s.unmapped);
    if (tb.superslabs < regions)
        fail_msg("superslabs %llu < the %zu 2 MiB regions holding our blocks", (ull)tb.superslabs, regions);
    if (tb.superslabs * 2 * MiB < s.bytes)
        fail_msg("superslabs %llu x 2 MiB < %llu bytes of read-write mappings holding our blocks (smaps)",
                 (ull)tb.superslabs, (ull)s.bytes);
    if (b.mapped_bytes < s.bytes || b.mapped_bytes < s.rss + s.hugetlb)
        fail_msg("mapped_bytes %llu < the mappings holding our blocks: %llu bytes, Rss %llu (smaps)",
                 (ull)b.mapped_bytes, (ull)s.bytes, (ull)(s.rss + s.hugetlb));
    /* Upper bounds.  numaslab gives every SuperSlab of a process the same
     * advice, MADV_HUGEPAGE (VmFlags hg) or MADV_NOHUGEPAGE (nh; the mode
     * "none", its metadata has it too); glibc and this test give none.  So,
     * with no large mapping live, the SuperSlabs are among the anonymous
     * read-write mappings with the advice the mappings of our blocks show
     * (among all of them if that is none: a kernel without THP). */
    int adv = s.advice > 0 ? s.advice : -1;
    const char *advn = adv == 1 ? "MADV_HUGEPAGE" : adv == 2 ? "MADV_NOHUGEPAGE" : "all";
    uint64_t bound = smaps_anon_rw_bytes(&smaps_now, adv);
    print_message("      upper bound: %llu bytes of %s anonymous read-write mappings\n", (ull)bound, advn);
    if (tb.superslabs * 2 * MiB > bound)
        fail_msg("superslabs %llu x 2 MiB > the %llu bytes of %s anonymous read-write mappings (smaps)",
                 (ull)tb.superslabs, (ull)bound, advn);
    if (b.mapped_bytes > bound)
        fail_msg("mapped_bytes %llu > the %llu bytes of %s anonymous read-write mappings (smaps)", (ull)b.mapped_bytes,
                 (ull)bound, advn);

    /* a large block: its own mapping, every page written */
    unsigned char *l = ns_malloc(lsize);
    assert_non_null(l);
    memset(l, 0xa5, lsize);
    v[N] = l;
    get_stats(&c);
    read_smaps();
    tot_t tc = totals(&c);
    smaps_vma_t span;       /* the block's huge-page granules and its tail: two VMAs */
    const smaps_vma_t *lv = &span;
    smaps_span(&smaps_now, (uintptr_t)l, lsize, &span);
    if (!lv->rw || lv->hi < (uintptr_t)l + lsize)
        fail_msg("smaps: no read-write mapping holds the large block %p..+%zu", (void *)l, lsize);
    smaps_sum_of(&smaps_now, v, N + 1, &s);
    uint64_t anon_rw = smaps_anon_rw_bytes(&smaps_now, -1);
    if (tc.large_count != tb.large_count + 1)
        fail_msg("large_count %llu -> %llu after one large block", (ull)tb.large_count, (ull)tc.large_count);
    uint64_t dl = tc.large_bytes - tb.large_bytes;
    if (dl < lsize || dl > lv->hi - lv->lo)
        fail_msg("large_bytes grew by %llu for a %zu-byte block whose mapping is %llu bytes (smaps)", (ull)dl, lsize,
                 (ull)(lv->hi - lv->lo));
    if (lv->rss + lv->hugetlb < lsize)
        fail_msg("smaps: the large block's mapping has Rss %llu after writing %zu bytes", (ull)lv->rss, lsize);
    if (c.mapped_bytes < s.bytes || c.mapped_bytes < s.rss + s.hugetlb)
        fail_msg("mapped_bytes %llu < the mappings holding our small and large blocks: %llu bytes, Rss %llu",
                 (ull)c.mapped_bytes, (ull)s.bytes, (ull)(s.rss + s.hugetlb));
    if (c.mapped_bytes > anon_rw)
        fail_msg("mapped_bytes %llu > all anonymous read-write mappings of the process %llu (smaps)",
                 (ull)c.mapped_bytes, (ull)anon_rw);

    /* everything freed and released: what the kernel still shows mapped at
     * our former addresses is SuperSlabs the statistics still count */
    for (int i = 0; i <= N; i++)
        ns_free(v[i]);
    ns_release();
    get_stats(&d);
    read_smaps();
    tot_t td = totals(&d);
    lv = smaps_find(&smaps_now, (uintptr_t)l);
    if (lv && lv->rw)
        fail_msg("after ns_release the large block's mapping %#lx-%#lx is still mapped", (unsigned long)lv->lo,
                 (unsigned long)lv->hi);
    if (td.large_count != ta.large_count || td.large_cached != 0)
        fail_msg("after freeing and ns_release: large_count %llu, large_cached %llu", (ull)td.large_count,
                 (ull)td.large_cached);
    smaps_sum_of(&smaps_now, v, N, &s);
    if (td.superslabs * 2 * MiB < s.bytes)
        fail_msg("after ns_release: %llu bytes are still mapped read-write at our former blocks (smaps), more than "
                 "superslabs %llu x 2 MiB",
                 (ull)s.bytes, (ull)td.superslabs);
    if (d.mapped_bytes > a.mapped_bytes)
        fail_msg("after freeing everything and ns_release: mapped_bytes %llu, %llu at the start",
                 (ull)d.mapped_bytes, (ull)a.mapped_bytes);
    munmap(v, (N + 1) * sizeof *v);
}

/* numaslab.h: large_count/large_bytes describe LIVE large mappings, the
 * freed ones kept for reuse are large_cached/large_cached_bytes.  The truth
 * for "kept" is the kernel: after the free, a mapping smaps still shows at
 * the block's address must be counted as cached (and in mapped_bytes); once
 * ns_release() has unmapped it, neither counts it. */
static void test_stats_large_live_vs_cached(void **state)
{
    (void)state;
    ns_release();
    ns_stats_t a, b, c, d;
    get_stats(&a);
    const size_t size = 8 * MiB;
    unsigned char *p = ns_malloc(size);
    assert_non_null(p);
    memset(p, 1, size);
    int node = ns_node_of(p);
    assert_true(node >= 0 && node < 64 && node < a.nodes);
    get_stats(&b);
    read_smaps();
    const smaps_vma_t *vb = smaps_find(&smaps_now, (uintptr_t)p);
    if (!vb || !vb->rw || vb->hi < (uintptr_t)p + size)
        fail_msg("smaps: no read-write mapping holds the %zu-byte block %p", size, (void *)p);
    const ns_node_stats_t *na = &a.node[node], *nb = &b.node[node], *nc = &c.node[node];
    assert_int_equal(nb->large_count, na->large_count + 1);
    if (nb->large_bytes < na->large_bytes + size || nb->large_bytes - na->large_bytes > vb->hi - vb->lo)
        fail_msg("node %d: large_bytes grew by %llu for a %zu-byte block in a %llu-byte mapping (smaps)", node,
                 (ull)(nb->large_bytes - na->large_bytes), size, (ull)(vb->hi - vb->lo));
    if (b.mapped_bytes < a.mapped_bytes + size)
        fail_msg("mapped_bytes grew by %lld for a %zu-byte mapping", (long long)(b.mapped_bytes - a.mapped_bytes),
                 size);
    ns_free(p);
    get_stats(&c);
    read_smaps();
    /* freed: no longer live, whether or not it is cached */
    assert_int_equal(nc->large_count, na->large_count);
    if (nc->large_bytes != na->large_bytes)
        fail_msg("after freeing the only new large block, node[%d].large_bytes is %llu (was %llu before it was "
                 "allocated; large_cached_bytes %llu): freed/cached mappings counted as live",
                 node, (ull)nc->large_bytes, (ull)na->large_bytes, (ull)nc->large_cached_bytes);
    const smaps_vma_t *vc = smaps_find(&smaps_now, (uintptr_t)p);
    if (vc && vc->rw) {
        print_message("      the freed %zu-byte mapping is still mapped (cached): large_cached %llu -> %llu\n", size,
                      (ull)na->large_cached, (ull)nc->large_cached);
        if (nc->large_cached < na->large_cached + 1 || nc->large_cached_bytes < na->large_cached_bytes + size)
            fail_msg("the kernel still maps the freed block's %zu bytes, yet node[%d] counts large_cached %llu "
                     "(%llu bytes), %llu (%llu) before",
                     size, node, (ull)nc->large_cached, (ull)nc->large_cached_bytes, (ull)na->large_cached,
                     (ull)na->large_cached_bytes);
        if (c.mapped_bytes < a.mapped_bytes + size)
            fail_msg("the kernel still maps the freed block, yet mapped_bytes %llu -> %llu", (ull)a.mapped_bytes,
                     (ull)c.mapped_bytes);
    } else {
        print_message("      the freed %zu-byte mapping was unmapped at once\n", size);
        if (c.mapped_bytes > a.mapped_bytes)
            fail_msg("the freed block's mapping is gone (smaps), yet mapped_bytes %llu -> %llu", (ull)a.mapped_bytes,
                     (ull)c.mapped_bytes);
    }
    ns_release();
    get_stats(&d);
    read_smaps();
    const smaps_vma_t *vd = smaps_find(&smaps_now, (uintptr_t)p);
    if (vd && vd->rw)
        fail_msg("after ns_release the freed block's mapping %#lx-%#lx is still mapped", (unsigned long)vd->lo,
                 (unsigned long)vd->hi);
    assert_int_equal(d.node[node].large_cached, 0);
    assert_int_equal(d.node[node].large_cached_bytes, 0);
    if (d.mapped_bytes > a.mapped_bytes)
        fail_msg("after ns_release: mapped_bytes %llu, %llu before the block", (ull)d.mapped_bytes,
                 (ull)a.mapped_bytes);
}

static void test_stats_in_use_large(void **state)
{
    (void)state;
    enum { N = 16 };
    const size_t size = 4 * MiB + 4096;
    void *v[N];
    ns_release();
    ns_stats_t a, b, c;
    get_stats(&a);
    for (int i = 0; i < N; i++) {
        v[i] = ns_malloc(size);
        assert_non_null(v[i]);
        memset(v[i], i, 4096);
    }
    get_stats(&b);
    tot_t ta = totals(&a), tb = totals(&b);
    uint64_t want = (uint64_t)N * size;
    uint64_t d = b.in_use_bytes - a.in_use_bytes;
    if (b.in_use_bytes < a.in_use_bytes + want)
        fail_msg("in_use_bytes rose by %lld after %d x %zu bytes, expected >= %llu",
                 (long long)(b.in_use_bytes - a.in_use_bytes), N, size, (ull)want);
    /* each large block may be rounded up to 2 MiB */
    if (d > want + (uint64_t)N * 2 * MiB)
        fail_msg("in_use_bytes rose by %llu after %d x %zu bytes, more than %llu", (ull)d, N, size,
                 (ull)(want + N * 2 * MiB));
    if (b.mapped_bytes < a.mapped_bytes + want)
        fail_msg("mapped_bytes rose by only %lld for %llu bytes of new large blocks",
                 (long long)(b.mapped_bytes - a.mapped_bytes), (ull)want);
    if (tb.large_count != ta.large_count + N)
        fail_msg("large_count (all nodes) %llu -> %llu after %d large allocations", (ull)ta.large_count,
                 (ull)tb.large_count, N);
    assert_true(tb.large_bytes >= ta.large_bytes + want);
    for (int i = 0; i < N; i++)
        ns_free(v[i]);
    get_stats(&c);
    if (c.in_use_bytes > a.in_use_bytes + 1 * MiB || c.in_use_bytes + 1 * MiB < a.in_use_bytes)
        fail_msg("in_use_bytes did not fall back after freeing: %llu -> %llu -> %llu", (ull)a.in_use_bytes,
                 (ull)b.in_use_bytes, (ull)c.in_use_bytes);
    assert_int_equal(totals(&c).large_count, ta.large_count);
}

static void test_stats_in_use_small(void **state)
{
    (void)state;
    enum { N = 100000 };
    const size_t size = 64;
    void **v = mmap(NULL, N * sizeof *v, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    -1, 0);
    assert_true(v != MAP_FAILED);
    ns_release();
    ns_stats_t a, b, c;
    get_stats(&a);
    for (int i = 0; i < N; i++) {
        v[i] = ns_malloc(size);
        assert_non_null(v[i]);
    }
    get_stats(&b);
    uint64_t want = (uint64_t)N * size;
    /* slack: blocks sitting in the thread cache count as handed out */
    const uint64_t slack = 2 * MiB;
    if (b.in_use_bytes < a.in_use_bytes + want)
        fail_msg("in_use_bytes rose by %lld after %d x %zu bytes, expected >= %llu",
                 (long long)(b.in_use_bytes - a.in_use_bytes), N, size,
                 (unsigned long long)want);
    if (b.in_use_bytes > a.in_use_bytes + want + slack)
        fail_msg("in_use_bytes rose by %llu after %d x %zu bytes, expected <= %llu",
                 (unsigned long long)(b.in_use_bytes - a.in_use_bytes), N, size,
                 (unsigned long long)(want + slack));
    for (int i = 0; i < N; i++)
        ns_free(v[i]);
    get_stats(&c);
    if (c.in_use_bytes > a.in_use_bytes + slack)
        fail_msg("in_use_bytes did not fall back after freeing %d small blocks: %llu -> %llu -> "
                 "%llu",
                 N, (unsigned long long)a.in_use_bytes, (unsigned long long)b.in_use_bytes,
                 (unsigned long long)c.in_use_bytes);
    munmap(v, N * sizeof *v);
}

/* ------------------------------------------------------------ frees by other threads */

/* CPUs of node `node` this process may run on; false if none. */
static bool node_cpus(int node, cpu_set_t *set)
{
    char path[96], buf[4096];
    snprintf(path, sizeof path, "/sys/devices/system/node/node%d/cpulist", node);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
        return false;
    CPU_ZERO(set);
    bool any = false;
    for (char *s = buf; *s && *s != '\n';) {
        char *end;
        long lo = strtol(s, &end, 10), hi = lo;
        if (end == s)
            break;
        s = end;
        if (*s == '-')
            hi = strtol(s + 1, &s, 10);
        for (long c = lo; c <= hi && c < CPU_SETSIZE; c++)
            if (CPU_ISSET((int)c, &allowed)) {
                CPU_SET((int)c, set);
                any = true;
            }
        if (*s == ',')
            s++;
    }
    return any;
}

enum { XN = 3000 };
struct xfree {
    cpu_set_t cpus;
    void **v;
    size_t size;
    int free_them; /* 0: allocate XN blocks; 1: free them */
    int cpu;       /* where the thread ran (sched_getcpu) */
};

static void *xfree_thread(void *arg)
{
    struct xfree *x = arg;
    if (pthread_setaffinity_np(pthread_self(), sizeof x->cpus, &x->cpus) != 0)
        return (void *)1;
    x->cpu = sched_getcpu();
    for (int i = 0; i < XN; i++) {
        if (x->free_them) {
            ns_free(x->v[i]);
        } else if (!(x->v[i] = ns_malloc(x->size))) {
            return (void *)2;
        }
    }
    return NULL;
}

static void run_xfree(struct xfree *x, int free_them)
{
    x->free_them = free_them;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, xfree_thread, x), 0);
    void *ret = (void *)-1;
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_null(ret);
    assert_true(CPU_ISSET(x->cpu, &x->cpus));
}

/* A block freed by another thread of its own node is not a remote free
 * (numaslab.h: remote_frees counts frees by threads of OTHER nodes), and
 * once that thread has exited every block it freed is back: small_in_use
 * and the class's live blocks fall by exactly what it freed.  Both threads
 * are pinned to the node's CPUs; done for every node with a CPU we may use.
 * (Frees across nodes: tests/numa-vm, on a machine with several nodes.) */
static void test_stats_same_node_free_not_remote(void **state)
{
    (void)state;
    int done = 0;
    for (int node = 0; node < slots && node < 64; node++) {
        struct xfree x;
        if (!online[node] || !node_cpus(node, &x.cpus))
            continue;
        x.v = map_array(XN);
        x.size = 96;
        run_xfree(&x, 0);            /* allocated on `node`, thread gone */
        int wrong = 0;
        for (int i = 0; i < XN; i++)
            wrong += ns_node_of(x.v[i]) != node || (have_move_pages && page_node_of(x.v[i]) != node);
        if (wrong)
            fail_msg("%d of %d blocks of a thread pinned to node %d are not on it (ns_node_of / move_pages)", wrong,
                     XN, node);
        size_t u = ns_malloc_usable_size(x.v[0]);
        ns_stats_t a, b;
        get_stats(&a);
        int k = class_of(&a, u);
        run_xfree(&x, 1);            /* freed by another thread of `node` */
        get_stats(&b);
        for (int n = 0; n < a.nodes && n < 64; n++)
            if (b.node[n].remote_frees != a.node[n].remote_frees)
                fail_msg("node %d: remote_frees %llu -> %llu, though the blocks were freed by a thread of their own "
                         "node %d",
                         n, (ull)a.node[n].remote_frees, (ull)b.node[n].remote_frees, node);
        if (a.node[node].small_in_use - b.node[node].small_in_use != (uint64_t)XN * u)
            fail_msg("node %d: small_in_use fell by %lld after another thread freed %d blocks of %zu bytes and exited",
                     node, (long long)(a.node[node].small_in_use - b.node[node].small_in_use), XN, u);
        if (a.classes[k].live_blocks - b.classes[k].live_blocks != XN)
            fail_msg("class %d: live_blocks %llu -> %llu after another thread freed %d blocks and exited", k,
                     (ull)a.classes[k].live_blocks, (ull)b.classes[k].live_blocks, XN);
        munmap(x.v, XN * sizeof *x.v);
        done++;
    }
    if (!done)
        fail_msg("no online node has a CPU this process may run on");
}

struct churn_arg {
    int n;
    size_t size;
};

static void *churn_thread(void *arg)
{
    struct churn_arg *ca = arg;
    void **v = mmap(NULL, (size_t)ca->n * sizeof *v, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (v == MAP_FAILED)
        return (void *)1;
    for (int i = 0; i < ca->n; i++) {
        v[i] = ns_malloc(ca->size);
        if (!v[i])
            return (void *)2;
    }
    for (int i = 0; i < ca->n; i++)
        ns_free(v[i]);
    munmap(v, (size_t)ca->n * sizeof *v);
    return NULL;
}

/* Invariant 4: thread exit flushes the thread's cache, so a thread that frees
 * everything it allocated leaves small_in_use where it was. */
static void test_stats_thread_exit_flushes(void **state)
{
    (void)state;
    void *warm = ns_malloc(64); /* this thread has a cache */
    assert_non_null(warm);
    ns_stats_t a, b;
    get_stats(&a);
    for (int round = 0; round < 3; round++) {
        struct churn_arg ca = {20000, (size_t)(48 + round * 16)};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, churn_thread, &ca), 0);
        void *ret = (void *)-1;
        assert_int_equal(pthread_join(t, &ret), 0);
        assert_null(ret);
    }
    get_stats(&b);
    if (b.threads != a.threads)
        fail_msg("threads with a cache: %llu before, %llu after 3 threads exited",
                 (unsigned long long)a.threads, (unsigned long long)b.threads);
    if (b.in_use_bytes != a.in_use_bytes)
        fail_msg("in_use_bytes %llu -> %llu: exited threads kept blocks in their caches",
                 (unsigned long long)a.in_use_bytes, (unsigned long long)b.in_use_bytes);
    ns_free(warm);
}

/* ns_stats_print prints the statistics: the node count /sys reports and,
 * for the class of the blocks the test holds, at least that many live
 * blocks and requests, and at least their bytes in use. */
static void test_stats_print(void **state)
{
    (void)state;
    enum { K = 3000 };
    void **v = map_array(K);
    for (int i = 0; i < K; i++) {
        v[i] = ns_malloc(1000);
        assert_non_null(v[i]);
    }
    size_t u = ns_malloc_usable_size(v[0]);
    ns_release();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);   /* glibc's heap: this binary does not override malloc */
    assert_non_null(f);
    ns_stats_print(f);
    assert_int_equal(fclose(f), 0);
    assert_non_null(text);
    assert_int_equal(strlen(text), len); /* text, no NUL bytes */
    int nodes = -1;
    unsigned long long threads = 0;
    double mapped = -1, in_use = -1;
    if (sscanf(text, "numaslab: %d node(s), %llu thread cache(s), mapped %lf MiB, in use %lf MiB", &nodes, &threads,
               &mapped, &in_use) != 4)
        fail_msg("no summary line: %.200s", text);
    if (nodes != (slots > 64 ? 64 : slots))
        fail_msg("ns_stats_print: %d node(s), /sys has %d node slot(s)", nodes, slots);
    if (in_use + 0.05 < (double)K * (double)u / (double)MiB)
        fail_msg("ns_stats_print: in use %.1f MiB, the test holds %d x %zu bytes", in_use, K, u);
    if (mapped < in_use)
        fail_msg("ns_stats_print: mapped %.1f MiB < in use %.1f MiB", mapped, in_use);
    for (int n = 0; n < nodes; n++) {
        char want[48];
        snprintf(want, sizeof want, "\nnumaslab: node %d: superslabs ", n);
        if (!strstr(text, want))
            fail_msg("ns_stats_print: no line for node %d", n);
    }
    bool found = false;
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        int cls;
        unsigned size;
        unsigned long long req, live, slabs;
        char rate[32];
        if (sscanf(line, "numaslab: %d %u %llu %31s %llu %llu", &cls, &size, &req, rate, &live, &slabs) == 6 &&
            size == u) {
            found = true;
            if (req < K || live < K)
                fail_msg("ns_stats_print, class %d (%u bytes): %llu requests, %llu live; the test holds %d", cls,
                         size, req, live, K);
        }
    }
    if (!found)
        fail_msg("ns_stats_print: no line for the class of %zu bytes: %.300s", u, text);
    free(text);
    for (int i = 0; i < K; i++)
        ns_free(v[i]);
    munmap(v, K * sizeof *v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_of_ours),
        cmocka_unit_test(test_node_of_foreign),
        cmocka_unit_test(test_malloc_onnode),
        cmocka_unit_test(test_stats_get_null),
        cmocka_unit_test(test_stats_nodes_and_threads),
        cmocka_unit_test(test_stats_small_blocks_counted),
        cmocka_unit_test(test_stats_vs_smaps),
        cmocka_unit_test(test_stats_large_live_vs_cached),
        cmocka_unit_test(test_stats_in_use_large),
        cmocka_unit_test(test_stats_in_use_small),
        cmocka_unit_test(test_stats_same_node_free_not_remote),
        cmocka_unit_test(test_stats_thread_exit_flushes),
        cmocka_unit_test(test_stats_print),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
