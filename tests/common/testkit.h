/* testkit.h - the small helpers that the stress tests (tests/stress), the
 * soak (bench/soak) and the fuzzer (tests/fuzz) share: a write(2)-only
 * formatter, a seeded PRNG, a clock, and the additive content pattern.
 * Header-only, static inline, no allocation through malloc (safe in forked
 * children and from threads that hold allocator-unrelated locks).
 *
 * A file that wants the pattern functions without sanitizer instrumentation
 * (the fuzzer: numaslab's blocks are not ASan's memory) defines TK_PAT_ATTR
 * before including this. */
#ifndef NS_TESTKIT_H
#define NS_TESTKIT_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef TK_PAT_ATTR
#define TK_PAT_ATTR
#endif

/* ------------------------------------------------------------ output */

/* Format into a stack buffer (1 KiB, truncated) and write(2) it whole. */
static inline void tk_vwrite(int fd, const char *fmt, va_list ap)
{
    char buf[1024];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof buf)
        n = (int)sizeof buf - 1;
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = write(fd, buf + off, (size_t)n - off);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return;
        }
        off += (size_t)w;
    }
}

/* ------------------------------------------------------------ PRNG */

/* splitmix64's finaliser: a bijection that scatters nearby inputs. */
static inline uint64_t tk_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

typedef struct tk_rng {
    uint64_t s;
} tk_rng;

static inline void tk_rng_seed(tk_rng *r, uint64_t seed)
{
    r->s = tk_mix64(seed);
    if (r->s == 0)
        r->s = 0x2545F4914F6CDD1DULL;
}

/* xorshift64* */
static inline uint64_t tk_rng_next(tk_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n) (n > 0; the modulo bias is irrelevant here). */
static inline uint64_t tk_below(tk_rng *r, uint64_t n)
{
    return (tk_rng_next(r) >> 11) % n;
}

/* Uniform in [lo, hi]. */
static inline uint64_t tk_range(tk_rng *r, uint64_t lo, uint64_t hi)
{
    return lo + tk_below(r, hi - lo + 1);
}

/* Roughly log-uniform in [lo, hi]: pick a power of two, then uniform. */
static inline size_t tk_log_range(tk_rng *r, size_t lo, size_t hi)
{
    int blo = 63 - __builtin_clzll((unsigned long long)lo);
    int bhi = 63 - __builtin_clzll((unsigned long long)hi);
    int b = (int)tk_range(r, (uint64_t)blo, (uint64_t)bhi);
    size_t a = (size_t)1 << b, z = a * 2 - 1;
    if (a < lo)
        a = lo;
    if (z > hi)
        z = hi;
    return (size_t)tk_range(r, a, z);
}

/* ------------------------------------------------------------ clock */

static inline double tk_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------ pattern */

/* Word i of the pattern with base b: b + i * TK_PAT_K.  Give every block
 * its own base (tk_mix64 of an id): stale data, another block's data,
 * zeroes and shifted copies then all differ from it. */
#define TK_PAT_K 0xD6E8FEB86659FD93ULL

TK_PAT_ATTR static inline void tk_pat_fill(unsigned char *p, size_t n, uint64_t base)
{
    uint64_t v = base;
    size_t w = n / 8;
    for (size_t i = 0; i < w; i++, v += TK_PAT_K)
        memcpy(p + i * 8, &v, 8);
    if (n % 8)
        memcpy(p + w * 8, &v, n % 8);
}

/* Byte o of the pattern with base b. */
static inline unsigned tk_pat_byte(uint64_t base, size_t o)
{
    return (unsigned)((base + (uint64_t)(o / 8) * TK_PAT_K) >> (8 * (o % 8))) & 0xff;
}

/* Offset of the first byte of p[0..n) that differs from the pattern, or
 * SIZE_MAX. */
TK_PAT_ATTR static inline size_t tk_pat_check(const unsigned char *p, size_t n, uint64_t base)
{
    uint64_t v = base, x;
    size_t w = n / 8, i;
    for (i = 0; i < w; i++, v += TK_PAT_K) {
        memcpy(&x, p + i * 8, 8);
        if (x != v)
            break;
    }
    size_t from = i * 8, to = i < w ? from + 8 : n;
    for (size_t o = from; o < to; o++)
        if (p[o] != (unsigned char)(v >> (8 * (o - from))))
            return o;
    return SIZE_MAX;
}

#endif
