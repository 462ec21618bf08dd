/* probe.c - proves that LD_PRELOAD=libnumaslab.so is in effect.
 *
 * Linked normally (not against numaslab).  Usage:
 *   probe numaslab   the library must be loaded and own the malloc family
 *   probe absent     the library must not be there (plain glibc malloc)
 * Exit 0 when every check holds, 1 otherwise (each failure is printed).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <glob.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef int (*node_of_fn)(const void *);

static int failures;
static node_of_fn node_of;
static int nodes = 1;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "probe: FAIL %s:%d: %s: ", __FILE__, __LINE__, \
                    #cond);                                                \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
            failures++;                                                    \
        }                                                                  \
    } while (0)

static int count_nodes(void)
{
    glob_t g;
    int n = 1;
    if (glob("/sys/devices/system/node/node[0-9]*", 0, NULL, &g) == 0) {
        n = (int)g.gl_pathc;
        globfree(&g);
    }
    return n > 0 ? n : 1;
}

static int maps_mention(const char *needle)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            found = 1;
    fclose(f);
    return found;
}

/* Which shared object defines the symbol that global lookup finds. */
static const char *owner_of(const char *sym)
{
    void *addr = dlsym(RTLD_DEFAULT, sym);
    Dl_info info;
    if (!addr)
        return "(not found)";
    if (!dladdr(addr, &info) || !info.dli_fname)
        return "(unknown)";
    return info.dli_fname;
}

/* A block handed out through the malloc family must be ours. */
static void check_ours(const char *what, const void *p, size_t size)
{
    int n;
    CHECK(p != NULL, "%s returned NULL (errno %d)", what, errno);
    if (!p)
        return;
    n = node_of(p);
    CHECK(n >= 0 && n < nodes, "ns_node_of(%s block %p) = %d, want 0..%d",
          what, p, n, nodes - 1);
    if (nodes == 1)
        CHECK(n == 0, "single NUMA node machine but ns_node_of(%s) = %d", what, n);
    if (size)
        CHECK(malloc_usable_size((void *)p) >= size,
              "malloc_usable_size(%s block) = %zu < %zu", what,
              malloc_usable_size((void *)p), size);
}

static void *thread_alloc(void *arg)
{
    (void)arg;
    return malloc(777);
}

static int expect_numaslab(void)
{
    static const char *family[] = {
        "malloc", "free", "calloc", "realloc", "posix_memalign",
        "aligned_alloc", "memalign", "valloc", "malloc_usable_size",
        "reallocarray", "pvalloc", "malloc_trim",
    };
    size_t i;
    int stack_var = 0;
    volatile size_t huge = SIZE_MAX - 4096;
    void *p, *q;
    char *s;
    pthread_t t;

    CHECK(maps_mention("libnumaslab") == 1, "libnumaslab is not in /proc/self/maps");

    node_of = (node_of_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "ns_node_of");
    CHECK(node_of != NULL, "dlsym(RTLD_DEFAULT, \"ns_node_of\") found nothing");
    if (!node_of)
        return 1;
    CHECK(strstr(owner_of("ns_node_of"), "libnumaslab") != NULL,
          "ns_node_of comes from %s", owner_of("ns_node_of"));
    for (i = 0; i < sizeof family / sizeof family[0]; i++)
        CHECK(strstr(owner_of(family[i]), "libnumaslab") != NULL,
              "%s resolves into %s, not libnumaslab", family[i], owner_of(family[i]));

    /* not ours */
    CHECK(node_of(&stack_var) == -1, "ns_node_of(stack) = %d, want -1", node_of(&stack_var));
    CHECK(node_of(NULL) == -1, "ns_node_of(NULL) = %d, want -1", node_of(NULL));
    q = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q != MAP_FAILED) {
        CHECK(node_of(q) == -1, "ns_node_of(private mmap) = %d, want -1", node_of(q));
        munmap(q, 1 << 16);
    }

    /* ours, through every entry point */
    p = malloc(100);
    check_ours("malloc(100)", p, 100);
    memset(p, 0x5a, 100);
    p = realloc(p, 1 << 20);
    check_ours("realloc(1 MiB)", p, 1 << 20);
    CHECK(((unsigned char *)p)[99] == 0x5a, "realloc lost the contents");
    free(p);
    p = calloc(1000, 8);
    check_ours("calloc(1000, 8)", p, 8000);
    for (i = 0; p && i < 8000; i++)
        if (((unsigned char *)p)[i]) {
            CHECK(0, "calloc block not zero at byte %zu", i);
            break;
        }
    free(p);
    p = malloc(10 << 20);
    check_ours("malloc(10 MiB)", p, 10 << 20);
    free(p);
    p = NULL;
    CHECK(posix_memalign(&p, 4096, 5000) == 0, "posix_memalign failed");
    check_ours("posix_memalign(4096)", p, 5000);
    CHECK(((uintptr_t)p & 4095) == 0, "posix_memalign(4096) gave %p", p);
    free(p);
    p = aligned_alloc(256, 512);
    check_ours("aligned_alloc(256)", p, 512);
    CHECK(((uintptr_t)p & 255) == 0, "aligned_alloc(256) gave %p", p);
    free(p);
    p = memalign(64, 64);
    check_ours("memalign(64)", p, 64);
    CHECK(((uintptr_t)p & 63) == 0, "memalign(64) gave %p", p);
    free(p);
    p = valloc(10);
    check_ours("valloc", p, 10);
    CHECK(((uintptr_t)p & ((uintptr_t)sysconf(_SC_PAGESIZE) - 1)) == 0, "valloc gave %p", p);
    free(p);
    /* glibc-internal allocations go through the interposed malloc too */
    s = strdup("numaslab preload probe");
    check_ours("strdup", s, 23);
    free(s);
    s = NULL;
    CHECK(asprintf(&s, "%d-%s", 42, "asprintf") > 0, "asprintf failed");
    check_ours("asprintf", s, 0);
    free(s);
    /* a block malloc'd by another thread, freed here */
    CHECK(pthread_create(&t, NULL, thread_alloc, NULL) == 0, "pthread_create");
    p = NULL;
    pthread_join(t, &p);
    check_ours("malloc in a thread", p, 777);
    free(p);
    /* failure path */
    errno = 0;
    p = malloc(huge);
    CHECK(p == NULL && errno == ENOMEM, "malloc(SIZE_MAX-4096) = %p errno %d", p, errno);
    free(p);
    return failures ? 1 : 0;
}

static int expect_absent(void)
{
    void *p;
    CHECK(maps_mention("libnumaslab") == 0, "libnumaslab is mapped without LD_PRELOAD");
    CHECK(dlsym(RTLD_DEFAULT, "ns_node_of") == NULL, "ns_node_of found without LD_PRELOAD");
    CHECK(strstr(owner_of("malloc"), "libc.so") != NULL,
          "malloc resolves into %s without preload", owner_of("malloc"));
    p = malloc(100);
    CHECK(p != NULL, "malloc");
    free(p);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    int rc;
    nodes = count_nodes();
    if (argc != 2 || (strcmp(argv[1], "numaslab") && strcmp(argv[1], "absent"))) {
        fprintf(stderr, "usage: %s numaslab|absent\n", argv[0]);
        return 2;
    }
    rc = strcmp(argv[1], "numaslab") == 0 ? expect_numaslab() : expect_absent();
    printf("probe %s: %s (%d failure%s, %d NUMA node%s)\n", argv[1],
           rc ? "FAIL" : "ok", failures, failures == 1 ? "" : "s", nodes,
           nodes == 1 ? "" : "s");
    return rc;
}
