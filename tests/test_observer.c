/* The forward pass's observer (slm_fwd_observer, src/model/transformer.h):
 * on the tiny Gemma 3 of tests/fixtures/eval, a prompt longer than one
 * forward chunk (SLM_UBATCH rows) must report every layer's output once per
 * chunk, in layer order, with the chunk's rows and positions; every matrix
 * product's input once (7 per layer and chunk, then the output head's one
 * row); the last layer's output must be the residual stream the output head
 * reads (RMSNorm of it with output_norm, recomputed here in double, equals
 * the head's input); and a removed observer must hear nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "model/model.h"
#include "model/transformer.h"
#include "slm.h"
#include "testlib.h"

#define MODEL_PATH "tests/fixtures/eval/tiny_gemma3.gguf"
#define MAXCALLS 4096

typedef struct {
    const slm_model *m;
    int n_layer_calls, n_mat_calls, n_head_calls;
    int layer_il[MAXCALLS], layer_n[MAXCALLS], layer_pos0[MAXCALLS];
    bool rows_ok;
    int head_n;
    float *last_h;     /* the last layer's output, last row, of the latest call */
    float *head_x;     /* the output head's input */
} watch;

static void on_matmul(void *ctx, const slm_mat *w, const float *x, int n) {
    watch *wt = ctx;
    int E = wt->m->cfg.n_embd;
    if (w == &wt->m->output) {
        wt->n_head_calls++;
        wt->head_n = n;
        memcpy(wt->head_x, x + (size_t)(n - 1) * E, (size_t)E * sizeof(float));
    } else {
        wt->n_mat_calls++;
    }
}

static void on_layer(void *ctx, int il, const float *h, int n, const fwd_row *rows) {
    watch *wt = ctx;
    int E = wt->m->cfg.n_embd;
    if (wt->n_layer_calls < MAXCALLS) {
        wt->layer_il[wt->n_layer_calls] = il;
        wt->layer_n[wt->n_layer_calls] = n;
        wt->layer_pos0[wt->n_layer_calls] = rows[0].pos;
    }
    wt->n_layer_calls++;
    for (int t = 1; t < n; t++)
        if (rows[t].pos != rows[0].pos + t || rows[t].seq != rows[0].seq) wt->rows_ok = false;
    if (il == wt->m->cfg.n_layer - 1) memcpy(wt->last_h, h + (size_t)(n - 1) * E, (size_t)E * sizeof(float));
}

int main(void) {
    slm_model *m;
    if (slm_model_open(MODEL_PATH, &m)) {
        CHECKF(0, "cannot open %s: %s", MODEL_PATH, slm_last_error());
        return test_finish();
    }
    int L = m->cfg.n_layer, E = m->cfg.n_embd, V = slm_vocab_size(m);
    int N = SLM_UBATCH + 20;   /* two chunks: SLM_UBATCH rows, then 20 */
    slm_session_params sp = { .n_ctx = N + 8, .n_threads = 2, .precise = true };
    slm_session *s;
    CHECK(slm_session_new(m, &sp, &s) == 0);
    slm_token *toks = malloc((size_t)N * sizeof *toks);
    for (int i = 0; i < N; i++) toks[i] = (slm_token)((i * 7919 + 13) % V);

    watch wt = { .m = m, .rows_ok = true };
    wt.last_h = calloc((size_t)E, sizeof(float));
    wt.head_x = calloc((size_t)E, sizeof(float));
    slm_fwd_observer obs = { .ctx = &wt, .matmul_input = on_matmul, .layer_output = on_layer };
    slm_fwd *f = slm_session_fwd(s);
    fwd_set_observer(f, &obs);
    CHECK(slm_session_eval(s, toks, N, false) == 0);

    CHECKF(wt.n_layer_calls == 2 * L, "%d layer outputs for 2 chunks of %d layers", wt.n_layer_calls, L);
    for (int k = 0; k < wt.n_layer_calls && k < 2 * L; k++) {
        int chunk = k / L;
        CHECKF(wt.layer_il[k] == k % L, "call %d: layer %d, want %d", k, wt.layer_il[k], k % L);
        CHECKF(wt.layer_n[k] == (chunk ? N - SLM_UBATCH : SLM_UBATCH), "call %d: %d rows", k, wt.layer_n[k]);
        CHECKF(wt.layer_pos0[k] == chunk * SLM_UBATCH, "call %d: first position %d", k, wt.layer_pos0[k]);
    }
    CHECK(wt.rows_ok);
    CHECKF(wt.n_mat_calls == 2 * 7 * L, "%d layer matrix products for 2 chunks of %d layers", wt.n_mat_calls, L);
    CHECKF(wt.n_head_calls == 1 && wt.head_n == 1, "output head: %d calls, %d rows", wt.n_head_calls, wt.head_n);

    /* the head reads RMSNorm(last layer's output) * output_norm */
    double ss = 0, worst = 0, scale = 0;
    for (int j = 0; j < E; j++) ss += (double)wt.last_h[j] * wt.last_h[j];
    double inv = 1.0 / sqrt(ss / E + m->cfg.eps);
    for (int j = 0; j < E; j++) {
        double want = wt.last_h[j] * inv * m->output_norm[j];
        worst = fmax(worst, fabs(want - wt.head_x[j]));
        scale = fmax(scale, fabs(want));
    }
    CHECKF(scale > 0 && worst <= 1e-5 * scale, "head input differs from the normed last layer output by %g (scale %g)",
           worst, scale);

    /* removed: nothing more is heard */
    fwd_set_observer(f, NULL);
    int before = wt.n_layer_calls + wt.n_mat_calls + wt.n_head_calls;
    CHECK(slm_session_eval(s, toks, 1, false) == 0);
    CHECK(wt.n_layer_calls + wt.n_mat_calls + wt.n_head_calls == before);

    printf("observer: %d layer outputs, %d matrix inputs, head check worst %.2g of %.2g\n", wt.n_layer_calls,
           wt.n_mat_calls + wt.n_head_calls, worst, scale);
    free(wt.last_h);
    free(wt.head_x);
    free(toks);
    slm_session_free(s);
    slm_model_close(m);
    return test_finish();
}
