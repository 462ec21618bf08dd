/* lock.c - the lock-order check of Debug builds (base.h: lock_take).
 *
 * Each thread counts the locks it holds per rank.  Taking a lock of rank r
 * while holding one of a rank >= r is a violation (two threads doing the
 * opposite would deadlock), reported at once with both ranks, so that a
 * wrong order fails a test the first time it runs rather than the day
 * two threads meet in it.  The only exception: fork's prepare handler
 * takes every bin lock (same rank) in one fixed order. */
#include "base.h"

static const char *const names[LOCK_RANKS] = {
    "stdio list", "heap profiler", "tcache list", "bin", "SuperSlab lists", "large mappings", "address map", "metadata",
    "SuperSlab reservations",
};
static __thread uint32_t held[LOCK_RANKS];
static __thread bool in_fork;

void lock_order_take(unsigned rank)
{
    for (unsigned r = rank; r < LOCK_RANKS; r++) {
        if (!held[r] || (r == rank && rank == LOCK_BIN && in_fork))
            continue;
        char what[160] = "taking the ";
        size_t n = 11;
        for (const char *s = names[rank]; *s && n < sizeof what - 1; s++)
            what[n++] = *s;
        for (const char *s = " lock while holding the "; *s && n < sizeof what - 1; s++)
            what[n++] = *s;
        for (const char *s = names[r]; *s && n < sizeof what - 1; s++)
            what[n++] = *s;
        for (const char *s = " lock"; *s && n < sizeof what - 1; s++)
            what[n++] = *s;
        what[n] = 0;
        error_warn("lock order violated: ", what);
        error_fatal("lock order violated (see src/tiny/fork.c for the order)", NULL);
    }
    held[rank]++;
}

void lock_order_drop(unsigned rank)
{
    if (held[rank] == 0)
        error_fatal("lock order: releasing a lock that is not held", NULL);
    held[rank]--;
}

void lock_order_fork(bool on) { in_fork = on; }

void lock_order_reset(void)
{
    for (unsigned r = 0; r < LOCK_RANKS; r++)
        held[r] = 0;
    in_fork = false;
}

#ifdef NS_COUNT_RMW
__thread uint64_t rmw_thread __attribute__((tls_model("initial-exec")));
static uint64_t rmw_exited;

void rmw_thread_exit(void)
{
    __atomic_fetch_add(&rmw_exited, rmw_thread, __ATOMIC_RELAXED);     /* uncounted */
    rmw_thread = 0;
}

uint64_t rmw_total(void)
{
    return __atomic_load_n(&rmw_exited, __ATOMIC_RELAXED) + rmw_thread;
}
#endif
