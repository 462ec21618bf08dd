/* hp_1g - NUMASLAB_HUGE_1G: a 1 GiB block on a 1 GiB hugetlb page.
 *
 *   hp_1g on|off      (run by huge1g.sh, which reserves one 1 GiB page)
 *
 * on:  malloc(1 GiB) sits in a mapping whose KernelPageSize is 1048576 kB,
 *      the pool's free count drops by one while it lives and comes back
 *      after free; the contents written to every page read back.
 * off: the same request without the option is not on 1 GiB pages. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GIB ((size_t)1 << 30)
static int failures, checks;
#define CHECK(c, ...) do { checks++; if (!(c)) { failures++; printf("FAIL: " __VA_ARGS__); printf("\n"); } else printf("ok: %s\n", #c); } while (0)

static long free_1g(void)
{
    FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages", "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1) v = -1;
        fclose(f);
    }
    return v;
}

/* KernelPageSize (kB) of the mapping holding p, from /proc/self/smaps */
static long page_kb_of(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    int in = 0;
    long kb = -1;
    uintptr_t a = (uintptr_t)p;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') == line + strspn(line, "0123456789abcdef")) {
            in = a >= lo && a < hi;
            continue;
        }
        if (in && sscanf(line, "KernelPageSize: %ld kB", &kb) == 1)
            break;
    }
    if (f) fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    int on = argc > 1 && strcmp(argv[1], "on") == 0;
    long before = free_1g();
    unsigned char *p = malloc(GIB);
    CHECK(p != NULL, "malloc(1 GiB) = NULL");
    if (!p) {
        printf("%d passed, %d failed\n", checks - failures, failures);
        return 1;
    }
    for (size_t o = 0; o < GIB; o += 4096)
        p[o] = (unsigned char)(o >> 12);
    long kb = page_kb_of(p);
    long during = free_1g();
    size_t bad = 0;
    for (size_t o = 0; o < GIB; o += 4096)
        bad += p[o] != (unsigned char)(o >> 12);
    CHECK(bad == 0, "%zu pages lost their contents", bad);
    if (on) {
        CHECK(kb == 1048576, "KernelPageSize %ld kB, want 1048576", kb);
        CHECK(during == before - 1, "1 GiB pages free: %ld before, %ld while held", before, during);
    } else {
        CHECK(kb != 1048576, "without NUMASLAB_HUGE_1G the block is on 1 GiB pages");
        CHECK(during == before, "1 GiB pages free: %ld before, %ld while held (option off)", before, during);
    }
    free(p);
    long after = free_1g();
    CHECK(after == before, "1 GiB pages free after free(): %ld, want %ld", after, before);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures != 0;
}
