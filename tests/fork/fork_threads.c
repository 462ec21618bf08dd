/* fork_threads.c - fork() while many threads allocate, three generations.
 *
 * FORK_THREADS (default 16) load threads allocate, check, realloc and free
 * blocks of 16 B .. 64 KiB and some of 300 KiB .. 1.5 MiB, and hand blocks
 * to each other (fork_common.h, fk_churn_main).  Every block is filled with
 * a pattern derived from its address, owner and serial, checked byte for
 * byte before every use and before it is freed.
 *
 * The load threads run at nice 15: the forked children (nice 0, like the
 * main thread) then get most of the 2 cores when they need them, and the
 * run makes many forks instead of a handful, each of which still finds the
 * load threads anywhere in malloc/free (running or preempted).
 *
 * The main thread keeps 64 blocks of its own; before each fork it replaces
 * some and takes a few that load threads handed over.  Then it forks:
 *   generation 1 (the child; only the forking thread exists):
 *     - checks every block the forking thread holds (its own and the
 *       handed-over ones, allocated by threads that do not exist in the
 *       child) and frees them;
 *     - starts 2 threads that allocate and free in every size class (until
 *       generation 2 exists: the fork below happens while they work);
 *     - allocates, checks, reallocs and frees a block of every size class
 *       (16 B .. 256 KiB, large blocks up to 4 MiB: fk_exercise);
 *     - allocates 8 blocks and, while its 2 threads still run, forks
 *   generation 2: checks and frees those 8 blocks, runs fk_exercise,
 *     allocates 8 blocks and forks
 *   generation 3: checks and frees them, runs fk_exercise, exits.
 * Every generation waits for the next, checks its exit status and its own
 * 8 blocks, and exits 0 only if all was well.  The parent checks all its
 * blocks after each fork, waits for the child (exit status 0; up to 2
 * children of the main thread are alive at a time), and at the
 * end checks and frees everything (its blocks, the load threads' blocks,
 * the hand-over queue).  A hang anywhere (a child that deadlocks in malloc
 * after fork, say) is caught by the watchdog.
 */
#define _GNU_SOURCE
#include "fork_common.h"

#define MAIN_SLOTS 64
#define CARRY 8
#define LAST_GEN 3
#define HELPERS 2
#define INFLIGHT 2 /* generation-1 children alive at a time */

static atomic_int stop;
static _Atomic uint64_t forks_done;
static atomic_int gen1_forked; /* in generation 1: generation 2 exists */

/* ------------------------------------------------------------ children */

typedef struct helper {
    pthread_t th;
    uint32_t id;
    uint64_t seed;
} helper;

static void *helper_main(void *arg)
{
    helper *h = arg;
    char who[48];
    snprintf(who, sizeof who, "generation 1 thread %u", h->id);
    tk_rng r;
    tk_rng_seed(&r, h->seed);
    do
        fk_exercise(who, &r, 200 + h->id);
    while (!atomic_load(&gen1_forked));
    return NULL;
}

/* Generation gen (1..LAST_GEN) of a fork: checks and frees the n blocks it
 * inherited, then works as described at the top.  Never returns. */
__attribute__((noreturn)) static void gen_main(int gen, fk_block *inh, size_t n, uint64_t seed)
{
    fk_child_begin();
    char who[48];
    snprintf(who, sizeof who, "generation %d child", gen);
    for (size_t i = 0; i < n; i++)
        fk_free(who, &inh[i]);

    tk_rng r;
    tk_rng_seed(&r, seed);
    helper h[HELPERS];
    if (gen == 1)
        for (unsigned k = 0; k < HELPERS; k++) {
            h[k].id = k;
            h[k].seed = tk_rng_next(&r);
            fk_thread_start(&h[k].th, helper_main, &h[k]);
        }

    fk_exercise(who, &r, 10 + (uint32_t)gen);

    if (gen < LAST_GEN) {
        fk_block carry[CARRY];
        size_t nc = 0;
        for (unsigned k = 0; k < CARRY; k++) {
            size_t sz = k == CARRY - 1 ? 300 * FK_KIB + tk_below(&r, 4096) : fk_pick_size(&r);
            if (fk_alloc(who, &carry[nc], sz, k, 20 + (uint32_t)gen, k))
                nc++;
        }
        uint64_t s2 = tk_rng_next(&r);
        pid_t pid = fork();
        if (pid == 0)
            gen_main(gen + 1, carry, nc, s2);
        atomic_store(&gen1_forked, 1);
        if (pid < 0) {
            fk_fail("%s: fork: %s\n", who, strerror(errno));
        } else {
            char what[48];
            snprintf(what, sizeof what, "generation %d child", gen + 1);
            fk_wait_ok(pid, what);
        }
        for (size_t i = 0; i < nc; i++)
            fk_free(who, &carry[i]);
    }
    if (gen == 1)
        for (unsigned k = 0; k < HELPERS; k++)
            fk_thread_join(h[k].th);
    _exit(fk_nfail() ? 1 : 0);
}

/* ------------------------------------------------------------ main */

int main(void)
{
    fk_configure("fork_threads", 16);
    fk_watchdog(NULL);
    if (!fk_check_malloc_origin())
        return 1;

    unsigned nthreads = (unsigned)fk_cfg.threads;
    static fk_churn ch[1024];
    fk_churn_start(ch, nthreads, &stop, 15);

    tk_rng r;
    tk_rng_seed(&r, fk_cfg.seed);
    fk_block mine[MAIN_SLOTS];
    memset(mine, 0, sizeof mine);
    uint32_t serial = 0;
    const char *who = "main thread";
    uint64_t taken = 0;
    pid_t inflight[INFLIGHT];
    size_t ninfl = 0;

    /* at least one fork, however long the start took: on a loaded machine
     * the 16 load threads (nice 15) may take the whole FORK_SECONDS to be
     * scheduled once, and fk_churn_start waits for all of them */
    for (int first = 1; fk_nfail() == 0 && (first || fk_running(atomic_load(&forks_done))); first = 0) {
        /* replace some of the main thread's blocks */
        for (int k = 0; k < 12; k++) {
            fk_block *b = &mine[tk_below(&r, MAIN_SLOTS)];
            fk_free(who, b);
            fk_alloc(who, b, fk_pick_size(&r), (unsigned)tk_below(&r, 4), 0, serial++);
        }
        /* take blocks the load threads handed over */
        fk_block in[8];
        size_t nin = fk_q_pop(in, 8);
        for (size_t i = 0; i < nin; i++) {
            fk_block *b = &mine[tk_below(&r, MAIN_SLOTS)];
            fk_free(who, b);
            if (fk_check(who, &in[i])) {
                *b = in[i];
                taken++;
            }
        }
        /* what the child inherits: the live blocks, packed */
        fk_block inh[MAIN_SLOTS];
        size_t ninh = 0;
        for (size_t k = 0; k < MAIN_SLOTS; k++)
            if (mine[k].p)
                inh[ninh++] = mine[k];

        uint64_t cseed = tk_rng_next(&r);
        pid_t pid = fork();
        if (pid == 0)
            gen_main(1, inh, ninh, cseed);
        if (pid < 0) {
            fk_fail("main thread: fork: %s\n", strerror(errno));
            break;
        }
        for (size_t k = 0; k < MAIN_SLOTS; k++)
            if (mine[k].p)
                fk_check("main thread after fork", &mine[k]);
        /* up to INFLIGHT children at a time (they run on both cores) */
        inflight[ninfl++] = pid;
        if (ninfl == INFLIGHT) {
            if (fk_wait_ok(inflight[0], "generation 1 child")) {
                atomic_fetch_add(&forks_done, 1);
                fk_progress();
            }
            memmove(inflight, inflight + 1, sizeof inflight[0] * --ninfl);
        }
    }
    for (size_t i = 0; i < ninfl; i++)
        if (fk_wait_ok(inflight[i], "generation 1 child")) {
            atomic_fetch_add(&forks_done, 1);
            fk_progress();
        }

    atomic_store(&stop, 1);
    uint64_t ops = fk_churn_join(ch, nthreads);
    fk_q_drain("main thread at the end");
    for (size_t k = 0; k < MAIN_SLOTS; k++)
        fk_free("main thread at the end", &mine[k]);

    uint64_t forks = atomic_load(&forks_done);
    if (forks == 0)
        fk_fail("no fork completed\n");
    fk_log("%s: %" PRIu64 " forks (x%d generations), %u load threads, %" PRIu64 " operations, %" PRIu64
           " handed-over blocks inherited, %.1f s, seed 0x%" PRIx64 "\n",
           fk_nfail() ? "FAIL" : "ok", forks, LAST_GEN, nthreads, ops, taken, fk_elapsed(), fk_cfg.seed);
    return fk_nfail() ? 1 : 0;
}
