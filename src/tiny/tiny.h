/* tiny.h - size classes and thread caches: the malloc and free fast paths.
 * The only header code outside src/tiny includes for these. */
#ifndef NS_TINY_H
#define NS_TINY_H

#include <stddef.h>
#include <stdint.h>

#include "../superslab/superslab.h"
#include "../types.h"

/* ----------------------------------------------------------- sizeclass.c */
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
extern uintptr_t ns_key;         /* double-free mark: word 1 of a free block */

void *tcache_alloc_slow(tcache_t *tc, unsigned cls);   /* NULL: ENOMEM */
void tcache_free_slow(tcache_t *tc, void *p);
void tcache_global_init(void);   /* start-up: the thread-exit key */
/* Is the small block p known to be free (in this thread's cache or its
 * slab's free list; any list in hardened builds)?  Slow; for realloc and
 * malloc_usable_size of a freed pointer. */
bool tcache_block_is_free(void *p);
tcache_t *tcache_get(void);      /* this thread's live cache, or NULL */
size_t tcache_flush_all(tcache_t *tc);   /* bytes this unmapped */
void tcache_thread_exit(void *tc);
void tcache_fork_child(void);
void tcache_lock_list(void);
void tcache_unlock_list(bool child);
uint64_t tcache_count(void);
/* allocations per class by all threads, live and exited (for statistics) */
void tcache_allocs(uint64_t out[NS_CLASSES]);

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NS_TSAN 1
#endif
#endif

/* One more in a counter that only its owner thread writes and others read
 * (relaxed) for statistics: a single add to memory, no lock prefix.  C has
 * no such operation (a relaxed atomic load and store compile to three
 * instructions), so on x86-64 it is one line of assembly; an aligned 8-byte
 * add is never seen half done by a reader. */
static inline void ns_count_inc(uint64_t *c)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && !defined(NS_TSAN)
    __asm__("addq $1, %0" : "+m"(*c));
#else
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
#endif
}

static inline uint32_t tbin_count(const tbin_t *b)
{
    return b->cap - b->room;
}

/* Pop a block of b (not empty); word 1 (the double-free mark) cleared. */
static inline void *tbin_pop(tcache_t *tc, tbin_t *b, unsigned cls)
{
    void **p = b->head;
    if (ns_config_hardened)
        hardened_check_block(p, cls);
    b->head = link_get(p, tc->key);
    b->room++;
    if (ns_config_hardened)
        hardened_on_alloc(p, cls);
    p[1] = NULL;
    ns_count_inc(&b->allocs);
    return p;
}

static inline void *tcache_alloc(unsigned cls)
{
    tcache_t *tc = ns_tc;
    tbin_t *b = &tc->bins[cls];
    if (NS_UNLIKELY(b->head == NULL))
        return tcache_alloc_slow(tc, cls);
    return tbin_pop(tc, b, cls);
}

/* malloc(n) for n <= NS_LUT_MAX: the cache's direct table replaces the
 * class lookup (the class is only needed on the slow path). */
static inline void *tcache_alloc_direct(size_t n)
{
    tcache_t *tc = ns_tc;
    tbin_t *b = tc->direct[(n + 15) >> 4];
    if (NS_UNLIKELY(b->head == NULL))
        return tcache_alloc_slow(tc, sizeclass_lut[(n + 15) >> 4]);
    return tbin_pop(tc, b, ns_config_hardened ? (unsigned)(b - tc->bins) : 0);
}

/* free(): one byte of the SuperSlab map (ours, and this thread's node), the
 * slab of the unit, the block-start test, one push.  Everything unusual
 * (not ours, large, interior, another node, a full cache, a suspected
 * double free, no cache yet) goes to tcache_free_slow. */
static inline void tcache_free(void *ptr)
{
    if (ns_config_hardened && !hardened_on_free(ptr))
        return;             /* a double free, reported */
    uintptr_t a = (uintptr_t)ptr;
    tcache_t *tc = ns_tc;
    /* ssmap_tag(a) == tc->tag, written out: through the helper gcc loads
     * tc->tag before the range check, one instruction more */
    uintptr_t g = a >> NS_SS_SHIFT;
    if (NS_LIKELY(g < NS_SSMAP_SIZE && __atomic_load_n(&ns_ssmap[g], __ATOMIC_RELAXED) == tc->tag)) {
        const unit_fast_t *u = &superslab_of(a)->fast[(a >> NS_UNIT_SHIFT) & (NS_UNITS - 1)];
        uint64_t off = a - u->start;
        tbin_t *b = (tbin_t *)((char *)tc + u->binoff);
        void **p = ptr;
        uintptr_t mark = tc->mark;
        if (NS_LIKELY(off < u->span && off * u->divc < u->divc && b->room != 0 && (uintptr_t)p[1] != mark)) {
            link_set(p, b->head, tc->key);
            p[1] = (void *)mark;
            b->head = p;
            b->room--;
            return;
        }
    }
    tcache_free_slow(tc, ptr);
}

#endif
