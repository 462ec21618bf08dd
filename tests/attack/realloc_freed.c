/* Attack 8, realloc of a freed block: p (48 bytes) freed, then
 * realloc(p, 48).  If it is accepted, the freed block may be live again
 * while still on a free list: malloc(48) is watched for handing it out. */
#include "attack.h"

int main(void)
{
    atk_start("realloc_freed", "free(p); realloc(p, 48)");
    uintptr_t p = addr(malloc(48));
    free((void *)p);
    uintptr_t q = addr(realloc(hide((void *)p), 48));
    say("realloc(freed p=%#lx, 48) returned %#lx\n", (unsigned long)p, (unsigned long)q);
    if (q)
        malloc_until_overlap(48, &q, 1, 48, 64);
    undetected("realloc of the freed block %#lx returned %#lx", (unsigned long)p, (unsigned long)q);
}
