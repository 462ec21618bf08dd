/* tcache.c - thread caches: creation and exit, refill, flush, adaptive
 * capacity, the free slow path for small blocks, fork.
 *
 * Each thread has a tcache_t with a LIFO list per size class holding blocks
 * of one node only (tcache.node).  malloc pops, free pushes (tiny.h); the
 * functions here run when a list is empty (refill a batch from the node's
 * bin), full (flush the half freed last back; all of it for a class the
 * thread only frees), or when the block or the thread is unusual.
 *
 * Capacity adapts per class (jemalloc's idea, driven by slow-path events
 * only, so the fast path pays nothing): every TCACHE_TICK slow-path events
 * the thread looks at each class; one that refilled or flushed often
 * doubles its capacity (up to NUMASLAB_TCACHE_BYTES worth of blocks,
 * 2..512, or CAP_BIG within 4x that; a class the thread only frees, to
 * TRANSIT_BYTES), one that saw no event and handed out no block since
 * the last look (idle) gives back half of the blocks it holds and halves
 * its capacity.  Caches are bounded, thread exit flushes them, and after
 * fork the child returns the caches of threads that no longer exist.
 *
 * Sentinels: a thread starts with tcache_tls = &tc_init (no blocks,
 * capacity 0, node -1), so both fast paths miss and land here, where the
 * real cache is created.  After its cache is destroyed at exit, a thread
 * uses &tc_dead: every call goes straight to the bins (destructors that run
 * later still allocate and free correctly).
 *
 * Other threads touch a tcache only through the list of live caches
 * (list_lock, taken before any bin lock): statistics read counts, fork's
 * child flushes dead threads'.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>

#include "tiny.h"

#define CAP_MIN 2
#define CAP_START 64
/* Slow start: a class's first refill hands out at most CAP_FIRST_BYTES of
 * blocks (at least CAP_MIN), and its next refills double the capacity up
 * to CAP_START, so a class a program uses for a few blocks touches a page
 * or two of its slab instead of 32 blocks' worth (a 4 KiB class: 1 block,
 * not 8). */
#define CAP_FIRST_BYTES 4096
#define SLOW_START_REFILLS 6    /* enough doublings from 2 to 64 */
#define HOT_EVENTS 4
/* A class of blocks above CAP_BIG_SIZE may cache up to CAP_BIG blocks
 * within CAP_BIG_FACTOR x NUMASLAB_TCACHE_BYTES (at the default: 32
 * blocks of 4 KiB, 16 of 16 KiB, 4 of 64 KiB instead of 16, 4 and 2):
 * with a few blocks per class, a program with many big sizes in use
 * spends its time refilling and flushing (rptest at one thread: 28.7 ->
 * 40 M blocks/s, tcmalloc 42 M; peak RSS +3 %). */
#define CAP_BIG 32
#define CAP_BIG_FACTOR 4
#define CAP_BIG_SIZE 2048
/* A consumer's class (transit) grows to at most this many bytes */
#define TRANSIT_BYTES 16384

/* sentinels: every direct entry at bins[0] (empty: malloc misses), a tag
 * no SuperSlab has (free misses) */
#define D1(tc) &tc.bins[0]
#define D4(tc) D1(tc), D1(tc), D1(tc), D1(tc)
#define D16(tc) D4(tc), D4(tc), D4(tc), D4(tc)
_Static_assert(NS_LUT_MAX / 16 + 1 == 65, "SENTINEL lists 65 direct entries");
#define SENTINEL(tc, k) {.direct = {D16(tc), D16(tc), D16(tc), D16(tc), D1(tc)}, .tag = 256, .node = -1, .kind = k}
static tcache_t tc_init = SENTINEL(tc_init, NS_TC_INIT);
static tcache_t tc_dead = SENTINEL(tc_dead, NS_TC_DEAD);
__thread tcache_t *tcache_tls __attribute__((tls_model("initial-exec"))) = &tc_init;

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static tcache_t *live;
static uint64_t nlive;
static uint64_t exited_allocs[NS_CLASSES];   /* list_lock */
static pthread_key_t exit_key;
static bool exit_key_ok;

static void thread_exit(void *tc);
static void countdown_restart(tcache_t *tc, uint32_t epoch);

/* ------------------------------------------------------------ start-up
 * Lazy and recursion-safe: the first malloc of the process (in the
 * dynamic loader, before any constructor) finds the init sentinel cache
 * and starts every layer here.  One thread runs the start-up; others wait
 * for it.  Nothing in it allocates through malloc: options come from
 * secure_getenv, the free mark from the auxiliary vector, pools from
 * meta.c.  The topology loads later (src/init.c's constructor). */
static _Atomic int start_state;          /* 0 none, 1 running, 2 done */
static __thread bool in_start;

static void tcache_global_init(void);

static bool start_layers(void)
{
    options_init();
    if (node_heap_init() != 0)
        return false;
    tcache_global_init();
    return true;
}

/* After start-up (the first malloc may come from the dynamic loader, before
 * any constructor): register the fork handlers once the allocator is
 * live, then load the topology once the libraries it needs have run their
 * constructors (hwloc allocates as it loads; the bootstrap pool of node 0
 * serves it). */
__attribute__((constructor)) static void tcache_constructor(void)
{
    if (tcache_start())
        node_heap_load_topology();
}

bool tcache_start(void)
{
    int state = atomic_load_explicit(&start_state, memory_order_acquire);
    if (NS_LIKELY(state == 2))
        return true;
    if (in_start)
        error_fatal("recursive start-up: malloc called while numaslab initialises", NULL);
    state = 0;
    if (atomic_compare_exchange_strong(&start_state, &state, 1)) {
        in_start = true;
        bool ok = start_layers();
        in_start = false;
        atomic_store_explicit(&start_state, ok ? 2 : 0, memory_order_release);
        if (ok)
            tcache_fork_handlers();    /* may allocate: the allocator is up */
        return ok;
    }
    while ((state = atomic_load_explicit(&start_state, memory_order_acquire)) == 1)
        sched_yield();
    return state == 2;
}

bool tcache_started(void)
{
    return atomic_load_explicit(&start_state, memory_order_acquire) == 2;
}

static uint32_t cap_max(unsigned cls)
{
    if (options.tcache_bytes == 0)
        return 0;
    uint64_t size = sizeclass_size[cls], c = (uint64_t)options.tcache_bytes / size;
    uint64_t big = (uint64_t)options.tcache_bytes * CAP_BIG_FACTOR / size;
    if (c < CAP_BIG && size > CAP_BIG_SIZE)
        c = big < CAP_BIG ? big : CAP_BIG;
    return c < CAP_MIN ? CAP_MIN : c > TCACHE_CAP_MAX ? TCACHE_CAP_MAX : (uint32_t)c;
}

static void tcache_global_init(void)
{
    node_heap_away_hook = tcache_away_flush_idle;
    exit_key_ok = pthread_key_create(&exit_key, thread_exit) == 0;
}

static void set_node(tcache_t *tc, int32_t node)
{
    tc->node = node;
    tc->own.node = (uint32_t)node;
    tc->tag = ssmap_thread_tag(node);
}

/* ------------------------------------------------------------ lifecycle */
static tcache_t *tcache_create(void)
{
    tcache_t *tc = meta_alloc(sizeof(*tc));
    if (!tc)
        return NULL;
    for (unsigned i = 0; i <= NS_LUT_MAX / 16; i++)
        tc->direct[i] = &tc->bins[sizeclass_lut[i]];
    set_node(tc, (int32_t)topo_current_node());
    tc->mark = block_mark;
    tc->kind = NS_TC_LIVE;
    countdown_restart(tc, atomic_load_explicit(&tcache_countdown_epoch, memory_order_relaxed));
    if (ns_config_hardened)
        hardened_new_key(&tc->key);
    lock_take(&list_lock, LOCK_TCACHE_LIST);
    tc->next = live;
    if (live) live->prev = tc;
    live = tc;
    nlive++;
    lock_drop(&list_lock, LOCK_TCACHE_LIST);
    tcache_tls = tc;
    if (exit_key_ok)
        pthread_setspecific(exit_key, tc);   /* may allocate: tcache_tls is set */
    return tc;
}

/* The live cache of this thread, created on first use; NULL for a thread
 * past its exit, or when start-up or the cache's memory failed. */
static tcache_t *live_cache(tcache_t *tc)
{
    if (NS_LIKELY(tc->kind == NS_TC_LIVE))
        return tc;
    if (tc->kind == NS_TC_INIT && tcache_start())
        return tcache_create();
    return NULL;
}

/* Blocks handed out by b so far (read relaxed: other threads read it for
 * statistics while its owner counts down). */
static uint64_t tbin_allocs(const tbin_t *b)
{
    uint32_t span = __atomic_load_n(&b->span, __ATOMIC_RELAXED);
    uint32_t left = __atomic_load_n(&b->left, __ATOMIC_RELAXED);
    return __atomic_load_n(&b->allocs, __ATOMIC_RELAXED) + (uint32_t)(span - left);
}

static void unlink_live(tcache_t *tc)
{
    for (unsigned c = 0; c < NS_CLASSES; c++)
        exited_allocs[c] += tbin_allocs(&tc->bins[c]);
    if (tc->prev) tc->prev->next = tc->next; else live = tc->next;
    if (tc->next) tc->next->prev = tc->prev;
    tc->prev = tc->next = NULL;
    nlive--;
}

/* ---------------------------------------------------------------- flush */
/* The block after p in the cache's list of class cls.  Default builds
 * check p's free mark before its link is read (a refill may hand over a
 * slab's free list unread: numa/bin.c, slab_take); hardened builds check
 * the next block (of that class, on the cache's node) before anyone
 * follows it. */
static void *next_cached(const tcache_t *tc, unsigned cls, void *p)
{
    if (!ns_config_hardened && !block_marked_free(p))
        error_fatal("heap corruption: a free list points at a block that is not free (write after free?)", p);
    void *n = link_get(p, &tc->key);
    if (ns_config_hardened && n)
        hardened_check_block(n, cls, (uint32_t)tc->node);
    return n;
}

/* Give back all but `keep` blocks of class cls: the ones at the list's
 * head, freed last, whose lines this thread has just written; the tail,
 * freed longest ago and likely out of the cache, stays unread until
 * malloc hands it out and the program writes it anyway.  Keeping the head
 * instead walked `keep` cold links to find the cut and then the cold tail
 * to return it, a chain of misses (tcmalloc also gives back the front of
 * its lists).  The blocks go to the slab the cache owns without a lock,
 * to other slabs through their remote stacks (numa/bin.c). */
static size_t flush_to(tcache_t *tc, unsigned cls, uint32_t keep, owner_t *o)
{
    tbin_t *b = &tc->bins[cls];
    uint32_t count = tbin_count(b);
    if (count <= keep)
        return 0;
    void **cut = NULL, *list = b->head;
    if (keep == 0) {
        b->head = NULL;
    } else {
        cut = b->head;
        for (uint32_t i = 1; i < count - keep; i++)
            cut = next_cached(tc, cls, cut);
        b->head = next_cached(tc, cls, cut);
        link_set(cut, NULL, &tc->key);
    }
    b->room = b->cap - keep;
    ns_assert(tc->node >= 0);
    if (ns_config_hardened)         /* bins take plain lists */
        for (void **p = list; p; p = p[0])
            p[0] = next_cached(tc, cls, p);
    return bin_return(o, cls, (uint32_t)tc->node, list);
}

static size_t flush_keep(tcache_t *tc, unsigned cls, uint32_t keep)
{
    return flush_to(tc, cls, keep, &tc->own);
}

/* A plain list from a bin becomes this cache's (encoded) list. */
static void *adopt_list(tcache_t *tc, void *list)
{
    if (ns_config_hardened)
        for (void **p = list; p;) {
            void **next = p[0];
            link_set(p, next, &tc->key);
            p = next;
        }
    return list;
}

size_t tcache_flush_all(tcache_t *tc)
{
    size_t bytes = 0;
    if (tc->kind != NS_TC_LIVE)
        return 0;
    for (unsigned c = 0; c < NS_CLASSES; c++)
        bytes += flush_keep(tc, c, 0);
    return bytes + owner_stop(&tc->own);
}

/* ---------------------------------------------------- adaptive capacity */
/* A class this thread frees but does not allocate (at most one refill:
 * push_behind_own's, or one malloc long ago): a consumer's, whose cached
 * blocks only wait for the next flush.  The count restarts when the
 * thread gives its slabs back (owner_stop: malloc_trim, a node change);
 * a class it does allocate is itself again after two refills. */
static bool transit(const tcache_t *tc, unsigned cls)
{
    return tc->own.cls[cls].refills <= 1;
}

static uint32_t transit_max(unsigned cls, uint32_t m)
{
    uint32_t t = (uint32_t)(TRANSIT_BYTES / sizeclass_size[cls]);
    t = t < CAP_MIN ? CAP_MIN : t;
    return t < m ? t : m;
}

static void tick(tcache_t *tc)
{
    tc->tick_events = 0;
    uint64_t now = clock_ms();
    for (unsigned c = 0; c < NS_CLASSES; c++) {
        tbin_t *b = &tc->bins[c];
        uint32_t m = cap_max(c);
        uint32_t count = tbin_count(b);
        /* handed out blocks since the last review: in use, not idle, even
         * without a slow-path event (a class that many others share the
         * reviews with may see none between two) */
        uint64_t allocs = tbin_allocs(b);
        bool used = allocs != tc->review_allocs[c];
        tc->review_allocs[c] = allocs;
        if (tc->events[c] >= HOT_EVENTS) {
            if (transit(tc, c))     /* flushes alone: a consumer's batch */
                m = transit_max(c, m);
            uint32_t cap = b->cap * 2 < m ? b->cap * 2 : m;
            if (cap > b->cap)       /* never lowered here: the count may be above m */
                b->cap = cap;
        } else if (tc->events[c] == 0 && !used && count > 0) {
            flush_keep(tc, c, count / 2);
            count = tbin_count(b);
            b->cap = b->cap / 2 < CAP_MIN ? (m < CAP_MIN ? m : CAP_MIN) : b->cap / 2;
        } else if (tc->events[c] == 0 && !used && (tc->own.cls[c].cur || tc->own.cls[c].avail) &&
                   now - tc->idle_since_ms[c] >= (uint64_t)options.decay_ms) {
            owner_release_class(&tc->own, c);  /* idle for the decay time and empty: its slabs with room go back */
        }
        if (tc->events[c] || used || !tc->idle_since_ms[c])
            tc->idle_since_ms[c] = now;
        b->room = b->cap - count;
        tc->events[c] = 0;
    }
    owner_away_flush(&tc->own);     /* remote frees parked for other nodes */
    if (ns_config_debug)
        tcache_validate(tc);
    node_heap_decay();      /* empty SuperSlabs, cached large mappings */
}

static inline void event(tcache_t *tc, unsigned cls)
{
    if (tc->events[cls] < UINT16_MAX)
        tc->events[cls]++;
    if (++tc->tick_events >= TCACHE_TICK)
        tick(tc);
}

/* --------------------------------------------------------------- refill */
/* A thread that moved to another node: return everything it caches and
 * take blocks from the new node from now on. */
static void check_node(tcache_t *tc)
{
    if (tc->spill_until_ms) {
        if (clock_ms() < tc->spill_until_ms)
            return;
        tc->spill_until_ms = 0;
    }
    uint32_t node = topo_current_node();
    if (NS_UNLIKELY(node != (uint32_t)tc->node)) {
        tcache_flush_all(tc);
        set_node(tc, (int32_t)node);
    }
}

/* The thread's node has no room: move the cache to the nearest node that
 * has some, for 100 ms, and count the spill on the home node. */
static void *spill(tcache_t *tc, unsigned cls, uint32_t want, uint32_t *got)
{
    uint32_t home = (uint32_t)tc->node, pos = 0;
    int n;
    *got = 0;
    if (options.strict)         /* NUMASLAB_STRICT: stay on the node */
        return NULL;
    while ((n = topo_nearest(home, &pos)) >= 0) {
        if (!topo_node_has_room((uint32_t)n))
            continue;
        tcache_flush_all(tc);
        set_node(tc, n);
        tc->spill_until_ms = clock_ms() + 100;
        atomic_fetch_add_explicit(&node_pool(home)->spills, 1, memory_order_relaxed);
        void *list = owned_take(&tc->own, cls, want, want, got, true);
        if (*got)
            return list;
    }
    return NULL;
}

/* node_xfer_drain's keep: a block of this node that another node's
 * thread freed joins the cache's list of its class if it has room (as if
 * this thread had freed it). */
static bool keep_in_cache(void *arg, void *blk, unsigned cls)
{
    tcache_t *tc = arg;
    tbin_t *b = &tc->bins[cls];
    if (b->room == 0)
        return false;
    tbin_push(tc, b, blk, block_mark);
    return true;
}

bool tcache_slow_start = true;

/* Fill the empty list of class cls with a batch from the slab the thread
 * owns on its node (or the nearest node with room, or the home node when
 * none has; `local`: the thread's node only, and never a new SuperSlab
 * past its room).  A class starts with capacity 0 and gets its first
 * capacity here.  When other nodes' frees are waiting, the drain may fill
 * the list up to its capacity (room 0) instead.  false: no memory. */
static bool refill(tcache_t *tc, unsigned cls, bool local)
{
    tbin_t *b = &tc->bins[cls];
    uint32_t m = cap_max(cls), start = m < CAP_START ? m : CAP_START;
    if (b->cap == 0) {
        uint32_t first = tcache_slow_start ? CAP_FIRST_BYTES / sizeclass_size[cls] : start;
        b->cap = b->room = first >= start ? start : first > CAP_MIN ? first : CAP_MIN < m ? CAP_MIN : m;
    } else if (b->cap < start && tc->own.cls[cls].refills < SLOW_START_REFILLS) {
        uint32_t cap = b->cap * 2 < start ? b->cap * 2 : start;
        b->room += cap - b->cap;        /* the count (cap - room) stays */
        b->cap = cap;
    }
    check_node(tc);
    node_pool_t *pool = node_pool((uint32_t)tc->node);
    if (atomic_load_explicit(&pool->xfer, memory_order_relaxed)) {
        node_xfer_drain(pool, &tc->own, keep_in_cache, tc);   /* other nodes' threads freed blocks of ours */
        if (b->head) {              /* the drain filled this class */
            event(tc, cls);
            return true;
        }
    }
    /* half the capacity; or a slab's whole free list, unread, while one
     * place stays free (a free right after a refill does not flush, and
     * push_behind_own has its place) */
    uint32_t want = b->cap / 2 ? b->cap / 2 : 1, got;
    uint32_t room = b->room > want ? b->room - 1 : want;
    void *list = owned_take(&tc->own, cls, want, room, &got, true);
    if (!got && topo_get() && !local)
        list = spill(tc, cls, want, &got);
    if (!got && !local)
        list = owned_take(&tc->own, cls, want, room, &got, false);
    if (!got)
        return false;
    __atomic_store_n(&tc->own.cls[cls].refills, tc->own.cls[cls].refills + 1, __ATOMIC_RELAXED);
    b->head = adopt_list(tc, list);
    ns_assert(got <= b->cap);
    b->room = b->cap - got;
    event(tc, cls);
    return true;
}

bool tcache_give_back(void)
{
    tcache_t *tc = tcache_get();
    size_t unreserved, bytes = tc ? tcache_flush_all(tc) : 0;
    bytes += node_heap_release_all(&unreserved);
    return bytes || unreserved;
}

void *tcache_alloc_uncached(unsigned cls, uint32_t node)
{
    uint32_t got;
    void **p = bin_refill(node_pool(node), cls, 1, &got);
    if (!got && tcache_give_back())
        p = bin_refill(node_pool(node), cls, 1, &got);
    if (!got)
        return NULL;
    if (ns_config_hardened)
        hardened_on_alloc(p, cls);
    p[1] = NULL;
    return p;
}

void (*tcache_slow_hook)(void);

/* ------------------------------------------------------------ countdowns */
void (*tcache_sample_hook)(void *p, unsigned cls);
uint32_t (*tcache_draw_hook)(unsigned cls);
_Atomic uint32_t tcache_countdown_epoch;

static void countdown_start(tbin_t *b, unsigned cls)
{
    uint32_t (*draw)(unsigned) = tcache_draw_hook;
    uint32_t n = draw ? draw(cls) : UINT32_MAX;   /* >= 1 */
    __atomic_store_n(&b->span, n, __ATOMIC_RELAXED);
    __atomic_store_n(&b->left, n, __ATOMIC_RELAXED);
}

/* Bank the blocks b handed out since its countdown started. */
static void countdown_bank(tbin_t *b)
{
    __atomic_store_n(&b->allocs, b->allocs + (b->span - b->left), __ATOMIC_RELAXED);
}

/* The hooks changed (the profiler started): every class of tc starts a
 * countdown of the new kind. */
static void countdown_restart(tcache_t *tc, uint32_t epoch)
{
    tc->countdown_epoch = epoch;
    for (unsigned c = 0; c < NS_CLASSES; c++) {
        countdown_bank(&tc->bins[c]);
        countdown_start(&tc->bins[c], c);
    }
}

void tcache_countdown_refresh(void)
{
    tcache_t *tc = tcache_get();
    if (tc)
        countdown_restart(tc, atomic_load_explicit(&tcache_countdown_epoch, memory_order_relaxed));
}

__attribute__((noinline, cold)) void *tcache_countdown(tcache_t *tc, tbin_t *b, void *p)
{
    unsigned cls = (unsigned)(b - tc->bins);
    void (*sample)(void *, unsigned) = tcache_sample_hook;
    countdown_bank(b);
    countdown_start(b, cls);
    if (sample)
        sample(p, cls);
    return p;
}

void *tcache_alloc_slow(tcache_t *tc, unsigned cls)
{
    if (tc->kind != NS_TC_LIVE) {
        if (!tcache_start()) {
            errno = ENOMEM;
            return NULL;
        }
        tc = live_cache(tc);
        if (!tc) {
            void *p = tcache_alloc_uncached(cls, topo_current_node());
            if (!p)
                errno = ENOMEM;
            return p;
        }
    }
    if (tcache_slow_hook)
        tcache_slow_hook();
    uint32_t epoch = atomic_load_explicit(&tcache_countdown_epoch, memory_order_relaxed);
    if (NS_UNLIKELY(tc->countdown_epoch != epoch))
        countdown_restart(tc, epoch);
    tbin_t *b = &tc->bins[cls];
    if (!ns_config_hardened && b->head && ((void **)b->head)[1] != (void *)block_mark)
        error_fatal("heap corruption: a free list points at a block that is not free (write after free?)", b->head);
    if (!b->head && cap_max(cls) == 0) {    /* caching is off */
        void *p = tcache_alloc_uncached(cls, topo_current_node());
        if (!p)
            errno = ENOMEM;
        else if (count_down(&b->left))
            p = tcache_countdown(tc, b, p);
        return p;
    }
    if (!b->head && !refill(tc, cls, false) && !(tcache_give_back() && refill(tc, cls, false))) {
        errno = ENOMEM;
        return NULL;
    }
    return tbin_pop(tc, b, cls);
}

/* ------------------------------------------------------------ free slow */
/* Is p on the cache's list of class cls?  Each block's mark is checked
 * before its link is followed (next_cached): a poisoned link is reported,
 * not followed. */
static bool tcache_holds(const tcache_t *tc, unsigned cls, void *p)
{
    uint32_t n = tbin_count(&tc->bins[cls]);
    for (void **b = tc->bins[cls].head; b && n; b = --n ? next_cached(tc, cls, b) : NULL)
        if (b == p)
            return true;
    return false;
}

bool tcache_block_is_free(void *p)
{
    uintptr_t a = (uintptr_t)p;
    slab_t *s = slab_of(a);
    tcache_t *tc = tcache_tls;
    if (ns_config_hardened && s->freemap) {
        uint64_t i = slab_index(s, a);
        return atomic_load_explicit(&s->freemap[i / 64], memory_order_acquire) & (1ull << (i % 64));
    }
    if (!block_marked_free(p))
        return false;            /* the mark of a free block is not there */
    return (tc->kind == NS_TC_LIVE && tcache_holds(tc, s->cls, p)) || bin_holds(p, &tc->own);
}

/* A block back to its slab without a cache (the thread has none, or
 * caching is off). */
static void give_back(slab_t *s, void **p)
{
    p[0] = NULL;
    block_set_free(p, block_mark);
    bin_return(NULL, s->cls, s->node, p);
}

/* The thread frees a block of a class it has not allocated yet: a block
 * another thread allocated and handed over, whose neighbours in its cache
 * line are likely in use by other threads.  Reusing it at once would make
 * the threads write to one line (passive false sharing, Hoard's
 * cache-scratch), so the list starts with a batch of the thread's own and
 * the block goes behind them (from this node's bin only: free() does not
 * spill, and keeps errno).  false: the refill failed or moved the thread
 * to another node (nothing done with p). */
static bool push_behind_own(tcache_t *tc, tbin_t *b, slab_t *s, void **p)
{
    int saved = errno;
    bool got = refill(tc, s->cls, true);
    errno = saved;
    /* a refill leaves room for one block, unless other nodes' frees
     * drained into it filled the list (then the caller flushes first) */
    if (!got || s->node != (uint32_t)tc->node || b->room == 0)
        return false;
    link_set(p, NULL, &tc->key);
    if (!b->head) {
        b->head = p;
    } else {
        void **t = b->head;
        for (void **n; (n = next_cached(tc, s->cls, t)) != NULL;)
            t = n;
        link_set(t, p, &tc->key);
    }
    block_set_free(p, block_mark);
    b->room--;
    return true;
}

void tcache_free_small(void *ptr, slab_t *s)
{
    void **p = ptr;
    tcache_t *tc = tcache_tls;
    if (!ns_config_hardened && block_marked_free(p) &&   /* hardened: the bitmap caught it */
        ((tc->kind == NS_TC_LIVE && tcache_holds(tc, s->cls, p)) || bin_holds(p, &tc->own))) {
        error_invalid("free", ptr, "double free");
        return;
    }
    if (!(tc = live_cache(tc))) {
        give_back(s, p);
        return;
    }
    tbin_t *b = &tc->bins[s->cls];
    if (s->node == (uint32_t)tc->node && b->cap == 0 && cap_max(s->cls) > 0 && push_behind_own(tc, b, s, p))
        return;
    if (s->node != (uint32_t)tc->node) {   /* another node's block (or the refill moved us) */
        bin_remote_free(&tc->own, s, p);
        return;
    }
    if (b->room == 0) {
        /* overflow: the half freed last goes home (flush_to); all of it
         * if the thread does not allocate the class (transit: nothing
         * here would be reused) */
        flush_keep(tc, s->cls, transit(tc, s->cls) ? 0 : b->cap / 2);
        event(tc, s->cls);
        if (b->room == 0) {         /* capacity 0: caching is off */
            give_back(s, p);
            return;
        }
    }
    tbin_push(tc, b, p, block_mark);
}

/* ------------------------------------------------------- exit and fork */
tcache_t *tcache_get(void)
{
    return tcache_tls->kind == NS_TC_LIVE ? tcache_tls : NULL;
}

/* The cache's destructor (a thread-specific key: glibc runs it with no
 * lock of its own held).  What the thread gave back may start the
 * release thread; the main thread ending (pthread_exit) ends it. */
static void thread_exit(void *arg)
{
    tcache_t *tc = arg;
    if (!tc || tc->kind != NS_TC_LIVE)
        return;
    tcache_flush_all(tc);
    lock_take(&list_lock, LOCK_TCACHE_LIST);
    unlink_live(tc);
    lock_drop(&list_lock, LOCK_TCACHE_LIST);
    tc->kind = NS_TC_DEAD;
    if (tcache_tls == tc)
        tcache_tls = &tc_dead;
    meta_free(tc, sizeof(*tc));
#ifdef NS_COUNT_RMW
    rmw_thread_exit();
#endif
    decay_thread_exit();
}

/* fork: the child has one thread; the slabs the others owned go back to
 * their bins (numa/bin.c owner_fork_child), then the blocks their caches
 * held, and their caches are freed. */
void tcache_fork_child(void)
{
    for (tcache_t *tc = live; tc; tc = tc->next)
        if (tc != tcache_tls)
            owner_fork_away(&tc->own);    /* onto pending lists: forwarded next */
    owner_fork_forward();
    for (tcache_t *tc = live; tc; tc = tc->next)
        if (tc != tcache_tls)
            owner_fork_forget(&tc->own);
    owner_fork_adopt(tcache_tls->kind == NS_TC_LIVE ? &tcache_tls->own : NULL);
    tcache_t *tc = live;
    while (tc) {
        tcache_t *next = tc->next;
        if (tc != tcache_tls) {
            for (unsigned c = 0; c < NS_CLASSES; c++)
                flush_to(tc, c, 0, NULL);
            unlink_live(tc);
            meta_free(tc, sizeof(*tc));
        }
        tc = next;
    }
}

void tcache_lock_list(void) { lock_take(&list_lock, LOCK_TCACHE_LIST); }
void tcache_unlock_list(bool child)
{
    lock_after_fork(&list_lock, LOCK_TCACHE_LIST, child);
}

/* ------------------------------------------------------------ statistics */
void tcache_allocs(uint64_t out[NS_CLASSES])
{
    lock_take(&list_lock, LOCK_TCACHE_LIST);
    for (unsigned c = 0; c < NS_CLASSES; c++)
        out[c] = exited_allocs[c];
    for (tcache_t *tc = live; tc; tc = tc->next)
        for (unsigned c = 0; c < NS_CLASSES; c++)
            out[c] += tbin_allocs(&tc->bins[c]);
    lock_drop(&list_lock, LOCK_TCACHE_LIST);
}

bool tcache_away_flush_idle(uint64_t age_ms)
{
    bool done = true;
    lock_take(&list_lock, LOCK_TCACHE_LIST);
    for (tcache_t *tc = live; tc; tc = tc->next)
        done &= owner_away_flush_idle(&tc->own, age_ms);
    lock_drop(&list_lock, LOCK_TCACHE_LIST);
    return done;
}

void tcache_each_live(void (*fn)(const tcache_t *tc, void *arg), void *arg)
{
    lock_take(&list_lock, LOCK_TCACHE_LIST);
    for (tcache_t *tc = live; tc; tc = tc->next)
        fn(tc, arg);
    lock_drop(&list_lock, LOCK_TCACHE_LIST);
}

uint64_t tcache_count(void)
{
    lock_take(&list_lock, LOCK_TCACHE_LIST);
    uint64_t n = nlive;
    lock_drop(&list_lock, LOCK_TCACHE_LIST);
    return n;
}
