/* machine.c - facts of the running machine that numaslab reads once: the
 * kernel's base page size (arm64 kernels are built with 4, 16 or 64 KiB
 * pages; x86-64 has 4 KiB), and where the C library's code lies. */
#define _GNU_SOURCE
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/auxv.h>

#include "base.h"

size_t machine_page;

size_t machine_page_slow(void)
{
    size_t p = (size_t)getauxval(AT_PAGESZ);
    /* no auxv entry, or a value no Linux kernel uses: the smallest page
     * (a mapping is then still page aligned on any kernel up to 64 KiB,
     * since every mapping numaslab makes is 64 KiB aligned or rounded) */
    if (p < NS_PAGE_MIN || p > NS_PAGE_MAX || (p & (p - 1)))
        p = NS_PAGE_MIN;
    __atomic_store_n(&machine_page, p, __ATOMIC_RELAXED);
    return p;
}

/* ------------------------------------------------------ the C library
 * Which callers of free() may hold glibc's own locks: the C library and
 * the dynamic loader.  glibc frees the TLS of dead threads' cached stacks
 * (__nptl_free_stacks -> _dl_deallocate_tls, whose last free is a tail
 * call, so free() returns into libc) with the stack-cache lock held, and
 * the loader frees under its own locks; pthread_create takes the first
 * and reads what the second guards.  The background release thread
 * (numa/decay.c) is therefore never started from a free() called by them.
 * Up to LIBC_RANGES executable segments: those of the loader (AT_BASE) and
 * of the objects defining pthread_create and fclose (libc; libpthread on
 * glibc before 2.34; the program itself when glibc is linked statically,
 * which then never starts the thread from free()).  The same walk notes
 * numaslab's own code (the object holding this file: libnumaslab.so, or
 * the program when numaslab is linked statically), for the release thread
 * (a free() called from inside numaslab has no known caller) and for the
 * heap profiler (stacks start at the first frame outside it). */
#define LIBC_RANGES 8
static uintptr_t libc_lo[LIBC_RANGES], libc_hi[LIBC_RANGES];
static unsigned libc_n;
static bool libc_known;         /* written once, before any thread starts from it */

static bool segment_has(const struct dl_phdr_info *info, uintptr_t a)
{
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && a - lo < ph->p_memsz)
            return true;
    }
    return false;
}

void machine_code_span(const struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi)
{
    *lo = UINTPTR_MAX, *hi = 0;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            uintptr_t a = info->dlpi_addr + ph->p_vaddr;
            *lo = a < *lo ? a : *lo;
            *hi = a + ph->p_memsz > *hi ? a + ph->p_memsz : *hi;
        }
    }
}

static uintptr_t self_lo, self_hi;
static bool self_alone;

static int note_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    const uintptr_t *marks = arg;
    if (segment_has(info, (uintptr_t)&machine_find_libc)) {    /* numaslab's own */
        machine_code_span(info, &self_lo, &self_hi);
        self_alone = info->dlpi_name && *info->dlpi_name;
    }
    bool libc = info->dlpi_addr == marks[0] && marks[0] != 0;
    for (unsigned k = 1; k < 3; k++)
        libc |= segment_has(info, marks[k]);
    if (!libc)
        return 0;
    for (unsigned i = 0; i < info->dlpi_phnum && libc_n < LIBC_RANGES; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            libc_lo[libc_n] = info->dlpi_addr + ph->p_vaddr;
            libc_hi[libc_n++] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
        }
    }
    return 0;
}

void machine_find_libc(void)
{
    if (__atomic_load_n(&libc_known, __ATOMIC_ACQUIRE))
        return;
    uintptr_t marks[3] = {(uintptr_t)getauxval(AT_BASE), (uintptr_t)&pthread_create, (uintptr_t)&fclose};
    dl_iterate_phdr(note_object, marks);
    __atomic_store_n(&libc_known, true, __ATOMIC_RELEASE);
}

bool machine_in_libc(const void *pc)
{
    if (!__atomic_load_n(&libc_known, __ATOMIC_ACQUIRE))
        return true;
    for (unsigned i = 0; i < libc_n; i++)
        if ((uintptr_t)pc - libc_lo[i] < libc_hi[i] - libc_lo[i])
            return true;
    return false;
}

bool machine_in_self(const void *pc)
{
    if (!__atomic_load_n(&libc_known, __ATOMIC_ACQUIRE))
        return true;
    return (uintptr_t)pc - self_lo < self_hi - self_lo;
}

void machine_self(uintptr_t *lo, uintptr_t *hi, bool *alone)
{
    machine_find_libc();
    *lo = self_lo, *hi = self_hi, *alone = self_alone;
}

int machine_thread_start(void *(*fn)(void *), void *arg, const char *name)
{
    pthread_attr_t at;
    sigset_t all, prev;
    pthread_t t;
    sigfillset(&all);
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 256 * 1024);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_sigmask(SIG_SETMASK, &all, &prev);     /* inherited by the new thread */
    int rc = pthread_create(&t, &at, fn, arg);
    pthread_sigmask(SIG_SETMASK, &prev, NULL);
    pthread_attr_destroy(&at);
    if (rc == 0)
        pthread_setname_np(t, name);
    return rc;
}
