/* hardened.c - the checks of hardened builds (NUMASLAB_HARDENED=ON).
 *
 * Every slab gets a secret (its lists' links are encoded with it, see
 * link_get/link_set in superslab.h) and a bitmap with one bit per block:
 * set while the block is free (in a thread cache, the slab's free list or
 * its remote stack), clear while the user holds it.  free() sets the bit
 * with an atomic fetch-or: finding it already set is a double free, for
 * every size class, whichever thread cached the block.  Handing a block out
 * clears it: finding it clear, or the block not a block of the expected
 * class, means a list was corrupted (a write after free), and is fatal.
 * Release builds compile none of this in: every caller tests the constant
 * ns_config_hardened first.
 */
#include "superslab.h"

uintptr_t hardened_key(const void *salt)
{
    static _Atomic uint64_t counter;
    uint64_t x = (uint64_t)block_mark ^ (uint64_t)(uintptr_t)salt ^
                 atomic_fetch_add_explicit(&counter, 0x9e3779b97f4a7c15u, memory_order_relaxed);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53u;
    x ^= x >> 33;
    return (uintptr_t)x | 1;
}

void hardened_slab_init(slab_t *s)
{
    s->key = hardened_key(s);
    size_t words = (s->capacity + 63) / 64;
    s->freemap = meta_alloc(words * sizeof(uint64_t));     /* zeroed; NULL: no checks */
}

void hardened_slab_fini(slab_t *s)
{
    if (s->freemap)
        meta_free((void *)s->freemap, ((s->capacity + 63) / 64) * sizeof(uint64_t));
    s->freemap = NULL;
}

void hardened_mark_free(slab_t *s, uint32_t first, uint32_t n)
{
    if (!s->freemap)
        return;
    for (uint32_t i = first; i < first + n; i++)
        atomic_fetch_or_explicit(&s->freemap[i / 64], 1ull << (i % 64), memory_order_relaxed);
}

/* index of the block p in its slab, or -1 if p is not a block start */
static long block_index(uintptr_t a, slab_t **out)
{
    if (!ssmap_tag(a))
        return -1;          /* not in a SuperSlab of ours */
    slab_t *s = slab_of(a);
    if (!slab_block_start(s, a))
        return -1;
    *out = s;
    return (long)slab_index(s, a);
}

bool hardened_on_free(void *p)
{
    slab_t *s;
    long i = block_index((uintptr_t)p, &s);
    if (i < 0 || !s->freemap)
        return true;        /* not a small block: the normal path judges it */
    uint64_t bit = 1ull << (i % 64);
    if (atomic_fetch_or_explicit(&s->freemap[i / 64], bit, memory_order_acq_rel) & bit) {
        error_invalid("free", p, "double free");
        return false;
    }
    return true;
}

void hardened_check_block(void *p, unsigned cls)
{
    slab_t *s;
    long i = block_index((uintptr_t)p, &s);
    if (i < 0 || s->cls != cls)
        error_fatal("heap corruption: a free list points outside its size class (write after free?)", p);
}

/* After the block left its list: a fork() taking a snapshot between the
 * two steps then sees a block that is free and on no list (lost, harmless),
 * never one that is on a list and marked in use. */
void hardened_on_alloc(void *p, unsigned cls)
{
    slab_t *s;
    long i = block_index((uintptr_t)p, &s);
    if (i < 0 || s->cls != cls)
        error_fatal("heap corruption: a free list points outside its size class (write after free?)", p);
    if (!s->freemap)
        return;
    uint64_t bit = 1ull << (i % 64);
    if (!(atomic_fetch_and_explicit(&s->freemap[i / 64], ~bit, memory_order_acq_rel) & bit))
        error_fatal("heap corruption: a free list holds a block that is in use (write after free?)", p);
}
