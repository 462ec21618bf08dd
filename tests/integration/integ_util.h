/* integ_util.h - small helpers shared by the integration tests (header only).
 *
 * Everything here is static inline so that each test file gets its own copy
 * and unused helpers do not warn.
 */
#ifndef NS_INTEG_UTIL_H
#define NS_INTEG_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)
#define GiB (MiB * KiB)

#define PAT_OK ((size_t)-1)

/* Position-dependent byte pattern: neighbouring blocks with different seeds
 * and shifted copies of a block never match by accident. */
static inline unsigned char pat_byte(uint32_t seed, size_t i)
{
    return (unsigned char)(seed * 0x9Du + 0x5Bu + i + (i >> 8) * 0x3Bu + (i >> 16) * 0x11u);
}

static inline void pat_fill(void *p, size_t n, uint32_t seed)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        c[i] = pat_byte(seed, i);
}

/* PAT_OK, or the offset of the first wrong byte. */
static inline size_t pat_check(const void *p, size_t n, uint32_t seed)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != pat_byte(seed, i))
            return i;
    return PAT_OK;
}

/* Pattern written at one byte per page (for very large blocks). */
static inline void pat_fill_sparse(void *p, size_t n, uint32_t seed, size_t step)
{
    unsigned char *c = p;
    for (size_t i = 0; i < n; i += step)
        c[i] = pat_byte(seed, i);
    if (n)
        c[n - 1] = pat_byte(seed, n - 1);
}

static inline size_t pat_check_sparse(const void *p, size_t n, uint32_t seed, size_t step)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i += step)
        if (c[i] != pat_byte(seed, i))
            return i;
    if (n && c[n - 1] != pat_byte(seed, n - 1))
        return n - 1;
    return PAT_OK;
}

/* PAT_OK, or the offset of the first byte that is not `v`. */
static inline size_t first_not(const void *p, size_t n, unsigned char v)
{
    const unsigned char *c = p;
    size_t i = 0;
    /* word-at-a-time for speed on multi-MiB blocks */
    uint64_t w;
    memset(&w, v, sizeof w);
    while (i < n && ((uintptr_t)(c + i) & 7))
        if (c[i++] != v)
            return i - 1;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, c + i, 8);
        if (x != w)
            break;
    }
    for (; i < n; i++)
        if (c[i] != v)
            return i;
    return PAT_OK;
}

static inline int is_aligned(const void *p, size_t a)
{
    return ((uintptr_t)p & (a - 1)) == 0;
}

static inline size_t page_size(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    return ps > 0 ? (size_t)ps : 4096;
}

static inline int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------ NUMA nodes
 * What the kernel says, independent of numaslab: the online nodes
 * (/sys/devices/system/node/online: "0", "0-3", "0,2-3"), their CPUs, and
 * the node each page of ours is on (move_pages(2) in query mode). */

#define SYS_NODES_MAX 1024

/* Marks online[id] = 1 for every online node; returns the highest id + 1
 * (numaslab numbers node slots the same way), or -1 if unknown. */
static inline int sys_node_online(unsigned char online[SYS_NODES_MAX])
{
    memset(online, 0, SYS_NODES_MAX);
    FILE *f = fopen("/sys/devices/system/node/online", "r");
    if (!f)
        return -1;
    char buf[256];
    if (!fgets(buf, sizeof buf, f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    int slots = 0;
    char *s = buf;
    while (*s && *s != '\n') {
        char *end;
        long a = strtol(s, &end, 10);
        if (end == s || a < 0 || a >= SYS_NODES_MAX)
            return -1;
        long b = a;
        s = end;
        if (*s == '-') {
            s++;
            b = strtol(s, &end, 10);
            if (end == s || b < a || b >= SYS_NODES_MAX)
                return -1;
            s = end;
        }
        for (long i = a; i <= b; i++)
            online[i] = 1;
        if (b + 1 > slots)
            slots = (int)b + 1;
        if (*s == ',')
            s++;
    }
    return slots > 0 ? slots : -1;
}

/* Number of NUMA nodes the kernel reports online, or -1 if unknown. */
static inline int sys_node_count(void)
{
    unsigned char online[SYS_NODES_MAX];
    if (sys_node_online(online) < 0)
        return -1;
    int count = 0;
    for (int i = 0; i < SYS_NODES_MAX; i++)
        count += online[i];
    return count;
}

/* Highest online node id + 1, or -1 if unknown. */
static inline int sys_node_slots(void)
{
    unsigned char online[SYS_NODES_MAX];
    return sys_node_online(online);
}

/* The node each page is on: move_pages(pid 0, nodes NULL) only queries.
 * status[i] is the node, or a negative errno (-ENOENT: not present).
 * Returns 0, or -1 with errno when the call itself failed. */
static inline int pages_node(void *const *pages, size_t n, int *status)
{
#ifdef SYS_move_pages
    return syscall(SYS_move_pages, 0, (unsigned long)n, pages, NULL, status, 0) == 0 ? 0 : -1;
#else
    (void)pages, (void)n, (void)status;
    errno = ENOSYS;
    return -1;
#endif
}

/* The node of the page holding p (touched first, so it is present), or a
 * value below 0: -1000 - errno when move_pages failed, -errno for the page. */
static inline int page_node_of(volatile unsigned char *p)
{
    *p = *p;
    void *page = (void *)((uintptr_t)p & ~(uintptr_t)(page_size() - 1));
    int status = -1;
    if (pages_node(&page, 1, &status) != 0)
        return -1000 - errno;
    return status;
}

/* ------------------------------------------------------------ smaps
 * The kernel's view of the process's mappings (/proc/self/smaps), read
 * into static storage (no allocation while the heap is measured). */
typedef struct smaps_vma {
    uintptr_t lo, hi;
    unsigned char rw;       /* readable and writable                       */
    unsigned char anon;     /* no file behind it (inode 0)                 */
    unsigned char advice;   /* VmFlags: 1 hg (MADV_HUGEPAGE), 2 nh (MADV_NOHUGEPAGE), else 0 */
    uint64_t rss, anon_huge, hugetlb;   /* bytes                           */
} smaps_vma_t;

#define SMAPS_MAX_VMAS 16384

typedef struct smaps {
    smaps_vma_t v[SMAPS_MAX_VMAS];
    size_t n;
} smaps_t;

static inline uint64_t smaps_kb(const char *line, const char *name)
{
    size_t l = strlen(name);
    if (strncmp(line, name, l) != 0 || line[l] != ':')
        return UINT64_MAX;
    return strtoull(line + l + 1, NULL, 10) * 1024;
}

/* Reads /proc/self/smaps into *m; 0, or -1 if it could not be read. */
static inline int smaps_read(smaps_t *m)
{
    static char buf[8 << 20];
    m->n = 0;
    int fd = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == sizeof buf - 1)
            break;
    }
    close(fd);
    buf[len] = 0;
    smaps_vma_t *cur = NULL;
    for (char *line = buf; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        unsigned long lo, hi, ino;
        char perms[8], dev[32];
        unsigned long long off;
        if (sscanf(line, "%lx-%lx %7s %llx %31s %lu", &lo, &hi, perms, &off, dev, &ino) == 6) {
            if (m->n == SMAPS_MAX_VMAS)
                return -1;
            cur = &m->v[m->n++];
            memset(cur, 0, sizeof *cur);
            cur->lo = lo;
            cur->hi = hi;
            cur->rw = perms[0] == 'r' && perms[1] == 'w';
            cur->anon = ino == 0;
        } else if (cur) {
            uint64_t v;
            if ((v = smaps_kb(line, "Rss")) != UINT64_MAX)
                cur->rss += v;
            else if ((v = smaps_kb(line, "AnonHugePages")) != UINT64_MAX)
                cur->anon_huge += v;
            else if ((v = smaps_kb(line, "Private_Hugetlb")) != UINT64_MAX ||
                     (v = smaps_kb(line, "Shared_Hugetlb")) != UINT64_MAX)
                cur->hugetlb += v;
            else if (strncmp(line, "VmFlags:", 8) == 0)
                cur->advice = strstr(line, " hg") ? 1 : strstr(line, " nh") ? 2 : 0;
        }
        line = next;
    }
    return m->n ? 0 : -1;
}

/* The mapping that contains address a, or NULL. */
static inline const smaps_vma_t *smaps_find(const smaps_t *m, uintptr_t a)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (m->v[mid].hi <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < m->n && m->v[lo].lo <= a ? &m->v[lo] : NULL;
}

/* The run of adjacent read-write mappings from the one holding a up to
 * one that reaches a + len, as one (a large block is a few VMAs: its
 * huge-page part and its tail); *out zeroed (lo == hi) if there is none. */
static inline void smaps_span(const smaps_t *m, uintptr_t a, size_t len, smaps_vma_t *out)
{
    memset(out, 0, sizeof *out);
    const smaps_vma_t *v = smaps_find(m, a);
    if (!v || !v->rw)
        return;
    *out = *v;
    for (v++; out->hi < a + len && v < m->v + m->n && v->lo == out->hi && v->rw; v++) {
        out->hi = v->hi;
        out->rss += v->rss;
        out->anon_huge += v->anon_huge;
        out->hugetlb += v->hugetlb;
        out->advice = out->advice == v->advice ? out->advice : 0;
    }
}

/* Totals over the distinct read-write mappings that contain at least one
 * of the addresses (found by address, each mapping counted once). */
typedef struct smaps_sum {
    uint64_t vmas, bytes, rss, anon_huge, hugetlb;
    int advice;             /* the VMAs' common advice (see smaps_vma_t), -1 if mixed */
    uint64_t unmapped;      /* addresses in no read-write mapping          */
} smaps_sum_t;

static inline void smaps_sum_of(const smaps_t *m, void *const *addrs, size_t n, smaps_sum_t *s)
{
    static unsigned char seen[SMAPS_MAX_VMAS];
    memset(seen, 0, sizeof seen);
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < n; i++) {
        const smaps_vma_t *v = addrs[i] ? smaps_find(m, (uintptr_t)addrs[i]) : NULL;
        if (!addrs[i])
            continue;
        if (!v || !v->rw) {
            s->unmapped++;
            continue;
        }
        size_t k = (size_t)(v - m->v);
        if (seen[k])
            continue;
        seen[k] = 1;
        s->vmas++;
        s->bytes += v->hi - v->lo;
        s->rss += v->rss;
        s->anon_huge += v->anon_huge;
        s->hugetlb += v->hugetlb;
        s->advice = s->vmas == 1 || s->advice == v->advice ? v->advice : -1;
    }
}

/* Bytes of the anonymous read-write mappings of the process; advice >= 0:
 * only those with that advice (see smaps_vma_t). */
static inline uint64_t smaps_anon_rw_bytes(const smaps_t *m, int advice)
{
    uint64_t b = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->v[i].rw && m->v[i].anon && (advice < 0 || m->v[i].advice == advice))
            b += m->v[i].hi - m->v[i].lo;
    return b;
}

#endif /* NS_INTEG_UTIL_H */
