/* test_oom.c - out-of-memory behaviour, driven by the fault-injection hook of
 * numaslab_core_fi: after hp_fault_set(skip, fail) the next `skip` OS mapping
 * calls succeed and the following `fail` ones (-1: all) fail with ENOMEM.
 *
 * Invariant 1: when numaslab cannot get memory it returns NULL with
 * errno = ENOMEM, never hands out foreign memory, and works again once
 * memory is available.
 */
#define _GNU_SOURCE
#include <errno.h>
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

extern void hp_fault_set(long skip, long fail);

static int teardown_fault_off(void **state)
{
    (void)state;
    hp_fault_set(0, 0);
    return 0;
}

#define EXPECT_OOM(expr, what)                                                                  \
    do {                                                                                        \
        errno = 0;                                                                              \
        void *r_ = (expr);                                                                      \
        int e_ = errno;                                                                         \
        if (r_ != NULL)                                                                         \
            fail_msg("%s succeeded (%p) although every OS mapping fails", what, r_);            \
        if (e_ != ENOMEM)                                                                       \
            fail_msg("%s: errno %d, expected ENOMEM", what, e_);                                \
    } while (0)

/* ------------------------------------------------------------ large */

static void test_oom_large(void **state)
{
    (void)state;
    /* blocks that exist before the fault: small, medium, large */
    enum { NK = 6 };
    size_t ksz[NK] = {24, 200, 5000, 70000, 3 * MiB, 9 * MiB};
    void *keep[NK];
    for (int i = 0; i < NK; i++) {
        keep[i] = ns_malloc(ksz[i]);
        assert_non_null(keep[i]);
        pat_fill(keep[i], ksz[i], (uint32_t)i);
    }
    /* one small block we can realloc inside its class later */
    char *small = ns_malloc(100);
    assert_non_null(small);
    pat_fill(small, 100, 99);
    /* warm the 64-byte class so an allocation from the cache needs no mapping */
    void *w = ns_malloc(64);
    assert_non_null(w);
    ns_free(w);
    void *w2 = ns_malloc(64);
    assert_non_null(w2);

    ns_release(); /* drop cached large mappings: 64 MiB cannot come from a cache */

    hp_fault_set(0, -1);
    for (int i = 0; i < 4; i++) {
        size_t s = 64 * MiB + (size_t)i * 4096 * 3;
        char what[96];
        snprintf(what, sizeof what, "ns_malloc(%zu)", s);
        EXPECT_OOM(ns_malloc(s), what);
        snprintf(what, sizeof what, "ns_calloc(1, %zu)", s);
        EXPECT_OOM(ns_calloc(1, s), what);
        snprintf(what, sizeof what, "ns_calloc(%zu, 1)", s);
        EXPECT_OOM(ns_calloc(s, 1), what);
        snprintf(what, sizeof what, "ns_aligned_alloc(4096, %zu)", s);
        EXPECT_OOM(ns_aligned_alloc(4096, s), what);
        snprintf(what, sizeof what, "ns_memalign(2 MiB, %zu)", s);
        EXPECT_OOM(ns_memalign(2 * MiB, s), what);
        snprintf(what, sizeof what, "ns_valloc(%zu)", s);
        EXPECT_OOM(ns_valloc(s), what);
        snprintf(what, sizeof what, "ns_pvalloc(%zu)", s);
        EXPECT_OOM(ns_pvalloc(s), what);
        snprintf(what, sizeof what, "ns_malloc_onnode(%zu, 0)", s);
        EXPECT_OOM(ns_malloc_onnode(s, 0), what);

        void *out = (void *)(uintptr_t)0x5;
        int rc = ns_posix_memalign(&out, 64, s);
        if (rc != ENOMEM)
            fail_msg("ns_posix_memalign(64, %zu) returned %d under injection, expected ENOMEM",
                     s, rc);

        /* realloc that needs a new mapping fails and keeps the old block */
        snprintf(what, sizeof what, "ns_realloc(small block, %zu)", s);
        EXPECT_OOM(ns_realloc(small, s), what);
        assert_int_equal(pat_check(small, 100, 99), PAT_OK);
        snprintf(what, sizeof what, "ns_realloc(3 MiB block, %zu)", s);
        EXPECT_OOM(ns_realloc(keep[4], s), what);
        assert_int_equal(pat_check(keep[4], ksz[4], 4), PAT_OK);
        snprintf(what, sizeof what, "ns_reallocarray(small, %zu, 1)", s);
        EXPECT_OOM(ns_reallocarray(small, s, 1), what);
        assert_int_equal(pat_check(small, 100, 99), PAT_OK);
    }
    /* an allocation served from the thread cache needs no mapping */
    ns_free(w2);
    void *w3 = ns_malloc(64);
    if (!w3)
        fail_msg("ns_malloc(64) from a warm cache failed under injection (errno %d)", errno);
    ns_free(w3);

    hp_fault_set(0, 0);

    for (int i = 0; i < NK; i++) {
        size_t bad = pat_check(keep[i], ksz[i], (uint32_t)i);
        if (bad != PAT_OK)
            fail_msg("block of %zu bytes allocated before the fault lost byte %zu", ksz[i], bad);
    }
    assert_int_equal(pat_check(small, 100, 99), PAT_OK);

    /* memory is available again: everything works */
    char *big = ns_malloc(64 * MiB);
    assert_non_null(big);
    assert_true(ns_node_of(big) >= 0);
    pat_fill_sparse(big, 64 * MiB, 1, 4096);
    assert_int_equal(pat_check_sparse(big, 64 * MiB, 1, 4096), PAT_OK);
    char *grown = ns_realloc(small, 64 * MiB + 4096);
    assert_non_null(grown);
    assert_int_equal(pat_check(grown, 100, 99), PAT_OK);
    void *out = NULL;
    assert_int_equal(ns_posix_memalign(&out, 64, 64 * MiB + 8192), 0);
    assert_non_null(out);
    char *z = ns_calloc(1, 64 * MiB + 3 * 4096);
    assert_non_null(z);
    assert_int_equal(first_not(z, 64 * MiB + 3 * 4096, 0), PAT_OK);
    ns_free(big);
    ns_free(grown);
    ns_free(out);
    ns_free(z);
    for (int i = 0; i < NK; i++)
        ns_free(keep[i]);
}

/* A single failing mapping is not sticky: the next allocation works. */
static void test_oom_single_failure_recovers(void **state)
{
    (void)state;
    ns_release();
    for (int round = 0; round < 5; round++) {
        hp_fault_set(0, 1);
        size_t s = 32 * MiB + (size_t)round * 8192;
        errno = 0;
        void *p = ns_malloc(s);
        int e = errno;
        /* the allocator may retry (e.g. hugetlb then THP); if it gives up,
         * it must say ENOMEM */
        if (!p)
            assert_int_equal(e, ENOMEM);
        else
            ns_free(p);
        p = ns_malloc(s + 4096);
        if (!p)
            fail_msg("ns_malloc(%zu) failed after the single injected failure was used up "
                     "(errno %d)",
                     s + 4096, errno);
        pat_fill_sparse(p, s + 4096, 3, 4096);
        ns_free(p);
        hp_fault_set(0, 0);
        ns_release();
    }
}

/* ------------------------------------------------------------ small exhaustion */

#define MAX_SMALL 10000000L

static void test_oom_small_exhaustion(void **state)
{
    (void)state;
    size_t cap = (size_t)MAX_SMALL + 1;
    uint64_t **v = mmap(NULL, cap * sizeof *v, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(v != MAP_FAILED);

    ns_release(); /* give spare SuperSlabs back: exhaustion comes sooner */
    /* One live 64-byte block keeps one SuperSlab mapped: its free slabs are
     * spare memory that must be used before anything new is mapped. */
    void *anchor = ns_malloc(64);
    assert_non_null(anchor);
    hp_fault_set(0, -1);
    long n = 0;
    int e = 0;
    for (;;) {
        if (n >= MAX_SMALL) {
            hp_fault_set(0, 0);
            for (long i = 0; i < n; i++)
                ns_free(v[i]);
            munmap(v, cap * sizeof *v);
            fail_msg("%ld 16-byte allocations succeeded although no SuperSlab can be mapped",
                     MAX_SMALL);
        }
        errno = 0;
        uint64_t *p = ns_malloc(16);
        if (!p) {
            e = errno;
            break;
        }
        p[0] = (uint64_t)n;
        p[1] = ~(uint64_t)n;
        v[n++] = p;
    }
    print_message("  exhaustion after %ld 16-byte blocks (%.1f MiB)\n", n,
                  (double)n * 16 / (double)MiB);
    if (e != ENOMEM)
        fail_msg("ns_malloc(16) returned NULL at exhaustion with errno %d, expected ENOMEM", e);
    if (n < 1000)
        fail_msg("only %ld 16-byte blocks before ENOMEM: the free slabs of the SuperSlab "
                 "already mapped (it holds one 64-byte block) were not used",
                 n);
    /* more attempts keep failing cleanly */
    for (int i = 0; i < 1000; i++)
        EXPECT_OOM(ns_malloc(16), "ns_malloc(16) after exhaustion");
    EXPECT_OOM(ns_calloc(2, 8), "ns_calloc(2, 8) after exhaustion");

    /* every block is intact and distinct */
    for (long i = 0; i < n; i++)
        if (v[i][0] != (uint64_t)i || v[i][1] != ~(uint64_t)i)
            fail_msg("16-byte block #%ld (%p) was overwritten", i, (void *)v[i]);

    /* a freed block can be allocated again while the fault is still on */
    if (n > 0) {
        ns_free(v[n - 1]);
        v[n - 1] = ns_malloc(16);
        if (!v[n - 1])
            fail_msg("ns_malloc(16) after freeing a 16-byte block failed under injection "
                     "(errno %d)",
                     errno);
        v[n - 1][0] = (uint64_t)(n - 1);
        v[n - 1][1] = ~(uint64_t)(n - 1);
    }

    for (long i = 0; i < n; i++)
        ns_free(v[i]);
    ns_free(anchor);
    hp_fault_set(0, 0);

    /* allocate again: small and large */
    for (long i = 0; i < 200000; i++) {
        v[i] = ns_malloc(16);
        if (!v[i])
            fail_msg("ns_malloc(16) #%ld failed after injection was turned off", i);
        v[i][0] = (uint64_t)i;
    }
    for (long i = 0; i < 200000; i++) {
        assert_int_equal(v[i][0], (uint64_t)i);
        ns_free(v[i]);
    }
    void *big = ns_malloc(64 * MiB);
    assert_non_null(big);
    memset(big, 1, 64 * MiB);
    ns_free(big);
    munmap(v, cap * sizeof *v);
    ns_release();
}

/* ------------------------------------------------------------ fault at every point */

/* A fixed mix of allocations that needs several new mappings.  Under
 * hp_fault_set(k, -1) the first k mappings succeed: every result must be
 * either a valid block or NULL + ENOMEM, and after the fault the heap must be
 * sound. */
enum { MIX_N = 64 };

static size_t mix_size(int i)
{
    static const size_t s[] = {16,  24,  32,   48,   64,    96,     128,    256,
                               512, 768, 1024, 2048, 4096,  10000,  40000,  100000,
                               300000, 1 * MiB, 3 * MiB, 5 * MiB + 5, 17, 33, 8000, 65536};
    return s[(size_t)i % (sizeof s / sizeof s[0])];
}

static int run_mix(void **v, size_t *sz, int *n_fail)
{
    int ok = 0;
    *n_fail = 0;
    for (int i = 0; i < MIX_N; i++) {
        size_t s = mix_size(i);
        errno = 0;
        void *p;
        switch (i % 4) {
        case 0:
            p = ns_malloc(s);
            break;
        case 1:
            p = ns_calloc(1, s);
            if (p && first_not(p, s, 0) != PAT_OK)
                fail_msg("ns_calloc(1, %zu) under partial injection returned dirty memory", s);
            break;
        case 2:
            p = NULL;
            if (ns_posix_memalign(&p, 4096, s) != 0) {
                p = NULL;
                errno = ENOMEM;
            }
            break;
        default:
            p = ns_malloc(s / 2 + 1);
            if (p) {
                pat_fill(p, s / 2 + 1, 7);
                void *q = ns_realloc(p, s * 2);
                if (q) {
                    if (pat_check(q, s / 2 + 1, 7) != PAT_OK)
                        fail_msg("ns_realloc(%zu -> %zu) under injection lost contents",
                                 s / 2 + 1, s * 2);
                    p = q;
                    s = s * 2;
                } else {
                    if (errno != ENOMEM)
                        fail_msg("ns_realloc failed with errno %d, expected ENOMEM", errno);
                    if (pat_check(p, s / 2 + 1, 7) != PAT_OK)
                        fail_msg("failed ns_realloc damaged the old block");
                    s = s / 2 + 1;
                }
            }
            break;
        }
        if (!p) {
            if (errno != ENOMEM)
                fail_msg("allocation #%d (size %zu) failed with errno %d, expected ENOMEM", i, s,
                         errno);
            (*n_fail)++;
            v[i] = NULL;
            sz[i] = 0;
            continue;
        }
        if (ns_node_of(p) < 0)
            fail_msg("allocation #%d returned %p which is not numaslab's", i, p);
        if (ns_malloc_usable_size(p) < s)
            fail_msg("allocation #%d: usable %zu < %zu", i, ns_malloc_usable_size(p), s);
        pat_fill(p, s, (uint32_t)(1000 + i));
        v[i] = p;
        sz[i] = s;
        ok++;
    }
    return ok;
}

static void test_oom_fault_at_every_point(void **state)
{
    (void)state;
    void *v[MIX_N];
    size_t sz[MIX_N];
    int clean_runs = 0;
    long k;
    for (k = 0; k < 400 && clean_runs < 2; k++) {
        ns_release();
        hp_fault_set(k, -1);
        int n_fail = 0;
        run_mix(v, sz, &n_fail);
        hp_fault_set(0, 0);
        if (n_fail == 0)
            clean_runs++;
        for (int i = 0; i < MIX_N; i++) {
            if (!v[i])
                continue;
            size_t bad = pat_check(v[i], sz[i], (uint32_t)(1000 + i));
            if (bad != PAT_OK)
                fail_msg("skip=%ld: block #%d (%zu bytes) damaged at byte %zu", k, i, sz[i], bad);
        }
        /* the heap still works after the fault, then free everything */
        int n_fail2 = 0;
        void *v2[MIX_N];
        size_t sz2[MIX_N];
        run_mix(v2, sz2, &n_fail2);
        if (n_fail2 != 0)
            fail_msg("skip=%ld: %d allocations failed after injection was turned off", k,
                     n_fail2);
        for (int i = 0; i < MIX_N; i++) {
            ns_free(v[i]);
            ns_free(v2[i]);
        }
    }
    print_message("  fault points covered: skip = 0..%ld\n", k - 1);
    if (clean_runs < 2)
        fail_msg("the mix still failed with %ld successful mappings allowed", k);
    assert_true(k > 2); /* the mix needs mappings at all, or the test proves nothing */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_oom_large, teardown_fault_off),
        cmocka_unit_test_teardown(test_oom_single_failure_recovers, teardown_fault_off),
        cmocka_unit_test_teardown(test_oom_small_exhaustion, teardown_fault_off),
        cmocka_unit_test_teardown(test_oom_fault_at_every_point, teardown_fault_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
