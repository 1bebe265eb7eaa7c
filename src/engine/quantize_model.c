/* slm_quantize: a GGUF model in, a requantized GGUF model out.
 *
 * The input is memory-mapped; each output tensor is produced on demand by
 * the writer's fill callback (so only the largest output tensor is ever held
 * in memory), rows spread over the thread pool: every worker dequantizes a
 * source row to f32, derives its weights (importance matrix or not) and
 * quantizes it. A tensor whose type does not change is copied byte for byte:
 * requantizing it could only lose precision. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/status.h"
#include "base/threadpool.h"
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "imatrix/imatrix.h"
#include "quant/quant.h"
#include "quant/quantize.h"

#define QUANT_VERSION 2  /* general.quantization_version, as llama.cpp writes it */

typedef struct qjob {
    const gguf_tensor *src;
    char name[256];
    uint32_t type;            /* output type */
    const float *imp;         /* importance, n_mat rows of ne[0]; NULL: none */
    int64_t imp_mat;
} qjob;

typedef struct qctx {
    const gguf_file *in;
    qjob *jobs;
    int n_jobs;
    slm_pool *pool;
    const slm_quantize_params *p;
    /* the tensor being filled, shared with the workers */
    const qjob *cur;
    uint8_t *dst;
    int64_t n_rows;
    int bad_row;              /* first row with a non-finite value, or -1 (set by workers) */
    bool oom;
} qctx;

void slm_quantize_default_params(slm_quantize_params *p) {
    memset(p, 0, sizeof *p);
    p->type = "q4_k_m";
}

const char *slm_quantize_mix_name(int i) {
    const slm_mix *m = slm_mix_at(i);
    return m ? m->name : NULL;
}

static void quantize_rows_worker(void *arg, int ith, int nth) {
    qctx *c = arg;
    const qjob *j = c->cur;
    int64_t n = (int64_t)j->src->ne[0];
    long lo, hi;
    slm_split_range((long)c->n_rows, ith, nth, &lo, &hi);
    if (lo >= hi) return;
    float *x = malloc(sizeof(float) * (size_t)n), *w = malloc(sizeof(float) * (size_t)n);
    if (!x || !w) {
        free(x), free(w);
        __atomic_store_n(&c->oom, true, __ATOMIC_RELAXED);
        return;
    }
    size_t in_rb = slm_row_bytes(j->src->type, n), out_rb = slm_row_bytes(j->type, n);
    const uint8_t *src = j->src->data;
    int64_t rows_per_mat = (int64_t)j->src->ne[1];
    for (long r = lo; r < hi; r++) {
        slm_dequantize_row(j->src->type, src + (size_t)r * in_rb, x, n);
        bool finite = true;
        for (int64_t i = 0; i < n; i++) finite &= isfinite(x[i]) != 0;
        if (!finite) {
            int expected = -1;
            __atomic_compare_exchange_n(&c->bad_row, &expected, (int)r, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
            break;
        }
        const float *imp = NULL;
        if (j->imp) imp = j->imp + (j->imp_mat > 1 ? (r / rows_per_mat) * n : 0);
        if (imp) {
            slm_quantize_row_imp(j->type, x, imp, w, c->dst + (size_t)r * out_rb, n);
        } else {
            slm_quant_weights(x, NULL, w, n);
            slm_quantize_row(j->type, x, w, c->dst + (size_t)r * out_rb, n);
        }
    }
    free(x), free(w);
}

static slm_status fill_tensor(void *arg, size_t index, void *dst, size_t nbytes) {
    qctx *c = arg;
    const qjob *j = &c->jobs[index];
    const gguf_tensor *t = j->src;
    uint64_t nel = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    if (c->p->progress)
        c->p->progress(c->p->progress_user, (int)index, c->n_jobs, j->name, slm_type_get(j->type)->name, nel);
    if (j->type == t->type) {
        memcpy(dst, t->data, nbytes);
        return SLM_OK;
    }
    c->cur = j;
    c->dst = dst;
    c->n_rows = (int64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    c->bad_row = -1;
    c->oom = false;
    slm_pool_run(c->pool, quantize_rows_worker, c);
    if (c->oom) return slm_fail(SLM_ERR_NOMEM, "out of memory quantizing '%s'", j->name);
    if (c->bad_row >= 0)
        return slm_fail(SLM_ERR_FORMAT, "tensor '%s' row %d holds a NaN or infinity; refusing to quantize it",
                        j->name, c->bad_row);
    return SLM_OK;
}

/* Importance for one tensor; a shape mismatch is an error. */
static slm_status match_imatrix(const slm_imatrix *im, qjob *j, bool *matched) {
    int64_t nc, nm;
    const float *imp = slm_imatrix_find(im, j->name, &nc, &nm);
    *matched = imp != NULL;
    if (!imp) return SLM_OK;
    const gguf_tensor *t = j->src;
    if ((uint64_t)nc != t->ne[0] || (nm != 1 && ((uint64_t)nm != t->ne[2] || t->ne[3] != 1)))
        return slm_fail(SLM_ERR_INVALID_ARG,
                        "imatrix entry '%s' has %lld columns x %lld matrices, but the tensor is [%llu, %llu, %llu]: "
                        "the importance matrix was made for another model",
                        j->name, (long long)nc, (long long)nm, (unsigned long long)t->ne[0],
                        (unsigned long long)t->ne[1], (unsigned long long)t->ne[2]);
    j->imp = imp;
    j->imp_mat = nm;
    return SLM_OK;
}

static int read_int(const gguf_file *f, const char *arch, const char *suffix, int dflt) {
    char key[160];
    int64_t v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_i64(f, key, &v) && v > 0 && v < (1 << 30) ? (int)v : dflt;
}

static uint64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* Chooses every tensor's type and fills the writer's table. */
static slm_status plan(qctx *c, const slm_mix *mix, const slm_imatrix *im, gguf_writer *w,
                       slm_quantize_stats *s) {
    const gguf_file *in = c->in;
    char arch[64] = "";
    gguf_str a;
    if (gguf_get_str(in, "general.architecture", &a)) snprintf(arch, sizeof arch, "%.*s", (int)a.len, a.ptr);
    int n_layer = read_int(in, arch, "block_count", 0);
    int n_head = read_int(in, arch, "attention.head_count", 1);
    int n_head_kv = read_int(in, arch, "attention.head_count_kv", n_head);
    bool has_output = gguf_find_tensor(in, "output.weight") != NULL;
    int n_im_used = 0;
    for (uint64_t i = 0; i < in->n_tensors; i++) {
        const gguf_tensor *t = &in->tensors[i];
        qjob *j = &c->jobs[i];
        j->src = t;
        if (t->name.len >= sizeof j->name)
            return slm_fail(SLM_ERR_UNSUPPORTED, "tensor name of %llu bytes is too long", (unsigned long long)t->name.len);
        memcpy(j->name, t->name.ptr, (size_t)t->name.len);
        j->name[t->name.len] = '\0';
        if (!slm_type_get(t->type) || !slm_row_bytes(t->type, (int64_t)t->ne[0]))
            return slm_fail(SLM_ERR_UNSUPPORTED, "tensor '%s' has type %u, which cannot be read", j->name, t->type);
        slm_tensor_role role = { j->name, (int)t->n_dims, { t->ne[0], t->ne[1], t->ne[2], t->ne[3] }, n_layer,
                                 n_head_kv > 0 ? n_head / n_head_kv : 1, has_output };
        j->type = slm_mix_choose(mix, &role);
        if (!slm_can_quantize(j->type)) j->type = SLM_T_F16; /* cannot happen with the mix table */
        bool matched = false;
        if (im && j->type != t->type) {
            slm_status st = match_imatrix(im, j, &matched);
            if (st) return st;
        }
        n_im_used += matched;
        uint64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        size_t nbytes = slm_row_bytes(j->type, (int64_t)t->ne[0]) * (size_t)rows;
        slm_status st = gguf_writer_add_tensor_cb(w, j->name, j->type, (int)t->n_dims, t->ne, nbytes, fill_tensor, c);
        if (st) return st;
        s->n_elements += t->ne[0] * rows;
        s->in_tensor_bytes += t->nbytes;
        s->out_tensor_bytes += nbytes;
        s->n_requantized += j->type != t->type;
    }
    s->n_tensors = (int)in->n_tensors;
    s->n_imatrix = n_im_used;
    if (im && n_im_used == 0 && s->n_requantized > 0)
        return slm_fail(SLM_ERR_INVALID_ARG, "the importance matrix has no entry for any tensor of this model "
                                             "(it was made for another model)");
    return SLM_OK;
}

static slm_status set_metadata(gguf_writer *w, const gguf_file *in, const slm_mix *mix, const slm_imatrix *im,
                               const char *im_path) {
    slm_status st = gguf_writer_copy_all_kv(w, in);
    if (st) return st;
    /* keys an earlier quantization left behind no longer describe this file */
    gguf_writer_remove_kv(w, "quantize.imatrix.file");
    gguf_writer_remove_kv(w, "quantize.imatrix.dataset");
    gguf_writer_remove_kv(w, "quantize.imatrix.entries_count");
    gguf_writer_remove_kv(w, "quantize.imatrix.chunks_count");
    st = gguf_writer_set_u32(w, "general.quantization_version", QUANT_VERSION);
    if (!st) st = gguf_writer_set_u32(w, "general.file_type", mix->file_type);
    if (!st && im) {
        st = gguf_writer_set_str(w, "quantize.imatrix.file", im_path);
        if (!st && slm_imatrix_dataset(im)) st = gguf_writer_set_str(w, "quantize.imatrix.dataset", slm_imatrix_dataset(im));
        if (!st) st = gguf_writer_set_i32(w, "quantize.imatrix.entries_count", slm_imatrix_n_entries(im));
        if (!st && slm_imatrix_chunk_count(im))
            st = gguf_writer_set_i32(w, "quantize.imatrix.chunks_count", (int32_t)slm_imatrix_chunk_count(im));
    }
    return st;
}

slm_status slm_quantize(const char *in_path, const char *out_path, const slm_quantize_params *p,
                        slm_quantize_stats *stats) {
    slm_quantize_stats local;
    slm_quantize_stats *s = stats ? stats : &local;
    memset(s, 0, sizeof *s);
    if (!in_path || !out_path || !p || !p->type)
        return slm_fail(SLM_ERR_INVALID_ARG, "slm_quantize: missing input, output or type");
    const slm_mix *mix = slm_mix_find(p->type);
    if (!mix) {
        char known[512] = "";
        size_t pos = 0;
        for (int i = 0; slm_mix_at(i) && pos < sizeof known; i++)
            pos += (size_t)snprintf(known + pos, sizeof known - pos, "%s%s", i ? " " : "", slm_mix_at(i)->name);
        return slm_fail(SLM_ERR_INVALID_ARG, "unknown quantization type '%s' (known: %s)", p->type, known);
    }
    slm_imatrix *im = NULL;
    gguf_file *in = NULL;
    gguf_writer *w = NULL;
    qctx c = { .p = p };
    slm_status st = gguf_open(in_path, &in);
    if (st) return st;
    c.in = in;
    if (p->imatrix) st = slm_imatrix_load(p->imatrix, &im);
    if (!st) st = gguf_writer_new(&w);
    if (!st) st = set_metadata(w, in, mix, im, p->imatrix);
    if (!st && in->n_tensors > 0) {
        c.jobs = calloc((size_t)in->n_tensors, sizeof *c.jobs);
        c.n_jobs = (int)in->n_tensors;
        if (!c.jobs || in->n_tensors > INT32_MAX) st = slm_fail(SLM_ERR_NOMEM, "out of memory planning %s", in_path);
    }
    if (!st) st = plan(&c, mix, im, w, s);
    if (!st) st = slm_pool_new(p->n_threads > 0 ? p->n_threads : slm_cpu_count(), &c.pool);
    if (!st) st = gguf_writer_write(w, out_path);
    if (!st) {
        s->in_file_bytes = in->size;
        s->out_file_bytes = file_size(out_path);
        if (s->n_elements) {
            s->in_bpw = 8.0 * (double)s->in_tensor_bytes / (double)s->n_elements;
            s->out_bpw = 8.0 * (double)s->out_tensor_bytes / (double)s->n_elements;
        }
    }
    if (c.pool) slm_pool_free(c.pool);
    free(c.jobs);
    gguf_writer_free(w);
    slm_imatrix_free(im);
    gguf_close(in);
    return st;
}
