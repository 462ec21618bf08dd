/* fuzz_alloc.c - libFuzzer target for the ns_* API.
 *
 * Built with clang -fsanitize=fuzzer,address,undefined together with the
 * allocator's own sources (every src/ .c file except src/override.c): ASan keeps
 * its malloc, and numaslab's ns_* functions are what is fuzzed, with its
 * own code instrumented (build.sh does it).
 *
 * The input is a program over a table of 64 slots, run from an empty table
 * each time; every live block holds a pattern derived from its slot and a
 * generation number over its whole usable size.  Each operation is
 *
 *   [op] [slot] then its operands:
 *     size  = [selector] [3 value bytes]     small / medium / large / edge / error
 *     align = [1 byte]                        8 B .. 64 KiB, large, not a power of two, huge
 *     count = [1 byte]                        for calloc / reallocarray
 *
 *   op % 16:  0,12 ns_malloc        1 ns_calloc        2,13 ns_realloc
 *             3 ns_memalign          4 ns_posix_memalign 5,14,15 ns_free
 *             6 ns_malloc_usable_size + ns_node_of     7 ns_release (+ check all)
 *             (op 5 with slot byte 0xff frees the whole table: the corpus
 *             files are minimised inputs joined with "05 ff")
 *             8 ns_aligned_alloc     9 ns_reallocarray   10 ns_valloc / ns_pvalloc
 *             11 ns_malloc_onnode (nodes -1 .. 2) or ns_stats_get
 *
 * Checked (abort() with a line on stderr on any violation):
 *   - every allocation: non-NULL for a satisfiable request, aligned (16 B, or
 *     the asked alignment, a page for valloc), usable size >= the request,
 *     a calloc block zero over the request, ns_node_of >= 0;
 *   - sizes that cannot be satisfied (2^48 .. SIZE_MAX, calloc/reallocarray
 *     overflow) give NULL + errno ENOMEM (posix_memalign: returns ENOMEM);
 *     bad alignments give EINVAL (posix_memalign: not a power of two
 *     multiple of sizeof(void *), *out untouched; aligned_alloc: not a power
 *     of two; memalign: above SIZE_MAX / 2 + 1); a bad node gives EINVAL;
 *   - before every free and realloc the whole pattern is intact; realloc
 *     keeps the prefix up to min(old, new) requested size; a failed realloc
 *     leaves the old block intact; realloc(p, 0) frees p and returns NULL;
 *   - after ns_release() every live block is intact;
 *   - ns_stats_get: in_use_bytes >= the bytes the table holds.
 * At the end of each input every live block is checked and freed.
 * Satisfiable requests above 8 MiB, or that would take the table above
 * 32 MiB, are skipped (fills of tens of MiB made runs 10 x slower); sizes
 * that must fail are always tried.
 *
 * Build and run: tests/fuzz/build.sh OUT_DIR, then
 *   OUT_DIR/fuzz_alloc -max_len=1024 -max_total_time=600 NEW_CORPUS tests/fuzz/corpus
 *   OUT_DIR/fuzz_alloc FILE...          (replay: each file once, e.g. the corpus)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "numaslab.h"

/* The blocks are numaslab's memory, which ASan does not track: checking its
 * shadow on every word of a multi-MiB fill only costs time. */
#define NO_SAN __attribute__((no_sanitize("address", "undefined", "coverage")))
#define TK_PAT_ATTR NO_SAN
#include "../common/testkit.h"

#define SLOTS 64
#define LIVE_CAP ((size_t)32 << 20) /* requested bytes the table may hold */
#define HUGE_OK ((size_t)8 << 20)   /* larger requests are skipped (speed) */

typedef struct slot {
    unsigned char *p;
    size_t size;  /* requested */
    size_t fill;  /* bytes under the pattern (usable size) */
    uint32_t gen;
} slot_t;

static slot_t tab[SLOTS];
static size_t live_bytes;
static uint32_t gen_counter;
static int nodes = 1;

/* ------------------------------------------------------------ failures */

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz_alloc: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* ------------------------------------------------------------ pattern */

/* Slot k's pattern in generation gen: tests/common/testkit.h's, with its
 * own base. */
static uint64_t pat_base(unsigned slot, uint32_t gen) { return tk_mix64(((uint64_t)gen << 8) | slot); }

static void check_slot(unsigned k, const char *when)
{
    slot_t *s = &tab[k];
    size_t off = tk_pat_check(s->p, s->fill, pat_base(k, s->gen));
    if (off != SIZE_MAX)
        die("PATTERN MISMATCH %s: slot %u %p size %zu (pattern over %zu) gen %u: byte %zu is 0x%02x", when, k,
            (void *)s->p, s->size, s->fill, s->gen, off, s->p[off]);
}

/* ------------------------------------------------------------ input */

typedef struct in {
    const uint8_t *d;
    size_t n, pos;
} in_t;

static unsigned get8(in_t *in) { return in->pos < in->n ? in->d[in->pos++] : 0; }

/* What a request is expected to do. */
enum { EXP_OK, EXP_ENOMEM };

/* Sizes that no allocator can give (>= 2^48: beyond the 47-bit user space). */
static size_t error_size(unsigned v)
{
    switch (v % 8) {
    case 0: return SIZE_MAX - (v >> 3) % 65536;
    case 1: return SIZE_MAX / 2 + 1 + (v >> 3);
    case 2: return SIZE_MAX / 2 - (v >> 3);
    case 3: return ((size_t)1 << 48) + (v >> 3);
    case 4: return ((size_t)1 << 62) - (v >> 3);
    case 5: return SIZE_MAX - 4095;
    case 6: return SIZE_MAX - 2 * 1024 * 1024 + 1;
    default: return ((size_t)1 << (48 + (v >> 3) % 16)) - 1;
    }
}

static const size_t edge_sizes[] = {
    0, 1, 7, 8, 15, 16, 17, 31, 32, 127, 128, 129, 1023, 1024, 4095, 4096, 4097, 8191, 8192, 8193,
    65535, 65536, 65537, 131072, 262143, 262144, 262145, 1048576, 2097151, 2097152, 2097153,
    4194304, 6291456, 8388608,
};

static size_t read_size(in_t *in, int *expect)
{
    unsigned sel = get8(in);
    unsigned v = get8(in) | get8(in) << 8 | get8(in) << 16;
    *expect = EXP_OK;
    switch (sel % 16) {
    case 0: case 1: case 2: case 3: case 13: case 14:
        return v % 1025;                         /* small: 0 .. 1 KiB */
    case 4: case 5: case 6:
        return v % (64 * 1024 + 1);              /* medium: up to 64 KiB */
    case 7: case 8:
        return v % (256 * 1024 + 1);             /* up to the largest class */
    case 9: case 10:
        return 256 * 1024 + v % (4 * 1024 * 1024); /* large: 256 KiB .. 4.25 MiB */
    case 11: case 15:
        return edge_sizes[v % (sizeof edge_sizes / sizeof edge_sizes[0])];
    default:
        *expect = EXP_ENOMEM;
        return error_size(v);
    }
}

/* Alignment byte: mostly a power of two 8 B .. 64 KiB. */
static size_t read_align(in_t *in)
{
    unsigned a = get8(in);
    switch (a >> 5) {
    case 0: case 1: case 2: case 3: case 4:
        return (size_t)8 << (a % 14);            /* 8 B .. 64 KiB */
    case 5:
        return (size_t)1 << (17 + a % 8);        /* 128 KiB .. 16 MiB */
    case 6:
        return a % 32;                           /* 0 .. 31: small, odd, not powers of two */
    default:
        switch (a % 6) {                         /* absurd */
        case 0: return SIZE_MAX;
        case 1: return SIZE_MAX / 2 + 1;
        case 2: return SIZE_MAX / 2 + 2;
        case 3: return (size_t)3 << 20;
        case 4: return ((size_t)1 << 20) + 8;
        default: return sizeof(void *) / 2;
        }
    }
}

NO_SAN static size_t first_nonzero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return i;
    return SIZE_MAX;
}

static int pow2(size_t x) { return x && !(x & (x - 1)); }

/* ------------------------------------------------------------ slots */

static void release_slot(unsigned k, const char *when)
{
    slot_t *s = &tab[k];
    if (!s->p)
        return;
    check_slot(k, when);
    ns_free(s->p);
    live_bytes -= s->size;
    s->p = NULL;
}

/* A new block of `size` bytes at p (aligned to `align`) goes into slot k. */
static void adopt(unsigned k, void *p, size_t size, size_t align, const char *fn)
{
    slot_t *s = &tab[k];
    uintptr_t a = (uintptr_t)p;
    size_t need = align > 16 ? align : 16;
    if (size < 16 && align <= 16)
        need = 8;
    if (a & (need - 1))
        die("%s(size %zu, align %zu) = %p: not %zu-aligned", fn, size, align, p, need);
    size_t us = ns_malloc_usable_size(p);
    if (us < size)
        die("%s(size %zu) = %p: usable size %zu < size", fn, size, p, us);
    if (ns_node_of(p) < 0)
        die("%s(size %zu) = %p: ns_node_of says it is not ours", fn, size, p);
    s->p = p;
    s->size = size;
    s->fill = us;
    s->gen = ++gen_counter;
    live_bytes += size;
    tk_pat_fill(s->p, us, pat_base(k, s->gen));
}

static void expect_null(void *p, int err, const char *fn, size_t a, size_t b)
{
    if (p)
        die("%s(%zu, %zu) = %p: expected NULL", fn, a, b, p);
    if (errno != err)
        die("%s(%zu, %zu): NULL with errno %d, expected %d", fn, a, b, errno, err);
}

static void expect_ptr(void *p, const char *fn, size_t a, size_t b)
{
    if (!p)
        die("%s(%zu, %zu) = NULL (errno %d) for a satisfiable request", fn, a, b, errno);
}

/* Whether a new block of size may join the table (keeps runs fast). */
static int room(size_t size) { return size <= HUGE_OK && live_bytes + size <= LIVE_CAP; }

/* ------------------------------------------------------------ ops */

static void op_malloc(unsigned k, in_t *in)
{
    int exp;
    size_t size = read_size(in, &exp);
    errno = 0;
    if (exp == EXP_ENOMEM) {
        expect_null(ns_malloc(size), ENOMEM, "ns_malloc", size, 0);
        return;
    }
    if (!room(size))
        return;
    release_slot(k, "before malloc");
    void *p = ns_malloc(size);
    expect_ptr(p, "ns_malloc", size, 0);
    adopt(k, p, size, 0, "ns_malloc");
}

static void op_calloc(unsigned k, in_t *in)
{
    int exp;
    size_t size = read_size(in, &exp);
    unsigned c = get8(in);
    size_t count = c < 200 ? c % 17 : (c < 250 ? (size_t)c << 20 : SIZE_MAX - c);
    size_t total;
    int overflow = __builtin_mul_overflow(count, size, &total);
    errno = 0;
    if (overflow || (exp == EXP_ENOMEM && count) || total >= ((size_t)1 << 48)) {
        expect_null(ns_calloc(count, size), ENOMEM, "ns_calloc", count, size);
        return;
    }
    if (!room(total))
        return;
    release_slot(k, "before calloc");
    unsigned char *p = ns_calloc(count, size);
    expect_ptr(p, "ns_calloc", count, size);
    size_t nz = first_nonzero(p, total);
    if (nz != SIZE_MAX)
        die("ns_calloc(%zu, %zu) = %p: byte %zu is 0x%02x, not 0", count, size, (void *)p, nz, p[nz]);
    adopt(k, p, total, 0, "ns_calloc");
}

/* realloc slot k to size (fn: which API, for reports). */
static void do_realloc(unsigned k, size_t size, int exp, void *(*call)(void *, size_t, size_t), size_t count,
                       const char *fn)
{
    slot_t *s = &tab[k];
    size_t total = count ? size * count : size;
    if (s->p)
        check_slot(k, "before realloc");
    errno = 0;
    if (exp == EXP_ENOMEM) {
        void *q = call(s->p, count, size);
        expect_null(q, ENOMEM, fn, count ? count : size, count ? size : 0);
        if (s->p)
            check_slot(k, "after a failed realloc"); /* the old block is intact */
        return;
    }
    if (total > s->size && !room(total - s->size))
        return;
    if (!s->p && !room(total))
        return;
    void *q = call(s->p, count, size);
    if (total == 0 && s->p) {
        /* glibc semantics: realloc(p, 0) frees p and returns NULL */
        if (q)
            die("%s(%p, 0) = %p: expected NULL (p freed)", fn, (void *)s->p, q);
        live_bytes -= s->size;
        s->p = NULL;
        return;
    }
    expect_ptr(q, fn, total, 0);
    if (s->p) {
        size_t keep = total < s->size ? total : s->size;
        size_t off = tk_pat_check(q, keep, pat_base(k, s->gen));
        if (off != SIZE_MAX)
            die("%s(%p size %zu -> %zu) = %p: byte %zu of the kept %zu lost (slot %u gen %u)", fn, (void *)s->p,
                s->size, total, q, off, keep, k, s->gen);
        live_bytes -= s->size;
        s->p = NULL;
    }
    adopt(k, q, total, 0, fn);
}

static void *call_realloc(void *p, size_t count, size_t size)
{
    (void)count;
    return ns_realloc(p, size);
}

static void *call_reallocarray(void *p, size_t count, size_t size) { return ns_reallocarray(p, count, size); }

static void op_realloc(unsigned k, in_t *in)
{
    int exp;
    size_t size = read_size(in, &exp);
    do_realloc(k, size, exp, call_realloc, 0, "ns_realloc");
}

static void op_reallocarray(unsigned k, in_t *in)
{
    int exp;
    size_t size = read_size(in, &exp);
    unsigned c = get8(in);
    size_t count = c < 220 ? 1 + c % 16 : (size_t)1 << (40 + c % 24), total;
    if (__builtin_mul_overflow(count, size, &total) || total >= ((size_t)1 << 48))
        exp = EXP_ENOMEM;
    do_realloc(k, size, exp, call_reallocarray, count, "ns_reallocarray");
}

static void op_aligned(unsigned k, in_t *in, int kind)
{
    size_t align = read_align(in);
    int exp;
    size_t size = read_size(in, &exp);
    static const char *const fn[] = {"ns_memalign", "ns_posix_memalign", "ns_aligned_alloc"};
    int bad_align;
    size_t eff = align; /* the alignment the block must have */
    switch (kind) {
    case 0: /* memalign rounds a non-power of two up; above SIZE_MAX/2+1: EINVAL */
        bad_align = align > SIZE_MAX / 2 + 1;
        if (!bad_align && !pow2(align))
            eff = align <= 1 ? 1 : (size_t)1 << (64 - __builtin_clzl(align - 1));
        break;
    case 1: bad_align = !pow2(align) || align % sizeof(void *); break;
    default: bad_align = !pow2(align); break;
    }
    /* an alignment this large cannot be met in the address space either */
    if (!bad_align && eff >= ((size_t)1 << 47))
        exp = EXP_ENOMEM;
    if (!bad_align && exp == EXP_OK && (!room(size) || eff > ((size_t)16 << 20)))
        return;
    if (exp == EXP_OK && !bad_align)
        release_slot(k, "before an aligned allocation");
    errno = 0;
    void *p = NULL;
    if (kind == 1) {
        void *sentinel = (void *)(uintptr_t)0x5a5a5a5a5a5a5a50ULL;
        p = sentinel;
        int rc = ns_posix_memalign(&p, align, size);
        int want = bad_align ? EINVAL : exp == EXP_ENOMEM ? ENOMEM : 0;
        if (rc != want)
            die("ns_posix_memalign(align %zu, size %zu) = %d, expected %d", align, size, rc, want);
        if (rc) {
            if (p != sentinel)
                die("ns_posix_memalign(align %zu, size %zu) failed with %d but wrote *out = %p", align, size, rc, p);
            return;
        }
    } else {
        p = kind == 0 ? ns_memalign(align, size) : ns_aligned_alloc(align, size);
        if (bad_align || exp == EXP_ENOMEM) {
            expect_null(p, bad_align ? EINVAL : ENOMEM, fn[kind], align, size);
            return;
        }
    }
    expect_ptr(p, fn[kind], align, size);
    adopt(k, p, size, eff, fn[kind]);
}

static void op_valloc(unsigned k, in_t *in)
{
    unsigned which = get8(in) & 1;
    int exp;
    size_t size = read_size(in, &exp);
    const char *fn = which ? "ns_pvalloc" : "ns_valloc";
    errno = 0;
    if (exp == EXP_ENOMEM) {
        expect_null(which ? ns_pvalloc(size) : ns_valloc(size), ENOMEM, fn, size, 0);
        return;
    }
    if (!room(size + 4096))
        return;
    release_slot(k, "before valloc");
    void *p = which ? ns_pvalloc(size) : ns_valloc(size);
    expect_ptr(p, fn, size, 0);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if ((uintptr_t)p & (page - 1))
        die("%s(%zu) = %p: not page-aligned", fn, size, p);
    size_t want = which ? (size ? (size + page - 1) & ~(page - 1) : page) : size;
    adopt(k, p, want, page, fn);
}

static void op_onnode_or_stats(unsigned k, in_t *in)
{
    unsigned b = get8(in);
    if (b & 0x80) {
        ns_stats_t st;
        if (ns_stats_get(&st) != 0)
            die("ns_stats_get failed");
        if (st.nodes < 1)
            die("ns_stats_get: %d nodes", st.nodes);
        if (st.in_use_bytes < live_bytes)
            die("ns_stats_get: in_use_bytes %llu < %zu bytes the table holds", (unsigned long long)st.in_use_bytes,
                live_bytes);
        if (st.mapped_bytes < st.in_use_bytes)
            die("ns_stats_get: mapped_bytes %llu < in_use_bytes %llu", (unsigned long long)st.mapped_bytes,
                (unsigned long long)st.in_use_bytes);
        return;
    }
    int node = (int)(b % 4) - 1; /* -1 .. 2 */
    int exp;
    size_t size = read_size(in, &exp);
    errno = 0;
    if (node < 0 || node >= nodes) {
        void *p = ns_malloc_onnode(exp == EXP_ENOMEM ? 16 : size, node);
        expect_null(p, EINVAL, "ns_malloc_onnode", size, (size_t)node);
        return;
    }
    if (exp == EXP_ENOMEM) {
        expect_null(ns_malloc_onnode(size, node), ENOMEM, "ns_malloc_onnode", size, (size_t)node);
        return;
    }
    if (!room(size))
        return;
    release_slot(k, "before malloc_onnode");
    void *p = ns_malloc_onnode(size, node);
    expect_ptr(p, "ns_malloc_onnode", size, (size_t)node);
    if (ns_node_of(p) != node)
        die("ns_malloc_onnode(%zu, %d) = %p: ns_node_of says node %d", size, node, p, ns_node_of(p));
    adopt(k, p, size, 0, "ns_malloc_onnode");
}

static void op_usable(unsigned k)
{
    slot_t *s = &tab[k];
    if (ns_malloc_usable_size(NULL) != 0)
        die("ns_malloc_usable_size(NULL) != 0");
    if (!s->p)
        return;
    size_t us = ns_malloc_usable_size(s->p);
    if (us < s->size || us != s->fill)
        die("ns_malloc_usable_size(%p) = %zu; size %zu, %zu when allocated", (void *)s->p, us, s->size, s->fill);
    if (ns_node_of(s->p) < 0)
        die("ns_node_of(%p) < 0 for a live block", (void *)s->p);
    check_slot(k, "usable_size");
}

static void check_all(const char *when)
{
    for (unsigned k = 0; k < SLOTS; k++)
        if (tab[k].p)
            check_slot(k, when);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ns_stats_t st;
    void *p = ns_malloc(1); /* start the allocator */
    ns_free(p);
    if (ns_stats_get(&st) == 0 && st.nodes > 0)
        nodes = st.nodes;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in_t in = {data, size, 0};
    while (in.pos < in.n) {
        unsigned op = get8(&in) % 16;
        unsigned kb = get8(&in), k = kb % SLOTS;
        switch (op) {
        case 0: case 12: op_malloc(k, &in); break;
        case 1: op_calloc(k, &in); break;
        case 2: case 13: op_realloc(k, &in); break;
        case 3: op_aligned(k, &in, 0); break;
        case 4: op_aligned(k, &in, 1); break;
        case 5: case 14: case 15:
            if (kb == 0xff) /* "05 ff": free the whole table (inputs joined into one file) */
                for (unsigned j = 0; j < SLOTS; j++)
                    release_slot(j, "before free");
            release_slot(k, "before free");
            ns_free(NULL);
            break;
        case 6: op_usable(k); break;
        case 7:
            ns_release();
            check_all("after ns_release");
            break;
        case 8: op_aligned(k, &in, 2); break;
        case 9: op_reallocarray(k, &in); break;
        case 10: op_valloc(k, &in); break;
        default: op_onnode_or_stats(k, &in); break;
        }
    }
    for (unsigned k = 0; k < SLOTS; k++)
        release_slot(k, "at the end of the input");
    if (live_bytes != 0)
        die("internal: %zu live bytes after freeing the table", live_bytes);
    return 0;
}
