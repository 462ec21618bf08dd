/* clock.c - the allocator's clock: milliseconds of CLOCK_MONOTONIC_COARSE
 * (a vDSO read, no system call), for decay periods and rate limits. */
#include <time.h>

#include "base.h"

uint64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
