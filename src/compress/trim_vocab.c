/* slm_trim_vocab: a copy of a model whose vocabulary is cut down to what a
 * corpus needs.
 *
 * The kept set starts with every token the encoder must still be able to
 * produce whatever the text (byte tokens, control / user-defined / unknown
 * tokens, the ids the metadata names) and the tokens of the corpus. A
 * SentencePiece-style encoder builds a piece by merging pairs in score
 * order, and a pair can only merge when its concatenation is in the
 * vocabulary, so each kept piece also needs the pieces its own merge order
 * passes through: we replay that order on the piece's text alone (merges
 * inside a final piece never depend on what lies outside it). Byte-level BPE
 * pieces keep every sub-piece instead (a superset of their merge chain).
 *
 * Then the claim is checked rather than trusted: a tokenizer is built in
 * memory from the trimmed vocabulary, the whole corpus is encoded again and
 * compared token by token with the full vocabulary's encoding. Where a text
 * differs, every sub-piece of its pieces is added and the check repeats; a
 * round that adds nothing and still differs is an error.
 *
 * Writing copies all metadata, then replaces the vocabulary arrays (tokens,
 * scores, token_type, merges), the *_token_id keys and *.vocab_size, and
 * streams token_embd.weight / output.weight as the kept rows (a byte copy:
 * a row of any GGUF type is a whole number of blocks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "base/tensor_type.h"
#include "base/utf8.h"
#include "eval/json.h"
#include "gguf/gguf_write.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

#define TRIM_MAX_ROUNDS 8

/* One corpus text with its full-vocabulary encoding (old ids). */
typedef struct {
    char *text;
    size_t len;
    bool special;          /* parse_special: chat renderings */
    size_t tok_off, n_tok; /* into corpus.toks */
} trim_text;

typedef struct {
    trim_text *v;
    size_t n, cap;
    int32_t *toks;
    size_t n_toks, toks_cap;
} corpus;

static slm_status nomem(void) { return slm_fail(SLM_ERR_NOMEM, "trim-vocab: out of memory"); }

static slm_status corpus_add(corpus *c, const char *s, size_t len, bool special) {
    if (c->n == c->cap && !tok_grow((void **)&c->v, &c->cap, c->n + 1, sizeof *c->v)) return nomem();
    char *copy = malloc(len + 1);
    if (!copy) return nomem();
    memcpy(copy, s, len);
    copy[len] = 0;
    c->v[c->n++] = (trim_text){ .text = copy, .len = len, .special = special };
    return SLM_OK;
}

static void corpus_free(corpus *c) {
    for (size_t i = 0; i < c->n; i++) free(c->v[i].text);
    free(c->v);
    free(c->toks);
}

/* ---- JSONL documents ------------------------------------------------------ */

static slm_status add_strings(corpus *c, const json_val *v, int depth) {
    if (depth > JSON_MAX_DEPTH) return SLM_OK;
    if (v->kind == JSON_STR) return v->len ? corpus_add(c, v->str, v->len, false) : SLM_OK;
    if (v->kind != JSON_ARR && v->kind != JSON_OBJ) return SLM_OK;
    for (size_t i = 0; i < v->n; i++) {
        slm_status st = add_strings(c, &v->items[i], depth + 1);
        if (st) return st;
    }
    return SLM_OK;
}

static slm_status add_rendering(corpus *c, slm_model *m, const slm_chat_message *msgs, size_t n, bool gen_prompt) {
    char *text = NULL;
    slm_status st = slm_chat_format(m, msgs, n, gen_prompt, &text);
    if (st) return st;
    st = corpus_add(c, text, strlen(text), true);
    free(text);
    return st;
}

/* The chat renderings of one JSONL object: "messages" as a conversation (and
 * its prefix up to the last user turn, opened for the assistant), or an eval
 * item with "chat": true (prompt + each answer). */
static slm_status add_chat(corpus *c, slm_model *m, const json_val *o) {
    slm_chat_message msgs[66];
    size_t n = 0;
    const json_val *ms = ejson_get(o, "messages");
    if (ms && ms->kind == JSON_ARR) {
        for (size_t i = 0; i < ms->n && n < 64; i++) {
            const json_val *r = ejson_get(&ms->items[i], "role"), *t = ejson_get(&ms->items[i], "content");
            if (!r || !t || r->kind != JSON_STR || t->kind != JSON_STR) continue;
            msgs[n++] = (slm_chat_message){ r->str, t->str };
        }
    }
    const json_val *chat = ejson_get(o, "chat"), *prompt = ejson_get(o, "prompt");
    bool eval_chat = chat && chat->kind == JSON_BOOL && chat->b;
    if (eval_chat && n == 0 && prompt && prompt->kind == JSON_STR)
        msgs[n++] = (slm_chat_message){ "user", prompt->str };
    if (n == 0) return SLM_OK;
    slm_status st;
    if (eval_chat) {
        /* the prompt as eval feeds it, then with each answer as the reply */
        if ((st = add_rendering(c, m, msgs, n, true))) return st;
        const json_val *ans = ejson_get(o, "answer");
        const json_val *list = ans && ans->kind == JSON_ARR ? ans : NULL;
        size_t n_ans = list ? list->n : (ans ? 1 : 0);
        for (size_t k = 0; k < n_ans; k++) {
            const json_val *a = list ? &list->items[k] : ans;
            if (a->kind != JSON_STR) continue;
            msgs[n] = (slm_chat_message){ "assistant", a->str };
            if ((st = add_rendering(c, m, msgs, n + 1, false))) return st;
        }
        return SLM_OK;
    }
    if ((st = add_rendering(c, m, msgs, n, false))) return st;
    size_t last_user = n;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(msgs[i].role, "user")) last_user = i;
    return last_user < n ? add_rendering(c, m, msgs, last_user + 1, true) : SLM_OK;
}

static slm_status add_jsonl(corpus *c, slm_model *m, const char *doc, size_t len, size_t doc_index) {
    size_t line = 0;
    for (size_t at = 0; at < len; line++) {
        const char *nl = memchr(doc + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - doc) : len;
        const char *s = doc + at;
        size_t n = end - at;
        at = end + 1;
        size_t k = 0;
        while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r')) k++;
        if (k == n) continue;
        char err[160];
        json_doc *d = ejson_parse(s, n, err, sizeof err);
        if (!d) return slm_fail(SLM_ERR_FORMAT, "trim-vocab: JSONL document %zu, line %zu: %s", doc_index + 1,
                                line + 1, err);
        const json_val *root = ejson_root(d);
        slm_status st = add_strings(c, root, 0);
        if (!st && root->kind == JSON_OBJ) st = add_chat(c, m, root);
        ejson_free(d);
        if (st) return st;
    }
    return SLM_OK;
}

/* ---- the kept set --------------------------------------------------------- */

typedef struct {
    const slm_tokenizer *t;
    uint8_t *keep;
    uint8_t *done;         /* ancestry already added */
    int32_t *sym_start, *sym_len;
    size_t sym_cap;
} keeper;

static bool spm_mergeable(int ty) {
    return ty == TOK_NORMAL || ty == TOK_USER_DEFINED || ty == TOK_UNUSED || ty == TOK_UNDEFINED;
}

static bool grow_syms(keeper *k, size_t need) {
    if (need <= k->sym_cap) return true;
    size_t cap = k->sym_cap;
    if (!tok_grow((void **)&k->sym_start, &cap, need, sizeof(int32_t))) return false;
    cap = k->sym_cap;
    if (!tok_grow((void **)&k->sym_len, &cap, need, sizeof(int32_t))) return false;
    k->sym_cap = cap;
    return true;
}

/* Every piece in the vocabulary that is a run of whole characters of id's
 * text (the piece itself included). */
static slm_status keep_substrings(keeper *k, int32_t id) {
    size_t n;
    const char *s = tok_text(k->t, id, &n);
    for (size_t a = 0; a < n; a++) {
        if ((((unsigned char)s[a]) & 0xC0) == 0x80) continue;
        for (size_t b = a + 1; b <= n; b++) {
            if (b < n && (((unsigned char)s[b]) & 0xC0) == 0x80) continue;
            int32_t sub = tok_find(k->t, s + a, b - a);
            if (sub >= 0) k->keep[sub] = 1;
        }
    }
    return SLM_OK;
}

/* Replays the score-ordered merging of id's text alone (highest score, then
 * leftmost, as spm.c does) and keeps every piece it forms. */
static slm_status keep_ancestry(keeper *k, int32_t id) {
    if (k->done[id]) return SLM_OK;
    k->done[id] = 1;
    k->keep[id] = 1;
    const slm_tokenizer *t = k->t;
    if (t->bpe) return keep_substrings(k, id);
    if (t->type[id] != TOK_NORMAL) return SLM_OK;
    size_t n;
    const char *s = tok_text(t, id, &n);
    size_t m = 0;
    for (size_t i = 0; i < n; m++) {
        int len = utf8_lead_len((unsigned char)s[i]);
        if (len == 0 || (size_t)len > n - i) len = 1;
        if (!grow_syms(k, m + 1)) return nomem();
        k->sym_start[m] = (int32_t)i;
        k->sym_len[m] = len;
        i += (size_t)len;
    }
    while (m > 1) {
        size_t best = m;
        float best_score = 0;
        int32_t best_id = -1;
        for (size_t i = 0; i + 1 < m; i++) {
            size_t len = (size_t)k->sym_len[i] + (size_t)k->sym_len[i + 1];
            int32_t p = tok_find(t, s + k->sym_start[i], len);
            if (p < 0 || !spm_mergeable(t->type[p])) continue;
            if (best == m || t->score[p] > best_score) { best = i; best_score = t->score[p]; best_id = p; }
        }
        if (best == m) break;
        k->keep[best_id] = 1;
        k->sym_len[best] += k->sym_len[best + 1];
        memmove(k->sym_start + best + 1, k->sym_start + best + 2, (m - best - 2) * sizeof(int32_t));
        memmove(k->sym_len + best + 1, k->sym_len + best + 2, (m - best - 2) * sizeof(int32_t));
        m--;
    }
    return SLM_OK;
}

/* ---- the trimmed vocabulary as metadata ----------------------------------- */

typedef struct {
    int32_t *kept;         /* new id -> old id */
    int32_t n_kept;
    int32_t *new_id;       /* old id -> new id, -1 if dropped */
} id_map;

static bool ends_with(gguf_str k, const char *suffix) {
    size_t n = strlen(suffix);
    return k.len >= n && memcmp(k.ptr + k.len - n, suffix, n) == 0;
}

static bool is_special_id_key(gguf_str k) {
    static const char pre[] = "tokenizer.ggml.";
    return k.len > sizeof pre - 1 && memcmp(k.ptr, pre, sizeof pre - 1) == 0 && ends_with(k, "_token_id");
}

static slm_status set_int_like(gguf_writer *w, const gguf_kv *kv, const char *key, int64_t v) {
    switch (kv->type) {
    case GGUF_T_U32: return gguf_writer_set_u32(w, key, (uint32_t)v);
    case GGUF_T_I32: return gguf_writer_set_i32(w, key, (int32_t)v);
    case GGUF_T_U64: return gguf_writer_set_u64(w, key, (uint64_t)v);
    default: return slm_fail(SLM_ERR_UNSUPPORTED, "trim-vocab: %s has type %s", key, gguf_vtype_name(kv->type));
    }
}

/* Copies every key of f, then replaces what the vocabulary's size and order
 * decide. */
static slm_status write_vocab_kv(gguf_writer *w, const gguf_file *f, const slm_tokenizer *t, const id_map *mp) {
    slm_status st = gguf_writer_copy_all_kv(w, f);
    if (st) return st;
    size_t nk = (size_t)mp->n_kept;
    const char **strs = malloc(nk * sizeof *strs);
    char *pool = NULL;
    float *scores = malloc(nk * sizeof *scores);
    int32_t *types = malloc(nk * sizeof *types);
    size_t pool_len = 0;
    for (size_t i = 0; i < nk; i++) {
        size_t n;
        tok_text(t, mp->kept[i], &n);
        pool_len += n + 1;
    }
    pool = malloc(pool_len ? pool_len : 1);
    if (!strs || !pool || !scores || !types) { st = nomem(); goto done; }
    char *p = pool;
    for (size_t i = 0; i < nk; i++) {
        size_t n;
        const char *s = tok_text(t, mp->kept[i], &n);
        if (memchr(s, 0, n)) {
            st = slm_fail(SLM_ERR_UNSUPPORTED, "trim-vocab: token %d contains a NUL byte", (int)mp->kept[i]);
            goto done;
        }
        memcpy(p, s, n);
        p[n] = 0;
        strs[i] = p;
        p += n + 1;
        scores[i] = t->score[mp->kept[i]];
        types[i] = t->type[mp->kept[i]];
    }
    st = gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", strs, nk);
    if (!st && gguf_find(f, "tokenizer.ggml.scores")) st = gguf_writer_set_arr_f32(w, "tokenizer.ggml.scores", scores, nk);
    if (!st && gguf_find(f, "tokenizer.ggml.token_type"))
        st = gguf_writer_set_arr_i32(w, "tokenizer.ggml.token_type", types, nk);
    /* merges "A B": kept when A, B and AB all are */
    const gguf_kv *mg = gguf_find(f, "tokenizer.ggml.merges");
    if (!st && mg && mg->type == GGUF_T_ARRAY && mg->arr_type == GGUF_T_STRING && mg->strs) {
        char **own = calloc(mg->arr_n ? mg->arr_n : 1, sizeof *own);
        char *buf = malloc(2 * t->max_piece_len + 2);
        size_t n_own = 0;
        if (!own || !buf) st = nomem();
        for (uint64_t i = 0; i < mg->arr_n && !st; i++) {
            gguf_str e = mg->strs[i];
            const char *sp = e.len > 1 ? memchr(e.ptr + 1, ' ', e.len - 1) : NULL;
            if (!sp || memchr(e.ptr, 0, e.len)) continue;
            size_t la = (size_t)(sp - e.ptr), lb = e.len - la - 1;
            if (la + lb > 2 * t->max_piece_len) continue;
            int32_t a = tok_find(t, e.ptr, la), b = tok_find(t, sp + 1, lb);
            memcpy(buf, e.ptr, la);
            memcpy(buf + la, sp + 1, lb);
            int32_t ab = tok_find(t, buf, la + lb);
            if (a < 0 || b < 0 || ab < 0 || mp->new_id[a] < 0 || mp->new_id[b] < 0 || mp->new_id[ab] < 0) continue;
            /* the file's strings are not NUL-terminated: copy the kept ones */
            if (!(own[n_own] = malloc(e.len + 1))) { st = nomem(); break; }
            memcpy(own[n_own], e.ptr, e.len);
            own[n_own++][e.len] = 0;
        }
        if (!st) st = gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)own, n_own);
        for (size_t j = 0; j < n_own; j++) free(own[j]);
        free(own);
        free(buf);
    }
    /* special ids and vocab_size keys */
    char key[256];
    for (uint64_t i = 0; i < f->n_kv && !st; i++) {
        const gguf_kv *kv = &f->kv[i];
        if (kv->key.len >= sizeof key) continue;
        memcpy(key, kv->key.ptr, kv->key.len);
        key[kv->key.len] = 0;
        if (is_special_id_key(kv->key)) {
            int64_t old = kv->type == GGUF_T_I32 ? kv->num.i : (int64_t)kv->num.u;
            if (kv->type != GGUF_T_U32 && kv->type != GGUF_T_I32 && kv->type != GGUF_T_U64) continue;
            if (old < 0 || old >= t->n_vocab) continue;
            st = set_int_like(w, kv, key, mp->new_id[old]);
        } else if (ends_with(kv->key, ".vocab_size") &&
                   (kv->type == GGUF_T_U32 || kv->type == GGUF_T_I32 || kv->type == GGUF_T_U64)) {
            st = set_int_like(w, kv, key, mp->n_kept);
        }
    }
done:
    free(strs);
    free(pool);
    free(scores);
    free(types);
    return st;
}

/* ---- check: the corpus through the trimmed vocabulary --------------------- */

/* Encodes every text with the trimmed vocabulary; marks bad[i] where text i
 * differs from its full-vocabulary encoding. Returns the number that differ,
 * or -1 on error. */
static long check_corpus(const gguf_file *f, const slm_tokenizer *t, const id_map *mp, const corpus *c, uint8_t *bad,
                         slm_status *st_out) {
    gguf_writer *w = NULL;
    unsigned char *buf = NULL;
    size_t len = 0;
    gguf_file *g = NULL;
    slm_tokenizer *tt = NULL;
    slm_status st = gguf_writer_new(&w);
    if (!st) st = write_vocab_kv(w, f, t, mp);
    if (!st) st = gguf_writer_to_memory(w, &buf, &len);
    if (!st) st = gguf_parse(buf, len, &g);
    if (!st) st = tok_load(g, &tt);
    long n_bad = 0;
    for (size_t i = 0; i < c->n && !st; i++) {
        const trim_text *x = &c->v[i];
        int32_t *ids = NULL;
        size_t n = 0;
        st = tok_encode(tt, x->text, x->len, false, x->special, &ids, &n);
        if (st) break;
        bool same = n == x->n_tok;
        for (size_t j = 0; same && j < n; j++)
            same = ids[j] >= 0 && ids[j] < mp->n_kept && mp->kept[ids[j]] == c->toks[x->tok_off + j];
        free(ids);
        bad[i] = !same;
        n_bad += !same;
    }
    tok_free(tt);
    gguf_close(g);
    free(buf);
    gguf_writer_free(w);
    *st_out = st;
    return st ? -1 : n_bad;
}

static slm_status build_map(const uint8_t *keep, int32_t n, id_map *mp) {
    mp->n_kept = 0;
    for (int32_t i = 0; i < n; i++) {
        mp->new_id[i] = keep[i] ? mp->n_kept : -1;
        if (keep[i]) mp->kept[mp->n_kept++] = i;
    }
    return SLM_OK;
}

/* ---- the tensors ------------------------------------------------------------ */

typedef struct {
    const gguf_file *f;
    const id_map *mp;
    uint8_t *rows_of;      /* per tensor: 1 = select vocabulary rows */
} fill_ctx;

static slm_status fill_rows(void *vctx, size_t index, void *dst, size_t nbytes) {
    fill_ctx *c = vctx;
    const gguf_tensor *tn = &c->f->tensors[index];
    size_t rb = (size_t)(tn->nbytes / tn->ne[1]);
    if (nbytes != rb * (size_t)c->mp->n_kept) return slm_fail(SLM_ERR_FORMAT, "trim-vocab: size mismatch");
    for (int32_t i = 0; i < c->mp->n_kept; i++)
        memcpy((uint8_t *)dst + (size_t)i * rb, (const uint8_t *)tn->data + (size_t)c->mp->kept[i] * rb, rb);
    return SLM_OK;
}

static slm_status write_model(const gguf_file *f, const slm_tokenizer *t, const id_map *mp, const char *out_path,
                              uint64_t *bytes_out) {
    gguf_writer *w = NULL;
    fill_ctx ctx = { f, mp, calloc(f->n_tensors ? f->n_tensors : 1, 1) };
    slm_status st = ctx.rows_of ? gguf_writer_new(&w) : nomem();
    if (!st) st = write_vocab_kv(w, f, t, mp);
    char name[300];
    for (uint64_t i = 0; i < f->n_tensors && !st; i++) {
        const gguf_tensor *tn = &f->tensors[i];
        size_t nl = tn->name.len < sizeof name - 1 ? (size_t)tn->name.len : sizeof name - 1;
        memcpy(name, tn->name.ptr, nl);
        name[nl] = 0;
        bool vocab_rows = (!strcmp(name, "token_embd.weight") || !strcmp(name, "output.weight"));
        if (!vocab_rows) {
            st = gguf_writer_add_tensor(w, name, tn->type, (int)tn->n_dims, tn->ne, tn->data, tn->nbytes);
            continue;
        }
        if (tn->n_dims != 2 || tn->ne[1] != (uint64_t)t->n_vocab || tn->nbytes % tn->ne[1])
            st = slm_fail(SLM_ERR_FORMAT, "trim-vocab: %s is not [n_embd, %d]", name, t->n_vocab);
        if (st) break;
        uint64_t ne[4] = { tn->ne[0], (uint64_t)mp->n_kept, 1, 1 };
        size_t nbytes = (size_t)(tn->nbytes / tn->ne[1]) * (size_t)mp->n_kept;
        ctx.rows_of[i] = 1;
        st = gguf_writer_add_tensor_cb(w, name, tn->type, 2, ne, nbytes, fill_rows, &ctx);
    }
    if (!st) *bytes_out = gguf_writer_file_size(w);
    if (!st) st = gguf_writer_write(w, out_path);
    gguf_writer_free(w);
    free(ctx.rows_of);
    return st;
}

/* ---- the whole ---------------------------------------------------------------- */

static slm_status encode_corpus(const slm_tokenizer *t, corpus *c, keeper *k, uint64_t *n_tokens) {
    for (size_t i = 0; i < c->n; i++) {
        trim_text *x = &c->v[i];
        int32_t *ids = NULL;
        size_t n = 0;
        slm_status st = tok_encode(t, x->text, x->len, false, x->special, &ids, &n);
        if (st) return slm_fail(st, "trim-vocab: text %zu: %s", i + 1, slm_last_error());
        if (!tok_grow((void **)&c->toks, &c->toks_cap, c->n_toks + n, sizeof(int32_t))) { free(ids); return nomem(); }
        memcpy(c->toks + c->n_toks, ids, n * sizeof(int32_t));
        x->tok_off = c->n_toks;
        x->n_tok = n;
        c->n_toks += n;
        free(ids);
        for (size_t j = 0; j < n; j++)
            if ((st = keep_ancestry(k, c->toks[x->tok_off + j]))) return st;
    }
    *n_tokens = c->n_toks;
    return SLM_OK;
}

/* A model writes the words it reads in other forms than it reads them: a
 * name read as " Chiara" (after a space) is written as "Chiara" after a
 * quote in a JSON answer. So every word of the plain corpus texts (a run
 * between whitespace) is also kept in both forms, alone and after one space;
 * these encodings widen the kept set only (the verified corpus is the texts
 * themselves). A 64-bit hash set skips words already seen. */
typedef struct { uint64_t *slot; size_t cap, n; } word_set;

static bool word_seen(word_set *w, const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    h |= 1; /* 0 marks an empty slot */
    if ((w->n + 1) * 2 > w->cap) {
        size_t nc = w->cap ? w->cap * 2 : 4096;
        uint64_t *ns = calloc(nc, sizeof *ns);
        if (!ns) return true;  /* out of memory: treat as seen (fewer forms kept, never wrong) */
        for (size_t i = 0; i < w->cap; i++)
            if (w->slot[i]) {
                size_t j = w->slot[i] & (nc - 1);
                while (ns[j]) j = (j + 1) & (nc - 1);
                ns[j] = w->slot[i];
            }
        free(w->slot);
        w->slot = ns;
        w->cap = nc;
    }
    size_t j = h & (w->cap - 1);
    for (; w->slot[j]; j = (j + 1) & (w->cap - 1))
        if (w->slot[j] == h) return true;
    w->slot[j] = h;
    w->n++;
    return false;
}

static slm_status keep_form(const slm_tokenizer *t, keeper *k, const char *s, size_t len) {
    int32_t *ids = NULL;
    size_t n = 0;
    slm_status st = tok_encode(t, s, len, false, false, &ids, &n);
    for (size_t j = 0; j < n && !st; j++) st = keep_ancestry(k, ids[j]);
    free(ids);
    return st;
}

static slm_status keep_word_forms(const slm_tokenizer *t, const corpus *c, keeper *k) {
    word_set seen = { 0 };
    char buf[130];
    slm_status st = SLM_OK;
    for (size_t i = 0; i < c->n && !st; i++) {
        const char *x = c->v[i].text;
        size_t len = c->v[i].len, a = 0;
        if (c->v[i].special) continue;   /* chat renderings: their words are in the plain texts too */
        while (a < len && !st) {
            while (a < len && (x[a] == ' ' || x[a] == '\n' || x[a] == '\t' || x[a] == '\r')) a++;
            size_t b = a;
            while (b < len && !(x[b] == ' ' || x[b] == '\n' || x[b] == '\t' || x[b] == '\r')) b++;
            size_t wl = b - a;
            if (wl > 0 && wl < sizeof buf - 1 && !word_seen(&seen, x + a, wl)) {
                buf[0] = ' ';
                memcpy(buf + 1, x + a, wl);
                st = keep_form(t, k, buf + 1, wl);
                if (!st) st = keep_form(t, k, buf, wl + 1);
            }
            a = b;
        }
    }
    free(seen.slot);
    return st;
}

slm_status slm_trim_vocab(const char *in_path, const char *out_path, const slm_trim_vocab_params *p,
                          slm_trim_vocab_stats *stats) {
    if (!in_path || !out_path || !p) return slm_fail(SLM_ERR_INVALID_ARG, "slm_trim_vocab: NULL argument");
    if ((p->n_texts && !p->texts) || (p->n_jsonl && !p->jsonl) || p->keep_top < 0)
        return slm_fail(SLM_ERR_INVALID_ARG, "slm_trim_vocab: bad parameters");
    slm_model *m = NULL;
    slm_status st = slm_model_open(in_path, &m);
    if (st) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", slm_last_error());
        return slm_fail(st, "cannot read %s: %s", in_path, msg);
    }
    const gguf_file *f = m->gguf;
    const slm_tokenizer *t = m->tok;
    int32_t nv = t->n_vocab;
    corpus c = { 0 };
    keeper k = { .t = t, .keep = calloc((size_t)nv, 1), .done = calloc((size_t)nv, 1) };
    id_map mp = { malloc((size_t)nv * sizeof(int32_t)), 0, malloc((size_t)nv * sizeof(int32_t)) };
    uint8_t *bad = NULL;
    slm_trim_vocab_stats s = { .n_vocab_in = nv };
    if (!k.keep || !k.done || !mp.kept || !mp.new_id) st = nomem();

    /* what any text may need */
    for (int32_t i = 0; i < nv && !st; i++) {
        int ty = t->type[i];
        size_t n;
        const char *txt = tok_text(t, i, &n);
        if (ty == TOK_CONTROL || ty == TOK_USER_DEFINED || ty == TOK_UNKNOWN || ty == TOK_BYTE) k.keep[i] = 1;
        if (t->bpe && n > 0 && (size_t)(utf8_lead_len((unsigned char)txt[0]) ? utf8_lead_len((unsigned char)txt[0]) : 1) == n)
            k.keep[i] = 1;  /* byte-level alphabet: single characters */
        if (i < p->keep_top) k.keep[i] = 1;
    }
    for (uint64_t i = 0; i < f->n_kv && !st; i++) {
        const gguf_kv *kv = &f->kv[i];
        if (!is_special_id_key(kv->key)) continue;
        int64_t id = kv->type == GGUF_T_I32 ? kv->num.i : (int64_t)kv->num.u;
        if (id >= 0 && id < nv) k.keep[id] = 1;
    }
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] >= 0 && t->eog[i] < nv) k.keep[t->eog[i]] = 1;

    /* the corpus */
    for (size_t i = 0; i < p->n_texts && !st; i++)
        if (p->texts[i]) st = corpus_add(&c, p->texts[i], strlen(p->texts[i]), false);
    for (size_t i = 0; i < p->n_jsonl && !st; i++)
        if (p->jsonl[i]) st = add_jsonl(&c, m, p->jsonl[i], strlen(p->jsonl[i]), i);
    if (!st && c.n == 0) st = slm_fail(SLM_ERR_INVALID_ARG, "trim-vocab: the corpus is empty");
    if (!st) st = encode_corpus(t, &c, &k, &s.n_tokens);
    if (!st && !p->no_word_forms) st = keep_word_forms(t, &c, &k);
    s.n_texts = c.n;

    /* check, widen where needed, until the corpus tokenizes identically */
    if (!st && !(bad = calloc(c.n, 1))) st = nomem();
    for (int round = 1; !st; round++) {
        build_map(k.keep, nv, &mp);
        long n_bad = check_corpus(f, t, &mp, &c, bad, &st);
        s.n_rounds = round;
        if (st || n_bad == 0) break;
        int32_t before = mp.n_kept;
        for (size_t i = 0; i < c.n && !st; i++)
            for (size_t j = 0; bad[i] && j < c.v[i].n_tok && !st; j++)
                st = keep_substrings(&k, c.toks[c.v[i].tok_off + j]);
        int32_t after = 0;
        for (int32_t i = 0; i < nv; i++) after += k.keep[i];
        if (!st && (after == before || round == TRIM_MAX_ROUNDS))
            st = slm_fail(SLM_ERR_UNSUPPORTED,
                          "trim-vocab: %ld corpus texts still tokenize differently with the trimmed vocabulary",
                          n_bad);
    }
    s.n_vocab_out = mp.n_kept;
    s.bytes_in = f->size;
    if (!st) st = write_model(f, t, &mp, out_path, &s.bytes_out);
    if (!st && stats) *stats = s;
    free(bad);
    free(k.keep);
    free(k.done);
    free(k.sym_start);
    free(k.sym_len);
    free(mp.kept);
    free(mp.new_id);
    corpus_free(&c);
    slm_model_close(m);
    return st;
}
