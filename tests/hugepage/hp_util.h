/* hp_util.h - helpers shared by the huge-page tests (header only).
 *
 * The test programs link libnumaslab.so, so malloc/free/malloc_trim are
 * numaslab's.  Their own bookkeeping (block lists, SuperSlab sets, the
 * smaps buffer) lives in mmap'd memory or .bss, never in the heap under
 * test, so it does not change what is measured.
 *
 * Output: one line per check ("ok ..." / "FAIL ..."), then
 * "N passed, N failed".  Exit 0 = all passed, 1 = a check failed,
 * 77 = skipped (the reason is printed first, as "SKIP: ...").
 */
#ifndef NS_HP_UTIL_H
#define NS_HP_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <numaslab.h>

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)
#define SS_SIZE ((size_t)2 << 20)
#define SS_UNIT ((size_t)64 << 10)
#define SS_BASE(p) ((uintptr_t)(p) & ~(uintptr_t)(SS_SIZE - 1))
#define SS_UNIT_OF(p) ((unsigned)(((uintptr_t)(p) >> 16) & 31))

static int hp_passed, hp_failed;

/* One check: counted, printed either way (the "ok" lines document what was
 * measured). */
#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (cond) {                                        \
            hp_passed++;                                   \
            printf("ok    ");                              \
        } else {                                           \
            hp_failed++;                                   \
            printf("FAIL  %s:%d: ", __FILE__, __LINE__);   \
        }                                                  \
        printf(__VA_ARGS__);                               \
        printf("\n");                                      \
        fflush(stdout);                                    \
    } while (0)

static inline void hp_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("      ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

static inline int hp_finish(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, hp_passed, hp_failed);
    fflush(stdout);
    return hp_failed ? 1 : 0;
}

static inline void hp_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("SKIP: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(77);
}

static inline const char *hp_pages_mode(void)
{
    const char *m = getenv("NUMASLAB_PAGES");
    return m && *m ? m : "thp";     /* numaslab's default */
}

/* ------------------------------------------------------------ mmap arena */
static inline void *hp_map(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        printf("FAIL  test bookkeeping: mmap(%zu): %s\n", bytes, strerror(errno));
        exit(1);
    }
    return p;
}

/* A block under test: its address, size and pattern seed. */
typedef struct hp_blk {
    unsigned char *p;
    uint32_t size;
    uint32_t seed;
} hp_blk_t;

typedef struct hp_blks {
    hp_blk_t *b;
    size_t n, cap;
} hp_blks_t;

static inline void hp_blks_init(hp_blks_t *v, size_t cap)
{
    v->b = hp_map(cap * sizeof(hp_blk_t));
    v->n = 0;
    v->cap = cap;
}

static inline hp_blk_t *hp_blks_push(hp_blks_t *v)
{
    if (v->n == v->cap) {
        printf("FAIL  test bookkeeping: more than %zu blocks\n", v->cap);
        exit(1);
    }
    return &v->b[v->n++];
}

/* Position-dependent pattern: neighbouring blocks never match by accident. */
static inline unsigned char hp_pat(uint32_t seed, size_t i)
{
    return (unsigned char)(seed * 0x9Du + 0x5Bu + i + (i >> 8) * 0x3Bu);
}

static inline void hp_fill(hp_blk_t *b)
{
    for (size_t i = 0; i < b->size; i++)
        b->p[i] = hp_pat(b->seed, i);
}

static inline bool hp_intact(const hp_blk_t *b)
{
    for (size_t i = 0; i < b->size; i++)
        if (b->p[i] != hp_pat(b->seed, i))
            return false;
    return true;
}

static inline uint64_t hp_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Sizes of "mixed small blocks": lo..hi, a multiple of 16 or not. */
static inline uint32_t hp_rand_size(uint64_t *s, uint32_t lo, uint32_t hi)
{
    return lo + (uint32_t)(hp_rand(s) % (hi - lo + 1));
}

/* malloc + fill, recorded.  false (and errno kept) when malloc says NULL. */
static inline bool hp_alloc_one(hp_blks_t *v, size_t size, uint32_t seed)
{
    unsigned char *p = malloc(size);
    if (!p)
        return false;
    hp_blk_t *b = hp_blks_push(v);
    b->p = p;
    b->size = (uint32_t)size;
    b->seed = seed;
    hp_fill(b);
    return true;
}

/* Blocks whose contents are wrong (the first few are printed). */
static inline size_t hp_verify_all(const hp_blks_t *v)
{
    size_t bad = 0;
    for (size_t i = 0; i < v->n; i++)
        if (v->b[i].p && !hp_intact(&v->b[i])) {
            if (bad++ < 5)
                hp_note("block %zu (%p, %u bytes) is corrupted", i, (void *)v->b[i].p, v->b[i].size);
        }
    return bad;
}

/* ------------------------------------------------------ SuperSlab sets */
typedef struct hp_ssset {
    uintptr_t *base;   /* sorted, unique */
    size_t n;
} hp_ssset_t;

static inline void hp_sift(uintptr_t *a, size_t r, size_t n)
{
    for (;;) {
        size_t c = 2 * r + 1;
        if (c >= n)
            return;
        if (c + 1 < n && a[c + 1] > a[c])
            c++;
        if (a[r] >= a[c])
            return;
        uintptr_t t = a[r];
        a[r] = a[c];
        a[c] = t;
        r = c;
    }
}

static inline void hp_sort(uintptr_t *a, size_t n)   /* heapsort: no malloc */
{
    for (size_t i = n / 2; i-- > 0;)
        hp_sift(a, i, n);
    for (size_t end = n; end-- > 1;) {
        uintptr_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        hp_sift(a, 0, end);
    }
}

/* The SuperSlabs (2 MiB-aligned regions) holding the live blocks of v that
 * numaslab owns (ns_node_of >= 0). */
static inline void hp_ssset_of(hp_ssset_t *s, const hp_blks_t *v)
{
    s->base = hp_map((v->n + 1) * sizeof(uintptr_t));
    size_t n = 0;
    for (size_t i = 0; i < v->n; i++)
        if (v->b[i].p && ns_node_of(v->b[i].p) >= 0)
            s->base[n++] = SS_BASE(v->b[i].p);
    hp_sort(s->base, n);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || s->base[u - 1] != s->base[i])
            s->base[u++] = s->base[i];
    s->n = u;
}

static inline bool hp_ssset_has(const hp_ssset_t *s, uintptr_t base)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->base[mid] < base) lo = mid + 1;
        else hi = mid;
    }
    return lo < s->n && s->base[lo] == base;
}

/* First index with base >= x. */
static inline size_t hp_ssset_lower(const hp_ssset_t *s, uintptr_t x)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->base[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* ------------------------------------------------------------- smaps */
static char hp_smaps_buf[32 << 20];   /* .bss: only what is read gets touched */

static inline size_t hp_read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == cap - 1)
            break;
    }
    close(fd);
    buf[len] = 0;
    return len;
}

/* What /proc/self/smaps says, in bytes.  "Heap" fields: totals over the
 * read-write VMAs that contain at least one SuperSlab of the set (found by
 * address); "proc" fields: over every read-write VMA of the process that
 * could hold SuperSlabs (anonymous, or hugetlb).  Sizes count whole 2 MiB
 * granules only (from the first 2 MiB boundary in the VMA to the last):
 * SuperSlabs are 2 MiB aligned, and a neighbour that merged into their VMA
 * (metadata with the same flags, at a reserved range's edge) is not one. */
typedef struct hp_mem {
    uint64_t rss;            /* Rss (anonymous / base and THP pages)       */
    uint64_t anon_huge;      /* AnonHugePages                              */
    uint64_t hugetlb;        /* Private_Hugetlb + Shared_Hugetlb            */
    uint64_t vmas;           /* VMAs counted                               */
    uint64_t vmas_kps2m;     /* of those, with KernelPageSize 2048 kB      */
    uint64_t vmas_hg;        /* ... with VmFlags hg (MADV_HUGEPAGE)        */
    uint64_t vmas_nh;        /* ... with VmFlags nh (MADV_NOHUGEPAGE)      */
    uint64_t vmas_ht;        /* ... with VmFlags ht (hugetlb)              */
    uint64_t ss_covered;     /* SuperSlabs of the set inside counted VMAs  */
    uint64_t bytes;          /* 2 MiB granules of the counted VMAs         */
    uint64_t bytes_ht;       /* ... of those that are hugetlb              */
    uint64_t bytes_hg;       /* ... MADV_HUGEPAGE (not hugetlb)            */
    uint64_t proc;           /* 2 MiB granules of the process's anonymous
                                or hugetlb read-write VMAs                 */
    uint64_t proc_ht, proc_hg;   /* ... hugetlb / MADV_HUGEPAGE            */
} hp_mem_t;

static inline uint64_t hp_kb_field(const char *line, const char *name)
{
    size_t l = strlen(name);
    if (strncmp(line, name, l) != 0 || line[l] != ':')
        return UINT64_MAX;
    return strtoull(line + l + 1, NULL, 10) * 1024;
}

static inline bool hp_has_flag(const char *flags, const char *f)
{
    /* flags: " rd wr mr ... hg" up to the end of line */
    const char *e = strchr(flags, '\n');
    size_t fl = strlen(f);
    for (const char *p = flags; p && (!e || p < e); p = strchr(p + 1, ' ')) {
        while (*p == ' ') p++;
        if (strncmp(p, f, fl) == 0 && (p[fl] == ' ' || p[fl] == '\n' || p[fl] == 0))
            return true;
        if (!*p) break;
    }
    return false;
}

static inline uint64_t hp_granules(uintptr_t lo, uintptr_t hi)
{
    uintptr_t a = (lo + SS_SIZE - 1) & ~(uintptr_t)(SS_SIZE - 1), b = hi & ~(uintptr_t)(SS_SIZE - 1);
    return b > a ? b - a : 0;
}

static inline void hp_smaps(const hp_ssset_t *set, hp_mem_t *m)
{
    memset(m, 0, sizeof *m);
    size_t len = hp_read_file("/proc/self/smaps", hp_smaps_buf, sizeof hp_smaps_buf);
    if (len == 0) {
        printf("FAIL  cannot read /proc/self/smaps\n");
        exit(1);
    }
    bool in = false, rw = false;   /* a heap VMA; a read-write VMA */
    unsigned long ino = 0;
    uint64_t gran = 0;
    char *line = hp_smaps_buf;
    while (line && *line) {
        char *next = strchr(line, '\n');
        if (next) next++;
        unsigned long lo, hi;
        char perms[8], dev[32];
        unsigned long long off;
        /* a VMA header: "lo-hi perms offset dev inode [path]"; a field
         * line starts with a name and ':' (never "hex-hex perms ...") */
        if (sscanf(line, "%lx-%lx %7s %llx %31s %lu", &lo, &hi, perms, &off, dev, &ino) == 6) {
            rw = perms[0] == 'r' && perms[1] == 'w';
            gran = hp_granules(lo, hi);
            size_t i = hp_ssset_lower(set, lo), k = 0;
            while (i + k < set->n && set->base[i + k] < hi)
                k++;
            in = rw && k > 0;
            if (in) {
                m->vmas++;
                m->ss_covered += k;
                m->bytes += gran;
            }
        } else if (strncmp(line, "VmFlags:", 8) == 0) {   /* the last field of a VMA */
            bool hg = hp_has_flag(line + 8, "hg"), nh = hp_has_flag(line + 8, "nh"), ht = hp_has_flag(line + 8, "ht");
            if (rw && (ht || ino == 0)) {   /* hugetlb, or anonymous */
                m->proc += gran;
                m->proc_ht += ht ? gran : 0;
                m->proc_hg += hg && !ht ? gran : 0;
            }
            if (in) {
                m->vmas_hg += hg;
                m->vmas_nh += nh;
                m->vmas_ht += ht;
                m->bytes_ht += ht ? gran : 0;
                m->bytes_hg += hg && !ht ? gran : 0;
            }
        } else if (in) {
            uint64_t v;
            if ((v = hp_kb_field(line, "Rss")) != UINT64_MAX) m->rss += v;
            else if ((v = hp_kb_field(line, "AnonHugePages")) != UINT64_MAX) m->anon_huge += v;
            else if ((v = hp_kb_field(line, "Private_Hugetlb")) != UINT64_MAX) m->hugetlb += v;
            else if ((v = hp_kb_field(line, "Shared_Hugetlb")) != UINT64_MAX) m->hugetlb += v;
            else if ((v = hp_kb_field(line, "KernelPageSize")) != UINT64_MAX) m->vmas_kps2m += v == 2 * MiB;
        }
        line = next;
    }
}

/* Share of the resident heap backed by huge pages (THP or hugetlb), 0..1. */
static inline double hp_huge_share(const hp_mem_t *m)
{
    uint64_t all = m->rss + m->hugetlb;
    return all ? (double)(m->anon_huge + m->hugetlb) / (double)all : 0.0;
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

/* Can this kernel collapse a range into a huge page on request (a mapping
 * of the test's own, one page written)? */
static inline bool hp_collapse_works(void)
{
    size_t span = 2 * SS_SIZE;
    unsigned char *m = mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return false;
    uintptr_t a = ((uintptr_t)m + SS_SIZE - 1) & ~(uintptr_t)(SS_SIZE - 1);
    ((volatile unsigned char *)a)[0] = 1;
    bool ok = madvise((void *)a, SS_SIZE, MADV_COLLAPSE) == 0;
    munmap(m, span);
    return ok;
}

/* Threads of this process: the entries of /proc/self/task. */
static inline int hp_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Read smaps every 20 ms until the heap's huge share reaches `want` or 3 s
 * passed (the release thread's collapses); m holds the last reading and
 * the milliseconds waited are returned. */
static inline long hp_wait_huge(const hp_ssset_t *set, hp_mem_t *m, double want)
{
    long waited = 0;
    for (;;) {
        hp_smaps(set, m);
        if (hp_huge_share(m) >= want || waited >= 3000)
            return waited;
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
        waited += 20;
    }
}

static inline void hp_print_mem(const char *when, const hp_mem_t *m)
{
    hp_note("%s: %llu VMA(s) holding %llu SuperSlab(s): Rss %.1f MiB, AnonHugePages %.1f MiB, hugetlb %.1f MiB "
            "(huge share %.1f %%); VmFlags hg %llu nh %llu ht %llu; KernelPageSize 2M %llu",
            when, (unsigned long long)m->vmas, (unsigned long long)m->ss_covered, m->rss / (double)MiB,
            m->anon_huge / (double)MiB, m->hugetlb / (double)MiB, 100.0 * hp_huge_share(m),
            (unsigned long long)m->vmas_hg, (unsigned long long)m->vmas_nh, (unsigned long long)m->vmas_ht,
            (unsigned long long)m->vmas_kps2m);
}

/* Resident 4 KiB pages of [base, base+len) by mincore; 0 when the range is
 * not mapped at all (ENOMEM). */
static inline long hp_resident(uintptr_t base, size_t len)
{
    static unsigned char vec[SS_SIZE / 4096 * 64];
    size_t pages = len / 4096;
    if (pages > sizeof vec)
        return -1;
    if (mincore((void *)base, len, vec) != 0)
        return errno == ENOMEM ? 0 : -1;
    long n = 0;
    for (size_t i = 0; i < pages; i++)
        n += vec[i] & 1;
    return n;
}

/* ------------------------------------------------------ /proc, /sys */
static inline long long hp_meminfo(const char *field)
{
    static char buf[16384];
    if (!hp_read_file("/proc/meminfo", buf, sizeof buf))
        return -1;
    size_t l = strlen(field);
    for (char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, field, l) == 0 && p[l] == ':')
            return strtoll(p + l + 1, NULL, 10);
    return -1;
}

static inline long long hp_read_ll(const char *path)
{
    char buf[128];
    if (!hp_read_file(path, buf, sizeof buf))
        return -1;
    return strtoll(buf, NULL, 10);
}

static inline long long hp_vmstat(const char *field)
{
    static char buf[65536];
    if (!hp_read_file("/proc/vmstat", buf, sizeof buf))
        return -1;
    size_t l = strlen(field);
    for (char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, field, l) == 0 && p[l] == ' ')
            return strtoll(p + l + 1, NULL, 10);
    return -1;
}

static inline long long hp_node_free_hugepages(int node)
{
    char path[160];
    snprintf(path, sizeof path, "/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/free_hugepages", node);
    return hp_read_ll(path);
}

/* The THP mode in brackets: "always", "madvise" or "never" ("" if none). */
static inline const char *hp_thp_mode(void)
{
    static char buf[256], mode[32];
    mode[0] = 0;
    if (!hp_read_file("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf))
        return mode;
    char *a = strchr(buf, '['), *b = a ? strchr(a, ']') : NULL;
    if (a && b && (size_t)(b - a - 1) < sizeof mode) {
        memcpy(mode, a + 1, (size_t)(b - a - 1));
        mode[b - a - 1] = 0;
    }
    return mode;
}

/* ------------------------------------------------------------ stats */
/* Totals over the nodes. */
typedef struct hp_tot {
    uint64_t superslabs, ss_hugetlb, ss_thp, ss_base, released, occ[5];
} hp_tot_t;

static inline void hp_stats(ns_stats_t *st, hp_tot_t *t)
{
    if (ns_stats_get(st) != 0) {
        printf("FAIL  ns_stats_get failed\n");
        exit(1);
    }
    memset(t, 0, sizeof *t);
    for (int n = 0; n < st->nodes && n < 64; n++) {
        const ns_node_stats_t *s = &st->node[n];
        t->superslabs += s->superslabs;
        t->ss_hugetlb += s->ss_hugetlb;
        t->ss_thp += s->ss_thp;
        t->ss_base += s->ss_base;
        t->released += s->released_bytes;
        for (int i = 0; i < 5; i++)
            t->occ[i] += s->occupancy[i];
    }
}

static inline void hp_print_tot(const char *when, const hp_tot_t *t)
{
    hp_note("%s: superslabs %llu (hugetlb %llu, thp %llu, base %llu), occupancy [%llu %llu %llu %llu %llu], "
            "released %.1f MiB",
            when, (unsigned long long)t->superslabs, (unsigned long long)t->ss_hugetlb,
            (unsigned long long)t->ss_thp, (unsigned long long)t->ss_base, (unsigned long long)t->occ[0],
            (unsigned long long)t->occ[1], (unsigned long long)t->occ[2], (unsigned long long)t->occ[3],
            (unsigned long long)t->occ[4], t->released / (double)MiB);
}

/* The SuperSlab statistics against the kernel (not against each other:
 * that the backing kinds or the occupancy buckets add up to `superslabs`
 * holds by construction in stats.c).  The tests make no large block, so
 * the read-write VMAs around the SuperSlabs of `set` (the 2 MiB regions of
 * the test's blocks, found by address) hold SuperSlabs only:
 *   - superslabs, each backing kind and the occupancy histogram, x 2 MiB,
 *     cover the 2 MiB granules of those VMAs (by kind: VmFlags ht hugetlb;
 *     hg THP, unless THP is "never", when numaslab counts them as base;
 *     anything else base);
 *   - and are at most what the whole process has mapped that could be
 *     SuperSlabs: hugetlb VMAs, anonymous MADV_HUGEPAGE VMAs, and, where
 *     SuperSlabs may be on base pages (NUMASLAB_PAGES=none, THP "never"),
 *     the other anonymous read-write VMAs (a loose bound);
 *   - mapped_bytes covers the Rss (+ hugetlb) of those VMAs.
 * `live`: every SuperSlab of the set holds a live block of the test, so each
 * must lie in a read-write VMA. */
static inline void hp_check_kernel(const char *when, const ns_stats_t *st, const hp_tot_t *t, const hp_ssset_t *set,
                                   bool live)
{
    hp_mem_t m;
    hp_smaps(set, &m);
    bool thp_on = strcmp(hp_thp_mode(), "never") != 0;
    uint64_t k_ht = m.bytes_ht, k_thp = thp_on ? m.bytes_hg : 0, k_base = m.bytes - k_ht - k_thp;
    uint64_t p_ht = m.proc_ht, p_thp = thp_on ? m.proc_hg : 0, p_base = m.proc - p_ht - p_thp;
    /* base-page SuperSlabs in every mode (THP mode: while sparse) */
    uint64_t cap = p_ht + p_thp + p_base, occ = 0;
    for (int i = 0; i < 5; i++)
        occ += t->occ[i];
    if (set->n) {
        if (live)
            CHECK(m.ss_covered == set->n, "%s: smaps: each of the %zu SuperSlabs holding our blocks lies in a "
                  "read-write mapping (%llu)", when, set->n, (unsigned long long)m.ss_covered);
        CHECK(t->superslabs * SS_SIZE >= m.bytes && occ * SS_SIZE >= m.bytes && t->ss_hugetlb * SS_SIZE >= k_ht &&
                  t->ss_thp * SS_SIZE >= k_thp && t->ss_base * SS_SIZE >= k_base,
              "%s: the SuperSlabs smaps shows around our blocks are counted: superslabs %llu (hugetlb %llu, thp %llu, "
              "base %llu; in the histogram %llu) x 2 MiB >= %.0f MiB in %llu read-write VMA(s) (hugetlb %.0f, "
              "MADV_HUGEPAGE %.0f, other %.0f)",
              when, (unsigned long long)t->superslabs, (unsigned long long)t->ss_hugetlb,
              (unsigned long long)t->ss_thp, (unsigned long long)t->ss_base, (unsigned long long)occ,
              m.bytes / (double)MiB, (unsigned long long)m.vmas, k_ht / (double)MiB, k_thp / (double)MiB,
              k_base / (double)MiB);
    }
    CHECK(t->superslabs * SS_SIZE <= cap && occ * SS_SIZE <= cap && t->ss_hugetlb * SS_SIZE <= p_ht &&
              t->ss_thp * SS_SIZE <= p_thp && t->ss_base * SS_SIZE <= p_base,
          "%s: no more SuperSlabs than the process has mapped: superslabs %llu (histogram %llu) x 2 MiB <= %.0f MiB; "
          "hugetlb %llu x 2 MiB <= %.0f MiB of hugetlb VMAs, thp %llu x 2 MiB <= %.0f MiB of MADV_HUGEPAGE VMAs, base %llu %s",
          when, (unsigned long long)t->superslabs, (unsigned long long)occ, cap / (double)MiB,
          (unsigned long long)t->ss_hugetlb, p_ht / (double)MiB, (unsigned long long)t->ss_thp, p_thp / (double)MiB,
          (unsigned long long)t->ss_base, "x 2 MiB <= the other anonymous read-write VMAs");
    CHECK(st->mapped_bytes >= m.rss + m.hugetlb, "%s: mapped_bytes %.1f MiB >= the %.1f MiB resident in those VMAs",
          when, st->mapped_bytes / (double)MiB, (m.rss + m.hugetlb) / (double)MiB);
}

#endif
