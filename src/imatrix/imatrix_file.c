/* Importance matrix files: the reader (validates everything) and the writer;
 * see imatrix.h for the layout. */
#include "imatrix/imatrix.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "base/tensor_type.h"
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"

typedef struct im_entry {
    char *name;            /* the weight's name, without the suffix */
    int64_t n_cols, n_mat;
    float *imp;            /* n_mat * n_cols means */
} im_entry;

struct slm_imatrix {
    im_entry *e;
    int n;
    char *dataset;
    uint32_t chunk_count;
};

static const char SUM_SFX[] = ".in_sum2";
static const char CNT_SFX[] = ".counts";

void slm_imatrix_free(slm_imatrix *im) {
    if (!im) return;
    for (int i = 0; i < im->n; i++) free(im->e[i].name), free(im->e[i].imp);
    free(im->e);
    free(im->dataset);
    free(im);
}

int slm_imatrix_n_entries(const slm_imatrix *im) { return im->n; }
const char *slm_imatrix_dataset(const slm_imatrix *im) { return im->dataset; }
uint32_t slm_imatrix_chunk_count(const slm_imatrix *im) { return im->chunk_count; }

const float *slm_imatrix_find(const slm_imatrix *im, const char *name, int64_t *n_cols, int64_t *n_mat) {
    for (int i = 0; i < im->n; i++)
        if (strcmp(im->e[i].name, name) == 0) {
            *n_cols = im->e[i].n_cols, *n_mat = im->e[i].n_mat;
            return im->e[i].imp;
        }
    return NULL;
}

static bool ends_with(gguf_str s, const char *sfx, size_t n) {
    return s.len > n && memcmp(s.ptr + s.len - n, sfx, n) == 0;
}

static float rd_f32(const void *base, uint64_t i) {
    float v;
    memcpy(&v, (const uint8_t *)base + 4 * i, 4);
    return v;
}

/* Validates one in_sum2/counts pair and appends its means. */
static slm_status add_entry(slm_imatrix *im, const gguf_file *f, const gguf_tensor *sum, const char *path) {
    size_t blen = (size_t)sum->name.len - (sizeof SUM_SFX - 1);
    char *base = malloc(blen + sizeof CNT_SFX);
    if (!base) return slm_fail(SLM_ERR_NOMEM, "out of memory reading %s", path);
    memcpy(base, sum->name.ptr, blen);
    memcpy(base + blen, CNT_SFX, sizeof CNT_SFX);
    const gguf_tensor *cnt = gguf_find_tensor(f, base);
    base[blen] = '\0';
    slm_status st = SLM_OK;
    if (!cnt) {
        st = slm_fail(SLM_ERR_FORMAT, "imatrix %s: '%s.in_sum2' has no '%s.counts'", path, base, base);
    } else if (sum->type != SLM_T_F32 || cnt->type != SLM_T_F32) {
        st = slm_fail(SLM_ERR_FORMAT, "imatrix %s: entry '%s' is not F32", path, base);
    } else if (sum->ne[2] != 1 || sum->ne[3] != 1 || cnt->ne[0] != 1 || cnt->ne[1] != sum->ne[1] ||
               cnt->ne[2] != 1 || cnt->ne[3] != 1) {
        st = slm_fail(SLM_ERR_FORMAT, "imatrix %s: entry '%s' has in_sum2 [%llu, %llu] but counts [%llu, %llu]", path,
                      base, (unsigned long long)sum->ne[0], (unsigned long long)sum->ne[1],
                      (unsigned long long)cnt->ne[0], (unsigned long long)cnt->ne[1]);
    }
    if (st) { free(base); return st; }
    int64_t nc = (int64_t)sum->ne[0], nm = (int64_t)sum->ne[1];
    float *imp = malloc(sizeof(float) * (size_t)(nc * nm));
    if (!imp) { free(base); return slm_fail(SLM_ERR_NOMEM, "out of memory reading %s", path); }
    bool any = false;
    for (int64_t m = 0; m < nm && !st; m++) {
        float c = rd_f32(cnt->data, (uint64_t)m);
        if (!(c >= 0) || !isfinite(c)) {
            st = slm_fail(SLM_ERR_FORMAT, "imatrix %s: entry '%s' has a bad count (%g)", path, base, (double)c);
            break;
        }
        for (int64_t i = 0; i < nc; i++) {
            float s = rd_f32(sum->data, (uint64_t)(m * nc + i));
            if (!(s >= 0) || !isfinite(s)) {
                st = slm_fail(SLM_ERR_FORMAT, "imatrix %s: entry '%s' column %lld is %g (must be finite, >= 0)", path,
                              base, (long long)i, (double)s);
                break;
            }
            /* a matrix that saw no tokens gets uniform importance */
            float v = c > 0 ? s / c : 1.0f;
            if (!isfinite(v)) {
                st = slm_fail(SLM_ERR_FORMAT, "imatrix %s: entry '%s' column %lld: %g / count %g overflows", path,
                              base, (long long)i, (double)s, (double)c);
                break;
            }
            imp[m * nc + i] = v;
        }
        any |= c > 0;
    }
    if (st || !any) { /* an entry that never saw a token is no entry */
        free(base), free(imp);
        return st;
    }
    im_entry *ne = realloc(im->e, sizeof *ne * (size_t)(im->n + 1));
    if (!ne) { free(base), free(imp); return slm_fail(SLM_ERR_NOMEM, "out of memory reading %s", path); }
    im->e = ne;
    im->e[im->n++] = (im_entry){ base, nc, nm, imp };
    return SLM_OK;
}

static slm_status from_gguf(const gguf_file *f, const char *path, slm_imatrix *im) {
    slm_status st = SLM_OK;
    gguf_str s;
    if (gguf_get_str(f, "general.type", &s) && !gguf_str_eq(s, "imatrix"))
        st = slm_fail(SLM_ERR_FORMAT, "%s is not an importance matrix (general.type is '%.*s')", path,
                      (int)(s.len > 64 ? 64 : s.len), s.ptr);
    const gguf_kv *ds = gguf_find(f, "imatrix.datasets");
    if (!st && ds && ds->type == GGUF_T_ARRAY && ds->arr_type == GGUF_T_STRING && ds->arr_n > 0) {
        im->dataset = strndup(ds->strs[0].ptr, (size_t)ds->strs[0].len);
        if (!im->dataset) st = slm_fail(SLM_ERR_NOMEM, "out of memory reading %s", path);
    }
    int64_t cc;
    if (gguf_get_i64(f, "imatrix.chunk_count", &cc) && cc >= 0 && cc <= UINT32_MAX) im->chunk_count = (uint32_t)cc;
    for (uint64_t i = 0; i < f->n_tensors && !st; i++) {
        const gguf_tensor *t = &f->tensors[i];
        if (ends_with(t->name, SUM_SFX, sizeof SUM_SFX - 1)) {
            st = add_entry(im, f, t, path);
        } else if (ends_with(t->name, CNT_SFX, sizeof CNT_SFX - 1)) {
            size_t blen = (size_t)t->name.len - (sizeof CNT_SFX - 1);
            char name[512];
            if (blen + sizeof SUM_SFX > sizeof name) {
                st = slm_fail(SLM_ERR_FORMAT, "imatrix %s: tensor name too long", path);
                break;
            }
            memcpy(name, t->name.ptr, blen);
            memcpy(name + blen, SUM_SFX, sizeof SUM_SFX);
            if (!gguf_find_tensor(f, name))
                st = slm_fail(SLM_ERR_FORMAT, "imatrix %s: '%.*s' has no matching .in_sum2", path,
                              (int)(t->name.len > 200 ? 200 : t->name.len), t->name.ptr);
        } else {
            st = slm_fail(SLM_ERR_FORMAT, "imatrix %s: unexpected tensor '%.*s' (want NAME.in_sum2 / NAME.counts)", path,
                          (int)(t->name.len > 200 ? 200 : t->name.len), t->name.ptr);
        }
    }
    if (!st && im->n == 0) st = slm_fail(SLM_ERR_FORMAT, "imatrix %s has no entries", path);
    return st;
}

slm_status slm_imatrix_from_gguf(const gguf_file *f, const char *label, slm_imatrix **out) {
    *out = NULL;
    slm_imatrix *im = calloc(1, sizeof *im);
    if (!im) return slm_fail(SLM_ERR_NOMEM, "out of memory reading %s", label);
    slm_status st = from_gguf(f, label, im);
    if (st) { slm_imatrix_free(im); return st; }
    *out = im;
    return SLM_OK;
}

slm_status slm_imatrix_load(const char *path, slm_imatrix **out) {
    *out = NULL;
    gguf_file *f = NULL;
    slm_status st = gguf_open(path, &f);
    if (st) {
        char msg[480]; /* slm_fail writes the buffer slm_last_error reads */
        snprintf(msg, sizeof msg, "%s", slm_last_error());
        return slm_fail(st, "imatrix: %s", msg);
    }
    st = slm_imatrix_from_gguf(f, path, out);
    gguf_close(f);
    return st;
}

/* ---- writer ---------------------------------------------------------------- */

slm_status slm_imatrix_write(const char *path, const slm_imatrix_sums *e, int n, const char *dataset,
                             uint32_t chunk_count, uint32_t chunk_size) {
    /* f32 copies: the writer streams the tensors from these at write time */
    size_t total = 0;
    for (int i = 0; i < n; i++) total += e[i].count ? (size_t)e[i].n_in : 0;
    float *vals = malloc((total ? total : 1) * sizeof *vals), *counts = malloc((size_t)(n ? n : 1) * sizeof *counts);
    if (!vals || !counts) { free(vals), free(counts); return slm_fail(SLM_ERR_NOMEM, "out of memory writing %s", path); }
    gguf_writer *w;
    slm_status st = gguf_writer_new(&w);
    if (st) { free(vals), free(counts); return st; }
    const char *ds[1] = { dataset ? dataset : "" };
    st = gguf_writer_set_str(w, "general.type", "imatrix");
    if (!st) st = gguf_writer_set_arr_str(w, "imatrix.datasets", ds, dataset ? 1 : 0);
    if (!st) st = gguf_writer_set_u32(w, "imatrix.chunk_count", chunk_count);
    if (!st) st = gguf_writer_set_u32(w, "imatrix.chunk_size", chunk_size);
    size_t at = 0;
    for (int i = 0; !st && i < n; i++) {
        if (e[i].count == 0) continue;   /* never ran: nothing to say about it */
        char nm[512];
        float *v = vals + at;
        at += (size_t)e[i].n_in;
        for (int c = 0; c < e[i].n_in; c++) v[c] = (float)e[i].sum2[c];
        counts[i] = (float)e[i].count;
        uint64_t ne_sum[4] = { (uint64_t)e[i].n_in, 1, 1, 1 }, ne_cnt[4] = { 1, 1, 1, 1 };
        snprintf(nm, sizeof nm, "%s%s", e[i].name, SUM_SFX);
        st = gguf_writer_add_tensor(w, nm, SLM_T_F32, 2, ne_sum, v, (size_t)e[i].n_in * sizeof(float));
        snprintf(nm, sizeof nm, "%s%s", e[i].name, CNT_SFX);
        if (!st) st = gguf_writer_add_tensor(w, nm, SLM_T_F32, 2, ne_cnt, &counts[i], sizeof(float));
    }
    if (!st) st = gguf_writer_write(w, path);
    gguf_writer_free(w);
    free(vals), free(counts);
    return st;
}
