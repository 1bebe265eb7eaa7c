/* LoRA adapter files and their use, on the real model:
 * (1) write + read round trip keeps every float;
 * (2) an adapter whose B is zero changes no logit; a random one does, and
 *     its runtime effect (W x + s B A x in the forward pass) agrees with
 *     the merged model (W + s B A folded into F32 weights by slm_lora_merge):
 *     two independent code paths;
 * (3) bad files fail with a clear message, never a crash: wrong
 *     architecture, wrong shape, a matrix the base does not have, a missing
 *     half, rank mismatch, a quantized type, not an adapter, non-finite
 *     values, a truncated file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf/gguf_write.h"
#include "model/model.h"
#include "quant/quant.h"
#include "testlib.h"
#include "train/adapter.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {  /* uniform in [-1, 1) */
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* An adapter on a few matrices of m, rank r; B zero or random. */
static lora_adapter *make_adapter(const slm_model *m, int r, bool zero_b, float amp) {
    lora_adapter *a = adapter_alloc(m->cfg.n_layer);
    a->alpha = 2.0f * r;
    a->rank = r;
    const int picks[][2] = { { 0, LORA_Q }, { 0, LORA_V }, { 1, LORA_DOWN }, { 2, LORA_O }, { 3, LORA_GATE },
                             { 3, LORA_UP }, { 5, LORA_K } };
    for (size_t i = 0; i < sizeof picks / sizeof picks[0]; i++) {
        int il = picks[i][0], t = picks[i][1];
        const slm_layer *L = &m->layers[il];
        const slm_mat *ws[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        lora_mat *lm = &a->mats[il * LORA_N_TARGETS + t];
        lm->rank = r;
        lm->n_in = (int)ws[t]->cols;
        lm->n_out = (int)ws[t]->rows;
        lm->a = malloc(sizeof(float) * r * lm->n_in);
        lm->b = malloc(sizeof(float) * r * lm->n_out);
        for (int k = 0; k < r * lm->n_in; k++) lm->a[k] = amp * frand() / sqrtf((float)lm->n_in);
        for (int k = 0; k < r * lm->n_out; k++) lm->b[k] = zero_b ? 0.0f : amp * frand() / sqrtf((float)r);
        a->targets |= 1u << t;
    }
    return a;
}

static void logits_of(const slm_model *m, const slm_lora *lora, float scale, const slm_token *toks, int n, float *out) {
    slm_session_params sp = { .n_ctx = 64, .n_threads = 2, .precise = true };
    slm_session *s = NULL;
    CHECK(slm_session_new(m, &sp, &s) == SLM_OK);
    if (!s) return;
    if (lora) CHECK(slm_session_set_lora(s, lora, scale) == SLM_OK);
    CHECK(slm_session_eval(s, toks, n, false) == SLM_OK);
    memcpy(out, slm_session_logits(s), sizeof(float) * m->cfg.n_vocab);
    slm_session_free(s);
}

static double max_diff(const float *a, const float *b, int n) {
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* A hand-made adapter file: one pair for blk.0.attn_q with the given
 * shapes/type, plus the metadata. */
static void write_bad(const char *path, const char *arch, const char *gtype, const char *a_name, uint64_t a0, uint64_t a1,
                      const char *b_name, uint64_t b0, uint64_t b1, uint32_t type, float fill) {
    gguf_writer *w;
    gguf_writer_new(&w);
    gguf_writer_set_str(w, "general.architecture", arch);
    gguf_writer_set_str(w, "general.type", gtype);
    gguf_writer_set_str(w, "adapter.type", "lora");
    gguf_writer_set_f32(w, "adapter.lora.alpha", 4.0f);
    size_t na = a0 * a1, nb = b0 * b1;
    size_t ba = type == SLM_T_F32 ? na * 4 : slm_row_bytes(type, (int64_t)a0) * a1;
    size_t bb = type == SLM_T_F32 ? nb * 4 : slm_row_bytes(type, (int64_t)b0) * b1;
    float *da = calloc(ba / 4 + 1, 4), *db = calloc(bb / 4 + 1, 4);
    if (type == SLM_T_F32) for (size_t i = 0; i < na; i++) da[i] = fill;
    uint64_t nea[4] = { a0, a1, 1, 1 }, neb[4] = { b0, b1, 1, 1 };
    if (a_name) gguf_writer_add_tensor(w, a_name, type, 2, nea, da, ba);
    if (b_name) gguf_writer_add_tensor(w, b_name, type, 2, neb, db, bb);
    CHECK(gguf_writer_write(w, path) == SLM_OK);
    gguf_writer_free(w);
    free(da);
    free(db);
}

static void expect_load_error(const slm_model *m, const char *path, const char *needle) {
    slm_lora *l = NULL;
    slm_status st = slm_lora_load(m, path, &l);
    CHECKF(st != SLM_OK && !l, "%s loaded", path);
    CHECKF(strstr(slm_last_error(), needle) != NULL, "error for %s: '%s' lacks '%s'", path, slm_last_error(), needle);
    slm_lora_free(l);
}

/* The hand-made files of test_errors: a change from the valid one ("ok"),
 * and what the refusal must say (NULL: it must load). Dimensions: E is the
 * model's width, Q the rows of blk.0.attn_q, other numbers taken as given. */
enum { DIM_E = -1, DIM_Q = -2, DIM_E1 = -3 };
typedef struct {
    const char *file, *arch, *gtype, *a_name, *b_name;
    int a0, a1, b0, b1;
    uint32_t type;
    float fill;
    const char *needle;
} bad_adapter;

static void test_errors(const slm_model *m) {
    char p[512];
    int E = m->cfg.n_embd, Q = (int)m->layers[0].wq.rows;
#define QA "blk.0.attn_q.weight.lora_a"
#define QB "blk.0.attn_q.weight.lora_b"
    const bad_adapter cases[] = {
        { "ok.gguf", "gemma3", "adapter", QA, QB, DIM_E, 4, 4, DIM_Q, SLM_T_F32, 0.01f, NULL },
        { "arch.gguf", "llama", "adapter", QA, QB, DIM_E, 4, 4, DIM_Q, SLM_T_F32, 0.01f, "architecture 'llama'" },
        { "type.gguf", "gemma3", "model", QA, QB, DIM_E, 4, 4, DIM_Q, SLM_T_F32, 0.01f, "not an adapter" },
        { "shape.gguf", "gemma3", "adapter", QA, QB, DIM_E1, 4, 4, DIM_Q, SLM_T_F32, 0.01f, "has shape" },
        { "shape_b.gguf", "gemma3", "adapter", QA, QB, DIM_E, 4, 4, DIM_E, SLM_T_F32, 0.01f, "has shape" },
        { "rank.gguf", "gemma3", "adapter", QA, QB, DIM_E, 4, 8, DIM_Q, SLM_T_F32, 0.01f, "rank" },
        { "missing.gguf", "gemma3", "adapter", "blk.99.attn_q.weight.lora_a", "blk.99.attn_q.weight.lora_b",
          DIM_E, 4, 4, DIM_Q, SLM_T_F32, 0.01f, "does not have" },
        { "unknown.gguf", "gemma3", "adapter", "blk.0.attn_qkv.weight.lora_a", NULL, DIM_E, 4, 0, 0, SLM_T_F32,
          0.01f, "not a LoRA tensor" },
        { "half.gguf", "gemma3", "adapter", QA, NULL, DIM_E, 4, 0, 0, SLM_T_F32, 0.01f, "no lora_b" },
        { "q8.gguf", "gemma3", "adapter", QA, QB, DIM_E, 32, 32, DIM_Q, SLM_T_Q8_0, 0, "F32 or F16" },
        { "nan.gguf", "gemma3", "adapter", QA, QB, DIM_E, 4, 4, DIM_Q, SLM_T_F32, NAN, "not finite" },
    };
#undef QA
#undef QB
    slm_lora *l = NULL;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_adapter *c = &cases[i];
        uint64_t d[4] = { 0 };
        const int given[4] = { c->a0, c->a1, c->b0, c->b1 };
        for (int k = 0; k < 4; k++)
            d[k] = (uint64_t)(given[k] == DIM_E ? E : given[k] == DIM_Q ? Q : given[k] == DIM_E1 ? E + 1 : given[k]);
        test_tmp_path(p, sizeof p, c->file);
        write_bad(p, c->arch, c->gtype, c->a_name, d[0], d[1], c->b_name, d[2], d[3], c->type, c->fill);
        if (c->needle) {
            expect_load_error(m, p, c->needle);
        } else {
            CHECKF(slm_lora_load(m, p, &l) == SLM_OK, "%s: %s", c->file, slm_last_error());
            slm_lora_free(l);
        }
    }
    test_tmp_path(p, sizeof p, "absent.gguf");
    expect_load_error(m, p, "cannot read adapter");

    /* every truncation of a valid file is refused */
    test_tmp_path(p, sizeof p, "ok.gguf");
    size_t len;
    char *buf = test_read_file(p, &len);
    CHECK(buf != NULL);
    char tp[512];
    test_tmp_path(tp, sizeof tp, "trunc.gguf");
    int refused = 0, tried = 0;
    for (size_t cut = 0; buf && cut < len; cut += cut < 600 ? 7 : 997) {
        FILE *f = fopen(tp, "wb");
        fwrite(buf, 1, cut, f);
        fclose(f);
        l = NULL;
        tried++;
        if (slm_lora_load(m, tp, &l) != SLM_OK) refused++;
        slm_lora_free(l);
    }
    CHECKF(refused == tried, "%d of %d truncations refused", refused, tried);
    free(buf);
}

int main(void) {
    const char *path = test_model_path();
    if (!path) { fprintf(stderr, "no model; skipping\n"); return TEST_SKIP; }
    if (!test_tmp_dir()) return 1;
    slm_model *m = NULL;
    CHECK(slm_model_open(path, &m) == SLM_OK);
    if (!m) return test_finish();
    int V = m->cfg.n_vocab;
    char ap[512], mp[512];

    /* (1) round trip */
    lora_adapter *a = make_adapter(m, 4, false, 1.0f);
    test_tmp_path(ap, sizeof ap, "rand.gguf");
    CHECKF(adapter_save(m, a, ap) == SLM_OK, "%s", slm_last_error());
    lora_adapter *back = NULL;
    CHECKF(adapter_load(m->gguf, ap, &back) == SLM_OK, "%s", slm_last_error());
    if (back) {
        CHECK(back->alpha == a->alpha && back->rank == a->rank && back->targets == a->targets);
        bool same = true;
        for (int i = 0; i < a->n_layer * LORA_N_TARGETS; i++) {
            const lora_mat *x = &a->mats[i], *y = &back->mats[i];
            if (!x->a) { same &= y->a == NULL; continue; }
            same &= y->a && x->rank == y->rank && x->n_in == y->n_in && x->n_out == y->n_out &&
                    !memcmp(x->a, y->a, sizeof(float) * x->rank * x->n_in) &&
                    !memcmp(x->b, y->b, sizeof(float) * x->rank * x->n_out);
        }
        CHECK(same);
    }
    adapter_free(back);

    /* (2) effect on the logits */
    slm_token *toks = NULL;
    size_t nt = 0;
    const char *text = "The quick brown fox jumps over the lazy dog because";
    CHECK(slm_tokenize(m, text, strlen(text), true, false, &toks, &nt) == SLM_OK);
    float *l0 = malloc(sizeof(float) * V), *l1 = malloc(sizeof(float) * V), *l2 = malloc(sizeof(float) * V);
    logits_of(m, NULL, 1, toks, (int)nt, l0);

    lora_adapter *z = make_adapter(m, 4, true, 1.0f);
    char zp[512];
    test_tmp_path(zp, sizeof zp, "zero.gguf");
    CHECK(adapter_save(m, z, zp) == SLM_OK);
    adapter_free(z);
    slm_lora *lz = NULL;
    CHECK(slm_lora_load(m, zp, &lz) == SLM_OK);
    logits_of(m, lz, 1, toks, (int)nt, l1);
    CHECKF(max_diff(l0, l1, V) == 0, "zero-B adapter moved the logits by %g", max_diff(l0, l1, V));
    slm_lora_free(lz);

    slm_lora *lr = NULL;
    CHECK(slm_lora_load(m, ap, &lr) == SLM_OK);
    slm_lora_info info;
    slm_lora_get_info(lr, &info);
    CHECK(info.n_matrices == 7 && info.rank == 4 && info.alpha == 8.0f);
    logits_of(m, lr, 0.5f, toks, (int)nt, l1);
    double moved = max_diff(l0, l1, V);
    CHECKF(moved > 0.05, "the random adapter moved the logits by only %g", moved);
    /* the batched pass (the server's) applies it too: two sequences in one
     * pass, each matching the session's logits */
    {
        slm_batch_params bp = { .n_seq = 2, .n_ctx = 64, .n_threads = 2, .precise = true };
        slm_batch *b = NULL;
        CHECK(slm_batch_new(m, &bp, &b) == SLM_OK);
        if (b) {
            CHECK(slm_batch_set_lora(b, lr, 0.5f) == SLM_OK);
            slm_batch_item it[2] = { { 0, toks, (int)nt }, { 1, toks, (int)nt - 1 } };
            CHECK(slm_batch_eval(b, it, 2) == SLM_OK);
            double d = max_diff(slm_batch_logits(b, 0), l1, V);
            CHECKF(d < 1e-3, "batched pass with the adapter differs from the session by %g", d);
            logits_of(m, lr, 0.5f, toks, (int)nt - 1, l2);
            d = max_diff(slm_batch_logits(b, 1), l2, V);
            CHECKF(d < 1e-3, "batched pass (2nd sequence) differs from the session by %g", d);
            slm_batch_free(b);
        }
    }
    /* scale 0 is the base */
    logits_of(m, lr, 0.0f, toks, (int)nt, l2);
    CHECK(max_diff(l0, l2, V) == 0);

    /* merged F32 model vs runtime adapter, same scale */
    test_tmp_path(mp, sizeof mp, "merged.gguf");
    CHECKF(slm_lora_merge(path, ap, mp, 0.5f, false) == SLM_OK, "%s", slm_last_error());
    slm_model *mm = NULL;
    CHECKF(slm_model_open(mp, &mm) == SLM_OK, "%s", slm_last_error());
    if (mm) {
        logits_of(mm, NULL, 1, toks, (int)nt, l2);
        double d = max_diff(l1, l2, V);
        fprintf(stderr, "runtime adapter vs merged F32: max |dlogit| %.3g (adapter moved them by %.3g)\n", d, moved);
        CHECKF(d < 2e-3 * (1 + moved), "merged and runtime logits differ by %g", d);
        CHECK(slm_argmax(l1, V) == slm_argmax(l2, V));
        /* the adapter belongs to m, not mm */
        slm_session_params sp = { .n_ctx = 16, .n_threads = 1 };
        slm_session *s = NULL;
        CHECK(slm_session_new(mm, &sp, &s) == SLM_OK);
        if (s) CHECK(slm_session_set_lora(s, lr, 1) == SLM_ERR_INVALID_ARG);
        slm_session_free(s);
        slm_model_close(mm);
    }
    /* merge errors leave nothing behind */
    char bad[512];
    test_tmp_path(bad, sizeof bad, "never.gguf");
    CHECK(slm_lora_merge(path, "/nonexistent/adapter.gguf", bad, 1, false) != SLM_OK);
    CHECK(access(bad, F_OK) != 0);

    slm_lora_free(lr);
    free(toks);
    free(l0), free(l1), free(l2);
    adapter_free(a);
    test_errors(m);
    slm_model_close(m);
    test_tmp_cleanup();
    return test_finish();
}
