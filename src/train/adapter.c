/* LoRA adapter GGUF files: writing (from a trainer's adapter) and reading
 * with every field checked against the base model's file. */
#include "train/adapter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "gguf/gguf_write.h"
#include "quant/quant.h"

static const char *const target_names[LORA_N_TARGETS] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down",
};

const char *lora_target_name(int target) {
    return target >= 0 && target < LORA_N_TARGETS ? target_names[target] : NULL;
}

lora_adapter *adapter_alloc(int n_layer) {
    if (n_layer <= 0 || n_layer > 100000) return NULL;
    lora_adapter *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->n_layer = n_layer;
    a->mats = calloc((size_t)n_layer * LORA_N_TARGETS, sizeof *a->mats);
    if (!a->mats) { free(a); return NULL; }
    return a;
}

void adapter_free(lora_adapter *a) {
    if (!a) return;
    if (a->mats)
        for (int i = 0; i < a->n_layer * LORA_N_TARGETS; i++) { free(a->mats[i].a); free(a->mats[i].b); }
    free(a->mats);
    free(a);
}

float adapter_mat_scale(const lora_adapter *a, const lora_mat *lm, float user_scale) {
    return a->alpha != 0 && lm->rank > 0 ? user_scale * a->alpha / (float)lm->rank : user_scale;
}

/* ---- writing ------------------------------------------------------------- */

static slm_status base_arch(const gguf_file *g, char *buf, size_t cap) {
    gguf_str s;
    if (!gguf_get_str(g, "general.architecture", &s) || s.len == 0 || s.len >= cap)
        return slm_fail(SLM_ERR_FORMAT, "the base model has no general.architecture");
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = 0;
    return SLM_OK;
}

slm_status adapter_save(const struct slm_model *m, const lora_adapter *a, const char *path) {
    char arch[128], name[256];
    slm_status st = base_arch(m->gguf, arch, sizeof arch);
    if (st) return st;
    if (a->n_layer != m->cfg.n_layer)
        return slm_fail(SLM_ERR_INVALID_ARG, "adapter has %d layers, the model %d", a->n_layer, m->cfg.n_layer);
    gguf_writer *w;
    if ((st = gguf_writer_new(&w))) return st;
    if (!st) st = gguf_writer_set_str(w, "general.architecture", arch);
    if (!st) st = gguf_writer_set_str(w, "general.type", "adapter");
    if (!st && m->name[0]) st = gguf_writer_set_str(w, "general.name", m->name);
    if (!st) st = gguf_writer_set_str(w, "adapter.type", "lora");
    if (!st) st = gguf_writer_set_f32(w, "adapter.lora.alpha", a->alpha);
    int n_mats = 0;
    for (int il = 0; il < a->n_layer && !st; il++)
        for (int t = 0; t < LORA_N_TARGETS && !st; t++) {
            const lora_mat *lm = &a->mats[il * LORA_N_TARGETS + t];
            if (!lm->a) continue;
            snprintf(name, sizeof name, "blk.%d.%s.weight", il, target_names[t]);
            const gguf_tensor *bt = gguf_find_tensor(m->gguf, name);
            if (!bt || bt->ne[0] != (uint64_t)lm->n_in || bt->ne[1] != (uint64_t)lm->n_out || lm->rank <= 0 || !lm->b) {
                st = slm_fail(SLM_ERR_INVALID_ARG, "adapter matrix %s does not fit the model (%d x %d, rank %d)", name,
                              lm->n_out, lm->n_in, lm->rank);
                break;
            }
            char tn[300];
            uint64_t ne_a[4] = { (uint64_t)lm->n_in, (uint64_t)lm->rank, 1, 1 };
            uint64_t ne_b[4] = { (uint64_t)lm->rank, (uint64_t)lm->n_out, 1, 1 };
            snprintf(tn, sizeof tn, "%s.lora_a", name);
            st = gguf_writer_add_tensor(w, tn, SLM_T_F32, 2, ne_a, lm->a, sizeof(float) * lm->rank * (size_t)lm->n_in);
            snprintf(tn, sizeof tn, "%s.lora_b", name);
            if (!st)
                st = gguf_writer_add_tensor(w, tn, SLM_T_F32, 2, ne_b, lm->b,
                                            sizeof(float) * lm->rank * (size_t)lm->n_out);
            n_mats++;
        }
    if (!st && n_mats == 0) st = slm_fail(SLM_ERR_INVALID_ARG, "the adapter adapts no matrix");
    if (!st) st = gguf_writer_write(w, path);
    gguf_writer_free(w);
    return st;
}

/* ---- reading ------------------------------------------------------------- */

/* "blk.N.<target>.weight.lora_a|b" -> layer, target, half (0 = A, 1 = B).
 * False for any other name. */
static bool parse_name(gguf_str s, int *layer, int *target, int *half) {
    char buf[256];
    if (s.len == 0 || s.len >= sizeof buf || memchr(s.ptr, 0, s.len)) return false;
    memcpy(buf, s.ptr, s.len);
    buf[s.len] = 0;
    size_t n = s.len;
    if (n < 8 || strncmp(buf + n - 7, ".lora_", 6) != 0) return false;
    if (buf[n - 1] == 'a') *half = 0;
    else if (buf[n - 1] == 'b') *half = 1;
    else return false;
    buf[n - 7] = 0;
    if (strncmp(buf, "blk.", 4) != 0) return false;
    const char *p = buf + 4;
    long il = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 7; p++, digits++) il = il * 10 + (*p - '0');
    if (digits == 0 || (digits > 1 && buf[4] == '0') || *p != '.') return false;
    p++;
    for (int t = 0; t < LORA_N_TARGETS; t++) {
        size_t tl = strlen(target_names[t]);
        if (strncmp(p, target_names[t], tl) == 0 && strcmp(p + tl, ".weight") == 0) {
            *layer = (int)il;
            *target = t;
            return true;
        }
    }
    return false;
}

/* Copies a tensor's values to f32; false if one is not finite. */
static bool read_f32(const gguf_tensor *t, float *dst, size_t n) {
    const uint8_t *src = t->data;
    if (t->type == SLM_T_F32) {
        memcpy(dst, src, n * sizeof(float));
    } else {
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = slm_f16_to_f32(h);
        }
    }
    bool finite = true;
    for (size_t i = 0; i < n; i++) finite &= isfinite(dst[i]) != 0;
    return finite;
}

static void str_c(gguf_str s, char *buf, size_t cap) {
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    memcpy(buf, s.ptr, n);
    buf[n] = 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 32) buf[i] = '?';
}

slm_status adapter_load_gguf(const gguf_file *base, const gguf_file *g, const char *path, lora_adapter **out) {
    *out = NULL;
    char arch[128], key[192], tname[256];
    slm_status st = base_arch(base, arch, sizeof arch);
    if (st) return st;
    gguf_str s;
    if (!gguf_get_str(g, "general.type", &s) || !gguf_str_eq(s, "adapter"))
        return slm_fail(SLM_ERR_FORMAT, "%s is not an adapter (general.type is not \"adapter\")", path);
    if (!gguf_get_str(g, "adapter.type", &s) || !gguf_str_eq(s, "lora"))
        return slm_fail(SLM_ERR_UNSUPPORTED, "%s: adapter.type is not \"lora\"", path);
    if (!gguf_get_str(g, "general.architecture", &s))
        return slm_fail(SLM_ERR_FORMAT, "%s has no general.architecture", path);
    if (!gguf_str_eq(s, arch)) {
        char got[64];
        str_c(s, got, sizeof got);
        return slm_fail(SLM_ERR_INVALID_ARG, "%s is an adapter for architecture '%s', the model is '%s'", path, got, arch);
    }
    double alpha = 0;
    if (gguf_find(g, "adapter.lora.alpha") && !gguf_get_f64(g, "adapter.lora.alpha", &alpha))
        return slm_fail(SLM_ERR_FORMAT, "%s: adapter.lora.alpha is not a number", path);
    if (!(alpha >= 0 && alpha < 1e6))
        return slm_fail(SLM_ERR_FORMAT, "%s: adapter.lora.alpha %g is out of range", path, alpha);
    int64_t n_layer = 0;
    snprintf(key, sizeof key, "%s.block_count", arch);
    if (!gguf_get_i64(base, key, &n_layer) || n_layer <= 0 || n_layer > 100000)
        return slm_fail(SLM_ERR_FORMAT, "the base model has no valid %s", key);
    if (g->n_tensors == 0) return slm_fail(SLM_ERR_FORMAT, "%s holds no tensors", path);

    lora_adapter *a = adapter_alloc((int)n_layer);
    if (!a) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    a->alpha = (float)alpha;
    /* first pass: names, types and shapes; which tensor is which half */
    const gguf_tensor **halves = calloc((size_t)n_layer * LORA_N_TARGETS * 2, sizeof *halves);
    if (!halves) { adapter_free(a); return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
    for (uint64_t i = 0; i < g->n_tensors && !st; i++) {
        const gguf_tensor *t = &g->tensors[i];
        char tn[128];
        str_c(t->name, tn, sizeof tn);
        int il, tg, half;
        if (!parse_name(t->name, &il, &tg, &half)) {
            st = slm_fail(SLM_ERR_FORMAT, "%s: tensor '%s' is not a LoRA tensor of a known matrix "
                          "(blk.N.{attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down}.weight.lora_{a,b})", path, tn);
            break;
        }
        snprintf(tname, sizeof tname, "blk.%d.%s.weight", il, target_names[tg]);
        const gguf_tensor *bt = il < n_layer ? gguf_find_tensor(base, tname) : NULL;
        if (!bt) { st = slm_fail(SLM_ERR_INVALID_ARG, "%s: tensor '%s' adapts '%s', which the model does not have", path, tn, tname); break; }
        if (t->type != SLM_T_F32 && t->type != SLM_T_F16) {
            const slm_type_info *ti = slm_type_get(t->type);
            st = slm_fail(SLM_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s; adapters must be F32 or F16", path, tn,
                          ti ? ti->name : "?");
            break;
        }
        if (t->n_dims != 2 || t->ne[2] != 1 || t->ne[3] != 1) {
            st = slm_fail(SLM_ERR_FORMAT, "%s: tensor '%s' must have 2 dimensions", path, tn);
            break;
        }
        uint64_t want0 = half == 0 ? bt->ne[0] : t->ne[0];
        uint64_t want1 = half == 0 ? t->ne[1] : bt->ne[1];
        if (t->ne[0] != want0 || t->ne[1] != want1 || t->ne[half == 0 ? 1 : 0] == 0) {
            st = slm_fail(SLM_ERR_INVALID_ARG, "%s: tensor '%s' has shape [%llu, %llu]; the base matrix %s is [%llu, %llu] "
                          "(n_in, n_out), so lora_a must be [n_in, rank] and lora_b [rank, n_out]", path, tn,
                          (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], tname,
                          (unsigned long long)bt->ne[0], (unsigned long long)bt->ne[1]);
            break;
        }
        size_t slot = ((size_t)il * LORA_N_TARGETS + tg) * 2 + half;
        if (halves[slot]) { st = slm_fail(SLM_ERR_FORMAT, "%s: tensor '%s' appears twice", path, tn); break; }
        halves[slot] = t;
    }
    /* second pass: pairs complete, ranks agree; copy to f32 */
    for (int il = 0; il < n_layer && !st; il++)
        for (int tg = 0; tg < LORA_N_TARGETS && !st; tg++) {
            size_t slot = ((size_t)il * LORA_N_TARGETS + tg) * 2;
            const gguf_tensor *ta = halves[slot], *tb = halves[slot + 1];
            if (!ta && !tb) continue;
            snprintf(tname, sizeof tname, "blk.%d.%s.weight", il, target_names[tg]);
            if (!ta || !tb) {
                st = slm_fail(SLM_ERR_FORMAT, "%s: %s has a lora_%c but no lora_%c", path, tname, ta ? 'a' : 'b',
                              ta ? 'b' : 'a');
                break;
            }
            if (ta->ne[1] != tb->ne[0]) {
                st = slm_fail(SLM_ERR_FORMAT, "%s: %s: lora_a has rank %llu but lora_b %llu", path, tname,
                              (unsigned long long)ta->ne[1], (unsigned long long)tb->ne[0]);
                break;
            }
            if (ta->ne[1] > 65536) { st = slm_fail(SLM_ERR_UNSUPPORTED, "%s: %s: rank %llu is too large", path, tname, (unsigned long long)ta->ne[1]); break; }
            lora_mat *lm = &a->mats[il * LORA_N_TARGETS + tg];
            lm->rank = (int)ta->ne[1];
            lm->n_in = (int)ta->ne[0];
            lm->n_out = (int)tb->ne[1];
            lm->a = malloc(sizeof(float) * lm->rank * (size_t)lm->n_in);
            lm->b = malloc(sizeof(float) * lm->rank * (size_t)lm->n_out);
            if (!lm->a || !lm->b) { st = slm_fail(SLM_ERR_NOMEM, "out of memory reading %s", path); break; }
            if (!read_f32(ta, lm->a, (size_t)lm->rank * lm->n_in) || !read_f32(tb, lm->b, (size_t)lm->rank * lm->n_out)) {
                st = slm_fail(SLM_ERR_FORMAT, "%s: %s: the adapter holds a value that is not finite", path, tname);
                break;
            }
            a->targets |= 1u << tg;
            if (lm->rank > a->rank) a->rank = lm->rank;
        }
    free(halves);
    if (st) { adapter_free(a); return st; }
    *out = a;
    return SLM_OK;
}

slm_status adapter_load(const gguf_file *base, const char *path, lora_adapter **out) {
    *out = NULL;
    gguf_file *g;
    slm_status st = gguf_open(path, &g);
    if (st) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", slm_last_error());
        return slm_fail(st, "cannot read adapter %s: %s", path, msg);
    }
    st = adapter_load_gguf(base, g, path, out);
    gguf_close(g);
    return st;
}
