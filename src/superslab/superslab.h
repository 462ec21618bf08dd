/* superslab.h - SuperSlabs and slabs, the address map, large mappings, the
 * remote-free stacks and the metadata allocator.  The only header code
 * outside src/superslab includes for these. */
#ifndef NS_SUPERSLAB_H
#define NS_SUPERSLAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../types.h"

/* ------------------------------------------------------------ addrmap.c
 * Two levels: a root of 2^13 leaf pointers (static, zero until used) and
 * leaves of 2^13 entries, one per 2 MiB granule (64 KiB each, mapped when a
 * granule in their 16 GiB range first becomes ours).  Lookup is two loads
 * and never fails or allocates; "not ours" is 0. */
#define NS_MAP_LEAF_BITS 13
#define NS_MAP_ROOT_BITS (NS_VA_BITS - NS_SS_SHIFT - NS_MAP_LEAF_BITS)
extern uintptr_t *addrmap_root[(size_t)1 << NS_MAP_ROOT_BITS];

static inline uintptr_t addrmap_lookup(uintptr_t a)
{
    if (NS_UNLIKELY(a >> NS_VA_BITS))
        return 0;
    uintptr_t *leaf = __atomic_load_n(&addrmap_root[a >> (NS_SS_SHIFT + NS_MAP_LEAF_BITS)], __ATOMIC_ACQUIRE);
    if (NS_UNLIKELY(leaf == NULL))
        return 0;
    return __atomic_load_n(&leaf[(a >> NS_SS_SHIFT) & (((uintptr_t)1 << NS_MAP_LEAF_BITS) - 1)], __ATOMIC_RELAXED);
}
/* The SuperSlab map, for free()'s fast path: one byte per 2 MiB granule of
 * the 47-bit space (64 MiB of untouched zero pages until used), the node tag
 * of the SuperSlab of ours that lies there, 0 elsewhere.  A thread's cache
 * holds its node's tag (ns_thread_tag), so one byte compare answers "a
 * SuperSlab of ours, on my node".  Nodes past 253 share map tag 255 and no
 * thread tag matches it: their frees take the slow path. */
#define NS_SSMAP_SIZE ((size_t)1 << (NS_VA_BITS - NS_SS_SHIFT))
extern uint8_t ns_ssmap[NS_SSMAP_SIZE];
static inline uint8_t ns_map_tag(uint32_t node) { return (uint8_t)(node < 254 ? node + 1 : 255); }
static inline uint32_t ns_thread_tag(int32_t node) { return node >= 0 && node < 254 ? (uint32_t)node + 1 : 256; }
/* The map tag of the SuperSlab a lies in, 0 if none of ours. */
static inline uint32_t ssmap_tag(uintptr_t a)
{
    uintptr_t g = a >> NS_SS_SHIFT;
    return g < NS_SSMAP_SIZE ? __atomic_load_n(&ns_ssmap[g], __ATOMIC_RELAXED) : 0;
}
void ssmap_set(uintptr_t ss, uint8_t tag);

/* Map every granule of [base, base+size) to value; 0 or ENOMEM. */
int addrmap_set(uintptr_t base, size_t size, uintptr_t value);
void addrmap_clear(uintptr_t base, size_t size);
void addrmap_lock(void);
void addrmap_unlock(bool child);   /* child: after fork, re-initialise */

/* ------------------------------------------------------------ free links
 * Word 0 of a free block links it to the next one.  Hardened builds store
 * next ^ key ^ (address >> 4), with the key of the list's owner (a slab for
 * its free list and remote stack, a thread for its cache), so that a write
 * after free cannot point the list at an address of the attacker's choice;
 * other builds store next as it is (the key is never read). */
static inline void *link_get(const void *blk, uintptr_t key)
{
    uintptr_t v = *(const uintptr_t *)blk;
    if (ns_config_hardened)
        v ^= key ^ ((uintptr_t)blk >> 4);
    return (void *)v;
}
static inline void link_set(void *blk, const void *next, uintptr_t key)
{
    uintptr_t v = (uintptr_t)next;
    if (ns_config_hardened)
        v ^= key ^ ((uintptr_t)blk >> 4);
    *(uintptr_t *)blk = v;
}

/* ------------------------------------------------------------- meta.c
 * Internal metadata (thread caches, large_t, node pools): fixed-size objects
 * from page-backed chunks, recycled through a free list per size.  Zeroed.
 * Never calls malloc.  NULL when the OS refuses memory. */
void *meta_alloc(size_t size);
void meta_free(void *p, size_t size);
void meta_lock_all(void);
void meta_unlock_all(bool child);

/* ---------------------------------------------------------- superslab.c */
extern slab_t ss_no_slab;          /* covers free units: capacity 0 */

static inline superslab_t *superslab_of(uintptr_t a)
{
    return (superslab_t *)(a & ~(uintptr_t)NS_SS_MASK);
}
static inline slab_t *slab_of(uintptr_t a)
{
    return superslab_of(a)->unit_slab[(a >> NS_UNIT_SHIFT) & (NS_UNITS - 1)];
}
/* Is a the start of one of s's blocks (carved or not)?  off < span < 2^32,
 * so off % size == 0 <=> off * divc < divc (mod 2^64), with divc =
 * (2^64 - 1) / size + 1 (Lemire, Kaser, Kurz: "Faster remainder by direct
 * computation", 2019): one multiply, no division. */
static inline bool slab_block_start(const slab_t *s, uintptr_t a)
{
    uint64_t off = a - s->start;
    return off < s->span && off * s->divc < s->divc;
}
/* Index of the block starting at a (slab_block_start(s, a) holds). */
static inline uint64_t slab_index(const slab_t *s, uintptr_t a)
{
    return ((a - s->start) * s->magic) >> 40;
}
/* Block index of address a in slab s, or -1 if a is not a carved block's
 * start.  Caller holds the bin lock (reads bump). */
static inline long slab_block_index(const slab_t *s, uintptr_t a)
{
    if (!slab_block_start(s, a) || slab_index(s, a) >= s->bump)
        return -1;
    return (long)slab_index(s, a);
}

superslab_t *superslab_new(uint32_t node);        /* NULL: ENOMEM   */
void superslab_unmap(superslab_t *ss);
int superslab_find_units(const superslab_t *ss, unsigned k, bool unit0_ok); /* -1 */
slab_t *slab_carve(superslab_t *ss, unsigned u, unsigned units, unsigned cls, uint32_t size);
void slab_uncarve(superslab_t *ss, slab_t *s);

/* ------------------------------------------------------------- remote.c
 * Lock-free stack per slab of blocks freed by threads of other nodes.
 * remote_push: any thread; the first push after a drain by the owner
 * (NOTIFIED clear) also pushes the slab onto bin->pending.
 * remote_take: the bin lock holder; `clear` only for a slab just popped
 * from bin->pending (see remote.c for why).  Returns the list, *n = count. */
void remote_push(slab_t *s, void *block, bin_t *bin);
void *remote_take(slab_t *s, bool clear, void **tail, uint32_t *n);
slab_t *remote_take_pending(bin_t *bin);

/* ----------------------------------------------------------- hardened.c
 * Only called when ns_config_hardened.  hardened_on_free: at the start of
 * every free; false (after reporting) for a double free of a small block.
 * hardened_check_block then hardened_on_alloc: for every small block handed
 * to the user, before reading its link and after taking it off its list; a
 * block that is not a free block of its class means a corrupted list:
 * fatal. */
bool hardened_on_free(void *p);
void hardened_check_block(void *p, unsigned cls);   /* before reading its link */
void hardened_on_alloc(void *p, unsigned cls);      /* after it left its list */
void hardened_slab_init(slab_t *s);     /* carve: key and bitmap (or NULL) */
void hardened_slab_fini(slab_t *s);
void hardened_mark_free(slab_t *s, uint32_t first, uint32_t n);  /* carved blocks */
uintptr_t hardened_key(const void *salt);

/* -------------------------------------------------------------- large.c */
void *large_alloc(size_t size, size_t align, uint32_t node, bool zero);
void large_free(large_t *l, void *p);   /* reports invalid / double frees */
/* try to resize in place: 0 or -1 (caller moves) */
int large_resize(large_t *l, size_t size);
size_t large_release_cached(node_pool_t *pool, uint64_t now_ms, bool all);

#endif
