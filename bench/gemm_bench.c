/* Prompt-processing matmul micro-benchmark, one thread: rows x cols weights
 * of a type against ntok activation rows, walked in 32-row tiles as
 * op_matmul does, (a) one slm_vec_dot_rows per token per tile (the old
 * path), (b) one slm_gemm_tile per tile. Not part of the CMake build:
 *
 *   cmake --build build && gcc -std=c11 -O2 -D_GNU_SOURCE -Iinclude -Isrc \
 *       bench/gemm_bench.c build/libslmcore.a -lm -lpthread -o gemm_bench
 *   gemm_bench [rows cols type ntok]   (default: Gemma 3 270M shapes, 512 tokens)
 *
 * Prints GFLOP/s (2 rows*cols*ntok / time, best of 5) and the ratio. */
#include "quant/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"

#ifndef TILE
#define TILE 32
#endif

static void bench(uint32_t type, int rows, int cols, int ntok) {
    const slm_type_info *t = slm_type_get(type);
    uint32_t vt = slm_vec_type(type);
    size_t rb = slm_row_bytes(type, cols), xb = slm_row_bytes(vt, cols);
    uint8_t *w = malloc(rb * (size_t)rows), *xq = malloc(xb * (size_t)ntok);
    float *x = malloc((size_t)cols * 4), *y = malloc((size_t)rows * ntok * 4), *y2 = malloc((size_t)rows * ntok * 4);
    for (int r = 0; r < rows; r++) {
        uint8_t *wr = w + (size_t)r * rb;
        for (size_t i = 0; i < rb; i++) wr[i] = (uint8_t)rnd();
        size_t bb = t->block_bytes;
        for (size_t b = 0; b < rb / bb; b++) {
            uint16_t h = slm_f32_to_f16(0.01f);
            if (type == SLM_T_Q6_K) memcpy(wr + b * bb + 208, &h, 2);
            else { memcpy(wr + b * bb, &h, 2); if (type == SLM_T_Q4_K) memcpy(wr + b * bb + 2, &h, 2); }
        }
    }
    for (int k = 0; k < ntok; k++) {
        for (int i = 0; i < cols; i++) x[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.f;
        slm_quantize_act(vt, x, xq + (size_t)k * xb, cols);
    }
    double best[2] = { 1e30, 1e30 };
    for (int rep = 0; rep < 5; rep++)
        for (int m = 0; m < 2; m++) {
            double t0 = now();
            for (int r0 = 0; r0 < rows; r0 += TILE) {
                int nr = rows - r0 < TILE ? rows - r0 : TILE;
                if (m == 0)
                    for (int k = 0; k < ntok; k++)
                        slm_vec_dot_rows(type, w + (size_t)r0 * rb, rb, nr, xq + (size_t)k * xb, cols,
                                         y + (size_t)k * rows + r0);
                else
                    slm_gemm_tile(type, w + (size_t)r0 * rb, rb, nr, xq, xb, ntok, cols, y2 + r0, (size_t)rows);
            }
            double dt = now() - t0;
            if (dt < best[m]) best[m] = dt;
        }
    double maxd = 0;
    for (size_t i = 0; i < (size_t)rows * ntok; i++) {
        double d = y[i] - y2[i];
        if (d < 0) d = -d;
        double s = y[i] < 0 ? -y[i] : y[i];
        if (d / (s + 1e-3) > maxd) maxd = d / (s + 1e-3);
    }
    double fl = 2.0 * rows * cols * ntok;
    printf("%-5s %5d x %5d, %d tok: rows %6.1f GFLOP/s  tile %6.1f GFLOP/s  x%.2f  (max rel diff %.1e)\n", t->name, rows,
           cols, ntok, fl / best[0] / 1e9, fl / best[1] / 1e9, best[0] / best[1], maxd);
    free(w); free(xq); free(x); free(y); free(y2);
}

int main(int argc, char **argv) {
    printf("kernels: %s\n", slm_kernels_name());
    if (argc > 4) {
        for (uint32_t t = 0; t < 32; t++)
            if (slm_type_get(t) && slm_type_get(t)->is_weight_type && !strcmp(slm_type_get(t)->name, argv[3]))
                bench(t, atoi(argv[1]), atoi(argv[2]), atoi(argv[4]));
        return 0;
    }
    bench(SLM_T_Q5_0, 2048, 640, 512);
    bench(SLM_T_Q5_0, 1024, 640, 512);
    bench(SLM_T_Q8_0, 256, 640, 512);
    bench(SLM_T_Q4_K, 640, 1024, 512);
    bench(SLM_T_Q4_K, 640, 2048, 512);
    bench(SLM_T_Q6_K, 640, 2048, 512);
    return 0;
}
