/* mallinfo_prog.c - a program that logs mallinfo2, as servers do, linked
 * normally (glibc's malloc) and run under LD_PRELOAD=libnumaslab.so by
 * preload_mallinfo.sh.  Under the preload its mallinfo2 must be
 * numaslab's: equal to ns_stats_get (found with dlsym, read with no
 * allocation in between) and moved by exactly the usable bytes of the
 * blocks it holds (after ns_release flushed its thread cache).
 * Prints one line "mallinfo2: numaslab ..." or "mallinfo2: not numaslab";
 * exits 1 on a mismatch. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the head of numaslab.h's ns_stats_t (the program is not built against it) */
typedef struct {
    int nodes;
    uint64_t mapped_bytes, in_use_bytes, threads;
} head_t;

int main(void)
{
    int (*get)(void *, size_t);
    size_t (*release)(void);
    *(void **)&get = dlsym(RTLD_DEFAULT, "ns_stats_get_sized");
    *(void **)&release = dlsym(RTLD_DEFAULT, "ns_release");
    if (!get || !release) {
        printf("mallinfo2: not numaslab\n");
        return 0;
    }
    enum { N = 5000 };
    static void *p[N];
    release();
    struct mallinfo2 m0 = mallinfo2();
    size_t want = 0;
    for (int i = 0; i < N; i++) {
        size_t n = 24 + (size_t)(i % 50) * 40 + (i % 997 == 0 ? 400000 : 0);
        p[i] = malloc(n);
        if (!p[i])
            return 2;
        memset(p[i], i & 0xff, n);
        want += malloc_usable_size(p[i]);
    }
    release();
    head_t h;
    if (get(&h, sizeof h) != 0)
        return 2;
    struct mallinfo2 m1 = mallinfo2();
    int bad = 0;
    if (m1.arena != h.mapped_bytes || m1.uordblks != h.in_use_bytes) {
        fprintf(stderr, "mallinfo2 arena %zu uordblks %zu, ns_stats_get mapped %llu in use %llu\n", m1.arena,
                m1.uordblks, (unsigned long long)h.mapped_bytes, (unsigned long long)h.in_use_bytes);
        bad = 1;
    }
    if (m1.uordblks - m0.uordblks != want) {
        fprintf(stderr, "uordblks moved by %zu, the program holds %zu usable bytes\n", m1.uordblks - m0.uordblks,
                want);
        bad = 1;
    }
    if (m1.hblks - m0.hblks != 6) {     /* i = 0, 997, ... 4985: 6 blocks above 256 KiB */
        fprintf(stderr, "hblks moved by %zu, want 6\n", m1.hblks - m0.hblks);
        bad = 1;
    }
    for (int i = 0; i < N; i++) {
        if (((unsigned char *)p[i])[23] != (i & 0xff))
            bad = 1;
        free(p[i]);
    }
    printf("mallinfo2: numaslab arena %zu uordblks %zu (+%zu) hblks %zu\n", m1.arena, m1.uordblks, want, m1.hblks);
    return bad;
}
