/* numa_local - NUMA locality: threads pinned to nodes, throughput and the
 * share of their blocks' pages that sit on their own node.
 *
 *   numa_local THREADS [ITERATIONS=200000] [WORKSET_KIB=8192] [PREFILL_MIB=64]
 *
 * Nodes are those of /sys/devices/system/node with CPUs; thread t is pinned
 * (sched_setaffinity) to the CPUs of node t % nnodes.  First the main thread,
 * pinned to the first node, allocates, touches and frees PREFILL_MIB of mixed
 * blocks (so an allocator that recycles memory without regard to nodes hands
 * node-0 pages to threads of other nodes).  Then every thread builds a working
 * set of WORKSET_KIB KiB (sizes log-uniform in 16..64 KiB plus a few 512 KiB
 * blocks), and for ITERATIONS replaces a random block (check, free, malloc,
 * fill) and reads another random block in full.  At the end each thread asks
 * the kernel (move_pages(2) with nodes == NULL, from libnuma's numaif.h) where
 * every page of its working set lives.  extra=local_pct is the share of those
 * pages on the thread's own node (100 % on a one-node machine), extra=nodes
 * the node count.  Reports iterations per second. */
#include "bench_common.h"
#include <ctype.h>
#include <dirent.h>
#include <numaif.h>
#include <sched.h>

#define MAXNODES 64

static int nnodes, node_id[MAXNODES];
static cpu_set_t node_cpus[MAXNODES];
static long niter;
static size_t workset, nblocks_max = 1 << 16;
static long pages_total, pages_local, pages_unknown;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static int parse_cpulist(const char *s, cpu_set_t *set)
{
    CPU_ZERO(set);
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
        for (long c = a; c <= b && c < CPU_SETSIZE; c++) {
            CPU_SET((int)c, set);
            n++;
        }
        if (*s == ',') s++;
    }
    return n;
}

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
        if (fgets(buf, sizeof buf, f) && parse_cpulist(buf, &node_cpus[nnodes]) > 0) node_id[nnodes++] = atoi(e->d_name + 4);
        fclose(f);
    }
    if (d) closedir(d);
    /* sort by node id (readdir order is arbitrary) */
    for (int i = 0; i < nnodes; i++)
        for (int j = i + 1; j < nnodes; j++)
            if (node_id[j] < node_id[i]) {
                int t = node_id[i];
                node_id[i] = node_id[j];
                node_id[j] = t;
                cpu_set_t c = node_cpus[i];
                node_cpus[i] = node_cpus[j];
                node_cpus[j] = c;
            }
    if (nnodes == 0) { /* no sysfs node directory: one node with every CPU */
        nnodes = 1;
        node_id[0] = 0;
        sched_getaffinity(0, sizeof node_cpus[0], &node_cpus[0]);
    }
}

static void pin(int idx)
{
    if (sched_setaffinity(0, sizeof node_cpus[idx], &node_cpus[idx]))
        bench_fail("sched_setaffinity to node %d: %s", node_id[idx], strerror(errno));
}

struct blk {
    char *p;
    size_t n;
    uint64_t tag;
};

static size_t pick_size(uint64_t *rng)
{
    return (rng_next(rng) % 64 == 0) ? 512 * 1024 : rng_logsize(rng, 16, 64 * 1024);
}

static void *run(void *arg)
{
    long id = (long)(intptr_t)arg;
    int idx = (int)(id % nnodes), node = node_id[idx];
    pin(idx);
    uint64_t rng = rng_seed((uint64_t)id, 0x40a);
    struct blk *b = calloc(nblocks_max, sizeof *b);
    size_t nb = 0, bytes = 0;
    uint64_t tag = (uint64_t)id << 40;
    while (bytes < workset && nb < nblocks_max) {
        size_t n = pick_size(&rng);
        b[nb].p = xmalloc(n);
        b[nb].n = n;
        b[nb].tag = ++tag;
        fill_full(b[nb].p, n, tag);
        bytes += n;
        nb++;
    }
    uint64_t sum = 0;
    for (long i = 0; i < niter; i++) {
        struct blk *x = &b[rng_next(&rng) % nb];
        check_stamp(x->p, x->n, x->tag, "numa_local replace");
        free(x->p);
        x->n = pick_size(&rng);
        x->p = xmalloc(x->n);
        x->tag = ++tag;
        fill_full(x->p, x->n, x->tag);
        struct blk *y = &b[rng_next(&rng) % nb];
        const uint64_t *w = (const uint64_t *)y->p;
        for (size_t k = 0; k < y->n / 8; k++) sum += w[k];
        if (w[0] != y->tag) bench_fail("numa_local: block %p tag changed", y->p);
    }
    /* where do the working set's pages live? */
    long np = 0;
    for (size_t i = 0; i < nb; i++) np += (long)((b[i].n + 4095) / 4096) + 1;
    void **pages = malloc(sizeof(void *) * (size_t)np);
    int *status = malloc(sizeof(int) * (size_t)np);
    long k = 0;
    for (size_t i = 0; i < nb; i++) {
        uintptr_t a = (uintptr_t)b[i].p & ~(uintptr_t)4095, end = (uintptr_t)b[i].p + b[i].n;
        for (; a < end; a += 4096) pages[k++] = (void *)a;
    }
    long local = 0, unknown = 0;
    if (move_pages(0, (unsigned long)k, pages, NULL, status, 0) != 0) {
        unknown = k;
    } else {
        for (long j = 0; j < k; j++) {
            if (status[j] < 0)
                unknown++;
            else if (status[j] == node)
                local++;
        }
    }
    for (size_t i = 0; i < nb; i++) {
        check_full(b[i].p, b[i].n, b[i].tag, "numa_local final");
        free(b[i].p);
    }
    free(pages);
    free(status);
    free(b);
    pthread_mutex_lock(&mu);
    pages_total += k - unknown;
    pages_local += local;
    pages_unknown += unknown;
    pthread_mutex_unlock(&mu);
    return (void *)(uintptr_t)(sum == 42); /* keep the reads */
}

int main(int argc, char **argv)
{
    int T = (int)arg_long(argc, argv, 1, 1);
    niter = arg_long(argc, argv, 2, 200000);
    workset = (size_t)arg_long(argc, argv, 3, 8192) * 1024;
    size_t prefill = (size_t)arg_long(argc, argv, 4, 64) * 1024 * 1024;
    discover_nodes();
    pin(0);
    {
        uint64_t rng = rng_seed(99, 1);
        size_t cap = 1 << 16, nb = 0, bytes = 0;
        char **v = malloc(sizeof(char *) * cap);
        while (bytes < prefill && nb < cap) {
            size_t n = pick_size(&rng);
            v[nb] = xmalloc(n);
            memset(v[nb], 0x5a, n);
            bytes += n;
            nb++;
        }
        for (size_t i = 0; i < nb; i++) free(v[i]);
        free(v);
    }
    pthread_t *th = malloc(sizeof *th * (size_t)T);
    double c0 = bench_cpu(), t0 = bench_now();
    for (long t = 0; t < T; t++) xpthread_create(&th[t], run, (void *)(intptr_t)t);
    for (int t = 0; t < T; t++) pthread_join(th[t], NULL);
    double el = bench_now() - t0, cpu = bench_cpu() - c0;
    if (pages_total == 0) bench_fail("move_pages located no page (unknown %ld)", pages_unknown);
    bench_report("numa_local", T, (double)T * (double)niter, el, cpu, "nodes:%d,local_pct:%.1f,pages:%ld,unknown_pages:%ld",
                 nnodes, 100.0 * (double)pages_local / (double)pages_total, pages_total, pages_unknown);
    return 0;
}
