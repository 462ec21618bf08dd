/* prof.c - `numaslab prof FILE`: the top call sites of a heap profile
 * written by NUMASLAB_PROF=1 (src/prof.c), by live bytes and by bytes
 * freed by threads of another node, with symbol names.
 *
 * The profile is google-pprof's heap_v2 text: a line per call site
 * ("LIVE_N: LIVE_BYTES [ALLOC_N: ALLOC_BYTES] @ PC PC ..."), sampled
 * figures that are scaled up here as pprof does (a block of average size
 * s was sampled with probability 1 - exp(-s / rate)).  numaslab adds
 * lines pprof ignores: "# numa live NODE:BYTES ... remote_freed N: BYTES"
 * after each site, and "# object LO-HI BIAS BUILD_ID PATH" per loaded
 * object.  Names come from addr2line (binutils) on each object, at the
 * address minus the object's load bias; an object whose build ID on disk
 * differs from the profile's is named but flagged. */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prof.h"

#define MAX_DEPTH 64
#define SHOW_FRAMES 4

typedef struct site {
    double live_n, live, alloc, remote;     /* estimated: blocks, bytes */
    double node[64];
    int depth;
    uint64_t pc[MAX_DEPTH];
} site_t;

typedef struct object {
    uint64_t lo, hi, bias;
    char id[130], path[4096];
    bool id_differs;
} object_t;

typedef struct name {
    uint64_t pc;
    char *text;
} name_t;

static struct {
    site_t *sites;
    size_t nsites, capsites;
    object_t *objs;
    size_t nobjs, capobjs;
    name_t *names;
    size_t nnames, capnames;
    double rate;
    char header[512];
} P;

static void *grow(void *arr, size_t *cap, size_t need, size_t each)
{
    if (need <= *cap)
        return arr;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need)
        c *= 2;
    void *n = realloc(arr, c * each);
    if (!n) {
        fprintf(stderr, "numaslab prof: out of memory\n");
        exit(1);
    }
    *cap = c;
    return n;
}

/* sampled count and bytes -> estimated bytes (pprof's heap_v2 scaling) */
static double scale(double n, double bytes)
{
    if (n <= 0 || bytes <= 0)
        return 0;
    double p = 1 - exp(-(bytes / n) / P.rate);
    return p > 0 ? bytes / p : bytes;
}

static double factor(double n, double bytes)
{
    return n > 0 && bytes > 0 ? scale(n, bytes) / bytes : 1;
}

/* ------------------------------------------------------------- parsing */
static void parse_site(const char *line)
{
    unsigned long long n1, b1, n2, b2;
    int used = 0;
    if (sscanf(line, "%llu: %llu [%llu: %llu] @%n", &n1, &b1, &n2, &b2, &used) != 4 || !used)
        return;
    P.sites = grow(P.sites, &P.capsites, P.nsites + 1, sizeof *P.sites);
    site_t *s = &P.sites[P.nsites++];
    memset(s, 0, sizeof *s);
    s->live_n = (double)n1 * factor((double)n1, (double)b1);
    s->live = scale((double)n1, (double)b1);
    s->alloc = scale((double)n2, (double)b2);
    const char *p = line + used;
    char *end;
    while (s->depth < MAX_DEPTH) {
        unsigned long long pc = strtoull(p, &end, 16);
        if (end == p)
            break;
        s->pc[s->depth++] = pc;
        p = end;
    }
}

/* "# numa live 0:B 1:B remote_freed N: B" for the site before it */
static void parse_numa(const char *line)
{
    if (!P.nsites)
        return;
    site_t *s = &P.sites[P.nsites - 1];
    const char *p = line + strlen("# numa live");
    unsigned node;
    unsigned long long b, rn, rb;
    int used;
    while (sscanf(p, " %u:%llu%n", &node, &b, &used) == 2) {
        if (node < 64)
            s->node[node] = (double)b;
        p += used;
    }
    if (sscanf(p, " remote_freed %llu: %llu", &rn, &rb) == 2)
        s->remote = scale((double)rn, (double)rb);
    /* per-node bytes scale with the site's live factor */
    double total = 0;
    for (int i = 0; i < 64; i++)
        total += s->node[i];
    double f = total > 0 ? s->live / total : 0;
    for (int i = 0; i < 64; i++)
        s->node[i] *= f;
}

/* The GNU build ID of the ELF file at path, in hex ("" if none). */
static void file_build_id(const char *path, char out[130])
{
    out[0] = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return;
    Elf64_Ehdr eh;
    if (fread(&eh, sizeof eh, 1, f) != 1 || memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64) {
        fclose(f);
        return;
    }
    for (int i = 0; i < eh.e_phnum && !out[0]; i++) {
        Elf64_Phdr ph;
        if (fseek(f, (long)(eh.e_phoff + (uint64_t)i * eh.e_phentsize), SEEK_SET) || fread(&ph, sizeof ph, 1, f) != 1)
            break;
        if (ph.p_type != PT_NOTE || ph.p_filesz > 65536)
            continue;
        unsigned char buf[65536];
        if (fseek(f, (long)ph.p_offset, SEEK_SET) || fread(buf, 1, ph.p_filesz, f) != ph.p_filesz)
            continue;
        for (size_t o = 0; o + sizeof(Elf64_Nhdr) <= ph.p_filesz;) {
            Elf64_Nhdr nh;
            memcpy(&nh, buf + o, sizeof nh);
            size_t name = o + sizeof nh, desc = name + ((nh.n_namesz + 3) & ~3u);
            if (desc + nh.n_descsz > ph.p_filesz)
                break;
            if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && !memcmp(buf + name, "GNU", 4) && nh.n_descsz <= 64) {
                for (unsigned k = 0; k < nh.n_descsz; k++)
                    sprintf(out + 2 * k, "%02x", buf[desc + k]);
                break;
            }
            o = desc + ((nh.n_descsz + 3) & ~3u);
        }
    }
    fclose(f);
}

static void parse_object(const char *line)
{
    unsigned long long lo, hi, bias;
    char id[130];
    int used = 0;
    if (sscanf(line, "# object 0x%llx-0x%llx 0x%llx %129s %n", &lo, &hi, &bias, id, &used) != 4 || !used)
        return;
    P.objs = grow(P.objs, &P.capobjs, P.nobjs + 1, sizeof *P.objs);
    object_t *o = &P.objs[P.nobjs++];
    o->lo = lo, o->hi = hi, o->bias = bias;
    snprintf(o->id, sizeof o->id, "%s", id);
    snprintf(o->path, sizeof o->path, "%s", line + used);
    o->path[strcspn(o->path, "\n")] = 0;
    char disk[130];
    file_build_id(o->path, disk);
    o->id_differs = strcmp(id, "-") && disk[0] && strcmp(disk, id);
}

static int load(const char *file)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "numaslab prof: cannot open %s: %s\n", file, strerror(errno));
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    unsigned long long rate = 0;
    if (getline(&line, &cap, f) < 0 || sscanf(line, "heap profile: %*u: %*u [%*u: %*u] @ heap_v2/%llu", &rate) != 1 ||
        rate == 0) {
        fprintf(stderr, "numaslab prof: %s is not a heap profile of numaslab (no heap_v2 header)\n", file);
        fclose(f);
        free(line);
        return 1;
    }
    P.rate = (double)rate;
    while (getline(&line, &cap, f) >= 0) {
        if (!strncmp(line, "MAPPED_LIBRARIES:", 17))
            break;
        if (!strncmp(line, "# numa live", 11))
            parse_numa(line);
        else if (!strncmp(line, "# object ", 9))
            parse_object(line);
        else if (!strncmp(line, "# numaslab heap profile: ", 25)) {
            snprintf(P.header, sizeof P.header, "%s", line + 25);
            P.header[strcspn(P.header, "\n")] = 0;
        } else
            parse_site(line);
    }
    free(line);
    fclose(f);
    return 0;
}

/* ------------------------------------------------------------- symbols */
static const object_t *object_of(uint64_t pc)
{
    for (size_t i = 0; i < P.nobjs; i++)
        if (pc >= P.objs[i].lo && pc < P.objs[i].hi)
            return &P.objs[i];
    return NULL;
}

static int cmp_name(const void *a, const void *b)
{
    uint64_t x = ((const name_t *)a)->pc, y = ((const name_t *)b)->pc;
    return x < y ? -1 : x > y;
}

/* Name every frame the report shows: one addr2line per object. */
static void symbolize(const site_t *const *shown, size_t n, bool use_addr2line)
{
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < shown[i]->depth && d < SHOW_FRAMES; d++) {
            P.names = grow(P.names, &P.capnames, P.nnames + 1, sizeof *P.names);
            P.names[P.nnames++] = (name_t){shown[i]->pc[d], NULL};
        }
    qsort(P.names, P.nnames, sizeof *P.names, cmp_name);
    for (size_t o = 0; o < P.nobjs && use_addr2line; o++) {
        const object_t *ob = &P.objs[o];
        if (ob->path[0] != '/')
            continue;
        size_t len = strlen(ob->path) + 64, first = SIZE_MAX, count = 0;
        for (size_t i = 0; i < P.nnames; i++)
            if (object_of(P.names[i].pc) == ob && (i == 0 || P.names[i].pc != P.names[i - 1].pc)) {
                len += 20;
                first = first == SIZE_MAX ? i : first;
                count++;
            }
        if (!count)
            continue;
        char *cmd = malloc(len);
        if (!cmd)
            continue;
        int w = snprintf(cmd, len, "addr2line -f -C -e '%s'", ob->path);
        for (size_t i = first; i < P.nnames; i++)
            if (object_of(P.names[i].pc) == ob && (i == 0 || P.names[i].pc != P.names[i - 1].pc))
                w += snprintf(cmd + w, len - (size_t)w, " 0x%llx", (unsigned long long)(P.names[i].pc - 1 - ob->bias));
        FILE *p = popen(cmd, "r");
        free(cmd);
        if (!p)
            continue;
        char fn[4096], loc[4096];
        for (size_t i = first; i < P.nnames; i++) {
            if (object_of(P.names[i].pc) != ob || (i > 0 && P.names[i].pc == P.names[i - 1].pc))
                continue;
            if (!fgets(fn, sizeof fn, p) || !fgets(loc, sizeof loc, p))
                break;
            fn[strcspn(fn, "\n")] = loc[strcspn(loc, "\n")] = 0;
            if (strstr(loc, " (discriminator"))
                *strstr(loc, " (discriminator") = 0;
            if (strcmp(fn, "??") == 0)
                continue;
            const char *base = strrchr(loc, '/') ? strrchr(loc, '/') + 1 : loc;
            size_t tl = strlen(fn) + strlen(base) + 8;
            char *t = malloc(tl);
            if (t) {
                if (strncmp(base, "??", 2))
                    snprintf(t, tl, "%s (%s)", fn, base);
                else
                    snprintf(t, tl, "%s", fn);
            }
            P.names[i].text = t;
        }
        pclose(p);
    }
}

static void print_frame(uint64_t pc)
{
    name_t key = {pc, NULL}, *n = bsearch(&key, P.names, P.nnames, sizeof *P.names, cmp_name);
    while (n && n > P.names && n[-1].pc == pc)
        n--;
    if (n && n->text) {
        fputs(n->text, stdout);
        return;
    }
    const object_t *o = object_of(pc);
    if (o) {
        const char *base = strrchr(o->path, '/') ? strrchr(o->path, '/') + 1 : o->path;
        printf("%s+0x%llx", base, (unsigned long long)(pc - o->bias));
    } else {
        printf("0x%llx", (unsigned long long)pc);
    }
}

/* ------------------------------------------------------------- report */
static int by_live(const void *a, const void *b)
{
    double x = (*(const site_t *const *)a)->live, y = (*(const site_t *const *)b)->live;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int by_remote(const void *a, const void *b)
{
    double x = (*(const site_t *const *)a)->remote, y = (*(const site_t *const *)b)->remote;
    return x < y ? 1 : x > y ? -1 : 0;
}

static double mib(double b) { return b / 1048576.0; }

static void print_table(const char *title, const site_t *const *list, size_t n, double total, bool remote)
{
    printf("\n%s\n", title);
    if (!n) {
        printf("  (none)\n");
        return;
    }
    printf("  %10s %7s %11s  %-24s %s\n", remote ? "remote MiB" : "live MiB", "share", remote ? "live MiB" : "remote MiB",
           "live MiB per node", "site (callers after <-)");
    for (size_t i = 0; i < n; i++) {
        const site_t *s = list[i];
        double v = remote ? s->remote : s->live, other = remote ? s->live : s->remote;
        char nodes[256] = "";
        size_t w = 0;
        for (int nd = 0; nd < 64 && w < sizeof nodes - 24; nd++)
            if (s->node[nd] > 0)
                w += (size_t)snprintf(nodes + w, sizeof nodes - w, "%s%d:%.1f", w ? " " : "", nd, mib(s->node[nd]));
        printf("  %10.1f %6.1f%% %11.1f  %-24s ", mib(v), total > 0 ? 100.0 * v / total : 0.0, mib(other),
               w ? nodes : "-");
        for (int d = 0; d < s->depth && d < SHOW_FRAMES; d++) {
            if (d)
                fputs(" <- ", stdout);
            print_frame(s->pc[d]);
        }
        if (!s->depth)
            fputs("(no stack)", stdout);
        putchar('\n');
    }
}

int prof_command(const char *file, int top, bool symbols)
{
    if (load(file) != 0)
        return 1;
    double live = 0, alloc = 0, remote = 0, blocks = 0;
    const site_t **l = malloc((P.nsites + 1) * sizeof *l), **r = malloc((P.nsites + 1) * sizeof *r);
    if (!l || !r) {
        fprintf(stderr, "numaslab prof: out of memory\n");
        return 1;
    }
    size_t nl = 0, nr = 0;
    for (size_t i = 0; i < P.nsites; i++) {
        const site_t *s = &P.sites[i];
        live += s->live, alloc += s->alloc, remote += s->remote, blocks += s->live_n;
        if (s->live > 0)
            l[nl++] = s;
        if (s->remote > 0)
            r[nr++] = s;
    }
    qsort(l, nl, sizeof *l, by_live);
    qsort(r, nr, sizeof *r, by_remote);
    nl = nl > (size_t)top ? (size_t)top : nl;
    nr = nr > (size_t)top ? (size_t)top : nr;
    const site_t **both = malloc((nl + nr + 1) * sizeof *both);
    if (!both)
        return 1;
    memcpy(both, l, nl * sizeof *l);
    memcpy(both + nl, r, nr * sizeof *r);
    symbolize((const site_t *const *)both, nl + nr, symbols);
    printf("numaslab prof: %s (%s)\n", file, P.header[0] ? P.header : "no numaslab header");
    printf("sampling: one sample per %.0f bytes on average; figures are estimates scaled from %zu sites\n", P.rate,
           P.nsites);
    printf("live: %.1f MiB in about %.0f blocks; allocated in all: %.1f MiB; freed by threads of another node: %.1f MiB\n",
           mib(live), blocks, mib(alloc), mib(remote));
    for (size_t i = 0; i < P.nobjs; i++)
        if (P.objs[i].id_differs)
            printf("note: %s changed since the profile was written (build ID differs): its names may be wrong\n",
                   P.objs[i].path);
    print_table("top sites by live bytes:", (const site_t *const *)l, nl, live, false);
    print_table("top sites by bytes freed by threads of another node (remote frees):", (const site_t *const *)r, nr,
                remote, true);
    free(both);
    free(l);
    free(r);
    return 0;
}
