/* CPU time of one slm_batch decode step with k sequences (k = 1, 2, 4, 16),
 * one thread, and of the product with the output head alone for the same
 * numbers of rows: how much batching saves per token, and where it does not.
 * CPU time (not wall) so that other jobs on a shared machine disturb it
 * little. Build from the repository root after a release build:
 *
 *   cc -O2 -D_GNU_SOURCE -Iinclude -Isrc bench/batch_bench.c build/libslmcore.a \
 *      -lm -lpthread $(pkg-config --libs libpcre2-8) -o build/batch_bench
 *   build/batch_bench ~/.cache/slm/models/gemma-3-270m-q4_k_m.gguf
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/threadpool.h"
#include "model/model.h"
#include "ops/ops.h"
#include "slm.h"

static double cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: batch_bench MODEL.gguf\n"); return 2; }
    slm_model *m;
    const char *rp = getenv("SLM_REPACK"); /* SLM_REPACK=0: the matrices as stored */
    if (rp && !strcmp(rp, "0")) slm_cpu_set_repack(false);
    if (slm_model_open(argv[1], &m)) { fprintf(stderr, "%s\n", slm_last_error()); return 1; }
    slm_batch_params bp = { .n_seq = 16, .n_ctx = 512, .n_threads = 1 };
    slm_batch *b;
    if (slm_batch_new(m, &bp, &b)) { fprintf(stderr, "%s\n", slm_last_error()); return 1; }
    slm_token tok[16];
    slm_batch_item it[16];
    for (int i = 0; i < 16; i++) {
        tok[i] = 100 + i;
        it[i] = (slm_batch_item){ i, &tok[i], 1 };
    }
    static const int ks[] = { 1, 2, 4, 16 };
    slm_pool *pool;
    slm_pool_new(1, &pool);
    const slm_mat *head = &m->output;
    float *x = calloc(16 * (size_t)head->cols, sizeof(float)), *y = malloc(16 * (size_t)head->rows * sizeof(float));
    void *xq = malloc(op_matmul_scratch(head, 16));
    for (size_t i = 0; i < 16 * (size_t)head->cols; i++) x[i] = (float)(i % 13) * 0.05f - 0.3f;
    printf("| k sequences | step ms (CPU) | ms per token | head product ms | head ms per row |\n|---|---|---|---|---|\n");
    for (int round = 0; round < 2; round++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            int k = ks[ki], steps = 10;
            double t0 = cpu_s();
            for (int s = 0; s < steps; s++) slm_batch_eval(b, it, k);
            double step = (cpu_s() - t0) / steps;
            for (int i = 0; i < 16; i++) slm_batch_truncate(b, i, 0);
            t0 = cpu_s();
            for (int s = 0; s < 3; s++) op_matmul(pool, head, x, k, y, xq);
            double hm = (cpu_s() - t0) / 3;
            if (round == 1)
                printf("| %d | %.1f | %.2f | %.1f | %.2f |\n", k, step * 1e3, step * 1e3 / k, hm * 1e3, hm * 1e3 / k);
        }
    free(x);
    free(y);
    free(xq);
    slm_pool_free(pool);
    slm_batch_free(b);
    slm_model_close(m);
    return 0;
}
