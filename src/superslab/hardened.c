/* hardened.c - the checks of hardened builds (NUMASLAB_HARDENED=ON).
 *
 * Every slab and every thread cache gets two random keys of its own,
 * drawn from getrandom (a pool per thread, refilled 256 bytes at a time):
 * nothing stored in a block, no address, no counter derives them, so
 * reading freed memory reveals no other list's key.  Links are encoded
 * with them (link_get/link_set in superslab.h), and every decoded link is
 * checked before it is followed: in the same slab for a slab's lists, of
 * the same class and node for a thread cache's.  Every slab also has a
 * bitmap with one bit per block:
 * set while the block is free (in a thread cache, the slab's free list or
 * its remote stack), clear while the user holds it.  free() sets the bit
 * with an atomic fetch-or: finding it already set is a double free, for
 * every size class, whichever thread cached the block.  Handing a block out
 * clears it: finding it clear, or the block not a block of the expected
 * class, means a list was corrupted (a write after free), and is fatal.
 * Release builds compile none of this in: every caller tests the constant
 * ns_config_hardened first.
 */
#include "../hugepage/hugepage.h"
#include "superslab.h"

static __thread uint64_t pool[32];
static __thread unsigned pool_left;

uint64_t hardened_random(void)
{
    if (pool_left == 0) {
        if (hp_getrandom(pool, sizeof pool) != 0) {
            /* no getrandom (old kernel, seccomp): a splitmix64 stream
             * from the clock, an address and the previous pool; weaker,
             * never constant */
            uint64_t x = pool[0] ^ clock_ms() ^ (uint64_t)(uintptr_t)&pool_left;
            for (unsigned i = 0; i < 32; i++) {
                uint64_t z = (x += 0x9e3779b97f4a7c15u);
                z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
                z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
                pool[i] = z ^ (z >> 31);
            }
        }
        pool_left = 32;
    }
    uint64_t v = pool[--pool_left];
    pool[pool_left] = 0;        /* a used key does not stay in the pool */
    return v;
}

void hardened_new_key(list_key_t *k)
{
    k->a = (uintptr_t)hardened_random();
    k->m = (uintptr_t)hardened_random() | 1;
    uintptr_t x = k->m;             /* Newton: x = m^-1 mod 2^64 (3 -> 6 -> ... -> 96 bits) */
    for (int i = 0; i < 5; i++)
        x *= 2 - k->m * x;
    k->minv = x;
}

void hardened_slab_init(slab_t *s)
{
    hardened_new_key(&s->key);
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

long hardened_check_block(void *p, unsigned cls, uint32_t node)
{
    slab_t *s;
    long i = block_index((uintptr_t)p, &s);
    if (i < 0 || s->cls != cls || s->node != node || (uint32_t)i >= s->bump)
        error_fatal("heap corruption: a free list points outside its size class (write after free?)", p);
    return i;
}

void *hardened_check_in_slab(const slab_t *s, void *next)
{
    uintptr_t a = (uintptr_t)next;
    if (next && (!slab_block_start(s, a) || slab_index(s, a) >= s->bump))
        error_fatal("heap corruption: a slab's list points outside the slab (write after free?)", next);
    return next;
}

/* After the block left its list: a fork() taking a snapshot between the
 * two steps then sees a block that is free and on no list (lost, harmless),
 * never one that is on a list and marked in use. */
void hardened_claim(void *p, long i)
{
    slab_t *s = slab_of((uintptr_t)p);
    if (!s->freemap)
        return;
    uint64_t bit = 1ull << (i % 64);
    if (!(atomic_fetch_and_explicit(&s->freemap[i / 64], ~bit, memory_order_acq_rel) & bit))
        error_fatal("heap corruption: a free list holds a block that is in use (write after free?)", p);
}

void hardened_on_alloc(void *p, unsigned cls)
{
    slab_t *s;
    long i = block_index((uintptr_t)p, &s);
    if (i < 0 || s->cls != cls)
        error_fatal("heap corruption: a free list points outside its size class (write after free?)", p);
    hardened_claim(p, i);
}
