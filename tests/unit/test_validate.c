/* test_validate.c - the validators: they pass on a heap that went through
 * threads handing blocks to each other, and they catch a broken
 * invariant where it breaks (each corruption in a child process, which
 * must die with a "validate:" line naming the invariant). */
#include <pthread.h>

#include "unit_util.h"

enum { THREADS = 6, BLOCKS = 3000 };
static void *handed[THREADS][BLOCKS];

/* allocate in several classes, keep some, free others, and free half of
 * what the previous thread allocated (cross-thread frees) */
static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    uint64_t r = 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1);
    for (int i = 0; i < BLOCKS; i++) {
        size_t n = 16 + rnd_next(&r) % 3000;
        handed[t][i] = ns_malloc(n);
        assert_non_null(handed[t][i]);
        memset(handed[t][i], t, n < 64 ? n : 64);
        if (i % 3 == 0) {
            ns_free(handed[t][i]);
            handed[t][i] = NULL;
        }
    }
    return NULL;
}

static void test_heap_valid_after_threads(void **state)
{
    (void)state;
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    /* this thread frees what the others allocated */
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < BLOCKS; i += 2)
            if (handed[t][i]) {
                ns_free(handed[t][i]);
                handed[t][i] = NULL;
            }
    uint64_t n = tcache_validate_heap();
    print_message("heap validator: %llu free blocks on lists, each on one\n", (unsigned long long)n);
    assert_true(n > 0);
    /* it walked every list: each free block the counts know of */
    assert_int_equal(n, heap_free_blocks());
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < BLOCKS; i++)
            ns_free(handed[t][i]);
    /* (slabs that fell empty went back: fewer blocks may be left) */
    n = tcache_validate_heap();
    print_message("after the rest is freed: %llu\n", (unsigned long long)n);
    assert_int_equal(n, heap_free_blocks());
}

/* the blocks of this thread's cache list also on a slab's remote stack
 * (with the stack's length right, so that each list is valid alone): the
 * blocks on two lists.  arg 0: the stack of the slab this cache owns
 * (walked with the cache); 1: the stack of a slab of the bin, notified
 * on its pending list (walked with the bin). */
static void two_lists(void *arg)
{
    /* a class the other tests left alone (worker sizes are below 3016),
     * so that this cache's list holds blocks of the slab it owns only */
    void **q2 = ns_malloc(6000);     /* two: a class's first refill takes one block */
    void **q = ns_malloc(6000);
    ns_free(q2);
    ns_free(q);                      /* q heads this thread's cache list */
    slab_t *s = slab_of((uintptr_t)q);
    bin_t *b = &node_pool(s->node)->bins[s->cls];
    tbin_t *tb = &tcache_tls->bins[s->cls];
    void **tail = q;
    uint32_t len = 1;
    for (; tail[0]; len++)
        tail = tail[0];
    assert_true(tbin_count(tb) > 1);
    if (arg == NULL) {
        assert_ptr_equal(tcache_tls->own.cls[s->cls].cur, s);
        atomic_store(&s->remote, (uintptr_t)q | (uintptr_t)len << NS_REMOTE_COUNT_SHIFT);   /* the same chain */
    } else {
        uint32_t got;
        void **r = bin_refill(node_pool(s->node), s->cls, 1, &got);   /* the bin's */
        assert_int_equal(got, 1);
        slab_t *rs = slab_of((uintptr_t)r);
        assert_ptr_not_equal(rs, s);
        assert_null(atomic_load(&rs->owner));
        remote_push_run(rs, q, tail, len, &b->pending);
        assert_ptr_equal(atomic_load(&b->pending), rs);
    }
    tcache_validate_heap();
}

static void test_two_lists_caught(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++) {
        char err[2048];
        int st = run_in_child(two_lists, (void *)(intptr_t)k, err, sizeof err);
        print_message("child %d: %s", k, err);
        assert_true(died_of(st, SIGABRT));
        assert_non_null(strstr(err, "a free block is in exactly one list"));
        assert_non_null(strstr(err, k == 0 ? "an owned slab's remote stack" : "a slab's remote stack"));
    }
}

/* a slab's used count off by one: used == bump - |free| breaks */
static void used_off(void *arg)
{
    (void)arg;
    void *p = ns_malloc(80);
    slab_t *s = slab_of((uintptr_t)p);
    bin_t *b = &node_pool(s->node)->bins[s->cls];
    pthread_mutex_lock(&b->lock);
    s->used++;
    slab_validate(s);
    pthread_mutex_unlock(&b->lock);
}

static void test_used_count_caught(void **state)
{
    (void)state;
    char err[2048];
    int st = run_in_child(used_off, NULL, err, sizeof err);
    print_message("child: %s", err);
    assert_true(died_of(st, SIGABRT));
    /* "used == bump - |free|", or "used <= bump" when the slab was full */
    assert_non_null(strstr(err, "validate: used"));
}

/* a cached list longer than cap - room says */
static void cache_count_off(void *arg)
{
    (void)arg;
    void *p = ns_malloc(200);
    ns_free(p);
    tbin_t *b = &tcache_tls->bins[sizeclass_of(200)];
    b->room++;
    tcache_validate(tcache_tls);
}

static void test_cache_count_caught(void **state)
{
    (void)state;
    char err[2048];
    int st = run_in_child(cache_count_off, NULL, err, sizeof err);
    assert_true(died_of(st, SIGABRT));
    assert_non_null(strstr(err, "validate:"));
}

/* the byte map's tag of a SuperSlab not its node's */
static void tag_off(void *arg)
{
    (void)arg;
    void *p = ns_malloc(64);
    superslab_t *ss = superslab_of((uintptr_t)p);
    ssmap_set((uintptr_t)ss, ssmap_node_tag(ss->node + 1));
    superslab_validate(ss);
}

static void test_maps_disagree_caught(void **state)
{
    (void)state;
    char err[2048];
    int st = run_in_child(tag_off, NULL, err, sizeof err);
    assert_true(died_of(st, SIGABRT));
    assert_non_null(strstr(err, "byte map tag"));
}

int main(void)
{
    unit_start();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_valid_after_threads),
        cmocka_unit_test(test_two_lists_caught),
        cmocka_unit_test(test_used_count_caught),
        cmocka_unit_test(test_cache_count_caught),
        cmocka_unit_test(test_maps_disagree_caught),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
