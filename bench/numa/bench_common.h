/* bench_common.h - shared helpers for the numaslab benchmark workloads.
 *
 * Every workload is a standalone C11 program that uses only malloc/free (so
 * any allocator can be swapped in with LD_PRELOAD), checks the contents of
 * its blocks and exits non-zero on a mismatch, and prints exactly one line
 *
 *   RESULT workload=NAME threads=T ops_per_sec=X seconds=S cpu_seconds=C
 *          ops_per_cpu_sec=Y peak_rss_kb=K extra=k:v,...
 *
 * ops_per_sec is wall-clock throughput of the timed region; cpu_seconds is
 * the user+system time of all threads over the same region (getrusage), less
 * sensitive than wall time to other load on a shared machine.
 *
 * on stdout.  Diagnostics go to stderr. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* xorshift64*: small, fast, per-thread, deterministic from the seed. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t rng_seed(uint64_t a, uint64_t b)
{
    uint64_t s = (a + 1) * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL);
    return s ? s : 1;
}

/* Uniform in [lo, hi]. */
static inline size_t rng_range(uint64_t *s, size_t lo, size_t hi)
{
    return lo + (size_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

/* Log-uniform in [lo, hi]: a power-of-two band is chosen uniformly, then a
 * size uniformly inside it (small sizes dominate, as in real programs). */
static inline size_t rng_logsize(uint64_t *s, size_t lo, size_t hi)
{
    unsigned blo = 63 - (unsigned)__builtin_clzll(lo), bhi = 63 - (unsigned)__builtin_clzll(hi);
    unsigned b = blo + (unsigned)(rng_next(s) % (bhi - blo + 1));
    size_t a = (size_t)1 << b, z = (a << 1) - 1;
    if (a < lo) a = lo;
    if (z > hi) z = hi;
    return rng_range(s, a, z);
}

/* user+system seconds of the whole process, all threads (dead ones too). */
static inline double bench_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec * 1e-6;
}

static inline long proc_status_kb(const char *key);

/* Print the one RESULT line. ops: operations in the timed region. */
static void bench_report(const char *name, int threads, double ops, double wall, double cpu, const char *extrafmt, ...)
    __attribute__((format(printf, 6, 7)));
static void bench_report(const char *name, int threads, double ops, double wall, double cpu, const char *extrafmt, ...)
{
    char extra[512];
    va_list ap;
    va_start(ap, extrafmt);
    vsnprintf(extra, sizeof extra, extrafmt, ap);
    va_end(ap);
    if (wall <= 0) wall = 1e-9;
    if (cpu <= 0) cpu = 1e-9;
    printf("RESULT workload=%s threads=%d ops_per_sec=%.0f seconds=%.4f cpu_seconds=%.4f ops_per_cpu_sec=%.0f "
           "peak_rss_kb=%ld extra=%s\n",
           name, threads, ops / wall, wall, cpu, ops / cpu, proc_status_kb("VmHWM"), extra[0] ? extra : "-");
    fflush(stdout);
}

static void bench_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void bench_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("SELFCHECK FAILED: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(NULL);
    _exit(2);
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) bench_fail("malloc(%zu) returned NULL (errno %d)", n, errno);
    if (((uintptr_t)p & 15) != 0 && n >= 16) bench_fail("malloc(%zu) = %p is not 16-byte aligned", n, p);
    return p;
}

/* Block stamps: a block of n >= 16 bytes carries (tag, n) in its first 16
 * bytes and (if n > 16) a byte derived from the tag in its last byte; the whole body can
 * optionally be filled and verified too. */
static inline unsigned char tag_byte(uint64_t tag, size_t i)
{
    return (unsigned char)((tag * 131u + i * 7u) ^ (tag >> 7));
}

static inline void stamp(void *p, size_t n, uint64_t tag)
{
    uint64_t *w = p;
    w[0] = tag;
    w[1] = n;
    if (n > 16) ((unsigned char *)p)[n - 1] = tag_byte(tag, n - 1);
}

static inline void check_stamp(const void *p, size_t n, uint64_t tag, const char *where)
{
    const uint64_t *w = p;
    if (w[0] != tag || w[1] != n || (n > 16 && ((const unsigned char *)p)[n - 1] != tag_byte(tag, n - 1)))
        bench_fail("%s: block %p (size %zu, tag %llu) corrupted: head %llu/%llu", where, p, n,
                   (unsigned long long)tag, (unsigned long long)w[0], (unsigned long long)w[1]);
}

static inline void fill_full(void *p, size_t n, uint64_t tag)
{
    unsigned char *c = p;
    for (size_t i = 16; i < n; i++) c[i] = tag_byte(tag, i);
    stamp(p, n, tag);
}

static inline void check_full(const void *p, size_t n, uint64_t tag, const char *where)
{
    const unsigned char *c = p;
    check_stamp(p, n, tag, where);
    for (size_t i = 16; i < n; i++)
        if (c[i] != tag_byte(tag, i))
            bench_fail("%s: block %p (size %zu) byte %zu is %u, expected %u", where, p, n, i, c[i],
                       tag_byte(tag, i));
}

/* Blocks of any size (1 byte up): a block of 16 bytes or more gets the
 * stamp above; a smaller one has every byte set from the tag, so the owner
 * (who knows tag and size) can check it as well. */
static inline void stamp_any(void *p, size_t n, uint64_t tag)
{
    if (n >= 16) {
        stamp(p, n, tag);
        return;
    }
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++) c[i] = tag_byte(tag, i);
}

static inline void check_any(const void *p, size_t n, uint64_t tag, const char *where)
{
    if (n >= 16) {
        check_stamp(p, n, tag, where);
        return;
    }
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != tag_byte(tag, i))
            bench_fail("%s: block %p (size %zu, tag %llu) byte %zu is %u, expected %u", where, p, n,
                       (unsigned long long)tag, i, c[i], tag_byte(tag, i));
}

/* A block handed between threads must prove itself without its receiver
 * knowing the tag: the stamp's size must lie in [lo, hi] and its last byte
 * must match the tag it carries.  Returns the tag. */
static inline uint64_t check_self(const void *p, size_t lo, size_t hi, const char *where)
{
    const uint64_t *w = p;
    size_t n = (size_t)w[1];
    if (n < lo || n > hi || n < 16)
        bench_fail("%s: block %p carries size %zu, outside %zu..%zu (head %llu)", where, p, n, lo, hi,
                   (unsigned long long)w[0]);
    check_stamp(p, n, w[0], where);
    return w[0];
}

/* A table of NSIZES sizes drawn once (deterministic) from a distribution,
 * so the timed loops index it instead of doing floating point:
 *   inverse square on [lo, hi] (density ~ 1/x^2: glibc's malloc-thread
 *   benchmark), or linear falloff (density ~ hi - x: rpmalloc's benchmark). */
enum size_dist { DIST_INVSQUARE, DIST_LINEAR };
static inline size_t *size_table(size_t nsizes, size_t lo, size_t hi, enum size_dist d, uint64_t seed)
{
    size_t *t = malloc(nsizes * sizeof *t);
    if (!t) bench_fail("size table");
    uint64_t s = rng_seed(seed, 0x5123);
    for (size_t i = 0; i < nsizes; i++) {
        double u = (double)(rng_next(&s) >> 11) * 0x1p-53; /* [0, 1) */
        double x;
        if (d == DIST_INVSQUARE) /* CDF (1/lo - 1/x) / (1/lo - 1/hi) */
            x = 1.0 / (1.0 / (double)lo - u * (1.0 / (double)lo - 1.0 / (double)hi));
        else { /* CDF 1 - ((hi - x) / (hi - lo))^2 */
            double r = 1.0 - u, q = r;
            for (int k = 0; k < 40; k++) q = 0.5 * (q + r / (q > 0 ? q : 1e-300)); /* sqrt(r), no libm */
            x = (double)hi - (double)(hi - lo) * (r > 0 ? q : 0);
        }
        size_t n = (size_t)x;
        t[i] = n < lo ? lo : n > hi ? hi : n;
    }
    return t;
}

/* VmRSS / VmHWM in KiB from /proc/self/status (-1 if unreadable). */
static inline long proc_status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = atol(line + kl + 1);
            break;
        }
    fclose(f);
    return v;
}

static inline long arg_long(int argc, char **argv, int i, long def)
{
    if (argc <= i) return def;
    char *end;
    long v = strtol(argv[i], &end, 0);
    if (*end || v <= 0) {
        fprintf(stderr, "bad argument %d: '%s'\n", i, argv[i]);
        exit(64);
    }
    return v;
}

static inline void xpthread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
    int e = pthread_create(t, NULL, fn, arg);
    if (e) bench_fail("pthread_create: %s", strerror(e));
}

#endif
