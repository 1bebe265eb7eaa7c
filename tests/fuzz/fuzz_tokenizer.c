/* libFuzzer target: arbitrary bytes into tok_encode (both parse_special
 * settings) and the results through tok_piece_bytes and slm_detok.
 *
 * Vocabularies: two small synthetic ones, written as GGUF in memory and loaded
 * through gguf_parse + tok_load (so the fuzzer never depends on the model):
 *   A: byte tokens, an unused piece, ties, a piece with an inner U+2581,
 *      user-defined, control and unknown tokens, no space prefix;
 *   B: the same pieces without byte tokens (unknown fallback) and with the
 *      space prefix;
 * plus the real Gemma 3 vocabulary when $SLM_TEST_MODEL (or the default
 * ~/.cache/slm/models/gemma-3-270m-q4_k_m.gguf) can be opened.
 *
 * Checked on every input:
 *   - invalid UTF-8 is SLM_ERR_INVALID_ARG with nothing returned; valid text
 *     encodes, every id is in range;
 *   - the ids equal a naive re-implementation (leftmost-longest literal
 *     tokens, then an O(n^2) best-pair merge loop, unused pieces split back,
 *     byte/unknown fallback; its own sorted piece index, not the hash table)
 *     for inputs up to 160 bytes;
 *   - A and Gemma: decoding gives the input back (a literal U+2581 as ' '),
 *     control tokens only with parse_special; the streaming detokenizer,
 *     fed token by token with the minimum buffer, gives the same bytes;
 *   - slm_detok on the raw input in input-derived chunks: output is always
 *     well-formed, within cap, and independent of the chunking. */
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

#define SP "\xE2\x96\x81"

/* The naive reference and its lookups are not what is being fuzzed: keep
 * coverage tracing out of them (it would dominate the run time). */
#if defined(__clang__)
#define NOCOV __attribute__((no_sanitize("coverage")))
#else
#define NOCOV
#endif

/* ---- GGUF in memory ----------------------------------------------------- */

/* gguf_writer built, gguf_writer_to_memory written, gguf_parse read back;
 * *mem holds the bytes the returned file points into. */
static gguf_file *parse_built(gguf_writer *w, slm_status st, unsigned char **mem) {
    size_t n = 0;
    if (!st) st = gguf_writer_to_memory(w, mem, &n);
    gguf_writer_free(w);
    gguf_file *gf = NULL;
    if (!st) st = gguf_parse(*mem, n, &gf);
    if (st) {
        fprintf(stderr, "fuzz_tokenizer: synthetic GGUF: %s\n", slm_last_error());
        abort();
    }
    return gf;
}

typedef struct { const char *text; float score; int type; } tv;

static const tv base_vocab[] = {
    { "<pad>", 0, 3 }, { "<eos>", 0, 3 }, { "<bos>", 0, 3 }, { "<unk>", 0, 2 }, { "<start_of_turn>", 0, 3 },
    { "<end_of_turn>", 0, 3 }, { "<s", 0, 3 }, { "\n", 0, 4 }, { "\n\n", 0, 4 }, { "  ", 0, 4 }, { "   ", 0, 4 },
    { "<b>", 0, 4 }, { "<", -1, 1 }, { ">", -1, 1 }, { "/", -1, 1 }, { "</", -2, 1 }, { ">" SP "</", -3, 1 },
    { SP, -1, 1 }, { "a", -1, 1 }, { "b", -1, 1 }, { "c", -1, 1 }, { "d", -1, 1 }, { "e", -1, 1 },
    { "ab", -5, 1 }, { "bc", -5, 1 }, { "cd", -4, 5 }, { "cde", -6, 1 }, { "abc", -7, 1 }, { "aa", -5, 1 },
    { "aaa", -5, 1 }, { SP "a", -3, 1 }, { SP "ab", -8, 1 }, { SP SP, -9, 1 }, { "a" SP "b", -2, 1 },
    { "\xC3\xA9", -2, 1 }, { SP "\xC3\xA9", -3, 1 }, { "\xE6\x97\xA5", -2, 1 }, { "\xE6\x97\xA5\xE6\x9C\xAC", -4, 1 },
    { "\xE6\x9C\xAC", -2, 1 }, { "\xF0\x9F\x98\x80", -2, 1 }, { "<0xZZ", -3, 1 }, { "xyz", 0, 5 }, { "xy", -1, 1 },
};

static gguf_file *make_gguf(bool byte_tokens, bool space_prefix, unsigned char **mem) {
    static char bytes[256][8];
    tv v[400];
    int n = 0;
    for (size_t i = 0; i < sizeof base_vocab / sizeof base_vocab[0]; i++) v[n++] = base_vocab[i];
    if (byte_tokens)
        for (int i = 0; i < 256; i++) {
            snprintf(bytes[i], sizeof bytes[i], "<0x%02X>", i);
            v[n++] = (tv){ bytes[i], 0, 6 };
        }
    const char *texts[400];
    float scores[400];
    int32_t types[400];
    for (int i = 0; i < n; i++) texts[i] = v[i].text, scores[i] = v[i].score, types[i] = v[i].type;
    gguf_writer *w = NULL;
    slm_status st = gguf_writer_new(&w);
    if (!st) st = gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    if (!st) st = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", texts, (size_t)n);
    if (!st) st = gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, (size_t)n);
    if (!st) st = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, (size_t)n);
    if (!st) st = gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 2);
    if (!st) st = gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 1);
    if (!st) st = gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    if (!st) st = gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", space_prefix);
    return parse_built(w, st, mem);
}

/* ---- the tokenizers ----------------------------------------------------- */

typedef struct { const char *s; size_t n; int32_t id; } entry;

typedef struct {
    const char *name;
    slm_tokenizer *t;
    bool round_trip;  /* every byte has a token: decoding is exact */
    entry *sorted;    /* pieces sorted by bytes, for the naive encoder's lookups */
    size_t max_literal;
    bool literal_first[256];
} vocab;

static vocab vocabs[3];
static int n_vocabs;

/* (a plain loop: libFuzzer's memcmp interceptor would dominate the run time) */
NOCOV static int cmp_bytes(const char *a, size_t an, const char *b, size_t bn) {
    size_t m = an < bn ? an : bn;
    for (size_t i = 0; i < m; i++)
        if (a[i] != b[i]) return (unsigned char)a[i] < (unsigned char)b[i] ? -1 : 1;
    return (an > bn) - (an < bn);
}

static int cmp_entry(const void *x, const void *y) {
    const entry *a = x, *b = y;
    int c = cmp_bytes(a->s, a->n, b->s, b->n);
    return c ? c : (a->id > b->id) - (a->id < b->id);  /* equal texts: the lowest id first */
}

static void add_vocab(const char *name, slm_tokenizer *t, bool round_trip) {
    vocab *v = &vocabs[n_vocabs++];
    *v = (vocab){ name, t, round_trip, malloc((size_t)tok_n_vocab(t) * sizeof(entry)), 0, { 0 } };
    for (int32_t i = 0; i < tok_n_vocab(t); i++) {
        v->sorted[i].s = tok_text(t, i, &v->sorted[i].n);
        v->sorted[i].id = i;
        int ty = tok_type(t, i);
        if ((ty == TOK_CONTROL || ty == TOK_UNKNOWN || ty == TOK_USER_DEFINED) && v->sorted[i].n) {
            if (v->sorted[i].n > v->max_literal) v->max_literal = v->sorted[i].n;
            v->literal_first[(unsigned char)v->sorted[i].s[0]] = true;
        }
    }
    qsort(v->sorted, (size_t)tok_n_vocab(t), sizeof(entry), cmp_entry);
}

static void init(void) {
    static const struct { const char *name; bool bytes, prefix; } syn[] = { { "A", true, false },
                                                                            { "B", false, true } };
    for (int i = 0; i < 2; i++) {
        unsigned char *mem;
        gguf_file *gf = make_gguf(syn[i].bytes, syn[i].prefix, &mem);
        slm_tokenizer *t;
        if (tok_load(gf, &t) != SLM_OK) {
            fprintf(stderr, "fuzz_tokenizer: vocabulary %s: %s\n", syn[i].name, slm_last_error());
            abort();
        }
        add_vocab(syn[i].name, t, syn[i].bytes);
        gguf_close(gf);  /* the tokenizer keeps its own copies */
        free(mem);
    }
    const char *path = getenv("SLM_TEST_MODEL");
    char def[512];
    if (!path || !*path) {
        const char *home = getenv("HOME");
        snprintf(def, sizeof def, "%s/.cache/slm/models/gemma-3-270m-q4_k_m.gguf", home ? home : "");
        path = def;
    }
    gguf_file *gf;
    slm_tokenizer *t;
    if (gguf_open(path, &gf) == SLM_OK) {
        if (tok_load(gf, &t) == SLM_OK) add_vocab("gemma3", t, true);
        gguf_close(gf);
    }
    fprintf(stderr, "fuzz_tokenizer: %d vocabularies (%s)\n", n_vocabs,
            n_vocabs == 3 ? "2 synthetic + the model" : "synthetic only, no model found");
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

/* Binary search in the sorted pieces (independent of the hash table). */
static const vocab *cur_vocab;
NOCOV static int32_t find(const slm_tokenizer *t, const char *s, size_t n) {
    (void)t;
    size_t lo = 0, hi = (size_t)tok_n_vocab(cur_vocab->t);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const entry *e = &cur_vocab->sorted[mid];
        if (cmp_bytes(e->s, e->n, s, n) < 0) lo = mid + 1;
        else hi = mid;
    }
    if (lo < (size_t)tok_n_vocab(cur_vocab->t) && cmp_bytes(cur_vocab->sorted[lo].s, cur_vocab->sorted[lo].n, s, n) == 0)
        return cur_vocab->sorted[lo].id;
    return -1;
}

static bool mergeable(int ty) { return ty == TOK_NORMAL || ty == TOK_USER_DEFINED || ty == TOK_UNUSED || ty == 0; }

typedef struct { size_t start, len; int32_t id, l, r; } nnode;

NOCOV static void emit_node(const slm_tokenizer *t, const char *esc, const nnode *nd, int k, ivec *out) {
    if (nd[k].l < 0) {
        int32_t id = find(t, esc + nd[k].start, nd[k].len);
        if (id >= 0 && mergeable(tok_type(t, id))) {
            push(out, id);
            return;
        }
        for (size_t i = 0; i < nd[k].len; i++) {
            char bt[8];
            snprintf(bt, sizeof bt, "<0x%02X>", (unsigned char)esc[nd[k].start + i]);
            int32_t b = find(t, bt, 6);
            push(out, b >= 0 && tok_type(t, b) == TOK_BYTE ? b : tok_unk(t));
        }
        return;
    }
    if (tok_type(t, nd[k].id) == TOK_UNUSED) {
        emit_node(t, esc, nd, nd[k].l, out);
        emit_node(t, esc, nd, nd[k].r, out);
    } else {
        push(out, nd[k].id);
    }
}

NOCOV static void naive_fragment(const slm_tokenizer *t, const char *s, size_t n, ivec *out) {
    char *esc = malloc(3 * n + 4);
    size_t w = 0;
    if (t->add_space_prefix) { memcpy(esc, SP, 3); w = 3; }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') { memcpy(esc + w, SP, 3); w += 3; }
        else esc[w++] = s[i];
    }
    nnode *nd = malloc((2 * w + 1) * sizeof *nd);
    int *cur = malloc((w + 1) * sizeof *cur);  /* current symbols, as node ids */
    int m = 0, nn = 0;
    for (size_t i = 0; i < w;) {
        int k = utf8_lead_len((unsigned char)esc[i]);
        nd[nn] = (nnode){ i, (size_t)k, -1, -1, -1 };
        cur[m++] = nn++;
        i += (size_t)k;
    }
    for (;;) {
        int best = -1;
        float best_score = 0;
        int32_t best_id = -1;
        for (int i = 0; i + 1 < m; i++) {
            const nnode *a = &nd[cur[i]], *b = &nd[cur[i + 1]];
            int32_t id = find(t, esc + a->start, a->len + b->len);
            if (id < 0 || !mergeable(tok_type(t, id))) continue;
            float sc = tok_score(t, id);
            if (best < 0 || sc > best_score) { best = i; best_score = sc; best_id = id; }
        }
        if (best < 0) break;
        const nnode *a = &nd[cur[best]], *b = &nd[cur[best + 1]];
        nd[nn] = (nnode){ a->start, a->len + b->len, best_id, cur[best], cur[best + 1] };
        cur[best] = nn++;
        memmove(cur + best + 1, cur + best + 2, (size_t)(m - best - 2) * sizeof *cur);
        m--;
    }
    for (int i = 0; i < m; i++) emit_node(t, esc, nd, cur[i], out);
    free(cur);
    free(nd);
    free(esc);
}

NOCOV static void naive_encode(const slm_tokenizer *t, const char *s, size_t n, bool ps, ivec *out) {
    size_t maxlen = cur_vocab->max_literal;
    size_t frag = 0, i = 0;
    while (i < n) {
        int32_t hit = -1;
        size_t hl = 0;
        if (!cur_vocab->literal_first[(unsigned char)s[i]]) { i++; continue; }
        for (size_t l = maxlen < n - i ? maxlen : n - i; l >= 1 && hit < 0; l--) {
            int32_t id = find(t, s + i, l);
            int ty = tok_type(t, id);
            if (id >= 0 && (ty == TOK_USER_DEFINED || (ps && (ty == TOK_CONTROL || ty == TOK_UNKNOWN)))) {
                hit = id;
                hl = l;
            }
        }
        if (hit < 0) { i++; continue; }
        if (i > frag) naive_fragment(t, s + frag, i - frag, out);
        push(out, hit);
        i += hl;
        frag = i;
    }
    if (n > frag) naive_fragment(t, s + frag, n - frag, out);
}

/* ---- checks ------------------------------------------------------------- */

#define FAIL(...) do { fprintf(stderr, "fuzz_tokenizer: " __VA_ARGS__); fputc('\n', stderr); abort(); } while (0)

static void check_encode(const vocab *vc, const char *s, size_t n, bool add_bos, bool ps) {
    const slm_tokenizer *t = vc->t;
    int32_t *ids = NULL;
    size_t ni = 12345;
    slm_status st = tok_encode(t, s, n, add_bos, ps, &ids, &ni);
    if (!utf8_validate(s, n, NULL)) {
        if (st != SLM_ERR_INVALID_ARG || ids || ni) FAIL("%s: invalid UTF-8 not rejected", vc->name);
        return;
    }
    if (st != SLM_OK) FAIL("%s: encode failed: %s", vc->name, slm_last_error());
    for (size_t i = 0; i < ni; i++)
        if (ids[i] < 0 || ids[i] >= tok_n_vocab(t)) FAIL("%s: id %d out of range", vc->name, ids[i]);
    size_t skip = add_bos && tok_bos(t) >= 0 ? 1 : 0;
    if (skip && (ni == 0 || ids[0] != tok_bos(t))) FAIL("%s: no BOS", vc->name);

    if (n <= 160) {
        ivec ref = { 0 };
        cur_vocab = vc;
        naive_encode(t, s, n, ps, &ref);
        if (ref.n != ni - skip || (ref.n && memcmp(ref.v, ids + skip, ref.n * sizeof *ids) != 0)) {
            fprintf(stderr, "%s ps=%d: got", vc->name, ps);
            for (size_t i = skip; i < ni; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\nnaive:");
            for (size_t i = 0; i < ref.n; i++) fprintf(stderr, " %d", ref.v[i]);
            FAIL("\n%s: differs from the naive encoder", vc->name);
        }
        free(ref.v);
    }

    if (vc->round_trip && !t->add_space_prefix) {
        /* expected: the input with every U+2581 as ' ' */
        char *want = malloc(n + 1), *got = malloc(n + 64), *stream = malloc(n + 64);
        size_t wn = 0;
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(s + i, SP, 3) == 0) { want[wn++] = ' '; i += 3; }
            else want[wn++] = s[i++];
        }
        size_t gn = 0, sn = 0;
        slm_detok d;
        slm_detok_init(&d);
        for (size_t i = skip; i < ni; i++) {
            int ty = tok_type(t, ids[i]);
            if (!ps && (ty == TOK_CONTROL || ty == TOK_UNKNOWN)) FAIL("%s: control token %d without parse_special",
                                                                      vc->name, ids[i]);
            char piece[256], out[256 + 8];
            size_t k = tok_piece_bytes(t, ids[i], ps, piece, sizeof piece);
            if (k > sizeof piece || gn + k > wn) FAIL("%s: decoded too much", vc->name);
            memcpy(got + gn, piece, k);
            gn += k;
            size_t w = slm_detok_push(&d, piece, k, out, k + 8);
            if (w > k + 8 || sn + w > wn) FAIL("%s: detok wrote too much", vc->name);
            memcpy(stream + sn, out, w);
            sn += w;
        }
        sn += slm_detok_flush(&d, stream + sn, 8);
        if (gn != wn || memcmp(got, want, wn) != 0) FAIL("%s ps=%d: decode is not the input", vc->name, ps);
        if (sn != wn || memcmp(stream, want, wn) != 0) FAIL("%s ps=%d: streamed decode differs", vc->name, ps);
        free(want);
        free(got);
        free(stream);
    }
    free(ids);
}

/* slm_detok on arbitrary bytes: chunk sizes taken from the data itself. */
static void check_detok(const unsigned char *s, size_t n) {
    char *ref = malloc(3 * n + 16), *out = malloc(3 * n + 16), *tight = malloc(n + 16);
    slm_detok d;
    slm_detok_init(&d);
    size_t rn = slm_detok_push(&d, (const char *)s, n, ref, 3 * n + 16);
    rn += slm_detok_flush(&d, ref + rn, 8);
    if (!utf8_validate(ref, rn, NULL)) FAIL("detok: ill-formed output");

    slm_detok_init(&d);
    size_t on = 0, i = 0, c = 0;
    while (i < n) {
        size_t len = (s[c++ % n] % 7) + 1;
        if (len > n - i) len = n - i;
        size_t cap = 3 * len + 16;
        size_t w = slm_detok_push(&d, (const char *)s + i, len, out + on, cap);
        if (w > cap || !utf8_validate(out + on, w, NULL)) FAIL("detok: bad chunk output");
        on += w;
        i += len;
    }
    on += slm_detok_flush(&d, out + on, 8);
    if (on != rn || memcmp(out, ref, rn) != 0) FAIL("detok: chunking changed the output");

    /* minimum buffers: never past cap, always well-formed */
    slm_detok_init(&d);
    for (i = 0, c = 3; i < n;) {
        size_t len = (s[c++ % n] % 13) + 1;
        if (len > n - i) len = n - i;
        size_t w = slm_detok_push(&d, (const char *)s + i, len, tight, len + 8);
        if (w > len + 8 || !utf8_validate(tight, w, NULL)) FAIL("detok: minimum cap exceeded or bad output");
        i += len;
    }
    size_t w = slm_detok_flush(&d, tight, 8);
    if (w > 8 || !utf8_validate(tight, w, NULL)) FAIL("detok: bad flush");
    free(ref);
    free(out);
    free(tight);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool ready;
    if (!ready) {
        init();
        ready = true;
    }
    const char *s = (const char *)data;
    for (int v = 0; v < n_vocabs; v++)
        for (int ps = 0; ps < 2; ps++) check_encode(&vocabs[v], s, size, (size + (size_t)ps) & 1, ps);
    if (size) check_detok(data, size);
    return 0;
}
