/* os.c - mapping and releasing memory (see hugepage.h for the contract).
 *
 * Aligned mappings: map size + align - page, then unmap the misaligned head
 * and the tail.  THP is requested per mapping with madvise; numaslab never
 * touches the process-wide THP setting (PR_SET_THP_DISABLE is inherited by
 * every child). */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>

#include "../config.h"
#include "hugepage.h"


static _Atomic long fault_skip;
static _Atomic long fault_fail;

void hp_fault_set(long skip, long fail)
{
    atomic_store_explicit(&fault_skip, skip, memory_order_relaxed);
    atomic_store_explicit(&fault_fail, fail, memory_order_release);
}

/* true if this call must fail (fault injection builds only) */
static bool fault_now(void)
{
    if (!ns_config_fault_injection)
        return false;
    if (atomic_load_explicit(&fault_fail, memory_order_acquire) == 0)
        return false;
    if (atomic_fetch_sub_explicit(&fault_skip, 1, memory_order_relaxed) > 0)
        return false;
    atomic_store_explicit(&fault_skip, 0, memory_order_relaxed);
    long f = atomic_load_explicit(&fault_fail, memory_order_relaxed);
    if (f > 0)
        atomic_fetch_sub_explicit(&fault_fail, 1, memory_order_relaxed);
    return true;
}

int hp_map(size_t size, size_t align, bool huge, void **out)
{
    if (size == 0 || size > ((size_t)1 << 46) || align > ((size_t)1 << 40))
        return ENOMEM;
    if (fault_now())
        return ENOMEM;
    if (align < NS_PAGE_SIZE)
        align = NS_PAGE_SIZE;
    size_t span = size + align - NS_PAGE_SIZE;
    if (span < size)
        return ENOMEM;
    void *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return errno == 0 ? ENOMEM : (errno == EAGAIN ? ENOMEM : errno);
    uintptr_t a = (uintptr_t)m;
    uintptr_t aligned = (a + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = aligned - a;
    size_t tail = span - head - size;
    if (head)
        munmap(m, head);
    if (tail)
        munmap((void *)(aligned + size), tail);
    const size_t huge_size = (size_t)1 << 21;
    if (huge && size >= huge_size && (aligned & (huge_size - 1)) == 0)
        madvise((void *)aligned, size, MADV_HUGEPAGE);
    else if (!huge)
        madvise((void *)aligned, size, MADV_NOHUGEPAGE);
    *out = (void *)aligned;
    return 0;
}

int hp_unmap(void *p, size_t size)
{
    return munmap(p, size) == 0 ? 0 : errno;
}

int hp_purge(void *p, size_t size)
{
    return madvise(p, size, MADV_DONTNEED) == 0 ? 0 : errno;
}
