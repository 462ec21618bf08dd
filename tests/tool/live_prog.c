/* live_prog.c - a busy multithreaded process for tests/tool/live.sh.
 *   live_prog THREADS BLOCKS SIZE [CHILD_MIB]
 * THREADS threads each hold BLOCKS blocks of SIZE bytes, each filled with
 * a pattern of its own, and churn them (free one, check its pattern,
 * allocate a new one), with batches of 64 short-lived blocks of 16..4095
 * bytes in between, until SIGTERM; then every block is checked again.
 * With CHILD_MIB, a forked child first holds CHILD_MIB MiB in 64 KiB
 * blocks, allocates a large block every 20 ms and stops at SIGTERM too
 * (its pid is printed first).  Prints
 * "ready PID" when every thread holds its blocks; exits 1 on a bad
 * block.  Linked normally: numaslab comes through LD_PRELOAD. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static int nblocks;
static size_t size;
static int ready;
static int bad;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void on_term(int s) { (void)s; stop = 1; }

static void fill(unsigned char *p, uint32_t seed)
{
    for (size_t i = 0; i < size; i++)
        p[i] = (unsigned char)(seed * 31u + i * 7u);
}

static int check(const unsigned char *p, uint32_t seed)
{
    for (size_t i = 0; i < size; i++)
        if (p[i] != (unsigned char)(seed * 31u + i * 7u))
            return 0;
    return 1;
}

static void *worker(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    unsigned char **b = calloc((size_t)nblocks, sizeof *b);
    uint32_t *seed = calloc((size_t)nblocks, sizeof *seed);
    for (int i = 0; i < nblocks; i++) {
        seed[i] = id * 1000003u + (uint32_t)i;
        b[i] = malloc(size);
        fill(b[i], seed[i]);
    }
    pthread_mutex_lock(&mu);
    ready++;
    pthread_mutex_unlock(&mu);
    uint32_t x = id + 1, gen = 0;
    while (!stop) {
        for (int k = 0; k < 256; k++) {
            x = x * 1103515245u + 12345u;
            int i = (int)((x >> 8) % (uint32_t)nblocks);
            if (!check(b[i], seed[i]))
                __atomic_store_n(&bad, 1, __ATOMIC_RELAXED);
            free(b[i]);
            seed[i] = id * 1000003u + (++gen << 12);
            b[i] = malloc(size);
            fill(b[i], seed[i]);
        }
        /* short-lived blocks of other sizes, 64 at a time (what a server
         * does besides its long-lived data) */
        void *tmp[64];
        for (int k = 0; k < 64; k++) {
            x = x * 1103515245u + 12345u;
            size_t n = 16 + (x >> 8) % 4080;
            tmp[k] = malloc(n);
            memset(tmp[k], k, n < 64 ? n : 64);
        }
        for (int k = 0; k < 64; k++)
            free(tmp[k]);
        usleep(1000);
    }
    for (int i = 0; i < nblocks; i++) {
        if (!check(b[i], seed[i]))
            __atomic_store_n(&bad, 1, __ATOMIC_RELAXED);
        free(b[i]);
    }
    free(b);
    free(seed);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 4)
        return 2;
    int threads = atoi(argv[1]);
    nblocks = atoi(argv[2]);
    size = (size_t)atol(argv[3]);
    signal(SIGTERM, on_term);
    pid_t child = 0;
    if (argc > 4) {
        size_t mib = (size_t)atol(argv[4]);
        child = fork();
        if (child == 0) {
            size_t n = mib * 16;
            unsigned char **c = malloc(n * sizeof *c);
            for (size_t i = 0; i < n; i++) {
                c[i] = malloc(65536);
                memset(c[i], (int)(i & 0xff), 65536);
            }
            /* a large block now and then (a slow path): the child's
             * first request is answered at its next malloc slow path */
            while (!stop) {
                free(malloc(300000));
                usleep(20000);
            }
            for (size_t i = 0; i < n; i++)
                if (c[i][65535] != (unsigned char)(i & 0xff))
                    _exit(1);
            _exit(0);
        }
        printf("child %d\n", (int)child);
    }
    pthread_t *t = calloc((size_t)threads, sizeof *t);
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i);
    while (__atomic_load_n(&ready, __ATOMIC_ACQUIRE) < threads)
        usleep(1000);
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    int st = 0;
    if (child) {
        kill(child, SIGTERM);
        waitpid(child, &st, 0);
    }
    if (bad || (child && (!WIFEXITED(st) || WEXITSTATUS(st) != 0))) {
        fprintf(stderr, "live_prog: a block lost its contents (bad %d, child status %d)\n", bad, st);
        return 1;
    }
    return 0;
}
