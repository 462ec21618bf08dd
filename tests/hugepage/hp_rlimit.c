/* hp_rlimit.c - a process that lowers its own RLIMIT_AS after numaslab
 * started can still create threads and allocate up to the limit (issue 14,
 * DESIGN.md invariant 13: address space is not spent like memory).
 *
 * One malloc starts numaslab; VmSize is read and RLIMIT_AS lowered to
 * 200 MiB.  Then:
 *   - NTHREADS threads with glibc's default stack size start and run at
 *     once (a barrier), each allocates small and large blocks, checks and
 *     frees them: pthread_create must succeed for every one;
 *   - the main thread allocates, by turns, a large block (3 MiB) and a run
 *     of small ones (1 KiB) until neither can be had: every failure is NULL
 *     with errno ENOMEM, and what the process obtained (its blocks, plus the
 *     threads' stacks, which glibc keeps mapped in its cache after the
 *     join) is at least 60 % of (200 MiB - VmSize at the setrlimit);
 *   - every block still holds its pattern; once they are freed, malloc
 *     works again (small and large).
 * Exit 77 (skip) where RLIMIT_AS cannot be lowered to 200 MiB or VmSize
 * cannot be read. */
#include "as_util.h"

#include <pthread.h>

#define LIMIT ((size_t)200 << 20)
#define NTHREADS 4
#define SMALL 1024
#define LARGE (3 * MiB)

static pthread_barrier_t start;

static void *worker(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start);       /* every stack is mapped now */
    as_chain c = {0};
    bool ok = true;
    for (int i = 0; i < 512 && ok; i++)
        ok = as_add(&c, SMALL);
    ok = ok && as_add(&c, LARGE);
    size_t bad = as_free_all(&c);
    return (void *)(uintptr_t)(!ok || bad);
}

int main(void)
{
    free(malloc(64));                   /* numaslab has started */
    size_t vm0 = as_vmsize();
    if (!vm0)
        as_skip("VmSize unreadable");
    if (vm0 >= LIMIT)
        as_say("note: VmSize %zu KiB is above the 200 MiB limit already\n", vm0 >> 10);
    as_lower(LIMIT);
    size_t headroom = vm0 < LIMIT ? LIMIT - vm0 : 0;
    as_say("hp_rlimit: VmSize %zu KiB at setrlimit, headroom %zu KiB\n", vm0 >> 10, headroom >> 10);

    pthread_attr_t attr;
    size_t stack = 0;
    if (pthread_getattr_default_np(&attr) == 0) {
        pthread_attr_getstacksize(&attr, &stack);
        pthread_attr_destroy(&attr);
    }
    pthread_barrier_init(&start, NULL, NTHREADS + 1);
    pthread_t t[NTHREADS];
    int started = 0, rc = 0;
    for (; started < NTHREADS; started++)
        if ((rc = pthread_create(&t[started], NULL, worker, NULL)) != 0)
            break;
    AS_CHECK(started == NTHREADS, "pthread_create #%d of %d: %s", started + 1, NTHREADS, strerror(rc));
    if (started < NTHREADS) {           /* the barrier would never open */
        as_say("hp_rlimit: FAILED\n");
        return 1;
    }
    pthread_barrier_wait(&start);
    for (int i = 0; i < NTHREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        AS_CHECK(r == NULL, "thread %d: an allocation failed or a block was damaged", i);
    }
    size_t vm1 = as_vmsize();

    as_chain c = {0};
    size_t large = 0, small = 0;
    int errs = 0;
    for (bool more = true; more;) {
        more = false;
        errno = 0;
        if (as_add(&c, LARGE)) {
            large++;
            more = true;
        } else if (errno != ENOMEM) {
            errs++;
        }
        for (int i = 0; i < 256; i++) {
            errno = 0;
            if (!as_add(&c, SMALL)) {
                errs += errno != ENOMEM;
                break;
            }
            small++;
            more = true;
        }
    }
    size_t got = c.bytes + NTHREADS * stack;
    as_say("hp_rlimit: %d threads of %zu KiB stack; then %zu large and %zu small blocks, %zu KiB "
           "(VmSize %zu KiB after the threads, %zu KiB at the end)\n",
           NTHREADS, stack >> 10, large, small, c.bytes >> 10, vm1 >> 10, as_vmsize() >> 10);
    AS_CHECK(errs == 0, "%d failures with an errno other than ENOMEM", errs);
    AS_CHECK(large > 0 && small > 0, "no large (%zu) or no small (%zu) block at all", large, small);
    AS_CHECK(got * 10 >= headroom * 6, "obtained %zu KiB (blocks and stacks), below 60 %% of the headroom %zu KiB",
             got >> 10, headroom >> 10);
    size_t bad = as_free_all(&c);
    AS_CHECK(bad == 0, "%zu blocks damaged", bad);

    /* everything freed: both kinds can be had again */
    void *s = malloc(SMALL), *l = malloc(LARGE);
    AS_CHECK(s && l, "malloc after the frees: small %p, large %p", s, l);
    free(s);
    free(l);
    as_say("hp_rlimit: %s\n", as_failed ? "FAILED" : "ok");
    return as_failed ? 1 : 0;
}
