/* sysfs.c - what the kernel says about nodes and huge pages, read from
 * sysfs and procfs with open/read/close (no stdio, no allocation), so that
 * the readers work during start-up and inside the allocator's slow paths.
 * Callers rate-limit (numa/topo.c reads at most every 10 ms per node).
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "hugepage.h"

int hp_read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = 0;
    return (int)n;
}

int hp_nodes_online(char *buf, size_t cap)
{
    int n = hp_read_file("/sys/devices/system/node/online", buf, cap);
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = 0;
    return n;
}

static char *put_uint(char *out, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *out++ = tmp[--n];
    *out = 0;
    return out;
}

static uint64_t parse_u64(const char **p)
{
    uint64_t v = 0;
    while (**p >= '0' && **p <= '9')
        v = v * 10 + (uint64_t)(*(*p)++ - '0');
    return v;
}

/* Bytes in free blocks of 2 MiB or more on the node (all zones), from
 * /proc/buddyinfo: "Node 0, zone   Normal  c0 c1 ... c10" (count per order). */
static uint64_t buddy_huge_bytes(uint32_t node)
{
    char buf[4096];
    if (hp_read_file("/proc/buddyinfo", buf, sizeof buf) <= 0)
        return UINT64_MAX;
    uint64_t bytes = 0;
    for (char *line = buf; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        const char *p = line + 5;
        if (strncmp(line, "Node ", 5) == 0 && parse_u64(&p) == node && (p = strstr(p, "zone"))) {
            p += 4;
            while (*p == ' ') p++;
            while (*p && *p != ' ') p++;          /* zone name */
            for (unsigned order = 0; *p; order++) {
                while (*p == ' ') p++;
                if (*p < '0' || *p > '9')
                    break;
                uint64_t c = parse_u64(&p);
                if (order >= 9)
                    bytes += c << (order + 12);
            }
        }
        line = next;
    }
    return bytes;
}

static uint64_t meminfo_kb(const char *buf, const char *key)
{
    const char *f = strstr(buf, key);
    if (!f)
        return 0;
    for (f += strlen(key); *f == ' '; f++) {}
    return parse_u64(&f);
}

uint64_t hp_node_free_bytes(uint32_t node, bool huge_blocks)
{
    char path[96] = "/sys/devices/system/node/node", buf[2048];
    char *e = put_uint(path + strlen(path), node);
    memcpy(e, "/meminfo", 9);
    if (hp_read_file(path, buf, sizeof buf) <= 0)
        return UINT64_MAX;
    uint64_t avail = meminfo_kb(buf, "MemFree:") * 1024;
    if (huge_blocks) {
        uint64_t huge = buddy_huge_bytes(node);
        if (huge < avail)
            avail = huge;
    }
    return avail;
}

bool hp_hugetlb_free(int node, unsigned kb)
{
    char path[160], buf[64];
    char *e;
    if (node >= 0) {
        strcpy(path, "/sys/devices/system/node/node");
        e = put_uint(path + strlen(path), (uint64_t)node);
        strcpy(e, "/hugepages/hugepages-");
    } else {
        strcpy(path, "/sys/kernel/mm/hugepages/hugepages-");
    }
    e = put_uint(path + strlen(path), kb);
    strcpy(e, "kB/free_hugepages");
    return hp_read_file(path, buf, sizeof buf) > 0 && buf[0] >= '1' && buf[0] <= '9';
}

int hp_mems_allowed(char *buf, size_t cap)
{
    char st[4096];
    if (hp_read_file("/proc/self/status", st, sizeof st) <= 0)
        return -1;
    const char *f = strstr(st, "Mems_allowed_list:");
    if (!f)
        return -1;
    f += strlen("Mems_allowed_list:");
    while (*f == ' ' || *f == '\t')
        f++;
    size_t n = 0;
    while (f[n] && f[n] != '\n' && n + 1 < cap) {
        buf[n] = f[n];
        n++;
    }
    buf[n] = 0;
    return (int)n;
}
