#include "ops/ops.h"

#include <math.h>
#include <string.h>

#include "ops/ops_isa.h"
#include "quant/quant.h"

size_t op_matmul_scratch(const slm_mat *w, int n_tok) {
    uint32_t vt = slm_vec_type(w->type);
    return slm_row_bytes(vt, w->cols) * (size_t)n_tok;
}

typedef struct {
    const slm_mat *w;
    const uint8_t *xq;
    size_t xq_stride;
    int n_tok;
    float *y;
    bool row_exact;
} matmul_job;

/* Rows are split among workers. One token (decode): each worker dots its
 * whole range with slm_vec_dot_rows. Several tokens (prompt): it walks its
 * rows in tiles small enough to stay in L1/L2 and multiplies each tile with
 * all the activation rows at once (slm_gemm_tile unpacks every weight block
 * once for several tokens), so a weight row is fetched from memory once per
 * call whatever the batch. */
#ifndef MATMUL_TILE_ROWS
#define MATMUL_TILE_ROWS 256
#endif
/* Below this many tokens the GEMM tiles (which repack weight blocks per
 * call) cost more than one-row products over a cached tile; measured with
 * bench/batch_bench.c. */
#ifndef MATMUL_GEMM_MIN_TOK
#define MATMUL_GEMM_MIN_TOK 8
#endif
#ifndef MATMUL_SMALL_TILE_ROWS
#define MATMUL_SMALL_TILE_ROWS 32
#endif

/* Packed weights: workers take whole groups of rows. One token streams the
 * range in one call; several walk it in tiles that stay in L2 while every
 * token passes over them. */
#ifndef MATMUL_PACKED_TILE_ROWS
#define MATMUL_PACKED_TILE_ROWS 1024
#endif
static void matmul_packed(const matmul_job *j, int ith, int nth) {
    const slm_mat *w = j->w;
    long ng = (long)((w->rows + SLM_PACK_GROUP - 1) / SLM_PACK_GROUP), g0, g1;
    slm_split_range(ng, ith, nth, &g0, &g1);
    long lo = g0 * SLM_PACK_GROUP, hi = g1 * SLM_PACK_GROUP < w->rows ? g1 * SLM_PACK_GROUP : (long)w->rows;
    long tile = j->n_tok == 1 ? hi - lo : MATMUL_PACKED_TILE_ROWS;
    for (long r0 = lo; r0 < hi; r0 += tile) {
        int nr = (int)(hi - r0 < tile ? hi - r0 : tile);
        slm_packed_tile(w->type, w->packed, w->cols, r0, nr, j->xq, j->xq_stride, j->n_tok, j->y + r0,
                        (size_t)w->rows);
    }
}

/* Row-exact several tokens over stored rows: the one-token path hands a
 * worker's whole range to slm_vec_dot_rows, whose per-row arithmetic is the
 * same for any run of two rows or more (and, for one row, may differ: a
 * lone-row kernel). So tiles of at least two rows are dotted token by token
 * (a tile stays in L1/L2 while every token passes over it), and a range of
 * one row stays one row. */
static void matmul_rows_exact(const matmul_job *j, long lo, long hi) {
    const slm_mat *w = j->w;
    for (long r0 = lo; r0 < hi;) {
        long nr = hi - r0 < MATMUL_SMALL_TILE_ROWS ? hi - r0 : MATMUL_SMALL_TILE_ROWS;
        if (hi - r0 - nr == 1) nr++; /* never leave a last tile of one row */
        for (int t = 0; t < j->n_tok; t++)
            slm_vec_dot_rows(w->type, w->data + (size_t)r0 * w->row_bytes, w->row_bytes, (int)nr,
                             j->xq + (size_t)t * j->xq_stride, w->cols, j->y + (size_t)t * w->rows + r0);
        r0 += nr;
    }
}

static void matmul_worker(void *ctx, int ith, int nth) {
    const matmul_job *j = ctx;
    const slm_mat *w = j->w;
    if (w->packed) {
        matmul_packed(j, ith, nth);
        return;
    }
    long lo, hi;
    slm_split_range((long)w->rows, ith, nth, &lo, &hi);
    if (j->n_tok > 1 && j->row_exact) {
        matmul_rows_exact(j, lo, hi);
        return;
    }
    if (j->n_tok == 1) {
        if (hi > lo)
            slm_vec_dot_rows(w->type, w->data + (size_t)lo * w->row_bytes, w->row_bytes, (int)(hi - lo), j->xq,
                             w->cols, j->y + lo);
        return;
    }
    if (j->n_tok < MATMUL_GEMM_MIN_TOK) {
        /* A few tokens (batched decode of a few sequences): tiles small
         * enough to stay in L1/L2 where a type has no few-token kernel and
         * falls back to one-row products per token. */
        for (long r0 = lo; r0 < hi; r0 += MATMUL_SMALL_TILE_ROWS) {
            int nr = (int)(hi - r0 < MATMUL_SMALL_TILE_ROWS ? hi - r0 : MATMUL_SMALL_TILE_ROWS);
            slm_gemm_tile(w->type, w->data + (size_t)r0 * w->row_bytes, w->row_bytes, nr, j->xq, j->xq_stride,
                          j->n_tok, w->cols, j->y + r0, (size_t)w->rows);
        }
        return;
    }
    for (long r0 = lo; r0 < hi; r0 += MATMUL_TILE_ROWS) {
        int nr = (int)(hi - r0 < MATMUL_TILE_ROWS ? hi - r0 : MATMUL_TILE_ROWS);
        slm_gemm_tile(w->type, w->data + (size_t)r0 * w->row_bytes, w->row_bytes, nr, j->xq, j->xq_stride,
                      j->n_tok, w->cols, j->y + r0, (size_t)w->rows);
    }
}

typedef struct {
    uint32_t vt;
    const float *x;
    int64_t cols;
    int n_tok;
    uint8_t *xq;
    size_t stride;
} quant_job;

static void quant_worker(void *ctx, int ith, int nth) {
    const quant_job *j = ctx;
    long lo, hi;
    slm_split_range(j->n_tok, ith, nth, &lo, &hi);
    for (long t = lo; t < hi; t++)
        slm_quantize_act(j->vt, j->x + (size_t)t * j->cols, j->xq + (size_t)t * j->stride, j->cols);
}

void op_matmul(slm_pool *pool, const slm_mat *w, const float *x, int n_tok, float *y, void *scratch) {
    op_matmul_ex(pool, w, x, n_tok, y, scratch, false);
}

void op_matmul_ex(slm_pool *pool, const slm_mat *w, const float *x, int n_tok, float *y, void *scratch,
                  bool row_exact) {
    uint32_t vt = slm_vec_type(w->type);
    size_t stride = slm_row_bytes(vt, w->cols);
    quant_job qj = { vt, x, w->cols, n_tok, scratch, stride };
    /* a prompt's activations are quantized by all workers; one token's is not worth a dispatch */
    if (n_tok >= 16 && slm_pool_size(pool) > 1) slm_pool_run(pool, quant_worker, &qj);
    else quant_worker(&qj, 0, 1);
    matmul_job j = { w, scratch, stride, n_tok, y, row_exact };
    slm_pool_run(pool, matmul_worker, &j);
}

typedef struct {
    const slm_mat *w;
    const float *x;
    int n_tok;
    float *y, *rowbuf;
} precise_job;

static void precise_worker(void *ctx, int ith, int nth) {
    const precise_job *j = ctx;
    const slm_mat *w = j->w;
    float *row = j->rowbuf + (size_t)ith * w->cols;
    long lo, hi;
    slm_split_range((long)w->rows, ith, nth, &lo, &hi);
    for (long r = lo; r < hi; r++) {
        slm_dequantize_row(w->type, w->data + (size_t)r * w->row_bytes, row, w->cols);
        for (int t = 0; t < j->n_tok; t++)
            j->y[(size_t)t * w->rows + r] = op_dot_f32(row, j->x + (size_t)t * w->cols, (int)w->cols);
    }
}

void op_matmul_precise(slm_pool *pool, const slm_mat *w, const float *x, int n_tok, float *y, float *rowbuf) {
    precise_job j = { w, x, n_tok, y, rowbuf };
    slm_pool_run(pool, precise_worker, &j);
}

static void rmsnorm_scalar(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    if (w) for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
    else for (int i = 0; i < n; i++) out[i] = x[i] * scale;
}

void op_rope_table(float *cos_out, float *sin_out, int n_rot, int pos, float base) {
    op_rope_table_ext(cos_out, sin_out, n_rot, pos, base, NULL, 1.0f, 1.0f);
}

void op_rope_table_ext(float *cos_out, float *sin_out, int n_rot, int pos, float base,
                       const float *freq_factors, float freq_scale, float mscale) {
    for (int i = 0; i < n_rot / 2; i++) {
        /* double: pos * freq reaches ~1e4 rad at long contexts; float loses digits */
        double theta = pos * (double)freq_scale * pow((double)base, -2.0 * i / n_rot);
        if (freq_factors) theta /= freq_factors[i];
        cos_out[i] = (float)(cos(theta) * mscale);
        sin_out[i] = (float)(sin(theta) * mscale);
    }
}

void op_rope_neox(float *x, const float *cosv, const float *sinv, int n_rot) {
    int h = n_rot / 2;
    for (int i = 0; i < h; i++) {
        float a = x[i], b = x[i + h];
        x[i] = a * cosv[i] - b * sinv[i];
        x[i + h] = a * sinv[i] + b * cosv[i];
    }
}

void op_rope_norm(float *x, const float *cosv, const float *sinv, int n_rot) {
    for (int i = 0; i < n_rot / 2; i++) {
        float a = x[2 * i], b = x[2 * i + 1];
        x[2 * i] = a * cosv[i] - b * sinv[i];
        x[2 * i + 1] = a * sinv[i] + b * cosv[i];
    }
}

/* ---- per-ISA selection of the element-wise ops ------------------------- */

typedef void (*axpy_fn)(float *, float, const float *, int);
typedef void (*gate_fn)(float *, const float *, int);
typedef void (*norm_fn)(float *, const float *, const float *, int, float);
static void axpy_scalar(float *y, float a, const float *x, int n);
static void gelu_scalar(float *x, const float *up, int n);
static axpy_fn axpy_impl = axpy_scalar;
static gate_fn gelu_impl = gelu_scalar;
static norm_fn rmsnorm_impl = rmsnorm_scalar;

/* Chosen at load, before any thread exists. */
__attribute__((constructor)) static void ops_pick_isa(void) {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        axpy_impl = op_axpy_f32_avx512;
        gelu_impl = op_gelu_tanh_mul_avx512;
        rmsnorm_impl = op_rmsnorm_avx512;
    }
#endif
}

void op_gelu_tanh_mul(float *x, const float *up, int n) { gelu_impl(x, up, n); }
void op_rmsnorm(float *out, const float *x, const float *w, int n, float eps) { rmsnorm_impl(out, x, w, n, eps); }
void op_axpy_f32(float *y, float a, const float *x, int n) { axpy_impl(y, a, x, n); }

static void gelu_scalar(float *x, const float *up, int n) {
    const float k = 0.7978845608028654f; /* sqrt(2/pi) */
    for (int i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v))) * up[i];
    }
}

void op_silu_mul(float *x, const float *up, int n) {
    for (int i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i])) * up[i];
}

void op_softmax(float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++) if (x[i] > mx) mx = x[i];
    double sum = 0;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - mx); sum += x[i]; }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

float op_dot_f32(const float *a, const float *b, int n) {
    /* 16 independent partial sums: the compiler maps them onto SIMD lanes
     * without needing -ffast-math to reorder one long sum. */
    float acc[16] = { 0 };
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++) acc[k] += a[i + k] * b[i + k];
    float s = 0;
    for (; i < n; i++) s += a[i] * b[i];
    for (int k = 0; k < 16; k++) s += acc[k];
    return s;
}

static void axpy_scalar(float *y, float a, const float *x, int n) {
    for (int i = 0; i < n; i++) y[i] += a * x[i];
}
