/* fork_common.h - helpers shared by the tests in tests/fork.
 *
 * The tests use nothing of the allocator but the standard malloc family
 * (plus fork, vfork, posix_spawn): they run once linked with libnumaslab
 * and once with a library given by LD_PRELOAD (or with glibc's malloc when
 * nothing is preloaded), and must pass under glibc.
 *
 * What lives here:
 *   - output: one write(2) per line, no stdio lock, usable in forked children
 *     (tk_vwrite of tests/common/testkit.h underneath);
 *   - failure counting (fk_fail), rate-limited messages;
 *   - configuration from the environment:
 *       FORK_SECONDS   length of the run (default 5)
 *       FORK_COUNT     stop after this many forks/spawns (default 0: no limit)
 *       FORK_TIMEOUT   watchdog bound in seconds (default 2 * FORK_SECONDS + 40)
 *       FORK_STALL     hung if no fork/spawn completes for this long (30; 0 off)
 *       FORK_THREADS   load / getline threads (per test)
 *       FORK_SEED      PRNG seed (printed at the end of each run)
 *       FORK_VERBOSE=1 print where malloc comes from
 *       FORK_GDB       0: no backtraces on a hang; /path: that gdb
 *       FORK_NO_WATCHDOG=1  run the test in this process (to debug it)
 *       FORK_EXPECT_MALLOC_FROM  substring of the object malloc must come from
 *   - the watchdog: a supervisor process that runs the test in a child
 *     (its own process group) and, if it is not done in time (FORK_TIMEOUT,
 *     default 2 * FORK_SECONDS + 40 s) or no fork completed for FORK_STALL
 *     seconds (default 30), says that it hung, prints every thread's state
 *     and, when gdb is there, the backtraces of the test process and of its
 *     stuck children, kills the whole group and fails;
 *   - thread start, blocks filled with a pattern derived from their address,
 *     owner and serial (checked byte for byte), a hand-over queue between
 *     threads, a churn loop for load threads, and fk_exercise(), which
 *     allocates, checks, reallocs and frees blocks in every size class
 *     (16 B .. 256 KiB, then large blocks up to 4 MiB).
 *
 * Exit status of every test: 0 pass, 77 skip (something genuinely
 * unavailable), anything else fail.
 */
#ifndef FORK_COMMON_H
#define FORK_COMMON_H

#ifndef _GNU_SOURCE
#error "define _GNU_SOURCE before including fork_common.h"
#endif

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testkit.h"

#define FK_FN static __attribute__((unused))
#define FK_SKIP 77

/* ------------------------------------------------------------ output */

static const char *fk_prog = "fork";
static atomic_uint fk_failures;      /* in this process (reset in children) */
static atomic_uint fk_fail_printed;
#define FK_MAX_REPORTS 20

FK_FN void fk_vlog(const char *fmt, va_list ap)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "%s[%d]: ", fk_prog, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof buf)
        n = 0;
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len >= sizeof buf)
        len = sizeof buf - 1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(2, buf + off, len - off);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return;
        }
        off += (size_t)w;
    }
}

/* One line on stderr ("prog[pid]: ..."), one write(2), no allocation. */
__attribute__((format(printf, 1, 2))) FK_FN void fk_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fk_vlog(fmt, ap);
    va_end(ap);
}

/* Count a failure; the first FK_MAX_REPORTS of a process are printed. */
__attribute__((format(printf, 1, 2))) FK_FN void fk_fail(const char *fmt, ...)
{
    atomic_fetch_add(&fk_failures, 1);
    if (atomic_fetch_add(&fk_fail_printed, 1) >= FK_MAX_REPORTS)
        return;
    va_list ap;
    va_start(ap, fmt);
    fk_vlog(fmt, ap);
    va_end(ap);
}

/* In a forked child: its own failure count, its own report budget. */
FK_FN void fk_child_begin(void)
{
    atomic_store(&fk_failures, 0);
    atomic_store(&fk_fail_printed, 0);
}

FK_FN unsigned fk_nfail(void)
{
    return atomic_load(&fk_failures);
}

/* ------------------------------------------------------------ configuration */

FK_FN long fk_env_long(const char *name, long def, long lo, long hi)
{
    const char *s = getenv(name);
    if (s == NULL || *s == '\0')
        return def;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 0);
    if (errno || *end != '\0' || v < lo || v > hi) {
        fk_log("warning: %s=%s is not a number in [%ld, %ld]; using %ld\n", name, s, lo, hi, def);
        return def;
    }
    return v;
}

typedef struct fk_config {
    long seconds;  /* FORK_SECONDS: length of the run (default 5)            */
    long count;    /* FORK_COUNT: stop after this many forks (0: no limit)   */
    long timeout;  /* FORK_TIMEOUT: watchdog bound (default 2*seconds + 40)  */
    long stall;    /* FORK_STALL: hung if no fork completes for this long
                    * (default 30 s; 0: off)                                 */
    long threads;  /* FORK_THREADS: load threads (per test default)          */
    uint64_t seed; /* FORK_SEED (default: from time and pid)                 */
    int verbose;   /* FORK_VERBOSE=1                                         */
} fk_config;

static fk_config fk_cfg;

FK_FN void fk_configure(const char *prog, long def_threads)
{
    fk_prog = prog;
    fk_cfg.seconds = fk_env_long("FORK_SECONDS", 5, 1, 86400);
    fk_cfg.count = fk_env_long("FORK_COUNT", 0, 0, 1L << 40);
    fk_cfg.timeout = fk_env_long("FORK_TIMEOUT", 2 * fk_cfg.seconds + 40, 1, 10 * 86400);
    fk_cfg.stall = fk_env_long("FORK_STALL", 30, 0, 10 * 86400);
    fk_cfg.threads = fk_env_long("FORK_THREADS", def_threads, 1, 1024);
    fk_cfg.verbose = (int)fk_env_long("FORK_VERBOSE", 0, 0, 1);
    const char *s = getenv("FORK_SEED");
    if (s && *s)
        fk_cfg.seed = strtoull(s, NULL, 0);
    else
        fk_cfg.seed = tk_mix64((uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid());
}

/* ------------------------------------------------------------ clock */

static double fk_t0;

FK_FN double fk_elapsed(void)
{
    return tk_now() - fk_t0;
}

FK_FN void fk_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------------ progress page */

/* Shared between the supervisor and the test process (MAP_SHARED): the
 * test counts its progress here, the supervisor reports it on a hang. */
typedef struct fk_shared {
    _Atomic uint64_t progress;   /* forks / spawns completed              */
    _Atomic int64_t last_ms;     /* ms after start of the last progress   */
} fk_shared;

static fk_shared *fk_sh;
static fk_shared fk_sh_local;

FK_FN void fk_progress(void)
{
    atomic_fetch_add(&fk_sh->progress, 1);
    atomic_store(&fk_sh->last_ms, (int64_t)(fk_elapsed() * 1000.0));
}

/* ------------------------------------------------------------ watchdog */

typedef void (*fk_cleanup_fn)(void);

static volatile sig_atomic_t fk_sup_signal;

FK_FN void fk_sup_on_signal(int sig)
{
    fk_sup_signal = sig;
}

/* gdb to use: FORK_GDB=0 disables, FORK_GDB=/path chooses, else PATH. */
FK_FN int fk_find_gdb(char *out, size_t cap)
{
    const char *e = getenv("FORK_GDB");
    if (e && (!strcmp(e, "0") || !strcmp(e, "no") || !strcmp(e, "off")))
        return 0;
    if (e && *e && strcmp(e, "1") != 0) {
        snprintf(out, cap, "%s", e);
        return access(out, X_OK) == 0;
    }
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/bin:/bin";
    while (*path) {
        const char *c = strchr(path, ':');
        size_t len = c ? (size_t)(c - path) : strlen(path);
        if (len > 0 && len < cap - 5) {
            snprintf(out, cap, "%.*s/gdb", (int)len, path);
            if (access(out, X_OK) == 0)
                return 1;
        }
        path += len;
        if (*path == ':')
            path++;
    }
    return 0;
}

/* The processes of process group pg (worker first), at most cap. */
FK_FN size_t fk_group_members(pid_t pg, pid_t *out, size_t cap)
{
    size_t n = 0;
    if (cap == 0)
        return 0;
    out[n++] = pg;
    DIR *d = opendir("/proc");
    if (d == NULL)
        return n;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < cap) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == pg)
            continue;
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t r = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (r <= 0)
            continue;
        buf[r] = '\0';
        char *rp = strrchr(buf, ')');
        char state;
        int ppid, pgrp;
        if (rp == NULL || sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) != 3)
            continue;
        if (pgrp == pg && state != 'Z')
            out[n++] = (pid_t)pid;
    }
    closedir(d);
    return n;
}

/* One line per process: its threads' states and wait channels. */
FK_FN void fk_describe(pid_t pid)
{
    char path[64], line[900];
    size_t off = 0;
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return;
    struct dirent *de;
    unsigned nt = 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char p2[128], st[256], wchan[64] = "?";
        snprintf(p2, sizeof p2, "/proc/%d/task/%s/stat", (int)pid, de->d_name);
        int fd = open(p2, O_RDONLY | O_CLOEXEC);
        char state = '?';
        if (fd >= 0) {
            ssize_t r = read(fd, st, sizeof st - 1);
            close(fd);
            if (r > 0) {
                st[r] = '\0';
                char *rp = strrchr(st, ')');
                if (rp && rp[1] == ' ')
                    state = rp[2];
            }
        }
        snprintf(p2, sizeof p2, "/proc/%d/task/%s/wchan", (int)pid, de->d_name);
        fd = open(p2, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t r = read(fd, wchan, sizeof wchan - 1);
            close(fd);
            wchan[r > 0 ? r : 0] = '\0';
            if (r <= 0 || !strcmp(wchan, "0"))
                snprintf(wchan, sizeof wchan, "-");
        }
        nt++;
        if (off < sizeof line - 40) {
            int w = snprintf(line + off, sizeof line - off, " %s:%c:%s", de->d_name, state, wchan);
            if (w > 0)
                off += (size_t)w;
        }
    }
    closedir(d);
    line[off < sizeof line ? off : sizeof line - 1] = '\0';
    fk_log("  pid %d, %u threads (tid:state:wchan):%s\n", (int)pid, nt, line);
}

/* gdb -p pid -batch 'thread apply all bt', at most 60 s. */
FK_FN void fk_gdb_dump(const char *gdb, pid_t pid)
{
    fk_log("---- gdb: thread backtraces of pid %d ----\n", (int)pid);
    pid_t g = fork();
    if (g < 0)
        return;
    if (g == 0) {
        char pidbuf[32];
        snprintf(pidbuf, sizeof pidbuf, "%d", (int)pid);
        unsetenv("LD_PRELOAD"); /* not gdb's allocator */
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        dup2(2, 1);
        execl(gdb, "gdb", "-nx", "-batch", "-p", pidbuf, "-ex", "info threads", "-ex",
              "thread apply all bt", (char *)NULL);
        _exit(127);
    }
    double until = tk_now() + 60;
    int st;
    while (waitpid(g, &st, WNOHANG) == 0) {
        if (tk_now() > until) {
            fk_log("gdb did not finish in 60 s: killed\n");
            kill(g, SIGKILL);
            waitpid(g, &st, 0);
            break;
        }
        fk_sleep_ms(50);
    }
    fk_log("---- end of backtraces of pid %d ----\n", (int)pid);
}

/* Call in main() before any thread exists.  Unless FORK_NO_WATCHDOG=1, the
 * calling process becomes the supervisor and never returns: it waits for
 * the test process (which returns from here, leader of its own process
 * group) at most fk_cfg.timeout seconds, then calls cleanup (if any) and
 * exits with the test's status; a test that has not finished by then is
 * reported as hung (with backtraces if gdb is available), killed with its
 * whole process group, and fails. */
FK_FN void fk_watchdog(fk_cleanup_fn cleanup)
{
    fk_t0 = tk_now();
    void *m = mmap(NULL, sizeof(fk_shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    fk_sh = m == MAP_FAILED ? &fk_sh_local : (fk_shared *)m;

    if (fk_env_long("FORK_NO_WATCHDOG", 0, 0, 1))
        return;

    pid_t sup = getpid();
    fflush(stdout);
    fflush(stderr);
    pid_t w = fork();
    if (w < 0) {
        fk_log("FAIL: fork of the test process: %s\n", strerror(errno));
        exit(1);
    }
    if (w == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != sup)
            _exit(1);
#ifdef PR_SET_PTRACER
        /* Yama (ptrace_scope 1): let the supervisor's gdb attach. */
        prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
#endif
        /* a background process group now: never stopped for writing to
         * a terminal with 'stty tostop' (that would look like a hang) */
        signal(SIGTTOU, SIG_IGN);
        return;
    }
    setpgid(w, w);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fk_sup_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    int st = 0, code;
    double deadline = fk_t0 + (double)fk_cfg.timeout;
    for (;;) {
        pid_t r = waitpid(w, &st, WNOHANG);
        if (r == w)
            break;
        if (r < 0 && errno != EINTR) {
            fk_log("FAIL: waitpid(test process): %s\n", strerror(errno));
            kill(-w, SIGKILL);
            code = 1;
            goto out;
        }
        if (fk_sup_signal) {
            fk_log("supervisor got signal %d: killing the test\n", (int)fk_sup_signal);
            kill(-w, SIGKILL);
            waitpid(w, &st, 0);
            code = 128 + fk_sup_signal;
            goto out;
        }
        uint64_t prog = atomic_load(&fk_sh->progress);
        double last = prog ? (double)atomic_load(&fk_sh->last_ms) / 1000.0 : 0.0;
        double now = tk_now();
        int late = now > deadline;
        int stalled = fk_cfg.stall > 0 && now - fk_t0 - last > (double)fk_cfg.stall;
        if (late || stalled) {
            if (late)
                fk_log("FAIL: HUNG: the test has not finished %ld s after its start (run length %ld s)\n",
                       fk_cfg.timeout, fk_cfg.seconds);
            else
                fk_log("FAIL: HUNG: no progress for %ld s (FORK_STALL)\n", fk_cfg.stall);
            if (prog)
                fk_log("%" PRIu64 " forks/spawns completed, the last one %.2f s after the start\n", prog, last);
            else
                fk_log("not one fork/spawn completed\n");
            pid_t mem[8];
            size_t nm = fk_group_members(w, mem, 8);
            fk_log("processes of the test (a hung forked child shows up here too):\n");
            for (size_t i = 0; i < nm; i++)
                fk_describe(mem[i]);
            char gdb[512];
            const char *ge = getenv("FORK_GDB");
            if (ge && (!strcmp(ge, "0") || !strcmp(ge, "no") || !strcmp(ge, "off"))) {
                fk_log("(FORK_GDB=%s: no backtraces)\n", ge);
            } else if (fk_find_gdb(gdb, sizeof gdb)) {
                for (size_t i = 0; i < nm && i < 3; i++)
                    fk_gdb_dump(gdb, mem[i]);
            } else {
                fk_log("(no gdb: no backtraces; install gdb or set FORK_GDB=/path/to/gdb)\n");
            }
            kill(-w, SIGKILL);
            waitpid(w, &st, 0);
            fk_log("FAIL: HUNG (killed after %.0f s)\n", tk_now() - fk_t0);
            code = 1;
            goto out;
        }
        fk_sleep_ms(20);
    }
    /* Stray processes of the test (none if it reaped its children). */
    kill(-w, SIGKILL);
    if (WIFEXITED(st)) {
        code = WEXITSTATUS(st);
        if (code != 0 && code != FK_SKIP)
            fk_log("FAIL: the test exited with status %d\n", code);
    } else if (WIFSIGNALED(st)) {
        fk_log("FAIL: the test was killed by signal %d (%s)%s\n", WTERMSIG(st), strsignal(WTERMSIG(st)),
               WCOREDUMP(st) ? ", core dumped" : "");
        code = 1;
    } else {
        code = 1;
    }
out:
    if (cleanup)
        cleanup();
    exit(code);
}

/* Where malloc comes from.  With FORK_EXPECT_MALLOC_FROM=substring set (the
 * ctest registrations set it), a malloc from any other object fails the
 * test: a preload that silently did not happen must not pass as numaslab. */
FK_FN int fk_check_malloc_origin(void)
{
    /* the definition calls from this executable bind to (a function
     * pointer to malloc could be this executable's PLT slot if not PIE) */
    Dl_info di;
    void *fp = dlsym(RTLD_NEXT, "malloc");
    const char *obj = "?";
    if (fp && dladdr(fp, &di) && di.dli_fname)
        obj = di.dli_fname;
    const char *want = getenv("FORK_EXPECT_MALLOC_FROM");
    if (fk_cfg.verbose)
        fk_log("malloc comes from %s\n", obj);
    if (want && *want && strstr(obj, want) == NULL) {
        fk_fail("FAIL: malloc comes from %s, expected an object matching '%s'\n", obj, want);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ threads */

FK_FN void fk_thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
    int e = pthread_create(th, NULL, fn, arg);
    if (e != 0) {
        fk_log("FAIL: pthread_create: %s\n", strerror(e));
        exit(1);
    }
}

FK_FN void fk_thread_join(pthread_t th)
{
    int e = pthread_join(th, NULL);
    if (e != 0) {
        fk_log("FAIL: pthread_join: %s\n", strerror(e));
        exit(1);
    }
}

/* ------------------------------------------------------------ blocks */

/* A live block: what was asked, and the pattern base it was filled with
 * (derived from its address, owner and serial: a block that moved, another
 * block's bytes, stale bytes and zeroes all differ from it). */
typedef struct fk_block {
    unsigned char *p;
    size_t n;
    uint64_t base;
    uint32_t owner;
    uint32_t serial;
} fk_block;

static inline uint64_t fk_base(const void *p, uint32_t owner, uint32_t serial)
{
    return tk_mix64((uint64_t)(uintptr_t)p ^ tk_mix64(((uint64_t)owner << 32) | serial));
}

/* Check the contract every block must meet: non-NULL, aligned, big enough. */
FK_FN int fk_contract(const char *who, const char *fn, const void *p, size_t n, size_t align)
{
    if (p == NULL) {
        fk_fail("%s: %s(%zu) returned NULL (errno %d)\n", who, fn, n, errno);
        return 0;
    }
    size_t a = align > 16 ? align : 16;
    if (n < 16 && align == 0)
        a = 8;
    if ((uintptr_t)p % a != 0) {
        fk_fail("%s: %s(%zu) returned %p, not aligned to %zu\n", who, fn, n, p, a);
        return 0;
    }
    size_t u = malloc_usable_size((void *)p);
    if (u < n) {
        fk_fail("%s: %s(%zu) returned %p with malloc_usable_size %zu\n", who, fn, n, p, u);
        return 0;
    }
    return 1;
}

FK_FN void fk_fill(fk_block *b)
{
    b->base = fk_base(b->p, b->owner, b->serial);
    tk_pat_fill(b->p, b->n, b->base);
}

/* Byte-for-byte check of a block against its pattern; 1 if intact. */
FK_FN int fk_check(const char *who, const fk_block *b)
{
    size_t o = tk_pat_check(b->p, b->n, b->base);
    if (o == SIZE_MAX)
        return 1;
    fk_fail("%s: block %p (%zu B, owner %u, serial %u) damaged: byte %zu is 0x%02x, expected 0x%02x\n", who,
            (void *)b->p, b->n, b->owner, b->serial, o, b->p[o], tk_pat_byte(b->base, o));
    return 0;
}

/* Allocate n bytes with one of malloc, calloc (checked zero),
 * posix_memalign, aligned_alloc (method 0..3), check the contract, fill. */
FK_FN int fk_alloc(const char *who, fk_block *b, size_t n, unsigned method, uint32_t owner, uint32_t serial)
{
    void *p = NULL;
    const char *fn = "malloc";
    size_t align = 0;
    switch (method % 4) {
    case 0:
        p = malloc(n);
        break;
    case 1:
        fn = "calloc";
        p = calloc(1, n);
        if (p && fk_contract(who, fn, p, n, 0)) {
            const unsigned char *c = p;
            for (size_t i = 0; i < n; i++)
                if (c[i] != 0) {
                    fk_fail("%s: calloc(%zu) = %p: byte %zu is 0x%02x, not 0\n", who, n, p, i, c[i]);
                    break;
                }
        }
        break;
    case 2: {
        fn = "posix_memalign";
        align = (size_t)64 << (serial % 4); /* 64 .. 512 */
        int e = posix_memalign(&p, align, n);
        if (e != 0) {
            errno = e;
            p = NULL;
        }
        break;
    }
    default:
        fn = "aligned_alloc";
        align = n >= 4096 ? 4096 : 32;
        /* C11 wants size a multiple of the alignment */
        p = aligned_alloc(align, (n + align - 1) / align * align);
        break;
    }
    b->p = p;
    b->n = n;
    b->owner = owner;
    b->serial = serial;
    if (!fk_contract(who, fn, p, n, align)) {
        b->p = NULL;
        return 0;
    }
    fk_fill(b);
    return 1;
}

/* Check, then free. */
FK_FN void fk_free(const char *who, fk_block *b)
{
    if (b->p == NULL)
        return;
    fk_check(who, b);
    free(b->p);
    b->p = NULL;
}

/* Check, realloc to n (the common prefix must survive), refill.  Returns 1
 * if all went well; on failure b still describes a live block (the old one
 * if realloc returned NULL). */
FK_FN int fk_realloc(const char *who, fk_block *b, size_t n, uint32_t serial)
{
    fk_check(who, b);
    unsigned char *q = realloc(b->p, n);
    if (q == NULL) {
        fk_fail("%s: realloc(%p, %zu) returned NULL (errno %d)\n", who, (void *)b->p, n, errno);
        return 0;
    }
    int ok = fk_contract(who, "realloc", q, n, 0);
    size_t keep = n < b->n ? n : b->n;
    size_t o = tk_pat_check(q, keep, b->base);
    if (o != SIZE_MAX) {
        fk_fail("%s: realloc(%p, %zu B -> %zu B) = %p lost the contents: byte %zu is 0x%02x, expected 0x%02x\n",
                who, (void *)b->p, b->n, n, (void *)q, o, q[o], tk_pat_byte(b->base, o));
        ok = 0;
    }
    b->p = q;
    b->n = n;
    b->serial = serial;
    fk_fill(b);
    return ok;
}

/* ------------------------------------------------------------ sizes */

#define FK_KIB ((size_t)1024)
#define FK_SMALL_MAX (256 * FK_KIB)

/* Sizes that meet every size class of a typical segregated allocator:
 * 16 B steps up to 1 KiB, 8 steps per doubling up to 256 KiB, then large
 * blocks (just above 256 KiB, 300 KiB, 1 MiB + 17, 2 MiB + 4 KiB + 3). */
#define FK_NSIZES (64 + 64 + 4)
FK_FN size_t fk_class_sizes(size_t *out)
{
    size_t n = 0;
    for (size_t s = 16; s <= 1024; s += 16)
        out[n++] = s;
    for (size_t b = 1024; b < FK_SMALL_MAX; b *= 2)
        for (size_t k = 1; k <= 8; k++)
            out[n++] = b + b * k / 8;
    out[n++] = FK_SMALL_MAX + 1;
    out[n++] = 300 * FK_KIB;
    out[n++] = 1024 * FK_KIB + 17;
    out[n++] = 2048 * FK_KIB + 4096 + 3;
    return n;
}

/* Allocate a block of every size class (two of each up to 1 KiB, the
 * second a little smaller), by turns with malloc, calloc, posix_memalign
 * and aligned_alloc; check them all; realloc every third to another class;
 * check again; free them in random order.  Returns the failures seen. */
FK_FN unsigned fk_exercise(const char *who, tk_rng *r, uint32_t owner)
{
    unsigned before = fk_nfail();
    size_t sizes[FK_NSIZES];
    size_t ns = fk_class_sizes(sizes);
    fk_block set[2 * FK_NSIZES];
    size_t nb = 0;
    uint32_t serial = (uint32_t)tk_rng_next(r);
    for (size_t i = 0; i < ns; i++) {
        unsigned m = (unsigned)tk_below(r, 4);
        if (fk_alloc(who, &set[nb], sizes[i], m, owner, serial++))
            nb++;
        if (sizes[i] <= FK_KIB) {
            size_t s2 = sizes[i] - tk_below(r, sizes[i] / 8 + 1);
            if (s2 == 0)
                s2 = 1;
            if (fk_alloc(who, &set[nb], s2, m + 1, owner, serial++))
                nb++;
        }
    }
    for (size_t i = 0; i < nb; i++)
        fk_check(who, &set[i]);
    for (size_t i = 0; i < nb; i += 3)
        fk_realloc(who, &set[i], sizes[tk_below(r, ns)], serial++);
    for (size_t i = 0; i < nb; i++)
        fk_check(who, &set[i]);
    /* free in random order */
    for (size_t i = nb; i > 1; i--) {
        size_t j = tk_below(r, i);
        fk_block t = set[i - 1];
        set[i - 1] = set[j];
        set[j] = t;
    }
    for (size_t i = 0; i < nb; i++)
        fk_free(who, &set[i]);
    return fk_nfail() - before;
}

/* ------------------------------------------------------------ hand-over */

/* Blocks handed between threads (each freed by a thread other than the
 * one that allocated it, most of the time). */
#define FK_QCAP 4096
typedef struct fk_queue {
    pthread_mutex_t mu;
    size_t head, count;
    fk_block b[FK_QCAP];
} fk_queue;

static fk_queue fk_q = {.mu = PTHREAD_MUTEX_INITIALIZER};

FK_FN int fk_q_push(const fk_block *b)
{
    int ok = 0;
    pthread_mutex_lock(&fk_q.mu);
    if (fk_q.count < FK_QCAP) {
        fk_q.b[(fk_q.head + fk_q.count) % FK_QCAP] = *b;
        fk_q.count++;
        ok = 1;
    }
    pthread_mutex_unlock(&fk_q.mu);
    return ok;
}

FK_FN size_t fk_q_pop(fk_block *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&fk_q.mu);
    while (n < max && fk_q.count > 0) {
        out[n++] = fk_q.b[fk_q.head];
        fk_q.head = (fk_q.head + 1) % FK_QCAP;
        fk_q.count--;
    }
    pthread_mutex_unlock(&fk_q.mu);
    return n;
}

/* Check and free everything left in the queue (at the end of a test). */
FK_FN void fk_q_drain(const char *who)
{
    fk_block b[64];
    size_t n;
    while ((n = fk_q_pop(b, 64)) > 0)
        for (size_t i = 0; i < n; i++)
            fk_free(who, &b[i]);
}

/* ------------------------------------------------------------ churn */

/* Size mix of the load threads: 72 % 16 B .. 1 KiB, 25 % to 64 KiB,
 * 3 % large (300 KiB .. 1.5 MiB). */
FK_FN size_t fk_pick_size(tk_rng *r)
{
    unsigned d = (unsigned)tk_below(r, 100);
    if (d < 72)
        return tk_log_range(r, 16, 1024);
    if (d < 97)
        return tk_log_range(r, 1025, 64 * FK_KIB);
    return tk_log_range(r, 300 * FK_KIB, 1536 * FK_KIB);
}

#define FK_CHURN_SLOTS 48

/* Load threads that have done their first burst of operations. */
static atomic_uint fk_churn_started;

typedef struct fk_churn {
    pthread_t th;
    uint32_t id;               /* owner id, 1.. (0 is the main thread)     */
    uint64_t seed;
    atomic_int *stop;
    int nice;                  /* > 0: this thread's nice value (Linux: per thread) */
    _Atomic uint64_t ops;      /* operations done                          */
} fk_churn;

/* A load thread: allocates, checks, reallocs and frees blocks of
 * fk_pick_size() sizes, hands some to other threads through fk_q and frees
 * some of theirs, until *stop; then checks and frees what it holds. */
FK_FN void *fk_churn_main(void *arg)
{
    fk_churn *c = arg;
    char who[48];
    snprintf(who, sizeof who, "load thread %u", c->id);
    if (c->nice > 0)
        setpriority(PRIO_PROCESS, (id_t)gettid(), c->nice);
    tk_rng r;
    tk_rng_seed(&r, c->seed ^ tk_mix64(c->id));
    fk_block slot[FK_CHURN_SLOTS];
    memset(slot, 0, sizeof slot);
    uint32_t serial = 0;
    uint64_t ops = 0;
    while (!atomic_load_explicit(c->stop, memory_order_relaxed)) {
        for (int burst = 0; burst < 64; burst++, ops++) {
            fk_block *b = &slot[tk_below(&r, FK_CHURN_SLOTS)];
            if (b->p == NULL) {
                fk_alloc(who, b, fk_pick_size(&r), (unsigned)tk_below(&r, 8) < 6 ? 0 : (unsigned)tk_below(&r, 4),
                         c->id, serial++);
                continue;
            }
            if (!fk_check(who, b)) {
                b->p = NULL; /* leaked: damaged */
                continue;
            }
            unsigned d = (unsigned)tk_below(&r, 100);
            if (d < 35) {
                free(b->p);
                b->p = NULL;
            } else if (d < 50) {
                fk_realloc(who, b, fk_pick_size(&r), serial++);
            } else if (d < 70) {
                if (fk_q_push(b))
                    b->p = NULL;
            } else if (d < 85) {
                fk_block in[4];
                size_t n = fk_q_pop(in, 4);
                for (size_t i = 0; i < n; i++)
                    fk_free(who, &in[i]);
            }
        }
        if (atomic_exchange_explicit(&c->ops, ops, memory_order_relaxed) == 0)
            atomic_fetch_add(&fk_churn_started, 1);
    }
    for (size_t k = 0; k < FK_CHURN_SLOTS; k++)
        fk_free(who, &slot[k]);
    atomic_store_explicit(&c->ops, ops, memory_order_relaxed);
    return NULL;
}

/* Start n load threads (ids 1..n) and wait until each has done a burst of
 * operations, so that every fork finds all of them at work. */
FK_FN void fk_churn_start(fk_churn *ch, unsigned n, atomic_int *stop, int nice)
{
    for (unsigned i = 0; i < n; i++) {
        ch[i].id = i + 1;
        ch[i].seed = fk_cfg.seed;
        ch[i].stop = stop;
        ch[i].nice = nice;
        fk_thread_start(&ch[i].th, fk_churn_main, &ch[i]);
    }
    while (atomic_load(&fk_churn_started) < n)
        fk_sleep_ms(1);
}

/* Stop (*stop must be set) and join them; the sum of their operations. */
FK_FN uint64_t fk_churn_join(fk_churn *ch, unsigned n)
{
    uint64_t ops = 0;
    for (unsigned i = 0; i < n; i++) {
        fk_thread_join(ch[i].th);
        ops += atomic_load(&ch[i].ops);
    }
    return ops;
}

/* ------------------------------------------------------------ waiting */

/* waitpid(pid) and check that the child exited with status 0; what names
 * the child in messages.  Returns 1 if it did. */
FK_FN int fk_wait_ok(pid_t pid, const char *what)
{
    int st;
    pid_t r;
    while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
        ;
    if (r != pid) {
        fk_fail("%s: waitpid(%d): %s\n", what, (int)pid, strerror(errno));
        return 0;
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 1;
    if (WIFEXITED(st))
        fk_fail("%s (pid %d) exited with status %d\n", what, (int)pid, WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        fk_fail("%s (pid %d) was killed by signal %d (%s)\n", what, (int)pid, WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        fk_fail("%s (pid %d): wait status 0x%x\n", what, (int)pid, (unsigned)st);
    return 0;
}

/* Should the run go on?  Until FORK_SECONDS have passed, or FORK_COUNT forks. */
FK_FN int fk_running(uint64_t done)
{
    if (fk_cfg.count > 0 && done >= (uint64_t)fk_cfg.count)
        return 0;
    return fk_elapsed() < (double)fk_cfg.seconds;
}

#endif
