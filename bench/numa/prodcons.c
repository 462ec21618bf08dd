/* prodcons - producer/consumer: blocks allocated on one thread and freed on
 * another (the allocator's remote-free path).
 *
 *   prodcons THREADS [BLOCKS_PER_PAIR=1000000] [MIN=16] [MAX=512] [RING=1024]
 *
 * THREADS is the total thread count: max(1, THREADS/2) producer/consumer
 * pairs run (so THREADS=1 also runs one pair, on 2 threads).  Each producer
 * mallocs blocks of random size in MIN..MAX, fills the whole block with a
 * pattern derived from its sequence number and passes it through a bounded
 * single-producer/single-consumer ring; the consumer verifies every byte and
 * frees it.  Reports blocks per second (all pairs together). */
#include "bench_common.h"
#include <sched.h>
#include <stdatomic.h>

struct pair {
    _Alignas(64) _Atomic unsigned long head; /* written by the producer */
    _Alignas(64) _Atomic unsigned long tail; /* written by the consumer */
    _Alignas(64) void **ring;
    int id;
    unsigned long checked;
};

static long nblocks;
static size_t smin, smax, ringsz;

static void *producer(void *arg)
{
    struct pair *P = arg;
    uint64_t rng = rng_seed((uint64_t)P->id, 0x9c);
    unsigned long h = 0;
    for (long k = 0; k < nblocks; k++) {
        size_t n = rng_range(&rng, smin, smax);
        char *p = xmalloc(n);
        uint64_t tag = ((uint64_t)P->id << 40) + (uint64_t)k;
        fill_full(p, n, tag);
        int spins = 0;
        while (h - atomic_load_explicit(&P->tail, memory_order_acquire) >= ringsz)
            if (++spins > 64) sched_yield();
        P->ring[h % ringsz] = p;
        atomic_store_explicit(&P->head, ++h, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct pair *P = arg;
    unsigned long t = 0;
    for (long k = 0; k < nblocks; k++) {
        int spins = 0;
        while (atomic_load_explicit(&P->head, memory_order_acquire) == t)
            if (++spins > 64) sched_yield();
        char *p = P->ring[t % ringsz];
        atomic_store_explicit(&P->tail, ++t, memory_order_release);
        uint64_t *w = (uint64_t *)p;
        uint64_t tag = ((uint64_t)P->id << 40) + (uint64_t)k;
        if (w[0] != tag) bench_fail("prodcons: block %ld of pair %d has tag %llu", k, P->id, (unsigned long long)w[0]);
        check_full(p, (size_t)w[1], tag, "prodcons consumer");
        free(p);
        P->checked++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int T = (int)arg_long(argc, argv, 1, 1);
    nblocks = arg_long(argc, argv, 2, 1000000);
    smin = (size_t)arg_long(argc, argv, 3, 16);
    smax = (size_t)arg_long(argc, argv, 4, 512);
    ringsz = (size_t)arg_long(argc, argv, 5, 1024);
    if (smin < 16 || smax < smin) bench_fail("need 16 <= MIN <= MAX");
    int npairs = T / 2 > 0 ? T / 2 : 1;
    struct pair *P = aligned_alloc(64, sizeof *P * (size_t)npairs);
    if (!P) bench_fail("aligned_alloc");
    memset(P, 0, sizeof *P * (size_t)npairs);
    pthread_t *th = malloc(sizeof *th * 2 * (size_t)npairs);
    for (int i = 0; i < npairs; i++) {
        P[i].id = i;
        P[i].ring = xmalloc(sizeof(void *) * ringsz);
    }
    double c0 = bench_cpu(), t0 = bench_now();
    for (int i = 0; i < npairs; i++) {
        xpthread_create(&th[2 * i], consumer, &P[i]);
        xpthread_create(&th[2 * i + 1], producer, &P[i]);
    }
    for (int i = 0; i < 2 * npairs; i++) pthread_join(th[i], NULL);
    double el = bench_now() - t0, cpu = bench_cpu() - c0;
    for (int i = 0; i < npairs; i++) {
        if (P[i].checked != (unsigned long)nblocks) bench_fail("pair %d checked %lu blocks", i, P[i].checked);
        free(P[i].ring);
    }
    bench_report("prodcons", T, (double)npairs * (double)nblocks, el, cpu, "pairs:%d,min:%zu,max:%zu", npairs, smin,
                 smax);
    return 0;
}
