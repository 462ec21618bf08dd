/* attack.h - helpers shared by the attack programs (tests/attack).
 *
 * Each program attacks the malloc it runs against: numaslab through
 * LD_PRELOAD (the programs are linked normally, never against numaslab) or
 * glibc's own malloc when nothing is preloaded.  Built with -fno-builtin so
 * that the compiler neither folds nor drops malloc/free calls; every access
 * to freed memory goes through a volatile pointer made from an address.
 *
 * Output goes to stdout with write(2) (no stdio buffer is allocated in the
 * middle of an attack).  Exit status (tests/attack/run.sh reads it):
 *   3  ATK_UNDETECTED  the attack worked: the overlap, the second hand-out
 *                      or the accepted pointer is printed on stdout
 *   4  ATK_REPEATS     freed_words: some 8-byte value repeats in freed blocks
 *   5  ATK_NO_REPEATS  freed_words: none repeats
 *   0  ATK_NO_EFFECT   the allocator neither aborted nor let the attack work
 *   2  ATK_SETUP       the program could not set the attack up
 * An allocator that detects the attack prints one line and aborts (SIGABRT)
 * before the program gets to exit.
 */
#ifndef ATTACK_H
#define ATTACK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ATK_NO_EFFECT 0
#define ATK_SETUP 2
#define ATK_UNDETECTED 3
#define ATK_REPEATS 4
#define ATK_NO_REPEATS 5

#define ATK_TRIES 4096          /* mallocs after a poisoning, at most */

__attribute__((format(printf, 1, 2), unused)) static void say(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDOUT_FILENO, buf + off, len - off);
        if (w <= 0)
            return;
        off += (size_t)w;
    }
}

/* The attack's name and where malloc comes from (run.sh checks that it is
 * the preloaded library: a preload that silently did not happen must not
 * pass for numaslab). */
__attribute__((unused)) static void atk_start(const char *name, const char *what)
{
    Dl_info di;
    void *fp = dlsym(RTLD_NEXT, "malloc");
    const char *obj = "?";
    if (fp && dladdr(fp, &di) && di.dli_fname)
        obj = di.dli_fname;
    say("attack %s: %s\n", name, what);
    say("malloc-from: %s\n", obj);
}

/* Word i of the block at address a, read or written behind the compiler's
 * back (a may be freed). */
__attribute__((unused)) static uintptr_t word(uintptr_t a, int i)
{
    return ((volatile uintptr_t *)a)[i];
}
__attribute__((unused)) static void set_word(uintptr_t a, int i, uintptr_t v)
{
    ((volatile uintptr_t *)a)[i] = v;
}
/* p, with everything the compiler knows about where it came from dropped */
__attribute__((unused)) static void *hide(void *p)
{
    void *volatile q = p;
    return q;
}
__attribute__((unused)) static uintptr_t addr(void *p)
{
    return (uintptr_t)hide(p);
}

/* The attack worked: say how and exit ATK_UNDETECTED. */
__attribute__((noreturn, format(printf, 1, 2), unused)) static void undetected(const char *fmt, ...)
{
    char buf[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    say("NOT DETECTED: %s\n", buf);
    _exit(ATK_UNDETECTED);
}

/* A block of n bytes at q overlaps the live block [lo, lo + len)? */
static inline int overlaps(uintptr_t q, size_t n, uintptr_t lo, size_t len)
{
    return q < lo + len && lo < q + n;
}

/* malloc(n) up to `tries` times, keeping every block: a block that
 * overlaps one of the `nlive` live blocks live[i] (each `len` bytes) is
 * the attack's success, and so is a block that overlaps one returned by
 * an earlier call (all are kept live).  Returns ATK_NO_EFFECT if none did. */
__attribute__((unused)) static int malloc_until_overlap(size_t n, const uintptr_t *live, size_t nlive, size_t len,
                                                        int tries)
{
    static uintptr_t got[ATK_TRIES];
    if (tries > ATK_TRIES)
        tries = ATK_TRIES;
    for (int i = 0; i < tries; i++) {
        uintptr_t q = addr(malloc(n));
        if (!q) {
            say("malloc(%zu) returned NULL after %d calls\n", n, i);
            return ATK_NO_EFFECT;
        }
        for (size_t k = 0; k < nlive; k++)
            if (overlaps(q, n, live[k], len))
                undetected("malloc(%zu) call %d returned %#lx, overlapping the live block %#lx", n, i + 1,
                           (unsigned long)q, (unsigned long)live[k]);
        for (int k = 0; k < i; k++)
            if (overlaps(q, n, got[k], n))
                undetected("malloc(%zu) call %d returned %#lx, overlapping %#lx returned by call %d (both live)",
                           n, i + 1, (unsigned long)q, (unsigned long)got[k], k + 1);
        got[i] = q;
    }
    say("no overlap after %d calls of malloc(%zu)\n", tries, n);
    return ATK_NO_EFFECT;
}

/* The poisoning set-up: two blocks of n bytes freed one after the other
 * (b, then a: the thread's list for the class is a -> b) and a live block
 * `target`.  A few blocks are allocated first so that the thread has a
 * cache with room for the class.  `observed` is word 0 of a after its free
 * (what a read after free sees), `observed1` its word 1. */
struct poison {
    uintptr_t a, b, target, observed, observed1;
};
__attribute__((unused)) static struct poison poison_setup(size_t n)
{
    struct poison P;
    void *warm[8];
    for (int i = 0; i < 8; i++)
        warm[i] = malloc(n);
    P.a = addr(malloc(n));
    P.b = addr(malloc(n));
    P.target = addr(malloc(n));
    memset((void *)P.target, 0x5a, n);      /* the victim's live data */
    free((void *)P.b);
    free((void *)P.a);
    P.observed = word(P.a, 0);
    P.observed1 = word(P.a, 1);
    (void)warm;
    say("a=%#lx b=%#lx target=%#lx (live); after free(b), free(a): word 0 of a = %#lx (%s), word 1 = %#lx\n",
        (unsigned long)P.a, (unsigned long)P.b, (unsigned long)P.target, (unsigned long)P.observed,
        P.observed == P.b ? "the plain address of b" : "not the plain address of b", (unsigned long)P.observed1);
    return P;
}

#endif
