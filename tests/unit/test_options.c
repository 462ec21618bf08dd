/* test_options.c - NUMASLAB_* parsing.  Options are read once at start-up
 * (possibly from the library's constructor, before main), so every case
 * runs this executable again (fork + exec) with one environment, in "child"
 * mode: it starts the allocator and prints the options it ended up with on
 * stdout; the parent checks them and the child's stderr. */
#include "unit_util.h"

extern char **environ;

static int child_main(void)
{
    void *p = ns_malloc(1);
    ns_free(p);
    printf("abort_on_error=%ld\n", (long)options.abort_on_error);
    printf("decay_ms=%ld\n", (long)options.decay_ms);
    printf("background=%ld\n", (long)options.background);
    printf("large_cache=%ld\n", (long)options.large_cache);
    printf("large_thp=%ld\n", (long)options.large_thp);
    printf("tcache_bytes=%ld\n", (long)options.tcache_bytes);
    printf("strict=%ld\n", (long)options.strict);
    printf("interleave=%ld\n", (long)options.interleave);
    printf("stats=%ld\n", (long)options.stats);
    char list[256] = "(unset)";
    if (options.nodes.given)
        nodeset_format(&options.nodes, list, sizeof list);
    printf("nodes=%s\n", list);
    printf("pages=%ld\n", (long)options.pages);
    printf("stats_file=%s\n", options.stats_file ? options.stats_file : "(unset)");
    fflush(stdout);
    return 0;
}

struct result {
    int status;
    char out[4096];
    char err[4096];
};

static void read_all(int fd, char *buf, size_t size)
{
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, size - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == size - 1)
            break;
    }
    buf[len] = 0;
    close(fd);
}

/* Run this program in child mode with NUMASLAB_* removed from the
 * environment and the given "NAME=value" strings added. */
static void run(struct result *r, const char *const *vars)
{
    char *envp[256];
    int n = 0;
    for (char **e = environ; *e && n < 200; e++)
        if (strncmp(*e, "NUMASLAB_", 9) != 0)
            envp[n++] = *e;
    for (int i = 0; vars && vars[i]; i++)
        envp[n++] = (char *)vars[i];
    envp[n] = NULL;
    int out[2], err[2];
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        close(out[0]);
        close(err[0]);
        char *argv[] = {"test_options", "child", NULL};
        execve("/proc/self/exe", argv, envp);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    read_all(out[0], r->out, sizeof r->out);   /* small outputs: no deadlock */
    read_all(err[0], r->err, sizeof r->err);
    waitpid(pid, &r->status, 0);
    if (!WIFEXITED(r->status) || WEXITSTATUS(r->status) != 0)
        fail_msg("child failed (status %#x), stderr: %s", r->status, r->err);
}

static long value(const struct result *r, const char *name)
{
    char key[64];
    snprintf(key, sizeof key, "%s=", name);
    const char *p = strstr(r->out, key);
    if (!p)
        fail_msg("no %s in child output '%s'", name, r->out);
    return strtol(p + strlen(key), NULL, 10);
}

static int lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static struct result defaults;

static int setup(void **state)
{
    run(&defaults, NULL);
    return 0;
}

static void test_defaults(void **state)
{
    assert_string_equal(defaults.err, "");
    assert_int_equal(value(&defaults, "abort_on_error"), 1);
    assert_int_equal(value(&defaults, "decay_ms"), 1000);
    assert_int_equal(value(&defaults, "background"), 1);
    assert_int_equal(value(&defaults, "large_cache"), 128 << 20);
    assert_int_equal(value(&defaults, "large_thp"), 1);
    assert_int_equal(value(&defaults, "tcache_bytes"), 64 << 10);
    assert_int_equal(value(&defaults, "strict"), 0);
    assert_int_equal(value(&defaults, "stats"), 0);
    assert_non_null(strstr(defaults.out, "nodes=(unset)"));
}

struct good {
    const char *var, *field;
    long want;
};

static void test_good_values(void **state)
{
    static const struct good cases[] = {
        {"NUMASLAB_DECAY_MS=250", "decay_ms", 250},
        {"NUMASLAB_DECAY_MS=0", "decay_ms", 0},
        {"NUMASLAB_DECAY_MS=3600000", "decay_ms", 3600000},
        {"NUMASLAB_LARGE_CACHE=8M", "large_cache", 8L << 20},
        {"NUMASLAB_LARGE_CACHE=8m", "large_cache", 8L << 20},
        {"NUMASLAB_LARGE_CACHE=8MiB", "large_cache", 8L << 20},
        {"NUMASLAB_LARGE_CACHE=8192K", "large_cache", 8L << 20},
        {"NUMASLAB_LARGE_CACHE=1G", "large_cache", 1L << 30},
        {"NUMASLAB_LARGE_CACHE=1T", "large_cache", 1L << 40},
        {"NUMASLAB_LARGE_CACHE=12345", "large_cache", 12345},
        {"NUMASLAB_LARGE_CACHE=0", "large_cache", 0},
        {"NUMASLAB_LARGE_THP=0", "large_thp", 0},
        {"NUMASLAB_LARGE_THP=off", "large_thp", 0},
        {"NUMASLAB_LARGE_THP=1", "large_thp", 1},
        {"NUMASLAB_TCACHE_BYTES=16M", "tcache_bytes", 16L << 20},
        {"NUMASLAB_TCACHE_BYTES=0", "tcache_bytes", 0},
        {"NUMASLAB_ABORT_ON_ERROR=off", "abort_on_error", 0},
        {"NUMASLAB_ABORT_ON_ERROR=OFF", "abort_on_error", 0},
        {"NUMASLAB_ABORT_ON_ERROR=0", "abort_on_error", 0},
        {"NUMASLAB_ABORT_ON_ERROR=false", "abort_on_error", 0},
        {"NUMASLAB_ABORT_ON_ERROR=no", "abort_on_error", 0},
        {"NUMASLAB_ABORT_ON_ERROR=yes", "abort_on_error", 1},
        {"NUMASLAB_STRICT=on", "strict", 1},
        {"NUMASLAB_STRICT=True", "strict", 1},
        {"NUMASLAB_INTERLEAVE=1", "interleave", 1},
        {"NUMASLAB_BACKGROUND=0", "background", 0},
        {"NUMASLAB_BACKGROUND=off", "background", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct result r;
        const char *vars[] = {cases[i].var, NULL};
        run(&r, vars);
        if (value(&r, cases[i].field) != cases[i].want)
            fail_msg("%s: %s = %ld, want %ld", cases[i].var, cases[i].field, value(&r, cases[i].field),
                     cases[i].want);
        if (r.err[0])
            fail_msg("%s: unexpected stderr '%s'", cases[i].var, r.err);
    }
    /* several at once */
    struct result r;
    const char *vars[] = {"NUMASLAB_DECAY_MS=7", "NUMASLAB_LARGE_CACHE=3M", "NUMASLAB_ABORT_ON_ERROR=off", NULL};
    run(&r, vars);
    assert_int_equal(value(&r, "decay_ms"), 7);
    assert_int_equal(value(&r, "large_cache"), 3L << 20);
    assert_int_equal(value(&r, "abort_on_error"), 0);
    assert_string_equal(r.err, "");
}

struct bad {
    const char *var, *name, *field;
};

static void test_bad_values_warn_and_keep_default(void **state)
{
    static const struct bad cases[] = {
        {"NUMASLAB_DECAY_MS=abc", "NUMASLAB_DECAY_MS", "decay_ms"},
        {"NUMASLAB_DECAY_MS=99999999999", "NUMASLAB_DECAY_MS", "decay_ms"},
        {"NUMASLAB_DECAY_MS=3600001", "NUMASLAB_DECAY_MS", "decay_ms"},
        {"NUMASLAB_DECAY_MS=-5", "NUMASLAB_DECAY_MS", "decay_ms"},
        {"NUMASLAB_DECAY_MS=", "NUMASLAB_DECAY_MS", "decay_ms"},
        {"NUMASLAB_DECAY_MS=12k", "NUMASLAB_DECAY_MS", "decay_ms"},      /* no suffixes for INT */
        {"NUMASLAB_DECAY_MS=99999999999999999999999", "NUMASLAB_DECAY_MS", "decay_ms"},
        {"NUMASLAB_LARGE_CACHE=8X", "NUMASLAB_LARGE_CACHE", "large_cache"},
        {"NUMASLAB_LARGE_CACHE=2T", "NUMASLAB_LARGE_CACHE", "large_cache"},
        {"NUMASLAB_LARGE_CACHE=M", "NUMASLAB_LARGE_CACHE", "large_cache"},
        {"NUMASLAB_LARGE_CACHE=8 M", "NUMASLAB_LARGE_CACHE", "large_cache"},
        {"NUMASLAB_LARGE_CACHE=16777216T", "NUMASLAB_LARGE_CACHE", "large_cache"},   /* overflow */
        {"NUMASLAB_TCACHE_BYTES=17M", "NUMASLAB_TCACHE_BYTES", "tcache_bytes"},
        {"NUMASLAB_LARGE_THP=2", "NUMASLAB_LARGE_THP", "large_thp"},
        {"NUMASLAB_LARGE_THP=never", "NUMASLAB_LARGE_THP", "large_thp"},
        {"NUMASLAB_ABORT_ON_ERROR=maybe", "NUMASLAB_ABORT_ON_ERROR", "abort_on_error"},
        {"NUMASLAB_ABORT_ON_ERROR=2", "NUMASLAB_ABORT_ON_ERROR", "abort_on_error"},
        {"NUMASLAB_STATS=", "NUMASLAB_STATS", "stats"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct result r;
        const char *vars[] = {cases[i].var, NULL};
        run(&r, vars);
        long def = value(&defaults, cases[i].field);
        if (value(&r, cases[i].field) != def)
            fail_msg("%s: %s = %ld, want the default %ld", cases[i].var, cases[i].field, value(&r, cases[i].field),
                     def);
        if (lines(r.err) != 1 || !strstr(r.err, cases[i].name) || r.err[strlen(r.err) - 1] != '\n')
            fail_msg("%s: want one warning line naming %s, got '%s'", cases[i].var, cases[i].name, r.err);
        assert_non_null(strstr(r.err, "numaslab"));
    }
    /* two bad values: two lines; a good one next to them still applies */
    struct result r;
    const char *vars[] = {"NUMASLAB_DECAY_MS=x", "NUMASLAB_LARGE_CACHE=1Q", "NUMASLAB_TCACHE_BYTES=1M", NULL};
    run(&r, vars);
    assert_int_equal(lines(r.err), 2);
    assert_non_null(strstr(r.err, "NUMASLAB_DECAY_MS"));
    assert_non_null(strstr(r.err, "NUMASLAB_LARGE_CACHE"));
    assert_int_equal(value(&r, "tcache_bytes"), 1L << 20);
    assert_int_equal(value(&r, "decay_ms"), 1000);
    /* a very long bad value: still one line */
    static char longvar[600];
    snprintf(longvar, sizeof longvar, "NUMASLAB_DECAY_MS=");
    memset(longvar + strlen(longvar), 'z', 500);
    const char *v2[] = {longvar, NULL};
    run(&r, v2);
    assert_int_equal(lines(r.err), 1);
    assert_non_null(strstr(r.err, "NUMASLAB_DECAY_MS"));
}

static void test_describe_table(void **state)
{
    option_info_t oi;
    const char *name, *type, *help;
    int64_t def, min, max;
    unsigned n = 0;
    const char *names[64];
#define DESCRIBE(i) (options_describe((i), &oi) && (name = oi.name, type = oi.type, def = oi.def, min = oi.min, \
                                                    max = oi.max, help = oi.help, true))
    for (unsigned i = 0; DESCRIBE(i); i++) {
        assert_true(i < 64);
        assert_non_null(name);
        assert_non_null(type);
        assert_non_null(help);
        if (!name[0] || !help[0])
            fail_msg("option row %u has an empty name or help", i);
        assert_true(strlen(help) > 10);
        for (const char *c = name; *c; c++)
            assert_true((*c >= 'A' && *c <= 'Z') || *c == '_' || (*c >= '0' && *c <= '9'));
        bool known_type = !strcmp(type, "bool") || !strcmp(type, "int") || !strcmp(type, "size") ||
                          !strcmp(type, "enum") || !strcmp(type, "nodes") || !strcmp(type, "path");
        if (!strcmp(type, "enum"))
            assert_true(oi.choices && oi.choices[def] && oi.choices[max] && !oi.choices[max + 1]);
        if (!known_type)
            fail_msg("option %s: type '%s'", name, type);
        assert_true(min <= def && def <= max);
        if (!strcmp(type, "bool"))
            assert_true(min == 0 && max == 1);
        for (unsigned k = 0; k < n; k++)
            if (!strcmp(names[k], name))
                fail_msg("option %s listed twice", name);
        names[n++] = name;
    }
    /* one row per field of options_t */
#define COUNT_FIELD(field, type, def, min, max, name, help) +1
    assert_int_equal(n, 0 NS_OPTIONS(COUNT_FIELD));
    assert_false(options_describe(n, &oi));
    assert_false(options_describe(1000, &oi));
    /* the documented defaults are the values a clean environment gets */
    static const struct {
        const char *name, *field;
    } map[] = {{"ABORT_ON_ERROR", "abort_on_error"}, {"DECAY_MS", "decay_ms"}, {"BACKGROUND", "background"},
               {"LARGE_CACHE", "large_cache"},
               {"TCACHE_BYTES", "tcache_bytes"},     {"STRICT", "strict"},     {"INTERLEAVE", "interleave"},
               {"STATS", "stats"}};
    for (unsigned i = 0; DESCRIBE(i); i++)
        for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
            if (!strcmp(map[k].name, name) && value(&defaults, map[k].field) != def)
                fail_msg("option %s: described default %ld, actual %ld", name, (long)def,
                         value(&defaults, map[k].field));
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return child_main();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_good_values),
        cmocka_unit_test(test_bad_values_warn_and_keep_default),
        cmocka_unit_test(test_describe_table),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
