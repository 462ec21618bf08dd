/* superslab.c - SuperSlab and slab lifecycle, and the free mark.
 *
 * A SuperSlab is mapped 2 MiB aligned (hugetlb pages, THP or base pages as
 * NUMASLAB_PAGES says, see src/hugepage) and bound to its node by the node
 * heap (numa/node_pool.c) before superslab_init first writes its header
 * and registers it in the address map.
 * Its 32 units of 64 KiB are handed out as slabs of 1..16 units; unit 0
 * starts with the header, so only one-unit slabs use it (their blocks start
 * at NS_SS_HEADER, 8 KiB aligned).
 *
 * Locking: the free mask and unit_slab[] belong to the node pool's ss_lock;
 * a slab's fields to its bin lock (see types.h).  This file takes no lock:
 * node_pool.c calls it with the right one held.
 */
#include <sys/auxv.h>

#include "../hugepage/hugepage.h"
#include "superslab.h"

/* Covers free units and the header: no block can be freed into it (span 0). */
slab_t ss_no_slab;
uintptr_t block_mark;

/* The free mark: random per process (the auxiliary vector's 16 random
 * bytes, mixed with an address and the clock), odd so that it never
 * equals a pointer. */
void superslab_global_init(void)
{
    uintptr_t k = 0;
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    if (r)
        for (unsigned i = 0; i < sizeof k; i++)
            k = (k << 8) | r[i + 8];
    k ^= (uintptr_t)&k * 0x9e3779b97f4a7c15u ^ (uintptr_t)clock_ms();
    block_mark = k | 1;
}

superslab_t *superslab_init(void *m, uint32_t node, int backing)
{
    /* hardened: header and end guarded, on 4 KiB pages only: the guards are
     * 4 KiB inside the 64 KiB unit layout, which a 16 or 64 KiB page cannot
     * protect alone (README "Architectures") */
    if (ns_config_hardened && ns_page_size() == NS_PAGE_MIN) {
        hp_guard((char *)m + NS_SS_HEADER, NS_PAGE_MIN);
        hp_guard((char *)m + NS_SS_SIZE - NS_SS_TAIL_GUARD, NS_SS_TAIL_GUARD);
    }
    superslab_t *ss = m;
    ss->backing = (uint32_t)backing;
    for (unsigned u = 0; u < NS_UNITS; u++)
        ss->unit_slab[u] = &ss_no_slab;
    ss->node = node;
    ss->free_mask = 0xffffffffu;
    ss->used_units = 0;
    ss->split = 0;
    atomic_store_explicit(&ss->carved_bytes, 0, memory_order_relaxed);
    if (addrmap_set((uintptr_t)ss, NS_SS_SIZE, (uintptr_t)ss | NS_MAP_SS) != 0)
        return NULL;
    ssmap_set((uintptr_t)ss, ssmap_node_tag(node));
    if (ns_config_debug)
        superslab_validate(ss);
    return ss;
}

void superslab_unmap(superslab_t *ss)
{
    ssmap_set((uintptr_t)ss, 0);
    addrmap_clear((uintptr_t)ss, NS_SS_SIZE);
    hp_ss_unmap(ss);
}

/* First unit u such that units u..u+k-1 are free, or -1. */
int superslab_find_units(const superslab_t *ss, unsigned k, bool unit0_ok)
{
    uint32_t mask = ss->free_mask;
    if (!unit0_ok)
        mask &= ~1u;
    uint32_t runs = mask;
    for (unsigned i = 1; i < k && runs; i++)
        runs &= mask >> i;
    return runs ? __builtin_ctz(runs) : -1;
}

int superslab_find_slab(const superslab_t *ss, unsigned cls)
{
    unsigned units = sizeclass_units[cls];
    uint32_t size = sizeclass_size[cls];
    /* unit 0 starts with the header: only for one-unit classes that still
     * get several blocks in what is left of it */
    bool unit0_ok = units == 1 && size * 4 <= NS_UNIT_SIZE - NS_UNIT0_START;
    int u = superslab_find_units(ss, units, unit0_ok);
    /* hardened: a run ending at the SuperSlab's end loses its guard page;
     * it must still hold a block */
    if (u + units == NS_UNITS && ((size_t)units << NS_UNIT_SHIFT) - NS_SS_TAIL_GUARD < size) {
        superslab_t tmp = {.free_mask = ss->free_mask & ~(1u << u)};
        u = superslab_find_units(&tmp, units, unit0_ok);
        ns_assert(u < 0 || u + units < NS_UNITS);
    }
    return u;
}

slab_t *slab_carve(superslab_t *ss, unsigned u, unsigned units, unsigned cls, uint32_t size)
{
    ns_assert(u + units <= NS_UNITS && (u > 0 || units == 1));
    slab_t *s = &ss->slabs[u];
    uintptr_t base = (uintptr_t)ss + ((uintptr_t)u << NS_UNIT_SHIFT);
    uintptr_t start = u == 0 ? base + NS_UNIT0_START : base;
    uintptr_t end = base + ((size_t)units << NS_UNIT_SHIFT);
    if (end == (uintptr_t)ss + NS_SS_SIZE)
        end -= NS_SS_TAIL_GUARD;
    size_t bytes = end - start;
    s->start = start;
    s->size = size;
    s->capacity = (uint32_t)(bytes / size);
    ns_assert(s->capacity <= NS_REMOTE_COUNT_MAX);     /* its remote stack's length fits */
    s->span = s->capacity * size;
    s->magic = ((uint64_t)1 << 40) / size + 1;
    s->divc = UINT64_MAX / size + 1;
    s->node = (uint16_t)ss->node;
    s->cls = (uint8_t)cls;
    s->units = (uint8_t)units;
    s->first_unit = (uint8_t)u;
    s->free = NULL;
    s->bump = 0;
    s->used = 0;
    s->prev = s->next = NULL;
    s->in_partial = 0;
    s->on = 0;
    atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
    s->pending_next = NULL;
    s->key = (list_key_t){0, 0, 0};
    s->freemap = NULL;
    if (ns_config_hardened)
        hardened_slab_init(s);
    atomic_store_explicit(&s->remote, 0, memory_order_relaxed);
    for (unsigned i = u; i < u + units; i++) {
        ss->unit_slab[i] = s;
        ss->fast[i] = (unit_fast_t){.start = s->start, .span = s->span, .divc = s->divc,
                                    .binoff = (uint32_t)cls << NS_TBIN_SHIFT};
    }
    ss->free_mask &= ~(((units == 32 ? 0u : 1u << units) - 1u) << u);
    ss->used_units += units;
    if (ns_config_debug) {
        slab_validate(s);
        superslab_validate(ss);
    }
    return s;
}

void slab_uncarve(superslab_t *ss, slab_t *s)
{
    if (ns_config_hardened)
        hardened_slab_fini(s);
    unsigned u = s->first_unit, units = s->units;
    for (unsigned i = u; i < u + units; i++) {
        ss->unit_slab[i] = &ss_no_slab;
        ss->fast[i] = (unit_fast_t){0};
    }
    ss->free_mask |= ((units == 32 ? 0u : 1u << units) - 1u) << u;
    ss->used_units -= units;
    atomic_fetch_sub_explicit(&ss->carved_bytes, (size_t)s->bump * s->size, memory_order_relaxed);
    s->units = 0;
    if (ns_config_debug)
        superslab_validate(ss);
}
