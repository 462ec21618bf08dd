/* unit_util.h - helpers shared by the unit tests (header only, static). */
#ifndef NS_UNIT_UTIL_H
#define NS_UNIT_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <numaslab.h>

#include "api.h"
#include "numa/numa.h"
#include "superslab/superslab.h"
#include "hugepage/hugepage.h"
#include "tiny/tiny.h"

#define KiB ((size_t)1024)
#define MiB (KiB * KiB)
#define GiB (MiB * KiB)

/* Make sure the allocator is started (and this thread has a cache). */
static inline void unit_start(void)
{
    void *p = ns_malloc(1);
    assert_non_null(p);
    ns_free(p);
    assert_true(tcache_started());
}

/* A fresh SuperSlab on `node` as the node heap makes one (mapped, header
 * set up, in both maps), outside any pool. */
static inline superslab_t *unit_superslab_new(uint32_t node)
{
    void *m;
    int backing;
    if (hp_ss_map(false, true, false, &backing, &m) != 0)
        return NULL;
    superslab_t *ss = superslab_init(m, node, backing);
    if (!ss)
        hp_ss_unmap(m);
    return ss;
}

static inline size_t round_up_sz(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* xorshift64*: deterministic pseudo-random numbers. */
static inline uint64_t rnd_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline ns_node_stats_t node0_stats(void)
{
    ns_stats_t st;
    assert_int_equal(ns_stats_get(&st), 0);
    return st.node[0];
}

static inline uint64_t mapped_bytes(void)
{
    ns_stats_t st;
    assert_int_equal(ns_stats_get(&st), 0);
    return st.mapped_bytes;
}

/* Blocks of class cls on node 0 handed out of their slabs: in use, in
 * thread caches or in remote stacks not drained yet. */
typedef struct {
    unsigned cls;
    int64_t n;
} owned_used_t;

static inline void add_owned_used(const tcache_t *tc, void *arg)
{
    owned_used_t *u = arg;
    if (tc->own.node == 0)
        u->n += __atomic_load_n(&tc->own.cls[u->cls].used, __ATOMIC_RELAXED);
}

/* (the bin's count plus what live threads own) */
static inline uint64_t bin_used(unsigned cls)
{
    bin_t *b = &node_pool(0)->bins[cls];
    owned_used_t u = {cls, 0};
    tcache_each_live(add_owned_used, &u);
    pthread_mutex_lock(&b->lock);
    u.n += b->used_blocks;
    pthread_mutex_unlock(&b->lock);
    return (uint64_t)u.n;
}

/* Every SuperSlab of ours (through the address map), fn(ss, arg) each. */
static inline void each_superslab(void (*fn)(superslab_t *ss, void *arg), void *arg)
{
    for (size_t r = 0; r < ((size_t)1 << NS_MAP_ROOT_BITS); r++) {
        uintptr_t *leaf = __atomic_load_n(&addrmap_root[r], __ATOMIC_ACQUIRE);
        if (!leaf)
            continue;
        for (size_t i = 0; i < ((size_t)1 << NS_MAP_LEAF_BITS); i++) {
            uintptr_t v = __atomic_load_n(&leaf[i], __ATOMIC_RELAXED);
            if ((v & NS_MAP_TAGS) == NS_MAP_SS)
                fn((superslab_t *)(v & ~NS_MAP_TAGS), arg);
        }
    }
}

static inline void count_slab_free(superslab_t *ss, void *arg)
{
    uint64_t *n = arg;
    for (unsigned u = 0; u < NS_UNITS; u++) {
        slab_t *s = &ss->slabs[u];
        if (!s->units || s->first_unit != u || ss->unit_slab[u] != s)
            continue;
        *n += s->bump - s->used;            /* its free list */
        uint32_t limit = s->capacity;       /* its remote stack (counted in used) */
        for (void *p = remote_top(atomic_load(&s->remote)); p && limit--; p = link_get(p, &s->key))
            (*n)++;
    }
}

static inline void count_cached(const tcache_t *tc, void *arg)
{
    for (unsigned c = 0; c < NS_CLASSES; c++)
        *(uint64_t *)arg += tbin_count(&tc->bins[c]);
}

/* The free blocks of the whole heap at a quiescent point, from the
 * counts: each slab's free list (bump - used), its remote stack, the
 * thread caches' lists (cached and remote blocks count as used in their
 * slabs).  tcache_validate_heap must find exactly these. */
static inline uint64_t heap_free_blocks(void)
{
    uint64_t n = 0;
    each_superslab(count_slab_free, &n);
    tcache_each_live(count_cached, &n);
    return n;
}

/* Run fn(arg) in a forked child with stderr captured.  Returns the wait
 * status; the child's stderr (truncated) is in err. */
static inline int run_in_child(void (*fn)(void *), void *arg, char *err, size_t errsize)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    for (;;) {
        char tmp[256];
        ssize_t r = read(fds[0], tmp, sizeof tmp);
        if (r <= 0)
            break;
        size_t n = (size_t)r;
        if (errsize && len + n > errsize - 1)
            n = errsize - 1 - len;
        memcpy(err + len, tmp, n);
        len += n;
    }
    if (errsize)
        err[len] = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static inline bool died_of(int status, int sig)
{
    return WIFSIGNALED(status) && WTERMSIG(status) == sig;
}

/* Bytes of [p, p+len) resident in memory (mincore).  The vector has room
 * for 4 KiB pages and starts filled with a value mincore never writes: the
 * entries it did write tell the page it counted in, which is the program's
 * page size on a real kernel but the host's 4 KiB under qemu-user told
 * another page size (QEMU_PAGESIZE, scripts/cross-arm64.sh). */
static inline size_t resident_bytes(const void *p, size_t len)
{
    size_t slots = len / 4096;
    unsigned char *vec = malloc(slots + 1);
    assert_non_null(vec);
    memset(vec, 0xee, slots + 1);
    assert_int_equal(mincore((void *)p, len, vec), 0);
    size_t n = 0, written = 0;
    for (size_t i = 0; i < slots && vec[i] != 0xee; i++)
        n += vec[i] & 1, written++;
    free(vec);
    assert_true(written > 0);
    return n * (len / written);
}

/* A large block of n bytes whose reservation (`reserved`, n rounded up to
 * 2 MiB) usually has free granules after it: two are allocated with the
 * large cache off and the upper one is unmapped.  The caller's
 * NUMASLAB_LARGE_CACHE is put back. */
static inline unsigned char *large_with_room_after(size_t n, size_t reserved)
{
    __typeof__(options.large_cache) cache = options.large_cache;
    options.large_cache = 0;
    unsigned char *p = ns_malloc(n), *other = ns_malloc(n);
    assert_non_null(p);
    assert_non_null(other);
    if ((uintptr_t)other + reserved == (uintptr_t)p) {
        unsigned char *t = p;
        p = other;
        other = t;
    }
    ns_free(other);
    options.large_cache = cache;
    return p;
}

static inline void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

#endif
