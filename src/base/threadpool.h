/* A persistent pool of worker threads for data-parallel loops. The caller
 * thread takes part as worker 0, so a pool of 1 runs inline with no
 * synchronisation. Workers spin briefly on a generation counter before
 * sleeping: the decode step dispatches ~150 small jobs per token, and a
 * condition-variable wake-up for each would cost more than the work. */
#ifndef SLM_BASE_THREADPOOL_H
#define SLM_BASE_THREADPOOL_H

#include "slm.h"

typedef struct slm_pool slm_pool;

/* fn(ctx, ith, nth): worker ith of nth does its share. */
typedef void (*slm_pool_fn)(void *ctx, int ith, int nth);

slm_status slm_pool_new(int n_threads, slm_pool **out);
void slm_pool_free(slm_pool *p);
int slm_pool_size(const slm_pool *p);
/* Runs fn on every worker and returns when all are done. Not re-entrant. */
void slm_pool_run(slm_pool *p, slm_pool_fn fn, void *ctx);

/* Number of online CPUs (at least 1). */
int slm_cpu_count(void);

/* Splits [0, n) into nth nearly equal parts; part ith is [*lo, *hi). */
static inline void slm_split_range(long n, int ith, int nth, long *lo, long *hi) {
    long per = n / nth, rem = n % nth;
    *lo = ith * per + (ith < rem ? ith : rem);
    *hi = *lo + per + (ith < rem ? 1 : 0);
}

#endif
