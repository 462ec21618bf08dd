/* test_addrmap.c - the two-level address map (2 MiB granules).  The map only
 * stores values, so synthetic ranges that are not mapped can be used; they
 * lie at 16 TiB, far below where Linux places mmap and the stack. */
#include "unit_util.h"

#define SYN_BASE ((uintptr_t)1 << 44)              /* 16 TiB, a multiple of 16 GiB */
#define LEAF_SPAN ((uintptr_t)1 << (NS_SS_SHIFT + NS_MAP_LEAF_BITS))   /* 16 GiB */

static int a_global;

static int setup(void **state)
{
    unit_start();
    return 0;
}

static void test_unregistered_is_zero(void **state)
{
    int local = 0;
    void *heap = malloc(100);   /* glibc: this binary does not override malloc */
    void *m = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    uintptr_t probes[] = {
        0, 1, 4096, (uintptr_t)&local, (uintptr_t)&a_global, (uintptr_t)heap, (uintptr_t)m,
        (uintptr_t)m + 2 * MiB, (uintptr_t)&test_unregistered_is_zero,
        (uintptr_t)1 << 47, ((uintptr_t)1 << 47) + 2 * MiB, ((uintptr_t)1 << 47) - 1,
        (uintptr_t)1 << 48, (uintptr_t)1 << 63, 0xffff800000000000ull, ~(uintptr_t)0, ~(uintptr_t)0 - 4096,
        SYN_BASE + 1000 * LEAF_SPAN,
    };
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++)
        if (addrmap_lookup(probes[i]) != 0)
            fail_msg("addrmap_lookup(%#lx) = %#lx, want 0", (unsigned long)probes[i],
                     (unsigned long)addrmap_lookup(probes[i]));
    assert_int_equal(ns_node_of(&local), -1);
    assert_int_equal(ns_node_of(heap), -1);
    munmap(m, 4 * MiB);
    free(heap);
}

static void check_range(uintptr_t base, size_t size, uintptr_t value)
{
    uint64_t seed = base ^ 0x1234567;
    for (uintptr_t g = base; g < base + size; g += NS_SS_SIZE) {
        uintptr_t offs[] = {0, 1, 15, 16, 4095, 4096, 65535, 65536, 1 << 20, NS_SS_SIZE - 4096, NS_SS_SIZE - 1};
        for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++)
            assert_int_equal(addrmap_lookup(g + offs[i]), value);
        for (int i = 0; i < 200; i++)
            assert_int_equal(addrmap_lookup(g + rnd_next(&seed) % NS_SS_SIZE), value);
    }
    /* the granules just outside */
    assert_int_equal(addrmap_lookup(base - 1), 0);
    assert_int_equal(addrmap_lookup(base - NS_SS_SIZE), 0);
    assert_int_equal(addrmap_lookup(base + size), 0);
    assert_int_equal(addrmap_lookup(base + size + NS_SS_SIZE - 1), 0);
}

static void test_set_lookup_clear(void **state)
{
    uintptr_t base = SYN_BASE + 7 * NS_SS_SIZE;
    size_t size = 3 * NS_SS_SIZE;
    uintptr_t value = (uintptr_t)0x7f0000400000ull | NS_MAP_SS;
    for (uintptr_t a = base - NS_SS_SIZE; a < base + size + NS_SS_SIZE; a += NS_SS_SIZE)
        assert_int_equal(addrmap_lookup(a), 0);
    assert_int_equal(addrmap_set(base, size, value), 0);
    check_range(base, size, value);

    /* overwrite with another tag */
    uintptr_t v2 = (uintptr_t)0x55550000ull | NS_MAP_LARGE;
    assert_int_equal(addrmap_set(base, size, v2), 0);
    check_range(base, size, v2);

    /* clear part, then all */
    addrmap_clear(base + NS_SS_SIZE, NS_SS_SIZE);
    assert_int_equal(addrmap_lookup(base), v2);
    assert_int_equal(addrmap_lookup(base + NS_SS_SIZE), 0);
    assert_int_equal(addrmap_lookup(base + 2 * NS_SS_SIZE + 12345), v2);
    addrmap_clear(base, size);
    for (uintptr_t a = base - NS_SS_SIZE; a < base + size + NS_SS_SIZE; a += 4096)
        assert_int_equal(addrmap_lookup(a), 0);
}

static void test_single_granule(void **state)
{
    uintptr_t base = SYN_BASE + 100 * NS_SS_SIZE;
    assert_int_equal(addrmap_set(base, NS_SS_SIZE, 0xabcd00 | NS_MAP_SS), 0);
    check_range(base, NS_SS_SIZE, 0xabcd00 | NS_MAP_SS);
    addrmap_clear(base, NS_SS_SIZE);
    check_range(base, NS_SS_SIZE, 0);
}

static void test_range_across_leaves(void **state)
{
    uintptr_t boundary = SYN_BASE + 5 * LEAF_SPAN;
    uintptr_t base = boundary - 2 * NS_SS_SIZE;
    size_t size = 4 * NS_SS_SIZE;
    size_t r0 = (boundary - 1) >> (NS_SS_SHIFT + NS_MAP_LEAF_BITS), r1 = boundary >> (NS_SS_SHIFT + NS_MAP_LEAF_BITS);
    assert_int_equal(r1, r0 + 1);
    uintptr_t value = 0x123440000ull | NS_MAP_LARGE;
    assert_int_equal(addrmap_set(base, size, value), 0);
    assert_non_null(addrmap_root[r0]);
    assert_non_null(addrmap_root[r1]);
    check_range(base, size, value);
    assert_int_equal(addrmap_lookup(boundary - 1), value);
    assert_int_equal(addrmap_lookup(boundary), value);
    /* the leaves' other ends are untouched */
    assert_int_equal(addrmap_lookup(boundary - LEAF_SPAN), 0);
    assert_int_equal(addrmap_lookup(boundary + LEAF_SPAN - 1), 0);
    addrmap_clear(base, size);
    check_range(base, size, 0);
    assert_int_equal(addrmap_lookup(boundary), 0);
    assert_int_equal(addrmap_lookup(boundary - 1), 0);
}

static void test_outside_va_refused(void **state)
{
    uintptr_t top = (uintptr_t)1 << NS_VA_BITS;
    assert_int_equal(addrmap_set(top, NS_SS_SIZE, 0x1000 | NS_MAP_SS), ENOMEM);
    assert_int_equal(addrmap_set(top - NS_SS_SIZE, 2 * NS_SS_SIZE, 0x1000 | NS_MAP_SS), ENOMEM);
    assert_int_equal(addrmap_lookup(top - NS_SS_SIZE), 0);
    assert_int_equal(addrmap_lookup(top), 0);
}

static void test_real_blocks_registered(void **state)
{
    void *small = ns_malloc(64);
    void *large = ns_malloc(NS_SMALL_MAX + 1);
    assert_non_null(small);
    assert_non_null(large);
    uintptr_t e = addrmap_lookup((uintptr_t)small);
    assert_int_equal(e & NS_MAP_TAGS, NS_MAP_SS);
    assert_int_equal(e & ~NS_MAP_TAGS, (uintptr_t)small & ~NS_SS_MASK);
    e = addrmap_lookup((uintptr_t)large);
    assert_int_equal(e & NS_MAP_TAGS, NS_MAP_LARGE);
    assert_int_equal(((large_t *)(e & ~NS_MAP_TAGS))->base, (uintptr_t)large);
    ns_free(small);
    ns_free(large);
}

/* The covered range holds what the kernel hands out without a hint: fresh
 * mappings of several sizes (the kernel's own placement, top-down from
 * just below the top of the default address space) end below 2^NS_VA_BITS;
 * so does the kernel's page size agree with the allocator's. */
static void test_kernel_mappings_inside(void **state)
{
    static const size_t sizes[] = {4096, 2 * MiB, 64 * MiB, (size_t)1 << 30};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *m = mmap(NULL, sizes[i], PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        assert_true(m != MAP_FAILED);
        uintptr_t end = (uintptr_t)m + sizes[i] - 1;
        if (end >> NS_VA_BITS)
            fail_msg("mmap(%zu) = %p: ends above the %d bits the maps cover", sizes[i], m, NS_VA_BITS);
        munmap(m, sizes[i]);
    }
    int local;
    assert_true(((uintptr_t)&local >> NS_VA_BITS) == 0);       /* the stack: the top of the space */
    assert_int_equal(ns_page_size(), (size_t)sysconf(_SC_PAGESIZE));
}

/* A program may map above the covered range itself (x86-64 5-level paging,
 * arm64 52-bit: a hint above 2^47 / 2^48); such memory is not ours, and a
 * lookup anywhere up there answers 0 without touching memory. */
static void test_high_hint_not_ours(void **state)
{
    uintptr_t hint = (uintptr_t)1 << (NS_VA_BITS + 1);
    void *m = mmap((void *)hint, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    if ((uintptr_t)m >> NS_VA_BITS)
        print_message("the kernel mapped above 2^%d at %p\n", NS_VA_BITS, m);
    else
        print_message("the kernel kept the hint below 2^%d (%p): checking synthetic addresses only\n", NS_VA_BITS, m);
    assert_int_equal(addrmap_lookup((uintptr_t)m), 0);
    assert_int_equal(ssmap_tag((uintptr_t)m), 0);
    assert_int_equal(ns_node_of(m), -1);
    munmap(m, 2 * MiB);
    uintptr_t probes[] = {hint, hint + 12345, (uintptr_t)1 << 52, ((uintptr_t)1 << 57) - 1, (uintptr_t)1 << NS_VA_BITS};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        assert_int_equal(addrmap_lookup(probes[i]), 0);
        assert_int_equal(ssmap_tag(probes[i]), 0);
        assert_int_equal(ns_node_of((void *)probes[i]), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unregistered_is_zero),
        cmocka_unit_test(test_set_lookup_clear),
        cmocka_unit_test(test_single_granule),
        cmocka_unit_test(test_range_across_leaves),
        cmocka_unit_test(test_outside_va_refused),
        cmocka_unit_test(test_real_blocks_registered),
        cmocka_unit_test(test_kernel_mappings_inside),
        cmocka_unit_test(test_high_hint_not_ours),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
