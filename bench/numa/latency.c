/* latency - per-call latency of malloc and free on a server-like workload.
 *
 *   latency THREADS [OPS_PER_WORKER=600000] [RATE_PER_WORKER=300000] [SLOTS=2048] [WORKERS_PER_THREAD=2]
 *
 * THREADS * WORKERS_PER_THREAD workers (more than the cores, as a server
 * has; each paced, so the machine is not saturated) each run OPS requests
 * at a steady RATE per second: a request replaces the block of one slot
 * (check the stamp, free it, malloc a new one, stamp it).  Of the SLOTS
 * slots, the first eighth are long-lived (chosen by 2 % of the requests:
 * their blocks live for seconds), the rest short-lived.  Sizes: 70 % 16..256
 * bytes, 25 % 256 B..16 KiB, 5 % 16..256 KiB (log-uniform in each band) and
 * 1 request in 2000 a big block of 1..4 MiB (every page of it written).
 * 5 % of the requests hand the old block to another worker through a
 * shared array (atomic exchange) instead of freeing it, and free whatever
 * comes back: frees of other threads' blocks are measured too.
 *
 * Each malloc and each free is timed alone with clock_gettime(CLOCK_MONOTONIC)
 * around the call; the timer's own cost (median of back-to-back readings,
 * measured at start: timer_ns) is subtracted from every sample.  Samples go
 * into per-worker log-linear histograms (exact below 32 ns, then 16 buckets
 * per power of two: at most 6 % wide), allocated before the workers start,
 * so measuring allocates nothing.  The pacing sleeps (clock_nanosleep) only
 * between requests, never inside a timed call.
 *
 * Reports (extra): malloc_p50, malloc_p99, malloc_p999, malloc_max and the
 * same for free, in nanoseconds (a percentile is the middle of its bucket,
 * the max is exact), timer_ns, late_pct (share of requests that ran behind
 * the schedule by more than 1 ms: the worker could not keep the rate).
 * ops_per_sec is requests per second (the rate, unless workers fell behind). */
#include "bench_common.h"
#include <stdatomic.h>

#define LIN 32 /* exact buckets below this many ns */
#define SUB 16 /* buckets per power of two above */
#define MAXEXP 44
#define NBUCKET (LIN + (MAXEXP - 5 + 1) * SUB)
#define BIG_MIN (1u << 20)
#define BIG_MAX (4u << 20)

struct hist {
    uint64_t n, max;
    uint64_t b[NBUCKET];
};

struct worker {
    _Alignas(64) struct hist h_malloc, h_free;
    long late;
    int id;
};

struct slot {
    char *p;
    size_t n;
    uint64_t tag;
};

static long nops, rate, nslots;
static int nworkers;
static uint64_t timer_ns;
static _Atomic(char *) *transfer;
static long ntransfer;
static _Atomic int ready;

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline unsigned bucket_of(uint64_t v)
{
    if (v < LIN)
        return (unsigned)v;
    unsigned e = 63 - (unsigned)__builtin_clzll(v); /* >= 5 */
    if (e > MAXEXP)
        return NBUCKET - 1;
    return LIN + (e - 5) * SUB + (unsigned)((v >> (e - 4)) & (SUB - 1));
}

/* the middle of bucket i, in ns */
static double bucket_mid(unsigned i)
{
    if (i < LIN)
        return i;
    unsigned e = (i - LIN) / SUB + 5, s = (i - LIN) % SUB;
    double lo = (double)((uint64_t)(SUB + s) << (e - 4)), w = (double)((uint64_t)1 << (e - 4));
    return lo + w / 2;
}

static inline void hist_add(struct hist *h, uint64_t t0, uint64_t t1)
{
    uint64_t v = t1 - t0;
    v = v > timer_ns ? v - timer_ns : 0;
    h->b[bucket_of(v)]++;
    h->n++;
    if (v > h->max)
        h->max = v;
}

static double hist_pct(const struct hist *h, double q)
{
    uint64_t want = (uint64_t)(q * (double)h->n + 0.999999), c = 0;
    if (want < 1)
        want = 1;
    for (unsigned i = 0; i < NBUCKET; i++) {
        c += h->b[i];
        if (c >= want)
            return bucket_mid(i);
    }
    return (double)h->max;
}

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    if (r % 2000 == 0)
        return rng_range(rng, BIG_MIN, BIG_MAX);
    unsigned c = (unsigned)((r >> 16) % 100);
    if (c < 70)
        return rng_logsize(rng, 16, 256);
    if (c < 95)
        return rng_logsize(rng, 257, 16384);
    return rng_logsize(rng, 16385, 262144);
}

static void touch(char *p, size_t n, uint64_t tag)
{
    stamp(p, n, tag);
    if (n >= BIG_MIN)
        for (size_t o = 4096; o + 8 < n; o += 4096)
            ((uint64_t *)(p + o))[0] = tag;
}

static void *run(void *arg)
{
    struct worker *W = arg;
    uint64_t rng = rng_seed((uint64_t)W->id, 0x1a7);
    struct slot *s = calloc((size_t)nslots, sizeof *s);
    if (!s)
        bench_fail("calloc slots");
    long nlong = nslots / 8 > 0 ? nslots / 8 : 1;
    uint64_t tag = (uint64_t)(W->id + 1) << 40;
    /* warm-up outside the measurement: fill every slot */
    for (long i = 0; i < nslots; i++) {
        s[i].n = pick_size(&rng);
        s[i].p = xmalloc(s[i].n);
        s[i].tag = ++tag;
        touch(s[i].p, s[i].n, s[i].tag);
    }
    atomic_fetch_add(&ready, 1);
    while (atomic_load(&ready) < nworkers)
        sched_yield();
    uint64_t period = 1000000000u / (uint64_t)rate, start = now_ns();
    for (long k = 0; k < nops; k++) {
        if ((k & 63) == 0) { /* keep the rate: sleep until request k is due */
            uint64_t due = start + (uint64_t)k * period, t = now_ns();
            if (t < due) {
                struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            } else if (t - due > 1000000) {
                W->late += 64;
            }
        }
        uint64_t r = rng_next(&rng);
        long i = (r % 100) < 2
                     ? (long)((r >> 8) % (uint64_t)nlong)
                     : nlong + (long)((r >> 8) % (uint64_t)(nslots - nlong > 0 ? nslots - nlong : 1));
        if (i >= nslots)
            i = nslots - 1;
        struct slot *x = &s[i];
        check_stamp(x->p, x->n, x->tag, "latency free");
        char *old = x->p;
        if ((r >> 40) % 100 < 5) { /* hand it over, free what another worker left */
            old = atomic_exchange(&transfer[(r >> 20) % (uint64_t)ntransfer], old);
            if (old)
                check_self(old, 16, BIG_MAX, "latency transfer");
        }
        if (old) {
            uint64_t t0 = now_ns();
            free(old);
            uint64_t t1 = now_ns();
            hist_add(&W->h_free, t0, t1);
        }
        size_t n = pick_size(&rng);
        uint64_t t0 = now_ns();
        char *p = malloc(n);
        uint64_t t1 = now_ns();
        hist_add(&W->h_malloc, t0, t1);
        if (!p)
            bench_fail("malloc(%zu) returned NULL", n);
        x->p = p;
        x->n = n;
        x->tag = ++tag;
        touch(p, n, x->tag);
    }
    for (long i = 0; i < nslots; i++) {
        check_stamp(s[i].p, s[i].n, s[i].tag, "latency final");
        free(s[i].p);
    }
    free(s);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int T = (int)arg_long(argc, argv, 1, 1);
    nops = arg_long(argc, argv, 2, 600000);
    rate = arg_long(argc, argv, 3, 300000);
    nslots = arg_long(argc, argv, 4, 2048);
    int mult = (int)arg_long(argc, argv, 5, 2);
    if (rate > 1000000000)
        bench_fail("RATE at most 1e9 per second");
    nworkers = T * mult;

    /* the timer's own cost: median of back-to-back readings */
    enum { NT = 20001 };
    static uint64_t d[NT];
    for (int i = 0; i < NT; i++) {
        uint64_t a = now_ns(), b = now_ns();
        d[i] = b - a;
    }
    qsort(d, NT, sizeof d[0], cmp_u64);
    timer_ns = d[NT / 2];

    ntransfer = 64;
    transfer = calloc((size_t)ntransfer, sizeof *transfer);
    struct worker *W = aligned_alloc(64, sizeof *W * (size_t)nworkers);
    pthread_t *th = malloc(sizeof *th * (size_t)nworkers);
    if (!transfer || !W || !th)
        bench_fail("calloc");
    memset(W, 0, sizeof *W * (size_t)nworkers);
    for (int i = 0; i < nworkers; i++)
        W[i].id = i;
    double c0 = bench_cpu(), t0 = bench_now();
    for (int i = 0; i < nworkers; i++)
        xpthread_create(&th[i], run, &W[i]);
    for (int i = 0; i < nworkers; i++)
        pthread_join(th[i], NULL);
    double el = bench_now() - t0, cpu = bench_cpu() - c0;
    for (long i = 0; i < ntransfer; i++) {
        char *p = atomic_load(&transfer[i]);
        if (p) {
            check_self(p, 16, BIG_MAX, "latency transfer end");
            free(p);
        }
    }
    static struct hist hm, hf;
    long late = 0;
    for (int i = 0; i < nworkers; i++) {
        for (unsigned b = 0; b < NBUCKET; b++) {
            hm.b[b] += W[i].h_malloc.b[b];
            hf.b[b] += W[i].h_free.b[b];
        }
        hm.n += W[i].h_malloc.n;
        hf.n += W[i].h_free.n;
        if (W[i].h_malloc.max > hm.max)
            hm.max = W[i].h_malloc.max;
        if (W[i].h_free.max > hf.max)
            hf.max = W[i].h_free.max;
        late += W[i].late;
    }
    if (hm.n != (uint64_t)nworkers * (uint64_t)nops)
        bench_fail("%llu mallocs timed", (unsigned long long)hm.n);
    double total = (double)nworkers * (double)nops;
    bench_report(
        "latency", T, total, el, cpu,
        "malloc_p50:%.0f,malloc_p99:%.0f,malloc_p999:%.0f,malloc_max:%llu,free_p50:%.0f,free_p99:%.0f,"
        "free_p999:%.0f,free_max:%llu,timer_ns:%llu,late_pct:%.1f,workers:%d",
        hist_pct(&hm, 0.5), hist_pct(&hm, 0.99), hist_pct(&hm, 0.999), (unsigned long long)hm.max,
        hist_pct(&hf, 0.5), hist_pct(&hf, 0.99), hist_pct(&hf, 0.999), (unsigned long long)hf.max,
        (unsigned long long)timer_ns, 100.0 * (double)late / total, nworkers);
    free(W);
    free(th);
    free(transfer);
    return 0;
}
