/* Attack 12 (beyond the list), poisoning a link the allocator
 * follows while it flushes: word 0 of a freed 48-byte block := the plain
 * address of a live block, as in attack 1, at a moment when the thread
 * cache for the class is at least half full (2000 frees of the class
 * before it made it overflow, so a flush left it half full or more).
 * Then, before any malloc(48), 2000 more frees make the cache overflow
 * again: a flush gives back the blocks freed last, the half of the list
 * at its head, and the poisoned block is among them.  An allocator that
 * walks that list without checking each block puts the live block on a
 * free list and hands it out again: malloc(48) until it returns the live
 * block (overlap) or the allocator aborts. */
#include "attack.h"

#define FLOOD 2000

int main(void)
{
    atk_start("poison_flush", "word 0 of a freed 48-byte block := plain address of a live block; then a flush");
    static void *before[FLOOD], *after[FLOOD];
    for (int i = 0; i < FLOOD; i++) {
        before[i] = malloc(48);
        after[i] = malloc(48);
    }
    uintptr_t a = addr(malloc(48)), target = addr(malloc(48));
    memset((void *)target, 0x5a, 48);       /* the victim's live data */
    for (int i = 0; i < FLOOD; i++)
        free(before[i]);
    free((void *)a);
    set_word(a, 0, target);
    say("freed %d blocks of the class, then a=%#lx; its word 0 := target=%#lx (live)\n", FLOOD, (unsigned long)a,
        (unsigned long)target);
    for (int i = 0; i < FLOOD; i++)
        free(after[i]);
    say("freed %d more blocks of the class: the cache overflowed, no report from the flush\n", FLOOD);
    return malloc_until_overlap(48, &target, 1, 48, ATK_TRIES);
}
