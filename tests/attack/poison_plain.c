/* Attack 1, plain-pointer free-list poisoning: a write after free puts the
 * plain address of a live 48-byte block into word 0 (only word 0) of a
 * freed one at the head of the thread's list; then malloc(48) until it
 * returns the live block (overlap) or the allocator aborts. */
#include "attack.h"

int main(void)
{
    atk_start("poison_plain", "word 0 of a freed 48-byte block := plain address of a live block");
    struct poison P = poison_setup(48);
    set_word(P.a, 0, P.target);
    return malloc_until_overlap(48, &P.target, 1, 48, ATK_TRIES);
}
