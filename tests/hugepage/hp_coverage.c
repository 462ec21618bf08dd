/* hp_coverage.c - huge-page coverage of a heap of small blocks.
 *
 * A 64 MiB heap of blocks of 64..1024 bytes, every byte written; then, over
 * the VMAs of /proc/self/smaps that hold the heap's SuperSlabs:
 *   NUMASLAB_PAGES unset/auto or thp: AnonHugePages (+ hugetlb) covers
 *     >= 90 % of the resident heap, the VMAs carry MADV_HUGEPAGE (VmFlags hg)
 *     or are hugetlb, and ss_thp + ss_hugetlb == superslabs (thp: ss_thp ==
 *     superslabs);
 *   none: ss_base == superslabs, no AnonHugePages, VmFlags nh.
 * The mode is read from the environment, as numaslab reads it at start-up:
 * ctest runs the program once per mode (see CMakeLists.txt).
 *
 *   hp_coverage [HEAP_MIB]        (default 64)
 */
#include "hp_util.h"

int main(int argc, char **argv)
{
    const char *mode = hp_pages_mode();
    size_t heap_mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
    bool none = strcmp(mode, "none") == 0;
    bool thp_only = strcmp(mode, "thp") == 0;
    if (!none && !thp_only && strcmp(mode, "auto") != 0)
        hp_skip("hp_coverage covers NUMASLAB_PAGES=auto|thp|none, not '%s'", mode);
    const char *thp = hp_thp_mode();
    printf("hp_coverage: NUMASLAB_PAGES=%s, THP '%s', heap %zu MiB of 64..1024-byte blocks\n", mode, thp, heap_mib);
    if (!none && strcmp(thp, "never") == 0 && hp_meminfo("HugePages_Free") <= 0)
        hp_skip("THP is 'never' and no hugetlb pages are free: no huge page can back the heap "
                "(run through thp.sh as root, which switches THP to 'madvise' for the test)");

    ns_stats_t st;
    hp_tot_t t0, t1;
    hp_stats(&st, &t0);
    hp_print_tot("before", &t0);
    hp_check_consistent(&st, "before");
    long long fault_alloc0 = hp_vmstat("thp_fault_alloc"), fault_fb0 = hp_vmstat("thp_fault_fallback");

    hp_blks_t v;
    hp_blks_init(&v, heap_mib * MiB / 64 + 16);
    uint64_t rng = 0x9E3779B97F4A7C15ull, bytes = 0;
    while (bytes < heap_mib * MiB) {
        size_t sz = hp_rand_size(&rng, 64, 1024);
        if (!hp_alloc_one(&v, sz, (uint32_t)v.n)) {
            CHECK(0, "malloc(%zu) failed after %.1f MiB: %s", sz, bytes / (double)MiB, strerror(errno));
            return hp_finish("hp_coverage");
        }
        bytes += sz;
    }
    hp_note("%zu blocks, %.1f MiB", v.n, bytes / (double)MiB);

    hp_ssset_t set;
    hp_ssset_of(&set, &v);
    hp_stats(&st, &t1);
    hp_print_tot("after filling", &t1);
    hp_check_consistent(&st, "after filling");
    CHECK(set.n * SS_SIZE >= bytes && set.n <= t1.superslabs,
          "the blocks lie in %zu SuperSlab(s) (>= %.1f MiB of blocks, <= superslabs %llu)", set.n,
          bytes / (double)MiB, (unsigned long long)t1.superslabs);

    hp_mem_t m;
    hp_smaps(&set, &m);
    hp_print_mem("heap", &m);
    CHECK(m.ss_covered == set.n, "every SuperSlab of the heap is in a mapping of /proc/self/smaps (%llu of %zu)",
          (unsigned long long)m.ss_covered, set.n);
    CHECK(m.rss + m.hugetlb >= bytes, "the heap is resident: %.1f MiB >= %.1f MiB of written blocks",
          (m.rss + m.hugetlb) / (double)MiB, bytes / (double)MiB);

    if (none) {
        CHECK(t1.ss_base == t1.superslabs && t1.ss_thp == 0 && t1.ss_hugetlb == 0,
              "NUMASLAB_PAGES=none: ss_base %llu == superslabs %llu (thp %llu, hugetlb %llu)",
              (unsigned long long)t1.ss_base, (unsigned long long)t1.superslabs, (unsigned long long)t1.ss_thp,
              (unsigned long long)t1.ss_hugetlb);
        CHECK(m.anon_huge == 0 && m.hugetlb == 0, "NUMASLAB_PAGES=none: no huge page in the heap (AnonHugePages %.1f MiB, hugetlb %.1f MiB)",
              m.anon_huge / (double)MiB, m.hugetlb / (double)MiB);
        CHECK(m.vmas_nh == m.vmas && m.vmas_hg == 0, "NUMASLAB_PAGES=none: every heap VMA has MADV_NOHUGEPAGE (nh %llu, hg %llu of %llu)",
              (unsigned long long)m.vmas_nh, (unsigned long long)m.vmas_hg, (unsigned long long)m.vmas);
    } else {
        CHECK(t1.ss_thp + t1.ss_hugetlb == t1.superslabs && t1.ss_base == 0,
              "NUMASLAB_PAGES=%s: ss_thp %llu + ss_hugetlb %llu == superslabs %llu (base %llu)", mode,
              (unsigned long long)t1.ss_thp, (unsigned long long)t1.ss_hugetlb, (unsigned long long)t1.superslabs,
              (unsigned long long)t1.ss_base);
        if (thp_only)
            CHECK(t1.ss_thp == t1.superslabs, "NUMASLAB_PAGES=thp: ss_thp %llu == superslabs %llu",
                  (unsigned long long)t1.ss_thp, (unsigned long long)t1.superslabs);
        CHECK(m.vmas_hg + m.vmas_ht == m.vmas && m.vmas_nh == 0,
              "NUMASLAB_PAGES=%s: every heap VMA is MADV_HUGEPAGE or hugetlb (hg %llu + ht %llu of %llu, nh %llu)", mode,
              (unsigned long long)m.vmas_hg, (unsigned long long)m.vmas_ht, (unsigned long long)m.vmas,
              (unsigned long long)m.vmas_nh);
        double share = hp_huge_share(&m);
        long long fa = hp_vmstat("thp_fault_alloc") - fault_alloc0, fb = hp_vmstat("thp_fault_fallback") - fault_fb0;
        hp_note("kernel: thp_fault_alloc +%lld, thp_fault_fallback +%lld during the fill", fa, fb);
        if (share < 0.90 && fb > 0 && (double)fb * 2 * MiB >= (0.90 - share) * (double)(m.rss + m.hugetlb))
            hp_skip("the kernel could not supply huge pages (thp_fault_fallback +%lld: memory too fragmented?); "
                    "huge share %.1f %%", fb, 100.0 * share);
        CHECK(share >= 0.90, "NUMASLAB_PAGES=%s: huge pages cover %.1f %% (>= 90 %%) of the heap's resident memory "
              "(AnonHugePages %.1f + hugetlb %.1f of Rss %.1f + hugetlb MiB)", mode, 100.0 * share,
              m.anon_huge / (double)MiB, m.hugetlb / (double)MiB, m.rss / (double)MiB);
    }

    size_t bad = hp_verify_all(&v);
    CHECK(bad == 0, "all %zu blocks intact (%zu corrupted)", v.n, bad);
    for (size_t i = 0; i < v.n; i++)
        free(v.b[i].p);
    size_t rel = ns_release();
    hp_tot_t t2;
    hp_stats(&st, &t2);
    hp_print_tot("after free + ns_release", &t2);
    hp_check_consistent(&st, "after free + ns_release");
    CHECK(t2.superslabs + set.n <= t1.superslabs + 2 && t2.released - t1.released + 2 * SS_SIZE >= set.n * SS_SIZE,
          "the emptied SuperSlabs went back to the OS: superslabs %llu -> %llu, released_bytes +%.1f MiB "
          "(ns_release() gave %.1f MiB)", (unsigned long long)t1.superslabs, (unsigned long long)t2.superslabs,
          (t2.released - t1.released) / (double)MiB, rel / (double)MiB);
    return hp_finish("hp_coverage");
}
