/* numaslab - the command-line tool around the allocator.
 *
 *   numaslab topo [--json]          the machine as numaslab sees it (hwloc)
 *   numaslab run [opts] -- PROG     run PROG with libnumaslab.so preloaded
 *   numaslab options [--markdown]   every NUMASLAB_* option with its default
 *   numaslab help [COMMAND]         manual pages (also COMMAND --help)
 *
 * The tool itself runs on the system malloc; it links the allocator's core
 * only to read the option table, so what it prints cannot drift from it.
 * Errors are one line on stderr, "numaslab CMD: ...", exit status 2 (127
 * when the program to run does not exist, 126 when it cannot be run).
 *
 * Test hook: NUMASLAB_TOOL_SYSROOT=DIR makes the tool read /sys files under
 * DIR/sys instead (node list, meminfo, huge pages, THP); hwloc still reads
 * the real machine. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <hwloc.h>
#include <limits.h>
#include <numa.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hugepage/hugepage.h"
#include "internal.h"
#include <numaslab.h>

#ifndef NS_INSTALL_LIBDIR
#define NS_INSTALL_LIBDIR "/usr/local/lib"
#endif

#define MAX_NODES 1024

/* ================================================================ help */
static const char *const help_main =
    "NAME\n"
    "    numaslab - topology, options and launcher for the numaslab allocator\n"
    "\n"
    "SYNOPSIS\n"
    "    numaslab topo [--json]\n"
    "    numaslab run [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "    numaslab options [--markdown]\n"
    "    numaslab help [COMMAND]  |  numaslab COMMAND --help  |  numaslab --version\n"
    "\n"
    "DESCRIPTION\n"
    "    numaslab is a NUMA-aware malloc replacement (libnumaslab.so).  This tool\n"
    "    shows the machine as the allocator sees it, runs programs with the\n"
    "    allocator preloaded and lists its NUMASLAB_* options.\n"
    "\n"
    "COMMANDS\n"
    "    topo      NUMA nodes (CPUs, memory, hugetlb pages), distances, THP\n"
    "              settings and the plan numaslab will follow; --json for scripts\n"
    "    run       run PROGRAM with libnumaslab.so in LD_PRELOAD; options map to\n"
    "              NUMASLAB_* variables; the exit status is PROGRAM's\n"
    "    options   every option: variable, type, default, range, meaning\n"
    "    help      this page, or the page of one command\n"
    "\n"
    "    There is no 'numaslab stats PID': a running process cannot be asked for\n"
    "    its statistics safely (see 'numaslab help run', STATISTICS).\n"
    "\n"
    "EXIT STATUS\n"
    "    0 success, 2 usage error (one line on stderr); run: PROGRAM's status,\n"
    "    127 if PROGRAM does not exist, 126 if it cannot be executed.\n"
    "\n"
    "EXAMPLES\n"
    "    numaslab topo\n"
    "    numaslab run --stats -- ./server --port 8080\n"
    "    numactl --cpunodebind=0 numaslab run --nodes 0 -- ./server\n";

static const char *const help_topo =
    "NAME\n"
    "    numaslab topo - the machine as numaslab sees it\n"
    "\n"
    "SYNOPSIS\n"
    "    numaslab topo [--json]\n"
    "\n"
    "DESCRIPTION\n"
    "    Loads the topology with hwloc, as the allocator does, and prints:\n"
    "    - every NUMA node: its CPUs, memory total (hwloc) and free\n"
    "      (/sys/devices/system/node/nodeN/meminfo), hugetlb pages of 2 MiB and\n"
    "      1 GiB, total and free (nodeN/hugepages/hugepages-{2048,1048576}kB);\n"
    "    - the distance matrix: hwloc's, else the ACPI SLIT through libnuma\n"
    "      (numa_distance), else 10 local / 20 remote; the source is named;\n"
    "    - the transparent huge page settings 'enabled' and 'defrag';\n"
    "    - what numaslab will do: the nodes it allocates from (NUMASLAB_NODES)\n"
    "      and the pages of its SuperSlabs (NUMASLAB_PAGES thp (default), auto,\n"
    "      hugetlb or none; NUMASLAB_STRICT, NUMASLAB_INTERLEAVE), read from the\n"
    "      environment.\n"
    "\n"
    "OPTIONS\n"
    "    --json    one JSON object instead of text: nodes[] (id, cpus, cpu_list,\n"
    "              memory_total_bytes, memory_free_bytes, hugepages{2048kB,\n"
    "              1048576kB}{total,free}), distances{source, nodes, matrix},\n"
    "              thp{enabled, defrag, enabled_raw, defrag_raw}, numaslab{nodes,\n"
    "              nodes_option, pages_option, pages_mode, pages, strict,\n"
    "              interleave, summary}.  Missing sysfs values are null.\n"
    "\n"
    "ENVIRONMENT\n"
    "    NUMASLAB_NODES, NUMASLAB_PAGES, NUMASLAB_STRICT, NUMASLAB_INTERLEAVE,\n"
    "    NUMASLAB_HUGETLB_FALLBACK: as the allocator reads them; a bad value\n"
    "    gets the allocator's warning on stderr and its default.\n"
    "\n"
    "EXAMPLES\n"
    "    numaslab topo\n"
    "    NUMASLAB_NODES=0 numaslab topo --json | python3 -m json.tool\n";

static const char *const help_run =
    "NAME\n"
    "    numaslab run - run a program with numaslab as its malloc\n"
    "\n"
    "SYNOPSIS\n"
    "    numaslab run [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "\n"
    "DESCRIPTION\n"
    "    Puts libnumaslab.so in front of LD_PRELOAD (found next to this tool,\n"
    "    in ../lib, or in " NS_INSTALL_LIBDIR "), sets the NUMASLAB_* variables\n"
    "    the options ask for and executes PROGRAM in place of the tool, so its\n"
    "    exit status and signals are PROGRAM's own.  Works after numactl\n"
    "    (numactl --cpunodebind=0 numaslab run -- PROG) and before it\n"
    "    (numaslab run -- numactl --cpunodebind=0 PROG).  Options may also be\n"
    "    written --name=value.\n"
    "\n"
    "OPTIONS\n"
    "    --nodes LIST       NUMASLAB_NODES: allocate from these nodes only, like\n"
    "                       0,2-3 or all; every node must exist on this machine\n"
    "    --strict           NUMASLAB_STRICT=1: MPOL_BIND instead of MPOL_PREFERRED\n"
    "    --interleave       NUMASLAB_INTERLEAVE=1: interleave large blocks\n"
    "    --pages MODE       NUMASLAB_PAGES: thp (default), auto, hugetlb or none;\n"
    "                       hugetlb warns when the nodes have no free hugetlb\n"
    "                       2 MiB page\n"
    "    --stats[=FORMAT]   NUMASLAB_STATS=1 (and NUMASLAB_STATS_FORMAT): print\n"
    "                       statistics when PROGRAM exits, FORMAT text or json\n"
    "    --stats-file PATH  NUMASLAB_STATS_FILE (implies --stats): write them to\n"
    "                       PATH instead of stderr; %p in PATH becomes the pid\n"
    "    --set NAME=VALUE   NUMASLAB_NAME=VALUE for any option of 'numaslab\n"
    "                       options' (the allocator checks the value: a bad one\n"
    "                       gets one warning line and the default)\n"
    "    --lib PATH         preload this libnumaslab.so\n"
    "    --help             this page\n"
    "\n"
    "STATISTICS\n"
    "    Text: per node SuperSlabs by backing and occupancy, slabs, bytes in use,\n"
    "    large blocks, remote frees, spills, bytes released; per size class\n"
    "    requests, cache hit rate, live blocks, slabs.  JSON: one object with\n"
    "    pid, program, node_count, threads, mapped_bytes, in_use_bytes, nodes[]\n"
    "    and classes[] (all 96) with the fields of ns_stats_t.  Every process\n"
    "    that exits through exit() writes its own: use %p in --stats-file for\n"
    "    programs that fork.  A running process cannot be asked for statistics\n"
    "    from outside: collecting them takes the allocator's locks, which a\n"
    "    signal handler may interrupt while held.  Call ns_stats_print() or\n"
    "    ns_stats_get() from the program instead.\n"
    "\n"
    "EXIT STATUS\n"
    "    PROGRAM's status; 127 PROGRAM not found, 126 not executable, 2 bad\n"
    "    option, unknown node, missing library (one line on stderr).\n"
    "\n"
    "EXAMPLES\n"
    "    numaslab run --stats -- python3 script.py\n"
    "    numaslab run --nodes 0-1 --pages hugetlb --stats=json --stats-file /tmp/s.%p.json -- ./db\n"
    "    numaslab run --set DECAY_MS=100 --set TCACHE_BYTES=1M -- ./server\n";

static const char *const help_options =
    "NAME\n"
    "    numaslab options - every NUMASLAB_* option of the allocator\n"
    "\n"
    "SYNOPSIS\n"
    "    numaslab options [--markdown]\n"
    "\n"
    "DESCRIPTION\n"
    "    Prints the option table compiled into the allocator: variable, type,\n"
    "    default, range and meaning.  Options are read once at start-up from\n"
    "    the environment; a value that does not parse gets one warning line and\n"
    "    the default.  Without --markdown, the options set in the environment\n"
    "    are also shown with the value the allocator will use (a bad value gets\n"
    "    the allocator's warning on stderr).\n"
    "\n"
    "OPTIONS\n"
    "    --markdown   the table for README.md (independent of the environment)\n";

static int print_help(const char *cmd, FILE *f)
{
    if (!cmd)
        fputs(help_main, f);
    else if (!strcmp(cmd, "topo"))
        fputs(help_topo, f);
    else if (!strcmp(cmd, "run"))
        fputs(help_run, f);
    else if (!strcmp(cmd, "options"))
        fputs(help_options, f);
    else if (!strcmp(cmd, "help"))
        fputs(help_main, f);
    else {
        fprintf(stderr, "numaslab help: no command '%s' (commands: topo, run, options, help)\n", cmd);
        return 2;
    }
    return 0;
}

static bool is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

/* ======================================================== small helpers */
static void die_line(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void die_line(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "numaslab %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* The arguments of a command whose only option is `flag` (*set when given).
 * Returns -1 to go on, or the command's exit status: 0 after --help, 2
 * after an unknown option (reported). */
static int flag_only_args(const char *cmd, int argc, char **argv, const char *flag, bool *set)
{
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i]))
            return print_help(cmd, stdout);
        if (strcmp(argv[i], flag) != 0) {
            die_line(cmd, "unknown option '%s' (see numaslab %s --help)", argv[i], cmd);
            return 2;
        }
        *set = true;
    }
    return -1;
}

/* /sys paths, under NUMASLAB_TOOL_SYSROOT when set (tests) */
static void sys_path(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sys_path(char *out, size_t cap, const char *fmt, ...)
{
    const char *root = getenv("NUMASLAB_TOOL_SYSROOT");
    int n = snprintf(out, cap, "%s", root ? root : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
}

/* whole small file, trailing blanks removed; -1 if unreadable */
static int read_text(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n && isspace((unsigned char)buf[n - 1]))
        buf[--n] = 0;
    return 0;
}

/* an unsigned number from a file; -1 if unreadable */
static long long read_num(const char *path)
{
    char buf[64];
    if (read_text(path, buf, sizeof buf) != 0 || !isdigit((unsigned char)buf[0]))
        return -1;
    return strtoll(buf, NULL, 10);
}

/* "0-3,5" -> mask[0..max); false on a syntax error or a number >= max */
static bool parse_list(const char *s, bool *mask, unsigned max)
{
    if (!*s)
        return false;
    while (*s) {
        if (!isdigit((unsigned char)*s))
            return false;
        unsigned long a = strtoul(s, (char **)&s, 10), b = a;
        if (*s == '-') {
            s++;
            if (!isdigit((unsigned char)*s))
                return false;
            b = strtoul(s, (char **)&s, 10);
        }
        if (b < a || b >= max)
            return false;
        for (unsigned long i = a; i <= b; i++)
            mask[i] = true;
        if (*s == ',' && s[1])
            s++;
        else if (*s)
            return false;
    }
    return true;
}

/* ---------------------------------------------------------- JSON output */
static void json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\t': fputs("\\t", f); break;
        case '\r': fputs("\\r", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

static void json_num_or_null(FILE *f, long long v)
{
    if (v < 0)
        fputs("null", f);
    else
        fprintf(f, "%lld", v);
}

/* ============================================================ topology */
typedef struct tnode {
    unsigned id;
    char cpus[1024];              /* hwloc cpuset as a list, "0-3,8"        */
    uint64_t mem_total, mem_free; /* bytes; mem_free 0 if unreadable        */
    bool have_free;
    long long hp[2][2];           /* [2 MiB, 1 GiB][total, free], -1 = none */
} tnode_t;

typedef struct machine {
    unsigned n;
    tnode_t *node;
    unsigned *dist;               /* n*n                                  */
    const char *dist_source;      /* hwloc, libnuma, default              */
    char thp_raw[256], defrag_raw[256];
    char thp[64], defrag[64];     /* the selected word, or "unavailable"  */
} machine_t;

static const char *const hp_dirs[2] = {"hugepages-2048kB", "hugepages-1048576kB"};

static void selected_word(const char *raw, char *out, size_t cap)
{
    const char *a = strchr(raw, '['), *b = a ? strchr(a, ']') : NULL;
    if (a && b)
        snprintf(out, cap, "%.*s", (int)(b - a - 1), a + 1);
    else
        snprintf(out, cap, "%s", raw[0] ? raw : "unavailable");
}

static void read_node_sysfs(tnode_t *t)
{
    char path[PATH_MAX], line[256];
    sys_path(path, sizeof path, "/sys/devices/system/node/node%u/meminfo", t->id);
    FILE *f = fopen(path, "r");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            char *p = strstr(line, "MemFree:");
            if (p) {
                t->mem_free = strtoull(p + 8, NULL, 10) * 1024;
                t->have_free = true;
            }
        }
        fclose(f);
    }
    for (int k = 0; k < 2; k++) {
        sys_path(path, sizeof path, "/sys/devices/system/node/node%u/hugepages/%s/nr_hugepages", t->id, hp_dirs[k]);
        t->hp[k][0] = read_num(path);
        sys_path(path, sizeof path, "/sys/devices/system/node/node%u/hugepages/%s/free_hugepages", t->id, hp_dirs[k]);
        t->hp[k][1] = read_num(path);
    }
}

static int load_machine(machine_t *m)
{
    memset(m, 0, sizeof *m);
    hwloc_topology_t t;
    if (hwloc_topology_init(&t) != 0)
        return -1;
    hwloc_topology_set_cache_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
    hwloc_topology_set_icache_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
    hwloc_topology_set_io_types_filter(t, HWLOC_TYPE_FILTER_KEEP_NONE);
    if (hwloc_topology_load(t) != 0) {
        hwloc_topology_destroy(t);
        return -1;
    }
    int nn = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_NUMANODE);
    if (nn <= 0)
        nn = 0;
    m->n = (unsigned)nn;
    m->node = calloc(nn ? (size_t)nn : 1, sizeof *m->node);
    m->dist = calloc(nn ? (size_t)nn * (size_t)nn : 1, sizeof *m->dist);
    if (!m->node || !m->dist) {
        hwloc_topology_destroy(t);
        return -1;
    }
    for (int i = 0; i < nn; i++) {           /* hwloc orders nodes by logical index; sort by os id */
        hwloc_obj_t o = hwloc_get_obj_by_type(t, HWLOC_OBJ_NUMANODE, (unsigned)i);
        tnode_t *x = &m->node[i];
        x->id = o->os_index;
        hwloc_bitmap_list_snprintf(x->cpus, sizeof x->cpus, o->cpuset);
        x->mem_total = o->attr ? o->attr->numanode.local_memory : 0;
        read_node_sysfs(x);
    }
    for (unsigned i = 1; i < m->n; i++)
        for (unsigned j = i; j > 0 && m->node[j].id < m->node[j - 1].id; j--) {
            tnode_t tmp = m->node[j];
            m->node[j] = m->node[j - 1];
            m->node[j - 1] = tmp;
        }
    /* distances: hwloc, else libnuma, else 10/20 */
    for (unsigned a = 0; a < m->n; a++)
        for (unsigned b = 0; b < m->n; b++)
            m->dist[a * m->n + b] = a == b ? 10 : 20;
    m->dist_source = "default";
    unsigned nr = 1;
    struct hwloc_distances_s *d = NULL;
    if (m->n && hwloc_distances_get_by_type(t, HWLOC_OBJ_NUMANODE, &nr, &d, 0, 0) == 0 && nr >= 1 && d) {
        for (unsigned i = 0; i < d->nbobjs; i++)
            for (unsigned j = 0; j < d->nbobjs; j++) {
                unsigned a = m->n, b = m->n;
                for (unsigned k = 0; k < m->n; k++) {
                    if (m->node[k].id == d->objs[i]->os_index) a = k;
                    if (m->node[k].id == d->objs[j]->os_index) b = k;
                }
                if (a < m->n && b < m->n)
                    m->dist[a * m->n + b] = (unsigned)d->values[i * d->nbobjs + j];
            }
        hwloc_distances_release(t, d);
        m->dist_source = "hwloc";
    } else if (m->n && numa_available() >= 0) {
        bool any = false;
        for (unsigned a = 0; a < m->n; a++)
            for (unsigned b = 0; b < m->n; b++) {
                int v = numa_distance((int)m->node[a].id, (int)m->node[b].id);
                if (v > 0) {
                    m->dist[a * m->n + b] = (unsigned)v;
                    any = true;
                }
            }
        if (any)
            m->dist_source = "libnuma";
    }
    hwloc_topology_destroy(t);
    char path[PATH_MAX];
    sys_path(path, sizeof path, "/sys/kernel/mm/transparent_hugepage/enabled");
    if (read_text(path, m->thp_raw, sizeof m->thp_raw) != 0)
        m->thp_raw[0] = 0;
    sys_path(path, sizeof path, "/sys/kernel/mm/transparent_hugepage/defrag");
    if (read_text(path, m->defrag_raw, sizeof m->defrag_raw) != 0)
        m->defrag_raw[0] = 0;
    selected_word(m->thp_raw, m->thp, sizeof m->thp);
    selected_word(m->defrag_raw, m->defrag, sizeof m->defrag);
    return 0;
}

/* Node ids that exist, from sysfs (cheap; no hwloc): exists[id].  A
 * machine without /sys/devices/system/node has node 0 only. */
static unsigned sysfs_nodes(bool *exists, unsigned max)
{
    memset(exists, 0, max * sizeof *exists);
    char path[PATH_MAX];
    sys_path(path, sizeof path, "/sys/devices/system/node");
    DIR *d = opendir(path);
    unsigned n = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (!strncmp(e->d_name, "node", 4) && isdigit((unsigned char)e->d_name[4])) {
                unsigned long id = strtoul(e->d_name + 4, NULL, 10);
                if (id < max && !exists[id])
                    exists[id] = true, n++;
            }
        closedir(d);
    }
    if (!n)
        exists[0] = true, n = 1;
    return n;
}

static void list_of(const bool *mask, unsigned max, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    for (unsigned i = 0; i < max; i++) {
        if (!mask[i])
            continue;
        unsigned j = i;
        while (j + 1 < max && mask[j + 1])
            j++;
        int w = j > i ? snprintf(out + len, cap - len, "%s%u-%u", len ? "," : "", i, j)
                      : snprintf(out + len, cap - len, "%s%u", len ? "," : "", i);
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
        i = j;
    }
}

/* ---------------------------------------------------------------- plan
 * What the allocator will do, from the same environment variables and
 * with the same fallbacks (topo.c, hugepage/os.c). */
typedef struct plan {
    bool used[MAX_NODES];
    unsigned nused;
    const char *nodes_opt;       /* NUMASLAB_NODES or NULL */
    const char *pages_opt;       /* NUMASLAB_PAGES or NULL */
    const char *pages_mode;      /* thp auto hugetlb none  */
    const char *pages_what;      /* the sentence           */
    bool strict, interleave;
    char summary[512];
} plan_t;

static bool env_bool(const char *name)
{
    const char *s = getenv(name);
    return s && (!strcmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "on") || !strcasecmp(s, "yes"));
}

static void make_plan(const machine_t *m, plan_t *p)
{
    memset(p, 0, sizeof *p);
    bool exists[MAX_NODES] = {0};
    for (unsigned i = 0; i < m->n; i++)
        if (m->node[i].id < MAX_NODES)
            exists[m->node[i].id] = true;
    if (!m->n)
        exists[0] = true;
    p->nodes_opt = getenv("NUMASLAB_NODES");
    bool any = false;
    if (p->nodes_opt && *p->nodes_opt && strcmp(p->nodes_opt, "all") != 0) {
        bool want[MAX_NODES] = {0};
        if (!parse_list(p->nodes_opt, want, MAX_NODES))
            fprintf(stderr, "numaslab: warning: bad value, using all nodes: NUMASLAB_NODES=%s\n", p->nodes_opt);
        else {
            for (unsigned n = 0; n < MAX_NODES; n++)
                if (want[n] && exists[n])
                    p->used[n] = true, any = true;
            if (!any)
                fprintf(stderr, "numaslab: warning: NUMASLAB_NODES names no existing node, using all: %s\n",
                        p->nodes_opt);
        }
    }
    if (!any)
        memcpy(p->used, exists, sizeof exists);
    for (unsigned n = 0; n < MAX_NODES; n++)
        p->nused += p->used[n];

    p->pages_opt = getenv("NUMASLAB_PAGES");
    /* the allocator's own parsing, default and warning (hugepage/os.c) */
    static const char *const modes[] = {"auto", "hugetlb", "thp", "none"};
    hp_init(p->pages_opt);
    p->pages_mode = modes[hp_mode() >= 0 && hp_mode() < 4 ? hp_mode() : HP_MODE_THP];
    bool thp_never = strstr(m->thp_raw, "[never]") != NULL || !m->thp_raw[0];
    char path[PATH_MAX];
    sys_path(path, sizeof path, "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages");
    long long hp_total = read_num(path);
    const char *mode = p->pages_mode;
    p->pages_what = !strcmp(mode, "none")      ? "base pages"
                    : !strcmp(mode, "hugetlb") ? (env_bool("NUMASLAB_HUGETLB_FALLBACK") || !getenv("NUMASLAB_HUGETLB_FALLBACK")
                                                      ? "hugetlb 2 MiB pages (then THP if NUMASLAB_HUGETLB_FALLBACK=1)"
                                                      : "hugetlb 2 MiB pages only (ENOMEM when none is left)")
                    : !strcmp(mode, "thp")     ? (thp_never ? "base pages (THP is never)" : "transparent huge pages")
                    : hp_total > 0 ? (thp_never ? "hugetlb pages where a node has free ones, else base pages"
                                                : "hugetlb pages where a node has free ones, else THP")
                                   : (thp_never ? "base pages (no hugetlb pages reserved, THP is never)"
                                                : "transparent huge pages (no hugetlb pages reserved)");
    p->strict = env_bool("NUMASLAB_STRICT");
    p->interleave = env_bool("NUMASLAB_INTERLEAVE");
    char nodes[256];
    list_of(p->used, MAX_NODES, nodes, sizeof nodes);
    snprintf(p->summary, sizeof p->summary,
             "%u node(s) (%s), one pool each%s%s%s; SuperSlabs of 2 MiB on %s (NUMASLAB_PAGES=%s)", p->nused, nodes,
             p->nused > 1 ? ", memory bound to the node of the allocating thread" : "",
             p->nused > 1 ? (p->strict ? " (MPOL_BIND)" : " (MPOL_PREFERRED)") : "",
             p->interleave && p->nused > 1 ? ", large blocks interleaved" : "", p->pages_what,
             p->pages_mode);
}

static void print_bytes_gib(uint64_t b) { printf("%.1f GiB", (double)b / (1024.0 * 1024 * 1024)); }

static void topo_text(const machine_t *m, const plan_t *p)
{
    printf("NUMA nodes (hwloc %s): %u\n", HWLOC_VERSION, m->n);
    for (unsigned i = 0; i < m->n; i++) {
        const tnode_t *x = &m->node[i];
        printf("  node %u: cpus %s, memory ", x->id, x->cpus[0] ? x->cpus : "none");
        print_bytes_gib(x->mem_total);
        if (x->have_free) {
            printf(" (");
            print_bytes_gib(x->mem_free);
            printf(" free)");
        }
        printf("\n          hugetlb 2 MiB pages ");
        if (x->hp[0][0] >= 0) printf("%lld (%lld free)", x->hp[0][0], x->hp[0][1]); else printf("unavailable");
        printf(", 1 GiB pages ");
        if (x->hp[1][0] >= 0) printf("%lld (%lld free)", x->hp[1][0], x->hp[1][1]); else printf("unavailable");
        printf("%s\n", p->used[x->id < MAX_NODES ? x->id : 0] ? "" : "  [not used: NUMASLAB_NODES]");
    }
    if (!m->n)
        printf("  (hwloc shows no NUMA node: one node assumed)\n");
    printf("distances (%s):\n      ", m->dist_source);
    for (unsigned b = 0; b < m->n; b++)
        printf(" %5u", m->node[b].id);
    printf("\n");
    for (unsigned a = 0; a < m->n; a++) {
        printf("  %4u", m->node[a].id);
        for (unsigned b = 0; b < m->n; b++)
            printf(" %5u", m->dist[a * m->n + b]);
        printf("\n");
    }
    printf("transparent huge pages: enabled %s, defrag %s\n", m->thp_raw[0] ? m->thp_raw : "unavailable",
           m->defrag_raw[0] ? m->defrag_raw : "unavailable");
    printf("numaslab will use: %s\n", p->summary);
}

static void topo_json(const machine_t *m, const plan_t *p)
{
    FILE *f = stdout;
    fprintf(f, "{\n  \"hwloc_version\": ");
    json_str(f, HWLOC_VERSION);
    fprintf(f, ",\n  \"nodes\": [");
    for (unsigned i = 0; i < m->n; i++) {
        const tnode_t *x = &m->node[i];
        fprintf(f, "%s\n    {\"id\": %u, \"cpus\": ", i ? "," : "", x->id);
        json_str(f, x->cpus);
        fprintf(f, ", \"cpu_list\": [");
        bool cmask[8192] = {0};
        unsigned ncpu = 0;
        if (x->cpus[0] && parse_list(x->cpus, cmask, 8192))
            for (unsigned c = 0; c < 8192; c++)
                if (cmask[c])
                    fprintf(f, "%s%u", ncpu++ ? ", " : "", c);
        fprintf(f, "], \"memory_total_bytes\": %llu, \"memory_free_bytes\": ", (unsigned long long)x->mem_total);
        json_num_or_null(f, x->have_free ? (long long)x->mem_free : -1);
        fprintf(f, ", \"hugepages\": {");
        for (int k = 0; k < 2; k++) {
            fprintf(f, "%s\"%s\": ", k ? ", " : "", k ? "1048576kB" : "2048kB");
            if (x->hp[k][0] < 0)
                fputs("null", f);
            else
                fprintf(f, "{\"total\": %lld, \"free\": %lld}", x->hp[k][0], x->hp[k][1] < 0 ? 0 : x->hp[k][1]);
        }
        fprintf(f, "}, \"used\": %s}", p->used[x->id < MAX_NODES ? x->id : 0] ? "true" : "false");
    }
    fprintf(f, "\n  ],\n  \"distances\": {\"source\": ");
    json_str(f, m->dist_source);
    fprintf(f, ", \"nodes\": [");
    for (unsigned b = 0; b < m->n; b++)
        fprintf(f, "%s%u", b ? ", " : "", m->node[b].id);
    fprintf(f, "], \"matrix\": [");
    for (unsigned a = 0; a < m->n; a++) {
        fprintf(f, "%s[", a ? ", " : "");
        for (unsigned b = 0; b < m->n; b++)
            fprintf(f, "%s%u", b ? ", " : "", m->dist[a * m->n + b]);
        fprintf(f, "]");
    }
    fprintf(f, "]},\n  \"thp\": {\"enabled\": ");
    json_str(f, m->thp);
    fprintf(f, ", \"defrag\": ");
    json_str(f, m->defrag);
    fprintf(f, ", \"enabled_raw\": ");
    json_str(f, m->thp_raw);
    fprintf(f, ", \"defrag_raw\": ");
    json_str(f, m->defrag_raw);
    fprintf(f, "},\n  \"numaslab\": {\"nodes\": [");
    unsigned k = 0;
    for (unsigned n = 0; n < MAX_NODES; n++)
        if (p->used[n])
            fprintf(f, "%s%u", k++ ? ", " : "", n);
    fprintf(f, "], \"nodes_option\": ");
    json_str(f, p->nodes_opt);
    fprintf(f, ", \"pages_option\": ");
    json_str(f, p->pages_opt);
    fprintf(f, ", \"pages_mode\": ");
    json_str(f, p->pages_mode);
    fprintf(f, ", \"pages\": ");
    json_str(f, p->pages_what);
    fprintf(f, ", \"strict\": %s, \"interleave\": %s, \"summary\": ", p->strict ? "true" : "false",
            p->interleave ? "true" : "false");
    json_str(f, p->summary);
    fprintf(f, "}\n}\n");
}

static int cmd_topo(int argc, char **argv)
{
    bool json = false;
    int st = flag_only_args("topo", argc, argv, "--json", &json);
    if (st >= 0)
        return st;
    machine_t m;
    if (load_machine(&m) != 0) {
        die_line("topo", "hwloc could not load the topology");
        return 2;
    }
    plan_t *p = malloc(sizeof *p);
    if (!p)
        return 2;
    make_plan(&m, p);
    if (json)
        topo_json(&m, p);
    else
        topo_text(&m, p);
    free(p);
    free(m.node);
    free(m.dist);
    return fflush(stdout) == 0 ? 0 : 2;
}

/* ============================================================= options */
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

/* the option row named `name` (with or without NUMASLAB_, any case) */
static bool find_option(const char *name, size_t len, const char **canon, const char **type)
{
    if (len > 9 && !strncasecmp(name, "NUMASLAB_", 9))
        name += 9, len -= 9;
    const char *n, *t, *h;
    int64_t d, lo, hi;
    for (unsigned i = 0; options_describe(i, &n, &t, &d, &lo, &hi, &h); i++)
        if (strlen(n) == len && !strncasecmp(n, name, len)) {
            *canon = n;
            if (type)
                *type = t;
            return true;
        }
    return false;
}

static int cmd_options(int argc, char **argv)
{
    bool md = false;
    int st = flag_only_args("options", argc, argv, "--markdown", &md);
    if (st >= 0)
        return st;
    if (md)
        printf("| variable | type | default | range | meaning |\n|---|---|---|---|---|\n");
    else
        options_init();          /* the values the allocator would use; warns like it */
    const char *name, *type, *help;
    int64_t def, min, max;
    const int64_t *cur = (const int64_t *)&ns_opt;
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
        if (md) {
            printf("| `NUMASLAB_%s` | %s | `%s` | %s | %s |\n", name, type, d, range, help);
            continue;
        }
        printf("NUMASLAB_%-16s %-6s default %-6s range %s\n    %s\n", name, type, d, range, help);
        char var[64];
        snprintf(var, sizeof var, "NUMASLAB_%s", name);
        const char *env = getenv(var);
        if (env) {
            char now[256];
            fmt_value(type, cur[i], now, sizeof now);   /* rows are in field order */
            printf("    set: %s='%s' -> %s\n", var, env, now);
        }
    }
    return 0;
}

/* ================================================================= run */
static bool readable(const char *p) { return access(p, R_OK) == 0; }

static bool find_lib(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        const char *rel[] = {"/libnumaslab.so", "/../lib/libnumaslab.so", "/../lib/x86_64-linux-gnu/libnumaslab.so",
                             "/../lib64/libnumaslab.so"};
        for (unsigned i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(out, cap, "%s%s", exe, rel[i]);
            if (readable(out)) {
                char real[PATH_MAX];
                if (realpath(out, real)) snprintf(out, cap, "%s", real);
                return true;
            }
        }
    }
    snprintf(out, cap, "%s/libnumaslab.so", NS_INSTALL_LIBDIR);
    return readable(out);
}

/* PROGRAM as execvp would find it: 0 found and executable, ENOENT, EACCES */
static int find_program(const char *prog)
{
    if (strchr(prog, '/')) {
        if (access(prog, F_OK) != 0) return ENOENT;
        struct stat st;
        if (stat(prog, &st) != 0 || S_ISDIR(st.st_mode) || access(prog, X_OK) != 0) return EACCES;
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    int err = ENOENT;
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        char full[PATH_MAX];
        snprintf(full, sizeof full, "%.*s/%s", (int)(len ? len : 1), len ? path : ".", prog);
        struct stat st;
        if (stat(full, &st) == 0 && !S_ISDIR(st.st_mode)) {
            if (access(full, X_OK) == 0) return 0;
            err = EACCES;
        }
        path += len + (colon ? 1 : 0);
    }
    return err;
}

/* "--name VALUE" or "--name=VALUE": the value (advancing *i), NULL if this
 * argument is not option `name`; *missing if the value is missing */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return NULL;
    if (a[n] == '=') return a + n + 1;
    if (a[n]) return NULL;
    if (*i + 1 >= argc || !strcmp(argv[*i + 1], "--")) {
        *missing = true;
        return "";
    }
    return argv[++*i];
}

static int cmd_run(int argc, char **argv)
{
    static const char *C = "run";
    char lib[PATH_MAX] = "";
    bool stats = false;
    const char *stats_file = NULL;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (!strcmp(a, "--")) { i++; break; }
        if (is_help(a)) return print_help("run", stdout);
        if (!strcmp(a, "--strict")) { setenv("NUMASLAB_STRICT", "1", 1); continue; }
        if (!strcmp(a, "--interleave")) { setenv("NUMASLAB_INTERLEAVE", "1", 1); continue; }
        if (!strcmp(a, "--stats")) { stats = true; continue; }
        if (!strncmp(a, "--stats=", 8)) {
            v = a + 8;
            if (!strcmp(v, "json") || !strcmp(v, "text")) setenv("NUMASLAB_STATS_FORMAT", v, 1);
            else if (strcmp(v, "1") != 0) {
                die_line(C, "--stats=%s: want --stats, --stats=text or --stats=json", v);
                return 2;
            }
            stats = true;
            continue;
        }
        if ((v = opt_value(argc, argv, &i, "--nodes", &missing))) {
            if (missing) { die_line(C, "--nodes wants a list of nodes like 0,2-3"); return 2; }
            if (strcmp(v, "all") != 0) {
                static bool want[MAX_NODES], exists[MAX_NODES];
                memset(want, 0, sizeof want);
                if (!parse_list(v, want, MAX_NODES)) {
                    die_line(C, "--nodes '%s': want a list of nodes like 0,2-3 or 'all'", v);
                    return 2;
                }
                sysfs_nodes(exists, MAX_NODES);
                for (unsigned n = 0; n < MAX_NODES; n++)
                    if (want[n] && !exists[n]) {
                        char have[256];
                        list_of(exists, MAX_NODES, have, sizeof have);
                        die_line(C, "--nodes %s: node %u does not exist on this machine (nodes: %s)", v, n, have);
                        return 2;
                    }
            }
            setenv("NUMASLAB_NODES", v, 1);
            continue;
        }
        if ((v = opt_value(argc, argv, &i, "--pages", &missing))) {
            if (missing || (strcmp(v, "auto") && strcmp(v, "hugetlb") && strcmp(v, "thp") && strcmp(v, "none"))) {
                die_line(C, "--pages '%s': want auto, hugetlb, thp or none", v);
                return 2;
            }
            setenv("NUMASLAB_PAGES", v, 1);
            continue;
        }
        if ((v = opt_value(argc, argv, &i, "--stats-file", &missing))) {
            if (missing || !*v) { die_line(C, "--stats-file wants a file name"); return 2; }
            char dir[PATH_MAX];
            snprintf(dir, sizeof dir, "%s", v);
            char *slash = strrchr(dir, '/');
            if (slash == dir) dir[1] = 0;
            else if (slash) *slash = 0;
            else snprintf(dir, sizeof dir, ".");
            if (access(dir, W_OK) != 0) {
                die_line(C, "--stats-file %s: directory '%s' is not writable: %s", v, dir, strerror(errno));
                return 2;
            }
            stats_file = v;
            stats = true;
            continue;
        }
        if ((v = opt_value(argc, argv, &i, "--lib", &missing))) {
            if (missing || !*v) { die_line(C, "--lib wants the path of libnumaslab.so"); return 2; }
            snprintf(lib, sizeof lib, "%s", v);
            continue;
        }
        if ((v = opt_value(argc, argv, &i, "--set", &missing))) {
            const char *eq = strchr(v, '='), *canon;
            if (missing || !eq || eq == v) {
                die_line(C, "--set wants NAME=VALUE, got '%s'", v);
                return 2;
            }
            if (!find_option(v, (size_t)(eq - v), &canon, NULL)) {
                die_line(C, "--set %s: unknown option '%.*s' (see numaslab options)", v, (int)(eq - v), v);
                return 2;
            }
            char var[128];
            snprintf(var, sizeof var, "NUMASLAB_%s", canon);
            setenv(var, eq + 1, 1);
            continue;
        }
        if (a[0] == '-' && a[1]) {
            die_line(C, "unknown option '%s' (see numaslab run --help)", a);
            return 2;
        }
        break;     /* the program, without "--" */
    }
    if (i >= argc) {
        die_line(C, "no program given (numaslab run [OPTIONS] -- PROGRAM ARGS)");
        return 2;
    }
    if (stats) {
        setenv("NUMASLAB_STATS", "1", 1);
        if (stats_file) setenv("NUMASLAB_STATS_FILE", stats_file, 1);
    }
    /* --pages hugetlb: say so when the nodes have no free hugetlb page */
    const char *pages = getenv("NUMASLAB_PAGES");
    if (pages && !strcmp(pages, "hugetlb")) {
        static bool used[MAX_NODES], want[MAX_NODES];
        sysfs_nodes(used, MAX_NODES);
        const char *nodes = getenv("NUMASLAB_NODES");
        memset(want, 0, sizeof want);
        if (nodes && strcmp(nodes, "all") != 0 && parse_list(nodes, want, MAX_NODES)) {
            bool any = false;
            for (unsigned n = 0; n < MAX_NODES; n++) any |= want[n] && used[n];
            if (any)
                for (unsigned n = 0; n < MAX_NODES; n++) used[n] = used[n] && want[n];
        }
        long long total = 0, freep = 0;
        for (unsigned n = 0; n < MAX_NODES; n++) {
            if (!used[n]) continue;
            char path[PATH_MAX];
            sys_path(path, sizeof path, "/sys/devices/system/node/node%u/hugepages/hugepages-2048kB/nr_hugepages", n);
            long long t = read_num(path);
            sys_path(path, sizeof path, "/sys/devices/system/node/node%u/hugepages/hugepages-2048kB/free_hugepages", n);
            long long f = read_num(path);
            total += t > 0 ? t : 0;
            freep += f > 0 ? f : 0;
        }
        if (freep == 0) {
            char list[256];
            list_of(used, MAX_NODES, list, sizeof list);
            const char *fb = getenv("NUMASLAB_HUGETLB_FALLBACK");
            bool nofb = fb && (!strcmp(fb, "0") || !strcasecmp(fb, "false") || !strcasecmp(fb, "off") ||
                               !strcasecmp(fb, "no"));
            fprintf(stderr, "numaslab run: warning: --pages hugetlb but %s on node(s) %s (see "
                            "/sys/devices/system/node/nodeN/hugepages/hugepages-2048kB/nr_hugepages); %s\n",
                    total ? "every hugetlb 2 MiB page is in use" : "no hugetlb 2 MiB page is reserved", list,
                    nofb ? "allocations will fail with ENOMEM (NUMASLAB_HUGETLB_FALLBACK=0)"
                         : "SuperSlabs will use THP");
        }
    }
    if (!lib[0] && !find_lib(lib, sizeof lib)) {
        die_line(C, "libnumaslab.so not found next to the tool, in ../lib or in %s (use --lib PATH)",
                 NS_INSTALL_LIBDIR);
        return 2;
    }
    if (!readable(lib)) {
        die_line(C, "library '%s' not found or not readable", lib);
        return 2;
    }
    int err = find_program(argv[i]);
    if (err) {
        die_line(C, "%s: %s", argv[i], err == ENOENT ? "command not found" : "permission denied");
        return err == ENOENT ? 127 : 126;
    }
    const char *old = getenv("LD_PRELOAD");
    size_t need = strlen(lib) + (old ? strlen(old) : 0) + 2;
    char *pre = malloc(need);
    if (!pre) return 2;
    snprintf(pre, need, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "");
    setenv("LD_PRELOAD", pre, 1);
    fflush(NULL);
    execvp(argv[i], argv + i);
    err = errno;
    die_line(C, "cannot run '%s': %s", argv[i], strerror(err));
    return err == ENOENT ? 127 : 126;
}

/* ================================================================ main */
int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(help_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "topo")) return cmd_topo(argc - 1, argv + 1);
    if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "options")) return cmd_options(argc - 1, argv + 1);
    if (!strcmp(cmd, "help") || is_help(cmd)) return print_help(argc > 2 ? argv[2] : NULL, stdout);
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("numaslab %d.%d.%d\n", NS_VERSION_MAJOR, NS_VERSION_MINOR, NS_VERSION_PATCH);
        return 0;
    }
    if (!strcmp(cmd, "stats")) {
        fprintf(stderr, "numaslab stats: not available: a running process cannot be asked for its statistics "
                        "safely; run it with 'numaslab run --stats[=json] [--stats-file F] -- PROG'\n");
        return 2;
    }
    fprintf(stderr, "numaslab: unknown command '%s' (see numaslab --help)\n", cmd);
    return 2;
}
