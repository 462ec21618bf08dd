/* numaslab.h - public API of the numaslab allocator.
 *
 * The ns_* functions are the allocator's own entry points: they work whether
 * or not libnumaslab overrides malloc (link libnumaslab.a or use the shared
 * library).  When libnumaslab.so is loaded (LD_PRELOAD or linked), the
 * standard malloc family resolves to the same code.
 *
 * Semantics follow C11/POSIX/glibc: on failure the allocation functions
 * return NULL with errno = ENOMEM.  A bad alignment gives EINVAL: returned
 * by ns_posix_memalign (not a power of two multiple of sizeof(void *)), set
 * by ns_aligned_alloc (not a power of two).  ns_memalign, like glibc's,
 * rounds an alignment that is not a power of two up to the next one.
 */
#ifndef NUMASLAB_H
#define NUMASLAB_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NS_VERSION_MAJOR 0
#define NS_VERSION_MINOR 1
#define NS_VERSION_PATCH 0

/* The standard allocation API under the ns_ prefix. */
void *ns_malloc(size_t size);
void ns_free(void *ptr);
void *ns_calloc(size_t count, size_t size);
void *ns_realloc(void *ptr, size_t size);
void *ns_reallocarray(void *ptr, size_t count, size_t size);
int ns_posix_memalign(void **out, size_t alignment, size_t size);
void *ns_aligned_alloc(size_t alignment, size_t size);
void *ns_memalign(size_t alignment, size_t size);
void *ns_valloc(size_t size);
void *ns_pvalloc(size_t size);
size_t ns_malloc_usable_size(const void *ptr);
int ns_malloc_trim(size_t pad);

/* Allocate on NUMA node `node` (0-based, as numactl numbers them); NULL with
 * errno = EINVAL if the node does not exist.  Free with ns_free/free. */
void *ns_malloc_onnode(size_t size, int node);

/* The NUMA node that owns the block at ptr, or -1 if ptr is not ours. */
int ns_node_of(const void *ptr);

/* Give every unused page back to the OS now: flush the calling thread's
 * cache, drain remote frees, release empty SuperSlabs and cached large
 * mappings, and unmap the address-space reservations that no SuperSlab
 * uses any more.  Returns the number of bytes of memory unmapped. */
size_t ns_release(void);

/* Statistics, merged on demand.  All byte counts are bytes of address space
 * mapped from or given back to the OS unless the name says otherwise. */
typedef struct ns_node_stats {
    uint64_t superslabs;        /* SuperSlabs currently mapped           */
    uint64_t superslab_bytes;   /* their bytes (2 MiB each)              */
    uint64_t slabs;             /* slabs currently carved                */
    uint64_t large_count;       /* live large mappings                   */
    uint64_t large_bytes;       /* their reserved bytes (cached excluded) */
    uint64_t large_cached;      /* freed large mappings kept for reuse   */
    uint64_t large_cached_bytes;
    uint64_t small_in_use;      /* bytes of blocks in use or in thread caches */
    uint64_t remote_frees;      /* blocks freed by threads of other nodes
                                   (counted when handed over in batches) */
    uint64_t remote_drained;    /* of those, moved back into free lists  */
    uint64_t spills;            /* allocations for this node that went to
                                   the nearest node because it was full  */
    uint64_t released_bytes;    /* bytes given back to the OS (total)    */
    uint64_t ss_hugetlb;        /* SuperSlabs on hugetlb 2 MiB pages     */
    uint64_t ss_thp;            /* SuperSlabs with MADV_HUGEPAGE (THP)   */
    uint64_t ss_base;           /* SuperSlabs on base pages              */
    uint64_t occupancy[5];      /* SuperSlabs by used units of 32: empty,
                                   1-8, 9-16, 17-24, 25-32               */
    uint64_t bin_lock_acquires; /* bin locks taken (a thread took or gave
                                   back a slab, or had none of its own)  */
    uint64_t bin_lock_contended;/* ... of them, held by another thread   */
    uint64_t remote_batches;    /* runs of remote frees handed over to this
                                   node's slabs, one atomic exchange each */
    uint64_t remote_blocks;     /* the blocks in them (= remote_frees)   */
} ns_node_stats_t;

/* One size class, summed over nodes.  Requests counts blocks handed out
 * by thread caches (malloc of that class); refills counts the times a
 * cache was empty and went to its node's bin, so the cache hit rate is
 * 1 - refills / requests. */
typedef struct ns_class_stats {
    uint32_t size;              /* block size                            */
    uint64_t requests;          /* allocations served                    */
    uint64_t refills;           /* thread-cache misses                   */
    uint64_t live_blocks;       /* blocks in use or in thread caches     */
    uint64_t slabs;             /* slabs carved for the class now        */
} ns_class_stats_t;

#define NS_STATS_CLASSES 96

typedef struct ns_stats {
    int nodes;                  /* number of NUMA nodes in use           */
    uint64_t mapped_bytes;      /* all bytes mapped (SuperSlabs + large) */
    uint64_t in_use_bytes;      /* small in use + live large             */
    uint64_t threads;           /* threads with a cache now              */
    ns_node_stats_t node[64];   /* first 64 nodes                        */
    ns_class_stats_t classes[NS_STATS_CLASSES];
} ns_stats_t;

/* Fill *out; returns 0, or EINVAL if out is NULL.  The macro passes the
 * caller's idea of the struct's size, so a program built against an older,
 * smaller ns_stats_t keeps working with a newer library (fields it does not
 * know are not written). */
int ns_stats_get_sized(ns_stats_t *out, size_t size);
int(ns_stats_get)(ns_stats_t *out);
#define ns_stats_get(out) ns_stats_get_sized((out), sizeof *(out))
/* Print a human-readable summary to f (no allocation through numaslab). */
void ns_stats_print(FILE *f);

/* Write the heap profile now (NUMASLAB_PROF=1): to path, or to
 * NUMASLAB_PROF_FILE's file when path is NULL.  google-pprof's heap format
 * (heap_v2) with numaslab's per-node lines; read it with
 * `google-pprof --text PROGRAM FILE` or `numaslab prof FILE`.  Returns 0,
 * or -1 with errno (ENOTSUP: the profiler is off; open's errors). */
int ns_prof_dump(const char *path);

#ifdef __cplusplus
}
#endif
#endif /* NUMASLAB_H */
