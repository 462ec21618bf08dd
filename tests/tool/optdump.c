/* optdump.c - the options the allocator ended up with.  Linked with the
 * core (numaslab_core), so it can read ns_opt: starts the allocator (which
 * reads NUMASLAB_* once) and prints every option as field=value, strings
 * as given or "(unset)". */
#include <stdio.h>

#include "internal.h"
#include <numaslab.h>

int main(void)
{
    ns_free(ns_malloc(1));
#define T_IS_STR_BOOL 0
#define T_IS_STR_INT 0
#define T_IS_STR_SIZE 0
#define T_IS_STR_STR 1
#define PRINT(field, type, def, min, max, name, help)                                                    \
    if (T_IS_STR_##type)                                                                                 \
        printf("%s=%s\n", #field, ns_opt.field ? (const char *)(intptr_t)ns_opt.field : "(unset)");       \
    else                                                                                                 \
        printf("%s=%lld\n", #field, (long long)ns_opt.field);
    NS_OPTIONS(PRINT)
#undef PRINT
    return 0;
}
