/* test_badfree.c - invalid frees are detected: one line on stderr naming the
 * pointer, then abort (default) or carry on (NUMASLAB_ABORT_ON_ERROR=0).
 *
 * Every case runs in a fresh child: the parent fork()s and execve()s
 * /proc/self/exe with argv = {exe, "--child", case} and the environment it
 * wants, so options are read by a freshly initialised allocator.  The child
 * reports the exact pointer it passes to ns_free on stdout (first line,
 * formatted with "%p"), then frees it; the allocator's message must be the
 * only thing on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "numaslab.h"
#include "integ_util.h"

extern char **environ;

#define ENV_NAME "NUMASLAB_ABORT_ON_ERROR"
#define CHILD_TIMEOUT_MS 20000

/* ------------------------------------------------------------ child side */

/* Tell the parent which pointer is about to be freed (stdout, unbuffered). */
static void announce(const void *p)
{
    char line[64];
    int n = snprintf(line, sizeof line, "%p\n", p);
    if (write(1, line, (size_t)n) != n)
        _exit(90);
}

/* Diagnostics of the child go to stdout, after the pointer line, so that
 * stderr holds only what the allocator wrote. */
static void child_fail(const char *msg)
{
    char line[256];
    int n = snprintf(line, sizeof line, "CHILD-FAIL: %s\n", msg);
    if (write(1, line, (size_t)n) < 0)
        _exit(91);
    _exit(3);
}

/* After an invalid free was reported and ignored, the heap must still work:
 * blocks of `size` are distinct and hold what is written into them. */
static void child_heap_still_sane(size_t size, int count)
{
    void **v = mmap(NULL, (size_t)count * sizeof *v, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (v == MAP_FAILED)
        child_fail("mmap for the pointer array failed");
    for (int i = 0; i < count; i++) {
        v[i] = ns_malloc(size);
        if (!v[i])
            child_fail("ns_malloc returned NULL after the invalid free");
        pat_fill(v[i], size, (uint32_t)i);
    }
    for (int i = 0; i < count; i++)
        if (pat_check(v[i], size, (uint32_t)i) != PAT_OK)
            child_fail("blocks overlap after the invalid free (same block handed out twice?)");
    qsort(v, (size_t)count, sizeof *v, cmp_ptr);
    for (int i = 1; i < count; i++)
        if (v[i] == v[i - 1])
            child_fail("the same block was handed out twice after the invalid free");
    for (int i = 0; i < count; i++)
        ns_free(v[i]);
    munmap(v, (size_t)count * sizeof *v);
}

static void *free_in_thread(void *p)
{
    ns_free(p);
    return NULL;
}

static int child_main(const char *what)
{
    /* Initialise the allocator and keep some memory of ours mapped. */
    void *warm_small = ns_malloc(64), *warm_large = ns_malloc(1 * MiB);
    if (!warm_small || !warm_large)
        child_fail("warm-up allocation failed");

    if (strcmp(what, "stack") == 0) {
        volatile char buf[256];
        buf[0] = 1;
        char *p = (char *)buf + 64;
        announce(p);
        ns_free(p);
        child_heap_still_sane(64, 1000);
    } else if (strcmp(what, "mmap") == 0) {
        char *m = mmap(NULL, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                       0);
        if (m == MAP_FAILED)
            child_fail("mmap failed");
        /* a 2 MiB-aligned address inside the mapping, as a SuperSlab would be */
        char *p = (char *)(((uintptr_t)m + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1));
        p[0] = 1;
        announce(p);
        ns_free(p);
        if (p[0] != 1)
            child_fail("the foreign mapping was modified by ns_free");
        child_heap_still_sane(64, 1000);
    } else if (strcmp(what, "high") == 0) {
        /* above every address map numaslab has (47 bits on x86-64, 48 on
         * arm64): memory the program mapped there with a hint (5-level
         * paging, 52-bit arm64), or else an unmapped address up there */
        char *m = mmap((void *)((uintptr_t)1 << 50), 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        char *p = m != MAP_FAILED && (uintptr_t)m >> 48 ? m : (char *)(((uintptr_t)1 << 56) - 2 * MiB);
        announce(p);
        ns_free(p);
        child_heap_still_sane(64, 1000);
    } else if (strcmp(what, "interior64") == 0) {
        char *b = ns_malloc(64);
        if (!b)
            child_fail("ns_malloc(64) failed");
        announce(b + 16);
        ns_free(b + 16);
        child_heap_still_sane(64, 1000);
        memset(b, 1, 64); /* b itself is still live */
        ns_free(b);
    } else if (strcmp(what, "interior1m") == 0) {
        char *b = ns_malloc(1 * MiB);
        if (!b)
            child_fail("ns_malloc(1 MiB) failed");
        announce(b + 4096);
        ns_free(b + 4096);
        memset(b, 1, 1 * MiB); /* still live and mapped */
        child_heap_still_sane(1 * MiB, 8);
        ns_free(b);
    } else if (strcmp(what, "double64") == 0) {
        char *b = ns_malloc(64);
        if (!b)
            child_fail("ns_malloc(64) failed");
        ns_free(b);
        announce(b);
        ns_free(b);
        child_heap_still_sane(64, 1000);
    } else if (strcmp(what, "double64_churn") == 0) {
        /* the first free's block has left the thread cache before the second */
        char *b = ns_malloc(64);
        if (!b)
            child_fail("ns_malloc(64) failed");
        ns_free(b);
        enum { CH = 5000 };
        static void *churn[CH];
        for (int i = 0; i < CH; i++)
            if (!(churn[i] = ns_malloc(64)))
                child_fail("ns_malloc(64) failed during churn");
        for (int i = 0; i < CH; i++)
            ns_free(churn[i]);
        announce(b);
        ns_free(b);
        child_heap_still_sane(64, 1000);
    } else if (strcmp(what, "double64_thread") == 0) {
        /* first free by another thread, which then exits (flushing its cache) */
        char *b = ns_malloc(64);
        if (!b)
            child_fail("ns_malloc(64) failed");
        pthread_t t;
        if (pthread_create(&t, NULL, free_in_thread, b) != 0 || pthread_join(t, NULL) != 0)
            child_fail("thread create/join failed");
        announce(b);
        ns_free(b);
        child_heap_still_sane(64, 1000);
    } else if (strcmp(what, "double1m") == 0) {
        char *b = ns_malloc(1 * MiB);
        if (!b)
            child_fail("ns_malloc(1 MiB) failed");
        ns_free(b);
        announce(b);
        ns_free(b);
        child_heap_still_sane(1 * MiB, 8);
    } else if (strcmp(what, "realloc_freed64") == 0) {
        char *b = ns_malloc(64);
        if (!b)
            child_fail("ns_malloc(64) failed");
        ns_free(b);
        announce(b);
        if (ns_realloc(b, 32) != NULL)      /* continue mode: NULL, nothing moved */
            child_fail("ns_realloc of a freed block returned a block");
        child_heap_still_sane(64, 1000);
    } else if (strcmp(what, "realloc_freed1m") == 0) {
        char *b = ns_malloc(1 * MiB);
        if (!b)
            child_fail("ns_malloc(1 MiB) failed");
        ns_free(b);
        announce(b);
        if (ns_realloc(b, 2 * MiB) != NULL)
            child_fail("ns_realloc of a freed large block returned a block");
        child_heap_still_sane(1 * MiB, 8);
    } else if (strcmp(what, "usable_freed64") == 0) {
        char *b = ns_malloc(64);
        if (!b)
            child_fail("ns_malloc(64) failed");
        ns_free(b);
        announce(b);
        if (ns_malloc_usable_size(b) != 0)
            child_fail("malloc_usable_size of a freed block is not 0");
        child_heap_still_sane(64, 1000);
    } else if (strcmp(what, "null") == 0) {
        announce(NULL);
        ns_free(NULL);
        child_heap_still_sane(64, 1000);
    } else {
        child_fail("unknown case");
    }
    ns_free(warm_small);
    ns_free(warm_large);
    return 0;
}

/* ------------------------------------------------------------ parent side */

struct child_result {
    int status;      /* from waitpid */
    char out[4096];  /* child's stdout */
    size_t out_len;
    char err[4096];  /* child's stderr */
    size_t err_len;
    int timed_out;
};

/* env_value: NULL = variable removed, otherwise its value. */
static void run_child(const char *what, const char *env_value, struct child_result *res)
{
    memset(res, 0, sizeof *res);

    /* build the environment before fork: no allocation in the child */
    size_t n = 0;
    while (environ[n])
        n++;
    char **envp = calloc(n + 2, sizeof *envp);
    assert_non_null(envp);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], ENV_NAME "=", sizeof ENV_NAME) != 0)
            envp[k++] = environ[i];
    char envbuf[128];
    if (env_value) {
        snprintf(envbuf, sizeof envbuf, "%s=%s", ENV_NAME, env_value);
        envp[k++] = envbuf;
    }
    envp[k] = NULL;
    char exe[] = "/proc/self/exe";
    char flag[] = "--child";
    char arg[64];
    snprintf(arg, sizeof arg, "%s", what);
    char *argv[] = {exe, flag, arg, NULL};

    int po[2], pe[2];
    assert_int_equal(pipe2(po, O_CLOEXEC), 0);
    assert_int_equal(pipe2(pe, O_CLOEXEC), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit rl = {0, 0};
        setrlimit(RLIMIT_CORE, &rl); /* no core dumps from the expected aborts */
        if (dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
            _exit(97);
        execve("/proc/self/exe", argv, envp);
        _exit(98);
    }
    close(po[1]);
    close(pe[1]);
    free(envp);

    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (open_fds > 0) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long elapsed = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (elapsed >= CHILD_TIMEOUT_MS) {
            res->timed_out = 1;
            kill(pid, SIGKILL);
            break;
        }
        int r = poll(fds, 2, (int)(CHILD_TIMEOUT_MS - elapsed));
        if (r < 0 && errno == EINTR)
            continue;
        assert_true(r >= 0);
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char *dst = i == 0 ? res->out : res->err;
            size_t *len = i == 0 ? &res->out_len : &res->err_len;
            char tmp[1024];
            ssize_t got = read(fds[i].fd, tmp, sizeof tmp);
            if (got <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            size_t room = sizeof res->out - 1 - *len;
            size_t take = (size_t)got < room ? (size_t)got : room;
            memcpy(dst + *len, tmp, take);
            *len += take;
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0)
            close(fds[i].fd);
    res->out[res->out_len] = '\0';
    res->err[res->err_len] = '\0';
    assert_int_equal(waitpid(pid, &res->status, 0), pid);
}

/* The first line of the child's stdout: the pointer as "%p" printed it. */
static void announced_ptr(const struct child_result *res, char *ptr, size_t cap)
{
    const char *nl = strchr(res->out, '\n');
    if (!nl)
        fail_msg("child did not announce the pointer; stdout: \"%s\" stderr: \"%s\"", res->out,
                 res->err);
    size_t l = (size_t)(nl - res->out);
    assert_true(l < cap);
    memcpy(ptr, res->out, l);
    ptr[l] = '\0';
    assert_true(strncmp(ptr, "0x", 2) == 0);
}

static void check_error_line(const struct child_result *res, const char *what, const char *ptr)
{
    const char *e = res->err;
    size_t len = res->err_len;
    /* under qemu-user (the arm64 run of scripts/cross-arm64.sh) the
     * emulator adds its own line about the signal after ours: not ours */
    const char *q = strstr(e, "qemu: uncaught target signal");
    if (q && (q == e || q[-1] == '\n'))
        len = (size_t)(q - e);
    if (len == 0)
        fail_msg("[%s] nothing on stderr, expected one line naming %s", what, ptr);
    const char *nl = memchr(e, '\n', len);
    if (!nl || (size_t)(nl - e) != len - 1)
        fail_msg("[%s] stderr is not exactly one line: \"%s\"", what, e);
    if (!strstr(e, "numaslab"))
        fail_msg("[%s] stderr line does not mention numaslab: \"%s\"", what, e);
    /* the pointer must appear as a whole token: 0x1234 must not match 0x12345 */
    const char *hit = e;
    int found = 0;
    size_t pl = strlen(ptr);
    while ((hit = strstr(hit, ptr)) != NULL) {
        char after = hit[pl];
        int hexafter = (after >= '0' && after <= '9') || (after >= 'a' && after <= 'f') ||
                       (after >= 'A' && after <= 'F');
        if (!hexafter) {
            found = 1;
            break;
        }
        hit += pl;
    }
    if (!found)
        fail_msg("[%s] stderr line does not contain the pointer %s: \"%s\"", what, ptr, e);
}

static void expect_abort(const char *what, const char *env_value)
{
    struct child_result res;
    run_child(what, env_value, &res);
    if (res.timed_out)
        fail_msg("[%s] child hung (killed after %d ms); stderr: \"%s\"", what, CHILD_TIMEOUT_MS,
                 res.err);
    char ptr[64];
    announced_ptr(&res, ptr, sizeof ptr);
    if (!WIFSIGNALED(res.status) || WTERMSIG(res.status) != SIGABRT) {
        if (WIFSIGNALED(res.status))
            fail_msg("[%s] child died of signal %d, expected SIGABRT; stdout: \"%s\" stderr: "
                     "\"%s\"",
                     what, WTERMSIG(res.status), res.out, res.err);
        fail_msg("[%s] child exited with status %d instead of aborting; stdout: \"%s\" stderr: "
                 "\"%s\"",
                 what, WEXITSTATUS(res.status), res.out, res.err);
    }
    check_error_line(&res, what, ptr);
}

static void expect_continue(const char *what)
{
    struct child_result res;
    run_child(what, "0", &res);
    if (res.timed_out)
        fail_msg("[%s] child hung (killed after %d ms); stderr: \"%s\"", what, CHILD_TIMEOUT_MS,
                 res.err);
    char ptr[64];
    announced_ptr(&res, ptr, sizeof ptr);
    if (WIFSIGNALED(res.status))
        fail_msg("[%s] with " ENV_NAME "=0 the child died of signal %d; stdout: \"%s\" stderr: "
                 "\"%s\"",
                 what, WTERMSIG(res.status), res.out, res.err);
    if (WEXITSTATUS(res.status) != 0)
        fail_msg("[%s] with " ENV_NAME "=0 the child exited %d; stdout: \"%s\" stderr: \"%s\"",
                 what, WEXITSTATUS(res.status), res.out, res.err);
    check_error_line(&res, what, ptr);
}

static const char *const bad_cases[] = {"stack",          "mmap",           "high",          "interior64",
                                        "interior1m",     "double64",       "double64_churn",
                                        "double64_thread", "double1m",     "realloc_freed64",
                                        "realloc_freed1m", "usable_freed64"};
#define NBAD (sizeof bad_cases / sizeof bad_cases[0])

static void test_abort_stack(void **s) { (void)s; expect_abort("stack", NULL); }
static void test_abort_mmap(void **s) { (void)s; expect_abort("mmap", NULL); }
static void test_abort_high(void **s) { (void)s; expect_abort("high", NULL); }
static void test_abort_interior64(void **s) { (void)s; expect_abort("interior64", NULL); }
static void test_abort_interior1m(void **s) { (void)s; expect_abort("interior1m", NULL); }
static void test_abort_double64(void **s) { (void)s; expect_abort("double64", NULL); }
static void test_abort_double64_churn(void **s) { (void)s; expect_abort("double64_churn", NULL); }
static void test_abort_double64_thread(void **s) { (void)s; expect_abort("double64_thread", NULL); }
static void test_abort_double1m(void **s) { (void)s; expect_abort("double1m", NULL); }
static void test_abort_realloc_freed(void **s)
{
    (void)s;
    expect_abort("realloc_freed64", NULL);
    expect_abort("realloc_freed1m", NULL);
    expect_abort("usable_freed64", NULL);
}

/* NUMASLAB_ABORT_ON_ERROR=1 spelled out behaves like the default */
static void test_abort_explicit_env(void **s)
{
    (void)s;
    expect_abort("stack", "1");
    expect_abort("double64", "1");
}

static void test_continue_all(void **s)
{
    (void)s;
    for (size_t i = 0; i < NBAD; i++)
        expect_continue(bad_cases[i]);
}

static void test_free_null_is_noop(void **s)
{
    (void)s;
    ns_free(NULL);
    struct child_result res;
    run_child("null", NULL, &res);
    assert_false(res.timed_out);
    if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
        fail_msg("ns_free(NULL) child: status %#x stdout \"%s\" stderr \"%s\"", res.status,
                 res.out, res.err);
    if (res.err_len != 0)
        fail_msg("ns_free(NULL) printed on stderr: \"%s\"", res.err);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2]);
    if (access("/proc/self/exe", X_OK) != 0) {
        fprintf(stderr, "/proc/self/exe is not available: cannot run the child processes\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_abort_stack),
        cmocka_unit_test(test_abort_mmap),
        cmocka_unit_test(test_abort_high),
        cmocka_unit_test(test_abort_interior64),
        cmocka_unit_test(test_abort_interior1m),
        cmocka_unit_test(test_abort_double64),
        cmocka_unit_test(test_abort_double64_churn),
        cmocka_unit_test(test_abort_double64_thread),
        cmocka_unit_test(test_abort_double1m),
        cmocka_unit_test(test_abort_realloc_freed),
        cmocka_unit_test(test_abort_explicit_env),
        cmocka_unit_test(test_continue_all),
        cmocka_unit_test(test_free_null_is_noop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
