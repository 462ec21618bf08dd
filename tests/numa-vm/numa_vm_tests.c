/* numa_vm_tests.c - NUMA behaviour of numaslab, run inside a multi-node VM.
 *
 *   numa_vm_tests TEST        TEST = topo | placement | crossnode | onnode |
 *                                    migrate | spill
 *
 * Built against libnumaslab.so (so malloc is numaslab's too) and libnuma.
 * Meant to run inside tests/numa-vm/run-in-numa-vm.sh (driver: vm-driver.sh),
 * i.e. on a machine with >= 2 NUMA nodes; on a one-node machine most tests
 * fail with "needs >= 2 nodes".  Each test prints one summary line on
 * success, or one "FAIL <test>: <reason>" line and exits 1.
 *
 * The program re-executes itself pinned to the last node first (so that the
 * allocator always starts up away from node 0); the tests' threads are then
 * started on, or pinned to, the nodes they test with sched_setaffinity.
 *
 * Page placement is read back with move_pages(2) in query mode (nodes=NULL);
 * block ownership with ns_node_of(); counters with ns_stats_get().
 *
 *  topo       the allocator sees as many nodes as the kernel, and has
 *             opened libhwloc (dlopen: not linked, not on one node)
 *  highaddr   blocks lie where the kernel places mmap (arm64: near 2^48)
 *             and are found (ns_node_of)
 *  placement  per node, a pinned thread allocates + touches every size class
 *             (16 B .. 256 KiB) and 1/4/16 MiB blocks: >= 99 % of the pages
 *             on its node, ns_node_of == its node for every block
 *  crossnode  producers on node B fill blocks, consumers on node A verify
 *             and free them; afterwards new blocks of B's threads are on B
 *             and A's on A; small_in_use returns to its baseline, node B's
 *             remote_drained grew by (almost) the number of cross-node frees
 *  onnode     ns_malloc_onnode(size, n) from a thread on ANOTHER node puts
 *             every page on n (proves mbind before first touch); bad node
 *             -> NULL + EINVAL
 *  migrate    a thread allocates on node 0, moves itself to node 1 (and the
 *             last node), allocates enough to force refills: new blocks are
 *             on the new node (except what its cache held)
 *  spill      a thread on node 0 allocates node 0's MemFree + 64 MiB:
 *             never NULL, the last blocks are on another node, node 0 counts
 *             spills (ns_node_stats_t.spills)
 *  parked     cross-node frees wait in the freeing thread's run; malloc_trim
 *             from another thread hands over the runs of a sleeping one
 *  prof       the heap profiler (NUMASLAB_PROF): a site's live bytes on the
 *             node of its thread, another site's blocks freed by a thread
 *             of the other node counted as its remote frees
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "numaslab.h"

#define PAGE ((size_t)4096)
#define MAXN 64
#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

static const char *test_name = "?";
static int nnodes;                      /* numa_num_configured_nodes()   */
static int cpu_node_list[MAXN], ncpu_nodes; /* nodes that have CPUs       */

/* ================================================================ helpers */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    printf("FAIL %s: %s\n", test_name, buf);
    fflush(stdout);
    _exit(1);
}
#define CHECK(cond, ...) do { if (!(cond)) fail(__VA_ARGS__); } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Bookkeeping memory straight from the kernel, so that it does not show up
 * in the allocator's statistics. */
static void *xmap(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED, "mmap(%zu) for bookkeeping failed: %s", bytes, strerror(errno));
    return p;
}
static void xunmap(void *p, size_t bytes) { munmap(p, bytes); }

static uint64_t rng_next(uint64_t *s)      /* xorshift64* */
{
    uint64_t x = *s;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* The allocator's 96 size classes: 16-byte steps up to 128, then eight
 * classes per doubling up to 256 KiB (src/tiny/sizeclass.c). */
static int size_classes(size_t *out)
{
    int n = 0;
    for (size_t s = 16; s <= 128; s += 16)
        out[n++] = s;
    for (size_t p = 128; p < 256 * KiB; p *= 2)
        for (size_t k = 1; k <= 8; k++)
            out[n++] = p + k * p / 8;
    return n;
}

static void touch(void *p, size_t size, unsigned char v)
{
    unsigned char *c = p;
    for (size_t off = 0; off < size; off += PAGE)
        c[off] = v;
    c[size - 1] = v;
}

/* ------------------------------------------------------------ pinning
 * The node <-> CPU tables are built once in main() with libnuma.  Pinning
 * itself calls only sched_setaffinity/sched_getcpu: libnuma's helpers
 * (numa_run_on_node, numa_node_of_cpu) malloc, and a thread's first malloc
 * may decide its node before the pinning took effect. */
#define MAXCPU 1024
static cpu_set_t node_cpus[MAXN];
static int cpu_node[MAXCPU];

static int cur_node(void)
{
    int c = sched_getcpu();
    return c >= 0 && c < MAXCPU ? cpu_node[c] : -1;
}

/* Pin the calling thread to node n's CPUs (as a program or numactl would,
 * with sched_setaffinity) and wait until it runs there. */
static void pin_to_node(int n)
{
    CHECK(sched_setaffinity(0, sizeof node_cpus[n], &node_cpus[n]) == 0, "sched_setaffinity(node %d): %s",
          n, strerror(errno));
    for (int i = 0; cur_node() != n; i++) {
        CHECK(i < 1000, "thread does not run on node %d after sched_setaffinity (on %d)", n, cur_node());
        sched_yield();
        usleep(1000);
    }
}

/* Start fn(arg) in a thread that runs on node n from its first instruction
 * (so its first malloc happens there), and pins itself there again. */
static void start_on_node(pthread_t *t, int n, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    CHECK(pthread_attr_setaffinity_np(&attr, sizeof node_cpus[n], &node_cpus[n]) == 0,
          "pthread_attr_setaffinity_np(node %d) failed", n);
    CHECK(pthread_create(t, &attr, fn, arg) == 0, "pthread_create failed");
    pthread_attr_destroy(&attr);
}

/* ------------------------------------------------------------ placement */
typedef struct where {
    size_t pages;                       /* pages queried                  */
    size_t on[MAXN];                    /* pages found on each node       */
    size_t absent;                      /* not present / error            */
} where_t;

static void where_pages(where_t *w, void **pages, size_t n)
{
    enum { BATCH = 4096 };
    static _Thread_local int status[BATCH];
    for (size_t i = 0; i < n; i += BATCH) {
        size_t k = n - i < BATCH ? n - i : BATCH;
        long rc = numa_move_pages(0, (unsigned long)k, pages + i, NULL, status, 0);
        CHECK(rc == 0, "move_pages(query) failed: %s", strerror(errno));
        for (size_t j = 0; j < k; j++) {
            if (status[j] >= 0 && status[j] < MAXN)
                w->on[status[j]]++;
            else
                w->absent++;
        }
        w->pages += k;
    }
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return x < y ? -1 : x > y;
}

/* Where the pages of blocks[0..n) are (each page counted once). */
static void where_blocks(where_t *w, void **blocks, const size_t *sizes, size_t n)
{
    size_t np = 0;
    for (size_t i = 0; i < n; i++)
        np += ((uintptr_t)blocks[i] + sizes[i] - 1) / PAGE - (uintptr_t)blocks[i] / PAGE + 1;
    void **pages = xmap(np * sizeof *pages);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (uintptr_t a = (uintptr_t)blocks[i] / PAGE; a <= ((uintptr_t)blocks[i] + sizes[i] - 1) / PAGE; a++)
            pages[k++] = (void *)(a * PAGE);
    qsort(pages, k, sizeof *pages, cmp_ptr);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || pages[i] != pages[u - 1])
            pages[u++] = pages[i];
    where_pages(w, pages, u);
    xunmap(pages, np * sizeof *pages);
}

static double pct(size_t part, size_t whole) { return whole ? 100.0 * (double)part / (double)whole : 100.0; }

static void where_str(const where_t *w, char *buf, size_t cap)
{
    int o = snprintf(buf, cap, "%zu pages:", w->pages);
    for (int n = 0; n < nnodes && n < MAXN && o < (int)cap; n++)
        o += snprintf(buf + o, cap - (size_t)o, " n%d=%zu", n, w->on[n]);
    if (o < (int)cap)
        snprintf(buf + o, cap - (size_t)o, " absent=%zu", w->absent);
}

static void need_two_nodes(void)
{
    CHECK(nnodes >= 2 && ncpu_nodes >= 2, "needs >= 2 NUMA nodes with CPUs (kernel shows %d nodes, %d with CPUs)",
          nnodes, ncpu_nodes);
}

static void stats(ns_stats_t *st)
{
    CHECK(ns_stats_get(st) == 0, "ns_stats_get failed");
}

/* ================================================================ topo */
static int test_topo(void)
{
    ns_stats_t st;
    void *p = malloc(100);          /* make sure the allocator is up */
    free(p);
    stats(&st);
    /* libnumaslab does not link hwloc (one-node machines never map it):
     * it opened libhwloc.so.15 with dlopen because this machine has more
     * than one node (this program links libnuma, not hwloc) */
    char line[512];
    bool hwloc = false;
    FILE *maps = fopen("/proc/self/maps", "r");
    CHECK(maps != NULL, "/proc/self/maps: %s", strerror(errno));
    while (!hwloc && fgets(line, sizeof line, maps))
        hwloc = strstr(line, "/libhwloc.so") != NULL;
    fclose(maps);
    printf("topo: kernel nodes=%d (with cpus %d), allocator nodes=%d, libhwloc %s\n", nnodes, ncpu_nodes, st.nodes,
           hwloc ? "mapped" : "not mapped");
    CHECK(st.nodes == nnodes, "allocator uses %d node(s), the kernel shows %d", st.nodes, nnodes);
    CHECK(hwloc, "libhwloc is not mapped on a machine with %d nodes (dlopen in src/numa/topo.c)", nnodes);
    return 0;
}

/* ================================================================ highaddr
 * The address maps cover what the kernel hands out: Debian's arm64 kernel
 * places mmap just below 2^48, above the 47 bits of x86-64.  The truth is
 * the kernel's own placement of a plain mmap: numaslab's blocks must lie
 * in the same part of the address space, be usable and be found. */
static int test_highaddr(void)
{
    void *m = xmap(2 * MiB);
    uintptr_t kernel_at = (uintptr_t)m;
    static const size_t sizes[] = {16, 1000, 100000, 300 * KiB, 1 * MiB, 16 * MiB};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    void *p[NS];
    uintptr_t hi = 0;
    for (int i = 0; i < NS; i++) {
        p[i] = malloc(sizes[i]);
        CHECK(p[i] != NULL, "malloc(%zu): %s", sizes[i], strerror(errno));
        memset(p[i], 0x5a + i, sizes[i]);
        CHECK(ns_node_of(p[i]) >= 0, "ns_node_of(%p) = %d: a block of ours not found", p[i], ns_node_of(p[i]));
        if ((uintptr_t)p[i] > hi)
            hi = (uintptr_t)p[i];
    }
    CHECK(ns_node_of(m) == -1, "ns_node_of(plain mmap %p) = %d, want -1", m, ns_node_of(m));
    for (int i = 0; i < NS; i++) {
        const unsigned char *c = p[i];
        CHECK(c[0] == (unsigned char)(0x5a + i) && c[sizes[i] - 1] == (unsigned char)(0x5a + i),
              "block %p changed", p[i]);
        free(p[i]);
    }
    xunmap(m, 2 * MiB);
    int kbits = 64 - __builtin_clzl(kernel_at), bbits = 64 - __builtin_clzl(hi);
    printf("highaddr: the kernel maps at %#lx (%d bits), blocks up to %#lx (%d bits)\n",
           (unsigned long)kernel_at, kbits, (unsigned long)hi, bbits);
    CHECK(kbits == bbits, "blocks at %d-bit addresses, the kernel's mappings at %d-bit ones", bbits, kbits);
    return 0;
}

/* ================================================================ placement */
typedef struct placement_job {
    pthread_t tid;
    int node;
    size_t blocks, bad_owner, owner[MAXN + 1];   /* owner[MAXN]: not ours */
    where_t w;
    char err[160];
} placement_job_t;

static void *placement_thread(void *arg)
{
    placement_job_t *j = arg;
    pin_to_node(j->node);
    size_t cls[128];
    int ncls = size_classes(cls);
    static const size_t large[] = {1 * MiB, 4 * MiB, 16 * MiB};
    size_t cap = 0;
    for (int c = 0; c < ncls; c++) {
        size_t cnt = 256 * KiB / cls[c];
        cap += cnt < 4 ? 4 : cnt > 1024 ? 1024 : cnt;
    }
    cap += 3;
    void **ptr = xmap(cap * sizeof *ptr);
    size_t *sz = xmap(cap * sizeof *sz);
    size_t n = 0;
    for (int c = 0; c < ncls; c++) {
        size_t cnt = 256 * KiB / cls[c];
        cnt = cnt < 4 ? 4 : cnt > 1024 ? 1024 : cnt;
        for (size_t i = 0; i < cnt; i++) {
            void *p = ns_malloc(cls[c]);
            if (!p) {
                snprintf(j->err, sizeof j->err, "ns_malloc(%zu) = NULL on node %d", cls[c], j->node);
                return NULL;
            }
            touch(p, cls[c], (unsigned char)c);
            ptr[n] = p, sz[n] = cls[c], n++;
        }
    }
    for (int i = 0; i < 3; i++) {
        void *p = ns_malloc(large[i]);
        if (!p) {
            snprintf(j->err, sizeof j->err, "ns_malloc(%zu) = NULL on node %d", large[i], j->node);
            return NULL;
        }
        touch(p, large[i], 1);
        ptr[n] = p, sz[n] = large[i], n++;
    }
    for (size_t i = 0; i < n; i++) {
        int o = ns_node_of(ptr[i]);
        j->owner[o >= 0 && o < MAXN ? o : MAXN]++;
        if (o != j->node && j->bad_owner++ == 0)
            snprintf(j->err, sizeof j->err, "ns_node_of(block of %zu B) = %d", sz[i], o);
    }
    where_blocks(&j->w, ptr, sz, n);
    j->blocks = n;
    for (size_t i = 0; i < n; i++)
        ns_free(ptr[i]);
    xunmap(ptr, cap * sizeof *ptr);
    xunmap(sz, cap * sizeof *sz);
    return NULL;
}

static int test_placement(void)
{
    need_two_nodes();
    placement_job_t *jobs = xmap(sizeof *jobs * MAXN);
    for (int i = 0; i < ncpu_nodes; i++) {
        jobs[i].node = cpu_node_list[i];
        start_on_node(&jobs[i].tid, jobs[i].node, placement_thread, &jobs[i]);
    }
    for (int i = 0; i < ncpu_nodes; i++)
        pthread_join(jobs[i].tid, NULL);
    size_t blocks = 0, pages = 0, local = 0;
    char own[512] = "";             /* on failure: which nodes own each thread's blocks */
    for (int i = 0, o = 0; i < ncpu_nodes; i++) {
        o += snprintf(own + o, sizeof own - (size_t)o, "%sthread on %d: owners", i ? "; " : "", jobs[i].node);
        for (int n = 0; n <= MAXN && o < (int)sizeof own; n++)
            if (jobs[i].owner[n])
                o += snprintf(own + o, sizeof own - (size_t)o, " %s%d=%zu", n == MAXN ? "none" : "n",
                              n == MAXN ? -1 : n, jobs[i].owner[n]);
        if (o >= (int)sizeof own)
            break;
    }
    for (int i = 0; i < ncpu_nodes; i++) {
        placement_job_t *j = &jobs[i];
        char w[256];
        where_str(&j->w, w, sizeof w);
        CHECK(j->bad_owner == 0, "node %d: %zu of %zu blocks not owned by node %d (first: %s); %s; [%s]",
              j->node, j->bad_owner, j->blocks, j->node, j->err, w, own);
        CHECK(j->err[0] == 0, "node %d: %s", j->node, j->err);
        CHECK(pct(j->w.on[j->node], j->w.pages) >= 99.0, "node %d: only %.1f%% of pages local (%s)",
              j->node, pct(j->w.on[j->node], j->w.pages), w);
        blocks += j->blocks, pages += j->w.pages, local += j->w.on[j->node];
    }
    printf("placement: %d nodes, %zu blocks (96 classes + 1/4/16 MiB), %zu pages, %.2f%% local\n",
           ncpu_nodes, blocks, pages, pct(local, pages));
    return 0;
}

/* ================================================================ crossnode */
#define RING 1024
typedef struct item { void *p; uint32_t size, seq; } item_t;
typedef struct ring {
    _Alignas(64) _Atomic size_t head;   /* consumer */
    _Alignas(64) _Atomic size_t tail;   /* producer */
    item_t slot[RING];
} ring_t;

typedef struct xn_pair {
    ring_t ring;
    pthread_t prod, cons;
    int a, b;                           /* consumer node, producer node */
    uint64_t seed;
    size_t count;                       /* blocks to pass                 */
    size_t small_passed, large_passed, bytes;
    size_t wrong_owner, sampled_pages, sampled_on_b;
    size_t after_bad_prod, after_bad_cons;  /* new blocks on the wrong node */
    where_t after_prod, after_cons;
    char err[200];
} xn_pair_t;

static pthread_barrier_t xn_barrier;

static uint64_t pattern(uint32_t seq) { return 0x9E3779B97F4A7C15ULL * (seq + 1) ^ 0xA5A5A5A5DEADBEEFULL; }

static void fill(void *p, size_t size, uint32_t seq)
{
    uint64_t v = pattern(seq), *w = p;
    size_t nw = size / 8;
    for (size_t i = 0; i < nw; i++)
        w[i] = v + i;
    for (size_t i = nw * 8; i < size; i++)
        ((unsigned char *)p)[i] = (unsigned char)seq;
}

static int verify(const void *p, size_t size, uint32_t seq)
{
    uint64_t v = pattern(seq);
    const uint64_t *w = p;
    size_t nw = size / 8;
    for (size_t i = 0; i < nw; i++)
        if (w[i] != v + i)
            return 0;
    for (size_t i = nw * 8; i < size; i++)
        if (((const unsigned char *)p)[i] != (unsigned char)seq)
            return 0;
    return 1;
}

static size_t xn_size(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    unsigned k = (unsigned)(r % 1024);
    r >>= 10;
    if (k == 0)
        return 300 * KiB + r % (700 * KiB);     /* large, 1 in 1024 */
    if (k < 11)
        return 32 * KiB + r % (224 * KiB);      /* big small class, 1 % */
    if (k < 100)
        return 1 * KiB + r % (31 * KiB);
    return 1 + r % 1024;
}

/* After the exchange: allocate again on this thread; blocks must be ours. */
static size_t alloc_again(int node, uint64_t seed, where_t *w)
{
    enum { N = 2000 };
    void **p = xmap(N * sizeof *p);
    size_t *s = xmap(N * sizeof *s), bad = 0;
    uint64_t rng = seed | 1;
    for (int i = 0; i < N; i++) {
        s[i] = 1 + rng_next(&rng) % 2048;
        p[i] = ns_malloc(s[i]);
        CHECK(p[i], "ns_malloc(%zu) = NULL", s[i]);
        memset(p[i], 0x5A, s[i]);
        bad += ns_node_of(p[i]) != node;
    }
    where_blocks(w, p, s, N);
    for (int i = 0; i < N; i++)
        ns_free(p[i]);
    xunmap(p, N * sizeof *p);
    xunmap(s, N * sizeof *s);
    return bad;
}

static void *xn_producer(void *arg)
{
    xn_pair_t *x = arg;
    pin_to_node(x->b);
    uint64_t rng = x->seed;
    for (uint32_t seq = 0; seq < x->count; seq++) {
        size_t size = xn_size(&rng);
        void *p = ns_malloc(size);
        if (!p)
            fail("producer on node %d: ns_malloc(%zu) = NULL", x->b, size);
        fill(p, size, seq);
        if (ns_node_of(p) != x->b)
            x->wrong_owner++;
        if (seq % 128 == 0) {           /* sample the pages of some blocks */
            where_t w = {0};
            void *pg[64];
            size_t k = 0;
            for (uintptr_t a = (uintptr_t)p / PAGE; a <= ((uintptr_t)p + size - 1) / PAGE && k < 64; a++)
                pg[k++] = (void *)(a * PAGE);
            where_pages(&w, pg, k);
            x->sampled_pages += w.pages, x->sampled_on_b += w.on[x->b];
        }
        size_t t = atomic_load_explicit(&x->ring.tail, memory_order_relaxed);
        while (t - atomic_load_explicit(&x->ring.head, memory_order_acquire) >= RING)
            sched_yield();
        x->ring.slot[t % RING] = (item_t){p, (uint32_t)size, seq};
        atomic_store_explicit(&x->ring.tail, t + 1, memory_order_release);
        if (size > 256 * KiB)
            x->large_passed++;
        else
            x->small_passed++;
        x->bytes += size;
    }
    pthread_barrier_wait(&xn_barrier);  /* all blocks consumed */
    x->after_bad_prod = alloc_again(x->b, x->seed * 3, &x->after_prod);
    return NULL;
}

static void *xn_consumer(void *arg)
{
    xn_pair_t *x = arg;
    pin_to_node(x->a);
    for (size_t got = 0; got < x->count; got++) {
        size_t h = atomic_load_explicit(&x->ring.head, memory_order_relaxed);
        while (atomic_load_explicit(&x->ring.tail, memory_order_acquire) == h)
            sched_yield();
        item_t it = x->ring.slot[h % RING];
        atomic_store_explicit(&x->ring.head, h + 1, memory_order_release);
        if (!verify(it.p, it.size, it.seq))
            fail("consumer on node %d: block #%u (%u B) from node %d corrupted", x->a, it.seq, it.size, x->b);
        ns_free(it.p);
    }
    pthread_barrier_wait(&xn_barrier);
    x->after_bad_cons = alloc_again(x->a, x->seed * 5, &x->after_cons);
    return NULL;
}

static int test_crossnode(int argc, char **argv)
{
    need_two_nodes();
    size_t count = argc > 0 ? strtoul(argv[0], NULL, 0) : 40000;
    const int P = 2;                    /* producer/consumer pairs */
    int A = cpu_node_list[0], B = cpu_node_list[ncpu_nodes - 1];
    xn_pair_t *x = xmap(sizeof *x * (size_t)P);
    CHECK(pthread_barrier_init(&xn_barrier, NULL, 2 * (unsigned)P) == 0, "pthread_barrier_init failed");

    ns_stats_t s0, s1;
    ns_release();
    stats(&s0);
    double t0 = now_s();
    for (int i = 0; i < P; i++) {
        x[i].a = A, x[i].b = B, x[i].count = count, x[i].seed = 0x1234567ULL * (uint64_t)(i + 1);
        start_on_node(&x[i].cons, A, xn_consumer, &x[i]);
        start_on_node(&x[i].prod, B, xn_producer, &x[i]);
    }
    for (int i = 0; i < P; i++) {
        pthread_join(x[i].prod, NULL);
        pthread_join(x[i].cons, NULL);
    }
    double t1 = now_s();
    ns_release();
    stats(&s1);

    size_t small = 0, large = 0, bytes = 0, sp = 0, sb = 0;
    for (int i = 0; i < P; i++) {
        char wp[256], wc[256];
        where_str(&x[i].after_prod, wp, sizeof wp);
        where_str(&x[i].after_cons, wc, sizeof wc);
        CHECK(x[i].wrong_owner == 0, "%zu blocks of the producer on node %d not owned by node %d",
              x[i].wrong_owner, B, B);
        CHECK(x[i].after_bad_prod == 0 && x[i].after_prod.on[A] == 0 &&
              pct(x[i].after_prod.on[B], x[i].after_prod.pages) >= 99.0,
              "after the exchange, the producer on node %d got %zu of 2000 blocks not owned by node %d; pages %s",
              B, x[i].after_bad_prod, B, wp);
        /* consumer side: ownership strictly; pages loosely (node 0 blocks
         * may come from the allocator's start-up memory, see onnode) */
        CHECK(x[i].after_bad_cons == 0 && pct(x[i].after_cons.on[A], x[i].after_cons.pages) >= 90.0,
              "after the exchange, the consumer on node %d got %zu of 2000 blocks not owned by node %d; pages %s",
              A, x[i].after_bad_cons, A, wc);
        small += x[i].small_passed, large += x[i].large_passed, bytes += x[i].bytes;
        sp += x[i].sampled_pages, sb += x[i].sampled_on_b;
    }
    CHECK(pct(sb, sp) >= 99.0, "only %zu of %zu sampled pages of producer blocks on node %d", sb, sp, B);

    /* Counters: everything freed -> small_in_use back to the baseline (the
     * threads' own exit leftovers, e.g. glibc's TLS, are tiny). */
    const uint64_t tol = 256 * KiB;
    for (int n = 0; n < s1.nodes && n < 64; n++) {
        CHECK(s1.node[n].small_in_use <= s0.node[n].small_in_use + tol,
              "node %d: small_in_use %llu B after everything was freed, baseline %llu B", n,
              (unsigned long long)s1.node[n].small_in_use, (unsigned long long)s0.node[n].small_in_use);
        CHECK(s1.node[n].large_count <= s0.node[n].large_count,
              "node %d: %llu large blocks live after everything was freed, baseline %llu", n,
              (unsigned long long)s1.node[n].large_count, (unsigned long long)s0.node[n].large_count);
    }
    CHECK(B < s1.nodes, "the allocator reports %d node(s), no node %d", s1.nodes, B);
    uint64_t rf = s1.node[B].remote_frees - s0.node[B].remote_frees;
    uint64_t rd = s1.node[B].remote_drained - s0.node[B].remote_drained;
    uint64_t slack = small / 100 + 4096;    /* blocks that may still sit in a cache */
    CHECK(rd + slack >= small, "node %d: remote_drained grew by %llu (remote_frees by %llu), "
          "but %zu small blocks were freed from node %d", B, (unsigned long long)rd,
          (unsigned long long)rf, small, A);
    /* remote frees go over in batches: one exchange per run of a slab's blocks */
    uint64_t rbat = s1.node[B].remote_batches - s0.node[B].remote_batches;
    uint64_t rblk = s1.node[B].remote_blocks - s0.node[B].remote_blocks;
    CHECK(rblk + slack >= small && rbat * 16 <= rblk,
          "node %d: remote_blocks +%llu in remote_batches +%llu for %zu small cross-node frees "
          "(want all of them, at least 16 a batch)", B, (unsigned long long)rblk, (unsigned long long)rbat, small);
    printf("crossnode: %d pairs node %d->%d, %zu small + %zu large blocks (%zu MiB) in %.1fs, "
           "node %d remote_frees +%llu in %llu batches, drained +%llu, sampled pages %.1f%% on %d\n",
           P, B, A, small, large, bytes / MiB, t1 - t0, B, (unsigned long long)rf, (unsigned long long)rbat,
           (unsigned long long)rd, pct(sb, sp), B);
    return 0;
}

/* ================================================================ onnode */
static int test_onnode(void)
{
    need_two_nodes();
    static const size_t sizes[] = {16, 200, 3000, 40000, 256 * KiB, 1 * MiB, 8 * MiB};
    enum { NS = sizeof sizes / sizeof sizes[0], PER = 48 };
    void **ptr = xmap(NS * PER * sizeof *ptr);
    size_t *sz = xmap(NS * PER * sizeof *sz), total_pages = 0;
    for (int n = 0; n < nnodes; n++) {
        /* Allocate from a thread on another node: the pages are first
         * touched there, so only the allocator's binding puts them on n. */
        int from = cpu_node_list[0] == n ? cpu_node_list[1] : cpu_node_list[0];
        pin_to_node(from);
        size_t k = 0;
        for (int i = 0; i < NS; i++) {
            int cnt = sizes[i] > 256 * KiB ? 2 : PER;
            for (int c = 0; c < cnt; c++) {
                void *p = ns_malloc_onnode(sizes[i], n);
                CHECK(p, "ns_malloc_onnode(%zu, %d) = NULL (errno %d)", sizes[i], n, errno);
                memset(p, 0xC3, sizes[i]);
                int o = ns_node_of(p);
                CHECK(o == n, "ns_node_of(ns_malloc_onnode(%zu, %d)) = %d (thread on node %d)", sizes[i], n, o, from);
                ptr[k] = p, sz[k] = sizes[i], k++;
            }
        }
        where_t w = {0};
        char ws[256];
        where_blocks(&w, ptr, sz, k);
        where_str(&w, ws, sizeof ws);
        if (w.on[n] != w.pages) {       /* which sizes? */
            char by[200] = "";
            for (size_t i = 0, o = 0, b = 0; i < k; i = b) {
                for (b = i; b < k && sz[b] == sz[i]; b++) {}
                where_t ws1 = {0};
                where_blocks(&ws1, ptr + i, sz + i, b - i);
                if (ws1.on[n] != ws1.pages && o < sizeof by)
                    o += (size_t)snprintf(by + o, sizeof by - o, " %zuB:%zu/%zu", sz[i], ws1.pages - ws1.on[n],
                                          ws1.pages);
            }
            fail("ns_malloc_onnode(.., %d) from node %d: not all pages on node %d: %s; off-node pages by size:%s",
                 n, from, n, ws, by);
        }
        total_pages += w.pages;
        for (size_t i = 0; i < k; i++)
            ns_free(ptr[i]);
    }
    static const int bad[] = {-1, -1000, INT_MIN, INT_MAX, 1024, 100000};
    int nbad = 0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0] + 2; i++) {
        int node = i < 2 ? nnodes + (int)i * 7 : bad[i - 2];   /* nnodes, nnodes+7, ... */
        if (node >= 0 && node < nnodes)
            continue;
        errno = 0;
        void *p = ns_malloc_onnode(64, node);
        CHECK(p == NULL && errno == EINVAL, "ns_malloc_onnode(64, %d) = %p, errno %d; want NULL + EINVAL",
              node, p, errno);
        nbad++;
    }
    printf("onnode: %d nodes x %d sizes (16 B .. 8 MiB), %zu pages all on the requested node "
           "(allocated from another node); %d invalid nodes -> EINVAL\n", nnodes, NS, total_pages, nbad);
    return 0;
}

/* ================================================================ migrate */
typedef struct mig { int path[3], steps; char msg[300]; } mig_t;

static size_t tcache_allowance(size_t size)
{
    size_t bytes = 64 * KiB;                /* NUMASLAB_TCACHE_BYTES default */
    const char *e = getenv("NUMASLAB_TCACHE_BYTES");
    if (e && *e)
        bytes = strtoull(e, NULL, 0);       /* plain numbers only; enough here */
    return 2 * bytes / size + 64;
}

static void *migrate_thread(void *arg)
{
    mig_t *m = arg;
    enum { SIZE = 256, FIRST = 2000, NEXT = 16000 };
    size_t total = FIRST + (size_t)(m->steps - 1) * NEXT;
    void **p = xmap(total * sizeof *p);
    size_t *s = xmap(total * sizeof *s), k = 0, allow = tcache_allowance(SIZE);
    int o = 0;
    for (int step = 0; step < m->steps; step++) {
        int node = m->path[step];
        pin_to_node(node);
        size_t n = step == 0 ? FIRST : NEXT, start = k, foreign = 0, last_foreign = 0;
        for (size_t i = 0; i < n; i++, k++) {
            p[k] = ns_malloc(SIZE), s[k] = SIZE;
            CHECK(p[k], "ns_malloc(%d) = NULL", SIZE);
            memset(p[k], 0x77, SIZE);
            if (ns_node_of(p[k]) != node)
                foreign++, last_foreign = i + 1;
        }
        /* Blocks still in the thread's cache from the previous node may come
         * first; everything after them must be from the new node. */
        size_t half = n / 2;
        where_t w = {0};
        char ws[256];
        where_blocks(&w, p + start + half, s + start + half, n - half);
        where_str(&w, ws, sizeof ws);
        CHECK(step > 0 ? foreign <= allow && last_foreign <= allow : foreign == 0,
              "on node %d (step %d): %zu of %zu new %d-byte blocks not owned by node %d, the last at #%zu "
              "(allowed: %zu cached ones first)", node, step, foreign, n, SIZE, node, last_foreign,
              step ? allow : 0);
        /* step 0 is the baseline: ownership only (node 0's pool may hand out
         * start-up memory first); after a move the pages must follow */
        CHECK(step == 0 || pct(w.on[node], w.pages) >= 99.0, "on node %d (step %d): pages of the newer blocks: %s",
              node, step, ws);
        o += snprintf(m->msg + o, sizeof m->msg - (size_t)o, "%s%d (%zu blocks, %zu cached from before)",
                      step ? " -> " : "", node, n, foreign);
    }
    for (size_t i = 0; i < k; i++)
        ns_free(p[i]);
    xunmap(p, total * sizeof *p);
    xunmap(s, total * sizeof *s);
    return NULL;
}

static int test_migrate(void)
{
    need_two_nodes();
    mig_t m = {{cpu_node_list[0], cpu_node_list[1], cpu_node_list[ncpu_nodes - 1]}, ncpu_nodes > 2 ? 3 : 2, ""};
    pthread_t t;
    start_on_node(&t, m.path[0], migrate_thread, &m);
    pthread_join(t, NULL);
    printf("migrate: %s\n", m.msg);
    return 0;
}

/* ================================================================ spill */
static long node_memfree_kb(int node)
{
    char path[96], line[256];
    snprintf(path, sizeof path, "/sys/devices/system/node/node%d/meminfo", node);
    FILE *f = fopen(path, "r");
    CHECK(f, "cannot open %s", path);
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "MemFree:"))
            sscanf(strstr(line, "MemFree:") + 8, "%ld", &kb);
    fclose(f);
    CHECK(kb >= 0, "no MemFree in %s", path);
    return kb;
}

static void *spill_thread(void *arg)
{
    enum { SIZE = 32 * 1024 };
    int home = cpu_node_list[0];
    pin_to_node(home);
    long free_kb = node_memfree_kb(home);
    size_t target = (size_t)free_kb * KiB + 64 * MiB, n = target / SIZE;
    void **p = xmap(n * sizeof *p);
    size_t *s = xmap(n * sizeof *s), spilled = 0, first_spill = 0;
    ns_stats_t s0, s1;
    stats(&s0);
    double t0 = now_s();
    for (size_t i = 0; i < n; i++) {
        p[i] = ns_malloc(SIZE), s[i] = SIZE;
        CHECK(p[i], "ns_malloc(%d) = NULL after %zu MiB (node %d had %ld MiB free)", SIZE, i * SIZE / MiB,
              home, free_kb / 1024);
        touch(p[i], SIZE, 1);
        if (ns_node_of(p[i]) != home && spilled++ == 0)
            first_spill = i;
    }
    double t1 = now_s();
    stats(&s1);
    /* The last 8 MiB: node 0 was full long before.  The spill lasts 100 ms
     * at a time; a thread then goes home if node 0 has room again (the
     * kernel may have reclaimed page cache meanwhile), so a few of these
     * blocks may be node 0's, rightly (CI saw 28 of 256 once).  What must
     * hold: most of them are spilled, and a spilled block's pages are not
     * on node 0. */
    size_t tail = 8 * MiB / SIZE;
    void *away[8 * MiB / SIZE];
    size_t last_home_owned = 0, naway = 0;
    for (size_t i = n - tail; i < n; i++) {
        if (ns_node_of(p[i]) == home) {
            last_home_owned++;
        } else {
            away[naway++] = p[i];
        }
    }
    where_t all = {0}, last = {0};
    where_blocks(&all, p, s, n);
    where_blocks(&last, away, s, naway);    /* s[i] == SIZE */
    char wa[256], wl[256];
    where_str(&all, wa, sizeof wa);
    where_str(&last, wl, sizeof wl);
    uint64_t spills = s1.node[home].spills - s0.node[home].spills;
    for (size_t i = 0; i < n; i++)
        ns_free(p[i]);
    ns_release();
    xunmap(p, n * sizeof *p);
    xunmap(s, n * sizeof *s);
    CHECK(spills > 0, "node %d counted no spills after %zu MiB (MemFree was %ld MiB); pages %s", home,
          target / MiB, free_kb / 1024, wa);
    CHECK(spilled > 0, "no block owned by another node after %zu MiB on node %d (spills=%llu); pages %s",
          target / MiB, home, (unsigned long long)spills, wa);
    CHECK(last_home_owned * 4 <= tail && last.on[home] * 100 <= last.pages,
          "the last 8 MiB: %zu of %zu blocks owned by node %d; pages of the spilled ones %s", last_home_owned,
          tail, home, wl);
    printf("spill: %zu MiB on node %d (MemFree %ld MiB) in %.1fs: %zu blocks spilled from #%zu "
           "(%zu MiB), spills=%llu; pages %s; the last 8 MiB: %zu blocks node %d's\n", target / MiB, home,
           free_kb / 1024, t1 - t0, spilled, first_spill, spilled * SIZE / MiB, (unsigned long long)spills, wa,
           last_home_owned, home);
    return arg;
}

static int test_spill(void)
{
    need_two_nodes();
    pthread_t t;
    start_on_node(&t, cpu_node_list[0], spill_thread, NULL);
    pthread_join(t, NULL);
    return 0;
}

/* ============================================================ interleave */
/* NUMASLAB_INTERLEAVE=1: large blocks are spread page by page over the
 * nodes; small blocks still stay on the thread's node.  The option is read
 * at start-up, so the test re-runs itself with it set. */
static int test_interleave(char **argv)
{
    need_two_nodes();
    if (!getenv("NUMASLAB_INTERLEAVE")) {
        setenv("NUMASLAB_INTERLEAVE", "1", 1);
        execv("/proc/self/exe", argv);
        fail("execv(/proc/self/exe): %s", strerror(errno));
    }
    size_t size = 32 * MiB;
    void *big = ns_malloc(size);
    CHECK(big, "ns_malloc(32 MiB) = NULL");
    touch(big, size, 0x5A);
    where_t w = {0};
    where_blocks(&w, &big, &size, 1);
    char ws[256];
    where_str(&w, ws, sizeof ws);
    for (int n = 0; n < nnodes; n++)
        CHECK(pct(w.on[n], w.pages) >= 50.0 / nnodes, "interleaved 32 MiB: node %d holds too little: %s", n, ws);
    /* a small block is not interleaved: it is on the thread's node */
    pin_to_node(cpu_node_list[0]);
    size_t ssize = 1000;
    void *small[256];
    size_t ssz[256];
    for (int i = 0; i < 256; i++) {
        small[i] = ns_malloc(ssize);
        CHECK(small[i], "ns_malloc(1000) = NULL");
        touch(small[i], ssize, 1);
        ssz[i] = ssize;
    }
    where_t ws2 = {0};
    where_blocks(&ws2, small, ssz, 256);
    CHECK(pct(ws2.on[cpu_node_list[0]], ws2.pages) >= 99.0, "small blocks not on the thread's node %d",
          cpu_node_list[0]);
    for (int i = 0; i < 256; i++)
        ns_free(small[i]);
    ns_free(big);
    printf("interleave: 32 MiB over %d nodes: %s\n", nnodes, ws);
    return 0;
}

/* ================================================================ main */
/* ================================================================== prof
 * The heap profiler's NUMA attribution (NUMASLAB_PROF): a thread on node A
 * allocates from prof_site_local (kept live); a thread on node B allocates
 * from prof_site_remote and hands every block to a thread on node A, which
 * frees it (remote frees).  The profile (ns_prof_dump) must put the local
 * site's live bytes on node A, the remote site's freed bytes under
 * remote_freed with about the bytes the test freed, and no live bytes.
 * Re-executes itself with NUMASLAB_PROF=1 (the profiler starts with the
 * process). */
#define PROF_N 20000
#define PROF_SAMPLE 4096
static void *prof_blocks[PROF_N];

/* (the empty asm after the call keeps it a call, not a tail jump: the site
 * function must be a frame of the stack) */
__attribute__((noinline)) static void *prof_site_local(void)
{
    void *p = malloc(256);
    __asm__ volatile("" ::: "memory");
    return p;
}
__attribute__((noinline)) static void *prof_site_remote(void)
{
    void *p = malloc(512);
    __asm__ volatile("" ::: "memory");
    return p;
}

static void *prof_local(void *arg)
{
    (void)arg;
    for (int i = 0; i < PROF_N; i++)
        touch(prof_blocks[i] = prof_site_local(), 256, (unsigned char)i);
    return NULL;
}

static void *prof_alloc_remote(void *arg)
{
    void **out = arg;
    for (int i = 0; i < PROF_N; i++)
        touch(out[i] = prof_site_remote(), 512, (unsigned char)(i + 1));
    return NULL;
}

static void *prof_free_remote(void *arg)
{
    void **in = arg;
    for (int i = 0; i < PROF_N; i++)
        free(in[i]);
    return NULL;
}

/* Which of the two site functions a frame returns into: the nearest one
 * that starts below pc (-1: neither; the functions are small). */
static int prof_site_of(unsigned long long pc)
{
    void *(*fn[2])(void) = {prof_site_local, prof_site_remote};
    int best = -1;
    uintptr_t best_f = 0;
    for (int i = 0; i < 2; i++) {
        uintptr_t f;
        memcpy(&f, &fn[i], sizeof f);
        if (pc > f && pc - f < 256 && f >= best_f)
            best = i, best_f = f;
    }
    return best;
}

static int test_prof(char **argv)
{
    need_two_nodes();
    if (!getenv("NUMASLAB_PROF")) {
        setenv("NUMASLAB_PROF", "1", 1);
        setenv("NUMASLAB_PROF_SAMPLE", "4096", 1);
        setenv("NUMASLAB_PROF_FILE", "/dev/null", 1);
        execv("/proc/self/exe", argv);
        fail("execv(/proc/self/exe): %s", strerror(errno));
    }
    int A = cpu_node_list[0], B = cpu_node_list[ncpu_nodes - 1];
    void **handed = xmap(PROF_N * sizeof(void *));
    pthread_t t;
    start_on_node(&t, A, prof_local, NULL);
    pthread_join(t, NULL);
    start_on_node(&t, B, prof_alloc_remote, handed);
    pthread_join(t, NULL);
    start_on_node(&t, A, prof_free_remote, handed);
    pthread_join(t, NULL);
    const char *path = "/tmp/numa_vm_prof.heap";
    CHECK(ns_prof_dump(path) == 0, "ns_prof_dump(%s): %s", path, strerror(errno));

    FILE *f = fopen(path, "r");
    CHECK(f, "cannot read %s", path);
    char line[8192];
    /* sampled figures of the two sites: [0] local, [1] remote */
    unsigned long long live[2] = {0}, on[2][MAXN] = {{0}}, rn[2] = {0}, rb[2] = {0};
    int cur = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long long n1, b1, n2, b2, pc;
        int used = 0;
        if (sscanf(line, "%llu: %llu [%llu: %llu] @%n", &n1, &b1, &n2, &b2, &used) == 4 && used &&
            sscanf(line + used, " %llx", &pc) == 1) {
            cur = prof_site_of(pc);
            if (cur >= 0)
                live[cur] += b1;
        } else if (cur >= 0 && !strncmp(line, "# numa live", 11)) {
            char *p = line + 11;
            unsigned node;
            unsigned long long b, n;
            while (sscanf(p, " %u:%llu%n", &node, &b, &used) == 2) {
                if (node < MAXN)
                    on[cur][node] += b;
                p += used;
            }
            if (sscanf(p, " remote_freed %llu: %llu", &n, &b) == 2)
                rn[cur] += n, rb[cur] += b;
            cur = -1;
        }
    }
    fclose(f);
    for (int i = 0; i < PROF_N; i++)
        free(prof_blocks[i]);
    xunmap(handed, PROF_N * sizeof(void *));

    /* 5.1 MB live at 4 KiB sampling: about 1,200 samples of 256 B */
    CHECK(live[0] > 0 && on[0][A] == live[0], "local site: %llu sampled live bytes, %llu of them on node %d",
          live[0], on[0][A], A);
    CHECK(rn[0] == 0, "local site: %llu remote frees, want 0", rn[0]);
    CHECK(live[1] == 0, "remote site: %llu sampled bytes still live after all were freed", live[1]);
    /* scaled back (512 B at 4 KiB: p = 1 - exp(-1/8)): about 10.24 MB */
    double est = (double)rb[1] / (1.0 - 0.8824969025845955);
    CHECK(est > 0.7 * PROF_N * 512 && est < 1.3 * PROF_N * 512,
          "remote site: %llu samples, %llu bytes freed from another node: estimate %.0f, want about %d", rn[1], rb[1],
          est, PROF_N * 512);
    printf("prof: local site %llu sampled B all on node %d; remote site %llu samples freed by node %d, estimate %.1f MB "
           "(want %.1f)\n",
           live[0], A, rn[1], A, est / 1e6, PROF_N * 512 / 1e6);
    return 0;
}

/* ================================================================ parked
 * Cross-node frees wait in the freeing thread's run for their node (up to
 * 32 blocks); malloc_trim(0) from another thread hands over the runs of a
 * thread that sleeps (src/numa/bin.c: owner_away_flush_idle): 10 blocks of
 * node A freed by a thread on node B, which then waits; the main thread's
 * malloc_trim makes node A count them as remote frees in one batch and
 * drain them. */
#define PARKED 10
static void *parked_blocks[PARKED];
static pthread_barrier_t parked_freed, parked_done;

static void *parked_alloc(void *arg)
{
    (void)arg;
    for (int i = 0; i < PARKED; i++)
        touch(parked_blocks[i] = malloc(200), 200, (unsigned char)i);
    return NULL;
}

static void *parked_free(void *arg)
{
    (void)arg;
    for (int i = 0; i < PARKED; i++)
        free(parked_blocks[i]);
    pthread_barrier_wait(&parked_freed);
    pthread_barrier_wait(&parked_done);     /* idle, alive, runs parked */
    return NULL;
}

static int test_parked(void)
{
    need_two_nodes();
    int A = cpu_node_list[0], B = cpu_node_list[ncpu_nodes - 1];
    pthread_t t, u;
    CHECK(pthread_barrier_init(&parked_freed, NULL, 2) == 0 && pthread_barrier_init(&parked_done, NULL, 2) == 0,
          "pthread_barrier_init failed");
    start_on_node(&t, A, parked_alloc, NULL);
    pthread_join(t, NULL);
    for (int i = 0; i < PARKED; i++)
        CHECK(ns_node_of(parked_blocks[i]) == A, "block %d on node %d, want %d", i, ns_node_of(parked_blocks[i]), A);
    ns_stats_t s0, s1, s2;
    stats(&s0);
    start_on_node(&u, B, parked_free, NULL);
    pthread_barrier_wait(&parked_freed);
    stats(&s1);
    uint64_t parked = s1.node[A].remote_blocks - s0.node[A].remote_blocks;
    CHECK(parked == 0, "node %d: %llu remote blocks handed over before the run was full (want them parked)", A,
          (unsigned long long)parked);
    CHECK(malloc_trim(0) >= 0, "malloc_trim failed");
    stats(&s2);
    uint64_t blocks = s2.node[A].remote_blocks - s1.node[A].remote_blocks;
    uint64_t batches = s2.node[A].remote_batches - s1.node[A].remote_batches;
    uint64_t drained = s2.node[A].remote_drained - s1.node[A].remote_drained;
    pthread_barrier_wait(&parked_done);
    pthread_join(u, NULL);
    CHECK(blocks == PARKED && batches == 1 && drained >= PARKED,
          "after malloc_trim: node %d remote_blocks +%llu in %llu batches, drained +%llu (want %d in 1, drained)", A,
          (unsigned long long)blocks, (unsigned long long)batches, (unsigned long long)drained, PARKED);
    printf("parked: %d blocks of node %d freed on node %d stayed parked, malloc_trim handed them over in 1 batch, "
           "drained %llu\n", PARKED, A, B, (unsigned long long)drained);
    return 0;
}

int main(int argc, char **argv)
{
    static const char usage[] = "usage: numa_vm_tests topo|highaddr|placement|crossnode [COUNT]|onnode|migrate|spill|interleave|prof|parked\n";
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    test_name = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0);
    CHECK(numa_available() >= 0, "libnuma: NUMA not available");
    nnodes = numa_num_configured_nodes();
    CHECK(nnodes >= 1 && nnodes <= MAXN, "%d NUMA nodes (want 1..%d)", nnodes, MAXN);
    struct bitmask *bm = numa_allocate_cpumask();
    for (int c = 0; c < MAXCPU; c++)
        cpu_node[c] = -1;
    for (int n = 0; n < nnodes; n++) {
        CPU_ZERO(&node_cpus[n]);
        if (numa_node_to_cpus(n, bm) != 0)
            continue;
        for (unsigned c = 0; c < bm->size && c < MAXCPU; c++)
            if (numa_bitmask_isbitset(bm, c))
                CPU_SET(c, &node_cpus[n]), cpu_node[c] = n;
        if (CPU_COUNT(&node_cpus[n]) > 0)
            cpu_node_list[ncpu_nodes++] = n;
    }
    numa_free_cpumask(bm);

    /* Deterministic start: re-run the program pinned to the LAST node, so
     * the allocator's start-up (its first blocks, before it knows the
     * topology) always happens away from node 0, not on a random CPU. */
    if (ncpu_nodes >= 2 && !getenv("NUMA_VM_TESTS_STARTED")) {
        setenv("NUMA_VM_TESTS_STARTED", "1", 1);
        int last = cpu_node_list[ncpu_nodes - 1];
        CHECK(sched_setaffinity(0, sizeof node_cpus[last], &node_cpus[last]) == 0, "sched_setaffinity: %s",
              strerror(errno));
        execv("/proc/self/exe", argv);
        fail("execv(/proc/self/exe): %s", strerror(errno));
    }
    if (!strcmp(argv[1], "topo"))
        return test_topo();
    if (!strcmp(argv[1], "highaddr"))
        return test_highaddr();
    if (!strcmp(argv[1], "placement"))
        return test_placement();
    if (!strcmp(argv[1], "crossnode"))
        return test_crossnode(argc - 2, argv + 2);
    if (!strcmp(argv[1], "onnode"))
        return test_onnode();
    if (!strcmp(argv[1], "prof"))
        return test_prof(argv);
    if (!strcmp(argv[1], "parked"))
        return test_parked();
    if (!strcmp(argv[1], "migrate"))
        return test_migrate();
    if (!strcmp(argv[1], "spill"))
        return test_spill();
    if (!strcmp(argv[1], "interleave"))
        return test_interleave(argv);
    fputs(usage, stderr);
    return 2;
}
