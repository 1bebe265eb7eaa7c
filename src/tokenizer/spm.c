/* Encoding with a "llama" (SentencePiece-style) vocabulary; see tokenizer.h
 * for the rules. The merge loop keeps the candidate pairs in a binary heap
 * (highest score first, then leftmost) and the symbols in a linked list, so a
 * fragment of n characters costs O(n log n) hash lookups and heap operations.
 *
 * Which pieces a merge may produce: normal, user-defined and unused ones
 * (SentencePiece's rule; llama.cpp accepts any type, which for Gemma 3 gives
 * the same result because no control or byte token is the concatenation of
 * two pieces). An unused piece left at the end is split back into the two
 * symbols it was made of, as SentencePiece does. */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "base/utf8.h"
#include "tokenizer/merge_heap.h"
#include "tokenizer/tokenizer.h"


typedef struct {
    int32_t start, len;   /* bytes in the escaped fragment; len 0: merged away */
    int32_t prev, next;
    int32_t id;           /* the piece this symbol is, -1 for a lone character */
    int32_t node;         /* merge tree, only when the vocabulary has unused pieces */
} sym;

typedef struct {
    int32_t left, right;  /* child nodes, -1 for a character */
    int32_t start, len, id;
} mnode;

typedef struct {
    const slm_tokenizer *t;
    char *esc;            /* the escaped fragment */
    size_t esc_cap;
    sym *syms;
    size_t syms_cap;
    tok_heap heap;        /* candidate pairs: key -score, a = merged size, b = piece */
    mnode *nodes;
    size_t nodes_n, nodes_cap;
    bool use_nodes;
    int32_t *out;
    size_t n_out, out_cap;
} enc;

static slm_status nomem(void) { return slm_fail(SLM_ERR_NOMEM, "tokenize: out of memory"); }

static slm_status emit(enc *e, int32_t id) {
    if (e->n_out == e->out_cap && !tok_grow((void **)&e->out, &e->out_cap, e->n_out + 1, sizeof *e->out))
        return nomem();
    e->out[e->n_out++] = id;
    return SLM_OK;
}

/* ---- merging ------------------------------------------------------------- */

static bool mergeable(int ty) {
    return ty == TOK_NORMAL || ty == TOK_USER_DEFINED || ty == TOK_UNUSED || ty == TOK_UNDEFINED;
}

static bool try_pair(enc *e, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return true;
    const slm_tokenizer *t = e->t;
    size_t n = (size_t)e->syms[l].len + (size_t)e->syms[r].len;
    if (n > t->max_piece_len) return true;
    int32_t id = tok_find(t, e->esc + e->syms[l].start, n);
    if (id < 0 || !mergeable(t->type[id])) return true;
    return tok_heap_push(&e->heap, (tok_cand){ .key = -t->score[id], .left = l, .a = (int32_t)n, .b = id });
}

static slm_status emit_bytes(enc *e, int32_t start, int32_t len) {
    const slm_tokenizer *t = e->t;
    for (int32_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)e->esc[start + i];
        int32_t id = t->byte_tok[b] >= 0 ? t->byte_tok[b] : t->unk;
        if (id < 0)
            return slm_fail(SLM_ERR_UNSUPPORTED,
                            "tokenize: byte 0x%02X has no piece and the vocabulary has neither <0x%02X> "
                            "nor an unknown token", b, b);
        slm_status st = emit(e, id);
        if (st) return st;
    }
    return SLM_OK;
}

/* A symbol that was never merged: its character as a piece, or bytes. */
static slm_status emit_char(enc *e, int32_t start, int32_t len) {
    int32_t id = tok_find(e->t, e->esc + start, (size_t)len);
    if (id >= 0 && mergeable(e->t->type[id])) return emit(e, id);
    return emit_bytes(e, start, len);
}

static slm_status emit_node(enc *e, int32_t k, int depth) {
    const mnode *nd = &e->nodes[k];
    if (nd->left < 0) return emit_char(e, nd->start, nd->len);
    if (e->t->type[nd->id] != TOK_UNUSED || depth > 64) return emit(e, nd->id);
    slm_status st = emit_node(e, nd->left, depth + 1);
    return st ? st : emit_node(e, nd->right, depth + 1);
}

/* Encodes e->esc[off..off+n) (already escaped) and appends the ids. */
static slm_status encode_fragment(enc *e, size_t off, size_t n) {
    /* split into characters (the text was validated, and U+2581 is whole) */
    size_t m = 0;
    for (size_t i = off; i < off + n; m++) {
        int k = utf8_lead_len((unsigned char)e->esc[i]);
        if (k == 0 || (size_t)k > off + n - i) k = 1;  /* cannot happen for validated text */
        if (m == e->syms_cap && !tok_grow((void **)&e->syms, &e->syms_cap, m + 1, sizeof *e->syms)) return nomem();
        e->syms[m] = (sym){ .start = (int32_t)i, .len = k, .prev = (int32_t)m - 1, .next = (int32_t)m + 1,
                            .id = -1, .node = (int32_t)m };
        i += (size_t)k;
    }
    if (m == 0) return SLM_OK;
    e->syms[m - 1].next = -1;
    if (e->use_nodes) {
        if (!tok_grow((void **)&e->nodes, &e->nodes_cap, 2 * m, sizeof *e->nodes)) return nomem();
        for (size_t i = 0; i < m; i++)
            e->nodes[i] = (mnode){ .left = -1, .right = -1, .start = e->syms[i].start, .len = e->syms[i].len,
                                   .id = -1 };
        e->nodes_n = m;
    }

    e->heap.n = 0;
    for (size_t i = 1; i < m; i++)
        if (!try_pair(e, (int32_t)i - 1, (int32_t)i)) return nomem();

    while (e->heap.n) {
        tok_cand b = tok_heap_pop(&e->heap);   /* b.a: merged size, b.b: piece */
        sym *l = &e->syms[b.left];
        if (l->len == 0 || l->next < 0) continue;
        sym *r = &e->syms[l->next];
        /* lengths only grow, so an unchanged total means neither side moved */
        if (r->len == 0 || l->len + r->len != b.a) continue;
        l->len += r->len;
        l->id = b.b;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) e->syms[r->next].prev = b.left;
        if (e->use_nodes) {
            mnode *nd = &e->nodes[e->nodes_n];
            *nd = (mnode){ .left = l->node, .right = r->node, .start = l->start, .len = l->len, .id = b.b };
            l->node = (int32_t)e->nodes_n++;
        }
        if (!try_pair(e, l->prev, b.left) || !try_pair(e, b.left, l->next)) return nomem();
    }

    for (int32_t i = 0; i >= 0; i = e->syms[i].next) {
        const sym *s = &e->syms[i];
        slm_status st;
        if (e->use_nodes) st = emit_node(e, s->node, 0);
        else if (s->id >= 0) st = emit(e, s->id);
        else st = emit_char(e, s->start, s->len);
        if (st) return st;
    }
    return SLM_OK;
}

/* Escapes raw text (' ' -> U+2581, optional leading space) into e->esc and
 * encodes it. */
static slm_status encode_raw(enc *e, const char *s, size_t n, bool prefix) {
    size_t need = 3 * n + 3;
    if (!tok_grow((void **)&e->esc, &e->esc_cap, need, 1)) return nomem();
    size_t w = 0;
    if (prefix) {
        memcpy(e->esc, "\xE2\x96\x81", 3);
        w = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(e->esc + w, "\xE2\x96\x81", 3);
            w += 3;
        } else {
            e->esc[w++] = s[i];
        }
    }
    /* Cut before each U+2581 that no piece can reach across (see
     * before_mark): the parts merge independently of each other. */
    const slm_tokenizer *t = e->t;
    size_t part = 0;
    for (size_t i = 1; i + 3 <= w; i++) {
        if (e->esc[i] != '\xE2' || memcmp(e->esc + i, "\xE2\x96\x81", 3) != 0) continue;
        unsigned char b = (unsigned char)e->esc[i - 1];
        if (t->before_mark[b >> 3] & (1u << (b & 7))) continue;
        slm_status st = encode_fragment(e, part, i - part);
        if (st) return st;
        part = i;
        i += 2;
    }
    return encode_fragment(e, part, w - part);
}

/* tok_walk_literals' callbacks. Every fragment follows the start or a
 * literal token, so with add_space_prefix each one gets the space (as in
 * llama.cpp). */
static slm_status encode_frag(void *ctx, const char *s, size_t n) {
    enc *e = ctx;
    return encode_raw(e, s, n, e->t->add_space_prefix);
}
static slm_status emit_literal(void *ctx, int32_t id) { return emit(ctx, id); }

slm_status tok_encode(const slm_tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                      int32_t **out, size_t *n_out) {
    if (t->bpe) return bpe_encode(t, text, len, add_bos, parse_special, out, n_out);
    *out = NULL;
    *n_out = 0;
    slm_status st = tok_check_text(text, len);
    if (st) return st;

    enc e = { .t = t };
    e.use_nodes = t->has_unused;
    if (!tok_grow((void **)&e.out, &e.out_cap, len / 4 + 16, sizeof *e.out)) st = nomem();
    /* BOS only where the vocabulary asks for it (tokenizer.ggml.add_bos_token),
     * as llama.cpp's add_special does */
    if (!st && add_bos && t->add_bos && t->bos >= 0) st = emit(&e, t->bos);

    if (!st) st = tok_walk_literals(t, text, len, parse_special, encode_frag, emit_literal, &e);

    free(e.esc);
    free(e.syms);
    free(e.heap.v);
    free(e.nodes);
    if (st) {
        free(e.out);
        return st;
    }
    *out = e.out;
    *n_out = e.n_out;
    return SLM_OK;
}
