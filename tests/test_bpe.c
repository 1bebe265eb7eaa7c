/* Byte-level BPE ("gpt2" vocabularies).
 *
 * Always: tests/fixtures/tokenizer/smollm2_vocab.gguf (SmolLM2's real
 * vocabulary and merges, no tensors) under every pre-tokenizer we support,
 * token for token against tests/fixtures/tokenizer/bpe.tsv (written from HF
 * tokenizers / transformers by scripts/gen_bpe_fixtures.py); decoding back to
 * the input; load errors; long inputs; invalid UTF-8.
 * With the real Qwen2.5-Coder-0.5B file (~/.cache/slm/models, or
 * $SLM_QWEN_MODEL): its cases of bpe.tsv too, and its end-of-generation ids.
 * Built without PCRE2: the vocabulary must be refused with a clear message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "gguf/gguf_write.h"
#include "slm.h"
#include "testlib.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tokenizer.h"

#define VOCAB "tests/fixtures/tokenizer/smollm2_vocab.gguf"
#define CASES "tests/fixtures/tokenizer/bpe.tsv"
#define SPLITS "tests/fixtures/tokenizer/bpe_split.tsv"

static char tmp_path[256];

/* A copy of the SmolLM2 vocabulary with some keys changed, loaded.
 * pre: value of tokenizer.ggml.pre (NULL: key removed); merges_n >= 0: the
 * merges replaced by these strings; drop: a key to remove. */
static slm_status load_variant(const char *pre, const char *const *merges, int merges_n, const char *drop,
                               slm_tokenizer **out) {
    *out = NULL;
    gguf_file *src = NULL, *f = NULL;
    gguf_writer *w = NULL;
    slm_status st = gguf_open(VOCAB, &src);
    CHECKF(st == SLM_OK, "cannot open %s: %s", VOCAB, slm_last_error());
    if (st) return st;
    st = gguf_writer_new(&w);
    if (!st) st = gguf_writer_copy_all_kv(w, src);
    if (!st) {
        if (pre) st = gguf_writer_set_str(w, "tokenizer.ggml.pre", pre);
        else gguf_writer_remove_kv(w, "tokenizer.ggml.pre");
    }
    if (!st && merges_n >= 0) st = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", merges, (size_t)merges_n);
    if (!st && drop) gguf_writer_remove_kv(w, drop);
    if (!st) st = gguf_writer_write(w, tmp_path);
    CHECKF(st == SLM_OK, "cannot write %s: %s", tmp_path, slm_last_error());
    gguf_writer_free(w);
    gguf_close(src);
    if (st) return st;
    st = gguf_open(tmp_path, &f);
    CHECKF(st == SLM_OK, "cannot reopen %s: %s", tmp_path, slm_last_error());
    if (st) return st;
    st = tok_load(f, out);
    gguf_close(f);  /* the tokenizer keeps its own copies */
    unlink(tmp_path);
    return st;
}

#ifndef SLM_HAVE_PCRE2

int main(void) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/slm_test_bpe_%d.gguf", (int)getpid());
    slm_tokenizer *t;
    slm_status st = load_variant("smollm", NULL, -1, NULL, &t);
    CHECKF(st == SLM_ERR_UNSUPPORTED && strstr(slm_last_error(), "PCRE2"),
           "without PCRE2 a gpt2 vocabulary must be unsupported, naming PCRE2: %s", slm_last_error());
    tok_free(t);
    test_skip("built without PCRE2 (Debian libpcre2-dev): the byte-level BPE cases did not run");
    return test_finish();
}

#else

/* ---- fixture file ----------------------------------------------------------- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static char *unhex(const char *s, size_t n, size_t *len) {
    char *out = malloc(n / 2 + 1);
    for (size_t i = 0; i + 1 < n; i += 2) out[i / 2] = (char)(hexval(s[i]) * 16 + hexval(s[i + 1]));
    *len = n / 2;
    out[*len] = '\0';
    return out;
}

static int32_t *parse_ids(const char *s, const char *end, size_t *n) {
    size_t cap = 16;
    int32_t *v = malloc(cap * sizeof *v);
    *n = 0;
    while (s < end) {
        char *e;
        long x = strtol(s, &e, 10);
        if (e == s) break;
        if (*n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        v[(*n)++] = (int32_t)x;
        s = e;
        while (s < end && *s == ' ') s++;
    }
    return v;
}

/* Splits the next non-comment line into nf tab-separated fields. */
static bool next_line(char **p, char **f, size_t *fl, int nf, int *lineno) {
    while (**p) {
        char *line = *p, *nl = strchr(line, '\n');
        *p = nl ? nl + 1 : line + strlen(line);
        (*lineno)++;
        if (line[0] == '#' || line[0] == '\n') continue;
        char *end = nl ? nl : *p;
        int k = 0;
        for (char *q = line; k < nf; k++) {
            char *tab = memchr(q, '\t', (size_t)(end - q));
            f[k] = q;
            fl[k] = (size_t)((tab && k < nf - 1 ? tab : end) - q);
            if (!tab) {
                k++;
                break;
            }
            q = tab + 1;
        }
        if (k == nf) return true;
        CHECKF(0, "line %d: expected %d fields", *lineno, nf);
    }
    return false;
}

/* ---- decoding ------------------------------------------------------------- */

static size_t decode_all(const slm_tokenizer *t, const int32_t *ids, size_t n, bool special, char **out) {
    size_t cap = 64, w = 0;
    char *buf = malloc(cap);
    for (size_t i = 0; i < n; i++) {
        char piece[512];
        size_t k = tok_piece_bytes(t, ids[i], special, piece, sizeof piece);
        if (k > sizeof piece) k = sizeof piece;  /* no piece here is that long */
        while (w + k + 1 > cap) buf = realloc(buf, cap *= 2);
        memcpy(buf + w, piece, k);
        w += k;
    }
    buf[w] = '\0';
    *out = buf;
    return w;
}

/* Is GPT-2's character for byte b (printable bytes as themselves, the rest
 * from U+0100 on in byte order) a piece of t? */
static bool byte_has_piece(const slm_tokenizer *t, int b) {
    bool prints = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    int cp = b;
    if (!prints) {
        cp = 256;
        for (int i = 0; i < b; i++)
            if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255))) cp++;
    }
    char u[2] = { (char)cp, 0 };
    if (cp >= 0x80) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
    }
    return tok_lookup(t, u, cp >= 0x80 ? 2 : 1) >= 0;
}

/* ---- the cases ------------------------------------------------------------ */

typedef struct {
    const char *pre;
    slm_tokenizer *t;
} variant;

static const char *qwen_path(void) {
    static char buf[512];
    const char *p = getenv("SLM_QWEN_MODEL");
    if (p && *p) return p;
    const char *dir = getenv("SLM_MODELS"), *home = getenv("HOME");
    if (dir && *dir) snprintf(buf, sizeof buf, "%s/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", dir);
    else snprintf(buf, sizeof buf, "%s/.cache/slm/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", home ? home : "");
    return access(buf, R_OK) == 0 ? buf : NULL;
}

static void run_cases(variant *vs, int n_vs, const slm_tokenizer *qwen, int *n_run, int *n_skipped) {
    size_t flen;
    char *file = test_read_file(CASES, &flen);
    CHECKF(file != NULL, "cannot read %s (run from the source root)", CASES);
    if (!file) return;
    char *p = file, *f[5];
    size_t fl[5];
    int lineno = 0, mismatches = 0;
    while (next_line(&p, f, fl, 5, &lineno)) {
        const slm_tokenizer *t = NULL;
        if (fl[0] == 7 && memcmp(f[0], "qwen2.5", 7) == 0) {
            if (!qwen) {
                (*n_skipped)++;
                continue;
            }
            t = qwen;
        } else {
            for (int i = 0; i < n_vs; i++)
                if (strlen(vs[i].pre) == fl[1] && memcmp(vs[i].pre, f[1], fl[1]) == 0) t = vs[i].t;
        }
        CHECKF(t != NULL, "%s line %d: no vocabulary for %.*s/%.*s", CASES, lineno, (int)fl[0], f[0], (int)fl[1],
               f[1]);
        if (!t) continue;
        size_t len, n_want, n = 0;
        char *text = unhex(f[2], fl[2], &len);
        bool add_bos = f[3][0] == '1', ps = f[3][1] == '1';
        int32_t *want = parse_ids(f[4], f[4] + fl[4], &n_want), *ids = NULL;
        slm_status st = tok_encode(t, text, len, add_bos, ps, &ids, &n);
        bool same = st == SLM_OK && n == n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
        if (!same) {
            mismatches++;
            size_t k = 0;
            while (k < n && k < n_want && ids[k] == want[k]) k++;
            CHECKF(0, "%s line %d (%.*s/%.*s, %.40s, flags %d%d): %s; %zu ids vs %zu expected, first difference at "
                   "%zu: %d vs %d", CASES, lineno, (int)fl[0], f[0], (int)fl[1], f[1], text, add_bos, ps,
                   slm_status_name(st), n, n_want, k, k < n ? ids[k] : -1, k < n_want ? want[k] : -1);
        }
        /* byte-level: decoding gives the input back (control tokens as their
         * text when special), less the bytes that have no piece */
        size_t skip = add_bos && tok_add_bos(t) && tok_bos(t) >= 0 && n ? 1 : 0, wn = 0;
        char *dec, *kept = malloc(len + 1);
        for (size_t i = 0; i < len; i++)
            if (byte_has_piece(t, (unsigned char)text[i])) kept[wn++] = text[i];
        size_t dn = decode_all(t, ids ? ids + skip : NULL, n - skip, true, &dec);
        CHECKF(dn == wn && memcmp(dec, kept, wn) == 0, "%s line %d: decoding does not give the input back", CASES,
               lineno);
        free(dec);
        free(kept);
        (*n_run)++;
        free(ids);
        free(want);
        free(text);
    }
    free(file);
    printf("bpe fixtures: %d cases run, %d mismatches%s\n", *n_run, mismatches,
           *n_skipped ? " (the Qwen2.5 cases skipped: no model)" : "");
}

/* ---- pre-tokenizers alone ------------------------------------------------- */

typedef struct {
    const char *base;
    size_t at, n, cap;
    size_t *len;
} pieces;

static slm_status collect(void *ctx, const char *s, size_t n) {
    pieces *p = ctx;
    CHECK(s == p->base + p->at);  /* in order, no gaps */
    p->at += n;
    if (p->n == p->cap) p->len = realloc(p->len, (p->cap = p->cap ? p->cap * 2 : 32) * sizeof *p->len);
    p->len[p->n++] = n;
    return SLM_OK;
}

static void test_splits(void) {
    size_t flen;
    char *file = test_read_file(SPLITS, &flen);
    CHECKF(file != NULL, "cannot read %s", SPLITS);
    if (!file) return;
    char *p = file, *f[3];
    size_t fl[3];
    int lineno = 0, n_cases = 0, bad = 0;
    while (next_line(&p, f, fl, 3, &lineno)) {
        tok_pretok *pt;
        pretok_traits tr;
        slm_status st = pretok_new(f[0], fl[0], &pt, &tr);
        CHECKF(st == SLM_OK, "%s line %d: %s", SPLITS, lineno, slm_last_error());
        if (st) continue;
        size_t len;
        char *text = unhex(f[1], fl[1], &len);
        pieces got = { .base = text };
        st = pretok_split(pt, text, len, collect, &got);
        /* expected lengths: comma-separated */
        size_t k = 0;
        bool same = st == SLM_OK && got.at == len;
        for (const char *q = f[2], *end = f[2] + fl[2]; same && q < end; k++) {
            char *e;
            unsigned long v = strtoul(q, &e, 10);
            same = k < got.n && got.len[k] == v;
            q = e + (e < end && *e == ',');
        }
        same = same && k == got.n;
        if (!same) {
            bad++;
            CHECKF(0, "%s line %d (%.*s, %.40s): pieces differ from HF's", SPLITS, lineno, (int)fl[0], f[0], text);
        }
        n_cases++;
        free(got.len);
        free(text);
        pretok_free(pt);
    }
    free(file);
    CHECKF(n_cases >= 1000, "only %d split cases", n_cases);
    printf("bpe split fixtures: %d cases, %d differ\n", n_cases, bad);
}

/* ---- load errors and details ------------------------------------------------ */

static void test_load_errors(void) {
    slm_tokenizer *t;
    CHECK(load_variant("no-such-pre", NULL, -1, NULL, &t) == SLM_ERR_UNSUPPORTED && !t);
    CHECKF(strstr(slm_last_error(), "no-such-pre") && strstr(slm_last_error(), "llama-bpe"), "%s", slm_last_error());
    CHECK(load_variant("smollm", NULL, -1, "tokenizer.ggml.merges", &t) == SLM_ERR_FORMAT && !t);
    CHECKF(strstr(slm_last_error(), "merges is missing"), "%s", slm_last_error());
    const char *bad[] = { "Ġ t", "nospace" };
    CHECK(load_variant("smollm", bad, 2, NULL, &t) == SLM_ERR_FORMAT && !t);
    CHECKF(strstr(slm_last_error(), "merge 1 has no space"), "%s", slm_last_error());

    /* merges whose parts are not pieces are ignored; with none left, text
     * comes out byte by byte */
    const char *odd[] = { "zzzzzz qqqqqq", "Ġ t" };
    CHECK(load_variant("gpt2", odd, 2, NULL, &t) == SLM_OK && t);
    if (t) {
        int32_t *ids;
        size_t n;
        CHECK(tok_encode(t, " tt", 3, false, false, &ids, &n) == SLM_OK && n == 2);
        if (n == 2) CHECK(ids[0] == tok_lookup(t, "Ġt", 3) && ids[1] == tok_lookup(t, "t", 1));
        free(ids);
        tok_free(t);
    }
}

static void test_details(const slm_tokenizer *smol, const slm_tokenizer *qwen) {
    /* no pre key: GPT-2's split ("default") */
    slm_tokenizer *d;
    CHECK(load_variant(NULL, NULL, -1, NULL, &d) == SLM_OK);
    if (d) {
        const char *s = "x 123 y's  z";
        int32_t *a, *b;
        size_t na, nb;
        slm_tokenizer *g;
        CHECK(load_variant("gpt2", NULL, -1, NULL, &g) == SLM_OK);
        if (g) {
            CHECK(tok_encode(d, s, strlen(s), false, false, &a, &na) == SLM_OK);
            CHECK(tok_encode(g, s, strlen(s), false, false, &b, &nb) == SLM_OK);
            CHECK(na == nb && memcmp(a, b, na * sizeof *a) == 0);
            free(a);
            free(b);
            tok_free(g);
        }
        tok_free(d);
    }

    /* BOS: without tokenizer.ggml.add_bos_token, llama-bpe (Llama 3) wants
     * one and smollm does not; add_bos=false never adds it */
    for (int k = 0; k < 2; k++) {
        slm_tokenizer *b;
        CHECK(load_variant(k ? "smollm" : "llama-bpe", NULL, -1, "tokenizer.ggml.add_bos_token", &b) == SLM_OK);
        if (!b) continue;
        int32_t *v;
        size_t nv;
        CHECK(tok_add_bos(b) == !k);
        CHECK(tok_encode(b, "Hi", 2, true, false, &v, &nv) == SLM_OK && nv >= 1);
        if (nv) CHECK((v[0] == tok_bos(b)) == !k);
        free(v);
        CHECK(tok_encode(b, "Hi", 2, false, false, &v, &nv) == SLM_OK && nv >= 1 && v[0] != tok_bos(b));
        free(v);
        tok_free(b);
    }

    /* tokens: control ones only with `special`; invalid UTF-8 */
    int32_t ims = tok_lookup(smol, "<|im_start|>", 12);
    char buf[32];
    CHECK(ims >= 0 && tok_type(smol, ims) == TOK_CONTROL);
    CHECK(tok_piece_bytes(smol, ims, false, buf, sizeof buf) == 0);
    CHECK(tok_piece_bytes(smol, ims, true, buf, sizeof buf) == 12 && memcmp(buf, "<|im_start|>", 12) == 0);
    CHECK(tok_piece_bytes(smol, tok_lookup(smol, "Ċ", 2), false, buf, sizeof buf) == 1 && buf[0] == '\n');
    CHECK(tok_piece_bytes(smol, tok_lookup(smol, "Ġ", 2), false, buf, 0) == 1);  /* size only */
    int32_t *ids = NULL;
    size_t n = 7;
    CHECK(tok_encode(smol, "ab\xC3", 3, false, false, &ids, &n) == SLM_ERR_INVALID_ARG && !ids && n == 0);
    CHECK(strstr(slm_last_error(), "offset 2") != NULL);
    CHECK(tok_encode(smol, NULL, 0, false, false, &ids, &n) == SLM_OK && n == 0);
    free(ids);
    CHECK(!tok_add_bos(smol));  /* the file says so */
    CHECK(tok_is_eog(smol, tok_lookup(smol, "<|im_end|>", 10)));
    CHECK(tok_is_eog(smol, tok_lookup(smol, "<|endoftext|>", 13)));
    CHECK(!tok_is_eog(smol, ims));
    if (qwen) {
        CHECK(tok_n_vocab(qwen) == 151936);
        CHECK(tok_is_eog(qwen, 151645) && tok_is_eog(qwen, 151643) && !tok_is_eog(qwen, 151644));
        CHECK(!tok_add_bos(qwen));
        /* user-defined tokens decode verbatim, unused ones as nothing */
        CHECK(tok_piece_bytes(qwen, 151657, false, buf, sizeof buf) == 11 && memcmp(buf, "<tool_call>", 11) == 0);
        CHECK(tok_piece_bytes(qwen, 151665, true, buf, sizeof buf) == 0);
    }
}

/* Long runs: one word of 100k+ bytes, and whitespace the expressions scan. */
static void test_long(const slm_tokenizer *t) {
    size_t n = getenv("SLM_TEST_LIGHT") ? 20000 : 300000;
    const char *fills[] = { " ", "!", "7", "a", "\n", "日", " \t" };
    char *s = malloc(n + 8);
    for (size_t k = 0; k < sizeof fills / sizeof fills[0]; k++) {
        size_t fl = strlen(fills[k]), len = 0;
        while (len + fl <= n) {
            memcpy(s + len, fills[k], fl);
            len += fl;
        }
        memcpy(s + len, "x", 1);
        len++;
        int32_t *ids = NULL;
        size_t ni = 0;
        slm_status st = tok_encode(t, s, len, false, false, &ids, &ni);
        CHECKF(st == SLM_OK && ni > 0, "run of '%s': %s", fills[k], slm_last_error());
        char *dec;
        size_t dn = decode_all(t, ids, ni, false, &dec);
        CHECKF(dn == len && memcmp(dec, s, len) == 0, "run of '%s' does not decode back", fills[k]);
        free(dec);
        free(ids);
    }
    free(s);
}

/* Encoding speed, printed (not checked: the machine is shared). */
static void report_speed(const slm_tokenizer *t, const char *what, const char *unit) {
    size_t n = getenv("SLM_TEST_LIGHT") ? 100000 : 1000000, ul = strlen(unit), len = 0;
    char *s = malloc(n + ul);
    while (len + ul <= n) {
        memcpy(s + len, unit, ul);
        len += ul;
    }
    int32_t *ids;
    size_t ni;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    slm_status st = tok_encode(t, s, len, false, false, &ids, &ni);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) * 1e-6;
    CHECK(st == SLM_OK);
    if (!st) printf("bpe encode speed, %-28s %.2f MB in %7.1f ms: %6.2f MB/s, %zu tokens\n", what, len / 1e6, ms,
                    len / 1e3 / ms, ni);
    free(ids);
    free(s);
}

int main(void) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/slm_test_bpe_%d.gguf", (int)getpid());
    static const char *pres[] = { "smollm", "gpt2", "llama-bpe", "qwen2", "tekken", "gpt-4o" };
    enum { NV = sizeof pres / sizeof pres[0] };
    variant vs[NV];
    for (int i = 0; i < NV; i++) {
        vs[i].pre = pres[i];
        slm_status st = load_variant(pres[i], NULL, -1, NULL, &vs[i].t);
        CHECKF(st == SLM_OK, "SmolLM2 vocabulary as %s: %s", pres[i], slm_last_error());
    }
    slm_tokenizer *qwen = NULL;
    const char *qp = qwen_path();
    if (qp) {
        gguf_file *f;
        slm_status st = gguf_open(qp, &f);
        if (!st) {
            st = tok_load(f, &qwen);
            gguf_close(f);
        }
        CHECKF(st == SLM_OK, "%s: %s", qp, slm_last_error());
    } else {
        test_skip("no Qwen2.5 model (scripts/fetch_models_extra.sh): its cases did not run");
    }
    bool all = true;
    for (int i = 0; i < NV; i++) all = all && vs[i].t;
    if (all) {
        int n_run = 0, n_skipped = 0;
        run_cases(vs, NV, qwen, &n_run, &n_skipped);
        CHECKF(n_run >= 1000, "only %d cases ran", n_run);
        test_details(vs[0].t, qwen);
        test_long(vs[0].t);
        test_long(vs[2].t);
        if (qwen) test_long(qwen);
        const char *prose = "The quick brown fox jumps over the lazy dog, and then it's gone again. ";
        const char *code = "for (int i = 0; i < n; i++) {\n    sum += a[i] * 2;\n}\n";
        report_speed(vs[0].t, "English prose (smollm2)", prose);
        report_speed(vs[0].t, "C code (smollm2)", code);
        report_speed(vs[0].t, "Chinese (smollm2)", "中文分词测试，包括标点符号！");
        if (qwen) report_speed(qwen, "English prose (qwen2.5)", prose);
    }
    test_load_errors();
    test_splits();
    for (int i = 0; i < NV; i++) tok_free(vs[i].t);
    tok_free(qwen);
    return test_finish();
}

#endif
