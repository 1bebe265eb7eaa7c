/* Recursive-descent JSON reader (see json.h). */
#include "eval/json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

/* Allocations are chained blocks, so nothing is freed until json_free. */
typedef struct arena_block { struct arena_block *next; size_t used, cap; unsigned char data[]; } arena_block;

struct json_doc {
    arena_block *blocks;
    json_val root;
};

typedef struct {
    const char *s;
    size_t len, pos;
    json_doc *doc;
    char *err;
    size_t err_cap;
    bool failed;
} parser;

static void *arena_alloc(json_doc *d, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!d->blocks || d->blocks->cap - d->blocks->used < n) {
        size_t cap = n > 4096 ? n : 4096;
        arena_block *b = malloc(sizeof *b + cap);
        if (!b) return NULL;
        b->next = d->blocks;
        b->used = 0;
        b->cap = cap;
        d->blocks = b;
    }
    void *p = d->blocks->data + d->blocks->used;
    d->blocks->used += n;
    return p;
}

static bool fail(parser *p, const char *fmt, ...) {
    if (!p->failed) {
        p->failed = true;
        char msg[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(p->err, p->err_cap, "%s at byte %zu", msg, p->pos + 1);
    }
    return false;
}

static void skip_ws(parser *p) {
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
                               p->s[p->pos] == '\r'))
        p->pos++;
}

static bool literal(parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n)) return fail(p, "unexpected character");
    p->pos += n;
    return true;
}

static int hex4(parser *p) {
    if (p->len - p->pos < 4) return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos + i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    p->pos += 4;
    return v;
}

/* At the opening quote. Decoded text is never longer than the source. */
static bool parse_string(parser *p, char **out, size_t *out_len) {
    p->pos++;
    size_t start = p->pos;
    while (p->pos < p->len && p->s[p->pos] != '"') p->pos += p->s[p->pos] == '\\' ? 2 : 1;
    if (p->pos >= p->len) { p->pos = start; return fail(p, "unterminated string"); }
    size_t end = p->pos;
    char *o = arena_alloc(p->doc, end - start + 1);
    if (!o) return fail(p, "out of memory");
    size_t n = 0;
    for (p->pos = start; p->pos < end;) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) return fail(p, "control character in string");
        if (c != '\\') { o[n++] = (char)c; p->pos++; continue; }
        char e = p->s[++p->pos];
        p->pos++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e && simple) { o[n++] = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"]; continue; }
        if (e != 'u') { p->pos--; return fail(p, "bad escape"); }
        int hi = hex4(p);
        if (hi < 0) return fail(p, "bad \\u escape");
        uint32_t cp = (uint32_t)hi;
        if (hi >= 0xD800 && hi < 0xDC00) {
            int lo = -1;
            if (p->pos + 1 < end && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
                p->pos += 2;
                lo = hex4(p);
            }
            if (lo < 0xDC00 || lo >= 0xE000) return fail(p, "unpaired surrogate");
            cp = 0x10000 + ((uint32_t)(hi - 0xD800) << 10) + (uint32_t)(lo - 0xDC00);
        } else if (hi >= 0xDC00 && hi < 0xE000) {
            return fail(p, "unpaired surrogate");
        }
        if (cp == 0) return fail(p, "\\u0000 in string");
        n += (size_t)utf8_encode(cp, o + n);   /* 6 source bytes give at most 3; 12 at most 4 */
    }
    p->pos = end + 1;
    o[n] = 0;
    if (!utf8_validate(o, n, NULL)) { p->pos = start; return fail(p, "string is not valid UTF-8"); }
    *out = o;
    *out_len = n;
    return true;
}

static bool parse_number(parser *p, double *out) {
    size_t start = p->pos;
    const char *s = p->s;
    if (p->pos < p->len && s[p->pos] == '-') p->pos++;
    if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9') return fail(p, "bad number");
    if (s[p->pos] == '0') p->pos++;
    else while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9') p->pos++;
    if (p->pos < p->len && s[p->pos] == '.') {
        p->pos++;
        if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9') return fail(p, "bad number");
        while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9') p->pos++;
    }
    if (p->pos < p->len && (s[p->pos] == 'e' || s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (s[p->pos] == '+' || s[p->pos] == '-')) p->pos++;
        if (p->pos >= p->len || s[p->pos] < '0' || s[p->pos] > '9') return fail(p, "bad number");
        while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9') p->pos++;
    }
    char buf[64];
    size_t n = p->pos - start;
    if (n >= sizeof buf) return fail(p, "number too long");
    memcpy(buf, s + start, n);
    buf[n] = 0;
    *out = strtod(buf, NULL);
    if (!isfinite(*out)) return fail(p, "number out of range");
    return true;
}

/* Growable list of values during parsing; copied into the arena at the end. */
typedef struct { json_val *v; char **k; size_t n, cap; } vlist;

static bool vlist_push(vlist *l, const json_val *v, char *key) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        json_val *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) return false;
        l->v = nv;
        char **nk = realloc(l->k, cap * sizeof *nk);
        if (!nk) return false;
        l->k = nk;
        l->cap = cap;
    }
    l->v[l->n] = *v;
    l->k[l->n++] = key;
    return true;
}

static bool parse_value(parser *p, json_val *v, int depth);

static bool parse_container(parser *p, json_val *v, int depth, bool is_obj) {
    char close = is_obj ? '}' : ']';
    if (depth >= JSON_MAX_DEPTH) return fail(p, "nesting deeper than %d", JSON_MAX_DEPTH);
    p->pos++;
    vlist l = { 0 };
    bool ok = true;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) p->pos++;
    else {
        for (;;) {
            char *key = NULL;
            size_t klen;
            skip_ws(p);
            if (is_obj) {
                if (p->pos >= p->len || p->s[p->pos] != '"') { ok = fail(p, "expected a key"); break; }
                if (!(ok = parse_string(p, &key, &klen))) break;
                skip_ws(p);
                if (p->pos >= p->len || p->s[p->pos] != ':') { ok = fail(p, "expected ':'"); break; }
                p->pos++;
            }
            json_val item;
            if (!(ok = parse_value(p, &item, depth + 1))) break;
            if (!vlist_push(&l, &item, key)) { ok = fail(p, "out of memory"); break; }
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ',') { p->pos++; continue; }
            if (p->pos < p->len && p->s[p->pos] == close) { p->pos++; break; }
            ok = fail(p, "expected ',' or '%c'", close);
            break;
        }
    }
    if (ok) {
        memset(v, 0, sizeof *v);
        v->kind = is_obj ? JSON_OBJ : JSON_ARR;
        v->n = l.n;
        if (l.n) {
            v->items = arena_alloc(p->doc, l.n * sizeof *v->items);
            v->keys = is_obj ? arena_alloc(p->doc, l.n * sizeof *v->keys) : NULL;
            if (!v->items || (is_obj && !v->keys)) ok = fail(p, "out of memory");
            else {
                memcpy(v->items, l.v, l.n * sizeof *v->items);
                if (is_obj) memcpy(v->keys, l.k, l.n * sizeof *v->keys);
            }
        }
    }
    free(l.v);
    free(l.k);
    return ok;
}

static bool parse_value(parser *p, json_val *v, int depth) {
    memset(v, 0, sizeof *v);
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "unexpected end of line");
    switch (p->s[p->pos]) {
    case '{': return parse_container(p, v, depth, true);
    case '[': return parse_container(p, v, depth, false);
    case '"': v->kind = JSON_STR; return parse_string(p, &v->str, &v->len);
    case 't': v->kind = JSON_BOOL; v->b = true; return literal(p, "true");
    case 'f': v->kind = JSON_BOOL; return literal(p, "false");
    case 'n': v->kind = JSON_NULL; return literal(p, "null");
    default: v->kind = JSON_NUM; return parse_number(p, &v->num);
    }
}

json_doc *ejson_parse(const char *text, size_t len, char *err, size_t err_cap) {
    json_doc *d = calloc(1, sizeof *d);
    if (!d) { snprintf(err, err_cap, "out of memory"); return NULL; }
    parser p = { text, len, 0, d, err, err_cap, false };
    bool ok = parse_value(&p, &d->root, 0);
    if (ok) {
        skip_ws(&p);
        if (p.pos != len) ok = fail(&p, "text after the value");
    }
    if (!ok) { ejson_free(d); return NULL; }
    return d;
}

const json_val *ejson_root(const json_doc *d) { return &d->root; }

void ejson_free(json_doc *d) {
    if (!d) return;
    for (arena_block *b = d->blocks, *next; b; b = next) { next = b->next; free(b); }
    free(d);
}

const json_val *ejson_get(const json_val *obj, const char *key) {
    if (!obj || obj->kind != JSON_OBJ) return NULL;
    for (size_t i = obj->n; i-- > 0;)   /* the last of duplicate keys wins */
        if (!strcmp(obj->keys[i], key)) return &obj->items[i];
    return NULL;
}
