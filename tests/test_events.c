/* Scoring support for the event-extraction task (docs/TRAINING.md, "The
 * task"): JSON equality and per-field scoring ("score": "json_fields"), chat
 * items ("chat": true, "messages"), their parse errors, and the per-field
 * summary — on the tiny random Gemma 3 of tests/fixtures/eval. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/json.h"
#include "eval/task.h"
#include "slm.h"
#include "testlib.h"

#define MODEL "tests/fixtures/eval/tiny_gemma3.gguf"

static slm_model *model;

static const char *TRUTH =
    "{\"date\": \"2026-03-06\", \"start\": \"15:30\", \"duration_min\": 45, \"attendees\": [\"Anna\", \"Zoë\"], "
    "\"location\": \"the Harbor Room\"}";

/* ok[] as a string of 0/1 for messages */
static const char *bits(const signed char *ok, int n) {
    static char b[16];
    for (int i = 0; i < n; i++) b[i] = ok[i] ? '1' : '0';
    b[n] = 0;
    return b;
}

static void test_fields(void) {
    static const struct { const char *gen; int right; const char *ok; } cases[] = {
        /* the truth itself, and with other spacing and key order */
        { "{\"date\": \"2026-03-06\", \"start\": \"15:30\", \"duration_min\": 45, \"attendees\": [\"Anna\", \"Zoë\"], "
          "\"location\": \"the Harbor Room\"}", 5, "11111" },
        { " {\"location\":\"the Harbor Room\",\"attendees\":[\"Anna\",\"Zo\\u00eb\"],\"duration_min\":45.0,"
          "\"start\":\"15:30\",\"date\":\"2026-03-06\"}\n", 5, "11111" },
        /* one field wrong each */
        { "{\"date\": \"2026-03-07\", \"start\": \"15:30\", \"duration_min\": 45, \"attendees\": [\"Anna\", \"Zoë\"], "
          "\"location\": \"the Harbor Room\"}", 4, "01111" },
        { "{\"date\": \"2026-03-06\", \"start\": \"3:30\", \"duration_min\": 45, \"attendees\": [\"Anna\", \"Zoë\"], "
          "\"location\": \"the Harbor Room\"}", 4, "10111" },
        { "{\"date\": \"2026-03-06\", \"start\": \"15:30\", \"duration_min\": \"45\", \"attendees\": [\"Anna\", \"Zoë\"], "
          "\"location\": \"the Harbor Room\"}", 4, "11011" },
        { "{\"date\": \"2026-03-06\", \"start\": \"15:30\", \"duration_min\": 45, \"attendees\": [\"Zoë\", \"Anna\"], "
          "\"location\": \"the Harbor Room\"}", 4, "11101" },
        { "{\"date\": \"2026-03-06\", \"start\": \"15:30\", \"duration_min\": 45, \"attendees\": [\"Anna\", \"Zoë\"], "
          "\"location\": \"Harbor Room\"}", 4, "11110" },
        /* a missing key is wrong, an extra one does not matter; null is not missing */
        { "{\"date\": \"2026-03-06\", \"start\": \"15:30\", \"attendees\": [\"Anna\", \"Zoë\"], \"x\": 1, "
          "\"location\": \"the Harbor Room\"}", 4, "11011" },
        { "{\"date\": \"2026-03-06\", \"start\": \"15:30\", \"duration_min\": null, \"attendees\": [\"Anna\"], "
          "\"location\": null}", 2, "11000" },
        /* duplicate keys: the last wins (as Python's json) */
        { "{\"date\": \"x\", \"date\": \"2026-03-06\"}", 1, "10000" },
        /* not an object, not JSON, trailing text, empty */
        { "[\"2026-03-06\"]", 0, "00000" },
        { "{\"date\": \"2026-03-06\", \"start\": \"15:30\"", 0, "00000" },
        { "{\"date\": \"2026-03-06\"} and more", 0, "00000" },
        { "", 0, "00000" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        signed char ok[5];
        int r = task_json_fields(TRUTH, cases[i].gen, 5, ok);
        CHECKF(r == cases[i].right && !strcmp(bits(ok, 5), cases[i].ok), "case %zu: %d right (%s), want %d (%s)", i,
               r, bits(ok, 5), cases[i].right, cases[i].ok);
    }
    signed char ok[1];
    CHECK(task_json_fields("[1]", "[1]", 1, ok) == -1);

    /* equality by kind: true is not 1, objects compare without order */
    static const struct { const char *a, *b; int eq; } eqs[] = {
        { "true", "1", 0 }, { "null", "null", 1 }, { "0", "-0.0", 1 }, { "1e2", "100", 1 },
        { "\"a\"", "\"a \"", 0 }, { "[1, [2]]", "[1, [2]]", 1 }, { "[1, 2]", "[2, 1]", 0 },
        { "{\"a\": 1, \"b\": [true]}", "{\"b\": [true], \"a\": 1}", 1 }, { "{\"a\": 1}", "{\"a\": 1, \"b\": 2}", 0 },
        { "{}", "[]", 0 }, { "\"\\u00e9\"", "\"é\"", 1 },
    };
    for (size_t i = 0; i < sizeof eqs / sizeof eqs[0]; i++) {
        char err[100];
        json_doc *a = ejson_parse(eqs[i].a, strlen(eqs[i].a), err, sizeof err);
        json_doc *b = ejson_parse(eqs[i].b, strlen(eqs[i].b), err, sizeof err);
        CHECK(a && b);
        if (a && b) CHECKF(task_json_equal(ejson_root(a), ejson_root(b)) == eqs[i].eq, "%s vs %s", eqs[i].a, eqs[i].b);
        ejson_free(a);
        ejson_free(b);
    }
}

static void test_parse_errors(void) {
    static const struct { const char *text, *needle; } bad[] = {
        { "{\"prompt\": \"x\", \"answer\": \"{}\", \"score\": \"json_fields\"}", "1 to 64 keys" },
        { "{\"prompt\": \"x\", \"answer\": \"[1]\", \"score\": \"json_fields\"}", "JSON object" },
        { "{\"prompt\": \"x\", \"answer\": \"{\\\"a\\\": 1\", \"score\": \"json_fields\"}", "not JSON" },
        { "{\"prompt\": \"x\", \"answer\": \"{\\\"a\\\": 1, \\\"a\\\": 2}\", \"score\": \"json_fields\"}", "repeats" },
        { "{\"prompt\": \"x\", \"answers\": [\"{\\\"a\\\": 1}\", \"{}\"], \"score\": \"json_fields\"}", "exactly one" },
        { "{\"prompt\": \"x\", \"answer\": \"y\", \"score\": \"fuzzy\"}", "\"score\" must be" },
        { "{\"prompt\": \"x\", \"answer\": \"y\", \"chat\": 1}", "\"chat\" must be" },
        { "{\"prompt\": \"x\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"answer\": \"y\"}", "not both" },
        { "{\"messages\": [], \"answer\": \"y\"}", "array of 1 to" },
        { "{\"messages\": [{\"role\": \"user\"}], \"answer\": \"y\"}", "message 0 needs" },
        { "{\"messages\": [{\"role\": \"\", \"content\": \"x\"}], \"answer\": \"y\"}", "message 0 needs" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}, {\"role\": \"assistant\", \"content\": \"y\"}], "
          "\"answer\": \"y\"}", "last message" },
        { "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"chat\": false, \"answer\": \"y\"}", "always a chat" },
        { "{\"chat\": true, \"answer\": \"y\"}", "\"prompt\"" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        slm_task *t = NULL;
        CHECKF(slm_task_parse(bad[i].text, strlen(bad[i].text), &t) == SLM_ERR_FORMAT && !t, "bad case %zu", i);
        CHECKF(strstr(slm_last_error(), bad[i].needle) != NULL, "case %zu: message \"%s\" lacks \"%s\"", i,
               slm_last_error(), bad[i].needle);
        CHECKF(strstr(slm_last_error(), "line 1") != NULL, "case %zu: no line number in \"%s\"", i, slm_last_error());
    }
    /* the fields are registered in order of first appearance across items */
    const char *ok = "{\"prompt\": \"a\", \"answer\": \"{\\\"b\\\": 1, \\\"a\\\": 2}\", \"score\": \"json_fields\"}\n"
                     "{\"prompt\": \"a\", \"answer\": \"x\"}\n"
                     "{\"prompt\": \"a\", \"answer\": \"{\\\"c\\\": 1, \\\"b\\\": 2}\", \"score\": \"json_fields\"}\n"
                     "{\"context\": \"a\", \"choices\": [\" b\", \" c\"], \"answer\": 0, \"chat\": true}\n";
    slm_task *t = NULL;
    CHECKF(slm_task_parse(ok, strlen(ok), &t) == SLM_OK, "%s", slm_last_error());
    if (t) {
        CHECK(slm_task_n_fields(t) == 3);
        CHECK(slm_task_n_fields(t) == 3 && !strcmp(slm_task_field_name(t, 0), "b") &&
              !strcmp(slm_task_field_name(t, 1), "a") && !strcmp(slm_task_field_name(t, 2), "c"));
        CHECK(slm_task_field_name(t, 3) == NULL && slm_task_field_name(t, -1) == NULL);
        int n;
        double acc, se;
        slm_task_field_acc(t, 0, &n, &acc, &se);
        CHECK(n == 0 && acc == 0 && se == 0);   /* nothing scored yet */
        slm_task_free(t);
    }
}

/* Appends s to buf as the inside of a JSON string. */
static size_t json_esc(char *buf, size_t cap, size_t n, const char *s) {
    for (; *s && n + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { buf[n++] = '\\'; buf[n++] = (char)c; }
        else if (c < 0x20) n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", c);
        else buf[n++] = (char)c;
    }
    buf[n] = 0;
    return n;
}

/* Chat items go through the model's format: a "chat" item, the same
 * conversation as "messages", and a plain prompt holding the text
 * slm_chat_format renders must generate the same text; the per-field
 * summary counts what task_json_fields says. */
static void test_chat_items(void) {
    slm_session_params sp = { .n_ctx = 256, .n_threads = 2 };
    slm_session *s = NULL;
    CHECK(slm_session_new(model, &sp, &s) == SLM_OK);
    if (!s) return;
    slm_chat_message msg[3] = { { "user", "the lord said" }, { "assistant", "unto them" }, { "user", "he shall be" } };
    char *rendered = NULL, *rendered1 = NULL;
    CHECK(slm_chat_format(model, msg, 3, true, &rendered) == SLM_OK);
    CHECK(slm_chat_format(model, msg + 2, 1, true, &rendered1) == SLM_OK);
    if (!rendered || !rendered1) { free(rendered); free(rendered1); slm_session_free(s); return; }
    /* The plain prompt is tokenized with BOS added: drop the rendered BOS. */
    const char *bos = "<bos>";
    const char *plain = !strncmp(rendered, bos, strlen(bos)) ? rendered + strlen(bos) : rendered;
    const char *plain1 = !strncmp(rendered1, bos, strlen(bos)) ? rendered1 + strlen(bos) : rendered1;
    char jsonl[4096];
    size_t n = 0;
    n += (size_t)snprintf(jsonl + n, sizeof jsonl - n,
                          "{\"messages\": [{\"role\": \"user\", \"content\": \"the lord said\"}, {\"role\": \"assistant\", "
                          "\"content\": \"unto them\"}, {\"role\": \"user\", \"content\": \"he shall be\"}], "
                          "\"answer\": \"x\", \"stop\": [], \"max_tokens\": 8}\n{\"prompt\": \"");
    n = json_esc(jsonl, sizeof jsonl, n, plain);
    n += (size_t)snprintf(jsonl + n, sizeof jsonl - n,
                          "\", \"answer\": \"x\", \"stop\": [], \"max_tokens\": 8}\n"
                          "{\"chat\": true, \"prompt\": \"he shall be\", \"answer\": \"x\", \"stop\": [], \"max_tokens\": 8}\n"
                          "{\"prompt\": \"");
    n = json_esc(jsonl, sizeof jsonl, n, plain1);
    n += (size_t)snprintf(jsonl + n, sizeof jsonl - n, "\", \"answer\": \"x\", \"stop\": [], \"max_tokens\": 8}\n");
    slm_task *t = NULL;
    CHECKF(slm_task_parse(jsonl, n, &t) == SLM_OK, "%s", slm_last_error());
    char gen[4][256] = { "" };
    for (size_t i = 0; t && i < 4; i++) {
        slm_task_item_result r;
        CHECKF(slm_task_score(t, i, model, s, NULL, &r) == SLM_OK, "%s", slm_last_error());
        snprintf(gen[i], sizeof gen[i], "%s", r.generated ? r.generated : "");
        CHECK(r.n_fields == 0);
    }
    CHECKF(!strcmp(gen[0], gen[1]), "messages item \"%s\", plain prompt \"%s\"", gen[0], gen[1]);
    CHECKF(!strcmp(gen[2], gen[3]), "chat item \"%s\", plain prompt \"%s\"", gen[2], gen[3]);
    slm_task_free(t);

    /* json_fields items: the tiny model writes no JSON (its chat replies
     * are byte tokens that are not even UTF-8), so every field is wrong;
     * the result and the summary must say what task_json_fields says. */
    n = (size_t)snprintf(jsonl, sizeof jsonl,
                         "{\"chat\": true, \"prompt\": \"he shall be\", \"answer\": \"{\\\"a\\\": 1, \\\"b\\\": null}\", "
                         "\"score\": \"json_fields\", \"stop\": [], \"max_tokens\": 8}\n"
                         "{\"prompt\": \"he shall be\", \"answer\": \"x\", \"max_tokens\": 2}\n");
    t = NULL;
    CHECKF(slm_task_parse(jsonl, n, &t) == SLM_OK, "%s", slm_last_error());
    if (t) {
        slm_task_item_result r;
        CHECK(slm_task_score(t, 0, model, s, NULL, &r) == SLM_OK);
        signed char ok[2];
        int want = task_json_fields("{\"a\": 1, \"b\": null}", r.generated, 2, ok);
        CHECK(r.n_fields == 2 && r.fields_right == want && want == 0 && !r.correct);
        CHECKF(!strcmp(r.generated, gen[2]), "\"%s\" vs \"%s\"", r.generated, gen[2]);
        CHECK(slm_task_score(t, 1, model, s, NULL, &r) == SLM_OK && r.n_fields == 0);
        slm_task_summary sum;
        slm_task_summary_get(t, &sum);
        CHECK(sum.n_gen == 2 && sum.em == 0 && sum.em_se == 0);
        int fn;
        double acc, se;
        slm_task_field_acc(t, 0, &fn, &acc, &se);
        CHECK(fn == 1 && acc == 0 && se == 0);
        slm_task_field_acc(t, 1, &fn, &acc, &se);
        CHECK(fn == 1 && acc == 0);
        slm_task_free(t);
    }
    free(rendered);
    free(rendered1);
    slm_session_free(s);
}

/* Per-field accuracy and its SE over several items with known outcomes:
 * the answers are texts the scorer compares against fixed generations via
 * task_json_fields, summed the way the summary does. */
static void test_field_summary(void) {
    const char *gens[4] = {
        TRUTH,
        "{\"date\": \"2026-03-06\", \"start\": \"15:00\", \"duration_min\": 45, \"attendees\": [], \"location\": null}",
        "not json",
        "{\"date\": \"2026-03-05\", \"start\": \"15:30\", \"duration_min\": 45, \"attendees\": [\"Anna\", \"Zoë\"], "
        "\"location\": \"the Harbor Room\"}",
    };
    int want_right[5] = { 0 };
    for (int g = 0; g < 4; g++) {
        signed char ok[5];
        CHECK(task_json_fields(TRUTH, gens[g], 5, ok) >= 0);
        for (int k = 0; k < 5; k++) want_right[k] += ok[k];
    }
    /* date 2/4, start 2/4, duration 3/4, attendees 2/4, location 2/4 */
    int expect[5] = { 2, 2, 3, 2, 2 };
    for (int k = 0; k < 5; k++) CHECKF(want_right[k] == expect[k], "field %d: %d right", k, want_right[k]);
}

/* A generation item right after another in the same session keeps their
 * shared cached prefix: the outputs must be those of each item scored alone
 * from an empty cache; an MC item or another session in between resets. */
static void test_prefix_reuse(void) {
    slm_session_params sp = { .n_ctx = 256, .n_threads = 2 };
    slm_session *s = NULL, *s2 = NULL;
    CHECK(slm_session_new(model, &sp, &s) == SLM_OK && slm_session_new(model, &sp, &s2) == SLM_OK);
    if (!s || !s2) { slm_session_free(s); slm_session_free(s2); return; }
    static const char *items[] = {
        "{\"prompt\": \"the lord said unto them that he shall\", \"answer\": \"x\", \"stop\": [], \"max_tokens\": 12}",
        "{\"prompt\": \"the lord said unto them that he\", \"answer\": \"x\", \"stop\": [], \"max_tokens\": 12}",
        "{\"prompt\": \"the lord said unto them that he\", \"answer\": \"x\", \"stop\": [], \"max_tokens\": 12}",
        "{\"prompt\": \"the lord said unto all of his\", \"answer\": \"x\", \"stop\": [], \"max_tokens\": 12}",
        "{\"prompt\": \"in the lord\", \"answer\": \"x\", \"stop\": [], \"max_tokens\": 12}",
        "{\"prompt\": \"in all the\", \"answer\": \"x\", \"stop\": [], \"max_tokens\": 12}",
        "{\"context\": \"the lord\", \"choices\": [\" said\", \" of\"], \"answer\": 0}",
        "{\"prompt\": \"the lord said unto all of them\", \"answer\": \"x\", \"stop\": [], \"max_tokens\": 12}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"the lord\"}, {\"role\": \"assistant\", \"content\": \"said\"},"
        " {\"role\": \"user\", \"content\": \"unto them\"}], \"answer\": \"x\", \"stop\": [], \"max_tokens\": 12}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"the lord\"}, {\"role\": \"assistant\", \"content\": \"said\"},"
        " {\"role\": \"user\", \"content\": \"and he shall\"}], \"answer\": \"x\", \"stop\": [], \"max_tokens\": 12}",
    };
    enum { N = sizeof items / sizeof items[0] };
    char alone[N][128], all[4096];
    size_t n = 0;
    for (size_t i = 0; i < N; i++) {
        slm_task *t = NULL;
        alone[i][0] = 0;
        CHECK(slm_task_parse(items[i], strlen(items[i]), &t) == SLM_OK);
        slm_session *fresh = NULL;
        CHECK(slm_session_new(model, &sp, &fresh) == SLM_OK);
        slm_task_item_result r;
        if (t && fresh && slm_task_score(t, 0, model, fresh, NULL, &r) == SLM_OK && !r.is_mc)
            snprintf(alone[i], sizeof alone[i], "%s", r.generated);
        slm_session_free(fresh);
        slm_task_free(t);
        n += (size_t)snprintf(all + n, sizeof all - n, "%s\n", items[i]);
    }
    slm_task *t = NULL;
    CHECK(slm_task_parse(all, n, &t) == SLM_OK);
    for (size_t i = 0; t && i < N; i++) {
        slm_task_item_result r;
        /* items 4 and 5 in another session: nothing of s may be reused for 4 */
        CHECKF(slm_task_score(t, i, model, i == 4 || i == 5 ? s2 : s, NULL, &r) == SLM_OK, "%s", slm_last_error());
        if (!r.is_mc) CHECKF(!strcmp(r.generated, alone[i]), "item %zu: \"%s\", alone \"%s\"", i, r.generated, alone[i]);
    }
    slm_task_free(t);
    slm_session_free(s);
    slm_session_free(s2);
}

int main(void) {
    test_fields();
    test_parse_errors();
    test_field_summary();
    if (slm_model_open(MODEL, &model) != SLM_OK) {
        fprintf(stderr, "cannot open %s: %s\n", MODEL, slm_last_error());
        return 1;
    }
    test_chat_items();
    test_prefix_reuse();
    slm_model_close(model);
    return test_finish();
}
