/* error.c - reporting misuse and fatal errors: one line with write(2), then
 * abort.  Nothing here allocates or uses stdio (the heap may be corrupt). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base.h"

static size_t append(char *buf, size_t len, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (len + n > cap)
        n = cap - len;
    memcpy(buf + len, s, n);
    return len + n;
}

/* "0x" and lowercase hex without leading zeros, as printf's %p */
static size_t append_ptr(char *buf, size_t len, size_t cap, const void *p)
{
    char hex[2 + 16 + 1];
    uintptr_t v = (uintptr_t)p;
    if (v == 0)
        return append(buf, len, cap, "(nil)");
    char tmp[16];
    int n = 0;
    while (v) {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    }
    hex[0] = '0';
    hex[1] = 'x';
    for (int i = 0; i < n; i++)
        hex[2 + i] = tmp[n - 1 - i];
    hex[2 + n] = 0;
    return append(buf, len, cap, hex);
}

static void write_all(const char *buf, size_t len)
{
    while (len) {
        ssize_t w = write(STDERR_FILENO, buf, len);
        if (w <= 0)
            return;
        buf += w;
        len -= (size_t)w;
    }
}

void error_invalid(const char *fn, const void *p, const char *what)
{
    char buf[256];
    size_t n = append(buf, 0, sizeof buf - 1, "numaslab: ");
    n = append(buf, n, sizeof buf - 1, fn);
    n = append(buf, n, sizeof buf - 1, "(): ");
    n = append(buf, n, sizeof buf - 1, what);
    n = append(buf, n, sizeof buf - 1, ": ");
    n = append_ptr(buf, n, sizeof buf - 1, p);
    n = append(buf, n, sizeof buf - 1, options.abort_on_error ? "; aborting\n" : "; block leaked\n");
    write_all(buf, n);
    if (options.abort_on_error)
        abort();
}

void error_fatal(const char *msg, const void *p)
{
    char buf[256];
    size_t n = append(buf, 0, sizeof buf - 1, "numaslab: fatal: ");
    n = append(buf, n, sizeof buf - 1, msg);
    if (p) {
        n = append(buf, n, sizeof buf - 1, " ");
        n = append_ptr(buf, n, sizeof buf - 1, p);
    }
    n = append(buf, n, sizeof buf - 1, "\n");
    write_all(buf, n);
    abort();
}

void error_warn(const char *msg, const char *detail)
{
    char buf[320];
    size_t n = append(buf, 0, sizeof buf - 1, "numaslab: warning: ");
    n = append(buf, n, sizeof buf - 1, msg);
    if (detail)
        n = append(buf, n, sizeof buf - 1, detail);
    n = append(buf, n, sizeof buf - 1, "\n");
    write_all(buf, n);
}
