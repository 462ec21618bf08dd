/* node_pool.c - the pool of one NUMA node: its bins (per size class: the
 * slabs' free lists and the partial-slab list) and its SuperSlabs.
 *
 * Lock order: bin.lock -> ss_lock -> (address map, meta).  large_lock
 * (large.c) is never held with a bin or ss lock.  A thread holds at most one
 * bin lock.
 *
 * Bin invariants (under bin.lock):
 *   - a slab is on `partial` iff it has a free or uncarved block, or it is
 *     entirely free and kept as the bin's spare;
 *   - a full slab is on no list; a block coming back (flush, remote drain)
 *     puts it at the head of `partial`, so nearly full slabs are reused first
 *     and nearly empty ones drift to the tail, drain and are released;
 *   - a slab with used == 0 is released unless it is the bin's only slab or
 *     its remote NOTIFIED bit is set (remote.c).
 * SuperSlab lists (under ss_lock): by_used[u] holds SuperSlabs with u used
 * units (1..31); full ones are on no list; empty ones are on `empty`,
 * newest first, and go back to the OS after NUMASLAB_DECAY_MS, or at once
 * past a small reserve.  New slabs come from the fullest SuperSlab with
 * room, so lightly used SuperSlabs drain and can be released whole.
 */
#include <errno.h>
#include <string.h>

#include "../hugepage/hugepage.h"
#include "../internal.h"
#include "../superslab/superslab.h"
#include "../tiny/tiny.h"
#include "numa.h"

node_pool_t *ns_pools[NS_MAX_NODES];
static _Atomic uint32_t npools;

#define SS_FULL_BUCKET NS_UNITS
#define SS_EMPTY_BUCKET (NS_UNITS + 1)
#define SS_SCAN_PER_BUCKET 4

/* Pools are created once and never freed; a pool is fully initialised
 * before npools covers it (release), and the topology naming its node is
 * published after that. */
int node_pools_grow(uint32_t slots)
{
    for (uint32_t n = atomic_load(&npools); n < slots; n++) {
        node_pool_t *p = meta_alloc(sizeof(node_pool_t));
        if (!p)
            return ENOMEM;
        p->node = n;
        pthread_mutex_init(&p->ss_lock, NULL);
        pthread_mutex_init(&p->large_lock, NULL);
        for (unsigned c = 0; c < NS_CLASSES; c++) {
            pthread_mutex_init(&p->bins[c].lock, NULL);
            p->bins[c].cls = c;
        }
        ns_pools[n] = p;
        atomic_store_explicit(&npools, n + 1, memory_order_release);
    }
    return 0;
}

int node_pools_init(void)
{
    return node_pools_grow(1);
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

static void ss_link(node_pool_t *pool, superslab_t *ss)
{
    uint32_t b = ss->used_units == 0 ? SS_EMPTY_BUCKET : ss->used_units == NS_UNITS ? SS_FULL_BUCKET : ss->used_units;
    ss->bucket = b;
    if (b == SS_FULL_BUCKET)
        return;
    superslab_t **head = b == SS_EMPTY_BUCKET ? &pool->empty : &pool->by_used[b];
    ss->prev = NULL;
    ss->next = *head;
    if (*head) (*head)->prev = ss;
    else if (b == SS_EMPTY_BUCKET) pool->empty_tail = ss;
    *head = ss;
    if (b == SS_EMPTY_BUCKET)
        ss->empty_since_ms = ns_now_ms();
}

/* Unlink empty SuperSlabs to unmap: all, those past the decay period, or
 * those beyond the reserve.  ss_lock held; returns a list (next links). */
static superslab_t *ss_collect_empty(node_pool_t *pool, bool all)
{
    uint64_t now = ns_now_ms();
    uint64_t reserve = 2 + pool->nsuperslabs / 8, nempty = 0;
    for (superslab_t *e = pool->empty; e; e = e->next)
        nempty++;
    superslab_t *out = NULL;
    while (pool->empty_tail) {
        superslab_t *t = pool->empty_tail;
        if (!all && nempty <= reserve && now - t->empty_since_ms < (uint64_t)ns_opt.decay_ms)
            break;
        ss_unlink(pool, t);
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
        ns_stat_released(pool, bytes);
    return bytes;
}

/* A new slab of class cls on this node: fullest SuperSlab with room first,
 * then an empty one, then a new mapping.  NULL when the OS has no memory. */
static slab_t *pool_new_slab(node_pool_t *pool, unsigned cls, bool need_room)
{
    unsigned units = sizeclass_units[cls];
    /* unit 0 starts with the header: only for one-unit classes that still
     * get several blocks in what is left of it */
    bool unit0_ok = units == 1 && sizeclass_size[cls] * 4 <= NS_UNIT_SIZE - NS_UNIT0_START;
    slab_t *s = NULL;
    pthread_mutex_lock(&pool->ss_lock);
    superslab_t *ss = NULL;
    int u = -1;
    for (unsigned b = NS_UNITS - 1; b >= 1 && u < 0; b--) {
        unsigned scanned = 0;
        for (superslab_t *c = pool->by_used[b]; c && scanned < SS_SCAN_PER_BUCKET; c = c->next, scanned++) {
            if ((u = superslab_find_units(c, units, unit0_ok)) >= 0) {
                ss = c;
                break;
            }
        }
    }
    if (!ss && pool->empty) {
        ss = pool->empty;
        u = superslab_find_units(ss, units, unit0_ok);
    }
    if (!ss && (!need_room || topo_node_has_room(pool->node))) {
        ss = superslab_new(pool->node);
        if (ss) {
            pool->nsuperslabs++;
            pool->nbacking[ss->backing]++;
            ss->bucket = SS_FULL_BUCKET;   /* on no list yet */
            u = superslab_find_units(ss, units, unit0_ok);
        }
    }
    if (ss) {
        ns_assert(u >= 0 && ss->node == pool->node);
        ss_unlink(pool, ss);
        s = slab_carve(ss, (unsigned)u, units, cls, sizeclass_size[cls]);
        ss_link(pool, ss);
    }
    pthread_mutex_unlock(&pool->ss_lock);
    return s;
}

/* Returns the bytes unmapped (a SuperSlab that became empty and was past
 * its decay or beyond the reserve). */
static size_t pool_free_slab(node_pool_t *pool, slab_t *s)
{
    superslab_t *ss = superslab_of(s->start);
    pthread_mutex_lock(&pool->ss_lock);
    ss_unlink(pool, ss);
    uintptr_t first = (uintptr_t)ss + ((uintptr_t)s->first_unit << NS_UNIT_SHIFT);
    size_t len = (size_t)s->units << NS_UNIT_SHIFT;
    slab_uncarve(ss, s);
    ss_link(pool, ss);
    /* NUMASLAB_PURGE_PARTIAL: free units of a SuperSlab still in use go
     * back too (unit 0 keeps its header page) */
    if (ns_opt.purge_partial && ss->used_units > 0 && ss->backing != HP_BACK_HUGETLB) {
        if (first == (uintptr_t)ss)
            first += NS_SS_HEADER, len -= NS_SS_HEADER;
        hp_purge((void *)first, len);
    }
    superslab_t *dead = ss->used_units == 0 ? ss_collect_empty(pool, false) : NULL;
    pthread_mutex_unlock(&pool->ss_lock);
    return ss_unmap_list(pool, dead);
}

/* ---------------------------------------------------------------- bins */
static void partial_push(bin_t *b, slab_t *s)
{
    ns_assert(!s->in_partial && s->units > 0);
    s->prev = NULL;
    s->next = b->partial;
    if (b->partial) b->partial->prev = s;
    b->partial = s;
    s->in_partial = 1;
    b->npartial++;
}

static void partial_remove(bin_t *b, slab_t *s)
{
    ns_assert(s->in_partial && b->npartial > 0);
    if (s->prev) s->prev->next = s->next; else b->partial = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->in_partial = 0;
    b->npartial--;
}

/* Blocks came back to s (bin lock held): fix its list membership and
 * release it if it is empty and not needed. */
static size_t slab_got_blocks(node_pool_t *pool, bin_t *b, slab_t *s, bool keep_spare)
{
    if (!s->in_partial)
        partial_push(b, s);
    if (s->used == 0 && (!keep_spare || b->npartial > 1) &&
        !(atomic_load_explicit(&s->remote, memory_order_acquire) & NS_REMOTE_NOTIFIED)) {
        partial_remove(b, s);
        b->slabs--;
        return pool_free_slab(pool, s);
    }
    return 0;
}

static void slab_take_remote(bin_t *b, slab_t *s, bool clear)
{
    void *tail;
    uint32_t n;
    void *list = remote_take(s, clear, &tail, &n);
    if (!list)
        return;
    link_set(tail, s->free, s->key);     /* both lists use the slab's key */
    s->free = list;
    s->used -= n;
    b->used_blocks -= n;
    b->remote_drained += n;
}

static size_t drain_pending(node_pool_t *pool, bin_t *b, bool keep_spare)
{
    size_t bytes = 0;
    slab_t *s = remote_take_pending(b);
    while (s) {
        slab_t *next = s->pending_next;   /* before the bit is cleared */
        slab_take_remote(b, s, true);
        bytes += slab_got_blocks(pool, b, s, keep_spare);
        s = next;
    }
    return bytes;
}

/* The stash (tcmalloc's transfer cache): up to NS_STASH lists that thread
 * caches gave back on overflow, handed whole to the next refill that wants
 * more than half as many blocks.  Blocks passing from a thread that frees
 * them to one that allocates them cost O(1) per list instead of a walk to
 * their slabs and another one back.  Stashed blocks still count as used in
 * their slabs; node_pool_release (decay ticks, ns_release) returns them to
 * the slabs, so they come back in bounded time.  Hardened builds do not
 * stash: every block goes back through its slab's checks. */
uint64_t bin_stashed(const bin_t *b)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < b->nstash; i++)
        n += b->stash[i].n;
    return n;
}

bool bin_stash(node_pool_t *pool, unsigned cls, void *list, uint32_t n)
{
    if (ns_config_hardened || n < NS_STASH_MIN)
        return false;
    bin_t *b = &pool->bins[cls];
    pthread_mutex_lock(&b->lock);
    bool ok = b->nstash < NS_STASH;
    if (ok) {
        b->stash[b->nstash].list = list;
        b->stash[b->nstash].n = n;
        b->nstash++;
    }
    pthread_mutex_unlock(&b->lock);
    return ok;
}

static size_t flush_locked(node_pool_t *pool, bin_t *b, unsigned cls, void *list, bool keep_spare);

/* Return every stashed list to its slabs; bytes released.  Bin lock held. */
static size_t unstash(node_pool_t *pool, bin_t *b, unsigned cls, bool keep_spare)
{
    size_t bytes = 0;
    while (b->nstash) {
        b->nstash--;
        bytes += flush_locked(pool, b, cls, b->stash[b->nstash].list, keep_spare);
    }
    return bytes;
}

static void *refill(node_pool_t *pool, unsigned cls, uint32_t want, uint32_t *got, bool need_room)
{
    bin_t *b = &pool->bins[cls];
    void *head = NULL;
    uint32_t n = 0;
    pthread_mutex_lock(&b->lock);
    b->refills++;
    /* the newest stashed list if it is shorter than twice `want`: a thread
     * cache asks for half its capacity, so a refill always leaves it room
     * for one more block; callers that want one block get it from a slab */
    if (b->nstash && want > 1 && b->stash[b->nstash - 1].n < 2 * want) {
        b->nstash--;
        head = b->stash[b->nstash].list;
        *got = b->stash[b->nstash].n;
        pthread_mutex_unlock(&b->lock);
        return head;
    }
    drain_pending(pool, b, true);
    while (n < want) {
        slab_t *s = b->partial;
        if (!s) {
            s = pool_new_slab(pool, cls, need_room);
            if (!s)
                break;
            b->slabs++;
            partial_push(b, s);
        }
        if (atomic_load_explicit(&s->remote, memory_order_relaxed) & ~NS_REMOTE_NOTIFIED)
            slab_take_remote(b, s, false);
        uint32_t before = n;
        while (n < want && s->free) {
            void **blk = s->free;
            s->free = link_get(blk, s->key);
            blk[0] = head;                /* the list handed out is plain */
            head = blk;
            n++;
        }
        uint32_t carve = want - n;
        if (carve > s->capacity - s->bump)
            carve = s->capacity - s->bump;
        for (uint32_t i = carve; i-- > 0;) {   /* lowest address ends up first */
            void **blk = (void **)(s->start + (uintptr_t)(s->bump + i) * s->size);
            blk[0] = head;
            head = blk;
        }
        if (ns_config_hardened)
            hardened_mark_free(s, s->bump, carve);
        s->bump += carve;
        n += carve;
        s->used += n - before;
        ns_assert(s->used <= s->bump && s->bump <= s->capacity);
        if (!s->free && s->bump == s->capacity)
            partial_remove(b, s);
    }
    b->used_blocks += n;
    pthread_mutex_unlock(&b->lock);
    *got = n;
    return head;
}

void *bin_refill(node_pool_t *pool, unsigned cls, uint32_t want, uint32_t *got)
{
    return refill(pool, cls, want, got, false);
}

void *bin_refill_local(node_pool_t *pool, unsigned cls, uint32_t want, uint32_t *got)
{
    return refill(pool, cls, want, got, true);
}

static size_t flush_locked(node_pool_t *pool, bin_t *b, unsigned cls, void *list, bool keep_spare)
{
    size_t bytes = 0;
    while (list) {
        void **blk = list;
        list = blk[0];
        slab_t *s = slab_of((uintptr_t)blk);
        if (NS_UNLIKELY(s->cls != cls || s->node != pool->node || slab_block_index(s, (uintptr_t)blk) < 0 ||
                        s->used == 0))
            ns_fatal("heap corruption: a cached block does not belong to its class", blk);
        link_set(blk, s->free, s->key);
        s->free = blk;
        s->used--;
        b->used_blocks--;
        bytes += slab_got_blocks(pool, b, s, keep_spare);
    }
    return bytes;
}

size_t bin_flush(node_pool_t *pool, unsigned cls, void *list)
{
    bin_t *b = &pool->bins[cls];
    pthread_mutex_lock(&b->lock);
    size_t bytes = flush_locked(pool, b, cls, list, true);
    pthread_mutex_unlock(&b->lock);
    return bytes;
}

bool bin_holds(void *p)
{
    slab_t *s = slab_of((uintptr_t)p);
    bin_t *b = &node_pool(s->node)->bins[s->cls];
    bool found = false;
    pthread_mutex_lock(&b->lock);
    if (slab_of((uintptr_t)p) == s && s->units) {
        uint32_t limit = s->capacity;
        for (void **f = s->free; f && limit--; f = link_get(f, s->key))
            if (f == p) {
                found = true;
                break;
            }
        for (uint32_t i = 0; i < b->nstash && !found; i++) {
            uint32_t left = b->stash[i].n;
            for (void **f = b->stash[i].list; f && left--; f = f[0])
                if (f == p) {
                    found = true;
                    break;
                }
        }
    }
    pthread_mutex_unlock(&b->lock);
    return found;
}

size_t node_pool_release(node_pool_t *pool, bool all)
{
    size_t bytes = 0;
    for (unsigned c = 0; c < NS_CLASSES; c++) {
        bin_t *b = &pool->bins[c];
        pthread_mutex_lock(&b->lock);
        bytes += unstash(pool, b, c, !all);
        bytes += drain_pending(pool, b, !all);
        if (all) {
            slab_t *s = b->partial;
            while (s) {
                slab_t *next = s->next;
                if (s->used == 0)
                    bytes += slab_got_blocks(pool, b, s, false);
                s = next;
            }
        }
        pthread_mutex_unlock(&b->lock);
    }
    pthread_mutex_lock(&pool->ss_lock);
    superslab_t *dead = ss_collect_empty(pool, all);
    pthread_mutex_unlock(&pool->ss_lock);
    bytes += ss_unmap_list(pool, dead);
    return bytes + large_release_cached(pool, ns_now_ms(), all);
}

void node_pools_lock_all(void)
{
    uint32_t npools_ = atomic_load(&npools);
    for (uint32_t n = 0; n < npools_; n++)
        for (unsigned c = 0; c < NS_CLASSES; c++)
            pthread_mutex_lock(&ns_pools[n]->bins[c].lock);
    for (uint32_t n = 0; n < npools_; n++) {
        pthread_mutex_lock(&ns_pools[n]->ss_lock);
        pthread_mutex_lock(&ns_pools[n]->large_lock);
    }
}

void node_pools_unlock_all(bool child)
{
    uint32_t npools_ = atomic_load(&npools);
    for (uint32_t n = 0; n < npools_; n++) {
        node_pool_t *p = ns_pools[n];
        if (child) {
            pthread_mutex_init(&p->large_lock, NULL);
            pthread_mutex_init(&p->ss_lock, NULL);
            for (unsigned c = 0; c < NS_CLASSES; c++)
                pthread_mutex_init(&p->bins[c].lock, NULL);
        } else {
            pthread_mutex_unlock(&p->large_lock);
            pthread_mutex_unlock(&p->ss_lock);
            for (unsigned c = 0; c < NS_CLASSES; c++)
                pthread_mutex_unlock(&p->bins[c].lock);
        }
    }
}
