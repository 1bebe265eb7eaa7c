/* The optimizer step (gradient scaling, global-norm clipping, AdamW), the
 * optimizer state for checkpoints, the memory plan and the full-model
 * writer. */
#include "train/train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/status.h"
#include "gguf/gguf_write.h"
#include "quant/quant.h"
#include "train/gemm.h"
#include "train/ops_train.h"

size_t trainer_n_params(const slm_trainer *t) { return t->n_par; }

double tr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

void trainer_times(const slm_trainer *t, double out[4]) { memcpy(out, t->times, sizeof t->times); }
const float *trainer_grad_data(const slm_trainer *t) { return t->grad; }

typedef struct {
    slm_trainer *t;
    float scale;          /* pass 1: divides the gradient; pass 2: clip factor */
    double *sumsq;        /* one per worker */
    float lr, bc1, bc2;
    bool update;
} step_job;

/* Each worker owns a fixed slice of the arena: the norm's partial sums are
 * added in worker order afterwards, so the result depends only on nth. */
static void step_worker(void *ctx, int ith, int nth) {
    const step_job *j = ctx;
    slm_trainer *t = j->t;
    long lo, hi;
    slm_split_range((long)t->n_par, ith, nth, &lo, &hi);
    if (!j->update) {
        double ss = 0;
        for (long i = lo; i < hi; i++) {
            float g = t->grad[i] * j->scale;
            t->grad[i] = g;
            ss += (double)g * g;
        }
        j->sumsq[ith] = ss;
        return;
    }
    const train_params *p = &t->p;
    float b1 = p->beta1, b2 = p->beta2, lr = j->lr, c = j->scale;
    float step_size = lr / j->bc1, sbc2 = sqrtf(j->bc2);
    for (int s = 0; s < t->n_segs; s++) {
        long a = (long)t->segs[s].off, b = a + (long)t->segs[s].n;
        if (a < lo) a = lo;
        if (b > hi) b = hi;
        float decay = t->segs[s].decay ? 1.0f - lr * p->weight_decay : 1.0f;
        for (long i = a; i < b; i++) {
            float g = t->grad[i] * c;
            float m = b1 * t->adam_m[i] + (1.0f - b1) * g;
            float v = b2 * t->adam_v[i] + (1.0f - b2) * g * g;
            t->adam_m[i] = m;
            t->adam_v[i] = v;
            t->par[i] = t->par[i] * decay - step_size * m / (sqrtf(v) / sbc2 + p->eps);
            t->grad[i] = 0.0f;
        }
    }
}

slm_status trainer_step(slm_trainer *t, double grad_div, float lr, float clip, double *grad_norm) {
    if (!(grad_div > 0)) return slm_fail(SLM_ERR_INVALID_ARG, "trainer_step: grad_div must be > 0 (got %g)", grad_div);
    if (!(lr >= 0) || !(clip >= 0)) return slm_fail(SLM_ERR_INVALID_ARG, "trainer_step: lr and clip must be >= 0");
    double sums[64] = { 0 };
    double *ss = t->nth <= 64 ? sums : calloc(t->nth, sizeof(double));
    if (!ss) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    step_job j = { t, (float)(1.0 / grad_div), ss, lr, 0, 0, false };
    slm_pool_run(t->pool, step_worker, &j);
    double tot = 0;
    for (int i = 0; i < t->nth; i++) tot += ss[i];
    if (ss != sums) free(ss);
    double norm = sqrt(tot);
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm)) return slm_fail(SLM_ERR_INVALID_ARG, "trainer_step: the gradient is not finite (norm %g)", norm);
    /* as torch.nn.utils.clip_grad_norm_ */
    float cf = clip > 0 && norm > clip ? (float)(clip / (norm + 1e-6)) : 1.0f;
    double t0 = tr_now();
    t->step++;
    j.update = true;
    j.scale = cf;
    j.bc1 = 1.0f - powf(t->p.beta1, (float)t->step);
    j.bc2 = 1.0f - powf(t->p.beta2, (float)t->step);
    slm_pool_run(t->pool, step_worker, &j);
    t->times[3] += tr_now() - t0;
    return SLM_OK;
}

/* ---- optimizer state ------------------------------------------------------ */

size_t trainer_state_floats(const slm_trainer *t) { return 3 * t->n_par; }

void trainer_state_get(const slm_trainer *t, float *dst, int64_t *step) {
    memcpy(dst, t->par, t->n_par * sizeof(float));
    memcpy(dst + t->n_par, t->adam_m, t->n_par * sizeof(float));
    memcpy(dst + 2 * t->n_par, t->adam_v, t->n_par * sizeof(float));
    if (step) *step = t->step;
}

void trainer_state_set(slm_trainer *t, const float *src, int64_t step) {
    memcpy(t->par, src, t->n_par * sizeof(float));
    memcpy(t->adam_m, src + t->n_par, t->n_par * sizeof(float));
    memcpy(t->adam_v, src + 2 * t->n_par, t->n_par * sizeof(float));
    memset(t->grad, 0, t->n_par * sizeof(float));
    t->step = step;
}

/* ---- memory plan ------------------------------------------------------------ */

#define MIB(x) ((double)(x) / (1024.0 * 1024.0))

size_t trainer_memory_plan(const slm_trainer *t, char *buf, size_t cap) {
    const slm_config *c = &t->m->cfg;
    size_t T = t->p.max_seq, E = c->n_embd;
    size_t par = t->n_par * sizeof(float);
    size_t rec_tok = t->act_floats_tok * sizeof(float);
    size_t hs_tok = (size_t)(c->n_layer + 1) * E * sizeof(float);
    size_t acts_tok = (size_t)t->n_acts * rec_tok + hs_tok;
    tr_attn as = { (int)T, c->n_head, c->n_head_kv, c->head_dim, c->head_dim_v, 0, c->attn_scale };
    size_t scratch = (t->wbuf_floats + t->wbuf2_floats + (size_t)t->nth * TG_NR * t->deq_tmp_cols + (size_t)t->nth * (TG_PACK_FLOATS + tr_attn_scratch_floats(&as))) * sizeof(float);
    size_t bwd_tok = t->bwd_floats / T * sizeof(float);
    size_t total = 4 * par + acts_tok * T + bwd_tok * T + scratch;
    return (size_t)snprintf(buf, cap,
        "mode: %s, %zu trainable parameters\n"
        "parameters %.1f MiB, gradients %.1f MiB, AdamW m+v %.1f MiB\n"
        "activations: %.1f KiB/token (%s: %d layer record%s of %.1f KiB + %d layer inputs of %.1f KiB), "
        "%.1f MiB at %zu tokens\n"
        "backward scratch: %.1f KiB/token, %.1f MiB; weights/head-chunk scratch, GEMM packing, attention: %.1f MiB\n"
        "total about %.1f MiB\n",
        t->p.full ? "full fine-tuning (f32 masters)" : "LoRA", t->n_par, MIB(par), MIB(par), MIB(2 * par),
        acts_tok / 1024.0, t->p.checkpoint ? "checkpointing" : "all kept", t->n_acts, t->n_acts == 1 ? "" : "s",
        rec_tok / 1024.0, c->n_layer + 1, E * 4 / 1024.0, MIB(acts_tok * T), T, bwd_tok / 1024.0, MIB(bwd_tok * T),
        MIB(scratch), MIB(total));
}

/* ---- full-model writer -------------------------------------------------------- */

slm_status trainer_save_full(const slm_trainer *t, const char *path) {
    if (!t->p.full) return slm_fail(SLM_ERR_INVALID_ARG, "trainer_save_full: the trainer is in LoRA mode");
    const gguf_file *f = t->m->gguf;
    gguf_writer *w;
    slm_status st = gguf_writer_new(&w);
    if (st) return st;
    st = gguf_writer_copy_all_kv(w, f);
    if (!st) st = gguf_writer_set_u32(w, "general.file_type", 0); /* all F32 */
    for (uint64_t i = 0; i < f->n_tensors && !st; i++) {
        const gguf_tensor *gt = &f->tensors[i];
        char name[256];
        if (gt->name.len >= sizeof name) { st = slm_fail(SLM_ERR_FORMAT, "tensor name too long"); break; }
        memcpy(name, gt->name.ptr, gt->name.len);
        name[gt->name.len] = 0;
        int s = -1;
        for (int k = 0; k < t->n_segs; k++) if (t->segs[k].gguf_index == (int)i) s = k;
        if (s >= 0)
            st = gguf_writer_add_tensor(w, name, SLM_T_F32, (int)gt->n_dims, gt->ne, t->par + t->segs[s].off,
                                        t->segs[s].n * sizeof(float));
        else
            st = gguf_writer_add_tensor(w, name, gt->type, (int)gt->n_dims, gt->ne, gt->data, gt->nbytes);
    }
    if (!st) st = gguf_writer_write(w, path);
    gguf_writer_free(w);
    return st;
}
