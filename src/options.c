/* options.c - the option table (internal.h) and its parsing.
 *
 * Read once, at start-up, from NUMASLAB_* environment variables with
 * getenv (which does not allocate).  Until then every option holds its
 * default.  A value that does not parse or is out of range gets a one-line
 * warning and the default. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

enum { T_BOOL, T_INT, T_SIZE, T_STR };
#define T_OF_BOOL T_BOOL
#define T_OF_INT T_INT
#define T_OF_SIZE T_SIZE
#define T_OF_STR T_STR

ns_options_t ns_opt = {
#define NS_OPT_DEFAULT(field, type, def, min, max, name, help) .field = (def),
    NS_OPTIONS(NS_OPT_DEFAULT)
#undef NS_OPT_DEFAULT
};

static const struct row {
    const char *name;
    int type;
    int64_t def, min, max;
    const char *help;
    size_t offset;
} rows[] = {
#define NS_OPT_ROW(field, type, def, min, max, name, help) \
    {name, T_OF_##type, (def), (min), (max), help, offsetof(ns_options_t, field)},
    NS_OPTIONS(NS_OPT_ROW)
#undef NS_OPT_ROW
};

static bool parse_bool(const char *s, int64_t *out)
{
    static const char *yes[] = {"1", "true", "on", "yes"}, *no[] = {"0", "false", "off", "no"};
    for (unsigned i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) return (*out = 1), true;
        if (strcasecmp(s, no[i]) == 0) return (*out = 0), true;
    }
    return false;
}

static bool parse_int(const char *s, bool suffixes, int64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (suffixes && *s) {
        unsigned shift;
        switch (*s == 'k' || *s == 'm' || *s == 'g' || *s == 't' ? *s - 32 : *s) {
        case 'K': shift = 10; break;
        case 'M': shift = 20; break;
        case 'G': shift = 30; break;
        case 'T': shift = 40; break;
        default: return false;
        }
        s++;
        if (*s == 'i' || *s == 'I') s++;
        if (*s == 'b' || *s == 'B') s++;
        if (v > (UINT64_MAX >> shift))
            return false;
        v <<= shift;
    }
    if (*s || v > INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

void options_init(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *r = &rows[i];
        char var[64] = "NUMASLAB_";
        strncat(var, r->name, sizeof var - 10);
        const char *s = getenv(var);
        if (!s)
            continue;
        int64_t v;
        if (r->type == T_STR) {
            *(int64_t *)((char *)&ns_opt + r->offset) = (int64_t)(intptr_t)s;
            continue;
        }
        bool ok = r->type == T_BOOL ? parse_bool(s, &v) : parse_int(s, r->type == T_SIZE, &v);
        if (ok && (v < r->min || v > r->max))
            ok = false;
        if (!ok) {
            char detail[128] = "";
            strncat(detail, var, 64);
            strcat(detail, "='");
            strncat(detail, s, 40);
            strcat(detail, "', using the default");
            ns_warn("bad value ", detail);
            continue;
        }
        *(int64_t *)((char *)&ns_opt + r->offset) = v;
    }
}

bool options_describe(unsigned i, const char **name, const char **type, int64_t *def, int64_t *min,
                      int64_t *max, const char **help)
{
    if (i >= sizeof rows / sizeof rows[0])
        return false;
    static const char *types[] = {"bool", "int", "size", "string"};
    *name = rows[i].name;
    *type = types[rows[i].type];
    *def = rows[i].def;
    *min = rows[i].min;
    *max = rows[i].max;
    *help = rows[i].help;
    return true;
}
