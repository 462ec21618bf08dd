/* tail_rss - what large blocks cost in RSS, and what growing one costs
 * (issue 14).  Run it with any allocator preloaded:
 *
 *   tail_rss full  [N=30] [KIB=2970]   N blocks of KIB KiB, each written in full
 *   tail_rss first [N=30] [KIB=2970]   the same, each written at its first byte
 *   tail_rss grow  [FROM_MIB=3] [TO_MIB=256]
 *       one block grown by realloc 1 MiB at a time, each new MiB written;
 *       prints the time spent inside realloc and checks the contents
 *
 * RSS is /proc/self/statm's resident pages, before the first malloc and
 * after the last write; the ratio is that growth over the bytes asked for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long rss_bytes(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    if (f)
        fclose(f);
    return res * sysconf(_SC_PAGESIZE);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int blocks(int full, int n, size_t size)
{
    static char *p[1024];
    if (n > 1024)
        n = 1024;
    long before = rss_bytes();
    for (int i = 0; i < n; i++) {
        if (!(p[i] = malloc(size)))
            return 1;
        if (full)
            memset(p[i], i + 1, size);
        else
            p[i][0] = (char)(i + 1);
    }
    long after = rss_bytes();
    double ratio = (double)(after - before) / ((double)n * (full ? (double)size : 1.0));
    if (full)
        printf("%d blocks of %zu bytes written in full: RSS +%ld KiB, %.3fx their size\n", n, size,
               (after - before) >> 10, ratio);
    else
        printf("%d blocks of %zu bytes written at their first byte: RSS +%ld KiB, %.0f KiB per block\n", n,
               size, (after - before) >> 10, (double)(after - before) / n / 1024);
    for (int i = 0; i < n; i++)
        free(p[i]);
    return 0;
}

static int grow(size_t from, size_t to)
{
    const size_t mib = (size_t)1 << 20;
    unsigned char *p = malloc(from);
    if (!p)
        return 1;
    for (size_t i = 0; i < from; i++)
        p[i] = (unsigned char)(i * 7 + (i >> 20));
    double in_realloc = 0;
    size_t have = from;
    long peak = rss_bytes();
    while (have < to) {
        size_t next = have + mib;
        double t0 = now_s();
        unsigned char *q = realloc(p, next);
        in_realloc += now_s() - t0;
        if (!q)
            return 1;
        p = q;
        for (size_t i = have; i < next; i++)
            p[i] = (unsigned char)(i * 7 + (i >> 20));
        have = next;
        long r = rss_bytes();
        if (r > peak)
            peak = r;
    }
    for (size_t i = 0; i < have; i++)
        if (p[i] != (unsigned char)(i * 7 + (i >> 20))) {
            printf("FAIL: byte %zu lost in realloc\n", i);
            return 1;
        }
    printf("grew %zu -> %zu MiB by 1 MiB reallocs: %.2f ms inside realloc, peak RSS %ld MiB\n", from / mib,
           have / mib, in_realloc * 1e3, peak >> 20);
    free(p);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "full";
    if (strcmp(mode, "grow") == 0) {
        size_t from = argc > 2 ? strtoul(argv[2], NULL, 0) : 3, to = argc > 3 ? strtoul(argv[3], NULL, 0) : 256;
        return grow(from << 20, to << 20);
    }
    int n = argc > 2 ? atoi(argv[2]) : 30;
    size_t kib = argc > 3 ? strtoul(argv[3], NULL, 0) : 2970;
    return blocks(strcmp(mode, "first") != 0, n, kib << 10);
}
