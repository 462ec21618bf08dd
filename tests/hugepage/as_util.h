/* as_util.h - what the address-space tests (hp_rlimit.c, hp_giveback.c)
 * share: VmSize from /proc/self/status, RLIMIT_AS lowered, and chains of
 * blocks filled with a pattern (testkit.h) that are checked before they
 * are freed.  Nothing here lives in .bss beyond a few words: these tests
 * count the address space of their own process. */
#ifndef NS_AS_UTIL_H
#define NS_AS_UTIL_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../common/testkit.h"

#define MiB ((size_t)1 << 20)

static int as_failed;

static inline void as_say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tk_vwrite(1, fmt, ap);
    va_end(ap);
}

#define AS_CHECK(cond, ...)                   \
    do {                                      \
        if (!(cond)) {                        \
            as_say("FAIL: " __VA_ARGS__);     \
            as_say("\n");                     \
            as_failed++;                      \
        }                                     \
    } while (0)

/* Exit 77: ctest reports the test as skipped. */
static inline void as_skip(const char *why)
{
    as_say("SKIP: %s\n", why);
    exit(77);
}

/* VmSize of this process in bytes (0 if unreadable); read with plain
 * system calls into a stack buffer. */
static inline size_t as_vmsize(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = 0;
    const char *p = strstr(buf, "\nVmSize:");
    return p ? (size_t)strtoull(p + 8, NULL, 10) * 1024 : 0;
}

/* Lower RLIMIT_AS (soft and hard) to `limit`; skips if the hard limit is
 * below it already. */
static inline void as_lower(size_t limit)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) != 0 || (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < limit))
        as_skip("RLIMIT_AS is below the limit this test sets");
    rl.rlim_cur = rl.rlim_max = limit;
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        as_skip("setrlimit(RLIMIT_AS) refused");
}

/* A chain of blocks: each starts with its link and its size, the rest is
 * the pattern of its id. */
typedef struct as_blk {
    struct as_blk *next;
    size_t size;
    uint64_t id;
} as_blk;

typedef struct as_chain {
    as_blk *head;
    size_t count, bytes;
} as_chain;

/* alloc(size) into the chain (size >= sizeof(as_blk)); false (errno
 * from alloc) if it failed.  Freed with free(). */
static inline bool as_add_by(as_chain *c, size_t size, void *(*alloc)(size_t))
{
    if (size < sizeof(as_blk))
        abort();
    as_blk *b = alloc(size);
    if (!b)
        return false;
    b->next = c->head;
    b->size = size;
    b->id = tk_mix64(c->count);
    tk_pat_fill((unsigned char *)(b + 1), size - sizeof *b, b->id);
    c->head = b;
    c->count++;
    c->bytes += size;
    return true;
}

static inline bool as_add(as_chain *c, size_t size)
{
    return as_add_by(c, size, malloc);
}

/* Check every block's pattern and free it; the number of damaged ones. */
static inline size_t as_free_all(as_chain *c)
{
    size_t bad = 0;
    while (c->head) {
        as_blk *b = c->head;
        c->head = b->next;
        if (tk_pat_check((const unsigned char *)(b + 1), b->size - sizeof *b, b->id) != SIZE_MAX)
            bad++;
        free(b);
    }
    c->count = c->bytes = 0;
    return bad;
}

#endif
