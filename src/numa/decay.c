/* decay.c - the background release thread (NUMASLAB_BACKGROUND).
 *
 * Why: the decay pass (node_pool.c: empty SuperSlabs and cached large
 * mappings older than NUMASLAB_DECAY_MS go back to the OS) runs from
 * allocator slow paths, so a process that frees a lot and then sleeps
 * would keep the memory for as long as it sleeps.  This thread runs the
 * pass about every NUMASLAB_DECAY_MS / 2 while something waits, and sleeps
 * on a futex without a timeout once nothing does.  Its pass also gives
 * back what only time shows to be unused (node_heap_decay_pass): the empty
 * spare slab of a bin nobody took for the decay period, and, once no slab
 * was carved on a node for that long, the free units of its sparse
 * SuperSlabs (around the slabs idle threads still own: their caches are
 * theirs alone, README "Background release").  While it runs it also
 * collapses the SuperSlabs promoted to huge pages (node_pool.c:
 * MADV_COLLAPSE takes milliseconds, which no malloc call should wait for;
 * decay_wake interrupts a nap for them).  While it runs, the
 * slow paths skip the pass (node_heap_decay).
 *
 * When it starts: only in a process that has had something to release, so
 * that a program which never frees a SuperSlab's worth of slabs or a large
 * block stays single-threaded (unshare(CLONE_NEWUSER) requires that).
 * decay_note (an empty SuperSlab listed, a large mapping cached, 2 MiB of
 * slabs freed in SuperSlabs still in use; under the node's lock) raises
 * `decay_work`; the next free() that sees it with no thread yet
 * starts one once it holds no lock (api.h, free_slow_entry: free()'s
 * caller is read there, off the fast path), unless that free() was called
 * by the C library or the loader, which may hold glibc's thread-stack
 * cache lock that pthread_create takes (base/machine.c), or from within
 * numaslab (realloc; and free() itself when the compiler did not
 * tail-call the slow entry, so that the caller is unknown); a
 * thread's exit starts it too (tiny/tcache.c, the cache's destructor).
 * Never from malloc: the loader allocates with its own locks held.
 * pthread_create may allocate (TLS): the state is STARTING meanwhile, so
 * an allocation inside it starts nothing.  A failed pthread_create, or a
 * sandbox (a seccomp filter that may kill on clone: sandboxed()), turns
 * the thread off (the slow paths keep the pass).
 *
 * Exit: the thread is detached and blocks every signal; exit() ends it
 * wherever it is.  A process whose main thread called pthread_exit lives
 * until its last thread ends, which this one never would: when the main
 * thread's cache is destroyed (decay_thread_exit) the thread ends and is
 * not started again.
 *
 * fork: the child has no such thread.  decay_fork_child resets the state,
 * and `decay_work` to whether the child has anything to release, so that
 * it restarts lazily there.  The thread takes allocator locks only through
 * the ordinary functions, in their order, and holds none while it sleeps,
 * so fork's prepare handler waits for it as for any thread.
 *
 * Futex protocol on decay_work (0: nothing listed since the thread last
 * looked): the thread stores parked = 1, then sleeps while decay_work is
 * 0; decay_note stores decay_work = 1, then wakes it if parked (seq_cst
 * both: one of the two sees the other's store).  Naps (something left)
 * wait on decay_state with a timeout, so that decay_thread_exit ends one at
 * once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../hugepage/hugepage.h"
#include "numa.h"

_Atomic uint32_t decay_state;
_Atomic uint32_t decay_work;
static _Atomic uint32_t parked;


static void futex_wait(_Atomic uint32_t *w, uint32_t val, const struct timespec *timeout)
{
    syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, timeout, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void decay_note(void)
{
    if (!options.background || atomic_load_explicit(&decay_work, memory_order_relaxed))
        return;
    atomic_store(&decay_work, 1);
    if (atomic_load(&parked))
        futex_wake(&decay_work);
}

void decay_wake(void)
{
    decay_note();
    futex_wake(&decay_state);   /* a nap */
}

/* Nothing waits for its decay: sleep until decay_note (or the end). */
static void park(void)
{
    atomic_store(&parked, 1);
    while (!atomic_load(&decay_work) && atomic_load(&decay_state) != DECAY_OFF)
        futex_wait(&decay_work, 0, NULL);
    atomic_store(&parked, 0);
}

/* Something waits: the next pass in half a decay period (or the end). */
static void nap(uint32_t state)
{
    uint64_t ms = (uint64_t)options.decay_ms / 2;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000 + (ms ? 0 : 1000000)};
    futex_wait(&decay_state, state, &ts);   /* relative, CLOCK_MONOTONIC */
}

static void *release_main(void *arg)
{
    (void)arg;
    uint32_t state;
    while ((state = atomic_load(&decay_state)) != DECAY_OFF) {
        atomic_store(&decay_work, 0);
        if (node_heap_decay_pass())
            nap(state);
        else
            park();
    }
    return NULL;
}

/* The value of a "Name:\tvalue" line of /proc/self/status, or -1. */
static int status_field(const char *st, const char *name)
{
    const char *p = strstr(st, name);
    if (!p)
        return -1;
    for (p += strlen(name); *p == ' ' || *p == '\t'; p++) {}
    return *p >= '0' && *p <= '9' ? *p - '0' : -1;
}

/* Is the process in a sandbox that it set up itself, whose seccomp filter
 * may kill it for a system call the filter does not list (OpenSSH's
 * pre-authentication sandbox kills on clone)?  Such a process has a
 * filter and no_new_privs (which an unprivileged process needs to install
 * one); a container runtime's filter (Docker's default profile allows
 * clone) comes without it.  Also when /proc/self/status does not say. */
static bool sandboxed(void)
{
    char st[4096];
    if (hp_read_file("/proc/self/status", st, sizeof st) <= 0)
        return true;
    int seccomp = status_field(st, "\nSeccomp:"), nnp = status_field(st, "\nNoNewPrivs:");
    return seccomp < 0 || nnp < 0 || (seccomp != 0 && nnp != 0);
}

void decay_start(void)
{
    uint32_t s = DECAY_NONE;
    if (!options.background || !atomic_compare_exchange_strong(&decay_state, &s, DECAY_STARTING))
        return;
    int saved = errno;
    if (sandboxed()) {
        atomic_store(&decay_state, DECAY_OFF);
        errno = saved;
        return;
    }
    int rc = machine_thread_start(release_main, NULL, "numaslab-decay");
    s = DECAY_STARTING;         /* OFF meanwhile: the main thread ended (the new one sees it) */
    atomic_compare_exchange_strong(&decay_state, &s, rc == 0 ? DECAY_RUNNING : DECAY_OFF);
    errno = saved;
}

void decay_start_for(const void *caller)
{
    if (caller && !machine_in_libc(caller) && !machine_in_self(caller))
        decay_start();
}

void decay_thread_exit(void)
{
    if (!options.background)
        return;
    if (syscall(SYS_gettid) != getpid()) {
        if (decay_wanted())
            decay_start();
        return;
    }
    if (atomic_exchange(&decay_state, DECAY_OFF) == DECAY_OFF)
        return;
    atomic_store(&decay_work, 1);
    futex_wake(&decay_state);   /* a nap */
    futex_wake(&decay_work);    /* parked */
}

void decay_fork_child(void)
{
    atomic_store(&parked, 0);
    atomic_store(&decay_state, options.background ? DECAY_NONE : DECAY_OFF);
    atomic_store(&decay_work, options.background && node_heap_keeps());
}

/* Where the C library lies is read once, before any free() can ask. */
__attribute__((constructor)) static void decay_constructor(void)
{
    machine_find_libc();
}
