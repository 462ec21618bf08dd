/* init.c - what the entry points add to start-up: the statistics report
 * at exit (NUMASLAB_STATS), the slow-path tick of live statistics and the
 * heap profiler (NUMASLAB_PROF).  The allocator itself starts lazily on the
 * first malloc (src/tiny/tcache.c: tcache_start), registers its fork
 * handlers there (src/tiny/fork.c) and loads the topology from its own
 * constructor. */
#include <stdlib.h>

#include "api.h"

__attribute__((constructor)) static void stats_constructor(void)
{
    tcache_slow_hook = live_tick_malloc;   /* live statistics (live.c) */
    if (!tcache_start())
        return;
    if (options.stats)
        atexit(stats_at_exit);
    if (options.prof)
        prof_start();                      /* the heap profiler (prof.c) */
}
