/* bin.c - the bins of a node pool, and the slabs thread caches own.
 *
 * Ownership.  A slab belongs to its bin (owner NULL) or to one thread
 * cache (owner = that cache).  The owner alone touches the slab's free
 * list, bump and used count: the bin under bin.lock, a thread without any
 * lock.  A thread cache owns at most one slab per class: it refills from
 * it without a lock, and the blocks it gives back to that slab go
 * straight onto its free list.  Blocks of any other slab go back through
 * the slab's remote stack (one atomic exchange per run of blocks of the
 * same slab, superslab/remote.c); the owner drains its remote stack when
 * its free list runs dry, and the bin drains the stacks of its own slabs
 * when they are notified (the pending list).  So blocks that a thread
 * allocates and frees itself never pass through a lock or a cache line
 * that another thread writes; the bin's lock is taken only to take a slab
 * (the one owned is exhausted) and to give one back (exhausted, the class
 * idle at a capacity review, thread exit, a node change, ns_release).
 *
 * Locking: a bin-owned slab's owner fields, the bin's lists and its slab
 * counter belong to bin.lock.  Lock order: bin.lock -> ss_lock ->
 * (address map, meta); a thread holds one bin lock at a time.
 *
 * Bin invariants (under bin.lock; bin_validate checks them in Debug builds):
 *   - a bin-owned slab is on `partial` iff it has a free or uncarved
 *     block, or it is entirely free and kept as the bin's spare; a full
 *     one is on no list, nor is an owned one;
 *   - a slab with used == 0 goes back to its SuperSlab unless it is the
 *     bin's spare or its remote NOTIFIED bit is set (superslab/remote.c);
 *   - used_blocks == the sum of the used counts of the bin's slabs (owned
 *     ones included: it changes by one atomic add per batch).
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

static void used_add(bin_t *b, int64_t n)
{
    atomic_fetch_add_explicit(&b->used_blocks, n, memory_order_relaxed);
}

static bool is_owned(const slab_t *s)
{
    return atomic_load_explicit(&s->owner, memory_order_relaxed) != NULL;
}

static bool slab_exhausted(const slab_t *s)
{
    return !s->free && s->bump == s->capacity;
}

/* A bin-owned slab got blocks back (bin lock held): fix its list
 * membership and release it if it is empty and not needed. */
static size_t slab_got_blocks(node_pool_t *pool, bin_t *b, slab_t *s, bool keep_spare)
{
    ns_assert(!is_owned(s));
    if (slab_exhausted(s) && s->used > 0)
        return 0;           /* nothing came back after all (an empty drain) */
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

/* Move s's remote stack onto its free list; the owner (bin lock holder or
 * owning thread) calls it.  Blocks drained. */
static uint32_t slab_take_remote(bin_t *b, slab_t *s, bool clear)
{
    void *tail;
    uint32_t n;
    void *list = remote_take(s, clear, &tail, &n);
    if (!list)
        return 0;
    link_set(tail, s->free, &s->key);     /* both lists use the slab's key */
    s->free = list;
    s->used -= n;
    used_add(b, -(int64_t)n);
    atomic_fetch_add_explicit(&b->remote_drained, n, memory_order_relaxed);
    if (ns_config_debug)
        slab_validate(s);
    return n;
}

/* Slabs notified by remote frees (bin lock held): the bin's own are
 * drained; an owned one only loses its NOTIFIED bit (its owner drains its
 * stack itself; the next push notifies again). */
static size_t drain_pending(node_pool_t *pool, bin_t *b, bool keep_spare)
{
    size_t bytes = 0;
    slab_t *s = remote_take_pending(&b->pending);
    while (s) {
        slab_t *next = s->pending_next;   /* before the bit is cleared */
        if (is_owned(s)) {
            atomic_fetch_and_explicit(&s->remote, ~NS_REMOTE_NOTIFIED, memory_order_acq_rel);
        } else {
            slab_take_remote(b, s, true);
            bytes += slab_got_blocks(pool, b, s, keep_spare);
        }
        s = next;
    }
    return bytes;
}

/* Debug builds: the touched slab is validated at each change; the whole
 * bin every 16th change of it, so that a large heap stays testable (a
 * full pass is O(blocks in the bin)). */
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

/* Up to `want` blocks of s as a plain list onto *head: its free list
 * first, then blocks carved fresh; s->used grows by the count.  The
 * slab's owner calls it. */
static uint32_t slab_take(slab_t *s, uint32_t want, void **head)
{
    uint32_t n = 0;
    while (n < want && s->free) {
        void **blk = s->free;
        if (!ns_config_hardened && !block_marked_free(blk))
            error_fatal("heap corruption: a slab's free list points at a block that is not free "
                        "(write after free?)", blk);
        s->free = link_get(blk, &s->key);
        if (ns_config_hardened)
            hardened_check_in_slab(s, s->free);
        blk[0] = *head;               /* the list handed out is plain */
        *head = blk;
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
        blk[0] = *head;
        block_set_free(blk, block_mark);   /* on a list: marked */
        *head = blk;
    }
    if (ns_config_hardened)
        hardened_mark_free(s, s->bump, carve);
    s->bump += carve;
    n += carve;
    s->used += n;
    ns_assert(s->used <= s->bump && s->bump <= s->capacity);
    if (ns_config_debug)
        slab_validate(s);
    return n;
}

/* ------------------------------------------------------ bin-owned blocks */
/* Up to `want` blocks from the bin's own slabs (lock held): notified
 * slabs drained first, then the partial slabs, then a new slab. */
static void *take_locked(node_pool_t *pool, bin_t *b, unsigned cls, uint32_t want, uint32_t *got, bool need_room)
{
    void *head = NULL;
    uint32_t n = 0;
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
        n += slab_take(s, want - n, &head);
        if (slab_exhausted(s))
            partial_remove(b, s);
    }
    used_add(b, n);
    *got = n;
    return head;
}

void *bin_refill(node_pool_t *pool, unsigned cls, uint32_t want, uint32_t *got)
{
    bin_t *b = &pool->bins[cls];
    /* a miss of a caller without a cache (caches off, an exiting thread,
     * ns_malloc_onnode): counted here; a cache counts its own refills */
    atomic_fetch_add_explicit(&b->refills, 1, memory_order_relaxed);
    lock_take(&b->lock, LOCK_BIN);
    void *head = take_locked(pool, b, cls, want, got, false);
    if (ns_config_debug)
        debug_validate(pool, b, cls);
    lock_drop(&b->lock, LOCK_BIN);
    return head;
}

/* ------------------------------------------------------------ owned slabs */
slab_t *bin_acquire(node_pool_t *pool, unsigned cls, bool need_room, void *owner)
{
    bin_t *b = &pool->bins[cls];
    lock_take(&b->lock, LOCK_BIN);
    drain_pending(pool, b, true);
    slab_t *s = b->partial;
    if (s) {
        partial_remove(b, s);
    } else if ((s = pool_new_slab(pool, cls, need_room)) != NULL) {
        b->slabs++;
    }
    if (s) {
        if (atomic_load_explicit(&s->remote, memory_order_relaxed) & ~NS_REMOTE_NOTIFIED)
            slab_take_remote(b, s, false);
        atomic_store_explicit(&s->owner, owner, memory_order_relaxed);
    }
    if (ns_config_debug)
        debug_validate(pool, b, cls);
    lock_drop(&b->lock, LOCK_BIN);
    return s;
}

void *bin_owned_take(slab_t *s, uint32_t want, uint32_t *got)
{
    bin_t *b = &node_pool(s->node)->bins[s->cls];
    void *head = NULL;
    if (!s->free && atomic_load_explicit(&s->remote, memory_order_relaxed) & ~NS_REMOTE_NOTIFIED)
        slab_take_remote(b, s, false);         /* freed blocks before fresh ones */
    uint32_t n = slab_take(s, want, &head);
    if (n)
        used_add(b, n);
    *got = n;
    return head;
}

size_t bin_disown(slab_t *s)
{
    unsigned cls = s->cls;      /* s may be released below (and its SuperSlab unmapped) */
    node_pool_t *pool = node_pool(s->node);
    bin_t *b = &pool->bins[cls];
    size_t bytes = 0;
    lock_take(&b->lock, LOCK_BIN);
    atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
    if (atomic_load_explicit(&s->remote, memory_order_relaxed) & ~NS_REMOTE_NOTIFIED)
        slab_take_remote(b, s, false);
    if (!slab_exhausted(s) || s->used == 0)
        bytes = slab_got_blocks(pool, b, s, true);
    if (ns_config_debug)
        debug_validate(pool, b, cls);
    lock_drop(&b->lock, LOCK_BIN);
    return bytes;
}

/* Blocks head..tail (linked by word 0, plain) of slab s, which the caller
 * does not own: onto its remote stack in one exchange (they stay counted
 * as used until the owner drains them). */
static void return_run(slab_t *s, void *head, void *tail)
{
    bin_t *b = &node_pool(s->node)->bins[s->cls];
    if (ns_config_hardened)                 /* the stack takes encoded links */
        for (void **p = head; p != tail;) {
            void **next = p[0];
            link_set(p, next, &s->key);
            p = next;
        }
    remote_push_run(s, head, tail, &b->pending);
}

/* Blocks of the bin's own slabs back onto their free lists (bin lock
 * held); a slab that a thread took meanwhile gets them through its remote
 * stack.  Bytes unmapped (slabs that fell empty). */
static size_t return_locked(node_pool_t *pool, bin_t *b, void *list)
{
    size_t bytes = 0;
    int64_t n = 0;
    while (list) {
        void **blk = list;
        list = blk[0];
        slab_t *s = slab_of((uintptr_t)blk);
        if (is_owned(s)) {
            blk[0] = NULL;
            return_run(s, blk, blk);
            continue;
        }
        if (NS_UNLIKELY(s->used == 0))
            error_fatal("heap corruption: a block comes back to a slab with none in use (double free?)", blk);
        link_set(blk, s->free, &s->key);
        s->free = blk;
        s->used--;
        n++;
        bytes += slab_got_blocks(pool, b, s, true);
    }
    used_add(b, -n);
    return bytes;
}

/* Runs of blocks going to other threads' slabs, gathered per slab while a
 * list is returned, so that each slab's stack takes one exchange for all
 * of its blocks in the list (up to RUNS slabs at once; the oldest run goes
 * first when a new slab needs a place). */
#define RUNS 8
typedef struct runs {
    slab_t *slab[RUNS];
    void *head[RUNS], **tail[RUNS];
    unsigned n, next;
} runs_t;

static void runs_add(runs_t *r, slab_t *s, void **blk)
{
    blk[0] = NULL;
    for (unsigned i = 0; i < r->n; i++)
        if (r->slab[i] == s) {
            *r->tail[i] = blk;
            r->tail[i] = blk;
            return;
        }
    unsigned i = r->n < RUNS ? r->n++ : r->next;
    if (i == r->next && r->n == RUNS) {         /* all places taken: the oldest goes */
        return_run(r->slab[i], r->head[i], r->tail[i]);
        r->next = (r->next + 1) % RUNS;
    }
    r->slab[i] = s, r->head[i] = blk, r->tail[i] = blk;
}

static void runs_flush(runs_t *r)
{
    for (unsigned i = 0; i < r->n; i++)
        return_run(r->slab[i], r->head[i], r->tail[i]);
    r->n = r->next = 0;
}

size_t bin_return(const void *owner, unsigned cls, uint32_t node, void *list)
{
    node_pool_t *pool = node_pool(node);
    bin_t *b = &pool->bins[cls];
    runs_t runs;
    runs.n = runs.next = 0;
    void *binned = NULL;
    int64_t mine = 0;
    size_t bytes = 0;
    while (list) {
        void **blk = list;
        list = blk[0];
        slab_t *s = slab_of((uintptr_t)blk);
        if (NS_UNLIKELY(s->cls != cls || s->node != node || !slab_block_start(s, (uintptr_t)blk)))
            error_fatal("heap corruption: a cached block does not belong to its class", blk);
        void *o = atomic_load_explicit(&s->owner, memory_order_relaxed);
        if (owner && o == owner) {          /* our own slab: no lock */
            if (NS_UNLIKELY(s->used == 0))
                error_fatal("heap corruption: a block comes back to a slab with none in use (double free?)", blk);
            link_set(blk, s->free, &s->key);
            s->free = blk;
            s->used--;
            mine++;
        } else if (!o) {                    /* the bin's: under its lock, below */
            blk[0] = binned;
            binned = blk;
        } else {                            /* another thread's: its remote stack */
            runs_add(&runs, s, blk);
        }
    }
    runs_flush(&runs);
    if (mine)
        used_add(b, -mine);
    if (binned) {
        lock_take(&b->lock, LOCK_BIN);
        bytes = return_locked(pool, b, binned);
        if (ns_config_debug)
            debug_validate(pool, b, cls);
        lock_drop(&b->lock, LOCK_BIN);
    }
    return bytes;
}

bool bin_holds(void *p, const void *owner)
{
    slab_t *s = slab_of((uintptr_t)p);
    bin_t *b = &node_pool(s->node)->bins[s->cls];
    bool found = false;
    lock_take(&b->lock, LOCK_BIN);
    void *o = atomic_load_explicit(&s->owner, memory_order_relaxed);
    if (slab_of((uintptr_t)p) == s && s->units && (!o || o == owner)) {
        uint32_t limit = s->capacity;
        for (void **f = s->free; f && limit--; f = link_get(f, &s->key))
            if (f == p) {
                found = true;
                break;
            }
        /* its remote stack too: pushes only add at the top, and only the
         * owner (the caller, or the bin whose lock we hold) takes it */
        limit = s->capacity;
        uintptr_t top = atomic_load_explicit(&s->remote, memory_order_acquire) & ~NS_REMOTE_NOTIFIED;
        for (void **f = (void **)top; f && !found && limit--; f = link_get(f, &s->key))
            found = f == p;
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
/* Every slab on the partial list is a carved, bin-owned slab of this
 * class and node, valid in itself, with a free or uncarved block (or the
 * spare); the count matches; pending slabs carry the NOTIFIED bit. */
void bin_validate(node_pool_t *pool, unsigned cls)
{
    bin_t *b = &pool->bins[cls];
    uint32_t n = 0;
    for (slab_t *s = b->partial; s; s = s->next) {
        NS_CHECK(s->in_partial && s->units && s->cls == cls && s->node == pool->node, "a partial slab of this bin", s);
        NS_CHECK(!atomic_load_explicit(&s->owner, memory_order_relaxed), "a partial slab is the bin's own", s);
        NS_CHECK(s->next == NULL || s->next->prev == s, "partial list links", s);
        NS_CHECK(!slab_exhausted(s) || s->used == 0, "a partial slab has room", s);
        slab_validate(s);
        NS_CHECK(++n <= b->npartial, "partial list longer than npartial", s);
    }
    NS_CHECK(n == b->npartial, "npartial counts the partial list", b);
    NS_CHECK(atomic_load_explicit(&b->used_blocks, memory_order_relaxed) >= 0, "used blocks of a bin", b);
    for (slab_t *s = atomic_load_explicit(&b->pending, memory_order_acquire); s; s = s->pending_next)
        NS_CHECK(atomic_load_explicit(&s->remote, memory_order_relaxed) & NS_REMOTE_NOTIFIED,
              "a pending slab is NOTIFIED", s);
}
