/* rptest - random-pair exchange, in the shape of rpmalloc's benchmark
 * (as mimalloc-bench runs it: random sizes with a linear falloff in
 * 16..16000 bytes, cross-thread frees every second loop).
 *
 *   rptest THREADS [LOOPS=20000] [BLOCKS=1000] [OPS=100] [CROSS_RATE=2] [MIN=16] [MAX=16000]
 *
 * Every thread owns a table of BLOCKS slots that lives across loops.  A loop
 *  1. frees OPS blocks at random slots (an empty slot is skipped),
 *  2. mallocs OPS blocks into random slots (freeing what was there),
 *  3. every CROSS_RATE-th loop, mallocs a batch of OPS more blocks and puts
 *     it into the queue of the pair (this thread -> a random other thread;
 *     itself when alone): one bounded single-producer single-consumer ring
 *     per ordered pair of threads,
 *  4. takes every batch waiting in its own incoming rings and frees it.
 * Sizes come from a table drawn once with density ~ (MAX - size).  Every
 * block is stamped; a thread checks its own blocks against the tag it kept,
 * and a received batch's blocks against the tag derived from (sender,
 * batch number, index), batches arriving in order on every pair.  A sender
 * whose ring is full drains its own incoming rings meanwhile.  Reports
 * blocks allocated (and freed) per second, all threads together. */
#include "bench_common.h"
#include <sched.h>
#include <stdatomic.h>

#define NSIZES 8192
#define RING 16

struct batch {
    int from;
    long seq;
    size_t count;
    char *obj[];
};

/* ring[from][to]: written by thread from (head), read by thread to (tail) */
struct ring {
    _Alignas(64) _Atomic unsigned long head;
    _Alignas(64) _Atomic unsigned long tail;
    _Alignas(64) struct batch *b[RING];
    long next_seq_sent, next_seq_recv;
};

struct slot {
    char *p;
    size_t n;
    uint64_t tag;
};

static long nloops, nblocks, nops, cross;
static size_t smin, smax;
static size_t *sizes;
static int T;
static struct ring *R; /* T * T */
static _Atomic int nfinished;
static _Atomic long total_allocs;

static uint64_t xtag(int from, long seq, size_t j)
{
    return ((uint64_t)(from + 1) << 48) ^ ((uint64_t)seq << 12) ^ (uint64_t)j;
}

static long drain(int me)
{
    long n = 0;
    for (int from = 0; from < T; from++) {
        struct ring *q = &R[from * T + me];
        unsigned long t = atomic_load_explicit(&q->tail, memory_order_relaxed);
        unsigned long h = atomic_load_explicit(&q->head, memory_order_acquire);
        for (; t != h; t++) {
            struct batch *b = q->b[t % RING];
            if (b->from != from || b->seq != q->next_seq_recv)
                bench_fail("rptest: thread %d got batch %d/%ld on ring %d->%d, expected %ld", me, b->from,
                           b->seq, from, me, q->next_seq_recv);
            q->next_seq_recv++;
            for (size_t j = 0; j < b->count; j++) {
                uint64_t *w = (uint64_t *)b->obj[j];
                check_stamp(b->obj[j], (size_t)w[1], xtag(from, b->seq, j), "rptest received");
                free(b->obj[j]);
            }
            free(b);
            n++;
        }
        atomic_store_explicit(&q->tail, t, memory_order_release);
    }
    return n;
}

static void *run(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t rng = rng_seed((uint64_t)me, 0x7270);
    struct slot *s = calloc((size_t)nblocks, sizeof *s);
    if (!s)
        bench_fail("calloc slots");
    uint64_t tag = (uint64_t)(me + 1) << 40;
    long allocs = 0;
    for (long loop = 0; loop < nloops; loop++) {
        for (long k = 0; k < nops; k++) {
            struct slot *x = &s[rng_next(&rng) % (uint64_t)nblocks];
            if (x->p) {
                check_stamp(x->p, x->n, x->tag, "rptest free");
                free(x->p);
                x->p = NULL;
            }
        }
        for (long k = 0; k < nops; k++) {
            uint64_t r = rng_next(&rng);
            struct slot *x = &s[(r >> 32) % (uint64_t)nblocks];
            if (x->p) {
                check_stamp(x->p, x->n, x->tag, "rptest replace");
                free(x->p);
            }
            x->n = sizes[(r & 0xffffffffu) % NSIZES];
            x->p = xmalloc(x->n);
            x->tag = ++tag;
            stamp(x->p, x->n, x->tag);
        }
        allocs += nops;
        if (loop % cross == 0) {
            int to = me;
            if (T > 1) {
                to = (int)(rng_next(&rng) % (uint64_t)(T - 1));
                if (to >= me)
                    to++;
            }
            struct ring *q = &R[me * T + to];
            struct batch *b = xmalloc(sizeof *b + sizeof(char *) * (size_t)nops);
            b->from = me;
            b->seq = q->next_seq_sent++;
            b->count = (size_t)nops;
            for (size_t j = 0; j < b->count; j++) {
                size_t n = sizes[rng_next(&rng) % NSIZES];
                b->obj[j] = xmalloc(n);
                stamp(b->obj[j], n, xtag(me, b->seq, j));
            }
            allocs += nops;
            unsigned long h = atomic_load_explicit(&q->head, memory_order_relaxed);
            while (h - atomic_load_explicit(&q->tail, memory_order_acquire) >= RING)
                if (!drain(me))
                    sched_yield();
            q->b[h % RING] = b;
            atomic_store_explicit(&q->head, h + 1, memory_order_release);
        }
        drain(me);
    }
    atomic_fetch_add(&nfinished, 1);
    while (atomic_load(&nfinished) < T)
        if (!drain(me))
            sched_yield();
    drain(me);
    for (long i = 0; i < nblocks; i++)
        if (s[i].p) {
            check_stamp(s[i].p, s[i].n, s[i].tag, "rptest final");
            free(s[i].p);
        }
    free(s);
    atomic_fetch_add(&total_allocs, allocs);
    return NULL;
}

int main(int argc, char **argv)
{
    T = (int)arg_long(argc, argv, 1, 1);
    nloops = arg_long(argc, argv, 2, 20000);
    nblocks = arg_long(argc, argv, 3, 1000);
    nops = arg_long(argc, argv, 4, 100);
    cross = arg_long(argc, argv, 5, 2);
    smin = (size_t)arg_long(argc, argv, 6, 16);
    smax = (size_t)arg_long(argc, argv, 7, 16000);
    if (smin < 16 || smax < smin)
        bench_fail("need 16 <= MIN <= MAX");
    sizes = size_table(NSIZES, smin, smax, DIST_LINEAR, 0x7270);
    R = aligned_alloc(64, sizeof *R * (size_t)T * (size_t)T);
    if (!R)
        bench_fail("aligned_alloc rings");
    memset(R, 0, sizeof *R * (size_t)T * (size_t)T);
    pthread_t *th = malloc(sizeof *th * (size_t)T);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long t = 0; t < T; t++)
        xpthread_create(&th[t], run, (void *)(intptr_t)t);
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    double el = bench_now() - t0, cpu = bench_cpu() - c0;
    long sent = 0;
    for (int i = 0; i < T * T; i++) {
        if (R[i].next_seq_sent != R[i].next_seq_recv)
            bench_fail("ring %d->%d: %ld batches sent, %ld received", i / T, i % T, R[i].next_seq_sent,
                       R[i].next_seq_recv);
        sent += R[i].next_seq_sent;
    }
    long expect = (long)T * nloops * nops + (long)T * ((nloops + cross - 1) / cross) * nops;
    if (total_allocs != expect)
        bench_fail("%ld blocks allocated, expected %ld", (long)total_allocs, expect);
    size_t sum = 0;
    for (int i = 0; i < NSIZES; i++)
        sum += sizes[i];
    bench_report("rptest", T, (double)total_allocs, el, cpu,
                 "blocks:%ld,ops:%ld,cross_rate:%ld,batches:%ld,mean_size:%zu", nblocks, nops, cross, sent,
                 sum / NSIZES);
    free(R);
    free(sizes);
    free(th);
    return 0;
}
