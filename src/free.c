/* free.c - the freeing entry points: free (its slow path classifies the
 * pointer), what a pointer is (usable size, node), and giving memory back
 * to the OS (malloc_trim, ns_release). */
#include "api.h"

NS_API void ns_free(void *p)
{
    api_free(p);
}

void free_slow(void *ptr)
{
    if (!ptr)
        return;
    live_tick_free();
    uintptr_t a = (uintptr_t)ptr, e = addrmap_lookup(a);
    if (e & NS_MAP_LARGE) {
        if (NS_UNLIKELY(prof_on))
            prof_free(ptr);
        large_free((large_t *)(e & ~NS_MAP_TAGS), ptr);
        return;
    }
    if (!(e & NS_MAP_SS)) {
        error_invalid("free", ptr, "invalid pointer (not allocated by numaslab)");
        return;
    }
    slab_t *s = slab_of(a);
    if (!slab_block_start(s, a)) {
        error_invalid("free", ptr, "invalid pointer (inside numaslab memory but not the start of a block)");
        return;
    }
    if (NS_UNLIKELY(superslab_of(a)->prof_live[(a >> NS_UNIT_SHIFT) & (NS_UNITS - 1)]))
        prof_free(ptr);     /* a unit with sampled blocks (prof.c) */
    tcache_free_small(ptr, s);
}

__attribute__((noinline)) void free_slow_entry(void *ptr)
{
    free_slow(ptr);
    if (NS_UNLIKELY(decay_wanted()))
        decay_start_for(__builtin_return_address(0));
}

size_t free_block_size(const void *p, const char *fn)
{
    uintptr_t a = (uintptr_t)p, e = addrmap_lookup(a);
    if (e & NS_MAP_LARGE) {
        large_t *l = (large_t *)(e & ~NS_MAP_TAGS);
        if (l->base == a && l->state == NS_LARGE_LIVE)
            return l->usable;
        if (l->state == NS_LARGE_CACHED) {     /* freed (maybe merged with a neighbour) */
            error_invalid(fn, p, "pointer already freed");
            return 0;
        }
    } else if (e & NS_MAP_SS) {
        slab_t *s = slab_of(a);
        if (slab_block_start(s, a)) {
            if (NS_UNLIKELY(tcache_block_is_free((void *)p))) {
                error_invalid(fn, p, "pointer already freed");
                return 0;
            }
            return s->size;
        }
    }
    error_invalid(fn, p, "invalid pointer");
    return 0;
}

NS_API size_t ns_malloc_usable_size(const void *p)
{
    return p ? free_block_size(p, "malloc_usable_size") : 0;
}

NS_API int ns_node_of(const void *p)
{
    uintptr_t a = (uintptr_t)p, e = addrmap_lookup(a);
    if (e & NS_MAP_LARGE)
        return (int)((large_t *)(e & ~NS_MAP_TAGS))->node;
    if (e & NS_MAP_SS)
        return (int)superslab_of(a)->node;
    return -1;
}

/* The calling thread's cache goes back to its slabs; other threads' caches
 * stay (each holds at most NUMASLAB_TCACHE_BYTES per class, and gives
 * back what it does not use at its next capacity review or exit). */
NS_API size_t ns_release(void)
{
    if (!tcache_started())
        return 0;
    tcache_t *tc = tcache_get();
    size_t bytes = tc ? tcache_flush_all(tc) : 0;
    tcache_away_flush_idle(0);          /* other threads' parked remote frees */
    return bytes + node_heap_release_all(NULL);
}

NS_API int ns_malloc_trim(size_t pad)
{
    (void)pad;
    return ns_release() > 0;
}
