/* The SentencePiece-style tokenizer.
 *
 * Part 1 (always): small vocabularies written as GGUF in memory -- load
 * errors, merge order, unused pieces, byte and unknown fallback, the space
 * prefix, literal tokens.
 * Part 2 (needs the real model, SLM_TEST_MODEL): every case of
 * tests/fixtures/tokenizer/gemma3.tsv token for token (written from
 * SentencePiece + HF transformers by scripts/gen_tokenizer_fixtures.py),
 * decoding (gemma3_decode.tsv and round trips, also through slm_detok),
 * invalid UTF-8, lookups, end-of-generation ids, and the encoding speed.
 * Without the model, part 1 still runs and the test reports "skipped". */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/utf8.h"
#include "gguf/gguf.h"
#include "slm.h"
#include "testlib.h"
#include "tokenizer/tokenizer.h"

/* ---- a minimal GGUF writer ---------------------------------------------- */

typedef struct {
    unsigned char *p;
    size_t n, cap;
    uint64_t n_kv;
} gbuf;

static void gb_raw(gbuf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        while (b->n + n > b->cap) b->cap = b->cap ? b->cap * 2 : 4096;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void gb_u32(gbuf *b, uint32_t v) { gb_raw(b, &v, 4); }
static void gb_u64(gbuf *b, uint64_t v) { gb_raw(b, &v, 8); }
static void gb_str(gbuf *b, const char *s, size_t n) { gb_u64(b, n); gb_raw(b, s, n); }
static void gb_key(gbuf *b, const char *k, uint32_t type) {
    gb_str(b, k, strlen(k));
    gb_u32(b, type);
    b->n_kv++;
}
static void gb_kv_str(gbuf *b, const char *k, const char *v) { gb_key(b, k, GGUF_T_STRING); gb_str(b, v, strlen(v)); }
static void gb_kv_u32(gbuf *b, const char *k, uint32_t v) { gb_key(b, k, GGUF_T_U32); gb_u32(b, v); }
static void gb_kv_bool(gbuf *b, const char *k, bool v) { unsigned char c = v; gb_key(b, k, GGUF_T_BOOL); gb_raw(b, &c, 1); }

/* A vocabulary in test form: text, score, type. */
typedef struct { const char *text; float score; int type; } tv;

enum { VK_NORMAL = 0, VK_NO_SCORES = 1, VK_SHORT_SCORES = 2, VK_SHORT_TYPES = 4, VK_INT_TOKENS = 8, VK_NO_TOKENS = 16 };

static void gb_vocab(gbuf *b, const tv *v, int n, int flags) {
    if (!(flags & VK_NO_TOKENS)) {
        if (flags & VK_INT_TOKENS) {
            gb_key(b, "tokenizer.ggml.tokens", GGUF_T_ARRAY);
            gb_u32(b, GGUF_T_I32);
            gb_u64(b, (uint64_t)n);
            for (int i = 0; i < n; i++) gb_u32(b, (uint32_t)i);
        } else {
            gb_key(b, "tokenizer.ggml.tokens", GGUF_T_ARRAY);
            gb_u32(b, GGUF_T_STRING);
            gb_u64(b, (uint64_t)n);
            for (int i = 0; i < n; i++) gb_str(b, v[i].text, strlen(v[i].text));
        }
    }
    if (!(flags & VK_NO_SCORES)) {
        int ns = flags & VK_SHORT_SCORES ? n - 1 : n;
        gb_key(b, "tokenizer.ggml.scores", GGUF_T_ARRAY);
        gb_u32(b, GGUF_T_F32);
        gb_u64(b, (uint64_t)ns);
        for (int i = 0; i < ns; i++) gb_raw(b, &v[i].score, 4);
    }
    int nt = flags & VK_SHORT_TYPES ? n + 1 : n;
    gb_key(b, "tokenizer.ggml.token_type", GGUF_T_ARRAY);
    gb_u32(b, GGUF_T_I32);
    gb_u64(b, (uint64_t)nt);
    for (int i = 0; i < nt; i++) gb_u32(b, (uint32_t)(i < n ? v[i].type : 1));
}

/* Header + the kvs in body (written separately to know n_kv first). */
static unsigned char *gb_finish(gbuf *body, size_t *size) {
    gbuf f = { 0 };
    gb_raw(&f, "GGUF", 4);
    gb_u32(&f, 3);
    gb_u64(&f, 0);
    gb_u64(&f, body->n_kv);
    gb_raw(&f, body->p, body->n);
    static const unsigned char zero[32] = { 0 };
    gb_raw(&f, zero, (32 - f.n % 32) % 32);
    free(body->p);
    *size = f.n;
    return f.p;
}

/* ---- the small vocabulary ----------------------------------------------- */

#define SP "\xE2\x96\x81"
static tv small[300];
static int n_small;
enum { S_PAD, S_EOS, S_BOS, S_UNK, S_SOT, S_EOT, S_NL, S_NL2, S_SP2, S_TAGB, S_BYTE0 };
#define S_NORMAL (S_BYTE0 + 256)

static void make_small(bool with_bytes) {
    static char bytes[256][8];
    n_small = 0;
    tv head[] = { { "<pad>", 0, 3 }, { "<eos>", 0, 3 }, { "<bos>", 0, 3 }, { "<unk>", 0, 2 },
                  { "<start_of_turn>", 0, 3 }, { "<end_of_turn>", 0, 3 }, { "\n", 0, 4 }, { "\n\n", 0, 4 },
                  { "  ", 0, 4 }, { "<b>", 0, 4 } };
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++) small[n_small++] = head[i];
    for (int i = 0; i < 256; i++) {
        snprintf(bytes[i], sizeof bytes[i], "<0x%02X>", i);
        small[n_small++] = with_bytes ? (tv){ bytes[i], 0, 6 } : (tv){ bytes[i], -1000, 1 };
    }
    tv tail[] = {
        { SP, -1, 1 }, { "a", -2, 1 }, { "b", -3, 1 }, { "c", -4, 1 }, { "d", -5, 1 }, { "e", -6, 1 },
        { "ab", -10, 1 }, { "bc", -11, 1 }, { "abc", -12, 1 }, { SP "a", -9, 1 }, { SP "ab", -13, 1 },
        { "aa", -20, 1 }, { "cd", -7, 5 /* unused */ }, { "cde", -8, 1 }, { "\xC3\xA9", -30, 1 },
        { SP "\xC3\xA9", -31, 1 },
    };
    for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++) small[n_small++] = tail[i];
}

static int32_t small_id(const char *text) {
    for (int i = 0; i < n_small; i++)
        if (strcmp(small[i].text, text) == 0) return i;
    return -1;
}

typedef struct {
    const char *model;     /* NULL: key absent */
    int vflags;
    int64_t bos;           /* -1: key absent */
    int add_space_prefix;  /* -1: key absent */
    bool bos_as_string, bad_type, bad_byte, nan_score;
} small_opts;

static slm_status load_small(const small_opts *o, slm_tokenizer **t, gguf_file **gf, unsigned char **mem) {
    gbuf b = { 0 };
    if (o->model) gb_kv_str(&b, "tokenizer.ggml.model", o->model);
    tv saved = small[S_NORMAL];
    float saved_score = small[S_NORMAL + 1].score;
    int saved_type = small[S_NORMAL + 2].type;
    tv saved_byte = small[S_BYTE0 + 5];
    if (o->bad_type) small[S_NORMAL + 2].type = 9;
    if (o->bad_byte) small[S_BYTE0 + 5].text = "<0xZZ>";
    if (o->nan_score) small[S_NORMAL + 1].score = NAN;
    gb_vocab(&b, small, n_small, o->vflags);
    small[S_NORMAL] = saved;
    small[S_NORMAL + 1].score = saved_score;
    small[S_NORMAL + 2].type = saved_type;
    small[S_BYTE0 + 5] = saved_byte;
    if (o->bos_as_string) gb_kv_str(&b, "tokenizer.ggml.bos_token_id", "2");
    else if (o->bos >= 0) gb_kv_u32(&b, "tokenizer.ggml.bos_token_id", (uint32_t)o->bos);
    gb_kv_u32(&b, "tokenizer.ggml.eos_token_id", S_EOS);
    gb_kv_u32(&b, "tokenizer.ggml.unknown_token_id", S_UNK);
    gb_kv_bool(&b, "tokenizer.ggml.add_bos_token", true);
    if (o->add_space_prefix >= 0) gb_kv_bool(&b, "tokenizer.ggml.add_space_prefix", o->add_space_prefix);
    size_t size;
    *mem = gb_finish(&b, &size);
    *t = NULL;
    *gf = NULL;
    slm_status st = gguf_parse(*mem, size, gf);
    CHECKF(st == SLM_OK, "synthetic GGUF does not parse: %s", slm_last_error());
    if (st) return st;
    return tok_load(*gf, t);
}

static void free_small(slm_tokenizer *t, gguf_file *gf, unsigned char *mem) {
    tok_free(t);
    gguf_close(gf);
    free(mem);
}

static bool enc_is(const slm_tokenizer *t, const char *text, bool bos, bool special, const int32_t *want, size_t nw) {
    int32_t *ids = NULL;
    size_t n = 0;
    slm_status st = tok_encode(t, text, strlen(text), bos, special, &ids, &n);
    bool ok = st == SLM_OK && n == nw && (nw == 0 || memcmp(ids, want, nw * sizeof *ids) == 0);
    if (!ok) {
        fprintf(stderr, "  encode \"%s\" (bos %d special %d): status %s, got", text, bos, special,
                slm_status_name(st));
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, ", want");
        for (size_t i = 0; i < nw; i++) fprintf(stderr, " %d", want[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}
#define ENC(t, text, bos, special, ...) do { const int32_t w_[] = { __VA_ARGS__ }; \
    CHECK(enc_is(t, text, bos, special, w_, sizeof w_ / sizeof w_[0])); } while (0)
#define ENC0(t, text, bos, special) CHECK(enc_is(t, text, bos, special, NULL, 0))

static void expect_load_error(const small_opts *o, slm_status want, const char *needle) {
    slm_tokenizer *t;
    gguf_file *gf;
    unsigned char *mem;
    slm_status st = load_small(o, &t, &gf, &mem);
    CHECKF(st == want && t == NULL, "wanted %s, got %s (%s)", slm_status_name(want), slm_status_name(st),
           slm_last_error());
    CHECKF(strstr(slm_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"", slm_last_error(), needle);
    free_small(t, gf, mem);
}

static void test_small(void) {
    make_small(true);
    small_opts o = { .model = "llama", .bos = S_BOS, .add_space_prefix = 0 };
    slm_tokenizer *t;
    gguf_file *gf;
    unsigned char *mem;
    CHECKF(load_small(&o, &t, &gf, &mem) == SLM_OK, "%s", slm_last_error());
    if (t) {
        int32_t a = small_id("a"), b = small_id("b"), c = small_id("c"), d = small_id("d"), ab = small_id("ab");
        int32_t abc = small_id("abc"), aa = small_id("aa"), sp = small_id(SP), spa = small_id(SP "a");
        int32_t cde = small_id("cde"), e_acute = small_id("\xC3\xA9"), sp_e = small_id(SP "\xC3\xA9");
        CHECK(tok_n_vocab(t) == n_small && tok_bos(t) == S_BOS && tok_eos(t) == S_EOS && tok_unk(t) == S_UNK);
        CHECK(tok_add_bos(t));
        ENC0(t, "", false, false);
        ENC(t, "", true, false, S_BOS);
        ENC(t, "ab", true, false, S_BOS, ab);
        ENC(t, "abc", false, false, abc);       /* ab (-10) before bc (-11), then abc */
        ENC(t, "aaa", false, false, aa, a);     /* equal scores: the leftmost pair */
        ENC(t, " a", false, false, spa);
        ENC(t, "a b", false, false, a, sp, b);  /* "▁b" is not a piece */
        ENC(t, "x", false, false, S_BYTE0 + 'x');
        ENC(t, "\xF0\x9F\x98\x80", false, false, S_BYTE0 + 0xF0, S_BYTE0 + 0x9F, S_BYTE0 + 0x98, S_BYTE0 + 0x80);
        ENC(t, " \xC3\xA9\xC3\xA9", false, false, sp_e, e_acute);
        ENC(t, "cd", false, false, c, d);       /* the unused piece is split back */
        ENC(t, "cde", false, false, cde);       /* ... but may be an intermediate */
        ENC(t, "a  b", false, false, a, S_SP2, b);
        ENC(t, "a   b", false, false, a, S_SP2, sp, b);
        ENC(t, "\n\n\na", false, false, S_NL2, S_NL, a);
        ENC(t, "<b>ab", false, false, S_TAGB, ab);
        ENC(t, "<start_of_turn>a<end_of_turn>", false, true, S_SOT, a, S_EOT);
        ENC(t, "<eos>", false, true, S_EOS);
        ENC(t, "<eos>", false, false, S_BYTE0 + '<', small_id("e"), S_BYTE0 + 'o', S_BYTE0 + 's', S_BYTE0 + '>');
        ENC(t, "<unk>", false, true, S_UNK);
        int32_t *ids = NULL;
        size_t n = 7;
        CHECK(tok_encode(t, "a\0b", 3, false, false, &ids, &n) == SLM_OK && n == 3 && ids[1] == S_BYTE0);
        free(ids);
        CHECK(tok_encode(t, NULL, 0, true, false, &ids, &n) == SLM_OK && n == 1 && ids[0] == S_BOS);
        free(ids);
        CHECK(tok_encode(t, NULL, 3, true, false, &ids, &n) == SLM_ERR_INVALID_ARG && ids == NULL && n == 0);
        CHECK(tok_encode(t, "a\xC3", 2, true, false, &ids, &n) == SLM_ERR_INVALID_ARG);
        CHECKF(strstr(slm_last_error(), "offset 1") != NULL, "%s", slm_last_error());

        char buf[32];
        CHECK(tok_piece_bytes(t, spa, false, buf, sizeof buf) == 2 && memcmp(buf, " a", 2) == 0);
        CHECK(tok_piece_bytes(t, S_SOT, false, buf, sizeof buf) == 0);
        CHECK(tok_piece_bytes(t, S_UNK, true, buf, sizeof buf) == 5 && memcmp(buf, "<unk>", 5) == 0);
        CHECK(tok_piece_bytes(t, small_id("cd"), true, buf, sizeof buf) == 0);  /* unused */
        CHECK(tok_piece_bytes(t, S_BYTE0 + 0xAB, false, buf, sizeof buf) == 1 && (unsigned char)buf[0] == 0xAB);
        CHECK(tok_is_eog(t, S_EOS) && tok_is_eog(t, S_EOT) && !tok_is_eog(t, S_SOT) && !tok_is_eog(t, -1));
        CHECK(tok_lookup(t, "<b>", 3) == S_TAGB && tok_lookup(t, "zz", 2) == -1);
        CHECK(tok_lookup(t, "abc", 2) == ab);
        (void)b;
    }
    free_small(t, gf, mem);

    /* the space prefix (llama.cpp's default when the key is absent) */
    o.add_space_prefix = -1;
    CHECKF(load_small(&o, &t, &gf, &mem) == SLM_OK, "%s", slm_last_error());
    if (t) {
        ENC(t, "ab", true, false, S_BOS, small_id(SP "ab"));
        ENC(t, "<b>ab", false, false, S_TAGB, small_id(SP "ab"));
        ENC(t, "a<b>", false, false, small_id(SP "a"), S_TAGB);
        ENC(t, "<b>", false, false, S_TAGB);
    }
    free_small(t, gf, mem);
    o.add_space_prefix = 0;

    /* no byte tokens: <unk> instead */
    make_small(false);
    CHECKF(load_small(&o, &t, &gf, &mem) == SLM_OK, "%s", slm_last_error());
    if (t) ENC(t, "xa\xC3\xA9", false, false, S_UNK, small_id("a"), small_id("\xC3\xA9"));
    free_small(t, gf, mem);
    make_small(true);

    /* load errors */
    small_opts e = o;
    e.model = NULL;
    expect_load_error(&e, SLM_ERR_FORMAT, "tokenizer.ggml.model");
    e = o;
    e.model = "bert";  /* "gpt2" is byte-level BPE: tests/test_bpe.c */
    expect_load_error(&e, SLM_ERR_UNSUPPORTED, "bert");
    e = o;
    e.vflags = VK_NO_TOKENS;
    expect_load_error(&e, SLM_ERR_FORMAT, "tokens is missing");
    e.vflags = VK_INT_TOKENS;
    expect_load_error(&e, SLM_ERR_FORMAT, "not an array of strings");
    e.vflags = VK_SHORT_SCORES;
    expect_load_error(&e, SLM_ERR_FORMAT, "scores for");
    e.vflags = VK_SHORT_TYPES;
    expect_load_error(&e, SLM_ERR_FORMAT, "token types for");
    e = o;
    e.bos = n_small;
    expect_load_error(&e, SLM_ERR_FORMAT, "bos_token_id");
    e = o;
    e.bos_as_string = true;
    expect_load_error(&e, SLM_ERR_FORMAT, "expected an integer");
    e = o;
    e.bad_type = true;
    expect_load_error(&e, SLM_ERR_FORMAT, "unknown type 9");
    e = o;
    e.bad_byte = true;
    expect_load_error(&e, SLM_ERR_FORMAT, "<0xNN>");
    e = o;
    e.nan_score = true;
    expect_load_error(&e, SLM_ERR_FORMAT, "NaN");
    /* scores absent: allowed (all 0, as llama.cpp) */
    e = o;
    e.vflags = VK_NO_SCORES;
    CHECKF(load_small(&e, &t, &gf, &mem) == SLM_OK, "%s", slm_last_error());
    free_small(t, gf, mem);
}

/* ---- the real model ------------------------------------------------------- */

typedef struct {
    char *text;
    size_t len;
    bool add_bos, parse_special;
    int32_t *ids;
    size_t n_ids;
    int line;
} fcase;

static int hexv(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static char *unhex(const char *s, size_t n, size_t *len) {
    char *o = malloc(n / 2 + 1);
    size_t k = 0;
    for (size_t i = 0; i + 1 < n; i += 2) o[k++] = (char)(hexv(s[i]) * 16 + hexv(s[i + 1]));
    o[k] = '\0';
    *len = k;
    return o;
}

static int32_t *parse_ids(const char *s, const char *end, size_t *n) {
    size_t cap = 16, k = 0;
    int32_t *v = malloc(cap * sizeof *v);
    while (s < end) {
        while (s < end && *s == ' ') s++;
        if (s >= end) break;
        char *e;
        long x = strtol(s, &e, 10);
        if (e == s) break;
        if (k == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        v[k++] = (int32_t)x;
        s = e;
    }
    *n = k;
    return v;
}

/* Splits the next line into up to 3 TAB-separated fields. */
static bool next_line(char **p, char *f[3], size_t fl[3], int *lineno) {
    while (**p) {
        char *line = *p, *nl = strchr(line, '\n');
        *p = nl ? nl + 1 : line + strlen(line);
        (*lineno)++;
        size_t n = nl ? (size_t)(nl - line) : strlen(line);
        if (n == 0 || line[0] == '#') continue;
        char *t1 = memchr(line, '\t', n);
        char *t2 = t1 ? memchr(t1 + 1, '\t', n - (size_t)(t1 + 1 - line)) : NULL;
        if (!t1 || !t2) return false;
        f[0] = line; fl[0] = (size_t)(t1 - line);
        f[1] = t1 + 1; fl[1] = (size_t)(t2 - t1 - 1);
        f[2] = t2 + 1; fl[2] = n - (size_t)(t2 + 1 - line);
        return true;
    }
    return false;
}

static size_t decode_all(const slm_tokenizer *t, const int32_t *ids, size_t n, bool special, char **out) {
    size_t cap = 64, w = 0;
    char *o = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        char buf[64];
        size_t k = tok_piece_bytes(t, ids[i], special, buf, sizeof buf);
        if (w + k > cap) {
            while (w + k > cap) cap *= 2;
            o = realloc(o, cap);
        }
        if (k <= sizeof buf) memcpy(o + w, buf, k);
        else tok_piece_bytes(t, ids[i], special, o + w, k);
        w += k;
    }
    *out = o;
    return w;
}

static bool has_control_id(const slm_tokenizer *t, const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int ty = tok_type(t, ids[i]);
        if (ty == TOK_CONTROL || ty == TOK_UNKNOWN) return true;
    }
    return false;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_fixtures(const slm_tokenizer *t, fcase **cases_out, size_t *n_cases_out) {
    size_t flen;
    char *file = test_read_file("tests/fixtures/tokenizer/gemma3.tsv", &flen);
    CHECKF(file != NULL, "cannot read tests/fixtures/tokenizer/gemma3.tsv (run from the source root)");
    if (!file) return;
    fcase *cases = NULL;
    size_t n_cases = 0, cap = 0;
    char *p = file, *f[3];
    size_t fl[3];
    int lineno = 0, mismatches = 0;
    while (next_line(&p, f, fl, &lineno)) {
        if (n_cases == cap) cases = realloc(cases, (cap = cap ? cap * 2 : 64) * sizeof *cases);
        fcase *c = &cases[n_cases++];
        c->line = lineno;
        c->text = unhex(f[0], fl[0], &c->len);
        c->add_bos = fl[1] == 2 && f[1][0] == '1';
        c->parse_special = fl[1] == 2 && f[1][1] == '1';
        c->ids = parse_ids(f[2], f[2] + fl[2], &c->n_ids);

        int32_t *ids = NULL;
        size_t n = 0;
        slm_status st = tok_encode(t, c->text, c->len, c->add_bos, c->parse_special, &ids, &n);
        bool same = st == SLM_OK && n == c->n_ids && (n == 0 || memcmp(ids, c->ids, n * sizeof *ids) == 0);
        if (!same) {
            mismatches++;
            size_t k = 0;
            while (k < n && k < c->n_ids && ids[k] == c->ids[k]) k++;
            CHECKF(0, "gemma3.tsv line %d (%.40s%s, flags %d%d): %s; %zu ids vs %zu expected, first difference "
                   "at %zu: %d vs %d", lineno, c->text, c->len > 40 ? "..." : "", c->add_bos, c->parse_special,
                   slm_status_name(st), n, c->n_ids, k, k < n ? ids[k] : -1, k < c->n_ids ? c->ids[k] : -1);
        }
        free(ids);
    }
    free(file);
    CHECKF(n_cases >= 80, "only %zu fixture cases", n_cases);
    printf("tokenizer fixtures: %zu cases, %d mismatches\n", n_cases, mismatches);
    *cases_out = cases;
    *n_cases_out = n_cases;
}

static void test_round_trips(const slm_tokenizer *t, const fcase *cases, size_t n_cases) {
    int n_checked = 0;
    for (size_t i = 0; i < n_cases; i++) {
        const fcase *c = &cases[i];
        /* a literal U+2581 is the space piece: it decodes as ' ' */
        if (memmem(c->text, c->len, "\xE2\x96\x81", 3)) continue;
        const int32_t *ids = c->ids + (c->add_bos && c->n_ids ? 1 : 0);
        size_t n = c->n_ids - (c->add_bos && c->n_ids ? 1 : 0);
        char *dec;
        size_t dn;
        /* with special: control tokens give their text, so always the input */
        dn = decode_all(t, ids, n, true, &dec);
        CHECKF(dn == c->len && memcmp(dec, c->text, dn) == 0, "line %d: decode(special) differs", c->line);
        free(dec);
        if (has_control_id(t, ids, n)) continue;
        dn = decode_all(t, ids, n, false, &dec);
        CHECKF(dn == c->len && memcmp(dec, c->text, dn) == 0, "line %d: decode differs", c->line);
        free(dec);
        /* the streaming detokenizer, one token at a time, minimum cap */
        slm_detok d;
        slm_detok_init(&d);
        char *acc = malloc(c->len + 16);
        size_t w = 0;
        bool bounded = true;
        for (size_t k = 0; k < n; k++) {
            char piece[64], out[64 + 8];
            size_t pn = tok_piece_bytes(t, ids[k], false, piece, sizeof piece);
            size_t got = slm_detok_push(&d, piece, pn, out, pn + 8);
            bounded = bounded && got <= pn + 8 && utf8_validate(out, got, NULL) && w + got <= c->len;
            if (!bounded) break;
            memcpy(acc + w, out, got);
            w += got;
        }
        w += slm_detok_flush(&d, acc + w, 8);
        CHECKF(bounded && w == c->len && memcmp(acc, c->text, w) == 0, "line %d: streamed decode differs",
               c->line);
        free(acc);
        n_checked++;
    }
    CHECK(n_checked >= 80);
}

static void test_decode_fixture(const slm_tokenizer *t) {
    size_t flen;
    char *file = test_read_file("tests/fixtures/tokenizer/gemma3_decode.tsv", &flen);
    CHECKF(file != NULL, "cannot read tests/fixtures/tokenizer/gemma3_decode.tsv");
    if (!file) return;
    char *p = file, *f[3];
    size_t fl[3];
    int lineno = 0, n = 0;
    while (next_line(&p, f, fl, &lineno)) {
        size_t n_ids, want_len;
        int32_t *ids = parse_ids(f[0], f[0] + fl[0], &n_ids);
        bool special = fl[1] == 1 && f[1][0] == '1';
        char *want = unhex(f[2], fl[2], &want_len);
        char *got;
        size_t gn = decode_all(t, ids, n_ids, special, &got);
        CHECKF(gn == want_len && memcmp(got, want, gn) == 0, "gemma3_decode.tsv line %d", lineno);
        free(got);
        free(want);
        free(ids);
        n++;
    }
    CHECK(n >= 20);
    free(file);
}

static void test_model_api(const slm_tokenizer *t) {
    CHECK(tok_n_vocab(t) == 262144);
    CHECK(tok_bos(t) == 2 && tok_eos(t) == 1 && tok_unk(t) == 3 && tok_add_bos(t));
    CHECK(tok_lookup(t, "<start_of_turn>", 15) == 105);
    CHECK(tok_lookup(t, "<end_of_turn>", 13) == 106);
    CHECK(tok_lookup(t, "<bos>", 5) == 2 && tok_lookup(t, "<eos>", 5) == 1 && tok_lookup(t, "<pad>", 5) == 0);
    CHECK(tok_lookup(t, "\n", 1) == 107 && tok_lookup(t, "  ", 2) == 138);
    CHECK(tok_lookup(t, "<0x0A>", 6) == 248 && tok_lookup(t, SP, 3) == 236743);
    CHECK(tok_lookup(t, "no such piece at all", 20) == -1 && tok_lookup(t, NULL, 0) == -1);
    CHECK(tok_type(t, 105) == TOK_CONTROL && tok_type(t, 107) == TOK_USER_DEFINED && tok_type(t, 248) == TOK_BYTE);
    CHECK(tok_type(t, -1) == -1 && tok_type(t, 262144) == -1);
    CHECK(tok_is_eog(t, 1) && tok_is_eog(t, 106));
    CHECK(!tok_is_eog(t, 105) && !tok_is_eog(t, 2) && !tok_is_eog(t, 0) && !tok_is_eog(t, 107));
    CHECK(!tok_is_eog(t, -1) && !tok_is_eog(t, 262144));

    char buf[64];
    memset(buf, 'Z', sizeof buf);
    CHECK(tok_piece_bytes(t, 236743, false, buf, sizeof buf) == 1 && buf[0] == ' ');
    CHECK(tok_piece_bytes(t, 248, false, buf, sizeof buf) == 1 && buf[0] == '\n');
    CHECK(tok_piece_bytes(t, 105, false, buf, sizeof buf) == 0);
    CHECK(tok_piece_bytes(t, 105, true, buf, sizeof buf) == 15 && memcmp(buf, "<start_of_turn>", 15) == 0);
    CHECK(tok_piece_bytes(t, 138, false, buf, sizeof buf) == 2 && memcmp(buf, "  ", 2) == 0);
    CHECK(tok_piece_bytes(t, -5, true, buf, sizeof buf) == 0 && tok_piece_bytes(t, 262144, true, buf, 64) == 0);
    /* a short buffer: the needed length comes back, nothing past cap is written */
    memset(buf, 'Z', sizeof buf);
    CHECK(tok_piece_bytes(t, 105, true, buf, 4) == 15 && memcmp(buf, "<sta", 4) == 0 && buf[4] == 'Z');
    int32_t the = tok_lookup(t, SP "the", 6);
    CHECK(the >= 0);
    memset(buf, 'Z', sizeof buf);
    CHECK(tok_piece_bytes(t, the, false, buf, 2) == 4 && memcmp(buf, " t", 2) == 0 && buf[2] == 'Z');
    CHECK(tok_piece_bytes(t, the, false, NULL, 0) == 4);

    /* invalid UTF-8: an error naming the offset, nothing returned */
    static const struct { const char *s; size_t n, off; } bad[] = {
        { "abc\xFF" "def", 7, 3 }, { "\xC0\xAF", 2, 0 }, { "ok \xED\xA0\x80", 6, 3 }, { "ab\xE2\x82", 4, 2 },
        { "\x80", 1, 0 }, { "x\xF4\x90\x80\x80", 5, 1 }, { "\xF0\x9F\x98\x80\xF0\x9F\x98", 7, 4 },
        { "<start_of_turn>\xFE", 16, 15 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int ps = 0; ps < 2; ps++) {
            int32_t *ids = (int32_t *)1;
            size_t n = 99;
            slm_status st = tok_encode(t, bad[i].s, bad[i].n, true, ps, &ids, &n);
            char needle[48];
            snprintf(needle, sizeof needle, "offset %zu", bad[i].off);
            CHECKF(st == SLM_ERR_INVALID_ARG && ids == NULL && n == 0 && strstr(slm_last_error(), needle),
                   "bad UTF-8 case %zu: %s, \"%s\"", i, slm_status_name(st), slm_last_error());
        }
    }
    /* the public wrappers agree */
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(tok_encode(t, "The capital of France is", 24, true, false, &ids, &n) == SLM_OK);
    static const int32_t want[] = { 2, 818, 5279, 529, 7001, 563 };
    CHECK(n == 6 && memcmp(ids, want, sizeof want) == 0);
    free(ids);
}

static void speed_one(const slm_tokenizer *t, const char *what, const char *text, size_t len, bool ps) {
    int32_t *ids = NULL;
    size_t n = 0;
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now_s();
        slm_status st = tok_encode(t, text, len, true, ps, &ids, &n);
        double dt = now_s() - t0;
        CHECKF(st == SLM_OK, "%s", slm_last_error());
        if (dt < best) best = dt;
        /* the text decodes back */
        if (rep == 0 && st == SLM_OK) {
            char *dec;
            size_t dn = decode_all(t, ids + 1, n - 1, true, &dec);
            CHECKF(dn == len && memcmp(dec, text, len) == 0, "%s: no round trip", what);
            free(dec);
        }
        free(ids);
        ids = NULL;
    }
    printf("encode speed, %-28s %7.2f MB in %7.1f ms: %6.2f MB/s, %zu tokens\n", what, len / 1e6, best * 1e3,
           len / 1e6 / best, n);
}

static void test_speed(const slm_tokenizer *t, const fcase *cases, size_t n_cases) {
    size_t target = 1u << 20, len = 0;
    char *text = malloc(target + 4096);
    /* 1: the fixture texts (all kinds of content), over and over */
    for (size_t before = 1; len < target && len != before;) {
        before = len;
        for (size_t i = 0; i < n_cases && len < target; i++) {
            if (cases[i].len > 4096 || cases[i].parse_special ||
                memmem(cases[i].text, cases[i].len, "\xE2\x96\x81", 3))
                continue;
            memcpy(text + len, cases[i].text, cases[i].len);
            len += cases[i].len;
        }
    }
    speed_one(t, "mixed fixture texts", text, len, false);
    speed_one(t, "same, parse_special", text, len, true);
    /* 2: one fragment of prose without newlines (the largest merge heap) */
    static const char prose[] = "The quick brown fox jumps over the lazy dog, and then it runs away. ";
    for (len = 0; len + sizeof prose - 1 <= target; len += sizeof prose - 1) memcpy(text + len, prose, sizeof prose - 1);
    speed_one(t, "1 MB line of English prose", text, len, false);
    /* 3: no spaces at all: Chinese prose, and a run of hex digits */
    static const char zh[] = "\xE6\x95\x8F\xE6\x8D\xB7\xE7\x9A\x84\xE6\xA3\x95\xE8\x89\xB2\xE7\x8B\x90\xE7\x8B\xB8"
                             "\xE8\xB7\xB3\xE8\xBF\x87\xE4\xBA\x86\xE6\x87\x92\xE7\x8B\x97\xE3\x80\x82";
    for (len = 0; len + sizeof zh - 1 <= target; len += sizeof zh - 1) memcpy(text + len, zh, sizeof zh - 1);
    speed_one(t, "1 MB of Chinese, no spaces", text, len, false);
    uint32_t x = 12345;
    for (len = 0; len < target; len++) {
        x = x * 1103515245u + 12345u;
        text[len] = "0123456789abcdef"[(x >> 16) & 15];
    }
    speed_one(t, "1 MB of hex digits", text, len, false);
    /* 4: CJK, much of it byte fallback */
    static const char cjk[] = "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xF0\xA0\x80\x80\xF0\xAA\x9A\xA5\xE4\xBD\xA0\xE5\xA5\xBD";
    for (len = 0; len + sizeof cjk - 1 <= target; len += sizeof cjk - 1) memcpy(text + len, cjk, sizeof cjk - 1);
    speed_one(t, "1 MB of CJK + byte fallback", text, len, false);
    free(text);
}

int main(void) {
    test_small();
    const char *path = test_model_path();
    if (!path) {
        test_skip("SLM_TEST_MODEL not set or unreadable: the model tests did not run");
        return test_finish();
    }
    gguf_file *gf = NULL;
    slm_tokenizer *t = NULL;
    slm_status st = gguf_open(path, &gf);
    CHECKF(st == SLM_OK, "gguf_open: %s", slm_last_error());
    if (!st) {
        double t0 = now_s();
        st = tok_load(gf, &t);
        printf("tok_load: %.1f ms\n", (now_s() - t0) * 1e3);
        CHECKF(st == SLM_OK, "tok_load: %s", slm_last_error());
    }
    if (t) {
        fcase *cases = NULL;
        size_t n_cases = 0;
        test_model_api(t);
        test_fixtures(t, &cases, &n_cases);
        test_round_trips(t, cases, n_cases);
        test_decode_fixture(t);
        if (n_cases) test_speed(t, cases, n_cases);
        for (size_t i = 0; i < n_cases; i++) {
            free(cases[i].text);
            free(cases[i].ids);
        }
        free(cases);
    }
    tok_free(t);
    gguf_close(gf);
    return test_finish();
}
