/* Attack 7, a fake SuperSlab: 4 MiB from mmap (never numaslab's), its
 * 2 MiB-aligned part filled with a header-like pattern (per 64 KiB unit:
 * the block start, span, divisor and class offset numaslab's free() reads
 * for a unit of 64-byte blocks, made so that aligned + 4096 passes the
 * block-start test; the rest pointer-like words), then free(aligned +
 * 4096).  Only the allocator's own map of its SuperSlabs can tell. */
#include "attack.h"

#include <sys/mman.h>

#define SS ((uintptr_t)2 << 20)
#define UNIT ((uintptr_t)64 << 10)

int main(void)
{
    atk_start("fake_superslab", "free(aligned + 4096) of a 2 MiB-aligned region from mmap with a header-like pattern");
    free(malloc(64));               /* the allocator is up */
    void *m = mmap(NULL, 2 * SS, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        say("mmap failed\n");
        return ATK_SETUP;
    }
    uintptr_t ss = ((uintptr_t)m + SS - 1) & ~(SS - 1);
    /* unit_fast_t-like entries: {start, span, divc, binoff} x 32 units */
    for (uintptr_t u = 0; u < 32; u++) {
        uintptr_t start = ss + u * UNIT + (u == 0 ? 4096 : 0);
        set_word(ss + u * 32, 0, start);
        set_word(ss + u * 32, 1, UNIT - (start - (ss + u * UNIT)));
        set_word(ss + u * 32, 2, UINTPTR_MAX / 64 + 1);
        set_word(ss + u * 32, 3, (uintptr_t)3 << 5);
    }
    /* the rest of the first 4 KiB: pointers into the region, and a small
     * node/size-like word every eighth */
    for (uintptr_t off = 32 * 32; off < 4096; off += 8)
        set_word(ss + off, 0, (off / 8) % 8 == 0 ? 64 : ss + (off * 64) % SS);
    /* the "block": zero, as a fresh block */
    memset((void *)(ss + 4096), 0, 64);
    say("region %p, aligned %#lx, free(%#lx)\n", m, (unsigned long)ss, (unsigned long)(ss + 4096));
    free(hide((void *)(ss + 4096)));
    undetected("free(%#lx) of memory numaslab never mapped returned", (unsigned long)(ss + 4096));
}
