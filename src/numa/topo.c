/* topo.c - the machine's NUMA topology as the allocator sees it.
 *
 * Until the topology is known every thread counts as node 0 (the bootstrap:
 * malloc works from the first call, and hwloc and libnuma allocate while
 * they load).  topo_build() runs once, after start-up (node_pool.c calls
 * it from the library's constructor, or later from a refill): it reads
 * nodes, their CPUs, memory and distances from hwloc (distances: hwloc,
 * else the ACPI SLIT read from sysfs as libnuma's numa_distance reads it,
 * else 10 local / 20 remote) and builds a table cpu -> node; the node heap creates the pools
 * and topo_publish() publishes the result with one release store.  This
 * file calls nothing else of src/numa: it is the leaf of the layer.  Readers never lock.  A machine with one node (read from
 * /sys/devices/system/node/online, without loading hwloc at all), or
 * without NUMA support, stays on the bootstrap: one node, no binding.
 *
 * hwloc is not linked: libnumaslab has no DT_NEEDED on libhwloc (nor on
 * libnuma, whose three calls became sysfs reads and a syscall), so a
 * process on a one-node machine maps neither hwloc nor its libudev and
 * libm.  topo_build() opens libhwloc.so.15 with dlopen only when more than
 * one node is online, from the library's constructor: after start-up (dlopen
 * allocates; the bootstrap pool serves it) and holding no allocator lock.
 * Every hwloc call goes through the table `hw` that dlsym fills; hwloc.h is
 * included for its types alone (none of its inline helpers is used, they
 * would reference the library directly).  If hwloc cannot be loaded, one
 * warning line and the bootstrap: the process runs as on one node.
 *
 * NUMASLAB_NODES restricts the nodes used; a CPU of another node allocates
 * from the nearest used node.  Binding: mbind(MPOL_PREFERRED) of every
 * SuperSlab and large mapping to its node before its first touch
 * (NUMASLAB_STRICT: MPOL_BIND).  If the kernel refuses mbind (containers),
 * binding is switched off silently.
 *
 * Room: before a node pool maps a new SuperSlab for a thread cache it asks
 * topo_node_has_room (MemFree from sysfs, read with plain syscalls and at
 * most every 10 ms); a node below its reserve makes
 * the thread spill to the nearest node with room (tcache.c), counted in the
 * home node pool's `spills`.  When no node has room, the home node is used
 * anyway and the kernel decides: the check redirects, it never fails.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <hwloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../hugepage/hugepage.h"
#include "numa.h"

#define MPOL_PREFERRED_ 1
#define MPOL_BIND_ 2
#define MPOL_INTERLEAVE_ 3

static topo_t *_Atomic cur;
static _Atomic int load_state;       /* 0 bootstrap, 2 loaded (topo_loaded) */
static _Atomic int bind_off;

/* Mappings made before the topology was known (node 0, unbound): bound to
 * node 0 once it is, pages already touched moved there.  A few SuperSlabs
 * at most (libc and hwloc start-up); past the table they stay unbound. */
#define BOOT_RANGES 64
static struct { void *p; size_t size; } boot[BOOT_RANGES];
static _Atomic unsigned nboot;
static void bind_boot_ranges(const topo_t *t);

/* ------------------------------------------------------- node selection */
void topo_select_nodes(const uint8_t *exists, uint32_t slots, const nodeset_t *want, uint8_t *used)
{
    bool any = false;
    for (uint32_t n = 0; n < slots; n++) {
        used[n] = want->given && nodeset_has(want, n) && exists[n];
        any |= used[n];
    }
    if (want->given && !any) {
        char list[256];
        nodeset_format(want, list, sizeof list);
        error_warn("NUMASLAB_NODES names no existing node, using all: ", list);
    }
    if (!any)
        for (uint32_t n = 0; n < slots; n++)
            used[n] = exists[n];
}

/* ---------------------------------------------------------- the policy */
#define MPOL_DEFAULT_ 0
#define MPOL_LOCAL_ 4
#define MPOL_PREFERRED_MANY_ 5

void topo_read_policy(topo_policy_t *p)
{
    memset(p, 0, sizeof *p);
    unsigned long mask[NS_MAX_NODES / (8 * sizeof(unsigned long))] = {0};
    int mode;
    if (hp_get_mempolicy(&mode, mask, NS_MAX_NODES) == 0) {
        p->mode = mode;
        for (uint32_t n = 0; n < NS_MAX_NODES; n++)
            if (mask[n / (8 * sizeof(unsigned long))] >> (n % (8 * sizeof(unsigned long))) & 1) {
                p->nodes.bits[n / 64] |= 1ull << (n % 64);
                p->nodes.given = true;
            }
    }
    char buf[1024];
    if (hp_mems_allowed(buf, sizeof buf) > 0 && options_parse_nodes(buf, &p->allowed) && !p->allowed.given)
        memset(&p->allowed, 0, sizeof p->allowed);
}

/* used[] and the binding from the option, the policy and the cpuset; the
 * reason goes to tp->why. */
static void select_under_policy(topo_t *tp, const nodeset_t *nodes, const topo_policy_t *pol, int *preferred)
{
    uint32_t slots = tp->slots;
    uint8_t cand[NS_MAX_NODES];
    bool cpuset = false;
    for (uint32_t n = 0; n < slots; n++) {
        cand[n] = tp->exists[n] && tp->mem_total[n] > 0;
        if (cand[n] && pol->allowed.given && !nodeset_has(&pol->allowed, n)) {
            cand[n] = 0;
            cpuset = true;
        }
    }
    bool any = false;
    for (uint32_t n = 0; n < slots; n++)
        any |= cand[n];
    if (!any)                   /* nothing known to have memory: all that exist */
        for (uint32_t n = 0; n < slots; n++)
            cand[n] = tp->exists[n];
    *preferred = -1;
    tp->bind_mode = options.strict ? TOPO_BIND_STRICT : TOPO_BIND_PREFERRED;
    const char *why = cpuset ? "cpuset (Mems_allowed)" : "default: every node with memory";
    bool by_policy = false;
    if (nodes->given) {
        why = "NUMASLAB_NODES";
    } else if (pol->mode == MPOL_BIND_ && pol->nodes.given) {
        nodes = &pol->nodes, by_policy = true;
        why = "task memory policy bind (numactl --membind): mappings bound to its nodes";
        if (!options.strict)
            tp->bind_mode = TOPO_BIND_SET;
    } else if (pol->mode == MPOL_INTERLEAVE_ && pol->nodes.given) {
        nodes = &pol->nodes, by_policy = true;
        if (options_given("INTERLEAVE")) {
            why = "task memory policy interleave (numactl --interleave), NUMASLAB_INTERLEAVE given: its nodes";
        } else {
            why = "task memory policy interleave (numactl --interleave): every mapping interleaved over its nodes";
            tp->bind_mode = TOPO_BIND_INTERLEAVE;
        }
    } else if ((pol->mode == MPOL_PREFERRED_ || pol->mode == MPOL_PREFERRED_MANY_) && pol->nodes.given) {
        for (uint32_t n = 0; n < slots && *preferred < 0; n++)
            if (cand[n] && nodeset_has(&pol->nodes, n))
                *preferred = (int)n;
        if (*preferred >= 0)
            why = "task memory policy preferred (numactl --preferred): the home node of every thread";
    }
    if (nodes->given) {
        nodeset_t want = *nodes;
        if (!by_policy) {
            topo_select_nodes(cand, slots, &want, tp->used);
        } else {
            bool got = false;
            for (uint32_t n = 0; n < slots; n++)
                got |= (tp->used[n] = cand[n] && nodeset_has(&want, n));
            if (!got)
                for (uint32_t n = 0; n < slots; n++)
                    tp->used[n] = cand[n];
        }
    } else {
        for (uint32_t n = 0; n < slots; n++)
            tp->used[n] = cand[n];
    }
    snprintf(tp->why, sizeof tp->why, "%s", why);
}

/* The used node a CPU of node `home` allocates from: the nearest used
 * node with CPUs (a memory-only node is never a thread's home), or the
 * nearest used node when none has CPUs. */
static uint16_t home_of(const topo_t *tp, uint32_t home)
{
    const uint16_t *o = &tp->order[home * tp->slots];
    for (uint32_t k = 0; k < tp->slots && o[k] != UINT16_MAX; k++)
        if (tp->has_cpus[o[k]])
            return o[k];
    return o[0];
}

/* ------------------------------------------------------------ libhwloc */
#define HWLOC_SONAME "libhwloc.so.15"
#if HWLOC_API_VERSION < 0x20000 || HWLOC_API_VERSION >= 0x30000
#error "HWLOC_SONAME is the soname of hwloc 2.x"
#endif

/* The hwloc functions numaslab calls: name (after "hwloc_"), type. */
#define HW_FNS(X)                                                                                                  \
    X(get_api_version, unsigned, (void))                                                                           \
    X(topology_init, int, (hwloc_topology_t *))                                                                    \
    X(topology_load, int, (hwloc_topology_t))                                                                      \
    X(topology_destroy, void, (hwloc_topology_t))                                                                  \
    X(topology_set_synthetic, int, (hwloc_topology_t, const char *))                                               \
    X(topology_set_cache_types_filter, int, (hwloc_topology_t, enum hwloc_type_filter_e))                          \
    X(topology_set_icache_types_filter, int, (hwloc_topology_t, enum hwloc_type_filter_e))                         \
    X(topology_set_io_types_filter, int, (hwloc_topology_t, enum hwloc_type_filter_e))                             \
    X(topology_get_topology_cpuset, hwloc_const_cpuset_t, (hwloc_topology_t))                                      \
    X(get_type_depth, int, (hwloc_topology_t, hwloc_obj_type_t))                                                   \
    X(get_nbobjs_by_depth, unsigned, (hwloc_topology_t, int))                                                      \
    X(get_obj_by_depth, hwloc_obj_t, (hwloc_topology_t, int, unsigned))                                            \
    X(bitmap_iszero, int, (hwloc_const_bitmap_t))                                                                  \
    X(bitmap_last, int, (hwloc_const_bitmap_t))                                                                    \
    X(bitmap_next, int, (hwloc_const_bitmap_t, int))                                                               \
    X(distances_get_by_type, int,                                                                                  \
      (hwloc_topology_t, hwloc_obj_type_t, unsigned *, struct hwloc_distances_s **, unsigned long, unsigned long)) \
    X(distances_release, void, (hwloc_topology_t, struct hwloc_distances_s *))

#define HW_FIELD(name, ret, args) ret(*name) args;
static struct { HW_FNS(HW_FIELD) } hw;
static bool hw_ok;
static char hw_why[160];
static pthread_once_t hw_once = PTHREAD_ONCE_INIT;

static void hw_open(void)
{
    void *h = dlopen(HWLOC_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(hw_why, sizeof hw_why, "%s", e ? e : HWLOC_SONAME);
        return;
    }
    void *sym;
#define HW_RESOLVE(name, ret, args)                                                        \
    if (!(sym = dlsym(h, "hwloc_" #name))) {                                               \
        snprintf(hw_why, sizeof hw_why, "%s: no symbol hwloc_%s", HWLOC_SONAME, #name);    \
        return;                                                                            \
    }                                                                                      \
    memcpy(&hw.name, &sym, sizeof sym);
    HW_FNS(HW_RESOLVE)
#undef HW_RESOLVE
    unsigned v = hw.get_api_version();
    if (v >> 16 != HWLOC_API_VERSION >> 16) {
        snprintf(hw_why, sizeof hw_why, "%s: API version %#x, built for %#x", HWLOC_SONAME, v, HWLOC_API_VERSION);
        return;
    }
    hw_ok = true;              /* the handle stays open for the process's life */
}

/* hwloc's functions in `hw`, loaded once; false (reason in hw_why) when
 * the library or one of its functions is missing. */
static bool hw_load(void)
{
    pthread_once(&hw_once, hw_open);
    return hw_ok;
}

/* hwloc's inline helpers, through the table */
static int hw_nbobjs_by_type(hwloc_topology_t t, hwloc_obj_type_t type)
{
    int depth = hw.get_type_depth(t, type);
    if (depth == HWLOC_TYPE_DEPTH_UNKNOWN)
        return 0;
    if (depth == HWLOC_TYPE_DEPTH_MULTIPLE)
        return -1;
    return (int)hw.get_nbobjs_by_depth(t, depth);
}

static hwloc_obj_t hw_obj_by_type(hwloc_topology_t t, hwloc_obj_type_t type, unsigned idx)
{
    int depth = hw.get_type_depth(t, type);
    if (depth == HWLOC_TYPE_DEPTH_UNKNOWN || depth == HWLOC_TYPE_DEPTH_MULTIPLE)
        return NULL;
    return hw.get_obj_by_depth(t, depth, idx);
}

/* ------------------------------------------------- sysfs (was libnuma) */
/* Next range lo-hi of a kernel list "0-3,8,10-11" at *p; false at its end. */
static bool list_next(const char **p, uint32_t *lo, uint32_t *hi)
{
    const char *s = *p;
    while (*s == ',' || *s == ' ' || *s == '\n')
        s++;
    if (*s < '0' || *s > '9')
        return false;
    uint32_t a = 0, b;
    for (; *s >= '0' && *s <= '9'; s++)
        a = a * 10 + (uint32_t)(*s - '0');
    b = a;
    if (*s == '-')
        for (b = 0, s++; *s >= '0' && *s <= '9'; s++)
            b = b * 10 + (uint32_t)(*s - '0');
    *p = s, *lo = a, *hi = b < a ? a : b;
    return true;
}

/* NUMA system calls work (libnuma's numa_available()). */
static bool numa_syscalls(void)
{
    int mode;
    int err = hp_get_mempolicy(&mode, NULL, 0);
    return err != ENOSYS && err != EPERM;
}

/* The ACPI SLIT as the kernel shows it (libnuma's numa_distance): line
 * nodeA/distance holds the distances to every online node, in order. */
static void sysfs_distances(topo_t *tp)
{
    char online[1024], line[4096], path[64];
    if (hp_nodes_online(online, sizeof online) <= 0)
        return;
    for (uint32_t a = 0; a < tp->slots; a++) {
        if (!tp->exists[a])
            continue;
        snprintf(path, sizeof path, "/sys/devices/system/node/node%u/distance", a);
        if (hp_read_file(path, line, sizeof line) <= 0)
            continue;
        const char *o = online, *d = line;
        uint32_t lo, hi;
        while (list_next(&o, &lo, &hi))
            for (uint32_t b = lo; b <= hi; b++) {
                while (*d == ' ')
                    d++;
                if (*d < '0' || *d > '9')
                    return;
                unsigned long v = strtoul(d, (char **)&d, 10);
                if (b < tp->slots && tp->exists[b] && v > 0 && v < UINT16_MAX)
                    tp->dist[a * tp->slots + b] = (uint16_t)v;
            }
    }
}

/* cpu_node[c] = home_of(the node whose cpulist has c) for the nodes below
 * tp->slots (libnuma's numa_node_of_cpu); other CPUs keep theirs. */
static void sysfs_cpu_nodes(topo_t *tp)
{
    char line[4096], path[64];
    for (uint32_t n = 0; n < tp->slots; n++) {
        snprintf(path, sizeof path, "/sys/devices/system/node/node%u/cpulist", n);
        if (hp_read_file(path, line, sizeof line) <= 0)
            continue;
        const char *p = line;
        uint32_t lo, hi;
        uint16_t target = home_of(tp, n);
        while (list_next(&p, &lo, &hi))
            for (uint32_t c = lo; c <= hi && c < tp->ncpus; c++)
                tp->cpu_node[c] = target;
    }
}

/* ------------------------------------------------------- build a topo_t */
int topo_from_hwloc(hwloc_topology_t t, const nodeset_t *nodes, topo_t **out)
{
    topo_policy_t none;
    memset(&none, 0, sizeof none);
    return topo_from_hwloc_policy(t, nodes, &none, out);
}

int topo_from_hwloc_policy(hwloc_topology_t t, const nodeset_t *nodes, const topo_policy_t *pol, topo_t **out)
{
    if (!hw_load())             /* t came from a program that links hwloc: found */
        return ENOSYS;
    int nn = hw_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    if (nn <= 0)
        return EINVAL;
    uint32_t slots = 0;
    int maxcpu = hw.bitmap_last(hw.topology_get_topology_cpuset(t));
    for (int i = 0; i < nn; i++) {
        hwloc_obj_t o = hw_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
        if (o->os_index + 1 > slots)
            slots = o->os_index + 1;
    }
    if (slots > NS_MAX_NODES)
        return EINVAL;
    uint32_t ncpus = maxcpu < 0 ? 1 : (uint32_t)maxcpu + 1;
    size_t bytes = sizeof(topo_t) + slots * (sizeof(uint8_t) * 3 + sizeof(uint64_t)) +
                   (size_t)slots * slots * (sizeof(uint16_t) + sizeof(uint16_t)) + ncpus * sizeof(uint16_t) + 64;
    topo_t *tp = meta_alloc(bytes);
    if (!tp)
        return ENOMEM;
    char *m = (char *)(tp + 1);
    tp->alloc_bytes = bytes;
    tp->slots = slots;
    tp->ncpus = ncpus;
    tp->mem_total = (uint64_t *)m;  m += slots * sizeof(uint64_t);
    tp->dist = (uint16_t *)m;       m += (size_t)slots * slots * sizeof(uint16_t);
    tp->order = (uint16_t *)m;      m += (size_t)slots * slots * sizeof(uint16_t);
    tp->cpu_node = (uint16_t *)m;   m += ncpus * sizeof(uint16_t);
    tp->exists = (uint8_t *)m;      m += slots;
    tp->used = (uint8_t *)m;        m += slots;
    tp->has_cpus = (uint8_t *)m;
    for (int i = 0; i < nn; i++) {
        hwloc_obj_t o = hw_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
        tp->exists[o->os_index] = 1;
        tp->mem_total[o->os_index] = o->attr ? o->attr->numanode.local_memory : 0;
        tp->has_cpus[o->os_index] = o->cpuset && !hw.bitmap_iszero(o->cpuset);
    }
    int preferred;
    select_under_policy(tp, nodes, pol, &preferred);
    tp->nused = 0;
    for (uint32_t n = 0; n < slots; n++)
        tp->nused += tp->used[n];

    /* distances: hwloc, else the ACPI SLIT (sysfs), else 10/20 */
    for (uint32_t a = 0; a < slots; a++)
        for (uint32_t b = 0; b < slots; b++)
            tp->dist[a * slots + b] = a == b ? 10 : 20;
    unsigned nr = 1;
    struct hwloc_distances_s *d = NULL;
    bool have = false;
    if (hw.distances_get_by_type(t, HWLOC_OBJ_NUMANODE, &nr, &d, 0, 0) == 0 && nr >= 1 && d) {
        for (unsigned i = 0; i < d->nbobjs; i++)
            for (unsigned j = 0; j < d->nbobjs; j++)
                tp->dist[d->objs[i]->os_index * slots + d->objs[j]->os_index] = (uint16_t)d->values[i * d->nbobjs + j];
        hw.distances_release(t, d);
        have = true;
    }
    if (!have && numa_syscalls())
        sysfs_distances(tp);
    /* order[a]: used nodes by distance from a (a itself first if used) */
    for (uint32_t a = 0; a < slots; a++) {
        uint16_t *o = &tp->order[a * slots];
        uint32_t k = 0;
        for (uint32_t b = 0; b < slots; b++)
            if (tp->used[b])
                o[k++] = (uint16_t)b;
        for (uint32_t i = 1; i < k; i++)        /* insertion sort, stable by id */
            for (uint32_t j = i; j > 0; j--) {
                uint16_t x = o[j - 1], y = o[j];
                uint16_t dx = x == a ? 0 : tp->dist[a * slots + x], dy = y == a ? 0 : tp->dist[a * slots + y];
                if (dy < dx) { o[j - 1] = y; o[j] = x; } else break;
            }
        for (; k < slots; k++)
            o[k] = UINT16_MAX;
    }
    /* the default home (a CPU of no known node): the first used node with
     * CPUs, else the first used node */
    tp->first_used = UINT32_MAX;
    for (uint32_t n = 0; n < slots && tp->first_used == UINT32_MAX; n++)
        if (tp->used[n] && tp->has_cpus[n])
            tp->first_used = n;
    for (uint32_t n = 0; n < slots && tp->first_used == UINT32_MAX; n++)
        if (tp->used[n])
            tp->first_used = n;
    if (preferred >= 0)
        tp->first_used = (uint32_t)preferred;
    /* cpu -> its home: the preferred policy's node; else the nearest used
     * node with CPUs from the CPU's node.  CPUs hwloc places in no node (a
     * memoryless node's, on some kernels) take the node sysfs lists them
     * in (as libnuma's numa_node_of_cpu did). */
    for (uint32_t c = 0; c < ncpus; c++)
        tp->cpu_node[c] = (uint16_t)tp->first_used;
    if (preferred < 0 && numa_syscalls())
        sysfs_cpu_nodes(tp);
    for (int i = 0; i < nn && preferred < 0; i++) {
        hwloc_obj_t o = hw_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
        uint16_t target = home_of(tp, o->os_index);
        for (int cpu = o->cpuset ? hw.bitmap_next(o->cpuset, -1) : -1; cpu >= 0; cpu = hw.bitmap_next(o->cpuset, cpu))
            if ((uint32_t)cpu < ncpus)
                tp->cpu_node[cpu] = target;
    }
    for (uint32_t n = 0; n < slots && n < NS_MAX_NODES; n++) {
        tp->room_ms[n] = 0;
        tp->low[n] = 0;
    }
    *out = tp;
    return 0;
}

/* ------------------------------------------------------------- loading */
/* One node online: the bootstrap serves the process for good, hwloc is
 * never loaded.  NUMASLAB_NODES is still checked (the same warning the
 * tool prints for this machine). */
static bool single_node_machine(void)
{
    char buf[256];
    if (hp_nodes_online(buf, sizeof buf) <= 0 || strcmp(buf, "0") == 0) {
        uint8_t exists = 1, used;
        topo_select_nodes(&exists, 1, &options.nodes, &used);
        return true;
    }
    return false;
}

#ifdef NS_FAKE_NODES
/* Test builds (the sanitizer stress tests, CMake): NS_FAKE_NODES nodes on
 * any machine, from a synthetic hwloc topology, nothing bound; a thread is
 * on node (its serial number % NS_FAKE_NODES) for good, so threads that
 * free each other's blocks take the cross-node paths (parked runs,
 * transfer stacks, remote stacks) on a one-node machine. */
static _Atomic unsigned fake_serial;
static __thread int fake_node = -1;

static int fake_build(topo_t **out)
{
    hwloc_topology_t t;
    char desc[64];
    snprintf(desc, sizeof desc, "numa:%d pu:64", NS_FAKE_NODES);
    if (!hw_load()) {
        error_warn("cannot load hwloc, fake nodes off: ", hw_why);
        return ENOSYS;
    }
    if (hw.topology_init(&t) != 0)
        return ENOMEM;
    int err = hw.topology_set_synthetic(t, desc) != 0 || hw.topology_load(t) != 0
                  ? EINVAL
                  : topo_from_hwloc(t, &options.nodes, out);
    hw.topology_destroy(t);
    atomic_store_explicit(&bind_off, 1, memory_order_relaxed);
    return err;
}
#endif

int topo_build(topo_t **out)
{
    int err = 0;
    *out = NULL;
#ifdef NS_FAKE_NODES
    return fake_build(out);
#endif
    if (single_node_machine() || !numa_syscalls())
        return 0;
    /* more than one node: now, and only now, hwloc (dlopen allocates: we
     * run after start-up, from the constructor, holding no lock) */
    if (!hw_load()) {
        error_warn("cannot load hwloc, the NUMA topology is unknown: running as one node: ", hw_why);
        return 0;
    }
    hwloc_topology_t t;
    if (hw.topology_init(&t) != 0)
        return ENOMEM;
    /* caches and I/O are not needed; packages and groups are (a NUMA
     * node's cpuset is its parent's) */
    hw.topology_set_cache_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
    hw.topology_set_icache_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
    hw.topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
    if (hw.topology_load(t) != 0)
        err = EINVAL;
    else
    {
        topo_policy_t pol;
        topo_read_policy(&pol);
        err = topo_from_hwloc_policy(t, &options.nodes, &pol, out);
    }
    hw.topology_destroy(t);
    uint32_t nexist = 0;
    for (uint32_t n = 0; !err && n < (*out)->slots; n++)
        nexist += (*out)->exists[n];
    if (!err && nexist <= 1) {              /* one node: the bootstrap */
        topo_discard(*out);
        *out = NULL;
    }
    return err;
}

void topo_discard(topo_t *tp)
{
    if (tp)
        meta_free(tp, tp->alloc_bytes);
}

void topo_publish(topo_t *tp)
{
    atomic_store_explicit(&cur, tp, memory_order_release);
    bind_boot_ranges(tp);
}

/* The bootstrap is over (with or without a topology): later mappings are
 * not recorded for binding. */
void topo_loaded(void)
{
    atomic_store_explicit(&load_state, 2, memory_order_release);
}

/* ------------------------------------------------------------- queries */
const char *topo_policy_text(const topo_t *t)
{
    uint32_t nexist = 0;
    for (uint32_t n = 0; t && n < t->slots; n++)
        nexist += t->exists[n];
    return nexist > 1 ? t->why : "one node: no binding";
}

const topo_t *topo_get(void) { return atomic_load_explicit(&cur, memory_order_acquire); }

uint32_t topo_nodes(void)
{
    const topo_t *t = topo_get();
    return t ? t->slots : 1;
}

bool topo_node_valid(uint32_t node)
{
    const topo_t *t = topo_get();
    return t ? node < t->slots && t->exists[node] : node == 0;
}

uint32_t topo_current_node(void)
{
    const topo_t *t = topo_get();
    if (!t)
        return 0;
#ifdef NS_FAKE_NODES
    if (fake_node < 0)
        fake_node = (int)(atomic_fetch_add_explicit(&fake_serial, 1, memory_order_relaxed) % NS_FAKE_NODES);
    return (uint32_t)fake_node;
#endif
    int cpu = sched_getcpu();
    return cpu >= 0 && (uint32_t)cpu < t->ncpus ? t->cpu_node[cpu] : t->first_used;
}

/* Next used node by distance from `home` after position *pos; -1 at end. */
int topo_nearest(uint32_t home, uint32_t *pos)
{
    const topo_t *t = topo_get();
    if (!t || home >= t->slots)
        return -1;
    while (*pos < t->slots) {
        uint16_t n = t->order[home * t->slots + (*pos)++];
        if (n == UINT16_MAX)
            return -1;
        if (n != home)
            return n;
    }
    return -1;
}

#define MPOL_MF_MOVE_ (1 << 1)

static void bind_range(void *p, size_t size, int mode, const topo_t *t, uint32_t node, unsigned flags)
{
    unsigned long mask[NS_MAX_NODES / (8 * sizeof(unsigned long))];
    memset(mask, 0, sizeof mask);
    const unsigned bits = 8 * sizeof(unsigned long);
    if (mode == MPOL_INTERLEAVE_ || node == UINT32_MAX) {
        for (uint32_t n = 0; n < t->slots; n++)
            if (t->used[n])
                mask[n / bits] |= 1ul << (n % bits);
    } else {
        mask[node / bits] |= 1ul << (node % bits);
    }
    int err = hp_mbind(p, size, mode, mask, (unsigned long)t->slots + 1, flags);
    if (err == EPERM || err == ENOSYS)
        atomic_store_explicit(&bind_off, 1, memory_order_relaxed);
}

/* A mapping of `node`'s pool, bound as the topology says: to the node
 * (preferred or strict), to the task's bind set, or interleaved. */
static void bind_as_planned(void *p, size_t size, const topo_t *t, uint32_t node, unsigned flags)
{
    switch (t->bind_mode) {
    case TOPO_BIND_SET: bind_range(p, size, MPOL_BIND_, t, UINT32_MAX, flags); break;
    case TOPO_BIND_INTERLEAVE: bind_range(p, size, MPOL_INTERLEAVE_, t, 0, flags); break;
    case TOPO_BIND_STRICT: bind_range(p, size, MPOL_BIND_, t, node, flags); break;
    default: bind_range(p, size, MPOL_PREFERRED_, t, node, flags); break;
    }
}

void topo_bind(void *p, size_t size, uint32_t node)
{
    const topo_t *t = topo_get();
    if (!t) {
        if (atomic_load_explicit(&load_state, memory_order_acquire) != 2) {
            unsigned i = atomic_fetch_add(&nboot, 1);
            if (i < BOOT_RANGES)
                boot[i].p = p, boot[i].size = size;
        }
        return;
    }
    if (atomic_load_explicit(&bind_off, memory_order_relaxed))
        return;
    bind_as_planned(p, size, t, node, 0);
}

/* Bind the bootstrap mappings that are still ours (pool 0's) as the plan
 * says for the default home node, moving the pages already touched. */
static void bind_boot_ranges(const topo_t *t)
{
    unsigned n = atomic_load(&nboot);
    for (unsigned i = 0; i < n && i < BOOT_RANGES; i++) {
        uintptr_t e = addrmap_lookup((uintptr_t)boot[i].p);
        bool ours = (e & NS_MAP_SS) ? (e & ~NS_MAP_TAGS) == (uintptr_t)boot[i].p
                                    : (e & NS_MAP_LARGE) && ((large_t *)(e & ~NS_MAP_TAGS))->base == (uintptr_t)boot[i].p;
        if (ours && !atomic_load_explicit(&bind_off, memory_order_relaxed))
            bind_as_planned(boot[i].p, boot[i].size, t, t->first_used, MPOL_MF_MOVE_);
    }
}

void topo_bind_interleave(void *p, size_t size)
{
    const topo_t *t = topo_get();
    if (!t || atomic_load_explicit(&bind_off, memory_order_relaxed))
        return;
    bind_range(p, size, MPOL_INTERLEAVE_, t, 0, 0);
}

bool topo_node_has_room(uint32_t node)
{
    const topo_t *t = topo_get();
    if (!t || node >= t->slots || node >= NS_MAX_NODES)
        return true;
    uint64_t now = clock_ms();
    uint64_t last = __atomic_load_n(&t->room_ms[node], __ATOMIC_RELAXED);
    if (now - last < 10)
        return !__atomic_load_n(&t->low[node], __ATOMIC_RELAXED);
    /* Free memory decides where pages land: with zone_reclaim_mode 0 (the
     * default) the kernel places pages on another node before it reclaims
     * local page cache.  For huge pages it is free 2 MiB blocks
     * (/proc/buddyinfo, orders >= 9) that count: a THP fault goes to
     * another node as soon as the local one has none, however much
     * fragmented memory it has left. */
    uint64_t avail = hp_node_free_bytes(node, hp_mode() != OPT_PAGES_NONE);
    bool room = true;
    if (avail != UINT64_MAX) {
        uint64_t extra = t->mem_total[node] / 32;
        uint64_t reserve = 4 * NS_SS_SIZE + (extra < ((uint64_t)1 << 30) ? extra : ((uint64_t)1 << 30));
        room = avail > reserve + NS_SS_SIZE;
    }
    __atomic_store_n((uint8_t *)&t->low[node], (uint8_t)!room, __ATOMIC_RELAXED);
    __atomic_store_n((uint64_t *)&t->room_ms[node], now, __ATOMIC_RELAXED);
    return room;
}

/* Free hugetlb pages of `kb` KiB (2048 or 1048576) on the node (or in the
 * machine, before the topology is known), read from sysfs at most every
 * 10 ms per node and size. */
bool topo_node_has_hugetlb_kb(uint32_t node, unsigned kb)
{
    static uint64_t last_ms[2][NS_MAX_NODES];
    static uint8_t have[2][NS_MAX_NODES];
    const topo_t *t = topo_get();
    unsigned which = kb == 2048 ? 0 : 1;
    uint32_t slot = t && node < NS_MAX_NODES ? node : 0;
    uint64_t now = clock_ms();
    if (now - __atomic_load_n(&last_ms[which][slot], __ATOMIC_RELAXED) < 10)
        return __atomic_load_n(&have[which][slot], __ATOMIC_RELAXED);
    bool yes = hp_hugetlb_free(t ? (int)node : -1, kb);
    __atomic_store_n(&have[which][slot], (uint8_t)yes, __ATOMIC_RELAXED);
    __atomic_store_n(&last_ms[which][slot], now, __ATOMIC_RELAXED);
    return yes;
}
