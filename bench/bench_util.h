/* Small pieces the C micro-benchmarks in bench/ share (each includes it as
 * "bench_util.h", from its own folder): a monotonic clock in seconds and a
 * xorshift generator with a fixed seed, so runs see the same data. */
#ifndef SLM_BENCH_UTIL_H
#define SLM_BENCH_UTIL_H

#include <stdint.h>
#include <time.h>

static inline double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t g_s = 88172645463325252ull;
static inline uint64_t rnd(void) { g_s ^= g_s << 13; g_s ^= g_s >> 7; g_s ^= g_s << 17; return g_s; }

#endif
