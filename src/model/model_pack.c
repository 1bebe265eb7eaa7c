/* Weight matrices in the kernels' packed layout (src/quant: slm_packed_size;
 * AVX-512: Q8_0, Q4_0, Q5_0 in groups of 16 rows).
 *
 * Every matrix of a packable type: the output head (Gemma 3: 262144 x 640
 * Q8_0, 72 % of the bytes a token reads) and the layers' Q5_0 / Q4_0 / Q8_0
 * matrices (in Gemma 3 Q4_K_M files most of the rest). Packing costs one
 * pass over them when the model opens, on all CPUs.
 *
 * Memory: the copies are anonymous memory (huge pages where the kernel
 * gives them: fewer TLB misses while streaming); the file's pages of each
 * packed matrix are then dropped from our mapping (MADV_DONTNEED on a
 * read-only file mapping only forgets them: the page cache keeps the data,
 * and a later read, such as a tied embedding's row lookup, maps it back), so
 * the process's resident size stays about the file's size, not file + copy. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/status.h"
#include "base/threadpool.h"
#include "model/model.h"
#include "quant/quant.h"

typedef struct {
    slm_mat **mats;
    int n;
    bool forget; /* the weights are a file mapping we own */
} pack_job;

/* Groups packed between two page drops: 1024 rows */
#define PACK_STEP 64

/* Every matrix is split among all workers (a model's matrices differ in size
 * by 400x: a split by matrices would leave threads idle). Each worker drops
 * the file pages it has packed as it goes, so the peak resident size stays
 * near the file's size instead of file + copy. Pages that straddle two
 * workers' ranges are left to the caller. */
static void pack_worker(void *ctx, int ith, int nth) {
    const pack_job *j = ctx;
    const uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < j->n; i++) {
        const slm_mat *w = j->mats[i];
        long ng = (long)((w->rows + SLM_PACK_GROUP - 1) / SLM_PACK_GROUP), g0, g1;
        slm_split_range(ng, ith, nth, &g0, &g1);
        uintptr_t dropped = ((uintptr_t)(w->data + (size_t)g0 * SLM_PACK_GROUP * w->row_bytes) + ps - 1) & ~(ps - 1);
        for (long g = g0; g < g1; g += PACK_STEP) {
            long ge = g + PACK_STEP < g1 ? g + PACK_STEP : g1;
            slm_pack_groups(w->type, w->data, w->row_bytes, w->rows, w->cols, g, ge, (void *)w->packed);
            if (!j->forget) continue;
            int64_t re = ge * SLM_PACK_GROUP < w->rows ? ge * SLM_PACK_GROUP : w->rows;
            uintptr_t end = (uintptr_t)(w->data + (size_t)re * w->row_bytes) & ~(ps - 1);
            if (end > dropped) {
                madvise((void *)dropped, end - dropped, MADV_DONTNEED);
                dropped = end;
            }
        }
    }
}

/* Drops the whole pages inside [p, p + len) from a file mapping we own. */
static void forget_file_pages(const gguf_file *f, const uint8_t *p, size_t len) {
    if (!f->map) return;
    uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + ps - 1) & ~(ps - 1), b = ((uintptr_t)p + len) & ~(ps - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

static _Atomic bool g_repack = true;

void slm_cpu_set_repack(bool on) { g_repack = on; }

/* the model's matrices, output head first; returns how many */
static int list_mats(struct slm_model *m, slm_mat **out) {
    int n = 0;
    out[n++] = &m->output;
    for (int il = 0; il < m->cfg.n_layer; il++) {
        slm_layer *L = &m->layers[il];
        slm_mat *ms[] = { &L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down };
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) out[n++] = ms[i];
    }
    return n;
}

slm_status model_pack_weights(struct slm_model *m) {
    if (!g_repack) return SLM_OK;
    int cap = 1 + 7 * m->cfg.n_layer, n = 0;
    slm_mat **all = malloc((size_t)cap * sizeof *all), **mats = malloc((size_t)cap * sizeof *mats);
    size_t *off = malloc((size_t)cap * sizeof *off);
    if (!all || !mats || !off) {
        free(all); free(mats); free(off);
        return slm_fail(SLM_ERR_NOMEM, "out of memory");
    }
    int na = list_mats(m, all);
    size_t total = 0;
    for (int i = 0; i < na; i++) {
        size_t b = slm_packed_size(all[i]->type, all[i]->rows, all[i]->cols);
        if (!b) continue;
        off[n] = total;
        mats[n++] = all[i];
        total += (b + 63) & ~(size_t)63;
    }
    free(all);
    slm_status st = SLM_OK;
    if (n == 0) goto done;
    size_t huge = (size_t)2 << 20, len = (total + huge - 1) / huge * huge;
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        st = slm_fail(SLM_ERR_NOMEM, "cannot allocate %zu bytes for the packed weights", len);
        goto done;
    }
#ifdef MADV_HUGEPAGE
    madvise(mem, len, MADV_HUGEPAGE); /* a hint: fine if refused */
#endif
    slm_pool *pool;
    if ((st = slm_pool_new(slm_cpu_count(), &pool))) {
        munmap(mem, len);
        goto done;
    }
    for (int i = 0; i < n; i++) mats[i]->packed = (uint8_t *)mem + off[i];
    pack_job j = { mats, n, m->gguf->map != NULL };
    slm_pool_run(pool, pack_worker, &j);
    slm_pool_free(pool);
    mprotect(mem, len, PROT_READ);
    m->packed_mem = mem;
    m->packed_len = len;
    for (int i = 0; i < n; i++) forget_file_pages(m->gguf, mats[i]->data, mats[i]->row_bytes * (size_t)mats[i]->rows);
done:
    free(mats);
    free(off);
    return st;
}

void model_free_packed(struct slm_model *m) {
    if (m->packed_mem) munmap(m->packed_mem, m->packed_len);
    m->packed_mem = NULL;
}
