/* test_hardened.c - what a hardened build (NUMASLAB_HARDENED=ON) adds, run
 * against the hardened core.  Each misuse runs in a forked child; the parent
 * checks how it died and what it printed.
 *
 *   - a double free is caught for every size class, also when the first
 *     free put the block into ANOTHER thread's cache (a plain build cannot);
 *   - a write after free that points a free list elsewhere never makes
 *     malloc return the planted address: the corrupted link is detected;
 *   - the page after the SuperSlab header and the SuperSlab's last page are
 *     guard pages;
 *   - the API still works: every class, aligned blocks, large blocks.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "numaslab.h"

#define SS ((uintptr_t)2 << 20)
#define SS_HEADER 8192

/* Run fn in a child with stderr captured; returns its wait status. */
static int run_child(void (*fn)(void *), void *arg, char *err, size_t cap)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL);    /* cmocka's handlers would catch them */
        signal(SIGBUS, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        dup2(pfd[1], 2);
        close(pfd[0]);
        fn(arg);
        _exit(0);
    }
    close(pfd[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(pfd[0], err + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    err[n] = 0;
    close(pfd[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static void expect_abort(int st, const char *err, const char *what)
{
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
        fail_msg("expected SIGABRT for %s, got status 0x%x; stderr: %s", what, st, err);
    if (!strstr(err, "numaslab") || !strstr(err, what))
        fail_msg("stderr does not report '%s': %s", what, err);
}

/* ------------------------------------------------------------ double free */
static void dfree_same_thread(void *arg)
{
    size_t size = *(size_t *)arg;
    void *p = ns_malloc(size);
    ns_free(p);
    ns_free(p);
}

static void double_free_every_class(void **state)
{
    (void)state;
    char err[512];
    for (size_t size = 8; size <= ((size_t)256 << 10); size = size < 128 ? size + 16 : size + size / 8) {
        int st = run_child(dfree_same_thread, &size, err, sizeof err);
        expect_abort(st, err, "double free");
    }
}

static void *free_in_thread(void *p)
{
    ns_free(p);          /* into this thread's cache */
    return NULL;
}

static void dfree_other_thread(void *arg)
{
    (void)arg;
    void *p = ns_malloc(48);
    void *keep[8];
    for (int i = 0; i < 8; i++)
        keep[i] = ns_malloc(48);
    pthread_t t;
    pthread_create(&t, NULL, free_in_thread, p);
    pthread_join(t, NULL);         /* its cache is flushed at exit; first free done */
    pthread_create(&t, NULL, free_in_thread, keep[0]);
    pthread_join(t, NULL);
    ns_free(p);                    /* second free, from another thread */
}

static void *hold_and_wait(void *arg)
{
    void **pp = arg;
    ns_free(*pp);                  /* sits in this live thread's cache */
    *pp = NULL;
    pause();
    return NULL;
}

static void dfree_while_cached_elsewhere(void *arg)
{
    (void)arg;
    void *p = ns_malloc(200);
    void *shared = p;
    pthread_t t;
    pthread_create(&t, NULL, hold_and_wait, &shared);
    while (__atomic_load_n(&shared, __ATOMIC_ACQUIRE))
        usleep(1000);
    ns_free(p);                    /* p is in the other thread's cache now */
}

static void double_free_across_threads(void **state)
{
    (void)state;
    char err[512];
    expect_abort(run_child(dfree_other_thread, NULL, err, sizeof err), err, "double free");
    expect_abort(run_child(dfree_while_cached_elsewhere, NULL, err, sizeof err), err, "double free");
}

/* ------------------------------------------------------- write after free */
static void uaf_redirect(void *arg)
{
    (void)arg;
    static char target[256] __attribute__((aligned(64)));
    void *a = ns_malloc(64), *b = ns_malloc(64);
    ns_free(b);
    ns_free(a);                              /* cache: a -> b */
    *(void **)a = target;                    /* the attacker's link */
    void *x = ns_malloc(64);                 /* a */
    void *y = ns_malloc(64);                 /* must not be target */
    if (y == (void *)target || x == (void *)target) {
        fprintf(stderr, "malloc returned the planted address\n");
        _exit(3);
    }
    _exit(4);                                /* undetected */
}

static void write_after_free_detected(void **state)
{
    (void)state;
    char err[512];
    int st = run_child(uaf_redirect, NULL, err, sizeof err);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 3)
        fail_msg("a write after free made malloc return the attacker's address");
    expect_abort(st, err, "heap corruption");
}

/* ------------------------------------------------------------ guard pages */
static void touch_after_header(void *arg)
{
    (void)arg;
    char *p = ns_malloc(64);
    volatile char *ss = (char *)((uintptr_t)p & ~(SS - 1));
    ss[SS_HEADER + 8] = 1;
    _exit(5);
}

static void touch_ss_end(void *arg)
{
    (void)arg;
    char *p = ns_malloc(64);
    volatile char *ss = (char *)((uintptr_t)p & ~(SS - 1));
    ss[SS - 16] = 1;
    _exit(5);
}

static void guard_pages(void **state)
{
    (void)state;
    if (sysconf(_SC_PAGESIZE) != 4096) {        /* README "Architectures" */
        print_message("pages of %ld bytes: the SuperSlab guard pages need 4 KiB pages\n", sysconf(_SC_PAGESIZE));
        skip();
    }
    char err[256];
    int st = run_child(touch_after_header, NULL, err, sizeof err);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
    st = run_child(touch_ss_end, NULL, err, sizeof err);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV);
}

/* ------------------------------------------------------------- it works */
static void api_still_works(void **state)
{
    (void)state;
    enum { N = 4000 };
    static unsigned char *p[N];
    static size_t sz[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            sz[i] = (size_t)(i * 37 % 9000) + 1 + (i % 97 == 0 ? (size_t)300 << 10 : 0);
            p[i] = i % 5 == 0 ? ns_memalign((size_t)64 << (i % 7), sz[i]) : ns_malloc(sz[i]);
            assert_non_null(p[i]);
            memset(p[i], (unsigned char)i, sz[i]);
        }
        for (int i = 0; i < N; i += 2) {
            for (size_t k = 0; k < sz[i]; k += 61)
                assert_int_equal(p[i][k], (unsigned char)i);
            ns_free(p[i]);
        }
        for (int i = 1; i < N; i += 2) {
            p[i] = ns_realloc(p[i], sz[i] * 2);
            assert_non_null(p[i]);
            for (size_t k = 0; k < sz[i]; k += 61)
                assert_int_equal(p[i][k], (unsigned char)i);
            ns_free(p[i]);
        }
    }
}

int main(void)
{
    ns_free(ns_malloc(1));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(api_still_works),
        cmocka_unit_test(double_free_every_class),
        cmocka_unit_test(double_free_across_threads),
        cmocka_unit_test(write_after_free_detected),
        cmocka_unit_test(guard_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
