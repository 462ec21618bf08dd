/* large.c - the large page heap: blocks above NS_SMALL_MAX, each in a
 * mapping of its own.
 *
 * A mapping is a whole number of 2 MiB granules, 2 MiB aligned (or more for
 * bigger alignments), so the address map tells it apart from everything
 * else; the block starts at the mapping's start, and its large_t record
 * lives in metadata, not in front of it.
 *
 * Huge pages (issue 14): the whole 2 MiB granules of a block ask for
 * transparent huge pages (NUMASLAB_LARGE_THP); the granule holding its tail
 * refuses them, and nothing past the block's end (rounded to a page) is
 * touched, so a fresh 2.9 MiB block written in full costs 2.9 MiB of RSS,
 * not 4, and a fresh 300 KiB block never becomes a 2 MiB resident page (a
 * block cut from a cached mapping keeps the pages the cache held, see
 * shape()).  The rest of the tail granule is address space only.  The
 * issue also proposed sharing a
 * granule between the tails of several blocks (a finer page heap, the
 * address map pointing to a small table per shared granule); keeping one
 * block per granule gives the same RSS with the address map and free()
 * unchanged, at the cost of up to 2 MiB of address space per block.  A
 * record's `huge` is the prefix asking for THP; shape() moves it whenever
 * a mapping takes a new size (cache reuse, realloc), and a shrink purges
 * what lies past the block.
 *
 * Growth (realloc past the reservation) does not copy: the granules after
 * the mapping are mapped if they are free, else the pages move to a new
 * reservation with mremap.
 *
 * Reuse: a freed mapping goes to its node's cache (newest first) instead of
 * back to the OS, keeping its pages, so a program that allocates and frees
 * multi-MiB blocks in a loop pays neither mmap nor page faults.  Like a page
 * heap, the cache splits and merges: a request takes the smallest cached
 * mapping that fits, and the part it does not need stays cached as a
 * mapping of its own; a freed mapping merges with cached neighbours (pieces
 * of one split, or mappings the kernel placed side by side).  The cache
 * holds at most NUMASLAB_LARGE_CACHE bytes per node; a mapping older than
 * NUMASLAB_DECAY_MS is unmapped on the next pass (ns_release: all of them).
 *
 * Locking: the cache, the counters and large_t.state/usable belong to the
 * node pool's large_lock; it is taken before the address map's and meta's
 * locks and never together with a bin or ss lock.
 */
#include <errno.h>
#include <string.h>

#include "../hugepage/hugepage.h"
#include "numa.h"

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

static void unlink_cached(node_pool_t *pool, large_t *l)
{
    if (l->prev) l->prev->next = l->next; else pool->lcache = l->next;
    if (l->next) l->next->prev = l->prev; else pool->lcache_tail = l->prev;
    l->prev = l->next = NULL;
    pool->lcache_count--;
    pool->lcache_bytes -= l->reserved;
}

static void link_cached(node_pool_t *pool, large_t *l)
{
    l->state = NS_LARGE_CACHED;
    l->prev = NULL;
    l->next = pool->lcache;
    if (pool->lcache) pool->lcache->prev = l; else pool->lcache_tail = l;
    pool->lcache = l;
    pool->lcache_count++;
    pool->lcache_bytes += l->reserved;
    decay_note();
}

/* Can cached mapping c serve `reserved` bytes?  Any size can (shape()
 * sets its huge pages for the new block).  A 1 GiB page mapping is never
 * split: it serves requests of at least half its size. */
static bool fits(const large_t *c, size_t reserved)
{
    if (c->huge1g)
        return c->reserved >= reserved && c->reserved <= 2 * reserved;
    return c->reserved >= reserved;
}

/* The smallest cached mapping that fits, unlinked, cut to `reserved` when a
 * record for the rest can be had (the rest stays cached, as new); NULL if
 * none fits.  large_lock held. */
static large_t *cache_take(node_pool_t *pool, size_t reserved)
{
    large_t *l = NULL;
    for (large_t *c = pool->lcache; c; c = c->next)
        if (fits(c, reserved) && (!l || c->reserved < l->reserved)) {
            l = c;
            if (c->reserved == reserved)
                break;
        }
    if (!l)
        return NULL;
    unlink_cached(pool, l);
    if (l->reserved > reserved && !l->huge1g) {
        large_t *rest = meta_alloc(sizeof(*rest));
        if (rest && addrmap_set(l->base + reserved, l->reserved - reserved, (uintptr_t)rest | NS_MAP_LARGE) == 0) {
            *rest = *l;
            rest->base = l->base + reserved;
            rest->reserved = l->reserved - reserved;
            rest->touched = l->touched > reserved ? l->touched - reserved : 0;
            rest->huge = l->huge > reserved ? l->huge - reserved : 0;
            rest->cached_ms = clock_ms();   /* at the head: the newest */
            link_cached(pool, rest);
            l->reserved = reserved;
            if (l->touched > reserved)
                l->touched = reserved;
            if (l->huge > reserved)
                l->huge = reserved;
        } else if (rest) {
            meta_free(rest, sizeof(*rest));   /* serve the request with all of l */
        }
    }
    return l;
}

/* The cached mapping of pool that ends at a (or starts at a, `after`),
 * not on 1 GiB pages and not due for release at `now`, or NULL (whether
 * its huge-page advice lets it join is joinable()'s question).
 * large_lock held.  Found on the pool's own cache list, not through the
 * address map: a neighbour there may be another node's record, which only
 * that node's lock protects (it may be changing or being recycled). */
static large_t *cached_neighbour(const node_pool_t *pool, uintptr_t a, bool after, uint64_t now)
{
    for (large_t *n = pool->lcache; n; n = n->next)
        if ((after ? n->base == a : n->base + n->reserved == a) && n->state == NS_LARGE_CACHED && !n->huge1g &&
            now - n->cached_ms <= (uint64_t)options.decay_ms)
            return n;
    return NULL;
}

/* Can lo and hi, the mapping right after it, become one record?  Its huge
 * part must stay a prefix: if lo has granules refusing huge pages, hi's
 * huge ones are made to refuse them too (not the other way round: a cached
 * tail granule with some resident pages must not be collapsed into a
 * whole 2 MiB page by khugepaged).  large_lock held. */
static bool joinable(const large_t *lo, large_t *hi)
{
    if (lo->huge == lo->reserved || hi->huge == 0)
        return true;
    if (hp_thp((void *)hi->base, hi->huge, false) != 0)
        return false;
    hi->huge = 0;
    return true;
}

/* lo takes over hi.  Both are mapped already, so addrmap_set only
 * repoints entries of existing leaves: it cannot fail. */
static void absorb(large_t *lo, large_t *hi)
{
    int rc = addrmap_set(hi->base, hi->reserved, (uintptr_t)lo | NS_MAP_LARGE);
    ns_assert(rc == 0);
    (void)rc;
    if (hi->touched)
        lo->touched = lo->reserved + hi->touched;
    if (lo->huge == lo->reserved)
        lo->huge += hi->huge;
    lo->reserved += hi->reserved;
    meta_free(hi, sizeof(*hi));
}

/* Merge the freed (not yet cached) l with its cached neighbours, up to
 * half the budget (the largest mapping the cache takes: a bigger record
 * would be the first to go, and with it all the cache holds); returns the
 * record that now covers it.  large_lock held. */
static large_t *merge(node_pool_t *pool, large_t *l, uint64_t now)
{
    if (l->huge1g)
        return l;
    uint64_t half = (uint64_t)options.large_cache / 2;
    large_t *n = cached_neighbour(pool, l->base + l->reserved, true, now);
    if (n && l->reserved + n->reserved <= half && joinable(l, n)) {
        unlink_cached(pool, n);
        absorb(l, n);
    }
    large_t *p = cached_neighbour(pool, l->base, false, now);
    if (p && p->reserved + l->reserved <= half && joinable(p, l)) {
        unlink_cached(pool, p);
        absorb(p, l);
        l = p;
    }
    return l;
}

/* The part of a block of `need` bytes that asks for huge pages: its whole
 * 2 MiB granules, none with NUMASLAB_LARGE_THP=0. */
static size_t huge_part(size_t need)
{
    return options.large_thp ? need & ~NS_SS_MASK : 0;
}

/* Fit the live mapping l to a block of `need` bytes: its whole granules
 * ask for huge pages, the rest refuses them, and with `purge` (a shrink)
 * nothing past the block stays resident (a huge page there is split).  A
 * cached mapping reused for a smaller block keeps its pages past the end:
 * they were resident in the cache already, and keeping them is what the
 * cache is for (a program that frees and allocates multi-MiB blocks of
 * varying sizes pays no page faults: dropping them made the 60 blocks of
 * `bench/numa/large.c 1 60` take 12,571 faults instead of 1,881).  Failed
 * system calls leave the record as
 * the kernel has it: only RSS suffers (and only a successful purge lowers
 * `touched`, which bounds what a later calloc has to clear).  Refusing
 * first, then purging: khugepaged cannot collapse the tail in between.
 * No lock: the caller owns l. */
static void shape(large_t *l, size_t need, bool purge)
{
    if (l->huge1g)
        return;
    size_t want = huge_part(need);
    if (want < l->huge && hp_thp((void *)(l->base + want), l->huge - want, false) == 0)
        l->huge = want;
    if (purge && l->touched > need && hp_purge((void *)(l->base + need), l->touched - need) == 0)
        l->touched = need;
    if (want > l->huge && hp_thp((void *)(l->base + l->huge), want - l->huge, true) == 0)
        l->huge = want;
}

static void bind(void *m, size_t size, uint32_t node)
{
    if (options.interleave)
        topo_bind_interleave(m, size);
    else
        topo_bind(m, size, node);
}

static void destroy(node_pool_t *pool, large_t *l)
{
    addrmap_clear(l->base, l->reserved);
    hp_unmap((void *)l->base, l->reserved);
    pool_released(pool, l->reserved);
    meta_free(l, sizeof(*l));
}

void *large_alloc(size_t size, size_t align, uint32_t node, bool zero)
{
    if (size > NS_MAX_REQUEST)
        return NULL;
    size_t need = round_up(size ? size : 1, ns_page_size());
    size_t reserved = round_up(need, NS_SS_SIZE);
    node_pool_t *pool = node_pool(node);
    large_t *l = NULL;

    if (align <= NS_SS_SIZE) {
        lock_take(&pool->large_lock, LOCK_LARGE);
        l = cache_take(pool, reserved);
        if (l) {
            l->state = NS_LARGE_LIVE;
            l->usable = need;
            pool->large_count++;
            pool->large_bytes += l->reserved;
            pool->large_usable += need;
        }
        lock_drop(&pool->large_lock, LOCK_LARGE);
        if (l) {
            shape(l, need, false);
            if (zero)
                memset((void *)l->base, 0, need < l->touched ? need : l->touched);
            if (need > l->touched)
                l->touched = need;
            return (void *)l->base;
        }
    }

    if (!options.strict && !topo_node_has_room(node)) {  /* spill to the nearest node with room */
        uint32_t pos = 0;
        int n;
        while ((n = topo_nearest(node, &pos)) >= 0 && !topo_node_has_room((uint32_t)n)) {}
        if (n >= 0) {
            atomic_fetch_add_explicit(&pool->spills, 1, memory_order_relaxed);
            node = (uint32_t)n;
            pool = node_pool(node);
        }
    }
    void *m;
    const size_t gib = (size_t)1 << 30;
    bool huge1g = false;
    if (options.huge_1g && need >= gib && align <= gib && topo_node_has_hugetlb_kb(node, 1048576) &&
        hp_map_1g((need + gib - 1) & ~(gib - 1), &m) == 0) {
        huge1g = true;          /* NUMASLAB_HUGE_1G: whole 1 GiB pages */
        reserved = (need + gib - 1) & ~(gib - 1);
    } else if (hp_map(reserved, align > NS_SS_SIZE ? align : NS_SS_SIZE, huge_part(need), &m) != 0) {
        return NULL;
    }
    bind(m, reserved, node);
    l = meta_alloc(sizeof(*l));
    if (!l) {
        hp_unmap(m, reserved);
        return NULL;
    }
    l->base = (uintptr_t)m;
    l->reserved = reserved;
    l->usable = need;
    l->touched = need;
    l->node = node;
    l->state = NS_LARGE_LIVE;
    l->huge1g = huge1g;
    l->huge = huge1g ? 0 : huge_part(need);
    if (addrmap_set(l->base, reserved, (uintptr_t)l | NS_MAP_LARGE) != 0) {
        hp_unmap(m, reserved);
        meta_free(l, sizeof(*l));
        return NULL;
    }
    lock_take(&pool->large_lock, LOCK_LARGE);
    pool->large_count++;
    pool->large_bytes += reserved;
    pool->large_usable += need;
    lock_drop(&pool->large_lock, LOCK_LARGE);
    return m;
}

void large_free(large_t *l, void *p)
{
    node_pool_t *pool = node_pool(l->node);
    large_t *evict = NULL;
    lock_take(&pool->large_lock, LOCK_LARGE);
    if (l->state != NS_LARGE_LIVE || (uintptr_t)p != l->base) {
        bool dbl = l->state == NS_LARGE_CACHED;   /* freed, maybe merged with a neighbour */
        lock_drop(&pool->large_lock, LOCK_LARGE);
        error_invalid("free", p, dbl ? "double free" : "interior pointer of a large block");
        return;
    }
    pool->large_count--;
    pool->large_bytes -= l->reserved;
    pool->large_usable -= l->usable;
    uint64_t budget = (uint64_t)options.large_cache;
    if (l->reserved * 2 > budget) {
        l->state = 0;
        lock_drop(&pool->large_lock, LOCK_LARGE);
        destroy(pool, l);
        return;
    }
    uint64_t now = clock_ms();
    l = merge(pool, l, now);
    l->cached_ms = now;
    link_cached(pool, l);
    /* over budget or too old: unmap from the oldest end */
    while (pool->lcache_tail && (pool->lcache_bytes > budget ||
                                 l->cached_ms - pool->lcache_tail->cached_ms > (uint64_t)options.decay_ms)) {
        large_t *t = pool->lcache_tail;
        unlink_cached(pool, t);
        t->state = 0;
        t->next = evict;
        evict = t;
    }
    lock_drop(&pool->large_lock, LOCK_LARGE);
    while (evict) {
        large_t *next = evict->next;
        destroy(pool, evict);
        evict = next;
    }
}

/* Make l's reservation hold `need` bytes without copying: map the
 * granules after it if they are free, else move its pages (mremap) to the
 * start of a new reservation and unmap the old one.  0, or an errno (l
 * unchanged).  No lock: the caller owns l. */
static int grow(large_t *l, size_t need)
{
    node_pool_t *pool = node_pool(l->node);
    size_t reserved = round_up(need, NS_SS_SIZE), more = reserved - l->reserved;
    uintptr_t base = l->base, end = l->base + l->reserved;
    void *m;
    int rc;
    if (hp_map_at((void *)end, more) == 0) {
        bind((void *)end, more, l->node);
        if ((rc = addrmap_set(end, more, (uintptr_t)l | NS_MAP_LARGE)) != 0) {
            hp_unmap((void *)end, more);
            return rc;
        }
    } else {
        if ((rc = hp_map(reserved, NS_SS_SIZE, 0, &m)) != 0)
            return rc;
        bind(m, reserved, l->node);    /* the moved pages keep their own binding */
        if ((rc = addrmap_set((uintptr_t)m, reserved, (uintptr_t)l | NS_MAP_LARGE)) == 0 &&
            (rc = hp_move((void *)base, l->reserved, m)) != 0)
            addrmap_clear((uintptr_t)m, reserved);
        if (rc != 0) {
            hp_unmap(m, reserved);
            return rc;
        }
        base = (uintptr_t)m;
        /* retire the old range: out of the map before it is unmapped, so
         * that whoever maps there next is not cleared by us */
        addrmap_clear(l->base, l->reserved);
        hp_unmap((void *)l->base, l->reserved);
    }
    lock_take(&pool->large_lock, LOCK_LARGE);
    l->base = base;
    l->reserved = reserved;
    pool->large_bytes += more;
    lock_drop(&pool->large_lock, LOCK_LARGE);
    return 0;
}

void *large_resize(large_t *l, size_t size)
{
    size_t need = round_up(size ? size : 1, ns_page_size());
    if (need > l->reserved && (l->huge1g || grow(l, need) != 0))
        return NULL;
    node_pool_t *pool = node_pool(l->node);
    lock_take(&pool->large_lock, LOCK_LARGE);
    pool->large_usable += need;
    pool->large_usable -= l->usable;
    l->usable = need;
    lock_drop(&pool->large_lock, LOCK_LARGE);
    shape(l, need, true);
    if (need > l->touched)
        l->touched = need;
    return (void *)l->base;
}

size_t large_release_cached(node_pool_t *pool, uint64_t now_ms, bool all)
{
    large_t *evict = NULL;
    size_t bytes = 0;
    lock_take(&pool->large_lock, LOCK_LARGE);
    while (pool->lcache_tail && (all || now_ms - pool->lcache_tail->cached_ms >= (uint64_t)options.decay_ms)) {
        large_t *t = pool->lcache_tail;
        unlink_cached(pool, t);
        t->state = 0;
        t->next = evict;
        evict = t;
        bytes += t->reserved;
    }
    lock_drop(&pool->large_lock, LOCK_LARGE);
    while (evict) {
        large_t *next = evict->next;
        destroy(pool, evict);
        evict = next;
    }
    return bytes;
}
