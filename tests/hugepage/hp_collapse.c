/* hp_collapse.c - no malloc call collapses a SuperSlab (issue 12: slow
 * paths in the user's call).  MADV_COLLAPSE allocates a huge page and
 * copies the SuperSlab into it while it holds the process's mmap lock:
 * milliseconds (6 ms in this project's VMs), so a malloc that promoted a
 * SuperSlab used to stall for up to four of them.  The release thread
 * does it now whenever it runs (numa/node_pool.c).
 *
 * The truth here is the kernel's: a seccomp filter on one thread traps
 * every madvise(..., MADV_COLLAPSE) that thread makes (SIGSYS, counted,
 * the call skipped).  The release thread runs before that thread starts
 * (it collapses only while it runs; one it started would inherit the
 * filter).  That thread grows a 24 MiB heap of 256-byte blocks
 * (past the four SuperSlabs after which dense ones are promoted), written
 * in full; then:
 *  1. it made no MADV_COLLAPSE call (the count is 0);
 *  2. the heap reaches 90 % huge pages within 3 s (smaps), if this kernel
 *     has MADV_COLLAPSE (else 80 %, as hp_sparse): the release thread,
 *     started before by the main thread (no filter), collapsed them;
 *  3. every block is intact.
 * SKIP when seccomp filters cannot be installed (qemu-user, old kernels).
 */
#include "hp_util.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#if defined(__x86_64__)
#define HP_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define HP_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

static volatile sig_atomic_t traps;

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)si, (void)uc;
    traps++;            /* the call is skipped: a failed collapse, harmless */
}

/* Trap madvise(_, _, MADV_COLLAPSE) on the calling thread; false: cannot. */
static bool trap_collapse(void)
{
#ifdef HP_AUDIT_ARCH
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, HP_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_madvise, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[2])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MADV_COLLAPSE, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO;
    if (sigaction(SIGSYS, &sa, NULL) != 0)
        return false;
    /* no_new_privs on this thread only: /proc/self/status shows the main
     * thread's, so the allocator does not take the process for a sandbox */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return false;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0;
#else
    return false;
#endif
}

static hp_blks_t heap;
static int filtered;

static void *grow(void *arg)
{
    (void)arg;
    if (trap_collapse()) {
        filtered = 1;
        for (size_t i = 0; i < 24 * MiB / 256; i++)
            if (!hp_alloc_one(&heap, 256, (uint32_t)i))
                break;
    }
    return NULL;
}

/* A thread with a cache that exits: its destructor starts the release
 * thread once something is releasable (README "Background release"). */
static void *brief(void *arg)
{
    (void)arg;
    free(malloc(16));
    return NULL;
}

int main(void)
{
    const char *thp = hp_thp_mode();
    printf("hp_collapse: NUMASLAB_PAGES=%s, THP '%s'\n", hp_pages_mode(), thp);
    if (strcmp(hp_pages_mode(), "thp") != 0)
        hp_skip("the default page mode (NUMASLAB_PAGES unset or thp) promotes SuperSlabs, not '%s'", hp_pages_mode());
    if (strcmp(thp, "never") == 0)
        hp_skip("THP is 'never': nothing is promoted (run through thp.sh as root)");
    hp_blks_init(&heap, 24 * MiB / 256 + 16);
    /* the release thread first (a cached large mapping is releasable, a
     * thread's exit starts it): it collapses only while it runs, and is
     * never started for a collapse alone */
    free(malloc(4 * MiB));
    pthread_t t;
    if (pthread_create(&t, NULL, brief, NULL) != 0 || pthread_join(t, NULL) != 0)
        hp_skip("no thread");
    CHECK(hp_threads() == 2, "the release thread runs before the heap grows (%d threads, 2)", hp_threads());
    if (pthread_create(&t, NULL, grow, NULL) != 0 || pthread_join(t, NULL) != 0)
        hp_skip("no thread");
    if (!filtered)
        hp_skip("seccomp filters cannot be installed here (%s)", strerror(errno));
    CHECK(heap.n == 24 * MiB / 256, "24 MiB of 256-byte blocks allocated (%zu)", heap.n);

    hp_ssset_t set;
    hp_ssset_of(&set, &heap);
    ns_stats_t st;
    hp_tot_t tot;
    hp_stats(&st, &tot);
    hp_print_tot("after growing", &tot);
    CHECK(tot.superslabs >= 8, "the heap spans %llu SuperSlabs (>= 8: dense ones were promoted)",
          (unsigned long long)tot.superslabs);
    CHECK(traps == 0, "no malloc call ran MADV_COLLAPSE: %d trapped on the allocating thread", (int)traps);

    bool collapse = hp_collapse_works();
    double want = collapse ? 0.90 : 0.80;
    hp_mem_t m;
    long waited = hp_wait_huge(&set, &m, want);
    hp_print_mem("24 MiB of 256-byte blocks", &m);
    hp_note("the release thread's collapses: %ld ms waited; %d threads", waited, hp_threads());
    CHECK(hp_huge_share(&m) >= want, "the release thread made the heap huge: %.1f %% (>= %.0f %%; MADV_COLLAPSE %s)",
          100.0 * hp_huge_share(&m), 100 * want, collapse ? "works" : "unavailable");
    CHECK(hp_threads() == 2, "the release thread runs (%d threads, 2)", hp_threads());
    CHECK(traps == 0, "the release thread is not filtered: %d trapped", (int)traps);

    size_t bad = hp_verify_all(&heap);
    CHECK(bad == 0, "all %zu blocks intact (%zu corrupted)", heap.n, bad);
    return hp_finish("hp_collapse");
}
