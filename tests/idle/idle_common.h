/* idle_common.h - helpers shared by the tests in tests/idle (an idle
 * process gives back: the background release thread).
 *
 * What the tests believe comes from the kernel, never from numaslab's own
 * counters: the resident set from /proc/self/statm (pread on a descriptor
 * opened once), the threads from /proc/self/task (getdents64) and their
 * names from /proc/self/task/TID/comm.  None of these helpers calls
 * malloc or stdio, so a test can measure while it makes no allocator call
 * at all (the point of an idle process); messages go out with one
 * write(2) (testkit.h), after the measuring.
 *
 * Exit status of every test: 0 pass, 77 skip, anything else fail.
 */
#ifndef IDLE_COMMON_H
#define IDLE_COMMON_H

#ifndef _GNU_SOURCE
#error "define _GNU_SOURCE before including idle_common.h"
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "testkit.h"

#define ID_FN static __attribute__((unused))
#define ID_SKIP 77
#define ID_MIB ((uint64_t)1 << 20)
/* the thread numaslab names (src/numa/decay.c) */
#define ID_THREAD_NAME "numaslab-decay"

static const char *id_prog = "idle";
static int id_failures;

/* One line on stderr, "prog: ...", one write(2) (tk_vwrite). */
__attribute__((format(printf, 1, 2))) ID_FN void id_log(const char *fmt, ...)
{
    char f[512];
    snprintf(f, sizeof f, "%s: %s\n", id_prog, fmt);
    va_list ap;
    va_start(ap, fmt);
    tk_vwrite(2, f, ap);
    va_end(ap);
}

/* A check: a failed one is reported and counted. */
#define ID_CHECK(cond, ...)                      \
    do {                                         \
        if (!(cond)) {                           \
            id_failures++;                       \
            id_log("FAIL: " __VA_ARGS__);        \
        } else {                                 \
            id_log("ok: " __VA_ARGS__);          \
        }                                        \
    } while (0)

ID_FN int id_finish(void)
{
    if (id_failures)
        id_log("%d check(s) failed", id_failures);
    else
        id_log("passed");
    return id_failures ? 1 : 0;
}

ID_FN uint64_t id_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

ID_FN void id_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* ------------------------------------------------------------ the kernel */

static int id_statm = -1;

/* Resident KiB of this process: field 2 of /proc/self/statm (pages). */
ID_FN uint64_t id_rss_kib(void)
{
    if (id_statm < 0 && (id_statm = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)) < 0)
        return 0;
    char b[128];
    ssize_t n = pread(id_statm, b, sizeof b - 1, 0);
    if (n <= 0)
        return 0;
    b[n] = 0;
    const char *p = b;
    while (*p && *p != ' ')
        p++;
    uint64_t pages = 0;
    for (p++; *p >= '0' && *p <= '9'; p++)
        pages = pages * 10 + (uint64_t)(*p - '0');
    return pages * (uint64_t)sysconf(_SC_PAGESIZE) / 1024;
}

struct id_dirent64 {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

/* The threads of this process (entries of /proc/self/task); *ours: how
 * many of them are named ID_THREAD_NAME (may be NULL). */
ID_FN int id_threads(int *ours)
{
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[4096];
    int count = 0, named = 0;
    long n;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            struct id_dirent64 *d = (struct id_dirent64 *)(buf + off);
            off += d->reclen;
            if (d->name[0] == '.')
                continue;
            count++;
            char path[64] = "/proc/self/task/", comm[32];
            size_t k = strlen(path);
            for (const char *s = d->name; *s && k < sizeof path - 6; s++)
                path[k++] = *s;
            memcpy(path + k, "/comm", 6);
            int cf = open(path, O_RDONLY | O_CLOEXEC);
            if (cf >= 0) {
                ssize_t m = read(cf, comm, sizeof comm - 1);
                close(cf);
                if (m > 0) {
                    comm[m] = 0;
                    if (comm[m - 1] == '\n')
                        comm[m - 1] = 0;
                    named += strcmp(comm, ID_THREAD_NAME) == 0;
                }
            }
        }
    }
    close(fd);
    if (ours)
        *ours = named;
    return count;
}

/* Poll (every 50 ms, no allocator call) until the RSS is at most
 * limit_kib or timeout_ms passed since `from_ms`; returns the RSS seen
 * last and sets *at_ms to when it got there (or the timeout). */
ID_FN uint64_t id_wait_rss(uint64_t limit_kib, uint64_t from_ms, uint64_t timeout_ms, uint64_t *at_ms)
{
    uint64_t rss;
    for (;;) {
        rss = id_rss_kib();
        uint64_t now = id_now_ms();
        if (rss <= limit_kib || now - from_ms >= timeout_ms) {
            *at_ms = now - from_ms;
            return rss;
        }
        id_sleep_ms(50);
    }
}

/* ------------------------------------------------------------ the heap */

/* Room for the pointers of a heap of `bytes` in blocks of at least
 * `min` bytes, from mmap (not the allocator under test), touched. */
ID_FN void **id_slots(uint64_t bytes, size_t min, size_t *cap)
{
    *cap = bytes / min + 16;
    void **v = mmap(NULL, *cap * sizeof *v, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (v == MAP_FAILED) {
        id_log("FAIL: mmap of %zu slots: %s", *cap, strerror(errno));
        exit(1);
    }
    memset(v, 0, *cap * sizeof *v);
    return v;
}

/* `bytes` of small blocks of mixed sizes (lo..hi, uniform), each written
 * whole, into v; returns their number (exits on malloc failure). */
ID_FN size_t id_fill(void **v, size_t cap, uint64_t bytes, size_t lo, size_t hi, uint64_t seed)
{
    tk_rng r;
    tk_rng_seed(&r, seed);
    size_t n = 0;
    for (uint64_t got = 0; got < bytes && n < cap; n++) {
        size_t sz = (size_t)tk_range(&r, lo, hi);
        v[n] = malloc(sz);
        if (!v[n]) {
            id_log("FAIL: malloc(%zu) after %zu blocks", sz, n);
            exit(1);
        }
        memset(v[n], (int)(n & 0xff) | 1, sz);
        got += sz;
    }
    return n;
}

/* Free v[0..n) in the order they were allocated. */
ID_FN void id_free_all(void **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
        v[i] = NULL;
    }
}

#endif
