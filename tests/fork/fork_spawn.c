/* fork_spawn.c - posix_spawn() and vfork()+execve() under allocation load.
 *
 * FORK_THREADS (default 8) load threads allocate, check, realloc and free
 * blocks without pause and hand blocks to each other (fork_common.h).  The
 * main thread starts /bin/true over and over, by turns:
 *   - posix_spawn() with file actions (stdout to /dev/null: the actions
 *     list is allocated with malloc/realloc) and attributes (signal mask);
 *   - vfork() + execve() (the child calls nothing but execve and _exit);
 * and checks for each that it started (posix_spawn returned 0) and exited
 * with status 0 (waitpid).  Neither runs the atfork handlers, but both run
 * while other threads are inside malloc and free: a spawn must not hang or
 * disturb them.  When the allocator is preloaded, /bin/true runs under it
 * too (LD_PRELOAD is inherited).  Fails on a spawn error, a child that did
 * not exit 0, no spawn at all, a load thread that did no work or saw a
 * damaged block, or a hang.  SKIPs if /bin/true is not there.
 */
#define _GNU_SOURCE
#include "fork_common.h"

#include <spawn.h>

extern char **environ;

static atomic_int stop;
static _Atomic uint64_t spawns_done;

static const char *true_path = "/bin/true";

static pid_t by_posix_spawn(void)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int e;
    if ((e = posix_spawn_file_actions_init(&fa)) != 0) {
        fk_fail("posix_spawn_file_actions_init: %s\n", strerror(e));
        return -1;
    }
    if ((e = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)) != 0)
        fk_fail("posix_spawn_file_actions_addopen: %s\n", strerror(e));
    if ((e = posix_spawnattr_init(&at)) != 0) {
        fk_fail("posix_spawnattr_init: %s\n", strerror(e));
        posix_spawn_file_actions_destroy(&fa);
        return -1;
    }
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    char *argv[] = {(char *)"true", NULL};
    pid_t pid = -1;
    if ((e = posix_spawn(&pid, true_path, &fa, &at, argv, environ)) != 0) {
        fk_fail("posix_spawn(%s): %s\n", true_path, strerror(e));
        pid = -1;
    }
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static pid_t by_vfork(void)
{
    char *argv[] = {(char *)"true", NULL};
    char **envp = environ;
    pid_t pid = vfork();
    if (pid == 0) {
        execve(true_path, argv, envp);
        _exit(127);
    }
    if (pid < 0)
        fk_fail("vfork: %s\n", strerror(errno));
    return pid;
}

int main(void)
{
    fk_configure("fork_spawn", 8);
    if (access(true_path, X_OK) != 0) {
        fk_log("SKIP: %s is not an executable here\n", true_path);
        return FK_SKIP;
    }
    fk_watchdog(NULL);
    if (!fk_check_malloc_origin())
        return 1;

    unsigned nthreads = (unsigned)fk_cfg.threads;
    static fk_churn ch[1024];
    fk_churn_start(ch, nthreads, &stop, 0);

    uint64_t n[2] = {0, 0};
    for (unsigned i = 0; fk_running(atomic_load(&spawns_done)) && fk_nfail() == 0; i++) {
        int how = (int)(i & 1);
        pid_t pid = how == 0 ? by_posix_spawn() : by_vfork();
        if (pid < 0)
            break;
        if (fk_wait_ok(pid, how == 0 ? "/bin/true started by posix_spawn" : "/bin/true started by vfork+execve")) {
            n[how]++;
            atomic_fetch_add(&spawns_done, 1);
            fk_progress();
        }
    }

    atomic_store(&stop, 1);
    uint64_t ops = fk_churn_join(ch, nthreads);
    fk_q_drain("main thread at the end");
    if (n[0] == 0 || n[1] == 0)
        fk_fail("no successful spawn (posix_spawn %" PRIu64 ", vfork %" PRIu64 ")\n", n[0], n[1]);
    fk_log("%s: %" PRIu64 " posix_spawn + %" PRIu64 " vfork/execve of %s, %u load threads, %" PRIu64
           " operations, %.1f s, seed 0x%" PRIx64 "\n",
           fk_nfail() ? "FAIL" : "ok", n[0], n[1], true_path, nthreads, ops, fk_elapsed(), fk_cfg.seed);
    return fk_nfail() ? 1 : 0;
}
