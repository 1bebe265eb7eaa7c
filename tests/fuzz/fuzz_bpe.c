/* libFuzzer target: arbitrary bytes into the byte-level BPE tokenizer (both
 * parse_special settings) and its pre-tokenizers.
 *
 * Vocabularies: a small synthetic one written as GGUF in memory (the 256 byte
 * characters, merges including a repeated one, one whose parts are not
 * pieces and one whose result is not, control and user-defined tokens with a
 * shared prefix) under every supported tokenizer.ggml.pre; plus SmolLM2's real
 * vocabulary, tests/fixtures/tokenizer/smollm2_vocab.gguf, when it can be
 * opened (run from the source root).
 *
 * Checked on every input:
 *   - invalid UTF-8 is SLM_ERR_INVALID_ARG with nothing returned;
 *   - valid text: every id in range, BOS first when asked for and the
 *     vocabulary wants one (llama-bpe and tekken by default), and decoding
 *     (control tokens as text) gives the input back byte for byte;
 *   - the pre-tokenizer's pieces are non-empty, in order, cover the text and
 *     start on character boundaries;
 *   - for inputs up to 200 bytes, the ids equal a naive encoder: leftmost-
 *     longest literal tokens, then for each piece an O(n^2) loop that merges
 *     the adjacent pair with the lowest rank, with its own sorted copies of
 *     the pieces and merges (not the tokenizer's hash tables). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "slm.h"
#include "tokenizer/tokenizer.h"

#ifdef SLM_HAVE_PCRE2
#include "tokenizer/pretok.h"

#if defined(__clang__)
#define NOCOV __attribute__((no_sanitize("coverage")))
#else
#define NOCOV
#endif

#define FAIL(...) do { fprintf(stderr, "fuzz_bpe: " __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

/* ---- GGUF in memory ----------------------------------------------------- */

/* gguf_writer built, gguf_writer_to_memory written, gguf_parse read back;
 * *mem holds the bytes the returned file points into. */
static gguf_file *parse_built(gguf_writer *w, slm_status st, unsigned char **mem) {
    size_t n = 0;
    if (!st) st = gguf_writer_to_memory(w, mem, &n);
    gguf_writer_free(w);
    gguf_file *gf = NULL;
    if (!st) st = gguf_parse(*mem, n, &gf);
    if (st) FAIL("synthetic GGUF: %s", slm_last_error());
    return gf;
}

/* GPT-2's byte alphabet, written independently of bpe.c: printable bytes as
 * themselves, the others from U+0100 in byte order. */
static void byte_char(int b, char out[3]) {
    bool prints = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    int cp = b;
    if (!prints) {
        cp = 256;
        for (int i = 0; i < b; i++)
            if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255))) cp++;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* Merges of the synthetic vocabulary ("Ġ" is a space, "Ċ" a newline); each
 * result becomes a token, except where marked. */
static const char *const syn_merges[] = {
    "Ġ t", "h e", "Ġt he", "i n", "in g", "Ġ a", "e r", "1 2", "12 3", "Ġ 1", "' s", "Ċ Ċ", "Ġ Ġ", "ĠĠ ĠĠ",
    "a a", "aa a", "aa aa", "h e", /* repeated: keeps its first rank */ "x y", "xy z", "Ã ©", "c a", "ca f",
    "caf Ã©", "æ Ĺ", "< |", "e n", "Ġ (", "( x", "e d",
};
static const char *const syn_missing = "qq ww";   /* parts that are no pieces */
static const char *const syn_noresult = "z z";    /* "zz" is not a piece */

static gguf_file *make_gguf(const char *pre, unsigned char **mem) {
    static char chars[256][3];
    const char *tok[400];
    int32_t type[400];
    int n = 0;
    for (int b = 0; b < 256; b++) {
        byte_char(b, chars[b]);
        tok[n] = chars[b];
        type[n++] = 1;
    }
    static char joined[64][32];
    int nm = (int)(sizeof syn_merges / sizeof syn_merges[0]);
    for (int i = 0; i < nm; i++) {
        const char *sp = strchr(syn_merges[i], ' ');
        snprintf(joined[i], sizeof joined[i], "%.*s%s", (int)(sp - syn_merges[i]), syn_merges[i], sp + 1);
        bool dup = false;
        for (int j = 0; j < n; j++) dup = dup || strcmp(tok[j], joined[i]) == 0;
        if (!dup) {
            tok[n] = joined[i];
            type[n++] = 1;
        }
    }
    static const char *const specials[] = { "<|end|>", "<|e", "<|endoftext|>", "<tool>", "</tool>" };
    static const int special_type[] = { 3, 3, 3, 4, 4 };
    for (int i = 0; i < 5; i++) {
        tok[n] = specials[i];
        type[n++] = special_type[i];
    }

    const char *merges[66];
    merges[0] = syn_missing;
    for (int i = 0; i < nm; i++) merges[1 + i] = syn_merges[i];
    merges[1 + nm] = syn_noresult;
    gguf_writer *w = NULL;
    slm_status st = gguf_writer_new(&w);
    if (!st) st = gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    if (!st && pre) st = gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
    if (!st) st = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", tok, (size_t)n);
    if (!st) st = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", type, (size_t)n);
    if (!st) st = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, (size_t)nm + 2);
    if (!st) st = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)n - 3);
    if (!st) st = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)n - 5);
    return parse_built(w, st, mem);
}

/* ---- the vocabularies, with the naive encoder's own indexes -------------- */

typedef struct { const char *s; size_t n; int32_t id; } entry;

typedef struct {
    char name[48];
    slm_tokenizer *t;
    tok_pretok *pre;
    bool ignore_merges;
    entry *pieces;   /* sorted by text, then id */
    entry *merges;   /* "left right" sorted by text, then rank (in id) */
    size_t n_merges;
    size_t max_literal;
} vocab;

static vocab vocabs[8];
static int n_vocabs;

NOCOV static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn) {
    size_t m = an < bn ? an : bn;
    for (size_t i = 0; i < m; i++)
        if (a[i] != b[i]) return (unsigned char)a[i] < (unsigned char)b[i] ? -1 : 1;
    return (an > bn) - (an < bn);
}

static int cmp_entry(const void *x, const void *y) {
    const entry *a = x, *b = y;
    int c = cmp_bytes(a->s, a->n, b->s, b->n);
    return c ? c : (a->id > b->id) - (a->id < b->id);
}

/* First entry with text s[0..n) (lowest id / rank), or NULL. */
NOCOV static const entry *lookup(const entry *v, size_t count, const char *s, size_t n) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp_bytes(v[mid].s, v[mid].n, s, n) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < count && cmp_bytes(v[lo].s, v[lo].n, s, n) == 0 ? &v[lo] : NULL;
}

static void add_vocab(const char *name, const gguf_file *gf) {
    vocab *v = &vocabs[n_vocabs];
    snprintf(v->name, sizeof v->name, "%s", name);
    if (tok_load(gf, &v->t) != SLM_OK) FAIL("%s: %s", name, slm_last_error());
    gguf_str pre = { 0 };
    bool has_pre = gguf_get_str(gf, "tokenizer.ggml.pre", &pre);
    pretok_traits tr;
    if (pretok_new(has_pre ? pre.ptr : NULL, (size_t)pre.len, &v->pre, &tr) != SLM_OK) FAIL("%s: pretok", name);
    v->ignore_merges = tr.ignore_merges;
    int32_t n = tok_n_vocab(v->t);
    v->pieces = malloc((size_t)n * sizeof *v->pieces);
    for (int32_t i = 0; i < n; i++) {
        v->pieces[i].s = tok_text(v->t, i, &v->pieces[i].n);
        v->pieces[i].id = i;
        int ty = tok_type(v->t, i);
        if ((ty == TOK_CONTROL || ty == TOK_USER_DEFINED || ty == TOK_UNKNOWN) && v->pieces[i].n > v->max_literal)
            v->max_literal = v->pieces[i].n;
    }
    qsort(v->pieces, (size_t)n, sizeof *v->pieces, cmp_entry);
    const gguf_kv *mk = gguf_find(gf, "tokenizer.ggml.merges");
    v->n_merges = (size_t)mk->arr_n;
    v->merges = malloc(v->n_merges * sizeof *v->merges);
    for (size_t i = 0; i < v->n_merges; i++) {
        /* copies: the GGUF buffer goes away */
        char *c = malloc((size_t)mk->strs[i].len + 1);
        memcpy(c, mk->strs[i].ptr, (size_t)mk->strs[i].len);
        v->merges[i] = (entry){ c, (size_t)mk->strs[i].len, (int32_t)i };
    }
    qsort(v->merges, v->n_merges, sizeof *v->merges, cmp_entry);
    n_vocabs++;
}

static void init(void) {
    static const char *const pres[] = { NULL, "gpt2", "llama-bpe", "qwen2", "smollm", "tekken", "gpt-4o" };
    for (size_t i = 0; i < sizeof pres / sizeof pres[0]; i++) {
        unsigned char *mem;
        gguf_file *gf = make_gguf(pres[i], &mem);
        char name[48];
        snprintf(name, sizeof name, "synthetic/%s", pres[i] ? pres[i] : "(no pre)");
        add_vocab(name, gf);
        gguf_close(gf);
        free(mem);
    }
    gguf_file *gf;
    if (gguf_open("tests/fixtures/tokenizer/smollm2_vocab.gguf", &gf) == SLM_OK) {
        add_vocab("smollm2", gf);
        gguf_close(gf);
    }
    fprintf(stderr, "fuzz_bpe: %d vocabularies%s\n", n_vocabs,
            n_vocabs == 8 ? "" : " (smollm2_vocab.gguf not found: run from the source root)");
}

/* ---- naive reference ---------------------------------------------------- */

typedef struct { int32_t *v; size_t n, cap; } ivec;

NOCOV static void push(ivec *a, int32_t x) {
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (!a->v) abort();
    }
    a->v[a->n++] = x;
}

static const vocab *cur;

NOCOV static int32_t find_piece(const char *s, size_t n) {
    const entry *e = lookup(cur->pieces, (size_t)tok_n_vocab(cur->t), s, n);
    return e ? e->id : -1;
}

typedef struct { char s[1024]; size_t n; } sym;  /* a symbol's text in the byte alphabet */

NOCOV static slm_status naive_word(void *ctx, const char *s, size_t n) {
    ivec *out = ctx;
    sym *w = malloc((n + 1) * sizeof *w);
    size_t m = 0, total = 0;
    for (size_t i = 0; i < n; i++) {
        char c[3];
        byte_char((unsigned char)s[i], c);
        w[m].n = strlen(c);
        memcpy(w[m].s, c, w[m].n);
        total += w[m++].n;
    }
    if (cur->ignore_merges && total < sizeof w[0].s) {
        char all[1024];
        size_t k = 0;
        for (size_t i = 0; i < m; i++, k += w[i - 1].n) memcpy(all + k, w[i].s, w[i].n);
        int32_t id = find_piece(all, k);
        if (id >= 0) {
            push(out, id);
            free(w);
            return SLM_OK;
        }
    }
    for (;;) {
        int best = -1;
        int32_t best_rank = 0;
        for (size_t i = 0; i + 1 < m; i++) {
            char key[2048];
            if (w[i].n + w[i + 1].n + 1 > sizeof key || w[i].n + w[i + 1].n >= sizeof w[0].s) continue;
            memcpy(key, w[i].s, w[i].n);
            key[w[i].n] = ' ';
            memcpy(key + w[i].n + 1, w[i + 1].s, w[i + 1].n);
            const entry *e = lookup(cur->merges, cur->n_merges, key, w[i].n + 1 + w[i + 1].n);
            if (!e || find_piece(key, w[i].n) < 0 || find_piece(key + w[i].n + 1, w[i + 1].n) < 0) continue;
            char joined[2048];
            memcpy(joined, w[i].s, w[i].n);
            memcpy(joined + w[i].n, w[i + 1].s, w[i + 1].n);
            if (find_piece(joined, w[i].n + w[i + 1].n) < 0) continue;
            if (best < 0 || e->id < best_rank) {
                best = (int)i;
                best_rank = e->id;
            }
        }
        if (best < 0) break;
        memcpy(w[best].s + w[best].n, w[best + 1].s, w[best + 1].n);
        w[best].n += w[best + 1].n;
        memmove(w + best + 1, w + best + 2, (m - (size_t)best - 2) * sizeof *w);
        m--;
    }
    for (size_t i = 0; i < m; i++) {
        int32_t id = find_piece(w[i].s, w[i].n);
        if (id >= 0) push(out, id);  /* a byte with no piece is dropped */
    }
    free(w);
    return SLM_OK;
}

NOCOV static void naive_encode(const char *s, size_t n, bool ps, ivec *out) {
    size_t frag = 0, i = 0;
    while (i < n) {
        int32_t hit = -1;
        size_t hl = 0;
        for (size_t l = cur->max_literal < n - i ? cur->max_literal : n - i; l >= 1 && hit < 0; l--) {
            int32_t id = find_piece(s + i, l);
            int ty = tok_type(cur->t, id);
            if (id >= 0 && (ty == TOK_USER_DEFINED || (ps && (ty == TOK_CONTROL || ty == TOK_UNKNOWN)))) {
                hit = id;
                hl = l;
            }
        }
        if (hit < 0) {
            i++;
            continue;
        }
        if (i > frag) pretok_split(cur->pre, s + frag, i - frag, naive_word, out);
        push(out, hit);
        i += hl;
        frag = i;
    }
    if (n > frag) pretok_split(cur->pre, s + frag, n - frag, naive_word, out);
}

/* ---- checks ------------------------------------------------------------- */

typedef struct { const char *base; size_t at; } cover;

static slm_status check_piece(void *ctx, const char *s, size_t n) {
    cover *c = ctx;
    if (n == 0) FAIL("empty piece");
    if (s != c->base + c->at) FAIL("piece out of order");
    if ((((unsigned char)s[0]) & 0xC0) == 0x80) FAIL("piece starts inside a character");
    c->at += n;
    return SLM_OK;
}

static void check(const vocab *v, const char *s, size_t n, bool add_bos, bool ps) {
    int32_t *ids = NULL;
    size_t ni = 12345;
    slm_status st = tok_encode(v->t, s, n, add_bos, ps, &ids, &ni);
    if (!utf8_validate(s, n, NULL)) {
        if (st != SLM_ERR_INVALID_ARG || ids || ni) FAIL("%s: invalid UTF-8 not rejected", v->name);
        return;
    }
    if (st != SLM_OK) FAIL("%s: encode failed: %s", v->name, slm_last_error());
    for (size_t i = 0; i < ni; i++)
        if (ids[i] < 0 || ids[i] >= tok_n_vocab(v->t)) FAIL("%s: id %d out of range", v->name, ids[i]);
    size_t skip = add_bos && tok_add_bos(v->t) && tok_bos(v->t) >= 0;
    if (skip && (ni == 0 || ids[0] != tok_bos(v->t))) FAIL("%s: no BOS", v->name);

    /* decoding gives the input back, less the bytes that have no piece */
    char *want = malloc(n + 1);
    size_t wn = 0;
    for (size_t i = 0; i < n;) {
        size_t lit = 0;
        int32_t id = tok_match_literal(v->t, (const unsigned char *)s + i, n - i, ps, &lit);
        if (id >= 0) {
            memcpy(want + wn, s + i, lit);
            wn += lit;
            i += lit;
            continue;
        }
        char c[3];
        byte_char((unsigned char)s[i], c);
        if (lookup(v->pieces, (size_t)tok_n_vocab(v->t), c, strlen(c))) want[wn++] = s[i];
        i++;
    }
    char *dec = malloc(n + 1);
    size_t dn = 0;
    for (size_t i = skip; i < ni; i++) {
        char piece[256];
        size_t k = tok_piece_bytes(v->t, ids[i], true, piece, sizeof piece);
        if (k > sizeof piece || dn + k > n) FAIL("%s: decoded too much", v->name);
        memcpy(dec + dn, piece, k);
        dn += k;
    }
    if (dn != wn || memcmp(dec, want, wn) != 0) FAIL("%s ps=%d: decode is not the input", v->name, ps);
    free(dec);
    free(want);

    cover c = { s, 0 };
    if (pretok_split(v->pre, s, n, check_piece, &c) != SLM_OK || c.at != n) FAIL("%s: pieces do not cover", v->name);

    if (n <= 200) {
        ivec ref = { 0 };
        cur = v;
        naive_encode(s, n, ps, &ref);
        if (ref.n != ni - skip || (ref.n && memcmp(ref.v, ids + skip, ref.n * sizeof *ids) != 0)) {
            fprintf(stderr, "%s ps=%d: got", v->name, ps);
            for (size_t i = skip; i < ni; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\nnaive:");
            for (size_t i = 0; i < ref.n; i++) fprintf(stderr, " %d", ref.v[i]);
            FAIL("\n%s: differs from the naive encoder", v->name);
        }
        free(ref.v);
    }
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool ready;
    if (!ready) {
        init();
        ready = true;
    }
    for (int v = 0; v < n_vocabs; v++)
        for (int ps = 0; ps < 2; ps++) check(&vocabs[v], (const char *)data, size, (size + (size_t)ps) & 1, ps);
    return 0;
}

#else  /* no PCRE2: nothing to fuzz */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    (void)data;
    (void)size;
    return 0;
}
#endif
