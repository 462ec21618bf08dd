/* hp_sparse.c - huge pages where they pay (issue 14): a small heap stays on
 * base pages and costs the pages it touches; a heap that grows dense gets
 * huge pages.  Default options (NUMASLAB_PAGES unset: THP), THP 'madvise'
 * (thp.sh), or 'always' (hugepage_sparse_always: MADV_NOHUGEPAGE must
 * then keep the sparse SuperSlabs small).
 *
 *  1. The first block of a class (5000 bytes, the program's first
 *     allocation of that size): the 64 KiB unit around it has at most 4
 *     resident pages (mincore): the thread's first refill takes one block,
 *     not the 6 that filled half its cache before (slow start, tcache.c).
 *  2. Three blocks of every size from 16 B to 16 KiB in steps of 16 B to
 *     1 KiB and 512 B above (a small program's spread of classes), written
 *     in full: the SuperSlabs holding them have no AnonHugePages (smaps),
 *     and their Rss is at most the bytes written + 3 pages per size (the
 *     page a block shares with the next one of its slab, the free-list
 *     links of the few blocks a thread cache keeps, the header).
 *  3. Then 256-byte blocks, written, until one SuperSlab holds 1.625 MiB
 *     of them: dense, but the heap spans fewer than 4 SuperSlabs (SS_PROMOTE_MIN), so they stay on base
 *     pages: no AnonHugePages where they are (a heap of a few MiB fits the
 *     TLB's reach; a huge page would make the untouched rest resident).
 *  4. Then up to 24 MiB of 256-byte blocks, written: AnonHugePages covers
 *     at least 90 % of the Rss of the SuperSlabs holding them (the ones
 *     of step 3 promoted when the heap reached 4 SuperSlabs, MADV_COLLAPSE;
 *     later ones promoted once three quarters of them were handed out, or
 *     started on huge pages).  If the kernel has no MADV_COLLAPSE (before
 *     6.1; the test asks for it on a mapping of its own), the first two
 *     SuperSlabs may wait for khugepaged: 80 %.
 *  5. Every block is intact.
 */
#include "hp_util.h"

int main(void)
{
    const char *thp = hp_thp_mode();
    printf("hp_sparse: NUMASLAB_PAGES=%s, THP '%s'\n", hp_pages_mode(), thp);
    if (strcmp(hp_pages_mode(), "thp") != 0)
        hp_skip("hp_sparse measures the default page mode (NUMASLAB_PAGES unset or thp), not '%s'", hp_pages_mode());
    if (strcmp(thp, "never") == 0)
        hp_skip("THP is 'never' (run through thp.sh as root, which switches it to 'madvise' for the test)");

    unsigned char *first = malloc(5000);
    CHECK(first != NULL, "malloc(5000)");
    if (first) {
        first[0] = 1;
        uintptr_t unit = (uintptr_t)first & ~(uintptr_t)(SS_UNIT - 1);
        long res = hp_resident(unit, SS_UNIT);
        CHECK(res >= 1 && res <= 4, "the first block of a fresh class: %ld of the 16 pages of its 64 KiB unit are "
              "resident (1..4)", res);
    }

    hp_blks_t small, dense;
    hp_blks_init(&small, 4096);
    uint64_t written = 0, sizes = 0;
    for (size_t sz = 16; sz <= 16 * KiB; sz += sz < KiB ? 16 : 512, sizes++)
        for (int k = 0; k < 3; k++) {
            if (!hp_alloc_one(&small, sz, (uint32_t)small.n)) {
                CHECK(0, "malloc(%zu) failed: %s", sz, strerror(errno));
                return hp_finish("hp_sparse");
            }
            written += sz;
        }
    hp_ssset_t set;
    hp_ssset_of(&set, &small);
    hp_mem_t m;
    hp_smaps(&set, &m);
    hp_print_mem("small heap", &m);
    CHECK(m.anon_huge == 0, "a small heap (%llu sizes x 3 blocks, %.0f KiB written, in %zu SuperSlab(s)) has no huge "
          "page: AnonHugePages %.0f KiB", (unsigned long long)sizes, written / (double)KiB, set.n,
          m.anon_huge / (double)KiB);
    uint64_t bound = written + sizes * 3 * 4096;
    CHECK(m.rss <= bound, "it costs the pages it touches: Rss %.0f KiB <= %.0f KiB written + 3 pages per size (%.0f KiB)",
          m.rss / (double)KiB, written / (double)KiB, bound / (double)KiB);

    bool collapse = hp_collapse_works();
    hp_blks_init(&dense, 24 * MiB / 256 + 16);
    hp_ssset_t dset;
    /* step 3 ends when one SuperSlab holds 1.625 MiB of these blocks
     * (81 % of it: dense) */
    struct { uintptr_t ss; size_t n; } per[16] = {{0, 0}};
    bool step3 = false;
    for (size_t i = 0; i < 24 * MiB / 256; i++) {
        if (!hp_alloc_one(&dense, 256, (uint32_t)(i + 100000))) {
            CHECK(0, "malloc(256) failed: %s", strerror(errno));
            return hp_finish("hp_sparse");
        }
        if (step3)
            continue;
        uintptr_t ss = SS_BASE(dense.b[dense.n - 1].p);
        for (int k = 0; k < 16; k++)
            if (per[k].ss == ss || per[k].ss == 0) {
                per[k].ss = ss;
                step3 = ++per[k].n * 256 >= 13 * MiB / 8;
                break;
            }
        if (step3) {
            hp_ssset_of(&dset, &dense);
            hp_smaps(&dset, &m);
            hp_print_mem("a SuperSlab with 1.625 MiB of 256-byte blocks", &m);
            ns_stats_t st;
            hp_tot_t t;
            hp_stats(&st, &t);
            CHECK(t.superslabs < 4, "the heap spans fewer than 4 SuperSlabs here (%llu)",
                  (unsigned long long)t.superslabs);
            CHECK(m.anon_huge == 0 && m.rss >= MiB, "a dense heap of a few MiB stays on base pages: AnonHugePages "
                  "%.0f KiB, Rss %.0f KiB (>= 1 MiB: the blocks were written)", m.anon_huge / (double)KiB,
                  m.rss / (double)KiB);
        }
    }
    CHECK(step3, "one SuperSlab came to hold 1.625 MiB of the 256-byte blocks");
    hp_ssset_of(&dset, &dense);
    hp_smaps(&dset, &m);
    hp_print_mem("24 MiB of 256-byte blocks", &m);
    double want = collapse ? 0.90 : 0.80;
    CHECK(hp_huge_share(&m) >= want, "a dense heap is on huge pages: AnonHugePages %.1f of Rss %.1f MiB = %.1f %% "
          "(>= %.0f %%; MADV_COLLAPSE %s)", m.anon_huge / (double)MiB, m.rss / (double)MiB,
          100.0 * hp_huge_share(&m), 100 * want, collapse ? "works" : "unavailable");

    size_t bad = hp_verify_all(&small) + hp_verify_all(&dense);
    CHECK(bad == 0, "all %zu blocks intact (%zu corrupted)", small.n + dense.n, bad);
    free(first);
    return hp_finish("hp_sparse");
}
