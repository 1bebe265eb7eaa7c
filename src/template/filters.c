/* Filters ({{ x | trim }}) and tests ({% if x is string %}) with jinja2's
 * semantics; tojson is the transformers version (json.dumps, no HTML
 * escaping, keys in insertion order unless sort_keys). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/jinja_int.h"

static const char *const FILTERS[] = {
    "trim", "length", "count", "upper", "lower", "title", "capitalize", "tojson", "default", "d", "first",
    "last", "join", "items", "replace", "string", "int", "float", "list", "selectattr", "rejectattr",
    "select", "reject", "map", "safe", "abs", "unique", "sum", NULL };

static const char *const TESTS[] = {
    "defined", "undefined", "none", "string", "mapping", "sequence", "iterable", "number", "integer",
    "float", "boolean", "true", "false", "callable", "equalto", "eq", "ne", "sameas", "odd", "even",
    "divisibleby", "lower", "upper", "in", "lt", "gt", "le", "ge", "greaterthan", "lessthan", NULL };

static bool known(const char *const *list, const char *name, size_t n) {
    for (int k = 0; list[k]; k++)
        if (strlen(list[k]) == n && !memcmp(list[k], name, n)) return true;
    return false;
}
bool jinja_filter_known(const char *name, size_t n) { return known(FILTERS, name, n); }
bool jinja_test_known(const char *name, size_t n) { return known(TESTS, name, n); }

static jv arg(const jargs *a, int i, const char *name, jv def) {
    int pos = 0;
    for (int k = 0; k < a->n; k++) {
        if (a->kw[k]) { if (name && !strcmp(a->kw[k], name)) return a->v[k]; continue; }
        if (pos++ == i) return a->v[k];
    }
    return def;
}

static size_t length_of(jrender *r, jv v, int line) {
    switch (v.t) {
    case JV_UNDEF: return 0;
    case JV_STR: return u8_count(v.u.s.p, v.u.s.n);
    case JV_LIST: return v.u.l->n;
    case JV_DICT: return v.u.d->n;
    default: jfail(r->e, SLM_ERR_INVALID_ARG, line, "object of type '%s' has no len()", jv_type_name(v));
    }
}

/* The items of a sequence for select/map/join/first/list ... */
static jv as_list(jrender *r, jv v, int line) {
    switch (v.t) {
    case JV_UNDEF: return jv_list_new(r->a, 1);
    case JV_LIST: return v;
    case JV_DICT: {
        jv l = jv_list_new(r->a, v.u.d->n + 1);
        for (size_t i = 0; i < v.u.d->n; i++) jv_list_push(r->a, l, v.u.d->k[i]);
        return l;
    }
    case JV_STR: {
        jv l = jv_list_new(r->a, v.u.s.n + 1);
        for (size_t i = 0; i < v.u.s.n;) {
            size_t e = i + u8_offset(v.u.s.p + i, v.u.s.n - i, 1);
            jv_list_push(r->a, l, jv_str(v.u.s.p + i, e - i));
            i = e;
        }
        return l;
    }
    default: jfail(r->e, SLM_ERR_INVALID_ARG, line, "a %s is not iterable", jv_type_name(v));
    }
}

static bool run_test(jrender *r, const char *name, jv v, const jargs *a, int line);

/* Python int(text) / float(text) for the int and float filters. */
static bool parse_num(jv s, bool want_int, int64_t *i, double *f) {
    char buf[64];
    size_t n = s.u.s.n;
    const char *p = s.u.s.p;
    while (n && (*p == ' ' || *p == '\t' || *p == '\n')) { p++; n--; }
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n')) n--;
    if (!n || n >= sizeof buf) return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *end;
    if (want_int) {
        long long v = strtoll(buf, &end, 10);
        if (*end == '\0') { *i = v; return true; }
    }
    double d = strtod(buf, &end);
    if (*end != '\0') return false;
    *f = d;
    *i = isfinite(d) && fabs(d) < 9.2e18 ? (int64_t)d : 0;
    return isfinite(d) || !want_int;
}

static jv select_items(jrender *r, jv seq, const jargs *a, bool by_attr, bool keep, int line) {
    jv items = as_list(r, seq, line), out = jv_list_new(r->a, 8);
    int first_test = by_attr ? 1 : 0;
    jv attr = by_attr ? arg(a, 0, NULL, jv_undef(NULL)) : jv_none();
    if (by_attr && attr.t == JV_UNDEF) jfail(r->e, SLM_ERR_INVALID_ARG, line, "selectattr needs an attribute name");
    jv test = arg(a, first_test, NULL, jv_none());
    if (test.t != JV_STR && test.t != JV_NONE) jfail(r->e, SLM_ERR_INVALID_ARG, line, "the test name must be a string");
    if (test.t == JV_STR && !jinja_test_known(test.u.s.p, test.u.s.n))
        jfail(r->e, SLM_ERR_UNSUPPORTED, line, "test '%.*s' is not supported", (int)test.u.s.n, test.u.s.p);
    jargs rest = { 0 };
    for (int k = first_test + 1, pos = 0; k < a->n; k++) {
        if (a->kw[k]) jfail(r->e, SLM_ERR_UNSUPPORTED, line, "keyword arguments to select tests are not supported");
        rest.v[pos] = a->v[k];
        rest.n = ++pos;
    }
    char tname[32] = "";
    if (test.t == JV_STR) snprintf(tname, sizeof tname, "%.*s", (int)test.u.s.n, test.u.s.p);
    for (size_t i = 0; i < items.u.l->n; i++) {
        jr_step(r, line);
        jv it = items.u.l->v[i];
        jv x = by_attr ? jinja_getattr_path(r, it, attr, line) : it;
        bool ok = test.t == JV_STR ? run_test(r, tname, x, &rest, line) : jv_truthy(x);
        if (ok == keep) jv_list_push(r->a, out, it);
    }
    return out;
}

static jv apply(jrender *r, const char *f, jv v, const jargs *a, int line);

static jv do_map(jrender *r, jv seq, const jargs *a, int line) {
    jv items = as_list(r, seq, line), out = jv_list_new(r->a, items.u.l->n + 1);
    jv attr = arg(a, -1, "attribute", jv_undef(NULL));
    jv def = arg(a, -1, "default", jv_undef(NULL));
    jv fname = arg(a, 0, NULL, jv_undef(NULL));
    if (attr.t == JV_UNDEF && fname.t != JV_STR) jfail(r->e, SLM_ERR_INVALID_ARG, line, "map needs a filter name or attribute=");
    char name[32] = "";
    jargs rest = { 0 };
    if (attr.t == JV_UNDEF) {
        if (!jinja_filter_known(fname.u.s.p, fname.u.s.n) || fname.u.s.n >= sizeof name)
            jfail(r->e, SLM_ERR_UNSUPPORTED, line, "filter '%.*s' is not supported", (int)(fname.u.s.n > 40 ? 40 : fname.u.s.n), fname.u.s.p);
        memcpy(name, fname.u.s.p, fname.u.s.n);
        for (int k = 1; k < a->n; k++) {
            if (a->kw[k] && (!strcmp(a->kw[k], "attribute") || !strcmp(a->kw[k], "default"))) continue;
            rest.v[rest.n] = a->v[k];
            rest.kw[rest.n++] = a->kw[k];
        }
    }
    for (size_t i = 0; i < items.u.l->n; i++) {
        jr_step(r, line);
        jv x;
        if (attr.t != JV_UNDEF) {
            x = jinja_getattr_path(r, items.u.l->v[i], attr, line);
            if (x.t == JV_UNDEF && def.t != JV_UNDEF) x = def;
        } else {
            x = apply(r, name, items.u.l->v[i], &rest, line);
        }
        jv_list_push(r->a, out, x);
    }
    return out;
}

static jv apply(jrender *r, const char *f, jv v, const jargs *a, int line) {
    jv none = jv_none();
    jr_work(r, v.t == JV_STR ? v.u.s.n : v.t == JV_LIST ? v.u.l->n * 16 : v.t == JV_DICT ? v.u.d->n * 16 : 0, line);
    if (!strcmp(f, "trim")) return jstr_strip(r, v, arg(a, 0, "chars", none), 0, line);
    if (!strcmp(f, "length") || !strcmp(f, "count")) return jv_int((int64_t)length_of(r, v, line));
    if (!strcmp(f, "upper")) return jstr_case(r, v, CASE_UPPER);
    if (!strcmp(f, "lower")) return jstr_case(r, v, CASE_LOWER);
    if (!strcmp(f, "capitalize")) return jstr_case(r, v, CASE_CAPITALIZE);
    if (!strcmp(f, "title")) return jstr_case(r, v, CASE_TITLE_JINJA);
    if (!strcmp(f, "string")) return jv_as_str(r->a, v);
    if (!strcmp(f, "safe")) return v;
    if (!strcmp(f, "tojson")) {
        jv ind = arg(a, 0, "indent", none), sk = arg(a, -1, "sort_keys", jv_bool(false));
        jv asc = arg(a, -1, "ensure_ascii", jv_bool(false)), sep = arg(a, -1, "separators", none);
        if (jv_truthy(asc) || (sep.t != JV_NONE && sep.t != JV_UNDEF))
            jfail(r->e, SLM_ERR_UNSUPPORTED, line, "tojson with ensure_ascii or separators is not supported");
        if (ind.t != JV_NONE && ind.t != JV_INT) jfail(r->e, SLM_ERR_UNSUPPORTED, line, "tojson indent must be an integer");
        int indent = ind.t == JV_INT ? (int)(ind.u.i < 0 ? 0 : ind.u.i > 32 ? 32 : ind.u.i) : -1;
        jbuf b = { .err = r->e, .arena = r->a, .limit = JINJA_MAX_OUTPUT };
        jv_to_json(&b, v, indent, jv_truthy(sk), line);
        jr_work(r, b.n, line);
        return jv_str(b.p ? b.p : "", b.n);
    }
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        jv def = arg(a, 0, "default_value", jv_strz(""));
        bool boolean = jv_truthy(arg(a, 1, "boolean", jv_bool(false)));
        return v.t == JV_UNDEF || (boolean && !jv_truthy(v)) ? def : v;
    }
    if (!strcmp(f, "first") || !strcmp(f, "last")) {
        jv l = as_list(r, v, line);
        if (!l.u.l->n) return jv_undef(f[0] == 'f' ? "first of an empty sequence" : "last of an empty sequence");
        return l.u.l->v[f[0] == 'f' ? 0 : l.u.l->n - 1];
    }
    if (!strcmp(f, "join")) {
        jv sep = arg(a, 0, "d", jv_strz("")), attr = arg(a, 1, "attribute", none);
        jv l = as_list(r, v, line);
        jbuf b = { .err = r->e, .arena = r->a, .limit = JINJA_MAX_OUTPUT };
        for (size_t i = 0; i < l.u.l->n; i++) {
            jr_step(r, line);
            if (i) jv_to_str(&b, sep);
            jv x = l.u.l->v[i];
            if (attr.t != JV_NONE && attr.t != JV_UNDEF) x = jinja_getattr_path(r, x, attr, line);
            jv_to_str(&b, x);
        }
        return jv_str(b.p ? b.p : "", b.n);
    }
    if (!strcmp(f, "items")) {
        if (v.t == JV_UNDEF) return jv_list_new(r->a, 1);
        if (v.t != JV_DICT) jfail(r->e, SLM_ERR_INVALID_ARG, line, "items filter needs a mapping, got %s", jv_type_name(v));
        jv l = jv_list_new(r->a, v.u.d->n + 1);
        for (size_t i = 0; i < v.u.d->n; i++) {
            jv pair = jv_list_new(r->a, 2);
            jv_list_push(r->a, pair, v.u.d->k[i]);
            jv_list_push(r->a, pair, v.u.d->v[i]);
            jv_list_push(r->a, l, pair);
        }
        return l;
    }
    if (!strcmp(f, "replace")) {
        jv cnt = arg(a, 2, "count", none);
        return jstr_replace(r, v, arg(a, 0, "old", none), arg(a, 1, "new", none), cnt.t == JV_INT ? cnt.u.i : -1, line);
    }
    if (!strcmp(f, "int") || !strcmp(f, "float")) {
        bool want_int = f[0] == 'i';
        if (v.t == JV_UNDEF)
            jfail(r->e, SLM_ERR_INVALID_ARG, line, "'%.*s' is undefined", (int)v.u.s.n, v.u.s.p);
        jv def = arg(a, 0, "default", want_int ? jv_int(0) : jv_float(0));
        if (arg(a, 1, "base", jv_int(10)).u.i != 10) jfail(r->e, SLM_ERR_UNSUPPORTED, line, "int with a base other than 10 is not supported");
        int64_t i = 0;
        double d = 0;
        if (v.t == JV_INT || v.t == JV_BOOL) { i = v.t == JV_BOOL ? v.u.b : v.u.i; d = (double)i; }
        else if (v.t == JV_FLOAT) {
            if (want_int && (!isfinite(v.u.f) || fabs(v.u.f) >= 9.2e18)) return def;
            d = v.u.f;
            i = want_int ? (int64_t)v.u.f : 0;
        } else if (v.t != JV_STR || !parse_num(v, want_int, &i, &d)) return def;
        return want_int ? jv_int(i) : jv_float(v.t == JV_STR ? d : (v.t == JV_FLOAT ? d : (double)i));
    }
    if (!strcmp(f, "list")) {
        jv l = as_list(r, v, line), c = jv_list_new(r->a, l.u.l->n + 1);
        for (size_t i = 0; i < l.u.l->n; i++) jv_list_push(r->a, c, l.u.l->v[i]);
        return c;
    }
    if (!strcmp(f, "selectattr")) return select_items(r, v, a, true, true, line);
    if (!strcmp(f, "rejectattr")) return select_items(r, v, a, true, false, line);
    if (!strcmp(f, "select")) return select_items(r, v, a, false, true, line);
    if (!strcmp(f, "reject")) return select_items(r, v, a, false, false, line);
    if (!strcmp(f, "map")) return do_map(r, v, a, line);
    if (!strcmp(f, "abs")) {
        if (v.t == JV_FLOAT) return jv_float(fabs(v.u.f));
        if ((v.t == JV_INT && v.u.i != INT64_MIN) || v.t == JV_BOOL) { int64_t i = v.t == JV_BOOL ? v.u.b : v.u.i; return jv_int(i < 0 ? -i : i); }
        jfail(r->e, SLM_ERR_INVALID_ARG, line, "bad operand type for abs(): '%s'", jv_type_name(v));
    }
    if (!strcmp(f, "sum")) {
        jv l = as_list(r, v, line), attr = arg(a, 0, "attribute", none), acc = arg(a, 1, "start", jv_int(0));
        for (size_t i = 0; i < l.u.l->n; i++) {
            jv x = attr.t == JV_STR ? jinja_getattr_path(r, l.u.l->v[i], attr, line) : l.u.l->v[i];
            if (!jv_is_number(x) || !jv_is_number(acc)) jfail(r->e, SLM_ERR_INVALID_ARG, line, "sum: a %s is not a number", jv_type_name(jv_is_number(x) ? acc : x));
            if (acc.t == JV_FLOAT || x.t == JV_FLOAT) acc = jv_float(jv_num(acc) + jv_num(x));
            else {
                int64_t s0 = acc.t == JV_BOOL ? acc.u.b : acc.u.i, s1 = x.t == JV_BOOL ? x.u.b : x.u.i, z;
                if (__builtin_add_overflow(s0, s1, &z)) jfail(r->e, SLM_ERR_UNSUPPORTED, line, "integer results beyond 64 bits are not supported");
                acc = jv_int(z);
            }
        }
        return acc;
    }
    if (!strcmp(f, "unique")) {
        jv l = as_list(r, v, line), out = jv_list_new(r->a, l.u.l->n + 1);
        for (size_t i = 0; i < l.u.l->n; i++) {
            bool seen = false;
            for (size_t k = 0; k < out.u.l->n && !seen; k++) { jr_step(r, line); seen = jv_equal(out.u.l->v[k], l.u.l->v[i]); }
            if (!seen) jv_list_push(r->a, out, l.u.l->v[i]);
        }
        return out;
    }
    jfail(r->e, SLM_ERR_UNSUPPORTED, line, "filter '%s' is not supported", f);
}

jv jinja_apply_filter(jrender *r, jscope *sc, const node *n, jv v) {
    if (!jinja_filter_known(n->val.u.s.p, n->val.u.s.n))
        jfail(r->e, SLM_ERR_UNSUPPORTED, n->line, "filter '%.*s' is not supported", (int)(n->val.u.s.n > 40 ? 40 : n->val.u.s.n), n->val.u.s.p);
    jargs a;
    jinja_eval_args(r, sc, n, &a);
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)n->val.u.s.n, n->val.u.s.p);
    return apply(r, name, v, &a, n->line);
}

static bool run_test(jrender *r, const char *t, jv v, const jargs *a, int line) {
    jv x = arg(a, 0, NULL, jv_undef(NULL));
    int c;
    if (!strcmp(t, "defined")) return v.t != JV_UNDEF;
    if (!strcmp(t, "undefined")) return v.t == JV_UNDEF;
    if (!strcmp(t, "none")) return v.t == JV_NONE;
    if (!strcmp(t, "string")) return v.t == JV_STR;
    if (!strcmp(t, "mapping")) return v.t == JV_DICT && !v.u.d->ns;
    if (!strcmp(t, "sequence")) return v.t == JV_STR || v.t == JV_LIST || (v.t == JV_DICT && !v.u.d->ns) || v.t == JV_UNDEF;
    if (!strcmp(t, "iterable")) return v.t == JV_STR || v.t == JV_LIST || (v.t == JV_DICT && !v.u.d->ns) || v.t == JV_UNDEF;
    if (!strcmp(t, "number")) return jv_is_number(v);
    if (!strcmp(t, "integer")) return v.t == JV_INT;
    if (!strcmp(t, "float")) return v.t == JV_FLOAT;
    if (!strcmp(t, "boolean")) return v.t == JV_BOOL;
    if (!strcmp(t, "true")) return v.t == JV_BOOL && v.u.b;
    if (!strcmp(t, "false")) return v.t == JV_BOOL && !v.u.b;
    if (!strcmp(t, "callable")) return v.t == JV_FUNC;
    if (!strcmp(t, "equalto") || !strcmp(t, "eq")) return jv_equal(v, x);
    if (!strcmp(t, "ne")) return !jv_equal(v, x);
    if (!strcmp(t, "sameas")) {
        if (v.t != x.t) return false;
        if (v.t == JV_LIST) return v.u.l == x.u.l;
        if (v.t == JV_DICT) return v.u.d == x.u.d;
        return v.t == JV_NONE || v.t == JV_UNDEF || (v.t == JV_BOOL && v.u.b == x.u.b);
    }
    if (!strcmp(t, "odd") || !strcmp(t, "even") || !strcmp(t, "divisibleby")) {
        if (v.t != JV_INT && v.t != JV_BOOL) jfail(r->e, SLM_ERR_INVALID_ARG, line, "test '%s' needs an integer", t);
        int64_t i = v.t == JV_BOOL ? v.u.b : v.u.i;
        if (t[0] == 'o') return i % 2 != 0;
        if (t[0] == 'e') return i % 2 == 0;
        if (x.t != JV_INT || x.u.i == 0) jfail(r->e, SLM_ERR_INVALID_ARG, line, "divisibleby needs a non-zero integer");
        return x.u.i == -1 || i % x.u.i == 0;
    }
    if (!strcmp(t, "lower") || !strcmp(t, "upper")) {
        if (v.t != JV_STR) return false;
        bool cased = false;
        for (size_t i = 0; i < v.u.s.n; i++) {
            char ch = v.u.s.p[i];
            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) {
                cased = true;
                if (t[0] == 'l' ? (ch >= 'A' && ch <= 'Z') : (ch >= 'a' && ch <= 'z')) return false;
            }
        }
        return cased;
    }
    if (!strcmp(t, "in")) {
        if (x.t == JV_STR && v.t == JV_STR) {
            jr_work(r, x.u.s.n, line);
            return !v.u.s.n || memmem(x.u.s.p, x.u.s.n, v.u.s.p, v.u.s.n) != NULL;
        }
        if (x.t == JV_LIST) { jr_work(r, x.u.l->n * 16, line); for (size_t i = 0; i < x.u.l->n; i++) if (jv_equal(x.u.l->v[i], v)) return true; return false; }
        if (x.t == JV_DICT) return v.t == JV_STR && jv_dict_get(x, v.u.s.p, v.u.s.n);
        jfail(r->e, SLM_ERR_INVALID_ARG, line, "test 'in' needs a container");
    }
    if (!jv_compare(v, x, &c)) jfail(r->e, SLM_ERR_INVALID_ARG, line, "test '%s': '%s' and '%s' cannot be compared", t, jv_type_name(v), jv_type_name(x));
    if (!strcmp(t, "lt") || !strcmp(t, "lessthan")) return c < 0;
    if (!strcmp(t, "gt") || !strcmp(t, "greaterthan")) return c > 0;
    if (!strcmp(t, "le")) return c <= 0;
    return c >= 0;   /* ge */
}

bool jinja_apply_test(jrender *r, jscope *sc, const node *n, jv v) {
    if (!jinja_test_known(n->val.u.s.p, n->val.u.s.n))
        jfail(r->e, SLM_ERR_UNSUPPORTED, n->line, "test '%.*s' is not supported", (int)(n->val.u.s.n > 40 ? 40 : n->val.u.s.n), n->val.u.s.p);
    jargs a;
    jinja_eval_args(r, sc, n, &a);
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)n->val.u.s.n, n->val.u.s.p);
    return run_test(r, name, v, &a, n->line);
}
