/* Quantizers (src/quant/quantize*.c, quant_fit.c) and the mix rules
 * (quant_mix.c).
 *
 * 1. Error bounds per type: quantize -> dequantize (through the reference
 *    dequantizer, which test_quant holds bit-exact to the `gguf` package) on
 *    Gaussian rows and on rows with outliers. The bounds follow from the bits
 *    per weight: a uniform quantizer with step D has rms error D/sqrt(12);
 *    with b bits over a block's range (about +-2.5 sigma for 32 Gaussian
 *    values) D ~ 5 sigma / (2^b - 1). The table states that estimate and the
 *    measured value; the bound sits about 20% above the measurement.
 * 2. Importance: with an importance vector that favours some columns, the
 *    error on those columns is lower than without it.
 * 3. Against an independent quantizer: on tests/fixtures/quantize/ (made by
 *    scripts/gen_quantize_fixtures.py with gguf.quants.quantize) our rms
 *    error with plain least squares is never above the package's, and with
 *    the default weights at most 3% above, for every type it can quantize
 *    and kind of row; f16 and bf16 are byte-identical.
 * 5. Values on a round-to-nearest grid come back exactly; the importance
 *    matrix reader on files the gguf package wrote; bad arguments.
 * 4. Mixes give the documented types (docs/QUANTIZATION.md). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imatrix/imatrix.h"
#include "quant/quant.h"
#include "quant/quantize.h"
#include "testlib.h"

/* ---- deterministic random numbers ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng_u64(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return rng_state;
}
static double rng_unit(void) { return ((double)(rng_u64() >> 11) + 0.5) / 9007199254740992.0; }
static float rng_gauss(void) {
    return (float)(sqrt(-2.0 * log(rng_unit())) * cos(6.283185307179586 * rng_unit()));
}

static uint64_t fnv1a64(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Quantizes rows (n each) with weights from slm_quant_weights(imp) (or
 * none when plain), dequantizes, and returns the per-element squared errors
 * in err2 (may be NULL) and the rms error. */
static double roundtrip(uint32_t type, const float *x, int rows, int n, const float *imp, bool plain, double *err2) {
    size_t rb = slm_row_bytes(type, n);
    uint8_t *q = malloc(rb);
    float *y = malloc(sizeof(float) * (size_t)n), *w = malloc(sizeof(float) * (size_t)n);
    double s = 0;
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t)r * n;
        slm_quant_weights(xr, imp, w, n);
        /* an importance vector takes the importance path, as in slm_quantize */
        CHECK(imp && !plain ? slm_quantize_row_imp(type, xr, imp, w, q, n)
                            : slm_quantize_row(type, xr, plain ? NULL : w, q, n));
        slm_dequantize_row(type, q, y, n);
        for (int i = 0; i < n; i++) {
            double e = (double)y[i] - xr[i];
            s += e * e;
            if (err2) err2[(size_t)r * n + i] = e * e;
        }
    }
    free(q), free(y), free(w);
    return sqrt(s / ((double)rows * n));
}

/* ---- 1. error bounds ---- */

typedef struct bound {
    uint32_t type;
    double bpw;          /* bits per weight */
    int qbits;           /* bits per element code (0: float types) */
    double gauss, outl;  /* max rms error / rms of the row: Gaussian rows, rows with outliers */
} bound;

/* Every quantized type must beat the uniform-quantizer estimate
 * D/sqrt(12), D = 5 sigma / (2^qbits - 1) on Gaussian rows (estimates:
 * 8 bits 5.7e-3, 6: 2.3e-2, 5: 4.7e-2, 4: 9.6e-2, 3: 0.21, 2: 0.48); the
 * columns below are the measured errors plus about 20%, so a regression in
 * the search shows up. */
static const bound BOUNDS[] = {
    { SLM_T_F32, 32, 0, 0, 0 },
    { SLM_T_F16, 16, 0, 2.5e-4, 2.5e-4 },   /* 2^-11 relative rounding / sqrt(3) ~ 2.8e-4 */
    { SLM_T_BF16, 16, 0, 2.0e-3, 2.0e-3 },  /* 2^-8 / sqrt(3) ~ 2.3e-3 */
    { SLM_T_Q8_0, 8.5, 8, 6.2e-3, 1.2e-2 },  /* measured 5.1e-3, 9.8e-3 */
    { SLM_T_Q6_K, 6.56, 6, 0.021, 0.034 },   /* 0.0174, 0.0284 */
    { SLM_T_Q5_1, 6.0, 5, 0.041, 0.054 },    /* 0.0346, 0.0454 */
    { SLM_T_Q5_K, 5.5, 5, 0.042, 0.056 },    /* 0.0352, 0.0466 */
    { SLM_T_Q5_0, 5.5, 5, 0.049, 0.097 },    /* 0.0412, 0.0810 */
    { SLM_T_Q4_1, 5.0, 4, 0.086, 0.114 },    /* 0.0722, 0.0961 */
    { SLM_T_Q4_K, 4.5, 4, 0.086, 0.116 },    /* 0.0723, 0.0974 */
    { SLM_T_Q4_0, 4.5, 4, 0.100, 0.178 },    /* 0.0843, 0.149 */
    { SLM_T_Q3_K, 3.44, 3, 0.179, 0.207 },   /* 0.150, 0.173 */
    { SLM_T_Q2_K, 2.63, 2, 0.334, 0.308 },   /* 0.279, 0.257 */
};

static void test_error_bounds(void) {
    enum { ROWS = 8, N = 2048 };
    float *g = malloc(sizeof(float) * ROWS * N), *o = malloc(sizeof(float) * ROWS * N);
    for (int i = 0; i < ROWS * N; i++) g[i] = rng_gauss();
    for (int i = 0; i < ROWS * N; i++) o[i] = rng_u64() % 97 == 0 ? 12.0f * rng_gauss() : rng_gauss();
    double rms_o = 0;
    for (int i = 0; i < ROWS * N; i++) rms_o += (double)o[i] * o[i];
    rms_o = sqrt(rms_o / (ROWS * N));
    double prev = 0;
    for (size_t k = 0; k < sizeof BOUNDS / sizeof BOUNDS[0]; k++) {
        const bound *b = &BOUNDS[k];
        double eg = roundtrip(b->type, g, ROWS, N, NULL, false, NULL);
        double eo = roundtrip(b->type, o, ROWS, N, NULL, false, NULL) / rms_o;
        printf("%-5s %5.2f bpw: rel rms error gaussian %.4g, outliers %.4g\n", slm_type_get(b->type)->name, b->bpw,
               eg, eo);
        if (b->type == SLM_T_F32) {
            CHECK(eg == 0 && eo == 0);
            continue;
        }
        if (b->qbits) {
            double est = 5.0 / ((1 << b->qbits) - 1) / sqrt(12.0);
            CHECKF(eg <= est, "%s gaussian %.4g above the uniform estimate %.4g", slm_type_get(b->type)->name, eg, est);
        }
        if (b->gauss > 0) CHECKF(eg <= b->gauss, "%s gaussian %.4g > %.4g", slm_type_get(b->type)->name, eg, b->gauss);
        if (b->outl > 0) CHECKF(eo <= b->outl, "%s outliers %.4g > %.4g", slm_type_get(b->type)->name, eo, b->outl);
        /* fewer bits, more error (the table is sorted by bits per weight) */
        CHECKF(eg >= prev * 0.97, "%s: %.4g is below the error of a type with more bits (%.4g)",
               slm_type_get(b->type)->name, eg, prev);
        prev = eg;
    }
    free(g), free(o);
}

/* ---- 2. importance ---- */

static void test_importance(void) {
    enum { ROWS = 4, N = 1024 };
    float *x = malloc(sizeof(float) * ROWS * N), imp[N];
    double *e_with = malloc(sizeof(double) * ROWS * N), *e_without = malloc(sizeof(double) * ROWS * N);
    for (int i = 0; i < ROWS * N; i++) x[i] = rng_gauss();
    /* every 8th column matters 100x more, as a few activation channels do */
    for (int i = 0; i < N; i++) imp[i] = i % 8 == 0 ? 100.0f : 1.0f;
    static const uint32_t types[] = { SLM_T_Q4_0, SLM_T_Q4_1, SLM_T_Q5_0, SLM_T_Q5_1, SLM_T_Q8_0, SLM_T_Q2_K,
                                      SLM_T_Q3_K, SLM_T_Q4_K, SLM_T_Q5_K, SLM_T_Q6_K };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        roundtrip(types[k], x, ROWS, N, imp, false, e_with);
        roundtrip(types[k], x, ROWS, N, NULL, false, e_without);
        double hw = 0, hwo = 0, tw = 0, two = 0;
        for (int i = 0; i < ROWS * N; i++) {
            if (i % 8 == 0) hw += e_with[i], hwo += e_without[i];
            tw += imp[i % N] * e_with[i], two += imp[i % N] * e_without[i];
        }
        printf("%-5s with importance: error on the important columns %.3g of that without; weighted total %.3g\n",
               slm_type_get(types[k])->name, sqrt(hw / hwo), sqrt(tw / two));
        CHECKF(hw < hwo * 0.9, "%s: importance did not lower the error on its columns (%.4g vs %.4g)",
               slm_type_get(types[k])->name, hw, hwo);
        CHECKF(tw < two, "%s: importance-weighted error not lower", slm_type_get(types[k])->name);
    }
    /* all-zero importance falls back to the plain search, not to zeros */
    float zero[N] = {0};
    double ez = roundtrip(SLM_T_Q4_K, x, 1, N, zero, false, NULL);
    CHECKF(ez < 0.1, "zero importance: rms error %.4g", ez);
    free(x), free(e_with), free(e_without);
}

/* An importance matrix often has a few columns hundreds of times more active
 * than the others (Gemma 3 270M's has one at 600x the median). With it the
 * search may clip a block's extremes to put such a column's value on a level
 * (slm_quantize_row_imp); on rows like that the importance-weighted error
 * must come out well below the no-clip search's with the same weights. */
static void test_importance_clip(void) {
    enum { ROWS = 16, N = 1024 };
    float *x = malloc(sizeof(float) * ROWS * N), *w = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N),
          imp[N];
    uint8_t *q = malloc(slm_row_bytes(SLM_T_Q8_0, N));
    for (int i = 0; i < ROWS * N; i++) x[i] = 0.05f * rng_gauss();
    for (int i = 0; i < N; i++) imp[i] = i % 32 == 5 ? 400.0f : 0.5f + (float)rng_unit();
    static const uint32_t types[] = { SLM_T_Q4_0, SLM_T_Q4_1, SLM_T_Q5_0, SLM_T_Q5_1, SLM_T_Q2_K,
                                      SLM_T_Q3_K, SLM_T_Q4_K, SLM_T_Q5_K, SLM_T_Q6_K };
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        double e[2] = {0};
        for (int clip = 0; clip < 2; clip++)
            for (int r = 0; r < ROWS; r++) {
                const float *xr = x + (size_t)r * N;
                slm_quant_weights(xr, imp, w, N);
                CHECK(clip ? slm_quantize_row_imp(types[k], xr, imp, w, q, N) : slm_quantize_row(types[k], xr, w, q, N));
                slm_dequantize_row(types[k], q, y, N);
                for (int i = 0; i < N; i++) e[clip] += imp[i] * ((double)y[i] - xr[i]) * ((double)y[i] - xr[i]);
            }
        printf("%-5s peaked importance: weighted error with clipping %.3g of that without\n",
               slm_type_get(types[k])->name, e[1] / e[0]);
        /* the affine types gain less: their min already lets one value sit exactly */
        bool affine = types[k] == SLM_T_Q4_1 || types[k] == SLM_T_Q5_1 || types[k] == SLM_T_Q2_K ||
                      types[k] == SLM_T_Q4_K || types[k] == SLM_T_Q5_K;
        CHECKF(e[1] < (affine ? 0.98 : 0.9) * e[0], "%s: clipping did not lower the weighted error (%.4g vs %.4g)",
               slm_type_get(types[k])->name, e[1], e[0]);
    }
    free(x), free(w), free(y), free(q);
}

/* ---- 3. against gguf.quants ---- */

static void test_vs_gguf(void) {
    size_t nbytes = 0;
    float *x = (float *)test_read_file("tests/fixtures/quantize/input.f32", &nbytes);
    char *ref = test_read_file("tests/fixtures/quantize/ref.txt", NULL);
    CHECK(x && ref);
    if (!x || !ref) { free(x), free(ref); return; }
    int rows = 0, cols = 0;
    char *line = strstr(ref, "\nshape ");
    CHECK(line && sscanf(line, "\nshape %d %d", &rows, &cols) == 2);
    CHECK((size_t)rows * cols * sizeof(float) == nbytes && rows % 4 == 0);
    if ((size_t)rows * cols * sizeof(float) != nbytes || rows % 4) { free(x), free(ref); return; }
    int n_types = 0;
    for (char *p = strtok(ref, "\n"); p; p = strtok(NULL, "\n")) {
        char name[16];
        unsigned long long hash;
        double want[4];
        if (sscanf(p, "%15s %llx %lf %lf %lf %lf", name, &hash, &want[0], &want[1], &want[2], &want[3]) != 6) continue;
        uint32_t type = UINT32_MAX;
        for (uint32_t t = 0; t < 32; t++)
            if (slm_type_get(t) && strcmp(slm_type_get(t)->name, name) == 0) type = t;
        CHECKF(type != UINT32_MAX, "unknown type %s in ref.txt", name);
        if (type == UINT32_MAX) continue;
        n_types++;
        for (int plain = 1; plain >= 0; plain--) {
        size_t rb = slm_row_bytes(type, cols);
        uint8_t *q = malloc(rb * rows);
        float *w = malloc(sizeof(float) * cols), *y = malloc(sizeof(float) * cols);
        double e2[4] = {0};
        for (int r = 0; r < rows; r++) {
            slm_quant_weights(x + (size_t)r * cols, NULL, w, cols);
            CHECK(slm_quantize_row(type, x + (size_t)r * cols, plain ? NULL : w, q + rb * r, cols));
            slm_dequantize_row(type, q + rb * r, y, cols);
            for (int i = 0; i < cols; i++) {
                double e = (double)y[i] - x[(size_t)r * cols + i];
                e2[r % 4] += e * e;
            }
        }
        if (type == SLM_T_F16 || type == SLM_T_BF16)
            CHECKF(fnv1a64(q, rb * rows) == hash, "%s bytes differ from the gguf package's", name);
        for (int k = 0; k < 4; k++) {
            double got = sqrt(e2[k] / ((double)rows / 4 * cols));
            printf("vs gguf %-5s %-8s rows of kind %d: ours %.4e, gguf %.4e (%+.1f%%)\n", name,
                   plain ? "plain" : "weighted", k, got, want[k], 100.0 * (got / want[k] - 1));
            /* plain least squares minimises exactly this error: never worse;
             * the default weights (slm_quant_weights) trade a little of it
             * for accuracy on large values */
            double margin = plain ? 1.0 + 1e-9 : 1.03;
            CHECKF(got <= want[k] * margin, "%s %s kind %d: %.4e worse than gguf's %.4e", name,
                   plain ? "plain" : "weighted", k, got, want[k]);
        }
        free(q), free(w), free(y);
        }
    }
    CHECK(n_types == 7);
    free(x), free(ref);
}

/* ---- 4. mixes ---- */

static uint32_t pick(const char *mix, const char *name, uint64_t ne0, int n_dims, int n_layer, int gqa, bool has_output) {
    const slm_mix *m = slm_mix_find(mix);
    CHECKF(m != NULL, "mix %s", mix);
    if (!m) return UINT32_MAX;
    slm_tensor_role r = { name, n_dims, { ne0, 256, 1, 1 }, n_layer, gqa, has_output };
    return slm_mix_choose(m, &r);
}

#define EXPECT_TYPE(want, ...) do { uint32_t got_ = pick(__VA_ARGS__); \
    CHECKF(got_ == (want), "%s: got %s", #__VA_ARGS__, slm_type_get(got_) ? slm_type_get(got_)->name : "?"); } while (0)

static void test_mixes(void) {
    static const char *const names[] = { "q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_0", "q4_1", "q5_0", "q5_1",
                                         "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k", "q8_0", "f16", "bf16", "f32" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) CHECKF(slm_mix_find(names[i]), "%s", names[i]);
    CHECK(slm_mix_find("Q4_K_M") == slm_mix_find("q4_k_m"));
    CHECK(slm_mix_find("q4_k_x") == NULL && slm_mix_find("") == NULL);
    int n = 0;
    while (slm_mix_at(n)) n++;
    CHECK(n == 17);
    CHECK(slm_mix_find("q4_k_m")->file_type == 15 && slm_mix_find("q8_0")->file_type == 7);

    /* norms and other vectors stay F32 in every mix */
    EXPECT_TYPE(SLM_T_F32, "q4_k_m", "blk.0.attn_norm.weight", 2048, 1, 16, 1, true);
    EXPECT_TYPE(SLM_T_F32, "q8_0", "output_norm.weight", 2048, 1, 16, 1, true);
    EXPECT_TYPE(SLM_T_F32, "f16", "blk.3.attn_q_norm.weight", 256, 1, 16, 1, true);
    /* float mixes */
    EXPECT_TYPE(SLM_T_F16, "f16", "blk.0.attn_q.weight", 640, 2, 18, 4, false);
    EXPECT_TYPE(SLM_T_BF16, "bf16", "token_embd.weight", 640, 2, 18, 4, false);
    /* a 2048-wide model with its own head, no GQA, 16 layers */
    EXPECT_TYPE(SLM_T_Q6_K, "q4_k_m", "output.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q4_K, "q4_k_m", "token_embd.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q6_K, "q4_0", "output.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q8_0, "q8_0", "output.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q4_K, "q4_k_m", "blk.5.attn_q.weight", 2048, 2, 16, 1, true);
    /* q4_k_m: more bits on layers 0-1, 14-15 and every third between (4, 7, 10, 13) */
    EXPECT_TYPE(SLM_T_Q6_K, "q4_k_m", "blk.0.attn_v.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q6_K, "q4_k_m", "blk.15.ffn_down.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q6_K, "q4_k_m", "blk.4.ffn_down.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q4_K, "q4_k_m", "blk.5.ffn_down.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q4_K, "q4_k_m", "blk.3.attn_v.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q4_K, "q4_k_m", "blk.3.attn_output.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q5_K, "q4_k_s", "blk.0.ffn_down.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q4_K, "q4_k_s", "blk.2.ffn_down.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q5_K, "q4_k_s", "blk.3.attn_v.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q4_K, "q4_k_s", "blk.4.attn_v.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q6_K, "q5_k_m", "blk.1.attn_v.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q5_K, "q5_k_m", "blk.5.ffn_down.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q5_K, "q5_k_s", "blk.5.ffn_down.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q2_K, "q2_k", "blk.5.ffn_up.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q4_K, "q2_k", "blk.5.attn_v.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q3_K, "q2_k", "blk.5.ffn_down.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q3_K, "q2_k", "blk.5.attn_output.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q3_K, "q3_k_s", "blk.5.attn_v.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q5_K, "q3_k_m", "blk.1.attn_v.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q4_K, "q3_k_m", "blk.2.attn_v.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q5_K, "q3_k_m", "blk.0.ffn_down.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q5_K, "q3_k_m", "blk.1.ffn_down.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q4_K, "q3_k_m", "blk.2.ffn_down.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q4_K, "q3_k_m", "blk.1.attn_output.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q5_K, "q3_k_l", "blk.9.ffn_down.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q3_K, "q3_k_l", "blk.9.ffn_gate.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q6_K, "q6_k", "blk.9.ffn_gate.weight", 2048, 2, 16, 1, true);
    EXPECT_TYPE(SLM_T_Q5_1, "q5_1", "blk.9.attn_v.weight", 2048, 2, 16, 1, true);
    /* grouped-query attention: 4 query heads per KV head lift q3_k_s's attn_v,
     * 8 or more lift every Q3_K/Q4_K attn_v to Q5_K */
    EXPECT_TYPE(SLM_T_Q4_K, "q4_k_m", "blk.3.attn_v.weight", 2048, 2, 16, 4, true);
    EXPECT_TYPE(SLM_T_Q5_K, "q4_k_m", "blk.3.attn_v.weight", 2048, 2, 16, 8, true);
    EXPECT_TYPE(SLM_T_Q6_K, "q4_k_m", "blk.4.attn_v.weight", 2048, 2, 16, 8, true);
    EXPECT_TYPE(SLM_T_Q4_K, "q4_k_s", "blk.9.attn_v.weight", 2048, 2, 16, 4, true);
    EXPECT_TYPE(SLM_T_Q5_K, "q4_k_s", "blk.9.attn_v.weight", 2048, 2, 16, 8, true);
    EXPECT_TYPE(SLM_T_Q4_K, "q3_k_s", "blk.9.attn_v.weight", 2048, 2, 16, 4, true);
    EXPECT_TYPE(SLM_T_Q5_K, "q3_k_s", "blk.9.attn_v.weight", 2048, 2, 16, 8, true);
    EXPECT_TYPE(SLM_T_Q5_K, "q5_k_s", "blk.9.attn_v.weight", 2048, 2, 16, 8, true);
    /* Gemma 3 270M: 640 columns (not a multiple of 256), tied head, GQA 4:
     * the K types fall back to 32-blocks as documented */
    EXPECT_TYPE(SLM_T_Q8_0, "q4_k_m", "token_embd.weight", 640, 2, 18, 4, false);
    EXPECT_TYPE(SLM_T_Q5_0, "q4_k_m", "blk.0.attn_q.weight", 640, 2, 18, 4, false);
    EXPECT_TYPE(SLM_T_Q8_0, "q4_k_m", "blk.7.attn_v.weight", 640, 2, 18, 4, false);
    EXPECT_TYPE(SLM_T_Q5_0, "q4_k_m", "blk.3.attn_v.weight", 640, 2, 18, 4, false);
    EXPECT_TYPE(SLM_T_Q4_K, "q4_k_m", "blk.7.attn_output.weight", 1024, 2, 18, 4, false);
    EXPECT_TYPE(SLM_T_Q6_K, "q4_k_m", "blk.0.ffn_down.weight", 2048, 2, 18, 4, false);
    EXPECT_TYPE(SLM_T_Q4_K, "q4_k_m", "blk.3.ffn_down.weight", 2048, 2, 18, 4, false);
    EXPECT_TYPE(SLM_T_Q4_0, "q2_k", "blk.3.ffn_up.weight", 640, 2, 18, 4, false);
    EXPECT_TYPE(SLM_T_Q4_0, "q3_k_m", "blk.3.ffn_up.weight", 640, 2, 18, 4, false);
    EXPECT_TYPE(SLM_T_Q5_1, "q5_k_s", "blk.3.ffn_up.weight", 640, 2, 18, 4, false);
    EXPECT_TYPE(SLM_T_Q8_0, "q6_k", "blk.3.ffn_up.weight", 640, 2, 18, 4, false);
    EXPECT_TYPE(SLM_T_Q8_0, "q5_k_m", "token_embd.weight", 640, 2, 18, 4, false);
    /* rows that are not even a multiple of 32 stay F16 */
    EXPECT_TYPE(SLM_T_F16, "q4_0", "blk.0.attn_q.weight", 100, 2, 18, 4, false);
    EXPECT_TYPE(SLM_T_F16, "q4_k_m", "blk.0.attn_q.weight", 100, 2, 18, 4, false);
    CHECK(slm_type_fallback(SLM_T_Q4_K, 512) == SLM_T_Q4_K);
    CHECK(slm_type_fallback(SLM_T_Q3_K, 640) == SLM_T_Q4_0);
}

/* Values already on a classic round-to-nearest grid (the scale of ggml's
 * reference quantizers and the gguf package's) come back exactly: requantizing
 * a dequantized model to its own types loses nothing. */
static void test_grid_exact(void) {
    static const struct { uint32_t type; int qmin, qmax; bool affine; } g[] = {
        { SLM_T_Q8_0, -127, 127, false }, { SLM_T_Q4_0, -8, 7, false }, { SLM_T_Q5_0, -16, 15, false },
        { SLM_T_Q4_1, 0, 15, true }, { SLM_T_Q5_1, 0, 31, true },
    };
    for (size_t k = 0; k < sizeof g / sizeof g[0]; k++) {
        float x[2048], y[2048], w[2048];
        uint8_t q[2048 / 32 * 36];
        for (int b = 0; b < 64; b++) {
            float d = slm_f16_to_f32(slm_f32_to_f16(0.001f + 0.01f * (float)b));
            float m = g[k].affine ? slm_f16_to_f32(slm_f32_to_f16(-0.05f * (float)b)) : 0.0f;
            for (int i = 0; i < 32; i++) {
                int l = g[k].qmin + (int)(rng_u64() % (uint64_t)(g[k].qmax - g[k].qmin + 1));
                /* odd blocks: one outlier, the rest within an eighth of the range
                 * (embedding rows look like this; the x^2-weighted fit must still
                 * tell the exact scale from its neighbours) */
                if (b % 2 && !g[k].affine) l /= 8;
                if (i == 3) l = g[k].qmin;  /* the extremes the reference scale comes from */
                if (i == 9 && g[k].affine) l = g[k].qmax;
                x[32 * b + i] = d * (float)l + m;
            }
        }
        slm_quant_weights(x, NULL, w, 2048);
        CHECK(slm_quantize_row(g[k].type, x, w, q, 2048));
        slm_dequantize_row(g[k].type, q, y, 2048);
        int diff = 0;
        for (int i = 0; i < 2048; i++) diff += y[i] != x[i];
        CHECKF(diff == 0, "%s: %d of 2048 grid values not reproduced", slm_type_get(g[k].type)->name, diff);
    }
}

/* Importance matrices written by the gguf package in llama.cpp's layout
 * (the fuzz seeds): in_sum2 = 1, 2, 3, ... and counts = 4 per matrix. */
static void test_imatrix_files(void) {
    slm_imatrix *im = NULL;
    CHECK(slm_imatrix_load("tests/fuzz/corpus/imatrix/small.gguf", &im) == SLM_OK);
    if (im) {
        int64_t nc = 0, nm = 0;
        CHECK(slm_imatrix_n_entries(im) == 2);
        CHECK(slm_imatrix_dataset(im) && strcmp(slm_imatrix_dataset(im), "seed.txt") == 0);
        CHECK(slm_imatrix_chunk_count(im) == 1);
        const float *v = slm_imatrix_find(im, "blk.0.attn_q.weight", &nc, &nm);
        CHECK(v && nc == 8 && nm == 1 && v[0] == 0.25f && v[7] == 2.0f);
        v = slm_imatrix_find(im, "blk.0.ffn_down.weight", &nc, &nm);
        CHECK(v && nc == 4 && nm == 1 && v[3] == 1.0f);
        CHECK(slm_imatrix_find(im, "blk.0.attn_k.weight", &nc, &nm) == NULL);
        slm_imatrix_free(im);
    }
    CHECK(slm_imatrix_load("tests/fuzz/corpus/imatrix/experts.gguf", &im) == SLM_OK);
    if (im) {
        int64_t nc = 0, nm = 0;
        const float *v = slm_imatrix_find(im, "blk.0.ffn_up_exps.weight", &nc, &nm);
        CHECK(v && nc == 4 && nm == 3 && v[4] == 1.25f && v[11] == 3.0f);
        slm_imatrix_free(im);
    }
    /* a model file is not an importance matrix */
    CHECK(slm_imatrix_load("tests/fixtures/gguf/all_types.gguf", &im) != SLM_OK && im == NULL);
    CHECK(strstr(slm_last_error(), "unexpected tensor") != NULL);
    CHECK(slm_imatrix_load("tests/fixtures/quantize/no-such.gguf", &im) == SLM_ERR_IO);
    CHECK(strstr(slm_last_error(), "imatrix: ") == slm_last_error());
}

static void test_bad_args(void) {
    float x[64] = {0};
    uint8_t q[256];
    CHECK(!slm_quantize_row(SLM_T_Q4_0, x, NULL, q, 33));
    CHECK(!slm_quantize_row(SLM_T_Q4_K, x, NULL, q, 64));
    CHECK(!slm_quantize_row(SLM_T_Q8_K, x, NULL, q, 256));
    CHECK(!slm_quantize_row(99, x, NULL, q, 32));
    float imp[64], w[64];
    for (int i = 0; i < 64; i++) imp[i] = 1.0f;
    CHECK(!slm_quantize_row_imp(SLM_T_Q4_0, x, NULL, w, q, 32));
    CHECK(!slm_quantize_row_imp(SLM_T_Q4_0, x, imp, NULL, q, 32));
    CHECK(!slm_quantize_row_imp(SLM_T_Q4_K, x, imp, w, q, 64));
    CHECK(!slm_quantize_row_imp(99, x, imp, w, q, 32));
    CHECK(slm_quantize_row_imp(SLM_T_Q4_0, x, imp, w, q, 32));
    CHECK(!slm_can_quantize(SLM_T_Q8_1) && slm_can_quantize(SLM_T_Q3_K));
    /* an all-zero block dequantizes to zeros */
    CHECK(slm_quantize_row(SLM_T_Q4_1, x, NULL, q, 32));
    float y[32];
    slm_dequantize_row(SLM_T_Q4_1, q, y, 32);
    bool zero = true;
    for (int i = 0; i < 32; i++) zero &= y[i] == 0;
    CHECK(zero);
}

int main(void) {
    test_error_bounds();
    test_importance();
    test_importance_clip();
    test_vs_gguf();
    test_mixes();
    test_grid_exact();
    test_imatrix_files();
    test_bad_args();
    return test_finish();
}
