/* The output head in the kernels' packed layout (src/quant: slm_packed_size).
 *
 * Only the head: it is the largest matrix by far (Gemma 3: 262144 x 640, 72 %
 * of the bytes a token reads), its type is Q8_0 in the common files, and it
 * is the product that decoding and batched decoding wait on. Packing costs
 * one pass over it when the model opens, on all CPUs.
 *
 * Memory: the copy is anonymous memory (huge pages where the kernel gives
 * them: fewer TLB misses while streaming it); the file's pages of the head
 * are then dropped from our mapping (MADV_DONTNEED on a read-only file
 * mapping only forgets them: the page cache keeps the data and a later read,
 * such as a tied embedding's row lookup, maps it back), so the process's
 * resident size stays about the file's size rather than file + copy. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/status.h"
#include "base/threadpool.h"
#include "model/model.h"
#include "quant/quant.h"

typedef struct {
    const slm_mat *w;
    void *dst;
} pack_job;

static void pack_worker(void *ctx, int ith, int nth) {
    const pack_job *j = ctx;
    long ng = (long)((j->w->rows + SLM_PACK_GROUP - 1) / SLM_PACK_GROUP), g0, g1;
    slm_split_range(ng, ith, nth, &g0, &g1);
    if (g1 > g0) slm_pack_groups(j->w->type, j->w->data, j->w->row_bytes, j->w->rows, j->w->cols, g0, g1, j->dst);
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

slm_status model_pack_weights(struct slm_model *m) {
    slm_mat *w = &m->output;
    size_t bytes = g_repack ? slm_packed_size(w->type, w->rows, w->cols) : 0;
    if (!bytes) return SLM_OK;
    size_t huge = (size_t)2 << 20, len = (bytes + huge - 1) / huge * huge;
    void *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return slm_fail(SLM_ERR_NOMEM, "cannot allocate %zu bytes for the packed output head", len);
#ifdef MADV_HUGEPAGE
    madvise(mem, len, MADV_HUGEPAGE); /* a hint: fine if refused */
#endif
    slm_pool *pool;
    slm_status st = slm_pool_new(slm_cpu_count(), &pool);
    if (st) {
        munmap(mem, len);
        return st;
    }
    pack_job j = { w, mem };
    slm_pool_run(pool, pack_worker, &j);
    slm_pool_free(pool);
    mprotect(mem, len, PROT_READ);
    m->packed_mem = mem;
    m->packed_len = len;
    w->packed = mem;
    forget_file_pages(m->gguf, w->data, w->row_bytes * (size_t)w->rows);
    return SLM_OK;
}

void model_free_packed(struct slm_model *m) {
    if (m->packed_mem) munmap(m->packed_mem, m->packed_len);
    m->packed_mem = NULL;
    m->output.packed = NULL;
}
