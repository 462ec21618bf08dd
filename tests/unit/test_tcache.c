/* test_tcache.c - thread caches through ns_malloc/ns_free, inspected through
 * tcache_tls (this thread's cache) and the node pool's bins. */
#include <pthread.h>

#include "unit_util.h"

static int setup(void **state)
{
    unit_start();
    assert_non_null(tcache_get());
    return 0;
}

/* The README's bound: NUMASLAB_TCACHE_BYTES of blocks (2..512), or up to
 * 32 blocks within 4x that for blocks above 2 KiB. */
static uint32_t cap_limit(unsigned cls)
{
    uint64_t size = sizeclass_size[cls], c = (uint64_t)options.tcache_bytes / size;
    uint64_t big = 4 * (uint64_t)options.tcache_bytes / size;
    if (c < 32 && size > 2048)
        c = big < 32 ? big : 32;
    return c < 2 ? 2 : c > 512 ? 512 : (uint32_t)c;
}

static void test_lifo_reuse(void **state)
{
    void *p = ns_malloc(100);
    assert_non_null(p);
    ns_free(p);
    void *q = ns_malloc(100);
    assert_ptr_equal(q, p);
    /* same class, different request size (97..112 -> 112) */
    ns_free(q);
    q = ns_malloc(97);
    assert_ptr_equal(q, p);
    ns_free(q);
    q = ns_malloc(112);
    assert_ptr_equal(q, p);
    /* LIFO order over several blocks */
    void *a = ns_malloc(100), *b = ns_malloc(100), *c = ns_malloc(100);
    ns_free(a);
    ns_free(b);
    ns_free(c);
    assert_ptr_equal(ns_malloc(100), c);
    assert_ptr_equal(ns_malloc(100), b);
    assert_ptr_equal(ns_malloc(100), a);
    ns_free(a);
    ns_free(b);
    ns_free(c);
    ns_free(q);
}

static void test_blocks_from_this_node(void **state)
{
    enum { N = 3000 };
    void **v = calloc(N, sizeof *v);
    for (int i = 0; i < N; i++) {
        v[i] = ns_malloc(48);
        assert_non_null(v[i]);
        assert_int_equal(ns_node_of(v[i]), 0);
        assert_int_equal(slab_of((uintptr_t)v[i])->cls, sizeclass_of(48));
        assert_int_equal(slab_of((uintptr_t)v[i])->node, (uint32_t)tcache_tls->node);
        assert_int_equal((uintptr_t)v[i] % 16, 0);
    }
    /* all distinct */
    for (int i = 0; i < N; i++)
        memset(v[i], 0xa5, 48);
    for (int i = 0; i < N; i++) {
        unsigned char *c = v[i];
        for (int k = 0; k < 48; k++)
            assert_int_equal(c[k], 0xa5);
        memset(v[i], i & 0xff, 48);
    }
    for (int i = 0; i < N; i++) {
        unsigned char *c = v[i];
        for (int k = 0; k < 48; k++)
            if (c[k] != (i & 0xff))
                fail_msg("block %d overlaps another block", i);
    }
    for (int i = 0; i < N; i++)
        ns_free(v[i]);
    free(v);
}

static void check_counts(void)
{
    for (unsigned c = 0; c < NS_CLASSES; c++) {
        tbin_t *b = &tcache_tls->bins[c];
        if (tbin_count(b) > b->cap)
            fail_msg("class %u: count %u > cap %u", c, tbin_count(b), b->cap);
        if (b->cap > cap_limit(c))
            fail_msg("class %u: cap %u > limit %u", c, b->cap, cap_limit(c));
        uint32_t n = 0;
        for (void **p = b->head; p; p = p[0])
            if (++n > tbin_count(b))
                break;
        if (n != tbin_count(b))
            fail_msg("class %u: list length %u != count %u", c, n, tbin_count(b));
    }
}

static void test_count_never_exceeds_cap(void **state)
{
    enum { N = 5000 };
    void **v = calloc(N, sizeof *v);
    unsigned sizes[] = {16, 64, 1000, 5000, 40000, 200000};
    for (unsigned s = 0; s < 6; s++) {
        unsigned cls = sizeclass_of(sizes[s]);
        int n = sizes[s] > 10000 ? 300 : N;
        for (int i = 0; i < n; i++)
            assert_non_null(v[i] = ns_malloc(sizes[s]));
        for (int i = 0; i < n; i++) {
            ns_free(v[i]);
            tbin_t *b = &tcache_tls->bins[cls];
            if (tbin_count(b) > b->cap)
                fail_msg("size %u: count %u > cap %u after %d frees", sizes[s], tbin_count(b), b->cap, i + 1);
        }
        check_counts();
    }
    free(v);
}

/* Alloc/free bursts bigger than the cache: refills and flushes every burst. */
static void burst(size_t size, int n, int rounds)
{
    void **v = calloc((size_t)n, sizeof *v);
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < n; i++)
            assert_non_null(v[i] = ns_malloc(size));
        for (int i = 0; i < n; i++)
            ns_free(v[i]);
    }
    free(v);
}

/* A class that refills and flushes every burst doubles its capacity up to
 * the bound the README gives (`limit`), and no further. */
static void hot_class_grows(size_t size, int burst_n, uint32_t limit)
{
    unsigned cls = sizeclass_of(size);
    uint32_t cap0 = tcache_tls->bins[cls].cap;
    assert_true(cap0 < limit);
    uint32_t maxcap = cap0;
    for (int r = 0; r < 60 && maxcap < limit; r++) {
        burst(size, burst_n, 1);
        if (tcache_tls->bins[cls].cap > maxcap)
            maxcap = tcache_tls->bins[cls].cap;
        check_counts();
    }
    print_message("class %u (%zu B): cap %u -> %u (limit %u)\n", cls, size, cap0, maxcap, limit);
    assert_true(maxcap > cap0);
    assert_int_equal(maxcap, limit);          /* doubled up to the bound */
    assert_true(tcache_tls->bins[cls].cap <= limit);
}

/* 80-byte blocks: 64 KiB holds 819, the most a class caches is 512 */
static void test_hot_class_grows(void **state)
{
    hot_class_grows(80, 3000, 512);
}

/* 16000-byte blocks (the 16 KiB class): 16 of them (up to 32 within
 * 4 x 64 KiB), not the 4 that 64 KiB holds */
static void test_hot_big_class_grows(void **state)
{
    hot_class_grows(16000, 200, 16);
}

static void test_idle_class_shrinks(void **state)
{
    unsigned idle = sizeclass_of(300), hot = sizeclass_of(1500);
    /* park blocks in the idle class */
    enum { K = 40 };
    void *v[K];
    for (int i = 0; i < K; i++)
        assert_non_null(v[i] = ns_malloc(300));
    for (int i = 0; i < K; i++)
        ns_free(v[i]);
    tbin_t *b = &tcache_tls->bins[idle];
    uint32_t count0 = tbin_count(b), cap0 = b->cap;
    uint64_t used0 = bin_used(idle);
    assert_true(count0 >= K / 2);
    /* slow-path events on another class only: at least 3 capacity
     * reviews (one every TCACHE_TICK events; a burst refills and flushes
     * the hot class at least once per 64 blocks) */
    for (int r = 0; r < 3 * TCACHE_TICK * 64 / 400 + 8; r++)
        burst(1500, 400, 1);
    print_message("idle class %u: count %u -> %u, cap %u -> %u, bin used %lu -> %lu\n", idle, count0, tbin_count(b),
                  cap0, b->cap, (unsigned long)used0, (unsigned long)bin_used(idle));
    assert_true(tbin_count(b) < count0);
    assert_true(b->cap < cap0);
    assert_true(b->cap >= 2);
    /* the blocks it gave back went to the bin */
    assert_int_equal(bin_used(idle), used0 - (count0 - tbin_count(b)));
    (void)hot;
    check_counts();
}

/* A class in use that meets no slow path of its own between reviews (its
 * blocks come and go on the fast paths while another class makes the
 * events) keeps its blocks and its capacity: halving it would make it
 * flush and refill a few blocks at a time. */
static void test_used_class_keeps(void **state)
{
    enum { K = 40 };
    void *v[K];
    for (int i = 0; i < K; i++)
        assert_non_null(v[i] = ns_malloc(700));
    for (int i = 0; i < K; i++)
        ns_free(v[i]);
    unsigned cls = sizeclass_of(700);
    tbin_t *b = &tcache_tls->bins[cls];
    uint32_t count0 = tbin_count(b), cap0 = b->cap;
    assert_true(count0 >= K / 2);
    uint64_t rounds = 0;
    for (int r = 0; r < 3 * TCACHE_TICK * 64 / 400 + 8; r++) {
        char *p = ns_malloc(700);          /* a pop and a push: no event */
        assert_non_null(p);
        memset(p, r, 700);
        ns_free(p);
        burst(1500, 400, 1);
        rounds++;
    }
    print_message("used class %u: count %u -> %u, cap %u -> %u over %lu rounds\n", cls, count0, tbin_count(b), cap0,
                  b->cap, (unsigned long)rounds);
    assert_true(b->cap >= cap0);   /* may have grown at the first look: the fill refilled */
    assert_int_equal(tbin_count(b), count0);
    check_counts();
}

static void double_free_child(void *arg)
{
    size_t size = (size_t)(uintptr_t)arg;
    void *p = ns_malloc(size);
    void *q = ns_malloc(size);
    ns_free(p);
    ns_free(q);
    ns_free(p);     /* must abort */
    _exit(0);
}

static void test_double_free_detected(void **state)
{
    size_t sizes[] = {16, 64, 1024, 20000};
    for (int i = 0; i < 4; i++) {
        char err[512];
        int st = run_in_child(double_free_child, (void *)(uintptr_t)sizes[i], err, sizeof err);
        if (!died_of(st, SIGABRT))
            fail_msg("double free of a %zu-byte block: child status %#x, stderr '%s'", sizes[i], st, err);
        assert_non_null(strstr(err, "double free"));
    }
}

/* The block was flushed to its slab's free list (bin_holds path): another
 * block of the slab stays live so the slab is not released. */
static void double_free_flushed_child(void *arg)
{
    void *keep = ns_malloc(64);
    void *p = ns_malloc(64);
    ns_free(p);
    tcache_flush_all(tcache_tls);
    assert_int_equal(tbin_count(&tcache_tls->bins[sizeclass_of(64)]), 0);
    ns_free(p);
    (void)keep;
    _exit(0);
}

static void test_double_free_after_flush_detected(void **state)
{
    char err[512];
    int st = run_in_child(double_free_flushed_child, NULL, err, sizeof err);
    if (!died_of(st, SIGABRT))
        fail_msg("double free of a flushed block: child status %#x, stderr '%s'", st, err);
    assert_non_null(strstr(err, "double free"));
}

/* A free of a live block whose word 1 happens to look like the key is not
 * a double free. */
static void test_key_lookalike_is_not_double_free(void **state)
{
    void **p = ns_malloc(64);
    p[1] = (void *)block_mark;
    ns_free(p);
    assert_ptr_equal(ns_malloc(64), p);
    ns_free(p);
}

struct exit_arg {
    size_t size;
    int n;
};

static void *exit_thread(void *arg)
{
    struct exit_arg *a = arg;
    void **v = calloc((size_t)a->n, sizeof *v);
    for (int i = 0; i < a->n; i++)
        v[i] = ns_malloc(a->size);
    for (int i = 0; i < a->n; i++)
        ns_free(v[i]);
    /* blocks are still cached here */
    assert_true(tcache_get() != NULL);
    free(v);
    return NULL;
}

static void test_thread_exit_flushes(void **state)
{
    size_t sizes[] = {48, 208, 3072};
    for (int s = 0; s < 3; s++) {
        unsigned cls = sizeclass_of(sizes[s]);
        uint64_t used0 = bin_used(cls), threads0 = tcache_count();
        struct exit_arg a = {sizes[s], 10000};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, exit_thread, &a), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        if (bin_used(cls) != used0)
            fail_msg("size %zu: bin used_blocks %lu after the thread exited, %lu before", sizes[s],
                     (unsigned long)bin_used(cls), (unsigned long)used0);
        assert_int_equal(tcache_count(), threads0);
    }
}

/* Many short threads: none leaves blocks behind. */
static void test_thread_churn(void **state)
{
    unsigned cls = sizeclass_of(32);
    uint64_t used0 = bin_used(cls);
    for (int r = 0; r < 20; r++) {
        pthread_t th[8];
        struct exit_arg a = {32, 500};
        for (int i = 0; i < 8; i++)
            assert_int_equal(pthread_create(&th[i], NULL, exit_thread, &a), 0);
        for (int i = 0; i < 8; i++)
            pthread_join(th[i], NULL);
    }
    assert_int_equal(bin_used(cls), used0);
}

/* A destructor that runs after the thread's cache is gone (its key is
 * created after the allocator's) still allocates and frees, straight from
 * and to the bins, and leaves nothing behind. */
static pthread_key_t late_key;
static _Atomic int late_ran;

static void late_destructor(void *arg)
{
    assert_int_equal(tcache_tls->kind, NS_TC_DEAD);
    void *v[100];
    for (int i = 0; i < 100; i++) {
        v[i] = ns_malloc(24);
        if (!v[i])
            abort();
        memset(v[i], 1, 24);
    }
    for (int i = 0; i < 100; i++)
        ns_free(v[i]);
    assert_int_equal(tcache_tls->kind, NS_TC_DEAD);
    atomic_store(&late_ran, 1);
}

static void *late_thread(void *arg)
{
    void *p = ns_malloc(24);
    ns_free(p);
    pthread_setspecific(late_key, (void *)1);
    return NULL;
}

/* A thread whose first call in a class is the free of a block another
 * thread allocated (a hand-over) does not reuse that block first: its list
 * starts with a batch of its own and the handed-over block sits at the tail
 * (passive false sharing: the block's cache-line neighbours belong to other
 * threads). */
struct handover {
    void *given;
    void *got;
    bool at_tail;
    uint32_t count;
    int errno_after;
};

static void *handover_thread(void *arg)
{
    struct handover *h = arg;
    errno = 4242;               /* free() refills here, and keeps errno */
    ns_free(h->given);
    h->errno_after = errno;
    tbin_t *b = &tcache_tls->bins[sizeclass_of(48)];
    void **t = b->head;
    while (t && t[0])
        t = t[0];
    h->at_tail = t == h->given;
    h->count = tbin_count(b);
    h->got = ns_malloc(48);
    return NULL;
}

static void test_handed_over_block_not_reused_first(void **state)
{
    (void)state;
    void *given[2] = {ns_malloc(48), ns_malloc(48)};   /* neighbours */
    struct handover h[2] = {{.given = given[0]}, {.given = given[1]}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, handover_thread, &h[i]), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_true(h[i].at_tail);
        assert_int_equal(h[i].errno_after, 4242);
        assert_true(h[i].count > 1);
        assert_ptr_not_equal(h[i].got, given[0]);
        assert_ptr_not_equal(h[i].got, given[1]);
    }
    assert_ptr_not_equal(h[0].got, h[1].got);
    ns_free(h[0].got);
    ns_free(h[1].got);
}

/* A thread that only frees blocks this one allocated: n hand-overs of
 * `size` bytes.  It checks its cache's room and count after every free
 * and notes the most blocks it held. */
struct handover_many {
    void **v;
    size_t size;
    int n;
    bool ok;
    uint32_t max_count;
};

static void *handover_many_thread(void *arg)
{
    struct handover_many *h = arg;
    unsigned cls = sizeclass_of(h->size);
    h->ok = true;
    for (int i = 0; i < h->n; i++) {
        ns_free(h->v[i]);
        tbin_t *b = &tcache_tls->bins[cls];
        if (b->room > b->cap || tbin_count(b) > b->cap) {
            print_message("after %d frees: room %u cap %u\n", i + 1, b->room, b->cap);
            h->ok = false;
            break;
        }
        if (tbin_count(b) > h->max_count)
            h->max_count = tbin_count(b);
    }
    return NULL;
}

static struct handover_many hand_over(size_t size, int n)
{
    struct handover_many h = {malloc((size_t)n * sizeof(void *)), size, n, false, 0};
    assert_non_null(h.v);
    for (int i = 0; i < n; i++) {
        assert_non_null(h.v[i] = ns_malloc(size));
        memset(h.v[i], 0x5a, size);
    }
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, handover_many_thread, &h), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    free(h.v);
    h.v = NULL;
    return h;
}

/* Hand-overs past its capacity (the first free refills from a slab of its
 * own, the others overflow): the thread never holds more than its
 * capacity, and every block goes home. */
static void test_free_only_thread_within_capacity(void **state)
{
    (void)state;
    unsigned cls = sizeclass_of(48);
    tcache_flush_all(tcache_tls);
    uint64_t used0 = bin_used(cls);
    struct handover_many h = hand_over(48, 6000);
    assert_true(h.ok);
    /* every block went home: the ones on remote stacks are drained when
     * this thread gives its slab back and the bin drains its own */
    assert_int_equal(tcache_validate_heap(), heap_free_blocks());
    ns_release();
    assert_int_equal(bin_used(cls), used0);
}

/* A consumer: a thread that frees blocks of a class it does not allocate
 * (60000 hand-overs of 256 bytes) caches at most 16 KiB of them (64
 * blocks, where a class it allocates grows to 64 KiB: 256), and flushes
 * them whole; so a producer/consumer pair holds its blocks in flight, not
 * a cache's worth per class in the consumer (tcache.c, transit). */
static void test_consumer_caches_little(void **state)
{
    (void)state;
    assert_int_equal(sizeclass_size[sizeclass_of(256)], 256);
    struct handover_many h = hand_over(256, 60000);
    assert_true(h.ok);
    print_message("the consumer held at most %u blocks of 256 bytes\n", h.max_count);
    assert_true(h.max_count >= 2);                  /* it did cache */
    assert_true(h.max_count <= 16384 / 256);
    assert_int_equal(tcache_validate_heap(), heap_free_blocks());
}

static void test_alloc_after_cache_destroyed(void **state)
{
    unsigned cls = sizeclass_of(24);
    assert_int_equal(pthread_key_create(&late_key, late_destructor), 0);
    uint64_t used0 = bin_used(cls);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, late_thread, NULL), 0);
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&late_ran), 1);
    assert_int_equal(bin_used(cls), used0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lifo_reuse),
        cmocka_unit_test(test_blocks_from_this_node),
        cmocka_unit_test(test_count_never_exceeds_cap),
        cmocka_unit_test(test_hot_class_grows),
        cmocka_unit_test(test_hot_big_class_grows),
        cmocka_unit_test(test_idle_class_shrinks),
        cmocka_unit_test(test_used_class_keeps),
        cmocka_unit_test(test_double_free_detected),
        cmocka_unit_test(test_double_free_after_flush_detected),
        cmocka_unit_test(test_key_lookalike_is_not_double_free),
        cmocka_unit_test(test_thread_exit_flushes),
        cmocka_unit_test(test_thread_churn),
        cmocka_unit_test(test_alloc_after_cache_destroyed),
        cmocka_unit_test(test_handed_over_block_not_reused_first),
        cmocka_unit_test(test_free_only_thread_within_capacity),
        cmocka_unit_test(test_consumer_caches_little),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
