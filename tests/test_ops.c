/* The CPU ops against formulas evaluated in double: whichever ISA version the
 * dispatcher picked must agree (GELU gate, axpy, softmax, RMSNorm, RoPE). */
#include <math.h>
#include <stdlib.h>

#include "ops/ops.h"
#include "testlib.h"

static double gelu_ref(double v) { return 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))); }

static float frand(float lo, float hi) { return lo + (hi - lo) * (float)rand() / (float)RAND_MAX; }

/* op_attn_group (the dispatched kernel and the portable one) against the
 * formula in double, on strided key/value rows: group heads, cnt keys. */
static void check_attn(int group, int hd, int hdv, int cnt, float qscale) {
    size_t ks = (size_t)hd + 3, vs = (size_t)hdv + 5;
    float *q = malloc(sizeof(float) * group * hd), *k = malloc(sizeof(float) * ks * cnt);
    float *v = malloc(sizeof(float) * vs * cnt), *sc = malloc(sizeof(float) * group * cnt);
    float *o1 = malloc(sizeof(float) * (group * hdv + 1)), *o2 = malloc(sizeof(float) * group * hdv);
    double *w = malloc(sizeof(double) * cnt);
    for (int i = 0; i < group * hd; i++) q[i] = frand(-qscale, qscale);
    for (size_t i = 0; i < ks * cnt; i++) k[i] = frand(-1, 1);
    for (size_t i = 0; i < vs * cnt; i++) v[i] = frand(-2, 2);
    float scale = 1.0f / sqrtf((float)hd);
    o1[group * hdv] = -777.f;
    op_attn_group(q, group, hd, hdv, k, ks, v, vs, cnt, scale, o1, sc);
    op_attn_group_portable(q, group, hd, hdv, k, ks, v, vs, cnt, scale, o2, sc);
    int bad = 0;
    for (int g = 0; g < group; g++) {
        double mx = -1e300, sum = 0;
        for (int p = 0; p < cnt; p++) {
            double d = 0;
            for (int i = 0; i < hd; i++) d += (double)q[g * hd + i] * k[p * ks + i];
            w[p] = d * scale;
            if (w[p] > mx) mx = w[p];
        }
        for (int p = 0; p < cnt; p++) sum += w[p] = exp(w[p] - mx);
        for (int i = 0; i < hdv; i++) {
            double want = 0;
            for (int p = 0; p < cnt; p++) want += w[p] / sum * v[p * vs + i];
            /* values are in [-2, 2]: 2e-5 absolute is ~1e-5 relative to their scale */
            if (fabs(o1[g * hdv + i] - want) > 2e-5 || fabs(o2[g * hdv + i] - want) > 2e-5) bad++;
        }
    }
    CHECKF(bad == 0, "attn group=%d hd=%d hdv=%d cnt=%d: %d values off", group, hd, hdv, cnt, bad);
    CHECK(o1[group * hdv] == -777.f);
    free(q); free(k); free(v); free(sc); free(o1); free(o2); free(w);
}

int main(void) {
    srand(7);
    /* GELU gate over a dense sweep, the extremes and odd lengths (tails) */
    enum { N = 4099 };
    static float x[N], up[N], y[N], x0[N];
    for (int i = 0; i < N; i++) {
        x0[i] = i < 4000 ? -20.0f + 40.0f * i / 4000 : frand(-1e3f, 1e3f);
        up[i] = frand(-3, 3);
    }
    int lens[] = { 0, 1, 15, 16, 17, 33, N };
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        int n = lens[li];
        for (int i = 0; i < N; i++) x[i] = x0[i];
        op_gelu_tanh_mul(x, up, n);
        int bad = 0;
        for (int i = 0; i < n; i++) {
            double want = gelu_ref(x0[i]) * up[i];
            /* 1e-6 relative to the gate's scale |x * up|, plus a tiny absolute floor */
            if (fabs(x[i] - want) > 1e-6 * fabs((double)x0[i] * up[i]) + 1e-30) bad++;
        }
        for (int i = n; i < N; i++) if (x[i] != x0[i]) bad++;  /* nothing past n is touched */
        CHECKF(bad == 0, "gelu n=%d: %d values off", n, bad);
    }
    /* axpy */
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        int n = lens[li];
        for (int i = 0; i < N; i++) { x[i] = frand(-2, 2); y[i] = x0[i] = frand(-2, 2); }
        op_axpy_f32(y, 0.37f, x, n);
        int bad = 0;
        for (int i = 0; i < n; i++) if (fabs(y[i] - (x0[i] + 0.37 * x[i])) > 1e-6) bad++;
        for (int i = n; i < N; i++) if (y[i] != x0[i]) bad++;
        CHECKF(bad == 0, "axpy n=%d: %d values off", n, bad);
    }
    /* softmax sums to 1 and keeps order */
    for (int i = 0; i < 100; i++) x[i] = frand(-30, 30);
    for (int i = 0; i < 100; i++) x0[i] = x[i];
    op_softmax(x, 100);
    double sum = 0, mx = x0[0];
    for (int i = 0; i < 100; i++) { sum += x[i]; if (x0[i] > mx) mx = x0[i]; }
    double z = 0;
    for (int i = 0; i < 100; i++) z += exp(x0[i] - mx);
    int bad = 0;
    for (int i = 0; i < 100; i++) if (fabs(x[i] - exp(x0[i] - mx) / z) > 1e-6) bad++;
    CHECK(fabs(sum - 1) < 1e-5 && bad == 0);
    /* RMSNorm */
    for (int i = 0; i < 640; i++) { x[i] = frand(-50, 50); up[i] = frand(0, 2); }
    op_rmsnorm(y, x, up, 640, 1e-6f);
    double ss = 0;
    for (int i = 0; i < 640; i++) ss += (double)x[i] * x[i];
    double sc = 1 / sqrt(ss / 640 + 1e-6);
    bad = 0;
    for (int i = 0; i < 640; i++) if (fabs(y[i] - x[i] * sc * up[i]) > 1e-5 * (1 + fabs(x[i] * sc * up[i]))) bad++;
    CHECK(bad == 0);
    /* RoPE (NEOX pairing) rotates pairs (i, i + d/2) by pos * base^(-2i/d) */
    float cs[128], sn[128], h[256], h0[256];
    for (int i = 0; i < 256; i++) h[i] = h0[i] = frand(-1, 1);
    op_rope_table(cs, sn, 256, 1000, 10000.0f);
    op_rope_neox(h, cs, sn, 256);
    bad = 0;
    for (int i = 0; i < 128; i++) {
        double th = 1000 * pow(10000.0, -2.0 * i / 256);
        double a = h0[i] * cos(th) - h0[i + 128] * sin(th), b = h0[i] * sin(th) + h0[i + 128] * cos(th);
        if (fabs(h[i] - a) > 1e-5 || fabs(h[i + 128] - b) > 1e-5) bad++;
    }
    CHECK(bad == 0);
    /* attention: the tiled kernel's shapes (group 4/8, key tails) and the
     * portable fallback's (group 2, head dims it does not take) */
    int cnts[] = { 1, 3, 15, 16, 17, 37, 300 };
    for (size_t ci = 0; ci < sizeof cnts / sizeof cnts[0]; ci++) {
        check_attn(4, 256, 256, cnts[ci], 1.0f);
        check_attn(8, 64, 128, cnts[ci], 4.0f);
        check_attn(2, 48, 40, cnts[ci], 1.0f);
    }
    check_attn(4, 32, 64, 200, 30.0f); /* peaked softmax: big score gaps */
    return test_finish();
}
