/* live.c - live statistics of a running process, for `numaslab stats PID`
 * and `numaslab top PID` (layout and protocol: live.h).
 *
 * The process publishes its figures into a shared area (a memfd: nothing
 * is left behind when it dies; /proc/PID/fd/N opens it for the process's
 * user and root only, the kernel's ptrace access check).  Who writes:
 *   - from slow paths, at most once a second: every 16th slow path of a
 *     thread looks at the clock.  The 16th slow path of the process makes
 *     the area (memfd_create, ftruncate, mmap) and the first snapshot is
 *     written a second later, so a short-lived command pays three system
 *     calls and no snapshot; one snapshot costs about 600,000 instructions
 *     (mostly formatting the JSON report), 0.02 % of a core at one a
 *     second;
 *   - on request, a helper thread ("numaslab-stats") that sleeps on a
 *     futex of the area and answers each request at once.  It is started
 *     by the first malloc slow path that sees a request (so a process that
 *     is never inspected never has it), from malloc only: free() may be
 *     called by glibc with its stack-cache lock held (thread exit), which
 *     pthread_create takes.  It blocks every signal.
 * Whoever publishes holds no allocator lock when it starts: it collects
 * the figures as ns_stats_get does (taking the locks in their order, like
 * any slow path) and formats the NUMASLAB_STATS reports (text and JSON)
 * into the area under a seqlock; a try-flag, never waited for, keeps two
 * publishers apart.  The tool never blocks the process: it reads the area
 * with retries and waits on a futex for at most a few seconds.  No signal
 * is sent to the process, and it is never stopped.  Until the helper runs,
 * a request waits for the next malloc slow path; if none comes within
 * the tool's 3 seconds it shows the last snapshot with its age (taken at
 * most a second before the process's last slow path).
 *
 * fork: the child inherits the parent's area (and its descriptor, until
 * exec: the child may have reused the number) but not the helper; it
 * makes its own area at its first publication (the parent's stays mapped,
 * unused: 256 KiB of address space) and starts its own helper on its
 * first request. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "api.h"
#include "live.h"

/* area and area_pid are read by every thread's ticks and written by the
 * one publisher (busy_pid): atomics, area released after its header. */
static live_area_t *area;
static int32_t area_pid;
static int32_t busy_pid;        /* the process whose thread publishes     */
static uint64_t next_ms;        /* next periodic publication              */
static int32_t helper_pid;      /* the process whose helper runs          */
static __thread uint32_t events;

static live_area_t *area_create(int32_t pid)
{
    int fd = (int)syscall(SYS_memfd_create, LIVE_NAME, MFD_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (fd < 3) {               /* stdin/out/err were closed: keep them free */
        int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        close(fd);
        if (hi < 0)
            return NULL;
        fd = hi;
    }
    void *m = MAP_FAILED;
    if (ftruncate(fd, (off_t)LIVE_AREA_SIZE) == 0)
        m = mmap(NULL, LIVE_AREA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        close(fd);
        return NULL;
    }
    live_area_t *a = m;
    a->version = LIVE_VERSION;
    a->pid = pid;
    __atomic_store_n(&a->magic, LIVE_MAGIC, __ATOMIC_RELEASE);
    return a;                   /* fd stays open: the tool finds it there */
}

/* Make the area if this process has none; then write a snapshot unless
 * the area is new and nobody asked (the first one comes a second later). */
static void publish(int32_t pid, bool asked)
{
    live_area_t *a = __atomic_load_n(&area, __ATOMIC_ACQUIRE);
    if (a && __atomic_load_n(&area_pid, __ATOMIC_RELAXED) != pid) {
        /* a fork child: the parent's area stays mapped (another thread of
         * the child may still be reading its request word), unused */
        __atomic_store_n(&area, NULL, __ATOMIC_RELEASE);
        a = NULL;
    }
    if (!a) {
        a = area_create(pid);
        if (!a) {
            __atomic_store_n(&next_ms, clock_ms() + 60000, __ATOMIC_RELAXED);
            return;
        }
        __atomic_store_n(&area_pid, pid, __ATOMIC_RELAXED);
        __atomic_store_n(&area, a, __ATOMIC_RELEASE);
        if (!asked) {
            __atomic_store_n(&next_ms, clock_ms() + 1000, __ATOMIC_RELAXED);
            return;
        }
    }
    uint32_t req = __atomic_load_n(&a->request, __ATOMIC_ACQUIRE);
    uint32_t seq = a->seq;
    /* odd before any write of the snapshot (the acquire half keeps them
     * after it) */
    __atomic_exchange_n(&a->seq, seq + 1, __ATOMIC_ACQ_REL);
    stats_collect(&a->stats, a->large_usable);
    a->text_len = stats_format(a->text, LIVE_TEXT_CAP, &a->stats, a->large_usable, false);
    a->json_len = stats_format(a->json, LIVE_JSON_CAP, &a->stats, a->large_usable, true);
    uint64_t now = clock_ms();
    a->published_ms = now;
    a->publishes++;
    __atomic_store_n(&a->seq, seq + 2, __ATOMIC_RELEASE);
    __atomic_store_n(&a->served, req, __ATOMIC_RELEASE);
    syscall(SYS_futex, &a->served, FUTEX_WAKE, 0x7fffffff, NULL, NULL, 0);
    __atomic_store_n(&next_ms, now + 1000, __ATOMIC_RELAXED);
}

/* Publish unless another thread of this process does; a flag left set
 * by a thread of the parent (fork during publication) is taken. */
static void publish_once(int32_t pid, bool asked)
{
    int32_t owner = __atomic_load_n(&busy_pid, __ATOMIC_RELAXED);
    if (owner == pid || !__atomic_compare_exchange_n(&busy_pid, &owner, pid, false, __ATOMIC_ACQUIRE,
                                                     __ATOMIC_RELAXED))
        return;
    publish(pid, asked);
    __atomic_store_n(&busy_pid, 0, __ATOMIC_RELEASE);
}

static void *helper(void *arg)
{
    int32_t pid = (int32_t)(intptr_t)arg;
    for (;;) {
        live_area_t *a = __atomic_load_n(&area, __ATOMIC_ACQUIRE);
        if (!a || __atomic_load_n(&area_pid, __ATOMIC_RELAXED) != pid)
            return NULL;            /* not ours (cannot happen after fork: the child has no helper) */
        uint32_t req = __atomic_load_n(&a->request, __ATOMIC_ACQUIRE);
        if (req != __atomic_load_n(&a->served, __ATOMIC_ACQUIRE))
            publish_once(pid, true);
        else
            syscall(SYS_futex, &a->request, FUTEX_WAIT, req, NULL, NULL, 0);
    }
}

static void start_helper(int32_t pid)
{
    int32_t old = __atomic_load_n(&helper_pid, __ATOMIC_RELAXED);
    if (old == pid || !__atomic_compare_exchange_n(&helper_pid, &old, pid, false, __ATOMIC_ACQ_REL,
                                                   __ATOMIC_RELAXED))
        return;
    if (machine_thread_start(helper, (void *)(intptr_t)pid, "numaslab-stats") != 0)
        __atomic_store_n(&helper_pid, 0, __ATOMIC_RELEASE);   /* try again at the next request */
}

static void check(bool asked, bool from_malloc)
{
    /* no area yet: make it now (three system calls), the first snapshot
     * a second later or when asked */
    if (!asked && __atomic_load_n(&area, __ATOMIC_RELAXED) &&
        clock_ms() < __atomic_load_n(&next_ms, __ATOMIC_RELAXED))
        return;
    if (!tcache_started())
        return;
    int32_t pid = (int32_t)getpid();
    if (asked && __atomic_load_n(&helper_pid, __ATOMIC_RELAXED) == pid)
        return;                 /* the helper answers */
    publish_once(pid, asked);
    if (asked && from_malloc && __atomic_load_n(&area_pid, __ATOMIC_RELAXED) == pid)
        start_helper(pid);
}

static void tick(bool from_malloc)
{
    live_area_t *a = __atomic_load_n(&area, __ATOMIC_ACQUIRE);   /* a plain load on x86 */
    if (a && NS_UNLIKELY(__atomic_load_n(&a->request, __ATOMIC_RELAXED) !=
                         __atomic_load_n(&a->served, __ATOMIC_RELAXED))) {
        check(true, from_malloc);
        return;
    }
    if (NS_LIKELY(++events & 15))
        return;
    check(false, from_malloc);
}

void live_tick_malloc(void) { tick(true); }
void live_tick_free(void) { tick(false); }
