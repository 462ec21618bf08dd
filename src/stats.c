/* stats.c - statistics, merged on demand from the pools' counters (which
 * the slow paths keep under their locks); nothing on the fast paths.
 *
 * Output (the NUMASLAB_STATS=1 report at exit, ns_stats_print) never
 * allocates: it formats into a 4 KiB stack buffer and writes it out with
 * write(2) (or fwrite to the caller's FILE) each time the buffer fills, so
 * the report has no size limit (96 classes, 64 nodes) and can run at exit,
 * after other destructors.  No floating point goes through printf (the
 * program may have set a locale with a decimal comma, which would break
 * the JSON): fractions are printed from integers.
 *
 * At exit: NUMASLAB_STATS_FORMAT=text|json picks the format,
 * NUMASLAB_STATS_FILE the destination (default stderr; "%p" in the name
 * becomes the process id; the file is created or truncated). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include <numaslab.h>

static void node_stats(node_pool_t *pool, ns_node_stats_t *o)
{
    memset(o, 0, sizeof *o);
    for (unsigned c = 0; c < NS_CLASSES; c++) {
        bin_t *b = &pool->bins[c];
        lock_take(&b->lock, LOCK_BIN);
        o->slabs += b->slabs;
        o->small_in_use += (uint64_t)b->used_blocks * sizeclass_size[c];
        o->remote_drained += atomic_load_explicit(&b->remote_drained, memory_order_relaxed);
        o->bin_lock_acquires += b->lock_acquires;
        o->bin_lock_contended += b->lock_contended;
        lock_drop(&b->lock, LOCK_BIN);
        o->remote_frees += atomic_load_explicit(&b->remote_frees, memory_order_relaxed);
        o->remote_batches += atomic_load_explicit(&b->remote_batches, memory_order_relaxed);
    }
    o->spills = atomic_load_explicit(&pool->spills, memory_order_relaxed);
    lock_take(&pool->ss_lock, LOCK_SS);
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
    lock_drop(&pool->ss_lock, LOCK_SS);
    lock_take(&pool->large_lock, LOCK_LARGE);
    o->large_count = pool->large_count;
    o->large_bytes = pool->large_bytes;
    o->large_cached = pool->lcache_count;
    o->large_cached_bytes = pool->lcache_bytes;
    lock_drop(&pool->large_lock, LOCK_LARGE);
    o->released_bytes = atomic_load_explicit(&pool->released_bytes, memory_order_relaxed);
}

/* What live threads own (numa/bin.c owner_t): blocks handed out of their
 * slabs per class and node, their refills, remote frees they drained. */
typedef struct owned_sum {
    uint64_t used_bytes[64];            /* per node */
    uint64_t drained[64];               /* per node */
    uint64_t away_batches[64];          /* per destination node */
    uint64_t away_blocks[64];
    uint64_t used[NS_CLASSES];          /* per class, all nodes */
    uint64_t refills[NS_CLASSES];
} owned_sum_t;

static void add_owned(const tcache_t *tc, void *arg)
{
    owned_sum_t *sum = arg;
    const owner_t *o = &tc->own;
    uint32_t n = __atomic_load_n(&o->node, __ATOMIC_RELAXED);
    if (n >= 64)
        return;
    for (unsigned c = 0; c < NS_CLASSES; c++) {
        uint64_t used = (uint64_t)__atomic_load_n(&o->cls[c].used, __ATOMIC_RELAXED);
        sum->used[c] += used;
        sum->used_bytes[n] += used * sizeclass_size[c];
        sum->refills[c] += __atomic_load_n(&o->cls[c].refills, __ATOMIC_RELAXED);
    }
    sum->drained[n] += __atomic_load_n(&o->drained, __ATOMIC_RELAXED);
    for (unsigned d = 0; d < 64 && d < AWAY_NODES; d++) {
        sum->away_batches[d] += __atomic_load_n(&o->away_batches[d], __ATOMIC_RELAXED);
        sum->away_blocks[d] += __atomic_load_n(&o->away_blocks[d], __ATOMIC_RELAXED);
    }
}

/* ns_stats_get, plus the usable bytes of live large blocks per node (the
 * per-node "in use" of the reports; not in the public struct).  Also the
 * source of glibc's introspection API (introspect.c). */
void stats_collect(ns_stats_t *out, uint64_t large_usable[64])
{
    memset(out, 0, sizeof *out);
    if (large_usable)
        memset(large_usable, 0, 64 * sizeof(uint64_t));
    if (!tcache_started())
        return;
    uint32_t nodes = topo_nodes();
    out->nodes = (int)nodes;
    owned_sum_t owned;
    memset(&owned, 0, sizeof owned);
    tcache_each_live(add_owned, &owned);
    for (uint32_t n = 0; n < nodes; n++) {
        ns_node_stats_t ns;
        node_stats(node_pool(n), &ns);
        if (n < 64) {
            ns.small_in_use += owned.used_bytes[n];
            ns.remote_drained += owned.drained[n];
            ns.remote_batches += owned.away_batches[n];
            ns.remote_frees += owned.away_blocks[n];
        }
        ns.remote_blocks = ns.remote_frees;
        node_pool_t *pool = node_pool(n);
        lock_take(&pool->large_lock, LOCK_LARGE);
        uint64_t lu = pool->large_usable;
        lock_drop(&pool->large_lock, LOCK_LARGE);
        out->mapped_bytes += ns.superslab_bytes + ns.large_bytes + ns.large_cached_bytes;
        out->in_use_bytes += ns.small_in_use + lu;
        if (n < 64) {
            out->node[n] = ns;
            if (large_usable)
                large_usable[n] = lu;
        }
    }
    out->threads = tcache_count();
    uint64_t allocs[NS_CLASSES];
    tcache_allocs(allocs);
    for (unsigned c = 0; c < NS_CLASSES && c < NS_STATS_CLASSES; c++) {
        ns_class_stats_t *cs = &out->classes[c];
        cs->size = sizeclass_size[c];
        cs->requests = allocs[c];
        cs->refills = owned.refills[c];
        cs->live_blocks = owned.used[c];
        for (uint32_t n = 0; n < nodes; n++) {
            bin_t *b = &node_pool(n)->bins[c];
            lock_take(&b->lock, LOCK_BIN);
            cs->refills += atomic_load_explicit(&b->refills, memory_order_relaxed);
            cs->live_blocks += (uint64_t)b->used_blocks;
            cs->slabs += b->slabs;
            lock_drop(&b->lock, LOCK_BIN);
        }
    }
}

NS_API int (ns_stats_get)(ns_stats_t *out)
{
    if (!out)
        return EINVAL;
    stats_collect(out, NULL);
    return 0;
}

/* For callers built against another size of ns_stats_t (numaslab.h's
 * ns_stats_get macro passes it): fields beyond `size` are not written. */
NS_API int ns_stats_get_sized(ns_stats_t *user, size_t size)
{
    if (!user)
        return EINVAL;
    ns_stats_t st;
    stats_collect(&st, NULL);
    memcpy(user, &st, size < sizeof st ? size : sizeof st);
    return 0;
}

/* ------------------------------------------------------------- output
 * A buffer (4 KiB on the caller's stack), flushed to fd (or f) whenever the next piece does not
 * fit.  Every piece is far smaller than the buffer. */
typedef unsigned long long ull;

/* bytes as MiB with one decimal, from integers: "12.3" */
static const char *mib(uint64_t bytes, char tmp[32])
{
    ull tenths = (ull)((bytes * 10 + (1 << 19)) >> 20);
    if (bytes > UINT64_MAX / 16)
        tenths = (ull)(bytes >> 20) * 10;
    snprintf(tmp, 32, "%llu.%llu", tenths / 10, tenths % 10);
    return tmp;
}

/* cache hit rate 1 - refills / requests as a fraction with 4 decimals,
 * or as a percentage with 2; "null"/"-" without requests */
static const char *hit_rate(const ns_class_stats_t *cs, bool percent, char tmp[32])
{
    if (!cs->requests) {
        snprintf(tmp, 32, percent ? "-" : "null");
        return tmp;
    }
    uint64_t hits = cs->refills >= cs->requests ? 0 : cs->requests - cs->refills;
    ull v = (ull)((double)hits * 10000.0 / (double)cs->requests + 0.5);
    if (percent)
        snprintf(tmp, 32, "%llu.%02llu%%", v / 100, v % 100);
    else
        snprintf(tmp, 32, "%llu.%04llu", v / 10000, v % 10000);
    return tmp;
}

static void print_text(sink_t *s, const ns_stats_t *st, const uint64_t *lu)
{
    char a[32], b[32], c[32];
    sink_printf(s, "numaslab: %d node(s), %llu thread cache(s), mapped %s MiB, in use %s MiB\n", st->nodes,
        (ull)st->threads, mib(st->mapped_bytes, a), mib(st->in_use_bytes, b));
    for (int n = 0; n < st->nodes && n < 64; n++) {
        const ns_node_stats_t *x = &st->node[n];
        sink_printf(s, "numaslab: node %d: superslabs %llu (%s MiB; hugetlb %llu, thp %llu, base %llu; by use "
               "0/25/50/75/100%%: %llu %llu %llu %llu %llu)\n",
            n, (ull)x->superslabs, mib(x->superslab_bytes, a), (ull)x->ss_hugetlb, (ull)x->ss_thp, (ull)x->ss_base,
            (ull)x->occupancy[0], (ull)x->occupancy[1], (ull)x->occupancy[2], (ull)x->occupancy[3],
            (ull)x->occupancy[4]);
        sink_printf(s, "numaslab: node %d: slabs %llu, small in use %s MiB, large %llu (%s MiB, %llu cached), "
               "in use %s MiB, remote frees %llu in %llu batches (drained %llu), spills %llu, released %s MiB, "
               "bin locks %llu (contended %llu)\n",
            n, (ull)x->slabs, mib(x->small_in_use, a), (ull)x->large_count, mib(x->large_bytes, b),
            (ull)x->large_cached, mib(x->small_in_use + lu[n], c), (ull)x->remote_frees, (ull)x->remote_batches,
            (ull)x->remote_drained, (ull)x->spills, mib(x->released_bytes, a), (ull)x->bin_lock_acquires,
            (ull)x->bin_lock_contended);
    }
#ifdef NS_COUNT_RMW
    sink_printf(s, "numaslab: atomic read-modify-writes %llu\n", (ull)rmw_total());
#endif
    sink_printf(s, "numaslab: class    size   requests  hit rate  live blocks  slabs\n");
    for (int k = 0; k < NS_STATS_CLASSES; k++) {
        const ns_class_stats_t *cs = &st->classes[k];
        if (!cs->requests && !cs->live_blocks)
            continue;
        sink_printf(s, "numaslab: %5d %7u %10llu %9s %12llu %6llu\n", k, cs->size, (ull)cs->requests,
            hit_rate(cs, true, a), (ull)cs->live_blocks, (ull)cs->slabs);
    }
}

/* a JSON string: quotes, backslashes and control characters escaped */
static void out_json_string(sink_t *s, const char *str)
{
    sink_printf(s, "\"");
    for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
        if (*p == '"' || *p == '\\')
            sink_printf(s, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            sink_printf(s, "\\u%04x", *p);
        else
            sink_printf(s, "%c", *p);
    }
    sink_printf(s, "\"");
}

/* The nodes in use as a list ("0-1"): the topology's, or node 0 alone on
 * the bootstrap (one node). */
static void config_nodes(char *out, size_t cap)
{
    nodeset_t set = {0};
    const topo_t *t = topo_get();
    for (uint32_t n = 0; n < (t ? t->slots : 1); n++)
        if (!t || t->used[n])
            set.bits[n / 64] |= 1ull << (n % 64);
    nodeset_format(&set, out, cap);
}

static void print_json(sink_t *s, const ns_stats_t *st, const uint64_t *lu)
{
    option_info_t oi;
    char comm[64] = "";
    int fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t r = read(fd, comm, sizeof comm - 1);
        close(fd);
        comm[r > 0 ? r : 0] = 0;
        if (r > 0 && comm[r - 1] == '\n')
            comm[r - 1] = 0;
    }
    char a[32];
    sink_printf(s, "{\n  \"numaslab_stats\": 1,\n  \"pid\": %d,\n  \"program\": ", (int)getpid());
    out_json_string(s, comm);
    char nodes[256], pages[16];
    config_nodes(nodes, sizeof nodes);
    for (unsigned i = 0; options_describe(i, &oi); i++)
        if (strcmp(oi.name, "PAGES") == 0)
            options_format(i, pages, sizeof pages);
    sink_printf(s, ",\n  \"config\": {\"nodes_used\": \"%s\", \"pages\": \"%s\", \"hugetlb_fallback\": %s, "
           "\"strict\": %s, \"interleave\": %s, \"policy\": ",
        nodes, pages, options.hugetlb_fallback ? "true" : "false", options.strict ? "true" : "false",
        options.interleave ? "true" : "false");
    out_json_string(s, topo_policy_text(topo_get()));
    sink_printf(s, "}");
    sink_printf(s, ",\n  \"node_count\": %d,\n  \"threads\": %llu,\n  \"mapped_bytes\": %llu,\n  \"in_use_bytes\": %llu,\n"
           "  \"nodes\": [",
        st->nodes, (ull)st->threads, (ull)st->mapped_bytes, (ull)st->in_use_bytes);
    for (int n = 0; n < st->nodes && n < 64; n++) {
        const ns_node_stats_t *x = &st->node[n];
        sink_printf(s, "%s\n    {\"node\": %d, \"mapped_bytes\": %llu, \"in_use_bytes\": %llu, \"superslabs\": %llu, "
               "\"superslab_bytes\": %llu, \"ss_hugetlb\": %llu, \"ss_thp\": %llu, \"ss_base\": %llu, "
               "\"occupancy\": [%llu, %llu, %llu, %llu, %llu], ",
            n ? "," : "", n, (ull)(x->superslab_bytes + x->large_bytes + x->large_cached_bytes),
            (ull)(x->small_in_use + lu[n]), (ull)x->superslabs, (ull)x->superslab_bytes, (ull)x->ss_hugetlb,
            (ull)x->ss_thp, (ull)x->ss_base, (ull)x->occupancy[0], (ull)x->occupancy[1], (ull)x->occupancy[2],
            (ull)x->occupancy[3], (ull)x->occupancy[4]);
        sink_printf(s, "\"slabs\": %llu, \"small_in_use\": %llu, \"large_count\": %llu, \"large_bytes\": %llu, "
               "\"large_cached\": %llu, \"large_cached_bytes\": %llu, \"remote_frees\": %llu, "
               "\"remote_drained\": %llu, \"spills\": %llu, \"released_bytes\": %llu, "
               "\"bin_lock_acquires\": %llu, \"bin_lock_contended\": %llu, \"remote_batches\": %llu, "
               "\"remote_blocks\": %llu}",
            (ull)x->slabs, (ull)x->small_in_use, (ull)x->large_count, (ull)x->large_bytes, (ull)x->large_cached,
            (ull)x->large_cached_bytes, (ull)x->remote_frees, (ull)x->remote_drained, (ull)x->spills,
            (ull)x->released_bytes, (ull)x->bin_lock_acquires, (ull)x->bin_lock_contended, (ull)x->remote_batches,
            (ull)x->remote_blocks);
    }
    #ifdef NS_COUNT_RMW
    sink_printf(s, "\n  ],\n  \"atomic_rmw\": %llu,\n  \"classes\": [", (ull)rmw_total());
#else
    sink_printf(s, "\n  ],\n  \"classes\": [");
#endif
    for (int k = 0; k < NS_STATS_CLASSES; k++) {
        const ns_class_stats_t *cs = &st->classes[k];
        sink_printf(s, "%s\n    {\"class\": %d, \"size\": %u, \"requests\": %llu, \"refills\": %llu, \"hit_rate\": %s, "
               "\"live_blocks\": %llu, \"slabs\": %llu}",
            k ? "," : "", k, cs->size, (ull)cs->requests, (ull)cs->refills, hit_rate(cs, false, a),
            (ull)cs->live_blocks, (ull)cs->slabs);
    }
    sink_printf(s, "\n  ]\n}\n");
}

static void report(sink_t *s, bool json)
{
    ns_stats_t st;
    uint64_t lu[64];
    stats_collect(&st, lu);
    if (json)
        print_json(s, &st, lu);
    else
        print_text(s, &st, lu);
    sink_flush(s);
    if (s->f)
        fflush(s->f);
}

NS_API void ns_stats_print(FILE *f)
{
    char buf[4096];
    sink_t s;
    sink_init(&s, STDERR_FILENO, f, buf, sizeof buf);
    report(&s, false);
}

/* Formats straight into buf (no stack buffer: live.c calls it from the
 * slow paths of any thread, whose stack may be small). */
size_t stats_format(char *buf, size_t cap, const ns_stats_t *st, const uint64_t large_usable[64], bool json)
{
    if (cap < 2)
        return 0;
    sink_t s;
    sink_init(&s, -1, NULL, buf, cap);
    s.mem = true;
    if (json)
        print_json(&s, st, large_usable);
    else
        print_text(&s, st, large_usable);
    return s.len;
}

void stats_at_exit(void)
{
    const char *file = options.stats_file;
    bool json = options.stats_format == OPT_FORMAT_JSON;
    char buf[4096];
    sink_t s;
    sink_init(&s, STDERR_FILENO, NULL, buf, sizeof buf);
    if (file && *file) {
        char path[4096];
        int fd = -1;
        if (path_expand(file, path, sizeof path))
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            error_warn("cannot open NUMASLAB_STATS_FILE, statistics go to stderr: ", file);
        } else {
            s.fd = fd;
            report(&s, json);
            close(fd);
            return;
        }
    }
    report(&s, json);
}
