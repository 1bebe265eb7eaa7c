/* The training engine on whole models (src/train/trainer.h): the tiny
 * random-weight families of tests/fixtures/arch and, with SLM_TEST_MODEL,
 * Gemma 3 270M. The forward's loss against slm's own inference path
 * (precise mode), LoRA and full gradients against the loss's slope along
 * them (central differences), checkpointing and dropout bit for bit, an
 * optimizer step, and the full model written and read back. The ops
 * themselves are checked in test_train_ops.c; HF transformers + PEFT hold
 * the whole model in test_train_model.c. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slm.h"
#include "testlib.h"
#include "train/trainer.h"

static uint64_t rng = 0x7654321ull;
static double urand(void) {   /* [-1, 1) */
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static const char *TEXT =
    "Once upon a time there was a small village by the sea. Every morning the fishermen went out in their "
    "boats, and every evening they came back with their nets full of fish. The children ran along the beach.";

/* loss of every position from slm's own inference path (precise: f32 activations) */
static double session_loss(slm_model *m, const int32_t *tok, int n, const uint8_t *mask) {
    slm_session_params sp = { 0 };
    sp.n_ctx = n + 8;
    sp.n_threads = 2;
    sp.precise = true;
    slm_session *s;
    if (slm_session_new(m, &sp, &s)) return NAN;
    double tot = NAN;
    if (!slm_session_eval(s, tok, n, true)) {
        const float *lg = slm_session_logits_all(s);
        int V = slm_vocab_size(m);
        tot = 0;
        for (int i = 0; i + 1 < n; i++) {
            if (mask && !mask[i + 1]) continue;
            const float *z = lg + (size_t)i * V;
            double mx = z[0], sum = 0;
            for (int v = 1; v < V; v++) if (z[v] > mx) mx = z[v];
            for (int v = 0; v < V; v++) sum += exp(z[v] - mx);
            tot += mx + log(sum) - z[tok[i + 1]];
        }
    }
    slm_session_free(s);
    return tot;
}

/* training parameters with 2 threads: full fine-tuning, or LoRA of rank `rank` */
static train_params params_for(bool full, int max_seq, int rank) {
    train_params p;
    train_default_params(&p);
    p.full = full;
    p.max_seq = max_seq;
    if (!full) p.rank = rank;
    p.n_threads = 2;
    return p;
}

/* the same random B (uniform in [-amp, amp)) in each of n adapters of one shape */
static void same_random_b(lora_adapter **ads, int n, double amp) {
    for (int i = 0; i < ads[0]->n_layer * LORA_N_TARGETS; i++)
        for (size_t k = 0; k < (size_t)ads[0]->mats[i].n_out * ads[0]->mats[i].rank; k++) {
            float b = (float)(urand() * amp);
            for (int a = 0; a < n; a++) ads[a]->mats[i].b[k] = b;
        }
}

/* all LoRA gradients, concatenated */
static float *lora_grads(slm_trainer *t, size_t *n) {
    lora_adapter *ad = trainer_lora(t);
    size_t tot = 0;
    for (int i = 0; i < ad->n_layer * LORA_N_TARGETS; i++)
        if (ad->mats[i].a) tot += (size_t)ad->mats[i].rank * (ad->mats[i].n_in + ad->mats[i].n_out);
    float *g = malloc(tot * sizeof(float)), *p = g;
    for (int l = 0; l < ad->n_layer; l++)
        for (int k = 0; k < LORA_N_TARGETS; k++) {
            const float *ga, *gb;
            trainer_lora_grads(t, l, k, &ga, &gb);
            if (!ga) continue;
            const lora_mat *lm = &ad->mats[l * LORA_N_TARGETS + k];
            memcpy(p, ga, (size_t)lm->rank * lm->n_in * 4); p += (size_t)lm->rank * lm->n_in;
            memcpy(p, gb, (size_t)lm->rank * lm->n_out * 4); p += (size_t)lm->rank * lm->n_out;
        }
    *n = tot;
    return g;
}

/* moves every LoRA parameter by step * (its gradient) / |gradient| */
static void lora_move(slm_trainer *t, const float *g, double gnorm, double step) {
    lora_adapter *ad = trainer_lora(t);
    const float *p = g;
    for (int i = 0; i < ad->n_layer * LORA_N_TARGETS; i++) {
        lora_mat *lm = &ad->mats[i];
        if (!lm->a) continue;
        for (size_t k = 0; k < (size_t)lm->rank * lm->n_in; k++) lm->a[k] += (float)(step * *p++ / gnorm);
        for (size_t k = 0; k < (size_t)lm->rank * lm->n_out; k++) lm->b[k] += (float)(step * *p++ / gnorm);
    }
}

/* The loss's slope along the LoRA gradient g (norm gn): central difference
 * with step h; the adapter is left as it was. */
static double lora_slope(slm_trainer *t, const float *g, double gn, double h, const int32_t *tok, const uint8_t *mask,
                         int n) {
    double lp, lm;
    int ns;
    lora_move(t, g, gn, h);
    CHECK(!trainer_eval_loss(t, tok, mask, n, &lp, &ns));
    lora_move(t, g, gn, -2 * h);
    CHECK(!trainer_eval_loss(t, tok, mask, n, &lm, &ns));
    lora_move(t, g, gn, h);
    return (lp - lm) / (2 * h);
}

/* Full fine-tuning, after trainer_accumulate: the gradient's norm (*gn) and
 * the loss's slope along the gradient (central difference, step 1e-3); the
 * trainer's state is left as it was. */
static double full_slope(slm_trainer *t, const int32_t *tok, const uint8_t *mask, int n, double *gn) {
    size_t np = trainer_n_params(t), nst = trainer_state_floats(t);
    float *g = malloc(np * 4), *st = malloc(nst * 4), *s2 = malloc(nst * 4);
    memcpy(g, trainer_grad_data(t), np * 4);
    int64_t step;
    trainer_state_get(t, st, &step);
    *gn = test_norm(g, np);
    double h = 1e-3, lp = NAN, lm = NAN;
    int ns;
    for (int sgn = -1; sgn <= 1; sgn += 2) {
        memcpy(s2, st, nst * 4);
        for (size_t i = 0; i < np; i++) s2[i] += (float)(sgn * h * g[i] / *gn);
        trainer_state_set(t, s2, step);
        CHECK(!trainer_eval_loss(t, tok, mask, n, sgn > 0 ? &lp : &lm, &ns));
    }
    trainer_state_set(t, st, step);
    free(g); free(st); free(s2);
    return (lp - lm) / (2 * h);
}

/* full fine-tuning: same forward as LoRA at init, gradient against the loss
 * along it, and the saved GGUF reads back with the same loss */
static void test_model_full(slm_model *m, const int32_t *tok, const uint8_t *mask, int n, double l_init) {
    train_params p = params_for(true, 32, 0);
    slm_trainer *t;
    if (trainer_new(m, &p, &t)) { CHECKF(0, "full trainer: %s", slm_last_error()); return; }
    double l0, gn;
    int ns;
    CHECK(!trainer_eval_loss(t, tok, mask, n, &l0, &ns));
    CHECKF(l0 == l_init, "full-mode loss %.9g, LoRA-mode loss %.9g", l0, l_init);
    CHECK(!trainer_accumulate(t, tok, mask, n, &l0, &ns));
    double fd = full_slope(t, tok, mask, n, &gn);
    printf("full: gradient norm %.6f, loss slope along the gradient %.6f\n", gn, fd);
    CHECKF(fabs(fd - gn) < 0.01 * gn, "full gradient norm %.6f vs slope %.6f", gn, fd);
    /* a step, then write and read back */
    CHECK(!trainer_accumulate(t, tok, mask, n, &l0, &ns));
    double gnorm, l1;
    CHECK(!trainer_step(t, ns, 1e-4f, 1.0f, &gnorm));
    CHECK(!trainer_eval_loss(t, tok, mask, n, &l1, &ns));
    CHECKF(l1 < l0, "full step: loss %.5f -> %.5f", l0, l1);
    char path[512];
    test_tmp_path(path, sizeof path, "full.gguf");
    CHECKF(!trainer_save_full(t, path), "save: %s", slm_last_error());
    slm_model *m2;
    if (!slm_model_open(path, &m2)) {
        double l2 = session_loss(m2, tok, n, mask);
        printf("full: loss after a step %.6f, the saved GGUF through slm inference %.6f\n", l1, l2);
        CHECKF(fabs(l2 - l1) < 2e-5 * fabs(l1) + 1e-4, "saved model's loss %.6f vs trainer %.6f", l2, l1);
        slm_model_close(m2);
    } else CHECKF(0, "reopen %s: %s", path, slm_last_error());
    remove(path);
    trainer_free(t);
}

/* Every family's layout on the tiny random-weight models of test_arch
 * (tests/fixtures/arch: llama, qwen2 with biases, phi3 with fused QKV and
 * gate-up, mistral with a window on every layer): the loss is the inference
 * path's; LoRA (with dropout) and full gradients agree with the loss along
 * them; checkpointing changes no bit. */
static void test_arch_models(void) {
    static const char *fams[] = { "llama", "qwen2", "phi3", "mistral" };
    for (size_t fi = 0; fi < sizeof fams / sizeof fams[0]; fi++) {
        char path[128];
        snprintf(path, sizeof path, "tests/fixtures/arch/%s_f16.gguf", fams[fi]);
        slm_model *m;
        if (slm_model_open(path, &m)) { CHECKF(0, "open %s: %s", path, slm_last_error()); continue; }
        int n = 90, V = slm_vocab_size(m);
        int32_t tok[90];
        uint8_t mask[90];
        for (int i = 0; i < n; i++) {
            tok[i] = (int32_t)((urand() + 1) * 0.5 * V) % V;
            mask[i] = i >= 20;
        }
        train_params p = params_for(false, 96, 4);
        slm_trainer *t, *td, *tdc;
        CHECK(!trainer_new(m, &p, &t));
        p.dropout = 0.2f;
        CHECK(!trainer_new(m, &p, &td));
        p.checkpoint = true;
        CHECK(!trainer_new(m, &p, &tdc));
        double l, lref = session_loss(m, tok, n, mask);
        int ns;
        CHECK(!trainer_eval_loss(t, tok, mask, n, &l, &ns));
        CHECKF(fabs(l - lref) < 1e-5 * fabs(lref) + 1e-4, "%s: loss %.6f vs inference %.6f", fams[fi], l, lref);
        lora_adapter *ads[3] = { trainer_lora(t), trainer_lora(td), trainer_lora(tdc) };
        same_random_b(ads, 3, 0.05);
        double l1, l2, l3;
        int n1;
        CHECK(!trainer_accumulate(t, tok, mask, n, &l1, &n1));
        size_t ng, ng2, ng3;
        float *g = lora_grads(t, &ng);
        double gn = test_norm(g, ng);
        double fd = lora_slope(t, g, gn, 1e-3, tok, mask, n);
        CHECKF(fabs(fd - gn) < 0.01 * gn, "%s: LoRA gradient norm %.6f, loss slope %.6f", fams[fi], gn, fd);
        /* dropout: masks regenerated in the backward and in the recomputed forward */
        CHECK(!trainer_accumulate(td, tok, mask, n, &l2, &n1));
        CHECK(!trainer_accumulate(tdc, tok, mask, n, &l3, &n1));
        float *g2 = lora_grads(td, &ng2), *g3 = lora_grads(tdc, &ng3);
        CHECKF(l2 == l3 && ng2 == ng3 && memcmp(g2, g3, ng2 * 4) == 0, "%s: dropout with/without checkpointing",
               fams[fi]);
        CHECKF(l2 != l1, "%s: dropout changes the training loss", fams[fi]);
        free(g); free(g2); free(g3);
        trainer_free(t); trainer_free(td); trainer_free(tdc);
        /* full fine-tuning */
        train_params pf = params_for(true, 96, 0);
        slm_trainer *tf;
        CHECK(!trainer_new(m, &pf, &tf));
        double lf0, gfn;
        CHECK(!trainer_accumulate(tf, tok, mask, n, &lf0, &ns));
        CHECKF(fabs(lf0 - lref) < 1e-5 * fabs(lref) + 1e-4, "%s: full-mode loss %.6f vs %.6f", fams[fi], lf0, lref);
        double fdf = full_slope(tf, tok, mask, n, &gfn);
        CHECKF(fabs(fdf - gfn) < 0.01 * gfn, "%s: full gradient norm %.6f, loss slope %.6f", fams[fi], gfn, fdf);
        printf("%s: loss %.5f (inference %.5f); LoRA |g| %.5f slope %.5f; full |g| %.5f slope %.5f\n", fams[fi], l,
               lref, gn, fd, gfn, fdf);
        trainer_free(tf);
        slm_model_close(m);
    }
}

static void test_model(void) {
    const char *path = test_model_path();
    if (!path) {
        test_skip("no model (SLM_TEST_MODEL): the Gemma 3 270M checks did not run");
        return;
    }
    slm_model *m;
    if (slm_model_open(path, &m)) { CHECKF(0, "open %s: %s", path, slm_last_error()); return; }
    slm_token *tok;
    size_t nt;
    CHECK(!slm_tokenize(m, TEXT, strlen(TEXT), true, false, &tok, &nt));
    int n = (int)nt;
    uint8_t *mask = calloc(n, 1);
    for (int i = n / 2; i < n; i++) mask[i] = 1;
    train_params p = params_for(false, 64, 4);
    slm_trainer *t, *tc;
    CHECK(!trainer_new(m, &p, &t));
    p.checkpoint = true;
    CHECK(!trainer_new(m, &p, &tc));
    /* 1. the forward's loss is the inference path's (B = 0 at init: the adapter adds nothing) */
    double l_tr, l_ref = session_loss(m, tok, n, mask);
    int ns;
    CHECK(!trainer_eval_loss(t, tok, mask, n, &l_tr, &ns));
    double l_init32;
    CHECK(!trainer_eval_loss(t, tok, mask, n < 32 ? n : 32, &l_init32, &ns));
    CHECK(!trainer_eval_loss(t, tok, mask, n, &l_tr, &ns));
    printf("loss over %d tokens: trainer %.6f, slm inference (precise) %.6f\n", ns, l_tr, l_ref);
    CHECKF(fabs(l_tr - l_ref) < 2e-5 * fabs(l_ref) + 1e-4, "loss %.6f vs slm inference (precise) %.6f over %d", l_tr,
           l_ref, ns);
    /* 2. a non-zero B in both trainers, then gradients: checkpointing changes nothing */
    lora_adapter *ads[2] = { trainer_lora(t), trainer_lora(tc) };
    uint64_t save = rng;
    same_random_b(ads, 2, 0.01);
    rng = save;
    double l1, l2;
    int n1, n2;
    CHECK(!trainer_accumulate(t, tok, mask, n, &l1, &n1));
    CHECK(!trainer_accumulate(tc, tok, mask, n, &l2, &n2));
    size_t ng, ng2;
    float *g = lora_grads(t, &ng), *g2 = lora_grads(tc, &ng2);
    CHECK(l1 == l2 && ng == ng2 && memcmp(g, g2, ng * 4) == 0);
    /* 3. the gradient against the loss: central difference along it */
    double gn = test_norm(g, ng);
    double fd = lora_slope(t, g, gn, 2e-3, tok, mask, n);
    printf("LoRA: gradient norm %.6f, loss slope along the gradient %.6f\n", gn, fd);
    CHECKF(fabs(fd - gn) < 0.01 * gn, "LoRA gradient norm %.6f, loss slope along it %.6f", gn, fd);
    /* 4. an optimizer step lowers the loss */
    double gnorm, l3;
    CHECK(!trainer_step(t, ns, 1e-3f, 1.0f, &gnorm));
    CHECK(!trainer_eval_loss(t, tok, mask, n, &l3, &ns));
    CHECKF(l3 < l1, "loss after a step %.5f, before %.5f", l3, l1);
    free(g); free(g2);
    trainer_free(t);
    trainer_free(tc);
    test_model_full(m, tok, mask, n < 32 ? n : 32, l_init32);
    free(mask);
    free(tok);
    slm_model_close(m);
}

int main(void) {
    test_arch_models();
    test_model();
    test_tmp_cleanup();
    return test_finish();
}
