/* prof.c - the sampling heap profiler (NUMASLAB_PROF=1).
 *
 * Sampling.  Each byte allocated is sampled with probability 1 /
 * NUMASLAB_PROF_SAMPLE, as in a Poisson process: a block of size s is
 * sampled with probability 1 - exp(-s / rate), which is what pprof's
 * heap_v2 profiles assume when they scale the samples back up, so the
 * estimates of live and allocated bytes per call site are unbiased.
 *   Small blocks: a thread's cache counts down the blocks each class hands
 *   out (tiny.h, tcache_countdown); the length of a countdown is drawn
 *   here, geometric with that probability for the class's size (the gap
 *   of the Poisson process over the class's own bytes: the sum of the
 *   classes' processes is the process over all bytes).  The fast path
 *   pays one instruction whether the profiler is on or off.
 *   Large blocks: a byte countdown per thread, on their slow path.
 * A sampled block's stack comes from libunwind (unw_backtrace, about 1,000
 * instructions for 8 frames; loaded with dlopen when the profiler starts,
 * so a process without NUMASLAB_PROF never maps it), or glibc's backtrace
 * (about 14,000) when libunwind is not installed.  Neither allocates
 * through the allocator's locks: the stack is taken before the profiler's
 * lock, and a malloc inside the unwinder is served normally but not
 * sampled (in_prof).
 *
 * Freed samples leave the profile.  While a sampled small block is live,
 * its unit's copy of the slab geometry has span 0 (superslab_t.prof_live),
 * so every free in that unit takes the slow path (src/free.c), which asks
 * prof_free; other units keep the fast path.  Large frees ask prof_free on
 * their slow path.  A sample freed by a thread on another node than the
 * block's counts as a remote free of its site: the sites that make
 * cross-node traffic.
 *
 * The profile is google-pprof's heap format (heap_v2), written at exit
 * (NUMASLAB_PROF_FILE), by ns_prof_dump, and each time the sampled live
 * heap grows by NUMASLAB_PROF_INTERVAL.  Lines that pprof ignores carry
 * what is numaslab's own: "# numa" after a site (its live sampled bytes
 * per node, its sampled bytes freed by threads of other nodes) and
 * "# object" lines (each loaded object's address range, load bias and
 * GNU build ID), which `numaslab prof` reads to name the sites.
 *
 * Tables (sites by stack, samples by address) live in metadata memory
 * (meta.c) under one lock, LOCK_PROF: taken with no other allocator lock
 * held, it takes only the metadata lock; fork holds it (tcache_fork_above).
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include <numaslab.h>

#define PROF_DEPTH 32           /* frames kept per stack                  */
#define PROF_NODES 64           /* nodes counted apart (the last: 63 and up) */
#define SITE_BUCKETS 4096
#define SAMPLE_BUCKETS 65536

typedef struct prof_site {
    struct prof_site *next;     /* hash chain                              */
    uint64_t hash;
    uint32_t depth;
    uint64_t live_n, live_bytes, alloc_n, alloc_bytes;
    uint64_t remote_n, remote_bytes;    /* freed by a thread of another node */
    uint64_t node_bytes[PROF_NODES];    /* live bytes by the block's node  */
    uintptr_t pc[PROF_DEPTH];
} prof_site_t;

typedef struct prof_sample {
    struct prof_sample *next;
    uintptr_t addr;
    prof_site_t *site;
    uint64_t size;
    uint32_t node;
    bool small;
} prof_sample_t;

bool prof_on;
static double rate;
static pthread_mutex_t prof_lock = PTHREAD_MUTEX_INITIALIZER;
static prof_site_t *sites[SITE_BUCKETS];
static prof_sample_t *samples[SAMPLE_BUCKETS];
static uint64_t live_est, next_dump_at;        /* bytes: the interval dumps */
/* Odd while the sample table changes (a sequence lock): prof_free looks a
 * pointer up without the lock, and takes it only for a sample. */
static _Atomic uint64_t table_seq;
static uint32_t dump_seq;

static int (*unwind)(void **, int);
static const char *unwinder;
static uintptr_t own_lo, own_hi;        /* numaslab's code: frames skipped */
static int own_skip;                    /* linked statically: frames skipped */

static __thread uint64_t rng;
static __thread bool in_prof;
static __thread bool large_armed;
static __thread double large_left;

/* ---------------------------------------------------------------- draws */
static uint64_t rand64(void)
{
    if (NS_UNLIKELY(rng == 0))
        rng = hardened_random() | 1;    /* the thread's getrandom pool (superslab/hardened.c) */
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;      /* xorshift64* */
    return rng * 0x2545f4914f6cdd1du;
}

/* ln x for x in (0, 1], without libm: x = m 2^e with m in [1, 2),
 * ln m = 2 atanh((m - 1) / (m + 1)) by its series (|t| <= 1/3: six terms
 * are exact to 1e-7, plenty for a random gap). */
static double ln(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & ~((uint64_t)0x7ff << 52)) | ((uint64_t)1023 << 52);
    double m;
    memcpy(&m, &bits, sizeof m);
    double t = (m - 1) / (m + 1), t2 = t * t;
    double s = t * (2 + t2 * (2.0 / 3 + t2 * (2.0 / 5 + t2 * (2.0 / 7 + t2 * (2.0 / 9 + t2 * (2.0 / 11))))));
    return e * 0.6931471805599453 + s;
}

/* Uniform in (0, 1]. */
static double uniform(void)
{
    return (double)((rand64() >> 11) + 1) / 9007199254740992.0;
}

/* Bytes to the next sample: exponential with mean `rate`. */
static double gap(void)
{
    return -ln(uniform()) * rate;
}

/* tcache_draw_hook: blocks of class cls until its next sample. */
static uint32_t draw_blocks(unsigned cls)
{
    double n = gap() / sizeclass_size[cls];
    return n >= 2147483648.0 ? 2147483648u : (uint32_t)n + 1;
}

/* --------------------------------------------------------------- stacks */
static int capture(uintptr_t pc[PROF_DEPTH])
{
    void *raw[PROF_DEPTH + 16];
    int n = unwind ? unwind(raw, PROF_DEPTH + 16) : 0, i = 0;
    if (own_hi) {
        while (i < n && (uintptr_t)raw[i] >= own_lo && (uintptr_t)raw[i] < own_hi)
            i++;
    } else {
        i = n < own_skip ? n : own_skip;
    }
    int d = 0;
    for (; i < n && d < PROF_DEPTH; i++)
        pc[d++] = (uintptr_t)raw[i];
    return d;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    return h;
}

/* The site of a stack, created on first use (NULL: no memory).  Lock held. */
static prof_site_t *site_of(const uintptr_t *pc, int depth)
{
    uint64_t h = (uint64_t)depth;
    for (int i = 0; i < depth; i++)
        h = mix(h ^ pc[i]);
    prof_site_t **head = &sites[h % SITE_BUCKETS];
    for (prof_site_t *s = *head; s; s = s->next)
        if (s->hash == h && s->depth == (uint32_t)depth && !memcmp(s->pc, pc, (size_t)depth * sizeof *pc))
            return s;
    prof_site_t *s = meta_alloc(sizeof *s);
    if (!s)
        return NULL;
    s->hash = h;
    s->depth = (uint32_t)depth;
    memcpy(s->pc, pc, (size_t)depth * sizeof *pc);
    s->next = *head;
    *head = s;
    return s;
}

static prof_sample_t **sample_slot(uintptr_t a)
{
    return &samples[mix(a >> 4) % SAMPLE_BUCKETS];
}

/* The writer's side of table_seq: the store it brackets cannot move
 * before the first add (acquire) nor after the second (release). */
static void table_change(bool begin)
{
    atomic_fetch_add_explicit(&table_seq, 1, begin ? memory_order_acq_rel : memory_order_release);
}

/* ------------------------------------------------------- units of samples */
static unsigned unit_of(uintptr_t a)
{
    return (unsigned)(a >> NS_UNIT_SHIFT) & (NS_UNITS - 1);
}

/* A sampled small block is live in a's unit: frees there go slow.  The
 * store comes before the block reaches the user, so any thread that can
 * free it sees it. */
static void unit_hold(uintptr_t a)
{
    superslab_t *ss = superslab_of(a);
    unsigned u = unit_of(a);
    if (ss->prof_live[u]++ == 0)
        __atomic_store_n(&ss->fast[u].span, 0, __ATOMIC_RELEASE);
}

/* The last sample of a's unit is being freed: the fast path again (the
 * slab is carved: it still holds that block). */
static void unit_release(uintptr_t a)
{
    superslab_t *ss = superslab_of(a);
    unsigned u = unit_of(a);
    if (--ss->prof_live[u] == 0)
        __atomic_store_n(&ss->fast[u].span, ss->unit_slab[u]->span, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------- sampling */
static void interval_dump(void);

/* P(a block of `size` bytes is sampled) = 1 - exp(-size / rate). */
static double odds(uint64_t size)
{
    double r = (double)size / rate;
    if (r > 20)
        return 1;
    return r < 1e-6 ? r : 1 - 1 / (1 + r + r * r / 2 + r * r * r / 6 + r * r * r * r / 24);
}

/* Sampled estimate of a block's bytes: size / P(sampled). */
static uint64_t estimate(uint64_t size)
{
    double p = odds(size);
    return p > 0 ? (uint64_t)((double)size / p) : size;
}

/* smp into the table (its address's slot) and into its site's live
 * counts: forget() undone.  Lock held. */
static void remember(prof_sample_t *smp)
{
    prof_sample_t **slot = sample_slot(smp->addr);
    smp->next = *slot;
    table_change(true);
    __atomic_store_n(slot, smp, __ATOMIC_RELAXED);
    table_change(false);
    prof_site_t *site = smp->site;
    site->live_n++, site->live_bytes += smp->size;
    site->node_bytes[smp->node < PROF_NODES ? smp->node : PROF_NODES - 1] += smp->size;
    live_est += estimate(smp->size);
}

static void record(void *p, uint64_t size, uint32_t node, bool small)
{
    uintptr_t pc[PROF_DEPTH];
    int depth = capture(pc);
    bool dump = false;
    lock_take(&prof_lock, LOCK_PROF);
    prof_site_t *site = site_of(pc, depth);
    prof_sample_t *smp = site ? meta_alloc(sizeof *smp) : NULL;
    if (smp) {
        smp->addr = (uintptr_t)p;
        smp->site = site;
        smp->size = size;
        smp->node = node;
        smp->small = small;
        remember(smp);
        site->alloc_n++, site->alloc_bytes += size;
        if (small)
            unit_hold(smp->addr);
        if (options.prof_interval && live_est >= next_dump_at) {
            next_dump_at = live_est + (uint64_t)options.prof_interval;
            dump = true;
        }
    }
    lock_drop(&prof_lock, LOCK_PROF);
    if (dump)
        interval_dump();
}

/* tcache_sample_hook: p, a block of class cls, is about to be handed out. */
static void sample_small(void *p, unsigned cls)
{
    if (in_prof)
        return;
    in_prof = true;
    record(p, sizeclass_size[cls], superslab_of((uintptr_t)p)->node, true);
    in_prof = false;
}

/* `bytes` new bytes of the large block l run through the thread's byte
 * count-down; a hit samples the block, at its whole size. */
static void large_bytes(const large_t *l, uint64_t bytes)
{
    if (in_prof)
        return;
    if (!large_armed) {
        large_left = gap();
        large_armed = true;
    }
    if ((double)bytes < large_left) {
        large_left -= (double)bytes;
        return;
    }
    large_left = gap();         /* memoryless: the next gap starts afresh */
    in_prof = true;
    record((void *)l->base, l->usable, l->node, false);
    in_prof = false;
}

void prof_large(void *p)
{
    uintptr_t e = addrmap_lookup((uintptr_t)p);
    if (e & NS_MAP_LARGE) {
        const large_t *l = (const large_t *)(e & ~NS_MAP_TAGS);
        large_bytes(l, l->usable);
    }
}

/* Unlink p's sample (NULL if p is not sampled).  Lock held. */
static prof_sample_t *take_sample(uintptr_t a)
{
    for (prof_sample_t **pp = sample_slot(a); *pp; pp = &(*pp)->next)
        if ((*pp)->addr == a) {
            prof_sample_t *s = *pp;
            table_change(true);
            __atomic_store_n(pp, s->next, __ATOMIC_RELAXED);
            table_change(false);
            return s;
        }
    return NULL;
}

/* Is a sampled?  Without the lock: false is certain only when no change
 * of the table overlapped the walk (records are recycled, never unmapped,
 * so a walk that raced one reads stale but valid memory; it is bounded
 * and then repeated under the lock). */
static bool maybe_sampled(uintptr_t a)
{
    uint64_t seq = atomic_load_explicit(&table_seq, memory_order_acquire);
    if (seq & 1)
        return true;
    unsigned steps = 0;
    /* acquire loads: the second read of table_seq cannot move before them */
    for (prof_sample_t *s = __atomic_load_n(sample_slot(a), __ATOMIC_ACQUIRE); s;
         s = __atomic_load_n(&s->next, __ATOMIC_ACQUIRE))
        if (__atomic_load_n(&s->addr, __ATOMIC_ACQUIRE) == a || ++steps > 64)
            return true;
    return atomic_load_explicit(&table_seq, memory_order_relaxed) != seq;
}

static void forget(prof_sample_t *smp)
{
    prof_site_t *site = smp->site;
    site->live_n--, site->live_bytes -= smp->size;
    site->node_bytes[smp->node < PROF_NODES ? smp->node : PROF_NODES - 1] -= smp->size;
    uint64_t est = estimate(smp->size);
    live_est = live_est > est ? live_est - est : 0;
}

void prof_free(void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (!maybe_sampled(a))
        return;             /* another block of a unit with samples */
    uint32_t me = topo_current_node();
    lock_take(&prof_lock, LOCK_PROF);
    prof_sample_t *smp = take_sample(a);
    if (smp) {
        forget(smp);
        if (smp->node != me)
            smp->site->remote_n++, smp->site->remote_bytes += smp->size;
        if (smp->small)
            unit_release(a);
    }
    lock_drop(&prof_lock, LOCK_PROF);
    if (smp)
        meta_free(smp, sizeof *smp);
}

/* realloc of a large block (alloc.c): its sample, if it has one, leaves
 * the table before the block can move, so that a block another thread
 * gets at the old address meanwhile is not taken for it (its own sample
 * would be the one a later prof_free(old) removed).  The opaque sample
 * goes back with prof_reattach. */
void *prof_detach(void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (!maybe_sampled(a))
        return NULL;
    lock_take(&prof_lock, LOCK_PROF);
    prof_sample_t *smp = take_sample(a);
    if (smp)
        forget(smp);
    lock_drop(&prof_lock, LOCK_PROF);
    return smp;
}

/* After realloc: the block now at p (where it moved, or the same place:
 * grown or shrunk in place, or not resized) was `before` usable bytes.
 * A sampled block keeps its sample, and so its allocation site, with its
 * size and node now; the odds stay those of a block of the new size, as
 * pprof's scaling assumes (1 - exp(-size / rate)): a block that grew is
 * also sampled when its new bytes take the count-down's hit, one that
 * shrank keeps its sample with the ratio of the two sizes' odds. */
void prof_reattach(void *sample, void *p, uint64_t before)
{
    prof_sample_t *smp = sample;
    uintptr_t e = addrmap_lookup((uintptr_t)p);
    ns_assert(e & NS_MAP_LARGE);    /* realloc's own large block, or where it moved */
    const large_t *l = (const large_t *)(e & ~NS_MAP_TAGS);
    uint64_t now = l->usable;
    if (!smp) {
        if (now > before)
            large_bytes(l, now - before);
        return;
    }
    if (now < before && uniform() > odds(now) / odds(before)) {
        meta_free(smp, sizeof *smp);
        return;
    }
    lock_take(&prof_lock, LOCK_PROF);
    smp->addr = (uintptr_t)p;
    smp->size = now;
    smp->node = l->node;
    remember(smp);
    lock_drop(&prof_lock, LOCK_PROF);
}

/* ------------------------------------------------------------- the file */
typedef unsigned long long ull;

static void write_sites(sink_t *o)
{
    ull n1 = 0, b1 = 0, n2 = 0, b2 = 0;
    for (unsigned i = 0; i < SITE_BUCKETS; i++)
        for (prof_site_t *s = sites[i]; s; s = s->next)
            n1 += s->live_n, b1 += s->live_bytes, n2 += s->alloc_n, b2 += s->alloc_bytes;
    sink_printf(o, "heap profile: %llu: %llu [%llu: %llu] @ heap_v2/%llu\n", n1, b1, n2, b2, (ull)options.prof_sample);
    sink_printf(o, "# numaslab heap profile: pid %d, unwinder %s, nodes %u, sample sizes are usable sizes\n",
                (int)getpid(), unwinder ? unwinder : "none", topo_nodes());
    for (unsigned i = 0; i < SITE_BUCKETS; i++)
        for (prof_site_t *s = sites[i]; s; s = s->next) {
            sink_printf(o, "%llu: %llu [%llu: %llu] @", (ull)s->live_n, (ull)s->live_bytes, (ull)s->alloc_n,
                        (ull)s->alloc_bytes);
            for (uint32_t d = 0; d < s->depth; d++)
                sink_printf(o, " 0x%llx", (ull)s->pc[d]);
            sink_printf(o, "\n# numa live");
            for (unsigned nd = 0; nd < PROF_NODES; nd++)
                if (s->node_bytes[nd])
                    sink_printf(o, " %u:%llu", nd, (ull)s->node_bytes[nd]);
            sink_printf(o, " remote_freed %llu: %llu\n", (ull)s->remote_n, (ull)s->remote_bytes);
        }
}

/* "# object LO-HI BIAS BUILD_ID PATH" for each loaded object with code. */
static int write_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    sink_t *o = arg;
    uintptr_t lo, hi;
    char id[2 * 64 + 1] = "-";
    machine_code_span(info, &lo, &hi);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_NOTE) {
            const char *n = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = n + ph->p_memsz;
            while (n + sizeof(ElfW(Nhdr)) <= end) {
                const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)n;
                const unsigned char *desc = (const unsigned char *)n + sizeof *nh + ((nh->n_namesz + 3) & ~3u);
                if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(n + sizeof *nh, "GNU", 4) &&
                    nh->n_descsz <= 64) {
                    for (unsigned k = 0; k < nh->n_descsz; k++) {
                        id[2 * k] = "0123456789abcdef"[desc[k] >> 4];
                        id[2 * k + 1] = "0123456789abcdef"[desc[k] & 15];
                    }
                    id[2 * nh->n_descsz] = 0;
                }
                n = (const char *)desc + ((nh->n_descsz + 3) & ~3u);
            }
        }
    }
    if (hi == 0)
        return 0;
    char exe[4096];
    const char *path = info->dlpi_name;
    if (!path || !*path) {          /* the main program */
        ssize_t l = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[l > 0 ? l : 0] = 0;
        path = exe;
    }
    sink_printf(o, "# object 0x%llx-0x%llx 0x%llx %s %s\n", (ull)lo, (ull)hi, (ull)info->dlpi_addr, id, path);
    return 0;
}

static void write_maps(sink_t *o)
{
    sink_printf(o, "\nMAPPED_LIBRARIES:\n");
    sink_flush(o);
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n;
    while ((n = read(fd, o->buf, o->cap)) > 0) {
        o->len = (size_t)n;
        sink_flush(o);
    }
    close(fd);
}

static int dump_to(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    char buf[4096];
    sink_t o;
    sink_init(&o, fd, NULL, buf, sizeof buf);
    lock_take(&prof_lock, LOCK_PROF);
    write_sites(&o);
    lock_drop(&prof_lock, LOCK_PROF);
    dl_iterate_phdr(write_object, &o);
    write_maps(&o);
    int err = close(fd);
    return err;
}

/* NUMASLAB_PROF_FILE (or its default) with %p expanded, and ".SEQ" when
 * seq is not 0. */
static bool profile_path(char *out, size_t cap, uint32_t seq)
{
    const char *f = options.prof_file && *options.prof_file ? options.prof_file : "numaslab.%p.heap";
    if (!path_expand(f, out, cap))
        return false;
    size_t l = strlen(out);
    if (seq && (size_t)snprintf(out + l, cap - l, ".%u", seq) >= cap - l)
        return false;
    return true;
}

static void dump_warn(const char *path)
{
    error_warn("cannot write the heap profile: ", path);
}

static void interval_dump(void)
{
    char path[4096];
    uint32_t seq = __atomic_add_fetch(&dump_seq, 1, __ATOMIC_RELAXED);
    if (profile_path(path, sizeof path, seq) && dump_to(path) != 0)
        dump_warn(path);
}

NS_API int ns_prof_dump(const char *path)
{
    char def[4096];
    if (!prof_on) {
        errno = ENOTSUP;
        return -1;
    }
    if (!path) {
        if (!profile_path(def, sizeof def, 0)) {
            errno = ENAMETOOLONG;
            return -1;
        }
        path = def;
    }
    return dump_to(path);
}

static void prof_at_exit(void)
{
    char path[4096];
    if (!profile_path(path, sizeof path, 0) || dump_to(path) != 0)
        dump_warn(options.prof_file ? options.prof_file : "numaslab.%p.heap");
}

/* -------------------------------------------------------------- start-up */
static void prof_fork(int phase)
{
    if (phase == 0)
        lock_take(&prof_lock, LOCK_PROF);
    else
        lock_after_fork(&prof_lock, LOCK_PROF, phase == 2);
}

/* From the constructor (src/init.c), when NUMASLAB_PROF is set: the
 * unwinder, the hooks, the profile at exit. */
void prof_start(void)
{
    rate = (double)options.prof_sample;
    void *h = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    if (h) {
        void *f = dlsym(h, "unw_backtrace");
        memcpy(&unwind, &f, sizeof f);      /* POSIX: a function's address */
    }
    if (unwind) {
        unwinder = "libunwind";
    } else {
        void *warm[4];
        unwind = backtrace;      /* loads libgcc_s now, not inside malloc */
        unwind(warm, 4);
        unwinder = "glibc backtrace";
    }
    /* stacks start at the first frame outside numaslab's code; linked
     * statically (its code is the program's), a fixed number of frames
     * is skipped: the hook, tcache_countdown, malloc */
    bool alone;
    machine_self(&own_lo, &own_hi, &alone);
    if (!alone)
        own_lo = own_hi = 0, own_skip = 3;
    tcache_fork_above = prof_fork;
    tcache_draw_hook = draw_blocks;
    tcache_sample_hook = sample_small;
    prof_on = true;
    atomic_fetch_add_explicit(&tcache_countdown_epoch, 1, memory_order_release);
    tcache_countdown_refresh();     /* other threads: at their next slow path */
    atexit(prof_at_exit);
}
