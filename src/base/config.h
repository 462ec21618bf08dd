/* config.h - build levels and the size constants every layer relies on
 * (the bottom of the layer order, with options.c, error.c and clock.c).
 *
 * Build levels are plain constants used in ordinary `if`, so every
 * configuration still compiles:
 *   NS_DEBUG            internal assertions (CMake Debug builds)
 *   NS_FAULT_INJECTION  the OS layer can be told to fail (test builds only)
 */
#ifndef NS_CONFIG_H
#define NS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef NS_DEBUG
static const bool ns_config_debug = true;
#else
static const bool ns_config_debug = false;
#endif

#ifdef NS_FAULT_INJECTION
static const bool ns_config_fault_injection = true;
#else
static const bool ns_config_fault_injection = false;
#endif

/* NS_HARDENED (CMake NUMASLAB_HARDENED=ON): free-list links encoded with a
 * per-slab / per-thread secret, a free-block bitmap per slab (every double
 * free of every class is caught, every handed-out block is checked), guard
 * pages after the SuperSlab header and at the SuperSlab's end. */
#ifdef NS_HARDENED
static const bool ns_config_hardened = true;
#else
static const bool ns_config_hardened = false;
#endif

#define NS_LIKELY(x) __builtin_expect(!!(x), 1)
#define NS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define NS_API __attribute__((visibility("default")))
/* Cache lines.  NS_CACHELINE: 64 bytes, the line of x86-64 and of the
 * Neoverse cores of arm64 servers (Graviton, Ampere Altra, Grace); the
 * slab records in the SuperSlab header keep their remote-free word on a
 * line of its own at this size (32 records must fit in NS_SS_HEADER).
 * NS_CACHELINE_PAD: what structures written by many threads are padded
 * to where the room is free (the node pools' bins): 128 bytes on arm64,
 * where some cores (Apple-derived, Kunpeng 920) have 128-byte lines. */
#define NS_CACHELINE 64
#if defined(__aarch64__)
#define NS_CACHELINE_PAD 128
#else
#define NS_CACHELINE_PAD 64
#endif

/* The smallest base page of any supported kernel; the running kernel's page
 * (4 KiB on x86-64; 4, 16 or 64 KiB on arm64) is ns_page_size() in base.h.
 * Every size below is a multiple of 64 KiB, so of any base page. */
#define NS_PAGE_MIN ((size_t)4096)
#define NS_PAGE_MAX ((size_t)65536)

/* SuperSlab: 2 MiB, 2 MiB aligned, one huge page.  It is cut into 32 units
 * of 64 KiB; a slab is a run of 1..16 units serving one size class.  The
 * header (superslab_t) lives in the first NS_SS_HEADER bytes of unit 0; the
 * rest of unit 0 can host a one-unit slab. */
#define NS_SS_SHIFT 21
#define NS_SS_SIZE ((size_t)1 << NS_SS_SHIFT)
#define NS_SS_MASK (NS_SS_SIZE - 1)
#define NS_UNIT_SHIFT 16
#define NS_UNIT_SIZE ((size_t)1 << NS_UNIT_SHIFT)
#define NS_UNITS (NS_SS_SIZE / NS_UNIT_SIZE)
#define NS_SS_HEADER ((size_t)8192)
/* where unit 0's blocks start (hardened: after a guard page, 16 KiB aligned)
 * and how much of the SuperSlab's end is not blocks (hardened: a guard page) */
#define NS_UNIT0_START (ns_config_hardened ? NS_SS_HEADER + 8192 : NS_SS_HEADER)
#define NS_SS_TAIL_GUARD (ns_config_hardened ? NS_PAGE_MIN : 0)

/* Requests up to NS_SMALL_MAX come from size classes in slabs; larger ones
 * get their own mapping (src/superslab/large.c).  256 KiB: above it a slab
 * would hold a block or two, and a cached dedicated mapping costs no more
 * than a slab class (bench/numa/size_sweep, README "Large threshold"). */
#define NS_SMALL_MAX ((size_t)256 * 1024)
/* Alignments above this go to the large path (slab starts are 64 KiB aligned). */
#define NS_SMALL_ALIGN_MAX NS_UNIT_SIZE

/* User address space covered by the address maps (addrmap, ssmap), chosen
 * per architecture at build time so that the free() fast path compares with
 * a constant (README "Architectures"):
 *   x86-64: 47 bits.  4-level paging gives user space 47 bits; 5-level
 *           paging hands out addresses above 2^47 only to an mmap whose
 *           hint lies above it, and numaslab never passes such a hint.
 *   arm64:  48 bits.  48-bit kernels (Debian's: 4 KiB pages, 4 levels)
 *           place mmap just below 2^48; 39-, 42- and 47-bit kernels fit
 *           within it; 52-bit kernels go above 2^48 only for a hint above.
 * A pointer above the range is "not ours" (free() reports it as invalid);
 * a mapping of numaslab's own that landed above it would be unmapped and
 * reported once (hugepage/os.c), never handed out. */
#if defined(__x86_64__)
#define NS_VA_BITS 47
#else
#define NS_VA_BITS 48
#endif

/* The largest request numaslab serves (64 TiB): larger ones fail with
 * ENOMEM before any size arithmetic can overflow. */
#define NS_MAX_REQUEST ((size_t)1 << 46)

#define NS_MAX_NODES 1024               /* Linux's MAX_NUMNODES limit */

#endif /* NS_CONFIG_H */
