/* Attack 4, a double free across threads: thread A allocates p (48 bytes)
 * and frees it (p goes into A's cache); thread B, while A is alive, frees p
 * again.  An allocator that lets this pass then hands p out twice: A's
 * malloc(48) and B's mallocs are watched for it. */
#include "attack.h"

#include <pthread.h>

static pthread_barrier_t step;
static uintptr_t p, got_a;

static void *thread_a(void *arg)
{
    (void)arg;
    p = addr(malloc(48));
    free((void *)p);
    say("thread A: p=%#lx allocated and freed\n", (unsigned long)p);
    pthread_barrier_wait(&step);        /* 1: A freed p */
    pthread_barrier_wait(&step);        /* 2: B freed p */
    got_a = addr(malloc(48));
    pthread_barrier_wait(&step);        /* 3: A allocated */
    pthread_barrier_wait(&step);        /* 4: B is done */
    return NULL;
}

static void *thread_b(void *arg)
{
    (void)arg;
    free(malloc(48));                   /* B has a cache for the class */
    void *keep = malloc(48);
    pthread_barrier_wait(&step);        /* 1 */
    say("thread B: free(p) again\n");
    free((void *)p);
    say("thread B: free(p) returned\n");
    pthread_barrier_wait(&step);        /* 2 */
    pthread_barrier_wait(&step);        /* 3 */
    for (int i = 0; i < 1024; i++) {
        uintptr_t q = addr(malloc(48));
        if (q == p && got_a == p)
            undetected("p=%#lx was freed by A and again by B; A's malloc(48) and B's malloc(48) call %d both "
                       "returned it", (unsigned long)p, i + 1);
        if (q == p) {
            say("B's malloc(48) call %d returned p; A's returned %#lx\n", i + 1, (unsigned long)got_a);
            break;
        }
    }
    free(keep);
    pthread_barrier_wait(&step);        /* 4 */
    return NULL;
}

int main(void)
{
    atk_start("xthread_double_free", "thread A frees p, thread B (A still alive) frees p again");
    pthread_t a, b;
    pthread_barrier_init(&step, NULL, 2);
    if (pthread_create(&a, NULL, thread_a, NULL) || pthread_create(&b, NULL, thread_b, NULL)) {
        say("pthread_create failed\n");
        return ATK_SETUP;
    }
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    say("the second free was accepted, but no block was handed out twice\n");
    return ATK_NO_EFFECT;
}
