/*
 * bench.h - what every benchmark shares: a monotonic clock in seconds.
 */
#pragma once

#include <time.h>

static inline double
now(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
