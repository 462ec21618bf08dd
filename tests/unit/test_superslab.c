/* test_superslab.c - SuperSlab mapping, free-unit search, slab carving and
 * the block index arithmetic (magic division). */
#include "unit_util.h"

static int setup(void **state)
{
    unit_start();
    return 0;
}

static void test_new_superslab(void **state)
{
    superslab_t *ss = unit_superslab_new(0);
    assert_non_null(ss);
    uintptr_t a = (uintptr_t)ss;
    assert_int_equal(a & NS_SS_MASK, 0);
    assert_int_equal(addrmap_lookup(a), a | NS_MAP_SS);
    assert_int_equal(addrmap_lookup(a + NS_SS_SIZE - 1), a | NS_MAP_SS);
    assert_int_equal(addrmap_lookup(a + 12345), a | NS_MAP_SS);
    assert_int_equal(ssmap_tag(a + 12345), ssmap_node_tag(0));
    /* the neighbours may be SuperSlabs too: the byte map agrees with the map */
    assert_int_equal(ssmap_tag(a + NS_SS_SIZE) != 0, (addrmap_lookup(a + NS_SS_SIZE) & NS_MAP_SS) != 0);
    assert_int_equal(ssmap_tag(a - 1) != 0, (addrmap_lookup(a - 1) & NS_MAP_SS) != 0);
    assert_int_equal(ssmap_thread_tag(0), ssmap_node_tag(0));
    assert_int_equal(ssmap_thread_tag(253), ssmap_node_tag(253));
    assert_int_not_equal(ssmap_thread_tag(254), ssmap_node_tag(254));  /* slow path for huge node numbers */
    assert_int_not_equal(ssmap_thread_tag(-1), ssmap_node_tag(0));
    assert_int_equal(ssmap_tag(~(uintptr_t)0), 0);
    assert_int_equal(ss->free_mask, 0xffffffffu);
    assert_int_equal(ss->used_units, 0);
    assert_int_equal(ss->node, 0);
    for (unsigned u = 0; u < NS_UNITS; u++)
        assert_ptr_equal(ss->unit_slab[u], &ss_no_slab);
    /* every unit is usable memory */
    for (unsigned u = 0; u < NS_UNITS; u++)
        ((volatile char *)ss)[u * NS_UNIT_SIZE + NS_UNIT_SIZE - 1] = 1;
    assert_int_equal(ns_node_of((void *)(a + NS_SS_HEADER)), 0);
    superslab_unmap(ss);
    assert_int_equal(ssmap_tag(a), 0);
    assert_int_equal(addrmap_lookup(a), 0);
    assert_int_equal(addrmap_lookup(a + NS_SS_SIZE - 1), 0);
    assert_int_equal(ns_node_of((void *)(a + NS_SS_HEADER)), -1);
}

/* reference first fit */
static int ref_find(uint32_t mask, unsigned k, bool unit0_ok)
{
    for (unsigned u = unit0_ok ? 0 : 1; u + k <= NS_UNITS; u++) {
        bool ok = true;
        for (unsigned i = u; i < u + k; i++)
            if (!(mask & (1u << i)))
                ok = false;
        if (ok)
            return (int)u;
    }
    return -1;
}

static superslab_t fake;    /* only free_mask is read by superslab_find_units */

static void test_find_units(void **state)
{
    static const unsigned ks[] = {1, 2, 4, 8, 16};
    fake.free_mask = 0xffffffffu;
    assert_int_equal(superslab_find_units(&fake, 1, true), 0);
    assert_int_equal(superslab_find_units(&fake, 1, false), 1);
    assert_int_equal(superslab_find_units(&fake, 2, true), 0);
    assert_int_equal(superslab_find_units(&fake, 2, false), 1);
    assert_int_equal(superslab_find_units(&fake, 4, true), 0);
    assert_int_equal(superslab_find_units(&fake, 4, false), 1);
    assert_int_equal(superslab_find_units(&fake, 16, true), 0);
    assert_int_equal(superslab_find_units(&fake, 16, false), 1);

    fake.free_mask = 0;
    for (unsigned i = 0; i < 5; i++) {
        assert_int_equal(superslab_find_units(&fake, ks[i], true), -1);
        assert_int_equal(superslab_find_units(&fake, ks[i], false), -1);
    }
    fake.free_mask = 1;   /* only unit 0 */
    assert_int_equal(superslab_find_units(&fake, 1, true), 0);
    assert_int_equal(superslab_find_units(&fake, 1, false), -1);
    assert_int_equal(superslab_find_units(&fake, 2, true), -1);
    fake.free_mask = 0xffff0000u;   /* the top 16: exactly one 16-run at 16 */
    assert_int_equal(superslab_find_units(&fake, 16, true), 16);
    fake.free_mask = 0x7fff8000u;   /* 16 free units 15..30 */
    assert_int_equal(superslab_find_units(&fake, 16, false), 15);
    fake.free_mask = 0xfffe7fffu;   /* holes at 15, 16: runs 0..14 and 17..31 */
    assert_int_equal(superslab_find_units(&fake, 16, true), -1);
    assert_int_equal(superslab_find_units(&fake, 15, true), 0);
    assert_int_equal(superslab_find_units(&fake, 15, false), 17);
    fake.free_mask = 0x80000000u;   /* the last unit */
    assert_int_equal(superslab_find_units(&fake, 1, false), 31);
    assert_int_equal(superslab_find_units(&fake, 2, false), -1);

    uint64_t seed = 42;
    for (int t = 0; t < 20000; t++) {
        uint32_t m = (uint32_t)rnd_next(&seed);
        if (t & 1)
            m |= (uint32_t)rnd_next(&seed);    /* denser masks: longer runs */
        if (t & 2)
            m |= (uint32_t)rnd_next(&seed);
        fake.free_mask = m;
        for (unsigned i = 0; i < 5; i++)
            for (int z = 0; z < 2; z++) {
                int got = superslab_find_units(&fake, ks[i], z), want = ref_find(m, ks[i], z);
                if (got != want)
                    fail_msg("find_units(mask %#x, k %u, unit0_ok %d) = %d, want %d", m, ks[i], z, got, want);
            }
    }
}

static void check_slab(superslab_t *ss, slab_t *s, unsigned u, unsigned units, unsigned cls, uint32_t size)
{
    uintptr_t base = (uintptr_t)ss + ((uintptr_t)u << NS_UNIT_SHIFT);
    uintptr_t end = base + ((uintptr_t)units << NS_UNIT_SHIFT);
    uintptr_t start = u == 0 ? (uintptr_t)ss + NS_SS_HEADER : base;
    assert_ptr_equal(s, &ss->slabs[u]);
    assert_int_equal(s->start, start);
    assert_int_equal(s->size, size);
    assert_int_equal(s->capacity, (end - start) / size);
    assert_int_equal(s->span, (uint64_t)s->capacity * size);
    assert_true(s->start + s->span <= end);
    assert_true(end - (s->start + s->span) < size);
    assert_int_equal(s->units, units);
    assert_int_equal(s->first_unit, u);
    assert_int_equal(s->cls, cls);
    assert_int_equal(s->node, ss->node);
    assert_int_equal(s->bump, 0);
    assert_int_equal(s->used, 0);
    assert_null(s->free);
    assert_int_equal(atomic_load(&s->remote), 0);
    for (unsigned i = u; i < u + units; i++) {
        assert_ptr_equal(ss->unit_slab[i], s);
        assert_false(ss->free_mask & (1u << i));
    }
    /* slab_of() for addresses anywhere in the slab */
    assert_ptr_equal(slab_of(start), s);
    assert_ptr_equal(slab_of(end - 1), s);
    /* magic division: exact for every offset of the slab */
    for (uint64_t off = 0; off < s->span; off++) {
        uint64_t q = (off * s->magic) >> 40;
        if (q != off / size)
            fail_msg("class %u size %u: (off %lu * magic) >> 40 = %lu, want %lu", cls, size, (unsigned long)off,
                     (unsigned long)q, (unsigned long)(off / size));
    }
    /* block-start test (Lemire): exact for every offset, false before the
     * start (unit 0: the header) and past the span; the units' fast copies
     * (what free() reads) agree with the slab */
    for (uint64_t off = 0; off < s->span; off++)
        if (slab_block_start(s, start + off) != (off % size == 0))
            fail_msg("class %u size %u: slab_block_start(off %lu) wrong", cls, size, (unsigned long)off);
    for (uint64_t k = 1; k <= NS_SS_HEADER; k++)
        assert_false(slab_block_start(s, start - k));
    for (uint64_t k = 0; k < 2 * size; k++)
        assert_false(slab_block_start(s, start + s->span + k));
    for (unsigned i = u; i < u + units; i++) {
        const unit_fast_t *f = &ss->fast[i];
        assert_ptr_equal(f, &superslab_of(base + ((uintptr_t)(i - u) << NS_UNIT_SHIFT))->fast[i]);
        assert_int_equal(f->start, s->start);
        assert_int_equal(f->span, s->span);
        assert_int_equal(f->divc, s->divc);
        assert_int_equal(f->binoff, offsetof(tcache_t, bins) + cls * sizeof(tbin_t));
    }
    /* block index: nothing carved yet */
    assert_int_equal(slab_block_index(s, start), -1);
    assert_int_equal(slab_block_index(s, start + size), -1);
    /* carve everything (white box: bump) */
    s->bump = s->capacity;
    for (uint32_t i = 0; i < s->capacity; i++) {
        uintptr_t b = start + (uintptr_t)i * size;
        assert_int_equal(slab_block_index(s, b), (long)i);
        assert_int_equal(slab_block_index(s, b + size - 1), -1);
        if (size > 16)
            assert_int_equal(slab_block_index(s, b + 16), -1);
        assert_int_equal(slab_block_index(s, b + 8), -1);
    }
    assert_int_equal(slab_block_index(s, start + s->span), -1);
    assert_int_equal(slab_block_index(s, start - size), -1);
    assert_int_equal(slab_block_index(s, start - 1), -1);
    assert_int_equal(slab_block_index(s, (uintptr_t)ss), -1);
    /* half carved */
    s->bump = s->capacity / 2;
    if (s->bump)
        assert_int_equal(slab_block_index(s, start + (uintptr_t)(s->bump - 1) * size), (long)(s->bump - 1));
    assert_int_equal(slab_block_index(s, start + (uintptr_t)s->bump * size), -1);
    s->bump = 0;
}

static void test_carve_every_class(void **state)
{
    superslab_t *ss = unit_superslab_new(0);
    assert_non_null(ss);
    for (unsigned c = 0; c < NS_CLASSES; c++) {
        unsigned units = sizeclass_units[c];
        bool unit0_ok = units == 1 && sizeclass_size[c] * 4 <= NS_UNIT_SIZE - NS_SS_HEADER;   /* node_pool.c */
        int u = superslab_find_units(ss, units, unit0_ok);
        assert_true(u >= 0);
        if (unit0_ok)
            assert_int_equal(u, 0);
        else
            assert_int_equal(u, 1);
        slab_t *s = slab_carve(ss, (unsigned)u, units, c, sizeclass_size[c]);
        assert_int_equal(ss->used_units, units);
        assert_int_equal(ss->free_mask, ~(((units == 32 ? 0u : 1u << units) - 1u) << u));
        check_slab(ss, s, (unsigned)u, units, c, sizeclass_size[c]);
        if (u == 0) {
            assert_int_equal(s->start, (uintptr_t)ss + NS_SS_HEADER);
            assert_int_equal(s->start % 4096, 0);
        }
        slab_uncarve(ss, s);
        assert_int_equal(s->units, 0);
        assert_int_equal(ss->used_units, 0);
        assert_int_equal(ss->free_mask, 0xffffffffu);
        for (unsigned i = 0; i < NS_UNITS; i++) {
            assert_ptr_equal(ss->unit_slab[i], &ss_no_slab);
            assert_int_equal(ss->fast[i].span, 0);  /* free() finds no block start */
        }
        /* the same class carved away from unit 0 too */
        if (unit0_ok) {
            s = slab_carve(ss, 9, 1, c, sizeclass_size[c]);
            check_slab(ss, s, 9, 1, c, sizeclass_size[c]);
            slab_uncarve(ss, s);
        }
    }
    superslab_unmap(ss);
}

static void test_carve_many(void **state)
{
    superslab_t *ss = unit_superslab_new(0);
    assert_non_null(ss);
    /* unit 0 (1 unit), 1..16 (16 units), 17..18, 19..22, 23..30, 31 */
    slab_t *a = slab_carve(ss, 0, 1, 3, 64);
    assert_int_equal(superslab_find_units(ss, 16, false), 1);
    slab_t *b = slab_carve(ss, 1, 16, 95, 262144);   /* any run length works */
    assert_int_equal(superslab_find_units(ss, 2, false), 17);
    slab_t *c = slab_carve(ss, 17, 2, 60, 13312);
    slab_t *d = slab_carve(ss, 19, 4, 70, 30720);
    slab_t *e = slab_carve(ss, 23, 8, 77, 57344);
    assert_int_equal(superslab_find_units(ss, 2, false), -1);
    assert_int_equal(superslab_find_units(ss, 1, true), 31);
    slab_t *f = slab_carve(ss, 31, 1, 31, 1024);
    assert_int_equal(ss->free_mask, 0);
    assert_int_equal(ss->used_units, 32);
    assert_int_equal(superslab_find_units(ss, 1, true), -1);
    slab_t *all[] = {a, b, c, d, e, f};
    unsigned firsts[] = {0, 1, 17, 19, 23, 31}, lens[] = {1, 16, 2, 4, 8, 1};
    for (unsigned i = 0; i < 6; i++)
        for (unsigned u = firsts[i]; u < firsts[i] + lens[i]; u++)
            assert_ptr_equal(ss->unit_slab[u], all[i]);
    assert_int_equal(b->capacity, 4);
    assert_int_equal(a->capacity, (NS_UNIT_SIZE - NS_SS_HEADER) / 64);
    /* uncarving the middle slab frees exactly its units */
    slab_uncarve(ss, d);
    assert_int_equal(ss->free_mask, 0xfu << 19);
    assert_int_equal(ss->used_units, 28);
    assert_int_equal(superslab_find_units(ss, 4, false), 19);
    assert_int_equal(superslab_find_units(ss, 8, false), -1);
    for (unsigned u = 19; u < 23; u++)
        assert_ptr_equal(ss->unit_slab[u], &ss_no_slab);
    assert_ptr_equal(ss->unit_slab[18], c);
    assert_ptr_equal(ss->unit_slab[23], e);
    slab_uncarve(ss, b);
    assert_int_equal(ss->free_mask, (0xffffu << 1) | (0xfu << 19));
    slab_uncarve(ss, a);
    slab_uncarve(ss, c);
    slab_uncarve(ss, e);
    slab_uncarve(ss, f);
    assert_int_equal(ss->free_mask, 0xffffffffu);
    assert_int_equal(ss->used_units, 0);
    superslab_unmap(ss);
}

static void test_block_index_uncarved_units(void **state)
{
    superslab_t *ss = unit_superslab_new(0);
    assert_non_null(ss);
    slab_t *s = slab_carve(ss, 4, 1, 7, 128);
    s->bump = s->capacity;
    /* the header and free units map to ss_no_slab: span 0, nothing is a block */
    assert_int_equal(ss_no_slab.span, 0);
    assert_ptr_equal(slab_of((uintptr_t)ss + 100), &ss_no_slab);
    assert_int_equal(slab_block_index(slab_of((uintptr_t)ss + NS_SS_HEADER), (uintptr_t)ss + NS_SS_HEADER), -1);
    assert_int_equal(slab_block_index(slab_of((uintptr_t)ss + 5 * NS_UNIT_SIZE), (uintptr_t)ss + 5 * NS_UNIT_SIZE),
                     -1);
    assert_int_equal(slab_block_index(s, (uintptr_t)ss + 4 * NS_UNIT_SIZE + 256), 2);
    slab_uncarve(ss, s);
    assert_ptr_equal(slab_of((uintptr_t)ss + 4 * NS_UNIT_SIZE), &ss_no_slab);
    superslab_unmap(ss);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_superslab),
        cmocka_unit_test(test_find_units),
        cmocka_unit_test(test_carve_every_class),
        cmocka_unit_test(test_carve_many),
        cmocka_unit_test(test_block_index_uncarved_units),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
