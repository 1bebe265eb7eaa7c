/* Chooses the kernel set once, from the CPU's features, and routes the public
 * calls to it. The scalar set is always complete; an ISA set starts as a copy
 * of the scalar one (or of a lower ISA's set) and overrides what it speeds up.
 *
 * slm_cpu_set_kernels() can lower the choice afterwards (for benchmarks and
 * debugging; the CLI maps SLM_KERNELS to it). The library reads no
 * environment itself. */
#include "quant/quant_internal.h"
#include "base/status.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { SET_SCALAR, SET_AVX2, SET_AVX512, SET_NEON, SET_COUNT };

static slm_kernels g_sets[SET_COUNT];
static bool g_have[SET_COUNT];
static const slm_kernels *g_active;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init_sets(void) {
    slm_kernels_fill_scalar(&g_sets[SET_SCALAR]);
    g_have[SET_SCALAR] = true;
    int best = SET_SCALAR;
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        g_sets[SET_AVX2] = g_sets[SET_SCALAR];
        slm_kernels_fill_avx2(&g_sets[SET_AVX2]);
        g_have[SET_AVX2] = true;
        best = SET_AVX2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512vnni")) {
            g_sets[SET_AVX512] = g_sets[SET_AVX2];
            slm_kernels_fill_avx512(&g_sets[SET_AVX512]);
            g_have[SET_AVX512] = true;
            best = SET_AVX512;
        }
    }
#endif
#if defined(__aarch64__)
    g_sets[SET_NEON] = g_sets[SET_SCALAR];
    slm_kernels_fill_neon(&g_sets[SET_NEON]);
    g_have[SET_NEON] = true;
    best = SET_NEON;
#endif
    g_active = &g_sets[best];
}

static inline const slm_kernels *kernels(void) {
    pthread_once(&g_once, init_sets);
    return g_active;
}

/* Pick early, before any worker threads exist. */
__attribute__((constructor)) static void quant_init_at_load(void) { (void)kernels(); }

const slm_kernels *slm_kernels_get(const char *name) {
    pthread_once(&g_once, init_sets);
    for (int i = 0; i < SET_COUNT; i++)
        if (g_have[i] && strcmp(g_sets[i].name, name) == 0) return &g_sets[i];
    return NULL;
}

const char *slm_kernels_name(void) { return kernels()->name; }

slm_status slm_cpu_set_kernels(const char *name) {
    const slm_kernels *cur = kernels();
    for (int i = 0; i < SET_COUNT; i++) {
        if (!g_have[i] || strcmp(g_sets[i].name, name) != 0) continue;
        if (i > (int)(cur - g_sets) && cur != &g_sets[i])
            return slm_fail(SLM_ERR_INVALID_ARG, "kernels '%s' are above the current choice '%s'", name, cur->name);
        g_active = &g_sets[i];
        return SLM_OK;
    }
    return slm_fail(SLM_ERR_UNSUPPORTED, "kernels '%s' are not available on this CPU (using %s)", name, cur->name);
}

/* n must be a whole number of blocks (block sizes are 1, 32, 256); a caller
 * that breaks this has a shape bug: stop rather than drop the tail. */
static inline void check_len(uint32_t type, int64_t n) {
    const slm_type_info *t = slm_type_get(type);
    if (!t || n < 0 || (n & (t->block_size - 1)) != 0) abort();
}

void slm_quantize_act(uint32_t vec_type, const float *x, void *dst, int64_t n) {
    check_len(vec_type, n);
    switch (vec_type) {
    case SLM_T_F32: memcpy(dst, x, (size_t)n * sizeof(float)); return;
    case SLM_T_Q8_0: kernels()->quant_q8_0(x, dst, n); return;
    case SLM_T_Q8_K: kernels()->quant_q8_k(x, dst, n); return;
    case SLM_T_Q8_1: slm_quantize_q8_1_scalar(x, dst, n); return;
    default: abort(); /* caller bug: not an activation type */
    }
}

float slm_vec_dot(uint32_t weight_type, const void *row, const void *xq, int64_t n) {
    const slm_kernels *k = kernels();
    if (weight_type >= SLM_TYPE_SLOTS || !k->dot[weight_type]) abort();
    check_len(weight_type, n);
    return k->dot[weight_type](row, xq, n);
}

float slm_vec_dot_scalar(uint32_t weight_type, const void *row, const void *xq, int64_t n) {
    pthread_once(&g_once, init_sets);
    const slm_kernels *k = &g_sets[SET_SCALAR];
    if (weight_type >= SLM_TYPE_SLOTS || !k->dot[weight_type]) abort();
    check_len(weight_type, n);
    return k->dot[weight_type](row, xq, n);
}

void slm_kernels_dot_rows(const slm_kernels *k, uint32_t type, const void *rows, size_t row_stride,
                          int nrows, const void *xq, int64_t n, float *out) {
    if (type >= SLM_TYPE_SLOTS || !k->dot[type] || nrows < 0) abort();
    check_len(type, n);
    if (nrows == 0) return;
    if (k->rows[type]) {
        k->rows[type](rows, row_stride, nrows, xq, n, out);
        return;
    }
    const uint8_t *r = rows;
    for (int i = 0; i < nrows; i++) out[i] = k->dot[type](r + (size_t)i * row_stride, xq, n);
}

void slm_vec_dot_rows(uint32_t weight_type, const void *rows, size_t row_stride, int nrows,
                      const void *xq, int64_t n, float *out) {
    slm_kernels_dot_rows(kernels(), weight_type, rows, row_stride, nrows, xq, n, out);
}

void slm_kernels_gemm_tile(const slm_kernels *k, uint32_t type, const void *rows, size_t row_stride,
                           int nrows, const void *xq, size_t xq_stride, int ntok, int64_t n, float *out,
                           size_t out_stride) {
    if (type >= SLM_TYPE_SLOTS || !k->dot[type] || nrows < 0 || ntok < 0) abort();
    check_len(type, n);
    if (nrows == 0 || ntok == 0) return;
    if (ntok < SLM_FEW_TOK && ntok > 1 && k->few[type]) {
        k->few[type](rows, row_stride, nrows, xq, xq_stride, ntok, n, out, out_stride);
        return;
    }
    if (ntok >= SLM_FEW_TOK && k->gemm[type]) {
        k->gemm[type](rows, row_stride, nrows, xq, xq_stride, ntok, n, out, out_stride);
        return;
    }
    const uint8_t *x = xq;
    for (int t = 0; t < ntok; t++)
        slm_kernels_dot_rows(k, type, rows, row_stride, nrows, x + (size_t)t * xq_stride, n,
                             out + (size_t)t * out_stride);
}

void slm_gemm_tile(uint32_t weight_type, const void *rows, size_t row_stride, int nrows, const void *xq,
                   size_t xq_stride, int ntok, int64_t n, float *out, size_t out_stride) {
    slm_kernels_gemm_tile(kernels(), weight_type, rows, row_stride, nrows, xq, xq_stride, ntok, n, out, out_stride);
}

void slm_gemm_tile_scalar(uint32_t weight_type, const void *rows, size_t row_stride, int nrows, const void *xq,
                          size_t xq_stride, int ntok, int64_t n, float *out, size_t out_stride) {
    pthread_once(&g_once, init_sets);
    const slm_kernels *k = &g_sets[SET_SCALAR];
    if (weight_type >= SLM_TYPE_SLOTS || !k->dot[weight_type] || nrows < 0 || ntok < 0) abort();
    check_len(weight_type, n);
    const uint8_t *w = rows, *x = xq;
    for (int t = 0; t < ntok; t++)
        for (int r = 0; r < nrows; r++)
            out[(size_t)t * out_stride + r] = k->dot[weight_type](w + (size_t)r * row_stride, x + (size_t)t * xq_stride, n);
}

size_t slm_packed_size(uint32_t weight_type, int64_t rows, int64_t cols) {
    const slm_kernels *k = kernels();
    if (weight_type >= SLM_TYPE_SLOTS || !k->packed[weight_type].bytes || rows <= 0 || cols <= 0) return 0;
    const slm_type_info *t = slm_type_get(weight_type);
    if (!t || cols % t->block_size) return 0;
    return k->packed[weight_type].bytes(rows, cols);
}

void slm_pack_groups(uint32_t weight_type, const void *rows, size_t row_stride, int64_t nrows, int64_t cols,
                     int64_t g0, int64_t g1, void *packed) {
    if (!slm_packed_size(weight_type, nrows, cols) || g0 < 0 || g1 * SLM_PACK_GROUP >= nrows + SLM_PACK_GROUP)
        abort();
    kernels()->packed[weight_type].pack(rows, row_stride, nrows, cols, g0, g1, packed);
}

void slm_packed_tile(uint32_t weight_type, const void *packed, int64_t cols, int64_t r0, int nrows,
                     const void *xq, size_t xq_stride, int ntok, float *out, size_t out_stride) {
    if (weight_type >= SLM_TYPE_SLOTS || !kernels()->packed[weight_type].tile || r0 % SLM_PACK_GROUP || nrows < 0 ||
        ntok < 0)
        abort();
    if (nrows == 0 || ntok == 0) return;
    kernels()->packed[weight_type].tile(packed, cols, r0, nrows, xq, xq_stride, ntok, out, out_stride);
}
