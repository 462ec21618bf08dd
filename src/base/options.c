/* options.c - the option table (base.h) and its parsing.
 *
 * Read once, at start-up, from NUMASLAB_* environment variables with
 * secure_getenv: it does not allocate, and it returns NULL in a setuid or
 * setgid program, so such a program runs with the defaults (and
 * NUMASLAB_STATS_FILE cannot make it create or truncate a file of the
 * user's choice).  Until then every option holds its default.  A value
 * that does not parse or is out of range gets a one-line warning and the
 * default.  The tool (tools/numaslab.c) reads the same rows through
 * options_init/options_describe/options_format: there is no second parser.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base.h"

enum { T_BOOL, T_INT, T_SIZE, T_ENUM, T_NODES, T_PATH };

options_t options = {
#define OPT_INIT_BOOL(def) (def)
#define OPT_INIT_INT(def) (def)
#define OPT_INIT_SIZE(def) (def)
#define OPT_INIT_ENUM(def) (def)
#define OPT_INIT_NODES(def) {0}
#define OPT_INIT_PATH(def) NULL
#define NS_OPT_DEFAULT(field, type, def, min, max, name, help) .field = OPT_INIT_##type(def),
    NS_OPTIONS(NS_OPT_DEFAULT)
#undef NS_OPT_DEFAULT
};

#define OPT_CHOICES_OF_BOOL(field) NULL
#define OPT_CHOICES_OF_INT(field) NULL
#define OPT_CHOICES_OF_SIZE(field) NULL
#define OPT_CHOICES_OF_ENUM(field) field##_choices
#define OPT_CHOICES_OF_NODES(field) NULL
#define OPT_CHOICES_OF_PATH(field) NULL

#define OPT_DECLARE_CHOICES_BOOL(field)
#define OPT_DECLARE_CHOICES_INT(field)
#define OPT_DECLARE_CHOICES_SIZE(field)
#define OPT_DECLARE_CHOICES_ENUM(field) static const char *const field##_choices[] = OPT_CHOICES_##field;
#define OPT_DECLARE_CHOICES_NODES(field)
#define OPT_DECLARE_CHOICES_PATH(field)
#define NS_OPT_CHOICES(field, type, def, min, max, name, help) OPT_DECLARE_CHOICES_##type(field)
NS_OPTIONS(NS_OPT_CHOICES)
#undef NS_OPT_CHOICES

static const struct row {
    const char *name;
    int type;
    int64_t def, min, max;
    const char *const *choices;
    const char *help;
    size_t offset;
} rows[] = {
#define NS_OPT_ROW(field, type, def, min, max, name, help) \
    {name, T_##type, (def), (min), (max), OPT_CHOICES_OF_##type(field), help, offsetof(options_t, field)},
    NS_OPTIONS(NS_OPT_ROW)
#undef NS_OPT_ROW
};
#define NROWS (sizeof rows / sizeof rows[0])

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

static bool parse_enum(const char *s, const char *const *choices, int64_t *out)
{
    for (int64_t i = 0; choices[i]; i++)
        if (strcasecmp(s, choices[i]) == 0)
            return (*out = i), true;
    return false;
}

bool options_parse_nodes(const char *s, nodeset_t *out)
{
    memset(out, 0, sizeof *out);
    if (*s == 0 || strcasecmp(s, "all") == 0)
        return true;
    while (*s) {
        if (*s < '0' || *s > '9')
            return false;
        uint32_t a = 0, b;
        for (; *s >= '0' && *s <= '9'; s++)
            if ((a = a * 10 + (uint32_t)(*s - '0')) >= NS_MAX_NODES)
                return false;
        b = a;
        if (*s == '-') {
            s++;
            if (*s < '0' || *s > '9')
                return false;
            for (b = 0; *s >= '0' && *s <= '9'; s++)
                if ((b = b * 10 + (uint32_t)(*s - '0')) >= NS_MAX_NODES)
                    return false;
        }
        if (b < a)
            return false;
        for (uint32_t i = a; i <= b; i++)
            out->bits[i / 64] |= 1ull << (i % 64);
        if (*s == ',')
            s++;
        else if (*s)
            return false;
    }
    out->given = true;
    return true;
}

void nodeset_format(const nodeset_t *s, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = 0;
    for (uint32_t i = 0; i < NS_MAX_NODES; i++) {
        if (!nodeset_has(s, i))
            continue;
        uint32_t j = i;
        while (j + 1 < NS_MAX_NODES && nodeset_has(s, j + 1))
            j++;
        int w = j > i ? snprintf(out + len, cap - len, "%s%u-%u", len ? "," : "", i, j)
                      : snprintf(out + len, cap - len, "%s%u", len ? "," : "", i);
        if (w < 0 || (size_t)w >= cap - len)
            return;
        len += (size_t)w;
        i = j;
    }
}

static uint64_t given_rows;     /* bit i: row i's variable was set */
_Static_assert(NROWS <= 64, "given_rows has a bit per row");

bool options_given(const char *name)
{
    for (size_t i = 0; i < NROWS; i++)
        if (strcmp(rows[i].name, name) == 0)
            return (given_rows >> i) & 1;
    return false;
}

static void *field_of(const struct row *r) { return (char *)&options + r->offset; }

void options_init(void)
{
    given_rows = 0;
    for (size_t i = 0; i < NROWS; i++) {
        const struct row *r = &rows[i];
        char var[64] = "NUMASLAB_";
        strncat(var, r->name, sizeof var - 10);
        const char *s = secure_getenv(var);
        if (!s)
            continue;
        given_rows |= 1ull << i;
        int64_t v = 0;
        nodeset_t set;
        bool ok;
        switch (r->type) {
        case T_PATH:
            *(const char **)field_of(r) = s;
            continue;
        case T_NODES:
            if ((ok = options_parse_nodes(s, &set)))
                *(nodeset_t *)field_of(r) = set;
            break;
        case T_BOOL: ok = parse_bool(s, &v); break;
        case T_ENUM: ok = parse_enum(s, r->choices, &v); break;
        default: ok = parse_int(s, r->type == T_SIZE, &v); break;
        }
        if (ok && r->type != T_NODES && (v < r->min || v > r->max))
            ok = false;
        if (!ok) {
            char detail[128] = "";
            strncat(detail, var, 64);
            strcat(detail, "='");
            strncat(detail, s, 40);
            strcat(detail, "', using the default");
            error_warn("bad value ", detail);
            continue;
        }
        if (r->type != T_NODES)
            *(int64_t *)field_of(r) = v;
    }
}

bool options_describe(unsigned i, option_info_t *o)
{
    static const char *types[] = {"bool", "int", "size", "enum", "nodes", "path"};
    if (i >= NROWS)
        return false;
    o->name = rows[i].name;
    o->type = types[rows[i].type];
    o->def = rows[i].def;
    o->min = rows[i].min;
    o->max = rows[i].max;
    o->choices = rows[i].choices;
    o->help = rows[i].help;
    return true;
}

static void format_size(int64_t v, char *out, size_t cap)
{
    static const char suf[] = "KMGT";
    int k = -1;
    while (v >= 1024 && v % 1024 == 0 && k < 3) {
        v /= 1024;
        k++;
    }
    if (k >= 0)
        snprintf(out, cap, "%lld%c", (long long)v, suf[k]);
    else
        snprintf(out, cap, "%lld", (long long)v);
}

void options_format(unsigned i, char *out, size_t cap)
{
    if (i >= NROWS || cap == 0)
        return;
    const struct row *r = &rows[i];
    switch (r->type) {
    case T_PATH: {
        const char *s = *(const char **)field_of(r);
        snprintf(out, cap, "%s", s ? s : "unset");
        break;
    }
    case T_NODES: {
        const nodeset_t *s = field_of(r);
        if (s->given)
            nodeset_format(s, out, cap);
        else
            snprintf(out, cap, "all");
        break;
    }
    case T_ENUM: snprintf(out, cap, "%s", r->choices[*(int64_t *)field_of(r)]); break;
    case T_SIZE: format_size(*(int64_t *)field_of(r), out, cap); break;
    default: snprintf(out, cap, "%lld", (long long)*(int64_t *)field_of(r)); break;
    }
}
