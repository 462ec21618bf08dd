/* Attack 11 (beyond the list), poisoning a slab's free list: a
 * thread allocates ten 48-byte blocks, frees them and exits, so its cache
 * goes back to the slab's free list (the first block freed, p0, at its
 * head).  Word 0 of p0 := the address of a static buffer (word 0 = 0).  The
 * next malloc(48) refills from that list: an allocator that follows the
 * link before checking it writes into the static buffer (the address of
 * the block it took before) and only then reports the corruption.  A
 * SIGABRT handler looks at the buffer: written means the attack worked
 * (a write to an address of the attacker's choice), exit 3; untouched, the
 * abort goes on. */
#include "attack.h"

#include <pthread.h>
#include <signal.h>

static uintptr_t p[10];
static volatile uintptr_t fake[4] __attribute__((aligned(64)));

static void *helper(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++)
        p[i] = addr(malloc(48));
    for (int i = 0; i < 10; i++)
        free((void *)p[i]);
    return NULL;
}

static void on_abort(int sig)
{
    if (fake[0] != 0)
        undetected("before its report the allocator wrote %#lx into the static buffer %#lx", (unsigned long)fake[0],
                   (unsigned long)(uintptr_t)fake);
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(void)
{
    atk_start("slab_poison", "word 0 of a block on a slab's free list := address of a static buffer");
    pthread_t t;
    if (pthread_create(&t, NULL, helper, NULL) || pthread_join(t, NULL)) {
        say("pthread_create failed\n");
        return ATK_SETUP;
    }
    say("helper thread freed p0=%#lx .. p9 and exited; word 0 of p0 = %#lx\n", (unsigned long)p[0],
        (unsigned long)word(p[0], 0));
    set_word(p[0], 0, (uintptr_t)fake);
    signal(SIGABRT, on_abort);
    uintptr_t live[2] = {(uintptr_t)fake, p[1]};
    int rc = malloc_until_overlap(48, live, 1, 32, 64);
    if (fake[0] != 0)
        undetected("the allocator wrote %#lx into the static buffer %#lx", (unsigned long)fake[0],
                   (unsigned long)(uintptr_t)fake);
    return rc;
}
