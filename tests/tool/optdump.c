/* optdump.c - the options the allocator ended up with.  Linked with the
 * core (numaslab_core): starts the allocator (which reads NUMASLAB_* once,
 * with its warnings) and prints every row of the option table as
 * name=value, the name in lower case (decay_ms=1000), the value as
 * options_format writes it: what `numaslab options` shows as the value in
 * use ("64K", "thp", "0-1", "all", "unset"). */
#include <ctype.h>
#include <stdio.h>

#include "base/base.h"
#include <numaslab.h>

int main(void)
{
    ns_free(ns_malloc(1));
    option_info_t o;
    for (unsigned i = 0; options_describe(i, &o); i++) {
        char value[256];
        options_format(i, value, sizeof value);
        for (const char *c = o.name; *c; c++)
            putchar(tolower((unsigned char)*c));
        printf("=%s\n", value);
    }
    return 0;
}
