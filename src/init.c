/* init.c - process start-up after the loader, and the fork handlers.
 *
 * The allocator starts lazily on the first malloc (tcache_start, in
 * src/tiny: every layer up to the thread caches).  This file's constructor
 * runs once the libraries numaslab needs have run theirs: it makes sure
 * the allocator is started, registers the fork handlers and the
 * statistics at exit, and loads the topology (hwloc allocates while it
 * loads; the bootstrap pool of node 0 serves it).
 */
#include <pthread.h>
#include <stdlib.h>

#include "api.h"

static void fork_prepare(void)
{
    tcache_lock_list();
    node_pools_lock_all();
    addrmap_lock();
    meta_lock_all();
}

static void fork_parent(void)
{
    meta_unlock_all(false);
    addrmap_unlock(false);
    node_pools_unlock_all(false);
    tcache_unlock_list(false);
}

static void fork_child(void)
{
    meta_unlock_all(true);
    addrmap_unlock(true);
    node_pools_unlock_all(true);
    tcache_unlock_list(true);
    tcache_fork_child();
}

__attribute__((constructor)) static void numaslab_constructor(void)
{
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    if (!tcache_start())
        return;
    if (options.stats)
        atexit(stats_at_exit);
    node_heap_load_topology();
}
