/* The chat-template interpreter against jinja2: every template in
 * tests/fixtures/templates/ over the conversations of expected.json and the
 * small expression templates there must render byte for byte as jinja2
 * rendered them (scripts/gen_template_fixtures.py), and fail where jinja2
 * failed (raise_exception's message passed on). Then the error cases the
 * interpreter promises: unsupported constructs, syntax errors and limits
 * give a status and a message naming the problem and its line. */
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "template/jinja.h"
#include "template/jinja_int.h"
#include "testlib.h"

static jerr E;
static jarena A = { .err = &E };

static jv get(jv d, const char *k) {
    jv *v = d.t == JV_DICT ? jv_dict_get(d, k, strlen(k)) : NULL;
    return v ? *v : jv_undef(k);
}

static char *cstr(jv s) { return ja_strndup(&A, s.u.s.p, s.u.s.n); }

static char *to_json(jv v) {
    jbuf b = { .err = &E, .arena = &A };
    jv_to_json(&b, v, -1, false, 0);
    return b.p;
}

static struct tm NOW;
static int n_compared;   /* check_case calls that compared an output or an error */

/* Renders and compares with one expected record ({output} or {error, message}). */
static void check_case(const char *what, const char *tmpl, size_t tlen, const char *ctx, jv expect) {
    char *out = NULL;
    size_t n = 0;
    jinja_options opt = { &NOW };
    slm_status st = jinja_render(tmpl, tlen, ctx, &opt, &out, &n);
    n_compared++;
    jv want = get(expect, "output");
    if (want.t == JV_STR) {
        CHECKF(st == SLM_OK, "%s: failed: %s", what, slm_last_error());
        if (st == SLM_OK) {
            bool same = n == want.u.s.n && !memcmp(out, want.u.s.p, n);
            CHECKF(same, "%s: output differs\n--- jinja2 ---\n%.*s\n--- ours ---\n%s\n---", what,
                   (int)want.u.s.n, want.u.s.p, out);
        }
    } else {
        jv kind = get(expect, "error"), msg = get(expect, "message");
        CHECKF(st != SLM_OK, "%s: rendered, but jinja2 failed with %.*s", what, (int)kind.u.s.n, kind.u.s.p);
        if (st != SLM_OK && kind.t == JV_STR && kind.u.s.n == 15 && !memcmp(kind.u.s.p, "raise_exception", 15)) {
            CHECKF(st == SLM_ERR_INVALID_ARG, "%s: status %d", what, st);
            CHECKF(strstr(slm_last_error(), cstr(msg)) != NULL, "%s: message '%s' lacks '%s'", what, slm_last_error(), cstr(msg));
        }
    }
    free(out);
}

static void golden(void) {
    size_t len;
    char *txt = test_read_file("tests/fixtures/templates/expected.json", &len);
    CHECK(txt != NULL);
    if (!txt) return;
    jv root = json_parse(&A, txt, len);
    jv now = get(root, "now");
    CHECK(now.t == JV_LIST && now.u.l->n == 6);
    NOW.tm_year = (int)now.u.l->v[0].u.i - 1900;
    NOW.tm_mon = (int)now.u.l->v[1].u.i - 1;
    NOW.tm_mday = (int)now.u.l->v[2].u.i;
    NOW.tm_hour = (int)now.u.l->v[3].u.i;
    NOW.tm_min = (int)now.u.l->v[4].u.i;
    NOW.tm_sec = (int)now.u.l->v[5].u.i;
    time_t t = timegm(&NOW);   /* fills weekday and day of year */
    gmtime_r(&t, &NOW);

    jv tmpls = get(root, "templates");
    int n_cases = 0;
    for (size_t i = 0; i < tmpls.u.l->n; i++) {
        jv tm = tmpls.u.l->v[i], cases = get(tm, "cases");
        char path[256];
        snprintf(path, sizeof path, "tests/fixtures/templates/%s", cstr(get(tm, "file")));
        size_t tlen;
        char *src = test_read_file(path, &tlen);
        CHECKF(src != NULL, "cannot read %s", path);
        if (!src) continue;
        for (size_t k = 0; k < cases.u.l->n; k++) {
            jv c = cases.u.l->v[k];
            char what[128];
            snprintf(what, sizeof what, "%s/%s", cstr(get(tm, "family")), cstr(get(c, "name")));
            check_case(what, src, tlen, to_json(get(c, "context")), c);
            n_cases++;
        }
        free(src);
    }
    jv exprs = get(root, "expressions");
    char *vars = to_json(get(root, "expression_vars"));
    for (size_t i = 0; i < exprs.u.l->n; i++) {
        jv x = exprs.u.l->v[i];
        jv src = get(x, "template");
        char what[64];
        snprintf(what, sizeof what, "expression %zu", i);
        check_case(what, src.u.s.p, src.u.s.n, vars, x);
    }
    printf("%d template cases, %zu expressions compared with jinja2\n", n_cases, exprs.u.l->n);
    /* The fixture holds 11 chat templates x 9 conversations and 66
     * expressions (docs/TESTING.md): fewer means a fixture or reader that
     * lost cases, which must not pass as a smaller green run. */
    CHECKF(tmpls.u.l->n >= 11, "only %zu chat templates in the fixture (want >= 11)", tmpls.u.l->n);
    CHECKF(n_cases >= 99, "only %d template cases compared (want >= 99)", n_cases);
    CHECKF(exprs.u.l->n >= 66, "only %zu expressions compared (want >= 66)", exprs.u.l->n);
    CHECKF(n_compared == n_cases + (int)exprs.u.l->n, "%d comparisons for %d cases", n_compared,
           n_cases + (int)exprs.u.l->n);
    free(txt);
}

/* A template that must fail with `st` and a message containing `needle`. */
static void expect_error(const char *tmpl, const char *ctx, slm_status st, const char *needle) {
    char *out = NULL;
    slm_status got = jinja_render(tmpl, strlen(tmpl), ctx ? ctx : "{}", NULL, &out, NULL);
    CHECKF(got == st, "'%s': status %d (%s), want %d", tmpl, got, slm_last_error(), st);
    CHECKF(got == SLM_OK || strstr(slm_last_error(), needle), "'%s': message '%s' lacks '%s'", tmpl, slm_last_error(), needle);
    CHECK(got != SLM_OK ? out == NULL : true);
    free(out);
}

static void errors(void) {
    /* valid Jinja we do not implement: named, with the line */
    expect_error("a\n{{ x | dictsort }}", NULL, SLM_ERR_UNSUPPORTED, "line 2: filter 'dictsort'");
    expect_error("{% include 'other.j2' %}", NULL, SLM_ERR_UNSUPPORTED, "line 1: the 'include' tag");
    expect_error("\n\n{% extends 'base' %}", NULL, SLM_ERR_UNSUPPORTED, "line 3: the 'extends' tag");
    expect_error("{% generation %}x{% endgeneration %}", NULL, SLM_ERR_UNSUPPORTED, "'generation' tag");
    expect_error("{% for x in y recursive %}{% endfor %}", NULL, SLM_ERR_UNSUPPORTED, "recursive");
    expect_error("{% if x is sameish %}{% endif %}", NULL, SLM_ERR_UNSUPPORTED, "test 'sameish'");
    expect_error("{{ '%s' % 'x' }}", NULL, SLM_ERR_UNSUPPORTED, "formatting");
    expect_error("{{ 'x'.format(1) }}", NULL, SLM_ERR_UNSUPPORTED, "'str.format' is not supported");
    expect_error("{{ cycler(1, 2) }}", NULL, SLM_ERR_UNSUPPORTED, "function 'cycler'");
    expect_error("{{ f(*args) }}", NULL, SLM_ERR_UNSUPPORTED, "*args");
    /* not Jinja at all */
    expect_error("hello {{ name", NULL, SLM_ERR_FORMAT, "line 1: unterminated '{{' tag");
    expect_error("{% if x %}never closed", NULL, SLM_ERR_FORMAT, "endif");
    expect_error("x\n{# open comment", NULL, SLM_ERR_FORMAT, "line 2: unterminated comment");
    expect_error("{% for %}{% endfor %}", NULL, SLM_ERR_FORMAT, "loop variable");
    expect_error("{{ 'abc }}", NULL, SLM_ERR_FORMAT, "unterminated string");
    expect_error("{% endif %}", NULL, SLM_ERR_FORMAT, "unexpected");
    expect_error("{% break %}", NULL, SLM_ERR_FORMAT, "outside a for loop");
    expect_error("{{ (1 + }}", NULL, SLM_ERR_FORMAT, "unexpected '}', expected ')'");
    expect_error("{{ 1 + }}", NULL, SLM_ERR_FORMAT, "expected an expression");
    expect_error("{{ x }}", "[1, 2]", SLM_ERR_INVALID_ARG, "JSON object");
    expect_error("{{ x }}", "{\"x\": ", SLM_ERR_INVALID_ARG, "variables JSON");
    /* rendering failures */
    expect_error("line one\n{{ raise_exception('Roles must alternate!') }}", NULL, SLM_ERR_INVALID_ARG,
                 "line 2: raise_exception: Roles must alternate!");
    expect_error("{{ missing.attr }}", NULL, SLM_ERR_INVALID_ARG, "'missing' is undefined");
    expect_error("{{ 'a' + 1 }}", NULL, SLM_ERR_INVALID_ARG, "unsupported operand types for +: 'str' and 'int'");
    expect_error("{{ 1 // 0 }}", NULL, SLM_ERR_INVALID_ARG, "by zero");
    expect_error("{% set x = 1 %}{% set x.y = 2 %}", NULL, SLM_ERR_INVALID_ARG, "namespace");
    expect_error("{% for x in 5 %}{% endfor %}", NULL, SLM_ERR_INVALID_ARG, "not iterable");
    /* limits: every render ends */
    expect_error("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", NULL,
                 SLM_ERR_INVALID_ARG, "runs too long");
    expect_error("{{ 'xxxxxxxxxxxxxxxx' * 10000000 }}", NULL, SLM_ERR_INVALID_ARG, "too long");
    expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, SLM_ERR_INVALID_ARG, "too deeply");
    char deep[1200];
    memset(deep, '(', 600);
    strcpy(deep + 600, "1");
    memset(deep + 601, ')', 590);
    deep[1191] = '\0';
    char tmpl[1300];
    snprintf(tmpl, sizeof tmpl, "{{ %s }}", deep);
    expect_error(tmpl, NULL, SLM_ERR_UNSUPPORTED, "nested more than");
    memset(deep, '-', 600);   /* deep unary operators: the parser's own bound */
    strcpy(deep + 600, "1");
    snprintf(tmpl, sizeof tmpl, "{{ %s }}", deep);
    expect_error(tmpl, NULL, SLM_ERR_UNSUPPORTED, "nested more than");
    expect_error("{{ 9999999999999999999999 }}", NULL, SLM_ERR_UNSUPPORTED, "64 bits");
}

static void basics(void) {
    /* options: NULL uses the clock; strftime_now gives a non-empty date */
    char *out = NULL;
    const char *year = "{{ strftime_now('%Y') }}";
    CHECK(jinja_render(year, strlen(year), "{}", NULL, &out, NULL) == SLM_OK);
    CHECK(out && strlen(out) == 4);
    free(out);
    size_t n = 99;
    CHECK(jinja_render("", 0, NULL, NULL, &out, &n) == SLM_OK && out && n == 0 && out[0] == '\0');
    free(out);
}

/* slm_chat_format on the real Gemma file (no template in it: the built-in
 * Gemma 3 template) against jinja2's renderings of the same conversations. */
static void chat_format_real_model(void) {
    size_t flen;
    char *fixture = test_read_file("tests/fixtures/templates/gemma3.jinja", &flen);
    CHECK(fixture && strlen(slm_gemma3_template) == flen && !memcmp(fixture, slm_gemma3_template, flen));
    free(fixture);
    const char *path = test_model_path();
    if (!path) { test_skip("no model (set SLM_TEST_MODEL): slm_chat_format on a real file did not run"); return; }
    slm_model *m;
    if (slm_model_open(path, &m)) { CHECKF(0, "cannot open %s: %s", path, slm_last_error()); return; }
    size_t len;
    char *txt = test_read_file("tests/fixtures/templates/expected.json", &len);
    jv root = json_parse(&A, txt, len), tmpls = get(root, "templates");
    int compared = 0;
    for (size_t i = 0; i < tmpls.u.l->n; i++) {
        jv tm = tmpls.u.l->v[i], fam = get(tm, "family");
        if (fam.u.s.n != 6 || memcmp(fam.u.s.p, "gemma3", 6)) continue;
        jv cases = get(tm, "cases");
        for (size_t k = 0; k < cases.u.l->n; k++) {
            jv c = cases.u.l->v[k], ctx = get(c, "context"), msgs = get(ctx, "messages");
            if (get(ctx, "tools").t != JV_NONE) continue;   /* the API passes role and content only */
            slm_chat_message mm[16];
            size_t n = msgs.u.l->n < 16 ? msgs.u.l->n : 16;
            for (size_t j = 0; j < n; j++) {
                mm[j].role = cstr(get(msgs.u.l->v[j], "role"));
                mm[j].content = cstr(get(msgs.u.l->v[j], "content"));
            }
            char *out = NULL;
            slm_status st = slm_chat_format(m, mm, n, jv_truthy(get(ctx, "add_generation_prompt")), &out);
            jv want = get(c, "output");
            if (want.t == JV_STR)
                CHECKF(st == SLM_OK && strlen(out) == want.u.s.n && !memcmp(out, want.u.s.p, want.u.s.n),
                       "slm_chat_format %s: %s\n%s", cstr(get(c, "name")), st ? slm_last_error() : "", out ? out : "");
            else
                CHECKF(st == SLM_ERR_INVALID_ARG && strstr(slm_last_error(), "alternate"), "slm_chat_format %s: %d %s",
                       cstr(get(c, "name")), st, slm_last_error());
            free(out);
            compared++;
        }
    }
    printf("slm_chat_format: %d Gemma conversations compared with jinja2\n", compared);
    CHECK(compared >= 6);
    free(txt);
    slm_model_close(m);
}

int main(void) {
    if (setjmp(E.jb)) {
        fprintf(stderr, "fixture error: %s\n", E.msg);
        ja_free(&A);
        return 1;
    }
    golden();
    errors();
    basics();
    chat_format_real_model();
    ja_free(&A);
    return test_finish();
}
