/* numaslab - the command-line tool around the allocator.
 *
 *   numaslab topo [--json]          the machine as numaslab sees it (hwloc)
 *   numaslab run [opts] -- PROG     run PROG with libnumaslab.so preloaded
 *   numaslab options [--markdown]   every NUMASLAB_* option with its default
 *   numaslab stats [--json] PID     statistics of a running process
 *   numaslab top PID                the same, refreshed every second
 *   numaslab prof FILE              top sites of a heap profile (tools/prof.c)
 *   numaslab help [COMMAND]         manual pages (also COMMAND --help)
 *
 * The tool itself runs on the system malloc; it links the allocator's core
 * for the option table and its parser (options_init, options_describe,
 * options_format, options_parse_nodes) and for the topology tables
 * (topo_from_hwloc, topo_select_nodes), so what it prints is what the
 * allocator does for the same environment, warnings included.
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
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "numa/numa.h"
#include "live.h"
#include "prof.h"
#include <numaslab.h>

#ifndef NS_INSTALL_LIBDIR
#define NS_INSTALL_LIBDIR "/usr/local/lib"
#endif

/* ================================================================ help */
static const char *const help_main =
    "NAME\n"
    "    numaslab - topology, options and launcher for the numaslab allocator\n"
    "\n"
    "SYNOPSIS\n"
    "    numaslab topo [--json]\n"
    "    numaslab run [OPTIONS] [--] PROGRAM [ARGS...]\n"
    "    numaslab options [--markdown]\n"
    "    numaslab stats [--json] PID\n"
    "    numaslab top [--interval MS] [--count N] PID\n"
    "    numaslab prof [--top N] [--no-symbols] FILE\n"
    "    numaslab help [COMMAND]  |  numaslab COMMAND --help  |  numaslab --version\n"
    "\n"
    "DESCRIPTION\n"
    "    numaslab is a NUMA-aware malloc replacement (libnumaslab.so).  This tool\n"
    "    shows the machine as the allocator sees it, runs programs with the\n"
    "    allocator preloaded, shows the statistics of running processes and\n"
    "    lists its NUMASLAB_* options.\n"
    "\n"
    "COMMANDS\n"
    "    topo      NUMA nodes (CPUs, memory, hugetlb pages), distances, THP\n"
    "              settings and the plan numaslab will follow; --json for scripts\n"
    "    run       run PROGRAM with libnumaslab.so in LD_PRELOAD; options map to\n"
    "              NUMASLAB_* variables; the exit status is PROGRAM's\n"
    "    options   every option: variable, type, default, range, meaning\n"
    "    stats     the statistics report of a running process (text or JSON),\n"
    "              without stopping it\n"
    "    top       per node mapped and in-use bytes, remote frees and spills of\n"
    "              a running process, every second\n"
    "    prof      the top call sites of a heap profile (NUMASLAB_PROF=1) by live\n"
    "              bytes, per node, and by bytes freed by other nodes' threads\n"
    "    help      this page, or the page of one command ('help statistics':\n"
    "              what the statistics count)\n"
    "    man       the manual pages numaslab(1) and numaslab(3) in roff, made\n"
    "              from these pages and the option table (the build uses it)\n"
    "\n"
    "EXIT STATUS\n"
    "    0 success, 2 usage error (one line on stderr); run: PROGRAM's status,\n"
    "    127 if PROGRAM does not exist, 126 if it cannot be executed; stats,\n"
    "    top: 1 if the process cannot be read (gone, another user's, not\n"
    "    using numaslab).\n"
    "\n"
    "EXAMPLES\n"
    "    numaslab topo\n"
    "    numaslab run --stats -- ./server --port 8080\n"
    "    numaslab stats --json $(pidof server)\n"
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
    "              nodes_option, pages_option, pages_mode, pages,\n"
    "              hugetlb_fallback, strict, interleave, summary}, and config\n"
    "              {nodes_used, pages, hugetlb_fallback, strict, interleave}: the\n"
    "              \"config\" object of the allocator's JSON statistics, key for\n"
    "              key.  Missing sysfs values are null.\n"
    "\n"
    "ENVIRONMENT\n"
    "    NUMASLAB_NODES, NUMASLAB_PAGES, NUMASLAB_STRICT, NUMASLAB_INTERLEAVE,\n"
    "    NUMASLAB_HUGETLB_FALLBACK: read by the allocator's own parser; a bad\n"
    "    value gets the allocator's warning on stderr and its default.\n"
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
    "                       0,2-3, or all (also ''); every node must exist on\n"
    "                       this machine\n"
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
    "    programs that fork.  The same report of a running process:\n"
    "    'numaslab stats PID' (see numaslab help stats).\n"
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

static const char *const help_stats =
    "NAME\n"
    "    numaslab stats - the statistics of a running process\n"
    "\n"
    "SYNOPSIS\n"
    "    numaslab stats [--json] PID\n"
    "\n"
    "DESCRIPTION\n"
    "    Prints the report that NUMASLAB_STATS=1 prints at exit (text, or JSON\n"
    "    with --json: the same fields) for the running process PID, which must\n"
    "    use numaslab (LD_PRELOAD or linked) and belong to the caller's user\n"
    "    (or the caller is root).  The process is not stopped or signalled:\n"
    "    it keeps its figures in a shared memory area (a memfd named\n"
    "    numaslab-stats), refreshed from its allocation slow paths and, once\n"
    "    it has been asked, by a helper thread (numaslab-stats) that answers\n"
    "    each request at once; the first request of a process waits for its\n"
    "    next malloc that misses its thread cache, which starts the helper.\n"
    "    This tool waits at most 3 seconds; a process that has not allocated\n"
    "    meanwhile gets its last copy, with its age in a note on stderr.\n"
    "\n"
    "OPTIONS\n"
    "    --json    the JSON report (NUMASLAB_STATS_FORMAT=json)\n"
    "\n"
    "EXIT STATUS\n"
    "    0 success, 2 usage error, 1 the process cannot be read: no such\n"
    "    process, another user's, or no numaslab statistics area in it (it does\n"
    "    not use numaslab, or has not allocated since it started).\n"
    "\n"
    "EXAMPLES\n"
    "    numaslab stats 4242\n"
    "    numaslab stats --json $(pidof redis-server) | python3 -m json.tool\n";

static const char *const help_top =
    "NAME\n"
    "    numaslab top - the statistics of a running process, refreshed\n"
    "\n"
    "SYNOPSIS\n"
    "    numaslab top [--interval MS] [--count N] PID\n"
    "\n"
    "DESCRIPTION\n"
    "    Every second (or MS milliseconds) shows, for the running process PID,\n"
    "    the bytes mapped and in use, the threads with a cache, and per NUMA\n"
    "    node: bytes mapped, bytes in use, remote frees per second (blocks freed\n"
    "    by threads of another node) and spills (allocations that went to the\n"
    "    nearest node because the home node was full), total and per second.\n"
    "    The figures come from the shared area of 'numaslab stats'; rates are\n"
    "    taken between the process's own snapshots.  Stops at Ctrl-C, after N\n"
    "    screens, or when the process exits.\n"
    "\n"
    "OPTIONS\n"
    "    --interval MS   refresh period in milliseconds (100..60000; 1000)\n"
    "    --count N       stop after N screens (default: until interrupted)\n"
    "\n"
    "EXIT STATUS\n"
    "    0 stopped by --count, Ctrl-C or the end of the process, 2 usage error,\n"
    "    1 the process cannot be read (see numaslab help stats).\n"
    "\n"
    "EXAMPLES\n"
    "    numaslab top $(pidof server)\n"
    "    numaslab top --interval 500 --count 10 4242\n";

static const char *const help_prof =
    "NAME\n"
    "    numaslab prof - the top call sites of a heap profile\n"
    "\n"
    "SYNOPSIS\n"
    "    numaslab prof [--top N] [--no-symbols] FILE\n"
    "\n"
    "DESCRIPTION\n"
    "    Reads a heap profile that a process wrote with NUMASLAB_PROF=1 (at\n"
    "    exit, at each NUMASLAB_PROF_INTERVAL of growth, or by ns_prof_dump)\n"
    "    and prints the call sites with the most live bytes, with their live\n"
    "    bytes per NUMA node, and the call sites whose blocks threads of another\n"
    "    node freed the most (remote frees: cross-node traffic).  Figures are\n"
    "    estimates scaled up from the samples (one per NUMASLAB_PROF_SAMPLE\n"
    "    bytes on average), as pprof scales them.  Frames are named with\n"
    "    addr2line (binutils) from the objects the profile lists with their\n"
    "    build IDs; an object rebuilt since is flagged.  The same file is\n"
    "    google-pprof's heap format: google-pprof --text PROGRAM FILE.\n"
    "\n"
    "OPTIONS\n"
    "    --top N         sites per table (default 10)\n"
    "    --no-symbols    object+offset instead of names (no addr2line)\n"
    "\n"
    "EXIT STATUS\n"
    "    0 success, 2 usage error, 1 the file cannot be read or is not a\n"
    "    numaslab heap profile.\n"
    "\n"
    "EXAMPLES\n"
    "    NUMASLAB_PROF=1 NUMASLAB_PROF_FILE=/tmp/app.%p.heap numaslab run -- ./app\n"
    "    numaslab prof /tmp/app.4242.heap\n";

static const char *const help_statistics =
    "STATISTICS\n"
    "    Collected on demand from the node pools' counters, which the slow\n"
    "    paths keep; nothing is counted on the fast paths except the blocks\n"
    "    each thread cache hands out.  Where they appear: ns_stats_get() and\n"
    "    ns_stats_print() in the program; NUMASLAB_STATS=1 at exit (text, or\n"
    "    JSON with NUMASLAB_STATS_FORMAT=json, to NUMASLAB_STATS_FILE);\n"
    "    'numaslab stats PID' and 'numaslab top PID' for a running process;\n"
    "    glibc's mallinfo2, mallinfo, malloc_stats and malloc_info.\n"
    "\n"
    "    Per node: SuperSlabs mapped (by backing: hugetlb, thp, base) and an\n"
    "    occupancy histogram (empty, 1-8, 9-16, 17-24, 25-32 used units of\n"
    "    32), slabs, bytes of small blocks in use (handed out or held in\n"
    "    thread caches), live and cached large mappings, remote frees (blocks\n"
    "    freed by threads of another node) and those drained, spills\n"
    "    (allocations sent to the nearest node because the home node was\n"
    "    full), bytes given back to the OS.  Per size class: block size,\n"
    "    requests, refills (cache misses), hit rate 1 - refills / requests,\n"
    "    live blocks, slabs.\n"
    "\n"
    "MALLINFO2\n"
    "    arena all bytes mapped; ordblks SuperSlabs; smblks cached large\n"
    "    mappings; hblks, hblkhd live large mappings and their bytes; usmblks\n"
    "    0; fsmblks bytes of cached large mappings; uordblks bytes in use;\n"
    "    fordblks arena - uordblks; keepcost bytes of empty SuperSlabs.\n"
    "    mallopt: M_TRIM_THRESHOLD sets the large cache (bytes kept per\n"
    "    node); M_MMAP_THRESHOLD (0..32 MiB) and M_ARENA_MAX (> 0) return 1\n"
    "    and change nothing; every other parameter returns 0.\n";

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
    else if (!strcmp(cmd, "stats"))
        fputs(help_stats, f);
    else if (!strcmp(cmd, "top"))
        fputs(help_top, f);
    else if (!strcmp(cmd, "prof"))
        fputs(help_prof, f);
    else if (!strcmp(cmd, "statistics"))
        fputs(help_statistics, f);
    else if (!strcmp(cmd, "help"))
        fputs(help_main, f);
    else {
        fprintf(stderr, "numaslab help: no command '%s' (commands: topo, run, options, stats, top, prof, statistics, help)\n", cmd);
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

/* hugetlb pages of node n, from sysfs: k 0 = 2 MiB, 1 = 1 GiB; out[0]
 * total, out[1] free, -1 where unreadable */
static const char *const hp_dirs[2] = {"hugepages-2048kB", "hugepages-1048576kB"};
static void node_hugepages(unsigned n, int k, long long out[2])
{
    static const char *const files[2] = {"nr_hugepages", "free_hugepages"};
    char path[PATH_MAX];
    for (int j = 0; j < 2; j++) {
        sys_path(path, sizeof path, "/sys/devices/system/node/node%u/hugepages/%s/%s", n, hp_dirs[k],
                 files[j]);
        out[j] = read_num(path);
    }
}

/* The nodes of a uint8_t table [slots] as a set (and as text: "0-1"). */
static nodeset_t set_of(const uint8_t *mask, uint32_t slots)
{
    nodeset_t s = {.given = true};
    for (uint32_t n = 0; n < slots && n < NS_MAX_NODES; n++)
        if (mask[n])
            s.bits[n / 64] |= 1ull << (n % 64);
    return s;
}

/* ------------------------------------------------------- the option table */
/* Row of the option named name[0..len) (with or without NUMASLAB_, any
 * case), -1 if there is none. */
static int option_row(const char *name, size_t len)
{
    if (len > 9 && !strncasecmp(name, "NUMASLAB_", 9))
        name += 9, len -= 9;
    option_info_t o;
    for (unsigned i = 0; options_describe(i, &o); i++)
        if (strlen(o.name) == len && !strncasecmp(o.name, name, len))
            return (int)i;
    return -1;
}

static void option_info(const char *name, option_info_t *o)
{
    int row = option_row(name, strlen(name));
    if (row < 0 || !options_describe((unsigned)row, o))
        abort();                /* a row this file names is in the table */
}

/* The current value of the option `name` as the allocator prints it. */
static void option_text(const char *name, char *out, size_t cap)
{
    options_format((unsigned)option_row(name, strlen(name)), out, cap);
}

/* "a, b or c" from an ENUM row's words */
static void choices_text(const char *const *w, const char *last_sep, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    for (unsigned i = 0; w[i] && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i == 0 ? "" : w[i + 1] ? ", " : last_sep, w[i]);
}

/* The index of word s among an ENUM row's words (any case, as the
 * allocator reads it), -1 if none. */
static int choice_index(const char *const *w, const char *s)
{
    for (int i = 0; w[i]; i++)
        if (!strcasecmp(w[i], s))
            return i;
    return -1;
}

/* Warnings of the option parser and the node selection go to stderr with
 * write(2); `numaslab run` reads the options only to decide its own
 * warning and leaves theirs to the allocator in PROGRAM (one each). */
static int stderr_off(void)
{
    fflush(stderr);
    int keep = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, STDERR_FILENO);
        close(null);
    }
    return keep;
}

static void stderr_on(int keep)
{
    if (keep >= 0) {
        dup2(keep, STDERR_FILENO);
        close(keep);
    }
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

static const char *json_bool(bool b) { return b ? "true" : "false"; }

/* ============================================================ topology
 * The allocator's tables (topo_from_hwloc: nodes, memory, distances, the
 * nodes in use under NUMASLAB_NODES), and what only the tool shows: each
 * node's CPUs, free memory and hugetlb pages from sysfs, the THP settings. */
typedef struct tnode {
    unsigned id;
    char cpus[1024];              /* hwloc cpuset as a list, "0-3,8"        */
    hwloc_bitmap_t cpuset;
    uint64_t mem_free;            /* bytes, if have_free                    */
    bool have_free;
    long long hp[2][2];           /* [2 MiB, 1 GiB][total, free], -1 = none */
} tnode_t;

typedef struct machine {
    topo_t *tp;                   /* the allocator's tables                 */
    bool own_tp;                  /* the one-node fallback (no hwloc node)  */
    bool hwloc_nodes;             /* hwloc showed NUMA nodes                */
    unsigned n;                   /* nodes that exist, by id                */
    tnode_t *node;
    const char *dist_source;      /* hwloc, libnuma, default                */
    char thp_raw[256], defrag_raw[256];
    char thp[64], defrag[64];     /* the selected word, or "unavailable"    */
} machine_t;

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
    for (int k = 0; k < 2; k++)
        node_hugepages(t->id, k, t->hp[k]);
}

static void read_thp(machine_t *m)
{
    char path[PATH_MAX];
    sys_path(path, sizeof path, "/sys/kernel/mm/transparent_hugepage/enabled");
    if (read_text(path, m->thp_raw, sizeof m->thp_raw) != 0)
        m->thp_raw[0] = 0;
    sys_path(path, sizeof path, "/sys/kernel/mm/transparent_hugepage/defrag");
    if (read_text(path, m->defrag_raw, sizeof m->defrag_raw) != 0)
        m->defrag_raw[0] = 0;
    selected_word(m->thp_raw, m->thp, sizeof m->thp);
    selected_word(m->defrag_raw, m->defrag, sizeof m->defrag);
}

/* hwloc loaded as the allocator loads it (topo_build) */
static int hwloc_load(hwloc_topology_t *t)
{
    if (hwloc_topology_init(t) != 0)
        return -1;
    hwloc_topology_set_cache_types_filter(*t, HWLOC_TYPE_FILTER_KEEP_NONE);
    hwloc_topology_set_icache_types_filter(*t, HWLOC_TYPE_FILTER_KEEP_NONE);
    hwloc_topology_set_io_types_filter(*t, HWLOC_TYPE_FILTER_KEEP_NONE);
    if (hwloc_topology_load(*t) != 0) {
        hwloc_topology_destroy(*t);
        return -1;
    }
    return 0;
}

/* Where topo_from_hwloc took the distances from: hwloc, else libnuma (the
 * ACPI SLIT), else its 10 local / 20 remote. */
static const char *distance_source(hwloc_topology_t t, const topo_t *tp)
{
    unsigned nr = 1;
    struct hwloc_distances_s *d = NULL;
    if (hwloc_distances_get_by_type(t, HWLOC_OBJ_NUMANODE, &nr, &d, 0, 0) == 0 && nr >= 1 && d) {
        hwloc_distances_release(t, d);
        return "hwloc";
    }
    if (numa_available() >= 0)
        for (uint32_t a = 0; a < tp->slots; a++)
            if (tp->exists[a] && numa_distance((int)a, (int)a) > 0)
                return "libnuma";
    return "default";
}

/* No NUMA node in hwloc: node 0 alone, as the allocator's bootstrap (the
 * node option still gets its check and warning). */
static topo_t *one_node_topo(void)
{
    static uint64_t mem[1];
    static uint16_t dist[1] = {10};
    static uint8_t exists[1] = {1}, used[1], has_cpus[1] = {1};
    static topo_t tp = {.slots = 1, .mem_total = mem, .dist = dist, .exists = exists, .used = used,
                        .has_cpus = has_cpus};
    topo_select_nodes(exists, 1, &options.nodes, used);
    tp.nused = 1;
    return &tp;
}

/* The tool's part of each node that exists: CPUs from hwloc, sysfs. */
static int collect_nodes(hwloc_topology_t t, machine_t *m)
{
    const topo_t *tp = m->tp;
    m->node = calloc(tp->slots, sizeof *m->node);
    if (!m->node)
        return -1;
    for (uint32_t id = 0; id < tp->slots; id++) {
        if (!tp->exists[id])
            continue;
        tnode_t *x = &m->node[m->n++];
        x->id = id;
        hwloc_obj_t o = m->hwloc_nodes ? hwloc_get_numanode_obj_by_os_index(t, id) : NULL;
        x->cpuset = hwloc_bitmap_dup(o ? o->cpuset : hwloc_topology_get_topology_cpuset(t));
        if (!x->cpuset)
            return -1;
        hwloc_bitmap_list_snprintf(x->cpus, sizeof x->cpus, x->cpuset);
        read_node_sysfs(x);
    }
    return 0;
}

static void free_machine(machine_t *m)
{
    for (unsigned i = 0; i < m->n; i++)
        hwloc_bitmap_free(m->node[i].cpuset);
    free(m->node);
    if (!m->own_tp)
        topo_discard(m->tp);
}

/* The machine, with the nodes in use under options.nodes (options_init
 * first).  -1 when hwloc does not load or memory runs out. */
static int load_machine(machine_t *m)
{
    memset(m, 0, sizeof *m);
    hwloc_topology_t t;
    if (hwloc_load(&t) != 0)
        return -1;
    topo_policy_t pol;
    topo_read_policy(&pol);     /* numactl, set_mempolicy, the cpuset: as the allocator reads them */
    int err = topo_from_hwloc_policy(t, &options.nodes, &pol, &m->tp);
    m->hwloc_nodes = err == 0;
    if (err == EINVAL) {        /* no NUMA node (or more than numaslab's limit) */
        m->tp = one_node_topo();
        m->own_tp = true;
        err = 0;
    }
    if (err == 0) {
        m->dist_source = distance_source(t, m->tp);
        err = collect_nodes(t, m);
    }
    hwloc_topology_destroy(t);
    if (err) {
        free_machine(m);
        return -1;
    }
    read_thp(m);
    return 0;
}

/* Node ids that exist, from sysfs (cheap; no hwloc): exists[id], the
 * number of slots (highest id + 1).  A machine without
 * /sys/devices/system/node has node 0 only. */
static uint32_t sysfs_nodes(uint8_t *exists)
{
    memset(exists, 0, NS_MAX_NODES);
    char path[PATH_MAX];
    sys_path(path, sizeof path, "/sys/devices/system/node");
    DIR *d = opendir(path);
    uint32_t slots = 0;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (!strncmp(e->d_name, "node", 4) && isdigit((unsigned char)e->d_name[4])) {
                unsigned long id = strtoul(e->d_name + 4, NULL, 10);
                if (id < NS_MAX_NODES) {
                    exists[id] = 1;
                    if (id + 1 > slots)
                        slots = (uint32_t)id + 1;
                }
            }
        closedir(d);
    }
    if (!slots)
        exists[0] = 1, slots = 1;
    return slots;
}

/* ---------------------------------------------------------------- plan
 * What the allocator will do: its options (options_init, the same
 * warnings) and its node selection (in topo_from_hwloc). */
typedef struct plan {
    char nodes_used[256];        /* "0-1"                           */
    unsigned nused;
    const char *nodes_opt;       /* NUMASLAB_NODES as set, or NULL  */
    const char *pages_opt;       /* NUMASLAB_PAGES as set, or NULL  */
    char pages[16];              /* the page mode: thp auto hugetlb none */
    const char *pages_what;      /* the sentence                    */
    bool hugetlb_fallback, strict, interleave;
    const char *policy;          /* which policy decides, and why   */
    char summary[640];
} plan_t;

/* The pages SuperSlabs get (hugepage/os.c) in words. */
static const char *pages_sentence(const machine_t *m)
{
    bool thp_never = strstr(m->thp_raw, "[never]") != NULL || !m->thp_raw[0];
    char path[PATH_MAX];
    switch (options.pages) {
    case OPT_PAGES_NONE: return "base pages";
    case OPT_PAGES_HUGETLB:
        return options.hugetlb_fallback ? "hugetlb 2 MiB pages (then THP if NUMASLAB_HUGETLB_FALLBACK=1)"
                                        : "hugetlb 2 MiB pages only (ENOMEM when none is left)";
    case OPT_PAGES_THP: return thp_never ? "base pages (THP is never)" : "transparent huge pages";
    default: break;
    }
    sys_path(path, sizeof path, "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages");
    if (read_num(path) > 0)
        return thp_never ? "hugetlb pages where a node has free ones, else base pages"
                         : "hugetlb pages where a node has free ones, else THP";
    return thp_never ? "base pages (no hugetlb pages reserved, THP is never)"
                     : "transparent huge pages (no hugetlb pages reserved)";
}

static void make_plan(const machine_t *m, plan_t *p)
{
    memset(p, 0, sizeof *p);
    nodeset_t used = set_of(m->tp->used, m->tp->slots);
    nodeset_format(&used, p->nodes_used, sizeof p->nodes_used);
    for (uint32_t n = 0; n < m->tp->slots; n++)
        p->nused += m->tp->used[n];
    p->nodes_opt = getenv("NUMASLAB_NODES");
    p->pages_opt = getenv("NUMASLAB_PAGES");
    option_text("PAGES", p->pages, sizeof p->pages);
    p->pages_what = pages_sentence(m);
    p->hugetlb_fallback = options.hugetlb_fallback;
    p->strict = options.strict;
    p->interleave = options.interleave;
    p->policy = topo_policy_text(m->tp);
    snprintf(p->summary, sizeof p->summary,
             "%u node(s) (%s), one pool each%s%s%s; SuperSlabs of 2 MiB on %s (NUMASLAB_PAGES=%s); policy: %s",
             p->nused, p->nodes_used, p->nused > 1 ? ", memory bound to the node of the allocating thread" : "",
             p->nused > 1 ? (p->strict ? " (MPOL_BIND)" : " (MPOL_PREFERRED)") : "",
             p->interleave && p->nused > 1 ? ", large blocks interleaved" : "", p->pages_what, p->pages, p->policy);
}

static void print_bytes_gib(uint64_t b) { printf("%.1f GiB", (double)b / (1024.0 * 1024 * 1024)); }

static void print_hugepages(const char *what, const long long hp[2])
{
    printf("%s ", what);
    if (hp[0] >= 0)
        printf("%lld (%lld free)", hp[0], hp[1]);
    else
        printf("unavailable");
}

static void topo_text(const machine_t *m, const plan_t *p)
{
    const topo_t *tp = m->tp;
    printf("NUMA nodes (hwloc %s): %u\n", HWLOC_VERSION, m->hwloc_nodes ? m->n : 0);
    for (unsigned i = 0; i < m->n && m->hwloc_nodes; i++) {
        const tnode_t *x = &m->node[i];
        printf("  node %u: cpus %s, memory ", x->id, x->cpus[0] ? x->cpus : "none");
        print_bytes_gib(tp->mem_total[x->id]);
        if (x->have_free) {
            printf(" (");
            print_bytes_gib(x->mem_free);
            printf(" free)");
        }
        print_hugepages("\n          hugetlb 2 MiB pages", x->hp[0]);
        print_hugepages(", 1 GiB pages", x->hp[1]);
        if (!x->cpus[0] && tp->mem_total[x->id])
            printf("  [memory only: never a thread's home node; used when asked and to spill]");
        else if (x->cpus[0] && !tp->mem_total[x->id])
            printf("  [no memory: its threads allocate from the nearest node with memory]");
        printf("%s\n", tp->used[x->id] ? "" : "  [not used: see policy below]");
    }
    if (!m->hwloc_nodes)
        printf("  (hwloc shows no NUMA node: one node assumed)\n");
    printf("distances (%s):\n      ", m->dist_source);
    for (unsigned b = 0; b < m->n; b++)
        printf(" %5u", m->node[b].id);
    printf("\n");
    for (unsigned a = 0; a < m->n; a++) {
        printf("  %4u", m->node[a].id);
        for (unsigned b = 0; b < m->n; b++)
            printf(" %5u", tp->dist[m->node[a].id * tp->slots + m->node[b].id]);
        printf("\n");
    }
    printf("transparent huge pages: enabled %s, defrag %s\n", m->thp_raw[0] ? m->thp_raw : "unavailable",
           m->defrag_raw[0] ? m->defrag_raw : "unavailable");
    printf("numaslab will use: %s\n", p->summary);
}

static void json_node(FILE *f, const machine_t *m, const tnode_t *x)
{
    fprintf(f, "{\"id\": %u, \"cpus\": ", x->id);
    json_str(f, x->cpus);
    fprintf(f, ", \"cpu_list\": [");
    int cpu;
    unsigned ncpu = 0;
    hwloc_bitmap_foreach_begin(cpu, x->cpuset)
    {
        fprintf(f, "%s%d", ncpu++ ? ", " : "", cpu);
    }
    hwloc_bitmap_foreach_end();
    fprintf(f, "], \"memory_total_bytes\": %llu, \"memory_free_bytes\": ",
            (unsigned long long)m->tp->mem_total[x->id]);
    json_num_or_null(f, x->have_free ? (long long)x->mem_free : -1);
    fprintf(f, ", \"hugepages\": {");
    for (int k = 0; k < 2; k++) {
        fprintf(f, "%s\"%s\": ", k ? ", " : "", hp_dirs[k] + 10);
        if (x->hp[k][0] < 0)
            fputs("null", f);
        else
            fprintf(f, "{\"total\": %lld, \"free\": %lld}", x->hp[k][0], x->hp[k][1] < 0 ? 0 : x->hp[k][1]);
    }
    fprintf(f, "}, \"used\": %s, \"memory_only\": %s}", json_bool(m->tp->used[x->id]),
            json_bool(!x->cpus[0] && m->tp->mem_total[x->id]));
}

static void json_distances(FILE *f, const machine_t *m)
{
    const topo_t *tp = m->tp;
    fprintf(f, "{\"source\": ");
    json_str(f, m->dist_source);
    fprintf(f, ", \"nodes\": [");
    for (unsigned b = 0; b < m->n; b++)
        fprintf(f, "%s%u", b ? ", " : "", m->node[b].id);
    fprintf(f, "], \"matrix\": [");
    for (unsigned a = 0; a < m->n; a++) {
        fprintf(f, "%s[", a ? ", " : "");
        for (unsigned b = 0; b < m->n; b++)
            fprintf(f, "%s%u", b ? ", " : "", tp->dist[m->node[a].id * tp->slots + m->node[b].id]);
        fprintf(f, "]");
    }
    fprintf(f, "]}");
}

/* '"key": "s"' (a JSON string or null), after '{' (first) or ', ' */
static void json_kv(FILE *f, bool first, const char *key, const char *s)
{
    fprintf(f, "%s\"%s\": ", first ? "{" : ", ", key);
    json_str(f, s);
}

/* the plan's switches, as the allocator's "config" names them */
static void json_switches(FILE *f, const plan_t *p)
{
    fprintf(f, ", \"hugetlb_fallback\": %s, \"strict\": %s, \"interleave\": %s",
            json_bool(p->hugetlb_fallback), json_bool(p->strict), json_bool(p->interleave));
}

static void json_plan(FILE *f, const machine_t *m, const plan_t *p)
{
    fprintf(f, "{\"nodes\": [");
    unsigned k = 0;
    for (uint32_t n = 0; n < m->tp->slots; n++)
        if (m->tp->used[n])
            fprintf(f, "%s%u", k++ ? ", " : "", n);
    fprintf(f, "]");
    json_kv(f, false, "nodes_option", p->nodes_opt);
    json_kv(f, false, "pages_option", p->pages_opt);
    json_kv(f, false, "pages_mode", p->pages);
    json_kv(f, false, "pages", p->pages_what);
    json_switches(f, p);
    json_kv(f, false, "summary", p->summary);
    fprintf(f, "}");
}

/* The allocator's "config" of its JSON statistics (src/stats.c), key for key. */
static void json_config(FILE *f, const plan_t *p)
{
    json_kv(f, true, "nodes_used", p->nodes_used);
    json_kv(f, false, "pages", p->pages);
    json_switches(f, p);
    json_kv(f, false, "policy", p->policy);
    fprintf(f, "}");
}

static void topo_json(const machine_t *m, const plan_t *p)
{
    FILE *f = stdout;
    fprintf(f, "{\n  \"hwloc_version\": ");
    json_str(f, HWLOC_VERSION);
    fprintf(f, ",\n  \"nodes\": [");
    for (unsigned i = 0; i < m->n; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        json_node(f, m, &m->node[i]);
    }
    fprintf(f, "\n  ],\n  \"distances\": ");
    json_distances(f, m);
    fprintf(f, ",\n  \"thp\": ");
    json_kv(f, true, "enabled", m->thp);
    json_kv(f, false, "defrag", m->defrag);
    json_kv(f, false, "enabled_raw", m->thp_raw);
    json_kv(f, false, "defrag_raw", m->defrag_raw);
    fprintf(f, "},\n  \"numaslab\": ");
    json_plan(f, m, p);
    fprintf(f, ",\n  \"config\": ");
    json_config(f, p);
    fprintf(f, "\n}\n");
}

static int cmd_topo(int argc, char **argv)
{
    bool json = false;
    int st = flag_only_args("topo", argc, argv, "--json", &json);
    if (st >= 0)
        return st;
    options_init();             /* as the allocator: the same warnings, once */
    machine_t m;
    if (load_machine(&m) != 0) {
        die_line("topo", "hwloc could not load the topology");
        return 2;
    }
    plan_t p;
    make_plan(&m, &p);
    if (json)
        topo_json(&m, &p);
    else
        topo_text(&m, &p);
    free_machine(&m);
    return fflush(stdout) == 0 ? 0 : 2;
}

/* ============================================================= options */
/* The int64_t field of row i (BOOL INT SIZE ENUM), NULL for the others;
 * the rows of options.c are in NS_OPTIONS order. */
#define OPT_FIELD_BOOL(f) &options.f
#define OPT_FIELD_INT(f) &options.f
#define OPT_FIELD_SIZE(f) &options.f
#define OPT_FIELD_ENUM(f) &options.f
#define OPT_FIELD_NODES(f) NULL
#define OPT_FIELD_PATH(f) NULL
static int64_t *const int_field[] = {
#define NS_OPT_PTR(field, type, def, min, max, name, help) OPT_FIELD_##type(field),
    NS_OPTIONS(NS_OPT_PTR)
#undef NS_OPT_PTR
};
#define NOPTIONS (sizeof int_field / sizeof int_field[0])

/* Value v of row i as options_format writes the row's values ("16M"). */
static void format_as(unsigned i, int64_t v, char *out, size_t cap)
{
    int64_t keep = *int_field[i];
    *int_field[i] = v;
    options_format(i, out, cap);
    *int_field[i] = keep;
}

/* "0..16M", the words of an ENUM, or "-" */
static void option_range(unsigned i, const option_info_t *o, char *out, size_t cap)
{
    if (o->choices) {
        choices_text(o->choices, ", ", out, cap);
    } else if (int_field[i]) {
        char lo[32], hi[32];
        format_as(i, o->min, lo, sizeof lo);
        format_as(i, o->max, hi, sizeof hi);
        snprintf(out, cap, "%s..%s", lo, hi);
    } else {
        snprintf(out, cap, "-");
    }
}

static int cmd_options(int argc, char **argv)
{
    bool md = false;
    int st = flag_only_args("options", argc, argv, "--markdown", &md);
    if (st >= 0)
        return st;
    char def[NOPTIONS][64];     /* the table holds its defaults until options_init */
    for (unsigned i = 0; i < NOPTIONS; i++)
        options_format(i, def[i], sizeof def[i]);
    if (md)
        printf("| variable | type | default | range | meaning |\n|---|---|---|---|---|\n");
    else
        options_init();          /* the values the allocator would use; warns like it */
    option_info_t o;
    for (unsigned i = 0; options_describe(i, &o); i++) {
        char range[80];
        option_range(i, &o, range, sizeof range);
        if (md) {
            printf("| `NUMASLAB_%s` | %s | `%s` | %s | %s |\n", o.name, o.type, def[i], range, o.help);
            continue;
        }
        printf("NUMASLAB_%-16s %-6s default %-6s range %s\n    %s\n", o.name, o.type, def[i], range, o.help);
        char var[64];
        snprintf(var, sizeof var, "NUMASLAB_%s", o.name);
        const char *env = getenv(var);
        if (env) {
            char now[256];
            options_format(i, now, sizeof now);
            printf("    set: %s='%s' -> %s\n", var, env, now);
        }
    }
    return 0;
}

/* ================================================================= man
 * The manual pages, in roff, from the texts of --help and the option
 * table (the build writes numaslab.1 and numaslab.3 with these):
 *   numaslab man 1          every command's page
 *   numaslab man 3 HEADER   options (the table), API (the public header,
 *                           HEADER, as installed), statistics */
static void roff_line(FILE *f, const char *s, size_t n)
{
    if (n && (s[0] == '.' || s[0] == '\''))
        fputs("\\&", f);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            fputs("\\e", f);
        else if (s[i] == '-')
            fputs("\\-", f);
        else
            fputc(s[i], f);
    }
    fputc('\n', f);
}

/* A help page: a line at column 0 is a section (.SH, or .SS under
 * `sub`), the indented lines under it are kept as they are (.nf). */
static void roff_page(FILE *f, const char *text, bool sub)
{
    bool open = false;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n && p[0] != ' ') {
            if (open)
                fputs(".fi\n", f);
            fprintf(f, "%s \"", sub ? ".SS" : ".SH");
            for (size_t i = 0; i < n; i++)
                fputc(p[i] == '"' ? '\'' : p[i], f);
            fputs("\"\n.nf\n", f);
            open = true;
        } else {
            roff_line(f, n >= 4 ? p + 4 : p, n >= 4 ? n - 4 : 0);
        }
        p += n + (e != NULL);
    }
    if (open)
        fputs(".fi\n", f);
}

static const char *const man_commands[] = {"topo", "run", "stats", "top", "prof", "options", NULL};

static int cmd_man(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "1") && strcmp(argv[1], "3")) || (argv[1][0] == '3' && argc < 3)) {
        die_line("man", "usage: numaslab man 1 | numaslab man 3 HEADER");
        return 2;
    }
    FILE *f = stdout;
    char ver[32];
    snprintf(ver, sizeof ver, "%d.%d.%d", NS_VERSION_MAJOR, NS_VERSION_MINOR, NS_VERSION_PATCH);
    if (argv[1][0] == '1') {
        fprintf(f, ".TH NUMASLAB 1 \"\" \"numaslab %s\" \"User Commands\"\n", ver);
        roff_page(f, help_main, false);
        for (int i = 0; man_commands[i]; i++) {
            fprintf(f, ".SH \"NUMASLAB %s\"\n", man_commands[i]);
            const char *text = !strcmp(man_commands[i], "topo")    ? help_topo
                               : !strcmp(man_commands[i], "run")   ? help_run
                               : !strcmp(man_commands[i], "stats") ? help_stats
                               : !strcmp(man_commands[i], "top")   ? help_top
                               : !strcmp(man_commands[i], "prof")  ? help_prof
                                                                   : help_options;
            roff_page(f, text, true);
        }
        fputs(".SH \"SEE ALSO\"\nnumaslab(3), numactl(8)\n", f);
        return 0;
    }
    FILE *h = fopen(argv[2], "r");
    if (!h) {
        die_line("man", "cannot open %s: %s", argv[2], strerror(errno));
        return 1;
    }
    fprintf(f, ".TH NUMASLAB 3 \"\" \"numaslab %s\" \"Library Functions Manual\"\n", ver);
    fputs(".SH NAME\nnumaslab \\- NUMA-aware malloc replacement: options, API, statistics\n", f);
    fputs(".SH SYNOPSIS\n.nf\n#include <numaslab.h>\n\ncc prog.c $(pkg-config \\-\\-cflags \\-\\-libs numaslab)\n"
          "LD_PRELOAD=libnumaslab.so program\n.fi\n", f);
    fputs(".SH DESCRIPTION\nlibnumaslab.so replaces the malloc family (malloc, free, calloc, realloc,\n"
          "reallocarray, posix_memalign, aligned_alloc, memalign, valloc, pvalloc,\n"
          "malloc_usable_size, malloc_trim, and glibc's mallinfo2, mallinfo,\n"
          "malloc_stats, malloc_info, mallopt) with memory placed on the NUMA node\n"
          "of the thread that allocates, in 2 MiB SuperSlabs on huge pages.\n"
          "libnumaslab\\-hardened.so is the same allocator with encoded free lists,\n"
          "a double\\-free bitmap and guard pages.  The ns_* functions below work\n"
          "with or without the override.\n", f);
    fputs(".SH ENVIRONMENT\nRead once at start\\-up; a bad value gets one warning line and the default.\n"
          "Sizes take K, M, G, T (powers of 1024); booleans 1/0, true/false, on/off, yes/no.\n",
          f);
    char def[NOPTIONS][64];
    for (unsigned i = 0; i < NOPTIONS; i++)
        options_format(i, def[i], sizeof def[i]);
    option_info_t o;
    for (unsigned i = 0; options_describe(i, &o); i++) {
        char range[80], head[256];
        option_range(i, &o, range, sizeof range);
        fputs(".TP\n", f);
        snprintf(head, sizeof head, "NUMASLAB_%s (%s, default %s, %s)", o.name, o.type, def[i], range);
        fputs(".B ", f);
        roff_line(f, head, strlen(head));
        roff_line(f, o.help, strlen(o.help));
    }
    fputs(".SH API\nThe public header, as installed:\n.nf\n", f);
    char line[1024];
    while (fgets(line, sizeof line, h)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            n--;
        roff_line(f, line, n);
    }
    fclose(h);
    fputs(".fi\n", f);
    roff_page(f, help_statistics, false);
    fputs(".SH \"SEE ALSO\"\nnumaslab(1), malloc(3), mallinfo2(3), malloc_info(3), mallopt(3), numa(7)\n", f);
    return 0;
}

/* ================================================================= run */
#define RUN_MAX_ENV 64

/* The command line of `numaslab run`: the variables to set, in order. */
typedef struct run_args {
    struct {
        char name[64];
        const char *value;
    } env[RUN_MAX_ENV];
    unsigned nenv;
    bool stats;                 /* NUMASLAB_STATS=1, after the others */
    const char *lib;            /* --lib, or NULL: find_lib           */
    char **prog;                /* PROGRAM and its arguments          */
} run_args_t;

static const char *const C = "run";

static int run_setenv(run_args_t *r, const char *name, const char *value)
{
    if (r->nenv == RUN_MAX_ENV) {
        die_line(C, "more than %d options", RUN_MAX_ENV);
        return 2;
    }
    snprintf(r->env[r->nenv].name, sizeof r->env[r->nenv].name, "%s", name);
    r->env[r->nenv++].value = value;
    return -1;
}

/* --nodes LIST: the allocator's node-list parser, and every node exists */
static int arg_nodes(run_args_t *r, const char *v)
{
    nodeset_t want;
    if (!options_parse_nodes(v, &want)) {
        die_line(C, "--nodes '%s': want a list of nodes like 0,2-3 or 'all'", v);
        return 2;
    }
    static uint8_t exists[NS_MAX_NODES];
    uint32_t slots = sysfs_nodes(exists);
    for (uint32_t n = 0; n < NS_MAX_NODES; n++)
        if (nodeset_has(&want, n) && (n >= slots || !exists[n])) {
            char have[256];
            nodeset_t ex = set_of(exists, slots);
            nodeset_format(&ex, have, sizeof have);
            die_line(C, "--nodes %s: node %u does not exist on this machine (nodes: %s)", v, n, have);
            return 2;
        }
    return run_setenv(r, "NUMASLAB_NODES", v);
}

/* --pages MODE: one of the words of NUMASLAB_PAGES */
static int arg_pages(run_args_t *r, const char *v)
{
    option_info_t o;
    option_info("PAGES", &o);
    if (choice_index(o.choices, v) < 0) {
        char words[80];
        choices_text(o.choices, " or ", words, sizeof words);
        die_line(C, "--pages '%s': want %s", v, words);
        return 2;
    }
    return run_setenv(r, "NUMASLAB_PAGES", v);
}

/* --stats=FORMAT: one of the words of NUMASLAB_STATS_FORMAT (or 1) */
static int arg_stats_format(run_args_t *r, const char *v)
{
    option_info_t o;
    option_info("STATS_FORMAT", &o);
    r->stats = true;
    if (!strcmp(v, "1"))
        return -1;
    if (choice_index(o.choices, v) < 0) {
        char want[128] = "--stats";
        for (unsigned i = 0; o.choices[i]; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s--stats=%s",
                     o.choices[i + 1] ? ", " : " or ", o.choices[i]);
        die_line(C, "--stats=%s: want %s", v, want);
        return 2;
    }
    return run_setenv(r, "NUMASLAB_STATS_FORMAT", v);
}

static int arg_stats_file(run_args_t *r, const char *v)
{
    if (!*v) {
        die_line(C, "--stats-file wants a file name");
        return 2;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", v);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    if (access(dir, W_OK) != 0) {
        die_line(C, "--stats-file %s: directory '%s' is not writable: %s", v, dir, strerror(errno));
        return 2;
    }
    r->stats = true;
    return run_setenv(r, "NUMASLAB_STATS_FILE", v);
}

static int arg_lib(run_args_t *r, const char *v)
{
    if (!*v) {
        die_line(C, "--lib wants the path of libnumaslab.so");
        return 2;
    }
    r->lib = v;
    return -1;
}

/* --set NAME=VALUE: NAME a row of the table; the allocator checks VALUE */
static int arg_set(run_args_t *r, const char *v)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v) {
        die_line(C, "--set wants NAME=VALUE, got '%s'", v);
        return 2;
    }
    option_info_t o;
    int row = option_row(v, (size_t)(eq - v));
    if (row < 0 || !options_describe((unsigned)row, &o)) {
        die_line(C, "--set %s: unknown option '%.*s' (see numaslab options)", v, (int)(eq - v), v);
        return 2;
    }
    char var[64];
    snprintf(var, sizeof var, "NUMASLAB_%s", o.name);
    return run_setenv(r, var, eq + 1);
}

/* The options with a value, and what a missing value is called. */
static const struct {
    const char *name, *missing;
    int (*fn)(run_args_t *, const char *);
} value_flags[] = {
    {"--nodes", "--nodes wants a list of nodes like 0,2-3", arg_nodes},
    {"--pages", NULL, arg_pages},
    {"--stats-file", "--stats-file wants a file name", arg_stats_file},
    {"--lib", "--lib wants the path of libnumaslab.so", arg_lib},
    {"--set", NULL, arg_set},
};

/* "--name VALUE" or "--name=VALUE": the value (advancing *i), NULL if this
 * argument is not option `name`; *missing if the value is missing */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n])
        return NULL;
    if (*i + 1 >= argc || !strcmp(argv[*i + 1], "--")) {
        *missing = true;
        return "";
    }
    return argv[++*i];
}

/* argv[*i], an option: -1 to go on, or the exit status */
static int run_option(run_args_t *r, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (is_help(a))
        return print_help("run", stdout);
    if (!strcmp(a, "--strict"))
        return run_setenv(r, "NUMASLAB_STRICT", "1");
    if (!strcmp(a, "--interleave"))
        return run_setenv(r, "NUMASLAB_INTERLEAVE", "1");
    if (!strcmp(a, "--stats"))
        return r->stats = true, -1;
    if (!strncmp(a, "--stats=", 8))
        return arg_stats_format(r, a + 8);
    for (unsigned k = 0; k < sizeof value_flags / sizeof value_flags[0]; k++) {
        bool missing = false;
        const char *v = opt_value(argc, argv, i, value_flags[k].name, &missing);
        if (!v)
            continue;
        if (missing && value_flags[k].missing) {
            die_line(C, "%s", value_flags[k].missing);
            return 2;
        }
        return value_flags[k].fn(r, v);
    }
    die_line(C, "unknown option '%s' (see numaslab run --help)", a);
    return 2;
}

/* The command line into r: -1 to go on, or the exit status. */
static int run_parse(int argc, char **argv, run_args_t *r)
{
    memset(r, 0, sizeof *r);
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        if (argv[i][0] != '-' || !argv[i][1])
            break;              /* the program, without "--" */
        int st = run_option(r, argc, argv, &i);
        if (st >= 0)
            return st;
    }
    if (i >= argc) {
        die_line(C, "no program given (numaslab run [OPTIONS] -- PROGRAM ARGS)");
        return 2;
    }
    r->prog = argv + i;
    return -1;
}

static void run_apply_env(const run_args_t *r)
{
    for (unsigned k = 0; k < r->nenv; k++)
        setenv(r->env[k].name, r->env[k].value, 1);
    if (r->stats)
        setenv("NUMASLAB_STATS", "1", 1);
}

/* NUMASLAB_PAGES=hugetlb (as the allocator will read it): say so when the
 * nodes it will use have no free hugetlb 2 MiB page.  The allocator gives
 * the warnings about bad values itself. */
static void run_warn_hugetlb(void)
{
    static uint8_t exists[NS_MAX_NODES], used[NS_MAX_NODES];
    uint32_t slots = sysfs_nodes(exists);
    int keep = stderr_off();
    options_init();
    topo_select_nodes(exists, slots, &options.nodes, used);
    stderr_on(keep);
    if (options.pages != OPT_PAGES_HUGETLB)
        return;
    long long total = 0, freep = 0;
    for (uint32_t n = 0; n < slots; n++) {
        long long hp[2];
        if (!used[n])
            continue;
        node_hugepages(n, 0, hp);
        total += hp[0] > 0 ? hp[0] : 0;
        freep += hp[1] > 0 ? hp[1] : 0;
    }
    if (freep)
        return;
    char list[256];
    nodeset_t u = set_of(used, slots);
    nodeset_format(&u, list, sizeof list);
    fprintf(stderr,
            "numaslab run: warning: --pages hugetlb but %s on node(s) %s (see "
            "/sys/devices/system/node/nodeN/hugepages/hugepages-2048kB/nr_hugepages); %s\n",
            total ? "every hugetlb 2 MiB page is in use" : "no hugetlb 2 MiB page is reserved", list,
            options.hugetlb_fallback ? "SuperSlabs will use THP"
                                     : "allocations will fail with ENOMEM (NUMASLAB_HUGETLB_FALLBACK=0)");
}

static bool readable(const char *p) { return access(p, R_OK) == 0; }

/* libnumaslab.so next to the tool, in ../lib*, or in the install libdir */
static bool find_lib(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;
        const char *rel[] = {"/libnumaslab.so", "/../lib/libnumaslab.so",
                             "/../lib/x86_64-linux-gnu/libnumaslab.so", "/../lib64/libnumaslab.so"};
        for (unsigned i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            snprintf(out, cap, "%s%s", exe, rel[i]);
            if (readable(out)) {
                char real[PATH_MAX];
                if (realpath(out, real))
                    snprintf(out, cap, "%s", real);
                return true;
            }
        }
    }
    snprintf(out, cap, "%s/libnumaslab.so", NS_INSTALL_LIBDIR);
    return readable(out);
}

/* The library to preload into lib: 0, or 2 (reported). */
static int run_library(const run_args_t *r, char *lib, size_t cap)
{
    if (r->lib)
        snprintf(lib, cap, "%s", r->lib);
    else if (!find_lib(lib, cap)) {
        die_line(C, "libnumaslab.so not found next to the tool, in ../lib or in %s (use --lib PATH)",
                 NS_INSTALL_LIBDIR);
        return 2;
    }
    if (!readable(lib)) {
        die_line(C, "library '%s' not found or not readable", lib);
        return 2;
    }
    return 0;
}

/* PROGRAM as execvp would find it: 0 found and executable, ENOENT, EACCES */
static int find_program(const char *prog)
{
    if (strchr(prog, '/')) {
        if (access(prog, F_OK) != 0)
            return ENOENT;
        struct stat st;
        if (stat(prog, &st) != 0 || S_ISDIR(st.st_mode) || access(prog, X_OK) != 0)
            return EACCES;
        return 0;
    }
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    int err = ENOENT;
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        char full[PATH_MAX];
        snprintf(full, sizeof full, "%.*s/%s", (int)(len ? len : 1), len ? path : ".", prog);
        struct stat st;
        if (stat(full, &st) == 0 && !S_ISDIR(st.st_mode)) {
            if (access(full, X_OK) == 0)
                return 0;
            err = EACCES;
        }
        path += len + (colon ? 1 : 0);
    }
    return err;
}

/* lib in front of LD_PRELOAD, then PROGRAM in place of the tool; returns
 * only on failure, with the exit status (127 not found, 126 not runnable) */
static int run_exec(const char *lib, char **prog)
{
    int err = find_program(prog[0]);
    if (err) {
        die_line(C, "%s: %s", prog[0], err == ENOENT ? "command not found" : "permission denied");
        return err == ENOENT ? 127 : 126;
    }
    const char *old = getenv("LD_PRELOAD");
    size_t need = strlen(lib) + (old ? strlen(old) : 0) + 2;
    char *pre = malloc(need);
    if (!pre)
        return 2;
    snprintf(pre, need, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "");
    setenv("LD_PRELOAD", pre, 1);
    fflush(NULL);
    execvp(prog[0], prog);
    err = errno;
    die_line(C, "cannot run '%s': %s", prog[0], strerror(err));
    return err == ENOENT ? 127 : 126;
}

static int cmd_run(int argc, char **argv)
{
    run_args_t r;
    int st = run_parse(argc, argv, &r);
    if (st >= 0)
        return st;
    run_apply_env(&r);
    run_warn_hugetlb();
    char lib[PATH_MAX];
    if ((st = run_library(&r, lib, sizeof lib)) != 0)
        return st;
    return run_exec(lib, r.prog);
}

/* ======================================================== stats, top
 * A running process's live statistics area (src/live.h): found among its
 * descriptors (/proc/PID/fd, which the kernel opens for its user and root
 * only), asked for a fresh snapshot (request += 1, then a futex wait on
 * served for at most 3 seconds), read under its seqlock.  The process is
 * never stopped, signalled or waited for beyond that second. */
typedef struct live_view {
    live_area_t *a;             /* the shared mapping                     */
    int pid;
} live_view_t;

static int live_open(const char *cmd, int pid, live_view_t *v)
{
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d", pid);
    if (stat(path, &st) != 0) {
        die_line(cmd, "no process %d", pid);
        return 1;
    }
    if (getuid() != 0 && st.st_uid != getuid()) {
        die_line(cmd, "process %d belongs to uid %u: only its user or root may read its statistics", pid,
                 (unsigned)st.st_uid);
        return 1;
    }
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (!d) {
        die_line(cmd, "cannot read %s: %s", path, strerror(errno));
        return 1;
    }
    struct dirent *e;
    v->a = NULL;
    while (!v->a && (e = readdir(d))) {
        char fdp[320], link[256];
        snprintf(fdp, sizeof fdp, "/proc/%d/fd/%s", pid, e->d_name);
        ssize_t n = readlink(fdp, link, sizeof link - 1);
        if (n <= 0)
            continue;
        link[n] = 0;
        if (strncmp(link, "/memfd:" LIVE_NAME, strlen("/memfd:" LIVE_NAME)) != 0)
            continue;
        int fd = open(fdp, O_RDWR | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat fs;
        void *m = MAP_FAILED;
        if (fstat(fd, &fs) == 0 && (size_t)fs.st_size == LIVE_AREA_SIZE)
            m = mmap(NULL, LIVE_AREA_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (m == MAP_FAILED)
            continue;
        live_area_t *a = m;
        /* a forked child also holds its parent's area until it execs */
        if (__atomic_load_n(&a->magic, __ATOMIC_ACQUIRE) == LIVE_MAGIC && a->version == LIVE_VERSION &&
            a->pid == pid)
            v->a = a;
        else
            munmap(m, LIVE_AREA_SIZE);
    }
    closedir(d);
    if (!v->a) {
        die_line(cmd, "process %d has no numaslab statistics area (it does not use numaslab, or has not "
                      "allocated since it started)", pid);
        return 1;
    }
    v->pid = pid;
    return 0;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Ask for a fresh snapshot; true when the process answered in time. */
static bool live_request(live_view_t *v)
{
    live_area_t *a = v->a;
    uint32_t want = __atomic_add_fetch(&a->request, 1, __ATOMIC_ACQ_REL);
    syscall(SYS_futex, &a->request, FUTEX_WAKE, 1, NULL, NULL, 0);   /* the helper, if it runs */
    uint64_t end = now_ms() + 3000;
    for (;;) {
        uint32_t got = __atomic_load_n(&a->served, __ATOMIC_ACQUIRE);
        if ((int32_t)(got - want) >= 0)
            return true;
        uint64_t t = now_ms();
        if (t >= end || kill(v->pid, 0) != 0)
            return false;
        struct timespec ts = {0, 50 * 1000 * 1000};
        syscall(SYS_futex, &a->served, FUTEX_WAIT, got, &ts, NULL, 0);
    }
}

typedef struct live_copy {
    uint64_t published_ms, text_len, json_len;
    uint32_t publishes;
    uint64_t lu[64];
    ns_stats_t st;
    char *text, *json;
} live_copy_t;

/* A consistent copy (seqlock); false if the writer never let go. */
static bool live_read(const live_view_t *v, live_copy_t *c, bool want_text)
{
    const live_area_t *a = v->a;
    if (!__atomic_load_n(&a->publishes, __ATOMIC_ACQUIRE))
        return false;
    for (int tries = 0; tries < 10000; tries++) {
        uint32_t s1 = __atomic_load_n(&a->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) {
            struct timespec ts = {0, 100 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        c->published_ms = a->published_ms;
        c->publishes = a->publishes;
        c->text_len = a->text_len < LIVE_TEXT_CAP ? a->text_len : LIVE_TEXT_CAP;
        c->json_len = a->json_len < LIVE_JSON_CAP ? a->json_len : LIVE_JSON_CAP;
        memcpy(c->lu, a->large_usable, sizeof c->lu);
        memcpy(&c->st, &a->stats, sizeof c->st);
        if (want_text) {
            memcpy(c->text, a->text, c->text_len);
            memcpy(c->json, a->json, c->json_len);
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&a->seq, __ATOMIC_RELAXED) == s1 && c->publishes)
            return true;
    }
    return false;
}

static int parse_pid(const char *cmd, const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0 || v > INT32_MAX) {
        die_line(cmd, "'%s' is not a process id (see numaslab %s --help)", s, cmd);
        return -1;
    }
    return (int)v;
}

static int cmd_stats(int argc, char **argv)
{
    bool json = false;
    const char *pid_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i]))
            return print_help("stats", stdout);
        if (!strcmp(argv[i], "--json"))
            json = true;
        else if (argv[i][0] == '-' || pid_arg) {
            die_line("stats", "unexpected argument '%s' (see numaslab stats --help)", argv[i]);
            return 2;
        } else
            pid_arg = argv[i];
    }
    if (!pid_arg) {
        die_line("stats", "no process id given (see numaslab stats --help)");
        return 2;
    }
    int pid = parse_pid("stats", pid_arg);
    if (pid < 0)
        return 2;
    live_view_t v;
    if (live_open("stats", pid, &v) != 0)
        return 1;
    bool fresh = live_request(&v);
    live_copy_t *c = malloc(sizeof *c);
    char *text = malloc(LIVE_TEXT_CAP + 1), *js = malloc(LIVE_JSON_CAP + 1);
    if (!c || !text || !js) {
        die_line("stats", "out of memory");
        return 1;
    }
    c->text = text;
    c->json = js;
    if (!live_read(&v, c, true)) {
        if (__atomic_load_n(&v.a->publishes, __ATOMIC_ACQUIRE) == 0)
            die_line("stats", "process %d has written no figures yet (no allocation has missed its thread cache "
                              "since it was asked); try again", pid);
        else
            die_line("stats", "process %d kept its statistics area busy; try again", pid);
        return 1;
    }
    if (!fresh) {
        uint64_t age = now_ms() - c->published_ms;
        fprintf(stderr, "numaslab stats: process %d has not allocated since the request: figures as of %llu.%llu s ago\n",
                pid, (unsigned long long)(age / 1000), (unsigned long long)(age % 1000 / 100));
    }
    fwrite(json ? c->json : c->text, 1, json ? c->json_len : c->text_len, stdout);
    munmap(v.a, LIVE_AREA_SIZE);
    free(text);
    free(js);
    free(c);
    return 0;
}

static volatile sig_atomic_t top_stop;
static void top_on_signal(int sig) { (void)sig; top_stop = 1; }

static int cmd_top(int argc, char **argv)
{
    long interval = 1000, count = -1;
    const char *pid_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i]))
            return print_help("top", stdout);
        bool missing = false;
        const char *val;
        if ((val = opt_value(argc, argv, &i, "--interval", &missing)) || missing) {
            char *end;
            interval = missing ? -1 : strtol(val, &end, 10);
            if (missing || *end || interval < 100 || interval > 60000) {
                die_line("top", "--interval takes milliseconds, 100..60000");
                return 2;
            }
        } else if ((val = opt_value(argc, argv, &i, "--count", &missing)) || missing) {
            char *end;
            count = missing ? -1 : strtol(val, &end, 10);
            if (missing || *end || count < 1) {
                die_line("top", "--count takes a positive number");
                return 2;
            }
        } else if (argv[i][0] == '-' || pid_arg) {
            die_line("top", "unexpected argument '%s' (see numaslab top --help)", argv[i]);
            return 2;
        } else
            pid_arg = argv[i];
    }
    if (!pid_arg) {
        die_line("top", "no process id given (see numaslab top --help)");
        return 2;
    }
    int pid = parse_pid("top", pid_arg);
    if (pid < 0)
        return 2;
    live_view_t v;
    if (live_open("top", pid, &v) != 0)
        return 1;
    signal(SIGINT, top_on_signal);
    signal(SIGTERM, top_on_signal);
    bool tty = isatty(STDOUT_FILENO);
    live_copy_t *prev = calloc(1, sizeof *prev), *cur = calloc(1, sizeof *cur);
    if (!prev || !cur)
        return 1;
    for (long screen = 0; !top_stop && (count < 0 || screen < count); screen++) {
        if (screen) {
            struct timespec ts = {interval / 1000, (interval % 1000) * 1000000};
            nanosleep(&ts, NULL);
            if (top_stop)
                break;
        }
        if (kill(pid, 0) != 0 && errno == ESRCH) {
            printf("numaslab top: process %d has exited\n", pid);
            break;
        }
        bool fresh = live_request(&v);
        if (!live_read(&v, cur, false))
            continue;
        double dt = screen && cur->published_ms > prev->published_ms
                        ? (double)(cur->published_ms - prev->published_ms) / 1000.0
                        : 0;
        if (tty)
            fputs("\033[H\033[2J", stdout);
        const ns_stats_t *s = &cur->st;
        printf("numaslab top: pid %d, %d node(s), %llu thread cache(s), mapped %.1f MiB, in use %.1f MiB%s\n", pid,
               s->nodes, (unsigned long long)s->threads, (double)s->mapped_bytes / 1048576.0,
               (double)s->in_use_bytes / 1048576.0, fresh ? "" : " (idle: last snapshot)");
        printf("%4s %12s %12s %14s %10s %10s\n", "node", "mapped MiB", "in use MiB", "remote frees/s", "spills",
               "spills/s");
        for (int n = 0; n < s->nodes && n < 64; n++) {
            const ns_node_stats_t *x = &s->node[n], *px = &prev->st.node[n];
            uint64_t mapped = x->superslab_bytes + x->large_bytes + x->large_cached_bytes;
            uint64_t inuse = x->small_in_use + cur->lu[n];
            double rf = dt > 0 && x->remote_frees >= px->remote_frees ? (double)(x->remote_frees - px->remote_frees) / dt : 0;
            double sp = dt > 0 && x->spills >= px->spills ? (double)(x->spills - px->spills) / dt : 0;
            printf("%4d %12.1f %12.1f %14.0f %10llu %10.1f\n", n, (double)mapped / 1048576.0,
                   (double)inuse / 1048576.0, rf, (unsigned long long)x->spills, sp);
        }
        fflush(stdout);
        live_copy_t *t = prev;
        prev = cur;
        cur = t;
    }
    munmap(v.a, LIVE_AREA_SIZE);
    free(prev);
    free(cur);
    return 0;
}

static int cmd_prof(int argc, char **argv)
{
    long top = 10;
    bool symbols = true;
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i]))
            return print_help("prof", stdout);
        bool missing = false;
        const char *val;
        if ((val = opt_value(argc, argv, &i, "--top", &missing)) || missing) {
            char *end;
            top = missing ? -1 : strtol(val, &end, 10);
            if (missing || *end || top < 1 || top > 100000) {
                die_line("prof", "--top takes a positive number");
                return 2;
            }
        } else if (!strcmp(argv[i], "--no-symbols")) {
            symbols = false;
        } else if ((argv[i][0] == '-' && argv[i][1]) || file) {
            die_line("prof", "unexpected argument '%s' (see numaslab prof --help)", argv[i]);
            return 2;
        } else
            file = argv[i];
    }
    if (!file) {
        die_line("prof", "no profile given (see numaslab prof --help)");
        return 2;
    }
    return prof_command(file, (int)top, symbols);
}

/* ================================================================ main */
int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(help_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "topo"))
        return cmd_topo(argc - 1, argv + 1);
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "options"))
        return cmd_options(argc - 1, argv + 1);
    if (!strcmp(cmd, "help") || is_help(cmd))
        return print_help(argc > 2 ? argv[2] : NULL, stdout);
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("numaslab %d.%d.%d\n", NS_VERSION_MAJOR, NS_VERSION_MINOR, NS_VERSION_PATCH);
        return 0;
    }
    if (!strcmp(cmd, "stats"))
        return cmd_stats(argc - 1, argv + 1);
    if (!strcmp(cmd, "man"))
        return cmd_man(argc - 1, argv + 1);
    if (!strcmp(cmd, "top"))
        return cmd_top(argc - 1, argv + 1);
    if (!strcmp(cmd, "prof"))
        return cmd_prof(argc - 1, argv + 1);
    fprintf(stderr, "numaslab: unknown command '%s' (see numaslab --help)\n", cmd);
    return 2;
}
