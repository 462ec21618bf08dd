/* hugepage.h - the OS layer: the only place that calls mmap, mremap, munmap,
 * madvise and mbind, and reads sysfs and procfs.  Every function returns 0
 * or an errno value (or says otherwise) and never allocates.  Contract:
 * sizes and alignments are multiples of the page size; alignments are
 * powers of two.  Uses only src/base. */
#ifndef NS_HUGEPAGE_H
#define NS_HUGEPAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/base.h"

/* Map `size` bytes of fresh, zeroed, read-write memory aligned to `align`.
 * The first `huge` bytes (a multiple of 2 MiB, from a 2 MiB aligned start)
 * ask for transparent huge pages (MADV_HUGEPAGE); the rest refuses them
 * (MADV_NOHUGEPAGE), so a small mapping, or the tail of a large block,
 * never grows a 2 MiB resident page.  ENOMEM when the OS refuses. */
int hp_map(size_t size, size_t align, size_t huge, void **out);

/* Map fresh memory at exactly [p, p+size), read-write, refusing huge pages,
 * only if nothing is mapped there: EEXIST if something is (the kernel's
 * MAP_FIXED_NOREPLACE; a kernel without it placed the mapping elsewhere,
 * which is undone and reported as EEXIST too). */
int hp_map_at(void *p, size_t size);

/* Ask for transparent huge pages on [p, p+size) (`on`), or refuse them.
 * Pages already resident stay as they are. */
int hp_thp(void *p, size_t size, bool on);

/* Move the pages of [from, from+size) to [to, to+size) without copying
 * them (mremap): `to` must be mapped by the caller and is replaced; both
 * 2 MiB aligned, size a multiple of 2 MiB.  `from` stays mapped, empty
 * (MREMAP_DONTUNMAP, Linux 5.7): the caller unmaps it.  On failure
 * (EINVAL: an older kernel) nothing has moved. */
int hp_move(void *from, size_t size, void *to);

/* Give the range back to the OS (munmap). */
int hp_unmap(void *p, size_t size);

/* Drop the pages of the range (MADV_DONTNEED): reads return zero after it. */
int hp_purge(void *p, size_t size);

/* ------------------------------------------------------------ SuperSlabs
 * SuperSlabs come from reservations of address space (PROT_NONE, no
 * memory charged) that grow on demand: 16 MiB first, each next one twice
 * the last, up to 1 GiB.  Mapping one is a single mmap(MAP_FIXED) over a
 * free 2 MiB slot, releasing one maps PROT_NONE over it again, which
 * returns its memory (a hugetlb page goes back to the kernel's pool) and
 * keeps the slot for the next SuperSlab.  Whole 2 MiB units only: a huge
 * page is never split by a release. */
enum { HP_BACK_BASE = 0, HP_BACK_THP = 1, HP_BACK_HUGETLB = 2 };

/* Start-up: the page mode (options.pages, OPT_PAGES_*) and the kernel's
 * THP setting. */
void hp_init(void);
int hp_mode(void);
/* Map a SuperSlab: hugetlb pages if `hugetlb` and the kernel has them,
 * else (if `fallback`) THP (MADV_HUGEPAGE) or base pages as the mode says,
 * base pages (MADV_NOHUGEPAGE) when `sparse`; *backing tells which.
 * ENOMEM when the OS refuses. */
int hp_ss_map(bool hugetlb, bool fallback, bool sparse, int *backing, void **out);
void hp_ss_unmap(void *p);
/* Unmap the reservations none of whose slots holds a SuperSlab: their
 * address space goes back (malloc_trim, and when a mapping failed).
 * Returns the bytes unmapped. */
size_t hp_ss_trim(void);
/* Would a SuperSlab asking for transparent huge pages get them (the mode
 * allows THP and the kernel's setting is not "never")? */
bool hp_thp_possible(void);
/* Make a SuperSlab that asks for THP one huge page now (MADV_COLLAPSE,
 * Linux 6.1; the pages it has are copied into it) instead of waiting for
 * khugepaged; an errno when the kernel cannot (older kernel, no free 2 MiB
 * block, a guard page inside). */
int hp_ss_collapse(void *p);
/* A mapping of 1 GiB hugetlb pages (size a multiple of 1 GiB, 1 GiB
 * aligned by the kernel); ENOMEM when the pool has too few. */
int hp_map_1g(size_t size, void **out);
/* Make [p, p+size) inaccessible (hardened builds' guard pages). */
int hp_guard(void *p, size_t size);
/* mbind(2) as the kernel has it (mode MPOL_*, mask of maxnode bits). */
int hp_mbind(void *p, size_t size, int mode, const unsigned long *mask, unsigned long maxnode, unsigned flags);

/* n random bytes from the kernel (getrandom); 0 or an errno. */
int hp_getrandom(void *buf, size_t n);
/* A full memory barrier on every CPU running a thread of this process
 * (membarrier, private expedited): lets one thread skip its fences on a
 * hot path that a rare other thread then orders against.  false: not
 * available. */
bool hp_barrier_all(void);
/* get_mempolicy(2) of the calling thread: its mode (flags cleared) and
 * node mask of maxnode bits; 0 or an errno. */
int hp_get_mempolicy(int *mode, unsigned long *mask, unsigned long maxnode);
/* fork: the reservation lock (src/tiny/fork.c takes it last). */
void hp_lock_all(void);
void hp_unlock_all(bool child);

/* ------------------------------------------------------------ sysfs.c
 * Small readers of sysfs and procfs with plain system calls. */
/* Read a small file into buf (NUL-terminated); the byte count, or -1. */
int hp_read_file(const char *path, char *buf, size_t cap);
/* The online nodes as the kernel lists them ("0-1,3"), into buf; -1 when
 * the machine has no NUMA sysfs. */
int hp_nodes_online(char *buf, size_t cap);
/* The Mems_allowed_list of /proc/self/status ("0-1,3") into buf; -1 if
 * unreadable. */
int hp_mems_allowed(char *buf, size_t cap);
/* Free memory of a node in bytes: MemFree, or with `huge_blocks` the
 * smaller of MemFree and its free 2 MiB-or-larger buddy blocks (a THP
 * fault goes to another node once none is left).  UINT64_MAX: unknown. */
uint64_t hp_node_free_bytes(uint32_t node, bool huge_blocks);
/* Does the node (node < 0: the machine) have free hugetlb pages of `kb`
 * KiB (2048 or 1048576)? */
bool hp_hugetlb_free(int node, unsigned kb);

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
