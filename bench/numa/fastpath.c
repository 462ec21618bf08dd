/* fastpath - N malloc/free pairs of one size on the thread-cache path.
 *
 *   fastpath N SIZE
 *
 * Keeps a window of 16 live blocks (allocated before the loop) and per
 * iteration frees the oldest and mallocs a new one, writing its first byte.
 * Meant to run under callgrind twice (N and 2N): the difference of the two
 * instruction counts divided by N is the cost of one malloc/free pair plus a
 * few instructions of loop.  Prints one FASTPATH line naming the malloc
 * library found in /proc/self/maps, so a wrapper can check that the preload
 * reached this process. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The malloc library mapped: a shared object whose file name (not its
 * directory: a client built in /tmp/numaslab-... runs glibc's) names one. */
static const char *malloc_lib(void)
{
    static char found[256] = "glibc";
    static const char *names[] = {"numaslab", "mimalloc", "jemalloc", "tcmalloc", NULL};
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    while (f && fgets(line, sizeof line, f)) {
        const char *base = strrchr(line, '/');
        if (!base || !strstr(base, ".so"))
            continue;
        for (int i = 0; names[i]; i++)
            if (strstr(base, names[i])) {
                snprintf(found, sizeof found, "%s", names[i]);
                goto out;
            }
    }
out:
    if (f) fclose(f);
    return found;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fastpath N SIZE\n");
        return 64;
    }
    long n = atol(argv[1]);
    size_t size = (size_t)atol(argv[2]);
    char *win[16];
    for (int k = 0; k < 16; k++) {
        win[k] = malloc(size);
        if (!win[k]) return 1;
        win[k][0] = 1;
    }
    for (long i = 0; i < n; i++) {
        unsigned k = (unsigned)i & 15;
        free(win[k]);
        win[k] = malloc(size);
        if (!win[k]) {
            fprintf(stderr, "malloc(%zu) failed\n", size);
            return 1;
        }
        win[k][0] = (char)i;
    }
    long check = 0;
    for (int k = 0; k < 16; k++) {
        check += win[k][0];
        free(win[k]);
    }
    printf("FASTPATH n=%ld size=%zu lib=%s check=%ld\n", n, size, malloc_lib(), check);
    return 0;
}
