/* test_remote.c - the remote-free stack of a slab (many producers, one
 * consumer) and the bin.pending notification protocol (remote.c):
 *   - every pushed block is taken exactly once;
 *   - the NOTIFIED bit is set by the first push after a clear, and that push
 *     (only that one) puts the slab on bin.pending;
 *   - remote_take(clear=false) keeps the bit, remote_take(clear=true) drops it;
 *   - the length that rides in the stack's word is the number of blocks on it.
 * The slab is a real one (superslab_new + slab_carve), the bin a local one. */
#include <pthread.h>

#include "unit_util.h"

#define PRODUCERS 16          /* more than the 2 cores */
#define ROUNDS 10

static superslab_t *ss;
static slab_t *slab;
static bin_t bin;             /* pending starts NULL */
static uint32_t nblocks;
static _Atomic int go;
static _Atomic unsigned done_producers;

static int setup(void **state)
{
    unit_start();
    ss = unit_superslab_new(0);
    assert_non_null(ss);
    /* 16-byte blocks in an 8-unit run: 32768 real blocks (the stack's
     * length field holds up to NS_REMOTE_COUNT_MAX) */
    slab = slab_carve(ss, 1, 8, 0, 16);
    nblocks = slab->capacity;
    assert_int_equal(nblocks, 32768);
    return 0;
}

static int teardown(void **state)
{
    slab_uncarve(ss, slab);
    superslab_unmap(ss);
    return 0;
}

static inline void *block(uint32_t i) { return (void *)(slab->start + (uintptr_t)i * slab->size); }
/* a block as free() hands it over: carrying the free mark */
static inline void *marked(void *p)
{
    block_set_free(p, block_mark);
    return p;
}
static inline uint32_t index_of(void *b) { return (uint32_t)(((uintptr_t)b - slab->start) / slab->size); }

static void *producer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&go))
        ;
    uint32_t per = nblocks / PRODUCERS;
    for (uint32_t i = id * per; i < (id + 1) * per; i++) {
        remote_push(slab, marked(block(i)), &bin.pending);
        if ((i & 255) == 0)
            sched_yield();
    }
    atomic_fetch_add(&done_producers, 1);
    return NULL;
}

struct tally {
    uint8_t *seen;
    uint64_t received, enqueued, cleared;
};

static void take_into(struct tally *t, bool clear)
{
    uint32_t n = 0;
    void *list = remote_take(slab, clear, &n);
    uint32_t count = 0;
    void *last = NULL;
    for (void *b = list; b; b = *(void **)b) {
        uintptr_t a = (uintptr_t)b;
        if (a < slab->start || a >= slab->start + slab->span || (a - slab->start) % slab->size)
            fail_msg("remote list holds %p, not a block of the slab", b);
        uint32_t i = index_of(b);
        if (t->seen[i])
            fail_msg("block %u received twice", i);
        t->seen[i] = 1;
        t->received++;
        count++;
        last = b;
        if (count > nblocks)
            fail_msg("remote list longer than the slab: a cycle");
    }
    assert_int_equal(count, n);
    if (list)
        assert_null(*(void **)last);
}

/* Take bin.pending; it may hold our slab at most once. */
static bool take_pending(struct tally *t)
{
    slab_t *p = remote_take_pending(&bin.pending);
    if (!p)
        return false;
    assert_ptr_equal(p, slab);
    if (p->pending_next != NULL)
        fail_msg("slab on bin.pending twice (pending_next = %p)", (void *)p->pending_next);
    t->enqueued++;
    /* while it was on the list the bit was set */
    assert_true(atomic_load(&slab->remote) & NS_REMOTE_NOTIFIED);
    take_into(t, true);
    t->cleared++;
    return true;
}

static void test_many_producers_one_consumer(void **state)
{
    struct tally t = {.seen = calloc(nblocks, 1)};
    assert_non_null(t.seen);
    for (int round = 0; round < ROUNDS; round++) {
        memset(t.seen, 0, nblocks);
        t.received = 0;
        atomic_store(&go, 0);
        atomic_store(&done_producers, 0);
        pthread_t th[PRODUCERS];
        for (unsigned i = 0; i < PRODUCERS; i++)
            assert_int_equal(pthread_create(&th[i], NULL, producer, (void *)(uintptr_t)i), 0);
        atomic_store(&go, 1);
        uint64_t iter = 0;
        while (t.received < nblocks) {
            /* mostly the refill path's drain (keeps the bit), sometimes the
             * owner's pending pass (clears it) */
            if (iter++ % 8 == 7)
                take_pending(&t);
            else
                take_into(&t, false);
            if (atomic_load(&done_producers) == PRODUCERS && t.received < nblocks) {
                take_into(&t, false);
                if (t.received < nblocks && !take_pending(&t) && atomic_load(&slab->remote) == 0)
                    fail_msg("lost blocks: received %lu of %u", (unsigned long)t.received, nblocks);
            }
        }
        for (unsigned i = 0; i < PRODUCERS; i++)
            pthread_join(th[i], NULL);
        for (uint32_t i = 0; i < nblocks; i++)
            if (!t.seen[i])
                fail_msg("block %u never received", i);
        assert_int_equal(t.received, nblocks);
        /* The stack is empty; the bit says whether the slab is on pending. */
        uintptr_t r = atomic_load(&slab->remote);
        assert_int_equal(r & ~NS_REMOTE_NOTIFIED, 0);
        slab_t *p = atomic_load(&bin.pending);
        if (r & NS_REMOTE_NOTIFIED) {
            assert_ptr_equal(p, slab);   /* notified: on the list, once */
            assert_true(take_pending(&t));
        } else {
            assert_null(p);              /* not notified: not on the list */
        }
        assert_int_equal(atomic_load(&slab->remote), 0);
        assert_null(atomic_load(&bin.pending));
        /* every cycle: one enqueue, one clear */
        assert_int_equal(t.enqueued, t.cleared);
    }
    print_message("remote: %lu NOTIFIED cycles over %d rounds\n", (unsigned long)t.cleared, ROUNDS);
    assert_true(t.cleared >= ROUNDS);
    free(t.seen);
}

static void test_notify_cycle(void **state)
{
    struct tally t = {.seen = calloc(nblocks, 1)};
    assert_int_equal(atomic_load(&slab->remote), 0);
    assert_null(atomic_load(&bin.pending));

    /* the first push notifies: bit set, slab on pending */
    remote_push(slab, marked(block(10)), &bin.pending);
    assert_int_equal(atomic_load(&slab->remote),
                     (uintptr_t)block(10) | NS_REMOTE_NOTIFIED | (uintptr_t)1 << NS_REMOTE_COUNT_SHIFT);
    assert_ptr_equal(atomic_load(&bin.pending), slab);
    assert_null(slab->pending_next);
    /* block word 0 = next (none) */
    assert_null(*(void **)block(10));

    /* more pushes: LIFO stack, no second enqueue */
    remote_push(slab, marked(block(11)), &bin.pending);
    remote_push(slab, marked(block(12)), &bin.pending);
    assert_ptr_equal(atomic_load(&bin.pending), slab);
    assert_null(slab->pending_next);
    assert_ptr_equal(*(void **)block(12), block(11));
    assert_ptr_equal(*(void **)block(11), block(10));

    /* drain without clear: bit kept, still on pending, no re-enqueue */
    uint32_t n;
    assert_int_equal(remote_count(atomic_load(&slab->remote)), 3);
    void *l = remote_take(slab, false, &n);
    assert_ptr_equal(l, block(12));
    assert_int_equal(n, 3);
    assert_int_equal(atomic_load(&slab->remote), NS_REMOTE_NOTIFIED);
    remote_push(slab, marked(block(13)), &bin.pending);
    assert_int_equal(atomic_load(&slab->remote),
                     (uintptr_t)block(13) | NS_REMOTE_NOTIFIED | (uintptr_t)1 << NS_REMOTE_COUNT_SHIFT);
    assert_null(*(void **)block(13));             /* the bit is not a link */
    assert_ptr_equal(atomic_load(&bin.pending), slab);
    assert_null(slab->pending_next);

    /* the owner's pass: take pending, clear */
    assert_ptr_equal(remote_take_pending(&bin.pending), slab);
    assert_null(atomic_load(&bin.pending));
    assert_null(remote_take_pending(&bin.pending));
    l = remote_take(slab, true, &n);
    assert_ptr_equal(l, block(13));
    assert_int_equal(n, 1);
    assert_int_equal(atomic_load(&slab->remote), 0);

    /* an empty take returns nothing */
    l = remote_take(slab, false, &n);
    assert_null(l);
    assert_int_equal(n, 0);
    assert_int_equal(atomic_load(&slab->remote), 0);

    /* a new push notifies again and re-enqueues */
    remote_push(slab, marked(block(14)), &bin.pending);
    assert_true(atomic_load(&slab->remote) & NS_REMOTE_NOTIFIED);
    assert_ptr_equal(atomic_load(&bin.pending), slab);
    assert_true(take_pending(&t));
    assert_int_equal(atomic_load(&slab->remote), 0);
    free(t.seen);
}

static void test_pending_list_of_two_slabs(void **state)
{
    slab_t *other = slab_carve(ss, 20, 1, 3, 64);
    void *ob = (void *)other->start;
    remote_push(slab, marked(block(100)), &bin.pending);
    remote_push(other, marked(ob), &bin.pending);
    remote_push(slab, marked(block(101)), &bin.pending);
    slab_t *p = remote_take_pending(&bin.pending);
    assert_ptr_equal(p, other);
    assert_ptr_equal(p->pending_next, slab);
    assert_null(slab->pending_next);
    uint32_t n;
    assert_ptr_equal(remote_take(other, true, &n), ob);
    assert_int_equal(n, 1);
    assert_ptr_equal(remote_take(slab, true, &n), block(101));
    assert_int_equal(n, 2);
    assert_int_equal(atomic_load(&slab->remote), 0);
    assert_int_equal(atomic_load(&other->remote), 0);
    assert_null(atomic_load(&bin.pending));
    slab_uncarve(ss, other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_cycle),
        cmocka_unit_test(test_many_producers_one_consumer),
        cmocka_unit_test(test_pending_list_of_two_slabs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
