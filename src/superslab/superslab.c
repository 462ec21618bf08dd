/* superslab.c - SuperSlab and slab lifecycle.
 *
 * A SuperSlab is mapped 2 MiB aligned (hugetlb pages, THP or base pages as
 * NUMASLAB_PAGES says, see src/hugepage), bound to its node before the
 * header is first written, and registered in the address map.
 * Its 32 units of 64 KiB are handed out as slabs of 1..16 units; unit 0
 * starts with the header, so only one-unit slabs use it (their blocks start
 * at NS_SS_HEADER, 8 KiB aligned).
 *
 * Locking: the free mask and unit_slab[] belong to the node pool's ss_lock;
 * a slab's fields to its bin lock (see types.h).  This file takes no lock:
 * node_pool.c calls it with the right one held.
 */
#include "../hugepage/hugepage.h"
#include "../numa/numa.h"
#include "../internal.h"
#include "superslab.h"

/* Covers free units and the header: no block can be freed into it (span 0). */
slab_t ss_no_slab;

superslab_t *superslab_new(uint32_t node)
{
    void *m;
    int mode = hp_mode(), backing;
    bool hugetlb = mode == HP_MODE_HUGETLB || (mode == HP_MODE_AUTO && topo_node_has_hugetlb(node));
    if (hp_ss_map(hugetlb, mode != HP_MODE_HUGETLB || ns_opt.hugetlb_fallback, &backing, &m) != 0)
        return NULL;
    topo_bind(m, NS_SS_SIZE, node);          /* before the first touch */
    if (ns_config_hardened) {                /* header and end guarded */
        hp_guard((char *)m + NS_SS_HEADER, 4096);
        hp_guard((char *)m + NS_SS_SIZE - NS_SS_TAIL_GUARD, NS_SS_TAIL_GUARD);
    }
    superslab_t *ss = m;
    ss->backing = (uint32_t)backing;
    for (unsigned u = 0; u < NS_UNITS; u++)
        ss->unit_slab[u] = &ss_no_slab;
    ss->node = node;
    ss->free_mask = 0xffffffffu;
    ss->used_units = 0;
    if (addrmap_set((uintptr_t)ss, NS_SS_SIZE, (uintptr_t)ss | NS_MAP_SS) != 0) {
        hp_ss_unmap(m);
        return NULL;
    }
    ssmap_set((uintptr_t)ss, ns_map_tag(node));
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
    s->pending_next = NULL;
    s->key = 0;
    s->freemap = NULL;
    if (ns_config_hardened)
        hardened_slab_init(s);
    atomic_store_explicit(&s->remote, 0, memory_order_relaxed);
    for (unsigned i = u; i < u + units; i++) {
        ss->unit_slab[i] = s;
        ss->fast[i] = (unit_fast_t){.start = s->start, .span = s->span, .divc = s->divc,
                                    .binoff = (uint32_t)(offsetof(tcache_t, bins) + cls * sizeof(tbin_t))};
    }
    ss->free_mask &= ~(((units == 32 ? 0u : 1u << units) - 1u) << u);
    ss->used_units += units;
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
    s->units = 0;
}
