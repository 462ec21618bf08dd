/* stress_xthread.c - cross-thread frees with content checks.
 *
 * Each round, T threads (default 16, 8x the cores of the 2-core CI machine)
 * allocate blocks of random sizes and kinds (ns_malloc, ns_calloc,
 * ns_posix_memalign 32..4096; mostly 1..1024 B, some to 64 KiB, a few
 * 256 KiB..4 MiB), fill every byte of the requested size (for one block in
 * four: of the whole ns_malloc_usable_size(), which callers may use too)
 * with a pattern of (block id, size) and post most of them to the mailbox
 * of another thread.
 * Receivers check the whole pattern, then free the block, realloc it (the
 * kept prefix is checked, the block refilled) or pass it on to a third
 * thread. Some blocks stay with their allocating thread for a while.
 * Rounds alternate the routing: random receiver, a ring (t -> t+1), and
 * pairs (t <-> t^1), so that one slab's blocks keep flowing to one thread.
 *
 * At the end of every round all mailboxes are drained and every block was
 * checked and freed exactly once: created == verified, no mismatch, no
 * NULL, every block aligned and with usable size >= requested (checked when
 * allocated and again, by the receiving thread, before it is freed).
 */
#define _GNU_SOURCE
#include "stress_common.h"

#include <setjmp.h>
#include <stddef.h>
#include <stdarg.h>
#include <cmocka.h>

#if defined(STRESS_TSAN)
#define DEF_ROUNDS 25
#define DEF_THREADS 16
#define DEF_OPS 2000
#elif defined(STRESS_ASAN)
#define DEF_ROUNDS 80
#define DEF_THREADS 16
#define DEF_OPS 3000
#else
#define DEF_ROUNDS 200
#define DEF_THREADS 16
#define DEF_OPS 3000
#endif

#define MBOX_CAP 1024   /* blocks per mailbox                       */
#define LOCAL_CAP 64    /* blocks a thread keeps for itself          */
#define BATCH 16        /* blocks taken from a mailbox at once       */

enum route { ROUTE_RANDOM, ROUTE_RING, ROUTE_PAIRS, ROUTE_COUNT };
static const char *const route_name[] = {"random", "ring", "pairs"};

static st_config cfg;
static const char *prog = "stress_xthread";

static const st_mix xmix = {
    .medium_pm = 100, /* 10 %  1 KiB..64 KiB        */
    .large_pm = 1,    /* 0.1 % 256 KiB..4 MiB       */
    .memalign_pm = 30,
    .calloc_pm = 50,
};

typedef struct round_ctx {
    st_status st;
    st_queue *mbox;       /* cfg.threads mailboxes */
    unsigned nthreads;
    unsigned round;
    uint64_t seed;
    enum route route;
    st_barrier bar;
    atomic_ullong forwarded;
    atomic_ullong local_fallback;
} round_ctx;

typedef struct worker {
    round_ctx *rc;
    unsigned tid;
    pthread_t th;
} worker;

static unsigned pick_target(round_ctx *rc, tk_rng *r, unsigned tid)
{
    unsigned n = rc->nthreads;
    switch (rc->route) {
    case ROUTE_RING:
        return (tid + 1) % n;
    case ROUTE_PAIRS:
        return (tid ^ 1u) < n ? (tid ^ 1u) : (tid + 1) % n;
    default: {
        unsigned t = (unsigned)tk_below(r, n - 1);
        return t >= tid ? t + 1 : t;
    }
    }
}

static size_t drain_inbox(round_ctx *rc, tk_rng *r, const st_where *w, int producing, size_t max);

/* Hand b to another thread; if its mailbox is full, check and free here. */
static void send_block(round_ctx *rc, tk_rng *r, const st_where *w, st_block *b)
{
    unsigned t = pick_target(rc, r, w->tid);
    b->hops++;
    /* A full mailbox means its owner is descheduled (16 threads on 2
     * cores): give way a few times before freeing the block here. */
    for (int tries = 0; tries < 16; tries++) {
        if (st_queue_push(&rc->mbox[t], b))
            return;
        drain_inbox(rc, r, w, 0, BATCH);
        sched_yield();
    }
    atomic_fetch_add_explicit(&rc->local_fallback, 1, memory_order_relaxed);
    st_verify_free(&rc->st, w, "sender fallback", b);
}

/* A received block: check it, then free, realloc or forward it. */
static void receive_block(round_ctx *rc, tk_rng *r, const st_where *w, st_block *b, int producing)
{
    if (!st_verify(&rc->st, w, "received", b))
        return; /* reported; leaked on purpose */
    unsigned d = (unsigned)tk_below(r, 100);
    if (d < 15) {
        if (!st_realloc_block(&rc->st, w, r, &xmix, b)) {
            st_verify_free(&rc->st, w, "after failed realloc", b);
            return;
        }
        if (!st_verify(&rc->st, w, "after realloc refill", b))
            return;
        if (producing && d < 8) {
            atomic_fetch_add_explicit(&rc->forwarded, 1, memory_order_relaxed);
            send_block(rc, r, w, b);
            return;
        }
    } else if (producing && d < 25 && b->hops < 4) {
        atomic_fetch_add_explicit(&rc->forwarded, 1, memory_order_relaxed);
        send_block(rc, r, w, b);
        return;
    }
    st_free_checked(&rc->st, b);
}

static size_t drain_inbox(round_ctx *rc, tk_rng *r, const st_where *w, int producing, size_t max)
{
    st_block got[BATCH];
    size_t total = 0;
    while (total < max) {
        size_t want = max - total < BATCH ? max - total : BATCH;
        size_t n = st_queue_pop(&rc->mbox[w->tid], got, want);
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++)
            receive_block(rc, r, w, &got[i], producing);
        total += n;
    }
    return total;
}

static void *worker_main(void *arg)
{
    worker *wk = arg;
    round_ctx *rc = wk->rc;
    st_where w = {prog, rc->round, rc->seed, wk->tid};
    tk_rng r;
    tk_rng_seed(&r, st_thread_seed(rc->seed, wk->tid));
    st_block local[LOCAL_CAP];
    size_t nlocal = 0;
    uint64_t serial = 0;

    st_barrier_wait(&rc->bar); /* start together */

    for (unsigned op = 0; op < cfg.ops; op++) {
        st_block b;
        if (st_alloc_block(&rc->st, &w, &r, &xmix, st_block_id(rc->round, wk->tid, serial++), &b)) {
            unsigned d = (unsigned)tk_below(&r, 16);
            if (d == 0) {
                /* Keep it for a while; evict (check + free) a random one. */
                if (nlocal == LOCAL_CAP) {
                    size_t k = tk_below(&r, LOCAL_CAP);
                    st_verify_free(&rc->st, &w, "local evict", &local[k]);
                    local[k] = local[--nlocal];
                }
                local[nlocal++] = b;
            } else if (d == 1) {
                /* Own free: the same thread, right away. */
                st_verify_free(&rc->st, &w, "own free", &b);
            } else {
                send_block(rc, &r, &w, &b);
            }
        }
        drain_inbox(rc, &r, &w, 1, 2 + tk_below(&r, 6));
        if ((op & 255) == 255)
            sched_yield();
    }

    /* All producers done: nobody posts any more after this barrier. */
    st_barrier_wait(&rc->bar);
    drain_inbox(rc, &r, &w, 0, SIZE_MAX);
    for (size_t i = 0; i < nlocal; i++)
        st_verify_free(&rc->st, &w, "local at end", &local[i]);
    st_barrier_wait(&rc->bar);
    return NULL;
}

static int run_round(unsigned round, st_queue *mbox, worker *wks)
{
    round_ctx rc;
    memset(&rc, 0, sizeof rc);
    st_status_reset(&rc.st);
    rc.mbox = mbox;
    rc.nthreads = cfg.threads;
    rc.round = round;
    rc.seed = st_round_seed(&cfg, round);
    rc.route = (enum route)(round % ROUTE_COUNT);
    st_barrier_init(&rc.bar, cfg.threads);
    atomic_init(&rc.forwarded, 0);
    atomic_init(&rc.local_fallback, 0);

    unsigned started = 0;
    for (unsigned t = 0; t < cfg.threads; t++) {
        wks[t].rc = &rc;
        wks[t].tid = t;
        if (pthread_create(&wks[t].th, NULL, worker_main, &wks[t]) != 0) {
            st_log("[%s] pthread_create failed at thread %u\n", prog, t);
            break;
        }
        started++;
    }
    if (started != cfg.threads) {
        /* Cannot happen in practice; don't leave waiters behind. */
        abort();
    }
    for (unsigned t = 0; t < cfg.threads; t++)
        pthread_join(wks[t].th, NULL);

    size_t left = 0;
    for (unsigned t = 0; t < cfg.threads; t++)
        left += st_queue_count(&mbox[t]);

    unsigned long long created = atomic_load(&rc.st.created);
    unsigned long long verified = atomic_load(&rc.st.verified);
    unsigned long long mism = atomic_load(&rc.st.mismatches);
    unsigned long long errs = atomic_load(&rc.st.errors);
    int ok = created == verified && mism == 0 && errs == 0 && left == 0;
    if (cfg.verbose || !ok)
        st_log("[%s] round %u route=%s seed=0x%016" PRIx64 ": created=%llu verified=%llu reallocs=%llu "
               "forwarded=%llu fallback=%llu MiB=%llu mismatches=%llu errors=%llu left=%zu\n",
               prog, round, route_name[rc.route], rc.seed, created, verified,
               (unsigned long long)atomic_load(&rc.st.reallocs),
               (unsigned long long)atomic_load(&rc.forwarded),
               (unsigned long long)atomic_load(&rc.local_fallback),
               (unsigned long long)(atomic_load(&rc.st.bytes) >> 20), mism, errs, left);
    if (!ok) {
        if (created != verified)
            st_log("[%s] round %u: %llu blocks created but %llu verified and freed\n", prog, round,
                   created, verified);
        st_print_repro(prog, &cfg, round);
    }
    st_barrier_destroy(&rc.bar);
    return ok;
}

static void test_xthread(void **state)
{
    (void)state;
    assert_true(cfg.threads >= 2);
    st_queue *mbox = calloc(cfg.threads, sizeof *mbox);
    worker *wks = calloc(cfg.threads, sizeof *wks);
    assert_non_null(mbox);
    assert_non_null(wks);
    for (unsigned t = 0; t < cfg.threads; t++)
        assert_true(st_queue_init(&mbox[t], MBOX_CAP));

    double t0 = tk_now();
    unsigned failed_rounds = 0, first_failed = 0;
    for (unsigned round = st_round_begin(&cfg); round < st_round_end(&cfg); round++) {
        if (!run_round(round, mbox, wks)) {
            if (failed_rounds++ == 0)
                first_failed = round;
        }
    }
    double dt = tk_now() - t0;
    ns_stats_t s;
    assert_int_equal(ns_stats_get(&s), 0);
    st_log("[%s] %u rounds x %u threads x %u ops in %.1f s; failed rounds: %u; mapped %llu MiB, in use %llu KiB\n",
           prog, st_round_end(&cfg) - st_round_begin(&cfg), cfg.threads, cfg.ops, dt, failed_rounds,
           (unsigned long long)(s.mapped_bytes >> 20), (unsigned long long)(s.in_use_bytes >> 10));

#if defined(STRESS_TSAN) || defined(STRESS_ASAN)
    /* these cores run with two fake nodes (CMakeLists.txt, NS_FAKE_NODES):
     * a run that did not take the cross-node paths proves nothing about
     * them (hwloc not loaded, say), so it fails instead of passing */
    uint64_t away = 0;
    for (int n = 0; n < s.nodes && n < 64; n++)
        away += s.node[n].remote_blocks;
    if (s.nodes != 2 || away == 0)
        fail_msg("fake nodes: %d node(s), %llu blocks freed across nodes: the cross-node paths did not run",
                 s.nodes, (unsigned long long)away);
#endif
    for (unsigned t = 0; t < cfg.threads; t++)
        st_queue_destroy(&mbox[t]);
    free(mbox);
    free(wks);
    if (failed_rounds)
        fail_msg("%u round(s) failed, first: round %u (seed 0x%016" PRIx64 ")", failed_rounds,
                 first_failed, st_round_seed(&cfg, first_failed));
}

int main(int argc, char **argv)
{
    st_config_init(&cfg, argc, argv, DEF_ROUNDS, DEF_THREADS, DEF_OPS);
    if (cfg.threads < 2) {
        fprintf(stderr, "%s: needs at least 2 threads\n", prog);
        return 2;
    }
    st_log("[%s] variant=%s rounds=%u threads=%u ops=%u seed=0x%016" PRIx64 "\n", prog, ST_VARIANT,
           cfg.rounds, cfg.threads, cfg.ops, cfg.seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xthread),
    };
    int failed = cmocka_run_group_tests_name("stress_xthread", tests, NULL, NULL);
    return st_finish(prog, (int)(sizeof tests / sizeof tests[0]), failed);
}
