/* test_introspect.c - glibc's introspection API as numaslab defines it
 * (mallinfo2, mallinfo, malloc_stats, malloc_info, mallopt), in a process
 * whose malloc is numaslab (linked against libnumaslab.so).  Truths:
 *   - what the test allocated: malloc_usable_size of each block it holds
 *     (glibc's contract: the bytes the caller may use), summed by the test;
 *     uordblks moves by exactly that once the thread's cache is flushed
 *     (ns_release), and comes back when the blocks are freed;
 *   - ns_stats_get, read with no allocation in between (the same figures);
 *   - the kernel: a freed large block's mapping is gone (msync fails with
 *     ENOMEM) after mallopt(M_TRIM_THRESHOLD, 0), and still there with the
 *     default large cache;
 *   - an independent XML parser (python3's xml.etree) for malloc_info,
 *     and the online nodes of /sys for its <node> elements. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "numaslab.h"
#include "integ_util.h"

#define NBLK 2000
#define BLK 1000
#define NBIG 3
#define BIG (3 * MiB)

static void *blk[NBLK], *big[NBIG];

static void test_mallinfo2_follows_allocations(void **state)
{
    (void)state;
    ns_release();
    struct mallinfo2 m0 = mallinfo2();
    size_t usable = 0;
    for (int i = 0; i < NBLK; i++) {
        blk[i] = malloc(BLK);
        assert_non_null(blk[i]);
        memset(blk[i], i & 0xff, BLK);
        usable += malloc_usable_size(blk[i]);
    }
    size_t big_usable = 0;
    for (int i = 0; i < NBIG; i++) {
        big[i] = malloc(BIG);
        assert_non_null(big[i]);
        memset(big[i], 0x5a, BIG);
        big_usable += malloc_usable_size(big[i]);
    }
    ns_release(); /* this thread's cached blocks go back: in use = handed out */
    struct mallinfo2 m1 = mallinfo2();
    assert_int_equal(m1.uordblks - m0.uordblks, usable + big_usable);
    assert_int_equal(m1.hblks - m0.hblks, NBIG);
    assert_true(m1.hblkhd - m0.hblkhd >= (size_t)NBIG * BIG);
    assert_true(m1.arena >= m1.uordblks + 0);
    assert_true(m1.arena - m0.arena >= usable + (size_t)NBIG * BIG);
    assert_int_equal(m1.fordblks, m1.arena - m1.uordblks);
    assert_int_equal(m1.usmblks, 0);
    /* the int version: the same figures while they fit */
    struct mallinfo mi = mallinfo();
    struct mallinfo2 m1b = mallinfo2();
    if (m1b.arena < INT_MAX) {
        assert_int_equal((size_t)mi.arena, m1b.arena);
        assert_int_equal((size_t)mi.uordblks, m1b.uordblks);
        assert_int_equal((size_t)mi.hblks, m1b.hblks);
        assert_int_equal((size_t)mi.hblkhd, m1b.hblkhd);
    }
    for (int i = 0; i < NBLK; i++) {
        assert_int_equal(((unsigned char *)blk[i])[BLK - 1], i & 0xff);
        free(blk[i]);
    }
    for (int i = 0; i < NBIG; i++)
        free(big[i]);
    ns_release();
    struct mallinfo2 m2 = mallinfo2();
    assert_int_equal(m2.uordblks, m0.uordblks);
    assert_int_equal(m2.hblks, m0.hblks);
}

static void test_mallinfo2_agrees_with_ns_stats(void **state)
{
    (void)state;
    void *keep[100];
    for (int i = 0; i < 100; i++)
        keep[i] = malloc((size_t)(i + 1) * 97);
    void *large = malloc(5 * MiB);
    ns_stats_t st;
    assert_int_equal(ns_stats_get(&st), 0);
    struct mallinfo2 m = mallinfo2(); /* nothing allocated in between */
    assert_int_equal(m.arena, st.mapped_bytes);
    assert_int_equal(m.uordblks, st.in_use_bytes);
    size_t ss = 0, hblks = 0, hblkhd = 0, cached = 0, cached_bytes = 0, empty = 0;
    for (int n = 0; n < st.nodes; n++) {
        ss += st.node[n].superslabs;
        hblks += st.node[n].large_count;
        hblkhd += st.node[n].large_bytes;
        cached += st.node[n].large_cached;
        cached_bytes += st.node[n].large_cached_bytes;
        empty += st.node[n].occupancy[0];
    }
    assert_int_equal(m.ordblks, ss);
    assert_int_equal(m.hblks, hblks);
    assert_int_equal(m.hblkhd, hblkhd);
    assert_int_equal(m.smblks, cached);
    assert_int_equal(m.fsmblks, cached_bytes);
    assert_int_equal(m.keepcost, empty * 2 * MiB);
    for (int i = 0; i < 100; i++)
        free(keep[i]);
    free(large);
}

/* Run python3 on the XML in path: well-formed, root <malloc>, one <node>
 * per online node, the class of BLK bytes with >= NBLK live blocks. */
static int check_xml(const char *path, int nodes, int min_live)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 -c '\n"
             "import sys, xml.etree.ElementTree as ET\n"
             "r = ET.parse(sys.argv[1]).getroot()\n"
             "assert r.tag == \"malloc\" and r.get(\"allocator\") == \"numaslab\", r.tag\n"
             "ns = r.findall(\"node\")\n"
             "assert len(ns) == int(sys.argv[2]), (len(ns), sys.argv[2])\n"
             "assert sum(int(n.find(\"inuse\").get(\"size\")) for n in ns) == int(r.find(\"inuse\").get(\"size\"))\n"
             "live = [int(s.get(\"live_blocks\")) for s in r.find(\"sizes\") if int(s.get(\"size\")) >= %d and "
             "int(s.get(\"size\")) < %d]\n"
             "assert live and live[0] >= int(sys.argv[3]), live\n"
             "' %s %d %d",
             BLK, BLK + 64, path, nodes, min_live);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_malloc_info_is_xml(void **state)
{
    (void)state;
    if (system("python3 -c 'import xml.etree.ElementTree' 2>/dev/null") != 0)
        skip();
    unsigned char online[SYS_NODES_MAX];
    assert_true(sys_node_online(online) > 0);
    int nodes = 0;
    for (int i = 0; i < SYS_NODES_MAX; i++)
        nodes += online[i];
    for (int i = 0; i < NBLK; i++)
        blk[i] = malloc(BLK);
    char path[] = "/tmp/ns-malloc-info-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_int_equal(malloc_info(0, f), 0);
    assert_int_equal(malloc_info(1, f), EINVAL);
    fclose(f);
    assert_int_equal(check_xml(path, nodes, NBLK), 0);
    unlink(path);
    for (int i = 0; i < NBLK; i++)
        free(blk[i]);
}

static void test_malloc_stats_on_stderr(void **state)
{
    (void)state;
    char path[] = "/tmp/ns-malloc-stats-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    struct mallinfo2 m = mallinfo2();
    malloc_stats();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[8192];
    ssize_t r = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    assert_true(r > 0);
    buf[r] = 0;
    assert_non_null(strstr(buf, "Node 0:\nsystem bytes     ="));
    const char *t = strstr(buf, "Total (incl. mmap):\nsystem bytes     =");
    assert_non_null(t);
    unsigned long long sys = strtoull(t + strlen("Total (incl. mmap):\nsystem bytes     ="), NULL, 10);
    assert_int_equal(sys, m.arena);
    assert_non_null(strstr(buf, "in use bytes     ="));
}

static int mapped(void *p)
{
    return msync((void *)((uintptr_t)p & ~(uintptr_t)4095), 4096, MS_ASYNC) == 0;
}

static void test_mallopt(void **state)
{
    (void)state;
    /* M_TRIM_THRESHOLD 0: no free large mapping is kept, the kernel has
     * no mapping at the freed block any more */
    assert_int_equal(mallopt(M_TRIM_THRESHOLD, 0), 1);
    ns_release();
    void *p = malloc(4 * MiB);
    memset(p, 1, 4 * MiB);
    assert_true(mapped(p));
    free(p);
    assert_false(mapped(p));
    assert_int_equal(mallinfo2().fsmblks, 0);
    /* back to 128 MiB: a freed large block stays mapped for reuse */
    assert_int_equal(mallopt(M_TRIM_THRESHOLD, 128 << 20), 1);
    p = malloc(4 * MiB);
    memset(p, 1, 4 * MiB);
    free(p);
    assert_true(mapped(p));
    assert_true(mallinfo2().fsmblks >= 4 * MiB);
    assert_int_equal(mallopt(M_TRIM_THRESHOLD, -1), 0);
    /* accepted, no effect */
    assert_int_equal(mallopt(M_MMAP_THRESHOLD, 1 << 20), 1);
    assert_int_equal(mallopt(M_MMAP_THRESHOLD, 64 << 20), 0);
    assert_int_equal(mallopt(M_ARENA_MAX, 4), 1);
    assert_int_equal(mallopt(M_ARENA_MAX, 0), 0);
    /* the others: 0, nothing */
    assert_int_equal(mallopt(M_MXFAST, 64), 0);
    assert_int_equal(mallopt(M_TOP_PAD, 1 << 20), 0);
    assert_int_equal(mallopt(M_PERTURB, 0x55), 0);
    assert_int_equal(mallopt(M_MMAP_MAX, 0), 0);
    assert_int_equal(mallopt(M_CHECK_ACTION, 3), 0);
    assert_int_equal(mallopt(M_ARENA_TEST, 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mallinfo2_follows_allocations),
        cmocka_unit_test(test_mallinfo2_agrees_with_ns_stats),
        cmocka_unit_test(test_malloc_info_is_xml),
        cmocka_unit_test(test_malloc_stats_on_stderr),
        cmocka_unit_test(test_mallopt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
