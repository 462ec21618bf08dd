/* types.h - the structs shared across modules.  Constants and structs only.
 *
 * Glossary
 *   SuperSlab  2 MiB aligned region from the OS, bound to one NUMA node; its
 *              header (superslab_t) sits at its start.  Cut into 32 units.
 *   unit       64 KiB piece of a SuperSlab; free units are tracked by a mask.
 *   slab       1..16 contiguous units serving one size class (slab_t).
 *   block      what malloc returns: one slot of a slab.  A free block holds
 *              the next pointer in word 0 and the double-free key in word 1.
 *   bin        per node and size class: the lock that owns the free lists of
 *              that class's slabs on that node, and the list of its partially
 *              used slabs (bin_t).
 *   node pool  per NUMA node: its bins, its SuperSlabs, its large-mapping
 *              cache (node_pool_t).
 *   tcache     per thread: a LIFO list of free blocks per class (tcache_t).
 *   remote     a lock-free stack of blocks per slab, pushed by threads of
 *              other nodes; drained by the bin lock holder (remote.c).
 *   large      a block above NS_SMALL_MAX in a mapping of its own (large_t).
 *
 * Where a block can be (exactly one at a time): a tcache list, a slab's
 * free list, a slab's remote stack, the user's hands, or not yet carved
 * (at index >= slab.bump).
 */
#ifndef NS_TYPES_H
#define NS_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"

#define NS_CLASSES 96          /* see src/tiny/sizeclass.c for the table */
#define NS_STASH 8             /* lists per bin's stash (node_pool.c)     */
#define NS_STASH_MIN 8         /* shorter lists go to their slabs         */

/* ------------------------------------------------------------------ slab */
/* Slab metadata, in its SuperSlab's header.  The first cache line is what
 * free() reads; it is written only while the slab is carved or released
 * (under its bin lock), never while blocks of it are live.  `free`, `bump`,
 * `used` and the list links belong to the bin lock of (node, cls).  `remote`
 * is the only field other threads write without that lock.
 * Invariant: used == bump - |free|; a block in `remote` still counts in
 * `used` until the bin lock holder drains it into `free`. */
typedef struct slab {
    uintptr_t start;            /* address of block 0                      */
    uint64_t span;              /* capacity * size                         */
    uint64_t divc;              /* off % size == 0 <=> off * divc < divc   */
    uint8_t cls;                /* size class                              */
    uint8_t units;              /* length in units (0: not a slab)         */
    uint32_t size;              /* block size                              */
    uint64_t magic;             /* (off * magic) >> 40 == off / size       */
    uint32_t capacity;          /* blocks that fit                         */
    uint16_t node;              /* node of the SuperSlab                   */
    /* bin-lock protected */
    void *free;                 /* free list (word 0 = next)               */
    uint32_t bump;              /* blocks carved so far                    */
    uint32_t used;              /* carved blocks not in `free`             */
    struct slab *prev, *next;   /* bin partial list                        */
    uint8_t in_partial;
    uint8_t first_unit;
    uintptr_t key;              /* hardened: secret of the slab's lists    */
    _Atomic uint64_t *freemap;  /* hardened: bit i set = block i is free   */
    /* written by other threads (own cache line) */
    _Alignas(NS_CACHELINE) _Atomic uintptr_t remote; /* stack | NOTIFIED  */
    struct slab *pending_next;  /* link in bin.pending, set by notifier    */
} slab_t;

#define NS_REMOTE_NOTIFIED ((uintptr_t)1)

/* ------------------------------------------------------------- SuperSlab */
/* What free() reads about a unit: a copy of its slab's start, span and
 * divisor, and where its class's list is in a thread cache.  All zero for a
 * free unit (span 0: nothing is a block start there). */
typedef struct unit_fast {
    uintptr_t start;
    uint64_t span;
    uint64_t divc;
    uint32_t binoff;            /* offsetof(tcache_t, bins[cls])           */
} __attribute__((aligned(32))) unit_fast_t;

typedef struct superslab {
    unit_fast_t fast[NS_UNITS]; /* first: &fast[u] = ss + u * 32           */
    slab_t *unit_slab[NS_UNITS];/* unit -> slab covering it (or ss_no_slab)*/
    uint32_t node;
    uint32_t free_mask;         /* bit u: unit u free (node ss_lock)       */
    uint32_t used_units;
    uint32_t bucket;            /* list it is on: used units, or EMPTY     */
    uint32_t backing;           /* HP_BACK_BASE / THP / HUGETLB            */
    struct superslab *prev, *next;
    uint64_t empty_since_ms;
    slab_t slabs[NS_UNITS];     /* slabs[u]: the slab starting at unit u   */
} superslab_t;

_Static_assert(sizeof(superslab_t) <= NS_SS_HEADER, "SuperSlab header must fit in NS_SS_HEADER");
_Static_assert(NS_UNITS == 32, "free_mask is 32 bits");
_Static_assert(NS_SS_HEADER % 4096 == 0, "unit-0 slab data starts page aligned");

/* ----------------------------------------------------------------- large */
typedef struct large {
    uintptr_t base;             /* the block (and the mapping's start)     */
    size_t reserved;            /* bytes mapped, a multiple of 2 MiB       */
    size_t usable;              /* bytes the user may use, page multiple   */
    size_t touched;             /* high-water mark of usable (RSS bound)   */
    uint64_t cached_ms;         /* when it entered the cache               */
    struct large *prev, *next;  /* node cache list, newest first           */
    uint32_t node;
    uint8_t state;              /* NS_LARGE_LIVE / NS_LARGE_CACHED         */
    uint8_t huge1g;             /* on 1 GiB hugetlb pages                  */
    uint8_t thp;                /* mapped asking for huge pages            */
} large_t;

enum { NS_LARGE_LIVE = 1, NS_LARGE_CACHED = 2 };

/* -------------------------------------------------------------- address map
 * An entry is 0 (not ours), a SuperSlab's address | NS_MAP_SS, or a large_t
 * address | NS_MAP_LARGE. */
#define NS_MAP_SS ((uintptr_t)1)
#define NS_MAP_LARGE ((uintptr_t)2)
#define NS_MAP_TAGS ((uintptr_t)3)

/* -------------------------------------------------------------------- bin */
typedef struct bin {
    pthread_mutex_t lock;
    slab_t *partial;            /* slabs with free or uncarved blocks      */
    uint32_t npartial;
    uint32_t cls;
    uint64_t slabs;             /* slabs carved for this class now         */
    uint64_t used_blocks;       /* blocks handed out of slabs              */
    uint64_t refills;           /* bin_refill calls (thread-cache misses)  */
    uint64_t remote_drained;
    _Atomic(slab_t *) pending;  /* slabs whose remote stack got blocks     */
    struct {                    /* lists given back whole (bin_stash)      */
        void *list;
        uint32_t n;
    } stash[NS_STASH];
    uint32_t nstash;
    _Atomic uint64_t remote_frees;
} __attribute__((aligned(NS_CACHELINE))) bin_t;

/* -------------------------------------------------------------- node pool */
typedef struct node_pool {
    bin_t bins[NS_CLASSES];
    /* SuperSlabs: ss_lock */
    pthread_mutex_t ss_lock;
    superslab_t *by_used[NS_UNITS]; /* lists of SuperSlabs with 1..31 used units, index = used */
    superslab_t *empty;         /* empty SuperSlabs, newest first          */
    superslab_t *empty_tail;
    uint64_t nsuperslabs;
    uint64_t nbacking[3];       /* SuperSlabs by HP_BACK_*                 */
    uint64_t released_bytes;
    /* large mappings: large_lock */
    pthread_mutex_t large_lock;
    large_t *lcache, *lcache_tail;  /* freed mappings, newest first        */
    uint64_t lcache_count, lcache_bytes;
    uint64_t large_count, large_bytes, large_usable;
    uint64_t spills;            /* allocations for this node served by another (atomic) */
    uint32_t node;
} node_pool_t;

/* ----------------------------------------------------------------- tcache */
typedef struct tbin {
    void *head;                 /* LIFO list, word 0 = next                */
    uint32_t room;              /* cap - blocks in the list (tbin_count)   */
    uint32_t cap;               /* a push when room is 0 flushes (slow path) */
    uint64_t allocs;            /* blocks handed out: statistics, written by
                                   the owner only (ns_count_inc), read
                                   relaxed by stats                       */
} __attribute__((aligned(32))) tbin_t;  /* 32 bytes: the index is a shift */

#define NS_LUT_MAX 1024         /* n <= this: class by table (sizeclass_lut),
                                   malloc by tcache_t.direct[(n + 15) / 16] */

typedef struct tcache {
    /* the fast paths read only bins, direct, tag and mark */
    tbin_t bins[NS_CLASSES];
    tbin_t *direct[NS_LUT_MAX / 16 + 1]; /* &bins[class of n]; sentinels: &bins[0] */
    uint32_t tag;               /* ns_thread_tag(node); sentinels: 256     */
    uintptr_t mark;             /* ns_key: word 1 of a block in a list (a
                                   copy: free() reads it in one load)     */
    int32_t node;               /* node of all blocks in bins; -1: sentinel*/
    uint32_t kind;              /* NS_TC_LIVE / NS_TC_INIT / NS_TC_DEAD    */
    /* slow path only */
    uint16_t events[NS_CLASSES];/* refills + flushes since the last tick   */
    uint32_t tick_events;
    uint64_t ticks;             /* capacity reviews so far (tests observe it) */
    uint64_t spill_until_ms;    /* spilled to a nearer node: stay until then */
    uintptr_t key;              /* hardened: secret of this cache's lists  */
    struct tcache *prev, *next; /* all live caches (init.c list lock)      */
} tcache_t;

enum { NS_TC_LIVE = 0, NS_TC_INIT = 1, NS_TC_DEAD = 2 };

#endif /* NS_TYPES_H */
