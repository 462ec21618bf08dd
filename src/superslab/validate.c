/* validate.c - full checks of a slab and of a SuperSlab.
 *
 * Debug builds run them at every state change of a slab or SuperSlab
 * (carve, uncarve, refill, flush, drain: numa/bin.c) so that a broken
 * invariant is reported where it broke; white-box tests call them
 * directly.  Each check is O(size of the thing checked) and reads nothing
 * another thread may be writing but slab.remote's bits.  A failure is
 * fatal, with the invariant that failed.
 */
#include "superslab.h"

/* The largest capacity a slab can have (16-byte blocks in 16 units). */
#define MAX_CAPACITY (16 * NS_UNIT_SIZE / 16)

void slab_validate(const slab_t *s)
{
    const superslab_t *ss = (const superslab_t *)(s->start & ~(uintptr_t)NS_SS_MASK);
    NS_CHECK(s->units >= 1 && s->units <= 16 && s->first_unit + s->units <= NS_UNITS, "slab length", s);
    NS_CHECK(s == &ss->slabs[s->first_unit], "slab record at its first unit", s);
    NS_CHECK(s->cls < NS_CLASSES && s->size == sizeclass_size[s->cls], "slab class and size", s);
    NS_CHECK(s->node == ss->node, "slab node is its SuperSlab's", s);
    NS_CHECK(s->capacity > 0 && s->capacity <= MAX_CAPACITY && s->span == (uint64_t)s->capacity * s->size, "slab span",
          s);
    uintptr_t unit_start = (uintptr_t)ss + ((uintptr_t)s->first_unit << NS_UNIT_SHIFT);
    NS_CHECK(s->start >= unit_start && s->start + s->span <= unit_start + ((uintptr_t)s->units << NS_UNIT_SHIFT),
          "blocks inside the slab's units", s);
    for (unsigned u = s->first_unit; u < s->first_unit + s->units; u++) {
        const unit_fast_t *f = &ss->fast[u];
        NS_CHECK(ss->unit_slab[u] == s, "unit points to its slab", s);
        NS_CHECK(f->start == s->start && (f->span == s->span || (f->span == 0 && ss->prof_live[u])) &&
                  f->divc == s->divc &&
                  f->binoff == (uint32_t)s->cls << NS_TBIN_SHIFT,
              "unit copy of the slab fields", s);
        NS_CHECK(!(ss->free_mask & (1u << u)), "a slab's unit is not free", s);
    }
    NS_CHECK(s->bump <= s->capacity && s->used <= s->bump, "used <= bump <= capacity", s);

    /* the free list: blocks of this slab, carved, each once, and exactly
     * bump - used of them */
    uint64_t seen[MAX_CAPACITY / 64] = {0};
    uint32_t n = 0;
    for (void *b = s->free; b; b = link_get(b, &s->key)) {
        uintptr_t a = (uintptr_t)b;
        NS_CHECK(slab_block_start(s, a), "a free-list block is a block start of its slab", b);
        uint64_t i = slab_index(s, a);
        NS_CHECK(i < s->bump, "a free-list block was carved", b);
        NS_CHECK(!(seen[i / 64] & (1ull << (i % 64))), "a block is on its slab's free list once", b);
        seen[i / 64] |= 1ull << (i % 64);
        NS_CHECK(ns_config_hardened || block_marked_free(b), "a free-list block carries the free mark", b);
        if (ns_config_hardened && s->freemap)
            NS_CHECK(atomic_load_explicit(&s->freemap[i / 64], memory_order_relaxed) & (1ull << (i % 64)),
                  "a free-list block is marked free", b);
        n++;
        NS_CHECK(n <= s->bump, "free list longer than the carved blocks (a cycle?)", b);
    }
    NS_CHECK(n == s->bump - s->used, "used == bump - |free|", s);
}

void superslab_validate(const superslab_t *ss)
{
    uintptr_t a = (uintptr_t)ss;
    NS_CHECK((a & NS_SS_MASK) == 0, "SuperSlab alignment", ss);
    NS_CHECK(addrmap_lookup(a) == (a | NS_MAP_SS), "address map entry of a SuperSlab", ss);
    NS_CHECK(ssmap_tag(a) == ssmap_node_tag(ss->node), "byte map tag is the SuperSlab's node", ss);
    NS_CHECK(ss->used_units == (uint32_t)__builtin_popcount(~ss->free_mask), "used_units == units not free", ss);
    for (unsigned u = 0; u < NS_UNITS; u++) {
        const slab_t *s = ss->unit_slab[u];
        if (ss->free_mask & (1u << u)) {
            NS_CHECK(s == &ss_no_slab && ss->fast[u].span == 0, "a free unit has no slab", ss);
            continue;
        }
        NS_CHECK(s != &ss_no_slab && s->units && s->first_unit <= u && u < s->first_unit + s->units,
              "a used unit is covered by a slab", ss);
    }
}
