/* stress_threads.c - 2,000 threads in waves: contents checked, RSS comes back.
 *
 * Issue 16, "thousands of threads".  After one warm-up wave, the main
 * thread runs W waves (default 20: --rounds, STRESS_ROUNDS) of T threads
 * (default 100: --threads), all T of a wave alive at once (50x the cores
 * of the 2-core CI machine), and joins each wave before it starts the
 * next.  Each thread allocates B blocks (default 48: --ops): a size class
 * drawn uniformly from the 80 classes of 16 B .. 64 KiB and a size inside
 * it, 1 in 64 of 64 KiB .. 256 KiB, and for one thread in 25 one block of
 * 256 KiB .. 1 MiB; by ns_malloc, ns_calloc (zeros checked) or
 * ns_posix_memalign.  It writes a pattern of (wave, thread, index) over
 * every requested byte (over all of ns_malloc_usable_size() for 1 block in
 * 4), then keeps the block until its end, frees it at once, posts it to the
 * mailbox of a sibling (the next thread in a ring, or a random one:
 * alternating per wave), or leaves it in the carry queue, whose blocks the
 * threads of the next wave check and free after their allocating thread
 * has exited.  Received blocks are checked, then freed or carried on.  Every
 * block is checked byte for byte before it is freed, by whichever thread
 * frees it; after every wave all blocks not in the carry queue were freed.
 *
 * RSS is the kernel's: /proc/self/statm, read with pread(2) on a descriptor
 * opened at start (nothing allocates while measuring).  The baseline is
 * taken after the warm-up wave and ns_malloc_trim(0); after the last wave
 * a thread of its own frees the blocks still carried and exits, the main
 * thread calls ns_malloc_trim(0), and RSS must be at most the baseline
 * + 4 MiB: the caches and slabs of the threads went back at their exit.
 * (Under TSan and ASan the sanitizers' own per-thread memory and
 * quarantine move RSS: figures are printed, not checked.)  Peak: the
 * largest RSS a thread saw once it had made all its blocks, or the main
 * thread after a wave.  Printed too: RSS before the trim, with every block
 * freed and every thread gone (the bins' spare slabs, one per class, keep
 * their SuperSlabs until a trim).
 *
 * test_idle_thread: what one idle thread holds (README, "Memory return").
 * A thread allocates and frees blocks of every one of the 96 classes,
 * twice its cache's capacity at a time, at least 6 times, then sleeps; the
 * main thread calls ns_malloc_trim(0) (which cannot touch another thread's
 * cache or slabs) and reads RSS and the statistics.  The bound, computed
 * here from the code: the cache holds at most min(512, max(2,
 * NUMASLAB_TCACHE_BYTES / size)) blocks per class (src/tiny/tcache.c
 * cap_max), in the slabs those blocks fill when packed, plus a current slab
 * and one empty spare per class (src/numa/bin.c owned_got_blocks); each of
 * those slabs keeps at most its SuperSlab (2 MiB) resident.  Checked:
 * cached bytes (in_use_bytes: no block is in use), slabs and their bytes
 * against the bound, RSS growth against 2 MiB a slab, RSS back within
 * 4 MiB once the thread exited.  Once alone, once while 3 waves of threads
 * come and go (its slabs then share SuperSlabs with theirs).
 */
#define _GNU_SOURCE
#include "stress_common.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdarg.h>
#include <cmocka.h>

#if defined(STRESS_TSAN)
/* 1,000 threads: 2,000 x 48 blocks take 30 s and 2 GiB of RSS under TSan */
#define DEF_ROUNDS 20
#define DEF_THREADS 50
#define DEF_OPS 24
#else
#define DEF_ROUNDS 20
#define DEF_THREADS 100
#define DEF_OPS 48
#endif

#if defined(STRESS_TSAN) || defined(STRESS_ASAN)
#define CHECK_RSS 0
#else
#define CHECK_RSS 1
#endif

#define MiB ((uint64_t)1 << 20)
#define RSS_SLACK (4 * MiB)
#define MBOX_CAP 256
#define BATCH 16
#define SMALL_CLASSES 80    /* 16 B .. 64 KiB */
#define WARMUP_WAVE 0xFFFFu /* the round number the warm-up wave's ids carry */

static st_config cfg;
static const char *prog = "stress_threads";

/* kinds only: the sizes come from pick_size() */
static const st_mix tmix = {
    .memalign_pm = 60,
    .calloc_pm = 60,
};

static uint32_t class_size[NS_STATS_CLASSES];

/* ------------------------------------------------------------ RSS */

static int statm_fd = -1;
static uint64_t page_bytes;

/* The kernel's resident set in bytes: statm's second field, read into a
 * stack buffer with pread(2), parsed by hand (no stdio, no allocation). */
static uint64_t rss_now(void)
{
    char buf[160];
    ssize_t n = pread(statm_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = buf;
    while (*p && *p != ' ')
        p++;
    uint64_t pages = 0;
    for (p++; *p >= '0' && *p <= '9'; p++)
        pages = pages * 10 + (uint64_t)(*p - '0');
    return pages * page_bytes;
}

static void max_into(atomic_ullong *m, uint64_t v)
{
    unsigned long long cur = atomic_load_explicit(m, memory_order_relaxed);
    while (v > cur &&
           !atomic_compare_exchange_weak_explicit(m, &cur, v, memory_order_relaxed, memory_order_relaxed)) {
    }
}

static double mib(uint64_t b)
{
    return (double)b / (double)MiB;
}

/* ------------------------------------------------------------ waves */

typedef struct wave_ctx {
    st_status *st;       /* all waves: created - verified = carried */
    st_queue *mbox;      /* one per thread of the wave */
    st_queue *carry_in;  /* left by the previous wave: check and free */
    st_queue *carry_out; /* for the next wave */
    unsigned nthreads;
    unsigned wave;
    uint64_t seed;
    int ring; /* siblings: ring (t -> t+1) or random */
    st_barrier bar;
    atomic_ullong *peak;
    atomic_ullong sent, carried, inherited, fallback;
} wave_ctx;

typedef struct worker {
    wave_ctx *wc;
    unsigned tid;
    st_block *local; /* cfg.ops slots, from the system allocator */
    pthread_t th;
} worker;

static size_t pick_size(tk_rng *r, unsigned tid, unsigned idx)
{
    if (idx == 0 && tid % 25 == 7)
        return (size_t)tk_range(r, ((size_t)256 << 10) + 1, (size_t)1 << 20);
    if (tk_below(r, 64) == 0)
        return (size_t)tk_range(r, ((size_t)64 << 10) + 1, (size_t)256 << 10);
    unsigned c = (unsigned)tk_below(r, SMALL_CLASSES);
    size_t lo = c ? (size_t)class_size[c - 1] + 1 : 1;
    return (size_t)tk_range(r, lo, class_size[c]);
}

/* To the next wave; if its queue is full, check and free here. */
static void carry(wave_ctx *wc, const st_where *w, st_block *b)
{
    b->hops++;
    if (st_queue_push(wc->carry_out, b))
        atomic_fetch_add_explicit(&wc->carried, 1, memory_order_relaxed);
    else
        st_verify_free(wc->st, w, "carry queue full", b);
}

/* A block from a sibling: check every byte, then free or carry it on. */
static void receive(wave_ctx *wc, tk_rng *r, const st_where *w, st_block *b)
{
    if (!st_verify(wc->st, w, "received", b))
        return; /* reported; leaked on purpose */
    if (b->hops < 3 && tk_below(r, 8) == 0)
        carry(wc, w, b);
    else
        st_free_checked(wc->st, b);
}

static size_t drain_inbox(wave_ctx *wc, tk_rng *r, const st_where *w, size_t max)
{
    st_block got[BATCH];
    size_t total = 0;
    while (total < max) {
        size_t want = max - total < BATCH ? max - total : BATCH;
        size_t n = st_queue_pop(&wc->mbox[w->tid], got, want);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            receive(wc, r, w, &got[i]);
        total += n;
    }
    return total;
}

/* Blocks of the previous wave, whose threads have all exited. */
static void drain_carry_in(wave_ctx *wc, const st_where *w, size_t max)
{
    st_block got[BATCH];
    size_t total = 0;
    while (total < max) {
        size_t want = max - total < BATCH ? max - total : BATCH;
        size_t n = st_queue_pop(wc->carry_in, got, want);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            if (st_verify_free(wc->st, w, "from the previous wave", &got[i]))
                atomic_fetch_add_explicit(&wc->inherited, 1, memory_order_relaxed);
        total += n;
    }
}

static void send(wave_ctx *wc, tk_rng *r, const st_where *w, st_block *b)
{
    unsigned n = wc->nthreads, t;
    if (wc->ring) {
        t = (w->tid + 1) % n;
    } else {
        t = (unsigned)tk_below(r, n - 1);
        t = t >= w->tid ? t + 1 : t;
    }
    b->hops++;
    for (int tries = 0; tries < 8; tries++) {
        if (st_queue_push(&wc->mbox[t], b)) {
            atomic_fetch_add_explicit(&wc->sent, 1, memory_order_relaxed);
            return;
        }
        drain_inbox(wc, r, w, BATCH);
        sched_yield();
    }
    atomic_fetch_add_explicit(&wc->fallback, 1, memory_order_relaxed);
    st_verify_free(wc->st, w, "sender fallback", b);
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    wave_ctx *wc = wk->wc;
    st_where w = {prog, wc->wave, wc->seed, wk->tid};
    tk_rng r;
    tk_rng_seed(&r, st_thread_seed(wc->seed, wk->tid));
    size_t nlocal = 0;

    st_barrier_wait(&wc->bar); /* the whole wave is alive */
    drain_carry_in(wc, &w, cfg.ops / 4 + 1);

    for (unsigned i = 0; i < cfg.ops; i++) {
        st_block b;
        size_t size = pick_size(&r, wk->tid, i);
        if (!st_alloc_sized(wc->st, &w, &r, &tmix, st_block_id(wc->wave, wk->tid, i), size, &b))
            continue;
        unsigned d = (unsigned)tk_below(&r, 16);
        if (d < 4)
            wk->local[nlocal++] = b;
        else if (d < 6)
            st_verify_free(wc->st, &w, "own free", &b);
        else if (d < 8)
            carry(wc, &w, &b);
        else
            send(wc, &r, &w, &b);
        drain_inbox(wc, &r, &w, 1 + tk_below(&r, 4));
    }
    max_into(wc->peak, rss_now());

    /* Every sibling has sent all it will send. */
    st_barrier_wait(&wc->bar);
    drain_inbox(wc, &r, &w, SIZE_MAX);
    for (size_t i = 0; i < nlocal; i++)
        st_verify_free(wc->st, &w, "own, at the end", &wk->local[i]);
    drain_carry_in(wc, &w, SIZE_MAX);
    return NULL;
}

/* One wave: start every thread, join every thread, check the books. */
static int run_wave(unsigned wave, uint64_t seed, st_status *st, st_queue *mbox, st_queue *carry_q,
                    worker *wks, atomic_ullong *peak)
{
    wave_ctx wc;
    memset(&wc, 0, sizeof wc);
    wc.st = st;
    wc.mbox = mbox;
    wc.carry_in = &carry_q[wave & 1];
    wc.carry_out = &carry_q[(wave & 1) ^ 1];
    wc.nthreads = cfg.threads;
    wc.wave = wave;
    wc.seed = seed;
    wc.ring = wave & 1;
    wc.peak = peak;
    st_barrier_init(&wc.bar, cfg.threads);
    for (unsigned t = 0; t < cfg.threads; t++) {
        wks[t].wc = &wc;
        wks[t].tid = t;
        if (pthread_create(&wks[t].th, NULL, worker_main, &wks[t]) != 0) {
            st_log("[%s] pthread_create failed at thread %u of wave %u\n", prog, t, wave);
            abort(); /* the others wait at the barrier */
        }
    }
    for (unsigned t = 0; t < cfg.threads; t++)
        pthread_join(wks[t].th, NULL);
    max_into(peak, rss_now());

    size_t left = 0;
    for (unsigned t = 0; t < cfg.threads; t++)
        left += st_queue_count(&mbox[t]);
    size_t in_carry_in = st_queue_count(wc.carry_in);
    size_t carried = st_queue_count(wc.carry_out);
    unsigned long long created = atomic_load(&st->created), verified = atomic_load(&st->verified);
    unsigned long long mism = atomic_load(&st->mismatches), errs = atomic_load(&st->errors);
    int ok = mism == 0 && errs == 0 && left == 0 && in_carry_in == 0 && created == verified + carried;
    if (cfg.verbose || !ok)
        st_log("[%s] wave %u %s seed=0x%016" PRIx64 ": created=%llu verified=%llu carried=%zu sent=%llu "
               "inherited=%llu fallback=%llu mismatches=%llu errors=%llu left=%zu/%zu rss=%.1f MiB\n",
               prog, wave, wc.ring ? "ring" : "random", seed, created, verified, carried,
               (unsigned long long)atomic_load(&wc.sent), (unsigned long long)atomic_load(&wc.inherited),
               (unsigned long long)atomic_load(&wc.fallback), mism, errs, left, in_carry_in, mib(rss_now()));
    if (!ok)
        st_print_repro(prog, &cfg, wave);
    st_barrier_destroy(&wc.bar);
    return ok;
}

/* Check and free what the last wave carried. */
static void drain_carried(st_status *st, st_queue *q)
{
    st_where w = {prog, 0, 0, ~0u};
    st_block got[BATCH];
    size_t n;
    while ((n = st_queue_pop(q, got, BATCH)) > 0)
        for (size_t i = 0; i < n; i++)
            st_verify_free(st, &w, "left by the last wave", &got[i]);
}

typedef struct drain_arg {
    st_status *st;
    st_queue *q;
} drain_arg;

static void *drain_main(void *arg)
{
    drain_arg *da = arg;
    drain_carried(da->st, &da->q[0]);
    drain_carried(da->st, &da->q[1]);
    return NULL;
}

/* By a thread of its own, which then exits: its cache goes back with it
 * (the main thread's would keep what it freed until its next slow path). */
static void drain_in_thread(st_status *st, st_queue *q)
{
    drain_arg da = {st, q};
    pthread_t th;
    if (pthread_create(&th, NULL, drain_main, &da) != 0)
        abort();
    pthread_join(th, NULL);
}

/* What the waves share, from the system allocator. */
typedef struct wave_set {
    st_queue *mbox;
    worker *wks;
    st_queue carry[2];
} wave_set;

static void wave_set_init(wave_set *ws)
{
    ws->mbox = calloc(cfg.threads, sizeof *ws->mbox);
    ws->wks = calloc(cfg.threads, sizeof *ws->wks);
    assert_non_null(ws->mbox);
    assert_non_null(ws->wks);
    for (unsigned t = 0; t < cfg.threads; t++) {
        assert_true(st_queue_init(&ws->mbox[t], MBOX_CAP));
        ws->wks[t].local = calloc(cfg.ops, sizeof *ws->wks[t].local);
        assert_non_null(ws->wks[t].local);
    }
    size_t carry_cap = (size_t)cfg.threads * cfg.ops / 2 + 16;
    assert_true(st_queue_init(&ws->carry[0], carry_cap));
    assert_true(st_queue_init(&ws->carry[1], carry_cap));
}

static void wave_set_destroy(wave_set *ws)
{
    for (unsigned t = 0; t < cfg.threads; t++) {
        st_queue_destroy(&ws->mbox[t]);
        free(ws->wks[t].local);
    }
    st_queue_destroy(&ws->carry[0]);
    st_queue_destroy(&ws->carry[1]);
    free(ws->mbox);
    free(ws->wks);
}

static void test_waves(void **state)
{
    (void)state;
    assert_true(cfg.threads >= 2);
    wave_set ws;
    wave_set_init(&ws);
    st_queue *mbox = ws.mbox, *carry_q = ws.carry;
    worker *wks = ws.wks;
    static st_status st;
    atomic_ullong peak;
    atomic_init(&peak, 0);
    st_status_reset(&st);

    double t0 = tk_now();
    uint64_t rss_start = rss_now();
    /* Warm-up: thread stacks, glibc's stack cache, the allocator's
     * metadata for T caches, the mailboxes' pages. */
    int ok = run_wave(WARMUP_WAVE, st_round_seed(&cfg, WARMUP_WAVE), &st, mbox, carry_q, wks, &peak);
    drain_carried(&st, &carry_q[0]);
    drain_carried(&st, &carry_q[1]);
    ns_malloc_trim(0);
    uint64_t base = rss_now();
    atomic_store(&peak, base);

    unsigned failed = 0, first_failed = 0, waves = 0;
    for (unsigned wave = st_round_begin(&cfg); wave < st_round_end(&cfg); wave++, waves++) {
        if (!run_wave(wave, st_round_seed(&cfg, wave), &st, mbox, carry_q, wks, &peak) && failed++ == 0)
            first_failed = wave;
    }
    uint64_t after_waves = rss_now();
    drain_in_thread(&st, carry_q);
    uint64_t before_trim = rss_now();
    ns_stats_t s0;
    memset(&s0, 0, sizeof s0);
    assert_int_equal(ns_stats_get(&s0), 0);
    uint64_t slabs0 = 0;
    unsigned classes0 = 0;
    for (unsigned c = 0; c < NS_STATS_CLASSES; c++) {
        slabs0 += s0.classes[c].slabs;
        classes0 += s0.classes[c].slabs > 0;
    }
    ns_malloc_trim(0);
    uint64_t final = rss_now();
    double dt = tk_now() - t0;

    ns_stats_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ns_stats_get(&s), 0);
    unsigned long long created = atomic_load(&st.created), verified = atomic_load(&st.verified);
    st_log("[%s] %u waves x %u threads (%u threads, + %u warm-up) x %u blocks in %.1f s: %llu blocks, "
           "%llu MiB, all checked and freed: %s\n",
           prog, waves, cfg.threads, waves * cfg.threads, cfg.threads, cfg.ops, dt, created,
           (unsigned long long)(atomic_load(&st.bytes) >> 20), created == verified ? "yes" : "NO");
    st_log("[%s] RSS: start %.1f MiB, baseline (after warm-up, trim) %.1f MiB, peak %.1f MiB, after the "
           "last wave %.1f MiB (blocks carried), all freed %.1f MiB (mapped %.1f MiB: %llu SuperSlabs, %llu "
           "slabs of %u classes, "
           "%llu KiB cached), "
           "final (after trim) %.1f MiB: %+.2f MiB (limit +%.0f MiB%s); ns_stats: threads %llu, mapped %.1f "
           "MiB, "
           "in use %llu B\n",
           prog, mib(rss_start), mib(base), mib(atomic_load(&peak)), mib(after_waves), mib(before_trim),
           mib(s0.mapped_bytes), (unsigned long long)s0.node[0].superslabs, (unsigned long long)slabs0,
           classes0, (unsigned long long)(s0.in_use_bytes >> 10), mib(final),
           ((double) final - (double)base) / (double)MiB, mib(RSS_SLACK),
           CHECK_RSS ? "" : ", not checked here", (unsigned long long)s.threads, mib(s.mapped_bytes),
           (unsigned long long)s.in_use_bytes);

    wave_set_destroy(&ws);

    if (!ok)
        fail_msg("the warm-up wave failed");
    if (failed)
        fail_msg("%u wave(s) failed, first: wave %u (seed 0x%016" PRIx64 ")", failed, first_failed,
                 st_round_seed(&cfg, first_failed));
    assert_int_equal(created, verified);
    assert_int_equal(atomic_load(&st.mismatches), 0);
    assert_int_equal(atomic_load(&st.errors), 0);
    /* joined threads ran their destructors: at most the main thread's cache */
    assert_true(s.threads <= 1);
    assert_int_equal(s.in_use_bytes, 0);
    if (CHECK_RSS && final > base + RSS_SLACK)
        fail_msg("RSS after %u threads exited is %.2f MiB, %.2f MiB above the baseline %.2f MiB (limit %.0f)",
                 waves * cfg.threads, mib(final), mib(final - base), mib(base), mib(RSS_SLACK));
}

/* ------------------------------------------------------------ idle thread */

/* NUMASLAB_TCACHE_BYTES as the allocator reads it (a number, K/M suffix). */
static uint64_t tcache_bytes(void)
{
    const char *e = getenv("NUMASLAB_TCACHE_BYTES");
    if (!e || !*e)
        return 64 << 10;
    char *end = NULL;
    uint64_t v = strtoull(e, &end, 0);
    if (end && (*end == 'k' || *end == 'K'))
        v <<= 10;
    else if (end && (*end == 'm' || *end == 'M'))
        v <<= 20;
    return v;
}

/* Slab length of a class in bytes: the smallest run of 64 KiB units that
 * holds a block and wastes at most 1/8 of itself (src/superslab/sizeclass.c). */
static uint64_t slab_bytes(uint32_t size)
{
    for (uint64_t u = 1;; u++) {
        uint64_t bytes = u << 16, blocks = bytes / size;
        if (blocks >= 1 && (bytes - blocks * size) * 8 <= bytes)
            return bytes;
    }
}

/* The README's bound of a class's cache: NUMASLAB_TCACHE_BYTES of blocks
 * (2..512), or up to 32 blocks within 4x that for blocks above 2 KiB. */
static uint32_t cache_cap(uint32_t size, uint64_t tbytes)
{
    if (tbytes == 0)
        return 0;
    uint64_t c = tbytes / size, big = 4 * tbytes / size;
    if (c < 32 && size > 2048)
        c = big < 32 ? big : 32;
    return c < 2 ? 2 : c > 512 ? 512 : (uint32_t)c;
}

typedef struct idle_ctx {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int idle, wake;
    atomic_int others_done; /* go on until the other threads are done */
    uint64_t tbytes;
    st_block *b; /* 1024 slots, from the system allocator */
    st_status st;
} idle_ctx;

/* Every class, at least 6 times: as many blocks as twice the cache's
 * capacity, filled and checked, freed in the order they came; then sleep
 * until woken. */
static void *idle_main(void *arg)
{
    idle_ctx *ic = arg;
    st_where w = {prog, 0, 0, 0};
    tk_rng r;
    tk_rng_seed(&r, cfg.seed);
    static const st_mix plain = {0};
    st_block *b = ic->b;
    uint64_t serial = 0;
    for (unsigned rep = 0; rep < 6 || !atomic_load(&ic->others_done); rep++)
        for (unsigned c = 0; c < NS_STATS_CLASSES; c++) {
            uint32_t n = 2 * cache_cap(class_size[c], ic->tbytes);
            n = n < 4 ? 4 : n;
            uint32_t k = 0;
            for (uint32_t i = 0; i < n; i++)
                k += (uint32_t)st_alloc_sized(&ic->st, &w, &r, &plain, serial++, class_size[c], &b[k]);
            for (uint32_t i = 0; i < k; i++)
                st_verify_free(&ic->st, &w, "idle thread", &b[i]);
        }
    pthread_mutex_lock(&ic->lock);
    ic->idle = 1;
    pthread_cond_broadcast(&ic->cond);
    while (!ic->wake)
        pthread_cond_wait(&ic->cond, &ic->lock);
    pthread_mutex_unlock(&ic->lock);
    return NULL;
}

typedef struct idle_figures {
    uint64_t before, held, after; /* RSS: before, while it sleeps, after it exited */
    uint64_t cached;              /* bytes in its cache                     */
    uint64_t slabs, slab_bytes;   /* slabs carved (all its own), their bytes */
    uint64_t superslabs;          /* SuperSlabs mapped                      */
} idle_figures;

/* One idle thread, alone or while `waves` waves of threads come and go;
 * measured after ns_malloc_trim(0) (which cannot touch its cache or slabs). */
static void idle_run(idle_ctx *ic, unsigned waves, idle_figures *f)
{
    ic->idle = ic->wake = 0;
    atomic_store(&ic->others_done, waves == 0);
    ns_malloc_trim(0);
    f->before = rss_now();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, idle_main, ic), 0);
    if (waves) {
        wave_set ws;
        static st_status st;
        atomic_ullong peak;
        atomic_init(&peak, 0);
        st_status_reset(&st);
        wave_set_init(&ws);
        int ok = 1;
        for (unsigned v = 0; v < waves; v++)
            ok &= run_wave(WARMUP_WAVE - 1 - v, st_round_seed(&cfg, WARMUP_WAVE - 1 - v), &st, ws.mbox,
                           ws.carry, ws.wks, &peak);
        drain_in_thread(&st, ws.carry);
        atomic_store(&ic->others_done, 1);
        wave_set_destroy(&ws);
        assert_true(ok);
        assert_int_equal(atomic_load(&st.created), atomic_load(&st.verified));
    }
    pthread_mutex_lock(&ic->lock);
    while (!ic->idle)
        pthread_cond_wait(&ic->cond, &ic->lock);
    pthread_mutex_unlock(&ic->lock);
    ns_malloc_trim(0);
    f->held = rss_now();
    ns_stats_t s;
    memset(&s, 0, sizeof s);
    assert_int_equal(ns_stats_get(&s), 0);
    f->cached = s.in_use_bytes; /* no block is in use */
    f->superslabs = s.node[0].superslabs;
    f->slabs = f->slab_bytes = 0;
    for (unsigned c = 0; c < NS_STATS_CLASSES; c++) {
        f->slabs += s.classes[c].slabs;
        f->slab_bytes += s.classes[c].slabs * slab_bytes(class_size[c]);
    }
    pthread_mutex_lock(&ic->lock);
    ic->wake = 1;
    pthread_cond_broadcast(&ic->cond);
    pthread_mutex_unlock(&ic->lock);
    pthread_join(th, NULL);
    ns_malloc_trim(0);
    f->after = rss_now();
}

static void test_idle_thread(void **state)
{
    (void)state;
    idle_ctx ic;
    memset(&ic, 0, sizeof ic);
    pthread_mutex_init(&ic.lock, NULL);
    pthread_cond_init(&ic.cond, NULL);
    st_status_reset(&ic.st);
    ic.tbytes = tcache_bytes();
    ic.b = calloc(1024, sizeof *ic.b);
    assert_non_null(ic.b);

    /* The bound, from the code: the cache's blocks; the slabs they sit in
     * (packed), plus a current slab and one empty spare per class. */
    uint64_t cache_max = 0, slabs_max = 0, nslabs_max = 0;
    for (unsigned c = 0; c < NS_STATS_CLASSES; c++) {
        uint64_t cap = cache_cap(class_size[c], ic.tbytes), sb = slab_bytes(class_size[c]);
        uint64_t per_slab = sb / class_size[c], n = cap ? (cap + per_slab - 1) / per_slab + 2 : 0;
        cache_max += cap * class_size[c];
        nslabs_max += n;
        slabs_max += n * sb;
    }

    static const char *const how[2] = {"alone", "among 3 waves of threads"};
    int bad = 0;
    for (unsigned k = 0; k < 2; k++) {
        idle_figures f;
        idle_run(&ic, k ? 3 : 0, &f);
        int64_t grew = (int64_t)f.held - (int64_t)f.before;
        st_log(
            "[%s] idle thread %s (NUMASLAB_TCACHE_BYTES=%llu, all 96 classes): caches %.2f MiB (bound %.2f), "
            "%llu slabs of %.2f MiB (bound %llu, %.2f MiB) in %llu SuperSlabs; RSS %+.2f MiB while it sleeps "
            "(%.1f -> %.1f MiB), %.1f MiB after it exited\n",
            prog, how[k], (unsigned long long)ic.tbytes, mib(f.cached), mib(cache_max),
            (unsigned long long)f.slabs, mib(f.slab_bytes), (unsigned long long)nslabs_max, mib(slabs_max),
            (unsigned long long)f.superslabs, (double)grew / (double)MiB, mib(f.before), mib(f.held),
            mib(f.after));
        if (f.cached > cache_max) {
            st_log("[%s] FAIL: an idle thread caches %llu bytes, bound %llu\n", prog,
                   (unsigned long long)f.cached, (unsigned long long)cache_max);
            bad++;
        }
        if (f.slabs > nslabs_max || f.slab_bytes > slabs_max) {
            st_log("[%s] FAIL: an idle thread keeps %llu slabs, %llu bytes; bound %llu, %llu\n", prog,
                   (unsigned long long)f.slabs, (unsigned long long)f.slab_bytes,
                   (unsigned long long)nslabs_max, (unsigned long long)slabs_max);
            bad++;
        }
        /* resident: at most each of its slabs' SuperSlab, whole (a 2 MiB
         * transparent huge page: NUMASLAB_PURGE_PARTIAL=0) */
        if (CHECK_RSS && grew > (int64_t)(f.slabs * 2 * MiB + RSS_SLACK)) {
            st_log("[%s] FAIL: RSS grew by %.2f MiB while one thread idles with %llu slabs\n", prog,
                   (double)grew / (double)MiB, (unsigned long long)f.slabs);
            bad++;
        }
        if (CHECK_RSS && f.after > f.before + RSS_SLACK) {
            st_log("[%s] FAIL: RSS after the idle thread exited is %.2f MiB, %.2f MiB before\n", prog,
                   mib(f.after), mib(f.before));
            bad++;
        }
    }
    pthread_mutex_destroy(&ic.lock);
    pthread_cond_destroy(&ic.cond);
    free(ic.b);
    assert_int_equal(atomic_load(&ic.st.mismatches), 0);
    assert_int_equal(atomic_load(&ic.st.errors), 0);
    assert_int_equal(atomic_load(&ic.st.created), atomic_load(&ic.st.verified));
    assert_int_equal(bad, 0);
}

int main(int argc, char **argv)
{
    st_config_init(&cfg, argc, argv, DEF_ROUNDS, DEF_THREADS, DEF_OPS);
    if (cfg.threads < 2) {
        fprintf(stderr, "%s: needs at least 2 threads\n", prog);
        return 2;
    }
    statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (statm_fd < 0) {
        perror("/proc/self/statm");
        return 1;
    }
    page_bytes = (uint64_t)sysconf(_SC_PAGESIZE);
    ns_stats_t s;
    memset(&s, 0, sizeof s);
    if (ns_stats_get(&s) != 0)
        return 1;
    for (unsigned c = 0; c < NS_STATS_CLASSES; c++)
        class_size[c] = s.classes[c].size;
    st_log("[%s] variant=%s waves=%u threads=%u blocks=%u seed=0x%016" PRIx64 "\n", prog, ST_VARIANT,
           cfg.rounds, cfg.threads, cfg.ops, cfg.seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waves),
        cmocka_unit_test(test_idle_thread),
    };
    int failed = cmocka_run_group_tests_name("stress_threads", tests, NULL, NULL);
    return st_finish(prog, (int)(sizeof tests / sizeof tests[0]), failed);
}
