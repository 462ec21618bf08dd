/* topo.c - the machine's NUMA topology as the allocator sees it.
 *
 * Until the topology is known every thread counts as node 0 (the bootstrap:
 * malloc works from the first call, and hwloc and libnuma allocate while
 * they load).  topo_load() runs once, after start-up (from the library's
 * constructor, or later from a refill): it reads nodes, their CPUs, memory
 * and distances from hwloc (distances: hwloc, else the ACPI SLIT through
 * libnuma's numa_distance, else 10 local / 20 remote), builds a table
 * cpu -> node, creates the node pools, and publishes the result with one
 * release store.  Readers never lock.  A machine with one node (read from
 * /sys/devices/system/node/online, without loading hwloc at all), or
 * without NUMA support, stays on the bootstrap: one node, no binding.
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
#include <errno.h>
#include <fcntl.h>
#include <hwloc.h>
#include <numa.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../hugepage/hugepage.h"
#include "../internal.h"
#include "../superslab/superslab.h"
#include "numa.h"

#define MPOL_PREFERRED_ 1
#define MPOL_BIND_ 2
#define MPOL_INTERLEAVE_ 3

static topo_t *_Atomic cur;
static _Atomic int load_state;       /* 0 not yet, 1 loading, 2 done */
static _Atomic int bind_off;

/* Mappings made before the topology was known (node 0, unbound): bound to
 * node 0 once it is, pages already touched moved there.  A few SuperSlabs
 * at most (libc and hwloc start-up); past the table they stay unbound. */
#define BOOT_RANGES 64
static struct { void *p; size_t size; } boot[BOOT_RANGES];
static _Atomic unsigned nboot;
static void bind_boot_ranges(const topo_t *t);

/* ------------------------------------------------------------ helpers */

static char *put_uint(char *out, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *out++ = tmp[--n];
    *out = 0;
    return out;
}

/* "0-3,5" -> bits in mask (up to max); false on a syntax error */
static bool parse_list(const char *s, uint8_t *mask, uint32_t max)
{
    while (*s) {
        if (*s < '0' || *s > '9')
            return false;
        uint32_t a = 0, b;
        while (*s >= '0' && *s <= '9') a = a * 10 + (uint32_t)(*s++ - '0');
        b = a;
        if (*s == '-') {
            s++;
            if (*s < '0' || *s > '9')
                return false;
            b = 0;
            while (*s >= '0' && *s <= '9') b = b * 10 + (uint32_t)(*s++ - '0');
        }
        if (b < a || b >= max)
            return false;
        for (uint32_t i = a; i <= b; i++)
            mask[i] = 1;
        if (*s == ',')
            s++;
        else if (*s && *s != '\n')
            return false;
        else if (*s == '\n')
            break;
    }
    return true;
}

/* ------------------------------------------------------- build a topo_t */
int topo_from_hwloc(hwloc_topology_t t, const char *nodes_opt, topo_t **out)
{
    int nn = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    if (nn <= 0)
        return EINVAL;
    uint32_t slots = 0;
    int maxcpu = hwloc_bitmap_last(hwloc_topology_get_topology_cpuset(t));
    for (int i = 0; i < nn; i++) {
        hwloc_obj_t o = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
        if (o->os_index + 1 > slots)
            slots = o->os_index + 1;
    }
    if (slots > NS_MAX_NODES)
        return EINVAL;
    uint32_t ncpus = maxcpu < 0 ? 1 : (uint32_t)maxcpu + 1;
    size_t bytes = sizeof(topo_t) + slots * (sizeof(uint8_t) * 2 + sizeof(uint64_t)) +
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
    tp->used = (uint8_t *)m;
    for (uint32_t c = 0; c < ncpus; c++)
        tp->cpu_node[c] = 0;
    for (int i = 0; i < nn; i++) {
        hwloc_obj_t o = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
        tp->exists[o->os_index] = 1;
        tp->mem_total[o->os_index] = o->attr ? o->attr->numanode.local_memory : 0;
    }
    /* used nodes: NUMASLAB_NODES, or all that exist */
    bool any = false;
    if (nodes_opt && *nodes_opt && strcmp(nodes_opt, "all") != 0) {
        uint8_t want[NS_MAX_NODES] = {0};
        if (!parse_list(nodes_opt, want, NS_MAX_NODES)) {
            ns_warn("bad value, using all nodes: NUMASLAB_NODES=", nodes_opt);
        } else {
            for (uint32_t n = 0; n < slots; n++)
                if (want[n] && tp->exists[n])
                    tp->used[n] = 1, any = true;
            if (!any)
                ns_warn("NUMASLAB_NODES names no existing node, using all: ", nodes_opt);
        }
    }
    if (!any)
        for (uint32_t n = 0; n < slots; n++)
            tp->used[n] = tp->exists[n];
    tp->nused = 0;
    for (uint32_t n = 0; n < slots; n++) {
        tp->nused += tp->used[n];
        if (tp->used[n] && tp->nused == 1)
            tp->first_used = n;
    }

    /* distances: hwloc, else libnuma (ACPI SLIT), else 10/20 */
    for (uint32_t a = 0; a < slots; a++)
        for (uint32_t b = 0; b < slots; b++)
            tp->dist[a * slots + b] = a == b ? 10 : 20;
    unsigned nr = 1;
    struct hwloc_distances_s *d = NULL;
    bool have = false;
    if (hwloc_distances_get_by_type(t, HWLOC_OBJ_NUMANODE, &nr, &d, 0, 0) == 0 && nr >= 1 && d) {
        for (unsigned i = 0; i < d->nbobjs; i++)
            for (unsigned j = 0; j < d->nbobjs; j++)
                tp->dist[d->objs[i]->os_index * slots + d->objs[j]->os_index] = (uint16_t)d->values[i * d->nbobjs + j];
        hwloc_distances_release(t, d);
        have = true;
    }
    if (!have && numa_available() >= 0) {
        for (uint32_t a = 0; a < slots; a++)
            for (uint32_t b = 0; b < slots; b++) {
                int v = tp->exists[a] && tp->exists[b] ? numa_distance((int)a, (int)b) : 0;
                if (v > 0)
                    tp->dist[a * slots + b] = (uint16_t)v;
            }
    }
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
    /* cpu -> nearest used node */
    for (int i = 0; i < nn; i++) {
        hwloc_obj_t o = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
        uint16_t target = tp->order[o->os_index * slots];
        int cpu;
        hwloc_bitmap_foreach_begin(cpu, o->cpuset)
        {
            if ((uint32_t)cpu < ncpus)
                tp->cpu_node[cpu] = target;
        }
        hwloc_bitmap_foreach_end();
    }
    for (uint32_t n = 0; n < slots && n < NS_MAX_NODES; n++) {
        tp->room_ms[n] = 0;
        tp->low[n] = 0;
    }
    *out = tp;
    return 0;
}

/* ------------------------------------------------------------- loading */
static bool single_node_machine(void)
{
    char buf[256];
    if (hp_read_file("/sys/devices/system/node/online", buf, sizeof buf) <= 0)
        return true;                       /* no NUMA sysfs: one node */
    return strcmp(buf, "0\n") == 0 || strcmp(buf, "0") == 0;
}

int topo_load(void)
{
    int st = 0;
    if (!atomic_compare_exchange_strong(&load_state, &st, 1))
        return 0;
    int err = 0;
    if (!single_node_machine() && numa_available() >= 0) {
        hwloc_topology_t t;
        if (hwloc_topology_init(&t) == 0) {
            /* caches and I/O are not needed; packages and groups are (a
             * NUMA node's cpuset is its parent's) */
            hwloc_topology_set_cache_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
            hwloc_topology_set_icache_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
            hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
            topo_t *tp = NULL;
            if (hwloc_topology_load(t) == 0 &&
                (err = topo_from_hwloc(t, (const char *)(intptr_t)ns_opt.nodes, &tp)) == 0) {
                if (tp->nused > 1 && node_pools_grow(tp->slots) == 0) {
                    atomic_store_explicit(&cur, tp, memory_order_release);
                    bind_boot_ranges(tp);
                } else
                    meta_free(tp, tp->alloc_bytes);
            }
            hwloc_topology_destroy(t);
        }
    }
    atomic_store_explicit(&load_state, 2, memory_order_release);
    return err;
}

/* ------------------------------------------------------------- queries */
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
    if (mode == MPOL_INTERLEAVE_) {
        for (uint32_t n = 0; n < t->slots; n++)
            if (t->used[n])
                mask[n / bits] |= 1ul << (n % bits);
    } else {
        mask[node / bits] |= 1ul << (node % bits);
    }
    if (hp_fault(HP_FAULT_MBIND))      /* test builds: the page lands where it is touched */
        return;
    if (syscall(SYS_mbind, p, size, mode, mask, (unsigned long)t->slots + 1, flags) != 0 &&
        (errno == EPERM || errno == ENOSYS))
        atomic_store_explicit(&bind_off, 1, memory_order_relaxed);
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
    bind_range(p, size, ns_opt.strict ? MPOL_BIND_ : MPOL_PREFERRED_, t, node, 0);
}

/* Bind the bootstrap mappings that are still ours to node 0. */
static void bind_boot_ranges(const topo_t *t)
{
    unsigned n = atomic_load(&nboot);
    for (unsigned i = 0; i < n && i < BOOT_RANGES; i++) {
        uintptr_t e = addrmap_lookup((uintptr_t)boot[i].p);
        bool ours = (e & NS_MAP_SS) ? (e & ~NS_MAP_TAGS) == (uintptr_t)boot[i].p
                                    : (e & NS_MAP_LARGE) && ((large_t *)(e & ~NS_MAP_TAGS))->base == (uintptr_t)boot[i].p;
        if (ours && !atomic_load_explicit(&bind_off, memory_order_relaxed))
            bind_range(boot[i].p, boot[i].size, ns_opt.strict ? MPOL_BIND_ : MPOL_PREFERRED_, t, 0, MPOL_MF_MOVE_);
    }
}

void topo_bind_interleave(void *p, size_t size)
{
    const topo_t *t = topo_get();
    if (!t || atomic_load_explicit(&bind_off, memory_order_relaxed))
        return;
    bind_range(p, size, MPOL_INTERLEAVE_, t, 0, 0);
}

/* Bytes in free blocks of 2 MiB or more on the node (all zones), from
 * /proc/buddyinfo: "Node 0, zone   Normal  c0 c1 ... c10" (count per order). */
static uint64_t buddy_huge_bytes(uint32_t node)
{
    char buf[4096];
    if (hp_read_file("/proc/buddyinfo", buf, sizeof buf) <= 0)
        return UINT64_MAX;
    uint64_t bytes = 0;
    for (char *line = buf; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        uint32_t n = 0;
        if (strncmp(line, "Node ", 5) == 0) {
            char *p = line + 5;
            while (*p >= '0' && *p <= '9') n = n * 10 + (uint32_t)(*p++ - '0');
            if (n == node && (p = strstr(p, "zone"))) {
                p += 4;
                while (*p == ' ') p++;
                while (*p && *p != ' ') p++;          /* zone name */
                for (unsigned order = 0; *p; order++) {
                    while (*p == ' ') p++;
                    if (*p < '0' || *p > '9')
                        break;
                    uint64_t c = 0;
                    while (*p >= '0' && *p <= '9') c = c * 10 + (uint64_t)(*p++ - '0');
                    if (order >= 9)
                        bytes += c << (order + 12);
                }
            }
        }
        line = next;
    }
    return bytes;
}

static uint64_t meminfo_kb(const char *buf, const char *key)
{
    const char *f = strstr(buf, key);
    uint64_t kb = 0;
    if (!f)
        return 0;
    for (f += strlen(key); *f == ' '; f++) {}
    for (; *f >= '0' && *f <= '9'; f++)
        kb = kb * 10 + (uint64_t)(*f - '0');
    return kb;
}

bool topo_node_has_room(uint32_t node)
{
    const topo_t *t = topo_get();
    if (!t || node >= t->slots || node >= NS_MAX_NODES)
        return true;
    uint64_t now = ns_now_ms();
    uint64_t last = __atomic_load_n(&t->room_ms[node], __ATOMIC_RELAXED);
    if (now - last < 10)
        return !__atomic_load_n(&t->low[node], __ATOMIC_RELAXED);
    char path[96] = "/sys/devices/system/node/node", buf[2048];
    char *e = put_uint(path + strlen(path), node);
    memcpy(e, "/meminfo", 9);
    bool room = true;
    if (hp_read_file(path, buf, sizeof buf) > 0) {
        /* Free memory decides where pages land: with zone_reclaim_mode 0
         * (the default) the kernel places pages on another node before it
         * reclaims local page cache.  For huge pages it is free 2 MiB
         * blocks (/proc/buddyinfo, orders >= 9) that count: a THP fault
         * goes to another node as soon as the local one has none, however
         * much fragmented memory it has left. */
        uint64_t avail = meminfo_kb(buf, "MemFree:") * 1024;
        if (hp_mode() != HP_MODE_NONE) {
            uint64_t huge = buddy_huge_bytes(node);
            if (huge < avail)
                avail = huge;
        }
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
    uint64_t now = ns_now_ms();
    if (now - __atomic_load_n(&last_ms[which][slot], __ATOMIC_RELAXED) < 10)
        return __atomic_load_n(&have[which][slot], __ATOMIC_RELAXED);
    char path[160], buf[64];
    char *e;
    if (t) {
        strcpy(path, "/sys/devices/system/node/node");
        e = put_uint(path + strlen(path), node);
        strcpy(e, "/hugepages/hugepages-");
    } else {
        strcpy(path, "/sys/kernel/mm/hugepages/hugepages-");
    }
    e = put_uint(path + strlen(path), kb);
    strcpy(e, "kB/free_hugepages");
    bool yes = hp_read_file(path, buf, sizeof buf) > 0 && buf[0] >= '1' && buf[0] <= '9';
    __atomic_store_n(&have[which][slot], (uint8_t)yes, __ATOMIC_RELAXED);
    __atomic_store_n(&last_ms[which][slot], now, __ATOMIC_RELAXED);
    return yes;
}

bool topo_node_has_hugetlb(uint32_t node)
{
    return topo_node_has_hugetlb_kb(node, 2048);
}
