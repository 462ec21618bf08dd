/* Attack 12 (beyond the list), poisoning a link the allocator
 * follows while it flushes: word 0 of a freed 48-byte block := the plain
 * address of a live block, as in attack 1; then, before any malloc(48),
 * the program frees 2000 blocks of the class, so the thread cache
 * overflows and gives its older blocks back to their slabs, the poisoned
 * one and the block its link names among them.  An allocator that walks
 * that list without checking each block puts the live block on a free
 * list and hands it out again: malloc(48) until it returns the live
 * block (overlap) or the allocator aborts. */
#include "attack.h"

#define FLOOD 2000

int main(void)
{
    atk_start("poison_flush", "word 0 of a freed 48-byte block := plain address of a live block; then a flush");
    static void *flood[FLOOD];
    for (int i = 0; i < FLOOD; i++)
        flood[i] = malloc(48);
    struct poison P = poison_setup(48);
    set_word(P.a, 0, P.target);
    for (int i = 0; i < FLOOD; i++)
        free(flood[i]);
    say("freed %d more blocks of the class: the cache overflowed\n", FLOOD);
    return malloc_until_overlap(48, &P.target, 1, 48, ATK_TRIES);
}
