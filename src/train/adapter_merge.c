/* slm_lora_merge: fold an adapter into a copy of its base model,
 * W' = W + s B A, row by row (only one output row in f32 at a time). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "gguf/gguf_write.h"
#include "quant/quant.h"
#include "train/adapter.h"

typedef struct {
    const gguf_tensor *src;   /* base tensor */
    const lora_mat *lm;       /* NULL: copied as is */
    float scale;
} merge_item;

typedef struct {
    merge_item *items;
    bool f16;
} merge_ctx;

static slm_status merge_fill(void *vctx, size_t index, void *dst, size_t nbytes) {
    merge_ctx *c = vctx;
    const merge_item *it = &c->items[index];
    const gguf_tensor *t = it->src;
    const lora_mat *lm = it->lm;
    int64_t n_in = (int64_t)t->ne[0], n_out = (int64_t)t->ne[1];
    size_t in_rb = slm_row_bytes(t->type, n_in);
    size_t out_rb = (size_t)n_in * (c->f16 ? 2 : 4);
    if (nbytes != out_rb * (size_t)n_out) return slm_fail(SLM_ERR_FORMAT, "merge: size mismatch");
    float *row = malloc(sizeof(float) * (size_t)n_in);
    if (!row) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    for (int64_t o = 0; o < n_out; o++) {
        slm_dequantize_row(t->type, (const uint8_t *)t->data + (size_t)o * in_rb, row, n_in);
        const float *b = lm->b + (size_t)o * lm->rank;
        for (int r = 0; r < lm->rank; r++) {
            float br = it->scale * b[r];
            const float *a = lm->a + (size_t)r * lm->n_in;
            for (int64_t i = 0; i < n_in; i++) row[i] += br * a[i];
        }
        uint8_t *d = (uint8_t *)dst + (size_t)o * out_rb;
        if (c->f16) {
            for (int64_t i = 0; i < n_in; i++) {
                uint16_t h = slm_f32_to_f16(row[i]);
                memcpy(d + 2 * i, &h, 2);
            }
        } else {
            memcpy(d, row, sizeof(float) * (size_t)n_in);
        }
    }
    free(row);
    return SLM_OK;
}

slm_status slm_lora_merge(const char *base_path, const char *adapter_path, const char *out_path, float scale,
                          bool f16) {
    if (!base_path || !adapter_path || !out_path) return slm_fail(SLM_ERR_INVALID_ARG, "slm_lora_merge: NULL path");
    gguf_file *base;
    slm_status st = gguf_open(base_path, &base);
    if (st) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", slm_last_error());
        return slm_fail(st, "cannot read %s: %s", base_path, msg);
    }
    lora_adapter *a = NULL;
    gguf_writer *w = NULL;
    merge_ctx ctx = { calloc(base->n_tensors ? base->n_tensors : 1, sizeof(merge_item)), f16 };
    if (!ctx.items) st = slm_fail(SLM_ERR_NOMEM, "out of memory");
    if (!st) st = adapter_load(base, adapter_path, &a);
    if (!st) st = gguf_writer_new(&w);
    if (!st) st = gguf_writer_copy_all_kv(w, base);
    char name[300];
    for (uint64_t i = 0; i < base->n_tensors && !st; i++) {
        const gguf_tensor *t = &base->tensors[i];
        merge_item *it = &ctx.items[i];
        size_t nl = t->name.len < sizeof name - 1 ? (size_t)t->name.len : sizeof name - 1;
        memcpy(name, t->name.ptr, nl);
        name[nl] = 0;
        it->src = t;
        for (int il = 0; il < a->n_layer && !it->lm; il++)
            for (int tg = 0; tg < LORA_N_TARGETS; tg++) {
                const lora_mat *lm = &a->mats[il * LORA_N_TARGETS + tg];
                char want[128];
                if (!lm->a) continue;
                snprintf(want, sizeof want, "blk.%d.%s.weight", il, lora_target_name(tg));
                if (strcmp(want, name) == 0) { it->lm = lm; break; }
            }
        if (!it->lm) {
            st = gguf_writer_add_tensor(w, name, t->type, (int)t->n_dims, t->ne, t->data, t->nbytes);
            continue;
        }
        it->scale = adapter_mat_scale(a, it->lm, scale);
        if (!slm_type_get(t->type) || slm_row_bytes(t->type, (int64_t)t->ne[0]) == 0) {
            st = slm_fail(SLM_ERR_UNSUPPORTED, "cannot dequantize %s (type %u)", name, t->type);
            break;
        }
        size_t nbytes = (size_t)t->ne[0] * t->ne[1] * (f16 ? 2 : 4);
        st = gguf_writer_add_tensor_cb(w, name, f16 ? SLM_T_F16 : SLM_T_F32, 2, t->ne, nbytes, merge_fill, &ctx);
    }
    if (!st) st = gguf_writer_write(w, out_path);
    gguf_writer_free(w);
    adapter_free(a);
    free(ctx.items);
    gguf_close(base);
    return st;
}
