/* free.c - the releasing entry points: free, malloc_usable_size, the node
 * of a pointer, malloc_trim and ns_release. */
#include "api.h"
#include "internal.h"
#include "numa/numa.h"
#include "superslab/superslab.h"

size_t ns_block_size(const void *p, const char *fn);   /* alloc.c */

NS_API void ns_free(void *p)
{
    api_free(p);
}

NS_API size_t ns_malloc_usable_size(const void *p)
{
    return p ? ns_block_size(p, "malloc_usable_size") : 0;
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

NS_API size_t ns_release(void)
{
    if (atomic_load_explicit(&ns_init_state, memory_order_acquire) != 2)
        return 0;
    tcache_t *tc = tcache_get();
    size_t bytes = tc ? tcache_flush_all(tc) : 0;
    for (uint32_t n = 0; n < topo_nodes(); n++)
        bytes += node_pool_release(node_pool(n), true);
    return bytes;
}

NS_API int ns_malloc_trim(size_t pad)
{
    (void)pad;
    return ns_release() > 0;
}
