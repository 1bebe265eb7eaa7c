/* JSONL task files (format in docs/EVAL.md): one JSON object per line,
 * blank lines skipped. Every line is checked completely here, so that
 * scoring never meets a malformed item. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/status.h"
#include "eval/json.h"
#include "eval/task.h"
#include "grammar/json_schema.h"

static void item_free(task_item *it) {
    free(it->text);
    for (int i = 0; i < it->n_strs; i++) free(it->strs[i]);
    free(it->strs);
    for (int i = 0; i < it->n_stops; i++) free(it->stops[i]);
    free(it->stops);
    free(it->gbnf);
    for (int i = 0; i < it->n_msgs; i++) { free(it->msg_roles[i]); free(it->msg_texts[i]); }
    free(it->msg_roles);
    free(it->msg_texts);
    free(it->field_idx);
    free(it->field_ok);
}

void slm_task_free(slm_task *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) item_free(&t->items[i]);
    free(t->items);
    free(t->gen_buf);
    free(t->prev_prompt);
    for (int k = 0; k < t->n_field_names; k++) free(t->field_names[k]);
    free(t->field_names);
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

/* "messages": 1..TASK_MAX_MESSAGES objects {"role", "content"}, the last a
 * user turn. */
static slm_status parse_messages(const json_val *v, size_t line, task_item *it) {
    if (v->kind != JSON_ARR || v->n < 1 || v->n > TASK_MAX_MESSAGES)
        return slm_fail(SLM_ERR_FORMAT, "line %zu: \"messages\" must be an array of 1 to %d messages", line,
                        TASK_MAX_MESSAGES);
    it->msg_roles = calloc(v->n, sizeof *it->msg_roles);
    it->msg_texts = calloc(v->n, sizeof *it->msg_texts);
    if (!it->msg_roles || !it->msg_texts) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < v->n; i++) {
        const json_val *m = &v->items[i], *role = ejson_get(m, "role"), *content = ejson_get(m, "content");
        if (m->kind != JSON_OBJ || !role || role->kind != JSON_STR || role->len == 0 || !content ||
            content->kind != JSON_STR)
            return slm_fail(SLM_ERR_FORMAT,
                            "line %zu: message %zu needs a non-empty \"role\" and a \"content\" (strings)", line, i);
        it->msg_roles[i] = strdup(role->str);
        it->msg_texts[i] = strdup(content->str);
        it->n_msgs = (int)i + 1;
        if (!it->msg_roles[i] || !it->msg_texts[i]) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    }
    if (strcmp(it->msg_roles[it->n_msgs - 1], "user"))
        return slm_fail(SLM_ERR_FORMAT, "line %zu: the last message must be a \"user\" turn", line);
    return SLM_OK;
}

/* "score": "json_fields": the one answer must be a JSON object; its keys
 * become fields (registered task-wide in order of first appearance). */
static slm_status parse_fields(slm_task *t, size_t line, task_item *it) {
    if (it->n_strs != 1)
        return slm_fail(SLM_ERR_FORMAT, "line %zu: \"json_fields\" scoring takes exactly one answer", line);
    char err[200];
    json_doc *d = ejson_parse(it->strs[0], strlen(it->strs[0]), err, sizeof err);
    if (!d) return slm_fail(SLM_ERR_FORMAT, "line %zu: the answer is not JSON (%s)", line, err);
    const json_val *o = ejson_root(d);
    slm_status st = SLM_OK;
    if (o->kind != JSON_OBJ || o->n < 1 || o->n > TASK_MAX_FIELDS)
        st = slm_fail(SLM_ERR_FORMAT, "line %zu: a \"json_fields\" answer must be a JSON object with 1 to %d keys",
                      line, TASK_MAX_FIELDS);
    for (size_t i = 0; !st && i < o->n; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(o->keys[i], o->keys[j])) {
                st = slm_fail(SLM_ERR_FORMAT, "line %zu: the answer repeats the key \"%s\"", line, o->keys[i]);
                break;
            }
    if (!st) {
        it->field_idx = calloc(o->n, sizeof *it->field_idx);
        it->field_ok = malloc(o->n);
        if (!it->field_idx || !it->field_ok) st = slm_fail(SLM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; !st && i < o->n; i++) {
        int k = 0;
        while (k < t->n_field_names && strcmp(t->field_names[k], o->keys[i])) k++;
        if (k == t->n_field_names) {
            char **nn = realloc(t->field_names, (size_t)(k + 1) * sizeof *nn);
            if (!nn) { st = slm_fail(SLM_ERR_NOMEM, "out of memory"); break; }
            t->field_names = nn;
            if (!(nn[k] = strdup(o->keys[i]))) { st = slm_fail(SLM_ERR_NOMEM, "out of memory"); break; }
            t->n_field_names++;
        }
        it->field_idx[i] = k;
        it->field_ok[i] = -1;
        it->n_fields = (int)i + 1;
    }
    ejson_free(d);
    return st;
}

static slm_status parse_item(slm_task *t, const json_val *o, size_t line, task_item *it) {
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
    const json_val *text = ejson_get(o, text_key), *msgs = ejson_get(o, "messages"), *chat = ejson_get(o, "chat");
    slm_status st;
    if (!it->is_mc && (msgs || chat)) {
        if (chat && chat->kind != JSON_BOOL)
            return slm_fail(SLM_ERR_FORMAT, "line %zu: \"chat\" must be true or false", line);
        if (msgs && text) return slm_fail(SLM_ERR_FORMAT, "line %zu: give \"prompt\" or \"messages\", not both", line);
        if (msgs && chat && !chat->b)
            return slm_fail(SLM_ERR_FORMAT, "line %zu: \"messages\" are always a chat (\"chat\": false)", line);
        it->chat = msgs || chat->b;
    }
    if (it->chat && msgs) {
        if ((st = parse_messages(msgs, line, it))) return st;
        text = NULL;
    } else {
        if (!text || text->kind != JSON_STR)
            return slm_fail(SLM_ERR_FORMAT, "line %zu: \"%s\" (a string) is missing", line, text_key);
        if (!it->is_mc && text->len == 0) return slm_fail(SLM_ERR_FORMAT, "line %zu: \"prompt\" is empty", line);
    }
    if (!(it->text = strdup(text ? text->str : ""))) return slm_fail(SLM_ERR_NOMEM, "out of memory");
    if (it->chat && !msgs) {   /* the prompt as one user turn */
        it->msg_roles = calloc(1, sizeof *it->msg_roles);
        it->msg_texts = calloc(1, sizeof *it->msg_texts);
        if (!it->msg_roles || !it->msg_texts) return slm_fail(SLM_ERR_NOMEM, "out of memory");
        it->n_msgs = 1;
        if (!(it->msg_roles[0] = strdup("user")) || !(it->msg_texts[0] = strdup(text->str)))
            return slm_fail(SLM_ERR_NOMEM, "out of memory");
    }
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
    const json_val *schema = ejson_get(o, "json_schema");
    if (schema && (st = json_schema_val_to_gbnf(schema, &it->gbnf))) {
        char why[400];
        snprintf(why, sizeof why, "%s", slm_last_error());
        return slm_fail(st, "line %zu: \"json_schema\": %s", line, why);
    }
    const json_val *stop = ejson_get(o, "stop");
    if (stop) {
        if ((st = str_array(stop, "stop", 0, TASK_MAX_STOPS, false, line, &it->stops, &it->n_stops))) return st;
    } else if (!it->gbnf) {   /* with a schema the grammar ends the output */
        it->stops = calloc(1, sizeof *it->stops);
        if (!it->stops || !(it->stops[0] = strdup("\n"))) return slm_fail(SLM_ERR_NOMEM, "out of memory");
        it->n_stops = 1;
    }
    it->max_tokens = TASK_DEFAULT_GEN_TOKENS;
    const json_val *mt = ejson_get(o, "max_tokens");
    if (mt && (st = int_field(mt, "max_tokens", 1, TASK_MAX_GEN_TOKENS, line, &it->max_tokens))) return st;
    const json_val *score = ejson_get(o, "score");
    if (!score) return SLM_OK;
    if (score->kind != JSON_STR || (strcmp(score->str, "exact") && strcmp(score->str, "json_fields")))
        return slm_fail(SLM_ERR_FORMAT, "line %zu: \"score\" must be \"exact\" or \"json_fields\"", line);
    return strcmp(score->str, "json_fields") ? SLM_OK : parse_fields(t, line, it);
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
            st = parse_item(t, ejson_root(d), line, it);
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

int slm_task_n_fields(const slm_task *t) { return t->n_field_names; }
const char *slm_task_field_name(const slm_task *t, int k) {
    return k >= 0 && k < t->n_field_names ? t->field_names[k] : NULL;
}

void slm_task_field_acc(const slm_task *t, int k, int *n, double *acc, double *se) {
    int cnt = 0, ok = 0;
    for (size_t i = 0; i < t->n; i++) {
        const task_item *it = &t->items[i];
        for (int j = 0; j < it->n_fields; j++)
            if (it->field_idx[j] == k && it->field_ok[j] >= 0) { cnt++; ok += it->field_ok[j]; }
    }
    *n = cnt;
    *acc = cnt ? (double)ok / cnt : 0;
    *se = cnt > 1 ? sqrt(*acc * (1 - *acc) / (cnt - 1)) : 0;
}
