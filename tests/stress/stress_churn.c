/* stress_churn.c - thousands of short-lived threads, with content checks.
 *
 * Each round starts 4*T short-lived threads (T = --threads, default 16),
 * at most T alive at once (the main thread joins the oldest before it starts
 * another). Each thread allocates a few dozen blocks, frees some of its own,
 * leaves the others in a shared queue for the next generation, and checks
 * and frees (or reallocs and passes on) blocks that earlier, now dead,
 * threads left there. A quarter of the threads also keep blocks in a
 * pthread key of their own, whose destructor checks and frees them and
 * allocates once more: malloc and free from thread destructors, after or
 * before the allocator's own per-thread teardown.
 *
 * While threads come and go, ns_stats_get().threads must never exceed the
 * threads started and not yet joined, plus the main thread. At the end of
 * every round the main thread drains the queue, calls ns_release(), and
 * checks that every block was verified and freed, that `threads` is back
 * to <= 2 (the main thread, + 1 of slack) and that mapped_bytes is below
 * 64 MiB: threads that came and went leaked neither caches nor memory.
 * Defaults: 100 rounds x 64 threads = 6400 threads.
 */
#define _GNU_SOURCE
#include "stress_common.h"

#include <setjmp.h>
#include <stddef.h>
#include <stdarg.h>
#include <cmocka.h>

#if defined(STRESS_TSAN)
#define DEF_ROUNDS 60
#define DEF_THREADS 8
#define DEF_OPS 48
#elif defined(STRESS_ASAN)
#define DEF_ROUNDS 200
#define DEF_THREADS 16
#define DEF_OPS 64
#else
#define DEF_ROUNDS 300
#define DEF_THREADS 16
#define DEF_OPS 64
#endif

#define THREADS_PER_ROUND(t) (4 * (t))
#define QUEUE_CAP 4096
#define KEY_BLOCKS 4
#define MAPPED_LIMIT ((uint64_t)64 << 20)
#define IN_USE_LIMIT ((uint64_t)1 << 20)

static st_config cfg;
static const char *prog = "stress_churn";

static const st_mix cmix = {
    .medium_pm = 80,
    .large_pm = 2,
    .memalign_pm = 30,
    .calloc_pm = 50,
};

typedef struct churn_ctx {
    st_status st;
    st_queue q;
    unsigned round;
    uint64_t seed;
    atomic_ullong inherited;  /* blocks freed by a later generation */
    atomic_ullong in_dtor;    /* blocks freed in key destructors    */
} churn_ctx;

typedef struct churn_thread {
    churn_ctx *cc;
    unsigned gid; /* index of the thread in its round */
    pthread_t th;
    int used;
} churn_thread;

/* What a thread leaves to its pthread-key destructor. */
typedef struct key_payload {
    churn_ctx *cc;
    st_where w;
    tk_rng r;
    size_t n;
    st_block b[KEY_BLOCKS];
} key_payload;

static pthread_key_t payload_key;

static void payload_destructor(void *v)
{
    key_payload *kp = v;
    churn_ctx *cc = kp->cc;
    for (size_t i = 0; i < kp->n; i++) {
        if (st_verify_free(&cc->st, &kp->w, "in key destructor", &kp->b[i]))
            atomic_fetch_add_explicit(&cc->in_dtor, 1, memory_order_relaxed);
    }
    /* Allocate again after (maybe) the allocator's own thread teardown. */
    st_block b;
    if (st_alloc_block(&cc->st, &kp->w, &kp->r, &cmix, st_block_id(cc->round, kp->w.tid, 0xFFFFFFF0u), &b))
        st_verify_free(&cc->st, &kp->w, "allocated in key destructor", &b);
    free(kp);
}

static void *churn_main(void *arg)
{
    churn_thread *ct = arg;
    churn_ctx *cc = ct->cc;
    st_where w = {prog, cc->round, cc->seed, ct->gid};
    tk_rng r;
    tk_rng_seed(&r, st_thread_seed(cc->seed, ct->gid));
    uint64_t serial = 0;

    size_t n = (size_t)tk_range(&r, cfg.ops / 2 + 1, cfg.ops + cfg.ops / 2);
    st_block *own = calloc(n, sizeof *own);
    st_block *got = calloc(n, sizeof *got);
    if (!own || !got) {
        st_log("[%s] out of (system) memory\n", prog);
        abort();
    }
    size_t nown = 0;
    for (size_t i = 0; i < n; i++) {
        if (st_alloc_block(&cc->st, &w, &r, &cmix, st_block_id(cc->round, ct->gid, serial++), &own[nown]))
            nown++;
    }

    /* Blocks of earlier generations (threads that have exited, mostly). */
    size_t ngot = st_queue_pop(&cc->q, got, n);
    for (size_t i = 0; i < ngot; i++) {
        if (!st_verify(&cc->st, &w, "inherited", &got[i]))
            continue;
        if (tk_below(&r, 5) == 0 && got[i].hops < 6 && st_realloc_block(&cc->st, &w, &r, &cmix, &got[i])) {
            got[i].hops++;
            if (st_queue_push(&cc->q, &got[i]))
                continue;
        }
        if (st_verify_free(&cc->st, &w, "inherited", &got[i]))
            atomic_fetch_add_explicit(&cc->inherited, 1, memory_order_relaxed);
    }

    /* Own blocks: some to the key destructor, half freed, the rest left. */
    key_payload *kp = NULL;
    if (tk_below(&r, 4) == 0 && (kp = calloc(1, sizeof *kp)) != NULL) {
        kp->cc = cc;
        kp->w = w;
        tk_rng_seed(&kp->r, tk_rng_next(&r));
        while (kp->n < KEY_BLOCKS && nown > 0)
            kp->b[kp->n++] = own[--nown];
        if (pthread_setspecific(payload_key, kp) != 0)
            abort();
    }
    for (size_t i = 0; i < nown; i++) {
        if (tk_below(&r, 2) == 0) {
            st_verify_free(&cc->st, &w, "own", &own[i]);
        } else {
            own[i].hops++;
            if (!st_queue_push(&cc->q, &own[i]))
                st_verify_free(&cc->st, &w, "own, queue full", &own[i]);
        }
    }
    free(own);
    free(got);
    return NULL;
}

static int stats_threads(uint64_t *threads, uint64_t *mapped, uint64_t *in_use)
{
    ns_stats_t s;
    memset(&s, 0, sizeof s);
    if (ns_stats_get(&s) != 0)
        return -1;
    *threads = s.threads;
    *mapped = s.mapped_bytes;
    *in_use = s.in_use_bytes;
    return 0;
}

static int run_round(unsigned round, churn_thread *slots, uint64_t *max_threads_seen, uint64_t *max_mapped)
{
    churn_ctx cc;
    memset(&cc, 0, sizeof cc);
    st_status_reset(&cc.st);
    if (!st_queue_init(&cc.q, QUEUE_CAP))
        abort();
    cc.round = round;
    cc.seed = st_round_seed(&cfg, round);
    atomic_init(&cc.inherited, 0);
    atomic_init(&cc.in_dtor, 0);
    int ok = 1;

    unsigned total = THREADS_PER_ROUND(cfg.threads), alive = 0;
    for (unsigned i = 0; i < total; i++) {
        churn_thread *ct = &slots[i % cfg.threads];
        if (ct->used) {
            pthread_join(ct->th, NULL);
            ct->used = 0;
            alive--;
            /* Joined threads have run their destructors: only the
             * unjoined ones (and this one) may hold a cache now. */
            uint64_t th = 0, mp = 0, iu = 0;
            if (stats_threads(&th, &mp, &iu) != 0) {
                st_log("[%s] ns_stats_get failed\n", prog);
                ok = 0;
            } else {
                if (th > *max_threads_seen)
                    *max_threads_seen = th;
                if (th > (uint64_t)alive + 1) {
                    st_log("[%s] round %u: ns_stats_get().threads = %" PRIu64 " with only %u threads alive + main\n",
                           prog, round, th, alive);
                    ok = 0;
                }
            }
        }
        ct->cc = &cc;
        ct->gid = i;
        int rc = pthread_create(&ct->th, NULL, churn_main, ct);
        if (rc != 0) {
            st_log("[%s] round %u: pthread_create failed (%d) with %u alive\n", prog, round, rc, alive);
            ok = 0;
            break;
        }
        ct->used = 1;
        alive++;
    }
    for (unsigned t = 0; t < cfg.threads; t++) {
        if (slots[t].used) {
            pthread_join(slots[t].th, NULL);
            slots[t].used = 0;
        }
    }

    /* What the last generation left: check and free from the main thread. */
    st_where w = {prog, round, cc.seed, 0xFFFF};
    st_block b[64];
    size_t n;
    while ((n = st_queue_pop(&cc.q, b, 64)) > 0) {
        for (size_t i = 0; i < n; i++)
            st_verify_free(&cc.st, &w, "left at round end", &b[i]);
    }

    size_t released = ns_release();
    uint64_t th = 0, mp = 0, iu = 0;
    if (stats_threads(&th, &mp, &iu) != 0) {
        st_log("[%s] ns_stats_get failed\n", prog);
        ok = 0;
    }
    if (th > *max_threads_seen)
        *max_threads_seen = th;
    if (mp > *max_mapped)
        *max_mapped = mp;

    unsigned long long created = atomic_load(&cc.st.created);
    unsigned long long verified = atomic_load(&cc.st.verified);
    unsigned long long mism = atomic_load(&cc.st.mismatches);
    unsigned long long errs = atomic_load(&cc.st.errors);
    if (created != verified || mism || errs)
        ok = 0;
    if (th > 2) {
        st_log("[%s] round %u: after all threads were joined and ns_release(), ns_stats_get().threads = %" PRIu64
               " (expected <= 2): thread caches leak\n", prog, round, th);
        ok = 0;
    }
    if (mp >= MAPPED_LIMIT) {
        st_log("[%s] round %u: after ns_release() with nothing allocated, mapped_bytes = %" PRIu64
               " (limit %" PRIu64 ")\n", prog, round, mp, MAPPED_LIMIT);
        ok = 0;
    }
    if (iu >= IN_USE_LIMIT) {
        st_log("[%s] round %u: after every block was freed and ns_release(), in_use_bytes = %" PRIu64
               " (limit %" PRIu64 "): blocks of dead threads' caches still count as in use\n",
               prog, round, iu, IN_USE_LIMIT);
        ok = 0;
    }
    if (cfg.verbose || !ok)
        st_log("[%s] round %u seed=0x%016" PRIx64 ": threads=%u created=%llu verified=%llu inherited=%llu "
               "in_dtor=%llu reallocs=%llu mismatches=%llu errors=%llu; after release: threads=%" PRIu64
               " mapped=%" PRIu64 " KiB in_use=%" PRIu64 " B released=%zu KiB\n",
               prog, round, cc.seed, total, created, verified,
               (unsigned long long)atomic_load(&cc.inherited), (unsigned long long)atomic_load(&cc.in_dtor),
               (unsigned long long)atomic_load(&cc.st.reallocs), mism, errs, th, mp >> 10, iu,
               released >> 10);
    if (!ok)
        st_print_repro(prog, &cfg, round);
    st_queue_destroy(&cc.q);
    return ok;
}

static void test_churn(void **state)
{
    (void)state;
    churn_thread *slots = calloc(cfg.threads, sizeof *slots);
    assert_non_null(slots);
    assert_int_equal(pthread_key_create(&payload_key, payload_destructor), 0);

    double t0 = tk_now();
    uint64_t max_threads = 0, max_mapped = 0;
    unsigned failed_rounds = 0, first_failed = 0, nthreads = 0;
    for (unsigned round = st_round_begin(&cfg); round < st_round_end(&cfg); round++) {
        nthreads += THREADS_PER_ROUND(cfg.threads);
        if (!run_round(round, slots, &max_threads, &max_mapped)) {
            if (failed_rounds++ == 0)
                first_failed = round;
        }
    }
    double dt = tk_now() - t0;
    st_log("[%s] %u rounds, %u threads (<= %u alive) in %.1f s; max stats.threads seen %" PRIu64
           ", max mapped after release %" PRIu64 " KiB; failed rounds: %u\n",
           prog, st_round_end(&cfg) - st_round_begin(&cfg), nthreads, cfg.threads, dt, max_threads,
           max_mapped >> 10, failed_rounds);
    pthread_key_delete(payload_key);
    free(slots);
    if (failed_rounds)
        fail_msg("%u round(s) failed, first: round %u (seed 0x%016" PRIx64 ")", failed_rounds,
                 first_failed, st_round_seed(&cfg, first_failed));
}

int main(int argc, char **argv)
{
    st_config_init(&cfg, argc, argv, DEF_ROUNDS, DEF_THREADS, DEF_OPS);
    st_log("[%s] variant=%s rounds=%u threads=%u (alive at most) ops=%u (blocks per thread) seed=0x%016" PRIx64 "\n",
           prog, ST_VARIANT, cfg.rounds, cfg.threads, cfg.ops, cfg.seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_churn),
    };
    int failed = cmocka_run_group_tests_name("stress_churn", tests, NULL, NULL);
    return st_finish(prog, (int)(sizeof tests / sizeof tests[0]), failed);
}
