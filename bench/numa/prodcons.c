/* prodcons - producer/consumer: blocks allocated on one thread and freed on
 * another (the allocator's remote-free path).
 *
 *   prodcons THREADS [BLOCKS_PER_PAIR=1000000] [MIN=16] [MAX=512] [RING=1024]
 *
 * THREADS is the total thread count: max(1, THREADS/2) producer/consumer
 * pairs run (so THREADS=1 also runs one pair, on 2 threads).  Each producer
 * mallocs blocks of random size in MIN..MAX, fills the whole block with a
 * pattern derived from its sequence number and passes it through a bounded
 * single-producer/single-consumer ring; the consumer verifies every byte and
 * frees it.  Reports blocks per second (all pairs together).
 *
 * PRODCONS_CROSS=1 (environment) makes every free a cross-node free: the
 * nodes are those of /sys/devices/system/node with CPUs (cpulist), and
 * producer i is pinned to one CPU of node (i % nodes), its consumer to one
 * CPU of node ((i + 1) % nodes), the CPUs of a node taken in turn.  The
 * pinning is set before the thread starts, so its first malloc already
 * runs on its node.  extra= then also says cross:NODES; with one node
 * (a warning on stderr) producer and consumer share it. */
#include "bench_common.h"
#include <ctype.h>
#include <dirent.h>
#include <sched.h>
#include <stdatomic.h>

#define MAXNODES 64
static int nnodes, node_id[MAXNODES], node_ncpu[MAXNODES], node_next[MAXNODES];
static int node_cpu[MAXNODES][CPU_SETSIZE < 1024 ? CPU_SETSIZE : 1024];

/* The CPUs of a cpulist ("0-3,8-11") into node slot k; returns their count. */
static int parse_cpulist(const char *s, int k)
{
    int n = 0;
    while (*s && *s != '\n') {
        char *end;
        long a = strtol(s, &end, 10), b = a;
        if (end == s) break;
        s = end;
        if (*s == '-') {
            b = strtol(s + 1, &end, 10);
            s = end;
        }
        for (long c = a; c <= b && n < (int)(sizeof node_cpu[0] / sizeof node_cpu[0][0]); c++) node_cpu[k][n++] = (int)c;
        if (*s == ',') s++;
    }
    return n;
}

/* Nodes with CPUs, sorted by id (as numa_local.c finds them). */
static void discover_nodes(void)
{
    DIR *d = opendir("/sys/devices/system/node");
    struct dirent *e;
    while (d && (e = readdir(d)) && nnodes < MAXNODES) {
        if (strncmp(e->d_name, "node", 4) || !isdigit((unsigned char)e->d_name[4])) continue;
        char path[300], buf[4096];
        snprintf(path, sizeof path, "/sys/devices/system/node/%s/cpulist", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(buf, sizeof buf, f) && (node_ncpu[nnodes] = parse_cpulist(buf, nnodes)) > 0)
            node_id[nnodes++] = atoi(e->d_name + 4);
        fclose(f);
    }
    if (d) closedir(d);
    for (int i = 0; i < nnodes; i++) /* sort by node id: swap the slots */
        for (int j = i + 1; j < nnodes; j++)
            if (node_id[j] < node_id[i]) {
                int t = node_id[i], c = node_ncpu[i];
                node_id[i] = node_id[j];
                node_ncpu[i] = node_ncpu[j];
                node_id[j] = t;
                node_ncpu[j] = c;
                for (int x = 0; x < (int)(sizeof node_cpu[0] / sizeof node_cpu[0][0]); x++) {
                    int y = node_cpu[i][x];
                    node_cpu[i][x] = node_cpu[j][x];
                    node_cpu[j][x] = y;
                }
            }
    if (nnodes == 0) { /* no sysfs node directory: one node, CPU 0 */
        nnodes = 1;
        node_ncpu[0] = 1;
        node_cpu[0][0] = 0;
    }
}

/* Start fn(arg) pinned to the next CPU of node slot k. */
static void start_on_node(pthread_t *t, int k, void *(*fn)(void *), void *arg)
{
    pthread_attr_t a;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(node_cpu[k][node_next[k]++ % node_ncpu[k]], &set);
    pthread_attr_init(&a);
    int e = pthread_attr_setaffinity_np(&a, sizeof set, &set);
    if (!e) e = pthread_create(t, &a, fn, arg);
    if (e) bench_fail("pthread_create on node %d: %s", node_id[k], strerror(e));
    pthread_attr_destroy(&a);
}

struct pair {
    _Alignas(64) _Atomic unsigned long head; /* written by the producer */
    _Alignas(64) _Atomic unsigned long tail; /* written by the consumer */
    _Alignas(64) void **ring;
    int id;
    unsigned long checked;
};

static long nblocks;
static size_t smin, smax, ringsz;

static void *producer(void *arg)
{
    struct pair *P = arg;
    uint64_t rng = rng_seed((uint64_t)P->id, 0x9c);
    unsigned long h = 0;
    for (long k = 0; k < nblocks; k++) {
        size_t n = rng_range(&rng, smin, smax);
        char *p = xmalloc(n);
        uint64_t tag = ((uint64_t)P->id << 40) + (uint64_t)k;
        fill_full(p, n, tag);
        int spins = 0;
        while (h - atomic_load_explicit(&P->tail, memory_order_acquire) >= ringsz)
            if (++spins > 64) sched_yield();
        P->ring[h % ringsz] = p;
        atomic_store_explicit(&P->head, ++h, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct pair *P = arg;
    unsigned long t = 0;
    for (long k = 0; k < nblocks; k++) {
        int spins = 0;
        while (atomic_load_explicit(&P->head, memory_order_acquire) == t)
            if (++spins > 64) sched_yield();
        char *p = P->ring[t % ringsz];
        atomic_store_explicit(&P->tail, ++t, memory_order_release);
        uint64_t *w = (uint64_t *)p;
        uint64_t tag = ((uint64_t)P->id << 40) + (uint64_t)k;
        if (w[0] != tag) bench_fail("prodcons: block %ld of pair %d has tag %llu", k, P->id, (unsigned long long)w[0]);
        check_full(p, (size_t)w[1], tag, "prodcons consumer");
        free(p);
        P->checked++;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int T = (int)arg_long(argc, argv, 1, 1);
    nblocks = arg_long(argc, argv, 2, 1000000);
    smin = (size_t)arg_long(argc, argv, 3, 16);
    smax = (size_t)arg_long(argc, argv, 4, 512);
    ringsz = (size_t)arg_long(argc, argv, 5, 1024);
    if (smin < 16 || smax < smin) bench_fail("need 16 <= MIN <= MAX");
    int npairs = T / 2 > 0 ? T / 2 : 1;
    struct pair *P = aligned_alloc(64, sizeof *P * (size_t)npairs);
    if (!P) bench_fail("aligned_alloc");
    memset(P, 0, sizeof *P * (size_t)npairs);
    pthread_t *th = malloc(sizeof *th * 2 * (size_t)npairs);
    for (int i = 0; i < npairs; i++) {
        P[i].id = i;
        P[i].ring = xmalloc(sizeof(void *) * ringsz);
    }
    const char *cross_env = getenv("PRODCONS_CROSS");
    int cross = cross_env && *cross_env && strcmp(cross_env, "0") != 0;
    if (cross) {
        discover_nodes();
        if (nnodes < 2) fprintf(stderr, "prodcons: PRODCONS_CROSS: one node only, producers and consumers share it\n");
    }
    double c0 = bench_cpu(), t0 = bench_now();
    for (int i = 0; i < npairs; i++) {
        if (cross) {
            start_on_node(&th[2 * i], (i + 1) % nnodes, consumer, &P[i]);
            start_on_node(&th[2 * i + 1], i % nnodes, producer, &P[i]);
            continue;
        }
        xpthread_create(&th[2 * i], consumer, &P[i]);
        xpthread_create(&th[2 * i + 1], producer, &P[i]);
    }
    for (int i = 0; i < 2 * npairs; i++) pthread_join(th[i], NULL);
    double el = bench_now() - t0, cpu = bench_cpu() - c0;
    for (int i = 0; i < npairs; i++) {
        if (P[i].checked != (unsigned long)nblocks) bench_fail("pair %d checked %lu blocks", i, P[i].checked);
        free(P[i].ring);
    }
    if (cross)
        bench_report("prodcons", T, (double)npairs * (double)nblocks, el, cpu, "pairs:%d,min:%zu,max:%zu,cross:%d",
                     npairs, smin, smax, nnodes);
    else
        bench_report("prodcons", T, (double)npairs * (double)nblocks, el, cpu, "pairs:%d,min:%zu,max:%zu", npairs,
                     smin, smax);
    return 0;
}
