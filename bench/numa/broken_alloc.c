/* broken_alloc - a deliberately broken malloc for selfcheck.sh (LD_PRELOAD):
 * every 997th malloc of a thread returns the block that the thread's
 * previous malloc returned (if it is big enough), so two owners share a
 * block, as after an allocator's double hand-out.  Everything else is
 * glibc's.  A workload that checks its blocks must notice and fail. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stddef.h>

extern void *__libc_malloc(size_t n);

static __thread void *last;
static __thread unsigned long calls;

void *malloc(size_t n)
{
    if (++calls % 997 == 0 && last && n <= malloc_usable_size(last)) return last;
    void *p = __libc_malloc(n);
    last = p;
    return p;
}
