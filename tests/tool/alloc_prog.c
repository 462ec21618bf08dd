/* alloc_prog.c - a known allocation pattern for the statistics tests.
 *
 *   alloc_prog N SIZE KEEP
 * allocates N blocks of SIZE bytes (each written), frees all but the first
 * KEEP, and exits through exit() with those KEEP blocks still allocated,
 * so the statistics printed at exit must show them as live.  Linked
 * normally: numaslab reaches it only through LD_PRELOAD (numaslab run). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: alloc_prog N SIZE KEEP\n");
        return 2;
    }
    long n = atol(argv[1]), keep = atol(argv[3]);
    size_t size = (size_t)atol(argv[2]);
    if (n <= 0 || keep < 0 || keep > n || size == 0)
        return 2;
    void **p = calloc((size_t)n, sizeof *p);    /* a different size class from SIZE (8 * N bytes) */
    if (!p)
        return 3;
    for (long i = 0; i < n; i++) {
        p[i] = malloc(size);
        if (!p[i])
            return 3;
        memset(p[i], (int)(i & 0xff), size);
    }
    for (long i = keep; i < n; i++)
        free(p[i]);
    for (long i = 0; i < keep; i++)          /* the kept ones are intact */
        if (((unsigned char *)p[i])[size - 1] != (unsigned char)(i & 0xff))
            return 4;
    exit(0);                                  /* p[0..keep) stay allocated */
}
