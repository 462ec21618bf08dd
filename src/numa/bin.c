/* bin.c - the bins of a node pool, and the slabs threads own.
 *
 * Ownership.  A slab belongs to its bin (owner NULL) or to one thread (an
 * owner_t in its cache).  The owner alone touches the slab's free list,
 * bump and used count: the bin under bin.lock, a thread without any lock.
 * A thread keeps what it takes: per class a current slab its refills carve
 * and pop, its other slabs with free blocks (avail) and without (full).
 * Blocks it gives back to its own slabs go straight onto their free lists;
 * so blocks that a thread allocates and frees itself never pass through a
 * lock or a cache line that another thread writes.  A slab goes back to
 * the bin when it falls empty (unless it is the current one), when the
 * class is idle at a capacity review (the slabs with free blocks), and at
 * thread exit or a node change (all of them).  The bin's lock is taken
 * only for those, and when the owner's slabs are exhausted.
 *
 * Blocks of a slab the caller does not own go back through the slab's
 * remote stack (one exchange per run of blocks of the same slab,
 * superslab/remote.c).  The push that sets the NOTIFIED bit puts the slab
 * on its bin's pending list; whoever drains that list under the bin lock
 * drains the bin's own slabs and passes owned ones on to their owner's
 * inbox (the owner cannot change meanwhile: disowning takes the bin lock).
 * The owner drains its inbox at its next refill.
 *
 * Locking: a bin-owned slab's owner fields, the bin's lists and counters
 * belong to bin.lock.  Lock order: bin.lock -> ss_lock -> (address map,
 * meta); a thread holds one bin lock at a time.
 *
 * Bin invariants (under bin.lock; bin_validate checks them in Debug builds):
 *   - a bin-owned slab is on `partial` iff it has a free or uncarved
 *     block, or it is entirely free and kept as the bin's spare; a full
 *     one is on no list, nor is an owned one;
 *   - a slab with used == 0 goes back to its SuperSlab unless it is the
 *     bin's spare or its remote NOTIFIED bit is set (superslab/remote.c);
 *   - used_blocks == the sum of the used counts of the bin's own slabs
 *     (an owner counts its slabs' in owned_class_t.used).
 */
#include <sched.h>

#include "../hugepage/hugepage.h"
#include "numa.h"

/* The bin's lock, counted (under the lock itself: no shared line more). */
static void bin_lock(bin_t *b)
{
    bool waited = lock_take_waited(&b->lock, LOCK_BIN);
    b->lock_acquires++;
    b->lock_contended += waited;
}

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

/* A counter only its owner writes, read relaxed by statistics. */
static void own_add(int64_t *c, int64_t n)
{
    __atomic_store_n(c, *c + n, __ATOMIC_RELAXED);
}

static bool is_owned(const slab_t *s)
{
    return atomic_load_explicit(&s->owner, memory_order_relaxed) != NULL;
}

static bool slab_exhausted(const slab_t *s)
{
    return !s->free && s->bump == s->capacity;
}

/* Block blk back onto s's free list (by s's owner: the bin lock holder or
 * the owning thread); the caller counts it out of its used total. */
static void slab_push_free(slab_t *s, void **blk)
{
    if (NS_UNLIKELY(s->used == 0))
        error_fatal("heap corruption: a block comes back to a slab with none in use (double free?)", blk);
    link_set(blk, s->free, &s->key);
    s->free = blk;
    s->used--;
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

static void bad_free_list(void *blk)
{
    error_fatal("heap corruption: a slab's free list points at a block that is not free (write after free?)", blk);
}

/* The last block of the list l of slab s, which the caller then links
 * on: each block is checked before its link is followed (its free mark;
 * hardened: the next one lies in the slab), so a poisoned link cannot
 * lead that write elsewhere. */
static void *list_tail(const slab_t *s, void *l)
{
    for (void *next;; l = next) {
        if (!ns_config_hardened && !block_marked_free(l))
            bad_free_list(l);
        if (!(next = link_get(l, &s->key)))
            return l;
        if (ns_config_hardened)
            hardened_check_in_slab(s, next);
    }
}

/* Move s's remote stack onto its free list; its owner (the bin lock
 * holder or the owning thread) calls it, with its counters.  The stack
 * becomes the free list when that is empty (the usual case: a full slab
 * notified), else the shorter of the two lists is walked to join them
 * (both use the slab's key).  Blocks drained. */
static uint32_t slab_take_remote(slab_t *s, bool clear, int64_t *used, void (*drained)(void *, uint32_t), void *arg)
{
    uint32_t n;
    void *list = remote_take(s, clear, &n);
    if (!list)
        return 0;
    if (!s->free) {
        s->free = list;
    } else if (s->bump - s->used <= n) {
        link_set(list_tail(s, s->free), list, &s->key);
    } else {
        link_set(list_tail(s, list), s->free, &s->key);
        s->free = list;
    }
    s->used -= n;
    own_add(used, -(int64_t)n);
    drained(arg, n);
    if (ns_config_debug)
        slab_validate(s);
    return n;
}

static void bin_drained(void *b, uint32_t n)
{
    atomic_fetch_add_explicit(&((bin_t *)b)->remote_drained, n, memory_order_relaxed);
}

static void owner_drained(void *o, uint32_t n)
{
    __atomic_store_n(&((owner_t *)o)->drained, ((owner_t *)o)->drained + n, __ATOMIC_RELAXED);
}

static uint32_t bin_take_remote(bin_t *b, slab_t *s, bool clear)
{
    return slab_take_remote(s, clear, &b->used_blocks, bin_drained, b);
}

/* Slabs notified by remote frees (bin lock held): the bin's own are
 * drained; an owned one goes on to its owner's inbox. */
static size_t drain_pending(node_pool_t *pool, bin_t *b, bool keep_spare)
{
    size_t bytes = 0;
    slab_t *s = remote_take_pending(&b->pending);
    while (s) {
        slab_t *next = s->pending_next;   /* before the bit is cleared */
        owner_t *o = atomic_load_explicit(&s->owner, memory_order_relaxed);
        if (o) {
            remote_pending_push(&o->inbox, s);
        } else {
            bin_take_remote(b, s, true);
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
 * slab's owner calls it.  A whole free list of at most `room` blocks
 * (room >= want) onto an empty *head is taken reading its first block
 * only: the blocks behind it are often ones other threads freed (remote
 * stacks) and cold here, and a walk to cut `want` of them off would miss
 * the cache once per block, a chain of misses, before the thread cache
 * pops them and the program writes them (xmalloc at 2 threads: slab_take
 * was 14 % of the run, 84 % of it on that load).  The thread cache checks
 * each one's mark before it follows its link (tiny.h, tbin_ready; a
 * flush's walk: tcache.c, next_cached, and return_list below); a caller
 * without a cache passes room == want (it may take one block). */
static uint32_t slab_take(slab_t *s, uint32_t want, uint32_t room, void **head)
{
    uint32_t n = 0;
    if (!ns_config_hardened && s->free && !*head && s->bump - s->used <= room) {
        if (!block_marked_free(s->free))
            bad_free_list(s->free);
        *head = s->free;
        s->free = NULL;
        n = s->bump - s->used;
    } else if (!ns_config_hardened && s->free) {
        /* the free list is already a plain list: cut its first `want`
         * blocks off whole, one write (blocks another thread freed are
         * not written again here) */
        void **first = s->free, **last = first;
        for (;;) {
            if (!block_marked_free(last))
                bad_free_list(last);
            n++;
            if (n == want || !last[0])
                break;
            last = last[0];
        }
        s->free = last[0];
        last[0] = *head;
        *head = first;
    }
    while (n < want && s->free) {
        void **blk = s->free;
        if (!ns_config_hardened && !block_marked_free(blk))
            bad_free_list(blk);
        s->free = link_get(blk, &s->key);
        if (ns_config_hardened)
            hardened_check_in_slab(s, s->free);
        blk[0] = *head;               /* the list handed out is plain */
        *head = blk;
        n++;
    }
    uint32_t carve = n < want ? want - n : 0;
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
    if (carve)
        pool_carved(s, (size_t)carve * s->size);
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
            bin_take_remote(b, s, false);
        n += slab_take(s, want - n, want - n, &head);
        if (slab_exhausted(s))
            partial_remove(b, s);
    }
    b->used_blocks += n;
    *got = n;
    return head;
}

void *bin_refill(node_pool_t *pool, unsigned cls, uint32_t want, uint32_t *got)
{
    bin_t *b = &pool->bins[cls];
    /* a miss of a caller without a cache (caches off, an exiting thread,
     * ns_malloc_onnode): counted here; a cache counts its own refills */
    atomic_fetch_add_explicit(&b->refills, 1, memory_order_relaxed);
    bin_lock(b);
    void *head = take_locked(pool, b, cls, want, got, false);
    if (ns_config_debug)
        debug_validate(pool, b, cls);
    lock_drop(&b->lock, LOCK_BIN);
    pool_collapse_pending();
    return head;
}

/* ------------------------------------------------------------ owned slabs */
enum { ON_NONE = 0, ON_AVAIL = 1, ON_FULL = 2 };

static slab_t **olist(owned_class_t *oc, uint8_t on)
{
    return on == ON_AVAIL ? &oc->avail : &oc->full;
}

static void olist_add(owned_class_t *oc, slab_t *s, uint8_t on)
{
    slab_t **head = olist(oc, on);
    s->prev = NULL;
    s->next = *head;
    if (*head) (*head)->prev = s;
    *head = s;
    s->on = on;
}

static void olist_unlink(owned_class_t *oc, slab_t *s)
{
    if (s->on == ON_NONE)
        return;
    if (s->prev) s->prev->next = s->next; else *olist(oc, s->on) = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
    s->on = ON_NONE;
}

/* s leaves o for its bin (under the bin lock): its remote stack is
 * drained into it and it joins the partial list if it has room (an empty
 * one may go back to its SuperSlab).  Bytes unmapped. */
static size_t disown(owner_t *o, slab_t *s)
{
    owned_class_t *oc = &o->cls[s->cls];
    unsigned cls = s->cls;      /* s may be released below (and its SuperSlab unmapped) */
    node_pool_t *pool = node_pool(s->node);
    bin_t *b = &pool->bins[cls];
    size_t bytes = 0;
    if (oc->cur == s)
        oc->cur = NULL;
    else
        olist_unlink(oc, s);
    own_add(&oc->used, -(int64_t)s->used);
    bin_lock(b);
    atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
    b->used_blocks += s->used;
    if (atomic_load_explicit(&s->remote, memory_order_relaxed) & ~NS_REMOTE_NOTIFIED)
        bin_take_remote(b, s, false);
    if (!slab_exhausted(s) || s->used == 0)
        bytes = slab_got_blocks(pool, b, s, true);
    if (ns_config_debug)
        debug_validate(pool, b, cls);
    lock_drop(&b->lock, LOCK_BIN);
    return bytes;
}

/* Blocks came back to o's slab s: a full one has free blocks again; an
 * empty one other than the current goes back to the bin, unless it is
 * the only other slab with room and the current one is not empty too
 * (kept, so that a class that swings between a few blocks and many does
 * not pass slabs to and from the bin, and from thread to thread).  Bytes
 * unmapped. */
static size_t owned_got_blocks(owner_t *o, slab_t *s)
{
    owned_class_t *oc = &o->cls[s->cls];
    if (s == oc->cur)
        return 0;
    if (s->on == ON_FULL) {
        olist_unlink(oc, s);
        olist_add(oc, s, ON_AVAIL);
    }
    if (s->used == 0 && (oc->avail->next || (oc->cur && oc->cur->used == 0)))   /* s is on avail */
        return disown(o, s);
    return 0;
}

/* The owner drains the remote stacks of its notified slabs (passed on to
 * its inbox); a slab it gave back meanwhile goes back to its bin's
 * pending list, still notified.  Bytes unmapped. */
static size_t inbox_drain(owner_t *o)
{
    size_t bytes = 0;
    slab_t *s = atomic_exchange_explicit(&o->inbox, NULL, memory_order_acquire);
    while (s) {
        slab_t *next = s->pending_next;
        if (atomic_load_explicit(&s->owner, memory_order_relaxed) == o) {
            owned_class_t *oc = &o->cls[s->cls];
            if (slab_take_remote(s, true, &oc->used, owner_drained, o))
                bytes += owned_got_blocks(o, s);
        } else {
            remote_pending_push(&node_pool(s->node)->bins[s->cls].pending, s);
        }
        s = next;
    }
    return bytes;
}

/* A slab of the bin for o (under the bin lock, notified slabs drained or
 * passed on first): the fullest partial one, else a new one.  NULL: none,
 * or *retry: o's inbox got slabs (drain it first). */
static slab_t *acquire(owner_t *o, unsigned cls, bool need_room, bool *retry)
{
    node_pool_t *pool = node_pool(o->node);
    bin_t *b = &pool->bins[cls];
    slab_t *s = NULL;
    bin_lock(b);
    drain_pending(pool, b, true);
    if (atomic_load_explicit(&o->inbox, memory_order_relaxed)) {
        *retry = true;
    } else if ((s = b->partial) != NULL) {
        partial_remove(b, s);
    } else if ((s = pool_new_slab(pool, cls, need_room)) != NULL) {
        b->slabs++;
    }
    if (s) {
        if (atomic_load_explicit(&s->remote, memory_order_relaxed) & ~NS_REMOTE_NOTIFIED)
            bin_take_remote(b, s, false);
        b->used_blocks -= s->used;
        own_add(&o->cls[cls].used, s->used);
        atomic_store_explicit(&s->owner, o, memory_order_relaxed);
    }
    if (ns_config_debug)
        debug_validate(pool, b, cls);
    lock_drop(&b->lock, LOCK_BIN);
    return s;
}

void *owned_take(owner_t *o, unsigned cls, uint32_t want, uint32_t room, uint32_t *got, bool need_room)
{
    owned_class_t *oc = &o->cls[cls];
    void *head = NULL;
    if (o->away.n)
        owner_away_flush(o);
    if (atomic_load_explicit(&o->inbox, memory_order_relaxed))
        inbox_drain(o);
    for (;;) {
        slab_t *s = oc->cur;
        if (s) {
            if (!s->free && atomic_load_explicit(&s->remote, memory_order_relaxed) & ~NS_REMOTE_NOTIFIED)
                slab_take_remote(s, false, &oc->used, owner_drained, o);  /* freed blocks before fresh ones */
            uint32_t n = slab_take(s, want, room, &head);
            if (n) {
                own_add(&oc->used, n);
                *got = n;
                pool_collapse_pending();
                return head;
            }
            oc->cur = NULL;
            olist_add(oc, s, ON_FULL);
        }
        if ((s = oc->avail) != NULL) {
            olist_unlink(oc, s);
            oc->cur = s;
            continue;
        }
        bool retry = false;
        s = acquire(o, cls, need_room, &retry);
        if (retry) {
            inbox_drain(o);
            continue;
        }
        if (!s) {
            *got = 0;
            return NULL;
        }
        oc->cur = s;
    }
}

size_t owner_release_class(owner_t *o, unsigned cls)
{
    owned_class_t *oc = &o->cls[cls];
    size_t bytes = inbox_drain(o);    /* full slabs freed by others get room first */
    if (oc->cur)
        bytes += disown(o, oc->cur);
    while (oc->avail)
        bytes += disown(o, oc->avail);
    return bytes;
}

size_t owner_stop(owner_t *o)
{
    owner_away_flush(o);
    for (uint32_t n = 0; n < AWAY_NODES && n < topo_nodes(); n++) {
        bin_t *b = &node_pool(n)->bins[0];
        atomic_fetch_add_explicit(&b->remote_batches, o->away_batches[n], memory_order_relaxed);
        atomic_fetch_add_explicit(&b->remote_frees, o->away_blocks[n], memory_order_relaxed);
        __atomic_store_n(&o->away_batches[n], 0, __ATOMIC_RELAXED);
        __atomic_store_n(&o->away_blocks[n], 0, __ATOMIC_RELAXED);
    }
    size_t bytes = inbox_drain(o);
    for (unsigned c = 0; c < NS_CLASSES; c++) {
        owned_class_t *oc = &o->cls[c];
        bytes += owner_release_class(o, c);
        while (oc->full)
            bytes += disown(o, oc->full);
        bin_t *b = &node_pool(o->node)->bins[c];
        atomic_fetch_add_explicit(&b->refills, oc->refills, memory_order_relaxed);
        __atomic_store_n(&oc->refills, 0, __ATOMIC_RELAXED);
        ns_assert(oc->used == 0);
    }
    atomic_fetch_add_explicit(&node_pool(o->node)->bins[0].remote_drained, o->drained, memory_order_relaxed);
    __atomic_store_n(&o->drained, 0, __ATOMIC_RELAXED);
    bytes += inbox_drain(o);    /* passed on before the last disown: back to the bins */
    return bytes;
}

static void recount(slab_t *s)
{
    uint32_t nfree = 0;
    for (void *f = s->free; f && nfree < s->capacity; f = link_get(f, &s->key))
        nfree++;
    s->used = s->bump - nfree;
}

static void no_count(void *arg, uint32_t n)
{
    (void)arg, (void)n;
}

static void adopt_orphans(superslab_t *ss, void *arg)
{
    const owner_t *keep = arg;
    slab_t *orphan[NS_UNITS];
    unsigned n = 0;
    for (unsigned u = 0; u < NS_UNITS; u++) {
        slab_t *s = &ss->slabs[u];
        const owner_t *o = atomic_load_explicit(&s->owner, memory_order_relaxed);
        if (!s->units || s->first_unit != u || ss->unit_slab[u] != s || !o || o == keep)
            continue;
        recount(s);
        atomic_store_explicit(&s->owner, NULL, memory_order_relaxed);
        s->on = ON_NONE;
        s->prev = s->next = NULL;
        orphan[n++] = s;
    }
    /* then onto the bins' lists: a slab that goes back to the SuperSlab may
     * take the SuperSlab with it (unmapped: NUMASLAB_DECAY_MS=0), so ss is
     * not read again, and each slab only while it is still carved */
    for (unsigned i = 0; i < n; i++) {
        slab_t *s = orphan[i];
        node_pool_t *pool = node_pool(s->node);
        bin_t *b = &pool->bins[s->cls];
        bin_lock(b);
        b->used_blocks += s->used;
        if (atomic_load_explicit(&s->remote, memory_order_relaxed) & ~NS_REMOTE_NOTIFIED)
            bin_take_remote(b, s, false);
        if (!slab_exhausted(s) || s->used == 0)
            slab_got_blocks(pool, b, s, true);
        lock_drop(&b->lock, LOCK_BIN);
    }
}

void owner_fork_forward(void)
{
    for (uint32_t node = 0; node < topo_nodes(); node++)
        node_xfer_drain(node_pool(node), NULL, NULL, NULL);   /* onto remote stacks and pending lists */
    for (uint32_t node = 0; node < topo_nodes(); node++)
        for (unsigned c = 0; c < NS_CLASSES; c++) {
            node_pool_t *pool = node_pool(node);
            bin_lock(&pool->bins[c]);
            drain_pending(pool, &pool->bins[c], true);
            lock_drop(&pool->bins[c].lock, LOCK_BIN);
        }
}

/* The inbox of a thread the child does not have.  Its slabs may be caught
 * mid-change (used not yet counted): each is counted again before its
 * stack joins the free list, whose drain subtracts the stack's length
 * from used (and validates the slab in Debug builds). */
void owner_fork_forget(owner_t *o)
{
    slab_t *s = atomic_exchange_explicit(&o->inbox, NULL, memory_order_acquire);
    while (s) {
        slab_t *next = s->pending_next;
        int64_t ignored = 0;
        recount(s);
        slab_take_remote(s, true, &ignored, no_count, NULL);   /* the bit cleared: on no list now */
        s = next;
    }
}

void owner_fork_adopt(const owner_t *keep)
{
    addrmap_each_superslab(adopt_orphans, (void *)keep);
}

/* n blocks head..tail (linked by word 0, plain) of slab s, which the
 * caller does not own: onto its remote stack in one exchange (they stay
 * counted as used until the owner drains them). */
static void return_run(slab_t *s, void *head, void *tail, uint32_t n)
{
    bin_t *b = &node_pool(s->node)->bins[s->cls];
    if (ns_config_hardened)                 /* the stack takes encoded links */
        for (void **p = head; p != tail;) {
            void **next = p[0];
            link_set(p, next, &s->key);
            p = next;
        }
    remote_push_run(s, head, tail, n, &b->pending);
}

/* Blocks of the bin's own slabs back onto their free lists (bin lock
 * held); a slab that a thread took meanwhile gets them through its remote
 * stack.  Bytes unmapped (slabs that fell empty). */
static size_t return_locked(node_pool_t *pool, bin_t *b, void *list)
{
    size_t bytes = 0;
    while (list) {
        void **blk = list;
        list = blk[0];
        slab_t *s = slab_of((uintptr_t)blk);
        if (is_owned(s)) {
            blk[0] = NULL;
            return_run(s, blk, blk, 1);
            continue;
        }
        slab_push_free(s, blk);
        b->used_blocks--;
        bytes += slab_got_blocks(pool, b, s, true);
    }
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
    uint32_t len[RUNS];
    unsigned n, next;
} runs_t;

/* blk joins the run of slab s (its place is returned, for the next block
 * of the same slab: runs_append). */
static unsigned runs_add(runs_t *r, slab_t *s, void **blk)
{
    blk[0] = NULL;
    for (unsigned i = 0; i < r->n; i++)
        if (r->slab[i] == s) {
            *r->tail[i] = blk;
            r->tail[i] = blk;
            r->len[i]++;
            return i;
        }
    unsigned i = r->n < RUNS ? r->n++ : r->next;
    if (i == r->next && r->n == RUNS) {         /* all places taken: the oldest goes */
        return_run(r->slab[i], r->head[i], r->tail[i], r->len[i]);
        r->next = (r->next + 1) % RUNS;
    }
    r->slab[i] = s, r->head[i] = blk, r->tail[i] = blk, r->len[i] = 1;
    return i;
}

static void runs_append(runs_t *r, unsigned i, void **blk)
{
    blk[0] = NULL;
    *r->tail[i] = blk;
    r->tail[i] = blk;
    r->len[i]++;
}

static void runs_flush(runs_t *r)
{
    for (unsigned i = 0; i < r->n; i++)
        return_run(r->slab[i], r->head[i], r->tail[i], r->len[i]);
    r->n = r->next = 0;
}

/* bin_return; *others counts the blocks that went to other owners'
 * remote stacks (to be counted as drained by them). */
static size_t return_list(owner_t *o, unsigned cls, uint32_t node, void *list, uint64_t *others)
{
    if (o && o->away.n)
        owner_away_flush(o);
    node_pool_t *pool = node_pool(node);
    bin_t *b = &pool->bins[cls];
    runs_t runs;
    runs.n = runs.next = 0;
    void *binned = NULL;
    int64_t mine = 0;
    size_t bytes = 0;
    /* blocks of one slab tend to come together: the slab of the previous
     * block, and where its blocks go, are kept while the next one is in it */
    enum { MINE, BINNED, OTHERS } where = MINE;
    slab_t *s = NULL;
    uintptr_t lo = 0, span = 0;
    unsigned run = 0;
    while (list) {
        void **blk = list;
        if (!ns_config_hardened && !block_marked_free(blk))    /* before its link is read */
            error_fatal("heap corruption: a free list points at a block that is not free (write after free?)", blk);
        list = blk[0];
        uintptr_t a = (uintptr_t)blk;
        if (a - lo >= span) {
            s = slab_of(a);
            if (NS_UNLIKELY(s->cls != cls || s->node != node || !s->units))
                error_fatal("heap corruption: a cached block does not belong to its class", blk);
            lo = s->start, span = s->span;
            owner_t *so = atomic_load_explicit(&s->owner, memory_order_relaxed);
            where = o && so == o ? MINE : !so ? BINNED : OTHERS;
            if (where == OTHERS)
                run = RUNS;                 /* no run yet */
        }
        if (NS_UNLIKELY(!slab_block_start(s, a)))
            error_fatal("heap corruption: a cached block does not belong to its class", blk);
        if (where == OTHERS) {              /* another thread's: its remote stack */
            ++*others;
            if (run < RUNS && runs.slab[run] == s)
                runs_append(&runs, run, blk);
            else
                run = runs_add(&runs, s, blk);
            continue;
        }
        if (where == BINNED) {              /* the bin's: under its lock, below */
            blk[0] = binned;
            binned = blk;
            continue;
        }
        slab_push_free(s, blk);           /* our own slab: no lock */
        mine++;
        if (s->used == 0 || s->on == ON_FULL) {
            own_add(&o->cls[cls].used, -mine);
            mine = 0;
            if (s->used == 0)
                span = 0;   /* s may go back (and its SuperSlab be unmapped): not read again */
            bytes += owned_got_blocks(o, s);
        }
    }
    runs_flush(&runs);
    if (mine)
        own_add(&o->cls[cls].used, -mine);
    if (binned) {
        bin_lock(b);
        bytes += return_locked(pool, b, binned);
        if (ns_config_debug)
            debug_validate(pool, b, cls);
        lock_drop(&b->lock, LOCK_BIN);
    }
    return bytes;
}

size_t bin_return(owner_t *o, unsigned cls, uint32_t node, void *list)
{
    uint64_t others = 0;
    return return_list(o, cls, node, list, &others);
}

bool bin_holds(void *p, const owner_t *o)
{
    slab_t *s = slab_of((uintptr_t)p);
    bin_t *b = &node_pool(s->node)->bins[s->cls];
    bool found = false;
    bin_lock(b);
    const owner_t *so = atomic_load_explicit(&s->owner, memory_order_relaxed);
    if (slab_of((uintptr_t)p) == s && s->units && (!so || so == o)) {
        uint32_t limit = s->capacity;
        for (void **f = s->free; f && limit--; f = link_get(f, &s->key))
            if (f == p) {
                found = true;
                break;
            }
        /* its remote stack too: pushes only add at the top, and only the
         * owner (the caller, or the bin whose lock we hold) takes it */
        limit = s->capacity;
        void **top = remote_top(atomic_load_explicit(&s->remote, memory_order_acquire));
        for (void **f = top; f && !found && limit--; f = link_get(f, &s->key))
            found = f == p;
    }
    lock_drop(&b->lock, LOCK_BIN);
    return found;
}

static void owned_slab_validate(const owner_t *o, const slab_t *s, unsigned cls, uint8_t on,
                                void (*fn)(void *arg, void *p, const char *where), void *arg)
{
    NS_CHECK(atomic_load_explicit(&s->owner, memory_order_relaxed) == o && s->cls == cls && s->node == o->node &&
                 !s->in_partial && s->on == on,
             "an owned slab is its owner's, of its class and node, on its owner's list", s);
    NS_CHECK(on != ON_FULL || !s->free, "an owned full slab has no free block", s);
    slab_validate(s);
    if (!fn)
        return;
    for (void *p = s->free; p; p = link_get(p, &s->key))
        fn(arg, p, "an owned slab's free list");
    for (void *p = remote_top(atomic_load_explicit(&s->remote, memory_order_acquire)); p;
         p = link_get(p, &s->key))
        fn(arg, p, "an owned slab's remote stack");
}

void owner_validate(const owner_t *o, void (*fn)(void *arg, void *p, const char *where), void *arg)
{
    for (unsigned c = 0; c < NS_CLASSES; c++) {
        const owned_class_t *oc = &o->cls[c];
        int64_t used = 0;
        if (oc->cur) {
            owned_slab_validate(o, oc->cur, c, ON_NONE, fn, arg);
            used += oc->cur->used;
        }
        for (const slab_t *s = oc->avail; s; s = s->next) {
            NS_CHECK(s->next == NULL || s->next->prev == s, "owned list links", s);
            owned_slab_validate(o, s, c, ON_AVAIL, fn, arg);
            used += s->used;
        }
        for (const slab_t *s = oc->full; s; s = s->next) {
            NS_CHECK(s->next == NULL || s->next->prev == s, "owned list links", s);
            owned_slab_validate(o, s, c, ON_FULL, fn, arg);
            used += s->used;
        }
        NS_CHECK(used == oc->used, "an owner's used count is the sum of its slabs'", o);
    }
}

/* ---------------------------------------------------- remote frees away */
static void away_count(owner_t *o, uint32_t node, uint32_t blocks)
{
    uint32_t i = node < AWAY_NODES ? node : AWAY_NODES - 1;
    __atomic_store_n(&o->away_batches[i], o->away_batches[i] + 1, __ATOMIC_RELAXED);
    __atomic_store_n(&o->away_blocks[i], o->away_blocks[i] + blocks, __ATOMIC_RELAXED);
}

/* The run head..tail (plain links) onto node's transfer stack: one
 * exchange. */
static void xfer_push(uint32_t node, void *head, void *tail)
{
    node_pool_t *pool = node_pool(node);
    void *old = atomic_load_explicit(&pool->xfer, memory_order_relaxed);
    do {
        *(void **)tail = old;
    } while (!atomic_compare_exchange_weak_explicit(&pool->xfer, &old, head, memory_order_release,
                                                    memory_order_relaxed));
}

/* Run i of o's parked runs to its node (busy held). */
static void away_push(owner_t *o, uint32_t i)
{
    away_t *w = &o->away;
    away_count(o, w->node[i], w->count[i]);
    xfer_push(w->node[i], w->head[i], w->tail[i]);
}

static void away_push_all(owner_t *o)
{
    away_t *w = &o->away;
    for (uint32_t i = 0; i < w->n; i++)
        away_push(o, i);
    w->n = w->next = 0;
    w->since_ms = 0;
}

/* The owner's side of its runs: no atomic read-modify-write (the point of
 * the runs is that a cross-node free writes no shared line).  It announces
 * itself in `busy` with a plain store and backs off while a flusher holds
 * `steal`.  A flusher (another thread, for an idle owner) takes `steal`,
 * then has every CPU of the process pass a full barrier (membarrier)
 * before it reads `busy`: either it sees the owner inside, or the owner's
 * next entry sees `steal`.  Dekker's exclusion, with the owner's fence
 * moved to the rare side.  Without membarrier (or under TSan, which does
 * not know it) nobody flushes another thread's runs. */
static void away_take(away_t *w)
{
    for (;;) {
        atomic_store_explicit(&w->busy, 1, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst);
        if (!atomic_load_explicit(&w->steal, memory_order_acquire))
            return;
        atomic_store_explicit(&w->busy, 0, memory_order_release);
        while (atomic_load_explicit(&w->steal, memory_order_acquire))
            sched_yield();      /* a flusher at work: brief */
    }
}

static void away_drop(away_t *w)
{
    atomic_store_explicit(&w->busy, 0, memory_order_release);
}

void bin_remote_free(owner_t *o, slab_t *s, void *p)
{
    void **blk = p;
    block_set_free(blk, block_mark);
    blk[0] = NULL;
    if (!o || ns_config_hardened) {     /* one block onto its slab's remote stack */
        bin_t *b = &node_pool(s->node)->bins[s->cls];
        return_run(s, blk, blk, 1);
        atomic_fetch_add_explicit(&b->remote_batches, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&b->remote_frees, 1, memory_order_relaxed);
        return;
    }
    away_t *w = &o->away;
    away_take(w);
    uint32_t i = 0;
    while (i < w->n && w->node[i] != s->node)
        i++;
    if (i < w->n) {                         /* the node has a run: the block joins it */
        *(void **)w->tail[i] = blk;
        w->tail[i] = blk;
        w->count[i]++;
    } else {
        if (w->n == AWAY_RUNS) {            /* every run taken: the oldest goes */
            i = w->next;
            away_push(o, i);
            w->next = (w->next + 1) % AWAY_RUNS;
        } else {
            i = w->n++;
        }
        if (!w->since_ms)
            w->since_ms = clock_ms();
        w->node[i] = s->node, w->head[i] = w->tail[i] = blk, w->count[i] = 1;
    }
    if (w->count[i] >= AWAY_BATCH) {        /* a full run goes now; the last run takes its place */
        away_push(o, i);
        uint32_t last = --w->n;
        w->node[i] = w->node[last], w->head[i] = w->head[last];
        w->tail[i] = w->tail[last], w->count[i] = w->count[last];
        w->next = w->n ? w->next % w->n : 0;
        if (!w->n)
            w->since_ms = 0;
    }
    away_drop(w);
}

void owner_away_flush(owner_t *o)
{
    away_t *w = &o->away;
    if (!w->n)
        return;
    away_take(w);
    away_push_all(o);
    away_drop(w);
}

bool owner_away_flush_idle(owner_t *o, uint64_t age_ms)
{
    away_t *w = &o->away;
    uint32_t expected = 0;
#if defined(NS_TSAN) || defined(__SANITIZE_THREAD__)
    (void)age_ms, (void)expected;
    return false;               /* TSan does not know membarrier's ordering */
#endif
    if (!__atomic_load_n(&w->n, __ATOMIC_RELAXED))
        return true;
    if (!atomic_compare_exchange_strong_explicit(&w->steal, &expected, 1, memory_order_acquire, memory_order_relaxed))
        return false;
    bool done = false;
    if (hp_barrier_all() && !atomic_load_explicit(&w->busy, memory_order_acquire)) {
        if (w->n && clock_ms() - w->since_ms >= age_ms)
            away_push_all(o);
        done = !w->n;
    }
    atomic_store_explicit(&w->steal, 0, memory_order_release);
    return done;
}

void owner_fork_away(owner_t *o)
{
    away_t *w = &o->away;
    if (atomic_load_explicit(&w->busy, memory_order_relaxed))
        w->n = 0;               /* caught mid-change: its runs cannot be trusted */
    away_push_all(o);
    atomic_store_explicit(&w->busy, 0, memory_order_relaxed);
    atomic_store_explicit(&w->steal, 0, memory_order_relaxed);
}

/* The transfer stack holds blocks of every class: a block of another
 * owner's slab is first offered to `keep` (the draining thread's cache,
 * which reuses it as a free of its own: no atomic operation, no hand-over
 * to that owner); the rest, sorted by class in one pass, go back in one
 * bin_return per class (own slabs, the bin's, other owners' remote
 * stacks). */
uint64_t node_xfer_drain(node_pool_t *pool, owner_t *o, bool (*keep)(void *arg, void *blk, unsigned cls), void *arg)
{
    void *list = atomic_exchange_explicit(&pool->xfer, NULL, memory_order_acquire);
    if (!list)
        return 0;
    void *by_cls[NS_CLASSES] = {NULL};
    uint64_t n = 0;
    for (void **blk = list; blk; n++) {
        void **next = blk[0];
        if (!block_marked_free(blk))
            error_fatal("heap corruption: a block freed by another node's thread is not marked free "
                        "(write after free?)", blk);
        slab_t *s = slab_of((uintptr_t)blk);
        if (NS_UNLIKELY(s->node != pool->node || !s->units || !slab_block_start(s, (uintptr_t)blk)))
            error_fatal("heap corruption: a block freed by another node's thread is not one of its blocks", blk);
        if (keep && atomic_load_explicit(&s->owner, memory_order_relaxed) != o && keep(arg, blk, s->cls)) {
            blk = next;
            continue;
        }
        blk[0] = by_cls[s->cls];
        by_cls[s->cls] = blk;
        blk = next;
    }
    uint64_t others = 0;
    for (unsigned c = 0; c < NS_CLASSES; c++)
        if (by_cls[c])
            return_list(o, c, pool->node, by_cls[c], &others);
    n -= others;            /* counted when their owners drain them */
    if (o)
        __atomic_store_n(&o->drained, o->drained + n, __ATOMIC_RELAXED);
    else
        atomic_fetch_add_explicit(&pool->bins[0].remote_drained, n, memory_order_relaxed);
    return n;
}

/* Has nobody but bin_release taken the bin's lock for the decay period?
 * (its look counts one acquisition; bin lock held) */
static bool bin_idle(bin_t *b)
{
    uint32_t acquires = (uint32_t)b->lock_acquires, now = (uint32_t)clock_ms();
    if (acquires != b->seen + 1)
        b->seen_ms = now;
    b->seen = acquires;
    return now - b->seen_ms >= (uint64_t)options.decay_ms;
}

size_t bin_release(node_pool_t *pool, unsigned cls, bool all)
{
    bin_t *b = &pool->bins[cls];
    size_t bytes = 0;
    bin_lock(b);
    bool idle = bin_idle(b);
    bytes += drain_pending(pool, b, !all);
    if (all || idle) {
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
    NS_CHECK(b->used_blocks >= 0, "used blocks of a bin", b);
    for (slab_t *s = atomic_load_explicit(&b->pending, memory_order_acquire); s; s = s->pending_next)
        NS_CHECK(atomic_load_explicit(&s->remote, memory_order_relaxed) & NS_REMOTE_NOTIFIED,
              "a pending slab is NOTIFIED", s);
}
