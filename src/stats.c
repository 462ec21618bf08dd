/* stats.c - statistics, merged on demand from the pools' counters (which
 * the slow paths keep under their locks); nothing on the fast paths.
 * Printing formats into a stack buffer and writes it at once, so the
 * report allocates nothing (it can run at exit, after other destructors). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>

#include "internal.h"
#include "numa/numa.h"
#include "tiny/tiny.h"
#include <numaslab.h>

void ns_stat_released(node_pool_t *pool, size_t bytes)
{
    __atomic_fetch_add(&pool->released_bytes, bytes, __ATOMIC_RELAXED);
}

static void node_stats(node_pool_t *pool, ns_node_stats_t *o)
{
    memset(o, 0, sizeof *o);
    for (unsigned c = 0; c < NS_CLASSES; c++) {
        bin_t *b = &pool->bins[c];
        pthread_mutex_lock(&b->lock);
        o->slabs += b->slabs;
        o->small_in_use += b->used_blocks * sizeclass_size[c];
        o->remote_drained += b->remote_drained;
        pthread_mutex_unlock(&b->lock);
        o->remote_frees += atomic_load_explicit(&b->remote_frees, memory_order_relaxed);
    }
    o->spills = __atomic_load_n(&pool->spills, __ATOMIC_RELAXED);
    pthread_mutex_lock(&pool->ss_lock);
    o->superslabs = pool->nsuperslabs;
    o->superslab_bytes = pool->nsuperslabs * NS_SS_SIZE;
    o->ss_base = pool->nbacking[0];
    o->ss_thp = pool->nbacking[1];
    o->ss_hugetlb = pool->nbacking[2];
    uint64_t listed = 0;
    for (const superslab_t *ss = pool->empty; ss; ss = ss->next, listed++)
        o->occupancy[0]++;
    for (unsigned u = 1; u < NS_UNITS; u++)
        for (const superslab_t *ss = pool->by_used[u]; ss; ss = ss->next, listed++)
            o->occupancy[(u + 7) / 8]++;
    o->occupancy[4] += pool->nsuperslabs - listed;      /* full ones are on no list */
    pthread_mutex_unlock(&pool->ss_lock);
    pthread_mutex_lock(&pool->large_lock);
    o->large_count = pool->large_count;
    o->large_bytes = pool->large_bytes;
    o->large_cached = pool->lcache_count;
    o->large_cached_bytes = pool->lcache_bytes;
    pthread_mutex_unlock(&pool->large_lock);
    o->released_bytes = __atomic_load_n(&pool->released_bytes, __ATOMIC_RELAXED);
}

NS_API int ns_stats_get(ns_stats_t *out)
{
    if (!out)
        return EINVAL;
    memset(out, 0, sizeof *out);
    if (__atomic_load_n(&ns_init_state, __ATOMIC_ACQUIRE) != 2)
        return 0;
    uint32_t nodes = topo_nodes();
    out->nodes = (int)nodes;
    for (uint32_t n = 0; n < nodes; n++) {
        ns_node_stats_t ns;
        node_stats(node_pool(n), &ns);
        node_pool_t *pool = node_pool(n);
        pthread_mutex_lock(&pool->large_lock);
        uint64_t large_usable = pool->large_usable;
        pthread_mutex_unlock(&pool->large_lock);
        out->mapped_bytes += ns.superslab_bytes + ns.large_bytes + ns.large_cached_bytes;
        out->in_use_bytes += ns.small_in_use + large_usable;
        if (n < 64)
            out->node[n] = ns;
    }
    out->threads = tcache_count();
    uint64_t allocs[NS_CLASSES];
    tcache_allocs(allocs);
    for (unsigned c = 0; c < NS_CLASSES && c < NS_STATS_CLASSES; c++) {
        ns_class_stats_t *cs = &out->classes[c];
        cs->size = sizeclass_size[c];
        cs->requests = allocs[c];
        for (uint32_t n = 0; n < nodes; n++) {
            bin_t *b = &node_pool(n)->bins[c];
            pthread_mutex_lock(&b->lock);
            cs->refills += b->refills;
            cs->live_blocks += b->used_blocks;
            cs->slabs += b->slabs;
            pthread_mutex_unlock(&b->lock);
        }
    }
    return 0;
}

static void print_to_fd(int fd, FILE *f)
{
    ns_stats_t st;
    ns_stats_get(&st);
    char buf[16384];
    size_t len = 0;
#define OUT(...) \
    do { \
        int w_ = snprintf(buf + len, sizeof buf - len, __VA_ARGS__); \
        if (w_ > 0) len = len + (size_t)w_ < sizeof buf ? len + (size_t)w_ : sizeof buf - 1; \
    } while (0)
    OUT("numaslab: %d node(s), %llu thread cache(s), mapped %.1f MiB, in use %.1f MiB\n", st.nodes,
        (unsigned long long)st.threads, st.mapped_bytes / 1048576.0, st.in_use_bytes / 1048576.0);
    for (int n = 0; n < st.nodes && n < 64; n++) {
        ns_node_stats_t *s = &st.node[n];
        OUT("numaslab: node %d: superslabs %llu (%.1f MiB; hugetlb %llu, thp %llu, base %llu; by use "
            "0/25/50/75/100%%: %llu %llu %llu %llu %llu)\n",
            n, (unsigned long long)s->superslabs, s->superslab_bytes / 1048576.0, (unsigned long long)s->ss_hugetlb,
            (unsigned long long)s->ss_thp, (unsigned long long)s->ss_base, (unsigned long long)s->occupancy[0],
            (unsigned long long)s->occupancy[1], (unsigned long long)s->occupancy[2],
            (unsigned long long)s->occupancy[3], (unsigned long long)s->occupancy[4]);
        OUT("numaslab: node %d: slabs %llu, small in use %.1f MiB, "
            "large %llu (%.1f MiB, %llu cached), remote frees %llu (drained %llu), spills %llu, released %.1f MiB\n",
            n, (unsigned long long)s->slabs,
            s->small_in_use / 1048576.0, (unsigned long long)s->large_count, s->large_bytes / 1048576.0,
            (unsigned long long)s->large_cached, (unsigned long long)s->remote_frees,
            (unsigned long long)s->remote_drained, (unsigned long long)s->spills, s->released_bytes / 1048576.0);
    }
    OUT("numaslab: class    size   requests  hit rate  live blocks  slabs\n");
    for (int c = 0; c < NS_STATS_CLASSES; c++) {
        const ns_class_stats_t *cs = &st.classes[c];
        if (!cs->requests && !cs->live_blocks)
            continue;
        double hit = cs->requests ? 100.0 * (1.0 - (double)cs->refills / (double)cs->requests) : 0.0;
        OUT("numaslab: %5d %7u %10llu  %7.2f%% %12llu %6llu\n", c, cs->size, (unsigned long long)cs->requests,
            hit < 0 ? 0.0 : hit, (unsigned long long)cs->live_blocks, (unsigned long long)cs->slabs);
    }
#undef OUT
    if (f) {
        fwrite(buf, 1, len, f);
        fflush(f);
    } else {
        size_t off = 0;
        while (off < len) {
            ssize_t w = write(fd, buf + off, len - off);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
}

NS_API void ns_stats_print(FILE *f)
{
    print_to_fd(STDERR_FILENO, f);
}

void stats_at_exit(void)
{
    print_to_fd(STDERR_FILENO, NULL);
}
