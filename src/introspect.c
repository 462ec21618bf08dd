/* introspect.c - glibc's heap introspection API (mallinfo2, mallinfo,
 * malloc_stats, malloc_info, mallopt) answered from numaslab's own
 * figures: the collection behind ns_stats_get (stats.c, stats_collect).
 * Built with the malloc family (override.c), so only the libraries that
 * replace malloc define these symbols; the sanitizer cores, which keep the
 * sanitizers' malloc, do not.
 *
 * The mapping of the fields (README, "glibc's introspection API"):
 *   arena     all bytes mapped: SuperSlabs + live and cached large mappings
 *   ordblks   SuperSlabs mapped
 *   smblks    freed large mappings kept for reuse
 *   hblks     live large mappings
 *   hblkhd    their bytes (reserved, part of arena)
 *   usmblks   0 (as glibc)
 *   fsmblks   bytes of the cached large mappings (free, part of arena)
 *   uordblks  bytes in use: small blocks handed out or in thread caches,
 *             plus the usable bytes of live large blocks
 *   fordblks  arena - uordblks: free room in slabs and SuperSlabs, the
 *             large cache, and the rounding of large mappings
 *   keepcost  bytes of empty SuperSlabs (what malloc_trim(0) gives back)
 * mallinfo has the same fields as int: values above INT_MAX saturate at
 * INT_MAX (glibc's wrap around).
 *
 * Output goes through stdio (malloc_stats to stderr, malloc_info to the
 * caller's FILE), which may allocate: every figure is collected first and
 * no allocator lock is held while printing. */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include <numaslab.h>

typedef unsigned long long ull;

NS_API struct mallinfo2 mallinfo2(void)
{
    ns_stats_t st;
    stats_collect(&st, NULL);
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = st.mapped_bytes;
    for (int n = 0; n < st.nodes && n < 64; n++) {
        const ns_node_stats_t *x = &st.node[n];
        mi.ordblks += x->superslabs;
        mi.smblks += x->large_cached;
        mi.hblks += x->large_count;
        mi.hblkhd += x->large_bytes;
        mi.fsmblks += x->large_cached_bytes;
        mi.keepcost += x->occupancy[0] * NS_SS_SIZE;
    }
    mi.uordblks = st.in_use_bytes;
    mi.fordblks = st.mapped_bytes > st.in_use_bytes ? st.mapped_bytes - st.in_use_bytes : 0;
    return mi;
}

static int sat(size_t v) { return v > (size_t)INT_MAX ? INT_MAX : (int)v; }

NS_API struct mallinfo mallinfo(void)
{
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi;
    mi.arena = sat(m2.arena);
    mi.ordblks = sat(m2.ordblks);
    mi.smblks = sat(m2.smblks);
    mi.hblks = sat(m2.hblks);
    mi.hblkhd = sat(m2.hblkhd);
    mi.usmblks = sat(m2.usmblks);
    mi.fsmblks = sat(m2.fsmblks);
    mi.uordblks = sat(m2.uordblks);
    mi.fordblks = sat(m2.fordblks);
    mi.keepcost = sat(m2.keepcost);
    return mi;
}

/* glibc's layout ("Arena N:" becomes "Node N:"), then numaslab's own
 * per-node figures, on stderr. */
NS_API void malloc_stats(void)
{
    ns_stats_t st;
    uint64_t lu[64];
    stats_collect(&st, lu);
    uint64_t large_count = 0, large_bytes = 0;
    for (int n = 0; n < st.nodes && n < 64; n++) {
        const ns_node_stats_t *x = &st.node[n];
        fprintf(stderr, "Node %d:\n", n);
        fprintf(stderr, "system bytes     = %10llu\n",
                (ull)(x->superslab_bytes + x->large_bytes + x->large_cached_bytes));
        fprintf(stderr, "in use bytes     = %10llu\n", (ull)(x->small_in_use + lu[n]));
        fprintf(stderr, "remote frees     = %10llu\n", (ull)x->remote_frees);
        fprintf(stderr, "spills           = %10llu\n", (ull)x->spills);
        large_count += x->large_count;
        large_bytes += x->large_bytes;
    }
    fprintf(stderr, "Total (incl. mmap):\n");
    fprintf(stderr, "system bytes     = %10llu\n", (ull)st.mapped_bytes);
    fprintf(stderr, "in use bytes     = %10llu\n", (ull)st.in_use_bytes);
    fprintf(stderr, "mmap regions     = %10llu\n", (ull)large_count);
    fprintf(stderr, "mmap bytes       = %10llu\n", (ull)large_bytes);
    fprintf(stderr, "threads          = %10llu\n", (ull)st.threads);
}

/* XML: one <node> per NUMA node, one <size> per size class in use, then
 * the process's totals.  Every value is an integer attribute. */
NS_API int malloc_info(int opts, FILE *fp)
{
    if (opts != 0 || !fp)
        return EINVAL;
    ns_stats_t st;
    uint64_t lu[64];
    stats_collect(&st, lu);
    fprintf(fp, "<malloc version=\"1\" allocator=\"numaslab\" numaslab_version=\"%d.%d.%d\">\n", NS_VERSION_MAJOR,
            NS_VERSION_MINOR, NS_VERSION_PATCH);
    for (int n = 0; n < st.nodes && n < 64; n++) {
        const ns_node_stats_t *x = &st.node[n];
        fprintf(fp, "<node id=\"%d\">\n", n);
        fprintf(fp, "<system type=\"current\" size=\"%llu\"/>\n",
                (ull)(x->superslab_bytes + x->large_bytes + x->large_cached_bytes));
        fprintf(fp, "<inuse size=\"%llu\" small=\"%llu\" large=\"%llu\"/>\n", (ull)(x->small_in_use + lu[n]),
                (ull)x->small_in_use, (ull)lu[n]);
        fprintf(fp, "<superslabs count=\"%llu\" size=\"%llu\" hugetlb=\"%llu\" thp=\"%llu\" base=\"%llu\" "
                    "slabs=\"%llu\"/>\n",
                (ull)x->superslabs, (ull)x->superslab_bytes, (ull)x->ss_hugetlb, (ull)x->ss_thp, (ull)x->ss_base,
                (ull)x->slabs);
        fprintf(fp, "<occupancy empty=\"%llu\" q1=\"%llu\" q2=\"%llu\" q3=\"%llu\" full=\"%llu\"/>\n",
                (ull)x->occupancy[0], (ull)x->occupancy[1], (ull)x->occupancy[2], (ull)x->occupancy[3],
                (ull)x->occupancy[4]);
        fprintf(fp, "<total type=\"mmap\" count=\"%llu\" size=\"%llu\"/>\n", (ull)x->large_count,
                (ull)x->large_bytes);
        fprintf(fp, "<total type=\"mmap_cached\" count=\"%llu\" size=\"%llu\"/>\n", (ull)x->large_cached,
                (ull)x->large_cached_bytes);
        fprintf(fp, "<remote frees=\"%llu\" drained=\"%llu\"/>\n", (ull)x->remote_frees, (ull)x->remote_drained);
        fprintf(fp, "<spills count=\"%llu\"/>\n<released size=\"%llu\"/>\n</node>\n", (ull)x->spills,
                (ull)x->released_bytes);
    }
    fprintf(fp, "<sizes>\n");
    for (int k = 0; k < NS_STATS_CLASSES; k++) {
        const ns_class_stats_t *cs = &st.classes[k];
        if (!cs->requests && !cs->live_blocks && !cs->slabs)
            continue;
        fprintf(fp, "<size class=\"%d\" size=\"%u\" requests=\"%llu\" refills=\"%llu\" live_blocks=\"%llu\" "
                    "slabs=\"%llu\"/>\n",
                k, cs->size, (ull)cs->requests, (ull)cs->refills, (ull)cs->live_blocks, (ull)cs->slabs);
    }
    fprintf(fp, "</sizes>\n");
    fprintf(fp, "<system type=\"current\" size=\"%llu\"/>\n<inuse size=\"%llu\"/>\n<threads count=\"%llu\"/>\n",
            (ull)st.mapped_bytes, (ull)st.in_use_bytes, (ull)st.threads);
    fprintf(fp, "</malloc>\n");
    return 0;
}

/* mallopt: 1 when the parameter is taken, 0 otherwise (glibc's convention).
 *   M_TRIM_THRESHOLD  bytes of free memory kept for reuse: the per-node
 *                     cache of freed large mappings (NUMASLAB_LARGE_CACHE);
 *                     0..1 TiB
 *   M_MMAP_THRESHOLD  accepted in glibc's range (0..32 MiB), no effect:
 *                     every request above 256 KiB gets its own mapping and
 *                     smaller ones come from size classes, by design
 *   M_ARENA_MAX       accepted when positive, no effect: numaslab's arenas
 *                     are its per-node pools, one per NUMA node in use;
 *                     fewer would move memory off its threads' node
 *   anything else     0, nothing changes (M_MXFAST, M_TOP_PAD, M_MMAP_MAX,
 *                     M_CHECK_ACTION, M_PERTURB, M_ARENA_TEST) */
NS_API int mallopt(int param, int value)
{
    switch (param) {
    case M_TRIM_THRESHOLD:
        if (value < 0)
            return 0;
        __atomic_store_n(&options.large_cache, (int64_t)value, __ATOMIC_RELAXED);
        return 1;
    case M_MMAP_THRESHOLD:
        return value >= 0 && value <= 32 * 1024 * 1024;
    case M_ARENA_MAX:
        return value > 0;
    default:
        return 0;
    }
}
