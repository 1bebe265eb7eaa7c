/* CUDA kernels held to the CPU reference: every weight type's matrix-vector
 * product against slm_dot_ref (dequantize + double sum), RMSNorm, RoPE and the
 * gated activations against src/ops. Skips (77) where no device is present. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_backend.h"
#include "ops/ops.h"
#include "quant/quant.h"
#include "testlib.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    g_rng ^= g_rng << 13; g_rng ^= g_rng >> 7; g_rng ^= g_rng << 17;
    return g_rng;
}
static float unif(void) { return (float)((rnd() >> 11) * 0x1p-53) * 2.f - 1.f; }

/* A row of `type`: random f32 values quantized would need the quantizers, so
 * instead random bytes with sane f16 scale fields (each type's offsets). */
static void random_row(uint32_t type, uint8_t *dst, int n) {
    const slm_type_info *t = slm_type_get(type);
    size_t bytes = slm_row_bytes(type, n);
    if (t->block_size == 1) {
        for (int i = 0; i < n; i++) {
            float v = unif();
            if (type == SLM_T_F32) memcpy(dst + 4 * i, &v, 4);
            else {
                uint16_t h = type == SLM_T_F16 ? slm_f32_to_f16(v) : slm_f32_to_bf16(v);
                memcpy(dst + 2 * i, &h, 2);
            }
        }
        return;
    }
    for (size_t i = 0; i < bytes; i++) dst[i] = (uint8_t)rnd();
    int off[2] = { -1, -1 };
    switch (type) {
    case SLM_T_Q4_0: case SLM_T_Q5_0: case SLM_T_Q8_0: off[0] = 0; break;
    case SLM_T_Q4_1: case SLM_T_Q5_1: case SLM_T_Q4_K: case SLM_T_Q5_K: off[0] = 0; off[1] = 2; break;
    case SLM_T_Q2_K: off[0] = 80; off[1] = 82; break;
    case SLM_T_Q3_K: off[0] = 108; break;
    case SLM_T_Q6_K: off[0] = 208; break;
    default: break;
    }
    for (size_t b = 0; b < bytes / t->block_bytes; b++)
        for (int f = 0; f < 2; f++)
            if (off[f] >= 0) {
                uint16_t h = slm_f32_to_f16(0.01f + 0.04f * unif());
                memcpy(dst + b * t->block_bytes + off[f], &h, 2);
            }
}

static void test_matvec(void) {
    static const uint32_t types[] = { SLM_T_F32, SLM_T_F16, SLM_T_BF16, SLM_T_Q4_0, SLM_T_Q4_1, SLM_T_Q5_0,
                                      SLM_T_Q5_1, SLM_T_Q8_0, SLM_T_Q2_K, SLM_T_Q3_K, SLM_T_Q4_K, SLM_T_Q5_K,
                                      SLM_T_Q6_K };
    static const int cols_list[] = { 256, 640, 1536, 2048 };
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        uint32_t type = types[ti];
        const slm_type_info *t = slm_type_get(type);
        for (size_t ci = 0; ci < sizeof cols_list / sizeof cols_list[0]; ci++) {
            int cols = cols_list[ci], rows = 37;
            if (cols % t->block_size) continue;
            size_t rb = slm_row_bytes(type, cols);
            uint8_t *w = malloc(rb * rows);
            float *x = malloc(cols * sizeof(float)), *y = malloc(rows * sizeof(float));
            for (int r = 0; r < rows; r++) random_row(type, w + rb * r, cols);
            for (int c = 0; c < cols; c++) x[c] = unif();
            char err[256];
            int rc = slm_cuda_matvec_host(type, w, rb, rows, cols, x, y, err, sizeof err);
            CHECKF(rc == 0, "%s %d cols: %s", t->name, cols, err);
            double worst = 0;
            for (int r = 0; rc == 0 && r < rows; r++) {
                double ref = slm_dot_ref(type, w + rb * r, x, cols);
                double mag = 0;
                float buf[2048];
                slm_dequantize_row(type, w + rb * r, buf, cols);
                for (int c = 0; c < cols; c++) mag += fabs((double)buf[c] * x[c]);
                double rel = fabs(y[r] - ref) / (mag + 1e-30);
                if (rel > worst) worst = rel;
            }
            CHECKF(worst < 1e-5, "%s %d cols: worst error %.3g of the magnitude", t->name, cols, worst);
            free(w); free(x); free(y);
        }
    }
}

static void test_ops(void) {
    enum { ROWS = 3, N = 640 };
    float x[ROWS * N], w[N], ref[ROWS * N], out[ROWS * N];
    for (int i = 0; i < ROWS * N; i++) x[i] = unif() * 3.f;
    for (int i = 0; i < N; i++) w[i] = 1.f + unif();
    char err[256];
    for (int r = 0; r < ROWS; r++) op_rmsnorm(ref + r * N, x + r * N, w, N, 1e-6f);
    int rc = slm_cuda_rmsnorm_host(x, w, ROWS, N, 1e-6f, out, err, sizeof err);
    CHECKF(rc == 0, "rmsnorm: %s", err);
    float worst = 0;
    for (int i = 0; rc == 0 && i < ROWS * N; i++) worst = fmaxf(worst, fabsf(out[i] - ref[i]) / (fabsf(ref[i]) + 1e-3f));
    CHECKF(worst < 1e-5f, "rmsnorm: worst relative error %g", worst);

    enum { HEADS = 4, HD = 256 };
    for (int neox = 0; neox < 2; neox++)
        for (int pos = 0; pos < 40000; pos += 13331) {
            float h[HEADS * HD], g[HEADS * HD], c[HD / 2], s[HD / 2];
            for (int i = 0; i < HEADS * HD; i++) h[i] = g[i] = unif();
            op_rope_table(c, s, HD, pos, 1e6f);
            for (int hh = 0; hh < HEADS; hh++) {
                if (neox) op_rope_neox(h + hh * HD, c, s, HD);
                else op_rope_norm(h + hh * HD, c, s, HD);
            }
            rc = slm_cuda_rope_host(g, HEADS, HD, HD, pos, 1e6f, neox, err, sizeof err);
            CHECKF(rc == 0, "rope: %s", err);
            float wr = 0;
            for (int i = 0; rc == 0 && i < HEADS * HD; i++) wr = fmaxf(wr, fabsf(h[i] - g[i]));
            CHECKF(wr < 1e-5f, "rope neox=%d pos %d: worst error %g", neox, pos, wr);
        }

    for (int gelu = 0; gelu < 2; gelu++) {
        float a[N], b[N], up[N];
        for (int i = 0; i < N; i++) { a[i] = b[i] = unif() * 6.f; up[i] = unif(); }
        if (gelu) op_gelu_tanh_mul(a, up, N);
        else op_silu_mul(a, up, N);
        rc = slm_cuda_gated_act_host(b, up, N, gelu, err, sizeof err);
        CHECKF(rc == 0, "activation: %s", err);
        float wr = 0;
        for (int i = 0; rc == 0 && i < N; i++) wr = fmaxf(wr, fabsf(a[i] - b[i]));
        CHECKF(wr < 1e-5f, "%s: worst error %g", gelu ? "gelu" : "silu", wr);
    }
}

int main(void) {
    char why[256] = "";
    if (slm_cuda_device_count(why, sizeof why) == 0) {
        /* the one skip scripts/run_tests.sh accepts under CI: no GPU there */
        test_skip("no CUDA device: %s", why);
        return test_finish();
    }
    test_matvec();
    test_ops();
    return test_finish();
}
