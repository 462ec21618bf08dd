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

/* Number of NUMA nodes the kernel reports online, or -1 if unknown.
 * Parses /sys/devices/system/node/online ("0", "0-3", "0,2-3"). */
static inline int sys_node_count(void)
{
    FILE *f = fopen("/sys/devices/system/node/online", "r");
    if (!f)
        return -1;
    char buf[256];
    if (!fgets(buf, sizeof buf, f)) {
        fclose(f);
        return -1;
    }
    fclose(f);
    int count = 0;
    char *s = buf;
    while (*s && *s != '\n') {
        char *end;
        long a = strtol(s, &end, 10);
        if (end == s)
            return -1;
        long b = a;
        s = end;
        if (*s == '-') {
            s++;
            b = strtol(s, &end, 10);
            if (end == s)
                return -1;
            s = end;
        }
        count += (int)(b - a + 1);
        if (*s == ',')
            s++;
    }
    return count;
}

#endif /* NS_INTEG_UTIL_H */
