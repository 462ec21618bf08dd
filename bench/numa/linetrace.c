/* linetrace.c - which thread last wrote each cache line the allocator writes.
 *
 * libnumaslab-linetrace.so is the allocator compiled with
 * -fsanitize=kernel-address and a call threshold of 0: every load and
 * store of its code (the inlined fast paths in malloc and free included)
 * calls __asan_{load,store}N_noabort(addr).  This file, compiled without
 * instrumentation, supplies those functions: a store records its thread
 * as the last writer of the address's 64-byte line and counts a
 * cross-thread write when the previous writer was another thread.  User
 * code is not instrumented, so only the allocator's own writes count (the
 * links and marks it writes into blocks, its caches, bins, slabs,
 * counters).  malloc and free count operations (src/override.c under
 * NS_LINETRACE).  At exit, one report on stderr (or LINETRACE_FILE):
 *
 *   linetrace: ops N stores S (S/op) cross-thread line writes X (X per
 *   1000 ops) lines-table collisions C
 *   linetrace: site ADDR (object+offset) cross K   -- the top 12 sites
 *
 * Sites are return addresses into the library (addr2line -e
 * libnumaslab-linetrace.so OFFSET names them).  The line table is direct
 * mapped (2^24 entries of 8 bytes, hashed by line); a collision
 * replaces the entry and is counted, never reported as a cross write.
 * Numbers are exact for the operations traced; timing is meaningless
 * (every access is a call).  For bench/numa/linetrace.sh. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define LT_BITS 24
#define LT_LINES ((size_t)1 << LT_BITS)
#define LT_THREADS (1u << LT_TID_BITS)
#define LT_SITES 4096

/* one word per entry: line address >> 6 above, last writer below, so a
 * store reads and replaces both in one exchange (no torn pair) */
#define LT_TID_BITS 12
typedef _Atomic uint64_t lt_entry_t;

typedef struct {
    uint64_t stores, cross, ops;
} __attribute__((aligned(64))) lt_counts_t;

static lt_entry_t *table;
static lt_counts_t counts[LT_THREADS];
static _Atomic uint32_t next_tid;
static _Atomic uint64_t collisions;
static struct {
    _Atomic uintptr_t pc;
    _Atomic uint64_t n;
} sites[LT_SITES];
static __thread uint32_t my_tid __attribute__((tls_model("initial-exec")));
static __thread int in_lt __attribute__((tls_model("initial-exec")));

static uint32_t tid(void)
{
    if (!my_tid)
        my_tid = atomic_fetch_add(&next_tid, 1) % (LT_THREADS - 1) + 1;
    return my_tid;
}

static void site_count(uintptr_t pc)
{
    size_t h = (pc * 0x9e3779b97f4a7c15ull) >> (64 - 12);
    for (size_t i = 0; i < LT_SITES; i++) {
        size_t k = (h + i) & (LT_SITES - 1);
        uintptr_t cur = atomic_load_explicit(&sites[k].pc, memory_order_relaxed);
        if (cur == 0) {
            uintptr_t zero = 0;
            if (atomic_compare_exchange_strong(&sites[k].pc, &zero, pc) || zero == pc) {
                atomic_fetch_add_explicit(&sites[k].n, 1, memory_order_relaxed);
                return;
            }
            cur = zero;
        }
        if (cur == pc) {
            atomic_fetch_add_explicit(&sites[k].n, 1, memory_order_relaxed);
            return;
        }
    }
}

static void record(uintptr_t addr, size_t size, uintptr_t pc)
{
    if (!table || in_lt)
        return;
    uint32_t me = tid();
    lt_counts_t *c = &counts[me];
    for (uint64_t line = addr >> 6, last = (addr + (size ? size : 1) - 1) >> 6; line <= last; line++) {
        lt_entry_t *e = &table[(line * 0x9e3779b97f4a7c15ull) >> (64 - LT_BITS)];
        c->stores++;
        uint64_t old = atomic_exchange_explicit(e, line << LT_TID_BITS | me, memory_order_relaxed);
        uint32_t prev = (uint32_t)(old & (LT_THREADS - 1));
        if (old >> LT_TID_BITS != line) {
            if (old)
                atomic_fetch_add_explicit(&collisions, 1, memory_order_relaxed);
        } else if (prev != me) {
            c->cross++;
            site_count(pc);
        }
    }
}

void linetrace_op(void)
{
    if (table)
        counts[tid()].ops++;
}

#define PC ((uintptr_t)__builtin_return_address(0))
#define STORE(n)                                                             \
    void __asan_store##n##_noabort(uintptr_t a) { record(a, n, PC); }       \
    void __asan_load##n##_noabort(uintptr_t a) { (void)a; }
STORE(1)
STORE(2)
STORE(4)
STORE(8)
STORE(16)
void __asan_storeN_noabort(uintptr_t a, size_t n) { record(a, n, PC); }
void __asan_loadN_noabort(uintptr_t a, size_t n) { (void)a, (void)n; }
void __asan_unpoison_memory_region(const volatile void *p, size_t n) { (void)p, (void)n; }
void __asan_poison_memory_region(const volatile void *p, size_t n) { (void)p, (void)n; }
void __asan_handle_no_return(void) {}

__attribute__((constructor(101))) static void lt_start(void)
{
    void *m = mmap(NULL, LT_LINES * sizeof(lt_entry_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m != MAP_FAILED)
        table = m;
}

static int by_count(const void *a, const void *b)
{
    uint64_t x = ((const uint64_t *)a)[1], y = ((const uint64_t *)b)[1];
    return x < y ? 1 : x > y ? -1 : 0;
}

__attribute__((destructor(101))) static void lt_report(void)
{
    in_lt = 1;
    uint64_t ops = 0, stores = 0, cross = 0;
    for (size_t i = 0; i < LT_THREADS; i++) {
        ops += counts[i].ops;
        stores += counts[i].stores;
        cross += counts[i].cross;
    }
    const char *path = getenv("LINETRACE_FILE");
    FILE *f = path ? fopen(path, "a") : NULL;
    int fd = f ? fileno(f) : 2;
    char buf[512];
    int len = snprintf(buf, sizeof buf,
                       "linetrace: ops %llu stores %llu (%.1f/op) cross-thread line writes %llu "
                       "(%.3f per 1000 ops) collisions %llu\n",
                       (unsigned long long)ops, (unsigned long long)stores, ops ? (double)stores / ops : 0.0,
                       (unsigned long long)cross, ops ? 1000.0 * cross / ops : 0.0,
                       (unsigned long long)atomic_load(&collisions));
    if (write(fd, buf, (size_t)len) < 0)
        goto out;
    static uint64_t top[LT_SITES][2];
    size_t n = 0;
    for (size_t i = 0; i < LT_SITES; i++)
        if (sites[i].n) {
            top[n][0] = sites[i].pc;
            top[n][1] = sites[i].n;
            n++;
        }
    qsort(top, n, sizeof top[0], by_count);
    for (size_t i = 0; i < n && i < 12; i++) {
        Dl_info di;
        memset(&di, 0, sizeof di);
        uintptr_t off = top[i][0];
        const char *obj = "?";
        if (dladdr((void *)top[i][0], &di) && di.dli_fbase) {
            off -= (uintptr_t)di.dli_fbase;
            obj = strrchr(di.dli_fname, '/') ? strrchr(di.dli_fname, '/') + 1 : di.dli_fname;
        }
        len = snprintf(buf, sizeof buf, "linetrace: site %s+0x%lx (%s) cross %llu\n", obj, (unsigned long)off,
                       di.dli_sname ? di.dli_sname : "?", (unsigned long long)top[i][1]);
        if (write(fd, buf, (size_t)len) < 0)
            break;
    }
out:
    if (f)
        fclose(f);
}
