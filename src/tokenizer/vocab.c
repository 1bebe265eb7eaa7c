/* The vocabulary: loading it from GGUF metadata, the piece -> id hash table,
 * the trie of literally matched tokens, and token -> bytes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "base/utf8.h"
#include "tokenizer/tokenizer.h"

#define SPACE_MARK "\xE2\x96\x81" /* U+2581, what a space is in the pieces */

/* ---- hashing ------------------------------------------------------------ */

uint64_t tok_hash(const char *s, size_t n) {
    /* FNV-1a with a final avalanche; the pieces are short. */
    uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)n;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

static inline const char *piece_ptr(const slm_tokenizer *t, int32_t id) { return t->pool + t->off[id]; }
static inline size_t piece_len(const slm_tokenizer *t, int32_t id) {
    return (size_t)(t->off[id + 1] - t->off[id]);
}

int32_t tok_find(const slm_tokenizer *t, const char *s, size_t n) {
    if (n > t->max_piece_len) return -1;
    uint64_t h = tok_hash(s, n);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t v = t->slot_id[i];
        if (v == 0) return -1;
        if (t->slot_hash[i] == tag) {
            int32_t id = (int32_t)(v - 1);
            if (piece_len(t, id) == n && memcmp(piece_ptr(t, id), s, n) == 0) return id;
        }
    }
}

/* Adds id unless a piece with the same text is there (the first one wins). */
static void table_insert(slm_tokenizer *t, int32_t id) {
    const char *s = piece_ptr(t, id);
    size_t n = piece_len(t, id);
    uint64_t h = tok_hash(s, n);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t v = t->slot_id[i];
        if (v == 0) {
            t->slot_id[i] = (uint32_t)id + 1;
            t->slot_hash[i] = tag;
            return;
        }
        if (t->slot_hash[i] == tag) {
            int32_t o = (int32_t)(v - 1);
            if (piece_len(t, o) == n && memcmp(piece_ptr(t, o), s, n) == 0) return;
        }
    }
}

/* ---- trie of literally matched tokens ----------------------------------- */

static void trie_insert(slm_tokenizer *t, int32_t id) {
    const unsigned char *s = (const unsigned char *)piece_ptr(t, id);
    size_t n = piece_len(t, id);
    int32_t node = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = t->trie[node].first_child;
        while (c >= 0 && t->trie[c].byte != s[i]) c = t->trie[c].next_sibling;
        if (c < 0) {
            c = t->n_trie++;  /* room was reserved for every byte of every token */
            t->trie[c] = (tok_trie_node){ .first_child = -1, .next_sibling = t->trie[node].first_child,
                                          .id = -1, .byte = s[i] };
            t->trie[node].first_child = c;
        }
        node = c;
    }
    if (t->trie[node].id < 0) t->trie[node].id = id;
    t->trie_first[s[0] >> 3] |= (uint8_t)(1u << (s[0] & 7));
}

/* ---- loading ------------------------------------------------------------ */

static bool is_literal_type(int ty) {
    return ty == TOK_CONTROL || ty == TOK_UNKNOWN || ty == TOK_USER_DEFINED;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xNN>" -> NN, or -1. */
static int parse_byte_piece(const char *s, size_t n) {
    if (n != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
    int hi = hexval(s[3]), lo = hexval(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static bool is_int_type(uint32_t ty) {
    switch (ty) {
    case GGUF_T_U8: case GGUF_T_I8: case GGUF_T_U16: case GGUF_T_I16:
    case GGUF_T_U32: case GGUF_T_I32: case GGUF_T_U64: case GGUF_T_I64:
        return true;
    }
    return false;
}

/* Optional token id key: absent -> -1; present -> must be an integer in range. */
static slm_status read_id(const gguf_file *f, const char *key, int32_t n, int32_t *out) {
    *out = -1;
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return SLM_OK;
    int64_t v;
    if (!gguf_get_i64(f, key, &v))
        return slm_fail(SLM_ERR_FORMAT, "tokenizer: %s has type %s, expected an integer", key,
                        gguf_vtype_name(kv->type));
    if (v < 0 || v >= n)
        return slm_fail(SLM_ERR_FORMAT, "tokenizer: %s = %lld is outside the vocabulary (%d tokens)", key,
                        (long long)v, (int)n);
    *out = (int32_t)v;
    return SLM_OK;
}

static slm_status read_flag(const gguf_file *f, const char *key, bool dflt, bool *out) {
    *out = dflt;
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return SLM_OK;
    if (!gguf_get_bool(f, key, out))
        return slm_fail(SLM_ERR_FORMAT, "tokenizer: %s has type %s, expected bool", key, gguf_vtype_name(kv->type));
    return SLM_OK;
}

static void add_eog(slm_tokenizer *t, int32_t id) {
    if (id < 0) return;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return;
    if (t->n_eog < (int)(sizeof t->eog / sizeof t->eog[0])) t->eog[t->n_eog++] = id;
}

static slm_status load_arrays(const gguf_file *f, slm_tokenizer *t) {
    const gguf_kv *tk = gguf_find(f, "tokenizer.ggml.tokens");
    if (!tk) return slm_fail(SLM_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens is missing");
    if (tk->type != GGUF_T_ARRAY || tk->arr_type != GGUF_T_STRING)
        return slm_fail(SLM_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens is not an array of strings");
    if (tk->arr_n == 0) return slm_fail(SLM_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens is empty");
    if (!tk->strs) return slm_fail(SLM_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens has no string index");
    if (tk->arr_n > (1u << 30))
        return slm_fail(SLM_ERR_FORMAT, "tokenizer: %llu tokens is too many", (unsigned long long)tk->arr_n);
    int32_t n = (int32_t)tk->arr_n;
    t->n_vocab = n;

    const gguf_kv *sc = gguf_find(f, "tokenizer.ggml.scores");
    if (sc) {
        if (sc->type != GGUF_T_ARRAY || (sc->arr_type != GGUF_T_F32 && sc->arr_type != GGUF_T_F64))
            return slm_fail(SLM_ERR_FORMAT, "tokenizer: tokenizer.ggml.scores is not an array of floats");
        if (sc->arr_n != tk->arr_n)
            return slm_fail(SLM_ERR_FORMAT, "tokenizer: %llu scores for %d tokens",
                            (unsigned long long)sc->arr_n, (int)n);
    }
    const gguf_kv *ty = gguf_find(f, "tokenizer.ggml.token_type");
    if (ty) {
        if (ty->type != GGUF_T_ARRAY || !is_int_type(ty->arr_type))
            return slm_fail(SLM_ERR_FORMAT, "tokenizer: tokenizer.ggml.token_type is not an array of integers");
        if (ty->arr_n != tk->arr_n)
            return slm_fail(SLM_ERR_FORMAT, "tokenizer: %llu token types for %d tokens",
                            (unsigned long long)ty->arr_n, (int)n);
    }

    uint64_t total = 0;
    size_t maxlen = 0;
    for (int32_t i = 0; i < n; i++) {
        total += tk->strs[i].len;  /* each is within the file, so no overflow */
        if (tk->strs[i].len > maxlen) maxlen = (size_t)tk->strs[i].len;
    }
    t->max_piece_len = maxlen;
    t->pool = malloc((size_t)total + 1);
    t->off = malloc(((size_t)n + 1) * sizeof *t->off);
    t->score = malloc((size_t)n * sizeof *t->score);
    t->type = malloc((size_t)n);
    if (!t->pool || !t->off || !t->score || !t->type) return slm_fail(SLM_ERR_NOMEM, "tokenizer: out of memory");

    uint64_t pos = 0;
    for (int32_t i = 0; i < n; i++) {
        t->off[i] = pos;
        if (tk->strs[i].len) memcpy(t->pool + pos, tk->strs[i].ptr, (size_t)tk->strs[i].len);
        pos += tk->strs[i].len;
        double s = sc ? gguf_arr_f64(sc, (uint64_t)i) : 0.0;
        if (isnan(s)) return slm_fail(SLM_ERR_FORMAT, "tokenizer: the score of token %d is NaN", (int)i);
        t->score[i] = (float)s;
        int64_t v = ty ? gguf_arr_i64(ty, (uint64_t)i) : TOK_NORMAL;
        if (v < TOK_UNDEFINED || v > TOK_BYTE)
            return slm_fail(SLM_ERR_FORMAT, "tokenizer: token %d has unknown type %lld", (int)i, (long long)v);
        t->type[i] = (uint8_t)v;
        if (v == TOK_UNUSED) t->has_unused = true;
    }
    t->off[n] = pos;
    t->pool[pos] = '\0';
    return SLM_OK;
}

static slm_status build_indexes(slm_tokenizer *t) {
    int32_t n = t->n_vocab;
    size_t cap = 1024;
    while (cap < (size_t)n * 2) cap *= 2;
    t->cap = cap;
    t->slot_id = calloc(cap, sizeof *t->slot_id);
    t->slot_hash = calloc(cap, sizeof *t->slot_hash);
    if (!t->slot_id || !t->slot_hash) return slm_fail(SLM_ERR_NOMEM, "tokenizer: out of memory");
    for (int32_t i = 0; i < n; i++) table_insert(t, i);

    for (int b = 0; b < 256; b++) t->byte_tok[b] = -1;
    size_t trie_nodes = 1;
    for (int32_t i = 0; i < n; i++) {
        int ty = t->type[i];
        if (ty == TOK_NORMAL || ty == TOK_USER_DEFINED || ty == TOK_UNUSED || ty == TOK_UNDEFINED) {
            const char *s = piece_ptr(t, i);
            size_t len = piece_len(t, i);
            for (size_t k = 1; k + 3 <= len; k++)
                if (memcmp(s + k, SPACE_MARK, 3) == 0) {
                    unsigned char b = (unsigned char)s[k - 1];
                    t->before_mark[b >> 3] |= (uint8_t)(1u << (b & 7));
                }
        }
        if (ty == TOK_BYTE) {
            int b = parse_byte_piece(piece_ptr(t, i), piece_len(t, i));
            if (b < 0)
                return slm_fail(SLM_ERR_FORMAT, "tokenizer: byte token %d is not of the form <0xNN>", (int)i);
            if (t->byte_tok[b] < 0) t->byte_tok[b] = i;
        } else if (is_literal_type(ty)) {
            trie_nodes += piece_len(t, i);
        }
    }
    if (trie_nodes > INT32_MAX) return slm_fail(SLM_ERR_FORMAT, "tokenizer: special tokens too long");
    t->trie = malloc(trie_nodes * sizeof *t->trie);
    if (!t->trie) return slm_fail(SLM_ERR_NOMEM, "tokenizer: out of memory");
    t->trie[0] = (tok_trie_node){ .first_child = -1, .next_sibling = -1, .id = -1, .byte = 0 };
    t->n_trie = 1;
    for (int32_t i = 0; i < n; i++)
        if (is_literal_type(t->type[i]) && piece_len(t, i) > 0) trie_insert(t, i);
    return SLM_OK;
}

slm_status tok_load(const gguf_file *f, slm_tokenizer **out) {
    *out = NULL;
    gguf_str model;
    if (!gguf_find(f, "tokenizer.ggml.model"))
        return slm_fail(SLM_ERR_FORMAT, "tokenizer: tokenizer.ggml.model is missing");
    if (!gguf_get_str(f, "tokenizer.ggml.model", &model))
        return slm_fail(SLM_ERR_FORMAT, "tokenizer: tokenizer.ggml.model is not a string");
    bool byte_level = gguf_str_eq(model, "gpt2");
    if (!gguf_str_eq(model, "llama") && !byte_level) {
        int shown = model.len > 40 ? 40 : (int)model.len;
        return slm_fail(SLM_ERR_UNSUPPORTED,
                        "tokenizer: model \"%.*s\" is not supported (only \"llama\" and \"gpt2\")", shown,
                        model.ptr);
    }

    slm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return slm_fail(SLM_ERR_NOMEM, "tokenizer: out of memory");
    slm_status st = load_arrays(f, t);
    if (!st) st = build_indexes(t);
    int32_t n = t->n_vocab;
    if (!st) st = read_id(f, "tokenizer.ggml.bos_token_id", n, &t->bos);
    if (!st) st = read_id(f, "tokenizer.ggml.eos_token_id", n, &t->eos);
    if (!st) st = read_id(f, "tokenizer.ggml.unknown_token_id", n, &t->unk);
    if (!st) st = read_id(f, "tokenizer.ggml.padding_token_id", n, &t->pad);
    if (!st) st = read_id(f, "tokenizer.ggml.eot_token_id", n, &t->eot);
    int32_t eom = -1;
    if (!st) st = read_id(f, "tokenizer.ggml.eom_token_id", n, &eom);
    if (!st) st = read_flag(f, "tokenizer.ggml.add_bos_token", true, &t->add_bos);
    /* llama.cpp's default for "llama" vocabularies without the key is true. */
    if (!st) st = read_flag(f, "tokenizer.ggml.add_space_prefix", true, &t->add_space_prefix);
    if (!st && byte_level) st = bpe_load(f, t);
    if (st) {
        tok_free(t);
        return st;
    }
    if (t->unk < 0) {
        for (int32_t i = 0; i < n; i++)
            if (t->type[i] == TOK_UNKNOWN) { t->unk = i; break; }
    }
    /* End of generation: eos, eot/eom, and the end-of-turn markers of the
     * chat formats we know, looked up by text. */
    static const char *const eog_text[] = { "<end_of_turn>", "<|eot_id|>", "<|eom_id|>", "<|im_end|>",
                                            "<|end|>", "<EOT>",
                                            "<|endoftext|>", "<|end_of_text|>" };
    add_eog(t, t->eos);
    add_eog(t, t->eot);
    add_eog(t, eom);
    for (size_t i = 0; i < sizeof eog_text / sizeof eog_text[0]; i++) {
        int32_t id = tok_find(t, eog_text[i], strlen(eog_text[i]));
        if (id >= 0 && (t->type[id] == TOK_CONTROL || t->type[id] == TOK_USER_DEFINED)) {
            if (t->eot < 0) t->eot = id;
            add_eog(t, id);
        }
    }
    *out = t;
    return SLM_OK;
}

void tok_free(slm_tokenizer *t) {
    if (!t) return;
    free(t->pool);
    free(t->off);
    free(t->score);
    free(t->type);
    free(t->slot_id);
    free(t->slot_hash);
    free(t->trie);
    bpe_free(t->bpe);
    free(t);
}

/* ---- accessors ---------------------------------------------------------- */

int tok_n_vocab(const slm_tokenizer *t) { return t->n_vocab; }
int32_t tok_bos(const slm_tokenizer *t) { return t->bos; }
int32_t tok_eos(const slm_tokenizer *t) { return t->eos; }
int32_t tok_unk(const slm_tokenizer *t) { return t->unk; }
bool tok_add_bos(const slm_tokenizer *t) { return t->add_bos; }

int32_t tok_lookup(const slm_tokenizer *t, const char *piece, size_t len) {
    if (!piece) return -1;
    return tok_find(t, piece, len);
}

bool tok_is_eog(const slm_tokenizer *t, int32_t id) {
    if (id < 0) return false;
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id) return true;
    return false;
}

int tok_type(const slm_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->type[id] : -1;
}

float tok_score(const slm_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab ? t->score[id] : 0.0f;
}

const char *tok_text(const slm_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return "";
    }
    if (len) *len = piece_len(t, id);
    return piece_ptr(t, id);
}

/* ---- token -> bytes ----------------------------------------------------- */

static size_t put(char *buf, size_t cap, size_t at, const char *s, size_t n) {
    if (at < cap) memcpy(buf + at, s, n < cap - at ? n : cap - at);
    return at + n;
}

size_t tok_piece_bytes(const slm_tokenizer *t, int32_t id, bool special, char *buf, size_t cap) {
    if (!buf) cap = 0;
    if (id < 0 || id >= t->n_vocab) return 0;
    const char *s = piece_ptr(t, id);
    size_t n = piece_len(t, id);
    switch (t->type[id]) {
    case TOK_CONTROL:
    case TOK_UNKNOWN:
        return special ? put(buf, cap, 0, s, n) : 0;
    case TOK_USER_DEFINED:
        return put(buf, cap, 0, s, n);
    case TOK_UNUSED:
        return 0;
    case TOK_BYTE: {
        char b = (char)parse_byte_piece(s, n);  /* checked at load */
        return put(buf, cap, 0, &b, 1);
    }
    default: {  /* normal (and undefined): U+2581 -> ' ', or bytes from byte-level BPE */
        if (t->bpe) return bpe_piece_bytes(s, n, buf, cap);
        size_t w = 0, i = 0;
        while (i < n) {
            const char *m = n - i >= 3 ? memchr(s + i, '\xE2', n - i - 2) : NULL;
            while (m && memcmp(m, SPACE_MARK, 3) != 0) {
                size_t at = (size_t)(m - s) + 1;
                m = n - at >= 3 ? memchr(s + at, '\xE2', n - at - 2) : NULL;
            }
            if (!m) {
                w = put(buf, cap, w, s + i, n - i);
                break;
            }
            size_t j = (size_t)(m - s);
            w = put(buf, cap, w, s + i, j - i);
            w = put(buf, cap, w, " ", 1);
            i = j + 3;
        }
        return w;
    }
    }
}

/* Grows *p (an array of elem-byte items, capacity *cap) to hold need items,
 * doubling from 64; false when out of memory (*p is then unchanged). */
bool tok_grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

/* ---- literal tokens: the trie, for both encoders --------------------------- */

/* Longest literally matched token at s[0..n) that the flags allow, or -1. */
int32_t tok_match_literal(const slm_tokenizer *t, const unsigned char *s, size_t n, bool parse_special,
                          size_t *len) {
    int32_t best = -1, node = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t c = t->trie[node].first_child;
        while (c >= 0 && t->trie[c].byte != s[i]) c = t->trie[c].next_sibling;
        if (c < 0) break;
        node = c;
        int32_t id = t->trie[c].id;
        if (id >= 0 && (parse_special || t->type[id] == TOK_USER_DEFINED)) {
            best = id;
            *len = i + 1;
        }
    }
    return best;
}

slm_status tok_check_text(const char *text, size_t len) {
    if (!text && len) return slm_fail(SLM_ERR_INVALID_ARG, "tokenize: text is NULL");
    if (len > TOK_MAX_TEXT)
        return slm_fail(SLM_ERR_INVALID_ARG, "tokenize: text of %zu bytes is too long (max %zu)", len, TOK_MAX_TEXT);
    size_t bad;
    if (!utf8_validate(text, len, &bad))
        return slm_fail(SLM_ERR_INVALID_ARG, "tokenize: invalid UTF-8 at byte offset %zu (0x%02X)", bad,
                        (unsigned)(unsigned char)text[bad]);
    return SLM_OK;
}

slm_status tok_walk_literals(const slm_tokenizer *t, const char *text, size_t len, bool parse_special,
                             slm_status (*frag)(void *ctx, const char *s, size_t n),
                             slm_status (*lit)(void *ctx, int32_t id), void *ctx) {
    const unsigned char *s = (const unsigned char *)text;
    size_t start = 0, i = 0;
    slm_status st = SLM_OK;
    while (!st && i < len) {
        if (!(t->trie_first[s[i] >> 3] & (1u << (s[i] & 7)))) {   /* no literal starts with this byte */
            i++;
            continue;
        }
        size_t mlen = 0;
        int32_t id = tok_match_literal(t, s + i, len - i, parse_special, &mlen);
        if (id < 0) {
            i++;
            continue;
        }
        if (i > start) st = frag(ctx, text + start, i - start);
        if (!st) st = lit(ctx, id);
        i += mlen;
        start = i;
    }
    if (!st && len > start) st = frag(ctx, text + start, len - start);
    return st;
}
