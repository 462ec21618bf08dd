/* tiny.h - size classes and thread caches: the malloc and free fast paths.
 * The only header code outside src/tiny includes for these. */
#ifndef NS_TINY_H
#define NS_TINY_H

#include <stddef.h>
#include <stdint.h>

#include "../superslab/superslab.h"
#include "../types.h"

/* ----------------------------------------------------------- sizeclass.c */
#define NS_LUT_MAX 1024
extern const uint8_t sizeclass_lut[NS_LUT_MAX / 16 + 1];
extern const uint32_t sizeclass_size[NS_CLASSES];
extern const uint8_t sizeclass_units[NS_CLASSES];

/* Class of a request of n bytes, 0 < n... n <= NS_SMALL_MAX (0 -> class 0). */
static inline unsigned sizeclass_of(size_t n)
{
    if (NS_LIKELY(n <= NS_LUT_MAX))
        return sizeclass_lut[(n + 15) >> 4];
    size_t m = n - 1;
    unsigned e = 63u - (unsigned)__builtin_clzl(m);   /* e >= 10 */
    return 8u + (e - 7u) * 8u + (unsigned)((m >> (e - 3u)) & 7u);
}

/* ------------------------------------------------------------- tcache.c */
extern __thread tcache_t *ns_tc;
extern uintptr_t ns_key;         /* double-free key: word 1 = key ^ address */

void *tcache_alloc_slow(tcache_t *tc, unsigned cls);   /* NULL: ENOMEM */
void tcache_free_slow(tcache_t *tc, void *p);
void tcache_global_init(void);   /* start-up: the thread-exit key */
/* Is the small block p known to be free (in this thread's cache or its
 * slab's free list; any list in hardened builds)?  Slow; for realloc and
 * malloc_usable_size of a freed pointer. */
bool tcache_block_is_free(void *p);
tcache_t *tcache_get(void);      /* this thread's live cache, or NULL */
void tcache_flush_all(tcache_t *tc);
void tcache_thread_exit(void *tc);
void tcache_fork_child(void);
void tcache_lock_list(void);
void tcache_unlock_list(bool child);
uint64_t tcache_count(void);
/* allocations per class by all threads, live and exited (for statistics) */
void tcache_allocs(uint64_t out[NS_CLASSES]);

static inline void *tcache_alloc(unsigned cls)
{
    tcache_t *tc = ns_tc;
    tbin_t *b = &tc->bins[cls];
    void **p = b->head;
    if (NS_UNLIKELY(p == NULL))
        return tcache_alloc_slow(tc, cls);
    if (ns_config_hardened)
        hardened_check_block(p, cls);
    b->head = link_get(p, tc->key);
    b->count--;
    if (ns_config_hardened)
        hardened_on_alloc(p, cls);
    p[1] = NULL;        /* clear the double-free key */
    __atomic_store_n(&b->allocs, b->allocs + 1, __ATOMIC_RELAXED);   /* a plain add */
    return p;
}

/* free(): one map lookup, one validation of the offset inside the slab, one
 * push.  Everything unusual (not ours, large, interior, another node, a full
 * cache, a suspected double free, no cache yet) goes to tcache_free_slow. */
static inline void tcache_free(void *ptr)
{
    if (ns_config_hardened && !hardened_on_free(ptr))
        return;             /* a double free, reported */
    uintptr_t a = (uintptr_t)ptr;
    tcache_t *tc = ns_tc;
    if (NS_LIKELY(addrmap_lookup(a) & NS_MAP_SS)) {
        slab_t *s = slab_of(a);
        uint64_t off = a - s->start;
        uint64_t idx = (off * s->magic) >> 40;
        tbin_t *b = &tc->bins[s->cls];
        void **p = ptr;
        if (NS_LIKELY(off < s->span && idx * s->size == off && s->node == (uint32_t)tc->node &&
                      b->count < b->cap && p[1] != (void *)(ns_key ^ a))) {
            link_set(p, b->head, tc->key);
            p[1] = (void *)(ns_key ^ a);
            b->head = p;
            b->count++;
            return;
        }
    }
    tcache_free_slow(tc, ptr);
}

#endif
