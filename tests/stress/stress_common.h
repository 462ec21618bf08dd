/* stress_common.h - helpers shared by the multithreaded stress tests.
 *
 * What lives here (with tests/common/testkit.h for the PRNG, the clock and
 * write(2) output): the size mix, the content
 * pattern (a function of block id and requested size, written over the whole
 * requested size and checked byte for byte), allocation helpers that check
 * the basic contract of every block (non-NULL, alignment, usable size), the
 * run configuration (rounds, threads, ops, seed from argv or environment),
 * and failure reporting that uses only snprintf + write(2), so it is safe in
 * forked children and never allocates through numaslab.
 *
 * Worker threads never call CMocka assertions (they are not thread-safe):
 * they count failures in a st_status and the test's main thread asserts.
 *
 * Configuration (argv wins over environment, environment over defaults):
 *   --rounds=N  STRESS_ROUNDS   rounds (forks for stress_fork)
 *   --threads=N STRESS_THREADS  threads (max alive threads for stress_churn)
 *   --ops=N     STRESS_OPS      operations per thread and round
 *   --seed=N    STRESS_SEED     base seed (decimal or 0x hex)
 *   --verbose   STRESS_VERBOSE=1  print progress every round
 * Each round r runs with seed mix(base_seed + r); a failure prints that
 * round seed and the command line that reruns exactly that round.
 */
#ifndef STRESS_COMMON_H
#define STRESS_COMMON_H

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "numaslab.h"
#include "../common/testkit.h"

#if defined(STRESS_ASAN)
#include <sanitizer/asan_interface.h>
/* After fork, glibc gives the parent's thread stacks back (some unmapped);
 * ASan keeps their shadow poisoned, so memory numaslab later maps at those
 * addresses looks poisoned to it.  numaslab's blocks are never ASan's to
 * poison: clear the shadow of every block handed to the test. */
#define ST_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define ST_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#if defined(STRESS_TSAN)
#define ST_VARIANT "tsan"
#elif defined(STRESS_ASAN)
#define ST_VARIANT "asan"
#elif defined(STRESS_FI)
#define ST_VARIANT "fi"
#else
#define ST_VARIANT "normal"
#endif

/* ------------------------------------------------------------ reporting */

/* At most this many detailed failure lines per process; counts go on. */
#define ST_MAX_REPORTS 20

static atomic_int st_reports_printed;

/* One line to stderr, no allocation through numaslab, fork-safe. */
__attribute__((format(printf, 1, 2)))
static void st_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tk_vwrite(2, fmt, ap);
    va_end(ap);
}

/* A failure line, rate-limited to ST_MAX_REPORTS per process. */
__attribute__((format(printf, 1, 2)))
static void st_fail_report(const char *fmt, ...)
{
    if (atomic_fetch_add_explicit(&st_reports_printed, 1, memory_order_relaxed) >= ST_MAX_REPORTS)
        return;
    va_list ap;
    va_start(ap, fmt);
    tk_vwrite(2, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ size mix */

/* Per-mille probabilities of the size bands; the rest is 1..1024 B. */
typedef struct st_mix {
    unsigned medium_pm;   /* 1025 B .. 64 KiB          */
    unsigned large_pm;    /* 256 KiB .. 4 MiB          */
    unsigned memalign_pm; /* posix_memalign, align 32..4096 */
    unsigned calloc_pm;   /* ns_calloc (zero-checked)  */
} st_mix;

#define ST_LARGE_MIN ((size_t)256 << 10)
#define ST_LARGE_MAX ((size_t)4 << 20)

static inline size_t st_pick_size(tk_rng *r, const st_mix *m)
{
    unsigned d = (unsigned)tk_below(r, 1000);
    if (d < m->large_pm)
        return tk_log_range(r, ST_LARGE_MIN, ST_LARGE_MAX);
    if (d < m->large_pm + m->medium_pm)
        return tk_log_range(r, 1025, (size_t)64 << 10);
    /* Small: bias towards the tiniest classes, where most traffic is. */
    if (tk_below(r, 4) == 0)
        return (size_t)tk_range(r, 1, 64);
    return (size_t)tk_range(r, 1, 1024);
}

/* ------------------------------------------------------------ pattern */

/* A block in flight: what the allocator gave and what was asked. */
typedef struct st_block {
    unsigned char *p;
    size_t size;   /* requested size                                   */
    size_t fill;   /* bytes the pattern covers: size, or (for 1 block
                    * in 4) all of ns_malloc_usable_size(), which the
                    * caller may use as well: catches overlapping slack */
    size_t align;  /* requested alignment (0: malloc/calloc/realloc)   */
    uint64_t id;   /* unique in the process: (round, thread, serial)   */
    uint32_t from; /* thread that allocated it (for reports)           */
    uint32_t hops; /* times it was handed on                           */
} st_block;

static inline uint64_t st_block_id(unsigned round, unsigned tid, uint64_t serial)
{
    return ((uint64_t)(round & 0xFFFF) << 48) | ((uint64_t)(tid & 0xFFFF) << 32) | (serial & 0xFFFFFFFFULL);
}

static inline uint64_t st_pattern_seed(uint64_t id, size_t size)
{
    return tk_mix64(id ^ tk_mix64((uint64_t)size + 0x5bd1e995ULL));
}

/* Word i of the pattern: a bijection of i for a fixed seed. */
static inline uint64_t st_word(uint64_t seed, size_t i)
{
    uint64_t x = (seed ^ (uint64_t)i) * 0x9E3779B97F4A7C15ULL;
    return x ^ (x >> 29);
}

/* Write the first len bytes of pattern(id, size) over bytes [0, len). */
static inline void st_fill(void *p, size_t len, size_t size, uint64_t id)
{
    unsigned char *b = p;
    uint64_t seed = st_pattern_seed(id, size);
    size_t n = len / 8, i;
    for (i = 0; i < n; i++) {
        uint64_t w = st_word(seed, i);
        memcpy(b + i * 8, &w, 8);
    }
    if (len % 8) {
        uint64_t w = st_word(seed, n);
        memcpy(b + n * 8, &w, len % 8);
    }
}

/* Check that bytes [0, len) hold the first len bytes of pattern(id, size).
 * Returns SIZE_MAX if they do, else the first bad offset (exp and got set). */
static inline size_t st_check(const void *p, size_t len, size_t size, uint64_t id,
                              unsigned *exp, unsigned *got)
{
    const unsigned char *b = p;
    uint64_t seed = st_pattern_seed(id, size);
    size_t n = len / 8, tail = len % 8, i;
    unsigned char wb[8], vb[8];
    /* Whole words, with constant-size loads (inlined even under ASan). */
    for (i = 0; i < n; i++) {
        uint64_t w = st_word(seed, i), v;
        memcpy(&v, b + i * 8, 8);
        if (v != w) {
            memcpy(wb, &w, 8);
            memcpy(vb, &v, 8);
            for (size_t k = 0; k < 8; k++) {
                if (vb[k] != wb[k]) {
                    *exp = wb[k];
                    *got = vb[k];
                    return i * 8 + k;
                }
            }
        }
    }
    if (tail) {
        uint64_t w = st_word(seed, n);
        memcpy(wb, &w, 8);
        for (size_t k = 0; k < tail; k++) {
            if (b[n * 8 + k] != wb[k]) {
                *exp = wb[k];
                *got = b[n * 8 + k];
                return n * 8 + k;
            }
        }
    }
    return SIZE_MAX;
}

/* ------------------------------------------------------------ status */

/* Counters shared by the threads of one test; checked by the main thread. */
typedef struct st_status {
    atomic_ullong created;     /* blocks allocated and filled            */
    atomic_ullong verified;    /* blocks whose full pattern was checked, then freed */
    atomic_ullong mismatches;  /* pattern mismatches                      */
    atomic_ullong errors;      /* NULL results, bad alignment, usable size, ... */
    atomic_ullong reallocs;    /* successful reallocs (prefix checked)    */
    atomic_ullong bytes;       /* bytes requested                         */
} st_status;

static inline void st_status_reset(st_status *s)
{
    atomic_store(&s->created, 0);
    atomic_store(&s->verified, 0);
    atomic_store(&s->mismatches, 0);
    atomic_store(&s->errors, 0);
    atomic_store(&s->reallocs, 0);
    atomic_store(&s->bytes, 0);
}

/* STRESS_FI: the core fails mmap/madvise/mbind at random
 * (NUMASLAB_FAULT_RATE); an allocation that returns NULL with ENOMEM is
 * then expected and counted here instead of as an error. */
static atomic_ullong st_injected __attribute__((unused));

static inline int st_injected_enomem(void)
{
#if defined(STRESS_FI)
    if (errno == ENOMEM) {
        atomic_fetch_add_explicit(&st_injected, 1, memory_order_relaxed);
        return 1;
    }
#endif
    return 0;
}

static inline void st_error(st_status *s)
{
    atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
}

/* Context of a report line: which test, round and seed. */
typedef struct st_where {
    const char *test;
    unsigned round;
    uint64_t seed;  /* the round seed */
    unsigned tid;
} st_where;

/* Check the contract every fresh (or reallocated) block must meet. */
static inline int st_check_contract(st_status *s, const st_where *w, const char *op,
                                    const void *p, size_t size, size_t align, size_t *usable)
{
    int ok = 1;
    size_t us = ns_malloc_usable_size(p);
    *usable = us;
    if (us < size) {
        st_fail_report("[%s] %s round=%u seed=0x%016" PRIx64 " tid=%u: ns_malloc_usable_size(%p)=%zu < requested %zu\n",
                       w->test, op, w->round, w->seed, w->tid, p, us, size);
        ok = 0;
    }
    /* Alignment: the requested one, else the fundamental alignment an
     * object of that size may need (16, or less for tiny blocks). */
    size_t need = align;
    if (need == 0) {
        need = 16;
        while (need > 1 && need > size)
            need >>= 1;
    }
    if (((uintptr_t)p & (need - 1)) != 0) {
        st_fail_report("[%s] %s round=%u seed=0x%016" PRIx64 " tid=%u: %p (size %zu) not aligned to %zu\n",
                       w->test, op, w->round, w->seed, w->tid, p, size, need);
        ok = 0;
    }
    if (!ok)
        st_error(s);
    return ok;
}

/* Allocate a block of about `size` bytes (a posix_memalign of more than
 * 64 KiB is mostly cut to 1..8192) by a random kind, fill it with its
 * pattern.  Returns 0 on failure (counted and reported). */
static inline int st_alloc_sized(st_status *s, const st_where *w, tk_rng *r, const st_mix *m,
                                 uint64_t id, size_t size, st_block *out)
{
    size_t align = 0;
    void *p = NULL;
    const char *op;
    unsigned d = (unsigned)tk_below(r, 1000);
    errno = 0;
    if (d < m->memalign_pm) {
        op = "ns_posix_memalign";
        align = (size_t)32 << tk_below(r, 8); /* 32 .. 4096 */
        if (size > ((size_t)64 << 10) && tk_below(r, 4) != 0)
            size = tk_range(r, 1, 8192);
        int rc = ns_posix_memalign(&p, align, size);
        if (rc != 0) {
            errno = rc;        /* posix_memalign returns the error */
            if (st_injected_enomem())
                return 0;
            st_fail_report("[%s] %s(align=%zu, size=%zu) round=%u seed=0x%016" PRIx64 " tid=%u failed: rc=%d\n",
                           w->test, op, align, size, w->round, w->seed, w->tid, rc);
            st_error(s);
            return 0;
        }
    } else if (d < m->memalign_pm + m->calloc_pm) {
        op = "ns_calloc";
        size_t cnt = 1, el = size;
        if (size % 8 == 0 && size >= 16) {
            cnt = size / 8;
            el = 8;
        }
        p = ns_calloc(cnt, el);
        if (p) {
            const unsigned char *b = p;
            for (size_t i = 0; i < size; i++) {
                if (b[i] != 0) {
                    st_fail_report("[%s] ns_calloc(%zu, %zu) round=%u seed=0x%016" PRIx64 " tid=%u: byte %zu of %p is 0x%02x, not 0\n",
                                   w->test, cnt, el, w->round, w->seed, w->tid, i, p, b[i]);
                    atomic_fetch_add_explicit(&s->mismatches, 1, memory_order_relaxed);
                    break;
                }
            }
        }
    } else {
        op = "ns_malloc";
        p = ns_malloc(size);
    }
    if (p == NULL) {
        if (st_injected_enomem())
            return 0;
        st_fail_report("[%s] %s(%zu) round=%u seed=0x%016" PRIx64 " tid=%u returned NULL (errno=%d)\n",
                       w->test, op, size, w->round, w->seed, w->tid, errno);
        st_error(s);
        return 0;
    }
    size_t us = 0;
    size_t fill = size;
    ST_UNPOISON(p, ns_malloc_usable_size(p));
    if (st_check_contract(s, w, op, p, size, align, &us) && tk_below(r, 4) == 0)
        fill = us;
    st_fill(p, fill, size, id);
    out->p = p;
    out->size = size;
    out->fill = fill;
    out->align = align;
    out->id = id;
    out->from = w->tid;
    out->hops = 0;
    atomic_fetch_add_explicit(&s->created, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->bytes, size, memory_order_relaxed);
    return 1;
}

/* Allocate a block of a random size (st_pick_size) and kind, fill it with
 * its pattern.  Returns 0 on failure (counted and reported). */
static inline int st_alloc_block(st_status *s, const st_where *w, tk_rng *r, const st_mix *m,
                                 uint64_t id, st_block *out)
{
    return st_alloc_sized(s, w, r, m, id, st_pick_size(r, m), out);
}

/* Verify the whole pattern of b. Returns 1 if intact. */
static inline int st_verify(st_status *s, const st_where *w, const char *when, const st_block *b)
{
    unsigned e = 0, g = 0;
    size_t off = st_check(b->p, b->fill, b->size, b->id, &e, &g);
    if (off == SIZE_MAX) {
        /* The owner lookup, from whichever thread holds the block now. */
        size_t us = ns_malloc_usable_size(b->p);
        if (us < b->fill) {
            st_fail_report("[%s] (%s) round=%u seed=0x%016" PRIx64 " tid=%u: ns_malloc_usable_size(%p)=%zu, "
                           "was >= %zu when allocated (block id=0x%016" PRIx64 " size %zu, from tid %u)\n",
                           w->test, when, w->round, w->seed, w->tid, (void *)b->p, us, b->fill, b->id,
                           b->size, b->from);
            st_error(s);
        }
        return 1;
    }
    atomic_fetch_add_explicit(&s->mismatches, 1, memory_order_relaxed);
    st_fail_report("[%s] PATTERN MISMATCH (%s) round=%u seed=0x%016" PRIx64 " tid=%u: block id=0x%016" PRIx64
                   " p=%p size=%zu (pattern over %zu) align=%zu allocated by tid %u, %u hops: byte %zu expected 0x%02x got 0x%02x\n",
                   w->test, when, w->round, w->seed, w->tid, b->id, (void *)b->p, b->size, b->fill, b->align,
                   b->from, b->hops, off, e, g);
    return 0;
}

/* Verify and free b. A corrupt block is reported and leaked, not freed:
 * freeing memory that may belong to someone else would only cascade. */
static inline int st_verify_free(st_status *s, const st_where *w, const char *when, st_block *b)
{
    if (!st_verify(s, w, when, b))
        return 0;
    ns_free(b->p);
    b->p = NULL;
    atomic_fetch_add_explicit(&s->verified, 1, memory_order_relaxed);
    return 1;
}

/* Free a block that was just verified, counting it as verified. */
static inline void st_free_checked(st_status *s, st_block *b)
{
    ns_free(b->p);
    b->p = NULL;
    atomic_fetch_add_explicit(&s->verified, 1, memory_order_relaxed);
}

/* Realloc b to a new random size: check the preserved prefix, the contract,
 * then refill with pattern(id, new size). Returns 1 on success; on a NULL
 * result b is unchanged (still valid, as realloc promises). */
static inline int st_realloc_block(st_status *s, const st_where *w, tk_rng *r, const st_mix *m,
                                   st_block *b)
{
    size_t nsize;
    switch (tk_below(r, 4)) {
    case 0: nsize = b->size / 2 + 1; break;                  /* shrink      */
    case 1: nsize = b->size + tk_range(r, 1, 64); break;     /* grow a bit  */
    default: nsize = st_pick_size(r, m); break;              /* anywhere    */
    }
    errno = 0;
    unsigned char *q = ns_realloc(b->p, nsize);
    if (q == NULL) {
        if (st_injected_enomem())
            return 0;          /* b is unchanged, as realloc promises */
        st_fail_report("[%s] ns_realloc(%p, %zu) round=%u seed=0x%016" PRIx64 " tid=%u returned NULL (errno=%d)\n",
                       w->test, (void *)b->p, nsize, w->round, w->seed, w->tid, errno);
        st_error(s);
        return 0;
    }
    ST_UNPOISON(q, ns_malloc_usable_size(q));
    size_t keep = nsize < b->size ? nsize : b->size;
    unsigned e = 0, g = 0;
    size_t off = st_check(q, keep, b->size, b->id, &e, &g);
    if (off != SIZE_MAX) {
        atomic_fetch_add_explicit(&s->mismatches, 1, memory_order_relaxed);
        st_fail_report("[%s] REALLOC LOST DATA round=%u seed=0x%016" PRIx64 " tid=%u: block id=0x%016" PRIx64
                       " %p size %zu -> %p size %zu: byte %zu of the kept %zu expected 0x%02x got 0x%02x\n",
                       w->test, w->round, w->seed, w->tid, b->id, (void *)b->p, b->size, (void *)q, nsize,
                       off, keep, e, g);
    }
    size_t us = 0, fill = nsize;
    if (st_check_contract(s, w, "ns_realloc", q, nsize, 0, &us) && tk_below(r, 4) == 0)
        fill = us;
    st_fill(q, fill, nsize, b->id);
    b->p = q;
    b->size = nsize;
    b->fill = fill;
    b->align = 0;
    atomic_fetch_add_explicit(&s->reallocs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->bytes, nsize, memory_order_relaxed);
    return 1;
}

/* ------------------------------------------------------------ config */

typedef struct st_config {
    unsigned rounds;
    unsigned threads;
    unsigned ops;
    uint64_t seed;
    int verbose;
    unsigned first_round; /* --round=N: run only round N (reproduction) */
    int single_round;
} st_config;

static const char *st_argv0 = "stress"; /* for the reproduction line */

static int st_parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static void st_usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [--rounds=N] [--threads=N] [--ops=N] [--seed=N] [--round=N] [--verbose]\n"
            "  environment: STRESS_ROUNDS STRESS_THREADS STRESS_OPS STRESS_SEED STRESS_VERBOSE\n"
            "  --round=N reruns round N only (with the same base seed)\n",
            prog);
}

static void st_config_set(st_config *c, const char *key, const char *val, const char *prog)
{
    uint64_t v = 0;
    if (strcmp(key, "verbose") == 0) {
        c->verbose = val ? atoi(val) : 1;
        return;
    }
    if (val == NULL || st_parse_u64(val, &v) != 0) {
        fprintf(stderr, "%s: bad value for %s: '%s'\n", prog, key, val ? val : "");
        st_usage(prog);
        exit(2);
    }
    if (strcmp(key, "seed") == 0) {
        c->seed = v;
        return;
    }
    if (strcmp(key, "round") == 0) {
        c->first_round = (unsigned)v;
        c->single_round = 1;
        return;
    }
    if (v == 0 || v > 1000000) {
        fprintf(stderr, "%s: %s must be in 1..1000000\n", prog, key);
        exit(2);
    }
    if (strcmp(key, "rounds") == 0)
        c->rounds = (unsigned)v;
    else if (strcmp(key, "threads") == 0)
        c->threads = (unsigned)v;
    else if (strcmp(key, "ops") == 0)
        c->ops = (unsigned)v;
    else {
        fprintf(stderr, "%s: unknown option --%s\n", prog, key);
        st_usage(prog);
        exit(2);
    }
}

static void st_config_init(st_config *c, int argc, char **argv, unsigned rounds,
                           unsigned threads, unsigned ops)
{
    static const char *const keys[] = {"rounds", "threads", "ops", "seed", "verbose"};
    static const char *const envs[] = {"STRESS_ROUNDS", "STRESS_THREADS", "STRESS_OPS",
                                       "STRESS_SEED", "STRESS_VERBOSE"};
    const char *prog = argc > 0 ? argv[0] : "stress";
    st_argv0 = prog;
    memset(c, 0, sizeof *c);
    c->rounds = rounds;
    c->threads = threads;
    c->ops = ops;
    c->seed = 0x6E756D61736C6162ULL; /* "numaslab": deterministic by default */
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *e = getenv(envs[i]);
        if (e && *e)
            st_config_set(c, keys[i], e, prog);
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            st_usage(prog);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0) {
            st_usage(prog);
            exit(2);
        }
        char key[32];
        const char *eq = strchr(a + 2, '=');
        size_t kl = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (kl >= sizeof key) {
            st_usage(prog);
            exit(2);
        }
        memcpy(key, a + 2, kl);
        key[kl] = '\0';
        st_config_set(c, key, eq ? eq + 1 : NULL, prog);
    }
}

static inline uint64_t st_round_seed(const st_config *c, unsigned round)
{
    return tk_mix64(c->seed + round);
}

static inline uint64_t st_thread_seed(uint64_t round_seed, unsigned tid)
{
    return tk_mix64(round_seed ^ ((uint64_t)(tid + 1) * 0xD1B54A32D192ED03ULL));
}

/* Loop bounds of the rounds to run: all of them, or --round=N only. */
static inline unsigned st_round_begin(const st_config *c)
{
    return c->single_round ? c->first_round : 0;
}

static inline unsigned st_round_end(const st_config *c)
{
    return c->single_round ? c->first_round + 1 : c->rounds;
}

static void st_print_repro(const char *prog, const st_config *c, unsigned round)
{
    (void)prog;
    st_log("reproduce: %s --seed=0x%016" PRIx64 " --threads=%u --ops=%u --round=%u   (round seed 0x%016" PRIx64 ")\n",
           st_argv0, c->seed, c->threads, c->ops, round, st_round_seed(c, round));
}

/* ------------------------------------------------------------ barrier */

/* A sense-reversing barrier on a mutex/condvar: pthread_barrier_t is fine
 * too, but this one is visible to every sanitizer without surprises. */
typedef struct st_barrier {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned count, waiting, phase;
} st_barrier;

static inline void st_barrier_init(st_barrier *b, unsigned count)
{
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->cond, NULL);
    b->count = count;
    b->waiting = 0;
    b->phase = 0;
}

static inline void st_barrier_destroy(st_barrier *b)
{
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->cond);
}

static inline void st_barrier_wait(st_barrier *b)
{
    pthread_mutex_lock(&b->lock);
    unsigned phase = b->phase;
    if (++b->waiting == b->count) {
        b->waiting = 0;
        b->phase++;
        pthread_cond_broadcast(&b->cond);
    } else {
        while (phase == b->phase)
            pthread_cond_wait(&b->cond, &b->lock);
    }
    pthread_mutex_unlock(&b->lock);
}

/* ------------------------------------------------------------ queue */

/* A bounded FIFO of blocks under a mutex (the mailboxes and hand-off
 * queues). Storage comes from the system allocator, not from numaslab. */
typedef struct st_queue {
    pthread_mutex_t lock;
    st_block *ring;
    size_t cap, head, count;
    char pad[64];
} st_queue;

static inline int st_queue_init(st_queue *q, size_t cap)
{
    pthread_mutex_init(&q->lock, NULL);
    q->ring = calloc(cap, sizeof *q->ring);
    q->cap = cap;
    q->head = q->count = 0;
    return q->ring != NULL;
}

static inline void st_queue_destroy(st_queue *q)
{
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    q->ring = NULL;
}

/* Returns 1 if b was queued, 0 if the queue is full. */
static inline int st_queue_push(st_queue *q, const st_block *b)
{
    int ok = 0;
    pthread_mutex_lock(&q->lock);
    if (q->count < q->cap) {
        q->ring[(q->head + q->count) % q->cap] = *b;
        q->count++;
        ok = 1;
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

/* Pop up to max blocks into out; returns how many. */
static inline size_t st_queue_pop(st_queue *q, st_block *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&q->lock);
    while (n < max && q->count > 0) {
        out[n++] = q->ring[q->head];
        q->head = (q->head + 1) % q->cap;
        q->count--;
    }
    pthread_mutex_unlock(&q->lock);
    return n;
}

static inline size_t st_queue_count(st_queue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}

/* Print the final summary line the suite's scripts look for. */
static inline int st_finish(const char *name, int ntests, int failed)
{
    if (failed < 0 || failed > ntests)
        failed = ntests;
#if defined(STRESS_FI)
    /* the injection must really have happened, or the variant proves nothing */
    unsigned long long inj = atomic_load(&st_injected);
    printf("%s (fi): %llu allocations failed by injection with ENOMEM, all handled\n", name, inj);
    if (inj == 0 && failed == 0) {
        printf("%s (fi): no injected failure reached the test: is NUMASLAB_FAULT_RATE set?\n", name);
        failed = 1;
    }
#endif
    printf("%s (%s): done\n%d passed, %d failed\n", name, ST_VARIANT, ntests - failed, failed);
    fflush(stdout);
    return failed ? 1 : 0;
}

#endif /* STRESS_COMMON_H */
