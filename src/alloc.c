/* alloc.c - the allocation entry points: malloc, calloc, realloc, the
 * aligned family, ns_malloc_onnode.  errno is set here, at the boundary.
 *
 * Aligned requests up to 64 KiB come from a size class whose size is a
 * multiple of the alignment: blocks start at slab starts (64 KiB aligned, or
 * 8 KiB in unit 0, which only classes up to 8 KiB use) plus multiples of the
 * class size, so they are aligned without any header or offset.  Larger
 * alignments use a large mapping (2 MiB aligned, or more).
 */
#include <errno.h>
#include <string.h>

#include "api.h"

static uint32_t current_node(void)
{
    tcache_t *tc = tcache_get();
    return tc ? (uint32_t)tc->node : topo_current_node();
}

/* large_alloc, and once more after everything numaslab keeps went back
 * when the OS refused (memory, or address space under RLIMIT_AS). */
static void *large_new(size_t size, size_t align, uint32_t node, bool zero)
{
    void *p = large_alloc(size, align, node, zero);
    return p || !tcache_give_back() ? p : large_alloc(size, align, node, zero);
}

/* A new large block (or NULL): errno on failure, and the heap profiler
 * may sample it. */
static void *large_done(void *p)
{
    if (!p)
        errno = ENOMEM;
    else if (NS_UNLIKELY(prof_on))
        prof_large(p);
    return p;
}

void *alloc_large(size_t size)
{
    if (size > NS_MAX_REQUEST || !tcache_start()) {
        errno = ENOMEM;
        return NULL;
    }
    live_tick_malloc();
    return large_done(large_new(size, 0, current_node(), false));
}

NS_API void *ns_malloc(size_t size)
{
    return api_malloc(size);
}

NS_API void *ns_calloc(size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total) || total > NS_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    if (total > NS_SMALL_MAX) {
        if (!tcache_start()) {
            errno = ENOMEM;
            return NULL;
        }
        return large_done(large_new(total, 0, current_node(), true));
    }
    void *p = api_malloc(total);
    if (p)
        memset(p, 0, total);
    return p;
}

static void *aligned_small(size_t align, size_t size)
{
    unsigned cls = sizeclass_of(size > align ? size : align);
    while (sizeclass_size[cls] & (align - 1))
        cls++;
    return tcache_alloc(cls);
}

/* align: a power of two */
static void *alloc_aligned(size_t align, size_t size)
{
    if (align <= 16)
        return api_malloc(size);
    if (size > NS_MAX_REQUEST || align > NS_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    if (align <= NS_SMALL_ALIGN_MAX && size <= NS_SMALL_MAX && align <= NS_SMALL_MAX)
        return aligned_small(align, size);
    if (!tcache_start()) {
        errno = ENOMEM;
        return NULL;
    }
    return large_done(large_new(size, align, current_node(), false));
}

static bool pow2(size_t x) { return x && !(x & (x - 1)); }

NS_API int ns_posix_memalign(void **out, size_t align, size_t size)
{
    if (!pow2(align) || align % sizeof(void *))
        return EINVAL;
    int saved = errno;
    void *p = alloc_aligned(align, size);
    if (!p)
        return ENOMEM;
    errno = saved;
    *out = p;
    return 0;
}

NS_API void *ns_aligned_alloc(size_t align, size_t size)
{
    if (!pow2(align)) {
        errno = EINVAL;
        return NULL;
    }
    return alloc_aligned(align, size);
}

/* glibc's memalign rounds an alignment that is not a power of two up to
 * the next one; programs written against glibc rely on it. */
NS_API void *ns_memalign(size_t align, size_t size)
{
    if (align > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    if (!pow2(align))
        align = align <= 1 ? 1 : (size_t)1 << (64 - __builtin_clzl(align - 1));
    return alloc_aligned(align, size);
}

NS_API void *ns_valloc(size_t size)
{
    return alloc_aligned(ns_page_size(), size);
}

NS_API void *ns_pvalloc(size_t size)
{
    if (size > NS_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    size_t page = ns_page_size();     /* the running kernel's: 4, 16 or 64 KiB */
    size_t rounded = size ? (size + page - 1) & ~(page - 1) : page;
    return alloc_aligned(page, rounded);
}

NS_API void *ns_realloc(void *p, size_t size)
{
    if (!p)
        return api_malloc(size);
    if (size == 0) {       /* glibc: free and return NULL */
        api_free(p);
        return NULL;
    }
    size_t old = free_block_size(p, "realloc");
    if (old == 0)
        return NULL;
    if (size > NS_MAX_REQUEST) {
        errno = ENOMEM;
        return NULL;
    }
    uintptr_t e = addrmap_lookup((uintptr_t)p);
    if (e & NS_MAP_LARGE) {
        large_t *l = (large_t *)(e & ~NS_MAP_TAGS);
        uint64_t before = l->usable;
        void *smp = NS_UNLIKELY(prof_on) ? prof_detach(p) : NULL;
        void *q = size > NS_SMALL_MAX ? large_resize(l, size) : NULL;
        if (NS_UNLIKELY(prof_on))       /* q NULL: p is copied below and freed with its sample */
            prof_reattach(smp, q ? q : p, before);
        if (q)
            return q;
    } else if (size <= old && size >= old / 2) {
        return p;          /* shrink in place while the waste stays below half */
    }
    void *q = api_malloc(size);
    if (!q)
        return NULL;       /* errno set; p untouched */
    memcpy(q, p, old < size ? old : size);
    api_free(p);
    return q;
}

NS_API void *ns_reallocarray(void *p, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return ns_realloc(p, total);
}

NS_API void *ns_malloc_onnode(size_t size, int node)
{
    if (!tcache_start()) {
        errno = ENOMEM;
        return NULL;
    }
    if (node < 0 || (uint32_t)node >= topo_nodes()) {
        errno = EINVAL;
        return NULL;
    }
    if (size > NS_SMALL_MAX)
        return large_done(large_new(size, 0, (uint32_t)node, false));
    /* from the cache only if it holds that node's blocks and has one (a
     * refill could move the cache to the CPU's current node) */
    unsigned cls = sizeclass_of(size);
    tcache_t *tc = tcache_get();
    if (tc && (uint32_t)tc->node == (uint32_t)node && tc->bins[cls].head)
        return tcache_alloc(cls);
    /* otherwise one block straight from that node's bin */
    void *p = tcache_alloc_uncached(cls, (uint32_t)node);
    if (!p)
        errno = ENOMEM;
    return p;
}
