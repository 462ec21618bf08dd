/* bin.c - the bins of a node pool: per size class, the slabs' free lists,
 * the list of partially used slabs, the stash of whole lists, and the
 * pending list of slabs with remote frees.  Thread caches refill from and
 * flush to them (src/tiny).
 *
 * Locking: everything in a bin, and the owner fields of its slabs (slab_t,
 * superslab.h), belong to bin.lock.  Lock order: bin.lock -> ss_lock ->
 * (address map, meta); a thread holds one bin lock at a time.
 *
 * Bin invariants (under bin.lock; bin_validate checks them in Debug builds):
 *   - a slab is on `partial` iff it has a free or uncarved block, or it is
 *     entirely free and kept as the bin's spare;
 *   - a full slab is on no list; a block coming back (flush, remote drain)
 *     puts it at the head of `partial`, so nearly full slabs are reused first
 *     and nearly empty ones drift to the tail, drain and are released;
 *   - a slab with used == 0 is released unless it is the bin's only slab or
 *     its remote NOTIFIED bit is set (superslab/remote.c);
 *   - used_blocks == the sum of the used counts of the bin's slabs.
 */
#include "numa.h"

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
    link_set(tail, s->free, &s->key);     /* both lists use the slab's key */
    s->free = list;
    s->used -= n;
    b->used_blocks -= n;
    b->remote_drained += n;
    if (ns_config_debug)
        slab_validate(s);
}

static size_t drain_pending(node_pool_t *pool, bin_t *b, bool keep_spare)
{
    size_t bytes = 0;
    slab_t *s = remote_take_pending(&b->pending);
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
    lock_take(&b->lock, LOCK_BIN);
    bool ok = b->nstash < NS_STASH;
    if (ok) {
        b->stash[b->nstash].list = list;
        b->stash[b->nstash].n = n;
        b->nstash++;
    }
    lock_drop(&b->lock, LOCK_BIN);
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

/* Debug builds: the touched slab is validated at each change (in the
 * functions above); the whole bin every 16th change of it, so that a
 * large heap stays testable (a full pass is O(blocks in the bin)). */
static void debug_validate(node_pool_t *pool, bin_t *b, unsigned cls)
{
    if ((++b->validations & 15) == 1)
        bin_validate(pool, cls);
}

/* Hardened builds hand out freshly carved blocks in a random order, not
 * by address, so that the block after a given one is not predictable
 * (an overflow cannot aim at the next allocation).  A batch of at most
 * CARVE_MAX, shuffled by Fisher-Yates from a getrandom seed. */
#define CARVE_MAX 512
static void carve_order(uint16_t *order, uint32_t n)
{
    uint64_t x = hardened_random() | 1;
    for (uint32_t i = 0; i < n; i++)
        order[i] = (uint16_t)i;
    for (uint32_t i = n; i > 1; i--) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint32_t j = (uint32_t)(x % i);
        uint16_t t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
}

/* Up to `want` blocks as a plain list: a stashed list, else blocks from
 * the partial slabs (remote frees drained first), else a new slab. */
static void *take_blocks(node_pool_t *pool, unsigned cls, uint32_t want, uint32_t *got, bool need_room)
{
    bin_t *b = &pool->bins[cls];
    void *head = NULL;
    uint32_t n = 0;
    lock_take(&b->lock, LOCK_BIN);
    b->refills++;
    /* the newest stashed list if it is shorter than twice `want`: a thread
     * cache asks for half its capacity, so a refill always leaves it room
     * for one more block; callers that want one block get it from a slab */
    if (b->nstash && want > 1 && b->stash[b->nstash - 1].n < 2 * want) {
        b->nstash--;
        head = b->stash[b->nstash].list;
        *got = b->stash[b->nstash].n;
        lock_drop(&b->lock, LOCK_BIN);
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
            if (!ns_config_hardened && !block_marked_free(blk))
                error_fatal("heap corruption: a slab's free list points at a block that is not free "
                            "(write after free?)", blk);
            s->free = link_get(blk, &s->key);
            if (ns_config_hardened)
                hardened_check_in_slab(s, s->free);
            blk[0] = head;                /* the list handed out is plain */
            head = blk;
            n++;
        }
        uint32_t carve = want - n;
        if (carve > s->capacity - s->bump)
            carve = s->capacity - s->bump;
        if (ns_config_hardened && carve > CARVE_MAX)
            carve = CARVE_MAX;
        uint16_t order[CARVE_MAX];
        if (ns_config_hardened)
            carve_order(order, carve);
        for (uint32_t i = carve; i-- > 0;) {   /* lowest address ends up first */
            uint32_t k = ns_config_hardened ? order[i] : i;
            void **blk = (void **)(s->start + (uintptr_t)(s->bump + k) * s->size);
            blk[0] = head;
            block_set_free(blk, block_mark);   /* on a list: marked */
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
        if (ns_config_debug)
            slab_validate(s);
    }
    b->used_blocks += n;
    if (ns_config_debug)
        debug_validate(pool, b, cls);
    lock_drop(&b->lock, LOCK_BIN);
    *got = n;
    return head;
}

void *bin_refill(node_pool_t *pool, unsigned cls, uint32_t want, uint32_t *got)
{
    return take_blocks(pool, cls, want, got, false);
}

void *bin_refill_local(node_pool_t *pool, unsigned cls, uint32_t want, uint32_t *got)
{
    return take_blocks(pool, cls, want, got, true);
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
            error_fatal("heap corruption: a cached block does not belong to its class", blk);
        link_set(blk, s->free, &s->key);
        s->free = blk;
        s->used--;
        b->used_blocks--;
        if (ns_config_debug && s->used == 0)
            slab_validate(s);
        bytes += slab_got_blocks(pool, b, s, keep_spare);
    }
    return bytes;
}

size_t bin_flush(node_pool_t *pool, unsigned cls, void *list)
{
    bin_t *b = &pool->bins[cls];
    lock_take(&b->lock, LOCK_BIN);
    size_t bytes = flush_locked(pool, b, cls, list, true);
    if (ns_config_debug)
        debug_validate(pool, b, cls);
    lock_drop(&b->lock, LOCK_BIN);
    return bytes;
}

bool bin_holds(void *p)
{
    slab_t *s = slab_of((uintptr_t)p);
    bin_t *b = &node_pool(s->node)->bins[s->cls];
    bool found = false;
    lock_take(&b->lock, LOCK_BIN);
    if (slab_of((uintptr_t)p) == s && s->units) {
        uint32_t limit = s->capacity;
        for (void **f = s->free; f && limit--; f = link_get(f, &s->key))
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
    lock_drop(&b->lock, LOCK_BIN);
    return found;
}


void bin_remote_free(slab_t *s, void *p)
{
    bin_t *b = &node_pool(s->node)->bins[s->cls];
    block_set_free(p, block_mark);
    remote_push(s, p, &b->pending);
    atomic_fetch_add_explicit(&b->remote_frees, 1, memory_order_relaxed);
}

size_t bin_release(node_pool_t *pool, unsigned cls, bool all)
{
    bin_t *b = &pool->bins[cls];
    size_t bytes = 0;
    lock_take(&b->lock, LOCK_BIN);
    bytes += unstash(pool, b, cls, !all);
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
    if (ns_config_debug)
        debug_validate(pool, b, cls);
    lock_drop(&b->lock, LOCK_BIN);
    return bytes;
}

/* ------------------------------------------------------------ validator */
/* Every slab on the partial list is a carved slab of this class and node,
 * valid in itself, with a free or uncarved block (or the spare); the
 * count matches; stashed lists hold marked blocks of this class and node,
 * as many as they say, each a block in use by its slab (stashed blocks
 * count as used); pending slabs carry the NOTIFIED bit. */
void bin_validate(node_pool_t *pool, unsigned cls)
{
    bin_t *b = &pool->bins[cls];
    uint32_t n = 0;
    for (slab_t *s = b->partial; s; s = s->next) {
        NS_CHECK(s->in_partial && s->units && s->cls == cls && s->node == pool->node, "a partial slab of this bin", s);
        NS_CHECK(s->next == NULL || s->next->prev == s, "partial list links", s);
        NS_CHECK(s->free || s->bump < s->capacity || s->used == 0, "a partial slab has room", s);
        slab_validate(s);
        NS_CHECK(++n <= b->npartial, "partial list longer than npartial", s);
    }
    NS_CHECK(n == b->npartial, "npartial counts the partial list", b);
    NS_CHECK(b->nstash <= NS_STASH, "stash bound", b);
    for (uint32_t i = 0; i < b->nstash; i++) {
        uint32_t k = 0;
        for (void **p = b->stash[i].list; p; p = p[0]) {
            slab_t *s = slab_of((uintptr_t)p);
            NS_CHECK(ssmap_tag((uintptr_t)p) == ssmap_node_tag(pool->node) && s->cls == cls &&
                      slab_block_index(s, (uintptr_t)p) >= 0 && s->used > 0,
                  "a stashed block is a carved block of this bin", p);
            NS_CHECK(ns_config_hardened || block_marked_free(p), "a stashed block carries the free mark", p);
            NS_CHECK(++k <= b->stash[i].n, "stashed list longer than its count", p);
        }
        NS_CHECK(k == b->stash[i].n, "stashed list count", b);
    }
    NS_CHECK(bin_stashed(b) <= b->used_blocks, "stashed blocks count as used", b);
    for (slab_t *s = atomic_load_explicit(&b->pending, memory_order_acquire); s; s = s->pending_next)
        NS_CHECK(atomic_load_explicit(&s->remote, memory_order_relaxed) & NS_REMOTE_NOTIFIED,
              "a pending slab is NOTIFIED", s);
}
