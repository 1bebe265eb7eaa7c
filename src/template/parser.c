/* Tokens into a syntax tree, by recursive descent with jinja2's operator
 * precedence: conditional < or < and < not < comparisons < + - < ~ <
 * * / // % < ** < unary - < postfix (. [] () | is). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template/jinja_int.h"

typedef struct {
    jarena *a;
    jerr *e;
    const tokens *tk;
    size_t i;
    int depth;
    int loops;   /* for loops open around the current statement */
} parser;

void nl_push(jarena *a, nlist *l, node *n) {
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 4;
        node **v = ja_alloc(a, (size_t)cap * sizeof *v);
        if (l->n) memcpy(v, l->v, (size_t)l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = n;
}

static const token *cur(parser *P) { return &P->tk->v[P->i]; }
static const token *peek_at(parser *P, size_t k) {
    return P->i + k < P->tk->n ? &P->tk->v[P->i + k] : &P->tk->v[P->tk->n - 1];
}
static void next(parser *P) { if (cur(P)->t != TK_EOF) P->i++; }

static bool tok_is(const token *t, tk_type ty, const char *s) {
    return t->t == ty && (!s || (t->n == strlen(s) && !memcmp(t->p, s, t->n)));
}
static bool is_op(parser *P, const char *s) { return tok_is(cur(P), TK_OP, s); }
static bool is_name(parser *P, const char *s) { return tok_is(cur(P), TK_NAME, s); }

static _Noreturn void syntax(parser *P, const char *what) {
    const token *t = cur(P);
    const char *desc = t->t == TK_EOF ? "end of template" : t->t == TK_BLOCK_END ? "end of tag"
                     : t->t == TK_VAR_END ? "end of output tag" : NULL;
    if (desc) jfail(P->e, SLM_ERR_FORMAT, t->line, "%s, found %s", what, desc);
    jfail(P->e, SLM_ERR_FORMAT, t->line, "%s, found '%.*s'", what, (int)(t->n > 40 ? 40 : t->n), t->p);
}

static void expect_op(parser *P, const char *s) {
    if (!is_op(P, s)) {
        char m[64];
        snprintf(m, sizeof m, "expected '%s'", s);
        syntax(P, m);
    }
    next(P);
}

static void expect_end(parser *P) {
    if (cur(P)->t != TK_BLOCK_END) syntax(P, "expected the end of the tag");
    next(P);
}

static node *mk(parser *P, node_kind k, int line) {
    node *n = ja_alloc(P->a, sizeof *n);
    n->kind = k;
    n->line = line;
    return n;
}

static jv tok_str(const token *t) { return jv_str(t->p, t->n); }

static node *expr(parser *P);
static node *unary(parser *P, bool with_filter);

static void enter(parser *P) {
    if (++P->depth > JINJA_MAX_DEPTH * 2)
        jfail(P->e, SLM_ERR_UNSUPPORTED, cur(P)->line, "expressions or blocks nested more than %d deep", JINJA_MAX_DEPTH * 2);
}

/* "(a, b=c)": positional and keyword arguments; the "(" is current. */
static void call_args(parser *P, node *n) {
    expect_op(P, "(");
    const char *kw[64];
    int nk = 0;
    while (!is_op(P, ")")) {
        if (n->args.n) expect_op(P, ",");
        if (is_op(P, ")")) break;   /* trailing comma */
        if (is_op(P, "*") || is_op(P, "**"))
            jfail(P->e, SLM_ERR_UNSUPPORTED, cur(P)->line, "*args and **kwargs in calls are not supported");
        const char *name = NULL;
        if (cur(P)->t == TK_NAME && tok_is(peek_at(P, 1), TK_OP, "=")) {
            name = ja_strndup(P->a, cur(P)->p, cur(P)->n);
            next(P);
            next(P);
        }
        if (nk >= 16) jfail(P->e, SLM_ERR_UNSUPPORTED, cur(P)->line, "more than 16 arguments in a call");
        kw[nk++] = name;
        nl_push(P->a, &n->args, expr(P));
    }
    next(P);
    n->kw = ja_alloc(P->a, (size_t)(nk ? nk : 1) * sizeof *n->kw);
    memcpy(n->kw, kw, (size_t)nk * sizeof *kw);
}

static node *primary(parser *P) {
    const token *t = cur(P);
    node *n;
    switch (t->t) {
    case TK_NAME:
        n = mk(P, E_CONST, t->line);
        if (tok_is(t, TK_NAME, "true") || tok_is(t, TK_NAME, "True")) n->val = jv_bool(true);
        else if (tok_is(t, TK_NAME, "false") || tok_is(t, TK_NAME, "False")) n->val = jv_bool(false);
        else if (tok_is(t, TK_NAME, "none") || tok_is(t, TK_NAME, "None")) n->val = jv_none();
        else { n->kind = E_NAME; n->val = tok_str(t); }
        next(P);
        return n;
    case TK_STRING: {
        /* adjacent literals concatenate */
        jbuf b = { .err = P->e, .arena = P->a };
        int line = t->line;
        while (cur(P)->t == TK_STRING) { jb_add(&b, cur(P)->p, cur(P)->n); next(P); }
        n = mk(P, E_CONST, line);
        n->val = jb_take(&b, P->a);
            return n;
    }
    case TK_INT: n = mk(P, E_CONST, t->line); n->val = jv_int(t->i); next(P); return n;
    case TK_FLOAT: n = mk(P, E_CONST, t->line); n->val = jv_float(t->f); next(P); return n;
    case TK_OP:
        if (is_op(P, "(")) {
            next(P);
            if (is_op(P, ")")) { next(P); return mk(P, E_LIST, t->line); }   /* () */
            node *first = expr(P);
            if (!is_op(P, ",")) { expect_op(P, ")"); return first; }
            n = mk(P, E_LIST, t->line);    /* a tuple behaves as a list here */
            nl_push(P->a, &n->args, first);
            while (is_op(P, ",")) { next(P); if (is_op(P, ")")) break; nl_push(P->a, &n->args, expr(P)); }
            expect_op(P, ")");
            return n;
        }
        if (is_op(P, "[")) {
            next(P);
            n = mk(P, E_LIST, t->line);
            while (!is_op(P, "]")) {
                if (n->args.n) expect_op(P, ",");
                if (is_op(P, "]")) break;
                nl_push(P->a, &n->args, expr(P));
            }
            next(P);
            return n;
        }
        if (is_op(P, "{")) {
            next(P);
            n = mk(P, E_DICT, t->line);
            while (!is_op(P, "}")) {
                if (n->args.n) expect_op(P, ",");
                if (is_op(P, "}")) break;
                nl_push(P->a, &n->args, expr(P));
                expect_op(P, ":");
                nl_push(P->a, &n->args, expr(P));
            }
            next(P);
            return n;
        }
        break;
    default: break;
    }
    syntax(P, "expected an expression");
}

static node *postfix(parser *P, node *n) {
    for (;;) {
        const token *t = cur(P);
        if (is_op(P, ".")) {
            next(P);
            node *m = mk(P, E_ATTR, t->line);
            m->a = n;
            if (cur(P)->t == TK_NAME) m->val = tok_str(cur(P));
            else if (cur(P)->t == TK_INT) { m->kind = E_ITEM; m->b = mk(P, E_CONST, t->line); m->b->val = jv_int(cur(P)->i); }
            else syntax(P, "expected an attribute name after '.'");
            next(P);
            n = m;
        } else if (is_op(P, "[")) {
            next(P);
            node *idx[3] = { NULL, NULL, NULL };
            int parts = 0;
            bool slice = false;
            for (;;) {
                if (!is_op(P, ":") && !is_op(P, "]")) idx[parts] = expr(P);
                if (is_op(P, ":") && parts < 2) { slice = true; parts++; next(P); continue; }
                break;
            }
            expect_op(P, "]");
            node *m = mk(P, slice ? E_SLICE : E_ITEM, t->line);
            m->a = n;
            if (slice) { m->b = idx[0]; m->c = idx[1]; if (idx[2]) nl_push(P->a, &m->args, idx[2]); }
            else {
                if (!idx[0]) syntax(P, "expected an index");
                m->b = idx[0];
            }
            n = m;
        } else if (is_op(P, "(")) {
            node *m = mk(P, E_CALL, t->line);
            m->a = n;
            call_args(P, m);
            n = m;
        } else {
            return n;
        }
    }
}

static node *filter_expr(parser *P, node *n) {
    for (;;) {
        const token *t = cur(P);
        if (is_op(P, "|")) {
            next(P);
            if (cur(P)->t != TK_NAME) syntax(P, "expected a filter name");
            node *m = mk(P, E_FILTER, t->line);
            m->a = n;
            m->val = tok_str(cur(P));   /* an unknown filter fails when it runs, as in jinja2's lazy branches */
            next(P);
            if (is_op(P, "(")) call_args(P, m);
            n = m;
        } else if (is_name(P, "is")) {
            next(P);
            node *m = mk(P, E_TEST, t->line);
            m->a = n;
            if (is_name(P, "not")) { m->op = 1; next(P); }
            if (cur(P)->t != TK_NAME) syntax(P, "expected a test name");
            m->val = tok_str(cur(P));
            next(P);
            const token *c = cur(P);
            if (is_op(P, "(")) call_args(P, m);
            else if ((c->t == TK_NAME || c->t == TK_STRING || c->t == TK_INT || c->t == TK_FLOAT ||
                      is_op(P, "[") || is_op(P, "{")) &&
                     !is_name(P, "else") && !is_name(P, "or") && !is_name(P, "and")) {
                nl_push(P->a, &m->args, postfix(P, primary(P)));
                m->kw = ja_alloc(P->a, sizeof *m->kw);
            }
            n = m;
            if (is_name(P, "is")) jfail(P->e, SLM_ERR_FORMAT, cur(P)->line, "tests cannot be chained with 'is'");
        } else if (is_op(P, "(")) {
            node *m = mk(P, E_CALL, t->line);
            m->a = n;
            call_args(P, m);
            n = m;
        } else {
            return n;
        }
    }
}

static node *unary(parser *P, bool with_filter) {
    const token *t = cur(P);
    node *n;
    enter(P);
    if (is_op(P, "-") || is_op(P, "+")) {
        next(P);
        n = mk(P, tok_is(t, TK_OP, "-") ? E_NEG : E_POS, t->line);
        n->a = unary(P, false);
    } else {
        n = postfix(P, primary(P));
    }
    if (with_filter) n = filter_expr(P, n);
    P->depth--;
    return n;
}

static node *binary(parser *P, node_kind k, int op, node *l, node *r, int line) {
    node *n = mk(P, k, line);
    n->op = op;
    n->a = l;
    n->b = r;
    return n;
}

static node *power(parser *P) {
    node *n = unary(P, true);
    while (is_op(P, "**")) { int line = cur(P)->line; next(P); n = binary(P, E_BIN, OP_POW, n, unary(P, true), line); }
    return n;
}

static node *math2(parser *P) {
    node *n = power(P);
    for (;;) {
        int op = is_op(P, "*") ? OP_MUL : is_op(P, "/") ? OP_DIV : is_op(P, "//") ? OP_FLOORDIV : is_op(P, "%") ? OP_MOD : -1;
        if (op < 0) return n;
        int line = cur(P)->line;
        next(P);
        n = binary(P, E_BIN, op, n, power(P), line);
    }
}

static node *concat(parser *P) {
    node *n = math2(P);
    while (is_op(P, "~")) { int line = cur(P)->line; next(P); n = binary(P, E_CONCAT, 0, n, math2(P), line); }
    return n;
}

static node *math1(parser *P) {
    node *n = concat(P);
    for (;;) {
        int op = is_op(P, "+") ? OP_ADD : is_op(P, "-") ? OP_SUB : -1;
        if (op < 0) return n;
        int line = cur(P)->line;
        next(P);
        n = binary(P, E_BIN, op, n, concat(P), line);
    }
}

/* Chains (a < b < c) become (a < b) and (b < c). */
static node *compare(parser *P) {
    node *left = math1(P), *result = NULL;
    for (;;) {
        int line = cur(P)->line, op;
        if (is_op(P, "==")) op = OP_EQ;
        else if (is_op(P, "!=")) op = OP_NE;
        else if (is_op(P, "<")) op = OP_LT;
        else if (is_op(P, ">")) op = OP_GT;
        else if (is_op(P, "<=")) op = OP_LE;
        else if (is_op(P, ">=")) op = OP_GE;
        else if (is_name(P, "in")) op = OP_IN;
        else if (is_name(P, "not") && tok_is(peek_at(P, 1), TK_NAME, "in")) { op = OP_NOTIN; next(P); }
        else return result ? result : left;
        next(P);
        node *right = math1(P);
        node *c = binary(P, E_COMPARE, op, left, right, line);
        result = result ? binary(P, E_AND, 0, result, c, line) : c;
        left = right;
    }
}

static node *not_expr(parser *P) {
    if (is_name(P, "not")) {
        int line = cur(P)->line;
        next(P);
        enter(P);
        node *n = mk(P, E_NOT, line);
        n->a = not_expr(P);
        P->depth--;
        return n;
    }
    return compare(P);
}

static node *and_expr(parser *P) {
    node *n = not_expr(P);
    while (is_name(P, "and")) { int line = cur(P)->line; next(P); n = binary(P, E_AND, 0, n, not_expr(P), line); }
    return n;
}

static node *or_expr(parser *P) {
    node *n = and_expr(P);
    while (is_name(P, "or")) { int line = cur(P)->line; next(P); n = binary(P, E_OR, 0, n, and_expr(P), line); }
    return n;
}

static node *expr(parser *P) {
    enter(P);
    node *n = or_expr(P);
    while (is_name(P, "if")) {
        node *c = mk(P, E_COND, cur(P)->line);
        next(P);
        c->a = n;
        c->b = or_expr(P);
        if (is_name(P, "else")) { next(P); c->c = expr(P); }
        n = c;
    }
    P->depth--;
    return n;
}

/* ---- statements ---------------------------------------------------------- */

static nlist body_until(parser *P, const char *const *ends, const char **which);

static node *stmt_if(parser *P, int line) {
    node *n = mk(P, N_IF, line);
    n->a = expr(P);
    expect_end(P);
    static const char *const ends[] = { "elif", "else", "endif", NULL };
    const char *w;
    n->body = body_until(P, ends, &w);
    if (!strcmp(w, "elif")) {
        nl_push(P->a, &n->orelse, stmt_if(P, cur(P)->line));
        return n;
    }
    if (!strcmp(w, "else")) {
        expect_end(P);
        static const char *const end2[] = { "endif", NULL };
        n->orelse = body_until(P, end2, &w);
    }
    expect_end(P);
    return n;
}

static node *stmt_for(parser *P, int line) {
    node *n = mk(P, N_FOR, line);
    do {
        if (cur(P)->t != TK_NAME) syntax(P, "expected a loop variable");
        node *t = mk(P, E_NAME, cur(P)->line);
        t->val = tok_str(cur(P));
        nl_push(P->a, &n->args, t);
        next(P);
        if (!is_op(P, ",")) break;
        next(P);
    } while (1);
    if (!is_name(P, "in")) syntax(P, "expected 'in'");
    next(P);
    n->a = or_expr(P);   /* the iterable; an "if" after it filters */
    if (is_name(P, "if")) { next(P); n->b = expr(P); }
    if (is_name(P, "recursive")) jfail(P->e, SLM_ERR_UNSUPPORTED, line, "recursive for loops are not supported");
    expect_end(P);
    static const char *const ends[] = { "else", "endfor", NULL };
    const char *w;
    P->loops++;
    n->body = body_until(P, ends, &w);
    P->loops--;
    if (!strcmp(w, "else")) {
        expect_end(P);
        static const char *const end2[] = { "endfor", NULL };
        n->orelse = body_until(P, end2, &w);
    }
    expect_end(P);
    return n;
}

static node *stmt_set(parser *P, int line) {
    if (cur(P)->t != TK_NAME) syntax(P, "expected a variable name after 'set'");
    node *n = mk(P, N_SET, line);
    n->val = tok_str(cur(P));
    next(P);
    if (is_op(P, ".")) {
        next(P);
        if (cur(P)->t != TK_NAME) syntax(P, "expected an attribute name");
        n->kind = N_SET_ATTR;
        n->a = mk(P, E_NAME, line);
        n->a->val = n->val;
        n->val = tok_str(cur(P));
        next(P);
    } else if (is_op(P, ",")) {
        jfail(P->e, SLM_ERR_UNSUPPORTED, line, "assigning to several names in one 'set' is not supported");
    }
    if (cur(P)->t == TK_BLOCK_END && n->kind == N_SET) {
        next(P);
        n->kind = N_SET_BLOCK;
        static const char *const ends[] = { "endset", NULL };
        const char *w;
        n->body = body_until(P, ends, &w);
        expect_end(P);
        return n;
    }
    if (is_op(P, "|")) jfail(P->e, SLM_ERR_UNSUPPORTED, line, "filtered 'set' blocks are not supported");
    expect_op(P, "=");
    n->b = expr(P);
    if (is_op(P, ",")) {   /* set x = a, b: a tuple */
        node *l = mk(P, E_LIST, line);
        nl_push(P->a, &l->args, n->b);
        while (is_op(P, ",")) { next(P); nl_push(P->a, &l->args, expr(P)); }
        n->b = l;
    }
    expect_end(P);
    return n;
}

static node *stmt_macro(parser *P, int line) {
    if (cur(P)->t != TK_NAME) syntax(P, "expected a macro name");
    node *n = mk(P, N_MACRO, line);
    n->val = tok_str(cur(P));
    next(P);
    expect_op(P, "(");
    while (!is_op(P, ")")) {
        if (n->args.n) expect_op(P, ",");
        if (cur(P)->t != TK_NAME) syntax(P, "expected a parameter name");
        node *p = mk(P, E_NAME, cur(P)->line);
        p->val = tok_str(cur(P));
        next(P);
        nl_push(P->a, &n->args, p);
        node *def = NULL;
        if (is_op(P, "=")) { next(P); def = expr(P); }
        nl_push(P->a, &n->defs, def);
    }
    next(P);
    expect_end(P);
    static const char *const ends[] = { "endmacro", NULL };
    const char *w;
    int loops = P->loops;
    P->loops = 0;
    n->body = body_until(P, ends, &w);
    P->loops = loops;
    if (cur(P)->t == TK_NAME) next(P);   /* {% endmacro name %} */
    expect_end(P);
    return n;
}

/* Statements up to a {% word %} with word in ends; leaves the parser after
 * the word (its tag end not consumed) and sets *which. */
static nlist body_until(parser *P, const char *const *ends, const char **which) {
    nlist body = { 0 };
    enter(P);
    for (;;) {
        const token *t = cur(P);
        if (t->t == TK_EOF) {
            if (ends) {
                char m[80];
                snprintf(m, sizeof m, "missing '{%% %s %%}'", ends[0][0] == 'e' && ends[1] ? ends[1] : ends[0]);
                for (int k = 0; ends[k]; k++) if (!strncmp(ends[k], "end", 3)) snprintf(m, sizeof m, "missing '{%% %s %%}'", ends[k]);
                syntax(P, m);
            }
            break;
        }
        if (t->t == TK_TEXT) {
            node *n = mk(P, N_TEXT, t->line);
            n->val = jv_str(t->p, t->n);
            nl_push(P->a, &body, n);
            next(P);
            continue;
        }
        if (t->t == TK_VAR_BEGIN) {
            next(P);
            node *n = mk(P, N_OUTPUT, t->line);
            n->a = expr(P);
            if (cur(P)->t != TK_VAR_END) syntax(P, "expected '}}'");
            next(P);
            nl_push(P->a, &body, n);
            continue;
        }
        if (t->t != TK_BLOCK_BEGIN) syntax(P, "unexpected token");
        next(P);
        const token *w = cur(P);
        if (w->t != TK_NAME) syntax(P, "expected a tag name");
        if (ends)
            for (int k = 0; ends[k]; k++)
                if (tok_is(w, TK_NAME, ends[k])) { *which = ends[k]; next(P); P->depth--; return body; }
        int line = w->line;
        next(P);
        node *n;
        if (tok_is(w, TK_NAME, "if")) n = stmt_if(P, line);
        else if (tok_is(w, TK_NAME, "for")) n = stmt_for(P, line);
        else if (tok_is(w, TK_NAME, "set")) n = stmt_set(P, line);
        else if (tok_is(w, TK_NAME, "macro")) n = stmt_macro(P, line);
        else if (tok_is(w, TK_NAME, "break") || tok_is(w, TK_NAME, "continue")) {
            if (!P->loops) jfail(P->e, SLM_ERR_FORMAT, line, "'%.*s' outside a for loop", (int)w->n, w->p);
            n = mk(P, tok_is(w, TK_NAME, "break") ? N_BREAK : N_CONTINUE, line);
            expect_end(P);
        } else if (tok_is(w, TK_NAME, "elif") || tok_is(w, TK_NAME, "else") || tok_is(w, TK_NAME, "endif") ||
                   tok_is(w, TK_NAME, "endfor") || tok_is(w, TK_NAME, "endset") || tok_is(w, TK_NAME, "endmacro")) {
            jfail(P->e, SLM_ERR_FORMAT, line, "unexpected '{%% %.*s %%}'", (int)w->n, w->p);
        } else {
            jfail(P->e, SLM_ERR_UNSUPPORTED, line, "the '%.*s' tag is not supported", (int)(w->n > 40 ? 40 : w->n), w->p);
        }
        nl_push(P->a, &body, n);
    }
    P->depth--;
    return body;
}

nlist jinja_parse(jarena *a, jerr *e, const tokens *tk) {
    parser P = { a, e, tk, 0, 0, 0 };
    const char *w = NULL;
    return body_until(&P, NULL, &w);
}
