/* idle_seccomp.c - no release thread in a sandbox: a seccomp filter may
 * kill the process for a system call it does not list, and OpenSSH's
 * pre-authentication sandbox does so for clone.
 *
 * A forked child sets no_new_privs and installs a filter that kills the
 * process on clone and clone3 (what pthread_create calls) and allows
 * everything else (as a process that sandboxes itself does), then
 * allocates and frees 32 MiB of small blocks and a few large ones (what
 * starts the release thread anywhere else: the control below), waits
 * 200 ms and checks that it still has one thread; the parent checks that
 * it exited with status 0 (a SIGSYS death would be the thread's start).
 * The control: the same heap freed in a child without a filter has the
 * thread.  SKIP where the filter cannot be installed.
 */
#define _GNU_SOURCE
#include "idle_common.h"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#if defined(__x86_64__)
#define ID_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ID_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#ifndef __NR_clone3
#define __NR_clone3 435
#endif

static int install_filter(void)
{
#ifdef ID_AUDIT_ARCH
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ID_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* A child frees a heap with or without the filter; 0: one thread (with
 * the filter) or the release thread (without), 77: no filter here. */
static int child(bool filtered)
{
    if (filtered && install_filter() != 0) {
        id_log("SKIP: cannot install a seccomp filter: %s", strerror(errno));
        return ID_SKIP;
    }
    size_t cap;
    void **v = id_slots(40 * ID_MIB, 64, &cap);
    size_t n = id_fill(v, cap, 32 * ID_MIB, 64, 4096, 11);
    for (int i = 0; i < 4; i++) {
        void *big = malloc((size_t)1 << (19 + i));
        if (big)
            memset(big, 1, 4096);
        free(big);
    }
    id_free_all(v, n);
    id_sleep_ms(200);
    int ours, threads = id_threads(&ours);
    if (filtered) {
        ID_CHECK(threads == 1, "under a seccomp filter that kills on clone: %d thread(s) (1)", threads);
    } else {
        ID_CHECK(threads == 2 && ours == 1, "without a filter: %d threads, %d named " ID_THREAD_NAME " (2 and 1)",
                 threads, ours);
    }
    return id_failures ? 1 : 0;
}

static int run(bool filtered)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(child(filtered));
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return -1;
    if (WIFSIGNALED(st)) {
        id_log("FAIL: the child %s was killed by signal %d (%s)", filtered ? "under the filter" : "without a filter",
               WTERMSIG(st), WTERMSIG(st) == SIGSYS ? "SIGSYS: a system call the filter kills on" : "?");
        return 1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(void)
{
    id_prog = "idle_seccomp";
    int control = run(false), filtered = run(true);
    if (filtered == ID_SKIP)
        return ID_SKIP;
    ID_CHECK(control == 0, "the control child (no filter) passed its checks and exited 0 (%d)", control);
    ID_CHECK(filtered == 0, "the child under the filter passed its checks and exited 0 (%d)", filtered);
    return id_finish();
}
