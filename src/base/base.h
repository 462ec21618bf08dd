/* base.h - the bottom layer: build configuration, options, errors, the
 * clock.  Every other folder may include this header; it includes nothing
 * of numaslab's but config.h.
 *
 * Layers (each folder uses only those below it; scripts/check_layers.sh
 * checks the built objects):
 *   src/base  <-  src/hugepage  <-  src/superslab  <-  src/numa  <-  src/tiny  <-  src/
 */
#ifndef NS_BASE_H
#define NS_BASE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* ------------------------------------------------------------ options.c
 * The option table: one row per option, read once from NUMASLAB_<NAME> at
 * start-up with secure_getenv (a setuid or setgid program ignores them).
 *   X(field, type, default, min, max, name, help)
 * Types: BOOL (1/0, true/false, on/off, yes/no), INT, SIZE (K/M/G/T
 * suffixes, powers of 1024), ENUM (one of the words in <field>_choices;
 * the value is its index), NODES (a node list such as 0,2-3, or "all"),
 * PATH (a file name, kept as given).  A bad value warns once and keeps the
 * default.  The README's option table is generated from these rows. */
#define NS_OPTIONS(X)                                                                              \
    X(abort_on_error, BOOL, 1, 0, 1, "ABORT_ON_ERROR",                                             \
      "after reporting an invalid pointer or a double free, abort (0: report, leak the block, go on)") \
    X(decay_ms, INT, 1000, 0, 3600000, "DECAY_MS",                                                 \
      "milliseconds an empty SuperSlab or a freed large mapping is kept for reuse before it goes back to the OS") \
    X(background, BOOL, 1, 0, 1, "BACKGROUND",                                                     \
      "a background thread gives back what fell unused (empty SuperSlabs, cached large mappings, free units of sparse SuperSlabs) NUMASLAB_DECAY_MS later, also while the process sleeps; started once there is something to give back (0: only allocator calls give back)") \
    X(large_cache, SIZE, 128 << 20, 0, (int64_t)1 << 40, "LARGE_CACHE",                             \
      "bytes of freed large mappings kept per node for reuse (their pages stay resident)")         \
    X(large_thp, BOOL, 1, 0, 1, "LARGE_THP",                                                       \
      "large blocks ask for transparent huge pages on each whole 2 MiB of them (never on their tail past it); 0: base pages only, so a sparsely written block costs only the pages written (see README, Large blocks and huge pages)") \
    X(tcache_bytes, SIZE, 64 << 10, 0, 16 << 20, "TCACHE_BYTES",                                   \
      "bytes one thread may cache per size class (at least 2 blocks, at most 512; blocks above 2 KiB up to 32 within 4x this); 0 disables thread caches") \
    X(nodes, NODES, 0, 0, 0, "NODES",                                                              \
      "NUMA nodes to allocate from, as a list like 0,2-3 (default: all); threads on other nodes use the nearest listed one") \
    X(strict, BOOL, 0, 0, 1, "STRICT",                                                             \
      "bind memory to its node with MPOL_BIND (a full node fails) instead of MPOL_PREFERRED (a full node spills)") \
    X(interleave, BOOL, 0, 0, 1, "INTERLEAVE",                                                     \
      "interleave large allocations (above 256 KiB) page by page over the nodes in use, for shared read-mostly data") \
    X(pages, ENUM, OPT_PAGES_THP, 0, 3, "PAGES",                                                   \
      "page backing of SuperSlabs: thp (default), auto (hugetlb 2 MiB pages where the node has free ones, else THP), hugetlb, none (base pages); see README for the hugetlb caveats") \
    X(hugetlb_fallback, BOOL, 1, 0, 1, "HUGETLB_FALLBACK",                                         \
      "with PAGES=hugetlb: use THP when no hugetlb page is left (0: fail with ENOMEM)")              \
    X(huge_1g, BOOL, 0, 0, 1, "HUGE_1G",                                                           \
      "large allocations of 1 GiB or more use 1 GiB hugetlb pages when the node has free ones")     \
    X(purge_partial, BOOL, 0, 0, 1, "PURGE_PARTIAL",                                               \
      "also give back free 64 KiB units inside partly used SuperSlabs (splits their huge pages; for memory pressure)") \
    X(stats, BOOL, 0, 0, 1, "STATS",                                                               \
      "print statistics when the process exits (format NUMASLAB_STATS_FORMAT, to NUMASLAB_STATS_FILE)") \
    X(stats_format, ENUM, OPT_FORMAT_TEXT, 0, 1, "STATS_FORMAT",                                   \
      "format of the statistics at exit: text (default) or json (every node and size class)")      \
    X(stats_file, PATH, 0, 0, 0, "STATS_FILE",                                                     \
      "file the statistics at exit go to, created or truncated (default: stderr); %p in the name becomes the process id; ignored by setuid/setgid programs") \
    X(prof, BOOL, 0, 0, 1, "PROF",                                                                 \
      "sample allocations with their call stacks: a heap profile (google-pprof's format, with live bytes per node) written at exit") \
    X(prof_sample, SIZE, 512 << 10, 1, (int64_t)1 << 30, "PROF_SAMPLE",                             \
      "average bytes allocated between two samples of the heap profiler (random intervals, so estimates are unbiased)") \
    X(prof_file, PATH, 0, 0, 0, "PROF_FILE",                                                       \
      "file the heap profile goes to (default: numaslab.%p.heap in the working directory); %p becomes the process id") \
    X(prof_interval, SIZE, 0, 0, (int64_t)1 << 40, "PROF_INTERVAL",                                 \
      "also write a profile (FILE.1, FILE.2, ...) each time the sampled live heap grows by this many bytes past the last one (0: off)")

/* ENUM values: the index of the word in the option's choices. */
enum { OPT_PAGES_AUTO = 0, OPT_PAGES_HUGETLB, OPT_PAGES_THP, OPT_PAGES_NONE };
enum { OPT_FORMAT_TEXT = 0, OPT_FORMAT_JSON };
#define OPT_CHOICES_pages {"auto", "hugetlb", "thp", "none", NULL}
#define OPT_CHOICES_stats_format {"text", "json", NULL}

/* A set of node ids; `given` false means "all nodes" (the default). */
typedef struct nodeset {
    bool given;
    uint64_t bits[NS_MAX_NODES / 64];
} nodeset_t;

static inline bool nodeset_has(const nodeset_t *s, uint32_t n)
{
    return n < NS_MAX_NODES && (s->bits[n / 64] >> (n % 64)) & 1;
}

#define OPT_CTYPE_BOOL int64_t
#define OPT_CTYPE_INT int64_t
#define OPT_CTYPE_SIZE int64_t
#define OPT_CTYPE_ENUM int64_t
#define OPT_CTYPE_NODES nodeset_t
#define OPT_CTYPE_PATH const char *

typedef struct options {
#define NS_OPT_FIELD(field, type, def, min, max, name, help) OPT_CTYPE_##type field;
    NS_OPTIONS(NS_OPT_FIELD)
#undef NS_OPT_FIELD
} options_t;

extern options_t options;
/* Read every NUMASLAB_* variable (start-up; also the tool).  Never
 * allocates; warnings go through error_warn. */
void options_init(void);

/* Was NUMASLAB_<name> set (well-formed or not) when options_init ran?
 * An explicit option overrides the task's NUMA policy (numa/topo.c). */
bool options_given(const char *name);
/* Row i of the table, for the tool and the README; false past the end. */
typedef struct option_info {
    const char *name;           /* without NUMASLAB_                       */
    const char *type;           /* bool int size enum nodes path           */
    int64_t def, min, max;
    const char *const *choices; /* ENUM: the words, NULL-terminated        */
    const char *help;
} option_info_t;
bool options_describe(unsigned i, option_info_t *out);
/* The current value of row i as text ("thp", "64K", "0,2-3", "all", ...). */
void options_format(unsigned i, char *out, size_t cap);
/* "0-3,5" -> set; false on a syntax error or an id >= NS_MAX_NODES.
 * "all" and "" give the empty, not-given set. */
bool options_parse_nodes(const char *s, nodeset_t *out);
/* A node list as text: "0-3,5" (the inverse of options_parse_nodes). */
void nodeset_format(const nodeset_t *s, char *out, size_t cap);

/* -------------------------------------------------------------- error.c
 * One line to stderr with write(2), no stdio, no allocation. */
void error_invalid(const char *fn, const void *p, const char *what); /* aborts if configured */
void error_fatal(const char *msg, const void *p) __attribute__((noreturn, cold));
void error_warn(const char *msg, const char *detail);

/* Internal assertion: checked in Debug builds (NS_DEBUG), compiled out
 * otherwise; a failure is fatal with the failed expression. */
#define ns_assert(cond)                                                                       \
    do {                                                                                      \
        if (ns_config_debug && NS_UNLIKELY(!(cond)))                                          \
            error_fatal("assertion failed: " #cond " at " __FILE__ ":" NS_STR(__LINE__), NULL); \
    } while (0)
#define NS_STR2(x) #x
#define NS_STR(x) NS_STR2(x)

/* --------------------------------------------------------------- lock.c
 * Every allocator lock has a rank; a thread takes locks in increasing
 * rank only (the order is written where the fork handlers live,
 * src/tiny/fork.c).  Debug builds check it at every acquisition and abort
 * with the two ranks on a violation; other builds call pthread directly.
 * Several bin locks at once (same rank) only inside fork's prepare
 * handler (lock_order_fork). */
enum lock_rank {
    LOCK_STDIO = 0,             /* glibc's stdio list lock (fork only)     */
    LOCK_PROF,                  /* src: the heap profiler's tables         */
    LOCK_TCACHE_LIST,           /* tiny: the list of live caches           */
    LOCK_BIN,                   /* numa: one bin (per node and class)      */
    LOCK_SS,                    /* numa: a node's SuperSlab lists          */
    LOCK_LARGE,                 /* numa: a node's large mappings           */
    LOCK_ADDRMAP,               /* superslab: address map leaves           */
    LOCK_META,                  /* superslab: metadata chunks              */
    LOCK_CHUNKS,                /* hugepage: SuperSlab reservations        */
    LOCK_RANKS
};
void lock_order_take(unsigned rank);    /* Debug builds only */
void lock_order_drop(unsigned rank);
void lock_order_fork(bool on);          /* the prepare handler's exception */
void lock_order_reset(void);            /* fork child: nothing held        */

/* ------------------------------------------------------ counted atomics
 * The statistics build (NS_COUNT_RMW: libnumaslab-rmw.so, for bench/numa)
 * counts every atomic read-modify-write the allocator executes: the C11
 * operations it uses are redefined here to count into a per-thread
 * counter first, and each mutex lock and unlock counts one (glibc's take a
 * compare-exchange and an exchange).  The total is "atomic_rmw" in the
 * statistics (base/lock.c keeps it). */
#ifdef NS_COUNT_RMW
#include <stdatomic.h>
extern __thread uint64_t rmw_thread;
void rmw_thread_exit(void);     /* a thread's count into the total */
uint64_t rmw_total(void);       /* exited threads' and the caller's */
#define NS_RMW(x) (rmw_thread++, (x))
#undef atomic_fetch_add
#undef atomic_fetch_add_explicit
#undef atomic_fetch_and_explicit
#undef atomic_fetch_or_explicit
#undef atomic_exchange_explicit
#undef atomic_compare_exchange_weak_explicit
#undef atomic_compare_exchange_strong_explicit
#undef atomic_compare_exchange_strong
#define atomic_fetch_add(P, V) NS_RMW(__atomic_fetch_add((P), (V), __ATOMIC_SEQ_CST))
#define atomic_fetch_add_explicit(P, V, MO) NS_RMW(__atomic_fetch_add((P), (V), (MO)))
#define atomic_fetch_and_explicit(P, V, MO) NS_RMW(__atomic_fetch_and((P), (V), (MO)))
#define atomic_fetch_or_explicit(P, V, MO) NS_RMW(__atomic_fetch_or((P), (V), (MO)))
#define atomic_exchange_explicit(P, V, MO)                                                      \
    NS_RMW(__extension__({                                                                      \
        __auto_type p_ = (P);                                                                   \
        __typeof__((void)0, *p_) v_ = (V), r_;                                                  \
        __atomic_exchange(p_, &v_, &r_, (MO));                                                  \
        r_;                                                                                     \
    }))
#define NS_CAS_(P, V, D, WEAK, S, F)                                                            \
    NS_RMW(__extension__({                                                                      \
        __auto_type p_ = (P);                                                                   \
        __typeof__((void)0, *p_) d_ = (D);                                                      \
        __atomic_compare_exchange(p_, (V), &d_, (WEAK), (S), (F));                              \
    }))
#define atomic_compare_exchange_weak_explicit(P, V, D, S, F) NS_CAS_(P, V, D, 1, S, F)
#define atomic_compare_exchange_strong_explicit(P, V, D, S, F) NS_CAS_(P, V, D, 0, S, F)
#define atomic_compare_exchange_strong(P, V, D) NS_CAS_(P, V, D, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)
#define NS_RMW_LOCK() ((void)rmw_thread++)
#else
#define NS_RMW_LOCK() ((void)0)
#endif

static inline void lock_take(pthread_mutex_t *m, unsigned rank)
{
    if (ns_config_debug)
        lock_order_take(rank);
    NS_RMW_LOCK();
    pthread_mutex_lock(m);
}

/* The same; true when another thread held it (the caller waited):
 * for contention counters, taken without the cost of a clock. */
static inline bool lock_take_waited(pthread_mutex_t *m, unsigned rank)
{
    if (ns_config_debug)
        lock_order_take(rank);
    NS_RMW_LOCK();
    if (pthread_mutex_trylock(m) == 0)
        return false;
    NS_RMW_LOCK();
    pthread_mutex_lock(m);
    return true;
}

static inline void lock_drop(pthread_mutex_t *m, unsigned rank)
{
    NS_RMW_LOCK();
    pthread_mutex_unlock(m);
    if (ns_config_debug)
        lock_order_drop(rank);
}

/* After fork: in the child, a fresh unlocked mutex (the prepare handler's
 * lock belongs to the parent's thread of the same name); in the parent,
 * a plain release. */
static inline void lock_after_fork(pthread_mutex_t *m, unsigned rank, bool child)
{
    if (child)
        pthread_mutex_init(m, NULL);
    else
        lock_drop(m, rank);
}

/* A validator's check (superslab/validate.c, numa/bin.c, tiny/tcache.c):
 * fatal, naming the invariant and the object, when it does not hold. */
#define NS_CHECK(cond, what, p)                                       \
    do {                                                              \
        if (NS_UNLIKELY(!(cond)))                                     \
            error_fatal("validate: " what " (" #cond ")", (p));       \
    } while (0)

/* -------------------------------------------------------------- clock.c */
uint64_t clock_ms(void);        /* CLOCK_MONOTONIC_COARSE, milliseconds */

/* ------------------------------------------------------------ machine.c
 * The running kernel's base page: 4 KiB on x86-64; 4, 16 or 64 KiB on
 * arm64.  Read from the auxiliary vector on first use (no allocation, no
 * lock: safe from the first malloc in the dynamic loader). */
extern size_t machine_page;
size_t machine_page_slow(void);
/* The code of the C library (libpthread too, on glibc before 2.34) and of
 * the dynamic loader, found once (machine_find_libc, from a constructor:
 * dl_iterate_phdr takes the loader's lock).  Is pc in it?  true while not
 * yet known.  free() called from there may run with glibc's own locks
 * held (the thread-stack cache lock), which pthread_create takes. */
void machine_find_libc(void);
bool machine_in_libc(const void *pc);
/* numaslab's own code (the executable segments of the object it is linked
 * into: libnumaslab.so, or the whole program when linked statically),
 * found with the C library's; true while not yet known. */
bool machine_in_self(const void *pc);
/* [lo, hi) of that code, and whether it is numaslab's alone (false: the
 * program itself, numaslab linked statically into it). */
void machine_self(uintptr_t *lo, uintptr_t *hi, bool *alone);
/* A detached helper thread of numaslab's own (live statistics, the
 * background release), named `name`, 256 KiB of stack, every signal
 * blocked (a program's handlers never run on it); 0 or pthread_create's
 * error. */
int machine_thread_start(void *(*fn)(void *), void *arg, const char *name);
/* The span [lo, hi) of a loaded object's executable segments (hi 0: none). */
struct dl_phdr_info;
void machine_code_span(const struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi);
static inline size_t ns_page_size(void)
{
    size_t p = __atomic_load_n(&machine_page, __ATOMIC_RELAXED);
    return NS_LIKELY(p != 0) ? p : machine_page_slow();
}

/* ------------------------------------------------------ counters
 * One more in a counter that only its owner thread writes and others read
 * (relaxed) for statistics: a single add to memory, no lock prefix.  C has
 * no such operation (a relaxed atomic load and store compile to three
 * instructions), so on x86-64 it is one line of assembly; an aligned 8-byte
 * add is never seen half done by a reader.  arm64 has no add to memory (a
 * load/store architecture): the relaxed load and store below compile to
 * ldr, add, str, the shortest sequence there is, and single-copy atomic. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NS_TSAN 1
#endif
#endif

static inline void count_inc(uint64_t *c)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && !defined(NS_TSAN)
    __asm__("addq $1, %0" : "+m"(*c));
#else /* aarch64 (ldr/add/str), sanitizer builds, other architectures */
    __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
#endif
}

/* One less in such a counter; true when it reached 0 (x86-64: one
 * subtract to memory and the branch on its zero flag). */
static inline bool count_down(uint32_t *c)
{
#if defined(__x86_64__) && !defined(__SANITIZE_THREAD__) && !defined(NS_TSAN)
    bool zero;
    __asm__("subl $1, %0" : "+m"(*c), "=@ccz"(zero));
    return zero;
#else
    uint32_t v = __atomic_load_n(c, __ATOMIC_RELAXED) - 1;
    __atomic_store_n(c, v, __ATOMIC_RELAXED);
    return v == 0;
#endif
}

#endif /* NS_BASE_H */
