/* idle_release.c - an idle process gives back what it freed.
 *
 * 400 MiB of small blocks (64..4096 bytes, mixed, each written whole) are
 * allocated and freed in allocation order; then the process makes no
 * allocator call at all and watches its resident set (/proc/self/statm)
 * and its threads (/proc/self/task).
 *
 *   idle_release on    (NUMASLAB_BACKGROUND=1, the default): within 3 s of
 *                      the last free the RSS is at most 8 MiB above what it
 *                      was before the first block, and the process has a
 *                      second thread, named numaslab-decay (the work was
 *                      done by it: nothing else runs);
 *   idle_release off   (NUMASLAB_BACKGROUND=0): 3.5 s after the last free
 *                      the RSS is still more than 64 MiB above it, and the
 *                      process has one thread (what the thread gives back
 *                      stays without it).
 * Both: while the 400 MiB are allocated and nothing was freed yet, the
 * process has one thread only.
 *
 *   idle_release on|off [HEAP_MIB]   (default 400)
 */
#define _GNU_SOURCE
#include "idle_common.h"

int main(int argc, char **argv)
{
    id_prog = "idle_release";
    bool on = argc > 1 && strcmp(argv[1], "on") == 0;
    if (argc < 2 || (!on && strcmp(argv[1], "off") != 0)) {
        id_log("usage: idle_release on|off [HEAP_MIB]");
        return 2;
    }
    uint64_t heap = (argc > 2 ? strtoull(argv[2], NULL, 10) : 400) * ID_MIB;
    size_t cap;
    void **v = id_slots(heap, 1024, &cap);
    uint64_t base = id_rss_kib();

    size_t n = id_fill(v, cap, heap, 64, 4096, 20261201);
    uint64_t peak = id_rss_kib();
    int ours = 0, threads = id_threads(&ours);
    ID_CHECK(threads == 1, "%.0f MiB in %zu blocks allocated, nothing freed: %d thread(s) (1)",
             heap / (double)ID_MIB, n, threads);

    id_free_all(v, n);
    uint64_t t0 = id_now_ms(), freed = id_rss_kib(), at, rss;
    if (on) {
        rss = id_wait_rss(base + 8 * 1024, t0, 3000, &at);
        threads = id_threads(&ours);
        id_log("RSS before %.1f MiB, allocated %.1f MiB, just freed %.1f MiB, %.1f MiB %.1f s later",
               base / 1024.0, peak / 1024.0, freed / 1024.0, rss / 1024.0, at / 1000.0);
        ID_CHECK(rss <= base + 8 * 1024, "RSS %.1f MiB above the start %.1f s after the last free (at most 8 MiB "
                 "within 3 s)", ((double)rss - (double)base) / 1024.0, at / 1000.0);
        ID_CHECK(threads == 2 && ours == 1, "%d threads, %d named " ID_THREAD_NAME " (2 and 1)", threads, ours);
    } else {
        id_sleep_ms(3500);
        rss = id_rss_kib();
        threads = id_threads(&ours);
        id_log("RSS before %.1f MiB, allocated %.1f MiB, just freed %.1f MiB, %.1f MiB 3.5 s later",
               base / 1024.0, peak / 1024.0, freed / 1024.0, rss / 1024.0);
        ID_CHECK(rss > base + 64 * 1024, "without the thread the freed heap stays: RSS %.1f MiB above the start "
                 "3.5 s after the last free (more than 64)", ((double)rss - (double)base) / 1024.0);
        ID_CHECK(threads == 1, "%d thread(s) (1)", threads);
    }
    return id_finish();
}
