/* mthread - thread-local random sizes, in the shape of glibc's malloc-thread
 * benchmark (benchtests/bench-malloc-thread).
 *
 *   mthread THREADS [ITERATIONS_PER_THREAD=20000000] [SLOTS=1024] [MAX=32768] [MIN=4]
 *
 * Every thread owns SLOTS slots (its working set) and ITERATIONS times picks
 * a random slot, frees the block there (after checking it) and mallocs a new
 * one of a random size in MIN..MAX with an inverse-square distribution
 * (density ~ 1/size^2: mostly a few dozen bytes, now and then up to 32 KiB),
 * stamped (stamp_any: blocks under 16 bytes are filled).  Sizes and slots
 * come from per-thread deterministic generators; the sizes from a shared
 * table drawn once.  No block ever leaves its thread.  Reports iterations
 * (free + malloc) per second, all threads together. */
#include "bench_common.h"

#define NSIZES 8192

static long niter, nslots;
static size_t smin, smax;
static size_t *sizes;

struct slot {
    char *p;
    size_t n;
    uint64_t tag;
};

static void *run(void *arg)
{
    long id = (long)(intptr_t)arg;
    uint64_t rng = rng_seed((uint64_t)id, 0x6d74);
    struct slot *s = calloc((size_t)nslots, sizeof *s);
    if (!s)
        bench_fail("calloc slots");
    uint64_t tag = (uint64_t)id << 40;
    for (long k = 0; k < niter; k++) {
        uint64_t r = rng_next(&rng);
        struct slot *x = &s[(r >> 32) % (uint64_t)nslots];
        size_t n = sizes[(r & 0xffffffffu) % NSIZES];
        if (x->p) {
            check_any(x->p, x->n, x->tag, "mthread free");
            free(x->p);
        }
        x->p = xmalloc(n);
        x->n = n;
        x->tag = ++tag;
        stamp_any(x->p, n, x->tag);
    }
    for (long i = 0; i < nslots; i++)
        if (s[i].p) {
            check_any(s[i].p, s[i].n, s[i].tag, "mthread final");
            free(s[i].p);
        }
    free(s);
    return NULL;
}

int main(int argc, char **argv)
{
    int T = (int)arg_long(argc, argv, 1, 1);
    niter = arg_long(argc, argv, 2, 20000000);
    nslots = arg_long(argc, argv, 3, 1024);
    smax = (size_t)arg_long(argc, argv, 4, 32768);
    smin = (size_t)arg_long(argc, argv, 5, 4);
    if (smax < smin)
        bench_fail("need MIN <= MAX");
    sizes = size_table(NSIZES, smin, smax, DIST_INVSQUARE, 88);
    pthread_t *th = malloc(sizeof *th * (size_t)T);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long t = 0; t < T; t++)
        xpthread_create(&th[t], run, (void *)(intptr_t)t);
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    double el = bench_now() - t0, cpu = bench_cpu() - c0;
    size_t sum = 0;
    for (int i = 0; i < NSIZES; i++)
        sum += sizes[i];
    bench_report("mthread", T, (double)T * (double)niter, el, cpu, "slots:%ld,min:%zu,max:%zu,mean_size:%zu",
                 nslots, smin, smax, sum / NSIZES);
    free(sizes);
    free(th);
    return 0;
}
