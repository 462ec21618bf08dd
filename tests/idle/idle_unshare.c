/* idle_unshare.c - no release thread in a process that has nothing to give
 * back, so a single-threaded program can still enter a new user namespace
 * (unshare(CLONE_NEWUSER) fails with EINVAL in a multithreaded process).
 *
 *   1. Can this machine do it at all?  A forked child (one thread, whatever
 *      the allocator) tries unshare(CLONE_NEWUSER); if the kernel refuses
 *      (unprivileged user namespaces off, a container's seccomp) the test
 *      is skipped.
 *   2. 32 MiB of small blocks and four large ones (1..8 MiB) are allocated
 *      and never freed; a few small blocks are freed (nothing falls
 *      empty).  1.5 s later (past NUMASLAB_DECAY_MS): one thread, and
 *      unshare(CLONE_NEWUSER) succeeds.
 *   3. The control, which shows that step 2 could fail: 16 MiB of small
 *      blocks allocated and freed make SuperSlabs empty; the next free
 *      starts the thread (named numaslab-decay), and unshare(CLONE_NEWUSER)
 *      now fails with EINVAL: the caveat the README states (and why
 *      NUMASLAB_BACKGROUND=0 exists).
 */
#define _GNU_SOURCE
#include "idle_common.h"

#include <sched.h>
#include <sys/wait.h>

static int probe(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : errno == EINVAL ? 2 : 1);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

int main(void)
{
    id_prog = "idle_unshare";
    int p = probe();
    if (p != 0) {
        id_log("SKIP: unshare(CLONE_NEWUSER) fails in a single-threaded child here (%s)",
               p == 1 ? "refused by the kernel: user namespaces off or filtered" : "probe failed");
        return ID_SKIP;
    }
    size_t cap;
    void **v = id_slots(48 * ID_MIB, 64, &cap);
    size_t n = id_fill(v, cap, 32 * ID_MIB, 16, 2048, 7);
    void *large[4];
    for (int i = 0; i < 4; i++) {
        size_t sz = ((size_t)1 << (20 + i)) + 4096 * (size_t)i;
        large[i] = malloc(sz);
        ID_CHECK(large[i] != NULL, "malloc(%zu)", sz);
        if (large[i])
            memset(large[i], 1, sz);
    }
    for (size_t i = 0; i < n; i += n / 16)
        free(v[i]), v[i] = NULL;
    id_sleep_ms(1500);
    int ours, threads = id_threads(&ours);
    ID_CHECK(threads == 1, "32 MiB of small and 15 MiB of large blocks, a few small ones freed, 1.5 s: %d thread(s) "
             "(1)", threads);
    int rc = unshare(CLONE_NEWUSER);
    ID_CHECK(rc == 0, "unshare(CLONE_NEWUSER) in the single-threaded process: %s", rc == 0 ? "done" : strerror(errno));

    /* the control: something to give back starts the thread */
    size_t m = id_fill(v + n, cap - n, 16 * ID_MIB, 16, 2048, 8);
    id_free_all(v + n, m);
    id_sleep_ms(200);
    threads = id_threads(&ours);
    ID_CHECK(threads == 2 && ours == 1, "16 MiB allocated and freed: %d threads, %d named " ID_THREAD_NAME
             " (2 and 1)", threads, ours);
    rc = unshare(CLONE_NEWUSER);
    ID_CHECK(rc != 0 && errno == EINVAL, "with the thread running unshare(CLONE_NEWUSER) fails with EINVAL: %s",
             rc == 0 ? "it succeeded" : strerror(errno));
    return id_finish();
}
