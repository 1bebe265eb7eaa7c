/* Micro-benchmark of the dot kernels: one thread, weights streamed from
 * memory as in a matrix-vector product. Not part of the CMake build.
 *
 *   scripts: compile vec_dot_avx2.c with -mavx2 -mfma -mf16c and
 *   vec_dot_avx512.c with -mavx512f -mavx512bw -mavx512vl -mavx512dq
 *   -mavx512vnni -mavx2 -mfma -mf16c, then
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Iinclude -Isrc bench/quant_bench.c \
 *       src/quant/quant_types.c src/quant/quant_ref.c src/quant/quant_act.c \
 *       src/quant/vec_dot_scalar.c src/quant/quant_dispatch.c \
 *       vec_dot_avx2.o vec_dot_avx512.o -lm -lpthread -o quant_bench   (add -pthread)
 *
 *   quant_bench [rows cols [type [threads]]]
 *       default: the Gemma 3 head, 262144 x 640, Q8_0, then every type at
 *       1024 x 2048; with a type, only that type at rows x cols, its rows
 *       split over `threads` threads
 *
 * Prints GB/s of weight bytes (best of a few passes) for each kernel set this
 * CPU runs; "-rows" is slm_vec_dot_rows where a set has a multi-row kernel.
 * Then every type on a 1024 x 2048 matrix (8 MB or less: mostly cache). */
#include "quant/quant.h"
#include "quant/quant_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

/* random bytes; every 16-bit f16 field made finite and small */
static void fill(uint32_t type, uint8_t *w, size_t bytes) {
    const slm_type_info *t = slm_type_get(type);
    for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)rnd();
    if (type == SLM_T_F32) {
        for (size_t i = 0; i + 4 <= bytes; i += 4) { float f = (float)(rnd() % 1000) / 1000.f; memcpy(w + i, &f, 4); }
        return;
    }
    if (t->block_size == 1) { for (size_t i = 1; i < bytes; i += 2) w[i] &= 0x3b; return; }
    int off[2] = { -1, -1 };
    switch (type) {
    case SLM_T_Q4_1: case SLM_T_Q5_1: case SLM_T_Q4_K: case SLM_T_Q5_K: off[0] = 0; off[1] = 2; break;
    case SLM_T_Q2_K: off[0] = 80; off[1] = 82; break;
    case SLM_T_Q3_K: off[0] = 108; break;
    case SLM_T_Q6_K: off[0] = 208; break;
    default: off[0] = 0; break;
    }
    for (size_t b = 0; b < bytes / t->block_bytes; b++)
        for (int f = 0; f < 2; f++)
            if (off[f] >= 0) w[b * t->block_bytes + (size_t)off[f] + 1] &= 0x1b;
}

typedef struct {
    const slm_kernels *k;
    uint32_t type;
    int mode;
    const uint8_t *w;
    size_t rb;
    int64_t r0, r1, cols;
    const uint8_t *xq;
    float *out;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    if (j->mode == 0)
        for (int64_t r = j->r0; r < j->r1; r++) j->out[r] = j->k->dot[j->type](j->w + (size_t)r * j->rb, j->xq, j->cols);
    else
        slm_kernels_dot_rows(j->k, j->type, j->w + (size_t)j->r0 * j->rb, j->rb, (int)(j->r1 - j->r0), j->xq, j->cols,
                             j->out + j->r0);
    return NULL;
}

static int g_threads = 1;

static void bench(uint32_t type, int64_t rows, int64_t cols) {
    const slm_type_info *t = slm_type_get(type);
    uint32_t vt = slm_vec_type(type);
    size_t rb = slm_row_bytes(type, cols), bytes = rb * (size_t)rows;
    if (!rb) { printf("%-5s: %lld columns is not a multiple of %d\n", t->name, (long long)cols, t->block_size); return; }
    uint8_t *w = malloc(bytes), *xq = malloc(slm_row_bytes(vt, cols));
    float *x = malloc((size_t)cols * 4), *out = malloc((size_t)rows * 4);
    fill(type, w, bytes);
    for (int64_t i = 0; i < cols; i++) x[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.f;
    slm_quantize_act(vt, x, xq, cols);
    printf("%-5s %lldx%lld %6.1f MB:", t->name, (long long)rows, (long long)cols, (double)bytes / 1e6);
    const char *sets[] = { "scalar", "avx2", "avx512", "neon" };
    for (int s = 0; s < 4; s++) {
        const slm_kernels *k = slm_kernels_get(sets[s]);
        if (!k) continue;
        for (int mode = 0; mode < 2; mode++) {
            if (mode == 1 && !k->rows[type]) continue;
            double best = 1e30;
            int reps = s == 0 ? 2 : 20;
            for (int rep = 0; rep < reps; rep++) {
                job jobs[64];
                pthread_t th[64];
                int nt = g_threads;
                for (int t = 0; t < nt; t++)
                    jobs[t] = (job){ k, type, mode, w, rb, rows * t / nt, rows * (t + 1) / nt, cols, xq, out };
                double t0 = now();
                for (int t = 1; t < nt; t++) pthread_create(&th[t], NULL, run_job, &jobs[t]);
                run_job(&jobs[0]);
                for (int t = 1; t < nt; t++) pthread_join(th[t], NULL);
                double dt = now() - t0;
                if (dt < best) best = dt;
            }
            printf("  %s%s %5.1f GB/s", sets[s], mode ? "-rows" : "", (double)bytes / best / 1e9);
        }
    }
    printf("\n");
    free(w); free(xq); free(x); free(out);
}

int main(int argc, char **argv) {
    int64_t rows = argc > 2 ? atoll(argv[1]) : 262144, cols = argc > 2 ? atoll(argv[2]) : 640;
    if (argc > 4) g_threads = atoi(argv[4]) < 1 ? 1 : atoi(argv[4]) > 64 ? 64 : atoi(argv[4]);
    printf("kernels: %s, %d thread(s)\n", slm_kernels_name(), g_threads);
    if (argc > 3) { /* one type by name */
        for (uint32_t t = 0; t < 32; t++)
            if (slm_type_get(t) && slm_type_get(t)->is_weight_type && !strcmp(slm_type_get(t)->name, argv[3]))
                bench(t, rows, cols);
        return 0;
    }
    bench(SLM_T_Q8_0, rows, cols);
    static const uint32_t types[] = { SLM_T_Q8_0, SLM_T_Q4_0, SLM_T_Q4_1, SLM_T_Q5_0, SLM_T_Q5_1, SLM_T_Q2_K,
                                      SLM_T_Q3_K, SLM_T_Q4_K, SLM_T_Q5_K, SLM_T_Q6_K, SLM_T_F16, SLM_T_BF16,
                                      SLM_T_F32 };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) bench(types[i], 1024, 2048);
    return 0;
}
