/* idle_fork.c - fork() while the release thread exists, and the child gives
 * back too.
 *
 * The parent starts its release thread (it allocates and frees 32 MiB of
 * small blocks and checks that a thread named numaslab-decay appeared),
 * then runs a load thread that allocates and frees small heaps and large
 * blocks without pause, so that the release thread is busy (ctest sets
 * NUMASLAB_DECAY_MS=50: a pass every 25 ms, taking the allocator's locks)
 * when the main thread forks.  It forks FORK_COUNT times (default 5),
 * one child at a time.  Each child:
 *   - has one thread (the parent's release thread is not inherited);
 *   - finds a block of the parent intact;
 *   - allocates and frees 64 MiB of small blocks and 16 large ones;
 *   - within 3 s has a release thread of its own (restarted lazily) and
 *     an RSS at most 8 MiB above the one it started with;
 *   - returns from main with that thread alive, and exits with status 0.
 * The parent checks each child's status, then that it still works
 * (allocates and frees again) and still has its release thread.  Under the
 * watchdog of tests/fork (fork_common.h): a hang fails the test with
 * every thread's state and, with gdb, their backtraces.
 */
#define _GNU_SOURCE
#include "../fork/fork_common.h"
#include "idle_common.h"

static atomic_int stop;

static void *load(void *arg)
{
    (void)arg;
    tk_rng r;
    tk_rng_seed(&r, 99);
    size_t cap;
    void **v = id_slots(4 * ID_MIB, 16, &cap);
    while (!atomic_load(&stop)) {
        void *big[4];
        for (int i = 0; i < 4; i++) {
            size_t sz = (size_t)tk_range(&r, 300 << 10, 6 << 20);
            big[i] = malloc(sz);
            if (big[i])
                memset(big[i], 3, 4096);
        }
        size_t n = id_fill(v, cap, 4 * ID_MIB, 16, 8192, tk_rng_next(&r));
        id_free_all(v, n);
        for (int i = 0; i < 4; i++)
            free(big[i]);
    }
    munmap(v, cap * sizeof *v);
    return NULL;
}

/* The child: one thread, the parent's block intact, a heap freed and given
 * back by a release thread of its own; exit status 0 when all holds. */
static int child(const unsigned char *mark, size_t mark_len)
{
    id_prog = "idle_fork child";
    int ours, threads = id_threads(&ours);
    ID_CHECK(threads == 1, "after fork: %d thread(s) (1)", threads);
    size_t bad = 0;
    for (size_t i = 0; i < mark_len; i++)
        bad += mark[i] != (unsigned char)(i * 7 + 1);
    ID_CHECK(bad == 0, "the parent's block is intact (%zu bytes differ)", bad);
    size_t cap;
    void **v = id_slots(80 * ID_MIB, 64, &cap);
    uint64_t base = id_rss_kib();
    size_t n = id_fill(v, cap, 64 * ID_MIB, 64, 4096, (uint64_t)getpid());
    void *big[16];
    for (int i = 0; i < 16; i++) {
        big[i] = malloc((size_t)(i + 1) << 18);
        if (big[i])
            memset(big[i], 5, (size_t)(i + 1) << 18);
    }
    for (int i = 0; i < 16; i++)
        free(big[i]);
    id_free_all(v, n);
    uint64_t at, rss = id_wait_rss(base + 8 * 1024, id_now_ms(), 3000, &at);
    threads = id_threads(&ours);
    ID_CHECK(rss <= base + 8 * 1024, "64 MiB and 16 large blocks freed: RSS %.1f MiB above the start %.2f s later "
             "(at most 8 within 3 s)", ((double)rss - (double)base) / 1024.0, at / 1000.0);
    ID_CHECK(threads == 2 && ours == 1, "%d threads, %d named " ID_THREAD_NAME " (2 and 1)", threads, ours);
    return id_failures ? 1 : 0;       /* from main: exit() with the thread alive */
}

int main(void)
{
    fk_configure("idle_fork", 1);
    id_prog = "idle_fork";
    fk_watchdog(NULL);
    if (!fk_check_malloc_origin())
        return 1;
    long rounds = fk_cfg.count > 0 ? fk_cfg.count : 5;

    size_t cap;
    void **v = id_slots(40 * ID_MIB, 64, &cap);
    size_t n = id_fill(v, cap, 32 * ID_MIB, 64, 4096, 1);
    id_free_all(v, n);
    int ours = 0, threads = 0;
    for (int i = 0; i < 100 && ours != 1; i++) {
        id_sleep_ms(10);
        threads = id_threads(&ours);
    }
    ID_CHECK(ours == 1, "the parent's release thread runs (%d threads, %d named " ID_THREAD_NAME ")", threads, ours);

    size_t mark_len = 100000;
    unsigned char *mark = malloc(mark_len);
    for (size_t i = 0; i < mark_len; i++)
        mark[i] = (unsigned char)(i * 7 + 1);
    pthread_t th;
    fk_thread_start(&th, load, NULL);
    id_sleep_ms(100);
    for (long r = 0; r < rounds; r++) {
        pid_t pid = fork();
        if (pid < 0) {
            fk_fail("fork: %s\n", strerror(errno));
            break;
        }
        if (pid == 0)
            return child(mark, mark_len);
        char what[64];
        snprintf(what, sizeof what, "child %ld", r + 1);
        ID_CHECK(fk_wait_ok(pid, what), "%s exited with status 0", what);
        fk_progress();
    }
    atomic_store(&stop, 1);
    fk_thread_join(th);
    n = id_fill(v, cap, 32 * ID_MIB, 64, 4096, 2);
    id_free_all(v, n);
    free(mark);
    threads = id_threads(&ours);
    ID_CHECK(ours == 1, "after %ld forks the parent still works and has its release thread (%d threads, %d named "
             ID_THREAD_NAME ")", rounds, threads, ours);
    return id_finish() || fk_nfail();
}
