/* idle_exit.c - the release thread never keeps a process from ending.
 *
 * Three children each start their release thread (32 MiB of small blocks
 * allocated and freed, a thread named numaslab-decay seen), then end:
 *   main          main returns while the release thread sleeps;
 *   thread        another thread calls exit(0) while main waits in pause();
 *   pthread_exit  main calls pthread_exit while a worker goes on: it frees
 *                 32 MiB more (which would start the release thread again),
 *                 then returns: the last thread of the process has ended,
 *                 so the process must end although the release thread was
 *                 alive when main left (it ends with the main thread).
 * Each child writes a byte to a pipe right before it ends (the worker, for
 * pthread_exit); the parent measures from that byte to waitpid's return:
 * at most 1 s, exit status 0.
 */
#define _GNU_SOURCE
#include "idle_common.h"

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

static int out_fd;

static void start_release_thread(void)
{
    size_t cap;
    void **v = id_slots(40 * ID_MIB, 64, &cap);
    size_t n = id_fill(v, cap, 32 * ID_MIB, 64, 4096, (uint64_t)getpid());
    id_free_all(v, n);
    munmap(v, cap * sizeof *v);
    int ours = 0, threads = 0;
    for (int i = 0; i < 200 && ours != 1; i++) {
        id_sleep_ms(10);
        threads = id_threads(&ours);
    }
    if (ours != 1) {
        id_log("FAIL: no release thread (%d threads, %d named " ID_THREAD_NAME ")", threads, ours);
        _exit(3);
    }
}

static void done(void)
{
    char c = 'x';
    if (write(out_fd, &c, 1) != 1)
        _exit(4);
}

static void *exiter(void *arg)
{
    (void)arg;
    id_sleep_ms(200);
    done();
    exit(0);
}

static void *worker(void *arg)
{
    (void)arg;
    id_sleep_ms(300);
    size_t cap;
    void **v = id_slots(40 * ID_MIB, 64, &cap);
    size_t n = id_fill(v, cap, 32 * ID_MIB, 64, 4096, 3);
    id_free_all(v, n);
    id_sleep_ms(200);
    done();
    return NULL;
}

static void run(const char *how)
{
    start_release_thread();
    pthread_t t;
    if (strcmp(how, "main") == 0) {
        id_sleep_ms(100);
        done();
        return;                 /* from main */
    }
    if (strcmp(how, "thread") == 0) {
        pthread_create(&t, NULL, exiter, NULL);
        for (;;)
            pause();
    }
    pthread_create(&t, NULL, worker, NULL);
    pthread_exit(NULL);
}

int main(void)
{
    id_prog = "idle_exit";
    const char *hows[] = {"main", "thread", "pthread_exit"};
    for (int k = 0; k < 3; k++) {
        int p[2];
        if (pipe(p) != 0)
            return 1;
        pid_t pid = fork();
        if (pid == 0) {
            close(p[0]);
            out_fd = p[1];
            run(hows[k]);
            return 0;
        }
        close(p[1]);
        char c;
        ssize_t r = read(p[0], &c, 1);
        uint64_t t0 = id_now_ms();
        int st = 0;
        pid_t w;
        /* a hung child must fail the test, not block it */
        while ((w = waitpid(pid, &st, WNOHANG)) == 0 && id_now_ms() - t0 < 10000)
            id_sleep_ms(5);
        uint64_t ms = id_now_ms() - t0;
        if (w == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        close(p[0]);
        ID_CHECK(r == 1 && w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 && ms <= 1000,
                 "%s: the process ended %.3f s after its last step (status %d%s; at most 1 s)", hows[k], ms / 1000.0,
                 WIFEXITED(st) ? WEXITSTATUS(st) : -1, w == 0 ? ", killed after 10 s" : "");
    }
    return id_finish();
}
