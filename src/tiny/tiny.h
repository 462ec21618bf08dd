/* tiny.h - thread caches and the malloc and free fast paths.  The only
 * header code outside src/tiny includes for these.  Uses src/numa and
 * everything below it.
 *
 * Glossary
 *   tcache     per thread: a LIFO list of free blocks per class (tcache_t),
 *              all of one node (tcache.node).
 *   tbin       one class's list in a tcache, with its room and capacity.
 */
#ifndef NS_TINY_H
#define NS_TINY_H

#include <stddef.h>
#include <stdint.h>

#include "../numa/numa.h"

/* ----------------------------------------------------------------- tcache */
typedef struct tbin {
    void *head;                 /* LIFO list, word 0 = next                */
    uint32_t room;              /* cap - blocks in the list (tbin_count)   */
    uint32_t cap;               /* a push when room is 0 flushes (slow path) */
    uint32_t left;              /* pops until the next countdown event     */
    uint32_t span;              /* what `left` started from (0: 2^32)      */
    uint64_t allocs;            /* blocks handed out before this countdown:
                                   with span - left, the blocks handed out
                                   (statistics; owner writes, others read
                                   relaxed: tcache_allocs)                 */
} __attribute__((aligned(32))) tbin_t;

typedef struct tcache {
    /* the fast paths read only bins, direct, tag, mark and key */
    tbin_t bins[NS_CLASSES];
    tbin_t *direct[NS_LUT_MAX / 16 + 1]; /* &bins[class of n]; sentinels: &bins[0] */
    uint32_t tag;               /* ssmap_thread_tag(node); sentinels: 256  */
    uintptr_t mark;             /* block_mark: word 1 of a block in a list
                                   (a copy: free() reads it in one load)  */
    list_key_t key;             /* hardened: secret of this cache's lists  */
    int32_t node;               /* node of all blocks in bins; -1: sentinel*/
    uint32_t kind;              /* NS_TC_LIVE / NS_TC_INIT / NS_TC_DEAD    */
    /* slow path only */
    uint16_t events[NS_CLASSES];/* refills + flushes since the last tick   */
    uint32_t tick_events;
    uint64_t spill_until_ms;    /* spilled to a nearer node: stay until then */
    uint64_t idle_since_ms[NS_CLASSES]; /* last tick that saw events or use of the class */
    uint64_t review_allocs[NS_CLASSES]; /* its blocks handed out at the last tick */
    uint32_t countdown_epoch;   /* tcache_countdown_epoch its countdowns follow */
    struct tcache *prev, *next; /* all live caches (tcache.c list lock)    */
    owner_t own;                /* the slabs it owns (numa/bin.c)          */
} tcache_t;

enum { NS_TC_LIVE = 0, NS_TC_INIT = 1, NS_TC_DEAD = 2 };

/* unit_fast_t.binoff (superslab.h) is cls << NS_TBIN_SHIFT: the offset of
 * the class's tbin in a tcache_t. */
_Static_assert(sizeof(tbin_t) == (size_t)1 << NS_TBIN_SHIFT, "a tbin is 1 << NS_TBIN_SHIFT bytes");
_Static_assert(offsetof(tcache_t, bins) == 0, "binoff is an offset from the tcache's start");

/* ------------------------------------------------------------- tcache.c */
extern __thread tcache_t *tcache_tls;

/* A class's first refills start small (see CAP_FIRST_BYTES in tcache.c);
 * white-box unit tests that count batches from the first refill turn it
 * off. */
extern bool tcache_slow_start;

/* Called at the top of tcache_alloc_slow once the cache is live, when set
 * (src/init.c sets it: live statistics, src/live.c); holds no lock. */
extern void (*tcache_slow_hook)(void);
/* The countdown of a class (tbin.left) counts the blocks handed out; when
 * it reaches 0 the fast path calls tcache_countdown, which adds the
 * countdown to tbin.allocs, offers the block to the sampling hook and
 * starts the next countdown (tcache_draw_hook's length, or 2^32 pops when
 * no hook is set).  This is how the heap profiler (src/prof.c) samples
 * small blocks at the cost of one instruction on the fast path, and how
 * the per-class request counts of the statistics stay exact.  A change of
 * the hooks bumps tcache_countdown_epoch: each thread restarts its
 * countdowns at its next slow path. */
extern void (*tcache_sample_hook)(void *p, unsigned cls);
extern uint32_t (*tcache_draw_hook)(unsigned cls);
extern _Atomic uint32_t tcache_countdown_epoch;
void *tcache_countdown(tcache_t *tc, tbin_t *b, void *p);
/* The calling thread follows the current hooks now (not at its next slow
 * path). */
void tcache_countdown_refresh(void);
/* Locks of the layer above (src/prof.c), taken in fork's prepare handler
 * after stdio's and before any allocator lock; phase 0 prepare, 1 parent,
 * 2 child. */
extern void (*tcache_fork_above)(int phase);
/* malloc when the fast path cannot pop (empty list, no cache yet, a head
 * without the free mark: fatal); NULL: ENOMEM. */
void *tcache_alloc_slow(tcache_t *tc, unsigned cls);
/* free() of a block start p of slab s that the fast path did not take:
 * double-free check, then the thread's cache, its node's bin, or the
 * block's remote stack.  (src/free.c classifies the pointer first.) */
void tcache_free_small(void *p, slab_t *s);
/* Start every layer (options, OS, free mark, node pool 0, the thread-exit
 * key) once; false: no memory (malloc then fails with ENOMEM).  Called
 * by the first slow path of the process. */
bool tcache_start(void);
bool tcache_started(void);
/* Slow-path events between two reviews of a cache's capacities. */
#define TCACHE_TICK 256
#define TCACHE_CAP_MAX 512       /* blocks per class list, at most        */
/* fn(tc, arg) for every live cache, under the list lock. */
void tcache_each_live(void (*fn)(const tcache_t *tc, void *arg), void *arg);
/* Remote frees parked by live threads for other nodes (numa.h, away_t)
 * since at least age_ms handed over, from any thread; true if none is
 * left parked (a thread changing its runs keeps them). */
bool tcache_away_flush_idle(uint64_t age_ms);
/* Is the small block p known to be free (in this thread's cache or its
 * slab's free list; any list in hardened builds)?  Slow; for realloc and
 * malloc_usable_size of a freed pointer. */
bool tcache_block_is_free(void *p);
tcache_t *tcache_get(void);      /* this thread's live cache, or NULL */
size_t tcache_flush_all(tcache_t *tc);   /* bytes this unmapped */
/* The OS refused memory or address space: this thread's cache and
 * everything the heap keeps go back (node_heap_release_all), for one more
 * try; false when nothing did (a retry would fail again).  Called where
 * the allocation failed, holding no lock. */
bool tcache_give_back(void);
/* One block of class cls from node's bin, past any cache (a thread without
 * one, caching off, ns_malloc_onnode), after a give-back if the first try
 * got none; NULL without memory. */
void *tcache_alloc_uncached(unsigned cls, uint32_t node);
void tcache_fork_child(void);
void tcache_fork_handlers(void);  /* fork.c: pthread_atfork, at start-up */
void tcache_lock_list(void);
void tcache_unlock_list(bool child);
uint64_t tcache_count(void);
/* allocations per class by all threads, live and exited (for statistics) */
void tcache_allocs(uint64_t out[NS_CLASSES]);
/* ------------------------------------------------------------ validate.c
 * Full check of a cache: every list holds marked block starts of its
 * class on the cache's node, each once, as many as cap - room says. */
void tcache_validate(const tcache_t *tc);
/* The whole heap at rest (no other thread allocating or freeing): every
 * live cache and its owned slabs, every bin (partial slabs, pending list) of every
 * node, each SuperSlab met against both maps; and no block on two lists
 * (a cache's, a slab's free list or remote stack).  Fatal on a violation;
 * returns the number of free blocks seen on lists.  For tests. */
uint64_t tcache_validate_heap(void);

/* ------------------------------------------------------------ fast paths */
static inline uint32_t tbin_count(const tbin_t *b)
{
    return b->cap - b->room;
}

/* Can the head of b be popped on the fast path?  Not when the list is
 * empty; not when the head lacks the free mark that every block on a list
 * carries: then it is not a free block (a write after free pointed the
 * list at it, as in free-list poisoning with a plain pointer), and the
 * slow path reports it before its link is read or it is handed out.
 * Hardened builds check the block against its slab's bitmap instead. */
static inline bool tbin_ready(const tcache_t *tc, const tbin_t *b)
{
    void **p = b->head;
    if (NS_UNLIKELY(p == NULL))
        return false;
    return ns_config_hardened || NS_LIKELY((uintptr_t)p[1] == tc->mark);
}

/* Pop a block of b (not empty); word 1 (the free mark) cleared; the
 * class's countdown goes on. */
static inline void *tbin_pop(tcache_t *tc, tbin_t *b, unsigned cls)
{
    void **p = b->head;
    long hi = ns_config_hardened ? hardened_check_block(p, cls, (uint32_t)tc->node) : 0;
    b->head = link_get(p, &tc->key);
    b->room++;
    if (ns_config_hardened)
        hardened_claim(p, hi);
    /* the mark goes only after the block left the list, and comes before
     * it joins one (tbin_push): a fork() snapshot taken by another thread
     * between the two stores never finds a list block without its mark
     * (a compiler barrier, no instruction: x86 keeps a thread's stores in
     * program order) */
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    p[1] = NULL;
    if (NS_UNLIKELY(count_down(&b->left)))
        return tcache_countdown(tc, b, p);
    return p;
}

/* Push p onto b (room left; p a block of b's class on tc's node). */
static inline void tbin_push(tcache_t *tc, tbin_t *b, void **p, uintptr_t mark)
{
    link_set(p, b->head, &tc->key);
    block_set_free(p, mark);
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    b->head = p;
    b->room--;
}

static inline void *tcache_alloc(unsigned cls)
{
    tcache_t *tc = tcache_tls;
    tbin_t *b = &tc->bins[cls];
    if (!tbin_ready(tc, b))
        return tcache_alloc_slow(tc, cls);
    return tbin_pop(tc, b, cls);
}

/* malloc(n) for n <= NS_LUT_MAX: the cache's direct table replaces the
 * class lookup (the class is only needed on the slow path). */
static inline void *tcache_alloc_direct(size_t n)
{
    tcache_t *tc = tcache_tls;
    tbin_t *b = tc->direct[(n + 15) >> 4];
    if (!tbin_ready(tc, b))
        return tcache_alloc_slow(tc, sizeclass_lut[(n + 15) >> 4]);
    return tbin_pop(tc, b, ns_config_hardened ? (unsigned)(b - tc->bins) : 0);
}

/* free()'s fast path: one byte of the SuperSlab map (ours, and this
 * thread's node), the unit's copy of its slab, the block-start test, one
 * push.  false: everything unusual (not ours, large, interior, another
 * node, a full cache, a suspected double free, no cache yet) for the slow
 * path (src/free.c). */
static inline bool tcache_try_free(void *ptr)
{
    if (ns_config_hardened && !hardened_on_free(ptr))
        return true;        /* a double free, reported */
    uintptr_t a = (uintptr_t)ptr;
    tcache_t *tc = tcache_tls;
    /* ssmap_tag(a) == tc->tag, written out: through the helper gcc loads
     * tc->tag before the range check, one instruction more */
    uintptr_t g = a >> NS_SS_SHIFT;
    if (NS_LIKELY(g < NS_SSMAP_SIZE && __atomic_load_n(&ssmap[g], __ATOMIC_RELAXED) == tc->tag)) {
        const unit_fast_t *u = &superslab_of(a)->fast[(a >> NS_UNIT_SHIFT) & (NS_UNITS - 1)];
        uint64_t off = a - u->start;
        tbin_t *b = (tbin_t *)((char *)tc + u->binoff);
        void **p = ptr;
        uintptr_t mark = tc->mark;
        if (NS_LIKELY(off < u->span && off * u->divc < u->divc && b->room != 0 &&
                      (ns_config_hardened || (uintptr_t)p[1] != mark))) {
            tbin_push(tc, b, p, mark);
            return true;
        }
    }
    return false;
}

#endif
