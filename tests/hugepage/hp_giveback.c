/* hp_giveback.c - when the OS refuses a mapping, numaslab gives back what
 * it keeps and tries once more (issue 14; DESIGN.md invariants 1 and 13).
 *
 * Run with NUMASLAB_BACKGROUND=0, a long NUMASLAB_DECAY_MS and a large
 * NUMASLAB_LARGE_CACHE, so that nothing goes back by itself.  RLIMIT_AS is
 * lowered to VmSize + 112 MiB; the kernel's own accounting (VmSize) is the
 * truth each step is checked against:
 *   1. 30 MiB of small blocks, all freed: the SuperSlab reservations they
 *      needed stay.  A large block that fits under the limit only if they
 *      go back (VmSize + its mapping > limit) must succeed; freed, it stays
 *      in the large cache (VmSize does not drop).
 *   2. A larger block that fits only if that cached mapping goes back must
 *      succeed (the large path); freed, it is cached in turn.
 *   3. 40 MiB of small blocks, which fit only if that mapping goes back
 *      (the small path: new SuperSlabs).
 *   3b. The same with ns_malloc_onnode (its own path to the bins): a
 *      96 MiB block cached again (the empty SuperSlabs of step 3 go back
 *      for it), then 40 MiB of small blocks on node 0.
 *   4. A block the limit cannot hold at all: NULL, errno ENOMEM.
 *   5. The process still works: small and large blocks, contents checked.
 * Exit 77 (skip) where RLIMIT_AS cannot be lowered or VmSize is unreadable. */
#include "as_util.h"

#include <numaslab.h>

#define HEADROOM ((size_t)112 << 20)
#define ALIGN_SLACK (2 * MiB)      /* a large mapping is 2 MiB aligned: mmap asks for this much more */

static size_t limit;

static void *onnode0(size_t size)
{
    return ns_malloc_onnode(size, 0);
}

/* Does a large block of `size` need more address space than the limit
 * leaves now?  Then it can only succeed if numaslab gives some back. */
static bool needs_giveback(size_t size)
{
    size_t vm = as_vmsize();
    as_say("hp_giveback: VmSize %zu KiB, a %zu MiB block maps %zu KiB, limit %zu KiB\n", vm >> 10, size >> 20,
           (size + ALIGN_SLACK) >> 10, limit >> 10);
    return vm + size + ALIGN_SLACK > limit;
}

/* A large block of `size` under the limit, filled, checked and freed
 * (so that it goes to the large cache). */
static void large_round(const char *what, size_t size)
{
    AS_CHECK(needs_giveback(size), "%s: the block would fit without a give-back: the test proves nothing", what);
    as_chain c = {0};
    errno = 0;
    bool ok = as_add(&c, size);
    AS_CHECK(ok, "%s: malloc(%zu MiB) failed (errno %d) although what numaslab keeps would make room", what,
             size >> 20, errno);
    size_t vm = as_vmsize();
    AS_CHECK(as_free_all(&c) == 0, "%s: the block was damaged", what);
    AS_CHECK(as_vmsize() + MiB >= vm, "%s: freed, the block was unmapped: NUMASLAB_LARGE_CACHE not in effect?", what);
}

int main(void)
{
    free(malloc(64));                   /* numaslab has started */
    size_t vm0 = as_vmsize();
    if (!vm0)
        as_skip("VmSize unreadable");
    limit = vm0 + HEADROOM;
    as_lower(limit);

    /* 1. reservations of SuperSlabs that hold nothing any more */
    as_chain c = {0};
    while (c.bytes < 30 * MiB)
        if (!as_add(&c, 1024))
            break;
    AS_CHECK(c.bytes >= 30 * MiB, "small blocks: only %zu KiB under the limit", c.bytes >> 10);
    AS_CHECK(as_free_all(&c) == 0, "small blocks damaged");
    large_round("1 (SuperSlab reservations)", 88 * MiB);

    /* 2. the cached 88 MiB mapping */
    large_round("2 (large cache)", 96 * MiB);

    /* 3. small blocks: the cached 96 MiB mapping makes room for SuperSlabs */
    size_t vm = as_vmsize();
    AS_CHECK(vm + 40 * MiB > limit, "3: 40 MiB of small blocks would fit without a give-back (VmSize %zu KiB)",
             vm >> 10);
    while (c.bytes < 40 * MiB)
        if (!as_add(&c, 1024))
            break;
    AS_CHECK(c.bytes >= 40 * MiB, "3: small blocks: only %zu KiB (errno %d), although the large cache would make room",
             c.bytes >> 10, errno);
    AS_CHECK(as_free_all(&c) == 0, "3: small blocks damaged");

    /* 3b. ns_malloc_onnode: the same, through its own path */
    large_round("3b (large cache, for ns_malloc_onnode)", 96 * MiB);
    vm = as_vmsize();
    AS_CHECK(vm + 40 * MiB > limit, "3b: 40 MiB of small blocks would fit without a give-back (VmSize %zu KiB)",
             vm >> 10);
    while (c.bytes < 40 * MiB)
        if (!as_add_by(&c, 1024, onnode0))
            break;
    AS_CHECK(c.bytes >= 40 * MiB, "3b: ns_malloc_onnode: only %zu KiB (errno %d), although the large cache would "
             "make room", c.bytes >> 10, errno);
    AS_CHECK(as_free_all(&c) == 0, "3b: small blocks damaged");

    /* 4. more than the limit holds */
    errno = 0;
    void *p = malloc(limit);
    int e = errno;
    AS_CHECK(p == NULL && e == ENOMEM, "malloc(%zu MiB) beyond the limit: %p, errno %d", limit >> 20, p, e);
    free(p);

    /* 5. still working */
    for (int i = 0; i < 2000; i++)
        as_add(&c, 32 + (size_t)i % 4096);
    size_t small = c.count;
    as_add(&c, 8 * MiB);
    AS_CHECK(small == 2000 && c.count == 2001, "after ENOMEM: %zu of 2001 blocks", c.count);
    AS_CHECK(as_free_all(&c) == 0, "after ENOMEM: blocks damaged");
    as_say("hp_giveback: %s\n", as_failed ? "FAILED" : "ok");
    return as_failed ? 1 : 0;
}
