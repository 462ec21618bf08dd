/* numaslab - the command-line tool around the allocator.
 *
 *   numaslab topo                 the machine as numaslab sees it
 *   numaslab run [opts] -- PROG   run PROG with libnumaslab.so preloaded
 *   numaslab options [--markdown] every NUMASLAB_* option with its default
 *
 * The tool itself runs on the system malloc; it links the allocator's core
 * only to read the option table, so what it prints cannot drift from it. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#ifndef NS_INSTALL_LIBDIR
#define NS_INSTALL_LIBDIR "/usr/local/lib"
#endif

static const char *prog = "numaslab";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: numaslab COMMAND [ARGS]\n"
            "\n"
            "commands:\n"
            "  topo                       show NUMA nodes, CPUs, memory, huge pages and THP mode\n"
            "  run [OPTIONS] -- PROG ARGS run PROG with libnumaslab.so preloaded; exit status is PROG's\n"
            "      --stats                print allocator statistics when PROG exits\n"
            "      --set NAME=VALUE       set option NUMASLAB_NAME (see 'numaslab options')\n"
            "      --lib PATH             use this libnumaslab.so\n"
            "  options [--markdown]       list every option with type, default, range and help\n"
            "  help, --help               this text\n");
}

static int read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    return 0;
}

/* ---------------------------------------------------------------- topo */
static int cmd_topo(void)
{
    char buf[4096], path[PATH_MAX];
    int nodes = 0;
    DIR *d = opendir("/sys/devices/system/node");
    printf("NUMA nodes:\n");
    if (d) {
        int ids[1024], n = 0;
        struct dirent *e;
        while ((e = readdir(d)) && n < 1024)
            if (strncmp(e->d_name, "node", 4) == 0 && e->d_name[4] >= '0' && e->d_name[4] <= '9')
                ids[n++] = atoi(e->d_name + 4);
        closedir(d);
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                if (ids[j] < ids[i]) { int t = ids[i]; ids[i] = ids[j]; ids[j] = t; }
        for (int i = 0; i < n; i++) {
            char cpus[1024] = "?", hp[64] = "0", hpfree[64] = "0";
            unsigned long long total = 0, freemem = 0;
            snprintf(path, sizeof path, "/sys/devices/system/node/node%d/cpulist", ids[i]);
            read_file(path, cpus, sizeof cpus);
            snprintf(path, sizeof path, "/sys/devices/system/node/node%d/meminfo", ids[i]);
            FILE *f = fopen(path, "r");
            if (f) {
                while (fgets(buf, sizeof buf, f)) {
                    char *p = strstr(buf, "MemTotal:");
                    if (p) total = strtoull(p + 9, NULL, 10);
                    p = strstr(buf, "MemFree:");
                    if (p) freemem = strtoull(p + 8, NULL, 10);
                }
                fclose(f);
            }
            snprintf(path, sizeof path, "/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/nr_hugepages", ids[i]);
            read_file(path, hp, sizeof hp);
            snprintf(path, sizeof path, "/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/free_hugepages", ids[i]);
            read_file(path, hpfree, sizeof hpfree);
            printf("  node %d: cpus %s, memory %.1f GiB (%.1f GiB free), hugetlb 2 MiB pages %s (%s free)\n", ids[i],
                   cpus, total / 1048576.0, freemem / 1048576.0, hp, hpfree);
            nodes++;
        }
    }
    if (nodes == 0)
        printf("  (no /sys/devices/system/node: one node assumed)\n");
    char thp[256] = "unavailable", defrag[256] = "unavailable";
    read_file("/sys/kernel/mm/transparent_hugepage/enabled", thp, sizeof thp);
    read_file("/sys/kernel/mm/transparent_hugepage/defrag", defrag, sizeof defrag);
    printf("transparent huge pages: enabled %s, defrag %s\n", thp, defrag);
    const char *pages = getenv("NUMASLAB_PAGES");
    if (!pages || !*pages)
        pages = "auto";
    bool thp_never = strstr(thp, "[never]") != NULL;
    char hp_total[64] = "0";
    read_file("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", hp_total, sizeof hp_total);
    const char *what = strcmp(pages, "none") == 0 ? "base pages"
                       : strcmp(pages, "hugetlb") == 0 ? "hugetlb 2 MiB pages (then THP if NUMASLAB_HUGETLB_FALLBACK=1)"
                       : strcmp(pages, "thp") == 0 ? (thp_never ? "base pages (THP is never)" : "transparent huge pages")
                       : atoi(hp_total) > 0 ? (thp_never ? "hugetlb pages where a node has free ones, else base pages"
                                                         : "hugetlb pages where a node has free ones, else THP")
                       : (thp_never ? "base pages (no hugetlb pages reserved, THP is never)"
                                    : "transparent huge pages (no hugetlb pages reserved)");
    printf("numaslab will use: %d node(s), one pool each%s; SuperSlabs of 2 MiB on %s (NUMASLAB_PAGES=%s)\n",
           nodes ? nodes : 1, nodes > 1 ? ", memory bound to the node of the allocating thread" : "", what, pages);
    return 0;
}

/* ------------------------------------------------------------- options */
static void fmt_value(const char *type, int64_t v, char *out, size_t cap)
{
    if (strcmp(type, "string") == 0)
        snprintf(out, cap, "%s", v ? (const char *)(intptr_t)v : "unset");
    else if (strcmp(type, "size") == 0 && v >= 1024 && v % 1024 == 0) {
        const char *suf[] = {"K", "M", "G", "T"};
        int i = -1;
        while (v >= 1024 && v % 1024 == 0 && i < 3) { v /= 1024; i++; }
        snprintf(out, cap, "%lld%s", (long long)v, suf[i]);
    } else {
        snprintf(out, cap, "%lld", (long long)v);
    }
}

static int cmd_options(int argc, char **argv)
{
    bool md = argc > 1 && strcmp(argv[1], "--markdown") == 0;
    if (md)
        printf("| variable | type | default | range | meaning |\n|---|---|---|---|---|\n");
    const char *name, *type, *help;
    int64_t def, min, max;
    for (unsigned i = 0; options_describe(i, &name, &type, &def, &min, &max, &help); i++) {
        char d[32], lo[32], hi[32];
        fmt_value(type, def, d, sizeof d);
        fmt_value(type, min, lo, sizeof lo);
        fmt_value(type, max, hi, sizeof hi);
        char range[80];
        if (strcmp(type, "string") == 0)
            snprintf(range, sizeof range, "-");
        else
            snprintf(range, sizeof range, "%s..%s", lo, hi);
        if (md)
            printf("| `NUMASLAB_%s` | %s | `%s` | %s | %s |\n", name, type, d, range, help);
        else
            printf("NUMASLAB_%-16s %-6s default %-6s range %s\n    %s\n", name, type, d, range, help);
    }
    return 0;
}

/* ----------------------------------------------------------------- run */
static bool exists(const char *p) { return access(p, R_OK) == 0; }

static bool find_lib(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        const char *rel[] = {"/libnumaslab.so", "/../lib/libnumaslab.so", "/../" "lib/x86_64-linux-gnu/libnumaslab.so"};
        for (unsigned i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(out, cap, "%s%s", exe, rel[i]);
            if (exists(out)) {
                char real[PATH_MAX];
                if (realpath(out, real)) snprintf(out, cap, "%s", real);
                return true;
            }
        }
    }
    snprintf(out, cap, "%s/libnumaslab.so", NS_INSTALL_LIBDIR);
    return exists(out);
}

static int cmd_run(int argc, char **argv)
{
    char lib[PATH_MAX] = "";
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) { i++; break; }
        if (strcmp(argv[i], "--help") == 0) { usage(stdout); return 0; }
        if (strcmp(argv[i], "--stats") == 0) { setenv("NUMASLAB_STATS", "1", 1); continue; }
        if ((strcmp(argv[i], "--set") == 0 || strcmp(argv[i], "--lib") == 0) && i + 1 < argc) {
            if (argv[i][2] == 'l') { snprintf(lib, sizeof lib, "%s", argv[++i]); continue; }
            const char *kv = argv[++i], *eq = strchr(kv, '=');
            char var[128];
            if (!eq || eq == kv || (size_t)(eq - kv) > 100) {
                fprintf(stderr, "%s: --set wants NAME=VALUE, got '%s'\n", prog, kv);
                return 2;
            }
            snprintf(var, sizeof var, "NUMASLAB_%.*s", (int)(eq - kv), kv);
            setenv(var, eq + 1, 1);
            continue;
        }
        if (argv[i][0] == '-') {
            fprintf(stderr, "%s: run: unknown option '%s' (see numaslab --help)\n", prog, argv[i]);
            return 2;
        }
        break;     /* the program, without "--" */
    }
    if (i >= argc) {
        fprintf(stderr, "%s: run: no program given (numaslab run -- PROGRAM ARGS)\n", prog);
        return 2;
    }
    if (!lib[0] && !find_lib(lib, sizeof lib)) {
        fprintf(stderr, "%s: libnumaslab.so not found next to the tool or in %s (use --lib PATH)\n", prog,
                NS_INSTALL_LIBDIR);
        return 2;
    }
    if (!exists(lib)) {
        fprintf(stderr, "%s: library '%s' not readable\n", prog, lib);
        return 2;
    }
    const char *old = getenv("LD_PRELOAD");
    char *pre = malloc(strlen(lib) + (old ? strlen(old) : 0) + 2);
    if (!pre) return 2;
    sprintf(pre, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "");
    setenv("LD_PRELOAD", pre, 1);
    execvp(argv[i], argv + i);
    fprintf(stderr, "%s: cannot run '%s': %s\n", prog, argv[i], strerror(errno));
    return errno == ENOENT ? 127 : 126;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "topo") == 0) return cmd_topo();
    if (strcmp(cmd, "run") == 0) return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "options") == 0) return cmd_options(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "%s: unknown command '%s' (see numaslab --help)\n", prog, cmd);
    return 2;
}
