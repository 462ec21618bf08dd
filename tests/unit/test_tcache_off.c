/* test_tcache_off.c - NUMASLAB_TCACHE_BYTES=0 disables thread caches: every
 * class has capacity 0, every free goes straight back to its slab.  The
 * options are read once, at start-up, which the library's constructor may
 * run before main: so main sets the variable and re-executes itself. */
#include <pthread.h>

#include "unit_util.h"

static int setup(void **state)
{
    unit_start();
    assert_int_equal(options.tcache_bytes, 0);
    return 0;
}

static void check_empty(void)
{
    tcache_t *tc = tcache_get();
    if (!tc)
        return;
    for (unsigned c = 0; c < NS_CLASSES; c++) {
        if (tc->bins[c].cap != 0)
            fail_msg("class %u: cap %u with caching off", c, tc->bins[c].cap);
        if (tbin_count(&tc->bins[c]) != 0 || tc->bins[c].head != NULL)
            fail_msg("class %u: %u blocks cached with caching off", c, tbin_count(&tc->bins[c]));
        if (tc->own.cls[c].cur || tc->own.cls[c].avail || tc->own.cls[c].full)
            fail_msg("class %u: a slab owned with caching off", c);
    }
}

static void test_free_goes_straight_back(void **state)
{
    unsigned sizes[] = {16, 64, 700, 9000, 100000};
    enum { N = 600 };
    void *v[N];
    for (unsigned s = 0; s < 5; s++) {
        unsigned cls = sizeclass_of(sizes[s]);
        uint64_t used0 = bin_used(cls);
        uint64_t refills0 = atomic_load(&node_pool(0)->bins[cls].refills);
        for (int i = 0; i < N; i++) {
            assert_non_null(v[i] = ns_malloc(sizes[s]));
            memset(v[i], 0x5a, 16);
            check_empty();
            assert_int_equal(bin_used(cls), used0 + (uint64_t)i + 1);
        }
        /* every allocation missed (the statistics' hit rate 0) */
        assert_int_equal(atomic_load(&node_pool(0)->bins[cls].refills), refills0 + N);
        for (int i = 0; i < N; i++) {
            ns_free(v[i]);
            check_empty();
            assert_int_equal(bin_used(cls), used0 + (uint64_t)(N - i - 1));
        }
    }
}

static void test_double_free_still_detected(void **state)
{
    /* the block is in its slab's free list: bin_holds finds it */
    void *keep = ns_malloc(64);
    void *p = ns_malloc(64);
    ns_free(p);
    assert_true(bin_holds(p, &tcache_get()->own));
    assert_true(bin_holds(p, NULL));
    assert_false(bin_holds(keep, NULL));
    /* no cache owns a slab: every block came from, and went back to, the bin's */
    assert_null(atomic_load(&slab_of((uintptr_t)p)->owner));
    check_empty();
    ns_free(keep);
}

static void double_free_child(void *arg)
{
    void *keep = ns_malloc(64);
    void *p = ns_malloc(64);
    ns_free(p);
    ns_free(p);
    (void)keep;
    _exit(0);
}

static void test_double_free_aborts(void **state)
{
    char err[512];
    int st = run_in_child(double_free_child, NULL, err, sizeof err);
    if (!died_of(st, SIGABRT))
        fail_msg("double free with caching off: status %#x, stderr '%s'", st, err);
    assert_non_null(strstr(err, "double free"));
}

static void *worker(void *arg)
{
    void *v[1000];
    for (int r = 0; r < 5; r++) {
        for (int i = 0; i < 1000; i++)
            v[i] = ns_malloc(128);
        check_empty();
        for (int i = 0; i < 1000; i++)
            ns_free(v[i]);
        check_empty();
    }
    return NULL;
}

static void test_threads_without_cache(void **state)
{
    unsigned cls = sizeclass_of(128);
    uint64_t used0 = bin_used(cls);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(bin_used(cls), used0);
}

int main(int argc, char **argv)
{
    const char *v = getenv("NUMASLAB_TCACHE_BYTES");
    if (!v || strcmp(v, "0") != 0) {
        setenv("NUMASLAB_TCACHE_BYTES", "0", 1);
        execv("/proc/self/exe", argv);
        perror("execv");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_free_goes_straight_back),
        cmocka_unit_test(test_double_free_still_detected),
        cmocka_unit_test(test_double_free_aborts),
        cmocka_unit_test(test_threads_without_cache),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
