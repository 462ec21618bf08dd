/* probe.c - what a program started by `numaslab run` sees.
 *
 * Prints "preloaded=1" when libnumaslab.so is in the process and owns
 * malloc (ns_node_of, looked up with dlsym, recognises a malloc'd block),
 * else "preloaded=0"; then "cpus=LIST", the CPUs the process may run on
 * (sched_getaffinity), as a list like 0-3,8. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    int (*node_of)(const void *);
    void *sym = dlsym(RTLD_DEFAULT, "ns_node_of");
    memcpy(&node_of, &sym, sizeof node_of);     /* object -> function pointer, ISO C */
    void *p = malloc(100);
    int pre = node_of && p && node_of(p) >= 0;
    free(p);
    printf("preloaded=%d\n", pre);
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    printf("cpus=");
    int first = 1;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &set))
            continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, &set))
            e++;
        printf(e > c ? "%s%d-%d" : "%s%d", first ? "" : ",", c, e);
        first = 0;
        c = e;
    }
    printf("\n");
    return 0;
}
