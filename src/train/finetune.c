/* The fine-tuning loop: data split and order, learning-rate schedule,
 * gradient accumulation, validation with early stopping, and the final
 * adapter. Checkpoints and the loss plot are in finetune_ckpt.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/status.h"
#include "train/adapter.h"
#include "train/finetune.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

void slm_finetune_default_params(slm_finetune_params *p) {
    memset(p, 0, sizeof *p);
    p->rank = 16;
    p->alpha = 32;
    p->targets = LORA_TARGETS_DEFAULT;
    p->epochs = 1;
    p->lr = 2e-4f;
    p->cosine = true;
    p->batch = 8;
    p->clip = 1.0f;
    p->seq = 512;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* splitmix64: the data order's only source of randomness */
static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void ft_shuffle(int *order, int n, uint64_t seed, int epoch) {
    uint64_t s = seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(epoch + 2));
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(mix(&s) % (uint64_t)(i + 1));
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static slm_status check_params(const slm_finetune_params *p) {
    if (!p->data) return slm_fail(SLM_ERR_INVALID_ARG, "no training data given");
    if (!p->out) return slm_fail(SLM_ERR_INVALID_ARG, "no output path given");
    if (!p->full && (p->rank < 1 || p->rank > 4096)) return slm_fail(SLM_ERR_INVALID_ARG, "rank must be in 1..4096");
    if (!(p->alpha > 0 && p->alpha < 1e6)) return slm_fail(SLM_ERR_INVALID_ARG, "alpha must be positive");
    if (!(p->dropout >= 0 && p->dropout < 1)) return slm_fail(SLM_ERR_INVALID_ARG, "dropout must be in [0, 1)");
    if (!p->full && (p->targets == 0 || (p->targets & ~LORA_TARGETS_DEFAULT)))
        return slm_fail(SLM_ERR_INVALID_ARG, "no valid LoRA target chosen");
    if (p->steps < 0 || p->epochs < 0 || (p->steps == 0 && p->epochs == 0))
        return slm_fail(SLM_ERR_INVALID_ARG, "give a positive number of steps or epochs");
    if (!(p->lr > 0 && p->lr < 10)) return slm_fail(SLM_ERR_INVALID_ARG, "learning rate must be in (0, 10)");
    if (p->warmup < 0 || p->batch < 1 || p->batch > 1 << 20) return slm_fail(SLM_ERR_INVALID_ARG, "bad warm-up or batch");
    if (!(p->clip >= 0) || !(p->weight_decay >= 0)) return slm_fail(SLM_ERR_INVALID_ARG, "clip and weight decay must not be negative");
    if (p->seq < 8 || p->seq > 1 << 20) return slm_fail(SLM_ERR_INVALID_ARG, "sequence length must be in 8..1048576");
    if (!(p->val_split >= 0 && p->val_split <= 0.5f)) return slm_fail(SLM_ERR_INVALID_ARG, "validation split must be in 0..0.5");
    if (p->val && p->val_split > 0) return slm_fail(SLM_ERR_INVALID_ARG, "give a validation file or a split, not both");
    if (p->eval_every < 0 || p->patience < 0 || p->save_every < 0)
        return slm_fail(SLM_ERR_INVALID_ARG, "eval/patience/save intervals must not be negative");
    return SLM_OK;
}

/* Moves examples idx[0..n) of src into dst (src keeps the rest). */
static slm_status take(train_data *src, const int *idx, int n, train_data *dst) {
    memset(dst, 0, sizeof *dst);
    dst->ex = calloc(n ? n : 1, sizeof *dst->ex);
    uint8_t *gone = calloc(src->n ? src->n : 1, 1);
    if (!dst->ex || !gone) { free(gone); free(dst->ex); dst->ex = NULL; return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
    dst->cap = n;
    for (int i = 0; i < n; i++) {
        train_example e = src->ex[idx[i]];
        dst->ex[dst->n++] = e;
        gone[idx[i]] = 1;
        dst->n_tokens += e.n;
        for (int k = 1; k < e.n; k++) dst->n_scored += e.mask[k] != 0;
    }
    int w = 0;
    for (int i = 0; i < src->n; i++)
        if (!gone[i]) src->ex[w++] = src->ex[i];
    src->n = w;
    src->n_tokens -= dst->n_tokens;
    src->n_scored -= dst->n_scored;
    free(gone);
    return SLM_OK;
}

static slm_status load_data(slm_finetune *f) {
    const slm_finetune_params *p = &f->p;
    train_data_params dp = { .seq = p->seq, .truncate = p->truncate, .chat = p->chat };
    slm_status st = train_data_load(f->m, p->data, &dp, &f->raw);
    if (st) return st;
    f->sum.n_skipped = f->raw.n_skipped;
    f->sum.n_truncated = f->raw.n_truncated;
    memcpy(f->sum.skipped_lines, f->raw.skipped_lines, sizeof f->sum.skipped_lines);
    memcpy(f->sum.truncated_lines, f->raw.truncated_lines, sizeof f->sum.truncated_lines);
    if (p->val) {
        st = train_data_load(f->m, p->val, &dp, &f->val);
        if (st) return st;
        f->sum.n_skipped += f->val.n_skipped;
        f->sum.n_truncated += f->val.n_truncated;
    } else if (p->val_split > 0) {
        int n_val = (int)ceil(p->val_split * f->raw.n);
        if (n_val >= f->raw.n)
            return slm_fail(SLM_ERR_INVALID_ARG, "%s: %d examples are too few to hold out %g of them for validation",
                            p->data, f->raw.n, p->val_split);
        int *perm = malloc(sizeof(int) * f->raw.n);
        if (!perm) return slm_fail(SLM_ERR_NOMEM, "out of memory");
        ft_shuffle(perm, f->raw.n, p->seed, -1);
        st = take(&f->raw, perm, n_val, &f->val);
        free(perm);
        if (st) return st;
    }
    if (p->pack) {
        int *ord = malloc(sizeof(int) * f->raw.n);
        if (!ord) return slm_fail(SLM_ERR_NOMEM, "out of memory");
        for (int i = 0; i < f->raw.n; i++) ord[i] = i;
        st = train_data_pack(&f->raw, ord, f->raw.n, p->seq, &f->train);
        free(ord);
        if (st) return st;
    } else {
        f->train = f->raw;
        memset(&f->raw, 0, sizeof f->raw);
    }
    f->sum.n_train = f->train.n;
    f->sum.n_val = f->val.n;
    f->sum.train_tokens = f->train.n_tokens;
    f->sum.train_scored = f->train.n_scored;
    f->sum.val_tokens = f->val.n_tokens;
    f->sum.val_scored = f->val.n_scored;
    if (f->train.n_scored == 0) return slm_fail(SLM_ERR_INVALID_ARG, "%s: no token to learn", p->data);
    return SLM_OK;
}

slm_status slm_finetune_new(const slm_model *model, const slm_finetune_params *p, slm_finetune **out) {
    *out = NULL;
    slm_status st = check_params(p);
    if (st) return st;
    slm_finetune *f = calloc(1, sizeof *f);
    if (!f) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    f->m = model;
    f->p = *p;
    f->out = dup_str(p->out);
    if (p->checkpoint_dir) f->ckpt_dir = dup_str(p->checkpoint_dir);
    else if (f->out && (f->ckpt_dir = malloc(strlen(p->out) + 6))) sprintf(f->ckpt_dir, "%s.ckpt", p->out);
    f->p.out = f->out;
    f->p.checkpoint_dir = f->ckpt_dir;
    f->best_val = INFINITY;
    f->best_step = -1;
    if (!f->out || !f->ckpt_dir) st = slm_fail(SLM_ERR_NOMEM, "out of memory");
    if (!st) st = load_data(f);
    f->p.data = f->p.val = NULL;   /* the caller's strings are not kept past here */
    if (!st) {
        train_params tp;
        train_default_params(&tp);
        tp.full = p->full;
        tp.rank = p->rank;
        tp.alpha = p->alpha;
        tp.dropout = p->dropout;
        tp.targets = p->targets;
        tp.max_seq = p->seq;
        tp.seed = p->seed;
        tp.n_threads = p->n_threads;
        tp.weight_decay = p->weight_decay;
        st = trainer_new(model, &tp, &f->tr);
    }
    if (!st) {
        f->total_steps = p->steps > 0 ? p->steps : (int)(((int64_t)p->epochs * f->train.n + p->batch - 1) / p->batch);
        if (f->total_steps < 1) f->total_steps = 1;
        f->order = malloc(sizeof(int) * f->train.n);
        if (!f->order) st = slm_fail(SLM_ERR_NOMEM, "out of memory");
    }
    if (!st) {
        ft_shuffle(f->order, f->train.n, p->seed, 0);
        if (p->resume) st = ft_checkpoint_load(f);
    }
    if (st) { slm_finetune_free(f); return st; }
    f->sum.total_steps = f->total_steps;
    f->sum.start_step = f->step;
    f->sum.n_trainable = (int64_t)trainer_n_params(f->tr);
    trainer_memory_plan(f->tr, f->sum.memory_plan, sizeof f->sum.memory_plan);
    f->t_start = now_s();
    *out = f;
    return SLM_OK;
}

void slm_finetune_get_summary(const slm_finetune *f, slm_finetune_summary *s) { *s = f->sum; }

bool slm_finetune_more(const slm_finetune *f) { return f->step < f->total_steps && !f->stopped; }

static float lr_at(const slm_finetune *f, int step) {
    const slm_finetune_params *p = &f->p;
    if (step < p->warmup) return p->lr * (float)(step + 1) / (float)p->warmup;
    if (!p->cosine || f->total_steps <= p->warmup) return p->lr;
    double t = (double)(step - p->warmup) / (double)(f->total_steps - p->warmup);
    return (float)(p->lr * 0.5 * (1.0 + cos(M_PI * t)));
}

static bool push(ft_point **arr, int *n, int *cap, int step, double loss) {
    if (*n == *cap) {
        int c = *cap ? 2 * *cap : 64;
        ft_point *na = realloc(*arr, sizeof *na * c);
        if (!na) return false;
        *arr = na;
        *cap = c;
    }
    (*arr)[(*n)++] = (ft_point){ step, (float)loss };
    return true;
}

static slm_status val_loss(slm_finetune *f, double *out) {
    double sum = 0;
    int64_t n = 0;
    for (int i = 0; i < f->val.n; i++) {
        const train_example *e = &f->val.ex[i];
        double ls = 0;
        int ns = 0;
        slm_status st = trainer_eval_loss(f->tr, e->tokens, e->mask, e->n, &ls, &ns);
        if (st) return st;
        sum += ls;
        n += ns;
    }
    *out = n ? sum / (double)n : NAN;
    return SLM_OK;
}

slm_status slm_finetune_step(slm_finetune *f, slm_finetune_progress *pr) {
    memset(pr, 0, sizeof *pr);
    if (!slm_finetune_more(f)) return slm_fail(SLM_ERR_INVALID_ARG, "training is finished");
    const slm_finetune_params *p = &f->p;
    double loss = 0, tokens = 0;
    int64_t scored = 0;
    for (int b = 0; b < p->batch; b++) {
        const train_example *e = &f->train.ex[f->order[f->pos]];
        double ls = 0;
        int ns = 0;
        slm_status st = trainer_accumulate(f->tr, e->tokens, e->mask, e->n, &ls, &ns);
        if (st) return st;
        loss += ls;
        scored += ns;
        tokens += e->n;
        if (++f->pos == f->train.n) {
            f->pos = 0;
            f->epoch++;
            ft_shuffle(f->order, f->train.n, p->seed, f->epoch);
        }
    }
    float lr = lr_at(f, f->step);
    double gn = 0;
    slm_status st = trainer_step(f->tr, scored > 0 ? (double)scored : 1.0, lr, p->clip, &gn);
    if (st) return st;
    f->step++;
    f->tokens_done += tokens;
    pr->loss = scored ? loss / (double)scored : NAN;
    if (!push(&f->hist, &f->n_hist, &f->cap_hist, f->step, pr->loss)) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    pr->val_loss = f->n_vhist ? f->vhist[f->n_vhist - 1].loss : NAN;
    bool last = f->step == f->total_steps;
    if (f->val.n && ((p->eval_every && f->step % p->eval_every == 0) || last)) {
        double vl;
        if ((st = val_loss(f, &vl))) return st;
        pr->evaluated = true;
        pr->val_loss = vl;
        if (!push(&f->vhist, &f->n_vhist, &f->cap_vhist, f->step, vl)) return slm_fail(SLM_ERR_NOMEM, "out of memory");
        if (vl < f->best_val) {
            f->best_val = vl;
            f->best_step = f->step;
            f->bad_evals = 0;
            if (!p->full) {   /* keep the best LoRA weights (a full model's copy would double its memory) */
                size_t nf = trainer_state_floats(f->tr);
                if (!f->best && !(f->best = malloc(sizeof(float) * nf))) return slm_fail(SLM_ERR_NOMEM, "out of memory");
                int64_t sstep;
                trainer_state_get(f->tr, f->best, &sstep);
            }
        } else if (p->patience && ++f->bad_evals >= p->patience) {
            f->stopped = true;
            pr->stopped_early = true;
        }
    }
    if (p->save_every && f->step % p->save_every == 0 && !last && !f->stopped) {
        if ((st = ft_checkpoint_save(f))) return st;
        pr->saved = true;
    }
    pr->step = f->step;
    pr->total_steps = f->total_steps;
    pr->epoch = f->epoch;
    pr->best_val_loss = f->best_val;
    pr->grad_norm = gn;
    pr->lr = lr;
    double el = now_s() - f->t_start;
    int done_here = f->step - f->sum.start_step;
    pr->tokens_per_s = el > 0 ? f->tokens_done / el : 0;
    pr->eta_s = done_here > 0 ? el / done_here * (f->total_steps - f->step) : 0;
    return SLM_OK;
}

slm_status slm_finetune_checkpoint(slm_finetune *f) { return ft_checkpoint_save(f); }

slm_status slm_finetune_finish(slm_finetune *f) {
    slm_status st;
    if (f->p.full) {
        st = trainer_save_full(f->tr, f->out);
    } else {
        if (f->best && f->best_step != f->step) {
            /* the best validation loss came earlier: write those weights */
            trainer_state_set(f->tr, f->best, f->best_step);
        }
        st = adapter_save(f->m, trainer_lora(f->tr), f->out);
    }
    if (st) return st;
    char *svg = malloc(strlen(f->out) + 10);
    if (!svg) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    sprintf(svg, "%s.loss.svg", f->out);
    st = ft_write_svg(f, svg);
    free(svg);
    return st;
}

void slm_finetune_free(slm_finetune *f) {
    if (!f) return;
    trainer_free(f->tr);
    train_data_free(&f->train);
    train_data_free(&f->val);
    train_data_free(&f->raw);
    free(f->order);
    free(f->best);
    free(f->hist);
    free(f->vhist);
    free(f->out);
    free(f->ckpt_dir);
    free(f);
}
