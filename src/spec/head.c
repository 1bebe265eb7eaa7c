/* The restricted-head drafter (head.h). The K rows are copied out of the
 * output head once (in its stored type) and repacked where the kernels have
 * a packed layout, so a draft step's head product is one small op_matmul. */
#include "spec/head.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "ops/ops.h"
#include "quant/quant.h"
#include "tokenizer/tokenizer.h"

struct head_draft {
    slm_pool *pool;
    slm_mat w;          /* K rows of the output head */
    void *rows, *packed;
    int32_t *ids;       /* row r is token ids[r] */
    float *logits;      /* K */
    void *xq;           /* activation scratch */
};

typedef struct { int cls; float score; int32_t id; } ranked;

/* One ASCII character, alone or after the vocabulary's word-boundary mark
 * (SentencePiece's U+2581, byte-level BPE's U+0120): punctuation, digits,
 * spaces and newlines, the commonest tokens of any text, which merge-order
 * scores rank last (they are the alphabet the merges start from). */
static bool single_ascii(const slm_tokenizer *t, int32_t id) {
    size_t l;
    const char *p = tok_text(t, id, &l);
    if (l == 1) return (unsigned char)p[0] < 128;
    if (l == 4 && !memcmp(p, "\xE2\x96\x81", 3)) return (unsigned char)p[3] < 128;
    if (l == 3 && !memcmp(p, "\xC4\xA0", 2)) return (unsigned char)p[2] < 128;
    return false;
}

static int by_score(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->cls != y->cls) return x->cls - y->cls;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

slm_status head_draft_new(const struct slm_model *m, slm_pool *pool, int k, head_draft **out) {
    *out = NULL;
    const slm_mat *o = &m->output;
    int V = m->cfg.n_vocab;
    if (k < 1) return slm_fail(SLM_ERR_INVALID_ARG, "a draft head needs at least one token, got %d", k);
    head_draft *h = calloc(1, sizeof *h);
    ranked *all = malloc((size_t)V * sizeof *all);
    if (!h || !all) { free(h); free(all); return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
    int n = 0;
    for (int32_t i = 0; i < V; i++) {
        int t = tok_type(m->tok, i);
        if (t != TOK_UNUSED && t != TOK_UNKNOWN)
            all[n++] = (ranked){ single_ascii(m->tok, i) ? 0 : 1, tok_score(m->tok, i), i };
    }
    qsort(all, (size_t)n, sizeof *all, by_score);
    if (k > n) k = n;
    h->pool = pool;
    h->ids = malloc((size_t)k * sizeof *h->ids);
    if (!h->ids) { free(all); head_draft_free(h); return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
    for (int r = 0; r < k; r++) h->ids[r] = all[r].id;
    free(all);
    h->w = (slm_mat){ .type = o->type, .rows = k, .cols = o->cols, .row_bytes = o->row_bytes };
    h->rows = malloc((size_t)k * o->row_bytes);
    h->logits = malloc((size_t)k * sizeof(float));
    h->xq = malloc(op_matmul_scratch(&h->w, 1));
    if (!h->rows || !h->logits || !h->xq) { head_draft_free(h); return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
    for (int r = 0; r < k; r++)
        memcpy((uint8_t *)h->rows + (size_t)r * o->row_bytes, o->data + (size_t)h->ids[r] * o->row_bytes, o->row_bytes);
    h->w.data = h->rows;
    size_t pb = slm_packed_size(o->type, k, o->cols);
    if (pb) {
        h->packed = aligned_alloc(64, (pb + 63) & ~(size_t)63);
        if (!h->packed) { head_draft_free(h); return slm_fail(SLM_ERR_NOMEM, "out of memory"); }
        slm_pack_groups(o->type, h->rows, o->row_bytes, k, o->cols, 0, (k + SLM_PACK_GROUP - 1) / SLM_PACK_GROUP,
                        h->packed);
        h->w.packed = h->packed;
    }
    *out = h;
    return SLM_OK;
}

void head_draft_free(head_draft *h) {
    if (!h) return;
    free(h->rows);
    free(h->packed);
    free(h->ids);
    free(h->logits);
    free(h->xq);
    free(h);
}

slm_token head_draft_next(head_draft *h, const float *hidden) {
    op_matmul(h->pool, &h->w, hidden, 1, h->logits, h->xq);
    return h->ids[slm_argmax(h->logits, (int)h->w.rows)];
}
