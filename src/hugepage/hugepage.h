/* hugepage.h - the OS memory layer: the only place that calls mmap, munmap
 * and madvise.  Every function returns 0 or an errno value and never
 * allocates.  Contract: sizes and alignments are multiples of the page size;
 * alignments are powers of two. */
#ifndef NS_HUGEPAGE_H
#define NS_HUGEPAGE_H

#include <stdbool.h>
#include <stddef.h>

/* Map `size` bytes of fresh, zeroed, read-write memory aligned to `align`.
 * `huge`: ask for transparent huge pages (MADV_HUGEPAGE) when the range
 * holds whole 2 MiB pages; otherwise MADV_NOHUGEPAGE keeps a small mapping
 * from growing a 2 MiB resident page.  ENOMEM when the OS refuses. */
int hp_map(size_t size, size_t align, bool huge, void **out);

/* Give the range back to the OS (munmap). */
int hp_unmap(void *p, size_t size);

/* Drop the pages of the range (MADV_DONTNEED): reads return zero after it. */
int hp_purge(void *p, size_t size);

/* Fault injection, only in NS_FAULT_INJECTION builds (a no-op otherwise):
 * the next `skip` hp_map calls succeed, then `fail` of them fail with ENOMEM
 * (-1: every one until the next call).  hp_fault_set(0, 0) turns it off. */
void hp_fault_set(long skip, long fail);

#endif
