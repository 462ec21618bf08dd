/* os.c - mapping and releasing memory (see hugepage.h for the contract).
 *
 * Aligned mappings: map size + align - page, then unmap the misaligned head
 * and the tail.  THP is requested per mapping with madvise; numaslab never
 * touches the process-wide THP setting (PR_SET_THP_DISABLE is inherited by
 * every child). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hugepage.h"

/* A fresh mapping gets a clean AddressSanitizer shadow in sanitizer
 * builds of the core: after fork, glibc reclaims the stacks of the
 * parent's other threads and may unmap them, and a later mapping at the
 * same address would still carry their stack redzones in the shadow (a
 * false report, or an ASan CHECK failure while describing it). */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define FRESH(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define FRESH(p, n) ((void)0)
#endif


static _Atomic long fault_skip;
static _Atomic long fault_fail;
static _Atomic unsigned fault_rate;      /* random mode: failures per 1000 calls */
static _Atomic uint64_t fault_rng = 0x9e3779b97f4a7c15u;

void hp_fault_set(long skip, long fail)
{
    atomic_store_explicit(&fault_skip, skip, memory_order_relaxed);
    atomic_store_explicit(&fault_fail, fail, memory_order_release);
}

void hp_fault_random(unsigned permille)
{
    atomic_store_explicit(&fault_rate, permille > 1000 ? 1000 : permille, memory_order_relaxed);
}

/* true if this call must fail (fault injection builds only).  Counted mode
 * (hp_fault_set) applies to mappings; random mode to mappings, madvise and
 * mbind alike. */
bool hp_fault(int kind)
{
    if (!ns_config_fault_injection)
        return false;
    unsigned rate = atomic_load_explicit(&fault_rate, memory_order_relaxed);
    if (rate) {
        uint64_t x = atomic_fetch_add_explicit(&fault_rng, 0x9e3779b97f4a7c15u, memory_order_relaxed);
        x ^= x >> 31;
        x *= 0xbf58476d1ce4e5b9u;
        x ^= x >> 29;
        if (x % 1000 < rate)
            return true;
    }
    if (kind != HP_FAULT_MMAP || atomic_load_explicit(&fault_fail, memory_order_acquire) == 0)
        return false;
    if (atomic_fetch_sub_explicit(&fault_skip, 1, memory_order_relaxed) > 0)
        return false;
    atomic_store_explicit(&fault_skip, 0, memory_order_relaxed);
    long f = atomic_load_explicit(&fault_fail, memory_order_relaxed);
    if (f > 0)
        atomic_fetch_sub_explicit(&fault_fail, 1, memory_order_relaxed);
    return true;
}

static bool fault_now(void) { return hp_fault(HP_FAULT_MMAP); }

/* Every mapping numaslab places itself (no MAP_FIXED) goes through here: a
 * mapping the kernel put above the address range the maps cover
 * (NS_VA_BITS) could never be found by free(), so it is given back and the
 * call fails with ENOMEM, reported once.  Linux does not do that without a
 * hint above 2^47 (x86-64) or 2^48 (arm64), which numaslab never passes. */
static void *os_mmap(size_t size, int prot, int flags)
{
    void *m = mmap(NULL, size, prot, flags, -1, 0);
    if (m != MAP_FAILED && ((uintptr_t)m + size - 1) >> NS_VA_BITS) {
        static _Atomic int told;
        munmap(m, size);
        if (!atomic_exchange_explicit(&told, 1, memory_order_relaxed))
            error_warn("the kernel placed a mapping above the address range numaslab covers",
                       NS_STR(NS_VA_BITS) " bits: the request fails with ENOMEM");
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return m;
}

/* madvise with fault injection; the caller decides what a failure means */
static int os_madvise(void *p, size_t size, int advice)
{
    if (hp_fault(HP_FAULT_MADVISE)) {
        errno = EAGAIN;
        return -1;
    }
    return madvise(p, size, advice);
}

int hp_map(size_t size, size_t align, size_t huge, void **out)
{
    if (size == 0 || size > NS_MAX_REQUEST || align > ((size_t)1 << 40))
        return ENOMEM;
    if (fault_now())
        return ENOMEM;
    size_t page = ns_page_size();
    if (align < page)
        align = page;
    size = (size + page - 1) & ~(page - 1);    /* the tail unmapped below starts on a page */
    size_t span = size + align - page;
    if (span < size)
        return ENOMEM;
    void *m = os_mmap(span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    if (m == MAP_FAILED)
        return errno == 0 ? ENOMEM : (errno == EAGAIN ? ENOMEM : errno);
    uintptr_t a = (uintptr_t)m;
    uintptr_t aligned = (a + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = aligned - a;
    size_t tail = span - head - size;
    if (head)
        munmap(m, head);
    if (tail)
        munmap((void *)(aligned + size), tail);
    if (huge > size || (aligned & NS_SS_MASK))
        huge = 0;
    if (huge)
        os_madvise((void *)aligned, huge, MADV_HUGEPAGE);
    if (huge < size)
        os_madvise((void *)(aligned + huge), size - huge, MADV_NOHUGEPAGE);
    FRESH((void *)aligned, size);
    *out = (void *)aligned;
    return 0;
}

int hp_map_at(void *p, size_t size)
{
    if (fault_now())
        return ENOMEM;
    void *m = mmap(p, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == MAP_FAILED)
        return errno == EEXIST ? EEXIST : ENOMEM;
    if (m != p) {       /* a kernel before 4.17 took the address as a hint */
        munmap(m, size);
        return EEXIST;
    }
    os_madvise(p, size, MADV_NOHUGEPAGE);
    FRESH(p, size);
    return 0;
}

int hp_thp(void *p, size_t size, bool on)
{
    return os_madvise(p, size, on ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) == 0 ? 0 : errno;
}

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

static void *os_mremap(uintptr_t from, size_t len, uintptr_t to)
{
    if (fault_now()) {      /* test builds: also in the middle of a move */
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return mremap((void *)from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP, (void *)to);
}

/* One mremap moves one VMA's pages (EFAULT if the range spans several);
 * a large mapping is a few VMAs (its huge and not-huge parts, pieces
 * mapped apart and merged), each a whole number of 2 MiB granules, so the
 * move tries the rest of the range and halves it on EFAULT.  A piece that
 * cannot move after others did is undone by moving those back: the old
 * range stayed mapped (DONTUNMAP), nobody else can have taken it. */
int hp_move(void *from, size_t size, void *to)
{
    const int flags = MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP;
    uintptr_t f = (uintptr_t)from, t = (uintptr_t)to;
    size_t done = 0;
    int err = 0;
    while (done < size) {
        size_t len = size - done;
        while (os_mremap(f + done, len, t + done) == MAP_FAILED) {
            if (errno != EFAULT || len <= NS_SS_SIZE) {
                err = errno;
                break;
            }
            len = ((len / 2) + NS_SS_MASK) & ~(size_t)NS_SS_MASK;
        }
        if (err)
            break;
        done += len;
    }
    if (!err)
        return 0;
    /* back, granule by granule (each lies in one VMA): the old range is
     * still mapped, so this cannot collide with anyone else's mapping */
    for (size_t off = 0; off < done; off += NS_SS_SIZE)
        if (mremap((void *)(t + off), NS_SS_SIZE, NS_SS_SIZE, flags, (void *)(f + off)) == MAP_FAILED)
            error_fatal("mremap could not move a half-moved large block back", from);
    return err == ENOMEM || err == EAGAIN ? ENOMEM : err;
}

int hp_unmap(void *p, size_t size)
{
    return munmap(p, size) == 0 ? 0 : errno;
}

int hp_purge(void *p, size_t size)
{
    return os_madvise(p, size, MADV_DONTNEED) == 0 ? 0 : errno;
}

/* ------------------------------------------------------------ SuperSlabs */
#ifndef MAP_HUGE_2MB
#define MAP_HUGE_2MB (21 << 26)
#endif
/* Reservations grow on demand: the first is CHUNK_MIN (8 SuperSlabs), each
 * next one twice the last, up to CHUNK_MAX.  A small process so keeps
 * little address space (RLIMIT_AS counts PROT_NONE reservations too), and
 * a large one still needs few mmaps.  When the OS refuses a reservation
 * (RLIMIT_AS, vm.max_map_count) a smaller one is tried, then a mapping of
 * its own for the SuperSlab (hp_ss_map). */
#define CHUNK_MIN ((size_t)16 << 20)
#define CHUNK_MAX ((size_t)1 << 30)
#define CHUNK_MAX_SLOTS (CHUNK_MAX / NS_SS_SIZE)
#define MAX_CHUNKS 4096                 /* about 4 TiB; past it: one mmap each */

typedef struct chunk {
    uintptr_t base;
    uint32_t nslots;                    /* its size / NS_SS_SIZE */
    uint32_t nfree;
    uint64_t free[CHUNK_MAX_SLOTS / 64];    /* bit set: slot free */
} chunk_t;

/* chunks[0..nchunks) oldest first; all under chunk_lock */
static chunk_t chunks[MAX_CHUNKS];
static uint32_t nchunks;
static size_t chunk_next = CHUNK_MIN;   /* the size of the next reservation */
static pthread_mutex_t chunk_lock = PTHREAD_MUTEX_INITIALIZER;
static int mode = OPT_PAGES_THP;
static int thp_setting = 1;

void hp_init(void)
{
    mode = (int)options.pages;
    if (ns_config_fault_injection) {       /* test builds: NUMASLAB_FAULT_RATE=permille */
        const char *r = getenv("NUMASLAB_FAULT_RATE");
        unsigned v = 0;
        for (; r && *r >= '0' && *r <= '9'; r++)
            v = v * 10 + (unsigned)(*r - '0');
        hp_fault_random(v);
    }
    char buf[128];
    thp_setting = 1;
    if (hp_read_file("/sys/kernel/mm/transparent_hugepage/enabled", buf, sizeof buf) > 0)
        thp_setting = strstr(buf, "[never]") ? 0 : strstr(buf, "[always]") ? 2 : 1;
    else
        thp_setting = 0;
}

int hp_mode(void) { return mode; }

static size_t chunk_size(const chunk_t *k) { return (size_t)k->nslots * NS_SS_SIZE; }

/* A new reservation, all its slots free: chunk_next bytes, or the largest
 * smaller one the OS grants (down to CHUNK_MIN); NULL if none.  chunk_lock
 * held. */
static chunk_t *chunk_reserve(void)
{
    if (nchunks == MAX_CHUNKS)
        return NULL;
    for (size_t size = chunk_next; size >= CHUNK_MIN; size /= 2) {
        size_t span = size + NS_SS_SIZE;        /* room to align the start */
        void *m = os_mmap(span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
        if (m == MAP_FAILED)
            continue;
        uintptr_t a = ((uintptr_t)m + NS_SS_SIZE - 1) & ~(uintptr_t)NS_SS_MASK;
        if (a > (uintptr_t)m)
            munmap(m, a - (uintptr_t)m);
        if ((uintptr_t)m + span > a + size)
            munmap((void *)(a + size), (uintptr_t)m + span - (a + size));
        chunk_t *k = &chunks[nchunks++];
        k->base = a;
        k->nslots = k->nfree = (uint32_t)(size / NS_SS_SIZE);
        memset(k->free, 0, sizeof k->free);
        for (uint32_t i = 0; i < k->nslots; i++)
            k->free[i / 64] |= 1ull << (i % 64);
        chunk_next = size < CHUNK_MAX ? size * 2 : CHUNK_MAX;
        return k;
    }
    return NULL;
}

/* A free slot, reserving a new chunk when all are taken; 0 when none can
 * be had. */
static uintptr_t slot_take(void)
{
    uintptr_t slot = 0;
    lock_take(&chunk_lock, LOCK_CHUNKS);
    chunk_t *k = NULL;
    for (uint32_t c = nchunks; c-- > 0 && !k;)      /* newest chunk first */
        if (chunks[c].nfree)
            k = &chunks[c];
    if (!k)
        k = chunk_reserve();
    for (unsigned w = 0; k && w < (k->nslots + 63) / 64; w++)
        if (k->free[w]) {
            unsigned b = (unsigned)__builtin_ctzll(k->free[w]);
            k->free[w] &= ~(1ull << b);
            k->nfree--;
            slot = k->base + (uintptr_t)(w * 64 + b) * NS_SS_SIZE;
            break;
        }
    lock_drop(&chunk_lock, LOCK_CHUNKS);
    return slot;
}

static chunk_t *chunk_of(uintptr_t p)
{
    for (uint32_t c = 0; c < nchunks; c++)
        if (p - chunks[c].base < chunk_size(&chunks[c]))
            return &chunks[c];
    return NULL;
}

static void slot_put(uintptr_t slot)
{
    lock_take(&chunk_lock, LOCK_CHUNKS);
    chunk_t *k = chunk_of(slot);
    if (k) {
        size_t i = (slot - k->base) / NS_SS_SIZE;
        k->free[i / 64] |= 1ull << (i % 64);
        k->nfree++;
    }
    lock_drop(&chunk_lock, LOCK_CHUNKS);
}

size_t hp_ss_trim(void)
{
    size_t bytes = 0;
    lock_take(&chunk_lock, LOCK_CHUNKS);
    for (uint32_t c = nchunks; c-- > 0;) {
        chunk_t *k = &chunks[c];
        if (k->nfree != k->nslots || munmap((void *)k->base, chunk_size(k)) != 0)
            continue;
        bytes += chunk_size(k);
        memmove(k, k + 1, (nchunks - c - 1) * sizeof *k);     /* keep the age order */
        nchunks--;
    }
    if (bytes) {    /* a heap that shrank grows again from the newest reservation left */
        size_t last = nchunks ? chunk_size(&chunks[nchunks - 1]) : 0;
        chunk_next = last ? (last < CHUNK_MAX ? last * 2 : CHUNK_MAX) : CHUNK_MIN;
    }
    lock_drop(&chunk_lock, LOCK_CHUNKS);
    return bytes;
}

/* Put the reservation back over a slot whose mapping failed or is released:
 * MAP_FIXED over our own range; NOREPLACE where a failed MAP_FIXED may have
 * left a hole that someone else could have taken meanwhile. */
static bool slot_reserve(uintptr_t slot, bool noreplace)
{
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (noreplace ? MAP_FIXED_NOREPLACE : MAP_FIXED);
    void *m = mmap((void *)slot, NS_SS_SIZE, PROT_NONE, flags, -1, 0);
    return m == (void *)slot;
}

static bool map_at(uintptr_t slot, bool hugetlb)
{
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | (hugetlb ? MAP_HUGETLB | MAP_HUGE_2MB : 0);
    void *m = mmap((void *)slot, NS_SS_SIZE, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (m == (void *)slot)
        return true;
    /* a failed MAP_FIXED may have unmapped the slot: reserve it again */
    if (!slot_reserve(slot, true))
        slot_reserve(slot, false);
    return false;
}

int hp_ss_map(bool hugetlb, bool fallback, bool sparse, int *backing, void **out)
{
    bool thp = mode != OPT_PAGES_NONE && !sparse;
    if (fault_now())
        return ENOMEM;
    uintptr_t slot = slot_take();
    if (!slot) {    /* no chunk: a plain aligned mapping */
        void *m;
        if (hp_map(NS_SS_SIZE, NS_SS_SIZE, thp ? NS_SS_SIZE : 0, &m) != 0)
            return ENOMEM;
        *backing = thp && thp_setting ? HP_BACK_THP : HP_BACK_BASE;
        *out = m;       /* (hp_map made it fresh) */
        return 0;
    }
    FRESH((void *)slot, NS_SS_SIZE);
    if (hugetlb && map_at(slot, true)) {
        *backing = HP_BACK_HUGETLB;
        *out = (void *)slot;
        return 0;
    }
    if ((hugetlb && !fallback) || !map_at(slot, false)) {
        slot_put(slot);
        return ENOMEM;
    }
    if (!thp) {
        os_madvise((void *)slot, NS_SS_SIZE, MADV_NOHUGEPAGE);
        *backing = HP_BACK_BASE;
    } else {
        os_madvise((void *)slot, NS_SS_SIZE, MADV_HUGEPAGE);
        *backing = thp_setting ? HP_BACK_THP : HP_BACK_BASE;
    }
    *out = (void *)slot;
    return 0;
}

bool hp_thp_possible(void) { return mode != OPT_PAGES_NONE && thp_setting; }

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

int hp_ss_collapse(void *p)
{
    return os_madvise(p, NS_SS_SIZE, MADV_COLLAPSE) == 0 ? 0 : errno;
}

void hp_ss_unmap(void *p)
{
    uintptr_t a = (uintptr_t)p;
    lock_take(&chunk_lock, LOCK_CHUNKS);
    bool in_chunk = chunk_of(a) != NULL;
    lock_drop(&chunk_lock, LOCK_CHUNKS);
    if (!in_chunk) {
        munmap(p, NS_SS_SIZE);
        return;
    }
    if (slot_reserve(a, false))
        slot_put(a);
}


#ifndef MAP_HUGE_1GB
#define MAP_HUGE_1GB (30 << 26)
#endif

int hp_map_1g(size_t size, void **out)
{
    if (fault_now())
        return ENOMEM;
    void *m = os_mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_1GB);
    if (m == MAP_FAILED)
        return ENOMEM;
    FRESH(m, size);
    *out = m;
    return 0;
}

int hp_guard(void *p, size_t size)
{
    return mprotect(p, size, PROT_NONE) == 0 ? 0 : errno;
}

int hp_mbind(void *p, size_t size, int mode_, const unsigned long *mask, unsigned long maxnode, unsigned flags)
{
    if (hp_fault(HP_FAULT_MBIND))      /* test builds: the page lands where it is touched */
        return 0;
    return syscall(SYS_mbind, p, size, mode_, mask, maxnode, flags) == 0 ? 0 : errno;
}

void hp_lock_all(void) { lock_take(&chunk_lock, LOCK_CHUNKS); }
void hp_unlock_all(bool child)
{
    lock_after_fork(&chunk_lock, LOCK_CHUNKS, child);
}

int hp_getrandom(void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        long r = syscall(SYS_getrandom, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? errno : EIO;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* membarrier(2), private expedited: registered on first use (the kernel
 * wants it once per process); false when the kernel has none (< 4.14). */
bool hp_barrier_all(void)
{
    static _Atomic int registered;      /* 0 not yet, 1 yes, -1 unavailable */
    int r = atomic_load_explicit(&registered, memory_order_acquire);
    if (r == 0) {
        r = syscall(SYS_membarrier, 16 /* MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED */, 0, 0) == 0 ? 1 : -1;
        atomic_store_explicit(&registered, r, memory_order_release);
    }
    return r > 0 && syscall(SYS_membarrier, 8 /* MEMBARRIER_CMD_PRIVATE_EXPEDITED */, 0, 0) == 0;
}

int hp_get_mempolicy(int *out_mode, unsigned long *mask, unsigned long maxnode)
{
    int m = 0;
    if (syscall(SYS_get_mempolicy, &m, mask, maxnode, NULL, 0UL) != 0)
        return errno;
    *out_mode = m & 0xff;       /* MPOL_F_STATIC_NODES etc. live in the high bits */
    return 0;
}
