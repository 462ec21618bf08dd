/* hp_stats.c - the SuperSlab statistics against what the test knows.
 *
 * After every step the SuperSlab counts (total and by backing) are checked
 * against /proc/self/smaps around the test's blocks (hp_check_kernel), not
 * against each other (that the backing kinds and the occupancy buckets add
 * up to superslabs holds by construction).  The occupancy histogram is
 * checked against what the test knows: it allocates
 * 512-byte blocks (one-unit slabs), so a SuperSlab's used units are the
 * 64 KiB units that hold its live blocks, and freeing every block of a unit
 * (then ns_release(), which flushes the thread cache and gives back empty
 * slabs) frees that unit.
 *
 *   fill 24 MiB             -> SuperSlabs full: occupancy[4]
 *   free the even units     -> 16 of 32 used:  occupancy[2]
 *   free units 3 mod 4      ->  8 of 32 used:  occupancy[1]
 *   allocate again          -> fuller buckets again
 *   free all, ns_release()  -> no SuperSlab left in [0], released_bytes grows
 *
 * Run under each NUMASLAB_PAGES mode by ctest (hugepage_stats_*).
 */
#include "hp_util.h"

#define BLK 512

static unsigned bucket_of(unsigned used_units)
{
    return used_units == 0 ? 0 : (used_units + 7) / 8;
}

static double mean_bucket(const hp_tot_t *t)
{
    uint64_t n = 0, s = 0;
    for (int i = 0; i < 5; i++) {
        n += t->occ[i];
        s += (uint64_t)i * t->occ[i];
    }
    return n ? (double)s / (double)n : 0.0;
}

/* Compare the histogram with the one expected from the units holding live
 * blocks of v (SuperSlabs of `set` only): each of our SuperSlabs must be
 * found in its bucket; one may differ (it can share units with libc's own
 * blocks or with blocks prefetched into the thread cache). */
static void check_histogram(const char *when, const hp_blks_t *v, const hp_ssset_t *set, const hp_tot_t *t)
{
    static uint32_t mask[65536];
    memset(mask, 0, sizeof mask);
    for (size_t i = 0; i < v->n; i++)
        if (v->b[i].p) {
            uintptr_t base = SS_BASE(v->b[i].p);
            size_t k = hp_ssset_lower(set, base);
            if (k < set->n && set->base[k] == base)
                mask[k] |= 1u << SS_UNIT_OF(v->b[i].p);
        }
    uint64_t want[5] = {0};
    for (size_t k = 0; k < set->n && k < 65536; k++)
        want[bucket_of((unsigned)__builtin_popcount(mask[k]))]++;
    /* SuperSlabs with no live block of ours may be released: don't count [0] */
    uint64_t missing = 0;
    for (int b = 1; b < 5; b++)
        if (want[b] > t->occ[b])
            missing += want[b] - t->occ[b];
    CHECK(missing <= 1,
          "%s: occupancy [%llu %llu %llu %llu %llu] holds the expected [- %llu %llu %llu %llu] of our SuperSlabs "
          "(%llu missing, <= 1)",
          when, (unsigned long long)t->occ[0], (unsigned long long)t->occ[1], (unsigned long long)t->occ[2],
          (unsigned long long)t->occ[3], (unsigned long long)t->occ[4], (unsigned long long)want[1],
          (unsigned long long)want[2], (unsigned long long)want[3], (unsigned long long)want[4],
          (unsigned long long)missing);
}

/* The statistics against smaps around the SuperSlabs of v's live blocks. */
static void check_kernel(const char *when, const ns_stats_t *st, const hp_tot_t *t, const hp_blks_t *v)
{
    hp_ssset_t live;
    hp_ssset_of(&live, v);
    hp_check_kernel(when, st, t, &live, true);
    munmap(live.base, (v->n + 1) * sizeof(uintptr_t));
}

static size_t free_where(hp_blks_t *v, unsigned mod, unsigned rem)
{
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++)
        if (v->b[i].p && SS_UNIT_OF(v->b[i].p) % mod == rem) {
            free(v->b[i].p);
            v->b[i].p = NULL;
            n++;
        }
    return n;
}

int main(void)
{
    printf("hp_stats: NUMASLAB_PAGES=%s, THP '%s'\n", hp_pages_mode(), hp_thp_mode());
    ns_stats_t st;
    hp_tot_t t0, t;
    hp_stats(&st, &t0);
    hp_print_tot("start", &t0);
    hp_ssset_t none_yet = {NULL, 0};
    hp_check_kernel("start", &st, &t0, &none_yet, true);

    /* fill */
    size_t nblk = 24 * MiB / BLK;
    hp_blks_t v;
    hp_blks_init(&v, 2 * nblk + 16);
    for (size_t i = 0; i < nblk; i++)
        if (!hp_alloc_one(&v, BLK, (uint32_t)i)) {
            CHECK(0, "malloc(%d) failed: %s", BLK, strerror(errno));
            return hp_finish("hp_stats");
        }
    hp_ssset_t set;
    hp_ssset_of(&set, &v);
    hp_stats(&st, &t);
    hp_print_tot("filled", &t);
    check_kernel("filled", &st, &t, &v);
    CHECK(t.occ[4] >= t0.occ[4] + set.n - 2, "filled: occupancy[4] (25-32 units) %llu >= %llu (our %zu SuperSlabs, all but the last full)",
          (unsigned long long)t.occ[4], (unsigned long long)(t0.occ[4] + set.n - 2), set.n);
    CHECK(mean_bucket(&t) > mean_bucket(&t0) || mean_bucket(&t0) >= 3.9,
          "filled: the histogram moved toward fuller buckets (mean bucket %.2f -> %.2f)", mean_bucket(&t0),
          mean_bucket(&t));
    check_histogram("filled", &v, &set, &t);
    double mean_full = mean_bucket(&t);

    /* half of every SuperSlab */
    size_t f1 = free_where(&v, 2, 0);
    ns_release();
    hp_stats(&st, &t);
    hp_print_tot("even units freed", &t);
    check_kernel("even units freed", &st, &t, &v);
    CHECK(t.occ[2] >= set.n - 2, "even units freed (%zu blocks): occupancy[2] (9-16 units) %llu >= %zu", f1,
          (unsigned long long)t.occ[2], set.n - 2);
    check_histogram("even units freed", &v, &set, &t);

    /* a quarter */
    size_t f2 = free_where(&v, 4, 3);
    ns_release();
    hp_stats(&st, &t);
    hp_print_tot("units 3 mod 4 freed", &t);
    check_kernel("units 3 mod 4 freed", &st, &t, &v);
    CHECK(t.occ[1] >= set.n - 2, "units 3 mod 4 freed (%zu blocks): occupancy[1] (1-8 units) %llu >= %zu", f2,
          (unsigned long long)t.occ[1], set.n - 2);
    check_histogram("units 3 mod 4 freed", &v, &set, &t);
    double mean_quarter = mean_bucket(&t);
    size_t bad = hp_verify_all(&v);
    CHECK(bad == 0, "the blocks still allocated are intact (%zu corrupted)", bad);

    /* fill the holes again */
    for (size_t i = 0; i < f1 + f2; i++)
        if (!hp_alloc_one(&v, BLK, (uint32_t)(nblk + i))) {
            CHECK(0, "malloc(%d) failed: %s", BLK, strerror(errno));
            return hp_finish("hp_stats");
        }
    hp_stats(&st, &t);
    hp_print_tot("refilled", &t);
    check_kernel("refilled", &st, &t, &v);
    CHECK(mean_bucket(&t) > mean_quarter && t.occ[4] >= set.n / 2,
          "refilled: back toward fuller buckets (mean bucket %.2f -> %.2f, full %.2f; occupancy[4] %llu >= %zu)",
          mean_quarter, mean_bucket(&t), mean_full, (unsigned long long)t.occ[4], set.n / 2);
    hp_ssset_t set2;
    hp_ssset_of(&set2, &v);
    check_histogram("refilled", &v, &set2, &t);
    bad = hp_verify_all(&v);
    CHECK(bad == 0, "all %zu live blocks intact after the refill (%zu corrupted)", v.n - f1 - f2, bad);

    /* everything */
    hp_tot_t tb;
    for (size_t i = 0; i < v.n; i++)
        if (v.b[i].p)
            free(v.b[i].p);
    hp_stats(&st, &tb);
    hp_print_tot("all freed", &tb);
    hp_check_kernel("all freed", &st, &tb, &set2, false);
    uint64_t gone = (tb.released - t.released) / SS_SIZE;
    /* before ns_release, up to 3 stay in use: the thread's current slab,
     * the one spare slab with room it keeps (numa/bin.c), and the slabs of
     * the blocks its cache holds; ns_release() below gives them back */
    CHECK(tb.occ[0] + gone + 3 >= set2.n,
          "all freed: our SuperSlabs are empty (occupancy[0] %llu) or released (%llu), >= %zu - 3",
          (unsigned long long)tb.occ[0], (unsigned long long)gone, set2.n);
    ns_release();
    hp_stats(&st, &t);
    hp_print_tot("ns_release", &t);
    hp_check_kernel("ns_release", &st, &t, &set2, false);
    hp_mem_t m;
    hp_smaps(&set2, &m);
    CHECK(m.ss_covered <= 1, "ns_release: %llu of our %zu former SuperSlabs still mapped read-write (smaps; <= 1)",
          (unsigned long long)m.ss_covered, set2.n);
    CHECK(t.occ[0] == 0, "ns_release: no empty SuperSlab kept (occupancy[0] %llu)", (unsigned long long)t.occ[0]);
    CHECK(t.superslabs <= t0.superslabs + 1, "ns_release: superslabs %llu back to about the start (%llu)",
          (unsigned long long)t.superslabs, (unsigned long long)t0.superslabs);
    CHECK(t.released >= t0.released + (set2.n - 2) * SS_SIZE, "released_bytes grew by %.1f MiB (>= %zu SuperSlabs)",
          (t.released - t0.released) / (double)MiB, set2.n - 2);
    return hp_finish("hp_stats");
}
