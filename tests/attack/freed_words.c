/* Attack 3, what reading freed memory reveals: 10,000 freed 32-byte and
 * 10,000 freed 64-byte blocks (every other one of 20,000 of each size, so
 * that no slab empties and its memory stays mapped) are read after free;
 * words 0 and 1 of each are collected and every 8-byte value that occurs
 * more than once is counted.  A constant in free blocks (a free mark, a
 * cache key, a list end) repeats; an encoding with per-list keys and
 * address-derived values repeats nothing.
 * Exit ATK_REPEATS (4) if any value repeats, ATK_NO_REPEATS (5) if none. */
#include "attack.h"

#define PER_SIZE 20000
#define FREED (PER_SIZE / 2 * 2)        /* freed blocks over both sizes */

struct seen {
    uintptr_t v;
    unsigned where;                     /* bit 0: word 0 seen, bit 1: word 1 seen */
};
static uintptr_t blocks[2][PER_SIZE];
static struct seen vals[FREED * 2];

static int by_value(const void *x, const void *y)
{
    uintptr_t a = ((const struct seen *)x)->v, b = ((const struct seen *)y)->v;
    return a < b ? -1 : a > b;
}

int main(void)
{
    atk_start("freed_words", "read words 0 and 1 of 10,000 freed 32-byte and 10,000 freed 64-byte blocks");
    const size_t size[2] = {32, 64};
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < PER_SIZE; i++)
            if (!(blocks[s][i] = addr(malloc(size[s])))) {
                say("malloc failed\n");
                return ATK_SETUP;
            }
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < PER_SIZE; i += 2)
            free((void *)blocks[s][i]);
    size_t n = 0;
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < PER_SIZE; i += 2)
            for (int w = 0; w < 2; w++) {
                vals[n].v = word(blocks[s][i], w);
                vals[n].where = 1u << w;
                n++;
            }
    qsort(vals, n, sizeof vals[0], by_value);
    size_t distinct = 0, repeated = 0, in_repeats = 0, best = 0;
    uintptr_t best_v = 0;
    unsigned best_where = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        unsigned where = 0;
        while (j < n && vals[j].v == vals[i].v)
            where |= vals[j++].where;
        distinct++;
        if (j - i > 1) {
            repeated++;
            in_repeats += j - i;
            if (j - i > best) {
                best = j - i;
                best_v = vals[i].v;
                best_where = where;
            }
            if (repeated <= 5)
                say("  value %#018lx: %zu times (word%s)\n", (unsigned long)vals[i].v, j - i,
                    where == 3 ? "s 0 and 1" : where == 1 ? " 0" : " 1");
        }
        i = j;
    }
    say("%zu words of %d freed blocks: %zu distinct values, %zu of them repeat (%zu words)\n", n, FREED, distinct,
        repeated, in_repeats);
    if (repeated) {
        say("REPEATS: %zu distinct values repeat; the most frequent, %#lx, fills %zu words (word%s)\n", repeated,
            (unsigned long)best_v, best, best_where == 3 ? "s 0 and 1" : best_where == 1 ? " 0" : " 1");
        return ATK_REPEATS;
    }
    say("NO REPEATS\n");
    return ATK_NO_REPEATS;
}
