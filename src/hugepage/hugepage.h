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

/* ------------------------------------------------------------ SuperSlabs
 * SuperSlabs come from 1 GiB reservations of address space (PROT_NONE,
 * no memory charged): mapping one is a single mmap(MAP_FIXED) over a free
 * 2 MiB slot, releasing one maps PROT_NONE over it again, which returns its
 * memory (a hugetlb page goes back to the kernel's pool) and keeps the slot
 * for the next SuperSlab.  Whole 2 MiB units only: a huge page is never
 * split by a release. */
enum { HP_BACK_BASE = 0, HP_BACK_THP = 1, HP_BACK_HUGETLB = 2 };
enum { HP_MODE_AUTO = 0, HP_MODE_HUGETLB, HP_MODE_THP, HP_MODE_NONE };

/* Page mode from NUMASLAB_PAGES (NULL: thp); warns on a bad value. */
void hp_init(const char *mode);
int hp_mode(void);
/* THP as the kernel has it: 0 never, 1 madvise, 2 always. */
int hp_thp_setting(void);
/* Map a SuperSlab: hugetlb pages if `hugetlb` and the kernel has them,
 * else (if `fallback`) THP (MADV_HUGEPAGE) or base pages as the mode says;
 * *backing tells which.  ENOMEM when the OS refuses. */
int hp_ss_map(bool hugetlb, bool fallback, int *backing, void **out);
void hp_ss_unmap(void *p);
/* A mapping of 1 GiB hugetlb pages (size a multiple of 1 GiB, 1 GiB
 * aligned by the kernel); ENOMEM when the pool has too few. */
int hp_map_1g(size_t size, void **out);
/* Read a small sysfs/procfs file into buf (NUL-terminated) with plain
 * syscalls, no allocation; the byte count, or -1. */
int hp_read_file(const char *path, char *buf, size_t cap);
/* Make [p, p+size) inaccessible (hardened builds' guard pages). */
int hp_guard(void *p, size_t size);

/* Fault injection, only in NS_FAULT_INJECTION builds (a no-op otherwise):
 * the next `skip` hp_map calls succeed, then `fail` of them fail with ENOMEM
 * (-1: every one until the next call).  hp_fault_set(0, 0) turns it off. */
void hp_fault_set(long skip, long fail);
/* Random mode: each mmap, madvise or mbind fails with probability
 * permille/1000 (also from NUMASLAB_FAULT_RATE at start-up). */
void hp_fault_random(unsigned permille);
enum { HP_FAULT_MMAP = 0, HP_FAULT_MADVISE, HP_FAULT_MBIND };
bool hp_fault(int kind);      /* for the other OS-facing code (mbind) */

#endif
