/* init.c - process and thread start-up, fork handlers, the clock.
 *
 * Start-up is lazy and recursion-safe: the first malloc of the process (in
 * the dynamic loader, before any constructor) finds the init sentinel cache
 * and calls ns_init().  One thread runs the start-up; others wait for it.
 * Nothing in it allocates through malloc: options come from getenv, the
 * random key from the auxiliary vector, pools from meta.c.  The atfork
 * handlers are registered after the state is "done", so that an allocation
 * inside pthread_atfork finds a working allocator.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <time.h>

#include "hugepage/hugepage.h"
#include "internal.h"
#include "numa/numa.h"
#include "superslab/superslab.h"
#include "tiny/tiny.h"

_Atomic int ns_init_state;
static __thread bool in_init;

uint64_t ns_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

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

static uintptr_t random_key(void)
{
    uintptr_t k = 0;
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    if (r)
        for (unsigned i = 0; i < sizeof k; i++)
            k = (k << 8) | r[i + 8];
    k ^= (uintptr_t)&k * 0x9e3779b97f4a7c15u ^ (uintptr_t)ns_now_ms();
    return k | 1;      /* never equal to a pointer's bits: odd */
}

/* The topology loads after start-up, when the libraries it needs have run
 * their constructors; until then (and on one-node machines for good) every
 * thread is on node 0.  hwloc's own allocations are served by node 0. */
__attribute__((constructor)) static void numaslab_constructor(void)
{
    if (ns_init())
        topo_load();
}

static bool run_init(void)
{
    options_init();
    hp_init((const char *)(intptr_t)ns_opt.pages);
    ns_key = random_key();
    if (node_pools_init() != 0)
        return false;
    tcache_global_init();
    return true;
}

bool ns_init(void)
{
    int state = atomic_load_explicit(&ns_init_state, memory_order_acquire);
    if (NS_LIKELY(state == 2))
        return true;
    if (in_init)
        ns_fatal("recursive start-up: malloc called while numaslab initialises", NULL);
    state = 0;
    if (atomic_compare_exchange_strong(&ns_init_state, &state, 1)) {
        in_init = true;
        bool ok = run_init();
        in_init = false;
        atomic_store_explicit(&ns_init_state, ok ? 2 : 0, memory_order_release);
        if (!ok)
            return false;
        pthread_atfork(fork_prepare, fork_parent, fork_child);
        if (ns_opt.stats)
            atexit(stats_at_exit);
        return true;
    }
    while ((state = atomic_load_explicit(&ns_init_state, memory_order_acquire)) == 1)
        sched_yield();
    return state == 2;
}
