/* test_node_stats.c - ns_node_of, ns_malloc_onnode and the statistics API.
 *
 * Linked against numaslab_core (no malloc override), so plain malloc() here is
 * glibc's: a handy source of "foreign" pointers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
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

static int a_global_int = 42;
static char a_global_array[4096];

/* The node every block must be on: 0 on a single-node machine.  Returns -1
 * (after skip()) when the machine has several nodes or the count is unknown. */
static int single_node_or_skip(void)
{
    int n = sys_node_count();
    if (n != 1) {
        print_message("SKIP: this check needs a single-NUMA-node machine; "
                      "/sys/devices/system/node/online reports %d node(s)\n",
                      n);
        skip();
        return -1;
    }
    return 0;
}

static void get_stats(ns_stats_t *st)
{
    memset(st, 0xEE, sizeof *st); /* so fields the allocator forgets show up */
    assert_int_equal(ns_stats_get(st), 0);
}

/* ------------------------------------------------------------ ns_node_of */

static void test_node_of_ours(void **state)
{
    (void)state;
    if (single_node_or_skip() < 0)
        return;
    size_t sizes[] = {1, 16, 64, 100, 1000, 4096, 30000, 100000, 1 * MiB, 4 * MiB, 33 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = ns_malloc(sizes[i]);
        assert_non_null(p);
        int n = ns_node_of(p);
        if (n != 0)
            fail_msg("ns_node_of(ns_malloc(%zu) = %p) = %d, expected 0", sizes[i], p, n);
        void *q = ns_calloc(1, sizes[i]);
        assert_non_null(q);
        assert_int_equal(ns_node_of(q), 0);
        void *r = NULL;
        assert_int_equal(ns_posix_memalign(&r, 4096, sizes[i]), 0);
        assert_int_equal(ns_node_of(r), 0);
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

static void test_malloc_onnode(void **state)
{
    (void)state;
    if (single_node_or_skip() < 0)
        return;
    size_t sizes[] = {1, 16, 64, 4096, 100000, 4 * MiB};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        void *p = ns_malloc_onnode(sizes[i], 0);
        if (!p)
            fail_msg("ns_malloc_onnode(%zu, 0) returned NULL (errno %d)", sizes[i], errno);
        assert_true(is_aligned(p, sizes[i] >= 16 ? 16 : 1));
        size_t u = ns_malloc_usable_size(p);
        assert_true(u >= sizes[i]);
        pat_fill(p, u, (uint32_t)i);
        assert_int_equal(pat_check(p, u, (uint32_t)i), PAT_OK);
        assert_int_equal(ns_node_of(p), 0);
        void *q = ns_realloc(p, sizes[i] * 2 + 1);
        assert_non_null(q);
        assert_int_equal(pat_check(q, u < sizes[i] * 2 + 1 ? u : sizes[i] * 2 + 1, (uint32_t)i),
                         PAT_OK);
        ns_free(q);
    }
    void *z = ns_malloc_onnode(0, 0);
    if (z)
        ns_free(z);

    int bad_nodes[] = {9999, 1, 2, 63, 64, 1024, -1, -2, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof bad_nodes / sizeof bad_nodes[0]; i++) {
        errno = 0;
        void *p = ns_malloc_onnode(64, bad_nodes[i]);
        int e = errno;
        if (p)
            fail_msg("ns_malloc_onnode(64, %d) = %p on a single-node machine, expected NULL",
                     bad_nodes[i], p);
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

static void test_stats_consistency(void **state)
{
    (void)state;
    void *p = ns_malloc(100), *q = ns_malloc(5 * MiB);
    assert_non_null(p);
    assert_non_null(q);
    ns_stats_t st;
    get_stats(&st);
    int sysn = sys_node_count();
    if (sysn > 0)
        assert_int_equal(st.nodes, sysn > 64 ? 64 : sysn);
    assert_true(st.nodes >= 1 && st.nodes <= 64);
    assert_true(st.threads >= 1);
    assert_true(st.mapped_bytes >= st.in_use_bytes);
    assert_true(st.in_use_bytes >= 100 + 5 * MiB);
    uint64_t ss = 0, lb = 0, lc = 0, small = 0;
    for (int n = 0; n < st.nodes; n++) {
        const ns_node_stats_t *ns = &st.node[n];
        if (ns->superslab_bytes != ns->superslabs * 2 * MiB)
            fail_msg("node %d: superslab_bytes %llu != superslabs %llu * 2 MiB", n,
                     (unsigned long long)ns->superslab_bytes, (unsigned long long)ns->superslabs);
        if (ns->remote_drained > ns->remote_frees)
            fail_msg("node %d: remote_drained %llu > remote_frees %llu", n,
                     (unsigned long long)ns->remote_drained,
                     (unsigned long long)ns->remote_frees);
        assert_true(ns->large_cached_bytes >= ns->large_cached);
        assert_true(ns->small_in_use <= ns->superslab_bytes);
        ss += ns->superslab_bytes;
        lb += ns->large_bytes;
        lc += ns->large_cached_bytes;
        small += ns->small_in_use;
    }
    if (st.mapped_bytes < ss + lb)
        fail_msg("mapped_bytes %llu < SuperSlab bytes %llu + large bytes %llu",
                 (unsigned long long)st.mapped_bytes, (unsigned long long)ss,
                 (unsigned long long)lb);
    if (st.mapped_bytes > ss + lb + lc)
        fail_msg("mapped_bytes %llu > SuperSlab %llu + large %llu + large cached %llu",
                 (unsigned long long)st.mapped_bytes, (unsigned long long)ss,
                 (unsigned long long)lb, (unsigned long long)lc);
    /* in use = small in use + live large (usable or reserved bytes) */
    if (st.in_use_bytes < small + 5 * MiB || st.in_use_bytes > small + lb)
        fail_msg("in_use_bytes %llu not within [small_in_use %llu + 5 MiB live large, "
                 "small_in_use + large_bytes %llu]",
                 (unsigned long long)st.in_use_bytes, (unsigned long long)small,
                 (unsigned long long)lb);
    ns_free(p);
    ns_free(q);
}

/* numaslab.h: large_count/large_bytes describe LIVE large mappings, the
 * freed ones kept for reuse are large_cached/large_cached_bytes, and
 * mapped_bytes is everything mapped (SuperSlabs + large, live or cached). */
static void test_stats_large_live_vs_cached(void **state)
{
    (void)state;
    ns_release();
    ns_stats_t a, b, c;
    get_stats(&a);
    const size_t size = 8 * MiB;
    void *p = ns_malloc(size);
    assert_non_null(p);
    memset(p, 1, 4096);
    get_stats(&b);
    ns_free(p);
    get_stats(&c);
    if (a.nodes != 1) {
        print_message("SKIP: per-node check written for one node; stats report %d\n", a.nodes);
        skip();
        return;
    }
    const ns_node_stats_t *na = &a.node[0], *nb = &b.node[0], *nc = &c.node[0];
    assert_int_equal(nb->large_count, na->large_count + 1);
    assert_true(nb->large_bytes >= na->large_bytes + size);
    /* freed: no longer live, whether or not it is cached */
    assert_int_equal(nc->large_count, na->large_count);
    if (nc->large_bytes != na->large_bytes)
        fail_msg("after freeing the only new large block, node[0].large_bytes is %llu (was %llu "
                 "before it was allocated; large_cached_bytes %llu): freed/cached mappings "
                 "counted as live",
                 (unsigned long long)nc->large_bytes, (unsigned long long)na->large_bytes,
                 (unsigned long long)nc->large_cached_bytes);
    uint64_t sum = nc->superslab_bytes + nc->large_bytes + nc->large_cached_bytes;
    if (c.mapped_bytes != sum)
        fail_msg("mapped_bytes %llu != superslab_bytes %llu + large_bytes %llu + "
                 "large_cached_bytes %llu",
                 (unsigned long long)c.mapped_bytes, (unsigned long long)nc->superslab_bytes,
                 (unsigned long long)nc->large_bytes, (unsigned long long)nc->large_cached_bytes);
    ns_release();
    ns_stats_t d;
    get_stats(&d);
    assert_int_equal(d.node[0].large_cached, 0);
    assert_int_equal(d.node[0].large_cached_bytes, 0);
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
    uint64_t want = (uint64_t)N * size;
    uint64_t d = b.in_use_bytes - a.in_use_bytes;
    if (b.in_use_bytes < a.in_use_bytes + want)
        fail_msg("in_use_bytes rose by %lld after %d x %zu bytes, expected >= %llu",
                 (long long)(b.in_use_bytes - a.in_use_bytes), N, size,
                 (unsigned long long)want);
    /* each large block may be rounded up to 2 MiB */
    if (d > want + (uint64_t)N * 2 * MiB)
        fail_msg("in_use_bytes rose by %llu after %d x %zu bytes, more than %llu",
                 (unsigned long long)d, N, size, (unsigned long long)(want + N * 2 * MiB));
    if (b.mapped_bytes < a.mapped_bytes + want)
        fail_msg("mapped_bytes rose by only %lld for %llu bytes of new large blocks",
                 (long long)(b.mapped_bytes - a.mapped_bytes), (unsigned long long)want);
    if (a.nodes == 1) {
        if (b.node[0].large_count != a.node[0].large_count + N)
            fail_msg("node[0].large_count %llu -> %llu after %d large allocations",
                     (unsigned long long)a.node[0].large_count,
                     (unsigned long long)b.node[0].large_count, N);
        assert_true(b.node[0].large_bytes >= a.node[0].large_bytes + want);
    }
    for (int i = 0; i < N; i++)
        ns_free(v[i]);
    get_stats(&c);
    if (c.in_use_bytes > a.in_use_bytes + 1 * MiB || c.in_use_bytes + 1 * MiB < a.in_use_bytes)
        fail_msg("in_use_bytes did not fall back after freeing: %llu -> %llu -> %llu",
                 (unsigned long long)a.in_use_bytes, (unsigned long long)b.in_use_bytes,
                 (unsigned long long)c.in_use_bytes);
    if (a.nodes == 1)
        assert_int_equal(c.node[0].large_count, a.node[0].large_count);
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

static void test_stats_print(void **state)
{
    (void)state;
    void *p = ns_malloc(1000);
    assert_non_null(p);
    FILE *f = tmpfile();
    if (!f) {
        print_message("SKIP: tmpfile() failed: %s\n", strerror(errno));
        skip();
        return;
    }
    ns_stats_print(f);
    fflush(f);
    long len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    char buf[256];
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    assert_true(got > 0);
    buf[got] = '\0';
    /* some printable text, no NUL bytes in the first part */
    assert_int_equal(strlen(buf), got);
    fclose(f);
    ns_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_of_ours),
        cmocka_unit_test(test_node_of_foreign),
        cmocka_unit_test(test_malloc_onnode),
        cmocka_unit_test(test_stats_get_null),
        cmocka_unit_test(test_stats_consistency),
        cmocka_unit_test(test_stats_large_live_vs_cached),
        cmocka_unit_test(test_stats_in_use_large),
        cmocka_unit_test(test_stats_in_use_small),
        cmocka_unit_test(test_stats_thread_exit_flushes),
        cmocka_unit_test(test_stats_print),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
