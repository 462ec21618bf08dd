/* mixed - random mixed sizes with a live set.
 *
 *   mixed THREADS [OPS_PER_THREAD=2000000] [SLOTS=2000] [MAX=1024] [MIN=16]
 *
 * Each thread owns SLOTS slots (about half of them live at any time) and does
 * OPS random operations on random slots: an empty slot gets malloc (90 %) or
 * calloc (10 %, checked zero) of a size uniform in MIN..MAX; a live slot is
 * freed (85 %) or realloc'ed to a new random size (15 %, prefix checked).
 * Every block is stamped and checked before it is freed.  The workload name
 * is mixed_<MAX>, e.g. mixed_1k or mixed_64k. */
#include "bench_common.h"

static long nops, nslots;
static size_t smin, smax;

struct slot {
    char *p;
    size_t n;
    uint64_t tag;
};

static void *run(void *arg)
{
    long id = (long)(intptr_t)arg;
    uint64_t rng = rng_seed((uint64_t)id, 0x3d1);
    struct slot *s = calloc((size_t)nslots, sizeof *s);
    uint64_t tag = (uint64_t)id << 40;
    for (long k = 0; k < nops; k++) {
        uint64_t r = rng_next(&rng);
        struct slot *x = &s[r % (uint64_t)nslots];
        unsigned c = (unsigned)(r >> 40) % 100;
        size_t n = smin + (size_t)((r >> 8) % (uint64_t)(smax - smin + 1));
        if (!x->p) {
            if (c < 90) {
                x->p = xmalloc(n);
            } else {
                x->p = calloc(1, n);
                if (!x->p) bench_fail("calloc(1, %zu) failed", n);
                size_t lim = n < 256 ? n : 256;
                for (size_t i = 0; i < lim; i++)
                    if (x->p[i]) bench_fail("calloc(%zu) byte %zu not zero", n, i);
                if (x->p[n - 1] || x->p[n / 2]) bench_fail("calloc(%zu) tail not zero", n);
            }
            x->n = n;
            x->tag = ++tag;
            stamp(x->p, n, x->tag);
        } else if (c < 85) {
            check_stamp(x->p, x->n, x->tag, "mixed free");
            free(x->p);
            x->p = NULL;
        } else {
            check_stamp(x->p, x->n, x->tag, "mixed realloc");
            char *q = realloc(x->p, n);
            if (!q) bench_fail("realloc(%zu) failed", n);
            uint64_t *w = (uint64_t *)q;
            if (w[0] != x->tag || (n >= 16 && x->n >= 16 && w[1] != x->n))
                bench_fail("realloc %zu -> %zu lost the contents", x->n, n);
            x->p = q;
            x->n = n;
            x->tag = ++tag;
            stamp(q, n, x->tag);
        }
    }
    for (long i = 0; i < nslots; i++)
        if (s[i].p) {
            check_stamp(s[i].p, s[i].n, s[i].tag, "mixed final");
            free(s[i].p);
        }
    free(s);
    return NULL;
}

int main(int argc, char **argv)
{
    int T = (int)arg_long(argc, argv, 1, 1);
    nops = arg_long(argc, argv, 2, 2000000);
    nslots = arg_long(argc, argv, 3, 2000);
    smax = (size_t)arg_long(argc, argv, 4, 1024);
    smin = (size_t)arg_long(argc, argv, 5, 16);
    if (smin < 16 || smax < smin) bench_fail("need 16 <= MIN <= MAX");
    pthread_t *th = malloc(sizeof *th * (size_t)T);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long t = 0; t < T; t++) xpthread_create(&th[t], run, (void *)(intptr_t)t);
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    double el = bench_now() - t0, cpu = bench_cpu() - c0;
    char name[32];
    if (smax % 1024 == 0)
        snprintf(name, sizeof name, "mixed_%zuk", smax / 1024);
    else
        snprintf(name, sizeof name, "mixed_%zu", smax);
    bench_report(name, T, (double)T * (double)nops, el, cpu, "slots:%ld,min:%zu,max:%zu", nslots, smin, smax);
    return 0;
}
