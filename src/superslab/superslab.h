/* superslab.h - SuperSlabs and slabs: their geometry and lifecycle, the
 * size classes, the address and byte maps, free-list links, the
 * remote-free stacks, block checks (hardened builds), the metadata
 * allocator and the validators.  The only header code outside
 * src/superslab includes for these.  Uses src/hugepage and src/base.
 *
 * Glossary
 *   SuperSlab  2 MiB aligned region from the OS, bound to one NUMA node; its
 *              header (superslab_t) sits at its start.  Cut into 32 units.
 *   unit       64 KiB piece of a SuperSlab; free units are tracked by a mask.
 *   slab       1..16 contiguous units serving one size class (slab_t).
 *   block      what malloc returns: one slot of a slab.  A free block holds
 *              the next pointer in word 0 and the free mark in word 1.
 *   remote     a lock-free stack of blocks per slab, pushed by threads that
 *              do not own the slab, drained by its owner (remote.c).
 *
 * Where a block can be (exactly one at a time): a thread cache's list,
 * a slab's free list, a slab's remote stack, the user's hands,
 * or not yet carved (at index >= slab.bump).
 */
#ifndef NS_SUPERSLAB_H
#define NS_SUPERSLAB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/base.h"

/* ----------------------------------------------------------- sizeclass.c
 * 96 classes, table and reasons in sizeclass.c. */
#define NS_CLASSES 96
#define NS_LUT_MAX 1024         /* n <= this: class by table (sizeclass_lut) */
extern const uint8_t sizeclass_lut[NS_LUT_MAX / 16 + 1];
extern const uint32_t sizeclass_size[NS_CLASSES];
extern const uint8_t sizeclass_units[NS_CLASSES];

/* Class of a request of n bytes, n <= NS_SMALL_MAX (0 -> class 0). */
static inline unsigned sizeclass_of(size_t n)
{
    if (NS_LIKELY(n <= NS_LUT_MAX))
        return sizeclass_lut[(n + 15) >> 4];
    size_t m = n - 1;
    unsigned e = 63u - (unsigned)__builtin_clzl(m);   /* e >= 10 */
    return 8u + (e - 7u) * 8u + (unsigned)((m >> (e - 3u)) & 7u);
}

/* The secret of a list's links in hardened builds: two independent
 * random words (superslab/hardened.c: from getrandom), per slab for its
 * free list and remote stack, per thread cache for its lists; m is odd
 * and minv its inverse modulo 2^64. */
typedef struct list_key {
    uintptr_t a, m, minv;
} list_key_t;

/* ------------------------------------------------------------------ slab */
/* Slab metadata, in its SuperSlab's header.  The first cache line is what
 * free() reads; it is written only while the slab is carved or released
 * (by its owner), never while blocks of it are live.  `free`, `bump`,
 * `used` and the list links belong to the owner (the node's bin lock of
 * (node, cls)).  `remote` is the only field other threads write.
 * Invariant: used == bump - |free|; a block in `remote` still counts in
 * `used` until the owner drains it into `free`. */
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
    /* owner only */
    void *free;                 /* free list (word 0 = next)               */
    uint32_t bump;              /* blocks carved so far                    */
    uint32_t used;              /* carved blocks not in `free`             */
    struct slab *prev, *next;   /* owner's partial list                    */
    uint8_t in_partial;
    uint8_t first_unit;
    uint8_t on;                 /* owned: on its owner's avail or full list */
    _Atomic(void *) owner;      /* the owner_t (a thread) that owns it, or
                                   NULL (its bin): numa/bin.c              */
    list_key_t key;             /* hardened: secret of the slab's lists    */
    _Atomic uint64_t *freemap;  /* hardened: bit i set = block i is free   */
    /* written by other threads (own cache line) */
    _Alignas(NS_CACHELINE) _Atomic uintptr_t remote; /* stack | NOTIFIED  */
    struct slab *pending_next;  /* link in the owner's pending list        */
} slab_t;

/* slab.remote holds the top of the stack, the NOTIFIED bit in its low bit
 * (blocks are 16-byte aligned, so it is free) and the number of blocks on
 * the stack in its top 16 bits (numaslab maps nothing above NS_VA_BITS,
 * at most 48): the owner takes the stack and its length in one
 * exchange, without walking blocks that another core wrote last. */
#define NS_REMOTE_NOTIFIED ((uintptr_t)1)
#define NS_REMOTE_COUNT_SHIFT 48
#define NS_REMOTE_COUNT_MAX 0xffffu
_Static_assert(NS_REMOTE_NOTIFIED < 16, "NOTIFIED must fit under the 16-byte block alignment");
_Static_assert(NS_VA_BITS <= NS_REMOTE_COUNT_SHIFT, "os.c refuses mappings above NS_VA_BITS: the count fits above");
static inline void *remote_top(uintptr_t v)
{
    return (void *)(v & (((uintptr_t)1 << NS_REMOTE_COUNT_SHIFT) - 1) & ~NS_REMOTE_NOTIFIED);
}
static inline uint32_t remote_count(uintptr_t v)
{
    return (uint32_t)(v >> NS_REMOTE_COUNT_SHIFT);
}
_Static_assert(offsetof(slab_t, remote) % NS_CACHELINE == 0, "remote has its own cache line");

/* ------------------------------------------------------------- SuperSlab */
/* What free() reads about a unit: a copy of its slab's start, span and
 * divisor, and where its class's list is in a thread cache (cls << 
 * NS_TBIN_SHIFT: tiny.h asserts that a thread cache's bins start at offset
 * 0 and are 1 << NS_TBIN_SHIFT bytes each).  All zero for a free unit
 * (span 0: nothing is a block start there). */
#define NS_TBIN_SHIFT 5
typedef struct unit_fast {
    uintptr_t start;
    uint64_t span;
    uint64_t divc;
    uint32_t binoff;            /* cls << NS_TBIN_SHIFT                    */
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
    /* live blocks the heap profiler sampled in unit u (src/prof.c, under
     * its lock): while not 0, fast[u].span is 0, so that every free in the
     * unit takes the slow path, where the profiler sees its samples go */
    uint16_t prof_live[NS_UNITS];
    uint32_t purged_mask;       /* free units whose pages were dropped     */
    /* THP mode, on base pages while sparse: a new SuperSlab of a small
     * heap, or a sparse one whose free units were purged; asks for huge
     * pages again once dense and the node's heap spans SS_PROMOTE_MIN
     * SuperSlabs (node_pool.c, pool_carved).  ss_lock. */
    uint32_t split;
    /* bytes of its live slabs handed out at least once (blocks carved from
     * their bump; slab_take adds, slab_uncarve subtracts): the part of it
     * that has been touched, what tells dense from sparse */
    _Atomic size_t carved_bytes;
    slab_t slabs[NS_UNITS];     /* slabs[u]: the slab starting at unit u   */
} superslab_t;

_Static_assert(offsetof(superslab_t, fast) == 0, "free() finds unit_fast_t at ss + u * 32");
_Static_assert(sizeof(unit_fast_t) == 32, "unit_fast_t index is a shift by 5");
_Static_assert(sizeof(superslab_t) <= NS_SS_HEADER, "SuperSlab header must fit in NS_SS_HEADER");
_Static_assert(NS_UNITS == 32, "free_mask is 32 bits");
_Static_assert(NS_SS_HEADER % NS_PAGE_MIN == 0, "unit-0 slab data starts page aligned");
_Static_assert(NS_CLASSES << NS_TBIN_SHIFT < UINT32_MAX, "binoff fits");

/* -------------------------------------------------------------- address map
 * An entry is 0 (not ours), a SuperSlab's address | NS_MAP_SS, or the
 * address of a large mapping's record (numa/large.c) | NS_MAP_LARGE.
 * Both are at least 4-byte aligned, so the tags fit in the low bits. */
#define NS_MAP_SS ((uintptr_t)1)
#define NS_MAP_LARGE ((uintptr_t)2)
#define NS_MAP_TAGS ((uintptr_t)3)

/* ------------------------------------------------------------ addrmap.c
 * Two levels: a root of 2^13 leaf pointers (static, zero until used) and
 * leaves of 2^13 entries, one per 2 MiB granule (64 KiB each, mapped when a
 * granule in their 16 GiB range first becomes ours).  Lookup is two loads
 * and never fails or allocates; "not ours" is 0. */
#define NS_MAP_LEAF_BITS 13
#define NS_MAP_ROOT_BITS (NS_VA_BITS - NS_SS_SHIFT - NS_MAP_LEAF_BITS)
extern uintptr_t *addrmap_root[(size_t)1 << NS_MAP_ROOT_BITS];
/* fn(ss, arg) for every SuperSlab in the map (a walk of the whole map:
 * for the fork child and for tests). */
struct superslab;
void addrmap_each_superslab(void (*fn)(struct superslab *ss, void *arg), void *arg);

static inline uintptr_t addrmap_lookup(uintptr_t a)
{
    if (NS_UNLIKELY(a >> NS_VA_BITS))
        return 0;
    uintptr_t *leaf = __atomic_load_n(&addrmap_root[a >> (NS_SS_SHIFT + NS_MAP_LEAF_BITS)], __ATOMIC_ACQUIRE);
    if (NS_UNLIKELY(leaf == NULL))
        return 0;
    return __atomic_load_n(&leaf[(a >> NS_SS_SHIFT) & (((uintptr_t)1 << NS_MAP_LEAF_BITS) - 1)], __ATOMIC_RELAXED);
}
/* The SuperSlab map, for free()'s fast path: one byte per 2 MiB granule of
 * the 47-bit space (64 MiB of untouched zero pages until used), the node tag
 * of the SuperSlab of ours that lies there, 0 elsewhere.  A thread's cache
 * holds its node's tag (ssmap_thread_tag), so one byte compare answers "a
 * SuperSlab of ours, on my node".  Nodes past 253 share map tag 255 and no
 * thread tag matches it: their frees take the slow path. */
#define NS_SSMAP_SIZE ((size_t)1 << (NS_VA_BITS - NS_SS_SHIFT))
extern uint8_t ssmap[NS_SSMAP_SIZE];
static inline uint8_t ssmap_node_tag(uint32_t node) { return (uint8_t)(node < 254 ? node + 1 : 255); }
static inline uint32_t ssmap_thread_tag(int32_t node) { return node >= 0 && node < 254 ? (uint32_t)node + 1 : 256; }
/* The map tag of the SuperSlab a lies in, 0 if none of ours. */
static inline uint32_t ssmap_tag(uintptr_t a)
{
    uintptr_t g = a >> NS_SS_SHIFT;
    return g < NS_SSMAP_SIZE ? __atomic_load_n(&ssmap[g], __ATOMIC_RELAXED) : 0;
}
void ssmap_set(uintptr_t ss, uint8_t tag);

/* Map every granule of [base, base+size) to value; 0 or ENOMEM. */
int addrmap_set(uintptr_t base, size_t size, uintptr_t value);
void addrmap_clear(uintptr_t base, size_t size);
void addrmap_lock(void);
void addrmap_unlock(bool child);   /* child: after fork, re-initialise */

extern uintptr_t block_mark;       /* word 1 of a free block; set at start-up */

/* ------------------------------------------------------------ free links
 * Word 0 of a free block links it to the next one; word 1 marks it free.
 *
 * Default builds: word 0 is the next block's address; word 1 is
 * block_mark (superslab.c: random, odd, per process), which every block on
 * any list carries, so that free() tells a likely double free by one
 * compare and malloc refuses to hand out a list head without it (a plain
 * pointer written into a freed block's link makes the list point at a
 * block that is not free: caught before its link is read).
 *
 * Hardened builds: word 0 is (next ^ k.a) * k.m with the list owner's
 * two random keys (m odd): not XOR-malleable, since a change of the
 * stored word changes the decoded one through the unknown multiplier, so
 * a forged link needs both keys; the list's end is encoded as the block's
 * own address + 1 (never a block: blocks are 16-byte aligned), so no word
 * reveals a key as an encoded NULL would and no two blocks hold the same
 * word; every decoded link is checked before it is followed (hardened.c).  Word 1 holds a value mixed
 * from the block's address and a process secret that protects nothing
 * else: no constant anywhere in free blocks (the bitmap of each slab
 * catches double frees). */
static inline void *link_get(const void *blk, const list_key_t *k)
{
    uintptr_t v = *(const uintptr_t *)blk;
    if (!ns_config_hardened)
        return (void *)v;
    v = (v * k->minv) ^ k->a;
    return v == (uintptr_t)blk + 1 ? NULL : (void *)v;
}
static inline void link_set(void *blk, const void *next, const list_key_t *k)
{
    uintptr_t v = (uintptr_t)next;
    if (ns_config_hardened)
        v = ((next ? v : (uintptr_t)blk + 1) ^ k->a) * k->m;
    *(uintptr_t *)blk = v;
}

/* Word 1 of a block going onto a list / of one on a list. */
static inline void block_set_free(void *blk, uintptr_t mark)
{
    uintptr_t v = mark;
    if (ns_config_hardened) {               /* fmix64 of address ^ secret */
        v = (uintptr_t)blk ^ mark;
        v ^= v >> 33;
        v *= 0xff51afd7ed558ccdu;
        v ^= v >> 33;
    }
    ((uintptr_t *)blk)[1] = v;
}
/* Does word 1 say "free"?  (Default builds only: hardened builds ask the
 * slab's bitmap.) */
static inline bool block_marked_free(const void *blk)
{
    return ((const uintptr_t *)blk)[1] == block_mark;
}

/* ------------------------------------------------------------- meta.c
 * Internal metadata (thread caches, large_t, node pools): fixed-size objects
 * from page-backed chunks, recycled through a free list per size.  Zeroed.
 * Never calls malloc.  NULL when the OS refuses memory. */
void *meta_alloc(size_t size);
void meta_free(void *p, size_t size);
void meta_lock_all(void);
void meta_unlock_all(bool child);

/* ---------------------------------------------------------- superslab.c */
extern slab_t ss_no_slab;          /* covers free units: capacity 0 */
void superslab_global_init(void);  /* start-up: block_mark */

static inline superslab_t *superslab_of(uintptr_t a)
{
    return (superslab_t *)(a & ~(uintptr_t)NS_SS_MASK);
}
static inline slab_t *slab_of(uintptr_t a)
{
    return superslab_of(a)->unit_slab[(a >> NS_UNIT_SHIFT) & (NS_UNITS - 1)];
}
/* Is a the start of one of s's blocks (carved or not)?  off < span < 2^32,
 * so off % size == 0 <=> off * divc < divc (mod 2^64), with divc =
 * (2^64 - 1) / size + 1 (Lemire, Kaser, Kurz: "Faster remainder by direct
 * computation", 2019): one multiply, no division. */
static inline bool slab_block_start(const slab_t *s, uintptr_t a)
{
    uint64_t off = a - s->start;
    return off < s->span && off * s->divc < s->divc;
}
/* Index of the block starting at a (slab_block_start(s, a) holds). */
static inline uint64_t slab_index(const slab_t *s, uintptr_t a)
{
    return ((a - s->start) * s->magic) >> 40;
}
/* Block index of address a in slab s, or -1 if a is not a carved block's
 * start.  Caller holds the bin lock (reads bump). */
static inline long slab_block_index(const slab_t *s, uintptr_t a)
{
    if (!slab_block_start(s, a) || slab_index(s, a) >= s->bump)
        return -1;
    return (long)slab_index(s, a);
}

/* Set up the header of a fresh SuperSlab mapping m (from hp_ss_map, bound
 * to its node by the caller) and register it in both maps; NULL (the
 * caller unmaps m) when the address map has no memory. */
superslab_t *superslab_init(void *m, uint32_t node, int backing);
void superslab_unmap(superslab_t *ss);
int superslab_find_units(const superslab_t *ss, unsigned k, bool unit0_ok); /* -1 */
/* The first unit where a slab of class cls fits (its length, unit 0 only
 * for small one-unit classes, at least one block before a tail guard);
 * -1 if none. */
int superslab_find_slab(const superslab_t *ss, unsigned cls);
slab_t *slab_carve(superslab_t *ss, unsigned u, unsigned units, unsigned cls, uint32_t size);
void slab_uncarve(superslab_t *ss, slab_t *s);

/* ------------------------------------------------------------- remote.c
 * Lock-free stack per slab of blocks freed by threads of other nodes.
 * remote_push: any thread; the first push after a drain by the owner
 * (NOTIFIED clear) also pushes the slab onto the owner's `pending` list.
 * remote_take: the owner; `clear` only for a slab just popped from its
 * pending list (see remote.c for why).  Returns the list, *n = its
 * length; its blocks are not read (hardened builds check each). */
typedef _Atomic(slab_t *) remote_pending_t;
void remote_push(slab_t *s, void *block, remote_pending_t *pending);
/* A run head..tail of n of s's blocks (word 0 links, encoded with s's key
 * in hardened builds; the tail's link is set here) in one exchange. */
void remote_push_run(slab_t *s, void *head, void *tail, uint32_t n, remote_pending_t *pending);
/* s (NOTIFIED) onto a pending list: the push that set the bit, or a list
 * that passes a notified slab on (numa/bin.c: to its owner's inbox). */
void remote_pending_push(remote_pending_t *pending, slab_t *s);
void *remote_take(slab_t *s, bool clear, uint32_t *n);
slab_t *remote_take_pending(remote_pending_t *pending);

/* ----------------------------------------------------------- hardened.c
 * Only called when ns_config_hardened.  hardened_on_free: at the start of
 * every free; false (after reporting) for a double free of a small block.
 * hardened_check_block then hardened_on_alloc: for every small block handed
 * to the user, before reading its link and after taking it off its list; a
 * block that is not a free block of its class means a corrupted list:
 * fatal. */
bool hardened_on_free(void *p);
/* before reading its link: a carved block of class cls on node `node`
 * (fatal otherwise); returns its index in its slab */
long hardened_check_block(void *p, unsigned cls, uint32_t node);
/* after it left its list: block i (from hardened_check_block) now in use */
void hardened_claim(void *p, long i);
void hardened_on_alloc(void *p, unsigned cls);      /* both, for a block from a bin */
/* A decoded link of slab s's lists: NULL or a carved block of s; fatal
 * otherwise.  Returns next. */
void *hardened_check_in_slab(const slab_t *s, void *next);
void hardened_slab_init(slab_t *s);     /* carve: keys and bitmap (or NULL) */
void hardened_slab_fini(slab_t *s);
void hardened_mark_free(slab_t *s, uint32_t first, uint32_t n);  /* carved blocks */
/* Two fresh random keys (getrandom; never derived from an address). */
void hardened_new_key(list_key_t *k);
/* A random number from this thread's pool (getrandom), for the hand-out
 * order of freshly carved blocks (and, in every build, the seed of the
 * heap profiler's sampling gaps, src/prof.c). */
uint64_t hardened_random(void);

/* ------------------------------------------------------------ validate.c
 * Full checks of a slab and a SuperSlab (Debug builds call them at every
 * state change; tests call them directly).  A broken invariant is fatal
 * with what broke.  The owner holds the slab's lock. */
void slab_validate(const slab_t *s);
void superslab_validate(const superslab_t *ss);

#endif
