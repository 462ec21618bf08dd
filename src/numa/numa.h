/* numa.h - the node heap: the topology (a leaf: hwloc in, tables out),
 * each node's pool (bins with their pending list, the slabs threads own, SuperSlab
 * lists), the large page heap, decay and release.  The only header code
 * outside src/numa includes for these.  Uses src/superslab, src/hugepage
 * and src/base.
 *
 * Glossary
 *   bin        per node and size class: the lock that owns the free lists
 *              of that class's slabs on that node, the list of its
 *              partially used slabs it owns, the pending list (bin_t).
 *   node pool  per NUMA node: its bins, its SuperSlabs, its large-mapping
 *              cache (node_pool_t).
 *   large      a block above NS_SMALL_MAX in a mapping of its own (large_t).
 */
#ifndef NS_NUMA_H
#define NS_NUMA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../superslab/superslab.h"

/* -------------------------------------------------------------------- bin */
typedef struct bin {
    pthread_mutex_t lock;
    slab_t *partial;            /* its own slabs with free or uncarved blocks */
    uint32_t npartial;
    uint32_t validations;       /* Debug builds: state changes seen        */
    uint64_t slabs;             /* slabs carved for this class now         */
    int64_t used_blocks;        /* blocks handed out of its own slabs      */
    remote_pending_t pending;   /* slabs whose remote stack got blocks     */
    uint64_t lock_acquires;     /* bin_lock (statistics: contention)       */
    uint64_t lock_contended;    /* ... that found the lock held            */
    uint32_t seen, seen_ms;     /* bin_release: lock_acquires (low bits) at
                                   its last look, clock_ms when they last
                                   changed (idle since)                    */
    /* counters of callers without a cache, and of owners that stopped */
    _Atomic uint64_t refills;   /* thread-cache misses                     */
    _Atomic uint64_t remote_drained;
    _Atomic uint64_t remote_batches;   /* runs of remote frees handed over  */
    _Atomic uint64_t remote_frees;     /* ... the blocks in them            */
} __attribute__((aligned(NS_CACHELINE_PAD))) bin_t;

/* ------------------------------------------------------------ owned slabs
 * What one thread owns (numa/bin.c): per class, the slab its refills take
 * from (`cur`), its other slabs with free blocks (`avail`) and without
 * (`full`), lists through slab.prev/next, slab.on saying which.  Only the
 * owner writes these; statistics read `used`, `refills`, `drained`
 * relaxed.  `inbox`: owned slabs whose remote stacks got blocks, passed on
 * by whoever drains their bin's pending list (under the bin lock). */
typedef struct owned_class {
    slab_t *cur, *avail, *full;
    int64_t used;               /* blocks handed out of these slabs        */
    uint64_t refills;           /* this thread's cache misses of the class */
} owned_class_t;

/* Blocks a thread freed for other nodes, parked in a run per destination
 * node (at most AWAY_RUNS nodes, AWAY_BATCH blocks a run) so that each run
 * reaches its node's transfer stack (node_pool_t.xfer) in one exchange
 * (numa/bin.c: bin_remote_free, owner_away_flush).  `busy`: the owner is
 * changing the runs (plain stores); `steal`: another thread flushes the
 * runs of an idle owner (owner_away_flush_idle; the protocol is in bin.c). */
#define AWAY_RUNS 8
#define AWAY_BATCH 64
#define AWAY_NODES 64           /* counters per destination node (the last: 63 and up) */
typedef struct away {
    _Atomic uint32_t busy, steal;
    uint32_t n, next;           /* runs in use; the oldest when all are    */
    uint64_t since_ms;          /* when the oldest parked run began        */
    uint32_t node[AWAY_RUNS];
    uint32_t count[AWAY_RUNS];
    void *head[AWAY_RUNS], *tail[AWAY_RUNS];
} away_t;

typedef struct owner {
    owned_class_t cls[NS_CLASSES];
    uint64_t drained;           /* remote frees drained into its slabs     */
    uint32_t node;              /* node of all its slabs                   */
    away_t away;
    /* by destination node: runs handed over, blocks in them (statistics:
     * written by the thread that flushes, read relaxed) */
    uint64_t away_batches[AWAY_NODES], away_blocks[AWAY_NODES];
    _Alignas(NS_CACHELINE_PAD) _Atomic(slab_t *) inbox; /* written by others */
    char pad_[NS_CACHELINE_PAD - sizeof(void *)];
} owner_t;

/* ----------------------------------------------------------------- large */
typedef struct large {
    uintptr_t base;             /* the block (and the mapping's start)     */
    size_t reserved;            /* bytes mapped, a multiple of 2 MiB       */
    size_t usable;              /* bytes the user may use, page multiple   */
    size_t touched;             /* high-water mark of usable (RSS bound):
                                   past it the pages are zero, not resident */
    size_t huge;                /* bytes from base asking for THP (whole
                                   2 MiB granules); the rest refuses them  */
    uint64_t cached_ms;         /* when it entered the cache               */
    struct large *prev, *next;  /* node cache list, newest first           */
    uint32_t node;
    uint8_t state;              /* NS_LARGE_LIVE / NS_LARGE_CACHED         */
    uint8_t huge1g;             /* on 1 GiB hugetlb pages                  */
} large_t;

enum { NS_LARGE_LIVE = 1, NS_LARGE_CACHED = 2 };

/* -------------------------------------------------------------- node pool */
/* A dense SuperSlab asks for a huge page once the node's heap spans this
 * many SuperSlabs (node_pool.c, pool_carved). */
#define SS_PROMOTE_MIN 4
/* Promoted SuperSlabs waiting for the release thread's collapse, per node
 * (more are left to khugepaged). */
#define SS_COLLAPSE_Q 16

typedef struct node_pool {
    bin_t bins[NS_CLASSES];
    /* SuperSlabs: ss_lock */
    pthread_mutex_t ss_lock;
    superslab_t *by_used[NS_UNITS]; /* lists of SuperSlabs with 1..31 used units, index = used */
    superslab_t *empty;         /* empty SuperSlabs, newest first          */
    superslab_t *empty_tail;
    uint64_t nsuperslabs;
    uint64_t nbacking[3];       /* SuperSlabs by HP_BACK_*                 */
    /* a thread maps and first touches a new SuperSlab with ss_lock
     * dropped (a huge-page fault takes milliseconds); others that need
     * one wait on `mapped` for it (node_pool.c, ss_new) */
    bool mapping;
    pthread_cond_t mapped;
    /* dense SuperSlabs on base pages until the heap spans SS_PROMOTE_MIN
     * SuperSlabs (node_pool.c, pool_carved) */
    superslab_t *dense_waiting[SS_PROMOTE_MIN];
    /* promoted SuperSlabs the release thread collapses into huge pages
     * (MADV_COLLAPSE takes milliseconds: not in a malloc call) */
    superslab_t *collapse_q[SS_COLLAPSE_Q];
    uint32_t ncollapse;
    uint64_t carved_ms;         /* when a slab was last carved here        */
    uint32_t uncarved;          /* units freed in SuperSlabs left in use,
                                   since the last decay_note for them      */
    _Atomic uint64_t released_bytes;
    /* large mappings: large_lock */
    pthread_mutex_t large_lock;
    large_t *lcache, *lcache_tail;  /* freed mappings, newest first        */
    uint64_t lcache_count, lcache_bytes;
    uint64_t large_count, large_bytes, large_usable;
    _Atomic uint64_t spills;    /* allocations for this node served by another */
    uint32_t node;
    /* blocks of this node freed by threads of other nodes, in runs of any
     * classes (a plain list, every block marked free): pushed with one
     * exchange a run, taken whole by a thread of this node at its next
     * refill or by the decay pass, which return them to their slabs */
    _Alignas(NS_CACHELINE_PAD) _Atomic(void *) xfer;
    char xfer_pad_[NS_CACHELINE_PAD - sizeof(void *)];
} node_pool_t;

/* --------------------------------------------------------------- topo.c */

/* The topology, immutable once published (room_ms/low: relaxed hints). */
typedef struct topo {
    uint32_t slots;                     /* highest node id + 1             */
    uint32_t ncpus;                     /* highest cpu id + 1              */
    uint32_t nused, first_used;         /* nodes numaslab allocates from   */
    size_t alloc_bytes;
    uint64_t *mem_total;                /* [slots] bytes                   */
    uint16_t *dist;                     /* [slots*slots] hwloc/SLIT units  */
    uint16_t *order;                    /* [slots*slots] used nodes nearest first */
    uint16_t *cpu_node;                 /* [ncpus] -> used node            */
    uint8_t *exists, *used;             /* [slots]                         */
    uint8_t *has_cpus;                  /* [slots] node has CPUs           */
    int bind_mode;                      /* TOPO_BIND_*: how mappings are bound */
    char why[128];                      /* which policy is in force, and why */
    uint64_t room_ms[NS_MAX_NODES];     /* last MemFree check              */
    uint8_t low[NS_MAX_NODES];          /* node below its reserve          */
} topo_t;

/* How SuperSlabs and large mappings are bound (topo_bind). */
enum {
    TOPO_BIND_PREFERRED = 0,    /* MPOL_PREFERRED to the node (default)     */
    TOPO_BIND_STRICT,           /* MPOL_BIND to the node (NUMASLAB_STRICT)  */
    TOPO_BIND_SET,              /* MPOL_BIND to the used set (task bind policy) */
    TOPO_BIND_INTERLEAVE,       /* MPOL_INTERLEAVE over the used set (task
                                   interleave policy): small blocks too   */
};

/* The task's memory policy and allowed nodes, as the kernel has them at
 * start-up (numactl, set_mempolicy, the cpuset). */
typedef struct topo_policy {
    int mode;                   /* MPOL_DEFAULT 0, PREFERRED 1, BIND 2,
                                   INTERLEAVE 3, LOCAL 4, PREFERRED_MANY 5 */
    nodeset_t nodes;            /* the policy's nodes (given: non-empty)   */
    nodeset_t allowed;          /* Mems_allowed (given: read)              */
} topo_policy_t;
/* get_mempolicy and /proc/self/status; fields not readable stay empty. */
void topo_read_policy(topo_policy_t *p);

struct hwloc_topology;
/* The tables of a loaded hwloc topology, restricted to the nodes in
 * `nodes` (options.nodes; warns and uses all if it names none that
 * exists); 0 or an errno.  Memory from meta_alloc. */
int topo_from_hwloc(struct hwloc_topology *t, const nodeset_t *nodes, topo_t **out);
/* The same under the task's policy `pol` (topo_read_policy).  Rules, the
 * first that applies: an explicit NUMASLAB_NODES picks the nodes; a bind
 * policy restricts them to its set and mappings are bound to the set; an
 * interleave policy restricts them to its set and interleaves every
 * mapping (small blocks too) unless NUMASLAB_INTERLEAVE is given; a
 * preferred policy makes its node every thread's home.  Always: only
 * nodes with memory in Mems_allowed; a node without CPUs is never a
 * thread's home while a used node with CPUs exists. */
int topo_from_hwloc_policy(struct hwloc_topology *t, const nodeset_t *nodes, const topo_policy_t *pol,
                           topo_t **out);
/* The nodes numaslab uses, from the nodes that exist and the option:
 * warns (as the allocator and the tool both do) when the option names no
 * existing node and then uses all of them. */
void topo_select_nodes(const uint8_t *exists, uint32_t slots, const nodeset_t *want, uint8_t *used);
/* Read the machine: NULL on a one-node machine (or without NUMA support),
 * which stays on the bootstrap; never fails otherwise but with ENOMEM. */
int topo_build(topo_t **out);
/* Publish tp (pools for its nodes must exist) and bind the bootstrap
 * mappings that are still ours to node 0. */
void topo_publish(topo_t *tp);
void topo_discard(topo_t *tp);
void topo_loaded(void);                 /* the bootstrap is over           */
/* Which policy decides the nodes, and why (statistics, the tool); t may
 * be NULL (one node). */
const char *topo_policy_text(const topo_t *t);
const topo_t *topo_get(void);           /* NULL: one node (bootstrap)      */
uint32_t topo_nodes(void);              /* node slots, >= 1                */
bool topo_node_valid(uint32_t node);
uint32_t topo_current_node(void);       /* node of the CPU running us      */
int topo_nearest(uint32_t home, uint32_t *pos); /* next nearest used node  */
/* Bind [p, p+size) to node before its first touch; failures are ignored
 * (the memory still works, only its placement is not guaranteed). */
void topo_bind(void *p, size_t size, uint32_t node);
void topo_bind_interleave(void *p, size_t size);
bool topo_node_has_room(uint32_t node); /* MemFree above the node's reserve */
bool topo_node_has_hugetlb_kb(uint32_t node, unsigned kb); /* 2048 or 1048576 */

/* ---------------------------------------------------------- node_pool.c
 * Lock order: bin.lock -> ss_lock -> (address map, meta);
 *             large_lock -> (address map, meta).  No two bins at once. */
extern node_pool_t *node_pools[NS_MAX_NODES];
static inline node_pool_t *node_pool(uint32_t node) { return node_pools[node]; }

/* Start-up of the layers up to here (OS page mode, free mark) and pool 0
 * (the bootstrap); 0 or ENOMEM. */
int node_heap_init(void);
/* Load the topology (once; from the constructor or a refill): pools for
 * its nodes, then publish it.  0 or an errno (the process stays on one
 * node). */
int node_heap_load_topology(void);
/* A new slab of class cls on the pool's node (fullest SuperSlab first,
 * then an empty one, then a new mapping; `need_room`: a new mapping only
 * if the node has room); NULL when none can be had.  bin lock held.  A new
 * mapping may promote dense SuperSlabs that waited: the caller calls
 * pool_collapse_pending once it holds no lock (a no-op when the release
 * thread runs: it collapses them). */
slab_t *pool_new_slab(node_pool_t *pool, unsigned cls, bool need_room);
/* `bytes` of slab s were handed out for the first time (slab_take): its
 * SuperSlab may have become dense, and then asks for a huge page (or
 * waits for the heap to span SS_PROMOTE_MIN SuperSlabs).  Takes
 * ss_lock when it does (bin lock held or none); the collapse into one
 * huge page is the release thread's, or, without it, waits for
 * pool_collapse_pending, which the refill paths call once they hold no
 * lock. */
void pool_carved(slab_t *s, size_t bytes);
void pool_collapse_pending(void);
/* Give the slab's units back (bin lock held); bytes unmapped. */
size_t pool_free_slab(node_pool_t *pool, slab_t *s);
/* Release empty slabs and SuperSlabs, and cached large mappings: `all` now,
 * otherwise those past the decay period.  Returns bytes unmapped. */
size_t node_pool_release(node_pool_t *pool, bool all);
/* Everything kept goes back now (ns_release, and an allocation the OS
 * refused, before it tries once more): node_pool_release(all) of every
 * node, then the SuperSlab reservations left without a SuperSlab.
 * Returns the bytes of memory unmapped; *unreserved (if not NULL) gets
 * the bytes of reservations.  Takes bin, ss and large locks in their
 * order: the caller holds none. */
size_t node_heap_release_all(size_t *unreserved);
/* The decay pass over every node, at most every NUMASLAB_DECAY_MS / 2
 * (whichever thread calls it first); nothing while the release thread
 * runs (decay.c). */
void node_heap_decay(void);
/* The pass of the release thread: what is due on every node; true when
 * something still waits for its decay. */
bool node_heap_decay_pass(void);
/* Set by the layer above (tiny/tcache.c: tcache_away_flush_idle): hands
 * over the cross-node frees that idle threads parked for at least age_ms;
 * true if none is left parked.  Both decay routes call it. */
extern bool (*node_heap_away_hook)(uint64_t age_ms);
/* Does any node keep an empty SuperSlab or a cached large mapping, or
 * a SuperSlab waiting for the release thread's collapse? */
bool node_heap_keeps(void);
void node_pools_lock_all(void);
void node_pools_unlock_all(bool child);
/* The pool's counters of bytes given back to the OS. */
static inline void pool_released(node_pool_t *pool, size_t bytes)
{
    atomic_fetch_add_explicit(&pool->released_bytes, bytes, memory_order_relaxed);
}

/* ---------------------------------------------------------------- bin.c
 * A slab belongs to its bin or to one owner (a thread; see bin.c). */
/* Up to `want` blocks of class cls from the bin's own slabs as a plain
 * list (word 0 = next); *got = count, 0 when no memory can be had.  For
 * callers without a cache (exiting threads, ns_malloc_onnode). */
void *bin_refill(node_pool_t *pool, unsigned cls, uint32_t want, uint32_t *got);
/* Up to `want` blocks of class cls for owner o (a plain list), from its
 * slabs on o->node without a lock, or up to `room` (>= want) when that
 * is a slab's whole free list, taken unread; a new slab from the bin when
 * they are exhausted (`need_room`: a new one only if the node has room,
 * topo_node_has_room).  *got = 0: none could be had. */
void *owned_take(owner_t *o, unsigned cls, uint32_t want, uint32_t room, uint32_t *got, bool need_room);
/* Blocks of class cls on `node` (a plain list) back to their slabs: onto
 * the free lists of o's own slabs (no lock), of the bin's slabs (one bin
 * lock for the lot), else onto their owners' remote stacks, one exchange
 * per run of blocks of one slab.  `o` NULL: a thread without a cache.
 * Bytes unmapped. */
size_t bin_return(owner_t *o, unsigned cls, uint32_t node, void *list);
/* o gives back its slabs of class cls that have free blocks (an idle
 * class); bytes unmapped. */
size_t owner_release_class(owner_t *o, unsigned cls);
/* o gives back every slab (thread exit, node change, a dead thread after
 * fork) and folds its counters into the bins; bytes unmapped. */
size_t owner_stop(owner_t *o);
/* After fork, in the child (one thread, `keep` its owner), the slabs of
 * the threads that no longer exist go back to their bins.  Their owners'
 * lists may have been half-changed when fork() copied the heap, so they
 * are not walked: every SuperSlab is.  In this order: forward every
 * notified slab to its owner's inbox (or drain it into its bin); forget
 * each dead owner (the remote frees in its inbox drained into their
 * slabs); adopt every slab owned by anyone but `keep`: its `used` counted
 * again from its free list (blocks a thread had in hand are lost with its
 * stack, and stay used), onto its bin's lists. */
void owner_fork_forward(void);
void owner_fork_forget(owner_t *o);
void owner_fork_adopt(const owner_t *keep);
/* Is block p on its slab's free list or remote stack? (double-free
 * check, slow; only slabs of the bin or of `o` are looked at) */
bool bin_holds(void *p, const owner_t *o);
/* Every list of o valid (Debug builds; the owner itself or a quiescent
 * heap); fn(p, arg) for each free block on its slabs' lists. */
void owner_validate(const owner_t *o, void (*fn)(void *arg, void *p, const char *where), void *arg);
/* A block of slab s freed by a thread of another node: onto the slab's
 * remote stack (its owner drains it). */
/* A block of another node's slab s freed by the owner o (a thread's; NULL:
 * a thread without a cache, handed over at once): parked in o's run for
 * s's node, which goes to that node's transfer stack when it holds
 * AWAY_BATCH blocks, when a ninth node needs a run, or at the owner's next
 * flush.  Hardened builds push each block onto its slab's remote stack
 * (links encoded with the slab's key) instead. */
void bin_remote_free(owner_t *o, slab_t *s, void *p);
/* The owner hands over every parked run (at refills, flushes, capacity
 * reviews, exit, fork). */
void owner_away_flush(owner_t *o);
/* Another thread hands over the runs of o if they are parked since at least
 * `age_ms` and o is not changing them; true if o has none left. */
bool owner_away_flush_idle(owner_t *o, uint64_t age_ms);
/* After fork, in the child: a dead owner's runs handed over (unless fork
 * caught it changing them: those blocks stay lost to the child). */
void owner_fork_away(owner_t *o);
/* The blocks on pool's transfer stack back to their slabs, as the owner
 * o (NULL: none) returns them; a block of a slab o does not own is first
 * offered to keep(arg, blk, cls) (NULL: none), which takes it or says no.
 * Count drained. */
uint64_t node_xfer_drain(node_pool_t *pool, owner_t *o, bool (*keep)(void *arg, void *blk, unsigned cls), void *arg);
/* Drain notified remote frees into the bin's slabs; with `all`, or when
 * nobody but this took the bin's lock for NUMASLAB_DECAY_MS, also release
 * every empty slab (the spare).  Bin lock not held; bytes unmapped. */
size_t bin_release(node_pool_t *pool, unsigned cls, bool all);
/* Full check of a bin (its partial list, every slab on it, the pending
 * list); bin lock held.  Debug builds call it at state changes. */
void bin_validate(node_pool_t *pool, unsigned cls);

/* -------------------------------------------------------------- decay.c
 * The background release thread (NUMASLAB_BACKGROUND; decay.c says when it
 * starts and ends).  decay_work: something became releasable since the
 * thread last looked; decay_state: DECAY_*. */
enum { DECAY_NONE = 0, DECAY_STARTING, DECAY_RUNNING, DECAY_OFF };
extern _Atomic uint32_t decay_state, decay_work;
/* Something became releasable (any lock may be held: no allocation, at
 * most a futex wake): an empty SuperSlab listed, a large mapping cached, a
 * SuperSlab's worth of units freed in SuperSlabs still in use. */
void decay_note(void);
/* The running thread has work now (a collapse): wakes it, parked or
 * napping.  Any lock may be held. */
void decay_wake(void);
/* Should a caller that holds no lock start the thread?  Two loads. */
static inline bool decay_wanted(void)
{
    return atomic_load_explicit(&decay_work, memory_order_relaxed) &&
           atomic_load_explicit(&decay_state, memory_order_relaxed) == DECAY_NONE;
}
/* Does the thread do the decay pass (the slow paths then skip it)? */
static inline bool decay_running(void)
{
    return atomic_load_explicit(&decay_state, memory_order_relaxed) == DECAY_RUNNING;
}
/* Start the thread (once; no allocator lock held); _for: on behalf of a
 * free() called from `caller`, not if that is the C library or the loader. */
void decay_start(void);
void decay_start_for(const void *caller);
/* A thread's cache was destroyed (no lock held): start the thread if
 * wanted; the main thread ending (pthread_exit) ends it for good. */
void decay_thread_exit(void);
void decay_fork_child(void);

/* -------------------------------------------------------------- large.c */
void *large_alloc(size_t size, size_t align, uint32_t node, bool zero);
void large_free(large_t *l, void *p);   /* reports invalid / double frees */
/* Resize without copying: in place, or by moving the pages (mremap); the
 * block's address (l->base) after it, or NULL: the caller copies. */
void *large_resize(large_t *l, size_t size);
size_t large_release_cached(node_pool_t *pool, uint64_t now_ms, bool all);

#endif
