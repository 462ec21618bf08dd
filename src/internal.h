/* internal.h - what the files in src/ offer each other: options, errors, statistics,
 * start-up.  Prototypes grouped by the file that defines them. */
#ifndef NS_INTERNAL_H
#define NS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

/* ------------------------------------------------------------ options.c
 * The option table: one row per option, read once from NUMASLAB_<NAME> at
 * start-up.  X(field, type, default, min, max, name, help)
 *   BOOL accepts 1/0, true/false, on/off, yes/no; SIZE accepts K/M/G
 *   suffixes (powers of 1024); STR keeps the environment string (its
 *   address, as an integer; 0 = unset) for the module that reads it to
 *   check; a bad value warns once and keeps the default. */
#define NS_OPTIONS(X)                                                                              \
    X(abort_on_error, BOOL, 1, 0, 1, "ABORT_ON_ERROR",                                             \
      "after reporting an invalid pointer or a double free, abort (0: report, leak the block, go on)") \
    X(decay_ms, INT, 1000, 0, 3600000, "DECAY_MS",                                                 \
      "milliseconds an empty SuperSlab or a freed large mapping is kept for reuse before it goes back to the OS") \
    X(large_cache, SIZE, 128 << 20, 0, (int64_t)1 << 40, "LARGE_CACHE",                             \
      "bytes of freed large mappings kept per node for reuse (their pages stay resident)")         \
    X(tcache_bytes, SIZE, 64 << 10, 0, 16 << 20, "TCACHE_BYTES",                                   \
      "bytes one thread may cache per size class (at least 2 blocks, at most 512); 0 disables thread caches") \
    X(nodes, STR, 0, 0, 0, "NODES",                                                                \
      "NUMA nodes to allocate from, as a list like 0,2-3 (default: all); threads on other nodes use the nearest listed one") \
    X(strict, BOOL, 0, 0, 1, "STRICT",                                                             \
      "bind memory to its node with MPOL_BIND (a full node fails) instead of MPOL_PREFERRED (a full node spills)") \
    X(interleave, BOOL, 0, 0, 1, "INTERLEAVE",                                                     \
      "interleave large allocations (above 256 KiB) page by page over the nodes in use, for shared read-mostly data") \
    X(pages, STR, 0, 0, 0, "PAGES",                                                                \
      "page backing of SuperSlabs: thp (default), auto (hugetlb 2 MiB pages where the node has free ones, else THP), hugetlb, none (base pages); see README for the hugetlb caveats") \
    X(hugetlb_fallback, BOOL, 1, 0, 1, "HUGETLB_FALLBACK",                                         \
      "with PAGES=hugetlb: use THP when no hugetlb page is left (0: fail with ENOMEM)")              \
    X(huge_1g, BOOL, 0, 0, 1, "HUGE_1G",                                                           \
      "large allocations of 1 GiB or more use 1 GiB hugetlb pages when the node has free ones")     \
    X(purge_partial, BOOL, 0, 0, 1, "PURGE_PARTIAL",                                               \
      "also give back free 64 KiB units inside partly used SuperSlabs (splits their huge pages; for memory pressure)") \
    X(stats, BOOL, 0, 0, 1, "STATS",                                                               \
      "print statistics when the process exits (format NUMASLAB_STATS_FORMAT, to NUMASLAB_STATS_FILE)") \
    X(stats_format, STR, 0, 0, 0, "STATS_FORMAT",                                                  \
      "format of the statistics at exit: text (default) or json (every node and size class)")      \
    X(stats_file, STR, 0, 0, 0, "STATS_FILE",                                                      \
      "file the statistics at exit go to, created or truncated (default: stderr); %p in the name becomes the process id")

typedef struct ns_options {
#define NS_OPT_FIELD(field, type, def, min, max, name, help) int64_t field;
    NS_OPTIONS(NS_OPT_FIELD)
#undef NS_OPT_FIELD
} ns_options_t;

extern ns_options_t ns_opt;
void options_init(void);
/* Row i of the table for the tool and the README; false past the end. */
bool options_describe(unsigned i, const char **name, const char **type, int64_t *def, int64_t *min,
                      int64_t *max, const char **help);

/* -------------------------------------------------------------- error.c
 * One line to stderr with write(2), no stdio, no allocation. */
void ns_report_invalid(const char *fn, const void *p, const char *what); /* aborts if configured */
void ns_fatal(const char *msg, const void *p) __attribute__((noreturn));
void ns_warn(const char *msg, const char *detail);
/* Internal assertion: checked in Debug builds (NS_DEBUG), compiled out
 * otherwise; a failure is fatal with the failed expression. */
#define ns_assert(cond)                                                          \
    do {                                                                         \
        if (ns_config_debug && !(cond))                                          \
            ns_fatal("assertion failed: " #cond " at " __FILE__ ":" NS_STR(__LINE__), NULL); \
    } while (0)
#define NS_STR2(x) #x
#define NS_STR(x) NS_STR2(x)

/* -------------------------------------------------------------- stats.c */
void ns_stat_released(node_pool_t *pool, size_t bytes);
void stats_at_exit(void);

/* --------------------------------------------------------------- init.c */
extern _Atomic int ns_init_state;       /* 0 none, 1 running, 2 done */
extern uintptr_t ns_key;                 /* random, per process (tcache.c) */
bool ns_init(void);                      /* false: cannot start (ENOMEM) */
uint64_t ns_now_ms(void);

#endif
