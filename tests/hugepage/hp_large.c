/* hp_large.c - what large blocks cost in RSS on huge pages (issue 14).
 *
 *   hp_large tail     thirty 2.9 MiB blocks written in full cost at most
 *                     1.02x their size (RSS from smaps_rollup); each block's
 *                     tail granule refuses huge pages (VmFlags nh) and holds
 *                     no page past the block (mincore); the whole granules
 *                     still get huge pages (AnonHugePages)
 *   hp_large sparse   a 4 MiB block written at its first byte: with
 *                     NUMASLAB_LARGE_THP=0 it costs < 64 KiB and no part of
 *                     it asks for huge pages; otherwise the cost is printed
 *
 * Run under thp.sh (THP available, or a skip). */
#include <malloc.h>

#include "hp_util.h"

static const size_t blk = 2970 * KiB;     /* 2.9 MiB: 2 MiB + a 0.9 MiB tail */
enum { NBLK = 30 };

static void rollup(uint64_t *rss, uint64_t *anon_huge)
{
    static char buf[8192];
    if (hp_read_file("/proc/self/smaps_rollup", buf, sizeof buf) == 0)
        hp_skip("no /proc/self/smaps_rollup (Linux 4.14)");
    *rss = *anon_huge = 0;
    for (char *line = buf; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        uint64_t v;
        if ((v = hp_kb_field(line, "Rss")) != UINT64_MAX) *rss = v;
        else if ((v = hp_kb_field(line, "AnonHugePages")) != UINT64_MAX) *anon_huge = v;
    }
}

/* Does the VMA holding address a carry VmFlags flag f?  -1: no such VMA. */
static int vma_flag(const void *a, const char *f)
{
    size_t len = hp_read_file("/proc/self/smaps", hp_smaps_buf, sizeof hp_smaps_buf);
    bool in = false;
    for (char *line = hp_smaps_buf; len && line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s ", &lo, &hi, perms) == 3)   /* a VMA header */
            in = (uintptr_t)a >= lo && (uintptr_t)a < hi;
        else if (in && strncmp(line, "VmFlags:", 8) == 0)
            return hp_has_flag(line + 8, f);
    }
    return -1;
}

static size_t resident(const void *p, size_t len)
{
    static unsigned char vec[(4 * MiB) / 4096];
    size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 0;
    if (len > sizeof vec * page || mincore((void *)p, len, vec) != 0)
        return SIZE_MAX;
    for (size_t i = 0; i < (len + page - 1) / page; i++)
        n += vec[i] & 1;
    return n * page;
}

static int tail(void)
{
    static char *b[NBLK];
    uint64_t rss0, huge0, rss1, huge1;
    free(malloc(100));                  /* start-up done before measuring */
    rollup(&rss0, &huge0);
    for (int i = 0; i < NBLK; i++) {
        b[i] = malloc(blk);
        if (!b[i])
            hp_skip("malloc(%zu) failed", blk);
        memset(b[i], i + 1, blk);
    }
    rollup(&rss1, &huge1);
    double ratio = (double)(rss1 - rss0) / (double)(NBLK * blk);
    CHECK(ratio <= 1.02, "%d blocks of %zu bytes written in full: RSS +%llu KiB, %.3fx their size (<= 1.02x)", NBLK,
          blk, (unsigned long long)(rss1 - rss0) >> 10, ratio);
    CHECK(huge1 - huge0 <= NBLK * SS_SIZE, "AnonHugePages +%llu KiB: at most one huge page (the whole granule) per block",
          (unsigned long long)(huge1 - huge0) >> 10);
    CHECK(huge1 - huge0 >= NBLK * SS_SIZE / 2, "at least half of the whole granules are huge pages (%llu of %d)",
          (unsigned long long)((huge1 - huge0) / SS_SIZE), NBLK);
    size_t page = (size_t)sysconf(_SC_PAGESIZE), in_tail = ((blk + page - 1) & ~(page - 1)) - SS_SIZE, worst = 0;
    int nh = 0, hg = 0, clean = 0;
    for (int i = 0; i < NBLK; i++) {
        size_t r = resident(b[i] + SS_SIZE, SS_SIZE);
        hg += vma_flag(b[i], "hg") == 1;
        nh += vma_flag(b[i] + SS_SIZE, "nh") == 1;
        clean += r <= in_tail;
        worst = r > worst ? r : worst;
    }
    CHECK(hg == NBLK, "whole granules ask for huge pages (VmFlags hg): %d of %d", hg, NBLK);
    CHECK(nh == NBLK, "tail granules refuse them (VmFlags nh): %d of %d", nh, NBLK);
    CHECK(clean == NBLK, "nothing resident past a block's end (mincore): %d of %d, worst tail %zu KiB for %zu", clean,
          NBLK, worst >> 10, in_tail >> 10);
    for (int i = 0; i < NBLK; i++)
        free(b[i]);
    return hp_finish("hp_large tail");
}

static int sparse(void)
{
    const char *opt = getenv("NUMASLAB_LARGE_THP");
    bool off = opt && strcmp(opt, "0") == 0;
    uint64_t rss0, huge0, rss1, huge1;
    free(malloc(4 * MiB));      /* start-up and the address map's leaf for */
    malloc_trim(0);             /* large blocks done, nothing cached */
    rollup(&rss0, &huge0);
    char *p = malloc(4 * MiB);
    if (!p)
        hp_skip("malloc(4 MiB) failed");
    p[0] = 1;
    rollup(&rss1, &huge1);
    size_t r = resident(p, 4 * MiB);
    if (!off) {
        hp_note("NUMASLAB_LARGE_THP=%s: a 4 MiB block written at its first byte costs %zu KiB (RSS +%llu KiB)",
                opt ? opt : "(unset)", r >> 10, (unsigned long long)(rss1 - rss0) >> 10);
        CHECK(vma_flag(p, "hg") == 1, "its first granule asks for huge pages");
    } else {
        CHECK(r < 64 * KiB, "written at its first byte, it has %zu KiB resident (< 64 KiB)", r >> 10);
        /* the process's RSS also counts numaslab's metadata (a Debug
         * build's validators add 64 KiB): far below one huge page */
        CHECK(rss1 - rss0 < 256 * KiB, "RSS +%llu KiB (< 256 KiB)", (unsigned long long)(rss1 - rss0) >> 10);
        CHECK(huge1 == huge0, "AnonHugePages unchanged (+%lld KiB)", (long long)(huge1 - huge0) >> 10);
        CHECK(vma_flag(p, "nh") == 1 && vma_flag(p + 2 * MiB, "nh") == 1, "no granule asks for huge pages (VmFlags nh)");
    }
    free(p);
    return hp_finish("hp_large sparse");
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "tail";
    return strcmp(mode, "sparse") == 0 ? sparse() : tail();
}
