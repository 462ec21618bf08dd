/* large.c - the large page heap: blocks above NS_SMALL_MAX, each in a
 * mapping of its own.
 *
 * A mapping is a whole number of 2 MiB granules, 2 MiB aligned (or more for
 * bigger alignments), so the address map tells it apart from everything
 * else; the block starts at the mapping's start, and its large_t record
 * lives in metadata, not in front of it.  Mappings of 2 MiB and more ask for
 * transparent huge pages; smaller ones refuse them (a 300 KiB block must not
 * become a 2 MiB resident page).
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

/* Can cached mapping c serve `reserved` bytes of page kind `thp`?  A 1 GiB
 * page mapping is never split: it serves requests of at least half its
 * size. */
static bool fits(const large_t *c, size_t reserved, bool thp)
{
    if (c->huge1g)
        return c->reserved >= reserved && c->reserved <= 2 * reserved;
    return c->thp == thp && c->reserved >= reserved;
}

/* The smallest cached mapping that fits, unlinked, cut to `reserved` when a
 * record for the rest can be had (the rest stays cached, as new); NULL if
 * none fits.  large_lock held. */
static large_t *cache_take(node_pool_t *pool, size_t reserved, bool thp)
{
    large_t *l = NULL;
    for (large_t *c = pool->lcache; c; c = c->next)
        if (fits(c, reserved, thp) && (!l || c->reserved < l->reserved)) {
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
            rest->cached_ms = clock_ms();   /* at the head: the newest */
            link_cached(pool, rest);
            l->reserved = reserved;
            if (l->touched > reserved)
                l->touched = reserved;
        } else if (rest) {
            meta_free(rest, sizeof(*rest));   /* serve the request with all of l */
        }
    }
    return l;
}

/* The cached mapping of pool that ends at a (or starts at a, `after`),
 * with the same page kind as l, not due for release at `now`, or NULL.
 * large_lock held.  Found on the pool's own cache list, not through the
 * address map: a neighbour there may be another node's record, which only
 * that node's lock protects (it may be changing or being recycled). */
static large_t *cached_neighbour(const node_pool_t *pool, const large_t *l, uintptr_t a, bool after, uint64_t now)
{
    for (large_t *n = pool->lcache; n; n = n->next)
        if ((after ? n->base == a : n->base + n->reserved == a) && n->state == NS_LARGE_CACHED && !n->huge1g &&
            n->thp == l->thp && now - n->cached_ms <= (uint64_t)options.decay_ms)
            return n;
    return NULL;
}

/* Merge the freed (not yet cached) l with its cached neighbours; returns
 * the record that now covers it.  large_lock held. */
/* lo takes over hi, the mapping right after it.  Both are mapped already,
 * so addrmap_set only repoints entries of existing leaves: it cannot fail. */
static void absorb(large_t *lo, large_t *hi)
{
    int rc = addrmap_set(hi->base, hi->reserved, (uintptr_t)lo | NS_MAP_LARGE);
    ns_assert(rc == 0);
    (void)rc;
    if (hi->touched)
        lo->touched = lo->reserved + hi->touched;
    lo->reserved += hi->reserved;
    meta_free(hi, sizeof(*hi));
}

static large_t *merge(node_pool_t *pool, large_t *l, uint64_t now)
{
    if (l->huge1g)
        return l;
    large_t *n = cached_neighbour(pool, l, l->base + l->reserved, true, now);
    if (n) {
        unlink_cached(pool, n);
        absorb(l, n);
    }
    large_t *p = cached_neighbour(pool, l, l->base, false, now);
    if (p) {
        unlink_cached(pool, p);
        absorb(p, l);
        l = p;
    }
    return l;
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
        l = cache_take(pool, reserved, need >= NS_SS_SIZE);
        if (l) {
            l->state = NS_LARGE_LIVE;
            l->usable = need;
            pool->large_count++;
            pool->large_bytes += l->reserved;
            pool->large_usable += need;
        }
        lock_drop(&pool->large_lock, LOCK_LARGE);
        if (l) {
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
    } else if (hp_map(reserved, align > NS_SS_SIZE ? align : NS_SS_SIZE, need >= NS_SS_SIZE, &m) != 0) {
        return NULL;
    }
    if (options.interleave)
        topo_bind_interleave(m, reserved);
    else
        topo_bind(m, reserved, node);
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
    l->thp = !huge1g && need >= NS_SS_SIZE;
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

int large_resize(large_t *l, size_t size)
{
    size_t need = round_up(size ? size : 1, ns_page_size());
    if (need > l->reserved)
        return -1;
    node_pool_t *pool = node_pool(l->node);
    lock_take(&pool->large_lock, LOCK_LARGE);
    pool->large_usable += need;
    pool->large_usable -= l->usable;
    l->usable = need;
    lock_drop(&pool->large_lock, LOCK_LARGE);
    /* shrinking: give back whole 2 MiB units past the new end */
    size_t keep = round_up(need, NS_SS_SIZE);
    /* only a successful purge zeroes the tail: `touched` bounds what a
     * later calloc of this mapping has to clear */
    if (l->touched > keep && !l->huge1g &&
        hp_purge((void *)(l->base + keep), round_up(l->touched, NS_SS_SIZE) - keep) == 0)
        l->touched = keep;
    if (need > l->touched)
        l->touched = need;
    return 0;
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
