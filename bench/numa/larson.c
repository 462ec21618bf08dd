/* larson - server simulation in the style of Larson & Krishnan.
 *
 *   larson THREADS [EPOCHS=40] [OPS_PER_EPOCH=50000] [SLOTS=1000] [MIN=16] [MAX=1024] [NAME=larson]
 *
 * THREADS "lineages" each own an array of SLOTS live blocks (first filled by
 * the main thread, so the first frees are cross-thread).  In an epoch a
 * lineage's thread replaces OPS_PER_EPOCH random slots (check the stamp, free,
 * malloc a random size in MIN..MAX, stamp).  At the end of an epoch the thread
 * hands its array to a NEW thread and exits, so blocks are freed by threads
 * other than (and outliving) the one that allocated them, and thread caches
 * are created and torn down all the time.  Reports replacements per second.
 * Blocks under 16 bytes are filled in full (stamp_any).  run.sh also runs
 * it with Larson's original parameters as larson_orig (sizes 10..1000
 * bytes, 1000 blocks per thread, 10,000 replacements per thread).  NAME
 * is the workload name printed. */
#include "bench_common.h"

struct lineage {
    int id;
    long epoch;
    uint64_t rng;
    char **p;
    size_t *n;
    uint64_t *tag;
    uint64_t next_tag;
};

static long nepochs, nops, nslots;
static size_t smin, smax;
static pthread_mutex_t done_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int ndone;

static void *run(void *arg)
{
    struct lineage *L = arg;
    for (long k = 0; k < nops; k++) {
        size_t i = (size_t)(rng_next(&L->rng) % (uint64_t)nslots);
        check_any(L->p[i], L->n[i], L->tag[i], "larson replace");
        free(L->p[i]);
        size_t n = rng_range(&L->rng, smin, smax);
        L->p[i] = xmalloc(n);
        L->n[i] = n;
        L->tag[i] = ++L->next_tag;
        stamp_any(L->p[i], n, L->tag[i]);
    }
    if (++L->epoch < nepochs) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int e = pthread_create(&t, &a, run, L);
        if (e) bench_fail("pthread_create: %s", strerror(e));
        pthread_attr_destroy(&a);
        return NULL;
    }
    pthread_mutex_lock(&done_mu);
    ndone++;
    pthread_cond_signal(&done_cv);
    pthread_mutex_unlock(&done_mu);
    return NULL;
}

int main(int argc, char **argv)
{
    int T = (int)arg_long(argc, argv, 1, 1);
    nepochs = arg_long(argc, argv, 2, 40);
    nops = arg_long(argc, argv, 3, 50000);
    nslots = arg_long(argc, argv, 4, 1000);
    smin = (size_t)arg_long(argc, argv, 5, 16);
    smax = (size_t)arg_long(argc, argv, 6, 1024);
    const char *name = argc > 7 ? argv[7] : "larson";
    if (smax < smin) bench_fail("need MIN <= MAX");

    struct lineage *L = calloc((size_t)T, sizeof *L);
    for (int t = 0; t < T; t++) {
        L[t].id = t;
        L[t].rng = rng_seed(t, 0x1a25);
        L[t].p = calloc((size_t)nslots, sizeof(char *));
        L[t].n = calloc((size_t)nslots, sizeof(size_t));
        L[t].tag = calloc((size_t)nslots, sizeof(uint64_t));
        L[t].next_tag = (uint64_t)t << 40;
        for (long i = 0; i < nslots; i++) {
            size_t n = rng_range(&L[t].rng, smin, smax);
            L[t].p[i] = xmalloc(n);
            L[t].n[i] = n;
            L[t].tag[i] = ++L[t].next_tag;
            stamp_any(L[t].p[i], n, L[t].tag[i]);
        }
    }
    double c0 = bench_cpu(), t0 = bench_now();
    for (int t = 0; t < T; t++) {
        pthread_t th;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int e = pthread_create(&th, &a, run, &L[t]);
        if (e) bench_fail("pthread_create: %s", strerror(e));
        pthread_attr_destroy(&a);
    }
    pthread_mutex_lock(&done_mu);
    while (ndone < T) pthread_cond_wait(&done_cv, &done_mu);
    pthread_mutex_unlock(&done_mu);
    double el = bench_now() - t0, cpu = bench_cpu() - c0;

    for (int t = 0; t < T; t++) {
        if (L[t].epoch != nepochs) bench_fail("lineage %d ran %ld epochs", t, L[t].epoch);
        for (long i = 0; i < nslots; i++) {
            check_any(L[t].p[i], L[t].n[i], L[t].tag[i], "larson final");
            free(L[t].p[i]);
        }
    }
    double ops = (double)T * (double)nepochs * (double)nops;
    bench_report(name, T, ops, el, cpu, "epochs:%ld,slots:%ld,min:%zu,max:%zu,threads_created:%ld", nepochs, nslots,
                 smin, smax, (long)T * nepochs);
    return 0;
}
