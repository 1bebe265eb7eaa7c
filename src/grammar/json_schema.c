/* JSON Schema -> GBNF. Every schema node becomes a rule; the JSON lexical
 * rules come once at the end. Keywords that constrain and that this
 * converter cannot express are errors naming the keyword and its place (a
 * grammar that silently ignored one would let invalid documents through);
 * annotations (title, description, ...) are ignored. Objects keep the
 * declared property order; properties not declared are allowed only where
 * additionalProperties says so (true or a schema), and then with names that
 * differ from the declared ones. Whitespace between tokens is bounded, and
 * no whitespace follows the root value, so the end is never ambiguous. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "grammar/json_schema.h"
#include "eval/json.h"
#include "slm.h"

typedef struct {
    char *s;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        while (b->n + n + 1 > nc) nc *= 2;
        char *ns = realloc(b->s, nc);
        if (!ns) { b->oom = true; return; }
        b->s = ns;
        b->cap = nc;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

static void sb_fmt(sbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if ((size_t)k < sizeof tmp) { sb_put(b, tmp, (size_t)k); return; }
    char *big = malloc((size_t)k + 1);
    if (!big) { b->oom = true; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)k + 1, fmt, ap);
    va_end(ap);
    sb_put(b, big, (size_t)k);
    free(big);
}

#define MAX_REFS 1024
#define MAX_NODES 20000

typedef struct {
    sbuf out;
    const json_val *root;
    int n_rules;
    const char *ref_path[MAX_REFS];
    int ref_rule[MAX_REFS];
    int n_refs;
    bool failed;
    slm_status st;
    int depth, n_nodes;
} conv;

static bool cfail(conv *c, slm_status st, const char *path, const char *fmt, ...) {
    if (c->failed) return false;
    c->failed = true;
    c->st = st;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    slm_fail(st, "JSON schema: %s (at %s)", msg, path[0] ? path : "#");
    return false;
}

/* ---- literals ------------------------------------------------------------------ */

/* Appends the JSON text of v as a GBNF string literal (compact JSON). */
static void put_json_text(sbuf *b, const json_val *v);

/* JSON text of a string value, escaped for JSON, as it goes inside a literal */
static void put_json_string(sbuf *b, const char *s, size_t n) {
    sb_put(b, "\\\"", 2);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"') sb_put(b, "\\\\\\\"", 4);       /* JSON \"  -> GBNF \\\" */
        else if (ch == '\\') sb_put(b, "\\\\\\\\", 4); /* JSON \\  -> GBNF \\\\ */
        else if (ch < 0x20 || ch == 0x7F) sb_fmt(b, "\\\\u%04X", ch);
        else sb_put(b, (const char *)&ch, 1);
    }
    sb_put(b, "\\\"", 2);
}

static void put_json_text(sbuf *b, const json_val *v) {
    switch (v->kind) {
    case JSON_NULL: sb_put(b, "null", 4); break;
    case JSON_BOOL: sb_put(b, v->b ? "true" : "false", v->b ? 4 : 5); break;
    case JSON_NUM: {
        char tmp[64];
        if (v->num == floor(v->num) && fabs(v->num) < 1e15) snprintf(tmp, sizeof tmp, "%.0f", v->num);
        else snprintf(tmp, sizeof tmp, "%.17g", v->num);
        sb_put(b, tmp, strlen(tmp));
        break;
    }
    case JSON_STR: put_json_string(b, v->str, v->len); break;
    case JSON_ARR:
        sb_put(b, "[", 1);
        for (size_t i = 0; i < v->n; i++) { if (i) sb_put(b, ",", 1); put_json_text(b, &v->items[i]); }
        sb_put(b, "]", 1);
        break;
    case JSON_OBJ:
        sb_put(b, "{", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i) sb_put(b, ",", 1);
            put_json_string(b, v->keys[i], strlen(v->keys[i]));
            sb_put(b, ":", 1);
            put_json_text(b, &v->items[i]);
        }
        sb_put(b, "}", 1);
        break;
    }
}

static void put_literal_value(sbuf *b, const json_val *v) {
    sb_put(b, "\"", 1);
    put_json_text(b, v);
    sb_put(b, "\"", 1);
}

/* ---- keywords ----------------------------------------------------------------- */

static const char *const annotations[] = {"title", "description", "$schema", "$id", "$comment", "examples",
    "default", "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "$anchor", NULL};
static const char *const supported[] = {"type", "properties", "required", "additionalProperties", "enum",
    "const", "items", "minItems", "maxItems", "anyOf", "oneOf", "$ref", "minLength", "maxLength", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "format", NULL};

static bool in_list(const char *k, const char *const *l) {
    for (int i = 0; l[i]; i++) if (!strcmp(k, l[i])) return true;
    return false;
}

static bool has_constraints(const json_val *s, const char *except1, const char *except2) {
    for (size_t i = 0; i < s->n; i++)
        if (!in_list(s->keys[i], annotations) && strcmp(s->keys[i], except1) && strcmp(s->keys[i], except2)) return true;
    return false;
}

static int gen(conv *c, const json_val *s, const char *path);

static int new_rule(conv *c) { return c->n_rules++; }

/* ---- integers ----------------------------------------------------------------- */

static bool all_digit(const char *s, int n, char d) {
    for (int i = 0; i < n; i++) if (s[i] != d) return false;
    return true;
}

/* L-digit numbers from x to y (digit strings of equal length, x <= y). The
 * middle digits of a split are a closed form, and a side whose rest spans
 * every digit string joins it, so the output grows with L^2, not 2^L. */
static void same_len(sbuf *b, const char *x, const char *y, int L) {
    if (L == 0) { sb_put(b, "\"\"", 2); return; }
    if (!memcmp(x, y, (size_t)L)) { sb_put(b, "\"", 1); sb_put(b, x, (size_t)L); sb_put(b, "\"", 1); return; }
    bool lo_full = all_digit(x + 1, L - 1, '0'), hi_full = all_digit(y + 1, L - 1, '9');
    if (x[0] == y[0]) {
        sb_fmt(b, "\"%c\" (", x[0]);
        same_len(b, x + 1, y + 1, L - 1);
        sb_put(b, ")", 1);
        return;
    }
    char nines[24], zeros[24];
    memset(nines, '9', sizeof nines);
    memset(zeros, '0', sizeof zeros);
    char mid_lo = lo_full ? x[0] : (char)(x[0] + 1), mid_hi = hi_full ? y[0] : (char)(y[0] - 1);
    bool first = true;
    sb_put(b, "(", 1);
    if (!lo_full) {
        sb_fmt(b, "\"%c\" (", x[0]);
        same_len(b, x + 1, nines, L - 1);
        sb_put(b, ")", 1);
        first = false;
    }
    if (mid_lo <= mid_hi) {
        sb_fmt(b, "%s[%c-%c]", first ? "" : " | ", mid_lo, mid_hi);
        if (L > 1) sb_fmt(b, " [0-9]{%d}", L - 1);
        first = false;
    }
    if (!hi_full) {
        sb_fmt(b, "%s\"%c\" (", first ? "" : " | ", y[0]);
        same_len(b, zeros, y + 1, L - 1);
        sb_put(b, ")", 1);
    }
    sb_put(b, ")", 1);
}

#define INT_DIGITS 15
static const double int_limit = 1e15; /* bounds beyond +-(10^15 - 1) are not expressed */

/* Non-negative integers from a to b (b < 0: no upper bound). */
static void uint_range(sbuf *b, long long a, long long hi) {
    char xs[24], ys[24];
    int la = snprintf(xs, sizeof xs, "%lld", a);
    int lb = hi < 0 ? INT_DIGITS : snprintf(ys, sizeof ys, "%lld", hi);
    sb_put(b, "(", 1);
    bool first = true;
    for (int L = la; L <= lb; L++) {
        char lo_s[24], hi_s[24];
        if (L == la) memcpy(lo_s, xs, (size_t)L);
        else { lo_s[0] = '1'; memset(lo_s + 1, '0', (size_t)L - 1); }
        if (hi >= 0 && L == lb) memcpy(hi_s, ys, (size_t)L);
        else memset(hi_s, '9', (size_t)L);
        if (!first) sb_put(b, " | ", 3);
        first = false;
        same_len(b, lo_s, hi_s, L);
    }
    sb_put(b, ")", 1);
}

static bool get_num(const json_val *s, const char *k, double *v) {
    const json_val *x = ejson_get(s, k);
    if (!x || x->kind != JSON_NUM) return false;
    *v = x->num;
    return true;
}

/* Integer bounds from minimum/maximum/exclusive* (draft 4 booleans too). */
static bool int_bounds(conv *c, const json_val *s, const char *path, bool *has_lo, long long *lo, bool *has_hi,
                       long long *hi) {
    double v;
    *has_lo = *has_hi = false;
    const json_val *emin = ejson_get(s, "exclusiveMinimum"), *emax = ejson_get(s, "exclusiveMaximum");
    for (int k = 0; k < 2; k++) {
        const json_val *ex = k ? emax : emin;
        if (ex && ex->kind != JSON_NUM && ex->kind != JSON_BOOL)
            return cfail(c, SLM_ERR_FORMAT, path, "%s must be a number", k ? "exclusiveMaximum" : "exclusiveMinimum");
    }
    double lo_d = -INFINITY, hi_d = INFINITY;
    if (get_num(s, "minimum", &v)) {
        double b = ceil(v);
        if (emin && emin->kind == JSON_BOOL && emin->b && b == v) b += 1;
        lo_d = b;
    }
    if (emin && emin->kind == JSON_NUM) { double b = floor(emin->num) + 1; if (b > lo_d) lo_d = b; }
    if (get_num(s, "maximum", &v)) {
        double b = floor(v);
        if (emax && emax->kind == JSON_BOOL && emax->b && b == v) b -= 1;
        hi_d = b;
    }
    if (emax && emax->kind == JSON_NUM) { double b = ceil(emax->num) - 1; if (b < hi_d) hi_d = b; }
    if (lo_d > hi_d) return cfail(c, SLM_ERR_INVALID_ARG, path, "no integer lies between the minimum and the maximum");
    if (isfinite(lo_d)) {
        if (fabs(lo_d) >= int_limit) return cfail(c, SLM_ERR_UNSUPPORTED, path, "integer bound %g is too large to express (limit 10^15)", lo_d);
        *has_lo = true;
        *lo = (long long)lo_d;
    }
    if (isfinite(hi_d)) {
        if (fabs(hi_d) >= int_limit) return cfail(c, SLM_ERR_UNSUPPORTED, path, "integer bound %g is too large to express (limit 10^15)", hi_d);
        *has_hi = true;
        *hi = (long long)hi_d;
    }
    return true;
}

static void int_expr(sbuf *b, bool has_lo, long long lo, bool has_hi, long long hi) {
    bool first = true;
    sb_put(b, "(", 1);
    /* negative part: -y with y in [max(1, -hi), -lo] */
    if (!has_lo || lo < 0) {
        long long ylo = has_hi && hi < 0 ? -hi : 1;
        if (!has_lo || -lo >= ylo) {
            sb_put(b, "\"-\" ", 4);
            uint_range(b, ylo, has_lo ? -lo : -1);
            first = false;
        }
    }
    /* non-negative part: [max(0, lo), hi] */
    if (!has_hi || hi >= 0) {
        long long a = has_lo && lo > 0 ? lo : 0;
        if (!first) sb_put(b, " | ", 3);
        uint_range(b, a, has_hi ? hi : -1);
    }
    sb_put(b, ")", 1);
}

/* ---- the types ---------------------------------------------------------------- */

static bool get_count(conv *c, const json_val *s, const char *k, const char *path, long long *v) {
    const json_val *x = ejson_get(s, k);
    if (!x) return false;
    if (x->kind != JSON_NUM || x->num < 0 || x->num != floor(x->num) || x->num > 100000) {
        cfail(c, SLM_ERR_FORMAT, path, "%s must be a non-negative integer (at most 100000)", k);
        return false;
    }
    *v = (long long)x->num;
    return true;
}

static bool gen_string(conv *c, const json_val *s, const char *path, sbuf *e) {
    const json_val *f = ejson_get(s, "format");
    long long mn = 0, mx = -1;
    bool has_mn = get_count(c, s, "minLength", path, &mn), has_mx = get_count(c, s, "maxLength", path, &mx);
    if (c->failed) return false;
    if (f) {
        if (f->kind != JSON_STR) return cfail(c, SLM_ERR_FORMAT, path, "format must be a string");
        const char *rule = !strcmp(f->str, "date") ? "jdate" : !strcmp(f->str, "time") ? "jtime" :
                           !strcmp(f->str, "date-time") ? "jdatetime" : !strcmp(f->str, "uuid") ? "juuid" : NULL;
        if (!rule) return cfail(c, SLM_ERR_UNSUPPORTED, path, "string format '%s' is not supported (date, time, date-time, uuid are)", f->str);
        if (has_mn || has_mx) return cfail(c, SLM_ERR_UNSUPPORTED, path, "minLength/maxLength together with format are not supported");
        sb_fmt(e, "\"\\\"\" %s \"\\\"\"", rule);
        return true;
    }
    if (has_mx && mx < mn) return cfail(c, SLM_ERR_INVALID_ARG, path, "maxLength %lld is below minLength %lld", mx, mn);
    if (!has_mx && mn == 0) sb_put(e, "jstring", 7);
    else if (!has_mx) sb_fmt(e, "\"\\\"\" jchar{%lld,} \"\\\"\"", mn);
    else sb_fmt(e, "\"\\\"\" jchar{%lld,%lld} \"\\\"\"", mn, mx);
    return true;
}

static bool gen_number(conv *c, const json_val *s, const char *path, sbuf *e, bool integer) {
    bool bounded = ejson_get(s, "minimum") || ejson_get(s, "maximum") || ejson_get(s, "exclusiveMinimum") ||
                   ejson_get(s, "exclusiveMaximum");
    if (!bounded) { sb_put(e, integer ? "jint" : "jnumber", integer ? 4 : 7); return true; }
    if (!integer) {
        double v;
        const json_val *other = ejson_get(s, "maximum") ? ejson_get(s, "maximum") : ejson_get(s, "exclusiveMaximum");
        if (!other && !ejson_get(s, "exclusiveMinimum") && get_num(s, "minimum", &v) && v == 0) {
            sb_put(e, "jnumnonneg", 10);
            return true;
        }
        return cfail(c, SLM_ERR_UNSUPPORTED, path,
                     "minimum/maximum on type number are not expressible (only minimum 0 is); use type integer for ranges");
    }
    bool has_lo, has_hi;
    long long lo = 0, hi = 0;
    if (!int_bounds(c, s, path, &has_lo, &lo, &has_hi, &hi)) return false;
    int_expr(e, has_lo, lo, has_hi, hi);
    return true;
}

static bool gen_array(conv *c, const json_val *s, const char *path, sbuf *e) {
    const json_val *items = ejson_get(s, "items");
    char sub[600];
    int item_rule = -1;
    if (items) {
        if (items->kind == JSON_ARR) return cfail(c, SLM_ERR_UNSUPPORTED, path, "items as an array (tuples) is not supported");
        snprintf(sub, sizeof sub, "%.500s/items", path);
        item_rule = gen(c, items, sub);
        if (item_rule < 0) return false;
    }
    long long mn = 0, mx = -1;
    get_count(c, s, "minItems", path, &mn);
    bool has_mx = get_count(c, s, "maxItems", path, &mx);
    if (c->failed) return false;
    if (has_mx && mx < mn) return cfail(c, SLM_ERR_INVALID_ARG, path, "maxItems %lld is below minItems %lld", mx, mn);
    char it[32];
    if (item_rule >= 0) snprintf(it, sizeof it, "s%d", item_rule);
    else snprintf(it, sizeof it, "jvalue");
    if (has_mx && mx == 0) { sb_put(e, "\"[\" ws \"]\"", 10); return true; }
    char rep[64];
    long long rmn = mn > 0 ? mn - 1 : 0;
    if (has_mx) snprintf(rep, sizeof rep, "{%lld,%lld}", rmn, mx - 1);
    else snprintf(rep, sizeof rep, "{%lld,}", rmn);
    if (mn == 0) sb_fmt(e, "\"[\" ws ( %s ws ( \",\" ws %s ws )%s )? \"]\"", it, it, rep);
    else sb_fmt(e, "\"[\" ws %s ws ( \",\" ws %s ws )%s \"]\"", it, it, rep);
    return true;
}

/* Keys of members not declared: a JSON string without escapes (so that its
 * text is its value) that is none of the declared names. A trie over the
 * names' code points: at a node the key may stop (unless a name ends there),
 * go on with a character no name continues with (then anything may follow),
 * or follow a child. Returns the rule of the key's text. */
typedef struct { uint32_t *cp; size_t n; } cps;

static int key_trie(conv *c, cps *names, size_t nn, size_t depth) {
    int r = new_rule(c);
    bool terminal = false;
    for (size_t i = 0; i < nn; i++) terminal |= names[i].n == depth;
    sbuf body = {0};
    if (!terminal) sb_put(&body, "\"\" | ", 5);
    { static const char cls[] = "[^\"\\\\\\x00-\\x1F\\x7F"; sb_put(&body, cls, sizeof cls - 1); }
    for (size_t i = 0; i < nn; i++)
        if (names[i].n > depth && (i == 0 || names[i - 1].n <= depth || names[i - 1].cp[depth] != names[i].cp[depth]))
            sb_fmt(&body, "\\U%08X", (unsigned)names[i].cp[depth]);
    sb_put(&body, "] jkeychar*", 11);
    for (size_t i = 0; i < nn && !c->failed;) {
        if (names[i].n <= depth) { i++; continue; }
        size_t j = i;
        while (j < nn && names[j].n > depth && names[j].cp[depth] == names[i].cp[depth]) j++;
        int child = key_trie(c, names + i, j - i, depth + 1);
        sb_fmt(&body, " | [\\U%08X] s%d", (unsigned)names[i].cp[depth], child);
        i = j;
    }
    if (body.oom) c->out.oom = true;
    else sb_fmt(&c->out, "s%d ::= %s\n", r, body.s);
    free(body.s);
    return r;
}

static int cmp_cps(const void *a, const void *b) {
    const cps *x = a, *y = b;
    for (size_t i = 0; i < x->n && i < y->n; i++)
        if (x->cp[i] != y->cp[i]) return x->cp[i] < y->cp[i] ? -1 : 1;
    return (x->n > y->n) - (x->n < y->n);
}

static int extra_key_rule(conv *c, const char **names, size_t n) {
    cps *v = calloc(n + 1, sizeof *v);
    if (!v) { c->out.oom = true; return -1; }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        v[i].cp = malloc((len + 1) * sizeof *v[i].cp);
        if (!v[i].cp) { c->out.oom = true; continue; }
        const unsigned char *p = (const unsigned char *)names[i];
        size_t k = 0;
        for (size_t j = 0; j < len;) { /* the reader guarantees valid UTF-8 */
            uint32_t cp = p[j];
            int l = cp < 0x80 ? 1 : cp < 0xE0 ? 2 : cp < 0xF0 ? 3 : 4;
            if (l > 1) cp &= 0x3Fu >> (l - 1);
            for (int t = 1; t < l && j + (size_t)t < len; t++) cp = cp << 6 | (p[j + (size_t)t] & 0x3Fu);
            v[i].cp[k++] = cp;
            j += (size_t)l;
        }
        v[i].n = k;
    }
    qsort(v, n, sizeof *v, cmp_cps);
    int r = c->out.oom ? -1 : key_trie(c, v, n, 0);
    for (size_t i = 0; i < n; i++) free(v[i].cp);
    free(v);
    return r;
}

static bool gen_object(conv *c, const json_val *s, const char *path, sbuf *e) {
    if (ejson_get(s, "additionalProperties")) {
        const json_val *x = ejson_get(s, "additionalProperties");
        if (x->kind != JSON_BOOL && x->kind != JSON_OBJ)
            return cfail(c, SLM_ERR_FORMAT, path, "additionalProperties must be a boolean or a schema");
    }
    const json_val *props = ejson_get(s, "properties"), *req = ejson_get(s, "required"),
                   *add = ejson_get(s, "additionalProperties");
    if (props && props->kind != JSON_OBJ) return cfail(c, SLM_ERR_FORMAT, path, "properties must be an object");
    if (req && req->kind != JSON_ARR) return cfail(c, SLM_ERR_FORMAT, path, "required must be an array");
    size_t np = props ? props->n : 0, nreq = req ? req->n : 0;
    /* the members: declared properties, then required names not declared */
    size_t n = np + nreq;
    const char **names = calloc(n + 1, sizeof *names);
    int *rules = calloc(n + 1, sizeof *rules);
    bool *isreq = calloc(n + 1, sizeof *isreq);
    if (!names || !rules || !isreq) { free(names); free(rules); free(isreq); return cfail(c, SLM_ERR_NOMEM, path, "out of memory"); }
    size_t k = 0;
    bool ok = true;
    /* Members not declared in properties are generated only when properties
     * declares none (a map such as {"type":"object"} or {"additionalProperties":
     * {"type":"integer"}}). With declared properties the grammar keeps to them
     * even where additionalProperties allows more: every document is still
     * valid, and a small model cannot wander into an endless list of keys. */
    bool add_allowed = np == 0 && !(add && add->kind == JSON_BOOL && !add->b);
    for (size_t i = 0; i < np && ok; i++) {
        char sub[600];
        snprintf(sub, sizeof sub, "%.400s/properties/%.150s", path, props->keys[i]);
        names[k] = props->keys[i];
        rules[k] = gen(c, &props->items[i], sub);
        ok = rules[k] >= 0;
        k++;
    }
    for (size_t i = 0; i < nreq && ok; i++) {
        const json_val *r = &req->items[i];
        if (r->kind != JSON_STR) { ok = cfail(c, SLM_ERR_FORMAT, path, "required must list strings"); break; }
        size_t j = 0;
        while (j < k && strcmp(names[j], r->str)) j++;
        if (j < k) { isreq[j] = true; continue; }
        if (add && add->kind == JSON_BOOL && !add->b) {
            ok = cfail(c, SLM_ERR_INVALID_ARG, path, "property '%s' is required but not in properties while additionalProperties is false", r->str);
            break;
        }
        names[k] = r->str;
        isreq[k] = true;
        rules[k] = add && add->kind == JSON_OBJ ? gen(c, add, path) : -1; /* -1: any value */
        ok = !(add && add->kind == JSON_OBJ) || rules[k] >= 0;
        k++;
    }
    int extra_rule = -1;
    if (ok && add_allowed) {
        int val = -1;
        if (add && add->kind == JSON_OBJ) {
            char sub[600];
            snprintf(sub, sizeof sub, "%.500s/additionalProperties", path);
            val = gen(c, add, sub);
            ok = val >= 0;
        } else if (add && add->kind != JSON_BOOL) ok = cfail(c, SLM_ERR_FORMAT, path, "additionalProperties must be a boolean or a schema");
        if (ok) {
            int kr = extra_key_rule(c, names, k);
            extra_rule = new_rule(c);
            if (val >= 0) sb_fmt(&c->out, "s%d ::= \"\\\"\" s%d \"\\\"\" ws \":\" ws s%d\n", extra_rule, kr, val);
            else sb_fmt(&c->out, "s%d ::= \"\\\"\" s%d \"\\\"\" ws \":\" ws jvalue\n", extra_rule, kr);
            ok = kr >= 0;
        }
    }
    if (ok) {
        /* members in order; first[i]: nothing written yet, rest[i]: after a member */
        int base = c->n_rules;
        c->n_rules += 2 * ((int)k + 1);
        for (int i = (int)k; i >= 0; i--) {
            int first = base + 2 * i, rest = base + 2 * i + 1;
            if (i == (int)k) {
                if (extra_rule >= 0) {
                    sb_fmt(&c->out, "s%d ::= ( s%d ws ( \",\" ws s%d ws )* )?\n", first, extra_rule, extra_rule);
                    sb_fmt(&c->out, "s%d ::= ( \",\" ws s%d ws )*\n", rest, extra_rule);
                } else {
                    sb_fmt(&c->out, "s%d ::= \"\"\n", first);
                    sb_fmt(&c->out, "s%d ::= \"\"\n", rest);
                }
                continue;
            }
            char member[700];
            sbuf mb = {0};
            put_json_string(&mb, names[i], strlen(names[i]));
            if (rules[i] >= 0) snprintf(member, sizeof member, "\"%.600s\" ws \":\" ws s%d ws", mb.oom ? "" : mb.s, rules[i]);
            else snprintf(member, sizeof member, "\"%.600s\" ws \":\" ws jvalue ws", mb.oom ? "" : mb.s);
            free(mb.s);
            if (isreq[i]) {
                sb_fmt(&c->out, "s%d ::= %s s%d\n", first, member, rest + 2);
                sb_fmt(&c->out, "s%d ::= \",\" ws %s s%d\n", rest, member, rest + 2);
            } else {
                sb_fmt(&c->out, "s%d ::= %s s%d | s%d\n", first, member, rest + 2, first + 2);
                sb_fmt(&c->out, "s%d ::= \",\" ws %s s%d | s%d\n", rest, member, rest + 2, rest + 2);
            }
        }
        sb_fmt(e, "\"{\" ws s%d \"}\"", base);
    }
    free(names);
    free(rules);
    free(isreq);
    return ok;
}


static bool gen_type(conv *c, const json_val *s, const char *type, const char *path, sbuf *e) {
    if (!strcmp(type, "null")) { sb_put(e, "\"null\"", 6); return true; }
    if (!strcmp(type, "boolean")) { sb_put(e, "( \"true\" | \"false\" )", 20); return true; }
    if (!strcmp(type, "string")) return gen_string(c, s, path, e);
    if (!strcmp(type, "integer")) return gen_number(c, s, path, e, true);
    if (!strcmp(type, "number")) return gen_number(c, s, path, e, false);
    if (!strcmp(type, "object")) return gen_object(c, s, path, e);
    if (!strcmp(type, "array")) return gen_array(c, s, path, e);
    return cfail(c, SLM_ERR_FORMAT, path, "unknown type '%s'", type);
}

/* Does the JSON value v have JSON Schema type t? */
static bool value_has_type(const json_val *v, const char *t) {
    switch (v->kind) {
    case JSON_NULL: return !strcmp(t, "null");
    case JSON_BOOL: return !strcmp(t, "boolean");
    case JSON_STR: return !strcmp(t, "string");
    case JSON_ARR: return !strcmp(t, "array");
    case JSON_OBJ: return !strcmp(t, "object");
    case JSON_NUM: return !strcmp(t, "number") || (!strcmp(t, "integer") && v->num == floor(v->num));
    }
    return false;
}

static bool type_allows(const json_val *type, const json_val *v) {
    if (!type) return true;
    if (type->kind == JSON_STR) return value_has_type(v, type->str);
    for (size_t i = 0; i < type->n; i++)
        if (type->items[i].kind == JSON_STR && value_has_type(v, type->items[i].str)) return true;
    return false;
}

/* Resolves a local reference "#/a/b" (JSON pointer, ~0 ~1 escapes). */
static const json_val *resolve(conv *c, const char *ref) {
    if (ref[0] != '#') return NULL;
    const json_val *v = c->root;
    const char *p = ref + 1;
    char seg[256];
    while (*p == '/') {
        p++;
        size_t k = 0;
        while (*p && *p != '/' && k + 1 < sizeof seg) {
            if (p[0] == '~' && p[1] == '0') { seg[k++] = '~'; p += 2; }
            else if (p[0] == '~' && p[1] == '1') { seg[k++] = '/'; p += 2; }
            else seg[k++] = *p++;
        }
        seg[k] = 0;
        if (!v || v->kind != JSON_OBJ) return NULL;
        v = ejson_get(v, seg);
    }
    return *p ? NULL : v;
}

/* Writes the rule for schema s; returns its number (rule "sN"), -1 on error. */
static int gen(conv *c, const json_val *s, const char *path) {
    if (c->failed) return -1;
    if (++c->n_nodes > MAX_NODES || c->depth > 64) {
        cfail(c, SLM_ERR_UNSUPPORTED, path, "schema too large or too deeply nested");
        return -1;
    }
    if (s->kind == JSON_BOOL) {
        if (!s->b) { cfail(c, SLM_ERR_INVALID_ARG, path, "the schema false admits no value"); return -1; }
        int r = new_rule(c);
        sb_fmt(&c->out, "s%d ::= jvalue\n", r);
        return r;
    }
    if (s->kind != JSON_OBJ) { cfail(c, SLM_ERR_FORMAT, path, "a schema must be an object or a boolean"); return -1; }
    for (size_t i = 0; i < s->n; i++)
        if (!in_list(s->keys[i], annotations) && !in_list(s->keys[i], supported)) {
            cfail(c, SLM_ERR_UNSUPPORTED, path, "keyword '%s' is not supported", s->keys[i]);
            return -1;
        }
    c->depth++;
    sbuf e = {0};
    int r = -1;
    const json_val *ref = ejson_get(s, "$ref"), *type = ejson_get(s, "type");
    const json_val *en = ejson_get(s, "enum"), *cn = ejson_get(s, "const");
    const json_val *any = ejson_get(s, "anyOf") ? ejson_get(s, "anyOf") : ejson_get(s, "oneOf");
    if (type && type->kind != JSON_STR && type->kind != JSON_ARR) { cfail(c, SLM_ERR_FORMAT, path, "type must be a string or an array"); goto out; }
    if (ref) {
        if (ref->kind != JSON_STR) { cfail(c, SLM_ERR_FORMAT, path, "$ref must be a string"); goto out; }
        if (has_constraints(s, "$ref", "$ref")) { cfail(c, SLM_ERR_UNSUPPORTED, path, "keywords next to $ref are not supported"); goto out; }
        for (int i = 0; i < c->n_refs; i++)
            if (!strcmp(c->ref_path[i], ref->str)) { r = c->ref_rule[i]; goto out; }
        const json_val *target = resolve(c, ref->str);
        if (!target) { cfail(c, SLM_ERR_UNSUPPORTED, path, "$ref '%s' is not a local reference that resolves (#/$defs/... or #/definitions/...)", ref->str); goto out; }
        if (c->n_refs >= MAX_REFS) { cfail(c, SLM_ERR_UNSUPPORTED, path, "too many $ref targets"); goto out; }
        r = new_rule(c);
        c->ref_path[c->n_refs] = ref->str;
        c->ref_rule[c->n_refs++] = r;
        int t = gen(c, target, ref->str);
        if (t < 0) { r = -1; goto out; }
        sb_fmt(&c->out, "s%d ::= s%d\n", r, t);
        goto out;
    }
    if (cn || en) {
        if (en && (en->kind != JSON_ARR || en->n == 0)) { cfail(c, SLM_ERR_FORMAT, path, "enum must be a non-empty array"); goto out; }
        bool first = true;
        size_t n = cn ? 1 : en->n;
        for (size_t i = 0; i < n; i++) {
            const json_val *v = cn ? cn : &en->items[i];
            if (!type_allows(type, v)) continue;
            if (cn && en) { /* both: the const must be among the enum values */
                sbuf a = {0}, b2 = {0};
                bool found = false;
                put_json_text(&a, cn);
                for (size_t j = 0; j < en->n && !found; j++) {
                    b2.n = 0;
                    put_json_text(&b2, &en->items[j]);
                    found = a.s && b2.s && !strcmp(a.s, b2.s);
                }
                free(a.s); free(b2.s);
                if (!found) continue;
            }
            if (!first) sb_put(&e, " | ", 3);
            first = false;
            put_literal_value(&e, v);
        }
        if (first) { cfail(c, SLM_ERR_INVALID_ARG, path, "no value of enum/const has the schema's type"); goto out; }
    } else if (any) {
        if (any->kind != JSON_ARR || any->n == 0) { cfail(c, SLM_ERR_FORMAT, path, "anyOf/oneOf must be a non-empty array"); goto out; }
        if (ejson_get(s, "anyOf") && ejson_get(s, "oneOf")) { cfail(c, SLM_ERR_UNSUPPORTED, path, "anyOf together with oneOf is not supported"); goto out; }
        if (has_constraints(s, "anyOf", "oneOf")) { cfail(c, SLM_ERR_UNSUPPORTED, path, "anyOf/oneOf combined with other keywords is not supported; move them into each alternative"); goto out; }
        for (size_t i = 0; i < any->n; i++) {
            char sub[600];
            snprintf(sub, sizeof sub, "%.500s/%s/%zu", path, ejson_get(s, "anyOf") ? "anyOf" : "oneOf", i);
            int a = gen(c, &any->items[i], sub);
            if (a < 0) goto out;
            sb_fmt(&e, "%ss%d", i ? " | " : "", a);
        }
    } else if (type && type->kind == JSON_STR) {
        if (!gen_type(c, s, type->str, path, &e)) goto out;
    } else if (type) {
        if (type->n == 0) { cfail(c, SLM_ERR_INVALID_ARG, path, "type is an empty list"); goto out; }
        for (size_t i = 0; i < type->n; i++) {
            if (type->items[i].kind != JSON_STR) { cfail(c, SLM_ERR_FORMAT, path, "type lists must hold strings"); goto out; }
            if (i) sb_put(&e, " | ", 3);
            sb_put(&e, "( ", 2);
            if (!gen_type(c, s, type->items[i].str, path, &e)) goto out;
            sb_put(&e, " )", 2);
        }
    } else {
        /* no type: the one the keywords imply, else any value */
        const char *t = NULL;
        if (ejson_get(s, "properties") || ejson_get(s, "required") || ejson_get(s, "additionalProperties")) t = "object";
        else if (ejson_get(s, "items") || ejson_get(s, "minItems") || ejson_get(s, "maxItems")) t = "array";
        else if (ejson_get(s, "minLength") || ejson_get(s, "maxLength") || ejson_get(s, "format")) t = "string";
        else if (ejson_get(s, "minimum") || ejson_get(s, "maximum") || ejson_get(s, "exclusiveMinimum") ||
                 ejson_get(s, "exclusiveMaximum")) t = "number";
        if (t) { if (!gen_type(c, s, t, path, &e)) goto out; }
        else sb_put(&e, "jvalue", 6);
    }
    r = new_rule(c);
    if (e.oom) c->out.oom = true;
    else sb_fmt(&c->out, "s%d ::= %s\n", r, e.s);
out:
    free(e.s);
    c->depth--;
    if (c->out.oom) { cfail(c, SLM_ERR_NOMEM, path, "out of memory"); return -1; }
    return c->failed ? -1 : r;
}

static const char json_rules[] =
    "ws ::= ( \" \" | \"\\n\" \" \"{0,20} )?\n"
    "jchar ::= [^\"\\\\\\x00-\\x1F\\x7F] | \"\\\\\" ( [\"\\\\/bfnrt] | \"u\" jhex4 )\n"
    "jhex4 ::= [0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2}\n"
    "jkeychar ::= [^\"\\\\\\x00-\\x1F\\x7F]\n"
    "jstring ::= \"\\\"\" jchar* \"\\\"\"\n"
    "jint ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} )\n"
    "jfrac ::= ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,2} )?\n"
    "jnumber ::= jint jfrac\n"
    "jnumnonneg ::= ( \"0\" | [1-9] [0-9]{0,15} ) jfrac\n"
    "jvalue ::= jobject | jarray | jstring | jnumber | \"true\" | \"false\" | \"null\"\n"
    "jobject ::= \"{\" ws ( jstring ws \":\" ws jvalue ws ( \",\" ws jstring ws \":\" ws jvalue ws )* )? \"}\"\n"
    "jarray ::= \"[\" ws ( jvalue ws ( \",\" ws jvalue ws )* )? \"]\"\n"
    /* dates as date.fromisoformat and RFC 3339 accept them: years 0001-9999,
     * days within the month, 29 February in leap years only */
    "jyear ::= [0-9]{3} [1-9] | [0-9]{2} [1-9] \"0\" | [0-9] [1-9] \"00\" | [1-9] \"000\"\n"
    "jleap ::= [0-9]{2} ( \"0\" [48] | [2468] [048] | [13579] [26] ) | ( \"0\" [48] | [2468] [048] | [13579] [26] ) \"00\"\n"
    "jd28 ::= \"0\" [1-9] | \"1\" [0-9] | \"2\" [0-8]\n"
    "jmd ::= ( \"01\" | \"03\" | \"05\" | \"07\" | \"08\" | \"10\" | \"12\" ) \"-\" ( jd28 | \"29\" | \"30\" | \"31\" )"
    " | ( \"04\" | \"06\" | \"09\" | \"11\" ) \"-\" ( jd28 | \"29\" | \"30\" ) | \"02-\" jd28\n"
    "jdate ::= jyear \"-\" jmd | jleap \"-02-29\"\n"
    "jtime ::= ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] \":\" [0-5] [0-9] ( \".\" [0-9]{1,6} )?"
    " ( \"Z\" | [+-] ( [01] [0-9] | \"2\" [0-3] ) \":\" [0-5] [0-9] )\n"
    "jdatetime ::= jdate \"T\" jtime\n"
    "jhex ::= [0-9a-fA-F]\n"
    "juuid ::= jhex{8} \"-\" jhex{4} \"-\" jhex{4} \"-\" jhex{4} \"-\" jhex{12}\n";

slm_status json_schema_val_to_gbnf(const json_val *schema, char **out) {
    *out = NULL;
    conv *c = calloc(1, sizeof *c);
    if (!c) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    c->root = schema;
    int r = gen(c, c->root, "#");
    slm_status st = SLM_OK;
    if (r < 0) st = c->failed ? c->st : slm_fail(SLM_ERR_NOMEM, "out of memory");
    if (r >= 0) {
        sb_fmt(&c->out, "root ::= s%d\n", r);
        sb_put(&c->out, json_rules, sizeof json_rules - 1);
        if (c->out.oom) st = slm_fail(SLM_ERR_NOMEM, "out of memory");
    }
    if (!st) { *out = c->out.s; c->out.s = NULL; }
    free(c->out.s);
    free(c);
    return st;
}

slm_status slm_json_schema_to_gbnf(const char *schema, size_t len, char **out) {
    if (!out) return slm_fail(SLM_ERR_INVALID_ARG, "slm_json_schema_to_gbnf: out is NULL");
    *out = NULL;
    if (!schema) return slm_fail(SLM_ERR_INVALID_ARG, "slm_json_schema_to_gbnf: no schema");
    char err[200];
    json_doc *d = ejson_parse(schema, len, err, sizeof err);
    if (!d) return slm_fail(SLM_ERR_FORMAT, "JSON schema: not valid JSON: %s", err);
    slm_status st = json_schema_val_to_gbnf(ejson_root(d), out);
    ejson_free(d);
    return st;
}

slm_status slm_grammar_new_json_schema(const slm_model *model, const char *schema, size_t len, slm_grammar **out) {
    if (out) *out = NULL;
    char *gbnf = NULL;
    slm_status st = slm_json_schema_to_gbnf(schema, len, &gbnf);
    if (st) return st;
    st = slm_grammar_new(model, gbnf, strlen(gbnf), out);
    free(gbnf);
    return st;
}
