/* numa.h - topology and the per-node pools.  The only header code outside
 * src/numa includes for these. */
#ifndef NS_NUMA_H
#define NS_NUMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../types.h"

/* --------------------------------------------------------------- topo.c */
int topo_init(void);                    /* 0, or errno */
uint32_t topo_nodes(void);              /* >= 1 */
uint32_t topo_current_node(void);       /* node of the CPU running us */
/* Bind [p, p+size) to node before its first touch; failures are ignored
 * (the memory still works, only its placement is not guaranteed). */
void topo_bind(void *p, size_t size, uint32_t node);

/* ---------------------------------------------------------- node_pool.c
 * Lock order: bin.lock -> ss_lock -> (address map, meta);
 *             large_lock -> (address map, meta).  No two bins at once. */
extern node_pool_t **ns_pools;
static inline node_pool_t *node_pool(uint32_t node) { return ns_pools[node]; }

int node_pools_init(uint32_t nodes);    /* 0 or ENOMEM */
/* Up to `want` blocks of class cls as a list (word 0 = next); *got = count,
 * 0 when no memory can be had. */
void *bin_refill(node_pool_t *pool, unsigned cls, uint32_t want, uint32_t *got);
/* Give back n blocks (a list) of class cls, all from this node. */
void bin_flush(node_pool_t *pool, unsigned cls, void *list, uint32_t n);
/* Is block p in its slab's free list? (double-free check, slow) */
bool bin_holds(void *p);
/* Release empty slabs and SuperSlabs, and cached large mappings: `all` now,
 * otherwise those past the decay period.  Returns bytes unmapped. */
size_t node_pool_release(node_pool_t *pool, bool all);
void node_pools_lock_all(void);
void node_pools_unlock_all(bool child);

#endif
