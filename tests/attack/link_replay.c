/* Attack 10 (beyond the list), a replayed link: three 48-byte
 * blocks freed c, b, a after four others (the thread's list is
 * a -> b -> c -> ...); word 0 of
 * a, read after free (the link to b, encoded or not), is copied into word 0
 * of c.  No address is forged: the list becomes a -> b -> c -> b -> c ...,
 * and malloc(48) would hand b out a second time while the first holder
 * still has it.  A replay needs no key: only a check at hand-out that the
 * block is free catches it. */
#include "attack.h"

int main(void)
{
    atk_start("link_replay", "word 0 of freed block c := word 0 of freed block a (a -> b -> c becomes a cycle)");
    void *warm[8];
    for (int i = 0; i < 8; i++)
        warm[i] = malloc(48);
    uintptr_t a = addr(malloc(48)), b = addr(malloc(48)), c = addr(malloc(48));
    for (int i = 0; i < 4; i++)     /* more blocks behind c: an allocator that */
        free(warm[i]);              /* counts its list (glibc) keeps popping */
    free((void *)c);
    free((void *)b);
    free((void *)a);
    uintptr_t a0 = word(a, 0);
    say("a=%#lx b=%#lx c=%#lx; word 0 of a after free = %#lx (%s); a and c %s the same 4 KiB page\n",
        (unsigned long)a, (unsigned long)b, (unsigned long)c, (unsigned long)a0,
        a0 == b ? "the plain address of b" : "encoded", a >> 12 == c >> 12 ? "share" : "do not share");
    set_word(c, 0, a0);
    return malloc_until_overlap(48, NULL, 0, 48, 64);
}
