/* The CPU ops against formulas evaluated in double: whichever ISA version the
 * dispatcher picked must agree (GELU gate, axpy, softmax, RMSNorm, RoPE). */
#include <math.h>
#include <stdlib.h>

#include "ops/ops.h"
#include "testlib.h"

static double gelu_ref(double v) { return 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))); }

static float frand(float lo, float hi) { return lo + (hi - lo) * (float)rand() / (float)RAND_MAX; }

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
    return test_finish();
}
