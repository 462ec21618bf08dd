/* hp_release.c - memory goes back to the OS without splitting huge pages.
 *
 * A fragmented heap: 128 MiB of mixed blocks (16..1024 bytes, allocation
 * order mixes the sizes).  Then 90 % of it is freed, interleaved:
 *   - in 4 of every 5 SuperSlabs (by address) every block is freed;
 *   - in the 5th ("kept"), only the blocks of the odd units stay (16 of 32
 *     units: a partially used SuperSlab with 15 free units + the header's).
 * Before malloc_trim(0), with the default options, every SuperSlab of the
 * heap is resident either completely or not at all (mincore: 512 or 0
 * pages): memory leaves only in whole 2 MiB units.  After malloc_trim(0):
 *   - heap Rss (smaps, over the VMAs of our SuperSlabs) <= 2 MiB x
 *     superslabs (ns_stats_get) + 4 MiB;
 *   - released_bytes grew by (about) the emptied SuperSlabs;
 *   - after every step the SuperSlab counts match smaps around the test's
 *     blocks (hp_check_kernel);
 *   - default: each kept SuperSlab is still fully resident (2 MiB, no 4 KiB
 *     holes) and the heap is still >= 90 % AnonHugePages (THP mode);
 *   - NUMASLAB_PURGE_PARTIAL=1: each kept SuperSlab has fewer than 512
 *     resident pages (its free units were purged), on average under 1.5 MiB;
 *   - every remaining block is intact.
 * ctest runs it with NUMASLAB_PAGES=thp, with and without
 * NUMASLAB_PURGE_PARTIAL=1 (the options are read at start-up).
 *
 *   hp_release [HEAP_MIB]     (default 128)
 */
#include "hp_util.h"

#include <malloc.h>

static bool kept_unit(const void *p)
{
    return SS_UNIT_OF(p) % 2 == 1;
}

int main(int argc, char **argv)
{
    size_t heap_mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 128;
    const char *mode = hp_pages_mode();
    const char *pp = getenv("NUMASLAB_PURGE_PARTIAL");
    bool purge = pp && (!strcmp(pp, "1") || !strcmp(pp, "true") || !strcmp(pp, "on") || !strcmp(pp, "yes"));
    bool thp = strcmp(mode, "thp") == 0;
    printf("hp_release: NUMASLAB_PAGES=%s, NUMASLAB_PURGE_PARTIAL=%d, THP '%s', heap %zu MiB\n", mode, purge,
           hp_thp_mode(), heap_mib);
    if (strcmp(mode, "thp") && strcmp(mode, "none"))
        hp_skip("hp_release measures base/THP pages: run it with NUMASLAB_PAGES=thp or none, not '%s'", mode);
    if (thp && strcmp(hp_thp_mode(), "never") == 0)
        hp_skip("THP is 'never' (run through thp.sh as root, which switches it to 'madvise' for the test)");

    ns_stats_t st;
    hp_tot_t t0, t1, t2, t3;
    hp_stats(&st, &t0);

    hp_blks_t v;
    hp_blks_init(&v, heap_mib * MiB / 16 + 16);
    uint64_t rng = 12345, bytes = 0;
    while (bytes < heap_mib * MiB) {
        size_t sz = hp_rand_size(&rng, 16, 1024);
        if (!hp_alloc_one(&v, sz, (uint32_t)v.n)) {
            CHECK(0, "malloc(%zu) failed: %s", sz, strerror(errno));
            return hp_finish("hp_release");
        }
        bytes += sz;
    }
    hp_ssset_t all;
    hp_ssset_of(&all, &v);
    hp_stats(&st, &t1);
    hp_print_tot("filled", &t1);
    hp_check_kernel("filled", &st, &t1, &all, true);
    hp_note("%zu blocks, %.1f MiB in %zu SuperSlabs", v.n, bytes / (double)MiB, all.n);

    /* free 90 %, interleaved */
    size_t freed = 0, freed_bytes = 0;
    for (size_t i = 0; i < v.n; i++) {
        size_t k = hp_ssset_lower(&all, SS_BASE(v.b[i].p));
        bool kept_ss = k % 5 == 0;
        if (!kept_ss || !kept_unit(v.b[i].p)) {
            free(v.b[i].p);
            freed_bytes += v.b[i].size;
            v.b[i].p = NULL;
            freed++;
        }
    }
    hp_ssset_t kept;
    hp_ssset_of(&kept, &v);
    hp_note("freed %zu blocks (%.1f %% of the bytes); %zu SuperSlabs keep blocks", freed,
            100.0 * freed_bytes / bytes, kept.n);

    if (!purge) {
        size_t whole = 0, split = 0;
        for (size_t k = 0; k < all.n; k++) {
            long r = hp_resident(all.base[k], SS_SIZE);
            if (r == 0 || r == (long)(SS_SIZE / 4096))
                whole++;
            else if (split++ < 5)
                hp_note("SuperSlab %#lx: %ld of 512 pages resident", (unsigned long)all.base[k], r);
        }
        CHECK(split == 0, "before trim: every SuperSlab is resident whole or not at all (%zu of %zu; %zu split)", whole,
              all.n, split);
    }

    malloc_trim(0);
    hp_stats(&st, &t2);
    hp_print_tot("after malloc_trim(0)", &t2);
    hp_check_kernel("after malloc_trim(0)", &st, &t2, &kept, true);

    hp_mem_t m;
    hp_smaps(&kept, &m);
    hp_print_mem("heap after trim", &m);
    CHECK(t2.superslabs <= kept.n + 2, "after trim: superslabs %llu <= SuperSlabs with live blocks %zu + 2",
          (unsigned long long)t2.superslabs, kept.n);
    CHECK(m.rss <= t2.superslabs * SS_SIZE + 4 * MiB,
          "after trim: heap Rss %.1f MiB <= 2 MiB x superslabs %llu + 4 MiB", m.rss / (double)MiB,
          (unsigned long long)t2.superslabs);
    uint64_t emptied = all.n - kept.n;
    CHECK(t2.released >= t0.released + (emptied > 2 ? emptied - 2 : 0) * SS_SIZE,
          "released_bytes grew by %.1f MiB (>= %llu emptied SuperSlabs - 2)", (t2.released - t0.released) / (double)MiB,
          (unsigned long long)emptied);

    /* the emptied SuperSlabs: nothing resident */
    size_t ghost = 0;
    for (size_t k = 0; k < all.n; k++)
        if (!hp_ssset_has(&kept, all.base[k]) && hp_resident(all.base[k], SS_SIZE) != 0)
            ghost++;
    CHECK(ghost <= 1, "after trim: the emptied SuperSlabs have no resident page (%zu of %llu still resident)", ghost,
          (unsigned long long)emptied);

    /* the kept, partially used SuperSlabs */
    size_t full = 0, partial = 0;
    uint64_t res_sum = 0;
    for (size_t k = 0; k < kept.n; k++) {
        long r = hp_resident(kept.base[k], SS_SIZE);
        res_sum += (uint64_t)r * 4096;
        if (r == (long)(SS_SIZE / 4096))
            full++;
        else
            partial++;
    }
    double avg = kept.n ? res_sum / (double)kept.n / MiB : 0;
    if (!purge) {
        CHECK(full == kept.n, "default: every partially used SuperSlab stays resident as a whole 2 MiB (%zu of %zu; "
              "average %.2f MiB)", full, kept.n, avg);
        if (thp) {
            double share = hp_huge_share(&m);
            CHECK(share >= 0.90, "default: the remaining heap is still %.1f %% AnonHugePages (>= 90 %%)", 100 * share);
        }
    } else {
        CHECK(partial >= kept.n - (kept.n > 2 ? 1 : 0) && kept.n > 0,
              "PURGE_PARTIAL=1: partially used SuperSlabs have fewer than 512 resident pages (%zu of %zu)", partial,
              kept.n);
        CHECK(avg < 1.5, "PURGE_PARTIAL=1: their free units were purged: %.2f MiB resident on average (< 1.5; 16-17 of 32 "
              "units are in use)", avg);
    }
    size_t bad = hp_verify_all(&v);
    CHECK(bad == 0, "the %zu remaining blocks are intact (%zu corrupted)", v.n - freed, bad);

    /* and the heap still works: allocate the freed share again */
    size_t again = 0;
    uint64_t rb = 0;
    hp_blks_t w;
    hp_blks_init(&w, 2 * freed + 1024);
    while (rb < freed_bytes) {
        size_t sz = hp_rand_size(&rng, 16, 1024);
        if (!hp_alloc_one(&w, sz, (uint32_t)(v.n + again)))
            break;
        rb += sz;
        again++;
    }
    CHECK(rb >= freed_bytes, "allocating %.1f MiB again after the trim works (%zu blocks)", rb / (double)MiB, again);
    bad = hp_verify_all(&v) + hp_verify_all(&w);
    CHECK(bad == 0, "all blocks intact after re-allocating (%zu corrupted)", bad);
    hp_stats(&st, &t3);
    hp_ssset_t wset;
    hp_ssset_of(&wset, &w);
    hp_check_kernel("re-allocated", &st, &t3, &wset, true);
    for (size_t i = 0; i < v.n; i++)
        free(v.b[i].p);
    for (size_t i = 0; i < w.n; i++)
        free(w.b[i].p);
    malloc_trim(0);
    hp_stats(&st, &t3);
    hp_print_tot("all freed, trimmed", &t3);
    hp_check_kernel("all freed, trimmed", &st, &t3, &all, false);
    CHECK(t3.superslabs <= t0.superslabs + 1 && t3.occ[0] == 0,
          "all freed + malloc_trim(0): superslabs %llu (start %llu), none kept empty (occupancy[0] %llu)",
          (unsigned long long)t3.superslabs, (unsigned long long)t0.superslabs, (unsigned long long)t3.occ[0]);
    return hp_finish("hp_release");
}
