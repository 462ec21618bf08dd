/* Attack 5b, free of a pointer into a SuperSlab's header: the address of a
 * live 48-byte block rounded down to 2 MiB (numaslab's SuperSlab start,
 * where its metadata lives), plus 64. */
#include "attack.h"

int main(void)
{
    atk_start("free_header", "free((p & ~(2 MiB - 1)) + 64), p a live 48-byte block");
    uintptr_t p = addr(malloc(48));
    uintptr_t h = (p & ~(((uintptr_t)2 << 20) - 1)) + 64;
    say("p=%#lx, free(%#lx)\n", (unsigned long)p, (unsigned long)h);
    free(hide((void *)h));
    undetected("free(%#lx) returned", (unsigned long)h);
}
