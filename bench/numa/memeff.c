/* memeff - memory efficiency: a live set that grows to MIB MiB and shrinks to
 * a tenth of it (CYCLES times; later cycles regrow into the holes).
 *
 *   memeff THREADS [MIB=256] [CYCLES=1] [MAX=16384]
 *
 * THREADS threads each grow their share of the live set (MIB/THREADS MiB of
 * requested bytes, sizes log-uniform in 16..MAX, every block stamped, its
 * pages touched) and then shrink it to a tenth: the survivors are every
 * other block (chosen at random) among the oldest, until they add up to 10 %;
 * everything younger is freed, so whole regions become free and can be given
 * back to the OS, but survivors are interleaved with freed blocks there.  After the last shrink
 * the process idles 1.1 s and then does a little malloc/free churn (allocators
 * without a background thread decay only on calls), then all is checked and
 * freed.  Reports (in extra):
 *   peak_live_kb        most requested bytes live at once
 *   overhead            VmHWM / peak_live (1.00 = no overhead)
 *   rss_shrunk_kb       VmRSS right after the last shrink (live: live_shrunk_kb)
 *   rss_idle_kb         VmRSS after the idle period and churn
 * ops_per_sec counts mallocs+frees per second of the timed (non-idle) part. */
#include "bench_common.h"

static long target_bytes;
static int ncycles;
static size_t smax;
static pthread_barrier_t bar;
static long live_bytes_total, shrunk_total, peak_live_total;
static long rss_shrunk, rss_after_grow, rss_idle;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static double timed_seconds, timed_cpu, t_mark, c_mark;
static long ops_total;

struct blk {
    char *p;
    size_t n;
    uint64_t tag;
};

static void add_live(long v)
{
    pthread_mutex_lock(&mu);
    live_bytes_total += v;
    pthread_mutex_unlock(&mu);
}

static void *run(void *arg)
{
    long id = (long)(intptr_t)arg;
    uint64_t rng = rng_seed((uint64_t)id, 0x3e3);
    size_t cap = 1024, nb = 0;
    struct blk *b = malloc(cap * sizeof *b);
    uint64_t tag = (uint64_t)id << 40;
    long ops = 0;
    for (int c = 0; c < ncycles; c++) {
        long live = 0;
        for (size_t i = 0; i < nb; i++) live += (long)b[i].n;
        long grown = 0;
        while (live < target_bytes) {
            size_t n = rng_logsize(&rng, 16, smax);
            if (nb == cap) {
                cap *= 2;
                b = realloc(b, cap * sizeof *b);
                if (!b) bench_fail("realloc of the block table failed");
            }
            b[nb].p = xmalloc(n);
            b[nb].n = n;
            b[nb].tag = ++tag;
            for (size_t o = 4096; o < n; o += 4096) b[nb].p[o] = 1; /* touch every page */
            stamp(b[nb].p, n, tag);
            nb++;
            live += (long)n;
            grown += (long)n;
            ops++;
        }
        add_live(grown);
        pthread_barrier_wait(&bar);
        if (id == 0) {
            pthread_mutex_lock(&mu);
            if (live_bytes_total > peak_live_total) peak_live_total = live_bytes_total;
            pthread_mutex_unlock(&mu);
            rss_after_grow = proc_status_kb("VmRSS");
        }
        pthread_barrier_wait(&bar);
        size_t keep = 0;
        long freed = 0, kept = 0;
        for (size_t i = 0; i < nb; i++) {
            if (kept >= target_bytes / 10 || rng_next(&rng) % 2 == 0) {
                check_stamp(b[i].p, b[i].n, b[i].tag, "memeff shrink");
                free(b[i].p);
                freed += (long)b[i].n;
                ops++;
            } else {
                kept += (long)b[i].n;
                b[keep++] = b[i];
            }
        }
        nb = keep;
        add_live(-freed);
        pthread_barrier_wait(&bar);
        if (id == 0) rss_shrunk = proc_status_kb("VmRSS");
        pthread_barrier_wait(&bar);
    }
    pthread_mutex_lock(&mu);
    ops_total += ops;
    pthread_mutex_unlock(&mu);
    pthread_barrier_wait(&bar);
    if (id == 0) {
        timed_seconds = bench_now() - t_mark;
        timed_cpu = bench_cpu() - c_mark;
        shrunk_total = live_bytes_total;
    }
    pthread_barrier_wait(&bar);
    if (id == 0) usleep(1100 * 1000);
    pthread_barrier_wait(&bar);
    for (int k = 0; k < 2000; k++) { /* churn: give decay-on-call allocators a chance */
        size_t n = rng_logsize(&rng, 16, 4096);
        char *p = xmalloc(n);
        stamp(p, n, 7);
        check_stamp(p, n, 7, "memeff churn");
        free(p);
    }
    pthread_barrier_wait(&bar);
    if (id == 0) rss_idle = proc_status_kb("VmRSS");
    pthread_barrier_wait(&bar);
    for (size_t i = 0; i < nb; i++) {
        check_stamp(b[i].p, b[i].n, b[i].tag, "memeff final");
        free(b[i].p);
    }
    free(b);
    return NULL;
}

int main(int argc, char **argv)
{
    int T = (int)arg_long(argc, argv, 1, 1);
    long mib = arg_long(argc, argv, 2, 256);
    ncycles = (int)arg_long(argc, argv, 3, 1);
    smax = (size_t)arg_long(argc, argv, 4, 16384);
    if (smax < 16) bench_fail("MAX must be >= 16");
    target_bytes = mib * 1024 * 1024 / T;
    pthread_barrier_init(&bar, NULL, (unsigned)T);
    pthread_t *th = malloc(sizeof *th * (size_t)T);
    c_mark = bench_cpu();
    t_mark = bench_now();
    for (long t = 0; t < T; t++) xpthread_create(&th[t], run, (void *)(intptr_t)t);
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    long hwm = proc_status_kb("VmHWM");
    long peak_live_kb = peak_live_total / 1024;
    bench_report("memeff", T, (double)ops_total, timed_seconds, timed_cpu,
                 "peak_live_kb:%ld,overhead:%.3f,rss_grown_kb:%ld,live_shrunk_kb:%ld,rss_shrunk_kb:%ld,rss_idle_kb:%ld",
                 peak_live_kb, peak_live_kb ? (double)hwm / (double)peak_live_kb : 0.0, rss_after_grow,
                 shrunk_total / 1024, rss_shrunk, rss_idle);
    return 0;
}
