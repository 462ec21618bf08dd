/* Attack 9 (beyond the list), a forged list entry from a read after
 * free: the attacker reads word 1 of a freed block (in the default build
 * the per-process free mark, the same in every free block), builds a fake
 * free block in memory it controls (a static buffer: word 0 = NULL, word 1
 * = the value read) and points the freed block's word 0 at it.  malloc(48)
 * then returns the static buffer if the allocator trusts the mark. */
#include "attack.h"

static uintptr_t fake[8] __attribute__((aligned(64)));

int main(void)
{
    atk_start("mark_forge", "fake free block {NULL, observed word 1} outside the heap; freed block's word 0 := its address");
    struct poison P = poison_setup(48);
    fake[0] = 0;
    fake[1] = P.observed1;
    set_word(P.a, 0, addr(fake));
    uintptr_t live[2] = {addr(fake), P.target};
    return malloc_until_overlap(48, live, 2, 48, ATK_TRIES);
}
