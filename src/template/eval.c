/* Evaluation of the syntax tree: expressions with Python's semantics as
 * jinja2 applies them, statements writing to the output, scopes (a for loop
 * body and a macro body get their own; if blocks do not), and the entry
 * point jinja_render. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "template/jinja_int.h"

void jr_step(jrender *r, int line) {
    if (++r->steps > JINJA_MAX_STEPS)
        jfail(r->e, SLM_ERR_INVALID_ARG, line, "the template runs too long (more than %d steps)", JINJA_MAX_STEPS);
}

void jr_work(jrender *r, size_t bytes, int line) {
    r->steps += (long)(bytes >> 6);
    jr_step(r, line);
}

static const char *cname(jrender *r, jv s) { return ja_strndup(r->a, s.u.s.p, s.u.s.n); }

static jv lookup(jscope *sc, jv name) {
    for (; sc; sc = sc->parent) {
        jv *v = jv_dict_get(sc->vars, name.u.s.p, name.u.s.n);
        if (v) return *v;
    }
    return jv_undef(NULL);
}

static _Noreturn void undefined_use(jrender *r, int line, jv u) {
    if (u.u.s.n) jfail(r->e, SLM_ERR_INVALID_ARG, line, "'%.*s' is undefined", (int)u.u.s.n, u.u.s.p);
    jfail(r->e, SLM_ERR_INVALID_ARG, line, "an undefined value is used");
}

/* obj.name (attribute first, then item), as jinja2's getattr. */
static jv get_attr(jrender *r, jv obj, jv name, int line) {
    if (obj.t == JV_UNDEF) undefined_use(r, line, obj);
    if (obj.t == JV_DICT) {
        if (!obj.u.d->ns) {
            jv m = jinja_method(r, obj, name.u.s.p, name.u.s.n);
            if (m.t != JV_UNDEF) return m;
        }
        jv *v = jv_dict_get(obj, name.u.s.p, name.u.s.n);
        if (v) return *v;
    } else {
        jv m = jinja_method(r, obj, name.u.s.p, name.u.s.n);
        if (m.t != JV_UNDEF) return m;
    }
    jbuf b = { .err = r->e, .arena = r->a };
    jb_addz(&b, jv_type_name(obj));
    jb_addc(&b, '.');
    jb_add(&b, name.u.s.p, name.u.s.n);
    return jv_undef(b.p);
}

jv jinja_getattr_path(jrender *r, jv obj, jv path, int line) {
    if (path.t == JV_INT) return obj.t == JV_LIST && path.u.i >= 0 && (uint64_t)path.u.i < obj.u.l->n ? obj.u.l->v[path.u.i] : jv_undef(NULL);
    if (path.t != JV_STR) jfail(r->e, SLM_ERR_INVALID_ARG, line, "attribute names must be strings");
    const char *p = path.u.s.p, *end = p + path.u.s.n;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (!dot) dot = end;
        if (obj.t == JV_UNDEF) return obj;
        jv key = jv_str(p, (size_t)(dot - p));
        jv *v = obj.t == JV_DICT ? jv_dict_get(obj, key.u.s.p, key.u.s.n) : NULL;
        obj = v ? *v : get_attr(r, obj, key, line);
        p = dot + 1;
    }
    return obj;
}

static bool index_of(jv key, size_t len, size_t *out) {
    if (key.t != JV_INT && key.t != JV_BOOL) return false;
    int64_t i = key.t == JV_BOOL ? key.u.b : key.u.i;
    if (i < 0) i += (int64_t)len;
    if (i < 0 || (uint64_t)i >= len) return false;
    *out = (size_t)i;
    return true;
}

/* obj[key] (item first, then attribute), as jinja2's getitem. */
static jv get_item(jrender *r, jv obj, jv key, int line) {
    size_t i;
    if (obj.t == JV_UNDEF) undefined_use(r, line, obj);
    if (obj.t == JV_LIST) {
        if (key.t != JV_INT && key.t != JV_BOOL && key.t != JV_STR)
            jfail(r->e, SLM_ERR_INVALID_ARG, line, "list indices must be integers, not %s", jv_type_name(key));
        if (index_of(key, obj.u.l->n, &i)) return obj.u.l->v[i];
        if (key.t != JV_STR) return jv_undef("list index out of range");
    } else if (obj.t == JV_STR && key.t != JV_STR) {
        jr_work(r, obj.u.s.n, line);
        size_t n = u8_count(obj.u.s.p, obj.u.s.n);
        if (!index_of(key, n, &i)) return jv_undef("string index out of range");
        size_t o = u8_offset(obj.u.s.p, obj.u.s.n, i), e = u8_offset(obj.u.s.p, obj.u.s.n, i + 1);
        return jv_str(obj.u.s.p + o, e - o);
    } else if (obj.t == JV_DICT && key.t == JV_STR) {
        jv *v = jv_dict_get(obj, key.u.s.p, key.u.s.n);
        if (v) return *v;
    }
    if (key.t == JV_STR) return get_attr(r, obj, key, line);
    return jv_undef(NULL);
}

static int64_t slice_bound(jrender *r, jv v, int64_t len, int64_t step, bool is_start, int line) {
    if (v.t == JV_NONE || v.t == JV_UNDEF)
        return step > 0 ? (is_start ? 0 : len) : (is_start ? len - 1 : -1);
    if (v.t != JV_INT && v.t != JV_BOOL) jfail(r->e, SLM_ERR_INVALID_ARG, line, "slice indices must be integers");
    int64_t i = v.t == JV_BOOL ? v.u.b : v.u.i;
    if (i < 0) { i += len; if (i < 0) i = step > 0 ? 0 : -1; }
    else if (i >= len) i = step > 0 ? len : len - 1;
    return i;
}

static jv eval_slice(jrender *r, jscope *sc, const node *n) {
    jv obj = jinja_eval_in(r, sc, n->a);
    jv lo = n->b ? jinja_eval_in(r, sc, n->b) : jv_none(), hi = n->c ? jinja_eval_in(r, sc, n->c) : jv_none();
    jv st = n->args.n ? jinja_eval_in(r, sc, n->args.v[0]) : jv_none();
    int64_t step = 1;
    if (st.t == JV_INT) step = st.u.i;
    else if (st.t != JV_NONE) jfail(r->e, SLM_ERR_INVALID_ARG, n->line, "slice step must be an integer");
    if (step == 0) jfail(r->e, SLM_ERR_INVALID_ARG, n->line, "slice step cannot be zero");
    if (obj.t == JV_UNDEF) undefined_use(r, n->line, obj);
    bool is_str = obj.t == JV_STR;
    if (!is_str && obj.t != JV_LIST) jfail(r->e, SLM_ERR_INVALID_ARG, n->line, "a %s cannot be sliced", jv_type_name(obj));
    int64_t len = (int64_t)(is_str ? u8_count(obj.u.s.p, obj.u.s.n) : obj.u.l->n);
    size_t *off = NULL;   /* byte offset of each character, and the end */
    if (is_str) {
        jr_work(r, obj.u.s.n, n->line);
        off = ja_alloc(r->a, ((size_t)len + 1) * sizeof *off);
        for (size_t i = 0, k = 0; k <= (size_t)len; k++) {
            off[k] = i;
            if (i < obj.u.s.n) i += u8_offset(obj.u.s.p + i, obj.u.s.n - i, 1);
        }
    }
    int64_t a = slice_bound(r, lo, len, step, true, n->line), b = slice_bound(r, hi, len, step, false, n->line);
    jbuf sb = { .err = r->e, .arena = r->a };
    jv out = is_str ? jv_none() : jv_list_new(r->a, 4);
    for (int64_t i = a; step > 0 ? i < b : i > b; i += step) {
        jr_step(r, n->line);
        if (is_str) {
            jb_add(&sb, obj.u.s.p + off[i], off[i + 1] - off[i]);
        } else {
            jv_list_push(r->a, out, obj.u.l->v[i]);
        }
    }
    return is_str ? jv_str(sb.p ? sb.p : "", sb.n) : out;
}

static _Noreturn void type_error(jrender *r, int line, const char *op, jv a, jv b) {
    if (a.t == JV_UNDEF) undefined_use(r, line, a);
    if (b.t == JV_UNDEF) undefined_use(r, line, b);
    jfail(r->e, SLM_ERR_INVALID_ARG, line, "unsupported operand types for %s: '%s' and '%s'", op, jv_type_name(a), jv_type_name(b));
}

static jv repeat(jrender *r, jv seq, int64_t times, int line) {
    if (times < 0) times = 0;
    size_t unit = seq.t == JV_STR ? seq.u.s.n : seq.u.l->n;
    if (unit && (uint64_t)times > JINJA_MAX_OUTPUT / unit)
        jfail(r->e, SLM_ERR_INVALID_ARG, line, "a repeated sequence would be too long");
    jr_work(r, unit * (size_t)times, line);
    if (seq.t == JV_STR) {
        jbuf b = { .err = r->e, .arena = r->a };
        for (int64_t k = 0; k < times; k++) jb_add(&b, seq.u.s.p, seq.u.s.n);
        return jv_str(b.p ? b.p : "", b.n);
    }
    jv l = jv_list_new(r->a, unit * (size_t)times + 1);
    for (int64_t k = 0; k < times; k++)
        for (size_t i = 0; i < unit; i++) jv_list_push(r->a, l, seq.u.l->v[i]);
    return l;
}

static jv arith(jrender *r, int op, jv a, jv b, int line) {
    static const char *names[] = { "+", "-", "*", "/", "//", "%", "**" };
    if (jv_is_number(a) && jv_is_number(b)) {
        bool ints = a.t != JV_FLOAT && b.t != JV_FLOAT;
        int64_t x = a.t == JV_BOOL ? a.u.b : a.u.i, y = b.t == JV_BOOL ? b.u.b : b.u.i, z;
        double fx = jv_num(a), fy = jv_num(b);
        switch (op) {
        case OP_ADD: if (ints) { if (__builtin_add_overflow(x, y, &z)) break; return jv_int(z); } return jv_float(fx + fy);
        case OP_SUB: if (ints) { if (__builtin_sub_overflow(x, y, &z)) break; return jv_int(z); } return jv_float(fx - fy);
        case OP_MUL: if (ints) { if (__builtin_mul_overflow(x, y, &z)) break; return jv_int(z); } return jv_float(fx * fy);
        case OP_DIV:
            if (fy == 0) jfail(r->e, SLM_ERR_INVALID_ARG, line, "division by zero");
            return jv_float(fx / fy);
        case OP_FLOORDIV: case OP_MOD:
            if (ints) {
                if (y == 0) jfail(r->e, SLM_ERR_INVALID_ARG, line, "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1) break;
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) { q--; m += y; }
                return jv_int(op == OP_MOD ? m : q);
            } else {
                if (fy == 0) jfail(r->e, SLM_ERR_INVALID_ARG, line, "float division or modulo by zero");
                double m = fmod(fx, fy);
                if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
                return jv_float(op == OP_MOD ? m : floor((fx - m) / fy + 0.5));
            }
        case OP_POW:
            if (ints && y >= 0) {
                int64_t acc = 1;
                for (int64_t k = 0; k < y; k++) {
                    if (__builtin_mul_overflow(acc, x, &acc)) goto overflow;
                    if (acc == 0 || acc == 1) break;
                    if (k > 64 && (acc == -1)) { acc = (y % 2) ? x : 1; break; }
                }
                return jv_int(acc);
            }
            return jv_float(pow(fx, fy));
        }
    overflow:
        jfail(r->e, SLM_ERR_UNSUPPORTED, line, "integer results beyond 64 bits are not supported");
    }
    if (op == OP_ADD && a.t == JV_STR && b.t == JV_STR) {
        jbuf s = { .err = r->e, .arena = r->a };
        jb_add(&s, a.u.s.p, a.u.s.n);
        jb_add(&s, b.u.s.p, b.u.s.n);
        jr_work(r, s.n, line);
        return jv_str(s.p ? s.p : "", s.n);
    }
    if (op == OP_ADD && a.t == JV_LIST && b.t == JV_LIST) {
        jr_work(r, (a.u.l->n + b.u.l->n) * 16, line);
        jv l = jv_list_new(r->a, a.u.l->n + b.u.l->n + 1);
        for (size_t i = 0; i < a.u.l->n; i++) jv_list_push(r->a, l, a.u.l->v[i]);
        for (size_t i = 0; i < b.u.l->n; i++) jv_list_push(r->a, l, b.u.l->v[i]);
        return l;
    }
    if (op == OP_MUL && (a.t == JV_STR || a.t == JV_LIST) && (b.t == JV_INT || b.t == JV_BOOL))
        return repeat(r, a, b.t == JV_BOOL ? b.u.b : b.u.i, line);
    if (op == OP_MUL && (b.t == JV_STR || b.t == JV_LIST) && (a.t == JV_INT || a.t == JV_BOOL))
        return repeat(r, b, a.t == JV_BOOL ? a.u.b : a.u.i, line);
    if (op == OP_MOD && a.t == JV_STR)
        jfail(r->e, SLM_ERR_UNSUPPORTED, line, "%%-formatting of strings is not supported");
    type_error(r, line, names[op], a, b);
}

static bool contains(jrender *r, jv hay, jv needle, int line) {
    switch (hay.t) {
    case JV_UNDEF: return false;
    case JV_STR:
        if (needle.t != JV_STR) jfail(r->e, SLM_ERR_INVALID_ARG, line, "'in <string>' requires a string on the left");
        jr_work(r, hay.u.s.n, line);
        return !needle.u.s.n || memmem(hay.u.s.p, hay.u.s.n, needle.u.s.p, needle.u.s.n) != NULL;
    case JV_LIST:
        jr_work(r, hay.u.l->n * 16, line);
        for (size_t i = 0; i < hay.u.l->n; i++) if (jv_equal(hay.u.l->v[i], needle)) return true;
        return false;
    case JV_DICT:
        jr_work(r, hay.u.d->n * 16, line);
        return needle.t == JV_STR && jv_dict_get(hay, needle.u.s.p, needle.u.s.n) != NULL;
    default: jfail(r->e, SLM_ERR_INVALID_ARG, line, "a %s is not a container for 'in'", jv_type_name(hay));
    }
}

static jv call_macro(jrender *r, const jfunc *f, int line, int argc, const jv *argv, const char **kw) {
    const node *m = f->macro;
    if (++r->depth > JINJA_MAX_DEPTH) jfail(r->e, SLM_ERR_INVALID_ARG, line, "macros call each other too deeply");
    jscope sc = { f->scope, jv_dict_new(r->a, 8) };
    int npos = 0;
    for (int i = 0; i < argc; i++) {
        if (kw[i]) {
            int k;
            for (k = 0; k < m->args.n; k++)
                if (strlen(kw[i]) == m->args.v[k]->val.u.s.n && !memcmp(kw[i], m->args.v[k]->val.u.s.p, strlen(kw[i]))) break;
            if (k == m->args.n) jfail(r->e, SLM_ERR_INVALID_ARG, line, "macro '%s' has no parameter '%s'", f->name, kw[i]);
            jv_dict_set(r->a, sc.vars, m->args.v[k]->val, argv[i]);
        } else {
            if (npos >= m->args.n) jfail(r->e, SLM_ERR_UNSUPPORTED, line, "macro '%s' called with extra arguments", f->name);
            jv_dict_set(r->a, sc.vars, m->args.v[npos++]->val, argv[i]);
        }
    }
    for (int k = 0; k < m->args.n; k++)
        if (!jv_dict_get(sc.vars, m->args.v[k]->val.u.s.p, m->args.v[k]->val.u.s.n))
            jv_dict_set(r->a, sc.vars, m->args.v[k]->val,
                        m->defs.v[k] ? jinja_eval_in(r, f->scope, m->defs.v[k]) : jv_undef(cname(r, m->args.v[k]->val)));
    jbuf b = { .err = r->e, .arena = r->a, .limit = JINJA_MAX_OUTPUT };
    jbuf *saved = r->out;
    int ctl = r->loop_ctl;
    r->out = &b;
    jinja_exec(r, &sc, &m->body);
    r->out = saved;
    r->loop_ctl = ctl;
    r->depth--;
    return jv_str(b.p ? b.p : "", b.n);
}

void jinja_eval_args(jrender *r, jscope *sc, const node *n, jargs *out) {
    out->n = n->args.n;
    for (int i = 0; i < n->args.n; i++) {
        out->v[i] = jinja_eval_in(r, sc, n->args.v[i]);
        out->kw[i] = n->kw ? n->kw[i] : NULL;
    }
}

jv jinja_eval_in(jrender *r, jscope *sc, const node *n) {
    jv a, b;
    int c;
    switch (n->kind) {
    case E_CONST: return n->val;
    case E_NAME: {
        jv v = lookup(sc, n->val);
        return v.t == JV_UNDEF ? jv_undef(cname(r, n->val)) : v;
    }
    case E_ATTR: return get_attr(r, jinja_eval_in(r, sc, n->a), n->val, n->line);
    case E_ITEM: a = jinja_eval_in(r, sc, n->a); return get_item(r, a, jinja_eval_in(r, sc, n->b), n->line);
    case E_SLICE: return eval_slice(r, sc, n);
    case E_CALL: {
        jv f = jinja_eval_in(r, sc, n->a);
        jargs args;
        jinja_eval_args(r, sc, n, &args);
        jr_step(r, n->line);
        if (f.t == JV_UNDEF)
            jfail(r->e, SLM_ERR_UNSUPPORTED, n->line, "function '%.*s' is not supported", (int)f.u.s.n, f.u.s.p);
        if (f.t != JV_FUNC) jfail(r->e, SLM_ERR_INVALID_ARG, n->line, "a %s is not callable", jv_type_name(f));
        if (f.u.fn->kind == JF_MACRO) return call_macro(r, f.u.fn, n->line, args.n, args.v, args.kw);
        return jinja_call_builtin(r, f.u.fn, n->line, args.n, args.v, args.kw);
    }
    case E_FILTER: jr_step(r, n->line); return jinja_apply_filter(r, sc, n, jinja_eval_in(r, sc, n->a));
    case E_TEST: jr_step(r, n->line); return jv_bool(jinja_apply_test(r, sc, n, jinja_eval_in(r, sc, n->a)) != (n->op == 1));
    case E_NEG: case E_POS:
        a = jinja_eval_in(r, sc, n->a);
        if (!jv_is_number(a)) jfail(r->e, SLM_ERR_INVALID_ARG, n->line, "bad operand type for unary %c: '%s'", n->kind == E_NEG ? '-' : '+', jv_type_name(a));
        if (n->kind == E_POS) return a.t == JV_BOOL ? jv_int(a.u.b) : a;
        if (a.t == JV_FLOAT) return jv_float(-a.u.f);
        if (a.t == JV_INT && a.u.i == INT64_MIN) jfail(r->e, SLM_ERR_UNSUPPORTED, n->line, "integer results beyond 64 bits are not supported");
        return jv_int(-(a.t == JV_BOOL ? a.u.b : a.u.i));
    case E_NOT: return jv_bool(!jv_truthy(jinja_eval_in(r, sc, n->a)));
    case E_AND: a = jinja_eval_in(r, sc, n->a); return jv_truthy(a) ? jinja_eval_in(r, sc, n->b) : a;
    case E_OR: a = jinja_eval_in(r, sc, n->a); return jv_truthy(a) ? a : jinja_eval_in(r, sc, n->b);
    case E_BIN:
        a = jinja_eval_in(r, sc, n->a);
        b = jinja_eval_in(r, sc, n->b);
        return arith(r, n->op, a, b, n->line);
    case E_CONCAT: {
        a = jinja_eval_in(r, sc, n->a);
        b = jinja_eval_in(r, sc, n->b);
        jbuf s = { .err = r->e, .arena = r->a };
        jv_to_str(&s, a);
        jv_to_str(&s, b);
        jr_work(r, s.n, n->line);
        return jv_str(s.p ? s.p : "", s.n);
    }
    case E_COMPARE:
        a = jinja_eval_in(r, sc, n->a);
        b = jinja_eval_in(r, sc, n->b);
        switch (n->op) {
        case OP_EQ: case OP_NE: {
            bool eq = jv_equal(a, b);
            if (a.t == JV_STR && b.t == JV_STR) jr_work(r, a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n, n->line);
            else if (a.t == JV_LIST || a.t == JV_DICT) jr_work(r, 4096, n->line);
            return jv_bool(n->op == OP_EQ ? eq : !eq);
        }
        case OP_IN: return jv_bool(contains(r, b, a, n->line));
        case OP_NOTIN: return jv_bool(!contains(r, b, a, n->line));
        default:
            if (!jv_compare(a, b, &c)) {
                static const char *names[] = { "<", ">", "<=", ">=" };
                type_error(r, n->line, names[n->op - OP_LT], a, b);
            }
            return jv_bool(n->op == OP_LT ? c < 0 : n->op == OP_GT ? c > 0 : n->op == OP_LE ? c <= 0 : c >= 0);
        }
    case E_COND:
        if (jv_truthy(jinja_eval_in(r, sc, n->b))) return jinja_eval_in(r, sc, n->a);
        return n->c ? jinja_eval_in(r, sc, n->c) : jv_undef(NULL);
    case E_LIST: {
        jv l = jv_list_new(r->a, (size_t)n->args.n + 1);
        for (int i = 0; i < n->args.n; i++) jv_list_push(r->a, l, jinja_eval_in(r, sc, n->args.v[i]));
        return l;
    }
    case E_DICT: {
        jv d = jv_dict_new(r->a, (size_t)n->args.n / 2 + 1);
        for (int i = 0; i + 1 < n->args.n; i += 2) {
            jv k = jinja_eval_in(r, sc, n->args.v[i]);
            if (k.t != JV_STR) jfail(r->e, SLM_ERR_UNSUPPORTED, n->line, "dict keys other than strings are not supported");
            jv_dict_set(r->a, d, k, jinja_eval_in(r, sc, n->args.v[i + 1]));
        }
        return d;
    }
    default: break;
    }
    jfail(r->e, SLM_ERR_FORMAT, n->line, "not an expression");
}

/* The values a for loop walks over. */
static jv iter_items(jrender *r, jv v, int line) {
    switch (v.t) {
    case JV_UNDEF: return jv_list_new(r->a, 1);
    case JV_LIST: return v;
    case JV_DICT: {
        if (v.u.d->ns) break;
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
    default: break;
    }
    jfail(r->e, SLM_ERR_INVALID_ARG, line, "a %s is not iterable", jv_type_name(v));
}

static void bind_targets(jrender *r, jscope *sc, const node *n, jv item) {
    if (n->args.n == 1) { jv_dict_set(r->a, sc->vars, n->args.v[0]->val, item); return; }
    if (item.t != JV_LIST || item.u.l->n != (size_t)n->args.n)
        jfail(r->e, SLM_ERR_INVALID_ARG, n->line, "cannot unpack a %s into %d loop variables", jv_type_name(item), n->args.n);
    for (int k = 0; k < n->args.n; k++) jv_dict_set(r->a, sc->vars, n->args.v[k]->val, item.u.l->v[k]);
}

static jv K(const char *s) { return jv_strz(s); }

static void exec_for(jrender *r, jscope *outer, const node *n) {
    jv all = iter_items(r, jinja_eval_in(r, outer, n->a), n->line);
    jscope sc = { outer, jv_dict_new(r->a, 8) };
    jv items = all;
    if (n->b) {   /* {% for x in xs if cond %}: loop over the items that pass */
        items = jv_list_new(r->a, all.u.l->n + 1);
        for (size_t i = 0; i < all.u.l->n; i++) {
            jr_step(r, n->line);
            bind_targets(r, &sc, n, all.u.l->v[i]);
            if (jv_truthy(jinja_eval_in(r, &sc, n->b))) jv_list_push(r->a, items, all.u.l->v[i]);
        }
    }
    size_t len = items.u.l->n;
    jv loop = jv_dict_new(r->a, 12);   /* one object updated in place: loops allocate nothing per step */
    for (size_t i = 0; i < len; i++) {
        jr_step(r, n->line);
        sc.vars.u.d->n = 0;   /* like jinja2, what a body sets does not outlive its iteration */
        bind_targets(r, &sc, n, items.u.l->v[i]);
        jv_dict_set(r->a, loop, K("index"), jv_int((int64_t)i + 1));
        jv_dict_set(r->a, loop, K("index0"), jv_int((int64_t)i));
        jv_dict_set(r->a, loop, K("revindex"), jv_int((int64_t)(len - i)));
        jv_dict_set(r->a, loop, K("revindex0"), jv_int((int64_t)(len - i - 1)));
        jv_dict_set(r->a, loop, K("first"), jv_bool(i == 0));
        jv_dict_set(r->a, loop, K("last"), jv_bool(i + 1 == len));
        jv_dict_set(r->a, loop, K("length"), jv_int((int64_t)len));
        jv_dict_set(r->a, loop, K("depth"), jv_int(1));
        jv_dict_set(r->a, loop, K("depth0"), jv_int(0));
        jv_dict_set(r->a, loop, K("previtem"), i ? items.u.l->v[i - 1] : jv_undef("loop.previtem"));
        jv_dict_set(r->a, loop, K("nextitem"), i + 1 < len ? items.u.l->v[i + 1] : jv_undef("loop.nextitem"));
        jv_dict_set(r->a, sc.vars, K("loop"), loop);
        jinja_exec(r, &sc, &n->body);
        int ctl = r->loop_ctl;
        r->loop_ctl = 0;
        if (ctl == 1) break;
    }
    if (len == 0) jinja_exec(r, outer, &n->orelse);
}

static void exec_stmt(jrender *r, jscope *sc, const node *n) {
    switch (n->kind) {
    case N_TEXT: jb_add(r->out, n->val.u.s.p, n->val.u.s.n); jr_work(r, n->val.u.s.n, n->line); return;
    case N_OUTPUT: {
        size_t before = r->out->n;
        jv_to_str(r->out, jinja_eval_in(r, sc, n->a));
        jr_work(r, r->out->n - before, n->line);
        return;
    }
    case N_IF:
        jinja_exec(r, sc, jv_truthy(jinja_eval_in(r, sc, n->a)) ? &n->body : &n->orelse);
        return;
    case N_FOR:
        if (++r->depth > JINJA_MAX_DEPTH) jfail(r->e, SLM_ERR_INVALID_ARG, n->line, "blocks nested too deeply");
        exec_for(r, sc, n);
        r->depth--;
        return;
    case N_SET: jv_dict_set(r->a, sc->vars, n->val, jinja_eval_in(r, sc, n->b)); return;
    case N_SET_ATTR: {
        jv ns = jinja_eval_in(r, sc, n->a);
        if (ns.t != JV_DICT || !ns.u.d->ns)
            jfail(r->e, SLM_ERR_INVALID_ARG, n->line, "cannot assign an attribute of a %s (only of a namespace)", jv_type_name(ns));
        jv_dict_set(r->a, ns, n->val, jinja_eval_in(r, sc, n->b));
        return;
    }
    case N_SET_BLOCK: {
        jbuf b = { .err = r->e, .arena = r->a, .limit = JINJA_MAX_OUTPUT };
        jbuf *saved = r->out;
        r->out = &b;
        jinja_exec(r, sc, &n->body);
        r->out = saved;
        jv_dict_set(r->a, sc->vars, n->val, jv_str(b.p ? b.p : "", b.n));
        return;
    }
    case N_MACRO: {
        jv f = { .t = JV_FUNC };
        f.u.fn = ja_alloc(r->a, sizeof *f.u.fn);
        f.u.fn->kind = JF_MACRO;
        f.u.fn->name = cname(r, n->val);
        f.u.fn->macro = n;
        f.u.fn->scope = sc;
        jv_dict_set(r->a, sc->vars, n->val, f);
        return;
    }
    case N_BREAK: r->loop_ctl = 1; return;
    case N_CONTINUE: r->loop_ctl = 2; return;
    default: jfail(r->e, SLM_ERR_FORMAT, n->line, "not a statement");
    }
}

void jinja_exec(jrender *r, jscope *sc, const nlist *body) {
    for (int i = 0; i < body->n && !r->loop_ctl; i++) exec_stmt(r, sc, body->v[i]);
}

typedef struct render_state {
    jerr e;
    jarena a;
    jbuf out;
    tokens tk;
    jscope globals, top;
    jrender r;
} render_state;

slm_status jinja_render(const char *tmpl, size_t tlen, const char *ctx_json,
                        const jinja_options *opt, char **out, size_t *out_len) {
    *out = NULL;
    if (out_len) *out_len = 0;
    /* everything a failure must release lives in one heap block */
    render_state *S = calloc(1, sizeof *S);
    if (!S) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    S->a.err = &S->e;
    S->out.err = &S->e;
    S->out.limit = JINJA_MAX_OUTPUT;
    if (setjmp(S->e.jb)) {
        slm_status st = S->e.st;
        slm_fail(st, "%s", S->e.msg);
        ja_free(&S->a);
        free(S->out.p);
        free(S);
        return st;
    }
    static const jinja_options defaults = { 0 };
    jrender *r = &S->r;
    r->a = &S->a;
    r->e = &S->e;
    r->out = &S->out;
    r->opt = opt ? opt : &defaults;
    jinja_lex(&S->a, tmpl, tlen, &S->tk);
    nlist prog = jinja_parse(&S->a, &S->e, &S->tk);
    jv ctx = json_parse(&S->a, ctx_json ? ctx_json : "{}", ctx_json ? strlen(ctx_json) : 2);
    if (ctx.t != JV_DICT) jfail(&S->e, SLM_ERR_INVALID_ARG, 0, "the variables must be a JSON object");
    S->globals.vars = jv_dict_new(&S->a, 16);
    jinja_add_globals(r, S->globals.vars);
    for (size_t i = 0; i < ctx.u.d->n; i++) jv_dict_set(&S->a, S->globals.vars, ctx.u.d->k[i], ctx.u.d->v[i]);
    r->globals = &S->globals;
    S->top.parent = &S->globals;
    S->top.vars = jv_dict_new(&S->a, 16);
    jinja_exec(r, &S->top, &prog);
    jb_add(&S->out, "", 0);   /* a NUL-terminated buffer even when empty */
    *out = S->out.p;
    if (out_len) *out_len = S->out.n;
    ja_free(&S->a);
    free(S);
    return SLM_OK;
}
