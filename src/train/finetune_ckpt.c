/* Fine-tuning checkpoints and the loss plot.
 *
 * DIR/checkpoint.bin holds everything a bit-identical continuation needs:
 * a fingerprint of the run (data sizes and every option that shapes the
 * numbers; a resume with other values is refused), the loop position (step,
 * epoch, position in the epoch's order: the order itself is a function of
 * seed and epoch), the validation bookkeeping and loss history, and the
 * trainer's state (parameters, AdamW moments, step). DIR/adapter.gguf is the
 * adapter at that step, usable on its own. Both are written to temporary
 * names, flushed and renamed. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/status.h"
#include "train/adapter.h"
#include "train/finetune.h"

#define CKPT_MAGIC "SLMFTCK1"

typedef struct {
    int64_t full, rank, targets, seq, batch, pack, n_train, n_val, total_steps, train_tokens, n_floats;
    uint64_t seed;
    double alpha, lr, warmup, cosine, clip, weight_decay, dropout;
} fingerprint;

static fingerprint fp_of(const slm_finetune *f) {
    fingerprint x;
    memset(&x, 0, sizeof x);
    x.full = f->p.full, x.rank = f->p.rank, x.targets = f->p.targets, x.seq = f->p.seq, x.batch = f->p.batch;
    x.pack = f->p.pack, x.n_train = f->train.n, x.n_val = f->val.n, x.total_steps = f->total_steps;
    x.train_tokens = f->train.n_tokens, x.n_floats = (int64_t)trainer_state_floats(f->tr);
    x.seed = f->p.seed;
    x.alpha = f->p.alpha, x.lr = f->p.lr, x.warmup = f->p.warmup, x.cosine = f->p.cosine, x.clip = f->p.clip;
    x.weight_decay = f->p.weight_decay, x.dropout = f->p.dropout;
    return x;
}

static bool wr(FILE *fp, const void *p, size_t n) { return n == 0 || fwrite(p, 1, n, fp) == n; }
static bool rd(FILE *fp, void *p, size_t n) { return n == 0 || fread(p, 1, n, fp) == n; }

static char *path_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    if (p) sprintf(p, "%s/%s", dir, name);
    return p;
}

slm_status ft_checkpoint_save(slm_finetune *f) {
    if (mkdir(f->ckpt_dir, 0777) != 0 && errno != EEXIST)
        return slm_fail(SLM_ERR_IO, "cannot create checkpoint directory %s: %s", f->ckpt_dir, strerror(errno));
    slm_status st = SLM_OK;
    if (!f->p.full) {
        char *ap = path_in(f->ckpt_dir, "adapter.gguf");
        if (!ap) return slm_fail(SLM_ERR_NOMEM, "out of memory");
        st = adapter_save(f->m, trainer_lora(f->tr), ap);
        free(ap);
        if (st) return st;
    }
    char *path = path_in(f->ckpt_dir, "checkpoint.bin"), *tmp = path_in(f->ckpt_dir, "checkpoint.bin.tmp");
    size_t nf = trainer_state_floats(f->tr);
    float *state = malloc(sizeof(float) * (nf ? nf : 1));
    FILE *fp = NULL;
    if (!path || !tmp || !state) { st = slm_fail(SLM_ERR_NOMEM, "out of memory"); goto out; }
    int64_t tstep;
    trainer_state_get(f->tr, state, &tstep);
    fp = fopen(tmp, "wb");
    if (!fp) { st = slm_fail(SLM_ERR_IO, "cannot write %s: %s", tmp, strerror(errno)); goto out; }
    fingerprint x = fp_of(f);
    int32_t pos[6] = { f->step, f->epoch, f->pos, f->best_step, f->bad_evals, f->best != NULL };
    int32_t nh[2] = { f->n_hist, f->n_vhist };
    bool ok = wr(fp, CKPT_MAGIC, 8) && wr(fp, &x, sizeof x) && wr(fp, pos, sizeof pos) &&
              wr(fp, &f->best_val, sizeof f->best_val) && wr(fp, &f->tokens_done, sizeof f->tokens_done) &&
              wr(fp, nh, sizeof nh) && wr(fp, f->hist, sizeof(ft_point) * f->n_hist) &&
              wr(fp, f->vhist, sizeof(ft_point) * f->n_vhist) && wr(fp, &tstep, sizeof tstep) &&
              wr(fp, state, sizeof(float) * nf) && (!f->best || wr(fp, f->best, sizeof(float) * nf));
    ok = ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    ok = (fclose(fp) == 0) && ok;
    fp = NULL;
    if (!ok || rename(tmp, path) != 0) {
        st = slm_fail(SLM_ERR_IO, "cannot write checkpoint %s: %s", path, strerror(errno));
        remove(tmp);
    }
out:
    free(state);
    free(path);
    free(tmp);
    return st;
}

#define FP_CHECK(field, name)                                                                                       \
    if (got.field != want.field)                                                                                    \
        return slm_fail(SLM_ERR_INVALID_ARG, "checkpoint %s was made with a different %s (%g, now %g); resume with " \
                        "the same data and options", path, name, (double)got.field, (double)want.field);

static slm_status check_fp(const char *path, fingerprint got, fingerprint want) {
    FP_CHECK(full, "--full");
    FP_CHECK(rank, "--rank");
    FP_CHECK(targets, "--targets");
    FP_CHECK(seq, "--seq");
    FP_CHECK(batch, "--batch");
    FP_CHECK(pack, "--pack");
    FP_CHECK(n_train, "number of training sequences");
    FP_CHECK(n_val, "number of validation sequences");
    FP_CHECK(train_tokens, "number of training tokens");
    FP_CHECK(total_steps, "number of steps");
    FP_CHECK(seed, "--seed");
    FP_CHECK(alpha, "--alpha");
    FP_CHECK(lr, "--lr");
    FP_CHECK(warmup, "--warmup");
    FP_CHECK(cosine, "--schedule");
    FP_CHECK(clip, "--clip");
    FP_CHECK(weight_decay, "--weight-decay");
    FP_CHECK(dropout, "--dropout");
    FP_CHECK(n_floats, "trainable size");
    return SLM_OK;
}

slm_status ft_checkpoint_load(slm_finetune *f) {
    char *path = path_in(f->ckpt_dir, "checkpoint.bin");
    if (!path) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    FILE *fp = fopen(path, "rb");
    slm_status st = SLM_OK;
    float *state = NULL;
    if (!fp) { st = slm_fail(SLM_ERR_IO, "cannot resume: no checkpoint at %s", path); goto out; }
    char magic[8];
    fingerprint got;
    int32_t pos[6], nh[2];
    if (!rd(fp, magic, 8) || memcmp(magic, CKPT_MAGIC, 8) != 0) { st = slm_fail(SLM_ERR_FORMAT, "%s is not a checkpoint", path); goto out; }
    if (!rd(fp, &got, sizeof got) || !rd(fp, pos, sizeof pos) || !rd(fp, &f->best_val, sizeof f->best_val) ||
        !rd(fp, &f->tokens_done, sizeof f->tokens_done) || !rd(fp, nh, sizeof nh)) {
        st = slm_fail(SLM_ERR_FORMAT, "checkpoint %s is truncated", path);
        goto out;
    }
    if ((st = check_fp(path, got, fp_of(f)))) goto out;
    if (pos[0] < 0 || pos[0] > f->total_steps || pos[1] < 0 || pos[2] < 0 || pos[2] >= f->train.n || nh[0] < 0 ||
        nh[0] > pos[0] || nh[1] < 0 || nh[1] > pos[0]) {
        st = slm_fail(SLM_ERR_FORMAT, "checkpoint %s holds an impossible position", path);
        goto out;
    }
    f->step = pos[0], f->epoch = pos[1], f->pos = pos[2], f->best_step = pos[3], f->bad_evals = pos[4];
    f->n_hist = f->cap_hist = nh[0];
    f->n_vhist = f->cap_vhist = nh[1];
    f->hist = malloc(sizeof(ft_point) * (nh[0] + 1));
    f->vhist = malloc(sizeof(ft_point) * (nh[1] + 1));
    size_t nf = trainer_state_floats(f->tr);
    state = malloc(sizeof(float) * (nf ? nf : 1));
    if (pos[5]) f->best = malloc(sizeof(float) * (nf ? nf : 1));
    if (!f->hist || !f->vhist || !state || (pos[5] && !f->best)) { st = slm_fail(SLM_ERR_NOMEM, "out of memory"); goto out; }
    int64_t tstep;
    if (!rd(fp, f->hist, sizeof(ft_point) * nh[0]) || !rd(fp, f->vhist, sizeof(ft_point) * nh[1]) ||
        !rd(fp, &tstep, sizeof tstep) || !rd(fp, state, sizeof(float) * nf) ||
        (pos[5] && !rd(fp, f->best, sizeof(float) * nf))) {
        st = slm_fail(SLM_ERR_FORMAT, "checkpoint %s is truncated", path);
        goto out;
    }
    trainer_state_set(f->tr, state, tstep);
    ft_shuffle(f->order, f->train.n, f->p.seed, f->epoch);
out:
    if (fp) fclose(fp);
    free(state);
    free(path);
    return st;
}

/* ---- loss plot ------------------------------------------------------------------ */

static void polyline(FILE *fp, const ft_point *pt, int n, int s0, int s1, double lo, double hi, const char *color) {
    if (n == 0) return;
    fprintf(fp, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", color);
    for (int i = 0; i < n; i++) {
        if (!isfinite(pt[i].loss)) continue;
        double x = 60 + 520.0 * (pt[i].step - s0) / (s1 > s0 ? s1 - s0 : 1);
        double y = 330 - 300.0 * (pt[i].loss - lo) / (hi > lo ? hi - lo : 1);
        fprintf(fp, "%.1f,%.1f ", x, y);
    }
    fputs("\"/>\n", fp);
}

slm_status ft_write_svg(const slm_finetune *f, const char *path) {
    char *tmp = malloc(strlen(path) + 8);
    if (!tmp) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    sprintf(tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    if (!fp) {
        slm_status st = slm_fail(SLM_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    double lo = INFINITY, hi = -INFINITY;
    const ft_point *sets[2] = { f->hist, f->vhist };
    int ns[2] = { f->n_hist, f->n_vhist };
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < ns[s]; i++)
            if (isfinite(sets[s][i].loss)) lo = fmin(lo, sets[s][i].loss), hi = fmax(hi, sets[s][i].loss);
    if (!(lo <= hi)) lo = 0, hi = 1;
    int s0 = f->n_hist ? f->hist[0].step : 0, s1 = f->n_hist ? f->hist[f->n_hist - 1].step : 1;
    fputs("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\" height=\"380\" font-family=\"sans-serif\" "
          "font-size=\"12\">\n<rect width=\"640\" height=\"380\" fill=\"white\"/>\n"
          "<path d=\"M60 30 V330 H580\" stroke=\"black\" fill=\"none\"/>\n", fp);
    fprintf(fp, "<text x=\"55\" y=\"34\" text-anchor=\"end\">%.3f</text>\n", hi);
    fprintf(fp, "<text x=\"55\" y=\"334\" text-anchor=\"end\">%.3f</text>\n", lo);
    fprintf(fp, "<text x=\"60\" y=\"350\">%d</text><text x=\"580\" y=\"350\" text-anchor=\"end\">%d</text>\n", s0, s1);
    fputs("<text x=\"320\" y=\"370\" text-anchor=\"middle\">step</text>\n", fp);
    fputs("<text x=\"70\" y=\"20\" fill=\"#1f77b4\">train loss</text>\n", fp);
    if (f->n_vhist) fputs("<text x=\"170\" y=\"20\" fill=\"#d62728\">validation loss</text>\n", fp);
    polyline(fp, f->hist, f->n_hist, s0, s1, lo, hi, "#1f77b4");
    polyline(fp, f->vhist, f->n_vhist, s0, s1, lo, hi, "#d62728");
    fputs("</svg>\n", fp);
    bool ok = !ferror(fp);
    ok = fclose(fp) == 0 && ok;
    slm_status st = SLM_OK;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        st = slm_fail(SLM_ERR_IO, "cannot write %s", path);
    }
    free(tmp);
    return st;
}
