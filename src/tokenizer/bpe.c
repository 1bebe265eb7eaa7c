/* Byte-level BPE ("gpt2" vocabularies: Llama 3, Qwen2, SmolLM, Phi-4...).
 *
 * The pieces of such a vocabulary spell bytes, not text: every byte is one
 * printable character (GPT-2's byte-to-Unicode map: the printable Latin-1
 * bytes stand for themselves, the other 68 for U+0100 upwards, a space is
 * "Ġ"). Encoding, as HF tokenizers and llama.cpp do it:
 *   1. literally matched tokens are cut out first (tok_match_literal, as for
 *      SentencePiece vocabularies);
 *   2. the text between them is split into words by the pre-tokenizer that
 *      tokenizer.ggml.pre names (pretok.c);
 *   3. each word starts as one symbol per byte; the adjacent pair with the
 *      lowest merge rank (tokenizer.ggml.merges order) is merged, ties to the
 *      leftmost, until no pair has a merge. With ignore_merges (Llama 3) a
 *      word that is itself a token is taken whole. A byte whose character is
 *      not in the vocabulary is dropped (llama.cpp; the unknown token is not
 *      used by byte-level vocabularies).
 * Decoding maps each character of a piece back to its byte. */
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "base/utf8.h"
#include "tokenizer/merge_heap.h"
#include "tokenizer/tokenizer.h"

/* ---- GPT-2's byte <-> character map -------------------------------------- */

/* The printable bytes stand for themselves; the other 68 (0x00-0x20,
 * 0x7F-0xA0, 0xAD), in order, for U+0100 upwards. */
static inline bool byte_prints(uint32_t b) { return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255); }

static inline uint32_t byte_to_cp(uint32_t b) {
    if (byte_prints(b)) return b;
    if (b <= 32) return 256 + b;
    if (b <= 160) return 256 + 33 + (b - 127);
    return 256 + 67;  /* 0xAD */
}

/* The byte a code point stands for, or -1. */
static inline int cp_to_byte(uint32_t cp) {
    if (cp < 256) return byte_prints(cp) ? (int)cp : -1;
    uint32_t k = cp - 256;
    if (k <= 32) return (int)k;
    if (k <= 66) return (int)(127 + k - 33);
    return k == 67 ? 0xAD : -1;
}

#ifdef SLM_HAVE_PCRE2

#include "tokenizer/pretok.h"


struct tok_bpe {
    tok_pretok *pre;
    bool ignore_merges;
    int32_t byte_id[256];   /* token of each byte's character, -1 if none */
    char byte_char[256][2]; /* each byte's character as UTF-8 */
    uint8_t byte_char_len[256];
    /* (left id, right id) -> merge: open addressing, key 0 = empty (ids are
     * stored + 1 so that no real key is 0) */
    uint64_t *key;
    int32_t *rank, *result;
    size_t cap;
    int32_t n_merges;       /* kept (parts and result in the vocabulary) */
};

/* ---- merge table --------------------------------------------------------- */

static inline uint64_t pair_key(int32_t l, int32_t r) { return ((uint64_t)(uint32_t)(l + 1) << 32) | (uint32_t)(r + 1); }

static inline size_t pair_slot(uint64_t k, size_t mask) {
    k ^= k >> 31;
    k *= 0x9e3779b97f4a7c15ULL;
    k ^= k >> 29;
    return (size_t)k & mask;
}

/* Rank of merging l and r (lower merges first) and the token it makes; -1 if
 * there is no such merge. */
static int32_t merge_rank(const tok_bpe *b, int32_t l, int32_t r, int32_t *result) {
    uint64_t k = pair_key(l, r);
    size_t mask = b->cap - 1;
    for (size_t i = pair_slot(k, mask);; i = (i + 1) & mask) {
        if (b->key[i] == 0) return -1;
        if (b->key[i] == k) {
            *result = b->result[i];
            return b->rank[i];
        }
    }
}

static void merge_insert(tok_bpe *b, int32_t l, int32_t r, int32_t rank, int32_t result) {
    uint64_t k = pair_key(l, r);
    size_t mask = b->cap - 1;
    for (size_t i = pair_slot(k, mask);; i = (i + 1) & mask) {
        if (b->key[i] == k) return;  /* a repeated merge keeps its first rank */
        if (b->key[i] == 0) {
            b->key[i] = k;
            b->rank[i] = rank;
            b->result[i] = result;
            b->n_merges++;
            return;
        }
    }
}

static slm_status load_merges(const gguf_file *f, slm_tokenizer *t, tok_bpe *b) {
    const gguf_kv *mk = gguf_find(f, "tokenizer.ggml.merges");
    if (!mk) return slm_fail(SLM_ERR_FORMAT, "tokenizer: tokenizer.ggml.merges is missing (needed by \"gpt2\" vocabularies)");
    if (mk->type != GGUF_T_ARRAY || mk->arr_type != GGUF_T_STRING || (!mk->strs && mk->arr_n))
        return slm_fail(SLM_ERR_FORMAT, "tokenizer: tokenizer.ggml.merges is not an array of strings");
    /* below 2^24: the merge heap keys ranks as floats (tokenizer/merge_heap.h) */
    if (mk->arr_n >= (1u << 24))
        return slm_fail(SLM_ERR_FORMAT, "tokenizer: %llu merges is too many", (unsigned long long)mk->arr_n);
    size_t cap = 1024;
    while (cap < (size_t)mk->arr_n * 2) cap *= 2;
    b->cap = cap;
    b->key = calloc(cap, sizeof *b->key);
    b->rank = malloc(cap * sizeof *b->rank);
    b->result = malloc(cap * sizeof *b->result);
    char *joined = malloc(t->max_piece_len + 1);
    if (!b->key || !b->rank || !b->result || !joined) {
        free(joined);
        return slm_fail(SLM_ERR_NOMEM, "tokenizer: out of memory");
    }
    for (uint64_t i = 0; i < mk->arr_n; i++) {
        const char *s = mk->strs[i].ptr;
        size_t n = (size_t)mk->strs[i].len;
        /* "left right"; the left part may itself be a lone space (llama.cpp
         * looks for the separator from the second byte on). */
        const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
        if (!sp) {
            free(joined);
            return slm_fail(SLM_ERR_FORMAT, "tokenizer: merge %llu has no space between its two parts",
                            (unsigned long long)i);
        }
        size_t ln = (size_t)(sp - s), rn = n - ln - 1;
        int32_t l = tok_find(t, s, ln), r = tok_find(t, sp + 1, rn);
        if (l < 0 || r < 0 || ln + rn > t->max_piece_len) continue;  /* cannot apply: no such pieces */
        memcpy(joined, s, ln);
        memcpy(joined + ln, sp + 1, rn);
        int32_t res = tok_find(t, joined, ln + rn);
        if (res >= 0) merge_insert(b, l, r, (int32_t)i, res);
    }
    free(joined);
    return SLM_OK;
}

void bpe_free(tok_bpe *b) {
    if (!b) return;
    pretok_free(b->pre);
    free(b->key);
    free(b->rank);
    free(b->result);
    free(b);
}

slm_status bpe_load(const gguf_file *f, slm_tokenizer *t) {
    tok_bpe *b = calloc(1, sizeof *b);
    if (!b) return slm_fail(SLM_ERR_NOMEM, "tokenizer: out of memory");
    t->bpe = b;  /* tok_free releases it on any failure below */
    gguf_str pre = { 0 };
    const gguf_kv *pk = gguf_find(f, "tokenizer.ggml.pre");
    if (pk && !gguf_get_str(f, "tokenizer.ggml.pre", &pre))
        return slm_fail(SLM_ERR_FORMAT, "tokenizer: tokenizer.ggml.pre has type %s, expected a string",
                        gguf_vtype_name(pk->type));
    pretok_traits tr;
    slm_status st = pretok_new(pk ? pre.ptr : NULL, pk ? (size_t)pre.len : 0, &b->pre, &tr);
    if (st) return st;
    b->ignore_merges = tr.ignore_merges;
    if (!gguf_find(f, "tokenizer.ggml.add_bos_token")) t->add_bos = tr.add_bos;
    t->add_space_prefix = false;  /* the pre-tokenizer decides about spaces */

    for (uint32_t i = 0; i < 256; i++) {
        char u[4];
        int k = utf8_encode(byte_to_cp(i), u);  /* 1 or 2 bytes */
        memcpy(b->byte_char[i], u, (size_t)k);
        b->byte_char_len[i] = (uint8_t)k;
        b->byte_id[i] = tok_find(t, b->byte_char[i], (size_t)k);
    }
    return load_merges(f, t, b);
}

/* ---- encoding ------------------------------------------------------------ */

typedef struct {
    int32_t id, prev, next;
    bool alive;
} bsym;

typedef struct {
    const slm_tokenizer *t;
    const tok_bpe *b;
    bsym *syms;
    size_t syms_cap;
    tok_heap heap;        /* candidate pairs: key rank, a/b = left/right ids */
    char *word;           /* a word in the byte alphabet (ignore_merges) */
    size_t word_cap;
    int32_t *out;
    size_t n_out, out_cap;
} benc;

static slm_status nomem(void) { return slm_fail(SLM_ERR_NOMEM, "tokenize: out of memory"); }

static slm_status emit(benc *e, int32_t id) {
    if (e->n_out == e->out_cap && !tok_grow((void **)&e->out, &e->out_cap, e->n_out + 1, sizeof *e->out)) return nomem();
    e->out[e->n_out++] = id;
    return SLM_OK;
}

static bool try_pair(benc *e, int32_t l, int32_t r) {
    if (l < 0 || r < 0 || e->syms[l].id < 0 || e->syms[r].id < 0) return true;
    int32_t res;
    int32_t rank = merge_rank(e->b, e->syms[l].id, e->syms[r].id, &res);
    if (rank < 0) return true;
    return tok_heap_push(&e->heap, (tok_cand){ .key = (float)rank, .left = l, .a = e->syms[l].id, .b = e->syms[r].id });
}

/* One word of the pre-tokenizer: BPE over its bytes. */
static slm_status encode_word(void *ctx, const char *s, size_t n) {
    benc *e = ctx;
    const tok_bpe *b = e->b;
    if (b->ignore_merges) {
        if (!tok_grow((void **)&e->word, &e->word_cap, 2 * n, 1)) return nomem();
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)s[i];
            memcpy(e->word + w, b->byte_char[c], b->byte_char_len[c]);
            w += b->byte_char_len[c];
        }
        int32_t id = tok_find(e->t, e->word, w);
        if (id >= 0) return emit(e, id);
    }
    if (!tok_grow((void **)&e->syms, &e->syms_cap, n, sizeof *e->syms)) return nomem();
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        /* A byte with no token (SmolLM2 lacks 0x04, for one) stays a symbol
         * that merges with nothing and is dropped from the output, as in
         * llama.cpp and HF tokenizers without an unknown token. */
        e->syms[i] = (bsym){ .id = b->byte_id[c], .prev = (int32_t)i - 1, .next = i + 1 < n ? (int32_t)i + 1 : -1, .alive = true };
    }
    e->heap.n = 0;
    for (size_t i = 1; i < n; i++)
        if (!try_pair(e, (int32_t)i - 1, (int32_t)i)) return nomem();
    while (e->heap.n) {
        tok_cand c = tok_heap_pop(&e->heap);   /* c.a, c.b: the left and right ids */
        bsym *l = &e->syms[c.left];
        if (!l->alive || l->next < 0 || l->id != c.a) continue;
        bsym *r = &e->syms[l->next];
        if (r->id != c.b) continue;  /* a stale candidate: a side was merged since */
        int32_t res;
        (void)merge_rank(b, c.a, c.b, &res);
        l->id = res;
        r->alive = false;
        l->next = r->next;
        if (r->next >= 0) e->syms[r->next].prev = c.left;
        if (!try_pair(e, l->prev, c.left) || !try_pair(e, c.left, l->next)) return nomem();
    }
    for (int32_t i = 0; i >= 0; i = e->syms[i].next) {
        if (e->syms[i].id < 0) continue;
        slm_status st = emit(e, e->syms[i].id);
        if (st) return st;
    }
    return SLM_OK;
}

/* tok_walk_literals' callbacks: the text between literal tokens goes
 * through the pre-tokenizer, each of its words through encode_word. */
static slm_status split_frag(void *ctx, const char *s, size_t n) {
    benc *e = ctx;
    return pretok_split(e->b->pre, s, n, encode_word, e);
}
static slm_status emit_literal(void *ctx, int32_t id) { return emit(ctx, id); }

slm_status bpe_encode(const slm_tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                      int32_t **out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    slm_status st = tok_check_text(text, len);
    if (st) return st;

    benc e = { .t = t, .b = t->bpe };
    if (!tok_grow((void **)&e.out, &e.out_cap, len / 3 + 16, sizeof *e.out)) st = nomem();
    if (!st && add_bos && t->add_bos && t->bos >= 0) st = emit(&e, t->bos);  /* as in spm.c */

    if (!st) st = tok_walk_literals(t, text, len, parse_special, split_frag, emit_literal, &e);

    free(e.syms);
    free(e.heap.v);
    free(e.word);
    if (st) {
        free(e.out);
        return st;
    }
    *out = e.out;
    *n_out = e.n_out;
    return SLM_OK;
}

#else  /* !SLM_HAVE_PCRE2 */

void bpe_free(tok_bpe *b) { (void)b; }

slm_status bpe_load(const gguf_file *f, slm_tokenizer *t) {
    (void)f;
    (void)t;
    return slm_fail(SLM_ERR_UNSUPPORTED, "tokenizer: model \"gpt2\" (byte-level BPE) needs PCRE2, and this build "
                    "has none (install libpcre2-dev and rebuild)");
}

slm_status bpe_encode(const slm_tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
                      int32_t **out, size_t *n_out) {
    (void)t, (void)text, (void)len, (void)add_bos, (void)parse_special;
    *out = NULL;
    *n_out = 0;
    return slm_fail(SLM_ERR_UNSUPPORTED, "tokenize: byte-level BPE is not built in");
}

#endif

/* ---- decoding (needs no PCRE2) -------------------------------------------- */

size_t bpe_piece_bytes(const char *s, size_t n, char *buf, size_t cap) {
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = utf8_decode((const unsigned char *)s + i, n - i, &cp);
        if (k <= 0) k = 1, cp = 0xFFFFFFFFu;  /* a broken piece: copy the byte */
        int b = cp_to_byte(cp);
        if (b >= 0) {
            if (w < cap) buf[w] = (char)b;
            w++;
        } else {  /* not a byte character: the text as it is */
            for (int j = 0; j < k; j++, w++)
                if (w < cap) buf[w] = s[i + (size_t)j];
        }
        i += (size_t)k;
    }
    return w;
}
