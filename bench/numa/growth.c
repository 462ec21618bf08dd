/* growth - one thread grows the heap while others keep allocating: does
 * the growth stall them?
 *
 *   growth THREADS [GROW_MIB=2000] [BLOCK=200000] [CHURN_SIZE=262144] [BATCH=8]
 *
 * A grower thread allocates GROW_MIB of BLOCK-byte blocks (writing the first
 * 64 bytes of each, so each block's pages are mapped but not all touched)
 * as fast as it can: an allocator must keep mapping fresh memory, and a huge
 * page's first fault can take milliseconds.  Meanwhile THREADS churner
 * threads each allocate BATCH blocks of CHURN_SIZE, stamp them, check and
 * free them, over and over: with 256 KiB blocks every few calls reach the
 * allocator's shared structures.  Each churner call is timed alone.  When
 * the grower is done the churners stop; the grower checks and frees its
 * blocks.
 *
 * Reports ops_per_sec = churner calls (malloc and free) per second while the
 * grower ran, and (extra) grow_ms, the churners' longest call (churn_max_us)
 * and how many of their calls took more than 1 ms (churn_over_1ms).  What it
 * shows: whether an allocator maps and first touches new memory while
 * holding a lock the other threads need (numaslab before 2026-12-02: 20 k
 * calls per second, median of 5 runs, and calls of tens of ms; bench/RESULTS.md). */
#include "bench_common.h"
#include <stdatomic.h>

static long grow_mib;
static size_t block, churn_size;
static int batch;
static _Atomic int grow_done;
static double grow_seconds;

struct churner {
    _Alignas(64) uint64_t calls, over_1ms, max_ns;
    int id;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void timed(struct churner *c, uint64_t t0)
{
    uint64_t d = now_ns() - t0;
    c->calls++;
    if (d > c->max_ns)
        c->max_ns = d;
    if (d > 1000000)
        c->over_1ms++;
}

static void *grow(void *arg)
{
    (void)arg;
    size_t n = (size_t)grow_mib * 1024 * 1024 / block;
    char **v = xmalloc(n * sizeof *v);
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++) {
        v[i] = xmalloc(block);
        stamp(v[i], 64, i + 1);
    }
    grow_seconds = bench_now() - t0;
    atomic_store(&grow_done, 1);
    for (size_t i = 0; i < n; i++) {
        check_stamp(v[i], 64, i + 1, "growth grower");
        free(v[i]);
    }
    free(v);
    return NULL;
}

static void *churn(void *arg)
{
    struct churner *c = arg;
    char **p = xmalloc((size_t)batch * sizeof *p);
    uint64_t tag = (uint64_t)(c->id + 1) << 40;
    while (!atomic_load_explicit(&grow_done, memory_order_relaxed)) {
        for (int i = 0; i < batch; i++) {
            uint64_t t0 = now_ns();
            p[i] = malloc(churn_size);
            timed(c, t0);
            if (!p[i])
                bench_fail("growth: malloc(%zu) returned NULL", churn_size);
            stamp(p[i], churn_size, tag + (uint64_t)i);
        }
        for (int i = 0; i < batch; i++) {
            check_stamp(p[i], churn_size, tag + (uint64_t)i, "growth churner");
            uint64_t t0 = now_ns();
            free(p[i]);
            timed(c, t0);
        }
        tag += (uint64_t)batch;
    }
    free(p);
    return NULL;
}

int main(int argc, char **argv)
{
    int T = (int)arg_long(argc, argv, 1, 1);
    grow_mib = arg_long(argc, argv, 2, 2000);
    block = (size_t)arg_long(argc, argv, 3, 200000);
    churn_size = (size_t)arg_long(argc, argv, 4, 262144);
    batch = (int)arg_long(argc, argv, 5, 8);
    if (T < 1 || grow_mib < 1 || block < 64 || churn_size < 16 || batch < 1)
        bench_fail("usage: growth THREADS [GROW_MIB] [BLOCK>=64] [CHURN_SIZE>=16] [BATCH]");
    struct churner *c = xmalloc(sizeof *c * (size_t)T);
    memset(c, 0, sizeof *c * (size_t)T);
    pthread_t g, *th = xmalloc(sizeof *th * (size_t)T);
    double c0 = bench_cpu(), t0 = bench_now();
    for (int t = 0; t < T; t++) {
        c[t].id = t;
        xpthread_create(&th[t], churn, &c[t]);
    }
    xpthread_create(&g, grow, NULL);
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    double el = bench_now() - t0, cpu = bench_cpu() - c0;
    pthread_join(g, NULL);
    uint64_t calls = 0, over = 0, max_ns = 0;
    for (int t = 0; t < T; t++) {
        calls += c[t].calls;
        over += c[t].over_1ms;
        max_ns = c[t].max_ns > max_ns ? c[t].max_ns : max_ns;
    }
    bench_report("growth", T, (double)calls, el, cpu,
                 "grow_ms:%.0f,churn_max_us:%.0f,churn_over_1ms:%llu,grow_mib:%ld,block:%zu,churn_size:%zu,batch:%d",
                 grow_seconds * 1e3, (double)max_ns / 1e3, (unsigned long long)over, grow_mib, block, churn_size, batch);
    free(th);
    free(c);
    return 0;
}
