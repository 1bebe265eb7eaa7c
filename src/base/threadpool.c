#include "base/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/status.h"

#ifdef SLM_OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* How long an idle worker spins before it sleeps on the condition variable. */
#define SPIN_ITERS 20000

struct slm_pool {
    int n;
    int spawned;               /* threads of ours: n, or 1 with OpenMP */
    pthread_t *threads;
    slm_pool_fn fn;
    void *ctx;
    _Atomic unsigned gen;      /* bumped once per job */
    _Atomic int pending;       /* workers (other than the caller) still busy */
    _Atomic int sleepers;
    _Atomic int stop;
    pthread_mutex_t mu;
    pthread_cond_t wake;
};

typedef struct { slm_pool *p; int ith; } worker_arg;

static void *worker_main(void *arg) {
    worker_arg *wa = arg;
    slm_pool *p = wa->p;
    int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (atomic_load(&p->stop)) return NULL;
            if (++spins < SPIN_ITERS) { cpu_relax(); continue; }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = g;
        p->fn(p->ctx, ith, p->n);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel);
    }
}

int slm_cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

slm_status slm_pool_new(int n_threads, slm_pool **out) {
    if (n_threads < 1 || n_threads > 1024)
        return slm_fail(SLM_ERR_INVALID_ARG, "thread count %d out of range 1..1024", n_threads);
    slm_pool *p = calloc(1, sizeof *p);
    if (!p) return slm_fail(SLM_ERR_NOMEM, "out of memory creating thread pool");
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->threads = calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) { free(p); return slm_fail(SLM_ERR_NOMEM, "out of memory creating thread pool"); }
    int spawn = n_threads;
#ifdef SLM_OPENMP
    spawn = 1; /* no workers of ours: slm_pool_run uses OpenMP's */
#endif
    for (int i = 1; i < spawn; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || (wa->p = p, wa->ith = i, pthread_create(&p->threads[i], NULL, worker_main, wa)) != 0) {
            free(wa);
            p->spawned = i;  /* join only those started */
            slm_pool_free(p);
            return slm_fail(SLM_ERR_NOMEM, "cannot start worker thread %d", i);
        }
    }
    p->spawned = spawn;
    *out = p;
    return SLM_OK;
}

void slm_pool_free(slm_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->spawned; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p->threads);
    free(p);
}

int slm_pool_size(const slm_pool *p) { return p->n; }

void slm_pool_run(slm_pool *p, slm_pool_fn fn, void *ctx) {
    if (p->n == 1) { fn(ctx, 0, 1); return; }
#ifdef SLM_OPENMP
    /* The comparison build (cmake -DSLM_OPENMP=ON): OpenMP's team instead
     * of our workers, which then only sleep. docs/PERFORMANCE.md has both. */
#pragma omp parallel num_threads(p->n)
    fn(ctx, omp_get_thread_num(), p->n);
    return;
#endif
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1);  /* seq_cst: pairs with the sleepers check */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0, p->n);
    /* A worker that lost its core (another process) would keep us spinning
     * for a whole time slice: yield now and then. */
    for (unsigned spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        if (spins % 4096 == 4095) sched_yield();
        else cpu_relax();
    }
}
