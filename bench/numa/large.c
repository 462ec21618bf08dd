/* large - multi-MiB blocks allocated, touched and freed repeatedly.
 *
 *   large THREADS [ITERATIONS=300] [MIN_KIB=1024] [MAX_KIB=32768]
 *
 * Each thread keeps a window of 2 live blocks; per iteration it checks and
 * frees the older one and mallocs a new one of a random size in
 * MIN_KIB..MAX_KIB KiB (not page-rounded), writing one 8-byte value into
 * every 4 KiB page (so every page is faulted in or reused) and the last byte.
 * Before the free every page's value is read back.  Reports blocks per
 * second (per block: malloc, touch all pages, check all pages, free). */
#include "bench_common.h"

static long niter;
static size_t smin, smax;

struct blk {
    char *p;
    size_t n;
    uint64_t tag;
};

static void touch(struct blk *b)
{
    for (size_t o = 0; o + 8 <= b->n; o += 4096) *(uint64_t *)(b->p + o) = b->tag ^ o;
    b->p[b->n - 1] = (char)b->tag;
}

static void verify(const struct blk *b)
{
    for (size_t o = 0; o + 8 <= b->n; o += 4096)
        if (*(const uint64_t *)(b->p + o) != (b->tag ^ o))
            bench_fail("large: block %p (%zu bytes) page at offset %zu corrupted", b->p, b->n, o);
    if (b->p[b->n - 1] != (char)b->tag) bench_fail("large: block %p last byte corrupted", b->p);
}

static void *run(void *arg)
{
    long id = (long)(intptr_t)arg;
    uint64_t rng = rng_seed((uint64_t)id, 0x1a7);
    struct blk w[2] = {{0}};
    for (long i = 0; i < niter; i++) {
        struct blk *b = &w[i & 1];
        if (b->p) {
            verify(b);
            free(b->p);
        }
        b->n = rng_range(&rng, smin, smax);
        b->p = xmalloc(b->n);
        b->tag = ((uint64_t)id << 40) + (uint64_t)i * 0x10001u;
        touch(b);
    }
    for (int k = 0; k < 2; k++)
        if (w[k].p) {
            verify(&w[k]);
            free(w[k].p);
        }
    return NULL;
}

int main(int argc, char **argv)
{
    int T = (int)arg_long(argc, argv, 1, 1);
    niter = arg_long(argc, argv, 2, 300);
    smin = (size_t)arg_long(argc, argv, 3, 1024) * 1024;
    smax = (size_t)arg_long(argc, argv, 4, 32768) * 1024;
    if (smax < smin || smin < 16) bench_fail("need MIN <= MAX");
    pthread_t *th = malloc(sizeof *th * (size_t)T);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long t = 0; t < T; t++) xpthread_create(&th[t], run, (void *)(intptr_t)t);
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    double el = bench_now() - t0, cpu = bench_cpu() - c0;
    bench_report("large", T, (double)T * (double)niter, el, cpu, "min_kib:%zu,max_kib:%zu", smin / 1024, smax / 1024);
    return 0;
}
