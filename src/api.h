/* api.h - the bodies of malloc and free, inlined into both the ns_* entry
 * points (alloc.c, free.c) and the malloc-family symbols (override.c). */
#ifndef NS_API_H
#define NS_API_H

#include "tiny/tiny.h"

void *api_malloc_large(size_t size);       /* alloc.c: above NS_SMALL_MAX */

static inline void *api_malloc(size_t size)
{
    if (NS_LIKELY(size <= NS_LUT_MAX))
        return tcache_alloc_direct(size);
    if (NS_LIKELY(size <= NS_SMALL_MAX))
        return tcache_alloc(sizeclass_of(size));
    return api_malloc_large(size);
}

static inline void api_free(void *p)
{
    tcache_free(p);
}

#endif
