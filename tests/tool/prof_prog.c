/* prof_prog - known allocation sites for the heap profiler's tests
 * (tests/tool/prof.sh), run with libnumaslab preloaded.
 *
 *   prof_prog sites DUMP_PATH
 *     site_a: 40000 x 64 B, site_b: 20000 x 256 B, site_c: 2500 x 4096 B,
 *     site_large: 8 x 512 KiB, all live (live bytes 1 : 2 : 4 : 1.6);
 *     site_churn: 200000 x 128 B, each freed at once.  Then
 *     ns_prof_dump(DUMP_PATH) (found with dlsym: the program does not link
 *     numaslab), then half of site_c's blocks are freed before exit (the
 *     profile at exit).  Prints "dump RC ERRNO".
 *   prof_prog realloc DUMP_PATH
 *     one thread grows and shrinks a block from site_grow 3000 times
 *     (realloc, 300 KiB .. 5.3 MiB: it moves; 5 MiB at the end), while
 *     another allocates
 *     3000 blocks of 300 KiB at site_y, keeping the last 64 live, so
 *     that blocks land where the moving block was; then
 *     ns_prof_dump(DUMP_PATH).  Prints "grow BYTES" (the block's size at
 *     the end), "dump RC ERRNO" and "bad N" (damaged contents).
 *   prof_prog resize DUMP_PATH
 *     1000 blocks from site_up (300 KiB, then realloc to 1 MiB) and 1000
 *     from site_down (4 MiB, then realloc to 1 MiB), all live, written at
 *     their first byte only; then ns_prof_dump(DUMP_PATH).  Each site
 *     holds 1000 MiB: run with a sampling rate near the sizes, the
 *     profile's estimate shows whether a resized block is sampled with
 *     the odds of its new size.  Prints "dump RC ERRNO" and "bad N".
 *   prof_prog threads N
 *     N threads (more than cores) allocate from site_x and hand every other
 *     block to the next thread, which checks its contents and frees it;
 *     the main thread forks twice meanwhile (the child allocates, checks,
 *     frees and exits 0).  Prints "ok" when every block checked out.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
/* a call, not a tail jump, at any optimisation level: the site function
 * stays a frame of the stack */
static inline void *CALL(void *p)
{
    __asm__ volatile("" : "+r"(p)::"memory");
    return p;
}

static void *volatile sink;

NOINLINE void *site_a(void) { return CALL(malloc(64)); }
NOINLINE void *site_b(void) { return CALL(malloc(256)); }
NOINLINE void *site_c(void) { return CALL(malloc(4096)); }
NOINLINE void *site_large(void) { return CALL(malloc(512 << 10)); }
NOINLINE void *site_churn(void) { return CALL(malloc(128)); }
NOINLINE void *site_x(size_t n) { return CALL(malloc(n)); }
NOINLINE void *site_grow(void) { return CALL(malloc(300 << 10)); }
NOINLINE void *site_y(void) { return CALL(malloc(300 << 10)); }
NOINLINE void *site_up(void) { return CALL(malloc(300 << 10)); }
NOINLINE void *site_down(void) { return CALL(malloc(4 << 20)); }

static void fill(void *p, size_t n, unsigned tag)
{
    memset(p, (int)(tag & 0xff), n);
}

static int check(const void *p, size_t n, unsigned tag)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        if (c[i] != (tag & 0xff))
            return 0;
    return 1;
}

static int sites(const char *dump_path)
{
    static void *a[40000], *b[20000], *c[2500], *l[8];
    for (int i = 0; i < 40000; i++)
        fill(a[i] = site_a(), 64, 1);
    for (int i = 0; i < 20000; i++)
        fill(b[i] = site_b(), 256, 2);
    for (int i = 0; i < 2500; i++)
        fill(c[i] = site_c(), 4096, 3);
    for (int i = 0; i < 8; i++)
        fill(l[i] = site_large(), 512 << 10, 4);
    for (int i = 0; i < 200000; i++) {
        sink = site_churn();
        free(sink);
    }
    int (*dump)(const char *);
    void *f = dlsym(RTLD_DEFAULT, "ns_prof_dump");
    memcpy(&dump, &f, sizeof f);
    int rc = dump ? dump(dump_path) : -2;
    printf("dump %d %d\n", rc, rc ? errno : 0);
    int bad = 0;
    for (int i = 0; i < 40000; i++)
        bad += !check(a[i], 64, 1);
    for (int i = 0; i < 20000; i++)
        bad += !check(b[i], 256, 2);
    for (int i = 0; i < 2500; i++)
        bad += !check(c[i], 4096, 3);
    for (int i = 0; i < 8; i++)
        bad += !check(l[i], 512 << 10, 4);
    for (int i = 0; i < 2500; i += 2)
        free(c[i]);
    printf("bad %d\n", bad);
    return bad != 0;
}

/* ---------------------------------------------------------------- realloc */
static size_t grow_size;
static long realloc_bad;

static void *grower(void *arg)
{
    (void)arg;
    size_t n = 300 << 10;
    unsigned char *p = site_grow();
    p[0] = 0x5a, p[n - 1] = 0xa5;
    for (int i = 1; i <= 3000; i++) {
        size_t m = (300 << 10) + (size_t)((i * 7919) % 40) * (128 << 10);
        unsigned char *q = realloc(p, m);
        if (!q || q[0] != 0x5a || (m >= n && q[n - 1] != 0xa5)) {
            __atomic_add_fetch(&realloc_bad, 1, __ATOMIC_RELAXED);
            break;
        }
        p = q, n = m;
        p[n - 1] = 0xa5;
    }
    unsigned char *q = realloc(p, 5 << 20);   /* ends 5 MiB */
    if (!q || q[0] != 0x5a || q[n - 1] != 0xa5)
        __atomic_add_fetch(&realloc_bad, 1, __ATOMIC_RELAXED);
    else
        p = q, n = 5 << 20;
    grow_size = n;
    sink = p;                   /* live at the dump */
    return NULL;
}

static void *ys(void *arg)
{
    void **keep = arg;
    for (int i = 0; i < 3000; i++) {
        void *p = site_y();
        fill(p, 4096, (unsigned)i);
        if (i >= 64) {
            __atomic_add_fetch(&realloc_bad, !check(keep[i % 64], 4096, (unsigned)(i - 64)), __ATOMIC_RELAXED);
            free(keep[i % 64]);
        }
        keep[i % 64] = p;
    }
    return NULL;
}

static int reallocs(const char *dump_path)
{
    static void *keep[64];
    pthread_t g, y;
    pthread_create(&g, NULL, grower, NULL);
    pthread_create(&y, NULL, ys, keep);
    pthread_join(g, NULL);
    pthread_join(y, NULL);
    int (*dump)(const char *);
    void *f = dlsym(RTLD_DEFAULT, "ns_prof_dump");
    memcpy(&dump, &f, sizeof f);
    int rc = dump ? dump(dump_path) : -2;
    printf("grow %zu\ndump %d %d\nbad %ld\n", grow_size, rc, rc ? errno : 0, realloc_bad);
    return realloc_bad != 0;
}

/* ----------------------------------------------------------------- resize */
static int resizes(const char *dump_path)
{
    static char *up[1000], *down[1000];
    long bad = 0;
    for (int i = 0; i < 1000; i++) {
        char *p = site_up(), *q = site_down();
        if (!p || !q)
            return 1;
        p[0] = 1, q[0] = 2;
        up[i] = realloc(p, 1 << 20);
        down[i] = realloc(q, 1 << 20);
        if (!up[i] || !down[i])
            return 1;
        bad += up[i][0] != 1 || down[i][0] != 2;
    }
    int (*dump)(const char *);
    void *f = dlsym(RTLD_DEFAULT, "ns_prof_dump");
    memcpy(&dump, &f, sizeof f);
    int rc = dump ? dump(dump_path) : -2;
    printf("dump %d %d\nbad %ld\n", rc, rc ? errno : 0, bad);
    for (int i = 0; i < 1000; i++)
        free(up[i]), free(down[i]);
    return bad != 0;
}

/* ---------------------------------------------------------------- threads */
#define ROUNDS 20000
typedef struct box {
    pthread_mutex_t lock;
    void *slot[64];
    size_t size[64];
    unsigned tag[64];
    int n;
} box_t;

static box_t *boxes;
static int nthreads;
static long bad_blocks;

static void *worker(void *arg)
{
    long id = (long)arg;
    box_t *mine = &boxes[id], *next = &boxes[(id + 1) % nthreads];
    unsigned seed = (unsigned)id * 7919u + 1;
    long bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 16 + (seed >> 8) % 2000;
        unsigned tag = (unsigned)(id * 131 + r);
        void *p = site_x(n);
        fill(p, n, tag);
        if (r & 1) {            /* to the next thread */
            pthread_mutex_lock(&next->lock);
            if (next->n < 64) {
                next->slot[next->n] = p, next->size[next->n] = n, next->tag[next->n] = tag;
                next->n++;
                p = NULL;
            }
            pthread_mutex_unlock(&next->lock);
        }
        if (p) {
            bad += !check(p, n, tag);
            free(p);
        }
        pthread_mutex_lock(&mine->lock);
        while (mine->n > 0) {
            mine->n--;
            bad += !check(mine->slot[mine->n], mine->size[mine->n], mine->tag[mine->n]);
            free(mine->slot[mine->n]);
        }
        pthread_mutex_unlock(&mine->lock);
    }
    __atomic_add_fetch(&bad_blocks, bad, __ATOMIC_RELAXED);
    return NULL;
}

static int child_work(void)
{
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        size_t n = 16 + (size_t)i % 3000;
        void *p = site_x(n);
        fill(p, n, (unsigned)i);
        bad += !check(p, n, (unsigned)i);
        free(p);
    }
    return bad != 0;
}

static int threads(int n)
{
    nthreads = n;
    boxes = calloc((size_t)n, sizeof *boxes);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    for (int i = 0; i < n; i++)
        pthread_mutex_init(&boxes[i].lock, NULL);
    for (long i = 0; i < n; i++)
        pthread_create(&t[i], NULL, worker, (void *)i);
    int forks_bad = 0;
    for (int k = 0; k < 2; k++) {
        usleep(20000);
        pid_t pid = fork();
        if (pid == 0)
            _exit(child_work());
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            forks_bad++;
    }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < n; i++)
        while (boxes[i].n > 0) {
            boxes[i].n--;
            bad_blocks += !check(boxes[i].slot[boxes[i].n], boxes[i].size[boxes[i].n], boxes[i].tag[boxes[i].n]);
            free(boxes[i].slot[boxes[i].n]);
        }
    printf("%s bad_blocks %ld forks_bad %d\n", bad_blocks || forks_bad ? "FAIL" : "ok", bad_blocks, forks_bad);
    return bad_blocks || forks_bad;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 3 && !strcmp(argv[1], "sites"))
        return sites(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "resize"))
        return resizes(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "realloc"))
        return reallocs(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "threads"))
        return threads(atoi(argv[2]));
    fprintf(stderr, "usage: prof_prog sites DUMP_PATH | prof_prog realloc DUMP_PATH | prof_prog resize DUMP_PATH | prof_prog threads N\n");
    return 2;
}
