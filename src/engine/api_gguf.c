/* Read-only inspection of any GGUF file, for `slm info` and friends. */
#include <stdio.h>
#include <string.h>

#include "gguf/gguf.h"
#include "quant/quant.h"

slm_status slm_gguf_open(const char *path, slm_gguf **out) { return gguf_open(path, out); }
void slm_gguf_close(slm_gguf *g) { gguf_close(g); }
uint32_t slm_gguf_version(const slm_gguf *g) { return g->version; }
uint64_t slm_gguf_n_meta(const slm_gguf *g) { return g->n_kv; }
uint64_t slm_gguf_n_tensors(const slm_gguf *g) { return g->n_tensors; }

const char *slm_gguf_meta_key(const slm_gguf *g, uint64_t i, size_t *len) {
    *len = (size_t)g->kv[i].key.len;
    return g->kv[i].key.ptr;
}

/* Appends printf output to buf at *pos without overrunning cap. */
#define APPEND(...) do { if (*pos < cap) { int w_ = snprintf(buf + *pos, cap - *pos, __VA_ARGS__); \
    if (w_ > 0) *pos += (size_t)w_ < cap - *pos ? (size_t)w_ : cap - *pos - 1; } } while (0)

static void append_str(char *buf, size_t cap, size_t *pos, gguf_str s, size_t limit) {
    APPEND("\"");
    for (uint64_t k = 0; k < s.len && k < limit; k++) {
        unsigned char ch = (unsigned char)s.ptr[k];
        if (ch == '\n') APPEND("\\n");
        else if (ch == '"') APPEND("\\\"");
        else if (ch < 0x20) APPEND("\\x%02x", ch);
        else APPEND("%c", ch);
    }
    if (s.len > limit) APPEND("...");
    APPEND("\"");
}

void slm_gguf_meta_format(const slm_gguf *g, uint64_t i, int max_items, char *buf, size_t cap) {
    const gguf_kv *kv = &g->kv[i];
    size_t p0 = 0, *pos = &p0;
    if (cap == 0) return;
    buf[0] = '\0';
    switch (kv->type) {
    case GGUF_T_STRING: append_str(buf, cap, pos, kv->str, 200); break;
    case GGUF_T_BOOL: APPEND("%s", kv->num.u ? "true" : "false"); break;
    case GGUF_T_F32: case GGUF_T_F64: APPEND("%.9g", kv->num.f); break;
    case GGUF_T_I8: case GGUF_T_I16: case GGUF_T_I32: case GGUF_T_I64: APPEND("%lld", (long long)kv->num.i); break;
    case GGUF_T_ARRAY:
        APPEND("[%s × %llu]", gguf_vtype_name(kv->arr_type), (unsigned long long)kv->arr_n);
        for (uint64_t k = 0; k < kv->arr_n && k < (uint64_t)max_items; k++) {
            APPEND(k ? ", " : " ");
            if (kv->arr_type == GGUF_T_STRING) append_str(buf, cap, pos, kv->strs[k], 40);
            else if (kv->arr_type == GGUF_T_F32 || kv->arr_type == GGUF_T_F64) APPEND("%.6g", gguf_arr_f64(kv, k));
            else if (kv->arr_type == GGUF_T_ARRAY) { APPEND("[...]"); break; }
            else APPEND("%lld", (long long)gguf_arr_i64(kv, k));
        }
        if (kv->arr_n > (uint64_t)max_items && max_items > 0) APPEND(", ...");
        break;
    default: APPEND("%llu", (unsigned long long)kv->num.u); break;
    }
}

void slm_gguf_tensor(const slm_gguf *g, uint64_t i, slm_tensor_desc *o) {
    const gguf_tensor *t = &g->tensors[i];
    const slm_type_info *ti = slm_type_get(t->type);
    o->name = t->name.ptr;
    o->name_len = (size_t)t->name.len;
    o->type = t->type;
    o->type_name = ti ? ti->name : "?";
    o->n_dims = (int)t->n_dims;
    memcpy(o->ne, t->ne, sizeof o->ne);
    o->offset = t->offset;
    o->nbytes = t->nbytes;
}
