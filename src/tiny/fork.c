/* fork.c - the allocator across fork(): the lock order and the handlers.
 *
 * Lock order (every thread, every path; Debug builds check it, base.h
 * lock_take):
 *
 *   glibc's stdio list lock (_IO_list_lock; fork's prepare handler only)
 *   -> heap profiler lock (src/prof.c, through tcache_fork_above)
 *   -> tcache list lock (tiny/tcache.c)
 *   -> bin locks (numa/bin.c; one at a time, all of them only here)
 *   -> SuperSlab-list locks (numa/node_pool.c)
 *   -> large-mapping locks (numa/large.c; never together with the two above
 *      outside fork)
 *   -> address map lock (superslab/addrmap.c)
 *   -> metadata lock (superslab/meta.c)
 *   -> SuperSlab reservation lock (hugepage/os.c)
 *
 * Why the stdio lock comes first.  The prepare handler must hold every
 * allocator lock across fork, so that the child's heap is whole (no list
 * half-updated by a thread that does not exist in the child).  glibc's
 * fork() runs the prepare handlers first and then takes its stdio list
 * lock; a thread in fflush(NULL) holds that list lock and waits for the
 * lock of a FILE, whose holder (in getline, say) waits inside malloc for a
 * bin lock, which the forking thread holds while it waits for the list
 * lock: a cycle (glibc bug 19431; jemalloc and tcmalloc hang on it too).
 * Taking the list lock here, before any allocator lock, breaks it: the
 * forking thread waits for stdio while it holds nothing of the allocator,
 * and the allocator never takes a stdio lock while it holds one of its own
 * (statistics are formatted into a stack buffer after the locks are
 * released).  The list lock is recursive, so glibc's own acquisition in
 * fork() succeeds; the parent handler releases ours, and the child resets
 * it (glibc resets it too).  The three functions are glibc's exported
 * ABI; they are weak here, so a libc without them just skips this step.
 *
 * The child.  It has one thread: the forking one.  Its cache and every
 * block it can reach are intact; the caches of the other threads hold
 * blocks no thread of the child will free, so tcache_fork_child returns
 * them to their slabs (nothing is leaked, nothing handed out twice: those
 * blocks were free).  Blocks that the other threads held in their hands
 * (allocated, in use) stay allocated in the child: that is the memory of
 * the parent's image, as with any allocator.
 *
 * fork() from a signal handler: safe when the handler runs in a thread
 * that is not inside malloc or free at that moment (the prepare handler
 * waits until the interrupted thread releases its lock).  A handler that
 * interrupted malloc or free in its own thread and then forks deadlocks
 * on the lock the interrupted call holds (the locks are not recursive);
 * POSIX leaves fork in a signal handler undefined, and glibc's malloc has
 * the same limit for its arena locks.
 */
#include <pthread.h>

#include "../hugepage/hugepage.h"
#include "tiny.h"

extern void _IO_list_lock(void) __attribute__((weak));
extern void _IO_list_unlock(void) __attribute__((weak));
extern void _IO_list_resetlock(void) __attribute__((weak));

static void fork_prepare(void)
{
    tcache_t *tc = tcache_get();
    if (tc)
        owner_away_flush(&tc->own);   /* this thread's parked remote frees: handed over, lock-free */
    if (_IO_list_lock) {
        if (ns_config_debug)
            lock_order_take(LOCK_STDIO);
        _IO_list_lock();
    }
    if (tcache_fork_above)
        tcache_fork_above(0);
    tcache_lock_list();
    node_pools_lock_all();
    addrmap_lock();
    meta_lock_all();
    hp_lock_all();
}

static void fork_parent(void)
{
    hp_unlock_all(false);
    meta_unlock_all(false);
    addrmap_unlock(false);
    node_pools_unlock_all(false);
    tcache_unlock_list(false);
    if (tcache_fork_above)
        tcache_fork_above(1);
    if (_IO_list_lock) {
        _IO_list_unlock();
        if (ns_config_debug)
            lock_order_drop(LOCK_STDIO);
    }
}

static void fork_child(void)
{
    hp_unlock_all(true);
    meta_unlock_all(true);
    addrmap_unlock(true);
    node_pools_unlock_all(true);
    tcache_unlock_list(true);
    if (tcache_fork_above)
        tcache_fork_above(2);
    if (_IO_list_resetlock)
        _IO_list_resetlock();
    lock_order_reset();
    tcache_fork_child();
    decay_fork_child();         /* no release thread here: it restarts lazily */
}

void (*tcache_fork_above)(int phase);

void tcache_fork_handlers(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}
