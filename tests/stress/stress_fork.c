/* stress_fork.c - fork while other threads allocate, with content checks.
 *
 * T background threads (default 8) allocate, check, realloc and free blocks
 * without pause, pass blocks to each other through a shared queue and hand
 * some to the main thread. The main thread forks repeatedly (--rounds,
 * default 50). Before each fork it allocates blocks of its own and takes
 * blocks the background threads allocated. The child (which has only the
 * forking thread):
 *   - checks the contents of all those blocks and frees them (including
 *     blocks of threads that do not exist in the child),
 *   - allocates, checks, reallocs and frees new blocks,
 *   - starts 4 threads that do the same and free each other's blocks,
 *   - calls ns_release() and exits with _exit(0), or non-zero on any
 *     mismatch or error; a crash or a hang (killed after CHILD_TIMEOUT s)
 *     fails the test too.
 * The parent then checks and frees the same blocks in its own copy of the
 * address space. At the end the background threads stop and every block
 * they created must have been checked and freed.
 *
 * The child touches only memory and locks that the forking thread owned
 * at fork time, never a lock a background thread may have held: what it
 * tests is the allocator's own fork handling.
 */
#define _GNU_SOURCE
#include "stress_common.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <setjmp.h>
#include <stddef.h>
#include <stdarg.h>
#include <cmocka.h>

#if defined(STRESS_TSAN)
#define DEF_ROUNDS 40
#define DEF_THREADS 8
#define DEF_OPS 300
#elif defined(STRESS_ASAN)
#define DEF_ROUNDS 60
#define DEF_THREADS 8
#define DEF_OPS 1000
#else
#define DEF_ROUNDS 80
#define DEF_THREADS 8
#define DEF_OPS 2000
#endif

#define CHILD_THREADS 4
#define CHILD_TIMEOUT 60    /* seconds before a child counts as hung */
#define SLOTS 64            /* working set of a background thread    */
#define MAIN_OWN 48         /* blocks the main thread allocates per fork */
#define MAIN_TAKE 64        /* blocks it takes from background threads */
#define QCAP 1024

static st_config cfg;
static const char *prog = "stress_fork";

static const st_mix fmix = {
    .medium_pm = 100,
    .large_pm = 3,
    .memalign_pm = 40,
    .calloc_pm = 50,
};

/* ------------------------------------------------------------ parent side */

typedef struct bg_ctx {
    st_status st;
    st_queue share;     /* between background threads */
    st_queue to_main;   /* background -> main thread  */
    atomic_int stop;
    uint64_t seed;
    atomic_ullong ops;
    atomic_uint running; /* background threads past their first burst */
} bg_ctx;

typedef struct bg_thread {
    bg_ctx *bc;
    unsigned tid;
    pthread_t th;
} bg_thread;

static void *bg_main(void *arg)
{
    bg_thread *bt = arg;
    bg_ctx *bc = bt->bc;
    st_where w = {prog, 0, bc->seed, bt->tid};
    tk_rng r;
    tk_rng_seed(&r, st_thread_seed(bc->seed, bt->tid));
    st_block slot[SLOTS];
    memset(slot, 0, sizeof slot);
    uint64_t serial = 0, ops = 0;

    int first = 1;
    while (!atomic_load_explicit(&bc->stop, memory_order_acquire)) {
        if (first && ops >= 64) {
            atomic_fetch_add_explicit(&bc->running, 1, memory_order_release);
            first = 0;
        }
        for (int burst = 0; burst < 64; burst++, ops++) {
            size_t k = tk_below(&r, SLOTS);
            st_block *b = &slot[k];
            if (b->p == NULL) {
                /* The id's round field counts bursts so ids stay unique. */
                st_alloc_block(&bc->st, &w, &r, &fmix, st_block_id((unsigned)(ops >> 20), bt->tid, serial++), b);
                continue;
            }
            if (!st_verify(&bc->st, &w, "background", b)) {
                b->p = NULL; /* leaked on purpose */
                continue;
            }
            unsigned d = (unsigned)tk_below(&r, 100);
            if (d < 40) {
                st_free_checked(&bc->st, b);
            } else if (d < 55) {
                if (!st_realloc_block(&bc->st, &w, &r, &fmix, b))
                    st_verify_free(&bc->st, &w, "after failed realloc", b);
            } else if (d < 75) {
                b->hops++;
                if (st_queue_push(&bc->share, b))
                    b->p = NULL;
            } else if (d < 80) {
                b->hops++;
                if (st_queue_push(&bc->to_main, b))
                    b->p = NULL;
            } else {
                st_block in[4];
                size_t n = st_queue_pop(&bc->share, in, 4);
                for (size_t i = 0; i < n; i++)
                    st_verify_free(&bc->st, &w, "shared", &in[i]);
            }
        }
    }
    for (size_t k = 0; k < SLOTS; k++)
        if (slot[k].p)
            st_verify_free(&bc->st, &w, "background at stop", &slot[k]);
    atomic_fetch_add_explicit(&bc->ops, ops, memory_order_relaxed);
    return NULL;
}

/* ------------------------------------------------------------ child side */

typedef struct child_ctx {
    st_status st;
    st_queue q;
    uint64_t seed;
    unsigned fork_no;
} child_ctx;

typedef struct child_thread {
    child_ctx *cx;
    unsigned tid;
    pthread_t th;
} child_thread;

/* Allocate, check, realloc and free: a working set of 32 blocks. */
static void child_work(child_ctx *cx, st_where *w, tk_rng *r, unsigned ops, int share)
{
    st_block set[32];
    memset(set, 0, sizeof set);
    uint64_t serial = 0;
    for (unsigned op = 0; op < ops; op++) {
        st_block *b = &set[tk_below(r, 32)];
        if (b->p == NULL) {
            st_alloc_block(&cx->st, w, r, &fmix, st_block_id(cx->fork_no, w->tid, serial++), b);
            continue;
        }
        if (!st_verify(&cx->st, w, "child", b)) {
            b->p = NULL;
            continue;
        }
        unsigned d = (unsigned)tk_below(r, 10);
        if (d < 5) {
            st_free_checked(&cx->st, b);
        } else if (d < 7) {
            if (!st_realloc_block(&cx->st, w, r, &fmix, b))
                st_verify_free(&cx->st, w, "child, failed realloc", b);
        } else if (share) {
            b->hops++;
            if (st_queue_push(&cx->q, b))
                b->p = NULL;
            st_block in[2];
            size_t n = st_queue_pop(&cx->q, in, 2);
            for (size_t i = 0; i < n; i++)
                st_verify_free(&cx->st, w, "child, from another child thread", &in[i]);
        }
    }
    for (size_t k = 0; k < 32; k++)
        if (set[k].p)
            st_verify_free(&cx->st, w, "child at end", &set[k]);
}

static void *child_thread_main(void *arg)
{
    child_thread *ct = arg;
    st_where w = {prog, ct->cx->fork_no, ct->cx->seed, 100 + ct->tid};
    tk_rng r;
    tk_rng_seed(&r, st_thread_seed(ct->cx->seed, 100 + ct->tid));
    child_work(ct->cx, &w, &r, cfg.ops / 2 + 1, 1);
    return NULL;
}

static int child_main(unsigned fork_no, uint64_t seed, st_block *blocks, size_t n)
{
    /* CMocka's handlers would report a crash and carry on running the
     * test program in the child: die as the signal says instead. */
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
    alarm(CHILD_TIMEOUT + 30); /* in case the parent is gone */

    child_ctx cx;
    memset(&cx, 0, sizeof cx);
    st_status_reset(&cx.st);
    cx.seed = tk_mix64(seed ^ 0xC41D);
    cx.fork_no = fork_no;
    st_where w = {prog, fork_no, seed, 99};
    tk_rng r;
    tk_rng_seed(&r, cx.seed);

    /* 1. The parent's blocks, as they were at fork time. */
    for (size_t i = 0; i < n; i++)
        st_verify_free(&cx.st, &w, "child, parent's block", &blocks[i]);

    /* 2. Single-threaded work in the child. */
    child_work(&cx, &w, &r, cfg.ops, 0);

    /* 3. New threads in the child, freeing each other's blocks. */
    if (!st_queue_init(&cx.q, QCAP))
        return 3;
    child_thread ct[CHILD_THREADS];
    unsigned started = 0;
    for (unsigned t = 0; t < CHILD_THREADS; t++) {
        ct[t].cx = &cx;
        ct[t].tid = t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
#if defined(STRESS_TSAN)
        /* TSan still has the parent's threads in its registry and dies
         * ("dup thread with used id") when glibc reuses one of their cached
         * stacks, hence pthread_t, for a new thread: give a fresh stack. */
        size_t stsz = (size_t)1 << 20;
        void *stk = mmap(NULL, stsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (stk == MAP_FAILED || pthread_attr_setstack(&attr, stk, stsz) != 0) {
            st_log("[%s] child of fork %u: no stack for a thread\n", prog, fork_no);
            st_error(&cx.st);
            break;
        }
#endif
        int rc = pthread_create(&ct[t].th, &attr, child_thread_main, &ct[t]);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            st_log("[%s] child of fork %u: pthread_create failed\n", prog, fork_no);
            st_error(&cx.st);
            break;
        }
        started++;
    }
    for (unsigned t = 0; t < started; t++)
        pthread_join(ct[t].th, NULL);
    st_block left[16];
    size_t k;
    while ((k = st_queue_pop(&cx.q, left, 16)) > 0)
        for (size_t i = 0; i < k; i++)
            st_verify_free(&cx.st, &w, "child, left in queue", &left[i]);

    /* 4. Give memory back and look at the numbers once. */
    ns_release();
    ns_stats_t s;
    if (ns_stats_get(&s) != 0) {
        st_log("[%s] child of fork %u: ns_stats_get failed\n", prog, fork_no);
        st_error(&cx.st);
    }

    unsigned long long created = atomic_load(&cx.st.created) + n;
    unsigned long long verified = atomic_load(&cx.st.verified);
    unsigned long long mism = atomic_load(&cx.st.mismatches);
    unsigned long long errs = atomic_load(&cx.st.errors);
    if (created != verified || mism || errs) {
        st_log("[%s] child of fork %u: created=%llu (incl. %zu from the parent) verified=%llu mismatches=%llu errors=%llu\n",
               prog, fork_no, created, n, verified, mism, errs);
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ the test */

/* Wait for pid; 0 if it exited with status 0, else -1 (reported). */
static int wait_child(pid_t pid, unsigned fork_no, double *elapsed)
{
    double t0 = tk_now();
    int status = 0;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            st_log("[%s] fork %u: waitpid: %s\n", prog, fork_no, strerror(errno));
            return -1;
        }
        if (tk_now() - t0 > CHILD_TIMEOUT) {
            st_log("[%s] fork %u: child %d still running after %d s: HUNG (deadlock after fork?); killing it\n",
                   prog, fork_no, (int)pid, CHILD_TIMEOUT);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    *elapsed = tk_now() - t0;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        st_log("[%s] fork %u: child %d exited with status %d\n", prog, fork_no, (int)pid, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        st_log("[%s] fork %u: child %d killed by signal %d (%s)\n", prog, fork_no, (int)pid, WTERMSIG(status),
               strsignal(WTERMSIG(status)));
    return -1;
}

static void test_fork(void **state)
{
    (void)state;
    bg_ctx bc;
    memset(&bc, 0, sizeof bc);
    st_status_reset(&bc.st);
    assert_true(st_queue_init(&bc.share, QCAP));
    assert_true(st_queue_init(&bc.to_main, QCAP));
    atomic_init(&bc.stop, 0);
    atomic_init(&bc.ops, 0);
    atomic_init(&bc.running, 0);
    bc.seed = st_round_seed(&cfg, 0x10000);

    bg_thread *bts = calloc(cfg.threads, sizeof *bts);
    assert_non_null(bts);
    for (unsigned t = 0; t < cfg.threads; t++) {
        bts[t].bc = &bc;
        bts[t].tid = t;
        assert_int_equal(pthread_create(&bts[t].th, NULL, bg_main, &bts[t]), 0);
    }

    /* Fork only once every background thread is past its start-up (which
     * may use the sanitizers' or libc's malloc, whose locks a child would
     * inherit): from then on they call nothing but ns_* and pthread locks. */
    while (atomic_load_explicit(&bc.running, memory_order_acquire) < cfg.threads)
        sched_yield();

    st_status mst; /* the main thread's own blocks */
    st_status_reset(&mst);
    st_block blocks[MAIN_OWN + MAIN_TAKE];
    unsigned failed = 0, first_failed = 0;
    double t0 = tk_now(), child_max = 0;
    for (unsigned f = st_round_begin(&cfg); f < st_round_end(&cfg); f++) {
        uint64_t seed = st_round_seed(&cfg, f);
        st_where w = {prog, f, seed, 0xFFFF};
        tk_rng r;
        tk_rng_seed(&r, seed);
        size_t n = 0;
        for (unsigned i = 0; i < MAIN_OWN; i++)
            if (st_alloc_block(&mst, &w, &r, &fmix, st_block_id(f, 0xFFFF, i), &blocks[n]))
                n++;
        size_t own = n;
        n += st_queue_pop(&bc.to_main, blocks + n, MAIN_TAKE);
        /* Let the background threads get going again before forking. */
        if (tk_below(&r, 2))
            sched_yield();

        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0)
            _exit(child_main(f, seed, blocks, n));
        int ok = 1;
        double el = 0;
        if (pid < 0) {
            st_log("[%s] fork %u: fork failed: %s\n", prog, f, strerror(errno));
            ok = 0;
        } else if (wait_child(pid, f, &el) != 0) {
            ok = 0;
        }
        if (el > child_max)
            child_max = el;

        /* The parent's copies are untouched by whatever the child did. */
        unsigned long long m0 = atomic_load(&mst.mismatches) + atomic_load(&bc.st.mismatches);
        for (size_t i = 0; i < n; i++)
            st_verify_free(i < own ? &mst : &bc.st, &w, "parent after fork", &blocks[i]);
        if (atomic_load(&mst.mismatches) + atomic_load(&bc.st.mismatches) != m0)
            ok = 0;
        if (!ok) {
            st_print_repro(prog, &cfg, f);
            if (failed++ == 0)
                first_failed = f;
        } else if (cfg.verbose) {
            st_log("[%s] fork %u ok (%zu blocks, child %.3f s)\n", prog, f, n, el);
        }
    }
    double dt = tk_now() - t0;

    atomic_store_explicit(&bc.stop, 1, memory_order_release);
    for (unsigned t = 0; t < cfg.threads; t++)
        pthread_join(bts[t].th, NULL);
    st_where w = {prog, 0, bc.seed, 0xFFFF};
    st_block b[64];
    size_t k;
    while ((k = st_queue_pop(&bc.share, b, 64)) > 0)
        for (size_t i = 0; i < k; i++)
            st_verify_free(&bc.st, &w, "shared at end", &b[i]);
    while ((k = st_queue_pop(&bc.to_main, b, 64)) > 0)
        for (size_t i = 0; i < k; i++)
            st_verify_free(&bc.st, &w, "to main at end", &b[i]);

    unsigned long long bcreated = atomic_load(&bc.st.created), bverified = atomic_load(&bc.st.verified);
    unsigned long long mcreated = atomic_load(&mst.created), mverified = atomic_load(&mst.verified);
    unsigned long long mism = atomic_load(&bc.st.mismatches) + atomic_load(&mst.mismatches);
    unsigned long long errs = atomic_load(&bc.st.errors) + atomic_load(&mst.errors);
    st_log("[%s] %u forks with %u background threads in %.1f s (slowest child %.2f s); background: %llu ops, "
           "created=%llu verified=%llu; main: created=%llu verified=%llu; mismatches=%llu errors=%llu; failed forks: %u\n",
           prog, st_round_end(&cfg) - st_round_begin(&cfg), cfg.threads, dt, child_max,
           (unsigned long long)atomic_load(&bc.ops), bcreated, bverified, mcreated, mverified, mism, errs, failed);

    st_queue_destroy(&bc.share);
    st_queue_destroy(&bc.to_main);
    free(bts);
    assert_int_equal(mism, 0);
    assert_int_equal(errs, 0);
    assert_int_equal(bcreated, bverified);
    assert_int_equal(mcreated, mverified);
    if (failed)
        fail_msg("%u fork(s) failed, first: fork %u (seed 0x%016" PRIx64 ")", failed, first_failed,
                 st_round_seed(&cfg, first_failed));
}

int main(int argc, char **argv)
{
    st_config_init(&cfg, argc, argv, DEF_ROUNDS, DEF_THREADS, DEF_OPS);
    st_log("[%s] variant=%s rounds=%u (forks) threads=%u (background) ops=%u (per child) seed=0x%016" PRIx64 "\n",
           prog, ST_VARIANT, cfg.rounds, cfg.threads, cfg.ops, cfg.seed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork),
    };
    int failed = cmocka_run_group_tests_name("stress_fork", tests, NULL, NULL);
    return st_finish(prog, (int)(sizeof tests / sizeof tests[0]), failed);
}
