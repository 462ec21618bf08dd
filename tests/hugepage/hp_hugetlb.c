/* hp_hugetlb.c - SuperSlabs on hugetlb pages.  Run by hugetlb.sh, which
 * reserves the pages (vm.nr_hugepages, as root) and restores the setting;
 * HP_RESERVED in the environment says how many the kernel reserved.
 *
 *   hp_hugetlb auto     NUMASLAB_PAGES=auto (or unset)
 *       ~40 MiB of small blocks: every SuperSlab is hugetlb, HugePages_Free
 *       drops by the number of SuperSlabs, smaps shows hugetlb VMAs
 *       (KernelPageSize 2048 kB, Private_Hugetlb); then 200 MiB more: the
 *       hugetlb pages run out and the heap goes on with THP (ss_thp > 0);
 *       every block intact; after free + ns_release() HugePages_Free is back.
 *   hp_hugetlb fallback NUMASLAB_PAGES=hugetlb (NUMASLAB_HUGETLB_FALLBACK
 *       default 1): the same as auto past the reserved pages.
 *   hp_hugetlb strict   NUMASLAB_PAGES=hugetlb NUMASLAB_HUGETLB_FALLBACK=0
 *       allocate until malloc returns NULL: errno ENOMEM, only hugetlb
 *       SuperSlabs, nothing corrupted; freeing a quarter makes allocation
 *       work again; after free + ns_release() HugePages_Free is back.
 * Every phase also checks that the process's own hugetlb pages
 * (smaps_rollup) are exactly ss_hugetlb.  Exit 3: a check failed while
 * other processes were using hugetlb pages (see sample_others).
 */
#include "hp_util.h"

/* Other processes that use hugetlb pages while a phase runs (another test
 * suite on the machine, whose heap in auto mode takes the reserved pages)
 * make the global counters meaningless.  The phase samples
 *   others = HugePages_Total - HugePages_Free - our own hugetlb pages
 *            (/proc/self/smaps_rollup), and HugePages_Rsvd
 * before, during (every MiB allocated) and after; when a sample shows
 * someone else's pages and a check failed, the phase exits 3
 * ("inconclusive") and hugetlb.sh runs it again (then skips). */
static long long interference;   /* most pages seen held by others */

static long long own_pages(void)
{
    static char buf[8192];
    if (!hp_read_file("/proc/self/smaps_rollup", buf, sizeof buf))
        return 0;
    long long kb = 0;
    for (char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, "Private_Hugetlb:", 16) || !strncmp(p, "Shared_Hugetlb:", 15))
            kb += strtoll(strchr(p, ':') + 1, NULL, 10);
    return kb / 2048;
}

static void sample_others(void)
{
    long long own = own_pages();
    long long others = hp_meminfo("HugePages_Total") - hp_meminfo("HugePages_Free") - own;
    long long rsvd = hp_meminfo("HugePages_Rsvd");
    if (others < 0)
        others = -others;
    if (rsvd > others)
        others = rsvd;
    if (others > interference) {
        interference = others;
        hp_note("other processes hold %lld hugetlb page(s) (reserved %lld)", others, rsvd);
    }
}

static long long free_pages(void)
{
    sample_others();
    return hp_meminfo("HugePages_Free");
}

static bool alloc_mib(hp_blks_t *v, size_t mib, uint64_t *rng, uint64_t *bytes_out)
{
    uint64_t bytes = 0;
    while (bytes < mib * MiB) {
        size_t sz = hp_rand_size(rng, 64, 1024);
        if (!hp_alloc_one(v, sz, (uint32_t)v->n)) {
            CHECK(0, "malloc(%zu) failed after %.1f MiB: %s", sz, bytes / (double)MiB, strerror(errno));
            return false;
        }
        bytes += sz;
        if ((bytes & (MiB - 1)) < sz)
            sample_others();
    }
    if (bytes_out)
        *bytes_out += bytes;
    return true;
}

/* Free everything, ns_release(), and check that the hugetlb pages are back:
 * HugePages_Free + the hugetlb SuperSlabs still in use == the start. */
static void free_all_and_check(hp_blks_t *v, long long free0, ns_stats_t *st)
{
    hp_ssset_t former;
    hp_ssset_of(&former, v);
    size_t bad = hp_verify_all(v);
    CHECK(bad == 0, "all %zu blocks intact at the end (%zu corrupted)", v->n, bad);
    for (size_t i = 0; i < v->n; i++)
        if (v->b[i].p) {
            free(v->b[i].p);
            v->b[i].p = NULL;
        }
    size_t rel = ns_release();
    hp_tot_t t;
    hp_stats(st, &t);
    hp_print_tot("freed + ns_release()", &t);
    hp_check_kernel("freed + ns_release()", st, &t, &former, false);
    long long f = free_pages();
    CHECK(own_pages() == (long long)t.ss_hugetlb, "the process holds %lld hugetlb pages (smaps_rollup) == ss_hugetlb %llu",
          own_pages(), (unsigned long long)t.ss_hugetlb);
    CHECK(f + (long long)t.ss_hugetlb >= free0 - 1 && f <= free0,
          "after ns_release() (%.1f MiB): HugePages_Free %lld + hugetlb SuperSlabs still in use %llu == %lld at the "
          "start (+-1)", rel / (double)MiB, f, (unsigned long long)t.ss_hugetlb, free0);
}

static void phase_auto(bool fallback_phase)
{
    long long reserved = getenv("HP_RESERVED") ? atoll(getenv("HP_RESERVED")) : hp_meminfo("HugePages_Total");
    ns_stats_t st;
    hp_tot_t t0, t1, t2;
    hp_stats(&st, &t0);
    hp_print_tot("start", &t0);
    long long free0 = free_pages() + (long long)t0.ss_hugetlb;   /* before numaslab took any */
    long long node0_0 = hp_node_free_hugepages(0) + (long long)st.node[0].ss_hugetlb;
    hp_note("reserved %lld hugetlb pages, HugePages_Free %lld, in use by this process %llu", reserved, free_pages(),
            (unsigned long long)t0.ss_hugetlb);
    if (reserved < 24)
        hp_skip("only %lld hugetlb pages reserved: need 24 or more", reserved);

    /* ~40 MiB (fewer SuperSlabs than reserved pages) */
    size_t first_mib = (size_t)(reserved * 2 * 8 / 10) - 4;
    if (first_mib > 40)
        first_mib = 40;
    hp_blks_t v;
    hp_blks_init(&v, 400 * MiB / 64);
    uint64_t rng = 777, bytes = 0;
    if (!alloc_mib(&v, first_mib, &rng, &bytes))
        return;
    hp_ssset_t set;
    hp_ssset_of(&set, &v);
    hp_stats(&st, &t1);
    hp_print_tot("after the first allocation", &t1);
    hp_check_kernel("after the first allocation", &st, &t1, &set, true);
    long long free1 = free_pages();
    CHECK(own_pages() == (long long)t1.ss_hugetlb, "the process holds %lld hugetlb pages (smaps_rollup) == ss_hugetlb %llu",
          own_pages(), (unsigned long long)t1.ss_hugetlb);
    CHECK(t1.ss_hugetlb > 0 && t1.ss_hugetlb == t1.superslabs,
          "%zu MiB of small blocks: every SuperSlab is hugetlb (ss_hugetlb %llu of %llu) while pages are free",
          first_mib, (unsigned long long)t1.ss_hugetlb, (unsigned long long)t1.superslabs);
    long long drop = free0 - free1;
    CHECK(llabs(drop - (long long)t1.ss_hugetlb) <= 1,
          "HugePages_Free dropped by %lld (%lld -> %lld), the number of hugetlb SuperSlabs %llu (+-1)", drop, free0,
          free1, (unsigned long long)t1.ss_hugetlb);
    long long node0_1 = hp_node_free_hugepages(0);
    if (node0_1 >= 0 && st.nodes == 1)
        CHECK(llabs(node0_0 - node0_1 - (long long)t1.ss_hugetlb) <= 1,
              "node0 free_hugepages dropped by %lld (%lld -> %lld)", node0_0 - node0_1, node0_0, node0_1);
    hp_mem_t m;
    hp_smaps(&set, &m);
    hp_print_mem("heap", &m);
    CHECK(m.vmas > 0 && m.vmas_kps2m == m.vmas && m.vmas_ht == m.vmas,
          "smaps: every heap VMA is hugetlb (KernelPageSize 2048 kB %llu, VmFlags ht %llu, of %llu)",
          (unsigned long long)m.vmas_kps2m, (unsigned long long)m.vmas_ht, (unsigned long long)m.vmas);
    CHECK(m.hugetlb >= (uint64_t)set.n * SS_SIZE,
          "smaps: Private_Hugetlb %.1f MiB covers the %zu SuperSlabs holding the blocks", m.hugetlb / (double)MiB,
          set.n);

    /* beyond the reserved pages */
    size_t more = (size_t)reserved * 2 * 3 + 60;
    if (more < 200)
        more = 200;
    if (!alloc_mib(&v, more, &rng, &bytes))
        return;
    hp_ssset_t set2;
    hp_ssset_of(&set2, &v);
    hp_stats(&st, &t2);
    hp_print_tot("after allocating beyond the reserved pages", &t2);
    hp_check_kernel("beyond the reserved pages", &st, &t2, &set2, true);
    long long free2 = free_pages();
    CHECK(own_pages() == (long long)t2.ss_hugetlb, "the process holds %lld hugetlb pages (smaps_rollup) == ss_hugetlb %llu",
          own_pages(), (unsigned long long)t2.ss_hugetlb);
    CHECK(t2.ss_thp > 0 && t2.ss_hugetlb + t2.ss_thp == t2.superslabs,
          "%zu MiB more: the heap goes on with THP once the hugetlb pages are gone (ss_thp %llu, ss_hugetlb %llu, "
          "superslabs %llu)", more, (unsigned long long)t2.ss_thp, (unsigned long long)t2.ss_hugetlb,
          (unsigned long long)t2.superslabs);
    CHECK(free2 <= 2 && t2.ss_hugetlb + 2 >= (uint64_t)free0,
          "the hugetlb pages were used up first: HugePages_Free %lld, ss_hugetlb %llu of %lld", free2,
          (unsigned long long)t2.ss_hugetlb, free0);
    hp_smaps(&set2, &m);
    hp_print_mem("heap", &m);
    CHECK(hp_huge_share(&m) >= 0.90, "the whole heap is %.1f %% huge pages (hugetlb + THP, >= 90 %%)",
          100 * hp_huge_share(&m));
    (void)fallback_phase;
    free_all_and_check(&v, free0, &st);
}

static void phase_strict(void)
{
    ns_stats_t st;
    hp_tot_t t0, t1, t2;
    hp_stats(&st, &t0);
    hp_print_tot("start", &t0);
    long long free0 = free_pages() + (long long)t0.ss_hugetlb;
    CHECK(t0.ss_thp == 0 && t0.ss_base == 0, "NUMASLAB_PAGES=hugetlb, no fallback: only hugetlb SuperSlabs at start-up "
          "(thp %llu, base %llu)", (unsigned long long)t0.ss_thp, (unsigned long long)t0.ss_base);
    hp_blks_t v;
    hp_blks_init(&v, (size_t)(free0 + 8) * SS_SIZE / 64 * 2);
    uint64_t rng = 4242, bytes = 0, cap = (uint64_t)(free0 + 8) * SS_SIZE;
    int err = 0;
    bool got_null = false;
    while (bytes < cap) {
        size_t sz = hp_rand_size(&rng, 64, 1024);
        errno = 0;
        if (!hp_alloc_one(&v, sz, (uint32_t)v.n)) {
            err = errno;
            got_null = true;
            break;
        }
        bytes += sz;
    }
    sample_others();
    hp_stats(&st, &t1);
    hp_print_tot("exhausted", &t1);
    hp_ssset_t set;
    hp_ssset_of(&set, &v);
    hp_check_kernel("exhausted", &st, &t1, &set, true);
    CHECK(got_null, "malloc returns NULL once the %lld hugetlb pages are used (after %.1f MiB)", free0,
          bytes / (double)MiB);
    CHECK(err == ENOMEM, "... with errno ENOMEM (%d: %s)", err, strerror(err));
    CHECK(t1.ss_thp == 0 && t1.ss_base == 0 && t1.ss_hugetlb == t1.superslabs,
          "no fallback: every SuperSlab is hugetlb (%llu of %llu; thp %llu, base %llu)",
          (unsigned long long)t1.ss_hugetlb, (unsigned long long)t1.superslabs, (unsigned long long)t1.ss_thp,
          (unsigned long long)t1.ss_base);
    CHECK(free_pages() <= 1, "HugePages_Free is %lld at the failure", free_pages());
    size_t bad = hp_verify_all(&v);
    CHECK(bad == 0, "the %zu blocks allocated before the failure are intact (%zu corrupted)", v.n, bad);
    /* a second failure is still a clean ENOMEM */
    errno = 0;
    void *p = malloc(1000);
    int e2 = errno;
    if (p) {
        /* a free block of that class may remain in a slab: take blocks until NULL */
        hp_blk_t *b = hp_blks_push(&v);
        b->p = p;
        b->size = 1000;
        b->seed = (uint32_t)v.n;
        hp_fill(b);
        for (int i = 0; i < 100000; i++) {
            errno = 0;
            if (!hp_alloc_one(&v, 1000, (uint32_t)v.n)) {
                p = NULL;
                e2 = errno;
                break;
            }
        }
    }
    CHECK(!p && e2 == ENOMEM, "malloc keeps failing with ENOMEM while the pages are used (%s)", strerror(e2));

    /* free the first quarter (whole SuperSlabs empty), then allocate again */
    size_t q = v.n / 4;
    uint64_t qbytes = 0;
    for (size_t i = 0; i < q; i++) {
        qbytes += v.b[i].size;
        free(v.b[i].p);
        v.b[i].p = NULL;
    }
    hp_blks_t w;
    hp_blks_init(&w, q + 16);
    uint64_t again = 0;
    bool ok = true;
    while (again < qbytes * 9 / 10) {
        size_t sz = hp_rand_size(&rng, 64, 1024);
        if (!hp_alloc_one(&w, sz, (uint32_t)(v.n + w.n))) {
            ok = false;
            break;
        }
        again += sz;
    }
    CHECK(ok, "after freeing %.1f MiB, allocating %.1f MiB again works (%s)", qbytes / (double)MiB,
          again / (double)MiB, ok ? "no error" : strerror(errno));
    bad = hp_verify_all(&v) + hp_verify_all(&w);
    CHECK(bad == 0, "all blocks intact after the re-allocation (%zu corrupted)", bad);
    hp_stats(&st, &t2);
    hp_ssset_t wset;
    hp_ssset_of(&wset, &w);
    hp_check_kernel("re-allocated", &st, &t2, &wset, true);
    for (size_t i = 0; i < w.n; i++)
        free(w.b[i].p);
    free_all_and_check(&v, free0, &st);
}

int main(int argc, char **argv)
{
    const char *phase = argc > 1 ? argv[1] : "auto";
    printf("hp_hugetlb %s: NUMASLAB_PAGES=%s, NUMASLAB_HUGETLB_FALLBACK=%s, THP '%s', HugePages_Total %lld, Free %lld\n",
           phase, hp_pages_mode(), getenv("NUMASLAB_HUGETLB_FALLBACK") ? getenv("NUMASLAB_HUGETLB_FALLBACK") : "(unset)",
           hp_thp_mode(), hp_meminfo("HugePages_Total"), hp_meminfo("HugePages_Free"));
    if (hp_meminfo("HugePages_Total") <= 0)
        hp_skip("no hugetlb pages reserved (vm.nr_hugepages is 0): run through hugetlb.sh as root");
    if (!strcmp(phase, "auto"))
        phase_auto(false);
    else if (!strcmp(phase, "fallback"))
        phase_auto(true);
    else if (!strcmp(phase, "strict"))
        phase_strict();
    else {
        printf("usage: hp_hugetlb auto|fallback|strict\n");
        return 2;
    }
    sample_others();
    int rc = hp_finish(phase);
    if (rc != 0 && interference > 0) {
        printf("INCONCLUSIVE: other processes used up to %lld hugetlb page(s) during this phase\n", interference);
        return 3;
    }
    return rc;
}
