/* Opening a model: map the GGUF file, find the architecture's description,
 * read the hyper-parameters from the metadata and check every tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "grammar/vocab_index.h"
#include "model/model.h"
#include "quant/quant.h"

extern const slm_arch slm_arch_gemma3, slm_arch_llama, slm_arch_mistral, slm_arch_qwen2, slm_arch_phi3;
static const slm_arch *const known_archs[] = { &slm_arch_gemma3, &slm_arch_llama, &slm_arch_mistral,
                                               &slm_arch_qwen2, &slm_arch_phi3 };

const slm_arch *slm_arch_find(gguf_str name) {
    for (size_t i = 0; i < sizeof known_archs / sizeof known_archs[0]; i++)
        if (gguf_str_eq(name, known_archs[i]->name)) return known_archs[i];
    return NULL;
}

/* Reads "{arch}.{suffix}" as a positive int; missing → def (or an error when def < 0). */
static slm_status get_int(const gguf_file *f, const char *arch, const char *suffix, int def, int *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int64_t v;
    if (!gguf_get_i64(f, key, &v)) {
        if (gguf_find(f, key)) return slm_fail(SLM_ERR_FORMAT, "metadata key '%s' has a non-integer type", key);
        if (def < 0) return slm_fail(SLM_ERR_FORMAT, "model lacks metadata key '%s'", key);
        *out = def;
        return SLM_OK;
    }
    if (v <= 0 || v > (1 << 24)) return slm_fail(SLM_ERR_FORMAT, "metadata '%s' = %lld is out of range", key, (long long)v);
    *out = (int)v;
    return SLM_OK;
}

static slm_status get_float(const gguf_file *f, const char *arch, const char *suffix, float def, float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    double v;
    if (!gguf_get_f64(f, key, &v)) {
        if (gguf_find(f, key)) return slm_fail(SLM_ERR_FORMAT, "metadata key '%s' has a non-float type", key);
        if (def < 0) return slm_fail(SLM_ERR_FORMAT, "model lacks metadata key '%s'", key);
        *out = def;
        return SLM_OK;
    }
    if (!(v > 0) || !isfinite(v)) return slm_fail(SLM_ERR_FORMAT, "metadata '%s' = %g is out of range", key, v);
    *out = (float)v;
    return SLM_OK;
}

/* attention.sliding_window where it is optional: absent or 0 means none. */
static slm_status get_optional_window(const gguf_file *f, const char *arch, int *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.attention.sliding_window", arch);
    int64_t v;
    *out = 0;
    if (!gguf_find(f, key)) return SLM_OK;
    if (!gguf_get_i64(f, key, &v)) return slm_fail(SLM_ERR_FORMAT, "metadata key '%s' has a non-integer type", key);
    if (v < 0 || v > (1 << 24))
        return slm_fail(SLM_ERR_FORMAT, "metadata '%s' = %lld is out of range", key, (long long)v);
    *out = (int)v;
    return SLM_OK;
}

/* rope.scaling.*: none and "linear" change the frequencies here; Llama 3's and
 * Phi-3's scalings come as factor tensors (bound in slm_model_bind). */
static slm_status read_rope_scaling(const gguf_file *f, const char *n, slm_config *c) {
    char key[128];
    gguf_str type = { "none", 4 };
    slm_status st;
    snprintf(key, sizeof key, "%s.rope.scaling.type", n);
    if (gguf_find(f, key) && !gguf_get_str(f, key, &type))
        return slm_fail(SLM_ERR_FORMAT, "metadata key '%s' is not a string", key);
    c->rope_freq_scale = 1.0f;
    if (gguf_str_eq(type, "linear")) {
        float factor;
        if ((st = get_float(f, n, "rope.scaling.factor", -1, &factor))) return st;
        c->rope_freq_scale = 1.0f / factor;
    } else if (!gguf_str_eq(type, "none")) {
        return slm_fail(SLM_ERR_UNSUPPORTED,
                        "RoPE scaling '%.*s' is not supported (none, linear, and factor tensors are)",
                        (int)(type.len > 32 ? 32 : type.len), type.ptr);
    }
    if ((st = get_float(f, n, "rope.scaling.attn_factor", 1.0f, &c->rope_attn_factor)) ||
        (st = get_int(f, n, "rope.scaling.original_context_length", c->n_ctx_train, &c->n_ctx_orig)))
        return st;
    return SLM_OK;
}

static slm_status read_config(const gguf_file *f, const slm_arch *a, int n_vocab, slm_config *c) {
    const char *n = a->name;
    slm_status st;
    memset(c, 0, sizeof *c);
    c->n_vocab = n_vocab;
    if ((st = get_int(f, n, "embedding_length", -1, &c->n_embd)) ||
        (st = get_int(f, n, "block_count", -1, &c->n_layer)) ||
        (st = get_int(f, n, "feed_forward_length", -1, &c->n_ff)) ||
        (st = get_int(f, n, "attention.head_count", -1, &c->n_head)) ||
        (st = get_int(f, n, "attention.head_count_kv", c->n_head, &c->n_head_kv)) ||
        (st = get_int(f, n, "attention.key_length", c->n_embd / c->n_head, &c->head_dim)) ||
        (st = get_int(f, n, "attention.value_length", c->head_dim, &c->head_dim_v)) ||
        (st = get_int(f, n, "rope.dimension_count", c->head_dim, &c->n_rot)) ||
        (st = get_int(f, n, "context_length", 2048, &c->n_ctx_train)) ||
        (st = get_float(f, n, "attention.layer_norm_rms_epsilon", -1, &c->eps)) ||
        (st = get_float(f, n, "rope.freq_base", a->rope_base_default, &c->rope_base)) ||
        (st = get_float(f, n, "rope.freq_base_swa", a->rope_base_swa_default, &c->rope_base_swa)))
        return st;
    if (a->swa_period > 0 && (st = get_int(f, n, "attention.sliding_window", -1, &c->sliding_window)))
        return st;
    if (a->swa_period == 0 && a->swa_optional && (st = get_optional_window(f, n, &c->sliding_window)))
        return st;
    if (c->rope_base_swa == 0) c->rope_base_swa = c->rope_base;
    if ((st = read_rope_scaling(f, n, c))) return st;
    if (c->n_head % c->n_head_kv != 0)
        return slm_fail(SLM_ERR_FORMAT, "head_count %d is not a multiple of head_count_kv %d", c->n_head, c->n_head_kv);
    if (c->n_rot > c->head_dim || c->n_rot % 2)
        return slm_fail(SLM_ERR_FORMAT, "rope dimension %d does not fit head size %d", c->n_rot, c->head_dim);
    /* Gemma 3's query_pre_attn_scalar equals the key length for the sizes
     * converted to GGUF, so the usual 1/sqrt(head_dim) applies. */
    c->attn_scale = 1.0f / sqrtf((float)c->head_dim);
    return SLM_OK;
}

/* Finds a tensor and checks it is a 1-D f32 vector of n elements. */
static slm_status bind_vec(const gguf_file *f, const char *name, int64_t n, const float **out) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return slm_fail(SLM_ERR_FORMAT, "model lacks tensor '%s'", name);
    if (t->type != SLM_T_F32)
        return slm_fail(SLM_ERR_UNSUPPORTED,
                        "tensor '%s' has type %s; vectors (norms, biases, RoPE factors) must be f32",
                        name, slm_type_get(t->type) ? slm_type_get(t->type)->name : "?");
    if (t->ne[0] != (uint64_t)n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
        return slm_fail(SLM_ERR_FORMAT, "tensor '%s' has shape [%llu, %llu], expected [%lld]", name,
                        (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (long long)n);
    *out = t->data;
    return SLM_OK;
}

/* Finds a 2-D weight of `rows` rows of `cols` elements (GGUF: ne = [cols, rows]). */
static slm_status bind_mat(const gguf_file *f, const char *name, int64_t cols, int64_t rows, slm_mat *out) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return slm_fail(SLM_ERR_FORMAT, "model lacks tensor '%s'", name);
    if (t->ne[0] != (uint64_t)cols || t->ne[1] != (uint64_t)rows || t->ne[2] != 1 || t->ne[3] != 1)
        return slm_fail(SLM_ERR_FORMAT, "tensor '%s' has shape [%llu, %llu, %llu, %llu], expected [%lld, %lld]",
                        name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                        (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], (long long)cols, (long long)rows);
    const slm_type_info *ti = slm_type_get(t->type);
    if (!ti || !ti->is_weight_type)
        return slm_fail(SLM_ERR_UNSUPPORTED, "tensor '%s' has type %u, which is not a weight type", name, t->type);
    out->type = t->type;
    out->rows = rows;
    out->cols = cols;
    out->row_bytes = slm_row_bytes(t->type, cols);
    out->data = t->data;
    out->packed = NULL;
    return SLM_OK;
}

/* Rows [row0, row0 + rows) of a bound matrix, as a view (no copy): how a
 * fused QKV or gate-up weight is split. */
static slm_mat mat_rows(const slm_mat *w, int64_t row0, int64_t rows) {
    slm_mat v = *w;
    v.rows = rows;
    v.data = w->data + (size_t)row0 * w->row_bytes;
    return v;
}

/* An optional bias: NULL when the file has none, else checked like a norm. */
static slm_status bind_bias(const gguf_file *f, int il, const char *what, int64_t n, const float **out) {
    char nm[96];
    snprintf(nm, sizeof nm, "blk.%d.%s.bias", il, what);
    *out = NULL;
    return gguf_find_tensor(f, nm) ? bind_vec(f, nm, n, out) : SLM_OK;
}

static slm_status bind_layer(const gguf_file *f, const slm_arch *a, const slm_config *c, int il, slm_layer *L) {
    char nm[96];
    slm_status st;
#define NAME(s) (snprintf(nm, sizeof nm, "blk.%d.%s.weight", il, s), nm)
    int64_t e = c->n_embd, qd = (int64_t)c->n_head * c->head_dim, kd = (int64_t)c->n_head_kv * c->head_dim;
    int64_t vd = (int64_t)c->n_head_kv * c->head_dim_v, od = (int64_t)c->n_head * c->head_dim_v;
    if ((st = bind_vec(f, NAME("attn_norm"), e, &L->attn_norm))) return st;
    if (a->fused_qkv) {
        slm_mat qkv;
        if ((st = bind_mat(f, NAME("attn_qkv"), e, qd + kd + vd, &qkv))) return st;
        L->wq = mat_rows(&qkv, 0, qd);
        L->wk = mat_rows(&qkv, qd, kd);
        L->wv = mat_rows(&qkv, qd + kd, vd);
    } else if ((st = bind_mat(f, NAME("attn_q"), e, qd, &L->wq)) ||
               (st = bind_mat(f, NAME("attn_k"), e, kd, &L->wk)) ||
               (st = bind_mat(f, NAME("attn_v"), e, vd, &L->wv))) {
        return st;
    }
    if ((st = bind_mat(f, NAME("attn_output"), od, e, &L->wo)) ||
        (st = bind_vec(f, NAME("ffn_norm"), e, &L->ffn_norm)))
        return st;
    if (a->fused_gate_up) {
        slm_mat gu;
        if ((st = bind_mat(f, NAME("ffn_up"), e, 2 * (int64_t)c->n_ff, &gu))) return st;
        L->w_gate = mat_rows(&gu, 0, c->n_ff);
        L->w_up = mat_rows(&gu, c->n_ff, c->n_ff);
    } else if ((st = bind_mat(f, NAME("ffn_gate"), e, c->n_ff, &L->w_gate)) ||
               (st = bind_mat(f, NAME("ffn_up"), e, c->n_ff, &L->w_up))) {
        return st;
    }
    if ((st = bind_mat(f, NAME("ffn_down"), c->n_ff, e, &L->w_down))) return st;
    if (a->qk_norm && ((st = bind_vec(f, NAME("attn_q_norm"), c->head_dim, &L->q_norm)) ||
                       (st = bind_vec(f, NAME("attn_k_norm"), c->head_dim, &L->k_norm))))
        return st;
    if (a->post_norms && ((st = bind_vec(f, NAME("post_attention_norm"), e, &L->post_attn_norm)) ||
                          (st = bind_vec(f, NAME("post_ffw_norm"), e, &L->post_ffn_norm))))
        return st;
#undef NAME
    if (a->fused_qkv) {
        /* a fused bias would need the same split; no supported family has one */
        snprintf(nm, sizeof nm, "blk.%d.attn_qkv.bias", il);
        if (gguf_find_tensor(f, nm))
            return slm_fail(SLM_ERR_UNSUPPORTED, "tensor '%s' (a fused QKV bias) is not supported", nm);
    }
    if ((st = bind_bias(f, il, "attn_q", qd, &L->bq)) || (st = bind_bias(f, il, "attn_k", kd, &L->bk)) ||
        (st = bind_bias(f, il, "attn_v", vd, &L->bv)) || (st = bind_bias(f, il, "attn_output", e, &L->bo)))
        return st;
    if (a->swa_period > 0)
        L->swa = c->sliding_window > 0 && (il + 1) % a->swa_period != 0;
    else
        L->swa = c->sliding_window > 0;
    return SLM_OK;
}

/* Optional RoPE frequency factors, [n_rot/2] f32 each. */
static slm_status bind_rope_factors(struct slm_model *m) {
    const gguf_file *f = m->gguf;
    int64_t n = m->cfg.n_rot / 2;
    slm_status st;
    const char *names[] = { "rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight" };
    const float **dst[] = { &m->rope_freqs, &m->rope_factors_long, &m->rope_factors_short };
    for (int i = 0; i < 3; i++) {
        *dst[i] = NULL;
        if (gguf_find_tensor(f, names[i]) && (st = bind_vec(f, names[i], n, dst[i]))) return st;
    }
    if (!m->rope_factors_long != !m->rope_factors_short)
        return slm_fail(SLM_ERR_FORMAT, "model has only one of rope_factors_long / rope_factors_short");
    if (m->rope_freqs && m->rope_factors_long)
        return slm_fail(SLM_ERR_FORMAT, "model has both rope_freqs and rope_factors_long/short");
    for (int i = 0; i < 3; i++)
        for (int64_t k = 0; *dst[i] && k < n; k++)
            if (!((*dst[i])[k] > 0) || !isfinite((*dst[i])[k]))
                return slm_fail(SLM_ERR_FORMAT, "tensor '%s' holds a factor that is not positive", names[i]);
    return SLM_OK;
}

/* The architecture is checked before the tokenizer is built, so that a
 * model we cannot run is reported as such and not as a tokenizer problem. */
static slm_status check_arch(struct slm_model *m) {
    gguf_str arch_name;
    if (!gguf_get_str(m->gguf, "general.architecture", &arch_name))
        return slm_fail(SLM_ERR_FORMAT, "model lacks 'general.architecture'");
    m->arch = slm_arch_find(arch_name);
    if (!m->arch)
        return slm_fail(SLM_ERR_UNSUPPORTED,
                        "unsupported architecture '%.*s' (supported: gemma3, llama, mistral, qwen2, phi3)",
                        (int)(arch_name.len > 64 ? 64 : arch_name.len), arch_name.ptr);
    return SLM_OK;
}

slm_status slm_model_bind(struct slm_model *m) {
    const gguf_file *f = m->gguf;
    slm_status st = read_config(f, m->arch, tok_n_vocab(m->tok), &m->cfg);
    if (st) return st;
    const slm_config *c = &m->cfg;
    if ((st = bind_mat(f, "token_embd.weight", c->n_embd, c->n_vocab, &m->tok_embd)) ||
        (st = bind_vec(f, "output_norm.weight", c->n_embd, &m->output_norm)))
        return st;
    if (gguf_find_tensor(f, "output.weight")) {
        if ((st = bind_mat(f, "output.weight", c->n_embd, c->n_vocab, &m->output))) return st;
    } else {
        m->output = m->tok_embd;  /* tied head */
    }
    if ((st = bind_rope_factors(m))) return st;
    /* every layer has tensors: a block count beyond the tensor table is
     * refused before it sizes an allocation */
    if ((uint64_t)c->n_layer > f->n_tensors)
        return slm_fail(SLM_ERR_FORMAT, "block_count %d exceeds the %llu tensors in the file", c->n_layer,
                        (unsigned long long)f->n_tensors);
    m->layers = calloc((size_t)c->n_layer, sizeof *m->layers);
    if (!m->layers) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    for (int il = 0; il < c->n_layer; il++)
        if ((st = bind_layer(f, m->arch, c, il, &m->layers[il]))) return st;
    m->n_params = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        m->n_params += t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    }
    gguf_str nm;
    if (gguf_get_str(f, "general.name", &nm))
        snprintf(m->name, sizeof m->name, "%.*s", (int)(nm.len > 127 ? 127 : nm.len), nm.ptr);
    return SLM_OK;
}

slm_status slm_model_open(const char *path, slm_model **out) {
    *out = NULL;
    struct slm_model *m = calloc(1, sizeof *m);
    if (!m) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    if (pthread_mutex_init(&m->cache_lock, NULL)) { free(m); return slm_fail(SLM_ERR_NOMEM, "cannot create a lock"); }
    slm_status st = gguf_open(path, &m->gguf);
    if (!st) st = check_arch(m);
    if (!st) st = tok_load(m->gguf, &m->tok);
    if (!st) st = slm_model_bind(m);
    if (!st) st = model_pack_weights(m);
    if (st) { slm_model_close(m); return st; }
    *out = m;
    return SLM_OK;
}

void slm_model_close(slm_model *m) {
    if (!m) return;
    grammar_vocab_free(m->grammar_vocab);
    pthread_mutex_destroy(&m->cache_lock);
    model_free_packed(m);
    free(m->layers);
    tok_free(m->tok);
    gguf_close(m->gguf);
    free(m);
}

void slm_model_get_info(const slm_model *m, slm_model_info *o) {
    o->arch = m->arch->name;
    o->name = m->name;
    o->n_vocab = m->cfg.n_vocab;
    o->n_embd = m->cfg.n_embd;
    o->n_layer = m->cfg.n_layer;
    o->n_head = m->cfg.n_head;
    o->n_head_kv = m->cfg.n_head_kv;
    o->head_dim = m->cfg.head_dim;
    o->n_ff = m->cfg.n_ff;
    o->n_ctx_train = m->cfg.n_ctx_train;
    o->n_params = m->n_params;
    o->file_size = m->gguf->size;
}
