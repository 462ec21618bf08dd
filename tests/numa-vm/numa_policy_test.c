/* numa_policy_test.c - where do a program's pages land under the NUMA memory
 * policy it was started with (numactl --membind / --interleave / --preferred
 * / --cpunodebind), on CPU-less and memoryless nodes?  Run inside a
 * multi-node VM (tests/numa-vm/policy.sh, run-in-numa-vm.sh).
 *
 *   numa_policy_test MODE [OPTIONS]
 *
 * MODE
 *   malloc       allocate with malloc() from the main thread
 *   onnode=N     allocate with ns_malloc_onnode(size, N) (numaslab build only)
 *   thread=N     allocate with malloc() from a new thread that first pins
 *                itself to node N's CPUs with sched_setaffinity (and waits
 *                until it runs there) - before its first allocation
 *
 * What it allocates: 32 MiB of small blocks (random sizes 64..4096 B) and
 * four 8 MiB large blocks, every byte written.  Then it asks the kernel,
 * page by page (move_pages(0, n, pages, NULL, status, 0)), on which node
 * each page of its blocks lies and prints, per kind:
 *
 *   small: node0=8210 node1=0 pages=8210 blocks=15990 (node0 100.0%, node1 0.0%)
 *   large: node0=8192 node1=0 pages=8192 blocks=4 (node0 100.0%, node1 0.0%)
 *
 * (one nodeN= per online node, plus "absent=K" / "nodeN=" for pages not
 * present or on a node not online, if any), with the numaslab build also
 *
 *   ns_node_of: small[0]=0 small[mid]=0 small[last]=0 large=0,0,0,0 (small owners: node0=15990)
 *   numaslab config: {"nodes_used": "0-1", ...}      (verbatim, see below)
 *   numaslab policy: <the value of config's "policy">  (when there is one)
 *
 * and first a line with the policy the process runs under:
 *   env: mempolicy=bind:1 cpus=0-1 mode=malloc
 *
 * OPTIONS (expectations; repeatable; a mismatch prints "FAIL: ..." and
 * makes the exit status 1)
 *   --expect-small SPEC   about the small blocks' pages
 *   --expect-large SPEC   about the large blocks' pages
 *   --expect SPEC         both
 *       SPEC N=P          node N holds >= P-5 % of the pages (1=100: >= 95 %)
 *       SPEC spread=A,B   each of nodes A, B, ... holds >= 30 % of the pages
 *   --expect-none N[,M]   no page of either kind on these nodes, and (numaslab
 *                         build) no block with ns_node_of() == N
 *   --label TEXT          prefix every output line with "TEXT: "
 *   --no-stats            do not print numaslab's config (see below)
 *
 * numaslab's own view: unless --no-stats, the program runs its work in a
 * child (fork + exec of itself) with NUMASLAB_STATS=1,
 * NUMASLAB_STATS_FORMAT=json and NUMASLAB_STATS_FILE=/tmp/...; after the
 * child exited it prints the report's "config" object as it is.  (So the
 * measured process has those three NUMASLAB_* variables set; --no-stats
 * runs the work in this process, without them.)
 *
 * Built twice: numa_policy_test (linked with libnumaslab.so: malloc is
 * numaslab's) and numa_policy_test_glibc (-DPOLICY_TEST_GLIBC, glibc's
 * malloc, the reference; no ns_* calls, onnode= refused).
 *
 * EXIT STATUS: 0 all expectations met, 1 a mismatch or an error, 2 usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef POLICY_TEST_GLIBC
#include "numaslab.h"
#endif

#define PAGE ((uintptr_t)4096)
#define MiB ((size_t)1024 * 1024)
#define MAXN 64
#define SMALL_TOTAL (32 * MiB)
#define SMALL_MIN 64
#define SMALL_MAX 4096
#define NLARGE 4
#define LARGE_SIZE (8 * MiB)
#define MAX_SMALL (SMALL_TOTAL / SMALL_MIN + 1)
#define MAXEXP 32

static const char *label = "";
static int failures;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    printf("%s%s%s\n", label, *label ? ": " : "", buf);
    fflush(stdout);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    say("FAIL: %s", buf);
    exit(1);
}

/* Bookkeeping memory straight from the kernel (not the allocator under test). */
static void *xmap(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        die("mmap(%zu) for bookkeeping: %s", bytes, strerror(errno));
    return p;
}

/* ================================================================ options */
enum { KIND_SMALL = 1, KIND_LARGE = 2 };
typedef struct {
    int kinds;           /* KIND_* */
    int node;            /* N=P: node; spread: -1 */
    int pct;             /* N=P: P */
    uint64_t spread;     /* spread=A,B: node bits */
    const char *text;
} expect_t;

static expect_t expects[MAXEXP];
static int nexpects;
static uint64_t none_nodes;          /* --expect-none */
static int mode_onnode = -1, mode_thread = -1;
static const char *mode_text = "malloc";

static int parse_node(const char *s, char **end)
{
    errno = 0;
    long v = strtol(s, end, 10);
    if (errno || *end == s || v < 0 || v >= MAXN)
        return -1;
    return (int)v;
}

static uint64_t parse_nodelist(const char *s)
{
    uint64_t bits = 0;
    char *end;
    for (;;) {
        int n = parse_node(s, &end);
        if (n < 0)
            return 0;
        bits |= 1ull << n;
        if (*end == 0)
            return bits;
        if (*end != ',')
            return 0;
        s = end + 1;
    }
}

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
    fputs("usage: numa_policy_test malloc|onnode=N|thread=N [--expect[-small|-large] N=P|spread=A,B]...\n"
          "                        [--expect-none N[,M]] [--label TEXT] [--no-stats]\n",
          stderr);
    exit(2);
}

static void add_expect(int kinds, const char *spec)
{
    expect_t e = {.kinds = kinds, .node = -1, .text = spec};
    char *end;
    if (nexpects == MAXEXP)
        usage();
    if (strncmp(spec, "spread=", 7) == 0) {
        e.spread = parse_nodelist(spec + 7);
        if (!e.spread)
            usage();
    } else {
        e.node = parse_node(spec, &end);
        if (e.node < 0 || *end != '=')
            usage();
        char *end2;
        long p = strtol(end + 1, &end2, 10);
        if (end2 == end + 1 || *end2 || p < 0 || p > 100)
            usage();
        e.pct = (int)p;
    }
    expects[nexpects++] = e;
}

/* ================================================================ topology */
static int online[MAXN], nonline;        /* online node ids */
static cpu_set_t node_cpus[MAXN];

static void read_topology(void)
{
    for (int n = 0; n <= numa_max_node() && n < MAXN; n++) {
        if (!numa_bitmask_isbitset(numa_nodes_ptr, (unsigned)n))
            continue;
        online[nonline++] = n;
        struct bitmask *b = numa_allocate_cpumask();
        CPU_ZERO(&node_cpus[n]);
        if (numa_node_to_cpus(n, b) == 0)
            for (unsigned c = 0; c < b->size && c < CPU_SETSIZE; c++)
                if (numa_bitmask_isbitset(b, c))
                    CPU_SET(c, &node_cpus[n]);
        numa_free_cpumask(b);
    }
}

static void format_cpus(const cpu_set_t *s, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    for (int c = 0; c < CPU_SETSIZE && len + 16 < cap; c++) {
        if (!CPU_ISSET(c, s))
            continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, s))
            e++;
        len += (size_t)snprintf(out + len, cap - len, len ? ",%d" : "%d", c);
        if (e > c)
            len += (size_t)snprintf(out + len, cap - len, "-%d", e);
        c = e;
    }
}

static void print_env(void)
{
    int mode = -1;
    unsigned long mask[MAXN / (8 * sizeof(unsigned long)) + 1] = {0};
    char pol[256] = "?", cpus[256] = "?";
    if (get_mempolicy(&mode, mask, MAXN + 1, NULL, 0) == 0) {
        static const char *names[] = {"default", "preferred", "bind", "interleave", "local",
                                      "preferred_many"};
        int m = mode & 0xff;
        size_t len = (size_t)snprintf(pol, sizeof pol, "%s", m >= 0 && m < 6 ? names[m] : "?");
        const char *sep = ":";
        for (int n = 0; n < MAXN; n++)
            if (mask[n / (8 * sizeof(unsigned long))] >> (n % (8 * sizeof(unsigned long))) & 1) {
                len += (size_t)snprintf(pol + len, sizeof pol - len, "%s%d", sep, n);
                sep = ",";
            }
    }
    cpu_set_t s;
    if (sched_getaffinity(0, sizeof s, &s) == 0)
        format_cpus(&s, cpus, sizeof cpus);
    char nodes[256] = "";
    size_t len = 0;
    for (int i = 0; i < nonline; i++) {
        char c[128];
        format_cpus(&node_cpus[online[i]], c, sizeof c);
        len += (size_t)snprintf(nodes + len, sizeof nodes - len, "%s%d[%s]", i ? " " : "", online[i], c);
    }
    say("env: mempolicy=%s cpus=%s mode=%s nodes(cpus): %s", pol, cpus, mode_text, nodes);
}

/* ================================================================ the work */
static void **small_ptr;
static size_t *small_size;
static size_t nsmall;
static void *large_ptr[NLARGE];

static uint64_t rng_next(uint64_t *s) /* xorshift64* */
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void *alloc(size_t size)
{
#ifndef POLICY_TEST_GLIBC
    if (mode_onnode >= 0)
        return ns_malloc_onnode(size, mode_onnode);
#endif
    return malloc(size);
}

static void *work(void *arg)
{
    (void)arg;
    if (mode_thread >= 0) {
        if (sched_setaffinity(0, sizeof node_cpus[mode_thread], &node_cpus[mode_thread]) != 0)
            die("sched_setaffinity(node %d's CPUs): %s", mode_thread, strerror(errno));
        for (int i = 0;; i++) {
            int c = sched_getcpu();
            if (c >= 0 && c < CPU_SETSIZE && CPU_ISSET(c, &node_cpus[mode_thread]))
                break;
            if (i > 1000)
                die("the thread does not run on node %d's CPUs after sched_setaffinity", mode_thread);
            sched_yield();
            usleep(1000);
        }
    }
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    size_t total = 0;
    while (total < SMALL_TOTAL) {
        size_t sz = SMALL_MIN + rng_next(&rng) % (SMALL_MAX - SMALL_MIN + 1);
        void *p = alloc(sz);
        if (!p)
            die("allocating %zu B (small block %zu) failed: %s", sz, nsmall, strerror(errno));
        memset(p, (int)(nsmall & 0xff), sz);
        small_ptr[nsmall] = p;
        small_size[nsmall++] = sz;
        total += sz;
    }
    for (int i = 0; i < NLARGE; i++) {
        large_ptr[i] = alloc(LARGE_SIZE);
        if (!large_ptr[i])
            die("allocating %zu B (large block %d) failed: %s", LARGE_SIZE, i, strerror(errno));
        memset(large_ptr[i], i + 1, LARGE_SIZE);
    }
    return NULL;
}

/* ================================================================ counting */
typedef struct {
    size_t pages, absent, other;           /* other: on a node that is not online */
    size_t on[MAXN];
} count_t;

static int cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

static int is_online(int n)
{
    for (int i = 0; i < nonline; i++)
        if (online[i] == n)
            return 1;
    return 0;
}

/* where the pages in pg[0..n) are (sorted, duplicates removed first) */
static void locate(uintptr_t *pg, size_t n, count_t *c)
{
    qsort(pg, n, sizeof *pg, cmp_uptr);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || pg[u - 1] != pg[i])
            pg[u++] = pg[i];
    memset(c, 0, sizeof *c);
    c->pages = u;
    enum { CHUNK = 4096 };
    void *addr[CHUNK];
    int status[CHUNK];
    for (size_t i = 0; i < u; i += CHUNK) {
        size_t k = u - i < CHUNK ? u - i : CHUNK;
        for (size_t j = 0; j < k; j++)
            addr[j] = (void *)pg[i + j];
        if (move_pages(0, (unsigned long)k, addr, NULL, status, 0) != 0)
            die("move_pages(query) failed: %s", strerror(errno));
        for (size_t j = 0; j < k; j++) {
            if (status[j] < 0)
                c->absent++;
            else if (status[j] < MAXN && is_online(status[j]))
                c->on[status[j]]++;
            else if (status[j] < MAXN)
                c->on[status[j]]++, c->other++;
            else
                c->other++;
        }
    }
}

static double pct(size_t part, size_t whole) { return whole ? 100.0 * (double)part / (double)whole : 0.0; }

static void print_count(const char *kind, const count_t *c, size_t blocks)
{
    char line[1024], tail[512];
    size_t len = (size_t)snprintf(line, sizeof line, "%s:", kind);
    size_t tl = 0;
    tail[0] = 0;
    for (int n = 0; n < MAXN; n++) {
        if (!is_online(n) && !c->on[n])
            continue;
        len += (size_t)snprintf(line + len, sizeof line - len, " node%d=%zu", n, c->on[n]);
        tl += (size_t)snprintf(tail + tl, sizeof tail - tl, "%snode%d %.1f%%", tl ? ", " : "", n,
                               pct(c->on[n], c->pages));
    }
    if (c->absent)
        len += (size_t)snprintf(line + len, sizeof line - len, " absent=%zu", c->absent);
    say("%s pages=%zu blocks=%zu (%s)", line, c->pages, blocks, tail);
}

static void check(const char *kind, int kindbit, const count_t *c)
{
    for (int i = 0; i < nexpects; i++) {
        const expect_t *e = &expects[i];
        if (!(e->kinds & kindbit))
            continue;
        if (e->node >= 0) {
            double got = pct(c->on[e->node], c->pages);
            if (got < e->pct - 5.0) {
                say("FAIL: %s: node %d has %.1f%% of the pages (%zu of %zu), want >= %d%% (--expect %s)", kind,
                    e->node, got, c->on[e->node], c->pages, e->pct - 5, e->text);
                failures++;
            }
        } else {
            for (int n = 0; n < MAXN; n++) {
                if (!(e->spread >> n & 1))
                    continue;
                double got = pct(c->on[n], c->pages);
                if (got < 30.0) {
                    say("FAIL: %s: node %d has %.1f%% of the pages (%zu of %zu), want >= 30%% (--expect %s)",
                        kind, n, got, c->on[n], c->pages, e->text);
                    failures++;
                }
            }
        }
    }
    for (int n = 0; n < MAXN; n++)
        if (none_nodes >> n & 1 && c->on[n]) {
            say("FAIL: %s: %zu of %zu pages on node %d, want none (--expect-none)", kind, c->on[n], c->pages, n);
            failures++;
        }
}

static void measure(void)
{
    /* small blocks span at most 2 pages each */
    uintptr_t *pg = xmap((2 * nsmall + (size_t)NLARGE * (LARGE_SIZE / PAGE)) * sizeof *pg);
    size_t n = 0;
    for (size_t i = 0; i < nsmall; i++) {
        uintptr_t a = (uintptr_t)small_ptr[i] & ~(PAGE - 1);
        uintptr_t b = ((uintptr_t)small_ptr[i] + small_size[i] - 1) & ~(PAGE - 1);
        pg[n++] = a;
        if (b != a)
            pg[n++] = b;
    }
    count_t small, large;
    locate(pg, n, &small);
    n = 0;
    for (int i = 0; i < NLARGE; i++)
        for (uintptr_t a = ((uintptr_t)large_ptr[i] + PAGE - 1) & ~(PAGE - 1);
             a + PAGE <= (uintptr_t)large_ptr[i] + LARGE_SIZE; a += PAGE)
            pg[n++] = a;
    locate(pg, n, &large);
    print_count("small", &small, nsmall);
    print_count("large", &large, NLARGE);

#ifndef POLICY_TEST_GLIBC
    size_t owners[MAXN] = {0}, bad = 0;
    for (size_t i = 0; i < nsmall; i++) {
        int o = ns_node_of(small_ptr[i]);
        if (o >= 0 && o < MAXN)
            owners[o]++;
        else
            bad++;
    }
    char own[512];
    size_t ol = 0;
    own[0] = 0;
    for (int k = 0; k < MAXN; k++)
        if (owners[k])
            ol += (size_t)snprintf(own + ol, sizeof own - ol, "%snode%d=%zu", ol ? " " : "", k, owners[k]);
    if (bad)
        ol += (size_t)snprintf(own + ol, sizeof own - ol, "%sunknown=%zu", ol ? " " : "", bad);
    int lo[NLARGE];
    for (int i = 0; i < NLARGE; i++)
        lo[i] = ns_node_of(large_ptr[i]);
    say("ns_node_of: small[0]=%d small[mid]=%d small[last]=%d large=%d,%d,%d,%d (small owners: %s)",
        ns_node_of(small_ptr[0]), ns_node_of(small_ptr[nsmall / 2]), ns_node_of(small_ptr[nsmall - 1]), lo[0], lo[1],
        lo[2], lo[3], own);
    for (int k = 0; k < MAXN; k++) {
        if (!(none_nodes >> k & 1))
            continue;
        int lk = 0;
        for (int i = 0; i < NLARGE; i++)
            lk += lo[i] == k;
        if (owners[k] || lk) {
            say("FAIL: ns_node_of() says node %d for %zu small and %d large blocks, want none (--expect-none)", k,
                owners[k], lk);
            failures++;
        }
    }
#endif
    check("small", KIND_SMALL, &small);
    check("large", KIND_LARGE, &large);
}

/* ================================================================ stats */
#ifndef POLICY_TEST_GLIBC
/* the JSON value starting at s (an object, array, string or scalar): its length */
static size_t json_value_len(const char *s)
{
    size_t i = 0;
    int depth = 0, in_str = 0;
    if (*s != '{' && *s != '[' && *s != '"') {
        while (s[i] && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != '\n')
            i++;
        while (i && s[i - 1] == ' ')
            i--;
        return i;
    }
    for (; s[i]; i++) {
        char ch = s[i];
        if (in_str) {
            if (ch == '\\' && s[i + 1])
                i++;
            else if (ch == '"') {
                in_str = 0;
                if (depth == 0)
                    return i + 1;
            }
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == '{' || ch == '[') {
            depth++;
        } else if (ch == '}' || ch == ']') {
            if (--depth == 0)
                return i + 1;
        }
    }
    return 0;
}

/* s points into a JSON text: the value of "key" found after s (not nested-aware:
 * the first occurrence of "key": ) */
static const char *json_find(const char *s, const char *key, size_t *len)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(s, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == '\n' || *p == '\t')
        p++;
    *len = json_value_len(p);
    return *len ? p : NULL;
}

/* Run this program again as a child with the JSON statistics going to a
 * file, pass its output through, then print the report's "config". */
static int run_child_with_stats(char **argv)
{
    char path[128];
    snprintf(path, sizeof path, "/tmp/numa_policy_test.%d.json", (int)getpid());
    unlink(path);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        setenv("NUMASLAB_STATS", "1", 1);
        setenv("NUMASLAB_STATS_FORMAT", "json", 1);
        setenv("NUMASLAB_STATS_FILE", path, 1);
        setenv("NUMA_POLICY_TEST_CHILD", "1", 1);
        execv("/proc/self/exe", argv);
        fprintf(stderr, "numa_policy_test: execv(/proc/self/exe): %s\n", strerror(errno));
        _exit(1);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    FILE *f = fopen(path, "r");
    static char text[1 << 20];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = 0;
    unlink(path);
    size_t len = 0, plen = 0;
    const char *cfg = n ? json_find(text, "config", &len) : NULL;
    if (!cfg) {
        say("FAIL: no \"config\" in numaslab's statistics (%s, %zu bytes; the child exited with %d)", path, n, rc);
        return rc ? rc : 1;
    }
    say("numaslab config: %.*s", (int)len, cfg);
    char one[8192];
    snprintf(one, sizeof one, "%.*s", (int)len, cfg);
    const char *pol = json_find(one, "policy", &plen);
    if (pol)
        say("numaslab policy: %.*s", (int)plen, pol);
    else
        say("numaslab policy: (none: the config has no \"policy\" field)");
    return rc;
}
#endif

/* ================================================================ main */
int main(int argc, char **argv)
{
    int stats = 1;
    if (argc < 2)
        usage();
    mode_text = argv[1];
    if (strcmp(argv[1], "malloc") == 0) {
    } else if (strncmp(argv[1], "onnode=", 7) == 0) {
        char *end;
        mode_onnode = parse_node(argv[1] + 7, &end);
        if (mode_onnode < 0 || *end)
            usage();
#ifdef POLICY_TEST_GLIBC
        fputs("numa_policy_test_glibc: onnode= needs numaslab\n", stderr);
        return 2;
#endif
    } else if (strncmp(argv[1], "thread=", 7) == 0) {
        char *end;
        mode_thread = parse_node(argv[1] + 7, &end);
        if (mode_thread < 0 || *end)
            usage();
    } else {
        usage();
    }
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-stats") == 0) {
            stats = 0;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--expect") == 0)
            add_expect(KIND_SMALL | KIND_LARGE, v);
        else if (strcmp(a, "--expect-small") == 0)
            add_expect(KIND_SMALL, v);
        else if (strcmp(a, "--expect-large") == 0)
            add_expect(KIND_LARGE, v);
        else if (strcmp(a, "--expect-none") == 0) {
            uint64_t b = parse_nodelist(v);
            if (!b)
                usage();
            none_nodes |= b;
        } else if (strcmp(a, "--label") == 0)
            label = v;
        else
            usage();
    }
#ifdef POLICY_TEST_GLIBC
    (void)stats;
#else
    if (stats && !getenv("NUMA_POLICY_TEST_CHILD"))
        return run_child_with_stats(argv);
#endif

    if (numa_available() < 0)
        die("libnuma: numa_available() < 0 (no NUMA support in this kernel?)");
    read_topology();
    if (mode_thread >= 0 && (!is_online(mode_thread) || CPU_COUNT(&node_cpus[mode_thread]) == 0))
        die("thread=%d: node %d is not online or has no CPUs", mode_thread, mode_thread);
    if (mode_onnode >= 0 && !is_online(mode_onnode))
        die("onnode=%d: node %d is not online", mode_onnode, mode_onnode);
    print_env();

    small_ptr = xmap(MAX_SMALL * sizeof *small_ptr);
    small_size = xmap(MAX_SMALL * sizeof *small_size);
    if (mode_thread >= 0) {
        pthread_t t;
        int e = pthread_create(&t, NULL, work, NULL);
        if (e)
            die("pthread_create: %s", strerror(e));
        pthread_join(t, NULL);
    } else {
        work(NULL);
    }
    measure();
    if (failures)
        say("FAIL: %d expectation(s) not met", failures);
    else
        say("OK");
    return failures ? 1 : 0;
}
