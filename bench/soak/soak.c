/* soak.c - long-running allocator soak: the stress mix, all at once, for a
 * given time, with RSS sampled every second.
 *
 *   soak (--minutes N | --seconds N) [--threads N] [--csv FILE] [--seed N]
 *        [--slots N] [--fork-every S] [--large-max N] [--progress S]
 *
 * It uses the standard malloc family only; run it with
 * LD_PRELOAD=libnumaslab.so (bench/soak/run.sh does) to soak numaslab, or
 * without to compare with glibc.  What runs concurrently, for the whole time:
 *
 *   - N worker threads (default 16 x the online CPUs), each with a fixed
 *     table of slots (default 64): a random slot is allocated when empty,
 *     else verified and then freed, realloc'ed, sent to another worker's
 *     mailbox, sent to the main thread (fork material) or kept.  Sizes are
 *     log-uniform 16 B .. 64 KiB (96 %), 64 .. 256 KiB (3.5 %) and
 *     256 KiB .. 8 MiB (0.5 %, at most --large-max such blocks alive at
 *     once); allocations use malloc, calloc (zeroes checked), posix_memalign
 *     (16 B .. 64 KiB alignments), aligned_alloc, realloc(NULL, n).
 *   - Every block is filled with a pattern (a function of a unique block id
 *     and the offset) over its whole usable size (malloc_usable_size) and
 *     checked byte for byte before every free and realloc (realloc: the
 *     prefix up to min(old, new) size must survive, then it is refilled).
 *   - Cross-thread frees: blocks travel through per-worker mailboxes and
 *     are verified and freed (or adopted into an empty slot) by the
 *     receiver.
 *   - Thread churn: every worker lives a random 0.5 .. 4 s, then hands its
 *     live blocks to other workers' mailboxes and exits; the main thread
 *     joins it and starts a replacement at once.
 *   - fork(): every --fork-every seconds (default 3) the main thread takes
 *     up to 64 blocks the workers sent it plus 16 of its own and forks.
 *     The child (only the forking thread survives) verifies every inherited
 *     block, frees or reallocs them, runs 4 threads that allocate, verify,
 *     exchange and free blocks, calls malloc_trim(0) and _exit(0) (non-zero
 *     on any mismatch).  The parent verifies and frees its copies.  A child
 *     that fails, crashes or runs longer than 60 s is a failure.
 *
 * The live set is constant on average by design (fixed slots, bounded
 * mailboxes, bounded large blocks), so RSS must plateau.  Every second one
 * CSV row: time_s,rss_kb,live_bytes,threads,ops,failures (then forks,
 * thread_exits, ns_mapped_kb, ns_in_use_kb: numaslab's own statistics when
 * it is loaded, else empty).  At the end it prints total ops, failures, RSS
 * at 10 %, 50 % and 100 % of the run and the plateau verdict: the largest
 * RSS of the second half is at most 1.2 x the largest of the first half.
 *
 * Exit status: 0 = no failure and plateau; 1 = failures; 2 = bad usage;
 * 3 = no failure but no plateau.  Failure lines (pattern mismatch with
 * block id, pointer, size, offset, expected/got; NULL returns; bad
 * alignment; a failed child) go to stderr through write(2), never stdio,
 * so they are safe anywhere, forked children included.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "numaslab.h" /* ns_stats_t only: the functions come from dlsym */
#include "../../tests/common/testkit.h"

/* ------------------------------------------------------------ limits */

#define SMALL_MAX (64u << 10)
#define MEDIUM_MAX (256u << 10)
#define LARGE_MAX_SIZE (8u << 20)
#define MAILBOX_CAP 256
#define TO_MAIN_CAP 256
#define FORK_TAKE 64       /* worker blocks the child inherits per fork */
#define FORK_OWN 16        /* blocks the main thread allocates per fork */
#define CHILD_THREADS 4
#define CHILD_SLOTS 32
#define CHILD_OPS 20000
#define CHILD_TIMEOUT 60.0 /* seconds */
#define MAX_REPORTS 40
#define PLATEAU_RATIO 1.2

/* ------------------------------------------------------------ reporting */

static atomic_int reports;

/* One line to stderr with write(2): no stdio lock, safe after fork. */
__attribute__((format(printf, 1, 2))) static void slog(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tk_vwrite(2, fmt, ap);
    va_end(ap);
}

/* A failure line, at most MAX_REPORTS per process (counting goes on). */
__attribute__((format(printf, 1, 2))) static void report(const char *fmt, ...)
{
    if (atomic_fetch_add_explicit(&reports, 1, memory_order_relaxed) >= MAX_REPORTS)
        return;
    va_list ap;
    va_start(ap, fmt);
    tk_vwrite(2, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ pattern */

/* Block id's pattern: tests/common/testkit.h's, based on tk_mix64(id). */
static void pat_fill(unsigned char *p, size_t n, uint64_t id)
{
    tk_pat_fill(p, n, tk_mix64(id));
}

/* Offset of the first byte that differs, or SIZE_MAX; *exp and *got
 * describe that byte. */
static size_t pat_check(const unsigned char *p, size_t n, uint64_t id, unsigned *exp, unsigned *got)
{
    size_t o = tk_pat_check(p, n, tk_mix64(id));
    if (o != SIZE_MAX) {
        *exp = tk_pat_byte(tk_mix64(id), o);
        *got = p[o];
    }
    return o;
}

/* ------------------------------------------------------------ blocks */

typedef struct blk {
    unsigned char *p;
    size_t size;   /* requested */
    size_t fill;   /* bytes under the pattern: the usable size */
    uint64_t id;
    uint32_t align;
    uint16_t hops;
    uint16_t how;  /* allocation function, for reports */
} blk_t;

static const char *const how_name[] = {"malloc", "calloc", "posix_memalign", "aligned_alloc",
                                       "realloc(NULL)", "realloc"};

/* A bounded FIFO of blocks under a mutex. */
typedef struct mailbox {
    pthread_mutex_t lock;
    unsigned head, count, cap;
    blk_t *ring;
} mailbox_t;

static void mb_init(mailbox_t *m, unsigned cap)
{
    pthread_mutex_init(&m->lock, NULL);
    m->ring = calloc(cap, sizeof *m->ring);
    if (!m->ring) {
        slog("soak: out of memory for a mailbox\n");
        _exit(1);
    }
    m->cap = cap;
    m->head = m->count = 0;
}

static int mb_push(mailbox_t *m, const blk_t *b)
{
    int ok = 0;
    pthread_mutex_lock(&m->lock);
    if (m->count < m->cap) {
        m->ring[(m->head + m->count) % m->cap] = *b;
        m->count++;
        ok = 1;
    }
    pthread_mutex_unlock(&m->lock);
    return ok;
}

static unsigned mb_pop(mailbox_t *m, blk_t *out, unsigned max)
{
    unsigned n = 0;
    pthread_mutex_lock(&m->lock);
    while (n < max && m->count) {
        out[n++] = m->ring[m->head];
        m->head = (m->head + 1) % m->cap;
        m->count--;
    }
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* ------------------------------------------------------------ global state */

typedef struct worker {
    pthread_t th;
    unsigned idx;
    atomic_int state;        /* 0 free, 1 running, 2 exited: join me */
    double lifetime;         /* seconds, for this incarnation */
    uint64_t incarnation;
    mailbox_t mb;
    atomic_ullong ops;       /* malloc-family calls, all incarnations */
    atomic_llong live;       /* bytes allocated minus freed by this index */
    char pad[64];
} worker_t;

static struct {
    unsigned nthreads, slots, large_max;
    double duration, fork_every, progress;
    uint64_t seed;
    const char *csv;
} cfg;

static worker_t *workers;
static mailbox_t to_main;
static atomic_int stop_all;
static atomic_ullong failures;
static atomic_int large_live;          /* live blocks above 256 KiB */
static atomic_ullong incarnations;     /* unique id source */
static atomic_ullong handed_over;      /* blocks handed over at thread exit */
static atomic_ullong cross_frees;      /* blocks freed by a thread that did not allocate them */
static atomic_ullong main_ops;
static atomic_llong main_live;
static int in_child;

/* The accounting a thread charges its work to. */
typedef struct acct {
    atomic_ullong *ops;
    atomic_llong *live;
    atomic_ullong *fail;
    const char *who;
    unsigned tid;
} acct_t;

static void fail(acct_t *a) { atomic_fetch_add_explicit(a->fail, 1, memory_order_relaxed); }

/* ------------------------------------------------------------ block ops */

/* Size mix; large sizes only while fewer than --large-max large blocks are
 * alive (a soft cap: a few racing threads may pass it together). */
static size_t pick_size(tk_rng *r, int allow_large)
{
    unsigned d = (unsigned)tk_below(r, 1000);
    if (d < 5 && allow_large &&
        atomic_load_explicit(&large_live, memory_order_relaxed) < (int)cfg.large_max)
        return tk_log_range(r, MEDIUM_MAX + 1, LARGE_MAX_SIZE);
    if (d < 40)
        return tk_log_range(r, SMALL_MAX + 1, MEDIUM_MAX);
    return tk_log_range(r, 16, SMALL_MAX);
}

/* Account a fresh block, check its alignment and usable size, fill it. */
static void setup_block(acct_t *a, blk_t *b, unsigned char *p, size_t size, size_t align, unsigned how,
                        uint64_t id)
{
    size_t us = malloc_usable_size(p);
    size_t need = align > 16 ? align : 16;
    if (align <= 16 && size < 16)
        need = 8; /* a block below 16 bytes only needs to hold a double, a pointer */
    if ((uintptr_t)p & (need - 1)) {
        report("soak[%s %u]: %s(size %zu, align %zu) = %p is not %zu-aligned\n", a->who, a->tid, how_name[how],
               size, align, (void *)p, need);
        fail(a);
    }
    if (us < size) {
        report("soak[%s %u]: malloc_usable_size(%p) = %zu < %zu requested (%s)\n", a->who, a->tid, (void *)p, us,
               size, how_name[how]);
        fail(a);
        us = size;
    }
    b->p = p;
    b->size = size;
    b->fill = us;
    b->id = id;
    b->align = (uint32_t)align;
    b->hops = 0;
    b->how = (uint16_t)how;
    pat_fill(p, us, id);
    if (size > MEDIUM_MAX)
        atomic_fetch_add_explicit(&large_live, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(a->live, (long long)size, memory_order_relaxed);
}

/* The block is gone from the live set (freed, or leaked after a report). */
static void drop_block(acct_t *a, blk_t *b)
{
    if (b->size > MEDIUM_MAX)
        atomic_fetch_sub_explicit(&large_live, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(a->live, (long long)b->size, memory_order_relaxed);
    b->p = NULL;
}

/* Allocate a new block into *b (b->p == NULL on failure). */
static void alloc_block(acct_t *a, tk_rng *r, blk_t *b, uint64_t id, int allow_large)
{
    size_t size = pick_size(r, allow_large);
    unsigned d = (unsigned)tk_below(r, 100), how;
    size_t align = 0;
    unsigned char *p = NULL;
    b->p = NULL;
    errno = 0;
    if (d < 78) {
        how = 0;
        p = malloc(size);
    } else if (d < 86) {
        how = 1;
        size_t el = (size_t)1 << tk_below(r, 4), cnt = (size + el - 1) / el;
        size = cnt * el;
        p = calloc(cnt, el);
        if (p) {
            for (size_t i = 0; i < size; i++)
                if (p[i]) {
                    report("soak[%s %u]: calloc(%zu, %zu) = %p: byte %zu is 0x%02x, not 0\n", a->who, a->tid, cnt,
                           el, (void *)p, i, p[i]);
                    fail(a);
                    break;
                }
        }
    } else if (d < 93) {
        how = 2;
        align = (size_t)1 << (4 + tk_below(r, 13)); /* 16 B .. 64 KiB */
        void *q = NULL;
        int rc = posix_memalign(&q, align, size);
        atomic_fetch_add_explicit(a->ops, 1, memory_order_relaxed);
        if (rc) {
            report("soak[%s %u]: posix_memalign(align %zu, %zu) = %d\n", a->who, a->tid, align, size, rc);
            fail(a);
            return;
        }
        setup_block(a, b, q, size, align, how, id);
        return;
    } else if (d < 97) {
        how = 3;
        align = (size_t)1 << (4 + tk_below(r, 9)); /* 16 B .. 4 KiB */
        size = (size + align - 1) & ~(align - 1);
        p = aligned_alloc(align, size);
    } else {
        how = 4;
        p = realloc(NULL, size);
    }
    atomic_fetch_add_explicit(a->ops, 1, memory_order_relaxed);
    if (!p) {
        report("soak[%s %u]: %s(%zu) returned NULL, errno %d\n", a->who, a->tid, how_name[how], size, errno);
        fail(a);
        return;
    }
    setup_block(a, b, p, size, align, how, id);
}

/* Verify the whole pattern of b. 1 if intact. */
static int verify(acct_t *a, const blk_t *b, const char *when)
{
    unsigned e = 0, g = 0;
    size_t off = pat_check(b->p, b->fill, b->id, &e, &g);
    if (off == SIZE_MAX)
        return 1;
    report("soak[%s %u]: PATTERN MISMATCH (%s): block id 0x%016" PRIx64 " %p size %zu (pattern over %zu) from %s, "
           "align %u, %u hops: byte %zu expected 0x%02x got 0x%02x\n",
           a->who, a->tid, when, b->id, (void *)b->p, b->size, b->fill, how_name[b->how], b->align, b->hops, off, e,
           g);
    fail(a);
    return 0;
}

/* Free a block that was just verified. */
static void free_verified(acct_t *a, blk_t *b)
{
    free(b->p);
    atomic_fetch_add_explicit(a->ops, 1, memory_order_relaxed);
    if (b->hops)
        atomic_fetch_add_explicit(&cross_frees, 1, memory_order_relaxed);
    drop_block(a, b);
}

/* Verify then free; a corrupt block is leaked (it may be someone else's). */
static void verify_free(acct_t *a, blk_t *b, const char *when)
{
    if (verify(a, b, when))
        free_verified(a, b);
    else
        drop_block(a, b);
}

/* realloc b (already verified) to a new size: the prefix up to
 * min(old, new) requested size must survive; then it is refilled. */
static void realloc_block(acct_t *a, tk_rng *r, blk_t *b, int allow_large)
{
    size_t ns;
    switch (tk_below(r, 4)) {
    case 0: ns = b->size / 2 + 1; break;                 /* shrink     */
    case 1: ns = b->size + 1 + (size_t)tk_below(r, 64); break; /* grow a bit */
    default: ns = pick_size(r, allow_large); break;       /* anywhere   */
    }
    errno = 0;
    unsigned char *q = realloc(b->p, ns);
    atomic_fetch_add_explicit(a->ops, 1, memory_order_relaxed);
    if (!q) {
        report("soak[%s %u]: realloc(%p, %zu) returned NULL, errno %d\n", a->who, a->tid, (void *)b->p, ns, errno);
        fail(a);
        verify_free(a, b, "after failed realloc");
        return;
    }
    size_t keep = ns < b->size ? ns : b->size;
    unsigned e = 0, g = 0;
    size_t off = pat_check(q, keep, b->id, &e, &g);
    if (off != SIZE_MAX) {
        report("soak[%s %u]: REALLOC LOST DATA: block id 0x%016" PRIx64 " %p size %zu -> %p size %zu: byte %zu of "
               "the kept %zu expected 0x%02x got 0x%02x\n",
               a->who, a->tid, b->id, (void *)b->p, b->size, (void *)q, ns, off, keep, e, g);
        fail(a);
    }
    if (b->hops)
        atomic_fetch_add_explicit(&cross_frees, 1, memory_order_relaxed);
    uint64_t id = b->id;
    drop_block(a, b);
    setup_block(a, b, q, ns, 0, 5, tk_mix64(id)); /* new id: the old pattern is gone */
}

/* Send b to mailbox m (it leaves the caller's slot), or free it if full. */
static void send_block(acct_t *a, blk_t *b, mailbox_t *m)
{
    b->hops++;
    if (mb_push(m, b)) {
        b->p = NULL;
        return;
    }
    b->hops--;
    free_verified(a, b);
}

/* ------------------------------------------------------------ workers */

static mailbox_t *other_mailbox(tk_rng *r, unsigned self)
{
    unsigned t = (unsigned)tk_below(r, cfg.nthreads);
    if (t == self && cfg.nthreads > 1)
        t = (t + 1) % cfg.nthreads;
    return &workers[t].mb;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    acct_t a = {&w->ops, &w->live, &failures, "worker", w->idx};
    tk_rng r;
    tk_rng_seed(&r, cfg.seed ^ (w->incarnation * 0xD1B54A32D192ED03ULL));
    uint64_t id_base = w->incarnation << 36, serial = 0;
    unsigned nslots = cfg.slots;
    blk_t *slot = calloc(nslots, sizeof *slot);
    if (!slot) {
        report("soak: worker %u: calloc of its slot table failed\n", w->idx);
        atomic_fetch_add(&failures, 1);
        atomic_store(&w->state, 2);
        return NULL;
    }
    double end = tk_now() + w->lifetime;
    blk_t in[16];
    for (uint64_t op = 0;; op++) {
        if ((op & 255) == 0 && (atomic_load_explicit(&stop_all, memory_order_relaxed) || tk_now() >= end))
            break;
        if ((op & 31) == 0) {
            /* cross-thread frees: verify what others sent, adopt or free it */
            unsigned n = mb_pop(&w->mb, in, 16);
            for (unsigned i = 0; i < n; i++) {
                unsigned k = (unsigned)tk_below(&r, nslots);
                if (slot[k].p == NULL && verify(&a, &in[i], "adopted"))
                    slot[k] = in[i];
                else if (slot[k].p == NULL)
                    drop_block(&a, &in[i]);
                else
                    verify_free(&a, &in[i], "from mailbox");
            }
        }
        blk_t *b = &slot[tk_below(&r, nslots)];
        if (b->p == NULL) {
            alloc_block(&a, &r, b, id_base | serial++, 1);
            continue;
        }
        if (!verify(&a, b, "worker")) {
            drop_block(&a, b);
            continue;
        }
        unsigned d = (unsigned)tk_below(&r, 100);
        if (d < 45)
            free_verified(&a, b);
        else if (d < 60)
            realloc_block(&a, &r, b, 1);
        else if (d < 80)
            send_block(&a, b, other_mailbox(&r, w->idx));
        else if (d < 82)
            send_block(&a, b, &to_main);
        /* else: keep it (verified) */
    }
    /* Exit: hand every live block over to other workers (free it if their
     * mailbox is full); at the end of the run, verify and free instead. */
    int stopping = atomic_load(&stop_all);
    for (unsigned k = 0; k < nslots; k++) {
        blk_t *b = &slot[k];
        if (!b->p)
            continue;
        if (stopping || !verify(&a, b, "hand-over")) {
            verify_free(&a, b, "at stop");
            continue;
        }
        b->hops++;
        if (mb_push(other_mailbox(&r, w->idx), b)) {
            atomic_fetch_add_explicit(&handed_over, 1, memory_order_relaxed);
            continue;
        }
        b->hops--;
        free_verified(&a, b);
    }
    free(slot);
    atomic_store_explicit(&w->state, 2, memory_order_release);
    return NULL;
}

static int spawn(worker_t *w, tk_rng *r)
{
    w->incarnation = atomic_fetch_add(&incarnations, 1) + 1;
    w->lifetime = 0.5 + 3.5 * (double)tk_below(r, 1000) / 1000.0;
    atomic_store(&w->state, 1);
    int rc = pthread_create(&w->th, NULL, worker_main, w);
    if (rc) {
        atomic_store(&w->state, 0);
        report("soak: pthread_create failed: %s\n", strerror(rc));
        atomic_fetch_add(&failures, 1);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ fork child */

static struct {
    mailbox_t mb;
    atomic_ullong ops;
    atomic_llong live;
    atomic_ullong fail;
} cc;

static void *child_thread(void *arg)
{
    unsigned tid = (unsigned)(uintptr_t)arg;
    acct_t a = {&cc.ops, &cc.live, &cc.fail, "child", tid};
    tk_rng r;
    tk_rng_seed(&r, cfg.seed ^ ((uint64_t)getpid() << 8) ^ tid);
    uint64_t id_base = ((uint64_t)getpid() << 40) ^ ((uint64_t)(tid + 1) << 32) ^ (1ULL << 63), serial = 0;
    blk_t slot[CHILD_SLOTS];
    memset(slot, 0, sizeof slot);
    blk_t in[4];
    for (unsigned op = 0; op < CHILD_OPS; op++) {
        if (op % 16 == 0) {
            unsigned n = mb_pop(&cc.mb, in, 4);
            for (unsigned i = 0; i < n; i++)
                verify_free(&a, &in[i], "child mailbox");
        }
        blk_t *b = &slot[tk_below(&r, CHILD_SLOTS)];
        if (!b->p) {
            alloc_block(&a, &r, b, id_base | serial++, tk_below(&r, 8) == 0);
            continue;
        }
        if (!verify(&a, b, "child")) {
            drop_block(&a, b);
            continue;
        }
        unsigned d = (unsigned)tk_below(&r, 100);
        if (d < 45)
            free_verified(&a, b);
        else if (d < 60)
            realloc_block(&a, &r, b, 0);
        else if (d < 80)
            send_block(&a, b, &cc.mb);
    }
    for (unsigned k = 0; k < CHILD_SLOTS; k++)
        if (slot[k].p)
            verify_free(&a, &slot[k], "child at end");
    return NULL;
}

/* The forked child: only this thread exists.  Never returns. */
static void child_main(blk_t *inh, unsigned n)
{
    in_child = 1;
    atomic_store(&cc.fail, 0);
    atomic_store(&reports, 0);
    acct_t a = {&cc.ops, &cc.live, &cc.fail, "child", 0};
    tk_rng r;
    tk_rng_seed(&r, cfg.seed ^ (uint64_t)getpid());
    mb_init(&cc.mb, 512);
    for (unsigned i = 0; i < n; i++) {
        blk_t *b = &inh[i];
        if (!verify(&a, b, "inherited by the child")) {
            drop_block(&a, b);
            continue;
        }
        switch (i % 3) {
        case 0: free_verified(&a, b); break;
        case 1:
            realloc_block(&a, &r, b, 0);
            verify_free(&a, b, "child after realloc");
            break;
        default: send_block(&a, b, &cc.mb); break; /* freed by a child thread */
        }
    }
    pthread_t th[CHILD_THREADS];
    unsigned started = 0;
    for (unsigned t = 0; t < CHILD_THREADS; t++) {
        int rc = pthread_create(&th[t], NULL, child_thread, (void *)(uintptr_t)(t + 1));
        if (rc) {
            report("soak[child]: pthread_create failed: %s\n", strerror(rc));
            atomic_fetch_add(&cc.fail, 1);
            break;
        }
        started++;
    }
    for (unsigned t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    blk_t b;
    while (mb_pop(&cc.mb, &b, 1))
        verify_free(&a, &b, "child mailbox at end");
    malloc_trim(0);
    unsigned long long f = atomic_load(&cc.fail);
    if (f)
        slog("soak[child %d]: %llu failures\n", (int)getpid(), f);
    _exit(f ? 1 : 0);
}

/* ------------------------------------------------------------ sampling */

typedef struct sample {
    double t;
    long rss_kb;
    long long live;
    int threads;
    unsigned long long ops, failures;
} sample_t;

/* VmRSS (kB) and Threads of this process, read with open/read. */
static void proc_status(long *rss_kb, int *threads)
{
    char buf[4096];
    *rss_kb = -1;
    *threads = -1;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    char *s = strstr(buf, "\nVmRSS:");
    if (s)
        *rss_kb = strtol(s + 7, NULL, 10);
    s = strstr(buf, "\nThreads:");
    if (s)
        *threads = (int)strtol(s + 9, NULL, 10);
}

static long long total_live(void)
{
    long long v = atomic_load(&main_live);
    for (unsigned i = 0; i < cfg.nthreads; i++)
        v += atomic_load_explicit(&workers[i].live, memory_order_relaxed);
    return v;
}

static unsigned long long total_ops(void)
{
    unsigned long long v = atomic_load(&main_ops);
    for (unsigned i = 0; i < cfg.nthreads; i++)
        v += atomic_load_explicit(&workers[i].ops, memory_order_relaxed);
    return v;
}

/* ------------------------------------------------------------ main */

static void usage(FILE *f)
{
    fprintf(f, "usage: soak (--minutes N | --seconds N) [--threads N] [--csv FILE] [--seed N]\n"
               "            [--slots N] [--fork-every S] [--large-max N] [--progress S]\n"
               "  --threads     worker threads (default 16 x online CPUs)\n"
               "  --csv         one row per second: time_s,rss_kb,live_bytes,threads,ops,failures,...\n"
               "  --slots       blocks each worker keeps (default 64)\n"
               "  --fork-every  seconds between forks (default 3; 0: no fork)\n"
               "  --large-max   live blocks above 256 KiB at most (default 16)\n"
               "  --progress    seconds between progress lines on stdout (default 60; 0: none)\n");
}

static double parse_num(const char *opt, const char *v, double lo, double hi)
{
    char *end = NULL;
    errno = 0;
    double x = v ? strtod(v, &end) : 0;
    if (!v || errno || end == v || *end || !(x >= lo && x <= hi)) {
        fprintf(stderr, "soak: bad value for %s: '%s' (expected %g .. %g)\n", opt, v ? v : "", lo, hi);
        exit(2);
    }
    return x;
}

static void parse_args(int argc, char **argv)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg.nthreads = (unsigned)(16 * (ncpu > 0 ? ncpu : 1));
    cfg.slots = 64;
    cfg.large_max = 16;
    cfg.duration = -1;
    cfg.fork_every = 3;
    cfg.progress = 60;
    cfg.seed = 0x736f616b736f616bULL ^ (uint64_t)time(NULL);
    for (int i = 1; i < argc; i++) {
        char opt[64];
        const char *a = argv[i], *val = NULL, *eq = strchr(a, '=');
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        size_t l = eq ? (size_t)(eq - a) : strlen(a);
        if (l >= sizeof opt) {
            usage(stderr);
            exit(2);
        }
        memcpy(opt, a, l);
        opt[l] = '\0';
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        if (!strcmp(opt, "--minutes"))
            cfg.duration = 60 * parse_num(opt, val, 0.01, 60 * 24 * 7);
        else if (!strcmp(opt, "--seconds"))
            cfg.duration = parse_num(opt, val, 1, 3600.0 * 24 * 7);
        else if (!strcmp(opt, "--threads"))
            cfg.nthreads = (unsigned)parse_num(opt, val, 1, 4096);
        else if (!strcmp(opt, "--slots"))
            cfg.slots = (unsigned)parse_num(opt, val, 1, 1 << 20);
        else if (!strcmp(opt, "--large-max"))
            cfg.large_max = (unsigned)parse_num(opt, val, 0, 1 << 20);
        else if (!strcmp(opt, "--fork-every"))
            cfg.fork_every = parse_num(opt, val, 0, 1e6);
        else if (!strcmp(opt, "--progress"))
            cfg.progress = parse_num(opt, val, 0, 1e6);
        else if (!strcmp(opt, "--csv") && val)
            cfg.csv = val;
        else if (!strcmp(opt, "--seed") && val)
            cfg.seed = strtoull(val, NULL, 0);
        else {
            fprintf(stderr, "soak: unknown option '%s'\n", a);
            usage(stderr);
            exit(2);
        }
    }
    if (cfg.duration < 0) {
        fprintf(stderr, "soak: --minutes or --seconds is required\n");
        usage(stderr);
        exit(2);
    }
}

static const sample_t *at_fraction(const sample_t *s, size_t n, double f)
{
    size_t i = (size_t)(f * (double)n + 0.5);
    if (i < 1)
        i = 1;
    if (i > n)
        i = n;
    return &s[i - 1];
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);

    int (*ns_get)(ns_stats_t *, size_t) = (int (*)(ns_stats_t *, size_t))dlsym(RTLD_DEFAULT, "ns_stats_get_sized");
    static ns_stats_t nst;
    printf("soak: allocator %s, %u worker threads x %u slots, %.0f s, fork every %g s, large blocks <= %u, seed "
           "0x%016" PRIx64 ", pid %d\n",
           ns_get ? "numaslab (ns_stats_get_sized found)" : "system (numaslab not loaded)", cfg.nthreads, cfg.slots,
           cfg.duration, cfg.fork_every, cfg.large_max, cfg.seed, (int)getpid());

    FILE *csv = NULL;
    if (cfg.csv) {
        csv = fopen(cfg.csv, "w");
        if (!csv) {
            fprintf(stderr, "soak: cannot create %s: %s\n", cfg.csv, strerror(errno));
            return 2;
        }
        fprintf(csv, "time_s,rss_kb,live_bytes,threads,ops,failures,forks,thread_exits,ns_mapped_kb,ns_in_use_kb\n");
        fflush(csv);
    }
    size_t cap = (size_t)cfg.duration + 16, ns = 0;
    sample_t *samples = calloc(cap, sizeof *samples);
    workers = calloc(cfg.nthreads, sizeof *workers);
    if (!samples || !workers) {
        fprintf(stderr, "soak: out of memory\n");
        return 1;
    }
    mb_init(&to_main, TO_MAIN_CAP);
    tk_rng mr;
    tk_rng_seed(&mr, cfg.seed);
    acct_t ma = {&main_ops, &main_live, &failures, "main", 0};
    for (unsigned i = 0; i < cfg.nthreads; i++) {
        workers[i].idx = i;
        mb_init(&workers[i].mb, MAILBOX_CAP);
    }
    for (unsigned i = 0; i < cfg.nthreads; i++)
        spawn(&workers[i], &mr);

    unsigned long long thread_exits = 0, forks = 0, children_ok = 0;
    pid_t child = 0;
    double t0 = tk_now(), child_t0 = 0, next_sample = t0 + 1, next_fork = t0 + cfg.fork_every;
    double next_progress = t0 + cfg.progress, last_prog_t = t0;
    unsigned long long last_prog_ops = 0;
    uint64_t main_serial = 0;
    for (;;) {
        double t = tk_now();
        /* thread churn: join the workers that exited, start replacements */
        for (unsigned i = 0; i < cfg.nthreads; i++) {
            int st = atomic_load_explicit(&workers[i].state, memory_order_acquire);
            if (st == 2) {
                pthread_join(workers[i].th, NULL);
                atomic_store(&workers[i].state, 0);
                thread_exits++;
            }
            if (atomic_load(&workers[i].state) == 0 && t < t0 + cfg.duration)
                spawn(&workers[i], &mr);
        }
        /* the forked child */
        if (child > 0) {
            int status = 0;
            pid_t p = waitpid(child, &status, WNOHANG);
            if (p == child) {
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                    children_ok++;
                } else {
                    report("soak: fork child %d failed: %s %d\n", (int)child,
                           WIFEXITED(status) ? "exit status" : "killed by signal",
                           WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
                    atomic_fetch_add(&failures, 1);
                }
                child = 0;
            } else if (t - child_t0 > CHILD_TIMEOUT) {
                report("soak: fork child %d still running after %.0f s: killed, counted as a failure\n", (int)child,
                       CHILD_TIMEOUT);
                kill(child, SIGKILL);
                waitpid(child, &status, 0);
                atomic_fetch_add(&failures, 1);
                child = 0;
            }
        }
        if (cfg.fork_every > 0 && child == 0 && t >= next_fork && t < t0 + cfg.duration) {
            blk_t fb[FORK_TAKE + FORK_OWN];
            unsigned n = mb_pop(&to_main, fb, FORK_TAKE);
            for (unsigned i = 0; i < FORK_OWN; i++) {
                alloc_block(&ma, &mr, &fb[n], (1ULL << 62) | main_serial++, 1);
                if (fb[n].p)
                    n++;
            }
            fflush(NULL);
            pid_t p = fork();
            if (p == 0)
                child_main(fb, n);
            if (p < 0) {
                report("soak: fork failed: %s\n", strerror(errno));
                atomic_fetch_add(&failures, 1);
            } else {
                child = p;
                child_t0 = t;
                forks++;
            }
            for (unsigned i = 0; i < n; i++)
                verify_free(&ma, &fb[i], "parent after fork");
            next_fork = t + cfg.fork_every;
        }
        if (t >= next_sample || t >= t0 + cfg.duration) {
            sample_t *s = &samples[ns < cap ? ns++ : cap - 1];
            s->t = t - t0;
            proc_status(&s->rss_kb, &s->threads);
            s->live = total_live();
            s->ops = total_ops();
            s->failures = atomic_load(&failures);
            long long mapped = -1, inuse = -1;
            if (ns_get && ns_get(&nst, sizeof nst) == 0) {
                mapped = (long long)(nst.mapped_bytes >> 10);
                inuse = (long long)(nst.in_use_bytes >> 10);
            }
            if (csv) {
                fprintf(csv, "%.1f,%ld,%lld,%d,%llu,%llu,%llu,%llu,", s->t, s->rss_kb, s->live, s->threads, s->ops,
                        s->failures, forks, thread_exits);
                if (mapped >= 0)
                    fprintf(csv, "%lld,%lld\n", mapped, inuse);
                else
                    fprintf(csv, ",\n");
                fflush(csv);
            }
            if (cfg.progress > 0 && t >= next_progress) {
                printf("soak: t=%4.0f s  rss %7ld kB  live %7.1f MiB  threads %4d  ops %12llu (%.0f/s)  failures %llu  "
                       "forks %llu  thread exits %llu\n",
                       s->t, s->rss_kb, (double)s->live / 1048576.0, s->threads, s->ops,
                       (double)(s->ops - last_prog_ops) / (t - last_prog_t), s->failures, forks, thread_exits);
                last_prog_ops = s->ops;
                last_prog_t = t;
                next_progress += cfg.progress;
            }
            next_sample += 1;
            if (t >= t0 + cfg.duration)
                break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    double run_s = tk_now() - t0;

    /* stop: join the workers, wait for the last child, free what is left */
    atomic_store(&stop_all, 1);
    for (unsigned i = 0; i < cfg.nthreads; i++)
        if (atomic_load(&workers[i].state) != 0) {
            pthread_join(workers[i].th, NULL);
            thread_exits++;
        }
    if (child > 0) {
        int status = 0;
        double w0 = tk_now();
        pid_t p;
        while ((p = waitpid(child, &status, WNOHANG)) == 0 && tk_now() - w0 < CHILD_TIMEOUT) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (p == child && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            children_ok++;
        } else {
            if (p != child) {
                kill(child, SIGKILL);
                waitpid(child, &status, 0);
            }
            report("soak: the last fork child %d failed or hung (status 0x%x)\n", (int)child, status);
            atomic_fetch_add(&failures, 1);
        }
    }
    blk_t b;
    for (unsigned i = 0; i < cfg.nthreads; i++)
        while (mb_pop(&workers[i].mb, &b, 1))
            verify_free(&ma, &b, "mailbox at end");
    while (mb_pop(&to_main, &b, 1))
        verify_free(&ma, &b, "main mailbox at end");
    long long live_end = total_live();
    if (live_end != 0 || atomic_load(&large_live) != 0) {
        report("soak: accounting: %lld live bytes, %d large blocks left after everything was freed\n", live_end,
               atomic_load(&large_live));
        atomic_fetch_add(&failures, 1);
    }
    malloc_trim(0);
    long rss_end = 0;
    int thr_end = 0;
    proc_status(&rss_end, &thr_end);

    /* summary */
    unsigned long long ops = total_ops(), nfail = atomic_load(&failures);
    printf("soak: ran %.1f s: ops %llu (%.0f/s), failures %llu\n", run_s, ops, (double)ops / run_s, nfail);
    printf("soak: forks %llu (children exited 0: %llu), thread exits %llu, blocks handed over at exit %llu, "
           "cross-thread frees %llu\n",
           forks, children_ok, thread_exits, (unsigned long long)atomic_load(&handed_over),
           (unsigned long long)atomic_load(&cross_frees));
    int plateau = 0;
    if (ns >= 2) {
        const sample_t *s10 = at_fraction(samples, ns, 0.1), *s50 = at_fraction(samples, ns, 0.5),
                       *s100 = &samples[ns - 1];
        long max1 = 0, max2 = 0;
        double live1 = 0, live2 = 0;
        size_t n1 = 0, n2 = 0;
        for (size_t i = 0; i < ns; i++) {
            if (samples[i].t <= run_s / 2) {
                if (samples[i].rss_kb > max1)
                    max1 = samples[i].rss_kb;
                live1 += (double)samples[i].live;
                n1++;
            } else {
                if (samples[i].rss_kb > max2)
                    max2 = samples[i].rss_kb;
                live2 += (double)samples[i].live;
                n2++;
            }
        }
        double ratio = max1 ? (double)max2 / (double)max1 : 0;
        plateau = n1 && n2 && max1 > 0 && ratio <= PLATEAU_RATIO;
        printf("soak: rss at 10%% (t=%.0f s) %ld kB, at 50%% (t=%.0f s) %ld kB, at 100%% (t=%.0f s) %ld kB; "
               "after the final free + malloc_trim %ld kB\n",
               s10->t, s10->rss_kb, s50->t, s50->rss_kb, s100->t, s100->rss_kb, rss_end);
        printf("soak: live bytes mean: first half %.1f MiB, second half %.1f MiB\n",
               n1 ? live1 / (double)n1 / 1048576.0 : 0, n2 ? live2 / (double)n2 / 1048576.0 : 0);
        printf("soak: max rss first half %ld kB, second half %ld kB, ratio %.3f (limit %.2f): %s\n", max1, max2,
               ratio, PLATEAU_RATIO, plateau ? "PLATEAU" : "NO PLATEAU (RSS still growing)");
        printf("RESULT ops=%llu failures=%llu rss10_kb=%ld rss50_kb=%ld rss100_kb=%ld max_rss_first_kb=%ld "
               "max_rss_second_kb=%ld ratio=%.3f plateau=%s forks=%llu thread_exits=%llu seconds=%.1f\n",
               ops, nfail, s10->rss_kb, s50->rss_kb, s100->rss_kb, max1, max2, ratio, plateau ? "yes" : "no", forks,
               thread_exits, run_s);
    } else {
        printf("soak: too few samples for a plateau verdict\n");
    }
    if (csv)
        fclose(csv);
    if (nfail)
        return 1;
    return plateau ? 0 : 3;
}
