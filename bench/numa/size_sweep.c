/* size_sweep - cost of malloc+free around the large threshold.
 *
 *   size_sweep [ITERATIONS]
 *
 * For each size from 64 KiB to 8 MiB, keeps a window of 8 live blocks
 * (written once in full first) and replaces one per iteration (free the
 * oldest, allocate, touch the first and last byte), single-threaded.  Prints ns per replacement.  Run it under
 * each allocator (LD_PRELOAD) to see where a dedicated, cached mapping
 * (numaslab above 256 KiB) stops costing more than a slab class. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    long iters = argc > 1 ? atol(argv[1]) : 200000;
    static const size_t sizes[] = {64 << 10, 192 << 10, 256 << 10, (256 << 10) + 1, 384 << 10,
                                   1 << 20, 2 << 20, 4 << 20, 8 << 20};
    printf("%10s %12s\n", "size", "ns/op");
    for (unsigned s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t sz = sizes[s];
        char *win[8] = {0};
        for (unsigned k = 0; k < 8; k++) {       /* warm-up: first faults are not the point */
            win[k] = malloc(sz);
            if (!win[k]) { perror("malloc"); return 1; }
            memset(win[k], 1, sz);
        }
        double t0 = now();
        for (long i = 0; i < iters; i++) {
            unsigned k = (unsigned)i & 7;
            free(win[k]);
            win[k] = malloc(sz);
            if (!win[k]) { perror("malloc"); return 1; }
            win[k][0] = (char)i;
            win[k][sz - 1] = (char)i;
        }
        double t = now() - t0;
        for (unsigned k = 0; k < 8; k++) free(win[k]);
        printf("%10zu %12.0f\n", sz, t / iters * 1e9);
    }
    return 0;
}
