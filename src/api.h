/* api.h - what the entry points in src/ share: the bodies of malloc and
 * free, inlined into both the ns_* functions (alloc.c, free.c) and the
 * malloc-family symbols (override.c), and the prototypes of src/'s files.
 * Uses src/tiny and everything below it. */
#ifndef NS_API_H
#define NS_API_H

#include "tiny/tiny.h"

#define NS_API __attribute__((visibility("default")))

/* ------------------------------------------------------------- alloc.c */
void *alloc_large(size_t size);           /* above NS_SMALL_MAX */

/* ------------------------------------------------------------- free.c */
/* free() of what the fast path did not take: classify the pointer once
 * (large, small, not ours) and hand it to its owner. */
void free_slow(void *p);
/* free_slow, then, with no lock held any more: what it made releasable may
 * start the background release thread (numa/decay.c says from which
 * callers).  Reached by a tail call from free(), so its own return
 * address is free()'s caller; called from anywhere in numaslab (realloc,
 * or a build that does not tail-call) it starts nothing.  The fast path
 * reads no return address. */
void free_slow_entry(void *p);
/* Usable size of a block of ours, or 0 after reporting an invalid or
 * freed pointer on behalf of fn. */
size_t free_block_size(const void *p, const char *fn);

/* ------------------------------------------------------------- stats.c */
void stats_at_exit(void);
struct ns_stats;
/* ns_stats_get's figures, and the usable bytes of live large blocks per
 * node (NULL: not wanted). */
void stats_collect(struct ns_stats *out, uint64_t large_usable[64]);
/* The NUMASLAB_STATS report (text or JSON) of collected figures into buf,
 * cut at cap; returns its length.  No allocation. */
size_t stats_format(char *buf, size_t cap, const struct ns_stats *st, const uint64_t large_usable[64], bool json);

/* -------------------------------------------------------------- sink.c
 * Formatted output into buf, written to fd (or to f when not NULL) each
 * time buf fills; `mem`: buf is the destination (cut at cap).  No
 * allocation (vsnprintf of integers and strings). */
#include <stdio.h>
typedef struct sink {
    int fd;
    FILE *f;
    bool mem;
    char *buf;
    size_t cap, len;
} sink_t;
void sink_init(sink_t *s, int fd, FILE *f, char *buf, size_t cap);
__attribute__((format(printf, 2, 3))) void sink_printf(sink_t *s, const char *fmt, ...);
void sink_flush(sink_t *s);
/* in with "%p" replaced by the pid ("%%": a '%') into out; false if it
 * does not fit or is empty */
bool path_expand(const char *in, char *out, size_t cap);

/* -------------------------------------------------------------- live.c */
/* Slow-path ticks: publish live statistics when asked or once a second;
 * the malloc one (tcache_slow_hook, alloc_large) may start the helper. */
void live_tick_malloc(void);
void live_tick_free(void);

/* -------------------------------------------------------------- prof.c
 * The heap profiler (NUMASLAB_PROF): prof_on once prof_start ran (from
 * the constructor); prof_large for a new large block (it may sample it);
 * prof_free for a block that may be sampled (a large one, or a small one
 * in a unit with prof_live set), before it is freed; prof_detach before
 * realloc resizes or moves a large block, prof_reattach after it (the
 * sample leaves the table meanwhile: another thread may get a block at
 * the old address once it moved). */
extern bool prof_on;
void prof_start(void);
void prof_large(void *p);
void prof_free(void *p);
void *prof_detach(void *p);
void prof_reattach(void *sample, void *p, uint64_t before);

static inline void *api_malloc(size_t size)
{
    if (NS_LIKELY(size <= NS_LUT_MAX))
        return tcache_alloc_direct(size);
    if (NS_LIKELY(size <= NS_SMALL_MAX))
        return tcache_alloc(sizeclass_of(size));
    return alloc_large(size);
}

static inline void api_free(void *p)
{
    if (NS_LIKELY(tcache_try_free(p)))
        return;
    free_slow_entry(p);
}

#endif
