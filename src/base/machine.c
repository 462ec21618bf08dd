/* machine.c - facts of the running machine that numaslab reads once: the
 * kernel's base page size (arm64 kernels are built with 4, 16 or 64 KiB
 * pages; x86-64 has 4 KiB). */
#include <sys/auxv.h>

#include "base.h"

size_t machine_page;

size_t machine_page_slow(void)
{
    size_t p = (size_t)getauxval(AT_PAGESZ);
    /* no auxv entry, or a value no Linux kernel uses: the smallest page
     * (a mapping is then still page aligned on any kernel up to 64 KiB,
     * since every mapping numaslab makes is 64 KiB aligned or rounded) */
    if (p < NS_PAGE_MIN || p > NS_PAGE_MAX || (p & (p - 1)))
        p = NS_PAGE_MIN;
    __atomic_store_n(&machine_page, p, __ATOMIC_RELAXED);
    return p;
}
