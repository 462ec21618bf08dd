/* clash.c - a program that defines functions named like numaslab's
 * internals (as any program may) and links libnumaslab.a statically: the
 * archive's internals are local, so the program's own definitions win in
 * the program and the allocator keeps its own.  Exits 0 when both work. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <numaslab.h>

static int calls;
/* names of numaslab internals (src/base, src/hugepage, src/superslab,
 * src/numa, src/stats.c) */
void options_init(void) { calls++; }
int topo_load(void) { return ++calls; }
void *large_alloc(size_t n) { calls++; return (void *)n; }
void *meta_alloc(size_t n) { calls++; return (void *)(n + 1); }
void stats_print(void) { calls++; }
void stats_collect(void) { calls++; }
int hp_map(int x) { return x + ++calls; }
int options(void) { return 7; }

int main(void)
{
    options_init();
    topo_load();
    if (large_alloc(5) != (void *)5 || meta_alloc(5) != (void *)6 || hp_map(1) != 6 || options() != 7) {
        fprintf(stderr, "clash: the program's own functions were not called\n");
        return 1;
    }
    stats_print();
    stats_collect();
    /* the allocator still works: large and small blocks, contents kept */
    char *big = malloc(8 << 20), *small = malloc(100);
    if (!big || !small || ns_node_of(big) < 0 || ns_node_of(small) < 0) {
        fprintf(stderr, "clash: malloc is not numaslab's\n");
        return 1;
    }
    memset(big, 0x5a, 8 << 20);
    strcpy(small, "numaslab");
    if (big[(8 << 20) - 1] != 0x5a || strcmp(small, "numaslab") != 0 || calls != 7)
        return 1;
    /* glibc's introspection comes from the archive too: numaslab's figures
     * (arena counts the 8 MiB mapping, which glibc's leaves out of arena;
     * glibc takes M_PERTURB, numaslab does not) */
    struct mallinfo2 mi = mallinfo2();
    if (mi.hblks < 1 || mi.hblkhd < (8u << 20) || mi.arena < mi.hblkhd || mi.uordblks < (8u << 20) ||
        mallopt(M_ARENA_MAX, 1) != 1 || mallopt(M_PERTURB, 1) != 0) {
        fprintf(stderr, "clash: mallinfo2/mallopt are not numaslab's (arena %zu hblks %zu)\n", mi.arena, mi.hblks);
        return 1;
    }
    free(big);
    free(small);
    printf("clash: 7 program functions named like internals, allocator and mallinfo2 intact\n");
    return 0;
}
