/* cache_scratch - passive false sharing, in the style of Hoard's cache-scratch.
 *
 *   cache_scratch THREADS [ITERATIONS=20000] [WRITES=2000] [OBJSIZE=8]
 *
 * The main thread allocates THREADS small objects back to back (they share
 * cache lines) and hands object i to thread i, which frees it; then each
 * thread ITERATIONS times mallocs an OBJSIZE object, writes every byte of it
 * WRITES times (checking the result) and frees it.  An allocator that hands
 * the freed neighbour back to another thread makes threads write to the same
 * cache line.  extra=shared_lines counts threads whose last object shared a
 * 64-byte line with another thread's.  Reports malloc/write/free rounds per
 * second. */
#include "bench_common.h"

static long niter, nwrites;
static size_t objsize;
static char **initial;
static uintptr_t *last_addr;

static void *run(void *arg)
{
    long id = (long)(intptr_t)arg;
    free(initial[id]);
    uintptr_t last = 0;
    for (long i = 0; i < niter; i++) {
        volatile unsigned char *p = malloc(objsize);
        if (!p) bench_fail("malloc(%zu) failed", objsize);
        __atomic_store_n(&last, (uintptr_t)p, __ATOMIC_RELAXED);
        for (long w = 0; w < nwrites; w++)
            for (size_t j = 0; j < objsize; j++) p[j] = (unsigned char)(p[j] + 1 + (j & 1));
        /* the bytes started as whatever malloc left there: check a known
         * value written last instead */
        for (size_t j = 0; j < objsize; j++) p[j] = (unsigned char)(id + j + (size_t)i);
        for (size_t j = 0; j < objsize; j++)
            if (p[j] != (unsigned char)(id + j + (size_t)i)) bench_fail("cache_scratch: byte %zu of %p lost a write", j, (void *)p);
        free((void *)p);
    }
    last_addr[id] = last;
    return NULL;
}

int main(int argc, char **argv)
{
    int T = (int)arg_long(argc, argv, 1, 1);
    niter = arg_long(argc, argv, 2, 20000);
    nwrites = arg_long(argc, argv, 3, 2000);
    objsize = (size_t)arg_long(argc, argv, 4, 8);
    initial = calloc((size_t)T, sizeof *initial);
    last_addr = calloc((size_t)T, sizeof *last_addr);
    for (int t = 0; t < T; t++) {
        initial[t] = xmalloc(objsize);
        memset(initial[t], t, objsize);
    }
    pthread_t *th = malloc(sizeof *th * (size_t)T);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long t = 0; t < T; t++) xpthread_create(&th[t], run, (void *)(intptr_t)t);
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    double el = bench_now() - t0, cpu = bench_cpu() - c0;
    int shared = 0;
    for (int a = 0; a < T; a++)
        for (int b = 0; b < T; b++)
            if (a != b && last_addr[a] / 64 == last_addr[b] / 64) {
                shared++;
                break;
            }
    bench_report("cache_scratch", T, (double)T * (double)niter, el, cpu, "writes:%ld,objsize:%zu,shared_lines:%d",
                 nwrites, objsize, shared);
    return 0;
}
