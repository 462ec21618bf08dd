/* Attack 5a, free of an interior pointer: free(p + 16) of a live 48-byte
 * block. */
#include "attack.h"

int main(void)
{
    atk_start("free_interior", "free(p + 16) of a live 48-byte block p");
    uintptr_t p = addr(calloc(1, 48));
    say("p=%#lx, free(%#lx)\n", (unsigned long)p, (unsigned long)(p + 16));
    free(hide((void *)(p + 16)));
    undetected("free(p + 16) returned");
}
