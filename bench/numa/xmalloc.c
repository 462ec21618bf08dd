/* xmalloc - many threads, objects freed in batches by a thread other than
 * their allocator (in the style of xmalloc-test).
 *
 *   xmalloc THREADS [BATCHES_PER_THREAD=20000] [BATCH=100] [MIN=16] [MAX=256] [THREAD_MULT=4]
 *
 * THREADS*THREAD_MULT worker threads (more threads than cores, as in
 * xmalloc-test) form a ring.  Worker i repeatedly allocates a batch of BATCH
 * objects (random size MIN..MAX, stamped), puts the batch (itself a malloc'ed
 * array) into the inbox of worker i+1, and frees - after checking - every
 * batch in its own inbox.  With one worker the batches come back to itself.
 * A worker whose successor's inbox holds more than 32 batches drains its own
 * inbox until there is room, so the memory in flight stays bounded.
 * Reports objects allocated+freed per second. */
#include "bench_common.h"
#include <sched.h>

struct batch {
    struct batch *next;
    int from;
    long seq;
    size_t count;
    char *obj[];
};

struct worker {
    _Alignas(64) pthread_mutex_t mu;
    struct batch *inbox_head, *inbox_tail;
    long inbox_len;
    long received;
    long next_seq_from_prev;
    int id;
};

static long nbatches, bsize;
static size_t smin, smax;
static int nworkers;
static struct worker *W;
static pthread_mutex_t fin_mu = PTHREAD_MUTEX_INITIALIZER;
static int nfinished;

static uint64_t obj_tag(int from, long seq, size_t j)
{
    return ((uint64_t)from << 48) ^ ((uint64_t)seq << 12) ^ (uint64_t)j;
}

/* Take the whole inbox, verify and free it. Returns the number of batches. */
static long drain(struct worker *me)
{
    pthread_mutex_lock(&me->mu);
    struct batch *b = me->inbox_head;
    me->inbox_head = me->inbox_tail = NULL;
    me->inbox_len = 0;
    pthread_mutex_unlock(&me->mu);
    long n = 0;
    while (b) {
        struct batch *next = b->next;
        int prev = (me->id + nworkers - 1) % nworkers;
        if (b->from != prev || b->seq != me->next_seq_from_prev)
            bench_fail("xmalloc: worker %d got batch %d/%ld, expected %d/%ld", me->id, b->from, b->seq, prev,
                       me->next_seq_from_prev);
        me->next_seq_from_prev++;
        for (size_t j = 0; j < b->count; j++) {
            uint64_t *w = (uint64_t *)b->obj[j];
            check_stamp(b->obj[j], (size_t)w[1], obj_tag(b->from, b->seq, j), "xmalloc free");
            free(b->obj[j]);
        }
        free(b);
        me->received++;
        n++;
        b = next;
    }
    return n;
}

static void *run(void *arg)
{
    struct worker *me = arg;
    struct worker *to = &W[(me->id + 1) % nworkers];
    uint64_t rng = rng_seed((uint64_t)me->id, 0x77);
    for (long s = 0; s < nbatches; s++) {
        struct batch *b = xmalloc(sizeof *b + sizeof(char *) * (size_t)bsize);
        b->next = NULL;
        b->from = me->id;
        b->seq = s;
        b->count = (size_t)bsize;
        for (size_t j = 0; j < b->count; j++) {
            size_t n = rng_range(&rng, smin, smax);
            b->obj[j] = xmalloc(n);
            stamp(b->obj[j], n, obj_tag(me->id, s, j));
        }
        for (;;) {
            pthread_mutex_lock(&to->mu);
            if (to->inbox_len < 32 || to == me) {
                if (to->inbox_tail)
                    to->inbox_tail->next = b;
                else
                    to->inbox_head = b;
                to->inbox_tail = b;
                to->inbox_len++;
                pthread_mutex_unlock(&to->mu);
                break;
            }
            pthread_mutex_unlock(&to->mu);
            if (!drain(me)) sched_yield();
        }
        drain(me);
    }
    pthread_mutex_lock(&fin_mu);
    nfinished++;
    pthread_mutex_unlock(&fin_mu);
    for (;;) {
        pthread_mutex_lock(&fin_mu);
        int all = nfinished == nworkers;
        pthread_mutex_unlock(&fin_mu);
        if (all) break;
        if (!drain(me)) sched_yield();
    }
    drain(me);
    return NULL;
}

int main(int argc, char **argv)
{
    int T = (int)arg_long(argc, argv, 1, 1);
    nbatches = arg_long(argc, argv, 2, 20000);
    bsize = arg_long(argc, argv, 3, 100);
    smin = (size_t)arg_long(argc, argv, 4, 16);
    smax = (size_t)arg_long(argc, argv, 5, 256);
    int mult = (int)arg_long(argc, argv, 6, 4);
    if (smin < 16 || smax < smin) bench_fail("need 16 <= MIN <= MAX");
    nworkers = T * mult;
    W = aligned_alloc(64, sizeof *W * (size_t)nworkers);
    memset(W, 0, sizeof *W * (size_t)nworkers);
    pthread_t *th = malloc(sizeof *th * (size_t)nworkers);
    for (int i = 0; i < nworkers; i++) {
        pthread_mutex_init(&W[i].mu, NULL);
        W[i].id = i;
    }
    double c0 = bench_cpu(), t0 = bench_now();
    for (int i = 0; i < nworkers; i++) xpthread_create(&th[i], run, &W[i]);
    for (int i = 0; i < nworkers; i++) pthread_join(th[i], NULL);
    double el = bench_now() - t0, cpu = bench_cpu() - c0;
    for (int i = 0; i < nworkers; i++)
        if (W[i].received != nbatches || W[i].inbox_head)
            bench_fail("worker %d received %ld of %ld batches", i, W[i].received, nbatches);
    double objs = (double)nworkers * (double)nbatches * (double)bsize;
    bench_report("xmalloc", T, objs, el, cpu, "workers:%d,batch:%ld,min:%zu,max:%zu", nworkers, bsize, smin, smax);
    return 0;
}
