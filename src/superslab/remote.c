/* remote.c - the remote-free stack of a slab (many producers, one consumer).
 *
 * A thread on another node frees a block by pushing it onto slab.remote; it
 * never puts it in its own cache.  The holder of the slab's bin lock (the
 * owner) takes the whole stack with one atomic operation and moves the
 * blocks into slab.free before it pops from that list.  The stack's length
 * rides in the same word, so the owner never walks it: the blocks were
 * written last by the freeing thread's core, and a walk would take a cache
 * miss per block only to count them (the cost of producer-consumer
 * programs: xmalloc spent a fifth of its time there).  The free mark of
 * each block is checked when a thread cache pops it or a flush walks past
 * it (tiny/tcache.c, numa/bin.c); debug and hardened builds also check the
 * whole stack here.
 *
 * Waking the owner.  A slab that was full is on no list, so blocks pushed to
 * it would never be seen.  The low bit of slab.remote (NOTIFIED) says "this
 * slab is on, or is being put on, the owner's pending list" (bin.pending,
 * numa/bin.c).  The push that finds the bit clear sets it and then pushes
 * the slab onto that list; the owner drains it at every refill.  Only the
 * owner, after popping the slab from the pending list, clears the bit (remote_take(clear = true)); any other drain
 * keeps it (clear = false).  So a slab is on the pending list at most once,
 * and while the bit is set the slab is not released (numa/bin.c checks it):
 * the notifier may still be about to write slab.pending_next.
 */
#include "superslab.h"

void remote_push_run(slab_t *s, void *head, void *tail, uint32_t n, remote_pending_t *pending)
{
    uintptr_t old = atomic_load_explicit(&s->remote, memory_order_relaxed), next;
    do {
        link_set(tail, remote_top(old), &s->key);
        next = (uintptr_t)head | NS_REMOTE_NOTIFIED | (((uintptr_t)remote_count(old) + n) << NS_REMOTE_COUNT_SHIFT);
    } while (!atomic_compare_exchange_weak_explicit(&s->remote, &old, next, memory_order_acq_rel,
                                                    memory_order_relaxed));
    if (old & NS_REMOTE_NOTIFIED)
        return;
    remote_pending_push(pending, s);
}

void remote_pending_push(remote_pending_t *pending, slab_t *s)
{
    slab_t *top = atomic_load_explicit(pending, memory_order_relaxed);
    do {
        s->pending_next = top;
    } while (!atomic_compare_exchange_weak_explicit(pending, &top, s, memory_order_release, memory_order_relaxed));
}

void remote_push(slab_t *s, void *block, remote_pending_t *pending)
{
    remote_push_run(s, block, block, 1, pending);
}

void *remote_take(slab_t *s, bool clear, uint32_t *n)
{
    uintptr_t v = clear ? atomic_exchange_explicit(&s->remote, 0, memory_order_acq_rel)
                        : atomic_fetch_and_explicit(&s->remote, NS_REMOTE_NOTIFIED, memory_order_acq_rel);
    void *list = remote_top(v);
    *n = remote_count(v);
    if (ns_config_hardened || ns_config_debug) {
        uint32_t count = 0;
        for (void *b = list; b; b = link_get(b, &s->key)) {
            if (ns_config_hardened)
                hardened_check_in_slab(s, b);
            else if (!block_marked_free(b))
                error_fatal("heap corruption: a remote stack points at a block that is not free (write after free?)", b);
            count++;
        }
        ns_assert(count == *n);
    }
    return list;
}

slab_t *remote_take_pending(remote_pending_t *pending)
{
    if (atomic_load_explicit(pending, memory_order_relaxed) == NULL)
        return NULL;
    return atomic_exchange_explicit(pending, NULL, memory_order_acquire);
}
