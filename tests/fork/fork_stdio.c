/* fork_stdio.c - fork() while other threads use stdio that allocates
 * (issue 13; glibc bug 19431's lock cycle).
 *
 *   4 forking threads   each reads a line with getline() from its own FILE,
 *                       allocates a few blocks (24 B .. 300 KiB) filled with
 *                       a pattern, and forks.  The child checks that line
 *                       and those blocks, allocates, checks and frees
 *                       blocks in several size classes up to a 4 MiB block,
 *                       writes a status byte to a pipe and _exit()s (0, or
 *                       non-zero on a mismatch).  The parent waitpid()s it,
 *                       checks exit status 0 and status byte 'K', then
 *                       checks line and blocks again and frees them.
 *   8 getline threads   read a temporary file of known content (short lines,
 *                       lines of 1-16 KiB and lines above 256 KiB, so that
 *                       getline's realloc reaches the large-block path)
 *                       over and over, fopen .. getline .. fclose, freeing
 *                       the line after each call, and compare every line
 *                       with what was written (and the number of lines).
 *   1 flush thread      fflush(NULL) in a loop.
 *
 * A getline thread holds its FILE's lock while getline allocates; the flush
 * thread holds the stdio list lock while it waits for each FILE's lock;
 * fork() takes the list lock after the atfork prepare handlers ran.  An
 * allocator whose prepare handler takes its locks (and so runs before glibc
 * takes the list lock) closes the cycle: fork holds the allocator and waits
 * for the list, flush holds the list and waits for the FILE, getline holds
 * the FILE and waits for the allocator.  glibc's malloc takes its own locks
 * after the list lock and does not hang.
 *
 * Runs FORK_SECONDS (default 5) or FORK_COUNT forks; hangs are caught by
 * the watchdog (fork_common.h).  Fails on any mismatch, a child that did not
 * exit 0 with status byte 'K', no fork at all, or a hang.
 */
#define _GNU_SOURCE
#include "fork_common.h"

#define FORKERS 4
#define READERS_DEFAULT 8
#define NLINES 1500
#define LINE_LARGE_MIN (260 * FK_KIB) /* above 256 KiB */

static char tmp_path[4096];
static char *content;                /* the whole file                    */
static size_t line_off[NLINES + 1];  /* line i is content[off[i], off[i+1]) incl. '\n' */

static atomic_int stop;
static _Atomic uint64_t forks_done, lines_read, passes_done, flushes;

/* ------------------------------------------------------------ the file */

static size_t line_len(unsigned i) /* without the '\n' */
{
    uint64_t h = tk_mix64(i ^ 0x6c696e65ULL);
    if (i % 97 == 13)
        return LINE_LARGE_MIN + (size_t)(h % (64 * FK_KIB));
    if (i % 11 == 5)
        return 1000 + (size_t)(h % (15 * FK_KIB));
    return 8 + (size_t)(h % 200);
}

/* Line i: "%06u|" and printable bytes from a stream seeded by i. */
static int make_file(void)
{
    size_t total = 0;
    for (unsigned i = 0; i < NLINES; i++)
        total += line_len(i) + 1;
    content = malloc(total);
    if (content == NULL) {
        fk_log("FAIL: malloc(%zu) for the file contents\n", total);
        return -1;
    }
    size_t off = 0;
    for (unsigned i = 0; i < NLINES; i++) {
        size_t len = line_len(i);
        line_off[i] = off;
        char *l = content + off;
        snprintf(l, 8, "%06u|", i);
        for (size_t j = 7; j < len; j++) {
            uint64_t w = tk_mix64(((uint64_t)i << 32) ^ (j >> 3));
            l[j] = (char)(33 + (unsigned)((w >> (8 * (j & 7))) & 0xff) % 90);
        }
        l[len] = '\n';
        off += len + 1;
    }
    line_off[NLINES] = off;

    const char *dir = getenv("TMPDIR");
    if (dir == NULL || *dir == '\0')
        dir = "/tmp";
    snprintf(tmp_path, sizeof tmp_path, "%s/fork_stdio.XXXXXX", dir);
    int fd = mkstemp(tmp_path);
    if (fd < 0) {
        fk_log("SKIP: cannot create a temporary file in %s: %s\n", dir, strerror(errno));
        tmp_path[0] = '\0';
        return FK_SKIP;
    }
    for (size_t o = 0; o < total;) {
        ssize_t w = write(fd, content + o, total - o);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            fk_log("FAIL: writing %s: %s\n", tmp_path, strerror(errno));
            close(fd);
            return -1;
        }
        o += (size_t)w;
    }
    close(fd);
    return 0;
}

static void cleanup(void)
{
    if (tmp_path[0])
        unlink(tmp_path);
}

/* Does a line returned by getline (n bytes incl. '\n') equal line i? */
static int line_ok(const char *who, unsigned i, const char *line, ssize_t n)
{
    size_t want = line_off[i + 1] - line_off[i];
    if (n < 0 || (size_t)n != want) {
        fk_fail("%s: line %u has %zd bytes, expected %zu\n", who, i, n, want);
        return 0;
    }
    if (memcmp(line, content + line_off[i], want) != 0) {
        size_t o = 0;
        while (o < want && line[o] == content[line_off[i] + o])
            o++;
        fk_fail("%s: line %u differs at byte %zu (0x%02x, expected 0x%02x)\n", who, i, o,
                (unsigned char)line[o], (unsigned char)content[line_off[i] + o]);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ getline threads */

static void *reader_main(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    char who[32];
    snprintf(who, sizeof who, "getline thread %u", id);
    uint64_t lines = 0, passes = 0;
    while (!atomic_load(&stop)) {
        FILE *f = fopen(tmp_path, "re");
        if (f == NULL) {
            fk_fail("%s: fopen(%s): %s\n", who, tmp_path, strerror(errno));
            break;
        }
        /* 3 passes in 4 free the line after every call (every getline
         * allocates, and grows by realloc); the 4th keeps the buffer. */
        int keep = (passes % 4) == 3;
        char *line = NULL;
        size_t cap = 0;
        unsigned i = 0;
        int early = 0;
        for (;;) {
            ssize_t n = getline(&line, &cap, f);
            if (n < 0)
                break;
            if (i >= NLINES) {
                fk_fail("%s: more than %u lines\n", who, NLINES);
                break;
            }
            line_ok(who, i, line, n);
            i++;
            if (!keep) {
                free(line);
                line = NULL;
                cap = 0;
            }
            if ((i & 31) == 0 && atomic_load(&stop)) {
                early = 1;
                break;
            }
        }
        if (ferror(f))
            fk_fail("%s: read error on %s\n", who, tmp_path);
        else if (!early && i != NLINES)
            fk_fail("%s: read %u lines, expected %u\n", who, i, NLINES);
        free(line);
        if (fclose(f) != 0)
            fk_fail("%s: fclose: %s\n", who, strerror(errno));
        lines += i;
        if (!early)
            passes++;
    }
    atomic_fetch_add(&lines_read, lines);
    atomic_fetch_add(&passes_done, passes);
    return NULL;
}

/* ------------------------------------------------------------ flush thread */

static void *flusher_main(void *arg)
{
    (void)arg;
    uint64_t n = 0;
    while (!atomic_load(&stop)) {
        if (fflush(NULL) != 0)
            fk_fail("flush thread: fflush(NULL): %s\n", strerror(errno));
        n++;
    }
    atomic_store(&flushes, n);
    return NULL;
}

/* ------------------------------------------------------------ forking threads */

#define NBLK 6

/* In the child: only this thread exists.  Never returns. */
static void child_main(unsigned id, int wfd, const fk_block *blk, unsigned li, const char *line, ssize_t ln,
                       uint64_t seed)
{
    fk_child_begin();
    char who[48];
    snprintf(who, sizeof who, "child of forking thread %u", id);
    for (int k = 0; k < NBLK; k++)
        fk_check(who, &blk[k]);
    line_ok(who, li, line, ln);

    static const size_t sizes[] = {16, 48, 128, 1000, 4000, 20000, 100000, 250000, 600000, 4096 * 1024};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    fk_block b[NS];
    tk_rng r;
    tk_rng_seed(&r, seed);
    for (unsigned k = 0; k < NS; k++)
        if (!fk_alloc(who, &b[k], sizes[k] - tk_below(&r, 8), k, 100 + id, k))
            b[k].p = NULL;
    for (unsigned k = 0; k < NS; k++)
        if (b[k].p)
            fk_check(who, &b[k]);
    for (unsigned k = 0; k < NS; k++)
        fk_free(who, &b[k]);

    char status = fk_nfail() ? 'F' : 'K';
    if (write(wfd, &status, 1) != 1)
        _exit(4);
    _exit(fk_nfail() ? 3 : 0);
}

static void *forker_main(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    char who[32];
    snprintf(who, sizeof who, "forking thread %u", id);
    tk_rng r;
    tk_rng_seed(&r, fk_cfg.seed ^ tk_mix64(1000 + id));

    int pfd[2];
    if (pipe(pfd) != 0) {
        fk_fail("%s: pipe: %s\n", who, strerror(errno));
        return NULL;
    }
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    FILE *f = fopen(tmp_path, "re");
    if (f == NULL) {
        fk_fail("%s: fopen(%s): %s\n", who, tmp_path, strerror(errno));
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    unsigned li = 0;
    uint32_t serial = 0;

    while (!atomic_load(&stop)) {
        /* the next line of this thread's own FILE (from the start at EOF) */
        ssize_t ln = getline(&line, &cap, f);
        if (ln < 0) {
            if (ferror(f) || li != NLINES)
                fk_fail("%s: getline stopped after %u lines (%s)\n", who, li, ferror(f) ? "error" : "EOF");
            rewind(f);
            li = 0;
            continue;
        }
        if (li >= NLINES) {
            fk_fail("%s: more than %u lines\n", who, NLINES);
            break;
        }
        if (!line_ok(who, li, line, ln))
            break;

        static const size_t bs[NBLK] = {24, 100, 700, 5000, 70000, 300000};
        fk_block blk[NBLK];
        int ok = 1;
        for (int k = 0; k < NBLK; k++)
            ok &= fk_alloc(who, &blk[k], bs[k] + tk_below(&r, 16), (unsigned)k, id, serial++);
        if (!ok)
            break;

        uint64_t cseed = tk_rng_next(&r);
        pid_t pid = fork();
        if (pid == 0)
            child_main(id, pfd[1], blk, li, line, ln, cseed);
        if (pid < 0) {
            fk_fail("%s: fork: %s\n", who, strerror(errno));
            break;
        }
        int good = fk_wait_ok(pid, "forked child");
        char status = 0;
        ssize_t rd = read(pfd[0], &status, 1);
        if (rd != 1)
            fk_fail("%s: child %d wrote no status byte\n", who, (int)pid);
        else if (status != 'K')
            fk_fail("%s: child %d wrote status byte '%c'\n", who, (int)pid, status);
        else if (good) {
            atomic_fetch_add(&forks_done, 1);
            fk_progress();
        }
        line_ok(who, li, line, ln);
        for (int k = 0; k < NBLK; k++)
            fk_free(who, &blk[k]);
        li++;
        if (fk_nfail())
            break;
    }
    free(line);
    fclose(f);
    close(pfd[0]);
    close(pfd[1]);
    return NULL;
}

/* ------------------------------------------------------------ main */

int main(void)
{
    fk_configure("fork_stdio", READERS_DEFAULT);
    int rc = make_file();
    if (rc != 0) {
        cleanup();
        return rc == FK_SKIP ? FK_SKIP : 1;
    }
    fk_watchdog(cleanup);
    /* the test process from here on (the supervisor never returns) */
    if (!fk_check_malloc_origin())
        return 1;

    unsigned nreaders = (unsigned)fk_cfg.threads;
    pthread_t rd[1024], fl, fo[FORKERS];
    for (unsigned i = 0; i < nreaders; i++)
        fk_thread_start(&rd[i], reader_main, (void *)(uintptr_t)i);
    fk_thread_start(&fl, flusher_main, NULL);
    for (unsigned i = 0; i < FORKERS; i++)
        fk_thread_start(&fo[i], forker_main, (void *)(uintptr_t)i);

    while (fk_running(atomic_load(&forks_done)) && fk_nfail() == 0)
        fk_sleep_ms(20);
    atomic_store(&stop, 1);
    for (unsigned i = 0; i < FORKERS; i++)
        fk_thread_join(fo[i]);
    fk_thread_join(fl);
    for (unsigned i = 0; i < nreaders; i++)
        fk_thread_join(rd[i]);

    uint64_t forks = atomic_load(&forks_done);
    if (forks == 0)
        fk_fail("no fork completed\n");
    if (atomic_load(&passes_done) == 0)
        fk_fail("no getline thread read the whole file\n");
    double t = fk_elapsed();
    free(content);
    fk_log("%s: %" PRIu64 " forks, %" PRIu64 " lines read in %" PRIu64 " passes over the file, %" PRIu64
           " fflush(NULL), %.1f s, seed 0x%" PRIx64 "\n",
           fk_nfail() ? "FAIL" : "ok", forks, atomic_load(&lines_read), atomic_load(&passes_done),
           atomic_load(&flushes), t, fk_cfg.seed);
    return fk_nfail() ? 1 : 0;
}
