/* mstress - objects handed between threads through a shared array, in the
 * shape of mimalloc's stress test (test/test-stress.c).
 *
 *   mstress THREADS [ROUNDS=10] [ITERATIONS_PER_THREAD=400000] [TRANSFERS=1000] [SLOTS=1000]
 *
 * ROUNDS times, THREADS fresh threads start, run, and exit (thread caches
 * are built and torn down each round).  A thread owns SLOTS local slots and
 * a list of retained blocks, and ITERATIONS times chooses at random to
 *   10 %  malloc a block and retain it (freed when the thread ends),
 *   40 %  malloc a block into a random local slot (freeing what was there),
 *   30 %  free the block of a random local slot,
 *   20 %  swap the block of a random local slot (or NULL) with a random slot
 *         of the shared TRANSFERS array (atomic exchange), taking ownership
 *         of what comes back: objects migrate between threads and rounds.
 * Sizes: a power-of-two band 16..512 bytes chosen uniformly, then uniformly
 * inside it; 1 in 100 blocks 40x that (up to 20 KiB), 1 in 5000 1000x (up
 * to 512 KiB, the large path).  The transfer array lives across rounds (some
 * objects live long, freed by a thread of a later round or at the end).
 * Every block carries a stamp; blocks up to 1 KiB are filled in full (word
 * by word) and checked in full before free; a block taken from the transfer array must
 * prove itself (check_self).  Reports mallocs (each block is freed once)
 * per second over all rounds, thread creation included. */
#include "bench_common.h"
#include <stdatomic.h>

#define FULL_CHECK 1024
#define BIG_MAX (512u * 1024u)

struct slot {
    char *p;
    size_t n;
    uint64_t tag;
};

static long nrounds, niter, ntransfer, nslots;
static _Atomic(char *) *transfer;
static _Atomic long total_allocs;

/* The body of a block up to FULL_CHECK bytes: every 8-byte word after the
 * stamp's two holds a value derived from the tag and its index (word-wise,
 * so the check costs little next to the allocator). */
static inline uint64_t word_val(uint64_t tag, size_t i)
{
    return (tag * 0x9E3779B97F4A7C15ULL) ^ (i * 0xD6E8FEB86659FD93ULL);
}

static void fill_words(char *p, size_t n, uint64_t tag)
{
    uint64_t *w = (uint64_t *)p;
    for (size_t i = 2; i < (n - 1) / 8; i++)
        w[i] = word_val(tag, i);
}

static void check_words(const char *p, size_t n, uint64_t tag, const char *where)
{
    const uint64_t *w = (const uint64_t *)p;
    uint64_t bad = 0;
    for (size_t i = 2; i < (n - 1) / 8; i++)
        bad |= w[i] ^ word_val(tag, i);
    if (bad)
        bench_fail("%s: block %p (size %zu, tag %llu): body overwritten", where, (const void *)p, n,
                   (unsigned long long)tag);
}

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    size_t n = rng_logsize(rng, 16, 512);
    if (r % 5000 == 0)
        n *= 1000;
    else if (r % 100 == 1)
        n *= 40;
    return n;
}

static char *alloc_block(uint64_t *rng, size_t *np, uint64_t tag)
{
    size_t n = pick_size(rng);
    char *p = xmalloc(n);
    if (n <= FULL_CHECK)
        fill_words(p, n, tag);
    stamp(p, n, tag);
    *np = n;
    return p;
}

static void free_block(char *p, size_t n, uint64_t tag, const char *where)
{
    check_stamp(p, n, tag, where);
    if (n <= FULL_CHECK)
        check_words(p, n, tag, where);
    free(p);
}

static void *run(void *arg)
{
    long id = (long)(intptr_t)arg; /* round * THREADS + thread */
    uint64_t rng = rng_seed((uint64_t)id, 0x6d73);
    struct slot *s = calloc((size_t)nslots, sizeof *s);
    size_t cap = (size_t)niter / 8 + 16, nret = 0;
    struct slot *ret = malloc(cap * sizeof *ret);
    if (!s || !ret)
        bench_fail("thread tables");
    uint64_t tag = (uint64_t)(id + 1) << 36;
    long allocs = 0;
    for (long k = 0; k < niter; k++) {
        unsigned c = (unsigned)(rng_next(&rng) % 100);
        if (c < 10) {
            if (nret == cap) { /* the retained list is full: free its oldest half */
                for (size_t i = 0; i < cap / 2; i++)
                    free_block(ret[i].p, ret[i].n, ret[i].tag, "mstress retained");
                memmove(ret, ret + cap / 2, (cap - cap / 2) * sizeof *ret);
                nret = cap - cap / 2;
            }
            struct slot *x = &ret[nret++];
            x->tag = ++tag;
            x->p = alloc_block(&rng, &x->n, x->tag);
            allocs++;
            continue;
        }
        struct slot *x = &s[rng_next(&rng) % (uint64_t)nslots];
        if (c < 50) {
            if (x->p)
                free_block(x->p, x->n, x->tag, "mstress replace");
            x->tag = ++tag;
            x->p = alloc_block(&rng, &x->n, x->tag);
            allocs++;
        } else if (c < 80) {
            if (x->p)
                free_block(x->p, x->n, x->tag, "mstress free");
            x->p = NULL;
        } else {
            if (x->p)
                check_stamp(x->p, x->n, x->tag, "mstress give");
            char *got = atomic_exchange(&transfer[rng_next(&rng) % (uint64_t)ntransfer], x->p);
            x->p = got;
            if (got) {
                x->tag = check_self(got, 16, (size_t)512 * 1000, "mstress take");
                x->n = (size_t)((uint64_t *)got)[1];
                if (x->n <= FULL_CHECK)
                    check_words(got, x->n, x->tag, "mstress take");
            }
        }
    }
    for (long i = 0; i < nslots; i++)
        if (s[i].p)
            free_block(s[i].p, s[i].n, s[i].tag, "mstress thread end");
    for (size_t i = 0; i < nret; i++)
        free_block(ret[i].p, ret[i].n, ret[i].tag, "mstress retained end");
    free(s);
    free(ret);
    atomic_fetch_add(&total_allocs, allocs);
    return NULL;
}

int main(int argc, char **argv)
{
    int T = (int)arg_long(argc, argv, 1, 1);
    nrounds = arg_long(argc, argv, 2, 10);
    niter = arg_long(argc, argv, 3, 400000);
    ntransfer = arg_long(argc, argv, 4, 1000);
    nslots = arg_long(argc, argv, 5, 1000);
    transfer = calloc((size_t)ntransfer, sizeof *transfer);
    pthread_t *th = malloc(sizeof *th * (size_t)T);
    if (!transfer || !th)
        bench_fail("calloc");
    double c0 = bench_cpu(), t0 = bench_now();
    for (long r = 0; r < nrounds; r++) {
        for (long t = 0; t < T; t++)
            xpthread_create(&th[t], run, (void *)(intptr_t)(r * T + t));
        for (int t = 0; t < T; t++)
            pthread_join(th[t], NULL);
    }
    double el = bench_now() - t0, cpu = bench_cpu() - c0;
    long left = 0;
    for (long i = 0; i < ntransfer; i++) {
        char *p = atomic_load(&transfer[i]);
        if (!p)
            continue;
        uint64_t tag = check_self(p, 16, (size_t)512 * 1000, "mstress transfer end");
        free_block(p, (size_t)((uint64_t *)p)[1], tag, "mstress transfer end");
        left++;
    }
    bench_report("mstress", T, (double)total_allocs, el, cpu, "rounds:%ld,transfers:%ld,left_in_transfer:%ld",
                 nrounds, ntransfer, left);
    free(transfer);
    free(th);
    return 0;
}
