/* numa.h - topology and the per-node pools.  The only header code outside
 * src/numa includes for these. */
#ifndef NS_NUMA_H
#define NS_NUMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../types.h"

/* --------------------------------------------------------------- topo.c */
#define NS_MAX_NODES 1024               /* Linux's MAX_NUMNODES limit */

/* The topology, immutable once published (room_ms/low: relaxed hints). */
typedef struct topo {
    uint32_t slots;                     /* highest node id + 1             */
    uint32_t ncpus;                     /* highest cpu id + 1              */
    uint32_t nused, first_used;         /* nodes numaslab allocates from   */
    size_t alloc_bytes;
    uint64_t *mem_total;                /* [slots] bytes                   */
    uint16_t *dist;                     /* [slots*slots] hwloc/SLIT units  */
    uint16_t *order;                    /* [slots*slots] used nodes nearest first */
    uint16_t *cpu_node;                 /* [ncpus] -> used node            */
    uint8_t *exists, *used;             /* [slots]                         */
    uint64_t room_ms[NS_MAX_NODES];     /* last MemFree check              */
    uint8_t low[NS_MAX_NODES];          /* node below its reserve          */
} topo_t;

struct hwloc_topology;
int topo_from_hwloc(struct hwloc_topology *t, const char *nodes_opt, topo_t **out); /* 0/errno */
int topo_load(void);                    /* once; 0, or errno (stays 1 node) */
const topo_t *topo_get(void);           /* NULL: one node (bootstrap)      */
uint32_t topo_nodes(void);              /* node slots, >= 1                */
bool topo_node_valid(uint32_t node);
uint32_t topo_current_node(void);       /* node of the CPU running us      */
int topo_nearest(uint32_t home, uint32_t *pos); /* next nearest used node  */
/* Bind [p, p+size) to node before its first touch; failures are ignored
 * (the memory still works, only its placement is not guaranteed). */
void topo_bind(void *p, size_t size, uint32_t node);
void topo_bind_interleave(void *p, size_t size);
bool topo_node_has_room(uint32_t node); /* MemFree above the node's reserve */
bool topo_node_has_hugetlb(uint32_t node); /* free 2 MiB hugetlb pages there */
bool topo_node_has_hugetlb_kb(uint32_t node, unsigned kb); /* 2048 or 1048576 */

/* ---------------------------------------------------------- node_pool.c
 * Lock order: bin.lock -> ss_lock -> (address map, meta);
 *             large_lock -> (address map, meta).  No two bins at once. */
extern node_pool_t *ns_pools[NS_MAX_NODES];
static inline node_pool_t *node_pool(uint32_t node) { return ns_pools[node]; }

int node_pools_init(void);              /* pool 0 (bootstrap); 0 or ENOMEM */
int node_pools_grow(uint32_t slots);    /* pools 1..slots-1; 0 or ENOMEM   */
/* Up to `want` blocks of class cls as a list (word 0 = next); *got = count,
 * 0 when no memory can be had. */
void *bin_refill(node_pool_t *pool, unsigned cls, uint32_t want, uint32_t *got);
/* The same, but a new SuperSlab is mapped only if the node has room
 * (topo_node_has_room): *got == 0 then means "spill elsewhere". */
void *bin_refill_local(node_pool_t *pool, unsigned cls, uint32_t want, uint32_t *got);
/* Give back a list of blocks of class cls, all from this node; returns
 * the bytes this unmapped (empty SuperSlabs with NUMASLAB_DECAY_MS=0). */
size_t bin_flush(node_pool_t *pool, unsigned cls, void *list);
/* The same, but the list may be kept whole for the next refill (the
 * stash); false (nothing done): call bin_flush. */
bool bin_stash(node_pool_t *pool, unsigned cls, void *list, uint32_t n);
/* Blocks in b's stash (they count in b->used_blocks).  Bin lock held. */
uint64_t bin_stashed(const bin_t *b);
/* Is block p in its slab's free list? (double-free check, slow) */
bool bin_holds(void *p);
/* Release empty slabs and SuperSlabs, and cached large mappings: `all` now,
 * otherwise those past the decay period.  Returns bytes unmapped. */
size_t node_pool_release(node_pool_t *pool, bool all);
void node_pools_lock_all(void);
void node_pools_unlock_all(bool child);

#endif
