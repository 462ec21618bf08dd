/* validate.c - full checks of thread caches and of the whole heap.
 *
 * tcache_validate runs at every capacity review of a cache in Debug builds
 * (tcache.c: tick).  tcache_validate_heap is for tests at a quiescent
 * point: it walks every list of free blocks (thread caches, the free lists
 * and remote stacks of owned and bin-owned slabs) and marks each block in
 * a bitmap per SuperSlab, so a block
 * on two lists, or twice on one, is found wherever the two lists are.
 */
#include "../hugepage/hugepage.h"
#include "tiny.h"

void tcache_validate(const tcache_t *tc)
{
    if (tc->kind != NS_TC_LIVE)
        return;
    NS_CHECK(tc->mark == block_mark && tc->tag == ssmap_thread_tag(tc->node), "cache mark and tag", tc);
    owner_validate(&tc->own, NULL, NULL);
    for (unsigned c = 0; c < NS_CLASSES; c++) {
        const tbin_t *b = &tc->bins[c];
        NS_CHECK(b->room <= b->cap && b->cap <= TCACHE_CAP_MAX, "room <= cap <= TCACHE_CAP_MAX", b);
        uint32_t n = 0;
        for (void **p = b->head; p; p = link_get(p, &tc->key)) {
            uintptr_t a = (uintptr_t)p;
            NS_CHECK(ssmap_tag(a) == ssmap_node_tag((uint32_t)tc->node), "a cached block is on the cache's node", p);
            const slab_t *s = slab_of(a);
            NS_CHECK(s->cls == c && slab_block_start(s, a) && slab_index(s, a) < s->bump,
                  "a cached block is a carved block of its class", p);
            NS_CHECK(ns_config_hardened || block_marked_free(p), "a cached block carries the free mark", p);
            NS_CHECK(++n <= tbin_count(b), "cached list longer than cap - room (a cycle, or a block twice?)", p);
        }
        NS_CHECK(n == tbin_count(b), "cap - room counts the list", b);
    }
}

/* ------------------------------------------------------- the whole heap */
#define SEEN_BITS (NS_SS_SIZE / 16)             /* a bit per 16 bytes  */
#define SEEN_MAX 4096                           /* SuperSlabs tracked  */

typedef struct seen {
    uintptr_t ss[SEEN_MAX];
    uint64_t *bits[SEEN_MAX];
    uint32_t n;
    uint64_t blocks;
} seen_t;

static void mark(seen_t *t, void *p, const char *where)
{
    uintptr_t a = (uintptr_t)p, ss = a & ~(uintptr_t)NS_SS_MASK;
    uint32_t i = 0;
    while (i < t->n && t->ss[i] != ss)
        i++;
    if (i == t->n) {
        void *m;
        NS_CHECK(t->n < SEEN_MAX && hp_map(SEEN_BITS / 8, NS_PAGE_MIN, 0, &m) == 0,
                 "heap validator: room to track the SuperSlab", p);
        superslab_validate((const superslab_t *)ss);
        t->ss[i] = ss;
        t->bits[i] = m;
        t->n++;
    }
    uint64_t bit = (a & NS_SS_MASK) / 16;
    if (t->bits[i][bit / 64] & (1ull << (bit % 64))) {
        error_warn("heap validator: a block is on two lists, or twice on one; the second time on ", where);
        error_fatal("validate: a free block is in exactly one list", p);
    }
    t->bits[i][bit / 64] |= 1ull << (bit % 64);
    t->blocks++;
}

static void mark_owned(void *arg, void *p, const char *where)
{
    mark(arg, p, where);
}

static void mark_cache(const tcache_t *tc, void *arg)
{
    tcache_validate(tc);
    for (unsigned c = 0; c < NS_CLASSES; c++) {
        for (void **p = tc->bins[c].head; p; p = link_get(p, &tc->key))
            mark(arg, p, "a thread cache");
    }
    owner_validate(&tc->own, mark_owned, arg);
}

uint64_t tcache_validate_heap(void)
{
    static seen_t t;            /* callers are tests, one at a time */
    t.n = 0;
    t.blocks = 0;
    tcache_each_live(mark_cache, &t);
    for (uint32_t n = 0; n < topo_nodes(); n++) {
        node_pool_t *pool = node_pool(n);
        for (unsigned c = 0; c < NS_CLASSES; c++) {
            bin_t *b = &pool->bins[c];
            lock_take(&b->lock, LOCK_BIN);
            bin_validate(pool, c);
            for (slab_t *s = b->partial; s; s = s->next)
                for (void *p = s->free; p; p = link_get(p, &s->key))
                    mark(&t, p, "a slab's free list");
            for (slab_t *s = atomic_load_explicit(&b->pending, memory_order_acquire); s; s = s->pending_next)
                if (!atomic_load_explicit(&s->owner, memory_order_relaxed))   /* owned: walked above */
                for (void *p = remote_top(atomic_load_explicit(&s->remote, memory_order_acquire));
                     p; p = link_get(p, &s->key))
                    mark(&t, p, "a slab's remote stack");
            lock_drop(&b->lock, LOCK_BIN);
        }
    }
    for (uint32_t i = 0; i < t.n; i++)
        hp_unmap(t.bits[i], SEEN_BITS / 8);
    return t.blocks;
}
