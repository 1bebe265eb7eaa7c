/* Values of the Jinja interpreter: arena, constructors, Python semantics of
 * truth, equality and ordering, and the two ways values become text (str()
 * and json.dumps). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/jinja_int.h"

void jfail(jerr *e, slm_status st, int line, const char *fmt, ...) {
    char m[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    if (line > 0) snprintf(e->msg, sizeof e->msg, "chat template line %d: %s", line, m);
    else snprintf(e->msg, sizeof e->msg, "chat template: %s", m);
    e->st = st;
    longjmp(e->jb, 1);
}

/* ---- arena --------------------------------------------------------------- */

struct jchunk { jchunk *next; size_t used, cap; _Alignas(16) unsigned char mem[]; };

void *ja_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (a->total + cap > JINJA_MAX_ARENA)
            jfail(a->err, SLM_ERR_INVALID_ARG, 0, "rendering needs more than %u MiB of memory", JINJA_MAX_ARENA >> 20);
        jchunk *c = malloc(sizeof *c + cap);
        if (!c) jfail(a->err, SLM_ERR_NOMEM, 0, "out of memory");
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
        a->total += cap;
    }
    void *p = a->head->mem + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

char *ja_strndup(jarena *a, const char *s, size_t n) {
    char *p = ja_alloc(a, n + 1);
    if (n) memcpy(p, s, n);
    return p;
}

void ja_free(jarena *a) {
    while (a->head) { jchunk *n = a->head->next; free(a->head); a->head = n; }
    a->total = 0;
}

/* ---- constructors -------------------------------------------------------- */

jv jv_undef(const char *name) { jv v = { .t = JV_UNDEF }; v.u.s.p = name ? name : ""; v.u.s.n = strlen(v.u.s.p); return v; }
jv jv_none(void) { jv v = { .t = JV_NONE }; return v; }
jv jv_bool(bool b) { jv v = { .t = JV_BOOL }; v.u.b = b; return v; }
jv jv_int(int64_t i) { jv v = { .t = JV_INT }; v.u.i = i; return v; }
jv jv_float(double f) { jv v = { .t = JV_FLOAT }; v.u.f = f; return v; }
jv jv_str(const char *p, size_t n) { jv v = { .t = JV_STR }; v.u.s.p = p; v.u.s.n = n; return v; }
jv jv_strz(const char *p) { return jv_str(p, strlen(p)); }

jv jv_list_new(jarena *a, size_t cap) {
    jv v = { .t = JV_LIST };
    v.u.l = ja_alloc(a, sizeof *v.u.l);
    v.u.l->cap = cap ? cap : 4;
    v.u.l->v = ja_alloc(a, v.u.l->cap * sizeof(jv));
    return v;
}

void jv_list_push(jarena *a, jv list, jv item) {
    jlist *l = list.u.l;
    if (l->n == l->cap) {
        jv *nv = ja_alloc(a, 2 * l->cap * sizeof(jv));
        memcpy(nv, l->v, l->n * sizeof(jv));
        l->v = nv;
        l->cap *= 2;
    }
    l->v[l->n++] = item;
}

jv jv_dict_new(jarena *a, size_t cap) {
    jv v = { .t = JV_DICT };
    v.u.d = ja_alloc(a, sizeof *v.u.d);
    v.u.d->cap = cap ? cap : 4;
    v.u.d->k = ja_alloc(a, v.u.d->cap * sizeof(jv));
    v.u.d->v = ja_alloc(a, v.u.d->cap * sizeof(jv));
    return v;
}

jv *jv_dict_get(jv dict, const char *key, size_t klen) {
    jdict *d = dict.u.d;
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].u.s.n == klen && !memcmp(d->k[i].u.s.p, key, klen)) return &d->v[i];
    return NULL;
}

void jv_dict_set(jarena *a, jv dict, jv key, jv val) {
    jv *slot = jv_dict_get(dict, key.u.s.p, key.u.s.n);
    if (slot) { *slot = val; return; }
    jdict *d = dict.u.d;
    if (d->n == d->cap) {
        jv *nk = ja_alloc(a, 2 * d->cap * sizeof(jv)), *nv = ja_alloc(a, 2 * d->cap * sizeof(jv));
        memcpy(nk, d->k, d->n * sizeof(jv));
        memcpy(nv, d->v, d->n * sizeof(jv));
        d->k = nk;
        d->v = nv;
        d->cap *= 2;
    }
    d->k[d->n] = key;
    d->v[d->n++] = val;
}

/* ---- semantics ----------------------------------------------------------- */

bool jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0;
    case JV_STR: return v.u.s.n > 0;
    case JV_LIST: return v.u.l->n > 0;
    case JV_DICT: return v.u.d->n > 0;
    case JV_FUNC: return true;
    }
    return false;
}

bool jv_is_number(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }
double jv_num(jv v) { return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.t == JV_BOOL ? v.u.b : 0; }

const char *jv_type_name(jv v) {
    static const char *names[] = { "undefined", "none", "bool", "int", "float", "str", "list", "dict", "function" };
    if (v.t == JV_DICT && v.u.d->ns) return "namespace";
    return names[v.t];
}

bool jv_equal(jv a, jv b) {
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
            int64_t x = a.t == JV_BOOL ? a.u.b : a.u.i, y = b.t == JV_BOOL ? b.u.b : b.u.i;
            return x == y;
        }
        return jv_num(a) == jv_num(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a.u.s.n == b.u.s.n && !memcmp(a.u.s.p, b.u.s.p, a.u.s.n);
    case JV_LIST:
        if (a.u.l->n != b.u.l->n) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jv_equal(a.u.l->v[i], b.u.l->v[i])) return false;
        return true;
    case JV_DICT:
        if (a.u.d->ns || b.u.d->ns) return a.u.d == b.u.d;
        if (a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = jv_dict_get(b, a.u.d->k[i].u.s.p, a.u.d->k[i].u.s.n);
            if (!o || !jv_equal(a.u.d->v[i], *o)) return false;
        }
        return true;
    case JV_FUNC: return a.u.fn == b.u.fn;
    default: return false;
    }
}

bool jv_compare(jv a, jv b, int *out) {
    if (jv_is_number(a) && jv_is_number(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) {
            int64_t x = a.t == JV_BOOL ? a.u.b : a.u.i, y = b.t == JV_BOOL ? b.u.b : b.u.i;
            *out = (x > y) - (x < y);
        } else {
            double x = jv_num(a), y = jv_num(b);
            *out = (x > y) - (x < y);
        }
        return true;
    }
    if (a.t == JV_STR && b.t == JV_STR) {   /* UTF-8 byte order is code point order */
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int c = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
        *out = c ? (c > 0 ? 1 : -1) : (a.u.s.n > b.u.s.n) - (a.u.s.n < b.u.s.n);
        return true;
    }
    if (a.t == JV_LIST && b.t == JV_LIST) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (jv_equal(a.u.l->v[i], b.u.l->v[i])) continue;
            return jv_compare(a.u.l->v[i], b.u.l->v[i], out);
        }
        *out = (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
        return true;
    }
    return false;
}

/* ---- buffers ------------------------------------------------------------- */

void jb_add(jbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        if (b->limit && b->n + n > b->limit)
            jfail(b->err, SLM_ERR_INVALID_ARG, 0, "the output exceeds %zu MiB", b->limit >> 20);
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p;
        if (b->arena) {
            p = ja_alloc(b->arena, cap);
            if (b->n) memcpy(p, b->p, b->n);
        } else {
            p = realloc(b->p, cap);
            if (!p) jfail(b->err, SLM_ERR_NOMEM, 0, "out of memory");
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
void jb_addz(jbuf *b, const char *s) { jb_add(b, s, strlen(s)); }
void jb_addc(jbuf *b, char c) { jb_add(b, &c, 1); }

jv jb_take(jbuf *b, jarena *a) {
    if (b->arena == a) return jv_str(b->p ? b->p : "", b->n);
    jv v = jv_str(ja_strndup(a, b->p ? b->p : "", b->n), b->n);
    b->n = 0;
    return v;
}

/* ---- text forms ---------------------------------------------------------- */

/* Python's repr(float): the shortest digits that read back the same, fixed
 * notation for exponents -4..15, else "1e+16" style. */
static void fmt_float(jbuf *b, double f) {
    if (isnan(f)) { jb_addz(b, "nan"); return; }
    if (isinf(f)) { jb_addz(b, f < 0 ? "-inf" : "inf"); return; }
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
    }
    char digits[24];
    int nd = 0, exp10;
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (neg) jb_addc(b, '-');
    if (exp10 >= -4 && exp10 < 16) {
        if (exp10 < 0) {
            jb_addz(b, "0.");
            for (int i = 0; i < -exp10 - 1; i++) jb_addc(b, '0');
            jb_add(b, digits, (size_t)nd);
        } else {
            for (int i = 0; i <= exp10; i++) jb_addc(b, i < nd ? digits[i] : '0');
            jb_addc(b, '.');
            if (nd > exp10 + 1) jb_add(b, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
            else jb_addc(b, '0');
        }
    } else {
        jb_addc(b, digits[0]);
        if (nd > 1) { jb_addc(b, '.'); jb_add(b, digits + 1, (size_t)(nd - 1)); }
        snprintf(tmp, sizeof tmp, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
        jb_addz(b, tmp);
    }
}

static void fmt_int(jbuf *b, int64_t i) {
    char t[24];
    snprintf(t, sizeof t, "%lld", (long long)i);
    jb_addz(b, t);
}

/* repr(str): single quotes unless the text has ' and no ". */
static void repr_str(jbuf *b, const char *s, size_t n) {
    bool sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    jb_addc(b, q);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char t[8];
        if (c == (unsigned char)q || c == '\\') { jb_addc(b, '\\'); jb_addc(b, (char)c); }
        else if (c == '\n') jb_addz(b, "\\n");
        else if (c == '\r') jb_addz(b, "\\r");
        else if (c == '\t') jb_addz(b, "\\t");
        else if (c < 0x20 || c == 0x7f) { snprintf(t, sizeof t, "\\x%02x", c); jb_addz(b, t); }
        else if (c >= 0xc2 && c < 0xf0 && i + (c < 0xe0 ? 1 : 2) < n) {
            /* Python escapes non-printable characters: C1 controls, separators, format characters */
            size_t l = c < 0xe0 ? 2 : 3;
            uint32_t cp = l == 2 ? (uint32_t)(c & 0x1f) << 6 | (s[i + 1] & 0x3f)
                                 : (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[i + 1] & 0x3f) << 6 | (s[i + 2] & 0x3f);
            bool esc = (cp >= 0x80 && cp <= 0xa0) || cp == 0xad || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200f) ||
                       (cp >= 0x2028 && cp <= 0x202f) || (cp >= 0x205f && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x206f) ||
                       cp == 0x3000 || cp == 0xfeff || (cp >= 0xe000 && cp <= 0xf8ff) || (cp >= 0xfff9 && cp <= 0xfffb);
            if (esc) {
                snprintf(t, sizeof t, cp < 0x100 ? "\\x%02x" : "\\u%04x", (unsigned)cp);
                jb_addz(b, t);
            } else {
                jb_add(b, s + i, l);
            }
            i += l - 1;
        }
        else jb_addc(b, (char)c);
    }
    jb_addc(b, q);
}

static void repr(jbuf *b, jv v, int depth) {
    if (depth > JINJA_MAX_DEPTH) jfail(b->err, SLM_ERR_INVALID_ARG, 0, "value nested too deeply");
    switch (v.t) {
    case JV_STR: repr_str(b, v.u.s.p, v.u.s.n); return;
    case JV_LIST:
        jb_addc(b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) { if (i) jb_addz(b, ", "); repr(b, v.u.l->v[i], depth + 1); }
        jb_addc(b, ']');
        return;
    case JV_DICT:
        if (v.u.d->ns) { jb_addz(b, "<Namespace>"); return; }
        jb_addc(b, '{');
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) jb_addz(b, ", ");
            repr(b, v.u.d->k[i], depth + 1);
            jb_addz(b, ": ");
            repr(b, v.u.d->v[i], depth + 1);
        }
        jb_addc(b, '}');
        return;
    default: jv_to_str(b, v);
    }
}

void jv_to_str(jbuf *b, jv v) {
    switch (v.t) {
    case JV_UNDEF: return;
    case JV_NONE: jb_addz(b, "None"); return;
    case JV_BOOL: jb_addz(b, v.u.b ? "True" : "False"); return;
    case JV_INT: fmt_int(b, v.u.i); return;
    case JV_FLOAT: fmt_float(b, v.u.f); return;
    case JV_STR: jb_add(b, v.u.s.p, v.u.s.n); return;
    case JV_FUNC: jb_addz(b, "<function "); jb_addz(b, v.u.fn->name); jb_addc(b, '>'); return;
    default: repr(b, v, 0);
    }
}

jv jv_as_str(jarena *a, jv v) {
    if (v.t == JV_STR) return v;
    jbuf b = { .err = a->err, .arena = a };
    jv_to_str(&b, v);
    return jv_str(b.p ? b.p : "", b.n);
}

static void json_str(jbuf *b, const char *s, size_t n) {
    jb_addc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char t[8];
        switch (c) {
        case '"': jb_addz(b, "\\\""); break;
        case '\\': jb_addz(b, "\\\\"); break;
        case '\n': jb_addz(b, "\\n"); break;
        case '\r': jb_addz(b, "\\r"); break;
        case '\t': jb_addz(b, "\\t"); break;
        case '\b': jb_addz(b, "\\b"); break;
        case '\f': jb_addz(b, "\\f"); break;
        default:
            if (c < 0x20) { snprintf(t, sizeof t, "\\u%04x", c); jb_addz(b, t); }
            else jb_addc(b, (char)c);
        }
    }
    jb_addc(b, '"');
}

static void json_nl(jbuf *b, int indent, int level) {
    jb_addc(b, '\n');
    for (int i = 0; i < indent * level; i++) jb_addc(b, ' ');
}

static int cmp_keys(const void *x, const void *y) {
    const jv *a = *(const jv *const *)x, *b = *(const jv *const *)y;
    int c;
    jv_compare(*a, *b, &c);
    return c;
}

static void json_val(jbuf *b, jv v, int indent, bool sort, int level, int line) {
    if (level > JINJA_MAX_DEPTH) jfail(b->err, SLM_ERR_INVALID_ARG, line, "value nested too deeply for tojson");
    switch (v.t) {
    case JV_NONE: jb_addz(b, "null"); return;
    case JV_BOOL: jb_addz(b, v.u.b ? "true" : "false"); return;
    case JV_INT: fmt_int(b, v.u.i); return;
    case JV_FLOAT:
        if (isnan(v.u.f)) jb_addz(b, "NaN");
        else if (isinf(v.u.f)) jb_addz(b, v.u.f < 0 ? "-Infinity" : "Infinity");
        else fmt_float(b, v.u.f);
        return;
    case JV_STR: json_str(b, v.u.s.p, v.u.s.n); return;
    case JV_LIST:
        if (!v.u.l->n) { jb_addz(b, "[]"); return; }
        jb_addc(b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) jb_addz(b, indent >= 0 ? "," : ", ");
            if (indent >= 0) json_nl(b, indent, level + 1);
            json_val(b, v.u.l->v[i], indent, sort, level + 1, line);
        }
        if (indent >= 0) json_nl(b, indent, level);
        jb_addc(b, ']');
        return;
    case JV_DICT: {
        if (v.u.d->ns) break;
        size_t n = v.u.d->n;
        if (!n) { jb_addz(b, "{}"); return; }
        /* the order to write the entries in: insertion, or sorted keys */
        jv **keys = ja_alloc(b->arena, n * sizeof *keys);   /* callers pass arena buffers */
        for (size_t i = 0; i < n; i++) keys[i] = &v.u.d->k[i];
        if (sort) qsort(keys, n, sizeof *keys, cmp_keys);
        jb_addc(b, '{');
        for (size_t i = 0; i < n; i++) {
            size_t k = (size_t)(keys[i] - v.u.d->k);
            if (i) jb_addz(b, indent >= 0 ? "," : ", ");
            if (indent >= 0) json_nl(b, indent, level + 1);
            json_str(b, v.u.d->k[k].u.s.p, v.u.d->k[k].u.s.n);
            jb_addz(b, ": ");
            json_val(b, v.u.d->v[k], indent, sort, level + 1, line);
        }
        if (indent >= 0) json_nl(b, indent, level);
        jb_addc(b, '}');
        return;
    }
    default: break;
    }
    jfail(b->err, SLM_ERR_INVALID_ARG, line, "tojson: a %s value is not JSON serializable", jv_type_name(v));
}

void jv_to_json(jbuf *b, jv v, int indent, bool sort_keys, int line) { json_val(b, v, indent, sort_keys, 0, line); }

/* ---- UTF-8 --------------------------------------------------------------- */

static size_t u8_len(unsigned char c) { return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4; }

size_t u8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

size_t u8_offset(const char *s, size_t n, size_t cp) {
    size_t i = 0;
    while (cp > 0 && i < n) { i += u8_len((unsigned char)s[i]); cp--; }
    return i < n ? i : n;
}

bool u8_is_space_at(const char *s, size_t n, size_t *len) {
    unsigned char c = (unsigned char)s[0];
    *len = 1;
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f)) return true;
    if (c < 0x80) return false;
    size_t l = u8_len(c);
    if (l > n) return false;
    uint32_t cp = l == 2 ? (uint32_t)(c & 0x1f) << 6 | (s[1] & 0x3f)
                : l == 3 ? (uint32_t)(c & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f)
                         : 0;
    *len = l;
    return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}
