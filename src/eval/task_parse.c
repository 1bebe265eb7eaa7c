/* JSONL task files (format in docs/EVAL.md): one JSON object per line,
 * blank lines skipped. Every line is checked completely here, so that
 * scoring never meets a malformed item. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "eval/json.h"
#include "eval/task.h"

static void item_free(task_item *it) {
    free(it->text);
    for (int i = 0; i < it->n_strs; i++) free(it->strs[i]);
    free(it->strs);
    for (int i = 0; i < it->n_stops; i++) free(it->stops[i]);
    free(it->stops);
}

void slm_task_free(slm_task *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) item_free(&t->items[i]);
    free(t->items);
    free(t->gen_buf);
    free(t);
}

size_t slm_task_n_items(const slm_task *t) { return t->n; }
int slm_task_n_choices(const slm_task *t, size_t i) {
    return i < t->n && t->items[i].is_mc ? t->items[i].n_strs : 0;
}

/* Copies an array of strings (each non-empty unless allow_empty). */
static slm_status str_array(const json_val *v, const char *what, int lo, int hi, bool allow_empty, size_t line,
                            char ***out, int *n_out) {
    if (!v || v->kind != JSON_ARR)
        return slm_fail(SLM_ERR_FORMAT, "line %zu: \"%s\" must be an array of strings", line, what);
    if (v->n < (size_t)lo || v->n > (size_t)hi)
        return slm_fail(SLM_ERR_FORMAT, "line %zu: \"%s\" needs %d to %d entries, has %zu", line, what, lo, hi, v->n);
    char **a = calloc(v->n ? v->n : 1, sizeof *a);
    if (!a) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    *out = a;
    for (size_t i = 0; i < v->n; i++) {
        const json_val *e = &v->items[i];
        if (e->kind != JSON_STR)
            return slm_fail(SLM_ERR_FORMAT, "line %zu: entry %zu of \"%s\" is not a string", line, i, what);
        if (!allow_empty && e->len == 0)
            return slm_fail(SLM_ERR_FORMAT, "line %zu: entry %zu of \"%s\" is empty", line, i, what);
        if (!(a[i] = strdup(e->str))) return slm_fail(SLM_ERR_NOMEM, "out of memory");
        *n_out = (int)i + 1;
    }
    return SLM_OK;
}

static slm_status int_field(const json_val *v, const char *what, long lo, long hi, size_t line, int *out) {
    if (!v || v->kind != JSON_NUM || v->num != floor(v->num) || v->num < lo || v->num > hi)
        return slm_fail(SLM_ERR_FORMAT, "line %zu: \"%s\" must be an integer in %ld..%ld", line, what, lo, hi);
    *out = (int)v->num;
    return SLM_OK;
}

static slm_status parse_item(const json_val *o, size_t line, task_item *it) {
    if (o->kind != JSON_OBJ) return slm_fail(SLM_ERR_FORMAT, "line %zu: expected a JSON object", line);
    const json_val *type = ejson_get(o, "type");
    const json_val *choices = ejson_get(o, "choices");
    if (type && type->kind != JSON_STR)
        return slm_fail(SLM_ERR_FORMAT, "line %zu: \"type\" must be \"mc\" or \"gen\"", line);
    if (type && strcmp(type->str, "mc") && strcmp(type->str, "gen"))
        return slm_fail(SLM_ERR_FORMAT, "line %zu: unknown type \"%s\" (\"mc\" or \"gen\")", line, type->str);
    it->is_mc = type ? !strcmp(type->str, "mc") : choices != NULL;
    it->correct = it->correct_norm = -1;
    const char *text_key = it->is_mc ? "context" : "prompt";
    const json_val *text = ejson_get(o, text_key);
    if (!text || text->kind != JSON_STR)
        return slm_fail(SLM_ERR_FORMAT, "line %zu: \"%s\" (a string) is missing", line, text_key);
    if (!it->is_mc && text->len == 0) return slm_fail(SLM_ERR_FORMAT, "line %zu: \"prompt\" is empty", line);
    if (!(it->text = strdup(text->str))) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    slm_status st;
    if (it->is_mc) {
        if ((st = str_array(choices, "choices", 2, TASK_MAX_CHOICES, false, line, &it->strs, &it->n_strs)))
            return st;
        return int_field(ejson_get(o, "answer"), "answer", 0, it->n_strs - 1, line, &it->answer);
    }
    const json_val *ans = ejson_get(o, "answers"), *one = ejson_get(o, "answer");
    if (ans && one) return slm_fail(SLM_ERR_FORMAT, "line %zu: give \"answer\" or \"answers\", not both", line);
    if (one) {
        if (one->kind != JSON_STR) return slm_fail(SLM_ERR_FORMAT, "line %zu: \"answer\" must be a string", line);
        it->strs = calloc(1, sizeof *it->strs);
        if (!it->strs || !(it->strs[0] = strdup(one->str))) return slm_fail(SLM_ERR_NOMEM, "out of memory");
        it->n_strs = 1;
    } else if ((st = str_array(ans, "answers", 1, TASK_MAX_CHOICES, true, line, &it->strs, &it->n_strs))) {
        return st;
    }
    const json_val *stop = ejson_get(o, "stop");
    if (stop) {
        if ((st = str_array(stop, "stop", 0, TASK_MAX_STOPS, false, line, &it->stops, &it->n_stops))) return st;
    } else {
        it->stops = calloc(1, sizeof *it->stops);
        if (!it->stops || !(it->stops[0] = strdup("\n"))) return slm_fail(SLM_ERR_NOMEM, "out of memory");
        it->n_stops = 1;
    }
    it->max_tokens = TASK_DEFAULT_GEN_TOKENS;
    const json_val *mt = ejson_get(o, "max_tokens");
    return mt ? int_field(mt, "max_tokens", 1, TASK_MAX_GEN_TOKENS, line, &it->max_tokens) : SLM_OK;
}

static bool blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
    return true;
}

slm_status slm_task_parse(const char *text, size_t len, slm_task **out) {
    *out = NULL;
    slm_task *t = calloc(1, sizeof *t);
    if (!t) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    size_t cap = 0, line = 0;
    slm_status st = SLM_OK;
    for (size_t pos = 0; pos < len && !st;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        line++;
        if (!blank(text + pos, end - pos)) {
            if (t->n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                task_item *ni = realloc(t->items, nc * sizeof *ni);
                if (!ni) { st = slm_fail(SLM_ERR_NOMEM, "out of memory"); break; }
                t->items = ni;
                cap = nc;
            }
            char err[200];
            json_doc *d = ejson_parse(text + pos, end - pos, err, sizeof err);
            if (!d) { st = slm_fail(SLM_ERR_FORMAT, "line %zu: invalid JSON: %s", line, err); break; }
            task_item *it = &t->items[t->n++];
            memset(it, 0, sizeof *it);
            st = parse_item(ejson_root(d), line, it);
            ejson_free(d);
        }
        pos = end + 1;
    }
    if (!st && t->n == 0) st = slm_fail(SLM_ERR_FORMAT, "the task has no items");
    if (st) { slm_task_free(t); return st; }
    *out = t;
    return SLM_OK;
}

void slm_task_summary_get(const slm_task *t, slm_task_summary *out) {
    memset(out, 0, sizeof *out);
    int mc_ok = 0, mc_norm_ok = 0, gen_ok = 0;
    for (size_t i = 0; i < t->n; i++) {
        const task_item *it = &t->items[i];
        if (it->correct < 0) continue;
        if (it->is_mc) { out->n_mc++; mc_ok += it->correct; mc_norm_ok += it->correct_norm; }
        else { out->n_gen++; gen_ok += it->correct; }
    }
    /* sample standard error of a proportion: sqrt(p (1 - p) / (n - 1)) */
#define PROP(k, n, p, se) do { if (n) { p = (double)(k) / (n); \
    se = (n) > 1 ? sqrt(p * (1 - p) / ((n) - 1)) : 0; } } while (0)
    PROP(mc_ok, out->n_mc, out->acc, out->acc_se);
    PROP(mc_norm_ok, out->n_mc, out->acc_norm, out->acc_norm_se);
    PROP(gen_ok, out->n_gen, out->em, out->em_se);
#undef PROP
}
