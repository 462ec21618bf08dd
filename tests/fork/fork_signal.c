/* fork_signal.c - fork() from a signal handler while other threads allocate.
 *
 * FORK_THREADS (default 6) load threads allocate, check, realloc and free
 * blocks without pause (fork_common.h, fk_churn_main).  An interval timer
 * (setitimer ITIMER_REAL, FORK_SIGNAL_US microseconds, default 10000)
 * raises SIGALRM; its handler calls fork().  The child, still inside the
 * handler, allocates a few blocks (24 B .. 400 KiB), checks them, reallocs
 * one, checks and frees them, and _exit()s with 0, or 1 on a mismatch.
 * (POSIX allows only async-signal-safe calls there; glibc supports malloc in
 * a child forked from a handler in practice, and so must a malloc
 * replacement.)  The main thread reaps the children with waitpid() and
 * checks that each exited with status 0.  Fails on a bad child, a fork
 * error, no fork at all, a damaged block in a load thread, or a hang.
 *
 * Which thread runs the handler matters.  If SIGALRM interrupted malloc in
 * the very thread that runs the handler, fork()'s atfork prepare handler
 * would wait for an allocator lock that this same thread holds (below it,
 * on its own stack) and deadlock: with a non-recursive lock that is not a
 * bug the allocator can fix, and glibc's malloc has it too.  So SIGALRM is
 * blocked (pthread_sigmask) in the main thread and in every thread that
 * allocates, and delivered to a dedicated thread that never allocates: it
 * only waits in sigsuspend().  What the test exercises is a fork from a
 * handler while OTHER threads are interrupted anywhere in malloc/free,
 * holding allocator locks or not.  The handler checks that it runs in that
 * thread.
 */
#define _GNU_SOURCE
#include "fork_common.h"

#include <sys/time.h>

static atomic_int stop;
static atomic_int sig_tid;
static atomic_int sig_ready;
static _Atomic uint64_t forked, reaped, fork_errors, wrong_thread;
static atomic_int last_fork_errno;

/* ------------------------------------------------------------ the handler */

/* In the child forked by the handler.  Never returns. */
static void child_in_handler(uint64_t seed)
{
    fk_child_begin();
    const char *who = "child forked in the SIGALRM handler";
    static const size_t sizes[] = {24, 320, 4000, 60000, 400000};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    fk_block b[NS];
    tk_rng r;
    tk_rng_seed(&r, seed);
    for (unsigned k = 0; k < NS; k++)
        if (!fk_alloc(who, &b[k], sizes[k] + tk_below(&r, 64), k, 7, k))
            b[k].p = NULL;
    for (unsigned k = 0; k < NS; k++)
        if (b[k].p)
            fk_check(who, &b[k]);
    if (b[1].p)
        fk_realloc(who, &b[1], 9000, 99);
    for (unsigned k = 0; k < NS; k++)
        fk_free(who, &b[k]);
    _exit(fk_nfail() ? 1 : 0);
}

static void on_alarm(int sig)
{
    (void)sig;
    int saved = errno;
    if (gettid() != atomic_load(&sig_tid)) {
        /* would risk the same-thread deadlock described above: no fork */
        atomic_fetch_add(&wrong_thread, 1);
        errno = saved;
        return;
    }
    uint64_t n = atomic_load(&forked);
    pid_t pid = fork();
    if (pid == 0)
        child_in_handler(tk_mix64(n ^ fk_cfg.seed));
    if (pid < 0) {
        atomic_store(&last_fork_errno, errno);
        atomic_fetch_add(&fork_errors, 1);
    } else {
        atomic_fetch_add(&forked, 1);
    }
    errno = saved;
}

/* The only thread with SIGALRM unblocked; allocates nothing. */
static void *signal_thread_main(void *arg)
{
    (void)arg;
    sigset_t wait;
    pthread_sigmask(SIG_BLOCK, NULL, &wait);
    sigdelset(&wait, SIGALRM);
    atomic_store(&sig_tid, gettid());
    atomic_store(&sig_ready, 1);
    while (!atomic_load(&stop))
        sigsuspend(&wait); /* returns after each handler */
    return NULL;
}

/* ------------------------------------------------------------ main */

static void reap(int options)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, options)) != 0) {
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            if (errno != ECHILD)
                fk_fail("waitpid: %s\n", strerror(errno));
            return;
        }
        atomic_fetch_add(&reaped, 1);
        if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
            fk_progress();
        else if (WIFEXITED(st))
            fk_fail("child %d (forked in the handler) exited with status %d\n", (int)pid, WEXITSTATUS(st));
        else if (WIFSIGNALED(st))
            fk_fail("child %d (forked in the handler) was killed by signal %d (%s)\n", (int)pid, WTERMSIG(st),
                    strsignal(WTERMSIG(st)));
    }
}

int main(void)
{
    fk_configure("fork_signal", 6);
    long period_us = fk_env_long("FORK_SIGNAL_US", 10000, 100, 10000000);
    fk_watchdog(NULL);
    if (!fk_check_malloc_origin())
        return 1;

    /* SIGALRM blocked here, so in every thread created from now on */
    sigset_t alrm;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGALRM, &sa, NULL) != 0) {
        fk_log("FAIL: sigaction: %s\n", strerror(errno));
        return 1;
    }

    unsigned nthreads = (unsigned)fk_cfg.threads;
    static fk_churn ch[1024];
    fk_churn_start(ch, nthreads, &stop, 0);
    pthread_t sth;
    fk_thread_start(&sth, signal_thread_main, NULL);
    while (!atomic_load(&sig_ready))
        fk_sleep_ms(1);

    struct itimerval it = {{period_us / 1000000, period_us % 1000000}, {period_us / 1000000, period_us % 1000000}};
    if (setitimer(ITIMER_REAL, &it, NULL) != 0) {
        fk_log("FAIL: setitimer: %s\n", strerror(errno));
        return 1;
    }
    while (fk_running(atomic_load(&forked)) && fk_nfail() == 0) {
        reap(WNOHANG);
        fk_sleep_ms(2);
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);

    /* wake the signal thread (one last fork) and let it see stop */
    atomic_store(&stop, 1);
    pthread_kill(sth, SIGALRM);
    fk_thread_join(sth);
    uint64_t ops = fk_churn_join(ch, nthreads);
    reap(0);
    fk_q_drain("main thread at the end");

    uint64_t nf = atomic_load(&forked), nr = atomic_load(&reaped);
    if (nr != nf)
        fk_fail("%" PRIu64 " children forked, %" PRIu64 " reaped\n", nf, nr);
    if (nf == 0)
        fk_fail("no fork happened in the handler\n");
    if (atomic_load(&fork_errors))
        fk_fail("%" PRIu64 " forks failed in the handler (last: %s)\n", atomic_load(&fork_errors),
                strerror(atomic_load(&last_fork_errno)));
    if (atomic_load(&wrong_thread))
        fk_fail("SIGALRM ran %" PRIu64 " times in a thread other than the signal thread\n",
                atomic_load(&wrong_thread));
    fk_log("%s: %" PRIu64 " forks from the SIGALRM handler (every %ld us), %u load threads, %" PRIu64
           " operations, %.1f s, seed 0x%" PRIx64 "\n",
           fk_nfail() ? "FAIL" : "ok", nf, period_us, nthreads, ops, fk_elapsed(), fk_cfg.seed);
    return fk_nfail() ? 1 : 0;
}
