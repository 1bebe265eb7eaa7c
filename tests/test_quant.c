/* src/quant against independent references:
 *  (a) slm_dequantize_row against golden values from the `gguf` Python
 *      package (tests/fixtures/quant/<type>.bin, scripts/gen_quant_fixtures.py),
 *      bit for bit: our formulas do the same f32 operations in the same order
 *      as its numpy dequantizers ((d*sc)*q - dmin*m ...), so nothing may differ;
 *  (b) every dot kernel (scalar, and each SIMD set this CPU runs) against the
 *      exact product of the dequantized operands and against slm_dot_ref, with
 *      bounds derived below, on many lengths, odd block counts and unaligned
 *      buffers; SIMD activation quantization byte-identical to the scalar one;
 *  (c) f16 / bf16 conversions: numpy's rounding of 4096 values (ties,
 *      subnormals, overflow), and all 65536 halves against a formula;
 *  (d) the type table and slm_row_bytes on bad lengths. */
#include "quant/quant.h"
#include "quant/quant_internal.h"
#include "testlib.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const uint32_t WEIGHT_TYPES[] = {
    SLM_T_F32, SLM_T_F16, SLM_T_BF16, SLM_T_Q4_0, SLM_T_Q4_1, SLM_T_Q5_0, SLM_T_Q5_1,
    SLM_T_Q8_0, SLM_T_Q2_K, SLM_T_Q3_K, SLM_T_Q4_K, SLM_T_Q5_K, SLM_T_Q6_K,
};
#define N_WEIGHT_TYPES (sizeof WEIGHT_TYPES / sizeof WEIGHT_TYPES[0])
static const char *SIMD_SETS[] = { "avx2", "avx512", "neon" };
#define U32 (1.0 / 16777216.0) /* f32 unit roundoff 2^-24 */

/* ---- deterministic random numbers ---- */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double unif(void) { return (double)(rnd() >> 11) * 0x1p-53; }
static float gauss(void) {
    double u = unif() + 1e-300, v = unif();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* ---- (d) table and row sizes ---- */
static void test_table(void) {
    CHECK(slm_row_bytes(SLM_T_Q4_0, 31) == 0);
    CHECK(slm_row_bytes(SLM_T_Q4_0, 0) == 0);
    CHECK(slm_row_bytes(SLM_T_Q4_0, -32) == 0);
    CHECK(slm_row_bytes(SLM_T_Q4_0, 64) == 36);
    CHECK(slm_row_bytes(SLM_T_Q4_K, 640) == 0);
    CHECK(slm_row_bytes(SLM_T_Q4_K, 512) == 288);
    CHECK(slm_row_bytes(SLM_T_Q8_K, 255) == 0);
    CHECK(slm_row_bytes(SLM_T_F32, 3) == 12);
    CHECK(slm_row_bytes(SLM_T_BF16, 5) == 10);
    CHECK(slm_row_bytes(4, 32) == 0);
    CHECK(slm_row_bytes(99, 32) == 0);
    CHECK(slm_row_bytes(UINT32_MAX, 32) == 0);
    CHECK(slm_row_bytes(SLM_T_F32, INT64_MAX) == 0 || sizeof(size_t) > 8); /* overflow */
    CHECK(slm_type_get(4) == NULL && slm_type_get(16) == NULL && slm_type_get(31) == NULL);
    CHECK(slm_type_get(1000) == NULL);
    static const struct { uint32_t t; const char *name; int bs; size_t bb; bool w; } want[] = {
        { SLM_T_F32, "f32", 1, 4, true }, { SLM_T_F16, "f16", 1, 2, true },
        { SLM_T_BF16, "bf16", 1, 2, true }, { SLM_T_Q4_0, "q4_0", 32, 18, true },
        { SLM_T_Q4_1, "q4_1", 32, 20, true }, { SLM_T_Q5_0, "q5_0", 32, 22, true },
        { SLM_T_Q5_1, "q5_1", 32, 24, true }, { SLM_T_Q8_0, "q8_0", 32, 34, true },
        { SLM_T_Q8_1, "q8_1", 32, 36, false }, { SLM_T_Q2_K, "q2_K", 256, 84, true },
        { SLM_T_Q3_K, "q3_K", 256, 110, true }, { SLM_T_Q4_K, "q4_K", 256, 144, true },
        { SLM_T_Q5_K, "q5_K", 256, 176, true }, { SLM_T_Q6_K, "q6_K", 256, 210, true },
        { SLM_T_Q8_K, "q8_K", 256, 292, false },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const slm_type_info *t = slm_type_get(want[i].t);
        CHECKF(t && strcmp(t->name, want[i].name) == 0 && t->block_size == want[i].bs &&
               t->block_bytes == want[i].bb && t->is_weight_type == want[i].w, "type %u", want[i].t);
    }
    CHECK(slm_vec_type(SLM_T_F16) == SLM_T_F32 && slm_vec_type(SLM_T_BF16) == SLM_T_F32);
    CHECK(slm_vec_type(SLM_T_Q5_0) == SLM_T_Q8_0 && slm_vec_type(SLM_T_Q8_0) == SLM_T_Q8_0);
    CHECK(slm_vec_type(SLM_T_Q4_K) == SLM_T_Q8_K && slm_vec_type(SLM_T_Q6_K) == SLM_T_Q8_K);
    const char *kn = slm_kernels_name();
    CHECK(kn && (!strcmp(kn, "scalar") || !strcmp(kn, "avx2") || !strcmp(kn, "avx512") || !strcmp(kn, "neon")));
    printf("kernels: %s\n", kn);
}

/* ---- (a) golden dequantization ---- */
static void test_fixtures(void) {
    static const uint32_t types[] = {
        SLM_T_F32, SLM_T_F16, SLM_T_BF16, SLM_T_Q4_0, SLM_T_Q4_1, SLM_T_Q5_0, SLM_T_Q5_1,
        SLM_T_Q8_0, SLM_T_Q2_K, SLM_T_Q3_K, SLM_T_Q4_K, SLM_T_Q5_K, SLM_T_Q6_K,
    };
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const slm_type_info *t = slm_type_get(types[ti]);
        char path[256];
        snprintf(path, sizeof path, "tests/fixtures/quant/%s.bin", t->name);
        size_t len = 0;
        char *buf = test_read_file(path, &len);
        CHECKF(buf != NULL, "missing %s (run scripts/gen_quant_fixtures.py)", path);
        if (!buf) continue;
        size_t per_block = t->block_bytes + (size_t)t->block_size * 4;
        CHECKF(len % per_block == 0 && len > 0, "%s: size %zu", path, len);
        size_t nb = len / per_block;
        int64_t n = (int64_t)nb * t->block_size;
        size_t raw_bytes = nb * t->block_bytes;
        /* copy the blocks to an odd address: kernels must not assume alignment */
        uint8_t *raw = malloc(raw_bytes + 1);
        memcpy(raw + 1, buf, raw_bytes);
        float *ref = malloc((size_t)n * 4), *got = malloc((size_t)n * 4);
        memcpy(ref, buf + raw_bytes, (size_t)n * 4);
        CHECK(slm_row_bytes(types[ti], n) == raw_bytes);
        slm_dequantize_row(types[ti], raw + 1, got, n);
        int64_t bad = 0, first = -1;
        for (int64_t i = 0; i < n; i++)
            if (memcmp(&ref[i], &got[i], 4) != 0) { if (first < 0) first = i; bad++; }
        CHECKF(bad == 0, "%s: %lld of %lld values differ, first at %lld: got %.9g want %.9g",
               t->name, (long long)bad, (long long)n, (long long)first,
               first >= 0 ? got[first] : 0.0, first >= 0 ? ref[first] : 0.0);
        /* slm_dot_ref is the double dot of those values */
        float *x = malloc((size_t)n * 4);
        double want = 0;
        for (int64_t i = 0; i < n; i++) { x[i] = gauss(); want += isfinite(ref[i]) ? (double)ref[i] * x[i] : 0; }
        if (types[ti] != SLM_T_F32 && types[ti] != SLM_T_F16 && types[ti] != SLM_T_BF16) {
            double d = slm_dot_ref(types[ti], raw + 1, x, n);
            CHECKF(d == want, "%s: dot_ref %.17g want %.17g", t->name, d, want);
        }
        free(x); free(raw); free(ref); free(got); free(buf);
    }
}

/* ---- (c) conversions ---- */
static void test_conversions(void) {
    /* every half against (1024 + m) * 2^(e - 25), m * 2^-24, inf, nan */
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t e = (h >> 10) & 31, m = h & 1023;
        double want = e == 0 ? ldexp((double)m, -24) : ldexp(1024.0 + m, (int)e - 25);
        if (h & 0x8000) want = -want;
        float f = slm_f16_to_f32((uint16_t)h);
        if (e == 31 && m != 0) {
            CHECKF(isnan(f), "h=%04x", h);
            uint16_t back = slm_f32_to_f16(f);
            CHECKF((back & 0x7c00) == 0x7c00 && (back & 0x3ff) != 0, "nan %04x -> %04x", h, back);
            continue;
        }
        if (e == 31) want = (h & 0x8000) ? -INFINITY : INFINITY;
        if (!(f == (float)want && !!signbit(f) == !!signbit(want))) {
            CHECKF(0, "f16 %04x -> %.9g want %.9g", h, f, want);
        }
        if (slm_f32_to_f16(f) != h) CHECKF(0, "f16 round trip %04x -> %04x", h, slm_f32_to_f16(f));
        uint32_t bits = h << 16;
        float bf;
        memcpy(&bf, &bits, 4);
        float bf_got = slm_bf16_to_f32((uint16_t)h);
        if (memcmp(&bf, &bf_got, 4) != 0) CHECKF(0, "bf16 %04x", h);
        if (!isnan(bf) && slm_f32_to_bf16(bf) != h) CHECKF(0, "bf16 round trip %04x", h);
    }
    CHECK(slm_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(slm_f16_to_f32(0x03ff) == 1023 * 0x1p-24f);
    CHECK(slm_f16_to_f32(0x0400) == 0x1p-14f);
    CHECK(slm_f16_to_f32(0x7bff) == 65504.f);
    CHECK(isinf(slm_f16_to_f32(0x7c00)) && slm_f16_to_f32(0xfc00) < 0);
    CHECK(isnan(slm_f16_to_f32(0x7e00)) && isnan(slm_f16_to_f32(0xfc01)));
    CHECK(slm_f32_to_f16(NAN) != 0x7c00 && (slm_f32_to_f16(NAN) & 0x7c00) == 0x7c00);
    CHECK(isnan(slm_bf16_to_f32(slm_f32_to_bf16(NAN))));
    CHECK(slm_f32_to_f16(1e-8f) == 0 && slm_f32_to_f16(-1e-8f) == 0x8000);

    /* numpy float16 / gguf bf16 rounding of tricky values */
    size_t len = 0;
    char *buf = test_read_file("tests/fixtures/quant/conv.bin", &len);
    CHECKF(buf && len % 8 == 0, "tests/fixtures/quant/conv.bin");
    if (!buf) return;
    size_t n = len / 8;
    int bad16 = 0, badbf = 0;
    for (size_t i = 0; i < n; i++) {
        float x;
        uint16_t w16, wbf;
        memcpy(&x, buf + 4 * i, 4);
        memcpy(&w16, buf + 4 * n + 2 * i, 2);
        memcpy(&wbf, buf + 6 * n + 2 * i, 2);
        if (slm_f32_to_f16(x) != w16 && bad16++ < 5)
            fprintf(stderr, "f32_to_f16(%.9g) = %04x, numpy %04x\n", x, slm_f32_to_f16(x), w16);
        if (slm_f32_to_bf16(x) != wbf && badbf++ < 5)
            fprintf(stderr, "f32_to_bf16(%.9g) = %04x, gguf %04x\n", x, slm_f32_to_bf16(x), wbf);
    }
    CHECKF(bad16 == 0, "%d f16 conversions differ from numpy", bad16);
    CHECKF(badbf == 0, "%d bf16 conversions differ from gguf", badbf);
    free(buf);
}

/* ---- (b) dot products ---- */

/* A random row of `type`: random bytes with sane f16 scales (as the fixtures),
 * or random values for the float types. `mode` 1 makes every scale zero in
 * some blocks. */
static void random_row(uint32_t type, uint8_t *dst, int64_t n) {
    const slm_type_info *t = slm_type_get(type);
    size_t bytes = slm_row_bytes(type, n);
    if (type == SLM_T_F32 || type == SLM_T_F16 || type == SLM_T_BF16) {
        for (int64_t i = 0; i < n; i++) {
            float v = gauss();
            if (type == SLM_T_F32) memcpy(dst + 4 * i, &v, 4);
            else {
                uint16_t h = type == SLM_T_F16 ? slm_f32_to_f16(v) : slm_f32_to_bf16(v);
                memcpy(dst + 2 * i, &h, 2);
            }
        }
        return;
    }
    for (size_t i = 0; i < bytes; i++) dst[i] = (uint8_t)rnd();
    static const struct { uint32_t t; int off[2]; } f16s[] = {
        { SLM_T_Q4_0, { 0, -1 } }, { SLM_T_Q4_1, { 0, 2 } }, { SLM_T_Q5_0, { 0, -1 } },
        { SLM_T_Q5_1, { 0, 2 } }, { SLM_T_Q8_0, { 0, -1 } }, { SLM_T_Q2_K, { 80, 82 } },
        { SLM_T_Q3_K, { 108, -1 } }, { SLM_T_Q4_K, { 0, 2 } }, { SLM_T_Q5_K, { 0, 2 } },
        { SLM_T_Q6_K, { 208, -1 } },
    };
    for (size_t k = 0; k < sizeof f16s / sizeof f16s[0]; k++) {
        if (f16s[k].t != type) continue;
        for (size_t b = 0; b < bytes / t->block_bytes; b++)
            for (int f = 0; f < 2; f++) {
                if (f16s[k].off[f] < 0) continue;
                float v = (float)(0.001 + unif() * 0.05) * (rnd() & 1 ? 1.f : -1.f);
                if (rnd() % 17 == 0) v = 0.f;
                uint16_t h = slm_f32_to_f16(v);
                memcpy(dst + b * t->block_bytes + f16s[k].off[f], &h, 2);
            }
    }
}

/* Activations with block-to-block changes of scale, zero blocks and outliers. */
static void random_act(float *x, int64_t n) {
    float scale = 1.f;
    for (int64_t i = 0; i < n; i++) {
        if (i % 32 == 0) {
            uint64_t r = rnd() % 20;
            /* 1e-33 / 1e-41: blocks below SLM_ACT_TINY (zeros), 1e-28 tiny but kept */
            scale = r == 0 ? 0.f : r == 1 ? 1e-3f : r == 2 ? 50.f : r == 3 ? 1e-33f : r == 4 ? 1e-41f
                  : r == 5 ? 1e-28f : 1.f;
        }
        x[i] = gauss() * scale;
        if (rnd() % 97 == 0) x[i] *= 20.f;
    }
}

typedef struct {
    double exact; /* sum of dequantized w * dequantized xq, in double */
    double mag;   /* sum (|a_i| + |m_i|) |xq_i|, w_i = a_i + m_i (scale and min parts) */
    double qerr;  /* bound on |sum w_i (x_i - xq_i)| from activation rounding */
    double mag_x; /* sum |w_i| |x_i| */
    int64_t nblocks;
} dot_facts;

/* Offset of the f16 min field (m / dmin) of a block, or -1. */
static int min_field(uint32_t type) {
    switch (type) {
    case SLM_T_Q4_1: case SLM_T_Q5_1: case SLM_T_Q4_K: case SLM_T_Q5_K: return 2;
    case SLM_T_Q2_K: return Q2_K_D + 2;
    default: return -1;
    }
}

/* What the test knows about w . x without trusting any kernel. */
static dot_facts facts(uint32_t type, const uint8_t *w, const float *x, const uint8_t *xq, int64_t n) {
    uint32_t vt = slm_vec_type(type);
    const slm_type_info *ti = slm_type_get(type), *vi = slm_type_get(vt);
    size_t wb = slm_row_bytes(type, n);
    float *wd = malloc((size_t)n * 4), *ad = malloc((size_t)n * 4), *xd = malloc((size_t)n * 4);
    slm_dequantize_row(type, w, wd, n);
    /* the scale part alone: the same blocks with their min set to 0 */
    uint8_t *wa = malloc(wb);
    memcpy(wa, w, wb);
    if (min_field(type) >= 0)
        for (size_t b = 0; b < wb / ti->block_bytes; b++) memset(wa + b * ti->block_bytes + min_field(type), 0, 2);
    slm_dequantize_row(type, wa, ad, n);
    slm_dequantize_row(vt, xq, xd, n);
    dot_facts f = { 0, 0, 0, 0, n / ti->block_size };
    int bs = vi->block_size;
    for (int64_t b = 0; b < n; b += bs) {
        /* x_i = q*d + r, d = amax/127, |r| <= d/2 (+ rounding of x*(1/d): a
         * few u relative); the kernel sees q*d' with d' the stored scale (f16
         * for Q8_0, subnormal when tiny; f32 for Q8_K), |q| <= 127:
         * |x_i - q d'| <= d/2 + 127 |d' - d| + 4u amax. Blocks below
         * SLM_ACT_TINY are zeros: error |x_i| <= amax. */
        double amax = 0;
        for (int64_t i = b; i < b + bs; i++) amax = fmax(amax, fabs(x[i]));
        double e = 0;
        if (vt != SLM_T_F32) {
            double dst = vt == SLM_T_Q8_0 ? slm_f16_to_f32(slm_rd_u16(xq + (size_t)(b / QK) * Q8_0_BYTES))
                                          : slm_rd_f32(xq + (size_t)(b / QK_K) * Q8_K_BYTES);
            double d = amax / 127.0;
            e = amax < SLM_ACT_TINY ? amax : d / 2 + 127 * fabs(dst - d) + 4 * U32 * amax;
        }
        for (int64_t i = b; i < b + bs; i++) {
            f.exact += (double)wd[i] * xd[i];
            f.mag += (fabs((double)ad[i]) + fabs((double)wd[i] - ad[i])) * fabs((double)xd[i]);
            f.mag_x += fabs((double)wd[i] * x[i]);
            f.qerr += fabs((double)wd[i]) * e;
        }
    }
    free(wd); free(ad); free(xd); free(wa);
    return f;
}

/* Kernels sum exact integer products per block, apply the scales in f32 (a
 * few roundings per term, terms of at most `mag` in all) and add the terms
 * in f32 lanes and trees: no sum path is longer than 2 per block plus 32, so
 * |error| <= (2 blocks + 40) u mag (first order). Float weights: one rounding
 * per product, at least 8 lanes: paths <= n/8 + 32. */
static double acc_tol(uint32_t type, const dot_facts *f) {
    double steps = type == SLM_T_F32 || type == SLM_T_F16 || type == SLM_T_BF16
        ? (double)f->nblocks / 8 + 40 : 2.0 * (double)f->nblocks + 40;
    return steps * U32 * f->mag + 1e-30;
}

static void check_type_len(uint32_t type, int64_t n) {
    const slm_type_info *t = slm_type_get(type);
    uint32_t vt = slm_vec_type(type);
    size_t wb = slm_row_bytes(type, n), xb = slm_row_bytes(vt, n);
    enum { ROWS = 5 };
    /* +1: odd addresses for the blocks and the activations */
    uint8_t *wbuf = malloc(wb * ROWS + 1), *xbuf = malloc(xb + 1), *xbuf2 = malloc(xb + 1);
    uint8_t *w = wbuf + 1, *xq = xbuf + 1, *xq2 = xbuf2 + 1;
    float *x = malloc((size_t)n * 4);
    for (int r = 0; r < ROWS; r++) random_row(type, w + (size_t)r * wb, n);
    random_act(x, n);
    slm_quantize_act(vt, x, xq, n);

    /* SIMD activation quantization = scalar, byte for byte */
    const slm_kernels *sk = slm_kernels_get("scalar");
    if (vt == SLM_T_Q8_0 || vt == SLM_T_Q8_K) {
        (vt == SLM_T_Q8_0 ? sk->quant_q8_0 : sk->quant_q8_k)(x, xq2, n);
        CHECKF(memcmp(xq, xq2, xb) == 0, "%s n=%lld: quantize_act(%s) differs from scalar",
               t->name, (long long)n, slm_type_get(vt)->name);
        for (size_t s = 0; s < sizeof SIMD_SETS / sizeof SIMD_SETS[0]; s++) {
            const slm_kernels *k = slm_kernels_get(SIMD_SETS[s]);
            if (!k) continue;
            memset(xq2, 0xa5, xb);
            (vt == SLM_T_Q8_0 ? k->quant_q8_0 : k->quant_q8_k)(x, xq2, n);
            CHECKF(memcmp(xq, xq2, xb) == 0, "%s quantize %s n=%lld differs from scalar",
                   SIMD_SETS[s], slm_type_get(vt)->name, (long long)n);
        }
    }

    dot_facts f = facts(type, w, x, xq, n);
    double tol = acc_tol(type, &f);
    float vs = slm_vec_dot_scalar(type, w, xq, n);
    CHECKF(fabs(vs - f.exact) <= tol, "%s n=%lld: scalar %.9g exact %.9g tol %.3g",
           t->name, (long long)n, vs, f.exact, tol);
    float vd = slm_vec_dot(type, w, xq, n);
    CHECKF(fabs(vd - f.exact) <= tol, "%s n=%lld: vec_dot(%s) %.9g exact %.9g tol %.3g",
           t->name, (long long)n, slm_kernels_name(), vd, f.exact, tol);
    /* against the unquantized activations: the activation rounding bound */
    double ref = slm_dot_ref(type, w, x, n);
    double qtol = f.qerr + tol + (double)(n + 1) * 0x1p-52 * f.mag_x; /* + dot_ref's double sum */
    CHECKF(fabs(vd - ref) <= qtol, "%s n=%lld: vec_dot %.9g dot_ref %.9g tol %.3g",
           t->name, (long long)n, vd, ref, qtol);

    /* each kernel set, single rows and several rows at once */
    float out[ROWS];
    float single[ROWS];
    double tols[ROWS];
    for (int r = 0; r < ROWS; r++) {
        dot_facts fr = facts(type, w + (size_t)r * wb, x, xq, n);
        tols[r] = acc_tol(type, &fr);
        single[r] = (float)fr.exact;
    }
    const char *sets[] = { "scalar", "avx2", "avx512", "neon" };
    for (size_t s = 0; s < 4; s++) {
        const slm_kernels *k = slm_kernels_get(sets[s]);
        if (!k) continue;
        float v = k->dot[type](w, xq, n);
        CHECKF(fabs(v - f.exact) <= tol, "%s %s n=%lld: %.9g exact %.9g tol %.3g",
               sets[s], t->name, (long long)n, v, f.exact, tol);
        for (int nr = 0; nr <= ROWS; nr++) {
            for (int r = 0; r < ROWS; r++) out[r] = -12345.f;
            slm_kernels_dot_rows(k, type, w, wb, nr, xq, n, out);
            for (int r = 0; r < ROWS; r++) {
                if (r >= nr) { CHECKF(out[r] == -12345.f, "%s rows wrote past nrows", sets[s]); continue; }
                CHECKF(fabs(out[r] - single[r]) <= tols[r], "%s %s rows n=%lld nr=%d r=%d: %.9g exact %.9g",
                       sets[s], t->name, (long long)n, nr, r, out[r], single[r]);
            }
        }
    }
    slm_vec_dot_rows(type, w, wb, ROWS, xq, n, out);
    for (int r = 0; r < ROWS; r++) CHECKF(fabs(out[r] - single[r]) <= tols[r], "vec_dot_rows r=%d", r);
    free(wbuf); free(xbuf); free(xbuf2); free(x);
}

static void test_dots(void) {
    static const int64_t blocks[] = { 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 20, 31, 64, 65, 80, 640, 2048 };
    static const int64_t flens[] = { 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 640, 2048, 65536 };
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        uint32_t type = WEIGHT_TYPES[ti];
        const slm_type_info *t = slm_type_get(type);
        if (t->block_size == 1) {
            for (size_t i = 0; i < sizeof flens / sizeof flens[0]; i++) check_type_len(type, flens[i]);
            for (int i = 0; i < 12; i++) check_type_len(type, (int64_t)(1 + rnd() % 5000));
            continue;
        }
        for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++) check_type_len(type, blocks[i] * t->block_size);
        for (int i = 0; i < 12; i++) check_type_len(type, (int64_t)(1 + rnd() % 300) * t->block_size);
    }
    /* zero activations: every kernel returns exactly 0 */
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        uint32_t type = WEIGHT_TYPES[ti], vt = slm_vec_type(type);
        int64_t n = 512;
        uint8_t *w = malloc(slm_row_bytes(type, n)), *xq = malloc(slm_row_bytes(vt, n));
        float *x = calloc((size_t)n, 4);
        random_row(type, w, n);
        slm_quantize_act(vt, x, xq, n);
        CHECKF(slm_vec_dot(type, w, xq, n) == 0.f, "%s: zero x", slm_type_get(type)->name);
        free(w); free(xq); free(x);
    }
}

/* ---- tiles: slm_gemm_tile against the scalar reference ---- */

/* One shape: nrows rows of n elements against ntok activation rows, odd
 * strides and addresses; every kernel set's tile equals the scalar one
 * within the summation bounds of both, and writes nothing else. */
static void check_gemm_pad(uint32_t type, int nrows, int ntok, int64_t n, size_t wpad, size_t xpad, size_t opad) {
    const slm_type_info *t = slm_type_get(type);
    uint32_t vt = slm_vec_type(type);
    size_t wb = slm_row_bytes(type, n), xb = slm_row_bytes(vt, n);
    size_t ws = wb + wpad, xs = xb + xpad;
    size_t os = (size_t)nrows + opad;
    uint8_t *wbuf = malloc(ws * (size_t)nrows + 1), *xbuf = malloc(xs * (size_t)ntok + 1);
    uint8_t *w = wbuf + 1, *xq = xbuf + 1;
    float *x = malloc((size_t)n * ntok * 4);
    size_t olen = os * (size_t)ntok;
    float *ref = malloc(olen * 4), *got = malloc(olen * 4);
    double *tol = malloc(olen * sizeof(double));
    for (int r = 0; r < nrows; r++) random_row(type, w + (size_t)r * ws, n);
    for (int k = 0; k < ntok; k++) {
        random_act(x + (size_t)k * n, n);
        slm_quantize_act(vt, x + (size_t)k * n, xq + (size_t)k * xs, n);
    }
    for (size_t i = 0; i < olen; i++) ref[i] = -777.f;
    slm_gemm_tile_scalar(type, w, ws, nrows, xq, xs, ntok, n, ref, os);
    for (int k = 0; k < ntok; k++)
        for (int r = 0; r < nrows; r++) {
            dot_facts f = facts(type, w + (size_t)r * ws, x + (size_t)k * n, xq + (size_t)k * xs, n);
            double tl = acc_tol(type, &f);
            size_t i = (size_t)k * os + (size_t)r;
            CHECKF(fabs(ref[i] - f.exact) <= tl, "gemm scalar %s r=%d t=%d n=%lld: %.9g exact %.9g",
                   t->name, r, k, (long long)n, ref[i], f.exact);
            tol[i] = 2 * tl;
        }
    const char *sets[] = { "scalar", "avx2", "avx512", "neon", NULL };
    for (size_t s = 0; s < 5; s++) {
        const slm_kernels *k = s < 4 ? slm_kernels_get(sets[s]) : NULL;
        if (s < 4 && !k) continue;
        for (size_t i = 0; i < olen; i++) got[i] = -777.f;
        if (k) slm_kernels_gemm_tile(k, type, w, ws, nrows, xq, xs, ntok, n, got, os);
        else slm_gemm_tile(type, w, ws, nrows, xq, xs, ntok, n, got, os);
        const char *name = k ? sets[s] : "dispatch";
        int bad = 0;
        for (int kk = 0; kk < ntok; kk++)
            for (size_t r = 0; r < os; r++) {
                size_t i = (size_t)kk * os + r;
                if ((int)r >= nrows) {
                    if (got[i] != -777.f && bad++ < 3) CHECKF(0, "%s gemm %s wrote past nrows", name, t->name);
                    continue;
                }
                if (!(fabs(got[i] - ref[i]) <= tol[i]) && bad++ < 3)
                    CHECKF(0, "%s gemm %s %dx%d n=%lld r=%zu t=%d: %.9g scalar %.9g tol %.3g", name, t->name,
                           nrows, ntok, (long long)n, r, kk, got[i], ref[i], tol[i]);
            }
        CHECKF(bad == 0, "%s gemm %s: %d bad", name, t->name, bad);
    }
    free(wbuf); free(xbuf); free(x); free(ref); free(got); free(tol);
}

static void check_gemm(uint32_t type, int nrows, int ntok, int64_t n) {
    size_t wpad = (size_t)(rnd() % 3), xpad = (size_t)(rnd() % 5), opad = (size_t)(rnd() % 3);
    check_gemm_pad(type, nrows, ntok, n, wpad, xpad, opad);
}

/* The few-token tiles (2..7 tokens, batched decoding): every token count
 * with odd row counts, odd strides (rows, tokens and out) and column counts
 * from one block up to past the 32-block kernels' chunk of 32 blocks, with
 * an odd last block; check_gemm_pad also checks nothing lands past nrows. */
static void test_gemm_few(void) {
    static const uint32_t types[] = { SLM_T_Q4_K, SLM_T_Q6_K, SLM_T_Q5_K, SLM_T_Q8_0, SLM_T_Q4_0, SLM_T_Q5_0 };
    static const int rows[] = { 1, 3, 17, 33 };
    static const int64_t blocks32[] = { 1, 2, 3, 20, 33, 67 }, blocks256[] = { 1, 3, 8 };
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const bool k = slm_type_get(types[ti])->block_size == QK_K;
        const int64_t *bl = k ? blocks256 : blocks32;
        const size_t nbl = k ? 3 : 6;
        for (int ntok = 2; ntok < SLM_FEW_TOK; ntok++)
            for (size_t ri = 0; ri < sizeof rows / sizeof rows[0]; ri++)
                for (size_t bi = 0; bi < nbl; bi++) {
                    if (getenv("SLM_TEST_LIGHT") && (ri + bi + (size_t)ntok) % 3 != 0) continue;
                    check_gemm_pad(types[ti], rows[ri], ntok, bl[bi] * (k ? QK_K : QK), 1 + 2 * (ri & 1), 3,
                                   1 + (size_t)(bi & 1));
                }
    }
}

static void test_gemm(void) {
    static const int64_t blocks32[] = { 1, 2, 3, 5, 7, 20, 33, 64, 65, 67, 129 };
    for (size_t ti = 0; ti < N_WEIGHT_TYPES; ti++) {
        uint32_t type = WEIGHT_TYPES[ti];
        const slm_type_info *t = slm_type_get(type);
        int shapes = t->block_size == 32 ? 14 : 8;
        for (int i = 0; i < shapes; i++) {
            int nrows = 1 + (int)(rnd() % 37), ntok = 1 + (int)(rnd() % 13);
            int64_t n;
            if (t->block_size == 1) n = 1 + (int64_t)(rnd() % 300);
            else if (t->block_size == 32) n = blocks32[(size_t)i % (sizeof blocks32 / sizeof blocks32[0])] * QK;
            else n = (1 + (int64_t)(rnd() % 9)) * QK_K;
            check_gemm(type, nrows, ntok, n);
        }
        check_gemm(type, 1, 1, t->block_size);
        check_gemm(type, 37, 13, t->block_size == 1 ? 33 : 3 * t->block_size);
        check_gemm(type, 3, 8, t->block_size == 1 ? 64 : 2 * t->block_size);
        check_gemm(type, 2, 16, t->block_size == 1 ? 64 : 1 * t->block_size);
    }
    /* nothing to do: no writes */
    float o = -1.f;
    uint8_t dummy[64] = { 0 };
    slm_gemm_tile(SLM_T_Q8_0, dummy, 34, 0, dummy, 34, 3, 32, &o, 1);
    slm_gemm_tile(SLM_T_Q8_0, dummy, 34, 1, dummy, 34, 0, 32, &o, 1);
    CHECK(o == -1.f);
}

/* ---- packed weights: slm_packed_tile against the scalar reference ---- */

/* A rows x n matrix packed group by group in two halves (as two threads
 * would), then row ranges [r0, r0 + nr) starting at group boundaries against
 * ntok tokens; every result within the summation bounds of the scalar one,
 * nothing written past the range. */
static void check_packed(uint32_t type, int64_t rows, int64_t n, int ntok) {
    size_t pb = slm_packed_size(type, rows, n);
    if (!pb) return; /* this CPU's kernels keep the type as stored */
    uint32_t vt = slm_vec_type(type);
    size_t ws = slm_row_bytes(type, n) + (size_t)(rnd() % 3), xs = slm_row_bytes(vt, n) + (size_t)(rnd() % 5);
    uint8_t *wbuf = malloc(ws * (size_t)rows + 1), *xbuf = malloc(xs * (size_t)ntok + 1);
    uint8_t *w = wbuf + 1, *xq = xbuf + 1;
    void *packed = aligned_alloc(64, (pb + 63) & ~(size_t)63);
    float *x = malloc((size_t)n * (size_t)ntok * 4);
    for (int64_t r = 0; r < rows; r++) random_row(type, w + (size_t)r * ws, n);
    for (int t = 0; t < ntok; t++) {
        random_act(x + (size_t)t * (size_t)n, n);
        slm_quantize_act(vt, x + (size_t)t * (size_t)n, xq + (size_t)t * xs, n);
    }
    int64_t ng = (rows + SLM_PACK_GROUP - 1) / SLM_PACK_GROUP;
    memset(packed, 0x5a, pb);
    slm_pack_groups(type, w, ws, rows, n, ng / 2, ng, packed);
    slm_pack_groups(type, w, ws, rows, n, 0, ng / 2, packed);
    size_t os = (size_t)rows + 3;
    float *ref = malloc(os * (size_t)ntok * 4), *got = malloc(os * (size_t)ntok * 4);
    slm_gemm_tile_scalar(type, w, ws, (int)rows, xq, xs, ntok, n, ref, os);
    int64_t r0 = (int64_t)(rnd() % (uint32_t)ng) * SLM_PACK_GROUP;
    int nr = (int)(rows - r0 - (int64_t)(rnd() % (uint32_t)(rows - r0)));
    for (size_t i = 0; i < os * (size_t)ntok; i++) got[i] = -777.f;
    slm_packed_tile(type, packed, n, r0, nr, xq, xs, ntok, got, os);
    int bad = 0;
    for (int t = 0; t < ntok; t++)
        for (size_t r = 0; r < os; r++) {
            float g = got[(size_t)t * os + r];
            if ((int64_t)r >= nr) {
                if (g != -777.f && bad++ < 3) CHECKF(0, "packed %lldx%lld wrote past its %d rows", (long long)rows, (long long)n, nr);
                continue;
            }
            dot_facts f = facts(type, w + (size_t)(r0 + (int64_t)r) * ws, x + (size_t)t * (size_t)n, xq + (size_t)t * xs, n);
            double tl = 2 * acc_tol(type, &f);
            float want = ref[(size_t)t * os + (size_t)r0 + r];
            if (!(fabs(g - want) <= tl) && bad++ < 3)
                CHECKF(0, "packed %lldx%lld r=%lld t=%d: %.9g scalar %.9g tol %.3g", (long long)rows, (long long)n,
                       (long long)(r0 + (int64_t)r), t, g, want, tl);
        }
    CHECKF(bad == 0, "packed %s %lldx%lld x %d tokens: %d bad", slm_type_get(type)->name, (long long)rows, (long long)n, ntok, bad);
    free(wbuf); free(xbuf); free(packed); free(x); free(ref); free(got);
}

static void test_packed(void) {
    static const int64_t rows[] = { 1, 15, 16, 17, 37, 64, 100 };
    static const int64_t blocks[] = { 1, 2, 3, 20, 64, 127, 128, 129, 300 };
    static const uint32_t kinds[] = { SLM_T_Q8_0, SLM_T_Q4_0, SLM_T_Q5_0 };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        for (size_t j = 0; j < sizeof blocks / sizeof blocks[0]; j++)
            for (int k = 0; k < 3; k++)
                check_packed(kinds[k], rows[i], blocks[j] * QK, 1 + (int)((i * 7 + j * 3 + k) % 19));
    for (int ntok = 1; ntok <= 17; ntok++)
        for (int k = 0; k < 3; k++) check_packed(kinds[k], 40, 20 * QK, ntok);
    /* AVX-512 packs the 32-blocks (the checks above ran), not the K-quants */
    if (strcmp(slm_kernels_name(), "avx512") == 0)
        for (int k = 0; k < 3; k++) CHECK(slm_packed_size(kinds[k], 16, 32) > 0);
    CHECK(slm_packed_size(SLM_T_Q4_K, 16, 256) == 0);
}

/* Q8_0 / Q8_K layouts as ggml: f16 d + 32 int8; f32 d + 256 int8 + 16 int16 sums. */
static void test_act_layout(void) {
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = (float)(i - 100) / 10.f;
    uint8_t q[292];
    slm_quantize_act(SLM_T_Q8_0, x, q, 32);
    uint16_t dh;
    memcpy(&dh, q, 2);
    CHECK(dh == slm_f32_to_f16(10.f / 127.f));
    CHECK((int8_t)q[2] == -127 && (int8_t)q[2 + 31] == (int8_t)nearbyintf(-6.9f * 12.7f));
    slm_quantize_act(SLM_T_Q8_K, x, q, 256);
    float d;
    memcpy(&d, q, 4);
    CHECK(fabsf(d - 15.5f / 127.f) < 1e-6f);
    CHECK((int8_t)q[4 + 255] == 127);
    for (int g = 0; g < 16; g++) {
        int s = 0;
        for (int j = 0; j < 16; j++) s += (int8_t)q[4 + 16 * g + j];
        int16_t b;
        memcpy(&b, q + 260 + 2 * g, 2);
        CHECK(b == s);
    }
}

/* A length that is not a whole number of blocks is a caller's shape bug:
 * the fast path aborts instead of dropping the tail. */
static bool aborts(uint32_t type, int64_t n, int which) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        static uint8_t buf[4096];
        static float x[1024];
        if (which == 0) (void)slm_vec_dot(type, buf, buf + 2048, n);
        else slm_quantize_act(type, x, buf, n);
        _exit(0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return false;
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void test_bad_lengths(void) {
    CHECK(aborts(SLM_T_Q8_0, 33, 0));
    CHECK(aborts(SLM_T_Q4_K, 640, 0));
    CHECK(aborts(SLM_T_Q8_0, 31, 1));
    CHECK(aborts(SLM_T_Q8_K, 300, 1));
    CHECK(!aborts(SLM_T_Q8_0, 64, 1));
}

int main(void) {
    test_table();
    test_fixtures();
    test_conversions();
    test_act_layout();
    test_dots();
    test_gemm();
    test_gemm_few();
    test_packed();
    test_bad_lengths();
    return test_finish();
}
