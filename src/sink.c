/* sink.c - output that never allocates, for the statistics report
 * (stats.c) and the heap profile (prof.c): text formatted into the
 * caller's buffer and written out with write(2) (or fwrite to a FILE)
 * each time it fills; file names with %p. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "api.h"

void sink_init(sink_t *s, int fd, FILE *f, char *buf, size_t cap)
{
    s->fd = fd;
    s->f = f;
    s->mem = false;
    s->buf = buf;
    s->cap = cap;
    s->len = 0;
}

void sink_flush(sink_t *s)
{
    if (s->mem)
        return;
    if (s->f) {
        fwrite(s->buf, 1, s->len, s->f);
    } else {
        size_t off = 0;
        while (off < s->len) {
            ssize_t w = write(s->fd, s->buf + off, s->len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
    }
    s->len = 0;
}

void sink_printf(sink_t *s, const char *fmt, ...)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (w < 0)
            return;
        if ((size_t)w < s->cap - s->len) {
            s->len += (size_t)w;
            return;
        }
        if (attempt == 0 && s->len && !s->mem) {
            sink_flush(s);           /* did not fit: flush and retry */
            continue;
        }
        s->len = s->cap - 1;         /* longer than the buffer: truncated */
        return;
    }
}

bool path_expand(const char *in, char *outp, size_t cap)
{
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        char num[24];
        const char *piece = num;
        if (p[0] == '%' && p[1] == 'p') {
            snprintf(num, sizeof num, "%d", (int)getpid());
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            num[0] = '%', num[1] = 0;
            p++;
        } else {
            num[0] = *p, num[1] = 0;
        }
        size_t l = strlen(piece);
        if (n + l >= cap)
            return false;
        memcpy(outp + n, piece, l);
        n += l;
    }
    outp[n] = 0;
    return n > 0;
}

