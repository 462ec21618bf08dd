/* node_pool.c - the pool of each NUMA node: creation, the topology load,
 * its SuperSlab lists, slabs carved from and returned to them, release
 * and the decay pass.  The bins live in bin.c, large mappings in large.c.
 *
 * Lock order: bin.lock -> ss_lock -> (address map, meta).  large_lock
 * (large.c) is never held with a bin or ss lock.  A thread holds at most
 * one bin lock (but fork's prepare handler, which takes them all in order).
 *
 * SuperSlab lists (under ss_lock): by_used[u] holds SuperSlabs with u used
 * units (1..31); full ones are on no list; empty ones are on `empty`,
 * newest first, and go back to the OS after NUMASLAB_DECAY_MS, or at once
 * past a small reserve.  New slabs come from the fullest SuperSlab with
 * room, so lightly used SuperSlabs drain and can be released whole.
 */
#include <errno.h>
#include <string.h>

#include "../hugepage/hugepage.h"
#include "numa.h"

node_pool_t *node_pools[NS_MAX_NODES];
static _Atomic uint32_t npools;

#define SS_FULL_BUCKET NS_UNITS
#define SS_EMPTY_BUCKET (NS_UNITS + 1)
#define SS_SCAN_PER_BUCKET 4
/* A SuperSlab with fewer units carved than this is sparse: once the pool
 * is idle, its free units go back (ss_purge_idle).  (Whether it gets a
 * huge page is decided by the bytes handed out: SS_DENSE_BYTES.) */
#define SS_SPARSE_UNITS (NS_UNITS / 2)
/* Huge pages where they pay (THP mode): a SuperSlab is dense once three
 * quarters of its bytes were handed out (carved_bytes: a slab's blocks are
 * handed out from its start, so this is the part the program touched;
 * carved units alone are no measure, since each class in use takes a
 * 64 KiB unit for its first block).  Not half: a huge page makes the
 * untouched rest resident, up to 2x the touched part at one half, 1.33x
 * at three quarters (rptest at one thread: 12.1 -> 9.3 MiB).  A dense
 * SuperSlab asks for a huge page (collapsed soon after, outside any
 * lock: pool_collapse_queued) once the node's heap spans SS_PROMOTE_MIN
 * SuperSlabs; before that it waits on base pages (pool->dense_waiting):
 * a heap of a few MiB fits the TLB's reach on base pages (a small
 * producer/consumer program: 0.8 MiB less).  A new SuperSlab starts on
 * base pages unless SS_HUGE_START SuperSlabs of the node already ask for
 * huge pages (dense ones, or new ones of a heap this big): a heap that
 * big will fill its next SuperSlab too, and a huge page taken at the first
 * fault costs no copy. */
#define SS_DENSE_BYTES (NS_SS_SIZE / 4 * 3)
#define SS_HUGE_START 2

/* Pools are created once and never freed; a pool is fully initialised
 * before npools covers it (release), and the topology naming its node is
 * published after that. */
static int node_pools_grow(uint32_t slots)
{
    for (uint32_t n = atomic_load(&npools); n < slots; n++) {
        node_pool_t *p = meta_alloc(sizeof(node_pool_t));
        if (!p)
            return ENOMEM;
        p->node = n;
        pthread_mutex_init(&p->ss_lock, NULL);
        pthread_cond_init(&p->mapped, NULL);
        pthread_mutex_init(&p->large_lock, NULL);
        for (unsigned c = 0; c < NS_CLASSES; c++)
            pthread_mutex_init(&p->bins[c].lock, NULL);
        node_pools[n] = p;
        atomic_store_explicit(&npools, n + 1, memory_order_release);
    }
    return 0;
}

int node_heap_init(void)
{
    hp_init();
    superslab_global_init();
    return node_pools_grow(1);
}

int node_heap_load_topology(void)
{
    static _Atomic int once;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&once, &expected, 1))
        return 0;
    topo_t *tp;
    int err = topo_build(&tp);
    if (tp && node_pools_grow(tp->slots) == 0)
        topo_publish(tp);
    else
        topo_discard(tp);
    topo_loaded();
    return err;
}

/* ------------------------------------------------------ SuperSlab lists */
static void ss_unlink(node_pool_t *pool, superslab_t *ss)
{
    if (ss->bucket == SS_FULL_BUCKET)
        return;
    superslab_t **head = ss->bucket == SS_EMPTY_BUCKET ? &pool->empty : &pool->by_used[ss->bucket];
    if (ss->prev) ss->prev->next = ss->next; else *head = ss->next;
    if (ss->next) ss->next->prev = ss->prev;
    else if (ss->bucket == SS_EMPTY_BUCKET) pool->empty_tail = ss->prev;
    ss->prev = ss->next = NULL;
}

/* After a carve or an uncarve (ss unlinked): onto the list of its used
 * units.  An empty one waits for its decay. */
static void ss_link(node_pool_t *pool, superslab_t *ss)
{
    uint32_t b = ss->used_units == 0 ? SS_EMPTY_BUCKET : ss->used_units == NS_UNITS ? SS_FULL_BUCKET : ss->used_units;
    ss->bucket = b;
    ss->purged_mask &= ss->free_mask;   /* a carved unit is touched again */
    if (b == SS_FULL_BUCKET)
        return;
    superslab_t **head = b == SS_EMPTY_BUCKET ? &pool->empty : &pool->by_used[b];
    ss->prev = NULL;
    ss->next = *head;
    if (*head) (*head)->prev = ss;
    else if (b == SS_EMPTY_BUCKET) pool->empty_tail = ss;
    *head = ss;
    if (b == SS_EMPTY_BUCKET) {
        ss->empty_since_ms = clock_ms();
        decay_note();
    }
}

/* A SuperSlab goes (ss_collect_empty), or waits again: it waits no more.  ss_lock held. */
static void stop_waiting(node_pool_t *pool, superslab_t *ss)
{
    for (unsigned i = 0; i < SS_PROMOTE_MIN; i++)
        if (pool->dense_waiting[i] == ss)
            pool->dense_waiting[i] = NULL;
}

/* A SuperSlab goes: it is collapsed no more (the queue holds live ones
 * only, so the release thread may read them under ss_lock).  ss_lock held. */
static void collapse_forget(node_pool_t *pool, superslab_t *ss)
{
    for (uint32_t i = 0; i < pool->ncollapse;)
        if (pool->collapse_q[i] == ss)
            pool->collapse_q[i] = pool->collapse_q[--pool->ncollapse];
        else
            i++;
}

/* Unlink empty SuperSlabs to unmap: all, those past the decay period, or
 * those beyond the reserve.  ss_lock held; returns a list (next links). */
static superslab_t *ss_collect_empty(node_pool_t *pool, bool all)
{
    uint64_t now = clock_ms();
    uint64_t reserve = 2 + pool->nsuperslabs / 8, nempty = 0;
    for (superslab_t *e = pool->empty; e; e = e->next)
        nempty++;
    superslab_t *out = NULL;
    while (pool->empty_tail) {
        superslab_t *t = pool->empty_tail;
        if (!all && nempty <= reserve && now - t->empty_since_ms < (uint64_t)options.decay_ms)
            break;
        ss_unlink(pool, t);
        stop_waiting(pool, t);
        collapse_forget(pool, t);
        pool->nsuperslabs--;
        pool->nbacking[t->backing]--;
        nempty--;
        t->next = out;
        out = t;
    }
    return out;
}

static size_t ss_unmap_list(node_pool_t *pool, superslab_t *list)
{
    size_t bytes = 0;
    while (list) {
        superslab_t *next = list->next;
        superslab_unmap(list);
        bytes += NS_SS_SIZE;
        list = next;
    }
    if (bytes)
        pool_released(pool, bytes);
    return bytes;
}

/* Drop the pages of units [u, u + n) of ss, free units (the header's pages
 * stay: unit 0 starts with it).  ss_lock held. */
static void ss_purge_units(superslab_t *ss, unsigned u, unsigned n)
{
    uintptr_t first = (uintptr_t)ss + ((uintptr_t)u << NS_UNIT_SHIFT);
    size_t len = (size_t)n << NS_UNIT_SHIFT;
    if (u == 0) {   /* the header's pages, whole (16/64 KiB pages too) */
        size_t page = ns_page_size(), head = (NS_SS_HEADER + page - 1) & ~(page - 1);
        first += head, len -= head;
    }
    if (hp_purge((void *)first, len) == 0)
        ss->purged_mask |= (n == 32 ? ~0u : ((1u << n) - 1u)) << u;
}

/* A SuperSlab on transparent huge pages stops asking for them, before
 * units of it are purged (khugepaged would make them resident again):
 * counted as on base pages from now on.  ss_lock held. */
static void ss_split(node_pool_t *pool, superslab_t *ss)
{
    if (ss->backing != HP_BACK_THP || hp_thp(ss, NS_SS_SIZE, false) != 0)
        return;
    pool->nbacking[HP_BACK_THP]--;
    pool->nbacking[HP_BACK_BASE]++;
    ss->backing = HP_BACK_BASE;
    ss->split = 1;
}

/* ... and asks for them again once it is dense (true).  ss_lock held. */
static bool ss_rejoin(node_pool_t *pool, superslab_t *ss)
{
    if (!ss->split || hp_thp(ss, NS_SS_SIZE, true) != 0)
        return false;
    pool->nbacking[HP_BACK_BASE]--;
    pool->nbacking[HP_BACK_THP]++;
    ss->backing = HP_BACK_THP;
    ss->split = 0;
    return true;
}

/* Collapsing a promoted SuperSlab (MADV_COLLAPSE) allocates a huge page
 * and copies what is there while it holds the process's mmap lock: 1-8 ms
 * on this kind of machine, so not under an allocator lock, and not in the
 * user's malloc call when the release thread runs: it does it then
 * (pool->collapse_q, taken first by its pass: pool_collapse_queued; woken
 * at once).  A collapse is never the reason to start that thread (a
 * process that only allocates stays single-threaded: README "Background
 * release"): without it the thread that promoted the SuperSlab collapses
 * it once it holds no lock (pool_collapse_pending), as it did before the
 * thread existed.  (Faults into a dense SuperSlab's range get base pages
 * until it is collapsed: its page table exists already.)
 *
 * Is a SuperSlab taken off a collapse list still one of ours?  A waiting
 * one may have fallen empty and gone back meanwhile (it is no longer in
 * the address map: cleared before the unmap).  What is left is the
 * instant between this look and the call: a slot unmapped and mapped
 * again by someone else within it would only have its pages made huge (a
 * collapse keeps contents), and a slot of a SuperSlab reservation cannot
 * be (it stays reserved). */
static bool still_mapped(const superslab_t *ss)
{
    return addrmap_lookup((uintptr_t)ss) == ((uintptr_t)ss | NS_MAP_SS);
}

/* The thread-local list (the thread off): filled from the first slot; one
 * promotion wakes at most SS_PROMOTE_MIN (the waiting ones and itself);
 * more would be left to khugepaged.  `held`: the thread holds blocks of it
 * (the one whose carve made it dense), so it cannot go meanwhile; a
 * waiting one it may not hold can. */
typedef struct collapse {
    superslab_t *ss;
    bool held;
} collapse_t;
static __thread collapse_t collapse_pending[SS_PROMOTE_MIN] __attribute__((tls_model("initial-exec")));

void pool_collapse_pending(void)
{
    if (NS_LIKELY(collapse_pending[0].ss == NULL))
        return;
    for (unsigned i = 0; i < SS_PROMOTE_MIN && collapse_pending[i].ss; i++) {
        collapse_t c = collapse_pending[i];
        collapse_pending[i].ss = NULL;
        /* its pages so far become one huge page now (the later faults of
         * a THP range that already has base pages would not); without
         * MADV_COLLAPSE khugepaged does it in its own time */
        if (c.held || still_mapped(c.ss))
            hp_ss_collapse(c.ss);
    }
}

/* The release thread's share of promotions: every queued SuperSlab still
 * on huge pages and in use (not split, emptied or purged since) is
 * collapsed, outside the lock.  The queue holds live SuperSlabs
 * (collapse_forget). */
static void pool_collapse_queued(node_pool_t *pool)
{
    superslab_t *q[SS_COLLAPSE_Q];
    uint32_t n = 0;
    lock_take(&pool->ss_lock, LOCK_SS);
    for (uint32_t i = 0; i < pool->ncollapse; i++) {
        superslab_t *ss = pool->collapse_q[i];
        if (ss->backing == HP_BACK_THP && !ss->split && ss->used_units >= SS_SPARSE_UNITS && !ss->purged_mask)
            q[n++] = ss;    /* not one emptied or purged since: a collapse would fill its holes */
    }
    pool->ncollapse = 0;
    lock_drop(&pool->ss_lock, LOCK_SS);
    for (uint32_t i = 0; i < n; i++)
        if (still_mapped(q[i]))
            hp_ss_collapse(q[i]);
}

/* ss asks for huge pages again, and is collapsed by the release thread
 * (or, with none, after the lock drops).  ss_lock held. */
static void promote(node_pool_t *pool, superslab_t *ss, bool held)
{
    if (!ss_rejoin(pool, ss))
        return;
    if (decay_running() && pool->ncollapse < SS_COLLAPSE_Q) {
        pool->collapse_q[pool->ncollapse++] = ss;
        decay_wake();
        return;
    }
    for (unsigned i = 0; i < SS_PROMOTE_MIN; i++)
        if (!collapse_pending[i].ss) {
            collapse_pending[i] = (collapse_t){ss, held};
            return;
        }
}

/* The node's heap now spans SS_PROMOTE_MIN SuperSlabs: the dense ones
 * that waited on base pages are promoted (one whose blocks went back
 * meanwhile just stops waiting).  ss_lock held. */
static void promote_waiting(node_pool_t *pool)
{
    if (pool->nsuperslabs < SS_PROMOTE_MIN)
        return;
    for (unsigned i = 0; i < SS_PROMOTE_MIN; i++) {
        superslab_t *ss = pool->dense_waiting[i];
        pool->dense_waiting[i] = NULL;
        if (ss && atomic_load_explicit(&ss->carved_bytes, memory_order_relaxed) >= SS_DENSE_BYTES)
            promote(pool, ss, false);
    }
}

void pool_carved(slab_t *s, size_t bytes)
{
    superslab_t *ss = superslab_of(s->start);
    size_t before = atomic_fetch_add_explicit(&ss->carved_bytes, bytes, memory_order_relaxed);
    if (before >= SS_DENSE_BYTES || before + bytes < SS_DENSE_BYTES)
        return;             /* not the crossing: the common case */
    node_pool_t *pool = node_pool(ss->node);
    lock_take(&pool->ss_lock, LOCK_SS);
    if (!ss->split) {
        /* huge already */
    } else if (pool->nsuperslabs >= SS_PROMOTE_MIN) {
        promote(pool, ss, true);
    } else {
        stop_waiting(pool, ss);     /* at most once in the list */
        for (unsigned i = 0; i < SS_PROMOTE_MIN; i++)
            if (!pool->dense_waiting[i]) {
                pool->dense_waiting[i] = ss;
                break;
            }
    }
    lock_drop(&pool->ss_lock, LOCK_SS);
}

/* Once no slab was carved on the node for NUMASLAB_DECAY_MS, sparse
 * SuperSlabs (fewer than SS_SPARSE_UNITS units carved) give back the pages of
 * their free units: the release thread's pass, for what an idle process
 * keeps around the slabs it still uses (its threads' current slabs and
 * cached blocks, which only they can give back).  A huge page is split
 * for it (ss_split): the RSS drops at once, and the kernel frees the
 * unused part of a split huge page when it splits the page itself (under
 * memory pressure).  true: a sparse SuperSlab waits for the pool to be
 * idle.  ss_lock held. */
static bool ss_purge_idle(node_pool_t *pool, uint64_t now)
{
    bool idle = now - pool->carved_ms >= (uint64_t)options.decay_ms;
    for (unsigned b = 1; b < SS_SPARSE_UNITS; b++)
        for (superslab_t *ss = pool->by_used[b]; ss; ss = ss->next) {
            uint32_t todo = ss->free_mask & ~ss->purged_mask;
            if (!todo || ss->backing == HP_BACK_HUGETLB)
                continue;
            if (!idle)
                return true;
            ss_split(pool, ss);
            for (unsigned u = 0, n; u < NS_UNITS; u += n) {   /* each run of free units at once */
                for (n = 0; u + n < NS_UNITS && (todo >> (u + n) & 1); n++) {}
                if (n)
                    ss_purge_units(ss, u, n);
                else
                    n = 1;
            }
        }
    return false;
}

/* A fresh SuperSlab for the node: mapped with the page kind the mode asks
 * for (THP: base pages until it is dense, unless the node's heap is big),
 * bound to the node before its first touch, its header set up.  ss_lock
 * held on entry and on return, but dropped meanwhile: the header's first
 * touch may fault a huge page in (milliseconds when the kernel zeroes or
 * compacts for it), and the node's other threads go on freeing slabs and
 * carving from the SuperSlabs it has; those that need a new one too wait
 * for this one (pool_new_slab).  The caller holds a bin lock, so fork's
 * prepare handler, which takes them all first, never meets a mapping
 * half done. */
static superslab_t *ss_new(node_pool_t *pool)
{
    void *m;
    int mode = hp_mode(), backing;
    bool hugetlb = mode == OPT_PAGES_HUGETLB || (mode == OPT_PAGES_AUTO && topo_node_has_hugetlb_kb(pool->node, 2048));
    bool sparse = hp_thp_possible() && pool->nbacking[HP_BACK_THP] < SS_HUGE_START;
    superslab_t *ss = NULL;
    pool->mapping = true;
    lock_drop(&pool->ss_lock, LOCK_SS);
    if (hp_ss_map(hugetlb, mode != OPT_PAGES_HUGETLB || options.hugetlb_fallback, sparse, &backing, &m) == 0) {
        topo_bind(m, NS_SS_SIZE, pool->node);
        if (!(ss = superslab_init(m, pool->node, backing)))
            hp_ss_unmap(m);
    }
    lock_take(&pool->ss_lock, LOCK_SS);
    pool->mapping = false;
    pthread_cond_broadcast(&pool->mapped);
    if (!ss)
        return NULL;
    ss->split = sparse && backing == HP_BACK_BASE;
    pool->nsuperslabs++;
    pool->nbacking[ss->backing]++;
    promote_waiting(pool);
    ss->bucket = SS_FULL_BUCKET;   /* on no list yet */
    return ss;
}

/* The SuperSlab a new slab of class cls comes from: the fullest one with
 * room, else an empty one; NULL if none (*u: the slab's first unit).
 * ss_lock held. */
static superslab_t *find_room(node_pool_t *pool, unsigned cls, int *u)
{
    for (unsigned b = NS_UNITS - 1; b >= 1; b--) {
        unsigned scanned = 0;
        for (superslab_t *c = pool->by_used[b]; c && scanned < SS_SCAN_PER_BUCKET; c = c->next, scanned++)
            if ((*u = superslab_find_slab(c, cls)) >= 0)
                return c;
    }
    if (pool->empty) {
        *u = superslab_find_slab(pool->empty, cls);
        return pool->empty;
    }
    return NULL;
}

/* Wait (ss_lock held) until the SuperSlab being mapped is there or a slab
 * went back.  pthread_cond_wait is a cancellation point and malloc must
 * not be one: a thread cancelled there would leave holding ss_lock and
 * its bin lock. */
static void wait_mapped(node_pool_t *pool)
{
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    pthread_cond_wait(&pool->mapped, &pool->ss_lock);
    pthread_setcancelstate(old, NULL);
}

slab_t *pool_new_slab(node_pool_t *pool, unsigned cls, bool need_room)
{
    slab_t *s = NULL;
    lock_take(&pool->ss_lock, LOCK_SS);
    int u = -1;
    superslab_t *ss;
    while (!(ss = find_room(pool, cls, &u)) && pool->mapping)
        wait_mapped(pool);      /* a new one is on its way: then look again */
    if (!ss && (!need_room || topo_node_has_room(pool->node)) && (ss = ss_new(pool)) != NULL)
        u = superslab_find_slab(ss, cls);
    if (ss) {
        ns_assert(u >= 0 && ss->node == pool->node);
        ss_unlink(pool, ss);
        s = slab_carve(ss, (unsigned)u, sizeclass_units[cls], cls, sizeclass_size[cls]);
        ss_link(pool, ss);
        pool->carved_ms = clock_ms();
    }
    lock_drop(&pool->ss_lock, LOCK_SS);
    return s;
}

size_t pool_free_slab(node_pool_t *pool, slab_t *s)
{
    superslab_t *ss = superslab_of(s->start);
    lock_take(&pool->ss_lock, LOCK_SS);
    ss_unlink(pool, ss);
    unsigned u = s->first_unit, n = s->units;
    slab_uncarve(ss, s);
    ss_link(pool, ss);
    /* NUMASLAB_PURGE_PARTIAL: free units of a SuperSlab still in use go
     * back too (unit 0 keeps its header page) */
    if (options.purge_partial && ss->used_units > 0 && ss->backing != HP_BACK_HUGETLB)
        ss_purge_units(ss, u, n);
    /* units that fall free in SuperSlabs still in use may go back once
     * the pool is idle (ss_purge_idle): every SuperSlab's worth of them
     * is something to release */
    if (ss->used_units > 0 && (pool->uncarved += n) >= NS_UNITS) {
        pool->uncarved = 0;
        decay_note();
    }
    superslab_t *dead = ss->used_units == 0 ? ss_collect_empty(pool, false) : NULL;
    if (pool->mapping)
        pthread_cond_broadcast(&pool->mapped);   /* room again: a waiter may not need the new one */
    lock_drop(&pool->ss_lock, LOCK_SS);
    return ss_unmap_list(pool, dead);
}

/* ------------------------------------------------------------- release */
size_t node_pool_release(node_pool_t *pool, bool all)
{
    size_t bytes = 0;
    node_xfer_drain(pool, NULL, NULL, NULL);    /* frees by other nodes no thread here has taken */
    for (unsigned c = 0; c < NS_CLASSES; c++)
        bytes += bin_release(pool, c, all);
    lock_take(&pool->ss_lock, LOCK_SS);
    superslab_t *dead = ss_collect_empty(pool, all);
    lock_drop(&pool->ss_lock, LOCK_SS);
    bytes += ss_unmap_list(pool, dead);
    return bytes + large_release_cached(pool, clock_ms(), all);
}

size_t node_heap_release_all(size_t *unreserved)
{
    size_t bytes = 0;
    for (uint32_t n = 0; n < topo_nodes(); n++)
        bytes += node_pool_release(node_pool(n), true);
    size_t trimmed = hp_ss_trim();
    if (unreserved)
        *unreserved = trimmed;
    return bytes;
}

bool (*node_heap_away_hook)(uint64_t age_ms);

static bool away_all_handed(void)
{
    bool (*hook)(uint64_t) = node_heap_away_hook;
    return !hook || hook((uint64_t)options.decay_ms);
}

void node_heap_decay(void)
{
    static _Atomic uint64_t last_ms;
    if (decay_running())
        return;             /* the release thread does it */
    uint64_t now = clock_ms();
    uint64_t last = atomic_load_explicit(&last_ms, memory_order_relaxed);
    if (now - last >= (uint64_t)options.decay_ms / 2 &&
        atomic_compare_exchange_strong_explicit(&last_ms, &last, now, memory_order_relaxed, memory_order_relaxed)) {
        away_all_handed();
        for (uint32_t n = 0; n < topo_nodes(); n++) {
            pool_collapse_queued(node_pool(n));   /* queued before the thread ended */
            node_pool_release(node_pool(n), false);
        }
    }
}

/* Does the pool keep an empty SuperSlab or a cached large mapping (with
 * `purge`: or purge an idle sparse SuperSlab, or does one wait for it)? */
static bool pool_keeps(node_pool_t *pool, bool purge)
{
    lock_take(&pool->ss_lock, LOCK_SS);
    bool keeps = pool->empty != NULL || pool->ncollapse > 0;   /* or a collapse waits */
    if (purge)
        keeps |= ss_purge_idle(pool, clock_ms());
    lock_drop(&pool->ss_lock, LOCK_SS);
    lock_take(&pool->large_lock, LOCK_LARGE);
    keeps |= pool->lcache != NULL;
    lock_drop(&pool->large_lock, LOCK_LARGE);
    return keeps;
}

bool node_heap_keeps(void)
{
    bool keeps = false;
    for (uint32_t n = 0; n < topo_nodes() && !keeps; n++)
        keeps = pool_keeps(node_pool(n), false);
    return keeps;
}

bool node_heap_decay_pass(void)
{
    bool keeps = !away_all_handed();    /* runs parked: look again later */
    for (uint32_t n = 0; n < topo_nodes(); n++)
        pool_collapse_queued(node_pool(n));     /* first: a purge after it may split them again */
    for (uint32_t n = 0; n < topo_nodes(); n++) {
        node_pool_release(node_pool(n), false);
        keeps |= pool_keeps(node_pool(n), true);
    }
    return keeps;
}

/* --------------------------------------------------------------- fork */
void node_pools_lock_all(void)
{
    uint32_t n_ = atomic_load(&npools);
    lock_order_fork(true);      /* every bin lock at once: fork only */
    for (uint32_t n = 0; n < n_; n++)
        for (unsigned c = 0; c < NS_CLASSES; c++)
            lock_take(&node_pools[n]->bins[c].lock, LOCK_BIN);
    lock_order_fork(false);
    for (uint32_t n = 0; n < n_; n++)
        lock_take(&node_pools[n]->ss_lock, LOCK_SS);
    for (uint32_t n = 0; n < n_; n++)
        lock_take(&node_pools[n]->large_lock, LOCK_LARGE);
}

void node_pools_unlock_all(bool child)
{
    uint32_t n_ = atomic_load(&npools);
    for (uint32_t n = 0; n < n_; n++) {
        node_pool_t *p = node_pools[n];
        if (child) {
            pthread_mutex_init(&p->large_lock, NULL);
            pthread_mutex_init(&p->ss_lock, NULL);
            pthread_cond_init(&p->mapped, NULL);
            p->mapping = false;     /* every mapper holds a bin lock: none was mid-way */
            for (unsigned c = 0; c < NS_CLASSES; c++)
                pthread_mutex_init(&p->bins[c].lock, NULL);
        } else {
            lock_drop(&p->large_lock, LOCK_LARGE);
            lock_drop(&p->ss_lock, LOCK_SS);
            for (unsigned c = 0; c < NS_CLASSES; c++)
                lock_drop(&p->bins[c].lock, LOCK_BIN);
        }
    }
}
