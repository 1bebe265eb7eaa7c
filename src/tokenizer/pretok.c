/* Regex pre-tokenizers of byte-level BPE vocabularies; see pretok.h.
 *
 * The expressions are those the vocabularies' own tokenizer.json files (HF
 * tokenizers) use, which llama.cpp maps to its tokenizer.ggml.pre names. */
#ifdef SLM_HAVE_PCRE2

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "base/utf8.h"
#include "tokenizer/pretok.h"

/* GPT-2's split: contractions, letters, numbers, other symbols, each with one
 * optional leading space; a whitespace run keeps its last space for the word
 * after it. */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
/* Llama 3: case-blind contractions, one non-letter glued before letters,
 * numbers in runs of at most three digits, newlines kept apart. */
#define RE_LLAMA3                                                                           \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"                  \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Qwen2: Llama 3's split with every digit on its own. */
#define RE_QWEN2                                                                            \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"                       \
    "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Mistral's Tekken: words split at case changes, single digits. */
#define RE_TEKKEN                                                                           \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"  \
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" \
    "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* GPT-4o (Phi-4-mini): Tekken's case split, contractions glued to the word,
 * numbers in runs of at most three digits. */
#define RE_GPT4O                                                                                       \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"             \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"                                                                     \
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*"            \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"                                                                     \
    "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* StarCoder / SmolLM: every digit isolated first, then GPT-2's split. */
#define RE_DIGIT "\\p{N}"

#define MAX_STAGES 2

typedef struct {
    const char *names;  /* space-separated tokenizer.ggml.pre values */
    const char *stages[MAX_STAGES];
    pretok_traits traits;
} flavor;

static const flavor flavors[] = {
    { "default gpt2", { RE_GPT2 }, { false, false } },
    { "llama-bpe llama3 llama-v3 falcon3", { RE_LLAMA3 }, { true, true } },
    { "qwen2 deepseek-r1-qwen megrez", { RE_QWEN2 }, { false, false } },
    { "smollm starcoder refact codeshell", { RE_DIGIT, RE_GPT2 }, { false, false } },
    { "tekken", { RE_TEKKEN }, { true, true } },
    { "gpt-4o", { RE_GPT4O }, { false, false } },
};

struct tok_pretok {
    pcre2_code *code[MAX_STAGES];
    int n_stages;
};

const char *pretok_known_names(void) {
    return "default, gpt2, llama-bpe, llama3, llama-v3, falcon3, qwen2, deepseek-r1-qwen, megrez, smollm, "
           "starcoder, refact, codeshell, tekken, gpt-4o";
}

/* Is name[0..len) one of the space-separated words of list? */
static bool in_list(const char *list, const char *name, size_t len) {
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ' ');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == len && memcmp(p, name, len) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

void pretok_free(tok_pretok *p) {
    if (!p) return;
    for (int i = 0; i < p->n_stages; i++) pcre2_code_free(p->code[i]);
    free(p);
}

slm_status pretok_new(const char *name, size_t len, tok_pretok **out, pretok_traits *traits) {
    *out = NULL;
    if (!name) {
        name = "default";
        len = strlen(name);
    }
    const flavor *fl = NULL;
    for (size_t i = 0; i < sizeof flavors / sizeof flavors[0] && !fl; i++)
        if (in_list(flavors[i].names, name, len)) fl = &flavors[i];
    if (!fl) {
        int shown = len > 40 ? 40 : (int)len;
        return slm_fail(SLM_ERR_UNSUPPORTED, "tokenizer: pre-tokenizer \"%.*s\" (tokenizer.ggml.pre) is not supported; "
                        "known: %s", shown, name, pretok_known_names());
    }
    tok_pretok *p = calloc(1, sizeof *p);
    if (!p) return slm_fail(SLM_ERR_NOMEM, "tokenizer: out of memory");
    for (int i = 0; i < MAX_STAGES && fl->stages[i]; i++) {
        int err;
        PCRE2_SIZE at;
        p->code[i] = pcre2_compile((PCRE2_SPTR)fl->stages[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &at,
                                   NULL);
        if (!p->code[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(err, msg, sizeof msg);
            pretok_free(p);
            return slm_fail(SLM_ERR_UNSUPPORTED, "tokenizer: PCRE2 rejects the pre-tokenizer expression at %zu: %s",
                            (size_t)at, (const char *)msg);
        }
        p->n_stages = i + 1;
        /* JIT where the platform has it; the interpreter otherwise. */
        (void)pcre2_jit_compile(p->code[i], PCRE2_JIT_COMPLETE);
    }
    *traits = fl->traits;
    *out = p;
    return SLM_OK;
}

/* ---- splitting ----------------------------------------------------------- */

typedef struct {
    size_t off, len;
} span;

typedef struct {
    span *v;
    size_t n, cap;
} spans;

typedef struct {
    const char *text;      /* the whole input: spans are offsets into it */
    spans *to;             /* next stage's input, or NULL: hand pieces to fn */
    pretok_piece_fn fn;
    void *ctx;
} sink;

static slm_status put_piece(sink *k, size_t off, size_t len) {
    if (!k->to) return k->fn(k->ctx, k->text + off, len);
    spans *s = k->to;
    if (s->n == s->cap) {
        size_t c = s->cap ? s->cap * 2 : 64;
        span *v = realloc(s->v, c * sizeof *v);
        if (!v) return slm_fail(SLM_ERR_NOMEM, "tokenize: out of memory");
        s->v = v;
        s->cap = c;
    }
    s->v[s->n++] = (span){ off, len };
    return SLM_OK;
}

/* Limits for the rare very long run (megabytes of spaces, where "\s+(?!\S)"
 * keeps a backtracking point per character): a JIT stack that grows to
 * 256 MB, then the interpreter without a match-call limit. Made on first
 * need, per split call (a JIT stack must not be shared between threads). */
typedef struct {
    pcre2_match_context *ctx;
    pcre2_jit_stack *stack;
} big_limits;

static int match_at(const pcre2_code *code, const char *subj, size_t len, size_t pos, pcre2_match_data *md,
                    big_limits *big) {
    int rc = pcre2_match(code, (PCRE2_SPTR)subj, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
    if (rc != PCRE2_ERROR_JIT_STACKLIMIT && rc != PCRE2_ERROR_MATCHLIMIT) return rc;
    if (!big->ctx) {
        big->ctx = pcre2_match_context_create(NULL);
        big->stack = pcre2_jit_stack_create(64 * 1024, 256 * 1024 * 1024, NULL);
        if (!big->ctx || !big->stack) return PCRE2_ERROR_NOMEMORY;
        pcre2_jit_stack_assign(big->ctx, NULL, big->stack);
        pcre2_set_match_limit(big->ctx, UINT32_MAX);
        pcre2_set_depth_limit(big->ctx, UINT32_MAX);
    }
    rc = pcre2_match(code, (PCRE2_SPTR)subj, len, pos, PCRE2_NO_UTF_CHECK, md, big->ctx);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(code, (PCRE2_SPTR)subj, len, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, big->ctx);
    return rc;
}

static void big_free(big_limits *big) {
    if (big->ctx) pcre2_match_context_free(big->ctx);
    if (big->stack) pcre2_jit_stack_free(big->stack);
}

/* Splits text[off..off+len) with one expression. */
static slm_status split_span(const pcre2_code *code, pcre2_match_data *md, big_limits *big, sink *k, size_t off,
                             size_t len) {
    const char *subj = k->text + off;
    size_t pos = 0, last = 0;
    slm_status st = SLM_OK;
    while (!st && pos < len) {
        int rc = match_at(code, subj, len, pos, md, big);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return slm_fail(SLM_ERR_UNSUPPORTED, "tokenize: pre-tokenizer match failed: %s", (const char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = (size_t)ov[0], me = (size_t)ov[1];
        if (me <= ms) {  /* an empty match: step over one character */
            int cl = utf8_lead_len((unsigned char)subj[ms < len ? ms : len - 1]);
            pos = ms + (size_t)(cl > 0 ? cl : 1);
            continue;
        }
        if (ms > last) st = put_piece(k, off + last, ms - last);
        if (!st) st = put_piece(k, off + ms, me - ms);
        last = pos = me;
    }
    if (!st && last < len) st = put_piece(k, off + last, len - last);
    return st;
}

slm_status pretok_split(const tok_pretok *p, const char *s, size_t n, pretok_piece_fn fn, void *ctx) {
    if (n == 0) return SLM_OK;
    spans cur = { 0 }, next = { 0 };
    big_limits big = { 0 };
    slm_status st = SLM_OK;
    sink k = { .text = s, .fn = fn, .ctx = ctx };
    if (p->n_stages > 1) {
        k.to = &cur;
        st = put_piece(&k, 0, n);
    }
    for (int i = 0; !st && i < p->n_stages; i++) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->code[i], NULL);
        if (!md) {
            st = slm_fail(SLM_ERR_NOMEM, "tokenize: out of memory");
            break;
        }
        bool last_stage = i == p->n_stages - 1;
        next.n = 0;
        k.to = last_stage ? NULL : &next;
        if (i == 0 && p->n_stages == 1) {
            st = split_span(p->code[i], md, &big, &k, 0, n);
        } else {
            for (size_t j = 0; !st && j < cur.n; j++)
                st = split_span(p->code[i], md, &big, &k, cur.v[j].off, cur.v[j].len);
        }
        pcre2_match_data_free(md);
        spans t = cur;
        cur = next;
        next = t;
    }
    free(cur.v);
    free(next.v);
    big_free(&big);
    return st;
}

#else  /* !SLM_HAVE_PCRE2: nothing here; bpe.c reports the vocabulary as unsupported */
typedef int slm_pretok_translation_unit_not_empty;
#endif
