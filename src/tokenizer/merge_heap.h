/* The candidate merges of both encoders (SentencePiece-style spm.c and
 * byte-level BPE bpe.c) in one binary min-heap: lowest key first, then the
 * leftmost pair. SPM keys a pair by its piece's negated score (highest score
 * first), BPE by its merge rank (lowest rank first; ranks are below 2^24, so
 * exact in a float). Inline: the merge loop is the tokenizer's hot path. */
#ifndef SLM_TOKENIZER_MERGE_HEAP_H
#define SLM_TOKENIZER_MERGE_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"   /* tok_grow */

typedef struct tok_cand {
    float key;            /* lower merges first */
    int32_t left;         /* the pair's left symbol; ties: leftmost first */
    int32_t a, b;         /* the encoder's own: SPM size and piece, BPE left and right ids */
} tok_cand;

typedef struct tok_heap {
    tok_cand *v;
    size_t n, cap;
} tok_heap;

static inline bool tok_cand_before(const tok_cand *x, const tok_cand *y) {
    return x->key < y->key || (x->key == y->key && x->left < y->left);
}

/* False when out of memory (the heap is unchanged). */
static inline bool tok_heap_push(tok_heap *h, tok_cand c) {
    if (h->n == h->cap && !tok_grow((void **)&h->v, &h->cap, h->n + 1, sizeof *h->v)) return false;
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!tok_cand_before(&c, &h->v[p])) break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = c;
    return true;
}

/* The first candidate; h->n must be > 0. */
static inline tok_cand tok_heap_pop(tok_heap *h) {
    tok_cand top = h->v[0], last = h->v[--h->n];
    size_t n = h->n, i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && tok_cand_before(&h->v[c + 1], &h->v[c])) c++;
        if (!tok_cand_before(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (n) h->v[i] = last;
    return top;
}

#endif
