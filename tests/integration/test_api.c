/* test_api.c - C/POSIX/glibc conformance of the ns_* allocation API.
 *
 * Linked against numaslab_core (no malloc override): everything here goes
 * through the ns_ entry points only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
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

/* Blocks bigger than this are checked at ~64 evenly spread points plus the
 * last byte, not byte by byte: with huge pages every touch zeroes 2 MiB and
 * the 1 GiB alignments would otherwise fault in tens of GiB. */
#define DENSE_LIMIT (4 * MiB)

static size_t sparse_step(size_t usable)
{
    size_t st = usable / 64;
    st = (st + 4095) & ~(size_t)4095;
    return st < 64 * KiB ? 64 * KiB : st;
}

/* ------------------------------------------------------------ helpers */

/* Write a pattern over the whole usable size of p and read it back. */
static void check_writable(void *p, size_t usable, uint32_t seed)
{
    size_t bad;
    if (usable <= DENSE_LIMIT) {
        pat_fill(p, usable, seed);
        bad = pat_check(p, usable, seed);
    } else {
        pat_fill_sparse(p, usable, seed, sparse_step(usable));
        bad = pat_check_sparse(p, usable, seed, sparse_step(usable));
    }
    if (bad != PAT_OK)
        fail_msg("block %p (usable %zu): byte %zu does not hold what was written", p, usable, bad);
}

static void verify_written(const void *p, size_t usable, uint32_t seed, const char *what)
{
    size_t bad = usable <= DENSE_LIMIT ? pat_check(p, usable, seed)
                                       : pat_check_sparse(p, usable, seed, sparse_step(usable));
    if (bad != PAT_OK)
        fail_msg("%s: block %p (usable %zu) byte %zu was overwritten (blocks overlap?)", what, p,
                 usable, bad);
}

/* Minimal alignment malloc(n) must give: 16 for n >= 16 (max_align_t),
 * otherwise the largest power of two <= n. */
static size_t min_align_for(size_t n)
{
    if (n >= 16)
        return 16;
    size_t a = 1;
    while (a * 2 <= n)
        a *= 2;
    return a;
}

static uint64_t in_use_now(void)
{
    ns_stats_t st;
    assert_int_equal(ns_stats_get(&st), 0);
    return st.in_use_bytes;
}

static uint64_t mapped_now(void)
{
    ns_stats_t st;
    assert_int_equal(ns_stats_get(&st), 0);
    return st.mapped_bytes;
}

static void assert_distinct(void **v, size_t n)
{
    void **c = malloc(n * sizeof *c); /* glibc malloc: this binary has no override */
    assert_non_null(c);
    memcpy(c, v, n * sizeof *c);
    qsort(c, n, sizeof *c, cmp_ptr);
    for (size_t i = 1; i < n; i++)
        if (c[i] == c[i - 1])
            fail_msg("the same pointer %p was handed out twice", c[i]);
    free(c);
}

/* ------------------------------------------------------------ malloc */

static void test_malloc_zero_unique(void **state)
{
    (void)state;
    enum { N = 512 };
    void *v[N];
    for (int i = 0; i < N; i++) {
        v[i] = ns_malloc(0);
        assert_non_null(v[i]);
        size_t u = ns_malloc_usable_size(v[i]);
        if (u)
            check_writable(v[i], u, (uint32_t)i);
    }
    assert_distinct(v, N);
    for (int i = 0; i < N; i++)
        ns_free(v[i]);

    /* realloc(NULL, 0) == malloc(0); calloc with a zero factor likewise. */
    void *a = ns_realloc(NULL, 0);
    void *b = ns_calloc(0, 0);
    void *c = ns_calloc(0, 64);
    void *d = ns_calloc(64, 0);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_non_null(d);
    void *all[4] = {a, b, c, d};
    assert_distinct(all, 4);
    ns_free(a);
    ns_free(b);
    ns_free(c);
    ns_free(d);
}

static void check_size_batch(size_t n, int nblocks)
{
    void *v[8];
    size_t us[8];
    size_t al = min_align_for(n);
    assert_true(nblocks <= 8);
    for (int i = 0; i < nblocks; i++) {
        v[i] = ns_malloc(n);
        if (!v[i])
            fail_msg("ns_malloc(%zu) returned NULL (errno %d)", n, errno);
        us[i] = ns_malloc_usable_size(v[i]);
        if (us[i] < n)
            fail_msg("ns_malloc_usable_size(ns_malloc(%zu)) = %zu < request", n, us[i]);
        if (!is_aligned(v[i], al))
            fail_msg("ns_malloc(%zu) = %p is not %zu-byte aligned", n, v[i], al);
        check_writable(v[i], us[i], (uint32_t)(n * 8 + (size_t)i));
    }
    for (int i = 0; i < nblocks; i++)
        verify_written(v[i], us[i], (uint32_t)(n * 8 + (size_t)i), "malloc sizes");
    for (int i = nblocks - 1; i >= 0; i--)
        ns_free(v[i]);
}

static void test_malloc_sizes(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 4096; n++)
        check_size_batch(n, 8);
    for (int k = 12; k <= 22; k++) {
        size_t p = (size_t)1 << k;
        size_t sz[] = {p - 1, p, p + 1, p + p / 2, p + p / 2 + 7};
        for (size_t j = 0; j < sizeof sz / sizeof sz[0]; j++)
            check_size_batch(sz[j], p <= 64 * KiB ? 8 : 3);
    }
    size_t odd[] = {10000, 12345, 99999, 100000, 777777, 1000000, 3000000, 5 * MiB + 3};
    for (size_t j = 0; j < sizeof odd / sizeof odd[0]; j++)
        check_size_batch(odd[j], 3);
}

static void test_malloc_usable_size_null(void **state)
{
    (void)state;
    assert_int_equal(ns_malloc_usable_size(NULL), 0);
    void *p = ns_malloc(100);
    assert_non_null(p);
    size_t u1 = ns_malloc_usable_size(p), u2 = ns_malloc_usable_size(p);
    assert_true(u1 >= 100);
    assert_int_equal(u1, u2);
    ns_free(p);
}

static void test_free_null(void **state)
{
    (void)state;
    for (int i = 0; i < 1000; i++)
        ns_free(NULL);
    void *p = ns_malloc(32);
    assert_non_null(p);
    ns_free(p);
}

/* ------------------------------------------------------------ realloc */

static const size_t rsizes[] = {
    1, 7, 8, 15, 16, 17, 24, 31, 32, 33, 48, 64, 96, 100, 128, 200, 255, 256, 257, 512,
    1000, 1024, 2048, 4095, 4096, 4097, 8192, 12345, 16384, 32768, 65536, 100000, 131072,
    262144, 524288, 1 << 20, (2 << 20) - 1, 2 << 20, (2 << 20) + 1, 3 << 20, 4 << 20, 8 << 20,
};
#define NRSIZES (sizeof rsizes / sizeof rsizes[0])

static void test_realloc_preserves_pairs(void **state)
{
    (void)state;
    for (size_t i = 0; i < NRSIZES; i++) {
        for (size_t j = 0; j < NRSIZES; j++) {
            size_t a = rsizes[i], b = rsizes[j];
            uint32_t seed = (uint32_t)(i * 64 + j);
            unsigned char *p = ns_malloc(a);
            assert_non_null(p);
            pat_fill(p, a, seed);
            errno = 0;
            unsigned char *q = ns_realloc(p, b);
            if (!q)
                fail_msg("ns_realloc(%zu -> %zu) returned NULL (errno %d)", a, b, errno);
            size_t keep = a < b ? a : b;
            size_t bad = pat_check(q, keep, seed);
            if (bad != PAT_OK)
                fail_msg("ns_realloc(%zu -> %zu) lost the contents at byte %zu", a, b, bad);
            size_t u = ns_malloc_usable_size(q);
            if (u < b)
                fail_msg("ns_realloc(%zu -> %zu): usable size %zu", a, b, u);
            if (!is_aligned(q, min_align_for(b)))
                fail_msg("ns_realloc(%zu -> %zu) = %p misaligned", a, b, (void *)q);
            /* the grown part and the end of the usable size are writable */
            q[b - 1] = 0x5A;
            q[u - 1] = 0xA5;
            assert_true(q[b - 1] == (b == u ? 0xA5 : 0x5A));
            ns_free(q);
        }
    }
}

static void test_realloc_grow_shrink_steps(void **state)
{
    (void)state;
    const uint32_t seed = 77;
    size_t n = 1;
    unsigned char *p = ns_malloc(n);
    assert_non_null(p);
    pat_fill(p, n, seed);
    /* grow by ~12% per step up to 6 MiB, checking the prefix every time */
    while (n < 6 * MiB) {
        size_t m = n + n / 8 + 1;
        unsigned char *q = ns_realloc(p, m);
        assert_non_null(q);
        size_t bad = pat_check(q, n, seed);
        if (bad != PAT_OK)
            fail_msg("growing realloc %zu -> %zu lost byte %zu", n, m, bad);
        for (size_t i = n; i < m; i++)
            q[i] = pat_byte(seed, i);
        p = q;
        n = m;
    }
    /* and shrink back down */
    while (n > 1) {
        size_t m = n - n / 7 - 1;
        if (m == 0)
            m = 1;
        unsigned char *q = ns_realloc(p, m);
        assert_non_null(q);
        size_t bad = pat_check(q, m, seed);
        if (bad != PAT_OK)
            fail_msg("shrinking realloc %zu -> %zu lost byte %zu", n, m, bad);
        p = q;
        n = m;
    }
    ns_free(p);
}

static void test_realloc_null_is_malloc(void **state)
{
    (void)state;
    size_t sz[] = {1, 16, 100, 4096, 100000, 4 * MiB};
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        void *p = ns_realloc(NULL, sz[i]);
        assert_non_null(p);
        assert_true(ns_malloc_usable_size(p) >= sz[i]);
        assert_true(is_aligned(p, 16));
        check_writable(p, ns_malloc_usable_size(p), (uint32_t)i);
        ns_free(p);
    }
}

/* realloc(p, 0) frees p and returns NULL (glibc) or a minimal block; it must
 * not leak: repeated often enough that a leak shows in in_use_bytes. */
static void test_realloc_zero_no_leak(void **state)
{
    (void)state;
    struct {
        size_t size;
        int iters;
    } cases[] = {{16, 200000}, {1024, 4000}, {64 * KiB, 200}, {1 * MiB, 50}, {8 * MiB, 10}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t s = cases[c].size;
        /* warm up the caches for this size so they do not count as a leak */
        void *w = ns_malloc(s);
        assert_non_null(w);
        ns_free(w);
        uint64_t before = in_use_now();
        for (int i = 0; i < cases[c].iters; i++) {
            void *p = ns_malloc(s);
            assert_non_null(p);
            memset(p, 0x5A, s);
            void *q = ns_realloc(p, 0);
            if (q) {
                /* a minimal block: must be ours and freeable */
                ns_free(q);
            }
        }
        uint64_t after = in_use_now();
        uint64_t leaked_if_bug = (uint64_t)s * (uint64_t)cases[c].iters;
        if (after > before + leaked_if_bug / 4)
            fail_msg("realloc(p, 0) with %zu-byte blocks leaks: in_use %llu -> %llu after %d calls",
                     s, (unsigned long long)before, (unsigned long long)after, cases[c].iters);
    }
}

/* ------------------------------------------------------------ calloc */

static void test_calloc_zero_after_dirty_reuse(void **state)
{
    (void)state;
    size_t sz[] = {1, 8, 16, 24, 64, 100, 256, 1000, 4096, 10000, 65536, 200000,
                   1 * MiB, 3 * MiB, 8 * MiB};
    for (size_t k = 0; k < sizeof sz / sizeof sz[0]; k++) {
        size_t n = sz[k];
        int iters = n <= 64 * KiB ? 300 : 20;
        for (int i = 0; i < iters; i++) {
            unsigned char *p = ns_malloc(n);
            assert_non_null(p);
            memset(p, 0xAB, ns_malloc_usable_size(p));
            ns_free(p);
            unsigned char *q = (i & 1) ? ns_calloc(n, 1) : ns_calloc(1, n);
            assert_non_null(q);
            size_t bad = first_not(q, n, 0);
            if (bad != PAT_OK)
                fail_msg("ns_calloc(%zu) after a dirty free: byte %zu is 0x%02x, not 0 "
                         "(iteration %d, reused %s)",
                         n, bad, q[bad], i, q == p ? "the same block" : "another block");
            ns_free(q);
        }
    }
}

static void test_calloc_zero_batch(void **state)
{
    (void)state;
    enum { N = 2000 };
    static void *v[N];
    size_t sz[] = {16, 48, 64, 128, 1024, 5000};
    for (size_t k = 0; k < sizeof sz / sizeof sz[0]; k++) {
        size_t n = sz[k];
        for (int i = 0; i < N; i++) {
            v[i] = ns_malloc(n);
            assert_non_null(v[i]);
            memset(v[i], 0xAB, ns_malloc_usable_size(v[i]));
        }
        for (int i = 0; i < N; i++)
            ns_free(v[i]);
        for (int i = 0; i < N; i++) {
            v[i] = ns_calloc(4, n / 4);
            assert_non_null(v[i]);
            size_t bad = first_not(v[i], n / 4 * 4, 0);
            if (bad != PAT_OK)
                fail_msg("ns_calloc(4, %zu) #%d: byte %zu not zero (free-list link left behind?)",
                         n / 4, i, bad);
        }
        for (int i = 0; i < N; i++)
            ns_free(v[i]);
    }
}

static void test_calloc_large(void **state)
{
    (void)state;
    unsigned char *p = ns_calloc(1, 8 * MiB);
    assert_non_null(p);
    assert_int_equal(first_not(p, 8 * MiB, 0), PAT_OK);
    memset(p, 0xAB, 8 * MiB);
    ns_free(p);
    for (int i = 0; i < 4; i++) {
        p = ns_calloc(8, MiB);
        assert_non_null(p);
        size_t bad = first_not(p, 8 * MiB, 0);
        if (bad != PAT_OK)
            fail_msg("ns_calloc(8, 1 MiB) reused dirty memory: byte %zu = 0x%02x", bad, p[bad]);
        memset(p, 0xCD, 8 * MiB);
        ns_free(p);
    }
    p = ns_calloc(3, 11 * MiB);
    assert_non_null(p);
    assert_int_equal(first_not(p, 33 * MiB, 0), PAT_OK);
    ns_free(p);
}

/* ------------------------------------------------------------ overflow / ENOMEM */

static const size_t huge_sizes[] = {
    SIZE_MAX,
    SIZE_MAX - 1,
    SIZE_MAX - 15,
    SIZE_MAX - 16,
    SIZE_MAX - 4095,
    SIZE_MAX - 4096,
    SIZE_MAX - (2u << 20),
    SIZE_MAX - (2u << 20) - 4096,
    (size_t)PTRDIFF_MAX,
    (size_t)PTRDIFF_MAX + 1,
    (size_t)PTRDIFF_MAX - 4095,
    (size_t)PTRDIFF_MAX + 4097,
    (size_t)1 << 62,
    (size_t)1 << 48,
    (size_t)1 << 47,
};
#define NHUGE (sizeof huge_sizes / sizeof huge_sizes[0])

#define EXPECT_ENOMEM_NULL(expr, sz)                                                            \
    do {                                                                                        \
        errno = 0;                                                                              \
        void *r_ = (expr);                                                                      \
        int e_ = errno;                                                                         \
        if (r_ != NULL)                                                                         \
            fail_msg("%s with size %#zx returned %p, expected NULL", #expr, (size_t)(sz), r_);  \
        if (e_ != ENOMEM)                                                                       \
            fail_msg("%s with size %#zx: errno %d, expected ENOMEM", #expr, (size_t)(sz), e_);  \
    } while (0)

static void test_huge_sizes_enomem(void **state)
{
    (void)state;
    unsigned char *keep = ns_malloc(200);
    assert_non_null(keep);
    pat_fill(keep, 200, 9);
    for (size_t i = 0; i < NHUGE; i++) {
        size_t s = huge_sizes[i];
        EXPECT_ENOMEM_NULL(ns_malloc(s), s);
        EXPECT_ENOMEM_NULL(ns_calloc(1, s), s);
        EXPECT_ENOMEM_NULL(ns_calloc(s, 1), s);
        EXPECT_ENOMEM_NULL(ns_realloc(keep, s), s);
        assert_int_equal(pat_check(keep, 200, 9), PAT_OK);
        EXPECT_ENOMEM_NULL(ns_reallocarray(keep, 1, s), s);
        assert_int_equal(pat_check(keep, 200, 9), PAT_OK);
        EXPECT_ENOMEM_NULL(ns_aligned_alloc(64, s), s);
        EXPECT_ENOMEM_NULL(ns_aligned_alloc(2 * MiB, s), s);
        EXPECT_ENOMEM_NULL(ns_memalign(4096, s), s);
        EXPECT_ENOMEM_NULL(ns_valloc(s), s);
        EXPECT_ENOMEM_NULL(ns_pvalloc(s), s);
        EXPECT_ENOMEM_NULL(ns_malloc_onnode(s, 0), s);
        void *out = (void *)0x1234;
        int rc = ns_posix_memalign(&out, 256, s);
        if (rc != ENOMEM)
            fail_msg("ns_posix_memalign(256, %#zx) returned %d, expected ENOMEM", s, rc);
    }
    ns_free(keep);
}

static void test_calloc_overflow(void **state)
{
    (void)state;
    struct {
        size_t n, s;
    } c[] = {
        {SIZE_MAX / 2, 3},
        {3, SIZE_MAX / 2},
        {SIZE_MAX, SIZE_MAX},
        {(size_t)1 << 32, (size_t)1 << 32}, /* product wraps to exactly 0 */
        {((size_t)1 << 32) + 1, (size_t)1 << 32}, /* wraps to 2^32 */
        {SIZE_MAX / 16 + 1, 16}, /* wraps to 0 */
        {SIZE_MAX / 4096 + 2, 4096}, /* wraps to 4096 */
        {(size_t)PTRDIFF_MAX / 2 + 1, 2}, /* no wrap, but > PTRDIFF_MAX */
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        errno = 0;
        void *p = ns_calloc(c[i].n, c[i].s);
        int e = errno;
        if (p)
            fail_msg("ns_calloc(%#zx, %#zx) returned %p, expected NULL", c[i].n, c[i].s, p);
        if (e != ENOMEM)
            fail_msg("ns_calloc(%#zx, %#zx): errno %d, expected ENOMEM", c[i].n, c[i].s, e);
    }
}

static void test_reallocarray(void **state)
{
    (void)state;
    /* reallocarray(NULL, n, s) == malloc(n*s) */
    unsigned char *p = ns_reallocarray(NULL, 4, 25);
    assert_non_null(p);
    assert_true(ns_malloc_usable_size(p) >= 100);
    pat_fill(p, 100, 3);
    struct {
        size_t n, s;
    } ov[] = {
        {SIZE_MAX / 2, 3},
        {SIZE_MAX, SIZE_MAX},
        {(size_t)1 << 32, (size_t)1 << 32},
        {SIZE_MAX / 16 + 1, 16},
        {SIZE_MAX / 4096 + 2, 4096},
    };
    for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
        errno = 0;
        void *q = ns_reallocarray(p, ov[i].n, ov[i].s);
        int e = errno;
        if (q)
            fail_msg("ns_reallocarray(p, %#zx, %#zx) returned %p, expected NULL", ov[i].n,
                     ov[i].s, q);
        assert_int_equal(e, ENOMEM);
        /* the old block is untouched and still ours */
        assert_int_equal(pat_check(p, 100, 3), PAT_OK);
        assert_true(ns_malloc_usable_size(p) >= 100);
    }
    /* growing and shrinking through reallocarray keeps the contents */
    unsigned char *q = ns_reallocarray(p, 1000, 1000);
    assert_non_null(q);
    assert_int_equal(pat_check(q, 100, 3), PAT_OK);
    assert_true(ns_malloc_usable_size(q) >= 1000000);
    check_writable(q, 1000000, 4);
    p = ns_reallocarray(q, 10, 7);
    assert_non_null(p);
    assert_int_equal(pat_check(p, 70, 4), PAT_OK);
    ns_free(p);
}

/* ------------------------------------------------------------ alignment */

static void test_posix_memalign_einval(void **state)
{
    (void)state;
    size_t bad[] = {0, 1, 2, 4, 3, 5, 6, 7, 12, 24, 40, 48, 96, 100, 4097, 3 * MiB,
                    (size_t)1 << 20 | 8, SIZE_MAX, SIZE_MAX - 7};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t sizes[] = {0, 1, 100, 4096};
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            void *sentinel = (void *)(uintptr_t)0xdeadbeef;
            void *out = sentinel;
            int rc = ns_posix_memalign(&out, bad[i], sizes[j]);
            if (rc != EINVAL)
                fail_msg("ns_posix_memalign(alignment %zu, size %zu) returned %d, expected "
                         "EINVAL",
                         bad[i], sizes[j], rc);
            if (out != sentinel)
                fail_msg("ns_posix_memalign(alignment %zu) failed but wrote *out = %p", bad[i],
                         out);
        }
    }
    /* size 0 with a valid alignment: NULL or a unique freeable pointer */
    void *out = (void *)(uintptr_t)0xdeadbeef;
    assert_int_equal(ns_posix_memalign(&out, 64, 0), 0);
    assert_true(out == NULL || is_aligned(out, 64));
    ns_free(out);
}

static const size_t bad_pow2[] = {3, 5, 6, 7, 12, 24, 48, 96, 100, 4097, 3 * MiB,
                                  (size_t)1 << 20 | 8, SIZE_MAX, SIZE_MAX - 7};

static void test_aligned_alloc_einval(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_pow2 / sizeof bad_pow2[0]; i++) {
        errno = 0;
        void *p = ns_aligned_alloc(bad_pow2[i], 64);
        int e = errno;
        if (p)
            fail_msg("ns_aligned_alloc(%zu, 64) = %p, expected NULL", bad_pow2[i], p);
        if (e != EINVAL)
            fail_msg("ns_aligned_alloc(%zu, 64): errno %d, expected EINVAL", bad_pow2[i], e);
    }
}

/* The numaslab contract (numaslab.h: "EINVAL for a bad alignment") is
 * stricter than glibc, whose memalign rounds such an alignment up. */
/* memalign follows glibc: an alignment that is not a power of two is
 * rounded up to the next one; only one above SIZE_MAX/2+1 is EINVAL. */
static void test_memalign_rounds_up(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_pow2 / sizeof bad_pow2[0]; i++) {
        size_t a = bad_pow2[i];
        errno = 0;
        void *p = ns_memalign(a, 64);
        int e = errno;
        if (a > SIZE_MAX / 2 + 1) {
            if (p || e != EINVAL)
                fail_msg("ns_memalign(%zu, 64) = %p errno %d, expected NULL + EINVAL", a, p, e);
            continue;
        }
        size_t pow = 1;
        while (pow < a)
            pow <<= 1;
        if (!p)
            fail_msg("ns_memalign(%zu, 64) = NULL (errno %d), expected a block aligned to %zu", a, e, pow);
        if (!is_aligned(p, pow))
            fail_msg("ns_memalign(%zu, 64) = %p, not aligned to %zu", a, p, pow);
        memset(p, 0x5a, 64);
        ns_free(p);
    }
}

/* Alignments that are valid but cannot be satisfied: ENOMEM, and no wrap-around
 * in align + size arithmetic. */
static void test_alignment_too_big_enomem(void **state)
{
    (void)state;
    size_t al[] = {(size_t)1 << 63, (size_t)1 << 62, (size_t)1 << 48};
    for (size_t i = 0; i < sizeof al / sizeof al[0]; i++) {
        void *out = (void *)(uintptr_t)0xdeadbeef;
        int rc = ns_posix_memalign(&out, al[i], 1);
        if (rc != ENOMEM)
            fail_msg("ns_posix_memalign(%#zx, 1) returned %d (out %p), expected ENOMEM", al[i],
                     rc, out);
        EXPECT_ENOMEM_NULL(ns_aligned_alloc(al[i], 1), al[i]);
        EXPECT_ENOMEM_NULL(ns_memalign(al[i], 1), al[i]);
    }
}

enum { FN_POSIX_MEMALIGN, FN_ALIGNED_ALLOC, FN_MEMALIGN, FN_COUNT };
static const char *const fn_name[FN_COUNT] = {"ns_posix_memalign", "ns_aligned_alloc",
                                              "ns_memalign"};

static void *aligned_by(int fn, size_t align, size_t size)
{
    void *p = NULL;
    int rc;
    errno = 0;
    switch (fn) {
    case FN_POSIX_MEMALIGN:
        rc = ns_posix_memalign(&p, align, size);
        if (rc != 0)
            fail_msg("ns_posix_memalign(%zu, %zu) returned %d", align, size, rc);
        break;
    case FN_ALIGNED_ALLOC:
        p = ns_aligned_alloc(align, size);
        break;
    default:
        p = ns_memalign(align, size);
        break;
    }
    if (!p)
        fail_msg("%s(%zu, %zu) returned NULL (errno %d)", fn_name[fn], align, size, errno);
    if (!is_aligned(p, align))
        fail_msg("%s(%zu, %zu) = %p is not aligned", fn_name[fn], align, size, p);
    size_t u = ns_malloc_usable_size(p);
    if (u < size)
        fail_msg("%s(%zu, %zu): usable size %zu < request", fn_name[fn], align, size, u);
    if (ns_node_of(p) < 0)
        fail_msg("%s(%zu, %zu) = %p: ns_node_of says it is not numaslab's", fn_name[fn], align,
                 size, p);
    return p;
}

/* Every power-of-two alignment 8 .. 1 GiB, sizes 1, a-1, a, 3a+5. */
static void test_alignment_sweep(void **state)
{
    (void)state;
    for (int fn = 0; fn < FN_COUNT; fn++) {
        for (int k = 3; k <= 30; k++) {
            size_t a = (size_t)1 << k;
            size_t sizes[] = {1, a - 1, a, 3 * a + 5};
            for (size_t j = 0; j < 4; j++) {
                size_t s = sizes[j];
                int nb = s <= 1 * MiB ? 4 : 1;
                void *v[4];
                size_t u[4];
                for (int b = 0; b < nb; b++) {
                    v[b] = aligned_by(fn, a, s);
                    u[b] = ns_malloc_usable_size(v[b]);
                    check_writable(v[b], u[b], (uint32_t)(k * 16 + (int)j * 4 + b));
                }
                for (int b = 0; b < nb; b++)
                    verify_written(v[b], u[b], (uint32_t)(k * 16 + (int)j * 4 + b),
                                   fn_name[fn]);
                for (int b = 0; b < nb; b++)
                    ns_free(v[b]);
            }
        }
        /* alignments below sizeof(void*) are valid for aligned_alloc/memalign */
        if (fn != FN_POSIX_MEMALIGN) {
            for (size_t a = 1; a < 8; a *= 2) {
                void *p = aligned_by(fn, a, 10);
                check_writable(p, 10, 1);
                ns_free(p);
            }
        }
    }
}

/* Small sizes with alignments 16..4096 (256/512/1024 broke other allocators):
 * many live blocks, no overlap, and the size classes stay sound afterwards. */
static void test_alignment_small_sizes(void **state)
{
    (void)state;
    enum { NB = 64 };
    void *v[2 * NB];
    size_t u[2 * NB];
    size_t aligns[] = {16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
    size_t sizes[] = {1, 8, 16, 24, 40, 64, 100, 128, 200, 256, 300, 512, 1000, 1024, 2000};
    for (int fn = 0; fn < FN_COUNT; fn++) {
        for (size_t ai = 0; ai < sizeof aligns / sizeof aligns[0]; ai++) {
            for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                size_t a = aligns[ai], s = sizes[si];
                uint32_t base = (uint32_t)(fn * 100000 + (int)ai * 1000 + (int)si * 10);
                for (int b = 0; b < NB; b++) {
                    v[b] = aligned_by(fn, a, s);
                    u[b] = ns_malloc_usable_size(v[b]);
                    pat_fill(v[b], u[b], base + (uint32_t)b);
                }
                /* free every other aligned block, then plain blocks of the same size */
                for (int b = 1; b < NB; b += 2)
                    ns_free(v[b]);
                for (int b = 1; b < NB; b += 2) {
                    v[b] = ns_malloc(s);
                    assert_non_null(v[b]);
                    u[b] = ns_malloc_usable_size(v[b]);
                    if (u[b] < s)
                        fail_msg("ns_malloc(%zu) after aligned frees: usable %zu", s, u[b]);
                    if (!is_aligned(v[b], min_align_for(s)))
                        fail_msg("ns_malloc(%zu) after %s(%zu) frees = %p misaligned", s,
                                 fn_name[fn], a, v[b]);
                    pat_fill(v[b], u[b], base + (uint32_t)b);
                }
                for (int b = NB; b < 2 * NB; b++) {
                    v[b] = aligned_by(fn, a, s);
                    u[b] = ns_malloc_usable_size(v[b]);
                    pat_fill(v[b], u[b], base + (uint32_t)b);
                }
                for (int b = 0; b < 2 * NB; b++) {
                    size_t bad = pat_check(v[b], u[b], base + (uint32_t)b);
                    if (bad != PAT_OK)
                        fail_msg("%s(align %zu, size %zu): block #%d %p byte %zu overwritten by "
                                 "another block",
                                 fn_name[fn], a, s, b, v[b], bad);
                }
                assert_distinct(v, 2 * NB);
                for (int b = 0; b < 2 * NB; b++)
                    ns_free(v[b]);
            }
        }
    }
}

static void test_valloc(void **state)
{
    (void)state;
    size_t ps = page_size();
    size_t sz[] = {1, 100, 4095, 4096, 4097, 65536, 1 * MiB, 3 * MiB + 1};
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        void *p = ns_valloc(sz[i]);
        if (!p)
            fail_msg("ns_valloc(%zu) returned NULL", sz[i]);
        if (!is_aligned(p, ps))
            fail_msg("ns_valloc(%zu) = %p is not page aligned", sz[i], p);
        size_t u = ns_malloc_usable_size(p);
        assert_true(u >= sz[i]);
        check_writable(p, u, (uint32_t)i);
        ns_free(p);
    }
    void *z = ns_valloc(0);
    assert_true(z == NULL || is_aligned(z, ps));
    ns_free(z);
}

static void test_pvalloc(void **state)
{
    (void)state;
    size_t ps = page_size();
    size_t sz[] = {0, 1, 100, 4095, 4096, 4097, 10000, 65536, 1 * MiB + 1};
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        size_t want = sz[i] == 0 ? ps : (sz[i] + ps - 1) / ps * ps;
        void *p = ns_pvalloc(sz[i]);
        if (!p)
            fail_msg("ns_pvalloc(%zu) returned NULL", sz[i]);
        if (!is_aligned(p, ps))
            fail_msg("ns_pvalloc(%zu) = %p is not page aligned", sz[i], p);
        size_t u = ns_malloc_usable_size(p);
        if (u < want)
            fail_msg("ns_pvalloc(%zu): usable size %zu, expected at least %zu (page multiple)",
                     sz[i], u, want);
        check_writable(p, u, (uint32_t)i);
        ns_free(p);
    }
}

/* ------------------------------------------------------------ trim / release */

static void test_malloc_trim(void **state)
{
    (void)state;
    enum { N = 3000 };
    static void *v[N];
    for (int i = 0; i < N; i++) {
        size_t s = (size_t)(i % 7 == 0 ? 70000 + i : 16 + (i % 50) * 24);
        v[i] = ns_malloc(s);
        assert_non_null(v[i]);
        pat_fill(v[i], s, (uint32_t)i);
    }
    for (int i = 0; i < N; i += 2) {
        ns_free(v[i]);
        v[i] = NULL;
    }
    int r = ns_malloc_trim(0);
    assert_true(r == 0 || r == 1);
    r = ns_malloc_trim(1 * MiB);
    assert_true(r == 0 || r == 1);
    for (int i = 1; i < N; i += 2) {
        size_t s = (size_t)(i % 7 == 0 ? 70000 + i : 16 + (i % 50) * 24);
        size_t bad = pat_check(v[i], s, (uint32_t)i);
        if (bad != PAT_OK)
            fail_msg("block %d (size %zu) damaged by ns_malloc_trim at byte %zu", i, s, bad);
        ns_free(v[i]);
    }
    /* memory still works */
    for (int i = 0; i < 1000; i++) {
        void *p = ns_malloc((size_t)(i * 37 % 5000) + 1);
        assert_non_null(p);
        memset(p, 1, (size_t)(i * 37 % 5000) + 1);
        ns_free(p);
    }
    void *big = ns_malloc(16 * MiB);
    assert_non_null(big);
    check_writable(big, 16 * MiB, 5);
    ns_free(big);
}

static void test_release_returns_memory(void **state)
{
    (void)state;
    const size_t bs = 64;
    const size_t n = 64 * MiB / bs;
    void **v = mmap(NULL, n * sizeof *v, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                    0);
    assert_true(v != MAP_FAILED);
    /* a few blocks stay live across the release and must survive it */
    enum { LIVE = 100 };
    void *live[LIVE];
    for (int i = 0; i < LIVE; i++) {
        live[i] = ns_malloc(200 + (size_t)i);
        assert_non_null(live[i]);
        pat_fill(live[i], 200 + (size_t)i, (uint32_t)i);
    }
    ns_release();
    uint64_t m0 = mapped_now();
    for (size_t i = 0; i < n; i++) {
        v[i] = ns_malloc(bs);
        if (!v[i])
            fail_msg("ns_malloc(64) #%zu returned NULL", i);
        *(size_t *)v[i] = i;
    }
    uint64_t m1 = mapped_now();
    /* SuperSlabs that stayed mapped (they hold live blocks) absorb a little */
    if (m1 < m0 + 48 * MiB)
        fail_msg("64 MiB of 64-byte blocks live but mapped_bytes only went %llu -> %llu",
                 (unsigned long long)m0, (unsigned long long)m1);
    for (size_t i = 0; i < n; i++) {
        if (*(size_t *)v[i] != i)
            fail_msg("64-byte block #%zu was overwritten", i);
        ns_free(v[i]);
    }
    /* Empty SuperSlabs beyond a small reserve may go back to the OS already
     * on free (decay); ns_release() must give back the rest at once. */
    ns_stats_t s2;
    assert_int_equal(ns_stats_get(&s2), 0);
    uint64_t m2 = s2.mapped_bytes;
    size_t rel = ns_release();
    ns_stats_t s3;
    assert_int_equal(ns_stats_get(&s3), 0);
    uint64_t m3 = s3.mapped_bytes;
    if (m3 > m2 || m1 - m3 < 48 * MiB)
        fail_msg("after freeing 64 MiB of small blocks and ns_release() (returned %zu), "
                 "mapped_bytes went %llu (all live) -> %llu (freed) -> %llu (released): "
                 "expected a drop of at least 48 MiB",
                 rel, (unsigned long long)m1, (unsigned long long)m2, (unsigned long long)m3);
    if ((uint64_t)rel != m2 - m3)
        fail_msg("ns_release() returned %zu but mapped_bytes dropped by %llu (%llu -> %llu)",
                 rel, (unsigned long long)(m2 - m3), (unsigned long long)m2,
                 (unsigned long long)m3);
    /* nothing is left to release: a second call returns 0 and changes nothing */
    size_t rel2 = ns_release();
    if (rel2 != 0 || mapped_now() != m3)
        fail_msg("a second ns_release() right after the first returned %zu", rel2);
    if (s3.nodes == 1 && s3.node[0].released_bytes < s2.node[0].released_bytes + rel)
        fail_msg("node[0].released_bytes went %llu -> %llu, less than the %zu released",
                 (unsigned long long)s2.node[0].released_bytes,
                 (unsigned long long)s3.node[0].released_bytes, rel);
    for (int i = 0; i < LIVE; i++) {
        size_t bad = pat_check(live[i], 200 + (size_t)i, (uint32_t)i);
        if (bad != PAT_OK)
            fail_msg("live block %d damaged by ns_release at byte %zu", i, bad);
        ns_free(live[i]);
    }
    /* and allocation still works after the release */
    for (size_t i = 0; i < 100000; i++) {
        v[i] = ns_malloc(bs);
        assert_non_null(v[i]);
        *(size_t *)v[i] = i;
    }
    for (size_t i = 0; i < 100000; i++) {
        assert_int_equal(*(size_t *)v[i], i);
        ns_free(v[i]);
    }
    munmap(v, n * sizeof *v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malloc_zero_unique),
        cmocka_unit_test(test_malloc_sizes),
        cmocka_unit_test(test_malloc_usable_size_null),
        cmocka_unit_test(test_free_null),
        cmocka_unit_test(test_realloc_preserves_pairs),
        cmocka_unit_test(test_realloc_grow_shrink_steps),
        cmocka_unit_test(test_realloc_null_is_malloc),
        cmocka_unit_test(test_realloc_zero_no_leak),
        cmocka_unit_test(test_calloc_zero_after_dirty_reuse),
        cmocka_unit_test(test_calloc_zero_batch),
        cmocka_unit_test(test_calloc_large),
        cmocka_unit_test(test_huge_sizes_enomem),
        cmocka_unit_test(test_calloc_overflow),
        cmocka_unit_test(test_reallocarray),
        cmocka_unit_test(test_posix_memalign_einval),
        cmocka_unit_test(test_aligned_alloc_einval),
        cmocka_unit_test(test_memalign_rounds_up),
        cmocka_unit_test(test_alignment_too_big_enomem),
        cmocka_unit_test(test_alignment_sweep),
        cmocka_unit_test(test_alignment_small_sizes),
        cmocka_unit_test(test_valloc),
        cmocka_unit_test(test_pvalloc),
        cmocka_unit_test(test_malloc_trim),
        cmocka_unit_test(test_release_returns_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
