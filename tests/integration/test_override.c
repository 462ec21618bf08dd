/* test_override.c - the standard malloc family through libnumaslab.so.
 *
 * This executable links the SHARED library, so malloc & co. (ours, libc's
 * internal callers', cmocka's) resolve to numaslab.  Compiled with
 * -fno-builtin so the compiler does not fold or drop malloc/free calls.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "numaslab.h"
#include "integ_util.h"

/* Calls whose failure is under test go through volatile function pointers:
 * the compiler then neither warns about the deliberately impossible sizes
 * nor treats the old block of a failed realloc as freed. */
static void *(*volatile v_malloc)(size_t) = malloc;
static void *(*volatile v_calloc)(size_t, size_t) = calloc;
static void *(*volatile v_realloc)(void *, size_t) = realloc;
static void *(*volatile v_reallocarray)(void *, size_t, size_t) = reallocarray;

/* Node a block of ours must report: 0 on a one-node machine, else any >= 0. */
static int g_single_node;

static void assert_ours(const void *p, const char *what)
{
    int n = ns_node_of(p);
    if (g_single_node ? n != 0 : n < 0)
        fail_msg("%s: pointer %p does not come from numaslab (ns_node_of = %d)", what, p, n);
}

/* ------------------------------------------------------------ resolution */

static void test_malloc_resolves_to_numaslab(void **state)
{
    (void)state;
    const char *names[] = {"malloc", "free", "calloc", "realloc", "reallocarray",
                           "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
                           "malloc_usable_size", "malloc_trim"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        void *f = dlsym(RTLD_DEFAULT, names[i]);
        if (!f)
            fail_msg("dlsym(%s) failed: %s", names[i], dlerror());
        Dl_info info;
        memset(&info, 0, sizeof info);
        if (!dladdr(f, &info) || !info.dli_fname)
            fail_msg("dladdr(%s) failed", names[i]);
        if (!strstr(info.dli_fname, "libnumaslab"))
            fail_msg("%s resolves to %s, not libnumaslab", names[i], info.dli_fname);
    }
    size_t sz[] = {0, 1, 16, 100, 4096, 100000, 4 * MiB};
    for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
        void *p = malloc(sz[i]);
        assert_non_null(p);
        assert_ours(p, "malloc");
        void *q = calloc(1, sz[i]);
        assert_non_null(q);
        assert_ours(q, "calloc");
        free(p);
        free(q);
    }
}

/* ------------------------------------------------------------ libc allocates, we free */

static void test_libc_strdup_family(void **state)
{
    (void)state;
    char *s = strdup("numaslab says hello");
    assert_non_null(s);
    assert_ours(s, "strdup");
    assert_string_equal(s, "numaslab says hello");
    free(s);

    char *n = strndup("abcdefghij", 4);
    assert_non_null(n);
    assert_ours(n, "strndup");
    assert_string_equal(n, "abcd");
    free(n);

    char *a = NULL;
    int len = asprintf(&a, "%d-%s-%0500d", 42, "x", 7);
    assert_int_equal(len, 2 + 1 + 1 + 1 + 500);
    assert_non_null(a);
    assert_ours(a, "asprintf");
    assert_int_equal(strlen(a), (size_t)len);
    free(a);
}

static void test_libc_realpath(void **state)
{
    (void)state;
    char *r = realpath("/proc/self/../self/.", NULL);
    assert_non_null(r);
    assert_ours(r, "realpath");
    assert_true(r[0] == '/');
    free(r);
    char *c = getcwd(NULL, 0);
    assert_non_null(c);
    assert_ours(c, "getcwd(NULL, 0)");
    free(c);
    char *cf = canonicalize_file_name("/");
    assert_non_null(cf);
    assert_ours(cf, "canonicalize_file_name");
    assert_string_equal(cf, "/");
    free(cf);
}

static void test_libc_getline_getdelim(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    if (!f) {
        print_message("SKIP: tmpfile() failed: %s\n", strerror(errno));
        skip();
        return;
    }
    assert_ours(f, "tmpfile's FILE");
    /* one long line forces getline to grow its buffer several times */
    for (int i = 0; i < 5000; i++)
        fputc('a' + i % 26, f);
    fputs("\nshort\nx;y;z", f);
    rewind(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t r = getline(&line, &cap, f);
    assert_int_equal(r, 5001);
    assert_non_null(line);
    assert_ours(line, "getline");
    assert_true(cap >= 5002);
    assert_true(malloc_usable_size(line) >= 5002);
    for (int i = 0; i < 5000; i++)
        if (line[i] != 'a' + i % 26)
            fail_msg("getline buffer wrong at %d", i);
    r = getline(&line, &cap, f);
    assert_int_equal(r, 6);
    assert_string_equal(line, "short\n");
    free(line);

    char *tok = NULL;
    size_t tcap = 0;
    r = getdelim(&tok, &tcap, ';', f);
    assert_int_equal(r, 2);
    assert_ours(tok, "getdelim");
    assert_string_equal(tok, "x;");
    r = getdelim(&tok, &tcap, ';', f);
    assert_int_equal(r, 2);
    r = getdelim(&tok, &tcap, ';', f);
    assert_int_equal(r, 1);
    assert_string_equal(tok, "z");
    free(tok);
    fclose(f);
}

static void test_libc_open_memstream(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t size = 0;
    FILE *m = open_memstream(&buf, &size);
    assert_non_null(m);
    for (int i = 0; i < 20000; i++)
        fprintf(m, "%05d,", i);
    assert_int_equal(fclose(m), 0);
    assert_non_null(buf);
    assert_int_equal(size, 20000 * 6);
    assert_int_equal(strlen(buf), size);
    assert_ours(buf, "open_memstream");
    assert_memory_equal(buf, "00000,00001,", 12);
    assert_memory_equal(buf + size - 6, "19999,", 6);
    free(buf);
}

static void test_libc_misc(void **state)
{
    (void)state;
    /* regcomp/regexec/regfree allocate and free internally */
    regex_t re;
    assert_int_equal(regcomp(&re, "^(a|b)+[0-9]{2,}$", REG_EXTENDED), 0);
    assert_int_equal(regexec(&re, "abba123", 0, NULL, 0), 0);
    assert_int_not_equal(regexec(&re, "abc", 0, NULL, 0), 0);
    regfree(&re);

    /* opendir/readdir/closedir */
    DIR *d = opendir("/proc/self");
    assert_non_null(d);
    assert_ours(d, "opendir");
    int seen = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        seen++;
    assert_true(seen > 2);
    closedir(d);

    /* scandir returns a malloc'd array of malloc'd entries */
    struct dirent **list = NULL;
    int n = scandir("/", &list, NULL, alphasort);
    assert_true(n > 2);
    assert_ours(list, "scandir array");
    for (int i = 0; i < n; i++) {
        assert_ours(list[i], "scandir entry");
        free(list[i]);
    }
    free(list);

    /* dlopen/dlclose: the dynamic loader allocates with our malloc */
    void *h = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
    if (h) {
        double (*cosf_)(double) = NULL;
        void *sym = dlsym(h, "cos");
        memcpy(&cosf_, &sym, sizeof sym);
        assert_non_null(cosf_);
        assert_true(cosf_(0.0) == 1.0);
        dlclose(h);
    }
    h = dlopen("libnonexistent-numaslab-test.so", RTLD_NOW);
    assert_null(h);
    assert_non_null(dlerror());
}

/* ------------------------------------------------------------ the family */

static void test_override_family(void **state)
{
    (void)state;
    size_t ps = page_size();
    /* posix_memalign at 256/512/1024 with small sizes */
    size_t aligns[] = {256, 512, 1024};
    for (size_t ai = 0; ai < 3; ai++) {
        void *v[32];
        for (int i = 0; i < 32; i++) {
            size_t sz = (size_t)(1 + i * 13);
            v[i] = (void *)(uintptr_t)0x1;
            assert_int_equal(posix_memalign(&v[i], aligns[ai], sz), 0);
            assert_non_null(v[i]);
            assert_true(is_aligned(v[i], aligns[ai]));
            assert_ours(v[i], "posix_memalign");
            assert_true(malloc_usable_size(v[i]) >= sz);
            pat_fill(v[i], malloc_usable_size(v[i]), (uint32_t)i);
        }
        for (int i = 0; i < 32; i++) {
            assert_int_equal(pat_check(v[i], malloc_usable_size(v[i]), (uint32_t)i), PAT_OK);
            free(v[i]);
        }
    }
    void *out = (void *)(uintptr_t)0xdeadbeef;
    assert_int_equal(posix_memalign(&out, 24, 100), EINVAL);
    assert_true(out == (void *)(uintptr_t)0xdeadbeef);
    assert_int_equal(posix_memalign(&out, 4, 100), EINVAL);
    assert_true(out == (void *)(uintptr_t)0xdeadbeef);

    void *a = aligned_alloc(4096, 8192);
    assert_non_null(a);
    assert_true(is_aligned(a, 4096));
    assert_ours(a, "aligned_alloc");
    free(a);
    errno = 0;
    assert_null(aligned_alloc(48, 96));
    assert_int_equal(errno, EINVAL);

    void *m = memalign(512, 40);
    assert_non_null(m);
    assert_true(is_aligned(m, 512));
    assert_ours(m, "memalign");
    free(m);

    void *v = valloc(100);
    assert_non_null(v);
    assert_true(is_aligned(v, ps));
    assert_ours(v, "valloc");
    free(v);

    size_t pv[] = {0, 1, 4097};
    for (size_t i = 0; i < 3; i++) {
        size_t want = pv[i] == 0 ? ps : (pv[i] + ps - 1) / ps * ps;
        void *p = pvalloc(pv[i]);
        assert_non_null(p);
        assert_true(is_aligned(p, ps));
        assert_true(malloc_usable_size(p) >= want);
        assert_ours(p, "pvalloc");
        memset(p, 0x11, want);
        free(p);
    }

    assert_int_equal(malloc_usable_size(NULL), 0);
    char *p = malloc(100);
    assert_non_null(p);
    assert_true(malloc_usable_size(p) >= 100);
    assert_int_equal(malloc_usable_size(p), ns_malloc_usable_size(p));
    pat_fill(p, 100, 5);

    /* reallocarray: overflow keeps the old block, growth keeps contents */
    errno = 0;
    assert_null(v_reallocarray(p, SIZE_MAX / 2, 3));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(pat_check(p, 100, 5), PAT_OK);
    char *q = reallocarray(p, 1000, 100);
    assert_non_null(q);
    assert_ours(q, "reallocarray");
    assert_int_equal(pat_check(q, 100, 5), PAT_OK);

    /* realloc across small/large */
    char *r = realloc(q, 5 * MiB);
    assert_non_null(r);
    assert_int_equal(pat_check(r, 100, 5), PAT_OK);
    r = realloc(r, 50);
    assert_non_null(r);
    assert_int_equal(pat_check(r, 50, 5), PAT_OK);
    free(r);

    /* calloc zeroes after dirty reuse */
    for (int i = 0; i < 200; i++) {
        char *d = malloc(256);
        assert_non_null(d);
        memset(d, 0xAB, 256);
        free(d);
        char *z = calloc(32, 8);
        assert_non_null(z);
        assert_int_equal(first_not(z, 256, 0), PAT_OK);
        free(z);
    }

    /* errno on failure */
    errno = 0;
    assert_null(v_malloc(SIZE_MAX));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(v_malloc((size_t)PTRDIFF_MAX + 1));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(v_calloc(SIZE_MAX / 2, 3));
    assert_int_equal(errno, ENOMEM);
    char *keep = malloc(10);
    assert_non_null(keep);
    errno = 0;
    assert_null(v_realloc(keep, SIZE_MAX - 8));
    assert_int_equal(errno, ENOMEM);
    free(keep);
    out = (void *)(uintptr_t)0x1;
    assert_int_equal(posix_memalign(&out, 64, SIZE_MAX - 100), ENOMEM);

    /* malloc(0) unique, free(NULL) no-op, realloc(p, 0) */
    void *z1 = malloc(0), *z2 = malloc(0);
    assert_non_null(z1);
    assert_non_null(z2);
    assert_true(z1 != z2);
    free(z1);
    free(z2);
    free(NULL);
    void *rz = realloc(malloc(64), 0);
    free(rz);

    int t = malloc_trim(0);
    assert_true(t == 0 || t == 1);
    void *after = malloc(1000);
    assert_non_null(after);
    memset(after, 1, 1000);
    free(after);
}

/* ------------------------------------------------------------ threads, fork */

#define XT_N 4000
static void *xthread_alloc(void *arg)
{
    (void)arg;
    void **v = malloc(XT_N * sizeof *v);
    if (!v)
        return NULL;
    for (int i = 0; i < XT_N; i++) {
        v[i] = malloc((size_t)(16 + (i % 64) * 8));
        if (!v[i])
            return NULL;
        memset(v[i], (unsigned char)i, (size_t)(16 + (i % 64) * 8));
    }
    return v; /* freed by the main thread: cross-thread free */
}

static void test_threads_cross_free(void **state)
{
    (void)state;
    for (int round = 0; round < 4; round++) {
        pthread_t t[3];
        for (int i = 0; i < 3; i++)
            assert_int_equal(pthread_create(&t[i], NULL, xthread_alloc, NULL), 0);
        for (int i = 0; i < 3; i++) {
            void **v = NULL;
            assert_int_equal(pthread_join(t[i], (void **)&v), 0);
            assert_non_null(v);
            for (int k = 0; k < XT_N; k++) {
                unsigned char *b = v[k];
                size_t sz = (size_t)(16 + (k % 64) * 8);
                assert_int_equal(first_not(b, sz, (unsigned char)k), PAT_OK);
                free(b);
            }
            free(v);
        }
    }
}

static void test_fork_child_allocates(void **state)
{
    (void)state;
    void *before = malloc(1000);
    assert_non_null(before);
    memset(before, 7, 1000);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int ok = 1;
        if (first_not(before, 1000, 7) != PAT_OK)
            ok = 0;
        free(before);
        for (int i = 0; i < 10000 && ok; i++) {
            char *s = malloc((size_t)(i % 3000) + 1);
            if (!s)
                ok = 0;
            else {
                s[0] = 1;
                free(s);
            }
        }
        char *dup = strdup("child");
        if (!dup || ns_node_of(dup) < 0)
            ok = 0;
        free(dup);
        _exit(ok ? 0 : 3);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    free(before);
}

int main(void)
{
    g_single_node = sys_node_count() == 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malloc_resolves_to_numaslab),
        cmocka_unit_test(test_libc_strdup_family),
        cmocka_unit_test(test_libc_realpath),
        cmocka_unit_test(test_libc_getline_getdelim),
        cmocka_unit_test(test_libc_open_memstream),
        cmocka_unit_test(test_libc_misc),
        cmocka_unit_test(test_override_family),
        cmocka_unit_test(test_threads_cross_free),
        cmocka_unit_test(test_fork_child_allocates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
